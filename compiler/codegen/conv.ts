// Kernels for the convolutions: conv2d (NCHW, OIHW weights) as a direct loop, conv_transpose2d (IOHW weights) as a gather.
//
// One invocation per output element (per-element.ts). conv2d sums over its group's input channels
// and the kernel taps, skipping taps that fall in the zero padding. conv_transpose2d is computed as
// the gather form of the interpreter's scatter: an output pixel sums, over its group's input channels
// and every kernel tap, the input pixel that tap came from, when that position is integral (the
// stride divides it) and inside the input. Channel counts and spatial sizes are uniform words;
// stride, padding, dilation and groups are baked. The loops (`ConvKernel`) are shared with the fused
// convolutions (codegen/fused-conv.ts), which apply an elementwise epilogue to the sum before the store.
import type { Node } from '../ir/types.ts';
import { type Dim, floorDiv } from '../shapes/dim.ts';
import type { KernelPlan } from './kernel.ts';
import { perElementPlan } from './per-element.ts';

interface Conv {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** The attributes as the interpreter reads them (ops/conv.ts convParams): pairs default to 1, 0, 1. */
function params(node: Node): Conv {
  const pair = (k: string, d: number): [number, number] => {
    const v = node.attrs[k];
    return Array.isArray(v) ? [v[0] as number, v[1] as number] : [d, d];
  };
  const groups = typeof node.attrs.groups === 'number' ? node.attrs.groups : 1;
  return { stride: pair('stride', 1), padding: pair('padding', 0), dilation: pair('dilation', 1), groups };
}

function checkF32(node: Node): void {
  for (const v of [...node.inputs, ...node.outputs]) {
    if (v.type.dtype !== 'f32') throw new Error(`${node.op} is lowered for f32 only, found ${v.type.dtype}`);
  }
}

const times = (e: string, c: number): string => (c === 1 ? e : `${e} * ${c}u`);

/**
 * A convolution's per-element kernel before it is assembled: the shader's description, the named
 * uniform words and the body, which reads the input as `x`, the weights as `wt` and the multi-index
 * `i0..i3` of the output element, and leaves the sum in `acc`. perElementPlan stores it (conv2dPlans,
 * convTranspose2dPlans); codegen/fused-conv.ts applies an epilogue to it first.
 */
export interface ConvKernel {
  readonly what: string;
  readonly words: readonly (readonly [string, Dim])[];
  readonly body: readonly string[];
}

/** The plan of a convolution node from its kernel: x and wt bound, the sum stored. */
function convPlan(node: Node, k: ConvKernel): KernelPlan {
  return perElementPlan({
    op: node.op,
    what: k.what,
    shape: node.outputs[0].type.shape,
    inputs: [
      { name: 'x', dtype: 'f32', node: 0 },
      { name: 'wt', dtype: 'f32', node: 1 },
    ],
    outDtype: 'f32',
    words: k.words,
    body: k.body,
    result: 'acc',
  });
}

/** out[n, o, oh, ow] = sum over ci, kh, kw of x[n, g*CG + ci, oh*s - p + kh*d, ...] * w[o, ci, kh, kw]. */
export function conv2dPlans(node: Node): KernelPlan[] {
  return [convPlan(node, conv2dKernel(node))];
}

/** conv2d's kernel (see conv2dPlans). */
export function conv2dKernel(node: Node): ConvKernel {
  checkF32(node);
  const [x, w] = node.inputs.map((v) => v.type);
  const { stride, padding, dilation, groups } = params(node);
  const [, c, h, wd] = x.shape;
  const [o, cg, kh, kw] = w.shape;
  const words: [string, Dim][] = [
    ['C', c],
    ['H', h],
    ['W', wd],
    ['CG', cg],
    ['KH', kh],
    ['KW', kw],
    ['OG', floorDiv(o, groups)],
  ];
  const body = [
    `let g = ${groups === 1 ? '0u' : 'i1 / OG'};`,
    'var acc = 0.0;',
    'for (var ci = 0u; ci < CG; ci++) {',
    '  let xc = (i0 * C + g * CG + ci) * H;',
    '  let wc = (i1 * CG + ci) * KH;',
    '  for (var a = 0u; a < KH; a++) {',
    `    let ih = i32(${times('i2', stride[0])} + ${times('a', dilation[0])}) - ${padding[0]}i;`,
    '    if (ih < 0i || ih >= i32(H)) { continue; }',
    '    let xr = (xc + u32(ih)) * W;',
    '    let wr = (wc + a) * KW;',
    '    for (var b = 0u; b < KW; b++) {',
    `      let iw = i32(${times('i3', stride[1])} + ${times('b', dilation[1])}) - ${padding[1]}i;`,
    '      if (iw < 0i || iw >= i32(W)) { continue; }',
    '      acc += x[xr + u32(iw)] * wt[wr + b];',
    '    }',
    '  }',
    '}',
  ];
  return { what: `conv2d f32, stride [${stride}], padding [${padding}], dilation [${dilation}], groups ${groups}, direct loop`, words, body };
}

/**
 * out[n, g*OG + o, oh, ow] = sum over the group's input channels ci and taps (kh, kw) with
 * oh + p - kh*d = ih*s for an ih in [0, H) (likewise for ow) of x[n, ci, ih, iw] * w[ci, o, kh, kw].
 */
export function convTranspose2dPlans(node: Node): KernelPlan[] {
  return [convPlan(node, convTranspose2dKernel(node))];
}

/** conv_transpose2d's kernel (see convTranspose2dPlans). */
export function convTranspose2dKernel(node: Node): ConvKernel {
  checkF32(node);
  const [x, w] = node.inputs.map((v) => v.type);
  const { stride, padding, dilation, groups } = params(node);
  const [, c, h, wd] = x.shape;
  const [, og, kh, kw] = w.shape;
  const words: [string, Dim][] = [
    ['C', c],
    ['H', h],
    ['W', wd],
    ['CG', floorDiv(c, groups)],
    ['KH', kh],
    ['KW', kw],
    ['OG', og],
  ];
  /** The input position a tap reads along one axis, or `continue` when there is none. */
  const tap = (v: string, o: string, k: string, axis: 0 | 1, n: string): string[] => {
    const s = stride[axis];
    const lines = [`let t${v} = i32(${o}) + ${padding[axis]}i - i32(${times(k, dilation[axis])});`];
    lines.push(s === 1 ? `if (t${v} < 0i) { continue; }` : `if (t${v} < 0i || t${v} % ${s}i != 0i) { continue; }`);
    lines.push(`let ${v} = ${s === 1 ? `t${v}` : `t${v} / ${s}i`};`, `if (${v} >= i32(${n})) { continue; }`);
    return lines;
  };
  const body = [
    ...(groups === 1 ? ['let g = 0u;', 'let oc = i1;'] : ['let g = i1 / OG;', 'let oc = i1 % OG;']),
    'var acc = 0.0;',
    'for (var c = 0u; c < CG; c++) {',
    '  let ci = g * CG + c;',
    '  for (var a = 0u; a < KH; a++) {',
    ...tap('ih', 'i2', 'a', 0, 'H').map((l) => `    ${l}`),
    '    let xr = ((i0 * C + ci) * H + u32(ih)) * W;',
    '    let wr = ((ci * OG + oc) * KH + a) * KW;',
    '    for (var b = 0u; b < KW; b++) {',
    ...tap('iw', 'i3', 'b', 1, 'W').map((l) => `      ${l}`),
    '      acc += x[xr + u32(iw)] * wt[wr + b];',
    '    }',
    '  }',
    '}',
  ];
  return { what: `conv_transpose2d f32, stride [${stride}], padding [${padding}], dilation [${dilation}], groups ${groups}, as a gather`, words, body };
}
