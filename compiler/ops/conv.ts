// Convolution primitives: conv2d (NCHW input, OIHW weights) and conv_transpose2d (IOHW weights, as in PyTorch).
import type { Attrs, TensorType } from '../ir/types.ts';
import { type Dim, add, dimEquals, dimToString, floorDiv, isConcrete, mul, sub } from '../shapes/dim.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { registerOp, type ShapeError } from './registry.ts';
import { conv2dPlans, convTranspose2dPlans } from '../codegen/conv.ts';
import { checkAttrList, err, isFloatType, typeStr } from './util.ts';
import type { Value } from '../ir/types.ts';
import type { VjpContext } from './registry.ts';
import { builder, op1 } from './vjp-util.ts';

export interface ConvParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
  outputPadding: [number, number];
}

export function convParams(attrs: Attrs): ConvParams {
  const pair = (k: string, d: number): [number, number] => {
    const v = attrs[k];
    return Array.isArray(v) ? [v[0] as number, v[1] as number] : [d, d];
  };
  return {
    stride: pair('stride', 1),
    padding: pair('padding', 0),
    dilation: pair('dilation', 1),
    groups: typeof attrs.groups === 'number' ? attrs.groups : 1,
    outputPadding: pair('output_padding', 0),
  };
}

/** The checks conv2d and conv_transpose2d share: float dtypes, rank 4, attribute forms. */
function convCommon(op: string, x: TensorType, w: TensorType, attrs: Attrs, keys: readonly string[]): ShapeError | null {
  const pair = `${typeStr(x)} and ${typeStr(w)}`;
  if (!isFloatType(x.dtype) || x.dtype !== w.dtype) return err(`${op} needs float operands of one dtype: ${pair}`, 0, 1);
  if (x.shape.length !== 4) return err(`${op} needs an NCHW input of rank 4, found ${typeStr(x)}`, 0, undefined, x.shape.length === 3 ? 'add a batch axis: reshape to [1, C, H, W]' : undefined);
  if (w.shape.length !== 4) return err(`${op} needs rank-4 weights, found ${typeStr(w)}`, 1);
  for (const k of keys) {
    if (attrs[k] === undefined) continue;
    const bad = checkAttrList(op, attrs, k, 2, { min: k === 'stride' || k === 'dilation' ? 1 : 0 });
    if (bad) return bad;
  }
  const g = attrs.groups ?? 1;
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 1) return err(`${op} groups must be a positive integer`);
  return null;
}

/** floor((n + 2p - d*(k-1) - 1) / s) + 1, in Dim arithmetic so symbolic H and W stay symbolic. */
export function convOutSize(n: Dim, k: Dim, s: number, p: number, d: number): Dim {
  return add(floorDiv(sub(add(n, 2 * p), add(mul(d, sub(k, 1)), 1)), s), 1);
}

/** (n - 1)*s - 2p + d*(k-1) + output_padding + 1. */
export function convTransposeOutSize(n: Dim, k: Dim, s: number, p: number, d: number, op: number): Dim {
  return add(add(sub(mul(sub(n, 1), s), 2 * p), mul(d, sub(k, 1))), op + 1);
}

const nonPositive = (d: Dim) => isConcrete(d) && d <= 0;

/** An operand with its first two axes swapped (a transpose by [1, 0, 2, 3]). */
function swapFirstTwo(t: TensorType): TensorType {
  return t.shape.length < 2 ? t : { ...t, shape: [t.shape[1], t.shape[0], ...t.shape.slice(2)] };
}

function swapFirstTwoTensor(t: Tensor): Tensor {
  const [a, b, ...rest] = t.shape;
  const inner = rest.reduce((p, q) => p * q, 1);
  const data = new Float64Array(t.data.length);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) data.set(t.data.subarray((i * b + j) * inner, (i * b + j + 1) * inner), (j * a + i) * inner);
  return { ...t, shape: [b, a, ...rest], data };
}

/**
 * conv2d's operands as the convolution reads them: with `transpose_x` (`transpose_w`) the stored input
 * (weights) has its first two axes swapped, [C, N, H, W] ([I, O, KH, KW]), and the convolution reads it
 * as NCHW (OIHW) through its own indexing; with `transpose_out` it stores its result so too, [O, N, OH,
 * OW]. The fusion pass sets these where it folds a transpose by [1, 0, 2, 3] into the conv2d that reads
 * it or that it reads (a weight gradient: the batch contracted like a channel, the result back to OIHW).
 */
