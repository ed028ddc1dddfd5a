// Every registered primitive run through its WGSL lowering on Dawn (lavapipe in CI) against the float64 interpreter, forward and every node of every vjp.
import { afterAll, describe, expect, it } from 'vitest';
import type { Attrs, DType, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { allOps, getOp, inferOp, isShapeError, type OpDef, type VjpContext } from '../compiler/ops/index.ts';
import { encodeRowBody } from '../compiler/ops/fused-reduce.ts';
import { ty } from '../compiler/ops/testing.ts';
import { type Dim, dimToString, evaluate, isDim, sub, sym } from '../compiler/shapes/dim.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { PHILOX_WGSL } from '../compiler/codegen/random.ts';
import { philox4x32 } from '../compiler/ops/random.ts';
import { compile, getDevice, runLaunches, runNode } from './gpu-helpers.ts';
import { encodeFusedBody } from '../compiler/ops/fused.ts';

// ---- tolerances -----------------------------------------------------------------------------------
//
// Every GPU node is fed f32 inputs and compared with the interpreter run on exactly those inputs, so
// the difference is the kernel's own rounding only.
//   exact: data movement, gathers, constants, max, one_hot, integer and bool results, random_uniform:
//     the GPU value equals the reference rounded to f32 (NaN equals NaN).
//   rel: elementwise f32 ops, |gpu - ref| <= atol + rtol * |ref|, the table of gpu-elementwise.test.ts
//     (correctly rounded ops 1e-6; WGSL's transcendentals carry looser bounds).
//   sum: accumulations of L terms (matmul, reduce_sum, conv, conv_transpose, scatter_add, avg_pool),
//     |gpu - ref| <= 1e-6 * (L + 1) * sum |terms| (the op run on the absolute values), about 16 f32
//     ulps per term of slack; an indexing error moves a result by the size of a term, far beyond it.
//   random_normal: Box-Muller's log, sqrt and cos in f32, 2e-5 absolute plus 1e-5 relative.

type Tol = { kind: 'exact' } | { kind: 'rel'; rtol: number; atol: number } | { kind: 'sum'; terms: number };

const ELEMENTWISE_TOL: Record<string, { rtol: number; atol: number }> = {
  exp: { rtol: 1e-5, atol: 0 },
  log: { rtol: 1e-5, atol: 1e-6 },
  rsqrt: { rtol: 2e-6, atol: 0 },
  sin: { rtol: 1e-5, atol: 1e-6 },
  cos: { rtol: 1e-5, atol: 1e-6 },
  tanh: { rtol: 1e-5, atol: 1e-6 },
  sigmoid: { rtol: 1e-5, atol: 1e-7 },
  erf: { rtol: 1e-6, atol: 5e-7 },
  pow: { rtol: 2e-5, atol: 1e-6 },
};

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** How a node's f32 output is compared; `inputs` are the concrete operands (for the term counts). */
function tolerance(node: Node, inputs: readonly Tensor[]): Tol {
  const def = getOp(node.op)!;
  const a = node.attrs;
  if (def.family === 'elementwise') return { kind: 'rel', ...(ELEMENTWISE_TOL[node.op] ?? { rtol: 1e-6, atol: 0 }) };
  switch (node.op) {
    case 'matmul':
      return { kind: 'sum', terms: inputs[0].shape[inputs[0].shape.length - 1] };
    case 'fused_matmul': // the matmul's k terms plus the epilogue's few (bias, residual)
    case 'fused_matmul_columns':
      return { kind: 'sum', terms: inputs[0].shape[inputs[0].shape.length - 1] + 2 };
    case 'cumsum': // at most the axis's length of terms per element, added in order
      return { kind: 'sum', terms: inputs[0].shape.at(a.axis as number)! };
    case 'reduce_sum': {
      const out = numel(inputs[0].shape) / Math.max(1, numel(reducedCount(inputs[0].shape, a.axes as number[])));
      return { kind: 'sum', terms: out };
    }
    case 'conv2d':
      return { kind: 'sum', terms: numel(inputs[1].shape.slice(1)) };
    case 'conv_transpose2d':
      return { kind: 'sum', terms: (inputs[0].shape[1] / ((a.groups as number | undefined) ?? 1)) * numel(inputs[1].shape.slice(2)) };
    case 'fused_conv2d': // the convolution's terms plus the epilogue's few (bias, residual)
      return { kind: 'sum', terms: numel(inputs[1].shape.slice(1)) + 2 };
    case 'fused_conv_transpose2d':
      return { kind: 'sum', terms: (inputs[0].shape[1] / ((a.groups as number | undefined) ?? 1)) * numel(inputs[1].shape.slice(2)) + 2 };
    case 'fused_reduce': // a row's terms (its softmax sum, its mean and variance) and a few elementwise steps
      return { kind: 'rel', rtol: 2e-5, atol: 1e-6 };
    case 'scatter_add':
    case 'sorted_scatter_add':
      return { kind: 'sum', terms: numel(inputs[1].shape) };
    case 'sum_squares': // every element's square, added in the kernel's order
      return { kind: 'sum', terms: inputs.reduce((n, x) => n + numel(x.shape), 0) };
    case 'avg_pool2d':
      return { kind: 'sum', terms: numel(a.kernel as number[]) + 1 };
    case 'random_normal':
      return { kind: 'rel', rtol: 1e-5, atol: 2e-5 };
    default:
      return { kind: 'exact' };
  }
}

/** The kept axes' sizes of a reduction (the output's element count). */
function reducedCount(shape: readonly number[], axes: readonly number[]): number[] {
  const norm = axes.map((x) => (x < 0 ? x + shape.length : x));
  return shape.filter((_, i) => !norm.includes(i));
}

/** Worst error seen per tolerance class, as a fraction of the allowance (and absolute). */
const worst: Record<string, { ratio: number; abs: number; where: string }> = {};

function note(cls: string, ratio: number, abs: number, where: string): void {
  const w = (worst[cls] ??= { ratio: 0, abs: 0, where: '' });
  if (ratio > w.ratio) Object.assign(w, { ratio, where });
  w.abs = Math.max(w.abs, abs);
}

const absT = (t: Tensor): Tensor => (t.dtype === 'f32' ? { ...t, data: t.data.map(Math.abs) } : t);

/** Mismatches between a GPU output and the reference (empty when they agree). */
function compare(label: string, node: Node, inputs: readonly Tensor[], sizes: ReadonlyMap<string, number>, got: Tensor, want: Tensor, k: number): string[] {
  if (got.shape.join(',') !== want.shape.join(',')) return [`${label}: output ${k} shape [${got.shape}], reference [${want.shape}]`];
  if (got.dtype !== want.dtype) return [`${label}: output ${k} dtype ${got.dtype}, reference ${want.dtype}`];
  const bad: string[] = [];
  const tol: Tol = want.dtype === 'f32' ? tolerance(node, inputs) : { kind: 'exact' };
  const cls = tol.kind === 'rel' ? (node.op === 'random_normal' ? 'random_normal' : 'elementwise') : tol.kind === 'sum' ? 'sum' : 'exact';
  let scale: Tensor | undefined;
  if (tol.kind === 'sum') scale = getOp(node.op)!.interpret(inputs.map(absT), node.attrs, { sizes })[k];
  for (let i = 0; i < want.data.length && bad.length < 5; i++) {
    const g = got.data[i];
    const w = want.data[i];
    let ok: boolean;
    if (want.dtype !== 'f32') ok = g === w;
    else if (Number.isNaN(w) || Number.isNaN(g)) ok = Number.isNaN(w) && Number.isNaN(g);
    else if (tol.kind === 'exact' || !Number.isFinite(w) || !Number.isFinite(g)) {
      ok = g === Math.fround(w);
    } else {
      const e = Math.abs(g - w);
      const allowed = tol.kind === 'rel' ? tol.atol + tol.rtol * Math.abs(w) : 1e-6 * (tol.terms + 1) * scale!.data[i];
      ok = e <= allowed;
      note(cls, allowed > 0 ? e / allowed : e === 0 ? 0 : Infinity, e, label);
    }
    if (!ok) bad.push(`${label}: output ${k} [${i}] gpu ${g}, reference ${w}`);
  }
  return bad;
}

// ---- nodes and inputs -----------------------------------------------------------------------------

let nextId = 1;
const value = (type: TensorType): Value => ({ id: nextId++, type });
const SPAN = { file: 'gpu-primitives.test', start: 0, end: 0 };

function makeNode(op: string, inputs: readonly Value[], attrs: Attrs): Node {
  const r = inferOp(op, inputs.map((v) => v.type), attrs);
  if (isShapeError(r)) throw new Error(`${op}: ${r.message}`);
  return { op, inputs, attrs, outputs: r.map(value), span: SPAN };
}

type Gen = (r: () => number, i: number) => number;
const U = (lo: number, hi: number): Gen => (r) => lo + (hi - lo) * r();
const I = (lo: number, hi: number): Gen => (r) => lo + Math.floor(r() * (hi - lo + 1));
const pick = (xs: readonly number[]): Gen => (r) => xs[Math.floor(r() * xs.length)];
/** Mostly uniform, with some NaN and infinities (for max, which must propagate NaN). */
const withSpecials: Gen = (r) => (r() < 0.1 ? pick([NaN, Infinity, -Infinity])(r, 0) : U(-3, 3)(r, 0));
const nonzero: Gen = (r) => (r() < 0.5 ? -1 : 1) * (0.25 + 2 * r());
const DEFAULT_GEN: Record<DType, Gen> = { f32: U(-2, 2), f16: U(-2, 2), i32: I(-20, 20), u32: I(0, 40), bool: I(0, 1) };

const bindShape = (shape: readonly Dim[], sizes: ReadonlyMap<string, number>): number[] => shape.map((d) => evaluate(d, sizes));

function sample(t: TensorType, sizes: ReadonlyMap<string, number>, seed: number, gen?: Gen): Tensor {
  const r = seededRandom(seed * 7919 + 17);
  const shape = bindShape(t.shape, sizes);
  const g = gen ?? DEFAULT_GEN[t.dtype];
  const vals = Array.from({ length: numel(shape) }, (_, i) => g(r, i));
  return tensor(t.dtype, shape, t.dtype === 'f32' ? vals.map(Math.fround) : vals);
}

/** What the GPU buffers hold: f32 data rounded to f32 (integers and bools are already exact). */
const toF32 = (t: Tensor): Tensor => (t.dtype === 'f32' ? { ...t, data: t.data.map(Math.fround) } : t);

// ---- forward cases ----------------------------------------------------------------------------------

interface InputSpec {
  readonly type: string;
  readonly gen?: Gen;
  readonly values?: readonly number[];
}
interface Case {
  readonly inputs: readonly InputSpec[];
  readonly attrs?: Attrs;
  /** Bindings of B when a type or attribute mentions it. */
  readonly batches?: readonly number[];
  /** The vjp rule does not handle this configuration (conv groups > 1). */
  readonly noVjp?: boolean;
}

const B = sym('B');
/** A softmax over `axes` with its row sums also returned, as a fused_reduce body. */
function softmaxRows(axes: number[]): Attrs {
  return encodeRowBody(
    [
      { op: 'reduce_max', args: [0], attrs: { axes, keepdims: true } },
      { op: 'sub', args: [0, 1], attrs: {} },
      { op: 'exp', args: [2], attrs: {} },
      { op: 'reduce_sum', args: [3], attrs: { axes, keepdims: true } },
      { op: 'div', args: [3, 4], attrs: {} },
    ],
    [5, 4],
    axes,
  );
}

const c = (inputs: readonly (string | InputSpec)[], attrs?: Attrs, extra: Partial<Case> = {}): Case => ({
  inputs: inputs.map((x) => (typeof x === 'string' ? { type: x } : x)),
  ...(attrs ? { attrs } : {}),
  ...extra,
});
const g = (type: string, gen: Gen): InputSpec => ({ type, gen });
const v = (type: string, values: readonly number[]): InputSpec => ({ type, values });

const CASES: Record<string, Case[]> = {
  // relu(x + b) * 2 (and x + b); a comparison cast to i32 (and the bool); x * B - f32(i) with B from the uniform
  fused_elementwise: [
    c(['f32[B, 3]', 'f32[3]'], encodeFusedBody({
      ops: [
        { op: 'full', args: [], attrs: { shape: [], value: 0 } },
        { op: 'add', args: [0, 1], attrs: {} },
        { op: 'maximum', args: [3, 2], attrs: {} },
        { op: 'full', args: [], attrs: { shape: [], value: 2 } },
        { op: 'mul', args: [4, 5], attrs: {} },
      ],
      outputs: [6, 3],
    }), { batches: [1, 5] }),
    c(['f32[2, 1]', 'f32[3]'], encodeFusedBody({ ops: [{ op: 'gt', args: [0, 1], attrs: {} }, { op: 'cast', args: [2], attrs: { dtype: 'i32' } }], outputs: [3, 2] })),
    c(['f32[B, 2]', 'i32[B, 1]'], encodeFusedBody({
      ops: [
        { op: 'full', args: [], attrs: { shape: [], value: B } },
        { op: 'mul', args: [0, 2], attrs: {} },
        { op: 'cast', args: [1], attrs: { dtype: 'f32' } },
        { op: 'sub', args: [3, 4], attrs: {} },
      ],
      outputs: [5],
    }), { batches: [3] }),
  ],
  // relu(a @ b + bias) with a @ b also stored; a batched a @ b + residual
  fused_matmul: [
    c(['f32[B, 40]', 'f32[40, 35]', 'f32[35]'], encodeFusedBody({
      ops: [
        { op: 'full', args: [], attrs: { shape: [], value: 0 } },
        { op: 'add', args: [0, 1], attrs: {} },
        { op: 'maximum', args: [3, 2], attrs: {} },
      ],
      outputs: [4, 0],
    }), { batches: [1, 33] }),
    c(['f32[2, 3, 5]', 'f32[5, 6]', 'f32[2, 3, 6]'], encodeFusedBody({ ops: [{ op: 'add', args: [0, 1], attrs: {} }], outputs: [2] })),
    // with transposed operands: x^T @ dy + m (a weight gradient into Adam's moment), dy @ w^T + b
    c(['f32[B, 24]', 'f32[B, 6]', 'f32[24, 6]'], { ...encodeFusedBody({ ops: [{ op: 'add', args: [0, 1], attrs: {} }], outputs: [2] }), transpose_a: true }, { batches: [1, 40] }),
    c(['f32[B, 36]', 'f32[40, 36]', 'f32[40]'], { ...encodeFusedBody({ ops: [{ op: 'add', args: [0, 1], attrs: {} }], outputs: [2, 0] }), transpose_b: true }, { batches: [3] }),
  ],
  // an LSTM cell's gates as column blocks of h @ W_h in any order (b_forget, c and g's bias, a view of the
  // [4H] bias, as body inputs); overlapping blocks of a batched product
  fused_matmul_columns: [
    c(['f32[B, 12]', 'f32[12, 20]', 'f32[5]', 'f32[B, 5]', 'f32[20]'], {
      columns: [5, 0, 10, 15],
      width: 5,
      views: [[4, 10, [B, 5], [0, 1]]],
      ...encodeFusedBody({
        ops: [
          { op: 'add', args: [0, 4], attrs: {} },
          { op: 'sigmoid', args: [7], attrs: {} },
          { op: 'mul', args: [8, 5], attrs: {} },
          { op: 'sigmoid', args: [1], attrs: {} },
          { op: 'add', args: [2, 6], attrs: {} },
          { op: 'tanh', args: [11], attrs: {} },
          { op: 'mul', args: [10, 12], attrs: {} },
          { op: 'add', args: [9, 13], attrs: {} },
          { op: 'sigmoid', args: [3], attrs: {} },
          { op: 'tanh', args: [14], attrs: {} },
          { op: 'mul', args: [15, 16], attrs: {} },
        ],
        outputs: [14, 17],
      }),
    }, { batches: [1, 70] }),
    c(['f32[2, 3, 7]', 'f32[7, 9]'], { columns: [4, 1], width: 5, ...encodeFusedBody({ ops: [], outputs: [0, 1] }) }),
  ],
  // a softmax with its row sums stored (per thread, and a workgroup per row); layer norm over a [B, 3, 70] input
  fused_reduce: [
    c(['f32[B, 10]'], softmaxRows([1]), { batches: [1, 5] }),
    c(['f32[3, 300]'], softmaxRows([1])),
    c(['f32[4, B]'], softmaxRows([1]), { batches: [70] }),
    c(['f32[70, B]'], softmaxRows([1]), { batches: [3, 100] }),
    c(['f32[B, 3, 70]', 'f32[70]'], encodeRowBody(
      [
        { op: 'full', args: [], attrs: { shape: [], value: 1 / 70 } },
        { op: 'reduce_sum', args: [0], attrs: { axes: [2], keepdims: true } },
        { op: 'mul', args: [3, 2], attrs: {} },
        { op: 'sub', args: [0, 4], attrs: {} },
        { op: 'mul', args: [5, 5], attrs: {} },
        { op: 'reduce_sum', args: [6], attrs: { axes: [2], keepdims: true } },
        { op: 'mul', args: [7, 2], attrs: {} },
        { op: 'rsqrt', args: [8], attrs: {} },
        { op: 'mul', args: [5, 9], attrs: {} },
        { op: 'mul', args: [10, 1], attrs: {} },
      ],
      [11, 9],
      [2],
    ), { batches: [2] }),
  ],
  // one member (the kernel over one arena range): max(p, m) * s with s shared, rounded once as the reference is
  fused_foreach: [
    c(['f32[5, 7]', 'f32[]', 'f32[5, 7]'], {
      ...encodeFusedBody({ ops: [{ op: 'maximum', args: [0, 2], attrs: {} }, { op: 'mul', args: [3, 1], attrs: {} }], outputs: [4] }),
      shared: [false, true, false],
      offsets: [0],
    }),
  ],
  // relu(conv2d + bias) with the convolution also stored; grouped conv2d + residual; conv_transpose2d + bias, relu
  fused_conv2d: [
    c(['f32[B, 3, 7, 6]', 'f32[4, 3, 3, 2]', 'f32[1, 4, 1, 1]'], {
      stride: [2, 1], padding: [1, 0], dilation: [1, 2],
      ...encodeFusedBody({
        ops: [
          { op: 'full', args: [], attrs: { shape: [], value: 0 } },
          { op: 'add', args: [0, 1], attrs: {} },
          { op: 'maximum', args: [3, 2], attrs: {} },
        ],
        outputs: [4, 0],
      }),
    }, { batches: [1, 3] }),
    c(['f32[1, 4, 5, 5]', 'f32[6, 2, 3, 3]', 'f32[1, 6, 5, 5]'], { padding: [1, 1], groups: 2, ...encodeFusedBody({ ops: [{ op: 'add', args: [0, 1], attrs: {} }], outputs: [2] }) }),
  ],
  fused_conv_transpose2d: [
    c(['f32[B, 3, 4, 3]', 'f32[3, 2, 3, 3]', 'f32[2, 1, 1]'], {
      stride: [2, 2], padding: [1, 0], output_padding: [1, 1],
      ...encodeFusedBody({
        ops: [
          { op: 'full', args: [], attrs: { shape: [], value: 0 } },
          { op: 'add', args: [0, 1], attrs: {} },
          { op: 'maximum', args: [3, 2], attrs: {} },
        ],
        outputs: [4],
      }),
    }),
  ],
  matmul: [
    c(['f32[2, 3, 4]', 'f32[4, 5]']),
    c(['f32[B, 3, 7]', 'f32[1, 7, 2]']),
    c(['f32[2, 1, 5, 3]', 'f32[1, 3, 3, 4]']),
    c(['f32[1, 1]', 'f32[1, 6]']),
    // transposed operands (matmul prologues): A^T with a symbolic k (a weight gradient), B^T with vec4
    // loads along k, both with broadcast batch axes and vec4 loads of A^T
    c(['f32[B, 7, 3]', 'f32[1, 7, 2]'], { transpose_a: true }),
    c(['f32[B, 6]', 'f32[B, 5]'], { transpose_a: true }, { batches: [1, 37] }),
    // n a multiple of 4: the CPU rows kernel (codegen/matmul-rows.ts), A plain and transposed
    c(['f32[B, 9]', 'f32[9, 12]'], {}, { batches: [2, 17] }),
    c(['f32[B, 6]', 'f32[B, 8]'], { transpose_a: true }, { batches: [1, 37] }),
    c(['f32[2, 3, 8]', 'f32[6, 8]'], { transpose_b: true }),
    c(['f32[2, 1, 8, 12]', 'f32[1, 3, 5, 8]'], { transpose_a: true, transpose_b: true }),
  ],
  reduce_sum: [
    c(['f32[B, 3, 4]'], { axes: [1], keepdims: true }),
    // rows longer than 64: a workgroup per row (and its subgroup variant)
    c(['f32[3, 300]'], { axes: [1] }),
    c(['f32[B, 70, 2]'], { axes: [0, 1] }, { batches: [1, 5] }),
    c(['f32[B, 3, 70]'], { axes: [0] }, { batches: [2, 130] }),
    c(['f32[2, 3, 4, 5]'], { axes: [0, 2] }),
    c(['f32[3, 40]'], { axes: [-1] }),
    c(['i32[3, 5]'], { axes: [1] }),
    // on CPU kernels: the tree below 64 rows, the per-thread fold from 64 on
    c(['f32[B, 100]'], { axes: [1] }, { batches: [3, 70] }),
    c(['f32[]'], { axes: [] }),
  ],
  reduce_max: [
    c([g('f32[B, 4]', withSpecials)], { axes: [1] }),
    // a row length known only at run time: 32 lanes per row, 8 rows per workgroup (70 rows: a partial last workgroup)
    c([g('f32[B, 70]', withSpecials)], { axes: [0] }, { batches: [3, 100] }),
    c(['i32[B, 70]'], { axes: [0] }, { batches: [1, 40] }),
    c(['i32[3, 4, 2]'], { axes: [0, 2], keepdims: true }),
    c(['u32[5, 3]'], { axes: [0] }),
    c(['f32[2, 3, 2, 2]'], { axes: [1, 3] }),
  ],
  cumsum: [
    c([g('f32[B, 5]', withSpecials)], { axis: 1 }),
    c(['f32[B, 3, 2]'], { axis: 1, reverse: true }, { batches: [2, 5] }),
    c(['i32[4, 70]'], { axis: 0 }),
    c(['u32[3, 40]'], { axis: -1, reverse: true }),
    c(['f32[70, B]'], { axis: 0 }, { batches: [1, 3] }),
  ],
  argmax: [c(['f32[B, 5]'], { axis: 1 }), c(['i32[4, 3]'], { axis: 0 }), c(['u32[2, 3, 4]'], { axis: -1 }), c(['f32[70, B]'], { axis: 1 }, { batches: [2, 90] })],
  reshape: [
    c(['f32[B, 6]'], { shape: [B, 2, 3] }),
    c(['i32[2, 3, 4]'], { shape: [-1] }),
    c(['bool[6]'], { shape: [2, 3] }),
    c(['f32[]'], { shape: [1, 1] }),
    c(['f32[2, 1, 3, 2]'], { shape: [3, 4] }),
  ],
  transpose: [
    c(['f32[B, 3, 4]'], { perm: [2, 0, 1] }),
    c(['i32[2, 3, 4, 5]'], { perm: [3, 1, 0, 2] }),
    c(['bool[3, 2]'], { perm: [1, 0] }),
    c(['f32[]'], { perm: [] }),
    c(['f32[7]'], { perm: [0] }),
  ],
  broadcast_to: [
    c(['f32[3, 1]'], { shape: [B, 3, 4] }),
    c(['i32[]'], { shape: [2, 3] }),
    c(['bool[1, 4]'], { shape: [3, 4] }),
    c(['f32[2, 1, 3, 1]'], { shape: [2, 4, 3, 2] }),
    c(['f32[B, 1]'], { shape: [B, 5] }),
  ],
  slice: [
    c(['f32[B, 10]'], { starts: [0, 1], stops: [null, 9], steps: [1, 3] }),
    c(['i32[4, 5, 6]'], { starts: [-3, 0, 2], stops: [null, -1, 100], steps: [2, 1, 2] }),
    c(['f32[B, 3]'], { starts: [1, 0], stops: [null, null] }),
    c(['f32[B, 3]'], { starts: [0, 0], stops: [sub(B, 1), 2] }),
    c(['bool[2, 3, 2, 4]'], { starts: [1, 0, 0, 1], stops: [2, 3, 2, 4], steps: [1, 2, 1, 2] }),
    c(['f32[5]'], { starts: [7], stops: [null] }),
    c(['f32[]'], { starts: [], stops: [] }),
  ],
  strided_copy: [
    // a column-major read of [B, 6] from offset 1, a broadcast row, a transposed slice with symbolic strides
    c(['f32[B, 6]'], { shape: [3, B], offset: 1, strides: [2, 6] }),
    c(['i32[5]'], { shape: [3, 5], offset: 0, strides: [0, 1] }),
    c(['f32[B, 4, 3]'], { shape: [3, B, 2], offset: 1, strides: [1, 12, 3] }, { batches: [1, 3] }),
  ],
  strided_copies: [
    // attention's head split: q, k (transposed) and v as views of one [B, 5, 24] projection; a scalar and a broadcast row of an i32
    c(['f32[B, 5, 24]'], { ranks: [4, 4, 4], shapes: [B, 2, 5, 4, B, 2, 4, 5, B, 2, 5, 4], offsets: [0, 8, 16], strides: [120, 4, 24, 1, 120, 4, 1, 24, 120, 4, 24, 1] }, { batches: [1, 3] }),
    c(['i32[3, 4]'], { ranks: [0, 2], shapes: [2, 4], offsets: [5, 4], strides: [0, 1] }),
  ],
  strided_concat: [
    // a transposed [2, B] beside a row-major [B, 3]; three heads [B, 2, 3, 4] transposed back and concatenated as [B, 3, 24] walked as [B, 3, 6, 4]
    c(['f32[2, B]', 'f32[B, 3]'], { shape: [B, 5], axis: 1, sizes: [2, 3], offsets: [0, 0], strides: [1, B, 3, 1] }, { batches: [1, 4] }),
    c(['f32[B, 2, 3, 4]', 'f32[B, 2, 4, 3]', 'f32[B, 3, 2, 4]'], {
      shape: [B, 3, 6, 4], axis: 2, sizes: [2, 2, 2], offsets: [0, 0, 0],
      strides: [24, 4, 12, 1, 24, 1, 12, 3, 24, 8, 4, 1], out: [B, 3, 24],
    }, { batches: [1, 3] }),
    c(['i32[3, 4]', 'i32[2]'], { shape: [7], axis: 0, sizes: [5, 2], offsets: [1, 0], strides: [2, 1] }),
  ],
  sum_squares: [
    c(['f32[B, 3]', 'f32[300]', 'f32[]']),
    c(Array.from({ length: 7 }, (_, i) => `f32[${(i * 37) % 100 + 1}]`)),
    c(['f32[B, 70, 5]'], {}, { batches: [1, 4] }),
  ],
  concat: [
    c(['f32[B, 2]', 'f32[B, 3]'], { axis: 1 }),
    c(['i32[2, 3]', 'i32[1, 3]', 'i32[3, 3]'], { axis: 0 }),
    c(['bool[2, 1]', 'bool[2, 2]'], { axis: -1 }),
    c(Array.from({ length: 10 }, (_, i) => `f32[1, ${(i % 3) + 1}]`), { axis: 1 }),
    // an unrolled scan's stack: 16 steps of [B, 1, 3] on the middle axis, three runs of at most 7 inputs
    c(Array.from({ length: 16 }, () => 'f32[B, 1, 3]'), { axis: 1 }, { batches: [1, 2] }),
    c(Array.from({ length: 15 }, (_, i) => `i32[${(i % 4) + 1}, 2]`), { axis: 0 }),
    c(['f32[2, 1, 3, 2]', 'f32[2, 2, 3, 2]'], { axis: 1 }),
    c(['f32[4]'], { axis: 0 }),
  ],
  pad: [
    c(['f32[B, 3]'], { before: [0, 2], after: [1, 1] }),
    c(['i32[2, 3, 4]'], { before: [1, 0, 2], after: [0, 3, 1], value: -7 }),
    c(['f32[2, 2, 3, 3]'], { before: [0, 0, 1, 1], after: [0, 0, 1, 1], value: -3.4028234663852886e38 }),
    c(['bool[2, 2]'], { before: [1, 0], after: [0, 1], value: 1 }),
    c(['f32[3]'], { before: [2], after: [0], value: 0.1 }),
    c(['f32[]'], { before: [], after: [] }),
  ],
  take: [
    c(['f32[10, 4]', g('i32[B, 3]', I(-3, 13))], { axis: 0 }),
    c(['f32[3, 5, 2]', g('u32[4]', pick([0, 4, 5, 4294967295, 2147483648, 2]))], { axis: 1 }),
    c(['i32[6]', g('i32[]', I(-2, 8))], { axis: 0 }),
    c(['f32[2, 3, 4]', g('i32[2, 2]', I(-1, 5))], { axis: -1 }),
  ],
  scatter_add: [
    c(['f32[B, 3, 4]', g('i32[B, 3]', I(-2, 6))], { axis: 0, size: 5 }),
    c(['i32[2, 6, 3]', g('u32[6]', pick([0, 1, 1, 3, 4294967295]))], { axis: 1, size: 4 }),
    c(['f32[3, 2, 2]', g('i32[2]', I(0, 4))], { axis: 1, size: B }),
    c(['f32[40]', g('i32[40]', I(0, 2))], { axis: 0, size: 3 }),
  ],
  index_order: [
    c([g('i32[B, 3]', I(-2, 6))], { size: 5 }),
    c([g('u32[7]', pick([0, 1, 1, 3, 4294967295]))], { size: 4 }),
    c([g('i32[40]', I(0, 2))], { size: B }),
    c([g('i32[300]', I(-5, 80))], { size: 64 }),
  ],
  // orders as index_order gives them (the GPU test of the rewrite is in fusion and example runs), and one that is not
  sorted_scatter_add: [
    c(['f32[3, 6, 2]', v('i32[6]', [2, 0, 2, -3, 9, 0]), v('i32[6]', [1, 3, 5, 0, 2, 4])], { axis: 1, size: 4 }),
    c(['i32[2, 3, 3]', v('u32[2, 3]', [1, 4294967295, 0, 1, 1, 2]), v('i32[6]', [2, 0, 3, 4, 5, 1])], { axis: 0, size: 3 }),
    c(['f32[4, 2]', v('i32[4]', [1, 1, 1, 1]), v('i32[4]', [0, 1, 2, 3])], { axis: 0, size: B }),
    c(['f32[5, 3]', v('i32[5]', [3, 0, 1, 2, 0]), v('i32[5]', [4, -2, 9, 0, 2])], { axis: 0, size: 4 }),
  ],
  take_along_axis: [
    c(['f32[B, 5]', g('i32[B, 1]', I(-2, 7))], { axis: 1 }),
    c(['i32[4, 3, 2]', g('i32[2, 3, 2]', I(-1, 5))], { axis: 0 }),
    c(['f32[2, 3, 4]', g('u32[2, 3, 6]', pick([0, 3, 4, 4294967295]))], { axis: -1 }),
  ],
  one_hot: [
    c([g('i32[B, 3]', I(-2, 7))], { depth: 5 }),
    c([g('u32[4]', pick([0, 1, 2, 3, 4294967295]))], { depth: 3, dtype: 'bool' }),
    c([g('i32[2, 2]', I(-1, 4))], { depth: B, dtype: 'i32' }),
    c([g('i32[]', I(0, 4))], { depth: 4, dtype: 'u32' }),
    // clamped (take_along_axis's gradient): an index out of range gives the nearest row
    c([g('i32[B, 3]', I(-3, 8))], { depth: 5, clamp: true }),
    c([g('u32[5]', pick([0, 2, 3, 4, 4294967295]))], { depth: 3, clamp: true }),
    c([g('i32[2, 2]', I(-2, 6))], { depth: B, dtype: 'i32', clamp: true }),
  ],
  conv2d: [
    c(['f32[B, 3, 7, 6]', 'f32[4, 3, 3, 2]'], { stride: [2, 1], padding: [1, 0], dilation: [1, 2] }),
    c(['f32[1, 4, 5, 5]', 'f32[6, 2, 3, 3]'], { padding: [1, 1], groups: 2 }, { noVjp: true }),
    c(['f32[2, 3, 4, 4]', 'f32[2, 3, 1, 1]']),
    c(['f32[1, 2, 9, 8]', 'f32[3, 2, 4, 3]'], { stride: [3, 2], padding: [2, 1] }),
  ],
  conv_transpose2d: [
    c(['f32[B, 3, 4, 3]', 'f32[3, 2, 3, 3]'], { stride: [2, 2], padding: [1, 0], output_padding: [1, 1] }),
    c(['f32[1, 2, 3, 4]', 'f32[2, 3, 2, 3]'], { stride: [1, 2], dilation: [2, 1], padding: [1, 1] }),
    c(['f32[1, 4, 3, 3]', 'f32[4, 3, 2, 2]'], { stride: [2, 2], groups: 2 }, { noVjp: true }),
    c(['f32[2, 2, 3, 3]', 'f32[2, 1, 1, 1]']),
    // the gather's strided tap loops (only the taps that land on a pixel): kernels past the stride, padding, output padding; a max-pool gradient's 2x2 at stride 2
    c(['f32[2, 2, 5, 4]', 'f32[2, 3, 5, 4]'], { stride: [3, 2], padding: [2, 1], output_padding: [2, 1] }),
    c(['f32[B, 4, 3, 3]', 'f32[4, 1, 2, 2]'], { stride: [2, 2] }, { noVjp: true }),
    // stride 1, or 16 channels: conv2d's implicit GEMM over the flipped weights (codegen/conv.ts conv2dViewOf)
    c(['f32[B, 3, 5, 4]', 'f32[3, 4, 3, 2]'], { padding: [1, 0], dilation: [1, 2] }),
    c(['f32[B, 3, 4, 3]', 'f32[3, 16, 3, 3]'], { stride: [2, 2], padding: [1, 0], output_padding: [1, 1] }),
  ],
  max_pool2d: [
    c(['f32[B, 2, 6, 7]'], { kernel: [2, 3], stride: [2, 2], padding: [1, 1] }),
    c(['i32[1, 2, 5, 5]'], { kernel: [3, 3], stride: [1, 1], padding: [1, 1] }),
    c([g('f32[1, 1, 4, 4]', withSpecials)], { kernel: [2, 2] }),
    c(['u32[2, 1, 4, 6]'], { kernel: [2, 3], stride: [1, 2] }),
    c(['f32[2, 2, 6, 5]'], { kernel: [3, 2], stride: [2, 2], padding: [1, 0], ceil_mode: true }),
  ],
  avg_pool2d: [
    c(['f32[B, 2, 6, 7]'], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }),
    c(['f32[1, 3, 4, 6]'], { kernel: [2, 2] }),
    c(['f32[2, 1, 5, 5]'], { kernel: [2, 3], stride: [1, 1], padding: [1, 1] }),
    c(['f32[2, 2, 5, 6]'], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], count_include_pad: true }),
    c(['f32[1, 2, 6, 5]'], { kernel: [3, 2], stride: [2, 2], padding: [1, 1], ceil_mode: true, count_include_pad: true }),
    c(['f32[2, 1, 5, 7]'], { kernel: [2, 2], ceil_mode: true }),
  ],
  random_uniform: [
    c([v('u32[]', [0])], { shape: [B, 70] }),
    c([v('u32[]', [12345])], { shape: [3, 5], stream: 7 }),
    c([v('u32[]', [0xffffffff])], { shape: [600], stream: 0xffffffff }),
    c([v('u32[]', [42])], { shape: [] }),
  ],
  random_normal: [
    c([v('u32[]', [0])], { shape: [B, 70] }),
    c([v('u32[]', [987654321])], { shape: [2, 3, 50], stream: 3 }),
    c([v('u32[]', [0xffffffff])], { shape: [600], stream: 0xffffffff }),
  ],
  stop_gradient: [c(['f32[B, 3]']), c(['bool[2]']), c(['i32[]'])],
  full: [
    c([], { shape: [B, 3], value: 2.5 }),
    c([], { shape: [2], value: B }),
    c([], { shape: [B], value: sub(B, 1), dtype: 'i32' }),
    c([], { shape: [3], value: sub(1, B), dtype: 'i32' }),
    c([], { shape: [2, 2], value: sub(1, B) }),
    c([], { shape: [2, 3], value: true, dtype: 'bool' }),
    c([], { shape: [2], value: B, dtype: 'bool' }),
    c([], { shape: [3], value: -7, dtype: 'i32' }),
    c([], { shape: [3], value: 4000000000, dtype: 'u32' }),
    c([], { shape: [], value: 0.1 }),
    c([], { shape: [1, 2, 1, 2], value: -0 }),
  ],
  iota: [
    c([], { shape: [B, 3], axis: 1 }),
    c([], { shape: [4, B], axis: 1, dtype: 'f32' }),
    c([], { shape: [2, 3, 4], axis: -1, dtype: 'u32' }),
    c([], { shape: [300] }),
    c([], { shape: [2, 3, 2, 2], axis: 2 }),
  ],
};

