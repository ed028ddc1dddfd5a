// Pooling primitives over NCHW: max_pool2d (padding reads as -inf) and avg_pool2d (count_include_pad false or true), with PyTorch's ceil_mode.
import type { Attrs } from '../ir/types.ts';
import type { Value } from '../ir/types.ts';
import { type Dim, add, dimEquals, dimToString, floorDiv, isConcrete, mul, sub } from '../shapes/dim.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { registerOp, type VjpContext } from './registry.ts';
import { poolPlans } from '../codegen/pool.ts';
import { checkAttrList, err, isFloatType, isNumeric, typeStr } from './util.ts';
import { builder, constant, fill, op1, padAxis, sliceAxis } from './vjp-util.ts';

export interface PoolParams {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  /** PyTorch's ceil_mode: a last, partial window where the stride leaves input over (it may hang past the padding). */
  ceil: boolean;
  /** avg_pool2d: divide by the window's positions inside the padded input (PyTorch's default), not only the real ones. */
  countPad: boolean;
}

/** stride defaults to the kernel (non-overlapping windows), padding to 0, both modes off. */
export function poolParams(attrs: Attrs): PoolParams {
  const k = attrs.kernel as number[];
  const pair = (key: string, d: readonly number[]): [number, number] => {
    const v = attrs[key];
    return Array.isArray(v) ? [v[0] as number, v[1] as number] : [d[0], d[1]];
  };
  return { kernel: [k[0], k[1]], stride: pair('stride', k), padding: pair('padding', [0, 0]), ceil: attrs.ceil_mode === true, countPad: attrs.count_include_pad === true };
}

/**
 * The number of windows along a spatial axis of size n. Floor mode: the windows inside the padded
 * input. Ceil mode (PyTorch's rule): one more where the stride leaves positions over, unless that
 * window would start past the input and its left padding; it needs a concrete n.
 */
export function poolExtent(n: Dim, p: PoolParams, axis: 0 | 1): Dim {
  const [k, s, pad] = [p.kernel[axis], p.stride[axis], p.padding[axis]];
  if (!p.ceil || !isConcrete(n)) return add(floorDiv(sub(add(n, 2 * pad), k), s), 1);
  let out = Math.ceil((n + 2 * pad - k) / s) + 1;
  if ((out - 1) * s >= n + pad) out--;
  return out;
}

/** How far the last window hangs past the padded input (ceil mode only; 0 otherwise). */
export function overhang(n: number, windows: number, p: PoolParams, axis: 0 | 1): number {
  return Math.max(0, (windows - 1) * p.stride[axis] + p.kernel[axis] - (n + 2 * p.padding[axis]));
}

for (const name of ['max_pool2d', 'avg_pool2d'] as const) {
  registerOp({
    name,
    family: 'reduction',
    arity: 1,
    differentiable: 'all',
    attrs: name === 'max_pool2d'
      ? { kernel: 'required', stride: 'optional', padding: 'optional', ceil_mode: 'optional' }
      : { kernel: 'required', stride: 'optional', padding: 'optional', ceil_mode: 'optional', count_include_pad: 'optional' },
    lower: { kind: 'kernel', kernel: poolPlans },
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
      if (p.ceil && (!isConcrete(h) || !isConcrete(w))) return err(`${name} with ceil_mode needs concrete spatial sizes, found ${typeStr(x)}`, 0);
      const out = [poolExtent(h, p, 0), poolExtent(w, p, 1)];
      if (out.some((d) => isConcrete(d) && d <= 0)) return err(`${name} kernel is larger than the padded input: ${typeStr(x)} with kernel [${p.kernel.join(', ')}]`, 0);
      return [{ dtype: x.dtype, shape: [n, c, out[0], out[1]] }];
    },
    interpret([x], attrs) {
      return [poolRef(x, poolParams(attrs), name === 'max_pool2d')];
    },
    vjp(ctx, { inputs: [x], outputs: [y], attrs }, [ct]) {
      if (!ct) return [null];
      return [name === 'max_pool2d' ? maxPoolGrad(ctx, x, y, ct, poolParams(attrs)) : avgPoolGrad(ctx, x, ct, poolParams(attrs))];
    },
  });
}

function poolRef(x: Tensor, p: PoolParams, max: boolean): Tensor {
  const [N, C, H, W] = x.shape;
  const HO = poolExtent(H, p, 0) as number;
  const WO = poolExtent(W, p, 1) as number;
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
        out[(nc * HO + oh) * WO + ow] = max ? acc : acc / (p.countPad ? paddedCount(oh, ow, H, W, p) : count);
      }
  return { dtype: x.dtype, shape: [N, C, HO, WO], data: out };
}

