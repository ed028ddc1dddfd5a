// Every differentiable primitive's vjp against float64 central differences (gradcheck), on shapes with broadcasting and size-1 axes.
import { afterAll, describe, expect, it } from 'vitest';
import type { Attrs, Graph, InputInfo, TensorType, Value } from '../compiler/ir/types.ts';
import { GraphEditor } from '../compiler/ir/editor.ts';
import { gradcheck } from '../compiler/autodiff/gradcheck.ts';
import { addGradients } from '../compiler/autodiff/grad.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { allOps, getOp } from '../compiler/ops/index.ts';
import { ty } from '../compiler/ops/testing.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { type Dim, evaluate, sub, sym } from '../compiler/shapes/dim.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';

const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : 20260611;

/*
 * Tolerances, |analytic - numeric| <= abs + rel * max(|analytic|, |numeric|). gradcheck steps 1e-6
 * along a unit-variance direction, so the central difference carries about eps * |L| / h ~ 1e-10 of
 * rounding and h^2 * L''' ~ 1e-12 of truncation: smooth ops are held to 1e-7. Ops with kinks or
 * routing (abs, maximum, pooling, clamped indices) sample away from the kinks but get the looser bound.
 */
const TOL = { smooth: { abs: 1e-7, rel: 1e-6 }, kink: { abs: 1e-5, rel: 1e-3 } } as const;

// ---- seeded samplers ----------------------------------------------------------------------------------


type Sampler = (n: number, rand: () => number) => number[];
const uniform = (lo: number, hi: number): Sampler => (n, rand) => Array.from({ length: n }, () => lo + (hi - lo) * rand());
/** |x| in [lo, hi] with a random sign: away from the kink of abs and the pole of division. */
const awayFromZero = (lo = 0.2, hi = 1.5): Sampler => (n, rand) => Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rand()));
/** A shuffled grid with gaps of at least 0.09: no ties and no near-ties for max and pooling. */
const distinct: Sampler = (n, rand) => {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1 + 0.01 * rand());
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
};
/** Two interleaved lattices, fractions (mod 0.5) in [0, 0.2] and [0.25, 0.45]: operands of maximum never come within 0.05. */
const lattice = (phase: 0 | 1): Sampler => (n, rand) =>
  Array.from({ length: n }, () => 0.5 * (Math.floor(rand() * 4) - 2) + (phase === 0 ? 0.2 * rand() : 0.25 + 0.2 * rand()));
const bits: Sampler = (n, rand) => Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0));

// ---- cases ----------------------------------------------------------------------------------------------

interface InputSpec {
  readonly name: string;
  /** `f32[B, 3]`; identifiers are sizes bound in `sizes`. */
  readonly type: string;
  readonly sample?: Sampler;
  /** Fixed contents (indices). */
  readonly values?: readonly number[];
  /** Checked by gradcheck; default: every float input. */
  readonly wrt?: boolean;
}

interface Case {
  readonly op: string;
  readonly label: string;
  readonly inputs: readonly InputSpec[];
  readonly attrs?: Attrs;
  readonly sizes?: Readonly<Record<string, number>>;
  readonly tol?: keyof typeof TOL;
  /** The graph under test; default: the op applied to the inputs with `attrs`. */
  readonly build?: (e: GraphEditor, xs: readonly Value[]) => Value;
}

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);
const f = (name: string, type: string, sample?: Sampler): InputSpec => ({ name, type, ...(sample ? { sample } : {}) });

// unary
const UNARY: Record<string, Sampler> = {
  neg: uniform(-2, 2),
  exp: uniform(-2, 2),
  log: uniform(0.3, 3),
  log1p: uniform(-0.7, 3),
  expm1: uniform(-2, 2),
  sqrt: uniform(0.3, 3),
  rsqrt: uniform(0.3, 3),
  abs: awayFromZero(),
  sin: uniform(-3, 3),
  cos: uniform(-3, 3),
  tanh: uniform(-2, 2),
  sigmoid: uniform(-4, 4),
  erf: uniform(-2, 2),
};
for (const [op, sample] of Object.entries(UNARY)) {
  for (const shape of ['[3, 4]', '[]', '[1, 5]']) add({ op, label: shape, inputs: [f('x', `f32${shape}`, sample)], tol: op === 'abs' ? 'kink' : 'smooth' });
}

