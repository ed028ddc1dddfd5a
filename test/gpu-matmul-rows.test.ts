// The CPU rows matmul (codegen/matmul-rows.ts) on Dawn: the base tiled kernel's bits on edge shapes, A transposed, broadcast batches, wide n and fused epilogues; where it applies; what the runtime picks on CPU adapters.
import { describe, expect, it } from 'vitest';
import type { Attrs, Graph, Node } from '../compiler/ir/types.ts';
import { evaluate, sym } from '../compiler/shapes/dim.ts';
import { dispatchSize } from '../compiler/codegen/elementwise.ts';
import { lowerMatmul, matmulPlans, matmulUniformDims, matmulUniforms } from '../compiler/codegen/matmul.ts';
import { COLUMN_VECS, lowerRowsMatmul, ROWS, rowsInvocations } from '../compiler/codegen/matmul-rows.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { compile, getDevice, type Launch, runGraphs, runLaunches } from './gpu-helpers.ts';
import { bind, bits, dims, matmulNode, opNode as node, random, SPAN as span, type Spec, value } from './matmul-helpers.ts';

const rowsOf = (n: Node) => lowerRowsMatmul(n, matmulUniformDims(lowerMatmul(n)));

describe('the CPU rows matmul', () => {
  it('applies where B is read along n in vec4s: n a known multiple of 4 and B not transposed', () => {
    expect(rowsOf(matmulNode([5, 7], [7, 12]))).not.toBeNull();
    expect(rowsOf(matmulNode([7, 5], [7, 12], { transpose_a: true }))).not.toBeNull();
    expect(rowsOf(matmulNode(['B', 7], [7, 10]))).toBeNull();
    expect(rowsOf(matmulNode([5, 7], [7, 'N']))).toBeNull();
    expect(rowsOf(matmulNode([5, 7], [12, 7], { transpose_b: true }))).toBeNull();
    // its invocations: 2W vec4 columns cover n, W a multiple of 8 from 8 to 64
    expect([4, 64, 128, 256, 260, 512, 4096].map(rowsInvocations)).toEqual([8, 8, 16, 32, 40, 64, 64]);
  });

  it('the plain matmul and fused_matmul offer it as their CPU variant, with its grid and k as the size it requires', () => {
    const mm = matmulNode(['B', 300, 64], [64, 260]);
    const [plan] = matmulPlans(mm);
    expect(plan.cpuVariant?.name).toBe('rows');
    const sizes = new Map([['B', 3]]);
    expect(evaluate(plan.cpuVariant!.workgroups, sizes)).toBe(3 * Math.ceil(300 / ROWS) * Math.ceil(260 / 4 / (rowsInvocations(260) * COLUMN_VECS)));
    expect(evaluate(plan.cpuVariant!.requires!, sizes)).toBe(64);
    // x @ w + b, relu: the fused kernel's CPU variant is the rows kernel with the epilogue's store
    const x = value({ dtype: 'f32', shape: [sym('B'), 20] });
    const w = value({ dtype: 'f32', shape: [20, 16] });
    const b = value({ dtype: 'f32', shape: [16] });
    const m = node('matmul', [x, w], {});
    const add = node('add', [m.outputs[0], b], {});
    const g: Graph = { name: 'g', inputs: [x, w, b].map((v, i) => ({ name: `i${i}`, value: v, span })), params: [], state: [], nodes: [m, add], outputs: new Map([['y', add.outputs[0]]]), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
    const fused = fuseWithReport(g).graph.nodes.find((n) => n.op === FUSED_MATMUL_OP)!;
    const [fp] = lowerNode(fused);
    expect(fp.cpuVariant?.wgsl).toMatch(/CPU rows variant/);
    expect(fp.cpuVariant?.wgsl).toMatch(/epilogue\(oBase \+ r \* n \+ c0 \* 4u \+ 3u/);
  });

  it('gives the base tiled kernel bit for bit on edge shapes, A transposed, broadcast batches and wide n', async () => {
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
    ];
    const launches: Launch[] = [];
    const labels: string[] = [];
    let seed = 1;
    for (const [sa, sb, attrs, sz] of CASES) {
      const sizes = new Map(Object.entries(sz));
      const mm = matmulNode(sa, sb, attrs);
      const base = lowerMatmul(mm);
      const u = matmulUniforms(base, sizes);
      const rows = rowsOf(mm)!;
      expect(rows, `${sa} @ ${sb}`).not.toBeNull();
      expect((await compile(device, rows.wgsl)).messages).toEqual([]);
      const inputs = [random(bind(sa, sizes), seed++), random(bind(sb, sizes), seed++)];
      const common = { op: 'matmul', inputs, inShapes: u.inShapes, uniform: u.data, outShape: u.outShape, outDtype: 'f32' as const };
      const label = `[${sa}] @ [${sb}] ${JSON.stringify(attrs)} ${JSON.stringify(sz)}`;
      launches.push({ ...common, wgsl: base.wgsl, dispatch: u.workgroups === 0 ? null : dispatchSize(u.workgroups, 1) });
      const groups = evaluate(rows.workgroups, sizes);
      launches.push({ ...common, wgsl: rows.wgsl, dispatch: groups === 0 ? null : dispatchSize(groups, 1) });
      labels.push(label);
    }
    const outs = await runLaunches(device, launches);
    for (let c = 0; c < CASES.length; c++) {
      expect(outs[2 * c].data.some((v) => v !== 0), labels[c]).toBe(true);
      expect(bits(outs[2 * c + 1]), labels[c]).toEqual(bits(outs[2 * c]));
    }
  });

  it('fused epilogues (bias, ReLU, a residual) give the tiled kernel\'s bits; an empty k keeps the blocked kernel', async () => {
    const device = await getDevice();
    const specs: { sa: Spec; sb: Spec; attrs: Attrs; sizes: Record<string, number> }[] = [
      { sa: ['B', 30], sb: [30, 24], attrs: {}, sizes: { B: 19 } },
      { sa: [30, 'B'], sb: [30, 64], attrs: { transpose_a: true }, sizes: { B: 70 } },
      { sa: ['K', 'M'], sb: ['K', 16], attrs: { transpose_a: true }, sizes: { K: 0, M: 9 } },
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
    const [tiled, cpu] = [await runGraphs(device, jobs, { variant: 'gpu' }), await runGraphs(device, jobs, { variant: 'cpu' })];
    jobs.forEach((_, i) => expect(Array.from(cpu[i].get('y')!), `case ${i}`).toEqual(Array.from(tiled[i].get('y')!)));
    // the empty-k case ran (relu(bias) + residual): not all zeros
    expect(Array.from(cpu[2].get('y')!).some((w) => w !== 0)).toBe(true);
  });

  it('the runtime runs it on CPU kernels where k > 0 and the blocked kernel where k = 0; GPU kernels never', async () => {
    const text = 'model Gram {\n  input x: f32[B, 8]\n  input z: f32[B, 16]\n  output y = transpose(x, [1, 0]) @ z\n}\n';
    const compiled = compileSource(text, 'gram.dl');
    expect(compiled.diagnostics).toEqual([]);
    const program = compiled.programs[0];
    const g = program.graphs.predict;
    const n = g.kernels.findIndex((k) => k.op === 'matmul');
    const k = g.kernels[n];
    expect(k.cpuVariant?.name).toBe('rows');
    const device = await getDevice();
    for (const kernels of ['cpu', 'gpu'] as const) {
      const model = await Model.create(program, { device, kernels, seed: 1 });
      const ex = (model as unknown as { executor: { reserve(g: unknown, s: Map<string, number>): void; graphs: Map<string, { grids: ({ shader: number } | null)[] }> } }).executor;
      const chosen = (B: number) => {
        ex.reserve(g, new Map([['B', B]]));
        return ex.graphs.get(g.name)!.grids[n]!.shader;
      };
      if (kernels === 'cpu') {
        expect(chosen(32)).toBe(k.cpuVariant!.shader);
        expect(chosen(0)).toBe(k.cpuShader);
        // and it computes x^T z
        const x = Float32Array.from({ length: 3 * 8 }, (_, i) => (i % 5) - 2);
        const z = Float32Array.from({ length: 3 * 16 }, (_, i) => (i % 7) - 3);
        const y = (await model.predict({ x, z })).y as Float32Array;
        const want = Array.from({ length: 8 * 16 }, (_, e) => [0, 1, 2].reduce((s, b) => s + x[b * 8 + Math.floor(e / 16)] * z[b * 16 + (e % 16)], 0));
        expect(Array.from(y)).toEqual(want);
      } else {
        expect(chosen(32)).not.toBe(k.cpuVariant!.shader);
      }
      model.dispose();
    }
  });
});