/** PyTorch's count_include_pad divisor: the window's positions inside the padded input (not those hanging past it in ceil mode). */
export function paddedCount(oh: number, ow: number, h: number, w: number, p: PoolParams): number {
  const along = (o: number, n: number, axis: 0 | 1) => {
    const start = o * p.stride[axis] - p.padding[axis];
    return Math.min(start + p.kernel[axis], n + p.padding[axis]) - start;
  };
  return along(oh, h, 0) * along(ow, w, 1);
}

/*
 * Pooling gradients are built from existing primitives, with no pooling-specific backward primitive.
 * In general every (n, c) plane becomes its own image of one channel, and conv_transpose2d with stride and padding
 * equal to the pool's scatters each window's values back onto the input positions it covered (summing
 * where windows overlap and dropping the padding), with output_padding restoring the rows and columns
 * no window reached.
 */

/** output_padding for conv_transpose2d to give back size n from m windows: (n + 2p - k) mod s. */
function restorePadding(n: Dim, m: Dim, k: number, s: number, p: number): number {
  const extra = sub(sub(add(n, 2 * p), k), mul(sub(m, 1), s));
  if (!isConcrete(extra)) {
    throw new Error(`internal: the gradient of pooling needs concrete spatial sizes when the stride does not divide them evenly, found ${dimToString(extra)}`);
  }
  return extra;
}

function scatterWindows(ctx: VjpContext, v: Value, kernel: Value, x: Value, p: PoolParams): Value {
  const [, , h, w] = x.type.shape;
  const [, , ho, wo] = v.type.shape;
  // negative in ceil mode, where the last window hangs past the padded input: those positions are cut off after
  const extra = [restorePadding(h, ho, p.kernel[0], p.stride[0], p.padding[0]), restorePadding(w, wo, p.kernel[1], p.stride[1], p.padding[1])];
  let planes = op1(ctx, 'conv_transpose2d', [v, kernel], { stride: p.stride, padding: p.padding, output_padding: extra.map((e) => Math.max(0, e)) });
  if (extra[0] < 0) planes = sliceAxis(ctx, planes, 2, 0, h);
  if (extra[1] < 0) planes = sliceAxis(ctx, planes, 3, 0, w);
  return builder(ctx).reshape(planes, x.type.shape);
}

/** How far the last windows hang past the padded input, per spatial axis (ceil mode; [0, 0] otherwise). */
function overhangs(x: Value, ho: Dim, wo: Dim, p: PoolParams): [number, number] {
  if (!p.ceil) return [0, 0];
  const [, , h, w] = x.type.shape;
  return [overhang(h as number, ho as number, p, 0), overhang(w as number, wo as number, p, 1)];
}

/** Whether the windows tile the input: stride = kernel, no padding, none hanging past it (2x2 at stride 2, the common pool). */
function tiling(p: PoolParams, hang: readonly number[]): boolean {
  return p.stride[0] === p.kernel[0] && p.stride[1] === p.kernel[1] && p.padding[0] === 0 && p.padding[1] === 0 && hang[0] === 0 && hang[1] === 0;
}

/*
 * Where the windows tile the input, no convolution is needed: the input cut to the rows and columns the
 * windows cover, [n, c, ho*kh, wo*kw], is the same memory as [n*c, ho, kh, wo, kw], window (i, j) being
 * [:, i, :, j, :] (a reshape, no copy), and a window's value reaches its kh x kw positions by
 * broadcasting over axes 2 and 4. The gradient is then elementwise work, a sum over axes 2 and 4 and
 * reshapes, which the fusion pass merges with the elementwise work around them
 * (LeNet's step on lavapipe: 46 -> 38 dispatches, 29-34 -> 16 ms; the one-hot conv2d, its mask
 * kernel and the conv_transpose2d gather took about 7 ms of it).
 */

/** The input's covered rows and columns as [n*c, ho, kh, wo, kw] (windows tiling the input). */
function windowView(ctx: VjpContext, x: Value, ho: Dim, wo: Dim, p: PoolParams): Value {
  const [n, c, h, w] = x.type.shape;
  const [kh, kw] = p.kernel;
  let cut = x;
  if (!dimEquals(h, mul(ho, kh))) cut = sliceAxis(ctx, cut, 2, 0, mul(ho, kh));
  if (!dimEquals(w, mul(wo, kw))) cut = sliceAxis(ctx, cut, 3, 0, mul(wo, kw));
  return builder(ctx).reshape(cut, [mul(n, c), ho, kh, wo, kw]);
}