export function conv2dOperands(x: TensorType, w: TensorType, attrs: Attrs): [TensorType, TensorType] {
  return [attrs.transpose_x === true ? swapFirstTwo(x) : x, attrs.transpose_w === true ? swapFirstTwo(w) : w];
}

registerOp({
  name: 'conv2d',
  family: 'contraction',
  arity: 2,
  differentiable: 'all',
  attrs: { stride: 'optional', padding: 'optional', dilation: 'optional', groups: 'optional', transpose_x: 'optional', transpose_w: 'optional', transpose_out: 'optional' },
  lower: { kind: 'kernel', kernel: conv2dPlans },
  infer(operands, attrs) {
    if (operands.length !== 2) return err('conv2d takes an input and weights');
    const [x, w] = conv2dOperands(operands[0], operands[1], attrs);
    if ((attrs.transpose_x === true || attrs.transpose_w === true || attrs.transpose_out === true) && convParams(attrs).groups !== 1) return err('conv2d reads or stores transposed operands (transpose_x, transpose_w, transpose_out) with groups 1 only');
    const bad = convCommon('conv2d', x, w, attrs, ['stride', 'padding', 'dilation']);
    if (bad) return bad;
    const { stride, padding, dilation, groups } = convParams(attrs);
    const [n, c, h, wd] = x.shape;
    const [o, cg, kh, kw] = w.shape;
    if (!dimEquals(mul(cg, groups), c)) {
      const help = groups === 1 && dimEquals(w.shape[0], c) ? 'the weights look like IOHW: conv2d takes OIHW [out, in, kh, kw]' : undefined;
      // with groups, the weights' in-channel axis is per group: name the product, where the mistake usually is
      const takes = groups === 1 ? '' : ` (with groups ${groups}, weights of ${dimToString(cg)} input channels per group take ${dimToString(mul(cg, groups))} input channels, and the input has ${dimToString(c)})`;
      return err(`conv2d input channels differ from the weights${takes}: ${typeStr(x)} and ${typeStr(w)}`, 0, 1, help);
    }
    if (isConcrete(o) && o % groups !== 0) return err(`conv2d output channels ${o} are not divisible by groups ${groups}`, 1);
    const ho = convOutSize(h, kh, stride[0], padding[0], dilation[0]);
    const wo = convOutSize(wd, kw, stride[1], padding[1], dilation[1]);
    if (nonPositive(ho) || nonPositive(wo)) {
      // the input is the operand the user wrote (often a chain of layers): it leads, with the sizes compared
      const extent = (k: Dim, d: number) => (d === 1 ? dimToString(k) : `${dimToString(k)} (dilated: ${dimToString(add(mul(sub(k, 1), d), 1))})`);
      const padded = (size: Dim, p: number) => (p === 0 ? dimToString(size) : `${dimToString(add(size, 2 * p))} (padding ${p})`);
      return err(`conv2d kernel ${extent(kh, dilation[0])} × ${extent(kw, dilation[1])} is larger than the padded input ${padded(h, padding[0])} × ${padded(wd, padding[1])}: ${typeStr(x)} and ${typeStr(w)}`, 0, 1);
    }
    return [{ dtype: x.dtype, shape: attrs.transpose_out === true ? [o, n, ho, wo] : [n, o, ho, wo] }];
  },
  interpret([x, w], attrs) {
    const out = conv2dRef(attrs.transpose_x === true ? swapFirstTwoTensor(x) : x, attrs.transpose_w === true ? swapFirstTwoTensor(w) : w, convParams(attrs));
    return [attrs.transpose_out === true ? swapFirstTwoTensor(out) : out];
  },
  /**
   * input: conv_transpose2d of ct with the same weights (OIHW read as IOHW), output_padding restoring
   * the rows and columns the forward stride skipped. weight: the correlation of input and ct, a conv2d
   * with batch as the contracted channel axis and stride and dilation swapped (see weightGrad).
   */
  vjp(ctx, { inputs: [x, w], attrs }, [ct]) {
    if (!ct) return [null, null];
    const p = convParams(attrs);
    if (attrs.transpose_x || attrs.transpose_w || attrs.transpose_out) throw new Error('internal: the gradient of conv2d is taken before fusion folds transposes into it');
    const [, , h, wd] = x.type.shape;
    const [, , kh, kw] = w.type.shape;
    const [, , ho, wo] = ct.type.shape;
    // (ho - 1) * s - 2p + d * (k - 1) + output_padding + 1 = h
    const outPad = [0, 1].map((i) => {
      const [n, k, m] = [[h, kh, ho], [wd, kw, wo]][i];
      return concreteOrThrow('conv2d', sub(sub(add(n, 2 * p.padding[i]), add(mul(p.dilation[i], sub(k, 1)), 1)), mul(sub(m, 1), p.stride[i])));
    });
    const dx = op1(ctx, 'conv_transpose2d', [ct, w], { stride: p.stride, padding: p.padding, dilation: p.dilation, output_padding: outPad, ...(p.groups === 1 ? {} : { groups: p.groups }) });
    const dw = weightGrad(ctx, x, ct, p, [kh, kw]);
    return [dx, builder(ctx).transpose(dw, [1, 0, 2, 3])];
  },
});