// The elementwise ops get a small sweep (gpu-elementwise.test.ts covers them in depth): every accepted
// dtype, broadcasting against a symbolic batch, rank 0 and rank 4.
const EW_SHAPES: Record<number, string[][]> = {
  1: [['D[B, 3]'], ['D[2, 1, 3, 2]'], ['D[]']],
  2: [['D[B, 1, 3]', 'D[2, 1]'], ['D[]', 'D[2, 1, 1, 3]']],
  3: [['bool[B, 3]', 'D[3]', 'D[]'], ['bool[2, 1, 1, 3]', 'D[]', 'D[2, 1]']],
};

function elementwiseGen(op: string, dtype: DType, k: number): Gen | undefined {
  if (dtype !== 'f32') return undefined;
  switch (op) {
    case 'log':
    case 'sqrt':
    case 'rsqrt':
      return U(0.1, 5);
    case 'pow':
      return k === 0 ? U(0.1, 3) : U(-2, 2);
    case 'div':
    case 'mod':
      return k === 1 ? nonzero : U(-3, 3);
    case 'cast':
      return U(-100, 100);
    default:
      return U(-3, 3);
  }
}

function elementwiseCases(def: OpDef): Case[] {
  const out: Case[] = [];
  const arity = def.arity as number;
  const dtypes: DType[] = ['f32', 'i32', 'u32', 'bool'];
  for (const d of dtypes) {
    const attrsList: Attrs[] = def.name === 'cast' ? dtypes.map((to) => ({ dtype: to })) : [{}];
    for (const attrs of attrsList) {
      for (const shapes of EW_SHAPES[arity]) {
        const inputs = shapes.map((s, k) => {
          const type = s.replace('D[', `${d}[`);
          const gen = elementwiseGen(def.name, type.startsWith('bool') ? 'bool' : d, k);
          return gen ? { type, gen } : { type };
        });
        if (isShapeError(inferOp(def.name, inputs.map((x) => ty(x.type)), attrs))) break;
        out.push({ inputs, attrs });
      }
    }
  }
  return out;
}

