// strided_copy, strided_copies and strided_concat: gathers through strided views of their operands (offset and strides per output axis): chains of movement ops as one kernel.
//
// Built by compiler/optimize/fuse-views.ts from slices, reshapes, transposes and broadcasts that feed only
// one another (attention's head split: a slice of the fused q/k/v projection, a reshape, a transpose).
// Attributes: `shape` (the output's), `offset` and `strides` (sizes, possibly symbolic): output element
// i0..i{r-1} is element offset + Σ i_a * strides[a] of the operand's row-major storage.
//
// strided_copies makes several such copies of one operand in one dispatch (attention's head split: q,
// k and v are three views of one projection): attributes `ranks` (each result's rank), and flat over
// the results in order, `shapes`, `offsets` (one per result) and `strides`.
//
// strided_concat is a concat whose operands are such views (attention's backward pass concatenates the
// q, k and v gradients, each transposed back from heads): attributes `shape` (the output's), `axis`, and
// per operand k its extent `sizes[k]` along the axis, `offsets[k]` and `strides[k * rank + a]`. Output
// element i reads operand k, the one whose range along the axis holds i_axis, at offsets[k] + Σ i'_a *
// strides[k * rank + a], where i' is i with i_axis counted from the start of operand k's range. `shape`
// may split the concat's axes finer than its result, which is then the optional `out` (the same
// elements in the same order): [B, L, 192] as [B, L, 12, 16] when each operand is [B, L, 4, 16] heads
// transposed back, a view that [B, L, 64] is not.
import type { Tensor } from '../interpret/tensor.ts';
import { numel, unravel } from '../interpret/tensor.ts';
import { add, dimEquals, evaluate, isConcrete, isDim, type Dim } from '../shapes/dim.ts';
import { stridedConcatPlans, stridedCopiesPlans, stridedCopyPlans } from '../codegen/movement.ts';
import { registerOp } from './registry.ts';
import { attrDims, err, product } from './util.ts';

export const STRIDED_COPY_OP = 'strided_copy';
export const STRIDED_CONCAT_OP = 'strided_concat';
export const STRIDED_COPIES_OP = 'strided_copies';

/** A size attribute's value at the interpreter's bound sizes. */
export const sizeIn = (env: { readonly sizes?: ReadonlyMap<string, number> }) => (d: Dim): number => (isConcrete(d) ? d : evaluate(d, env.sizes as Map<string, number>));

/** out[i0..] = x[offset + Σ i_a * strides[a]]: what the strided copies read, checked in bounds. */
export function gather(op: string, x: Tensor, shape: readonly number[], offset: number, strides: readonly number[]): Tensor {
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    const at = unravel(i, shape).reduce((o, ia, a) => o + ia * strides[a], offset);
    if (at < 0 || at >= x.data.length) throw new Error(`${op} reads element ${at} of ${x.data.length}`);
    data[i] = x.data[at];
  }
  return { dtype: x.dtype, shape: [...shape], data };
}

registerOp({
  name: STRIDED_COPY_OP,
  family: 'fused',
  arity: 1,
  // built after autodiff, never differentiated
  differentiable: 'none',
  attrs: { shape: 'required', offset: 'required', strides: 'required' },
  lower: { kind: 'kernel', kernel: stridedCopyPlans },
  infer([x], attrs) {
    const shape = attrs.shape;
    const strides = attrs.strides;
    if (!Array.isArray(shape) || !Array.isArray(strides) || shape.length !== strides.length || ![...shape, ...strides].every(isDim) || !isDim(attrs.offset)) {
      return err('strided_copy needs a shape, an offset and one stride per axis, all sizes');
    }
    return [{ dtype: x.dtype, shape: [...(shape as Dim[])] }];
  },
  interpret([x], attrs, env) {
    const size = sizeIn(env);
    return [gather(STRIDED_COPY_OP, x, attrDims(attrs, 'shape').map(size), size(attrs.offset as Dim), attrDims(attrs, 'strides').map(size))];
  },
});