function conv2dRef(x: Tensor, w: Tensor, p: ConvParams): Tensor {
  const [N, C, H, W] = x.shape;
  const [O, CG, KH, KW] = w.shape;
  const HO = Math.floor((H + 2 * p.padding[0] - p.dilation[0] * (KH - 1) - 1) / p.stride[0]) + 1;
  const WO = Math.floor((W + 2 * p.padding[1] - p.dilation[1] * (KW - 1) - 1) / p.stride[1]) + 1;
  const OG = O / p.groups;
  const out = new Float64Array(N * O * HO * WO);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / OG);
      for (let oh = 0; oh < HO; oh++)
        for (let ow = 0; ow < WO; ow++) {
          let s = 0;
          for (let ci = 0; ci < CG; ci++)
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * p.stride[0] - p.padding[0] + kh * p.dilation[0];
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * p.stride[1] - p.padding[1] + kw * p.dilation[1];
                if (iw < 0 || iw >= W) continue;
                s += x.data[((n * C + g * CG + ci) * H + ih) * W + iw] * w.data[((oc * CG + ci) * KH + kh) * KW + kw];
              }
            }
          out[((n * O + oc) * HO + oh) * WO + ow] = s;
        }
    }
  return { dtype: x.dtype, shape: [N, O, HO, WO], data: out };
}

registerOp({
  name: 'conv_transpose2d',
  family: 'contraction',
  arity: 2,
  differentiable: 'all',
  attrs: { stride: 'optional', padding: 'optional', dilation: 'optional', output_padding: 'optional', groups: 'optional' },
  lower: { kind: 'kernel', kernel: convTranspose2dPlans },
  infer([x, w], attrs) {
    const bad = convCommon('conv_transpose2d', x, w, attrs, ['stride', 'padding', 'dilation', 'output_padding']);
    if (bad) return bad;
    const { stride, padding, dilation, groups, outputPadding } = convParams(attrs);
    const [n, c, h, wd] = x.shape;
    const [ci, og, kh, kw] = w.shape;
    if (!dimEquals(ci, c)) return err(`conv_transpose2d input channels differ from the weights: ${typeStr(x)} and ${typeStr(w)}`, 0, 1, 'conv_transpose2d takes IOHW weights [in, out, kh, kw]');
    if (isConcrete(c) && c % groups !== 0) return err(`conv_transpose2d input channels ${c} are not divisible by groups ${groups}`, 0);
    for (let i = 0; i < 2; i++) {
      if (outputPadding[i] >= Math.max(stride[i], dilation[i])) return err(`conv_transpose2d output_padding must be smaller than the stride or the dilation`);
    }
    const ho = convTransposeOutSize(h, kh, stride[0], padding[0], dilation[0], outputPadding[0]);
    const wo = convTransposeOutSize(wd, kw, stride[1], padding[1], dilation[1], outputPadding[1]);
    if (nonPositive(ho) || nonPositive(wo)) return err(`conv_transpose2d padding leaves no output: ${typeStr(x)} and ${typeStr(w)}`, 0, 1);
    return [{ dtype: x.dtype, shape: [n, mul(og, groups), ho, wo] }];
  },
  interpret([x, w], attrs) {
    const p = convParams(attrs);
    const [N, C, H, W] = x.shape;
    const [, OG, KH, KW] = w.shape;
    const O = OG * p.groups;
    const CG = C / p.groups;
    const HO = (H - 1) * p.stride[0] - 2 * p.padding[0] + p.dilation[0] * (KH - 1) + p.outputPadding[0] + 1;
    const WO = (W - 1) * p.stride[1] - 2 * p.padding[1] + p.dilation[1] * (KW - 1) + p.outputPadding[1] + 1;
    const out = new Float64Array(N * O * HO * WO);
    // Scatter form: each input pixel spreads its kernel-weighted value onto the output.
    for (let n = 0; n < N; n++)
      for (let ci = 0; ci < C; ci++) {
        const g = Math.floor(ci / CG);
        for (let ih = 0; ih < H; ih++)
          for (let iw = 0; iw < W; iw++) {
            const v = x.data[((n * C + ci) * H + ih) * W + iw];
            for (let oc = 0; oc < OG; oc++)
              for (let kh = 0; kh < KH; kh++) {
                const oh = ih * p.stride[0] - p.padding[0] + kh * p.dilation[0];
                if (oh < 0 || oh >= HO) continue;
                for (let kw = 0; kw < KW; kw++) {
                  const ow = iw * p.stride[1] - p.padding[1] + kw * p.dilation[1];
                  if (ow < 0 || ow >= WO) continue;
                  out[((n * O + g * OG + oc) * HO + oh) * WO + ow] += v * w.data[((ci * OG + oc) * KH + kh) * KW + kw];
                }
              }
          }
      }
    return [{ dtype: x.dtype, shape: [N, O, HO, WO], data: out }];
  },
  /** input: conv2d of ct with the same weights (IOHW read as OIHW); weight: the correlation of ct and input. */
  vjp(ctx, { inputs: [x, w], attrs }, [ct]) {
    if (!ct) return [null, null];
    const p = convParams(attrs);
    const [, , kh, kw] = w.type.shape;
    // a conv2d over the output reads floor(output_padding / stride) extra rows when dilation > stride
    const dx = cropTo(ctx, op1(ctx, 'conv2d', [ct, w], { stride: p.stride, padding: p.padding, dilation: p.dilation, ...(p.groups === 1 ? {} : { groups: p.groups }) }), x.type.shape.slice(2));
    const dw = weightGrad(ctx, ct, x, p, [kh, kw]);
    return [dx, builder(ctx).transpose(dw, [1, 0, 2, 3])];
  },
});