function casesOf(def: OpDef): Case[] {
  return def.family === 'elementwise' ? elementwiseCases(def) : (CASES[def.name] ?? []);
}

// ---- running nodes on the GPU ---------------------------------------------------------------------

interface Job {
  readonly label: string;
  readonly node: Node;
  readonly inputs: readonly Tensor[];
  readonly sizes: ReadonlyMap<string, number>;
}

const mentionsB = (x: unknown): boolean => JSON.stringify(x).includes('"B"');
/** Attributes as text, symbolic sizes written out (`B - 1`). */
const showAttrs = (a: Attrs): string => JSON.stringify(a, (_, x: unknown) => (typeof x === 'object' && x !== null && !Array.isArray(x) && isDim(x) ? dimToString(x) : x));
let shaderCount = 0;
let jobCount = 0;
/** Backward node runs by primitive (which primitives the vjp graphs exercised). */
const backwardOps = new Map<string, number>();

/** Compile every shader (no errors or warnings), run every job, compare with the interpreter; jobs with subgroup or CPU variants run those too. */
async function runJobs(jobs: readonly Job[]): Promise<void> {
  const device = await getDevice();
  const withSubgroups = jobs.filter((j) => lowerNode(j.node).some((p) => p.subgroupWgsl !== undefined));
  if (withSubgroups.length > 0 && !device.features.has('subgroups')) throw new Error('the test device has no subgroups feature: the subgroup variants cannot be checked');
  // jobs whose kernels have CPU variants (blocked or rows matmul, per-thread reductions, ...) run them too
  const withCpu = jobs.filter((j) => lowerNode(j.node).some((p) => p.cpuWgsl !== undefined || p.cpuVariants !== undefined));
  // ... and those with a CPU variant using subgroups run once more as on a CPU adapter without them
  const withSubgroupCpu = jobs.filter((j) => lowerNode(j.node).some((p) => p.cpuVariants?.some((v) => v.minSubgroupSize !== undefined)));
  const unique = [...new Set(jobs.flatMap((j) => lowerNode(j.node).flatMap((p) => [p.wgsl, p.subgroupWgsl, p.cpuWgsl, ...(p.cpuVariants ?? []).map((v) => v.wgsl)].filter((w): w is string => w !== undefined))))];
  const compiled = await Promise.all(unique.map((w) => compile(device, w)));
  compiled.forEach((cs, i) => expect(cs.messages, unique[i]).toEqual([]));
  shaderCount += unique.length;
  jobCount += jobs.length;
  const all = [
    ...jobs.map((j) => ({ ...j, variant: 'gpu' as const })),
    ...withSubgroups.map((j) => ({ ...j, label: `${j.label} (subgroups)`, variant: 'subgroup' as const })),
    ...withCpu.map((j) => ({ ...j, label: `${j.label} (CPU variant)`, variant: 'cpu' as const })),
    ...withSubgroupCpu.map((j) => ({ ...j, label: `${j.label} (CPU variant without subgroups)`, variant: 'cpu-plain' as const })),
  ];
  const results = await Promise.all(
    all.map((j) =>
      runNode(device, j.node, j.inputs, j.sizes, { variant: j.variant }).then(
        (got) => got,
        (e: unknown) => new Error(`${j.label}: ${e instanceof Error ? e.message : String(e)}`),
      ),
    ),
  );
  const bad: string[] = [];
  all.forEach((j, n) => {
    const got = results[n];
    if (got instanceof Error) return void bad.push(got.message);
    const want = getOp(j.node.op)!.interpret(j.inputs, j.node.attrs, { sizes: j.sizes });
    want.forEach((w, k) => bad.push(...compare(j.label, j.node, j.inputs, j.sizes, got[k], w, k)));
  });
  expect(bad).toEqual([]);
}

