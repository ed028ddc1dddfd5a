// Every elementwise op lowered to WGSL, run on Dawn (lavapipe in CI) over broadcasting shapes of rank 0..4 and a run-time batch B, against the float64 interpreter.
import { describe, expect, it } from 'vitest';
import type { Attrs, DType, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { allOps, getOp, inferOp, isShapeError } from '../compiler/ops/index.ts';
import { type Dim, evaluate, isConcrete, sym } from '../compiler/shapes/dim.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { dispatchSize, lowerElementwise, type ElementwiseKernel } from '../compiler/codegen/elementwise.ts';
import { compile, getDevice, runElementwise, type ElementwiseRun } from './gpu-helpers.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';

const UNARY = ['neg', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'abs', 'sign', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'floor', 'ceil', 'logical_not'];
const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'mod', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logical_and', 'logical_or'];
const ALL = [...UNARY, ...BINARY, 'select', 'cast'];
const STORAGE_DTYPES: DType[] = ['f32', 'i32', 'u32', 'bool'];

// ---- tolerances -----------------------------------------------------------------------------------
//
// f32 on the GPU against the f64 reference: |gpu - ref| <= atol + rtol * |ref|. Correctly rounded
// operations (+ - * / sqrt, conversions, floor, ceil, abs, neg, max, min, mod with small quotients) are
// within half an ulp, so 1e-6 relative (about 8 ulp) is slack enough. WGSL's transcendentals carry
// ulp or absolute error bounds (exp 3 + 2|x| ulp, log 2^-21 absolute near 1, sin/cos 2^-11 absolute
// on [-pi, pi] by the spec, though lavapipe's are far better), so they get 1e-5 relative plus a small
// absolute term near zero crossings (Dawn's Vulkan tanh goes through exp and loses relative accuracy
// near 0, about 1.5e-7 absolute; log near 1 is within 2^-21 absolute); pow is exp2(b * log2|a|) and
// gets 2e-5 relative; erf is the polynomial of compiler/ops/elementwise.ts (measured 2.1e-7 absolute
// on [-6, 6] on lavapipe), allowed 5e-7 absolute plus 1e-6 relative. tanh, log1p and expm1 are series
// near 0 in compiler/ops/elementwise.ts, so they keep their relative accuracy down to 1e-30 (no
// absolute term: tanh(1e-7) through exp is 1.19e-7, 19 % off).
interface Tol {
  rtol: number;
  atol: number;
}
const EXACT_ROUNDED: Tol = { rtol: 1e-6, atol: 0 };
const TOL: Record<string, Tol> = {
  exp: { rtol: 1e-5, atol: 0 },
  log: { rtol: 1e-5, atol: 1e-6 },
  rsqrt: { rtol: 2e-6, atol: 0 },
  sin: { rtol: 1e-5, atol: 1e-6 },
  cos: { rtol: 1e-5, atol: 1e-6 },
  tanh: { rtol: 2e-6, atol: 0 },
  log1p: { rtol: 2e-6, atol: 0 },
  expm1: { rtol: 1e-5, atol: 0 }, // exp's bound from |x| = 0.5 on
  sigmoid: { rtol: 1e-5, atol: 1e-7 },
  erf: { rtol: 1e-6, atol: 5e-7 },
  pow: { rtol: 2e-5, atol: 1e-6 },
};

// ---- inputs ---------------------------------------------------------------------------------------


type Gen = (r: () => number, i: number) => number;
const pick = (xs: readonly number[]): Gen => (r) => xs[Math.floor(r() * xs.length)];
const uniform = (lo: number, hi: number): Gen => (r) => lo + (hi - lo) * r();
/** Quarter steps in [-4, 4]: equal pairs happen, quotients stay exact. */
const grid: Gen = (r) => Math.round((r() * 2 - 1) * 16) / 4;
const gridNonzero: Gen = (r) => {
  const v = grid(r, 0);
  return v === 0 ? 0.25 : v;
};
const I32_SPECIAL = [-2147483648, 2147483647, -2147483647, -1, 0, 1, 2, -3, 7, 46341, -65536, 1000003];
const U32_SPECIAL = [0, 1, 2, 3, 7, 2147483648, 4294967295, 4294967294, 65536, 123456789];
const ints: Gen = (r) => (r() < 0.4 ? pick(I32_SPECIAL)(r, 0) : Math.floor(r() * 41) - 20);
const uints: Gen = (r) => (r() < 0.4 ? pick(U32_SPECIAL)(r, 0) : Math.floor(r() * 40));
const bools: Gen = (r) => (r() < 0.5 ? 1 : 0);
/** NaN must come out as NaN (never a saturated value), and the infinities as the limits. */
const NONFINITE = [NaN, Infinity, -Infinity];
const CAST_F32 = [NaN, Infinity, -Infinity, -0.5, 0.7, -3.9, 3e9, -3e9, 5e9, 2147483520, -2147483648, 1e10, 255.5, 0, 1, -1, 4294967040];

/** The value generator for operand `k` of `op` at dtype `d`. */
function generator(op: string, d: DType, k: number): Gen {
  if (d === 'bool') return bools;
  if (d === 'i32') return ints;
  if (d === 'u32') return uints;
  switch (op) {
    case 'log':
    case 'sqrt':
    case 'rsqrt':
      return uniform(0.01, 50);
    case 'exp':
      return (r) => (r() < 0.1 ? pick(NONFINITE)(r, 0) : uniform(-10, 10)(r, 0));
    case 'sin':
    case 'cos':
      return uniform(-6.5, 6.5);
    case 'tanh':
      // tiny values, both sides of the series' bound 0.5, and saturation
      return (r) => (r() < 0.4 ? pick([-200, -30, -9.5, 9.5, 30, 200, 1e-30, -1e-8, 1e-7, -1e-6, 1e-4, -1e-3, 0.4999, -0.5, 0.5001, 0, ...NONFINITE])(r, 0) : uniform(-8, 8)(r, 0));
    case 'log1p':
      // tiny values, the series' bounds -0.5 and 1, -1 (-inf) and below (NaN), large values
      return (r) => (r() < 0.4 ? pick([1e-30, -1e-8, 1e-7, -1e-6, 1e-4, -1e-3, -0.5, -0.5001, 1, 1.0001, -0.999, -1, 0, 1e6, 3e30, ...NONFINITE])(r, 0) : uniform(-0.9, 10)(r, 0));
    case 'expm1':
      return (r) => (r() < 0.4 ? pick([1e-30, -1e-8, 1e-7, -1e-6, 1e-4, -1e-3, 0.4999, -0.5, 0.5001, 0, -30, -200, 80, 88, ...NONFINITE])(r, 0) : uniform(-10, 10)(r, 0));
    case 'sigmoid':
      return (r) => (r() < 0.2 ? pick([-200, -30, -9.5, 9.5, 30, 200, 1e-4, -1e-3, ...NONFINITE])(r, 0) : uniform(-8, 8)(r, 0));
    case 'erf':
      return (r) => (r() < 0.2 ? pick([0, 1e-4, -3e-3, 0.999, 1, -1.001, 5, -7, ...NONFINITE])(r, 0) : uniform(-4, 4)(r, 0));
    case 'floor':
    case 'ceil':
      return uniform(-20, 20);
    case 'pow':
      // IEEE's special cases too: signed zeros and infinities as the base, with odd, even and
      // non-integer exponents, infinite exponents (|base| above and below 1, and -1), NaN on either side
      return k === 0
        ? (r) => (r() < 0.3 ? grid(r, 0) : r() < 0.3 ? pick([0, -0, 1, -1, 0.5, -2, ...NONFINITE])(r, 0) : uniform(0.05, 4)(r, 0))
        : pick([-2, -1, 0, 0.5, 1, 2, 3, 1.5, -0.5, 2.5, -3, 16777217, ...NONFINITE]);
    case 'div':
    case 'mod':
      return k === 1 ? gridNonzero : (r) => (r() < 0.5 ? grid(r, 0) : uniform(-30, 30)(r, 0));
    case 'cast':
      return (r) => (r() < 0.5 ? pick(CAST_F32)(r, 0) : uniform(-100, 100)(r, 0));
    case 'maximum':
    case 'minimum':
    case 'sign':
    case 'eq':
    case 'ne':
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge':
    case 'add':
    case 'select':
      // NaN must propagate (maximum, minimum, sign, add) or compare false (all but ne).
      return (r) => (r() < 0.1 ? NaN : grid(r, 0));
    default:
      return grid;
  }
}

// ---- nodes and shapes -----------------------------------------------------------------------------

type ShapeSpec = readonly (number | string)[];
const dims = (s: ShapeSpec): Dim[] => s.map((d) => (typeof d === 'number' ? d : sym(d)));

let nextId = 1;
const value = (type: TensorType): Value => ({ id: nextId++, type });

function makeNode(op: string, types: readonly TensorType[], attrs: Attrs): Node | null {
  const r = inferOp(op, types, attrs);
  if (isShapeError(r)) return null;
  return { op, inputs: types.map(value), attrs, outputs: r.map(value), span: { file: 'gpu-elementwise.test', start: 0, end: 0 } };
}

/** Shape tuples per arity: rank 0..4, broadcasting both ways, size-1 axes, a symbolic batch B, and more than one workgroup. */
const SHAPES: Record<number, ShapeSpec[][]> = {
  1: [[[]], [[7]], [[2, 3]], [[2, 3, 4]], [[2, 1, 3, 2]], [['B', 3]], [[3, 130]]],
  2: [
    [[], []],
    [[5], [5]],
    [[], [2, 3]],
    [[3, 4], [4]],
    [[3, 1], [1, 4]],
    [[2, 3, 4], [2, 1, 4]],
    [[2, 1, 3, 5], [4, 1, 1]],
    [['B', 3], [3]],
    [[1, 'B', 2], ['B', 1]],
    [[3, 130], [130]],
  ],
  3: [
    [[], [], []],
    [[2, 3], [2, 3], [2, 3]],
    [['B', 1, 4], [3, 1], []],
    [[4], [2, 1, 4], [1]],
    [[2, 1, 3, 1], [1, 4, 1, 2], [3, 2]],
  ],
};
const BATCHES = [1, 5];

interface Case {
  readonly node: Node;
  readonly kernel: ElementwiseKernel;
  readonly run: ElementwiseRun;
  readonly expected: Tensor;
  readonly label: string;
}

function concrete(shape: readonly Dim[], sizes: ReadonlyMap<string, number>): number[] {
  return shape.map((d) => (isConcrete(d) ? d : evaluate(d, sizes)));
}

function cases(op: string): Case[] {
  const def = getOp(op)!;
  const arity = def.arity as number;
  const out: Case[] = [];
  let seed = 1;
  // Dtype combinations the op's shape rule accepts: all operands alike, or select's bool condition, or cast's attribute.
  const combos: { dtypes: DType[]; attrs: Attrs }[] = [];
  if (op === 'cast') {
    for (const from of STORAGE_DTYPES) for (const to of STORAGE_DTYPES) combos.push({ dtypes: [from], attrs: { dtype: to } });
  } else if (op === 'select') {
    for (const d of STORAGE_DTYPES) combos.push({ dtypes: ['bool', d, d], attrs: {} });
  } else {
    for (const d of STORAGE_DTYPES) combos.push({ dtypes: new Array<DType>(arity).fill(d), attrs: {} });
  }
  for (const { dtypes, attrs } of combos) {
    for (const shapes of SHAPES[arity]) {
      const node = makeNode(op, shapes.map((s, i) => ({ dtype: dtypes[i], shape: dims(s) })), attrs);
      if (!node) break; // the dtype is not accepted: no shape will be
      const kernel = lowerElementwise(node);
      const symbolic = shapes.some((s) => s.some((d) => typeof d === 'string'));
      for (const b of symbolic ? BATCHES : [0]) {
        const sizes = new Map(symbolic ? [['B', b]] : []);
        const inputs = node.inputs.map((v, k) => {
          const r = seededRandom(seed++ * 7919);
          const gen = generator(op, v.type.dtype, k);
          const shape = concrete(v.type.shape, sizes);
          const n = shape.reduce((a, c) => a * c, 1);
          const vals = Array.from({ length: n }, (_, i) => gen(r, i));
          return tensor(v.type.dtype, shape, v.type.dtype === 'f32' ? vals.map(Math.fround) : vals);
        });
        const [expected] = def.interpret(inputs, node.attrs, { sizes });
        const label = `${op}(${dtypes.join(', ')})${op === 'cast' ? `->${String(attrs.dtype)}` : ''} ${shapes.map((s) => `[${s.join(',')}]`).join(' ')}${symbolic ? ` B=${b}` : ''}`;
        out.push({ node, kernel, run: { kernel, inputs, sizes }, expected, label });
      }
    }
  }
  return out;
}

/** Mismatch messages between a GPU result and the reference (empty when they agree). */
function compare(op: string, label: string, inputs: readonly Tensor[], got: Tensor, want: Tensor, worst: { err: number }): string[] {
  const bad: string[] = [];
  if (got.shape.join(',') !== want.shape.join(',')) return [`${label}: shape [${got.shape}] vs [${want.shape}]`];
  const tol = TOL[op] ?? EXACT_ROUNDED;
  for (let i = 0; i < want.data.length && bad.length < 5; i++) {
    const g = got.data[i];
    const w = want.data[i];
    let ok: boolean;
    if (want.dtype !== 'f32') ok = g === w;
    else if (Number.isNaN(w) || Number.isNaN(g)) ok = Number.isNaN(w) && Number.isNaN(g);
    else if (!Number.isFinite(w) || !Number.isFinite(g)) ok = g === w;
    else if (op === 'pow' && w === 0 && g === 0) ok = Object.is(g, w); // the sign of a zero (pow(-0, 3) is -0)
    else {
      const e = Math.abs(g - w);
      worst.err = Math.max(worst.err, (e - tol.atol) / Math.max(Math.abs(w), 1e-30));
      ok = e <= tol.atol + tol.rtol * Math.abs(w);
    }
    if (!ok) bad.push(`${label} [${i}]: gpu ${g}, reference ${w} (inputs at the same flat index: ${inputs.map((t) => t.data[Math.min(i, t.data.length - 1)]).join(', ')})`);
  }
  return bad;
}

describe('elementwise lowering on WebGPU', () => {
  it('lowers every elementwise op in the registry', () => {
    const elementwise = allOps().filter((d) => d.family === 'elementwise');
    expect(elementwise.map((d) => d.name).sort()).toEqual([...ALL].sort());
    const missing = elementwise.filter((d) => d.lower?.kind !== 'elementwise' || typeof d.lower.expr !== 'function').map((d) => d.name);
    expect(missing, 'elementwise ops without a lowering').toEqual([]);
  });

  for (const op of ALL) {
    it(`${op} matches the interpreter`, async () => {
      const device = await getDevice();
      const all = cases(op);
      expect(all.length).toBeGreaterThan(0);
      // Every distinct shader compiles without errors or warnings.
      const unique = [...new Set(all.map((c) => c.kernel.wgsl))];
      const compiled = await Promise.all(unique.map((w) => compile(device, w)));
      compiled.forEach((c, i) => expect(c.messages, unique[i]).toEqual([]));
      const results = await runElementwise(device, all.map((c) => c.run));
      const worst = { err: 0 };
      const bad = all.flatMap((c, i) => compare(op, c.label, c.run.inputs, results[i], c.expected, worst));
      if (process.env.DLC_GPU_VERBOSE) console.log(`${op}: ${all.length} cases, ${unique.length} shaders, worst relative error beyond atol ${worst.err.toExponential(2)}`);
      expect(bad).toEqual([]);
    });
  }

  it('serves every batch size with one shader', async () => {
    const device = await getDevice();
    const node = makeNode('add', [{ dtype: 'f32', shape: dims(['B', 1, 3]) }, { dtype: 'f32', shape: dims([4, 1]) }], {})!;
    const kernel = lowerElementwise(node);
    expect(lowerElementwise(node).wgsl).toBe(kernel.wgsl);
    expect(kernel.wgsl).not.toMatch(/\b(4u|3u)\b/);
    const runs = [1, 2, 9].map((b) => {
      const sizes = new Map([['B', b]]);
      const x = tensor('f32', [b, 1, 3], Array.from({ length: b * 3 }, (_, i) => i));
      const y = tensor('f32', [4, 1], [100, 200, 300, 400]);
      return { run: { kernel, inputs: [x, y], sizes }, expected: getOp('add')!.interpret([x, y], {}, { sizes })[0] };
    });
    const got = await runElementwise(device, runs.map((r) => r.run));
    runs.forEach((r, i) => {
      expect(got[i].shape).toEqual([[1, 2, 9][i], 4, 3]);
      expect([...got[i].data]).toEqual([...r.expected.data]);
    });
  });

  it('folds dispatches past the per-dimension workgroup limit into a second dimension', async () => {
    expect(dispatchSize(1000, 256)).toEqual([4, 1]);
    expect(dispatchSize(65535 * 256, 256)).toEqual([65535, 1]);
    expect(dispatchSize(65535 * 256 + 1, 256)).toEqual([32768, 2]);
    expect(dispatchSize(0, 256)).toEqual([0, 1]);
    const device = await getDevice();
    // The real limit: 65,536 workgroups of 256 and a few more elements (16.8M u32 elements).
    const n = 65536 * 256 + 3;
    const node = makeNode('add', [{ dtype: 'u32', shape: dims(['N']) }, { dtype: 'u32', shape: dims([]) }], {})!;
    const kernel = lowerElementwise(node);
    const x: Tensor = { dtype: 'u32', shape: [n], data: Float64Array.from({ length: n }, (_, i) => i) };
    const one = tensor('u32', [], 1);
    // A small limit folds a grid of 11 workgroups as 4 x 3 (one spare workgroup fails the bounds check).
    const m = 256 * 10 + 5;
    const small: Tensor = { dtype: 'u32', shape: [m], data: Float64Array.from({ length: m }, (_, i) => 3 * i) };
    expect(dispatchSize(m, 256, 4)).toEqual([4, 3]);
    const [big, folded] = await runElementwise(device, [
      { kernel, inputs: [x, one], sizes: new Map([['N', n]]) },
      { kernel, inputs: [small, one], sizes: new Map([['N', m]]), maxWorkgroupsPerDim: 4 },
    ]);
    let wrong = 0;
    for (let i = 0; i < n; i++) if (big.data[i] !== i + 1) wrong++;
    expect(wrong).toBe(0);
    expect(folded.data.every((v, i) => v === 3 * i + 1)).toBe(true);
  });
});