// binary, with broadcasting both ways and size-1 axes
const PAIRS: [string, string][] = [
  ['[2, 3]', '[2, 3]'],
  ['[2, 3]', '[3]'],
  ['[4, 1]', '[1, 3]'],
  ['[2, 1, 3]', '[]'],
  ['[1]', '[2, 3, 1]'],
];
const BINARY: Record<string, [Sampler, Sampler]> = {
  add: [uniform(-2, 2), uniform(-2, 2)],
  sub: [uniform(-2, 2), uniform(-2, 2)],
  mul: [uniform(-2, 2), uniform(-2, 2)],
  div: [uniform(-2, 2), awayFromZero(0.3, 2)],
  pow: [uniform(0.3, 2), uniform(-2, 2)],
  maximum: [lattice(0), lattice(1)],
  minimum: [lattice(1), lattice(0)],
  // a / b in [2.09, 2.8]: away from the remainder's jumps, trunc(a / b) = 2, so d/db = -2 is checked too
  mod: [uniform(2.2, 2.8), uniform(1.0, 1.05)],
};
for (const [op, [sa, sb]] of Object.entries(BINARY)) {
  for (const [a, b] of PAIRS) add({ op, label: `${a} ${b}`, inputs: [f('a', `f32${a}`, sa), f('b', `f32${b}`, sb)], tol: op === 'maximum' || op === 'minimum' ? 'kink' : 'smooth' });
}
add({ op: 'add', label: 'symbolic [B, 3] [1, 3]', inputs: [f('a', 'f32[B, 3]'), f('b', 'f32[1, 3]')], sizes: { B: 2 } });

for (const [c, a, b] of [
  ['[2, 3]', '[2, 3]', '[2, 3]'],
  ['[2, 1]', '[2, 3]', '[3]'],
  ['[2, 3]', '[]', '[1, 3]'],
]) {
  add({ op: 'select', label: `${c} ${a} ${b}`, inputs: [{ name: 'c', type: `bool${c}`, sample: bits }, f('a', `f32${a}`), f('b', `f32${b}`)] });
}
add({ op: 'cast', label: 'f32 to f16', inputs: [f('x', 'f32[2, 3]')], attrs: { dtype: 'f16' } });
add({ op: 'cast', label: 'f32 to f32', inputs: [f('x', 'f32[3]')], attrs: { dtype: 'f32' } });
add({
  op: 'cast',
  label: 'f32 to i32 gives no gradient',
  inputs: [f('x', 'f32[2, 3]', uniform(0.2, 0.8))],
  build: (e, [x]) => e.op('add', [x, e.op('cast', [e.op('cast', [x], { dtype: 'i32' })], { dtype: 'f32' })]),
});

