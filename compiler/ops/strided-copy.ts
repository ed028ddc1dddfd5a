// strided_copy: one gather through a strided view of its operand (offset and strides per output axis): a chain of movement ops as one kernel.
//
// Built by compiler/optimize/fuse-views.ts from slices, reshapes, transposes and broadcasts that feed only
// one another (attention's head split: a slice of the fused q/k/v projection, a reshape, a transpose).
// Attributes: `shape` (the output's), `offset` and `strides` (sizes, possibly symbolic): output element
// i0..i{r-1} is element offset + Σ i_a * strides[a] of the operand's row-major storage.
import type { Tensor } from '../interpret/tensor.ts';
import { numel, unravel } from '../interpret/tensor.ts';
import { evaluate, isConcrete, isDim, type Dim } from '../shapes/dim.ts';
import { stridedCopyPlans } from '../codegen/movement.ts';
import { registerOp } from './registry.ts';
import { attrDims, err } from './util.ts';

export const STRIDED_COPY_OP = 'strided_copy';

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
    const size = (d: Dim) => (isConcrete(d) ? d : evaluate(d, env.sizes as Map<string, number>));
    const shape = attrDims(attrs, 'shape').map(size);
    const strides = attrDims(attrs, 'strides').map(size);
    const offset = size(attrs.offset as Dim);
    const data = new Float64Array(numel(shape));
    for (let i = 0; i < data.length; i++) {
      const at = unravel(i, shape).reduce((o, ia, a) => o + ia * strides[a], offset);
      if (at < 0 || at >= x.data.length) throw new Error(`strided_copy reads element ${at} of ${x.data.length}`);
      data[i] = x.data[at];
    }
    return [{ dtype: x.dtype, shape, data } satisfies Tensor];
  },
});