/** The inverse of windowView for a gradient: [n*c, ho, kh, wo, kw] back to x's shape, zeros in the rows and columns no window covers. */
function fromWindowView(ctx: VjpContext, v: Value, x: Value, p: PoolParams): Value {
  const [n, c, h, w] = x.type.shape;
  const [, ho, , wo] = v.type.shape;
  const [kh, kw] = p.kernel;
  let out = builder(ctx).reshape(v, [n, c, mul(ho, kh), mul(wo, kw)]);
  out = padAxis(ctx, out, 2, 0, sub(h, mul(ho, kh)));
  return padAxis(ctx, out, 3, 0, sub(w, mul(wo, kw)));
}

/** y = sum(window) / count(window), the count of real positions or, with count_include_pad, of padded ones: spread ct / count over each window. */
function avgPoolGrad(ctx: VjpContext, x: Value, ct: Value, p: PoolParams): Value {
  const g = builder(ctx);
  const [n, c, h, w] = x.type.shape;
  const [, , ho, wo] = ct.type.shape;
  const dtype = x.type.dtype;
  const hang = overhangs(x, ho, wo, p);
  if (tiling(p, hang)) {
    const [kh, kw] = p.kernel;
    const share = g.div(g.reshape(ct, [mul(n, c), ho, 1, wo, 1]), constant(ctx, kh * kw, dtype));
    return fromWindowView(ctx, g.broadcastTo(share, [mul(n, c), ho, kh, wo, kw]), x, p);
  }
  const ones = fill(ctx, [1, 1, p.kernel[0], p.kernel[1]], 1, dtype);
  // the count of each window's real positions (or, with count_include_pad, its positions in the padded
  // input) as a [1, 1, ho, wo] map: a window of ones over a map of ones where positions count
  const [p0, p1] = p.padding;
  let counted = p.countPad ? fill(ctx, [1, 1, add(h, 2 * p0), add(w, 2 * p1)], 1, dtype) : fill(ctx, [1, 1, h, w], 1, dtype);
  const before = p.countPad ? [0, 0] : [p0, p1];
  const after = p.countPad ? hang : [p0 + hang[0], p1 + hang[1]];
  if (before.some((b) => b > 0) || after.some((a) => a > 0)) counted = op1(ctx, 'pad', [counted], { before: [0, 0, ...before], after: [0, 0, ...after], value: 0 });
  const count = op1(ctx, 'conv2d', [counted, ones], { stride: p.stride });
  const share = g.reshape(g.div(ct, count), [mul(n, c), 1, ho, wo]);
  return scatterWindows(ctx, share, ones, x, p);
}

/**
 * Route ct to the positions of each window that equal its max; tied positions split it equally (a
 * valid subgradient). The K = kh*kw window elements are read as K channels by a conv2d with a one-hot
 * kernel (exact: one product by 1, the rest by 0), from the input padded with the dtype's lowest
 * finite value so padding never ties with a real max; the same kernel scatters them back.
 */
function maxPoolGrad(ctx: VjpContext, x: Value, y: Value, ct: Value, p: PoolParams): Value {
  const g = builder(ctx);
  const [n, c, h, w] = x.type.shape;
  const [, , ho, wo] = ct.type.shape;
  const dtype = x.type.dtype;
  const [kh, kw] = p.kernel;
  const hang = overhangs(x, ho, wo, p);
  if (tiling(p, hang)) {
    // each window's elements that equal its max share ct equally, as below, over the window view
    const nc = mul(n, c);
    const mask = g.cast(g.eq(windowView(ctx, x, ho, wo, p), g.reshape(y, [nc, ho, 1, wo, 1])), dtype);
    const count = g.sum(mask, [2, 4], true);
    return fromWindowView(ctx, g.mul(mask, g.div(g.reshape(ct, [nc, ho, 1, wo, 1]), count)), x, p);
  }
  const k = kh * kw;
  const at = (axis: number) => op1(ctx, 'iota', [], { shape: [k, 1, kh, kw], axis });
  const eye = g.cast(g.eq(at(0), g.add(g.mul(at(2), constant(ctx, kw, 'i32')), at(3))), dtype);
  const lowest = dtype === 'f16' ? -65504 : -3.4028234663852886e38;
  const [p0, p1] = p.padding;
  let planes = g.reshape(x, [mul(n, c), 1, h, w]);
  if (p0 > 0 || p1 > 0 || hang[0] > 0 || hang[1] > 0) planes = op1(ctx, 'pad', [planes], { before: [0, 0, p0, p1], after: [0, 0, p0 + hang[0], p1 + hang[1]], value: lowest });
  const windows = op1(ctx, 'conv2d', [planes, eye], { stride: p.stride });
  const mask = g.cast(g.eq(windows, g.reshape(y, [mul(n, c), 1, ho, wo])), dtype);
  const count = g.sum(mask, [1], true);
  const routed = g.mul(mask, g.div(g.reshape(ct, [mul(n, c), 1, ho, wo]), count));
  return scatterWindows(ctx, routed, eye, x, p);
}
