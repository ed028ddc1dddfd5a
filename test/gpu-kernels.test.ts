// The whole-kernel lowerings (tiled batched matmul; reduce_sum, reduce_max, argmax) run on Dawn (lavapipe in CI) against the float64 interpreter.
import { describe, expect, it } from 'vitest';
import type { Attrs, DType, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { getOp, inferOp, isShapeError } from '../compiler/ops/index.ts';
import { type Dim, evaluate, sym } from '../compiler/shapes/dim.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { dispatchSize } from '../compiler/codegen/elementwise.ts';
import { lowerMatmul, matmulPlans, matmulUniforms, matmulVectorAccess, type MatmulKernel } from '../compiler/codegen/matmul.ts';
import { lowerReduce, reducePlans, reduceUniforms, type ReduceKernel } from '../compiler/codegen/reduce.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { compile, getDevice, runLaunches } from './gpu-helpers.ts';

// ---- a generic one-kernel executor ------------------------------------------------------------------

type Kernel = MatmulKernel | ReduceKernel;

interface KernelRun {
  readonly kernel: Kernel;
  readonly inputs: readonly Tensor[];
  readonly sizes: ReadonlyMap<string, number>;
  readonly maxWorkgroupsPerDim?: number;
}

function launch(kernel: Kernel, sizes: ReadonlyMap<string, number>) {
  return 'batchRank' in kernel ? matmulUniforms(kernel, sizes) : reduceUniforms(kernel, sizes);
}

/** Run a batch of matmul and reduction kernels through the shared executor; returns one output per run. */
function runKernels(device: GPUDevice, runs: readonly KernelRun[]): Promise<Tensor[]> {
  return runLaunches(
    device,
    runs.map((r) => {
      const { data, workgroups, outShape, inShapes } = launch(r.kernel, r.sizes);
      return {
        op: r.kernel.op,
        wgsl: r.kernel.wgsl,
        inputs: r.inputs,
        inShapes,
        uniform: data,
        outShape,
        outDtype: r.kernel.output.dtype,
        dispatch: workgroups === 0 ? null : dispatchSize(workgroups, 1, r.maxWorkgroupsPerDim),
      };
    }),
  );
}

// ---- inputs and nodes -------------------------------------------------------------------------------

type Spec = readonly (number | string)[];
const dims = (s: Spec): Dim[] => s.map((d) => (typeof d === 'number' ? d : sym(d)));
const bind = (s: Spec, sizes: ReadonlyMap<string, number>): number[] => s.map((d) => (typeof d === 'number' ? d : sizes.get(d)!));

let nextId = 1;
const value = (type: TensorType): Value => ({ id: nextId++, type });

function makeNode(op: string, types: readonly TensorType[], attrs: Attrs): Node {
  const r = inferOp(op, types, attrs);
  if (isShapeError(r)) throw new Error(r.message);
  return { op, inputs: types.map(value), attrs, outputs: r.map(value), span: { file: 'gpu-kernels.test', start: 0, end: 0 } };
}

function random(dtype: DType, shape: readonly number[], seed: number, gen: (r: () => number, i: number) => number): Tensor {
  const r = seededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, (_, i) => gen(r, i));
  return tensor(dtype, shape, dtype === 'f32' ? vals.map(Math.fround) : vals);
}

const abs = (t: Tensor): Tensor => ({ ...t, data: t.data.map(Math.abs) });

async function checkShaders(device: GPUDevice, kernels: readonly Kernel[]): Promise<number> {
  const unique = [...new Set(kernels.map((k) => k.wgsl))];
  const compiled = await Promise.all(unique.map((w) => compile(device, w)));
  compiled.forEach((c, i) => expect(c.messages, unique[i]).toEqual([]));
  return unique.length;
}

// ---- matmul -----------------------------------------------------------------------------------------