interface Built {
  readonly node: Node;
  readonly label: string;
  readonly bindings: readonly ReadonlyMap<string, number>[];
  readonly inputsFor: (sizes: ReadonlyMap<string, number>, seed: number) => Tensor[];
}

function build(def: OpDef, cs: Case, n: number): Built {
  const types = cs.inputs.map((x) => ty(x.type));
  const node = makeNode(def.name, types.map(value), cs.attrs ?? {});
  const symbolic = mentionsB(types) || mentionsB(cs.attrs ?? {});
  const bindings = symbolic ? (cs.batches ?? [2, 3]).map((b) => new Map([['B', b]])) : [new Map<string, number>()];
  const label = `${def.name} #${n} (${cs.inputs.map((x) => x.type).join(', ')}) ${showAttrs(cs.attrs ?? {})}`;
  const inputsFor = (sizes: ReadonlyMap<string, number>, seed: number) =>
    cs.inputs.map((x, k) => (x.values ? tensor(types[k].dtype, bindShape(types[k].shape, sizes), x.values) : sample(types[k], sizes, seed + k, x.gen)));
  return { node, label, bindings, inputsFor };
}

function forwardJobs(def: OpDef): Job[] {
  const jobs: Job[] = [];
  casesOf(def).forEach((cs, n) => {
    const b = build(def, cs, n);
    b.bindings.forEach((sizes, j) => {
      const label = `${b.label}${sizes.size ? ` B=${sizes.get('B')}` : ''}`;
      jobs.push({ label, node: b.node, inputs: b.inputsFor(sizes, 1000 * n + 100 * j), sizes });
    });
  });
  return jobs;
}