// contraction
for (const [a, b] of [
  ['[3, 4]', '[4, 2]'],
  ['[2, 3, 4]', '[4, 5]'],
  ['[2, 1, 3, 4]', '[3, 4, 2]'],
  ['[1, 3, 4]', '[2, 4, 2]'],
  ['[B, 3, 4]', '[4, 1]'],
  // a batched A against an unbatched B: B's gradient is one matmul over the flattened rows
  ['[2, B, 3, 4]', '[4, 5]'],
]) {
  add({ op: 'matmul', label: `${a} @ ${b}`, inputs: [f('a', `f32${a}`), f('b', `f32${b}`)], sizes: { B: 2 } });
}
// transposed operands (A stored [..., k, m], B [..., n, k]), with broadcast batch axes
for (const [a, b, attrs] of [
  ['[4, 3]', '[4, 2]', { transpose_a: true }],
  ['[3, 4]', '[2, 4]', { transpose_b: true }],
  ['[2, 1, 4, 3]', '[3, 2, 4]', { transpose_a: true, transpose_b: true }],
  ['[B, 4, 3]', '[1, 4, 2]', { transpose_a: true }],
  ['[1, 3, 4]', '[2, 2, 4]', { transpose_b: true }],
  // unbatched B against a batched A: flattened rows (B stored [n, k]), or the batched form (A transposed)
  ['[B, 2, 3, 4]', '[5, 4]', { transpose_b: true }],
  ['[B, 4, 3]', '[4, 2]', { transpose_a: true }],
  ['[B, 4, 3]', '[2, 4]', { transpose_a: true, transpose_b: true }],
] as const) {
  add({ op: 'matmul', label: `${a} @ ${b} ${Object.keys(attrs).join(' ')}`, inputs: [f('a', `f32${a}`), f('b', `f32${b}`)], attrs, sizes: { B: 2 } });
}

// reductions
for (const [shape, axes, keepdims] of [
  ['[3, 4]', [1], false],
  ['[2, 3, 4]', [0, 2], true],
  ['[2, 3, 4]', [-1], false],
  ['[2, 3]', [0, 1], false],
  ['[B, 1, 3]', [0, 1], true],
] as const) {
  for (const op of ['reduce_sum', 'reduce_max']) {
    add({ op, label: `${shape} axes ${axes} keepdims ${keepdims}`, inputs: [f('x', `f32${shape}`, distinct)], attrs: { axes: [...axes], keepdims }, sizes: { B: 3 }, tol: op === 'reduce_max' ? 'kink' : 'smooth' });
  }
}

// cumsum: forward and reversed, along the first, a middle and the last axis
add({ op: 'cumsum', label: '[3, 4] axis -1', inputs: [f('x', 'f32[3, 4]')], attrs: { axis: -1 } });
add({ op: 'cumsum', label: '[2, 3, 2] axis 1 reversed', inputs: [f('x', 'f32[2, 3, 2]')], attrs: { axis: 1, reverse: true } });
add({ op: 'cumsum', label: '[B, 3] axis 0', inputs: [f('x', 'f32[B, 3]')], attrs: { axis: 0 }, sizes: { B: 4 } });

