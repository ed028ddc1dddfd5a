// The CPU rows matmuls (codegen/matmul-rows.ts: the subgroup variants, B in vec4s or element by element, and the plain one) on Dawn: the base tiled kernel's bits on edge shapes, A or B transposed, broadcast batches, wide, odd and symbolic n, k off the broadcast round and fused epilogues; where they apply; what the runtime picks on CPU adapters with and without subgroups.
import { describe, expect, it } from 'vitest';
import type { Attrs, Graph, Node } from '../compiler/ir/types.ts';
import { evaluate, sym } from '../compiler/shapes/dim.ts';
import { dispatchSize } from '../compiler/codegen/elementwise.ts';
import { lowerMatmul, matmulPlans, matmulUniformDims, matmulUniforms } from '../compiler/codegen/matmul.ts';
import { COLUMN_VECS, lowerRowsMatmuls, ROWS, rowsInvocations, scalarColumns, SUBGROUP_COLUMN_VECS, SUBGROUP_ROWS } from '../compiler/codegen/matmul-rows.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { compile, getDevice, type Launch, runGraphs, runLaunches } from './gpu-helpers.ts';
import { bind, bits, dims, matmulNode, opNode as node, random, SPAN as span, type Spec, value } from './matmul-helpers.ts';

const rowsOf = (n: Node) => lowerRowsMatmuls(n, matmulUniformDims(lowerMatmul(n)));

const names = (n: Node) => rowsOf(n).map((v) => v.name);

