// The GPU matmul variants on Dawn: every wide tier (codegen/matmul-wide.ts) gives the base tiled kernel's bits on edge shapes, transposes, broadcast batches and fused epilogues; split k (codegen/matmul-split.ts) matches float64; the runtime picks by grid size.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Attrs } from '../compiler/ir/types.ts';
import { evaluate } from '../compiler/shapes/dim.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { dispatchSize } from '../compiler/codegen/elementwise.ts';
import { lowerMatmul, matmulPlans, matmulUniformDims, matmulUniforms } from '../compiler/codegen/matmul.ts';
import { lowerWideMatmul, SWEEP_TIERS, tierInvocations, WIDE_TIERS, wideWorkgroups } from '../compiler/codegen/matmul-wide.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { lowerSplitMatmul, SPLIT_MAX_TILES } from '../compiler/codegen/matmul-split.ts';
import { compile, getDevice, type Launch, runLaunches } from './gpu-helpers.ts';
import { argsOf } from './helpers.ts';
import { bind, bits, matmulNode, random, type Spec } from './matmul-helpers.ts';

describe('wide matmul tiers', () => {
  it('every tier is valid WGSL within WebGPU default limits (256 invocations, 16 KiB of workgroup memory)', async () => {
    const device = await getDevice();
    for (const tier of SWEEP_TIERS) {
      expect(tierInvocations(tier)).toBeLessThanOrEqual(256);
      expect(((tier.tm + tier.tn) * tier.tk * 4) / 1024).toBeLessThanOrEqual(16);
      const c = await compile(device, lowerWideMatmul(matmulNode([2, 'M', 64], [64, 'N'], {}), tier));
      expect(c.messages, tier.name).toEqual([]);
      const t = await compile(device, lowerWideMatmul(matmulNode([64, 'M'], ['N', 64], { transpose_a: true, transpose_b: true }), tier));
      expect(t.messages, `${tier.name} transposed`).toEqual([]);
    }
  });

  it('the plain matmul offers the compiler tiers as GPU variants, largest first, with their tile counts', () => {
    const node = matmulNode(['B', 300, 64], [64, 260], {});
    const [plan] = matmulPlans(node);
    expect(plan.wide!.map((w) => w.name)).toEqual([...WIDE_TIERS.map((t) => t.name), 'split']);
    const sizes = new Map([['B', 3]]);
    // 3 batches x ceil(300 / 128) x ceil(260 / 128) tiles of 128, 3 x 5 x 5 of 64; split k keeps the 32x32 grid
    expect(plan.wide!.map((w) => evaluate(w.workgroups, sizes))).toEqual([...WIDE_TIERS.map((t) => 3 * Math.ceil(300 / t.tm) * Math.ceil(260 / t.tn)), 3 * 10 * 9]);
    expect(plan.wide!.at(-1)!.maxBaseWorkgroups).toBe(SPLIT_MAX_TILES);
  });

  it('gives the base tiled kernel bit for bit on edge shapes, transposes, broadcast batches and scalar loads', async () => {
    const device = await getDevice();
    // [a, b, attrs, sizes]: shapes straddling tile edges, k past several steps, vec4 and scalar access
    const CASES: [Spec, Spec, Attrs, Record<string, number>][] = [
      [[1, 1], [1, 1], {}, {}],
      [[130, 36], [36, 132], {}, {}],
      [[67, 33], [33, 129], {}, {}],
      [[200, 9], [9, 70], {}, {}],
      [[2, 1, 70, 20], [1, 3, 20, 68], {}, {}],
      [['B', 65, 64], [64, 40], {}, { B: 3 }],
      [[12, 'B'], ['B', 136], {}, { B: 37 }],
      [[12, 'B'], ['B', 16], {}, { B: 0 }],
      [[40, 130], [40, 72], { transpose_a: true }, {}],
      [[37, 66], [37, 20], { transpose_a: true }, {}],
      [[130, 24], [70, 24], { transpose_b: true }, {}],
      [[65, 21], [129, 21], { transpose_b: true }, {}],
      [[2, 36, 132], [68, 36], { transpose_a: true, transpose_b: true }, {}],
    ];
    const launches: Launch[] = [];
    const labels: string[] = [];
    let seed = 1;
    for (const [sa, sb, attrs, sz] of CASES) {
      const sizes = new Map(Object.entries(sz));
      const node = matmulNode(sa, sb, attrs);
      const base = lowerMatmul(node);
      const u = matmulUniforms(base, sizes);
      const inputs = [random(bind(sa, sizes), seed++), random(bind(sb, sizes), seed++)];
      const common = { op: 'matmul', inputs, inShapes: u.inShapes, uniform: u.data, outShape: u.outShape, outDtype: 'f32' as const };
      const label = `[${sa}] @ [${sb}] ${JSON.stringify(attrs)} ${JSON.stringify(sz)}`;
      launches.push({ ...common, wgsl: base.wgsl, dispatch: u.workgroups === 0 ? null : dispatchSize(u.workgroups, 1) });
      labels.push(`${label} base`);
      for (const tier of SWEEP_TIERS) {
        const groups = evaluate(wideWorkgroups(tier, matmulUniformDims(base)), sizes);
        launches.push({ ...common, wgsl: lowerWideMatmul(node, tier), dispatch: groups === 0 ? null : dispatchSize(groups, 1) });
        labels.push(`${label} ${tier.name}`);
      }
    }
    const outs = await runLaunches(device, launches);
    const per = SWEEP_TIERS.length + 1;
    for (let c = 0; c < CASES.length; c++) {
      const want = outs[c * per];
      // the base is right (against a direct sum) before it is the reference
      const [sa, sb, attrs, sz] = CASES[c];
      const sizes = new Map(Object.entries(sz));
      const la = launches[c * per].inputs;
      const [m, k] = attrs.transpose_a ? [la[0].shape.at(-1)!, la[0].shape.at(-2)!] : [la[0].shape.at(-2)!, la[0].shape.at(-1)!];
      const n = attrs.transpose_b ? la[1].shape.at(-2)! : la[1].shape.at(-1)!;
      if (bind(sa, sizes).length === 2 && bind(sb, sizes).length === 2 && m * n > 0) {
        const at = (i: number, q: number) => la[0].data[attrs.transpose_a ? q * m + i : i * k + q];
        const bt = (q: number, j: number) => la[1].data[attrs.transpose_b ? j * k + q : q * n + j];
        let s = 0;
        for (let q = 0; q < k; q++) s += at(m - 1, q) * bt(q, n - 1);
        expect(want.data[m * n - 1], labels[c * per]).toBeCloseTo(s, 4);
      }
      for (let t = 1; t < per; t++) expect(bits(outs[c * per + t]), labels[c * per + t]).toEqual(bits(want));
    }
  });

  it('split k matches a float64 sum within 1e-5 of sum |a||b| on edge shapes, transposes, batches and long k', async () => {
    const device = await getDevice();
    const CASES: [Spec, Spec, Attrs, Record<string, number>][] = [
      [[1, 1], [1, 1], {}, {}],
      [[33, 200], [200, 65], {}, {}],
      [[40, 'B'], ['B', 36], {}, { B: 300 }],
      [[12, 'B'], ['B', 16], {}, { B: 0 }],
      [[2, 1, 9, 70], [1, 3, 70, 20], {}, {}],
      [[150, 37], [150, 44], { transpose_a: true }, {}],
      [[37, 129], [19, 129], { transpose_b: true }, {}],
      [[2, 100, 36], [68, 100], { transpose_a: true, transpose_b: true }, {}],
    ];
    const launches: Launch[] = [];
    let seed = 50;
    for (const [sa, sb, attrs, sz] of CASES) {
      const sizes = new Map(Object.entries(sz));
      const node = matmulNode(sa, sb, attrs);
      const u = matmulUniforms(lowerMatmul(node), sizes);
      const inputs = [random(bind(sa, sizes), seed++), random(bind(sb, sizes), seed++)];
      launches.push({ op: 'matmul', wgsl: lowerSplitMatmul(node), inputs, inShapes: u.inShapes, uniform: u.data, outShape: u.outShape, outDtype: 'f32', dispatch: u.workgroups === 0 ? null : dispatchSize(u.workgroups, 1) });
    }
    const outs = await runLaunches(device, launches);
    CASES.forEach(([, , attrs], c) => {
      const [A, B] = launches[c].inputs;
      const got = outs[c];
      const [m, k] = attrs.transpose_a ? [A.shape.at(-1)!, A.shape.at(-2)!] : [A.shape.at(-2)!, A.shape.at(-1)!];
      const n = attrs.transpose_b ? B.shape.at(-2)! : B.shape.at(-1)!;
      const outBatch = got.shape.slice(0, -2);
      const count = outBatch.reduce((x, y) => x * y, 1);
      // broadcast batch index of an operand (shapes right-aligned, size-1 axes repeat)
      const offsetOf = (shape: readonly number[], flat: number) => {
        const bs = shape.slice(0, -2);
        let rem = flat;
        let off = 0;
        let stride = 1;
        const idx: number[] = [];
        for (let d = outBatch.length - 1; d >= 0; d--) {
          idx[d] = rem % outBatch[d];
          rem = Math.floor(rem / outBatch[d]);
        }
        for (let d = bs.length - 1; d >= 0; d--) {
          const i = bs[d] === 1 ? 0 : idx[d + outBatch.length - bs.length];
          off += i * stride;
          stride *= bs[d];
        }
        return off;
      };
      for (let q = 0; q < count; q++) {
        const ao = offsetOf(A.shape, q) * m * k;
        const bo = offsetOf(B.shape, q) * k * n;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = 0;
            let mag = 0;
            for (let t = 0; t < k; t++) {
              const av = A.data[ao + (attrs.transpose_a ? t * m + i : i * k + t)];
              const bv = B.data[bo + (attrs.transpose_b ? j * k + t : t * n + j)];
              sum += av * bv;
              mag += Math.abs(av * bv);
            }
            const v = got.data[(q * m + i) * n + j];
            if (!(Math.abs(v - sum) <= 1e-5 * mag + 1e-30)) throw new Error(`case ${c}: [${q}, ${i}, ${j}] = ${v}, float64 ${sum}`);
          }
        }
      }
    });
  });

  it('a trained model gives the same bits with every compiler tier forced on its matmuls and fused epilogues (split k: within rounding)', async () => {
    // MnistMlp at a batch of 40: a plain matmul, fused bias + relu epilogues, transposed weight gradients
    const file = 'examples/mnist_mlp.dl';
    const args = 'hidden: 24';
    const compiled = compileSource(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([['MnistMlp', argsOf('MnistMlp', args)]]) });
    const program = compiled.programs.find((p) => p.model === 'MnistMlp')!;
    expect(program.graphs.steps[0].kernels.filter((k) => k.wide).length).toBeGreaterThanOrEqual(3);
    const device = await getDevice();
    const B = 40;
    const r = seededRandom(9);
    const batch = { image: Float32Array.from({ length: B * 784 }, () => r()), label: Int32Array.from({ length: B }, () => Math.floor(r() * 10)) };
    const run = async (wideKernels: string) => {
      const model = await Model.create(program, { device, kernels: 'gpu', seed: 4, wideKernels });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await model.trainStep(batch).values()).loss);
      const weights = new Uint8Array(await model.saveWeights());
      model.dispose();
      return { losses, weights };
    };
    const off = await run('off');
    for (const tier of WIDE_TIERS) {
      const got = await run(tier.name);
      expect(got.losses, tier.name).toEqual(off.losses);
      expect(Buffer.from(got.weights).equals(Buffer.from(off.weights)), tier.name).toBe(true);
    }
    // split k sums in another order: the same losses within rounding
    const split = await run('split');
    split.losses.forEach((l, i) => expect(Math.abs(l - off.losses[i])).toBeLessThan(1e-5 * Math.abs(off.losses[i])));
  });

  it('the runtime picks the first tier with enough tiles at the bound batch, else the base kernel', async () => {
    const text = 'model Proj {\n  input x: f32[B, 64]\n  param w: f32[64, 256] = zeros\n  output y = x @ w\n}\n';
    const compiled = compileSource(`use std.init.{zeros}\n${text}`, 'proj.dl');
    expect(compiled.diagnostics).toEqual([]);
    const program = compiled.programs[0];
    const g = program.graphs.predict;
    const n = g.kernels.findIndex((k) => k.op === 'matmul');
    const k = g.kernels[n];
    const model = await Model.create(program, { device: await getDevice(), kernels: 'gpu', seed: 1 });
    const ex = (model as unknown as { executor: { reserve(g: unknown, s: Map<string, number>): void; graphs: Map<string, { grids: ({ shader: number; x: number } | null)[] }> } }).executor;
    const chosen = (B: number) => {
      ex.reserve(g, new Map([['B', B]]));
      const grid = ex.graphs.get(g.name)!.grids[n]!;
      return k.wide!.find((w) => w.shader === grid.shader)?.name ?? (grid.shader === k.shader ? 'base' : 'other');
    };
    // 128 x 128 tiles: B / 128 * 2; 64 x 128: B / 64 * 2; 64 x 64: B / 64 * 4; the base kernel's 32 x 32: B / 32 * 8
    expect(chosen(16384)).toBe(WIDE_TIERS[0].name);
    expect(chosen(4096)).toBe(WIDE_TIERS[1].name);
    expect(chosen(2048)).toBe(WIDE_TIERS[2].name);
    expect(chosen(1600)).toBe('base');
    // 1024 / 32 x 8 = 256 tiles: split k
    expect(chosen(1024)).toBe('split');
    model.dispose();
    const cpu = await Model.create(program, { device: await getDevice(), kernels: 'cpu', seed: 1 });
    const cx = (cpu as unknown as { executor: typeof ex }).executor;
    cx.reserve(g, new Map([['B', 16384]]));
    // CPU kernels never run a wide tier: a rows variant here (test/gpu-matmul-rows.test.ts)
    expect(k.cpuVariants!.map((v) => v.shader)).toContain(cx.graphs.get(g.name)!.grids[n]!.shader);
    cpu.dispose();
  });
});