describe('matmul lowering on WebGPU', () => {
  it('is the kernel facet of the registry entry', () => {
    const lower = getOp('matmul')!.lower!;
    expect(lower.kind).toBe('kernel');
    expect(lower.kernel).toBe(matmulPlans);
  });

  it('matches the interpreter within 1e-5 relative (to sum |a||b|) scaled by k', async () => {
    const device = await getDevice();
    // [a shape, b shape, batch bindings]
    const CASES: [Spec, Spec, number[]][] = [
      [[1, 1], [1, 1], []],
      [[3, 5], [5, 7], []],
      [[17, 33], [33, 9], []],
      [[64, 64], [64, 64], []],
      [[33, 40], [40, 65], []],
      [[2, 3], [3, 0], []],
      [[2, 0], [0, 3], []],
      [[2, 3, 4, 5], [5, 6], []],
      [['B', 4, 5], [1, 5, 3], [1, 3, 7]],
      [[2, 1, 3, 4], [1, 5, 4, 2], []],
      [[3, 1, 40, 20], ['B', 20, 33], [2]],
      // the tiled kernel's vec4 loads (k, n multiples of 4) at odd m and across several k steps of 32
      [[1, 4], [4, 4], []],
      [[17, 33], [33, 36], []],
      [[70, 36], [36, 44], []],
      [[5, 100], [100, 8], []],
      [[2, 1, 37, 12], [1, 3, 12, 20], []],
      [['B', 9, 16], [16, 8], [1, 3]],
      // a symbolic k (a weight gradient over the batch): scalar loads, k = 0 too
      [[12, 'B'], ['B', 16], [0, 5, 33]],
    ];
    const runs: { run: KernelRun; want: Tensor; scale: Tensor; k: number; label: string }[] = [];
    let seed = 11;
    for (const [sa, sb, bs] of CASES) {
      const node = makeNode('matmul', [{ dtype: 'f32', shape: dims(sa) }, { dtype: 'f32', shape: dims(sb) }], {});
      const kernel = lowerMatmul(node);
      expect(getOp('matmul')!.lower!.kernel!(node)[0].wgsl).toBe(kernel.wgsl);
      for (const b of bs.length > 0 ? bs : [0]) {
        const sizes = new Map(bs.length > 0 ? [['B', b]] : []);
        const a = random('f32', bind(sa, sizes), seed++, (r) => r() * 2 - 1);
        const bt = random('f32', bind(sb, sizes), seed++, (r) => r() * 2 - 1);
        const def = getOp('matmul')!;
        const [want] = def.interpret([a, bt], {}, { sizes });
        const [scale] = def.interpret([abs(a), abs(bt)], {}, { sizes });
        const k = a.shape[a.shape.length - 1];
        runs.push({ run: { kernel, inputs: [a, bt], sizes }, want, scale, k, label: `[${sa}] @ [${sb}]${bs.length ? ` B=${b}` : ''}` });
        // the CPU variant: same grid, uniforms and bindings, an 8x8 block per invocation without barriers
        runs.push({ run: { kernel: lowerMatmul(node, { variant: 'blocked' }), inputs: [a, bt], sizes }, want, scale, k, label: `[${sa}] @ [${sb}]${bs.length ? ` B=${b}` : ''} blocked` });
      }
    }
    // One more: a grid folded into a second dimension (30 tiles on a 6 x 5 grid).
    {
      const node = makeNode('matmul', [{ dtype: 'f32', shape: dims([5, 40, 8]) }, { dtype: 'f32', shape: dims([8, 70]) }], {});
      const kernel = lowerMatmul(node);
      const a = random('f32', [5, 40, 8], 99, (r) => r() * 2 - 1);
      const bt = random('f32', [8, 70], 98, (r) => r() * 2 - 1);
      const sizes = new Map<string, number>();
      const [want] = getOp('matmul')!.interpret([a, bt], {}, { sizes });
      const [scale] = getOp('matmul')!.interpret([abs(a), abs(bt)], {}, { sizes });
      runs.push({ run: { kernel, inputs: [a, bt], sizes, maxWorkgroupsPerDim: 6 }, want, scale, k: 8, label: 'folded grid' });
      runs.push({ run: { kernel: lowerMatmul(node, { variant: 'blocked' }), inputs: [a, bt], sizes, maxWorkgroupsPerDim: 6 }, want, scale, k: 8, label: 'folded grid blocked' });
    }
    await checkShaders(device, runs.map((r) => r.run.kernel));
    const got = await runKernels(device, runs.map((r) => r.run));
    const bad: string[] = [];
    let worst = 0;
    runs.forEach(({ want, scale, k, label }, n) => {
      if (got[n].shape.join(',') !== want.shape.join(',')) return bad.push(`${label}: shape [${got[n].shape}] vs [${want.shape}]`);
      for (let i = 0; i < want.data.length; i++) {
        const e = Math.abs(got[n].data[i] - want.data[i]);
        const tol = 1e-5 * Math.max(k, 1) * Math.max(scale.data[i], 1e-30);
        worst = Math.max(worst, e / Math.max(scale.data[i] * Math.max(k, 1), 1e-30));
        if (!(e <= tol) && bad.length < 10) bad.push(`${label} [${i}]: gpu ${got[n].data[i]}, reference ${want.data[i]}`);
      }
    });
    if (process.env.DLC_GPU_VERBOSE) console.log(`matmul: worst error / (k sum|a||b|) ${worst.toExponential(2)}`);
    expect(bad).toEqual([]);
  });

  it('serves every batch size with one shader', () => {
    const node = makeNode('matmul', [{ dtype: 'f32', shape: dims(['B', 37, 29]) }, { dtype: 'f32', shape: dims([1, 29, 19]) }], {});
    const kernel = lowerMatmul(node);
    expect(kernel.wgsl).not.toMatch(/\b(37u|29u|19u)\b/);
    expect(matmulUniforms(kernel, new Map([['B', 6]])).outShape).toEqual([6, 37, 19]);
  });

  it('reads vec4s exactly where k and n are known multiples of 4, within the default workgroup limits', () => {
    // [a shape, b shape, vec4 A, vec4 B]
    const CASES: [Spec, Spec, boolean, boolean][] = [
      [['B', 5, 8], [8, 12], true, true],
      [[5, 7], [7, 12], false, true],
      [[5, 8], [8, 6], true, false],
      [[5, 'K'], ['K', 8], false, false],
      [[3, 0], [0, 4], false, false],
      [[3, 12], [12, 'N'], true, false],
      [[3, 4], [4, 0], true, false],
      [[2, 3, 4, 5], [5, 6], false, false],
    ];
    const binding = (wgsl: string, name: string) => new RegExp(`var<storage, read(_write)?> ${name}: array<(\\w+|vec4<f32>)>`).exec(wgsl)?.[2];
    for (const [sa, sb, va, vb] of CASES) {
      const node = makeNode('matmul', [{ dtype: 'f32', shape: dims(sa) }, { dtype: 'f32', shape: dims(sb) }], {});
      expect(matmulVectorAccess(node), `[${sa}] @ [${sb}]`).toEqual({ a: va, b: vb });
      const tiled = lowerMatmul(node).wgsl;
      expect([binding(tiled, 'a'), binding(tiled, 'b'), binding(tiled, 'out')], `[${sa}] @ [${sb}]`).toEqual([va ? 'vec4<f32>' : 'f32', vb ? 'vec4<f32>' : 'f32', vb ? 'vec4<f32>' : 'f32']);
      const blocked = lowerMatmul(node, { variant: 'blocked' }).wgsl;
      expect([binding(blocked, 'a'), binding(blocked, 'b'), binding(blocked, 'out')]).toEqual(['f32', 'f32', 'f32']);
      for (const wgsl of [tiled, blocked]) {
        const size = /@workgroup_size\(([\d, ]+)\)/.exec(wgsl)![1].split(',').reduce((x, y) => x * Number(y), 1);
        const shared = [...wgsl.matchAll(/var<workgroup> \w+: array<(vec4<f32>|f32), (\d+)>/g)].reduce((x, m) => x + Number(m[2]) * (m[1] === 'f32' ? 4 : 16), 0);
        expect(size).toBeLessThanOrEqual(256);
        expect(shared).toBeLessThanOrEqual(16384);
      }
      expect(/var<workgroup> tileA: array<vec4<f32>, 256>/.test(tiled)).toBe(true);
    }
    // transposed operands (A stored [k, m], B stored [n, k]) read vec4s along their own last axis: A^T when
    // m is a known multiple of 4 and k is known, B^T when k is; the output as without transposes
    const TRANSPOSED: [Spec, Spec, Attrs, boolean, boolean, boolean][] = [
      [[8, 12], [8, 6], { transpose_a: true }, true, false, false],
      [['B', 12], ['B', 8], { transpose_a: true }, false, false, false],
      [[5, 8], [6, 8], { transpose_b: true }, true, true, false],
      [[5, 7], [12, 7], { transpose_b: true }, false, false, true],
      [[2, 8, 4], [12, 8], { transpose_a: true, transpose_b: true }, true, true, true],
    ];
    for (const [sa, sb, attrs, va, vb, vo] of TRANSPOSED) {
      const node = makeNode('matmul', [{ dtype: 'f32', shape: dims(sa) }, { dtype: 'f32', shape: dims(sb) }], attrs);
      const label = `[${sa}] @ [${sb}] ${JSON.stringify(attrs)}`;
      expect(matmulVectorAccess(node), label).toEqual({ a: va, b: vb });
      const tiled = lowerMatmul(node).wgsl;
      expect([binding(tiled, 'a'), binding(tiled, 'b'), binding(tiled, 'out')], label).toEqual([va, vb, vo].map((v) => (v ? 'vec4<f32>' : 'f32')));
      expect(tiled).toContain('read transposed');
    }
  });

  it('vec4 and scalar loads give the same bits (one accumulation order)', async () => {
    const device = await getDevice();
    // the same product with k and n concrete (vec4 loads) and symbolic (scalar loads)
    const sizes = new Map([['K', 40], ['N', 12]]);
    const a = random('f32', [2, 7, 40], 5, (r) => r() * 2 - 1);
    const b = random('f32', [40, 12], 6, (r) => r() * 2 - 1);
    const kernels = [
      lowerMatmul(makeNode('matmul', [{ dtype: 'f32', shape: dims([2, 7, 40]) }, { dtype: 'f32', shape: dims([40, 12]) }], {})),
      lowerMatmul(makeNode('matmul', [{ dtype: 'f32', shape: dims([2, 7, 'K']) }, { dtype: 'f32', shape: dims(['K', 'N']) }], {})),
    ];
    expect(kernels[0].wgsl).toContain('a: array<vec4<f32>>');
    expect(kernels[1].wgsl).not.toContain('vec4<f32>>;');
    const [vec, scalar] = await runKernels(device, kernels.map((kernel) => ({ kernel, inputs: [a, b], sizes })));
    expect(vec.shape).toEqual([2, 7, 12]);
    expect(Array.from(vec.data)).toEqual(Array.from(scalar.data));
  });

  it('a model whose matmul sums over the batch runs an empty batch on both variants (k = 0 while the kernel writes zeros)', async () => {
    const text = 'model Gram {\n  input x: f32[B, 3]\n  input y: f32[B, 8]\n  output g = transpose(x) @ y\n}\n';
    const result = compileSource(text, 'gram.dl');
    expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const program = result.programs[0];
    const mm = program.graphs.predict.kernels.find((k) => k.op === 'matmul')!;
    // a k that may be 0 at run time: scalar loads (an empty buffer cannot back a vec4 binding)
    expect(program.shaders[mm.shader]).toContain('b: array<f32>');
    const device = await getDevice();
    for (const kernels of ['gpu', 'cpu'] as const) {
      const model = await Model.create(program, { device, seed: 1, kernels });
      try {
        for (const B of [0, 5]) {
          const x = Float32Array.from({ length: B * 3 }, (_, i) => (i % 7) - 3);
          const y = Float32Array.from({ length: B * 8 }, (_, i) => (i % 5) * 0.5);
          const want = Array.from({ length: 24 }, (_, e) => {
            let acc = 0;
            for (let r = 0; r < B; r++) acc += x[r * 3 + Math.floor(e / 8)] * y[r * 8 + (e % 8)];
            return acc;
          });
          const got = (await model.predict({ x, y })).g as Float32Array;
          expect(Array.from(got), `${kernels} B=${B}`).toEqual(want);
        }
      } finally {
        model.dispose();
      }
    }
  });
});

