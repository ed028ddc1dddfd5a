// Constants and control markers: full, iota and stop_gradient.
import type { DType } from '../ir/types.ts';
import { numel, unravel, wrap } from '../interpret/tensor.ts';
import { evaluate, isDim } from '../shapes/dim.ts';
import { registerOp } from './registry.ts';
import { fullPlans, iotaPlans } from '../codegen/constant.ts';
import { copyPlans } from '../codegen/movement.ts';
import { DTYPE_NAMES, attrDims, err, evalShape, normAxis } from './util.ts';

/** Identity in value; autodiff sends no cotangent through it. */
registerOp({
  name: 'stop_gradient',
  family: 'control',
  arity: 1,
  differentiable: 'none',
  attrs: {},
  lower: { kind: 'kernel', kernel: copyPlans },
  infer([x]) {
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  interpret([x]) {
    return [{ dtype: x.dtype, shape: [...x.shape], data: x.data.slice() }];
  },
});

function checkDType(d: unknown): DType | null {
  return typeof d === 'string' && DTYPE_NAMES.includes(d as DType) ? (d as DType) : null;
}

registerOp({
  name: 'full',
  family: 'constant',
  arity: 0,
  differentiable: 'none',
  attrs: { shape: 'required', value: 'required', dtype: 'optional' },
  lower: { kind: 'kernel', kernel: fullPlans },
  infer(_inputs, attrs) {
    const dtype = checkDType(attrs.dtype ?? 'f32');
    if (!dtype) return err(`full dtype must be one of ${DTYPE_NAMES.join(', ')}`);
    // the value may be a size (`mean` divides by the batch size B, known when the graph runs)
    if (typeof attrs.value !== 'number' && typeof attrs.value !== 'boolean' && !isDim(attrs.value)) return err(`full needs a number value`);
    return [{ dtype, shape: attrDims(attrs, 'shape') }];
  },
  interpret(_inputs, attrs, env) {
    const dtype = (attrs.dtype ?? 'f32') as DType;
    const shape = evalShape(attrDims(attrs, 'shape'), env);
    const value = typeof attrs.value === 'object' && attrs.value !== null && isDim(attrs.value) ? evaluate(attrs.value, env.sizes) : Number(attrs.value);
    const data = new Float64Array(numel(shape)).fill(wrap(dtype, value));
    return [{ dtype, shape, data }];
  },
});

/** Each element is its own index along `axis` (jax.lax.broadcasted_iota). */
registerOp({
  name: 'iota',
  family: 'constant',
  arity: 0,
  differentiable: 'none',
  attrs: { shape: 'required', axis: 'optional', dtype: 'optional' },
  lower: { kind: 'kernel', kernel: iotaPlans },
  infer(_inputs, attrs) {
    const dtype = checkDType(attrs.dtype ?? 'i32');
    if (!dtype || dtype === 'bool') return err(`iota dtype must be numeric (f32, f16, i32 or u32)`);
    const shape = attrDims(attrs, 'shape');
    const axis = normAxis(typeof attrs.axis === 'number' ? attrs.axis : 0, shape.length);
    if (axis === null) return err(`iota axis ${String(attrs.axis)} is out of range for a rank-${shape.length} shape`);
    return [{ dtype, shape }];
  },
  interpret(_inputs, attrs, env) {
    const dtype = (attrs.dtype ?? 'i32') as DType;
    const shape = evalShape(attrDims(attrs, 'shape'), env);
    const axis = normAxis(typeof attrs.axis === 'number' ? attrs.axis : 0, shape.length)!;
    const data = new Float64Array(numel(shape));
    for (let i = 0; i < data.length; i++) data[i] = unravel(i, shape)[axis];
    return [{ dtype, shape, data }];
  },
});