describe('the CPU rows matmuls', () => {
  it('read B in vec4s where it is read along n (n a known multiple of 4, B not transposed), the subgroup one first; elsewhere the subgroup one reads B element by element', () => {
    expect(names(matmulNode([5, 7], [7, 12]))).toEqual(['subgroup-rows', 'rows']);
    expect(names(matmulNode([7, 5], [7, 12], { transpose_a: true }))).toEqual(['subgroup-rows', 'rows']);
    expect(names(matmulNode(['B', 7], [7, 10]))).toEqual(['subgroup-rows-scalar']);
    expect(names(matmulNode([5, 7], [7, 'N']))).toEqual(['subgroup-rows-scalar']);
    expect(names(matmulNode([5, 7], [12, 7], { transpose_b: true }))).toEqual(['subgroup-rows-scalar']);
    // 2 columns per invocation where n <= 16, else 4
    expect(rowsOf(matmulNode([5, 7], [7, 10]))[0].wgsl).toMatch(/2 columns of B per invocation/);
    expect(rowsOf(matmulNode([5, 7], [20, 7], { transpose_b: true }))[0].wgsl).toMatch(/4 columns of B \(stored \[n, k\]\) per invocation/);
    expect(evaluate(rowsOf(matmulNode([40, 7], [7, 'N']))[0].workgroups, new Map([['N', 70]]))).toBe(Math.ceil(40 / SUBGROUP_ROWS) * Math.ceil(70 / 32));
    expect(rowsOf(matmulNode([5, 7], [7, 10]))[0].requires).toBeUndefined();
    const [sg, plain] = rowsOf(matmulNode([5, 7], [7, 12]));
    expect(sg.minSubgroupSize).toBe(8);
    expect(sg.wgsl).toMatch(/^enable subgroups;/);
    expect(sg.wgsl).toMatch(/subgroupBroadcast\(x3_1, 7u\)/);
    expect(plain.minSubgroupSize).toBeUndefined();
    expect(plain.wgsl).not.toMatch(/subgroup/);
    // invocations: W of them, each `columns` vec4s (or columns), cover n; W a multiple of 8 from 8 to 64
    expect([4, 64, 128, 256, 260, 512, 4096].map((n) => rowsInvocations(n))).toEqual([8, 8, 16, 32, 40, 64, 64]);
    expect([4, 64, 128, 256, 260, 512, 4096].map((n) => rowsInvocations(n, SUBGROUP_COLUMN_VECS))).toEqual([8, 16, 32, 64, 64, 64, 64]);
    expect([10, 100, 300].map((n) => rowsInvocations(n, scalarColumns(n), 1))).toEqual([8, 32, 64]);
  });

  it('the plain matmul and fused_matmul offer them as their CPU variants, with their grids and k as the size they require', () => {
    const mm = matmulNode(['B', 300, 64], [64, 260]);
    const [plan] = matmulPlans(mm);
    expect(plan.cpuVariants?.map((v) => v.name)).toEqual(['subgroup-rows', 'rows']);
    const [sg, rows] = plan.cpuVariants!;
    const sizes = new Map([['B', 3]]);
    expect(evaluate(rows.workgroups, sizes)).toBe(3 * Math.ceil(300 / ROWS) * Math.ceil(260 / 4 / (rowsInvocations(260) * COLUMN_VECS)));
    expect(evaluate(sg.workgroups, sizes)).toBe(3 * Math.ceil(300 / SUBGROUP_ROWS) * Math.ceil(260 / 4 / (rowsInvocations(260, SUBGROUP_COLUMN_VECS) * SUBGROUP_COLUMN_VECS)));
    for (const v of [sg, rows]) expect(evaluate(v.requires!, sizes)).toBe(64);
    // x @ w + b, relu: the fused kernel's CPU variant is the rows kernel with the epilogue's store
    const x = value({ dtype: 'f32', shape: [sym('B'), 20] });
    const w = value({ dtype: 'f32', shape: [20, 16] });
    const b = value({ dtype: 'f32', shape: [16] });
    const m = node('matmul', [x, w], {});
    const add = node('add', [m.outputs[0], b], {});
    const g: Graph = { name: 'g', inputs: [x, w, b].map((v, i) => ({ name: `i${i}`, value: v, span })), params: [], state: [], nodes: [m, add], outputs: new Map([['y', add.outputs[0]]]), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
    const fused = fuseWithReport(g).graph.nodes.find((n) => n.op === FUSED_MATMUL_OP)!;
    const [fp] = lowerNode(fused);
    expect(fp.cpuVariants?.map((v) => v.wgsl.match(/CPU (subgroup )?rows variant/)?.[0])).toEqual(['CPU subgroup rows variant', 'CPU rows variant']);
    for (const v of fp.cpuVariants!) expect(v.wgsl).toMatch(/epilogue\(oBase \+ r \* n \+ c0 \* 4u \+ 3u/);
  });

  it('both give the base tiled kernel bit for bit on edge shapes, A transposed, broadcast batches, wide n and k off the broadcast round', async () => {
    const device = await getDevice();
    const CASES: [Spec, Spec, Attrs, Record<string, number>][] = [
      [[1, 1], [1, 4], {}, {}],
      [[130, 36], [36, 132], {}, {}],
      [[67, 33], [33, 128], {}, {}],
      [[9, 200], [200, 8], {}, {}],
      [[13, 5], [5, 520], {}, {}],
      [[2, 1, 70, 20], [1, 3, 20, 68], {}, {}],
      [['B', 65, 64], [64, 40], {}, { B: 3 }],
      [[12, 'B'], ['B', 136], {}, { B: 37 }],
      [[40, 130], [40, 72], { transpose_a: true }, {}],
      [[37, 66], [37, 20], { transpose_a: true }, {}],
      [[2, 36, 11], [36, 4], { transpose_a: true }, {}],
      [[17, 3], [3, 12], {}, {}],
      [[33, 6], [33, 20], { transpose_a: true }, {}],
      [[3, 18, 41], [41, 16], {}, {}],
      // B read element by element: transposed, n odd, n symbolic
      [[37, 29], [70, 29], { transpose_b: true }, {}],
      [[2, 20, 9], [2, 300, 9], { transpose_b: true }, {}],
      [[19, 24], [24, 10], {}, {}],
      [[33, 7], [33, 'N'], { transpose_a: true }, { N: 45 }],
      [['B', 17, 6], ['B', 6, 3], {}, { B: 2 }],
      [[5, 6], [6, 1], {}, {}],
    ];
    const launches: Launch[] = [];
    const labels: string[] = [];
    const owners: { base: number; variants: string[] }[] = [];
    let seed = 1;
    for (const [sa, sb, attrs, sz] of CASES) {
      const sizes = new Map(Object.entries(sz));
      const mm = matmulNode(sa, sb, attrs);
      const base = lowerMatmul(mm);
      const u = matmulUniforms(base, sizes);
      const variants = rowsOf(mm);
      expect(variants.length, `${sa} @ ${sb}`).toBeGreaterThan(0);
      for (const v of variants) expect((await compile(device, v.wgsl)).messages).toEqual([]);
      const inputs = [random(bind(sa, sizes), seed++), random(bind(sb, sizes), seed++)];
      const common = { op: 'matmul', inputs, inShapes: u.inShapes, uniform: u.data, outShape: u.outShape, outDtype: 'f32' as const };
      const label = `[${sa}] @ [${sb}] ${JSON.stringify(attrs)} ${JSON.stringify(sz)}`;
      launches.push({ ...common, wgsl: base.wgsl, dispatch: u.workgroups === 0 ? null : dispatchSize(u.workgroups, 1) });
      for (const v of variants) {
        const groups = evaluate(v.workgroups, sizes);
        launches.push({ ...common, wgsl: v.wgsl, dispatch: groups === 0 ? null : dispatchSize(groups, 1) });
      }
      labels.push(label);
      owners.push({ base: launches.length - 1 - variants.length, variants: variants.map((v) => v.name) });
    }
    const outs = await runLaunches(device, launches);
    let scalar = 0;
    owners.forEach(({ base, variants }, c) => {
      expect(outs[base].data.some((v) => v !== 0), labels[c]).toBe(true);
      variants.forEach((name, i) => expect(bits(outs[base + 1 + i]), `${labels[c]} (${name})`).toEqual(bits(outs[base])));
      if (variants.includes('subgroup-rows-scalar')) scalar++;
    });
    expect(scalar).toBe(6);
  });

  it('fused epilogues (bias, ReLU, a residual) give the tiled kernel\'s bits; an empty k keeps the blocked kernel', async () => {
    const device = await getDevice();
    const specs: { sa: Spec; sb: Spec; attrs: Attrs; sizes: Record<string, number> }[] = [
      { sa: ['B', 30], sb: [30, 24], attrs: {}, sizes: { B: 19 } },
      { sa: [30, 'B'], sb: [30, 64], attrs: { transpose_a: true }, sizes: { B: 70 } },
      { sa: ['K', 'M'], sb: ['K', 16], attrs: { transpose_a: true }, sizes: { K: 0, M: 9 } },
      // B element by element
      { sa: ['B', 30], sb: [10, 30], attrs: { transpose_b: true }, sizes: { B: 19 } },
      { sa: ['B', 13], sb: [13, 21], attrs: {}, sizes: { B: 35 } },
    ];
    const jobs = specs.map(({ sa, sb, attrs, sizes }) => {
      const x = value({ dtype: 'f32', shape: dims(sa) });
      const w = value({ dtype: 'f32', shape: dims(sb) });
      const m = node('matmul', [x, w], attrs);
      const n = m.outputs[0].type.shape;
      const bias = value({ dtype: 'f32', shape: [n[1]] });
      const res = value({ dtype: 'f32', shape: n });
      const add = node('add', [m.outputs[0], bias], {});
      const zero = node('full', [], { shape: [], value: 0, dtype: 'f32' });
      const relu = node('maximum', [add.outputs[0], zero.outputs[0]], {});
      const out = node('add', [relu.outputs[0], res], {});
      const inputs = [x, w, bias, res].map((v, i) => ({ name: `i${i}`, value: v, span }));
      const graph: Graph = { name: 'g', inputs, params: [], state: [], nodes: [m, add, zero, relu, out], outputs: new Map([['y', out.outputs[0]]]), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
      const fused = fuseWithReport(graph).graph;
      expect(fused.nodes.filter((k) => k.op === FUSED_MATMUL_OP).length).toBe(1);
      const bound = new Map(Object.entries(sizes));
      const feeds = new Map(inputs.map((i, j) => [i.name, random(i.value.type.shape.map((d) => evaluate(d, bound)), 100 + j)]));
      return { graph: fused, feeds, sizes: bound };
    });
    const [tiled, cpu, plain] = [await runGraphs(device, jobs, { variant: 'gpu' }), await runGraphs(device, jobs, { variant: 'cpu' }), await runGraphs(device, jobs, { variant: 'cpu-plain' })];
    jobs.forEach((_, i) => expect(Array.from(cpu[i].get('y')!), `case ${i} (subgroup rows)`).toEqual(Array.from(tiled[i].get('y')!)));
    jobs.forEach((_, i) => expect(Array.from(plain[i].get('y')!), `case ${i} (rows)`).toEqual(Array.from(tiled[i].get('y')!)));
    // the empty-k case ran (relu(bias) + residual): not all zeros
    expect(Array.from(cpu[2].get('y')!).some((w) => w !== 0)).toBe(true);
  });

  it('the runtime runs them on CPU kernels where k > 0 (the subgroup one where the device has subgroups of 8+ lanes) and the blocked kernel where k = 0; GPU kernels never', async () => {
    const text = 'model Gram {\n  input x: f32[B, 8]\n  input z: f32[B, 16]\n  output y = transpose(x, [1, 0]) @ z\n}\n';
    const compiled = compileSource(text, 'gram.dl');
    expect(compiled.diagnostics).toEqual([]);
    const program = compiled.programs[0];
    const g = program.graphs.predict;
    const n = g.kernels.findIndex((k) => k.op === 'matmul');
    const k = g.kernels[n];
    expect(k.cpuVariants?.map((v) => v.name)).toEqual(['subgroup-rows', 'rows']);
    const [sg, rows] = k.cpuVariants!;
    const device = await getDevice();
    // the test device (lavapipe) has subgroups of 8 lanes
    expect((device as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo?.subgroupMinSize).toBeGreaterThanOrEqual(8);
    for (const [kernels, subgroups] of [['cpu', true], ['cpu', false], ['gpu', true]] as const) {
      const model = await Model.create(program, { device, kernels, subgroups, seed: 1 });
      const ex = (model as unknown as { executor: { reserve(g: unknown, s: Map<string, number>): void; graphs: Map<string, { grids: ({ shader: number } | null)[] }> } }).executor;
      const chosen = (B: number) => {
        ex.reserve(g, new Map([['B', B]]));
        return ex.graphs.get(g.name)!.grids[n]!.shader;
      };
      if (kernels === 'cpu') {
        expect(chosen(32)).toBe(subgroups ? sg.shader : rows.shader);
        expect(chosen(0)).toBe(k.cpuShader);
        // and it computes x^T z
        const x = Float32Array.from({ length: 3 * 8 }, (_, i) => (i % 5) - 2);
        const z = Float32Array.from({ length: 3 * 16 }, (_, i) => (i % 7) - 3);
        const y = (await model.predict({ x, z })).y as Float32Array;
        const want = Array.from({ length: 8 * 16 }, (_, e) => [0, 1, 2].reduce((s, b) => s + x[b * 8 + Math.floor(e / 16)] * z[b * 16 + (e % 16)], 0));
        expect(Array.from(y)).toEqual(want);
      } else {
        expect([sg.shader, rows.shader]).not.toContain(chosen(32));
      }
      model.dispose();
    }
  });

  it('with B transposed the runtime runs the element-by-element subgroup variant on CPU kernels with subgroups, else the blocked kernel', async () => {
    const text = 'model Scores {\n  input q: f32[B, 12]\n  input kv: f32[20, 12]\n  output y = q @ transpose(kv, [1, 0])\n}\n';
    const compiled = compileSource(text, 'scores.dl');
    expect(compiled.diagnostics).toEqual([]);
    const program = compiled.programs[0];
    const g = program.graphs.predict;
    const n = g.kernels.findIndex((k) => k.op === 'matmul');
    const k = g.kernels[n];
    expect(k.cpuVariants?.map((v) => v.name)).toEqual(['subgroup-rows-scalar']);
    const device = await getDevice();
    const q = Float32Array.from({ length: 5 * 12 }, (_, i) => ((i * 37) % 11) - 5);
    const kv = Float32Array.from({ length: 20 * 12 }, (_, i) => ((i * 17) % 13) - 6);
    const want = Array.from({ length: 5 * 20 }, (_, e) => Array.from({ length: 12 }, (_, c) => q[Math.floor(e / 20) * 12 + c] * kv[(e % 20) * 12 + c]).reduce((s, v) => s + v, 0));
    for (const subgroups of [true, false]) {
      const model = await Model.create(program, { device, kernels: 'cpu', subgroups, seed: 1 });
      const ex = (model as unknown as { executor: { reserve(g: unknown, s: Map<string, number>): void; graphs: Map<string, { grids: ({ shader: number } | null)[] }> } }).executor;
      ex.reserve(g, new Map([['B', 5]]));
      expect(ex.graphs.get(g.name)!.grids[n]!.shader, `subgroups: ${subgroups}`).toBe(subgroups ? k.cpuVariants![0].shader : k.cpuShader);
      expect(Array.from((await model.predict({ q, kv })).y as Float32Array)).toEqual(want);
      model.dispose();
    }
  });
});