// ---- reductions -------------------------------------------------------------------------------------

const SUBSETS = [[], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]];
const RED_SHAPES: { shape: Spec; sizes: Map<string, number> }[] = [
  { shape: [3, 300, 5], sizes: new Map() },
  { shape: [2, 5, 520], sizes: new Map() },
  { shape: [1, 'B', 3], sizes: new Map([['B', 257]]) },
];

interface RedCase {
  node: Node;
  run: KernelRun;
  want: Tensor;
  scale?: Tensor;
  label: string;
}

function redCase(op: string, dtype: DType, spec: Spec, sizes: Map<string, number>, attrs: Attrs, x: Tensor, maxPerDim?: number): RedCase {
  const node = makeNode(op, [{ dtype, shape: dims(spec) }], attrs);
  const kernel = lowerReduce(node);
  const def = getOp(op)!;
  const [want] = def.interpret([x], attrs, { sizes });
  const scale = op === 'reduce_sum' && dtype === 'f32' ? def.interpret([abs(x)], attrs, { sizes })[0] : undefined;
  return { node, run: { kernel, inputs: [x], sizes, maxWorkgroupsPerDim: maxPerDim }, want, scale, label: `${op}(${dtype}) [${spec}] ${JSON.stringify(attrs)}` };
}

/** Every case again through the per-thread variant (one invocation per output, a sequential fold). */
function withPerThread(cases: readonly RedCase[]): RedCase[] {
  return [...cases, ...cases.map((c) => ({ ...c, run: { ...c.run, kernel: lowerReduce(c.node, { perThread: true }) }, label: `${c.label} per-thread` }))];
}