// movement
const B = sym('B');
add({ op: 'reshape', label: '[2, 6] to [3, 4]', inputs: [f('x', 'f32[2, 6]')], attrs: { shape: [3, 4] } });
add({ op: 'reshape', label: '[2, 3, 4] to [-1, 4]', inputs: [f('x', 'f32[2, 3, 4]')], attrs: { shape: [-1, 4] } });
add({ op: 'reshape', label: '[B, 3] to [B, 3, 1]', inputs: [f('x', 'f32[B, 3]')], attrs: { shape: [B, 3, 1] }, sizes: { B: 2 } });
add({ op: 'transpose', label: '[3, 4] perm [1, 0]', inputs: [f('x', 'f32[3, 4]')], attrs: { perm: [1, 0] } });
add({ op: 'transpose', label: '[2, 3, 4] perm [2, 0, 1]', inputs: [f('x', 'f32[2, 3, 4]')], attrs: { perm: [2, 0, 1] } });
add({ op: 'broadcast_to', label: '[3, 1] to [2, 3, 4]', inputs: [f('x', 'f32[3, 1]')], attrs: { shape: [2, 3, 4] } });
add({ op: 'broadcast_to', label: '[] to [2, 2]', inputs: [f('x', 'f32[]')], attrs: { shape: [2, 2] } });
add({ op: 'broadcast_to', label: '[1, 4] to [B, 4]', inputs: [f('x', 'f32[1, 4]')], attrs: { shape: [B, 4] }, sizes: { B: 3 } });
for (const [shape, starts, stops, steps, sizes] of [
  ['[5, 6]', [1, 0], [4, null], [1, 1], {}],
  ['[5, 6]', [0, 1], [null, null], [2, 1], {}],
  ['[5, 7]', [-3, 1], [null, -1], [1, 2], {}],
  ['[7, 2]', [1, 0], [7, 2], [3, 1], {}],
  ['[B, 4]', [1, 0], [null, null], [1, 1], { B: 5 }],
  ['[B, 4]', [sub(B, 2), 1], [null, 3], [1, 1], { B: 5 }],
  ['[B, 4]', [0, 0], [null, null], [2, 3], { B: 6 }],
  ['[B, 4]', [0, 0], [sub(B, 1), null], [1, 1], { B: 4 }],
] as const) {
  add({ op: 'slice', label: `${shape} ${JSON.stringify(starts)}:${JSON.stringify(stops)}:${JSON.stringify(steps)}`, inputs: [f('x', `f32${shape}`)], attrs: { starts: [...starts], stops: [...stops], steps: [...steps] }, sizes });
}
// slices that split a tensor: their cotangents join by concat (autodiff/sum-cotangents.ts), or add where they do not meet
const sliced = (e: GraphEditor, x: Value, axis: number, start: Dim, stop: Dim | null) => {
  const r = x.type.shape.length;
  return e.op('slice', [x], { starts: Array.from({ length: r }, (_, i) => (i === axis ? start : 0)), stops: Array.from({ length: r }, (_, i) => (i === axis ? stop : null)) });
};
add({ op: 'slice', label: 'a split in three along axis 1 (cotangents join by concat)', inputs: [f('x', 'f32[2, 9]')], build: (e, [x]) => e.op('add', [e.op('mul', [sliced(e, x, 1, 6, 9), sliced(e, x, 1, 0, 3)]), e.op('tanh', [sliced(e, x, 1, 3, 6)])]) });
add({ op: 'slice', label: 'a split of a symbolic axis, first row and the rest', inputs: [f('x', 'f32[B, 3]')], sizes: { B: 4 }, build: (e, [x]) => e.op('mul', [sliced(e, x, 0, 0, 1), e.op('exp', [sliced(e, x, 0, 1, null)])]) });
add({ op: 'slice', label: 'slices with a gap and overlapping slices (cotangents add)', inputs: [f('x', 'f32[2, 9]')], build: (e, [x]) => e.op('add', [e.op('reduce_sum', [e.op('mul', [sliced(e, x, 1, 0, 2), sliced(e, x, 1, 5, 7)])], { axes: [1], keepdims: true }), e.op('mul', [sliced(e, x, 1, 0, 5), sliced(e, x, 1, 4, 9)])]) });
add({ op: 'concat', label: 'axis 1', inputs: [f('a', 'f32[2, 3]'), f('b', 'f32[2, 1]'), f('c', 'f32[2, 2]')], attrs: { axis: 1 } });
add({ op: 'concat', label: 'axis 0', inputs: [f('a', 'f32[1, 3]'), f('b', 'f32[2, 3]')], attrs: { axis: -2 } });
add({ op: 'concat', label: 'one operand', inputs: [f('a', 'f32[2, 3]')], attrs: { axis: 0 } });
add({ op: 'concat', label: 'symbolic axis 0', inputs: [f('a', 'f32[B, 2]'), f('b', 'f32[3, 2]'), f('c', 'f32[B, 2]')], attrs: { axis: 0 }, sizes: { B: 2 } });
add({ op: 'pad', label: '[2, 3]', inputs: [f('x', 'f32[2, 3]')], attrs: { before: [1, 0], after: [2, 1], value: 0.5 } });
add({ op: 'pad', label: 'symbolic [B, 3]', inputs: [f('x', 'f32[B, 3]')], attrs: { before: [1, 0], after: [0, 2] }, sizes: { B: 2 } });

