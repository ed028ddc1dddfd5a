// cumsum: running sums along one axis (inclusive; `reverse` sums from the end), with its shape rule, reference, vjp and kernel.
import { numel, wrap } from '../interpret/tensor.ts';
import { registerOp } from './registry.ts';
import { cumsumPlans } from '../codegen/cumsum.ts';
import { attrBool, err, isNumeric, normAxis, typeStr } from './util.ts';

registerOp({
  name: 'cumsum',
  family: 'reduction',
  arity: 1,
  differentiable: 'all',
  attrs: { axis: 'required', reverse: 'optional' },
  infer([x], attrs) {
    if (!isNumeric(x.dtype)) return err(`cumsum needs a numeric tensor, found ${typeStr(x)}`, 0);
    const axis = typeof attrs.axis === 'number' ? normAxis(attrs.axis, x.shape.length) : null;
    if (axis === null) return err(`cumsum axis ${String(attrs.axis)} is out of range for ${typeStr(x)}`, 0);
    if (attrs.reverse !== undefined && typeof attrs.reverse !== 'boolean') return err('cumsum reverse must be a bool');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  /** out[..., j, ...] = sum of x[..., k, ...] for k <= j (k >= j when reversed), in float64 (integers wrap as in 32 bits). */
  interpret([x], attrs) {
    const axis = normAxis(attrs.axis as number, x.shape.length)!;
    const reverse = attrBool(attrs, 'reverse', false);
    const len = x.shape[axis];
    const inner = numel(x.shape.slice(axis + 1));
    const outer = numel(x.shape.slice(0, axis));
    const data = new Float64Array(x.data.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = 0;
        for (let s = 0; s < len; s++) {
          const j = reverse ? len - 1 - s : s;
          const at = (o * len + j) * inner + i;
          acc = wrap(x.dtype, acc + x.data[at]);
          data[at] = acc;
        }
      }
    }
    return [{ dtype: x.dtype, shape: [...x.shape], data }];
  },
  // each x[k] reaches every out[j] with j >= k: the cotangent summed from the other end
  vjp(ctx, { attrs }, [ct]) {
    if (!ct) return [null];
    const [g] = ctx.emit('cumsum', [ct], { axis: attrs.axis, reverse: !attrBool(attrs, 'reverse', false) });
    return [g];
  },
  lower: { kind: 'kernel', kernel: cumsumPlans },
});
