// Counter-based random primitives: random_uniform and random_normal from a u32 key, a stream id and Philox-4x32-10.
import type { DType } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import { numel } from '../interpret/tensor.ts';
import { normalAt, uniformAt } from '../../runtime/philox.ts';
import { registerOp } from './registry.ts';
import { randomPlans } from '../codegen/random.ts';
import { attrDims, err, evalShape, isFloatType, typeStr } from './util.ts';

// The algorithm and its bit-exact contract live with the runtime (runtime/philox.ts), which the initializers share.
export { mulhilo32, normalAt, philox4x32, uniformAt } from '../../runtime/philox.ts';

for (const [name, sample] of [
  ['random_uniform', uniformAt],
  ['random_normal', normalAt],
] as const) {
  registerOp({
    name,
    family: 'random',
    arity: 1,
    differentiable: 'none',
    attrs: { shape: 'required', dtype: 'optional', stream: 'optional' },
    lower: { kind: 'kernel', kernel: randomPlans },
    infer([key], attrs) {
      if (key.dtype !== 'u32' || key.shape.length !== 0) return err(`${name} needs a u32 scalar key, found ${typeStr(key)}`, 0);
      const dtype = (attrs.dtype ?? 'f32') as DType;
      if (!isFloatType(dtype)) return err(`${name} makes floats, not ${String(attrs.dtype)}`);
      const stream = attrs.stream ?? 0;
      if (typeof stream !== 'number' || !Number.isInteger(stream) || stream < 0 || stream > 0xffffffff) return err(`${name} stream must be a u32`);
      return [{ dtype, shape: attrDims(attrs, 'shape') }];
    },
    interpret([key], attrs, env) {
      const shape = evalShape(attrDims(attrs, 'shape') as Dim[], env);
      const k = key.data[0] >>> 0;
      const stream = ((attrs.stream ?? 0) as number) >>> 0;
      const data = new Float64Array(numel(shape));
      for (let i = 0; i < data.length; i++) data[i] = sample(k, stream, i);
      return [{ dtype: (attrs.dtype ?? 'f32') as DType, shape, data }];
    },
  });
}
