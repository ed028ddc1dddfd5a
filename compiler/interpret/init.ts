// The interpreter's initial parameters and state: the runtime's initializers applied to a graph, at float64.
import type { Graph, TensorType } from '../ir/types.ts';
import { initialValues } from '../../runtime/init.ts';
import { evaluate } from '../shapes/dim.ts';
import { tensor, type Tensor } from './tensor.ts';

export { fans, initialValues } from '../../runtime/init.ts';

function concrete(type: TensorType, sizes: ReadonlyMap<string, number>): number[] {
  return type.shape.map((d) => evaluate(d, sizes));
}

/** Every parameter and state buffer of a graph at its initial value; parameter k uses stream k. */
export function initialize(g: Graph, seed: number, sizes: ReadonlyMap<string, number> = new Map()): { params: Map<string, Tensor>; state: Map<string, Tensor> } {
  const params = new Map(
    g.params.map((p, k) => {
      const shape = concrete(p.value.type, sizes);
      return [p.path, tensor(p.value.type.dtype, shape, initialValues(p.init, shape, seed, k))];
    }),
  );
  const state = new Map(
    g.state.map((s, k) => {
      const shape = concrete(s.value.type, sizes);
      const values = s.path === 'rng.key' ? Float64Array.of(seed >>> 0) : initialValues(s.init, shape, seed, 0x10000 + k);
      return [s.path, tensor(s.value.type.dtype, shape, values)];
    }),
  );
  return { params, state };
}