// gather and scatter: repeated and out-of-range (clamped) indices
const idx = (name: string, type: string, values: number[]): InputSpec => ({ name, type, values });
add({ op: 'take', label: 'axis 0', inputs: [f('t', 'f32[5, 3]'), idx('i', 'i32[4]', [0, 2, 2, 7])], attrs: { axis: 0 } });
add({ op: 'take', label: 'axis 1, 2-d indices', inputs: [f('t', 'f32[2, 5, 3]'), idx('i', 'i32[2, 2]', [4, 1, 1, -1])], attrs: { axis: 1 } });
add({ op: 'take', label: 'axis -1', inputs: [f('t', 'f32[2, 4]'), idx('i', 'u32[3]', [3, 0, 3])], attrs: { axis: -1 } });
add({ op: 'take_along_axis', label: 'axis 1', inputs: [f('a', 'f32[3, 5]'), idx('i', 'i32[3, 2]', [0, 4, 2, 2, -1, 9])], attrs: { axis: 1 } });
add({ op: 'take_along_axis', label: 'axis 1 of 3', inputs: [f('a', 'f32[4, 3, 2]'), idx('i', 'i32[4, 1, 2]', [0, 1, 2, 2, 1, 0, 1, 1])], attrs: { axis: 1 } });
add({ op: 'take_along_axis', label: 'axis 0', inputs: [f('a', 'f32[3, 2]'), idx('i', 'i32[4, 2]', [0, 2, 1, 1, 2, 0, 0, 0])], attrs: { axis: -2 } });
add({ op: 'take_along_axis', label: 'one index per row, some out of range (clamped)', inputs: [f('a', 'f32[4, 5]'), idx('i', 'i32[4, 1]', [-2, 4, 7, 1])], attrs: { axis: -1 } });
add({ op: 'take_along_axis', label: 'symbolic classes', inputs: [f('a', 'f32[2, V]'), idx('i', 'i32[2, 1]', [3, 0])], attrs: { axis: 1 }, sizes: { V: 4 } });
add({ op: 'scatter_add', label: 'axis 0', inputs: [f('u', 'f32[4, 3]'), idx('i', 'i32[4]', [0, 4, 4, 9])], attrs: { axis: 0, size: 5 } });
add({ op: 'scatter_add', label: 'axis 1, 2-d indices', inputs: [f('u', 'f32[2, 2, 2, 3]'), idx('i', 'i32[2, 2]', [1, 3, 3, 0])], attrs: { axis: 1, size: 4 } });
// with the order index_order gives (the indices 1, 3, 3, 0 sort as positions 3, 0, 1, 2)
add({ op: 'sorted_scatter_add', label: 'axis 1, 2-d indices', inputs: [f('u', 'f32[2, 2, 2, 3]'), idx('i', 'i32[2, 2]', [1, 3, 3, 0]), idx('o', 'i32[4]', [3, 0, 1, 2])], attrs: { axis: 1, size: 4 } });

// convolution
for (const [x, w, attrs] of [
  ['[2, 3, 6, 5]', '[4, 3, 3, 2]', {}],
  ['[1, 2, 7, 6]', '[3, 2, 3, 3]', { stride: [2, 2], padding: [1, 1] }],
  ['[2, 2, 8, 7]', '[2, 2, 2, 3]', { stride: [3, 2], padding: [0, 1], dilation: [2, 1] }],
  ['[B, 1, 5, 5]', '[2, 1, 3, 3]', { padding: [1, 1], dilation: [2, 2] }],
] as const) {
  add({ op: 'conv2d', label: `${x} * ${w} ${JSON.stringify(attrs)}`, inputs: [f('x', `f32${x}`), f('w', `f32${w}`)], attrs, sizes: { B: 2 } });
}
for (const [x, w, attrs] of [
  ['[2, 3, 3, 4]', '[3, 2, 3, 2]', {}],
  ['[1, 2, 3, 4]', '[2, 3, 3, 2]', { stride: [2, 1], padding: [1, 0], output_padding: [1, 0] }],
  ['[2, 2, 4, 3]', '[2, 1, 2, 3]', { stride: [1, 2], padding: [0, 1], dilation: [3, 1], output_padding: [2, 1] }],
  ['[B, 2, 3, 3]', '[2, 2, 2, 2]', { stride: [2, 2] }],
] as const) {
  add({ op: 'conv_transpose2d', label: `${x} * ${w} ${JSON.stringify(attrs)}`, inputs: [f('x', `f32${x}`), f('w', `f32${w}`)], attrs, sizes: { B: 2 } });
}

