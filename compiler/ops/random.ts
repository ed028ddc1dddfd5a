// Counter-based random primitives: random_uniform and random_normal from a u32 key, a stream id and Philox-4x32-10.
import type { DType } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import { numel } from '../interpret/tensor.ts';
import { registerOp } from './registry.ts';
import { randomPlans } from '../codegen/random.ts';
import { attrDims, err, evalShape, isFloatType, typeStr } from './util.ts';

/*
 * The bit-exact algorithm (the WGSL lowering must reproduce the integer part exactly):
 *
 *   Philox-4x32-10 (Salmon et al., SC'11; Random123's philox4x32_10), all arithmetic mod 2^32:
 *     M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85
 *     round((c0, c1, c2, c3), (k0, k1)):
 *       (hi0, lo0) = 64-bit product M0 * c0 split in halves; (hi1, lo1) = M1 * c2
 *       -> (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
 *     ten rounds; between consecutive rounds the key is bumped: k0 += W0, k1 += W1 (nine bumps).
 *   For element i (row-major flat index) of the output:
 *     counter = (i, 0, 0, 0), key = (key input, stream attribute); (x0, x1, x2, x3) = philox(counter, key)
 *   uniform: u = (x0 >> 8) * 2^-24, in [0, 1), exactly representable in f32.
 *   normal (Box-Muller, cosine branch only, so each element is independent of its neighbours):
 *     u1 = ((x0 >> 8) + 1) * 2^-24 in (0, 1], u2 = (x1 >> 8) * 2^-24
 *     z = sqrt(-2 ln u1) * cos(2 pi u2)
 *   The integer bits and u, u1, u2 match bit for bit; z then differs from WGSL by log/cos rounding only.
 *   Flat indices past 2^32 would need the second counter word; the interpreter does not go there.
 */
const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High and low 32 bits of a 32x32-bit product, from 16-bit halves so every partial product is exact in f64. */
export function mulhilo32(a: number, b: number): [number, number] {
  const lo = Math.imul(a, b) >>> 0;
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const cross = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (aH * bH + (lh >>> 16) + (hl >>> 16) + Math.floor(cross / 65536)) >>> 0;
  return [hi, lo];
}

export function philox4x32(counter: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0);
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo32(M0, c0);
    const [hi1, lo1] = mulhilo32(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

const TWO_M24 = 1 / 16777216;

export function uniformAt(key: number, stream: number, i: number): number {
  const [x0] = philox4x32([i, 0, 0, 0], [key, stream]);
  return (x0 >>> 8) * TWO_M24;
}

export function normalAt(key: number, stream: number, i: number): number {
  const [x0, x1] = philox4x32([i, 0, 0, 0], [key, stream]);
  const u1 = ((x0 >>> 8) + 1) * TWO_M24;
  const u2 = (x1 >>> 8) * TWO_M24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

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
