// Pooling primitives over NCHW: max_pool2d (padding reads as -inf) and avg_pool2d (count_include_pad = false).
import type { Attrs } from '../ir/types.ts';
import { add, floorDiv, isConcrete, sub } from '../shapes/dim.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { registerOp } from './registry.ts';
import { checkAttrList, err, isFloatType, isNumeric, typeStr } from './util.ts';

interface PoolParams {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/** stride defaults to the kernel (non-overlapping windows), padding to 0. */
function poolParams(attrs: Attrs): PoolParams {
  const k = attrs.kernel as number[];
  const pair = (key: string, d: readonly number[]): [number, number] => {
    const v = attrs[key];
    return Array.isArray(v) ? [v[0] as number, v[1] as number] : [d[0], d[1]];
  };
  return { kernel: [k[0], k[1]], stride: pair('stride', k), padding: pair('padding', [0, 0]) };
}

for (const name of ['max_pool2d', 'avg_pool2d'] as const) {
  registerOp({
    name,
    family: 'reduction',
    arity: 1,
    differentiable: 'all',
    attrs: { kernel: 'required', stride: 'optional', padding: 'optional' },
    infer([x], attrs) {
      const okType = name === 'max_pool2d' ? isNumeric(x.dtype) : isFloatType(x.dtype);
      if (!okType) return err(`${name} needs a ${name === 'max_pool2d' ? 'numeric' : 'float'} tensor, found ${typeStr(x)}`, 0);
      if (x.shape.length !== 4) return err(`${name} needs an NCHW input of rank 4, found ${typeStr(x)}`, 0, undefined, x.shape.length === 3 ? 'add a batch axis: reshape to [1, C, H, W]' : undefined);
      const bad = checkAttrList(name, attrs, 'kernel', 2, { min: 1 }) ?? (attrs.stride === undefined ? null : checkAttrList(name, attrs, 'stride', 2, { min: 1 })) ?? (attrs.padding === undefined ? null : checkAttrList(name, attrs, 'padding', 2, { min: 0 }));
      if (bad) return bad;
      const p = poolParams(attrs);
      // Past half a window a padded window could lie wholly in the padding (PyTorch's rule too).
      if (p.padding[0] * 2 > p.kernel[0] || p.padding[1] * 2 > p.kernel[1]) return err(`${name} padding must be at most half the kernel`, 0);
      const [n, c, h, w] = x.shape;
      const out = [0, 1].map((i) => add(floorDiv(sub(add([h, w][i], 2 * p.padding[i]), p.kernel[i]), p.stride[i]), 1));
      if (out.some((d) => isConcrete(d) && d <= 0)) return err(`${name} kernel is larger than the padded input: ${typeStr(x)} with kernel [${p.kernel.join(', ')}]`, 0);
      return [{ dtype: x.dtype, shape: [n, c, out[0], out[1]] }];
    },
    interpret([x], attrs) {
      return [poolRef(x, poolParams(attrs), name === 'max_pool2d')];
    },
  });
}

function poolRef(x: Tensor, p: PoolParams, max: boolean): Tensor {
  const [N, C, H, W] = x.shape;
  const HO = Math.floor((H + 2 * p.padding[0] - p.kernel[0]) / p.stride[0]) + 1;
  const WO = Math.floor((W + 2 * p.padding[1] - p.kernel[1]) / p.stride[1]) + 1;
  const out = new Float64Array(N * C * HO * WO);
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < HO; oh++)
      for (let ow = 0; ow < WO; ow++) {
        let acc = max ? -Infinity : 0;
        let count = 0;
        for (let kh = 0; kh < p.kernel[0]; kh++) {
          const ih = oh * p.stride[0] - p.padding[0] + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < p.kernel[1]; kw++) {
            const iw = ow * p.stride[1] - p.padding[1] + kw;
            if (iw < 0 || iw >= W) continue;
            const v = x.data[(nc * H + ih) * W + iw];
            acc = max ? (Number.isNaN(v) || Number.isNaN(acc) ? NaN : Math.max(acc, v)) : acc + v;
            count++;
          }
        }
        out[(nc * HO + oh) * WO + ow] = max ? acc : acc / count;
      }
  return { dtype: x.dtype, shape: [N, C, HO, WO], data: out };
}