function compareReduce(cases: readonly RedCase[], got: readonly Tensor[]): string[] {
  const bad: string[] = [];
  cases.forEach(({ want, scale, label }, n) => {
    const g = got[n];
    if (g.shape.join(',') !== want.shape.join(',')) return bad.push(`${label}: shape [${g.shape}] vs [${want.shape}]`);
    for (let i = 0; i < want.data.length && bad.length < 10; i++) {
      const a = g.data[i];
      const w = want.data[i];
      const ok = scale ? Math.abs(a - w) <= 1e-5 * scale.data[i] : Number.isNaN(w) ? Number.isNaN(a) : Object.is(a, w) || a === w;
      if (!ok) bad.push(`${label} [${i}]: gpu ${a}, reference ${w}`);
    }
  });
  return bad;
}

const I32_SPECIAL = [-2147483648, 2147483647, -2147483647, -1, 0, 1, 1000003, 2000000000];
const int32s = (r: () => number) => (r() < 0.3 ? I32_SPECIAL[Math.floor(r() * I32_SPECIAL.length)] : Math.floor(r() * 2001) - 1000);

describe('reduction lowering on WebGPU', () => {
  it('is the kernel facet of the registry entries', () => {
    for (const op of ['reduce_sum', 'reduce_max', 'argmax']) {
      expect(getOp(op)!.lower?.kind).toBe('kernel');
      expect(getOp(op)!.lower?.kernel).toBe(reducePlans);
    }
  });

  it('reduce_sum and reduce_max match the interpreter over every axis subset, keepdims both ways', async () => {
    const device = await getDevice();
    const cases: RedCase[] = [];
    let seed = 1000;
    for (const { shape, sizes } of RED_SHAPES) {
      const concrete = bind(shape, sizes);
      for (const dtype of ['f32', 'i32'] as DType[]) {
        const x = random(dtype, concrete, seed++, dtype === 'f32' ? (r) => r() * 20 - 10 : int32s);
        for (const op of ['reduce_sum', 'reduce_max']) {
          for (const axes of SUBSETS) for (const keepdims of [false, true]) cases.push(redCase(op, dtype, shape, sizes, { axes, keepdims }, x));
        }
        // Negative axes name the same axes.
        cases.push(redCase('reduce_sum', dtype, shape, sizes, { axes: [-1, -3] }, x));
      }
    }
    // NaN propagates through max (sparse NaNs: some outputs NaN, some not); -inf and an all--inf row.
    const spec = [4, 300, 3];
    const special = random('f32', spec, 7, (r, i) => (i % 997 === 5 ? NaN : i < 900 ? -Infinity : r() * 4 - 2));
    for (const axes of SUBSETS) cases.push(redCase('reduce_max', 'f32', spec, new Map(), { axes }, special));
    // u32 wraps like i32; an empty reduced axis gives the identity; a folded grid of workgroups.
    const u = random('u32', [3, 260], 8, (r) => (r() < 0.5 ? 4294967295 - Math.floor(r() * 10) : Math.floor(r() * 100)));
    cases.push(redCase('reduce_sum', 'u32', [3, 260], new Map(), { axes: [1] }, u));
    cases.push(redCase('reduce_max', 'u32', [3, 260], new Map(), { axes: [0] }, u));
    const empty = tensor('f32', [3, 0], []);
    cases.push(redCase('reduce_max', 'f32', [3, 0], new Map(), { axes: [1] }, empty));
    cases.push(redCase('reduce_sum', 'f32', [3, 0], new Map(), { axes: [1] }, empty));
    cases.push(redCase('reduce_max', 'i32', [3, 0], new Map(), { axes: [1] }, tensor('i32', [3, 0], [])));
    const wide = random('i32', [37, 300], 9, int32s);
    cases.push(redCase('reduce_sum', 'i32', [37, 300], new Map(), { axes: [1] }, wide, 7)); // 37 workgroups on a 7 x 6 grid

    const all = withPerThread(cases);
    const shaders = await checkShaders(device, all.map((c) => c.run.kernel));
    const got = await runKernels(device, all.map((c) => c.run));
    if (process.env.DLC_GPU_VERBOSE) console.log(`reductions: ${all.length} cases, ${shaders} shaders`);
    expect(compareReduce(all, got)).toEqual([]);
  });

  it('argmax matches the interpreter: first index of the max, ties, NaN and -inf', async () => {
    const device = await getDevice();
    const cases: RedCase[] = [];
    let seed = 5000;
    for (const spec of [[3, 300, 5], [4, 1, 2], [2, 600, 1]]) {
      for (const dtype of ['f32', 'i32', 'u32'] as DType[]) {
        // Few distinct values: ties everywhere.
        const x = random(dtype, spec, seed++, (r) => Math.floor(r() * 4) - (dtype === 'u32' ? 0 : 2));
        for (const axis of [0, 1, 2, -1]) cases.push(redCase('argmax', dtype, spec, new Map(), { axis }, x));
      }
    }
    const big = random('i32', [2, 700], 3, int32s);
    cases.push(redCase('argmax', 'i32', [2, 700], new Map(), { axis: 1 }, big));
    // Rows: sparse NaNs, all NaN, all -inf, -inf and NaN, a max late in a long row.
    const rows = 5;
    const len = 520;
    const special = tensor(
      'f32',
      [rows, len],
      Array.from({ length: rows * len }, (_, i) => {
        const [r, j] = [Math.floor(i / len), i % len];
        if (r === 0) return j % 7 === 0 ? NaN : (j * 37) % 11;
        if (r === 1) return NaN;
        if (r === 2) return -Infinity;
        if (r === 3) return j % 2 ? NaN : -Infinity;
        return j === 513 || j === 519 ? 5 : -1;
      }),
    );
    cases.push(redCase('argmax', 'f32', [rows, len], new Map(), { axis: 1 }, special));
    cases.push(redCase('argmax', 'f32', [rows, len], new Map(), { axis: 0 }, special));
    cases.push(redCase('argmax', 'f32', ['B', 300], new Map([['B', 3]]), { axis: 1 }, random('f32', [3, 300], 4, (r) => Math.floor(r() * 3))));
    const all = withPerThread(cases);
    await checkShaders(device, all.map((c) => c.run.kernel));
    const got = await runKernels(device, all.map((c) => c.run));
    expect(compareReduce(all, got)).toEqual([]);
  });

  it('CPU adapters fold each output in one invocation where there are 64 outputs or more, chosen at the bound sizes', async () => {
    const f32 = (...shape: Dim[]): TensorType => ({ dtype: 'f32', shape });
    // symbolic outputs, long rows: a tree on GPUs; the per-thread fold on CPUs once B >= 64
    const [plan] = reducePlans(makeNode('reduce_sum', [f32(sym('B'), 100)], { axes: [1] }));
    expect(plan.cpuVariants?.map((v) => v.name)).toEqual(['per-thread']);
    const [perThread] = plan.cpuVariants!;
    expect(perThread.wgsl).toMatch(/one invocation per output element/);
    expect(evaluate(perThread.requires!, new Map([['B', 64]]))).toBe(1);
    expect(evaluate(perThread.requires!, new Map([['B', 63]]))).toBe(0);
    // few concrete outputs, or a kernel already per thread: no CPU variant
    expect(reducePlans(makeNode('reduce_sum', [f32(10, 100)], { axes: [1] }))[0].cpuVariants).toBeUndefined();
    expect(reducePlans(makeNode('reduce_sum', [f32(sym('B'), 8)], { axes: [1] }))[0].cpuVariants).toBeUndefined();
    // the runtime picks it on CPU kernels by the bound batch, and it sums each row in order
    const compiled = compileSource('model Rows {\n  input x: f32[B, 100]\n  output y = sum(x, axis: 1)\n}\n', 'rows.dl');
    expect(compiled.diagnostics).toEqual([]);
    const program = compiled.programs[0];
    const g = program.graphs.predict;
    const n = g.kernels.findIndex((k) => k.op === 'reduce_sum');
    const k = g.kernels[n];
    const model = await Model.create(program, { device: await getDevice(), kernels: 'cpu', seed: 1 });
    const ex = (model as unknown as { executor: { reserve(g: unknown, s: Map<string, number>): void; graphs: Map<string, { grids: ({ shader: number } | null)[] }> } }).executor;
    for (const B of [5, 70]) {
      ex.reserve(g, new Map([['B', B]]));
      expect(ex.graphs.get(g.name)!.grids[n]!.shader, `B = ${B}`).toBe(B >= 64 ? k.cpuVariants![0].shader : k.shader);
      const x = Float32Array.from({ length: B * 100 }, (_, i) => Math.fround(((i * 7919) % 1000) / 997 - 0.5));
      const y = (await model.predict({ x })).y as Float32Array;
      // the f32 Kahan sum in order (compensatedAdd), then the compensation taken off
      const want = Array.from({ length: B }, (_, r) => {
        let s = 0;
        let c = 0;
        for (let j = 0; j < 100; j++) {
          const y = Math.fround(x[r * 100 + j] - c);
          const t = Math.fround(s + y);
          c = Number.isFinite(t) ? Math.fround(Math.fround(t - s) - y) : 0;
          s = t;
        }
        return Math.fround(s - c);
      });
      // per thread: that sum, exactly; the tree: within rounding
      if (B >= 64) expect(Array.from(y)).toEqual(want);
      else y.forEach((v, r) => expect(Math.abs(v - want[r])).toBeLessThan(1e-4));
    }
    model.dispose();
  });
});