/**
 * The op's vjp recorded for one case (every node it emits, through an `emit` that runs the shape
 * rule), evaluated in the interpreter from sampled primals and cotangents; then one job per emitted
 * node, fed the interpreter's values of its operands.
 */
function backwardJobs(def: OpDef): { jobs: Job[]; rules: number } {
  const jobs: Job[] = [];
  let rules = 0;
  casesOf(def).forEach((cs, n) => {
    if (cs.noVjp) return;
    const b = build(def, cs, n);
    const cts = b.node.outputs.map((o) => (o.type.dtype === 'f32' ? value(o.type) : null));
    if (cts.every((x) => x === null)) return;
    const emitted: Node[] = [];
    const ctx: VjpContext = {
      emit(op, inputs, attrs = {}) {
        const node = makeNode(op, inputs, attrs);
        emitted.push(node);
        return [...node.outputs];
      },
    };
    def.vjp!(ctx, { inputs: b.node.inputs, outputs: b.node.outputs, attrs: b.node.attrs }, cts);
    rules++;
    b.bindings.forEach((sizes, j) => {
      const env = new Map<number, Tensor>();
      const primals = b.inputsFor(sizes, 5000 + 1000 * n + 100 * j);
      b.node.inputs.forEach((x, k) => env.set(x.id, primals[k]));
      def.interpret(primals, b.node.attrs, { sizes }).forEach((t, k) => env.set(b.node.outputs[k].id, toF32(t)));
      cts.forEach((ct, k) => ct && env.set(ct.id, sample(ct.type, sizes, 9000 + 1000 * n + 100 * j + k)));
      emitted.forEach((e, m) => {
        const ins = e.inputs.map((x) => {
          const t = env.get(x.id);
          if (!t) throw new Error(`${b.label}: vjp node ${e.op} reads an unknown value`);
          return toF32(t);
        });
        getOp(e.op)!.interpret(ins, e.attrs, { sizes }).forEach((t, k) => env.set(e.outputs[k].id, t));
        jobs.push({ label: `${b.label}${sizes.size ? ` B=${sizes.get('B')}` : ''} vjp node ${m} ${e.op} ${showAttrs(e.attrs)}`, node: e, inputs: ins, sizes });
      });
    });
  });
  return { jobs, rules };
}

