// Reduction primitives: reduce_sum and reduce_max over a set of axes, and argmax along one axis.
import type { Attrs, TensorType } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import { numel, strides, unravel, wrap, type Tensor } from '../interpret/tensor.ts';
import { registerOp, type ShapeError } from './registry.ts';
import { reducePlans } from '../codegen/reduce.ts';
import { err, isNumeric, normAxis, typeStr } from './util.ts';
import { builder, keptShape } from './vjp-util.ts';

/** A reduction's axes, normalized and sorted, or why they do not fit `x`. */
export function reduceAxes(op: string, x: TensorType, attrs: Attrs): number[] | ShapeError {
  const raw = attrs.axes;
  if (!Array.isArray(raw) || !raw.every((a) => typeof a === 'number')) return err(`${op} needs an axes attribute: a list of integers`);
  const axes: number[] = [];
  for (const a of raw as number[]) {
    const n = normAxis(a, x.shape.length);
    if (n === null) return err(`${op} axis ${a} is out of range for ${typeStr(x)}`, 0);
    if (axes.includes(n)) return err(`${op} axis ${a} is repeated`, 0);
    axes.push(n);
  }
  return axes.sort((p, q) => p - q);
}

function reducedShape<T>(shape: readonly T[], axes: readonly number[], keepdims: boolean, one: T): T[] {
  const out: T[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(one);
  });
  return out;
}

/** Fold every element into its output slot; `init` is the identity (0 for sum, -inf for max). */
function reduceRef(x: Tensor, axes: readonly number[], keepdims: boolean, init: number, f: (acc: number, v: number) => number): Tensor {
  const outShapeKeep = reducedShape(x.shape, axes, true, 1);
  const outStr = strides(outShapeKeep).map((s, i) => (axes.includes(i) ? 0 : s));
  const out = new Float64Array(numel(outShapeKeep)).fill(init);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    let o = 0;
    for (let a = 0; a < idx.length; a++) o += idx[a] * outStr[a];
    out[o] = f(out[o], x.data[i]);
  }
  for (let i = 0; i < out.length; i++) out[i] = wrap(x.dtype, out[i]);
  return { dtype: x.dtype, shape: reducedShape(x.shape, axes, keepdims, 1), data: out };
}

for (const [name, init, f] of [
  ['reduce_sum', 0, (acc: number, v: number) => acc + v],
  // NaN-propagating max; an empty reduction gives -inf (integers: the identity is wrapped, so keep axes non-empty).
  ['reduce_max', -Infinity, (acc: number, v: number) => (Number.isNaN(acc) || Number.isNaN(v) ? NaN : Math.max(acc, v))],
] as const) {
  const sum = name === 'reduce_sum';
  registerOp({
    name,
    family: 'reduction',
    arity: 1,
    differentiable: 'all',
    attrs: { axes: 'required', keepdims: 'optional' },
    infer([x], attrs) {
      if (!isNumeric(x.dtype)) return err(`${name} needs a numeric tensor, found ${typeStr(x)}`, 0, undefined, 'cast the bools to i32 or f32 first');
      const axes = reduceAxes(name, x, attrs);
      if (!Array.isArray(axes)) return axes;
      return [{ dtype: x.dtype, shape: reducedShape<Dim>(x.shape, axes, attrs.keepdims === true, 1) }];
    },
    interpret([x], attrs) {
      const axes = (attrs.axes as number[]).map((a) => normAxis(a, x.shape.length)!);
      // Integer sums wrap per addition in hardware; summing exactly then wrapping once gives the same bits.
      return [reduceRef(x, axes, attrs.keepdims === true, sum ? 0 : init, f)];
    },
    lower: { kind: 'kernel', kernel: reducePlans },
    vjp(ctx, { inputs: [x], outputs: [y], attrs }, [ct]) {
      if (!ct) return [null];
      const g = builder(ctx);
      const axes = (attrs.axes as number[]).map((a) => normAxis(a, x.type.shape.length)!);
      const kept = keptShape(x.type.shape, axes);
      const ctKept = g.reshape(ct, kept);
      if (sum) return [g.broadcastTo(ctKept, x.type.shape)];
      // Every position equal to the max shares the cotangent equally: a valid subgradient under ties.
      const mask = g.cast(g.eq(x, g.reshape(y, kept)), x.type.dtype);
      const count = g.sum(mask, axes, true);
      return [g.mul(mask, g.div(ctKept, count))];
    },
  });
}

registerOp({
  name: 'argmax',
  family: 'reduction',
  arity: 1,
  differentiable: 'none',
  attrs: { axis: 'required' },
  infer([x], attrs) {
    if (!isNumeric(x.dtype)) return err(`argmax needs a numeric tensor, found ${typeStr(x)}`, 0);
    const axis = typeof attrs.axis === 'number' ? normAxis(attrs.axis, x.shape.length) : null;
    if (axis === null) return err(`argmax axis ${String(attrs.axis)} is out of range for ${typeStr(x)}`, 0);
    return [{ dtype: 'i32', shape: x.shape.filter((_, i) => i !== axis) }];
  },
  /** The first index of the largest value, NaN counting as the largest (torch.argmax); 0 when every value is -inf. */
  interpret([x], attrs) {
    const axis = normAxis(attrs.axis as number, x.shape.length)!;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const len = x.shape[axis];
    const inner = numel(x.shape.slice(axis + 1));
    const outer = numel(x.shape.slice(0, axis));
    const out = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = -Infinity;
        let bestAt = 0;
        for (let j = 0; j < len; j++) {
          const v = x.data[(o * len + j) * inner + i];
          if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
            best = v;
            bestAt = j;
          }
        }
        out[o * inner + i] = bestAt;
      }
    }
    return [{ dtype: 'i32', shape: outShape, data: out }];
  },
  lower: { kind: 'kernel', kernel: reducePlans },
});
