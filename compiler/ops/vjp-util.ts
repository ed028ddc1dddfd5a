// Small IR builders shared by the vjp rules: an op-per-method emitter, constants, unbroadcast and axis padding.
import type { AttrValue, Attrs, DType, TensorType, Value } from '../ir/types.ts';
import { type Dim, add, dimEquals, isConcrete, mul, sub } from '../shapes/dim.ts';
import type { VjpContext } from './registry.ts';

/** Emit one single-output primitive. */
export function op1(ctx: VjpContext, op: string, inputs: readonly Value[], attrs: Attrs = {}): Value {
  return ctx.emit(op, inputs, attrs)[0];
}

/** A scalar constant of the given dtype; the value may be a size (`n - 1` for a symbolic n). */
export function constant(ctx: VjpContext, value: number | Dim, dtype: DType): Value {
  return op1(ctx, 'full', [], { shape: [], value, dtype });
}

/** `full` over a (possibly symbolic) shape. */
export function fill(ctx: VjpContext, shape: readonly Dim[], value: number, dtype: DType): Value {
  return op1(ctx, 'full', [], { shape: [...shape], value, dtype });
}

export const zerosLike = (ctx: VjpContext, t: TensorType): Value => fill(ctx, t.shape, 0, t.dtype);
export const onesLike = (ctx: VjpContext, t: TensorType): Value => fill(ctx, t.shape, 1, t.dtype);

export function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]));
}

/**
 * Terse arithmetic on values for writing rules: `g.mul(ct, g.cos(x))`. Numbers are turned into scalar
 * constants of the other operand's dtype, so `g.mul(y, 2)` needs no explicit `full`.
 */
export function builder(ctx: VjpContext) {
  const lift = (v: Value | number, like: Value): Value => (typeof v === 'number' ? constant(ctx, v, like.type.dtype) : v);
  const bin = (op: string) => (a: Value | number, b: Value | number): Value => {
    const like = typeof a === 'number' ? (b as Value) : a;
    return op1(ctx, op, [lift(a, like), lift(b, like)]);
  };
  const un = (op: string) => (x: Value): Value => op1(ctx, op, [x]);
  return {
    /** A scalar constant with the dtype of `like`. */
    scalar: (v: number, like: Value): Value => constant(ctx, v, like.type.dtype),
    add: bin('add'),
    sub: bin('sub'),
    mul: bin('mul'),
    div: bin('div'),
    pow: bin('pow'),
    eq: bin('eq'),
    gt: bin('gt'),
    lt: bin('lt'),
    neg: un('neg'),
    exp: un('exp'),
    log: un('log'),
    sin: un('sin'),
    cos: un('cos'),
    sign: un('sign'),
    /** select(c, a, b) with numbers lifted to the dtype of the value branch. */
    select: (c: Value, a: Value | number, b: Value | number): Value => {
      const like = typeof a === 'number' ? (b as Value) : a;
      return op1(ctx, 'select', [c, lift(a, like), lift(b, like)]);
    },
    cast: (x: Value, dtype: DType): Value => (x.type.dtype === dtype ? x : op1(ctx, 'cast', [x], { dtype })),
    reshape: (x: Value, shape: readonly Dim[]): Value => (sameShape(x.type.shape, shape) ? x : op1(ctx, 'reshape', [x], { shape: [...shape] })),
    transpose: (x: Value, perm: readonly number[]): Value => (perm.every((p, i) => p === i) ? x : op1(ctx, 'transpose', [x], { perm: [...perm] })),
    sum: (x: Value, axes: readonly number[], keepdims = false): Value => (axes.length === 0 ? x : op1(ctx, 'reduce_sum', [x], { axes: [...axes], keepdims })),
    broadcastTo: (x: Value, shape: readonly Dim[]): Value => (sameShape(x.type.shape, shape) ? x : op1(ctx, 'broadcast_to', [x], { shape: [...shape] })),
  };
}

/**
 * Sum a cotangent of a broadcast result back to an operand's type: over the leading axes the operand
 * lacks and over the axes where the operand has size 1 and the cotangent does not, then reshape.
 */
export function unbroadcast(ctx: VjpContext, ct: Value, target: TensorType): Value {
  const g = builder(ctx);
  const s = ct.type.shape;
  const t = target.shape;
  const lead = s.length - t.length;
  if (lead < 0) throw new Error(`internal: cannot unbroadcast rank ${s.length} to rank ${t.length}`);
  const axes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (i < lead || (dimEquals(t[i - lead], 1) && !dimEquals(s[i], 1))) axes.push(i);
  }
  return g.cast(g.reshape(g.sum(ct, axes), t), target.dtype);
}

/** The shape a reduction over `axes` would have with keepdims: size 1 on the reduced axes. */
export function keptShape(shape: readonly Dim[], axes: readonly number[]): Dim[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Slice `v` to [start, stop) on one axis, every other axis whole. */
export function sliceAxis(ctx: VjpContext, v: Value, axis: number, start: Dim, stop: Dim): Value {
  const r = v.type.shape.length;
  const starts: AttrValue[] = Array.from({ length: r }, (_, i) => (i === axis ? start : 0));
  const stops: AttrValue[] = Array.from({ length: r }, (_, i) => (i === axis ? stop : null));
  return op1(ctx, 'slice', [v], { starts, stops });
}

/**
 * Zero-pad one axis by `before` and `after` elements. Concrete amounts use `pad`; symbolic ones
 * (pad's attributes are plain numbers) concatenate `full` zero blocks, whose shapes may be symbolic.
 */
export function padAxis(ctx: VjpContext, v: Value, axis: number, before: Dim, after: Dim): Value {
  const r = v.type.shape.length;
  if (isConcrete(before) && isConcrete(after)) {
    if (before < 0 || after < 0) throw new Error(`internal: negative padding ${before}, ${after}`);
    if (before === 0 && after === 0) return v;
    const b = Array.from({ length: r }, (_, i) => (i === axis ? before : 0));
    const a = Array.from({ length: r }, (_, i) => (i === axis ? after : 0));
    return op1(ctx, 'pad', [v], { before: b, after: a });
  }
  const block = (n: Dim) => fill(ctx, v.type.shape.map((d, i) => (i === axis ? n : d)), 0, v.type.dtype);
  const parts: Value[] = [];
  if (!dimEquals(before, 0)) parts.push(block(before));
  parts.push(v);
  if (!dimEquals(after, 0)) parts.push(block(after));
  return parts.length === 1 ? v : op1(ctx, 'concat', parts, { axis });
}

/**
 * The transpose of taking every `step`-th element from `start` on one axis of an axis of size `n`:
 * interleave `step - 1` zeros after each element (reshape to [..., m, 1, ...], pad to [..., m, step,
 * ...], flatten), drop the trailing zeros, then zero-pad to `n`.
 */
export function unsliceAxis(ctx: VjpContext, ct: Value, axis: number, n: Dim, start: Dim, step: number): Value {
  const g = builder(ctx);
  const m = ct.type.shape[axis];
  let v = ct;
  let span: Dim = m;
  if (step > 1) {
    const shape = v.type.shape;
    const split = [...shape.slice(0, axis), m, 1, ...shape.slice(axis + 1)];
    v = padAxis(ctx, g.reshape(v, split), axis + 1, 0, step - 1);
    v = g.reshape(v, [...shape.slice(0, axis), mul(m, step), ...shape.slice(axis + 1)]);
    span = add(mul(sub(m, 1), step), 1);
    v = sliceAxis(ctx, v, axis, 0, span);
  }
  return padAxis(ctx, v, axis, start, sub(sub(n, start), span));
}