// ---- the tests ------------------------------------------------------------------------------------

afterAll(() => {
  if (process.env.DLC_GPU_VERBOSE) {
    console.log(`gpu-primitives: ${jobCount} node runs, ${shaderCount} shader compilations (per test, cached within one)`);
    console.log(`  backward node runs by primitive: ${[...backwardOps].map(([op, n]) => `${op} ${n}`).join(', ')}`);
    for (const [cls, w] of Object.entries(worst)) console.log(`  ${cls}: worst error / allowance ${w.ratio.toExponential(2)} (max abs ${w.abs.toExponential(2)}) at ${w.where}`);
  }
});

describe('every primitive lowered to WGSL on WebGPU', () => {
  it('every registered primitive has a lowering and forward cases', () => {
    const missing = allOps().filter((d) => !d.lower || (d.lower.kind === 'kernel' && typeof d.lower.kernel !== 'function'));
    expect(missing.map((d) => d.name), 'ops without a lowering').toEqual([]);
    const noCase = allOps().filter((d) => casesOf(d).length === 0);
    expect(noCase.map((d) => d.name), 'ops without a forward case').toEqual([]);
    const stale = Object.keys(CASES).filter((k) => !getOp(k));
    expect(stale, 'cases for unknown ops').toEqual([]);
  });

  it('a concat of more than 7 inputs is one dispatch per run of 7, each binding its run', () => {
    const def = getOp('concat')!;
    const ten = lowerNode(build(def, CASES.concat[3], 3).node);
    expect(ten.map((p) => p.inputs)).toEqual([[0, 1, 2, 3, 4, 5, 6], [7, 8, 9]]);
    const sixteen = lowerNode(build(def, CASES.concat[4], 4).node);
    expect(sixteen.map((p) => p.inputs?.length)).toEqual([7, 7, 2]);
  });

  it('every plan keeps the binding contract: uniform words in vec4s, at most 8 storage buffers, valid inputs', () => {
    for (const def of allOps()) {
      for (const [n, cs] of casesOf(def).entries()) {
        const b = build(def, cs, n);
        for (const p of lowerNode(b.node)) {
          expect(p.uniforms.length % 4 === 0 && p.uniforms.length >= 4, `${b.label}: uniform words`).toBe(true);
          const ins = p.inputs ?? b.node.inputs.map((_, i) => i);
          const outs = p.outputs ?? b.node.outputs.map((_, i) => i);
          expect(ins.every((i) => i >= 0 && i < b.node.inputs.length), `${b.label}: inputs`).toBe(true);
          expect(ins.length + outs.length, `${b.label}: storage buffers`).toBeLessThanOrEqual(8);
        }
      }
    }
  });

  it("the WGSL Philox-4x32-10 gives the interpreter's four words bit for bit (large counters, keys and streams)", async () => {
    const device = await getDevice();
    const wgsl = `${PHILOX_WGSL}

struct Params {
  header: vec4<u32>, // x: count, y: key, z: stream
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.header.x) { return; }
  let b = dlc_philox(vec4<u32>(i * 2654435761u, 0u, 0u, 0u), vec2<u32>(p.header.y, p.header.z));
  out[4u * i] = b.x;
  out[4u * i + 1u] = b.y;
  out[4u * i + 2u] = b.z;
  out[4u * i + 3u] = b.w;
}
`;
    expect((await compile(device, wgsl)).messages).toEqual([]);
    const n = 500;
    const keys: [number, number][] = [[0, 0], [0xffffffff, 0xffffffff], [12345, 7], [0x80000000, 1]];
    const got = await runLaunches(
      device,
      keys.map(([key, stream]) => ({
        op: 'philox',
        wgsl,
        inputs: [],
        inShapes: [],
        uniform: Uint32Array.from([n, key, stream, 0]),
        outShape: [n, 4],
        outDtype: 'u32' as DType,
        dispatch: [Math.ceil(n / 64), 1] as const,
      })),
    );
    keys.forEach(([key, stream], j) => {
      let wrong = 0;
      for (let i = 0; i < n; i++) {
        const want = philox4x32([Math.imul(i, 2654435761) >>> 0, 0, 0, 0], [key, stream]);
        for (let w = 0; w < 4; w++) if (got[j].data[4 * i + w] !== want[w]) wrong++;
      }
      expect(wrong, `key ${key}, stream ${stream}`).toBe(0);
    });
  });

  describe('forward: GPU against the interpreter', () => {
    for (const def of allOps()) {
      it(`${def.name}`, async () => {
        const jobs = forwardJobs(def);
        expect(jobs.length, `${def.name} has no forward case`).toBeGreaterThan(0);
        await runJobs(jobs);
      });
    }
  });

  describe('backward: every node of the vjp on the GPU against the interpreter', () => {
    for (const def of allOps().filter((d) => d.vjp)) {
      it(`${def.name}`, async () => {
        const { jobs, rules } = backwardJobs(def);
        expect(rules, `${def.name}'s vjp ran in no case`).toBeGreaterThan(0);
        // Only cast emits nothing: between the lowered dtypes its gradient is the identity or none.
        if (def.name !== 'cast') expect(jobs.length, `${def.name}'s vjp emitted no nodes in any case`).toBeGreaterThan(0);
        for (const j of jobs) backwardOps.set(j.node.op, (backwardOps.get(j.node.op) ?? 0) + 1);
        if (jobs.length > 0) await runJobs(jobs);
      });
    }
  });
});