function concreteOrThrow(op: string, d: Dim): number {
  if (!isConcrete(d)) throw new Error(`internal: the gradient of ${op} needs concrete spatial sizes when the stride does not divide them evenly, found ${dimToString(d)}`);
  return d;
}

/** Keep the first rows and columns of an NCHW value: [:, :, :h, :w], a no-op when already that size. */
function cropTo(ctx: VjpContext, v: Value, hw: readonly Dim[]): Value {
  const [, , h, w] = v.type.shape;
  if (dimEquals(h, hw[0]) && dimEquals(w, hw[1])) return v;
  return op1(ctx, 'slice', [v], { starts: [0, 0, 0, 0], stops: [null, null, hw[0], hw[1]] });
}

/**
 * sum over n, oh, ow of a[n, c, oh*s - p + i*d, ...] * b[n, o, oh, ow], as [c, o, kh, kw]: a conv2d of
 * a^T ([c, n, H, W]) with b^T ([o, n, OH, OW]) as the kernel, the batch contracted like a channel, the
 * forward dilation as the stride and the forward stride as the dilation. It may cover more than kh
 * rows when the forward stride left input rows unread; those are cropped. With groups, as [c / groups, o]:
 * one such conv2d per group, their results side by side.
 */
function weightGrad(ctx: VjpContext, a: Value, b: Value, p: ConvParams, k: readonly Dim[]): Value {
  const g = builder(ctx);
  const at = g.transpose(a, [1, 0, 2, 3]);
  const bt = g.transpose(b, [1, 0, 2, 3]);
  const correlate = (x: Value, y: Value) => cropTo(ctx, op1(ctx, 'conv2d', [x, y], { stride: p.dilation, padding: p.padding, dilation: p.stride }), k);
  if (p.groups === 1) return correlate(at, bt);
  // groups: a's channels of group i meet b's of group i only, [ca / groups, cb / groups] blocks side by side
  const [ca, cb] = [a.type.shape[1], b.type.shape[1]].map((c) => concreteOrThrow('a grouped convolution', c));
  const [na, nb] = [ca / p.groups, cb / p.groups];
  const rows = (v: Value, from: number, n: number) => op1(ctx, 'slice', [v], { starts: [from, 0, 0, 0], stops: [from + n, null, null, null] });
  const blocks = Array.from({ length: p.groups }, (_, i) => correlate(rows(at, i * na, na), rows(bt, i * nb, nb)));
  return op1(ctx, 'concat', blocks, { axis: 1 });
}
