// Parameter initializers (zeros, ones, constant, normal, uniform, Glorot and He), seeded and counter-based, shared by the runtime and the interpreter.
import { normalAt, uniformAt } from './philox.ts';

/** An initializer name and its options, as the compiler records it. */
export interface InitSpec {
  readonly kind: string;
  readonly options: Readonly<Record<string, number>>;
}

/**
 * Fan-in and fan-out of a weight as stored by the stdlib: a matrix is [in, out] (Dense), a
 * convolution kernel is [out, in, kh, kw] (OIHW), a vector is its own fan both ways.
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  if (shape.length === 2) return { fanIn: shape[0], fanOut: shape[1] };
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/**
 * The values of one parameter. Element i draws from Philox with key `seed` and stream `stream`
 * (one per parameter), so every run with the same seed starts from the same weights:
 *   glorot_uniform  U(-a, a), a = sqrt(6 / (fan_in + fan_out))     glorot_normal  N(0, 2 / (fan_in + fan_out))
 *   he_uniform      U(-b, b), b = sqrt(6 / fan_in)                  he_normal      N(0, 2 / fan_in)
 *   normal(std = 1, mean = 0)   uniform(low = 0, high = 1)   constant(value)   zeros   ones
 * Any of them with the option `zero_row: i` then sets row i (along the first axis) to zero.
 */
export function initialValues(spec: InitSpec, shape: readonly number[], seed: number, stream: number): Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const o = spec.options;
  const { fanIn, fanOut } = fans(shape);
  const uniform = (low: number, high: number) => {
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * uniformAt(seed, stream, i);
  };
  const normal = (mean: number, std: number) => {
    for (let i = 0; i < n; i++) out[i] = mean + std * normalAt(seed, stream, i);
  };
  switch (spec.kind) {
    case 'zeros':
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'constant':
      out.fill(o.value ?? 0);
      break;
    case 'normal':
      normal(o.mean ?? 0, o.std ?? 1);
      break;
    case 'uniform':
      uniform(o.low ?? 0, o.high ?? 1);
      break;
    case 'glorot_uniform': {
      const a = Math.sqrt(6 / (fanIn + fanOut));
      uniform(-a, a);
      break;
    }
    case 'glorot_normal':
      normal(0, Math.sqrt(2 / (fanIn + fanOut)));
      break;
    case 'he_uniform': {
      const b = Math.sqrt(6 / fanIn);
      uniform(-b, b);
      break;
    }
    case 'he_normal':
      normal(0, Math.sqrt(2 / fanIn));
      break;
    default:
      throw new Error(`unknown initializer ${spec.kind}`);
  }
  // `zero_row: i`: row i along the first axis starts at zero (an embedding's padding row, as torch.nn.Embedding's)
  const row = o.zero_row;
  if (row !== undefined && shape.length > 0 && row >= 0 && row < shape[0]) {
    const width = n / shape[0];
    out.fill(0, row * width, (row + 1) * width);
  }
  return out;
}