// pooling: distinct inputs, so no window has a near-tie
for (const [x, attrs] of [
  ['[2, 2, 4, 6]', { kernel: [2, 2] }],
  // windows that tile the input (stride = kernel, no padding): the window-view gradients; rows and columns no window covers
  ['[B, 1, 5, 7]', { kernel: [2, 2] }],
  ['[1, 2, 6, 5]', { kernel: [3, 2], stride: [3, 2] }],
  ['[1, 2, 7, 6]', { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }],
  ['[2, 1, 5, 7]', { kernel: [2, 3], stride: [1, 2], padding: [1, 0] }],
  ['[B, 3, 5, 5]', { kernel: [3, 3], stride: [1, 1], padding: [1, 1] }],
  // ceil_mode: last windows hanging past the padded input (tiling ones too), or none (as floor mode)
  ['[1, 2, 6, 5]', { kernel: [3, 2], stride: [2, 2], padding: [1, 0], ceil_mode: true }],
  ['[2, 1, 5, 7]', { kernel: [2, 2], ceil_mode: true }],
  ['[1, 1, 6, 6]', { kernel: [2, 2], ceil_mode: true }],
  ['[1, 2, 5, 5]', { kernel: [2, 2], stride: [3, 3], padding: [1, 1], ceil_mode: true }],
] as const) {
  for (const op of ['max_pool2d', 'avg_pool2d']) {
    add({ op, label: `${x} ${JSON.stringify(attrs)}`, inputs: [f('x', `f32${x}`, distinct)], attrs, sizes: { B: 2 }, tol: op === 'max_pool2d' ? 'kink' : 'smooth' });
  }
}
for (const [x, attrs] of [
  ['[B, 2, 5, 6]', { kernel: [3, 3], stride: [2, 2], padding: [1, 1], count_include_pad: true }],
  ['[1, 2, 6, 5]', { kernel: [3, 2], stride: [2, 2], padding: [1, 1], ceil_mode: true, count_include_pad: true }],
] as const) {
  add({ op: 'avg_pool2d', label: `${x} ${JSON.stringify(attrs)}`, inputs: [f('x', `f32${x}`, distinct)], attrs, sizes: { B: 2 }, tol: 'smooth' });
}

// ---- running one case --------------------------------------------------------------------------------------

const NOWHERE = { file: '<vjp test>', start: 0, end: 0 };