registerOp({
  name: STRIDED_CONCAT_OP,
  family: 'fused',
  arity: 'variadic',
  // built after autodiff, never differentiated
  differentiable: 'none',
  attrs: { shape: 'required', axis: 'required', sizes: 'required', offsets: 'required', strides: 'required', out: 'optional' },
  lower: { kind: 'kernel', kernel: stridedConcatPlans },
  infer(xs, attrs) {
    const { shape, axis, sizes, offsets, strides, out } = attrs;
    const n = xs.length;
    const dims = (v: unknown, len: number) => Array.isArray(v) && v.length === len && v.every(isDim);
    if (!Array.isArray(shape) || !shape.every(isDim) || typeof axis !== 'number' || !Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
      return err('strided_concat needs an output shape and an axis of it');
    }
    if (n === 0 || !dims(sizes, n) || !dims(offsets, n) || !dims(strides, n * shape.length)) {
      return err('strided_concat needs, per operand, its extent along the axis, an offset and one stride per axis, all sizes');
    }
    const total = (sizes as Dim[]).reduce<Dim>((a, b) => add(a, b), 0);
    if (!dimEquals(total, (shape as Dim[])[axis])) return err(`strided_concat's operands span ${String(total)} along axis ${axis}, not the output's ${String((shape as Dim[])[axis])}`);
    const bad = xs.findIndex((x) => x.dtype !== xs[0].dtype);
    if (bad > 0) return err(`strided_concat operands have different dtypes: ${xs[0].dtype} and ${xs[bad].dtype}`, bad, 0);
    if (out === undefined) return [{ dtype: xs[0].dtype, shape: [...(shape as Dim[])] }];
    if (!Array.isArray(out) || !out.every(isDim) || !dimEquals(product(out as Dim[]), product(shape as Dim[]))) {
      return err(`strided_concat's result shape ${String(out)} does not hold the ${String(product(shape as Dim[]))} elements of its index shape`);
    }
    return [{ dtype: xs[0].dtype, shape: [...(out as Dim[])] }];
  },
  interpret(xs, attrs, env) {
    const size = sizeIn(env);
    const shape = attrDims(attrs, 'shape').map(size);
    const axis = attrs.axis as number;
    const sizes = attrDims(attrs, 'sizes').map(size);
    const offsets = attrDims(attrs, 'offsets').map(size);
    const strides = attrDims(attrs, 'strides').map(size);
    const rank = shape.length;
    const data = new Float64Array(numel(shape));
    for (let i = 0; i < data.length; i++) {
      const at = unravel(i, shape);
      let k = 0;
      while (k < sizes.length - 1 && at[axis] >= sizes[k]) at[axis] -= sizes[k++];
      const from = at.reduce((o, ia, a) => o + ia * strides[k * rank + a], offsets[k]);
      if (from < 0 || from >= xs[k].data.length) throw new Error(`strided_concat reads element ${from} of operand ${k}'s ${xs[k].data.length}`);
      data[i] = xs[k].data[from];
    }
    return [{ dtype: xs[0].dtype, shape: attrs.out === undefined ? shape : attrDims(attrs, 'out').map(size), data } satisfies Tensor];
  },
});

/** The results of a strided_copies node: per result its shape, offset and strides (flat attributes split by `ranks`). */
export function stridedCopiesViews(attrs: Readonly<Record<string, unknown>>): { shape: Dim[]; offset: Dim; strides: Dim[] }[] | undefined {
  const { ranks, shapes, offsets, strides } = attrs;
  if (!Array.isArray(ranks) || ranks.length === 0 || !ranks.every((r) => typeof r === 'number' && Number.isInteger(r) && r >= 0)) return undefined;
  const total = (ranks as number[]).reduce((a, b) => a + b, 0);
  const dims = (v: unknown, len: number) => Array.isArray(v) && v.length === len && v.every(isDim);
  if (!dims(shapes, total) || !dims(offsets, ranks.length) || !dims(strides, total)) return undefined;
  let at = 0;
  return (ranks as number[]).map((r, k) => {
    const view = { shape: (shapes as Dim[]).slice(at, at + r), offset: (offsets as Dim[])[k], strides: (strides as Dim[]).slice(at, at + r) };
    at += r;
    return view;
  });
}

registerOp({
  name: STRIDED_COPIES_OP,
  family: 'fused',
  arity: 1,
  // built after autodiff, never differentiated
  differentiable: 'none',
  attrs: { ranks: 'required', shapes: 'required', offsets: 'required', strides: 'required' },
  lower: { kind: 'kernel', kernel: stridedCopiesPlans },
  infer([x], attrs) {
    const views = stridedCopiesViews(attrs);
    if (!views) return err('strided_copies needs, per result, its rank, shape, offset and one stride per axis, all sizes');
    return views.map((v) => ({ dtype: x.dtype, shape: v.shape }));
  },
  interpret([x], attrs, env) {
    const size = sizeIn(env);
    return stridedCopiesViews(attrs)!.map((v) => gather(STRIDED_COPIES_OP, x, v.shape.map(size), size(v.offset), v.strides.map(size)));
  },
});