function emptyGraph(name: string, inputs: readonly InputInfo[]): Graph {
  return { name, inputs, params: [], state: [], nodes: [], outputs: new Map(), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
}

function build(c: Case): Graph {
  let id = 0;
  const inputs: InputInfo[] = c.inputs.map((i) => ({ name: i.name, value: { id: id++, type: ty(i.type), name: i.name }, span: NOWHERE }));
  const key: InputInfo = { name: 'key', value: { id: id++, type: { dtype: 'u32', shape: [] }, name: 'key' }, span: NOWHERE };
  const e = new GraphEditor(emptyGraph(`${c.op} ${c.label}`, [...inputs, key]));
  const xs = inputs.map((i) => i.value);
  const out = c.build ? c.build(e, xs) : e.op(c.op, xs, c.attrs ?? {});
  // loss = sum(out * r) with a fixed random r, so every output element matters with its own weight
  const r = e.op('random_normal', [key.value], { shape: [...out.type.shape], dtype: out.type.dtype, stream: 7 });
  const loss = e.op('reduce_sum', [e.op('mul', [out, r])], { axes: out.type.shape.map((_, i) => i) });
  e.losses.set('loss', loss);
  return e.finish();
}

function feed(t: TensorType, spec: InputSpec, rand: () => number, sizes: Map<string, number>): Tensor {
  const shape = t.shape.map((d) => evaluate(d, sizes));
  const n = shape.reduce((a, b) => a * b, 1);
  const values = spec.values ?? (spec.sample ?? uniform(-1.5, 1.5))(n, rand);
  return tensor(t.dtype, shape, values);
}

interface Worst {
  rel: number;
  abs: number;
  checks: number;
}
const worst = new Map<string, Worst>();
const covered = new Set<string>();

function check(c: Case, k: number): void {
  const graph = build(c);
  const sizes = new Map(Object.entries(c.sizes ?? {}));
  const rand = seededRandom(SEED + 7919 * k);
  const inputs = new Map<string, Tensor>();
  c.inputs.forEach((spec, i) => inputs.set(spec.name, feed(graph.inputs[i].value.type, spec, rand, sizes)));
  inputs.set('key', tensor('u32', [], [(SEED * 31 + k) >>> 0]));
  const wrt = c.inputs.filter((i) => i.wrt !== false && /^f(32|16)/.test(i.type)).map((i) => i.name);
  const tol = TOL[c.tol ?? 'smooth'];
  const w = worst.get(c.op) ?? { rel: 0, abs: 0, checks: 0 };
  for (const dirSeed of [SEED + k, SEED + k + 100003]) {
    const rows = gradcheck(graph, { inputs, params: new Map(), state: new Map() }, { wrt, sizes, seed: dirSeed });
    expect(rows.map((r) => r.name).sort()).toEqual([...wrt].sort());
    for (const row of rows) {
      w.rel = Math.max(w.rel, row.relError);
      w.abs = Math.max(w.abs, row.absError);
      w.checks++;
      const bound = tol.abs + tol.rel * Math.max(Math.abs(row.analytic), Math.abs(row.numeric));
      expect(row.absError, `d loss / d ${row.name}: analytic ${row.analytic}, numeric ${row.numeric}`).toBeLessThanOrEqual(bound);
    }
  }
  worst.set(c.op, w);
  covered.add(c.op);
}

// ---- the suite -----------------------------------------------------------------------------------------------

describe(`vjp rules against central differences (seed ${SEED}, replay with DLC_SEED=${SEED})`, () => {
  const byOp = new Map<string, Case[]>();
  for (const c of cases) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c]);
  let k = 0;
  for (const [op, list] of byOp) {
    describe(op, () => {
      for (const c of list) {
        const n = k++;
        it(c.label, () => check(c, n));
      }
    });
  }

  it('the cotangents of slices that split a tensor join by one concat: no pads, no adds', () => {
    const inputs: InputInfo[] = [{ name: 'x', value: { id: 0, type: ty('f32[B, 12]') }, span: NOWHERE }];
    const e = new GraphEditor(emptyGraph('gates', inputs));
    const x = inputs[0].value;
    // an LSTM's gates: four slices of one tensor
    const [i, fg, g, o] = [0, 1, 2, 3].map((k) => sliced(e, x, 1, 3 * k, 3 * k + 3));
    const out = e.op('add', [e.op('mul', [e.op('sigmoid', [fg]), e.op('tanh', [g])]), e.op('mul', [e.op('sigmoid', [i]), e.op('sigmoid', [o])])]);
    const loss = e.op('reduce_sum', [out], { axes: [0, 1] });
    const before = e.nodes.length;
    const dx = addGradients(e, loss, [x]).get(x.id)!;
    const g2 = e.finish();
    const producer = g2.nodes.find((n) => n.outputs.some((v) => v.id === dx.id))!;
    expect(producer.op).toBe('concat');
    expect(producer.inputs).toHaveLength(4);
    // the pads and adds the slices' vjps made are dead: nothing reads them on the way to dx
    const live = new Set<number>([dx.id]);
    for (const n of [...g2.nodes].reverse()) if (n.outputs.some((v) => live.has(v.id))) n.inputs.forEach((v) => live.add(v.id));
    const backward = g2.nodes.slice(before).filter((n) => n.outputs.some((v) => live.has(v.id)));
    expect(backward.filter((n) => n.op === 'pad' || (n.op === 'add' && n.outputs[0].type.shape.length === 2 && n.outputs[0].type.shape[1] === 12))).toEqual([]);
  });

  it('the cotangent splits evenly between tied maxima', () => {
    // Finite differences cannot see ties; the rules' choice is checked directly: equal shares.
    const tied = (op: string, types: string[], values: number[][], attrs: Attrs = {}): number[][] => {
      const inputs: InputInfo[] = types.map((t, i) => ({ name: `x${i}`, value: { id: i, type: ty(t) }, span: NOWHERE }));
      const e = new GraphEditor(emptyGraph(op, inputs));
      const out = e.op(op, inputs.map((i) => i.value), attrs);
      const loss = e.op('reduce_sum', [out], { axes: out.type.shape.map((_, i) => i) });
      const grads = addGradients(e, loss, inputs.map((i) => i.value));
      inputs.forEach((i) => e.outputs.set(i.name, grads.get(i.value.id)!));
      const feeds = new Map(inputs.map((i, k) => [i.name, tensor('f32', i.value.type.shape as number[], values[k])]));
      const res = interpretGraph(e.finish(), { inputs: feeds, params: new Map(), state: new Map() });
      return inputs.map((i) => [...res.outputs.get(i.name)!.data]);
    };
    expect(tied('reduce_max', ['f32[4]'], [[3, 1, 3, 2]], { axes: [0] })).toEqual([[0.5, 0, 0.5, 0]]);
    expect(tied('maximum', ['f32[2]', 'f32[2]'], [[2, 5], [2, 1]])).toEqual([[0.5, 1], [0.5, 0]]);
    expect(tied('minimum', ['f32[2]', 'f32[]'], [[2, 5], [2]])).toEqual([[0.5, 0], [1.5]]);
    expect(tied('max_pool2d', ['f32[1, 1, 2, 3]'], [[1, 1, 0, 1, 1, 7]], { kernel: [2, 2], stride: [1, 1] })).toEqual([[0.25, 0.25, 0, 0.25, 0.25, 1]]);
    // tiling windows (the window view): a tie split 4 ways; the column no window covers gets 0
    expect(tied('max_pool2d', ['f32[1, 1, 2, 3]'], [[1, 1, 0, 1, 1, 7]], { kernel: [2, 2] })).toEqual([[0.25, 0.25, 0, 0.25, 0.25, 0]]);
  });

  // Runs last: every case above has run by now.
  it('every differentiable op has a vjp rule and a gradient check', () => {
    const differentiable = allOps().filter((o) => o.differentiable !== 'none');
    expect(differentiable.filter((o) => !o.vjp).map((o) => o.name), 'differentiable ops without a vjp').toEqual([]);
    expect(differentiable.filter((o) => !covered.has(o.name)).map((o) => o.name), 'differentiable ops without a gradient check').toEqual([]);
    expect([...covered].filter((n) => !getOp(n)), 'checked names that are not ops').toEqual([]);
  });
});

afterAll(() => {
  if (worst.size === 0) return;
  const rows = [...worst].sort(([a], [b]) => a.localeCompare(b));
  const overall = rows.reduce((m, [, w]) => Math.max(m, w.rel), 0);
  const table = rows.map(([op, w]) => `  ${op.padEnd(18)} ${w.rel.toExponential(2).padStart(9)} ${w.abs.toExponential(2).padStart(9)} ${String(w.checks).padStart(5)}`);
  console.log([`vjp gradcheck (seed ${SEED}): worst errors per op`, `  ${'op'.padEnd(18)} ${'rel'.padStart(9)} ${'abs'.padStart(9)} ${'checks'.padStart(5)}`, ...table, `  overall worst relative error ${overall.toExponential(2)}`].join('\n'));
});
