// Kernels for the convolutions: conv2d (NCHW, OIHW weights) as an implicit GEMM, conv_transpose2d (IOHW weights) as a gather.
//
// conv2d is a matrix product per group g: rows r = (n, oh, ow) (M = N*OH*OW output positions), columns
// j (the group's OG output channels, o = g*OG + j), k = (ci, kh, kw) row-major (K = CG*KH*KW). B[k, j]
// is w[o, ci, kh, kw] = wt[o*K + k]; A[r, k] is the input pixel tap k of position r reads,
// x[n, g*CG + ci, oh*s - p + kh*d, ow*s - p + kw*d], 0 in the zero padding (im2col, never materialized).
// The grid is codegen/matmul.ts's: one workgroup per 32x32 output tile (32 positions x 32 channels) of
// one group, numbered linearly over (group, tile row, tile column). Two variants share it, with the same
// bindings and uniform words (`conv2dGemm`):
//   'tiled' (for GPUs, `wgsl`): 8x8 invocations each compute a 4x4 register block; k is walked in steps
//     of 32 through workgroup memory (A gathered from x, B from the weights, both zero-filled past the
//     edges and in the padding), as the tiled matmul does.
//   'direct' (for CPU adapters, `cpuWgsl`, no barriers): 64 invocations, each 4 positions by 4
//     channels of the tile, loop over (ci, kh, kw) straight from storage; a padding tap reads 0 (a
//     masked read). A CPU driver runs 8 invocations as one SIMD vector and reads storage lane by lane,
//     so what counts is reads per fma: 8 per 16 here (4 pixels, 4 weights), where one position by 4
//     channels read 5 per 4 (lavapipe, LeNet's step: 43 -> 30 ms; its 5x5 convolutions 4.0-4.3 -> 2.1-2.6 ms).
//   'subgroup' (for CPU adapters with subgroups of 8+ lanes, first in `cpuVariants`; its own grid): a
//     workgroup owns 16 positions and W x cols channels (cols = 1, 2 or 4 by the group's channel count,
//     `subgroupColumns`); per tap, lane s (mod 8) gathers the pixels of positions s and s + 8 and
//     subgroupBroadcast hands them to the subgroup (a register shuffle on lavapipe, where each lane's
//     gather is the cost: index math, bounds, a scalar load), each invocation adding 16 x cols fmas.
//     The same loop as matmul-rows.ts's subgroup kernel, with A gathered from x. On lavapipe, LeNet's
//     implicit-GEMM convolutions 15.6 -> 10.6 ms of its step's kernel time (the second layer's input gradient 5.5 -> 3.7).
// All add each output's products with one fma per k in increasing k (a padding tap or a k past K adds
// 0 * w, which leaves the sum unchanged for finite weights); fused_conv2d
// (codegen/fused-conv.ts) keeps the loops and applies its epilogue at the store, so fused and unfused
// results are the same bits in every variant.
//
// Where conv2dViewOf does not apply, conv_transpose2d stays a per-element gather (per-element.ts): an
// output pixel sums, over its group's input channels and every kernel tap, the input pixel that tap
// came from, when that position is integral (the stride divides it) and inside the input; undilated,
// the loops visit only the taps the stride lets land on a pixel. Channel counts and spatial sizes are uniform
// words; stride, padding, dilation and groups are baked. Its loop (`ConvKernel`) is shared with
// fused_conv_transpose2d, which applies an elementwise epilogue to the sum before the store.
import type { Node } from '../ir/types.ts';
import { conv2dOperands } from '../ops/conv.ts';
import { type Dim, floorDiv, isConcrete, mul } from '../shapes/dim.ts';
import { uvec } from './elementwise.ts';
import { ceilDiv, type CpuVariantPlan, type KernelPlan, type WidePlan } from './kernel.ts';
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
export function conv2dPlans(node: Node, read: ConvRead = CONV2D_READ): KernelPlan[] {
  const tiled = conv2dGemm(node, { variant: 'tiled', read });
  const direct = conv2dGemm(node, { variant: 'direct', read });
  return [{ op: node.op, wgsl: tiled.wgsl, uniforms: tiled.words, workgroups: tiled.workgroups, cpuWgsl: direct.wgsl, cpuVariants: conv2dSubgroupPlans(node, undefined, read), wide: conv2dReducePlans(node, undefined, read) }];
}

/** conv2d's CPU 'subgroup' variant as a plan variant (also fused_conv2d's, with its epilogue): for devices with subgroups of 8+ lanes. */
export function conv2dSubgroupPlans(node: Node, epilogue?: ConvEpilogue, read: ConvRead = CONV2D_READ): CpuVariantPlan[] {
  const sg = conv2dGemm(node, { variant: 'subgroup', read, ...(epilogue ? { epilogue } : {}) });
  return [{ name: 'subgroup-direct', wgsl: sg.wgsl, workgroups: sg.workgroups, minSubgroupSize: SUBGROUP_SPREAD }];
}

/** conv2d's 'reduce' variant as a GPU plan variant (also fused_conv2d's, with its epilogue). */
export function conv2dReducePlans(node: Node, epilogue?: ConvEpilogue, read: ConvRead = CONV2D_READ): WidePlan[] {
  const reduce = conv2dGemm(node, { variant: 'reduce', read, ...(epilogue ? { epilogue } : {}) });
  return [{ name: 'reduce', wgsl: reduce.wgsl, workgroups: reduce.workgroups, minWorkgroups: REDUCE_MIN_OUTPUTS, maxBaseWorkgroups: REDUCE_MAX_TILES }];
}

/**
 * The 'reduce' variant runs (GPU kernels) where the implicit GEMM has at most this many tiles, too few
 * to fill a GPU: a weight gradient (LeNet's first convolution at batch 64: 150 outputs, one 32x32 tile,
 * k = 50,176) ...
 */
export const REDUCE_MAX_TILES = 32;
/** ... and has at least this many outputs (one workgroup each). */
export const REDUCE_MIN_OUTPUTS = 32;
/** Invocations of the 'reduce' variant's workgroup, each summing every 256th k. */
const REDUCE_LANES = 256;

/** Output positions per invocation of the CPU 'direct' variant (by 4 channels: 64 invocations per 32x32 tile). */
const DIRECT_POSITIONS = 4;

/** conv2d's kernel variants: 'tiled' (GPUs), 'reduce' (GPUs, few outputs), 'direct' and 'subgroup' (CPU adapters). */
export type ConvVariant = 'tiled' | 'direct' | 'reduce' | 'subgroup';
/** Positions per workgroup of the CPU 'subgroup' variant, and the lanes that gather them (subgroups need at least this many). */
export const SUBGROUP_POSITIONS = 16;
export const SUBGROUP_SPREAD = 8;
/** Channels per invocation of the 'subgroup' variant: 1 where a group has at most 8 (LeNet's 6), 2 up to 16, else 4. */
export const subgroupColumns = (og: Dim): number => (!isConcrete(og) ? 4 : og <= 8 ? 1 : og <= 16 ? 2 : 4);

/** The output tile of conv2d's implicit GEMM: 32 positions x 32 channels; k steps of 32. */
export const CONV_TILE = 32;

/**
 * An epilogue applied to each output element at store time instead of the plain store (fused_conv2d,
 * codegen/fused-conv.ts): more uniform fields after the convolution's `w`, the bindings after x and wt,
 * and a function `call(index, n, o, oh, ow, value)` that computes and stores the outputs.
 */
export interface ConvEpilogue {
  readonly comment: string;
  readonly fields: readonly string[];
  readonly declarations: readonly string[];
  readonly call: string;
  readonly functions: readonly string[];
}

/**
 * How conv2d's kernels read their operands: conv2d's own OIHW weights and input as they lie, or (a
 * transposed convolution's view, `conv2dViewOf`) IOHW weights [C, OG, KH, KW] read as conv2d weights with
 * both spatial axes reversed, and the input dilated by the transposed convolution's stride: virtual
 * row v is input row v / s where s divides v, else a zero.
 */
export interface ConvRead {
  readonly flipped: boolean;
  readonly inputDilation: readonly [number, number];
}

/** conv2d's own reading. */
export const CONV2D_READ: ConvRead = { flipped: false, inputDilation: [1, 1] };

/** A strided conv_transpose2d runs as conv2d's GEMM only with at least this many output channels per group (see conv2dViewOf). */
export const STRIDED_VIEW_MIN_CHANNELS = 16;

/**
 * A conv_transpose2d as the conv2d it equals, for conv2d's kernels: out[n, o, y, x] = sum of
 * x[n, c, (y + p - kh*d) / s, ...] * w[c, o, kh, kw] over the taps where s divides y + p - kh*d is, with
 * kh' = KH - 1 - kh, a stride-1 conv2d with padding d*(KH - 1) - p over the input dilated by s (zeros
 * between its pixels, never materialized) and w'[o, c, kh', kw'] = w[c, o, KH - 1 - kh', KW - 1 - kw']
 * (per group); output padding needs nothing more (the output shape is the node's, and rows past the
 * input read zeros). The view's weight value has conv2d's OIHW shape; the kernels bind the IOHW weights
 * as they are. Null where a padding passes d*(K - 1) or a kernel size is not known, and, at a stride
 * above 1, where a group has fewer than 16 output channels: there only one tap in s^2 is not a zero, so
 * the GEMM pays s^2 times the work for its regular loops, which pays only where its tiles fill with
 * channels (on lavapipe, LeNet's max-pool gradients, 1 output channel at stride 2: 3.5 ms as a gather,
 * 5.7 ms as the GEMM). The input gradient of every conv2d is such a convolution, so it runs as an
 * implicit GEMM (tiled, register-blocked) instead of a gather per output element.
 */
export function conv2dViewOf(node: Node): { readonly view: Node; readonly read: ConvRead } | null {
  if (node.op !== 'conv_transpose2d') return null;
  const { stride, padding, dilation, groups } = params(node);
  const [c, og, kh, kw] = node.inputs[1].type.shape;
  if (!isConcrete(kh) || !isConcrete(kw)) return null;
  const pad: [number, number] = [dilation[0] * (kh - 1) - padding[0], dilation[1] * (kw - 1) - padding[1]];
  if (pad[0] < 0 || pad[1] < 0) return null;
  if ((stride[0] > 1 || stride[1] > 1) && !(isConcrete(og) && og >= STRIDED_VIEW_MIN_CHANNELS)) return null;
  const w = { id: node.inputs[1].id, type: { dtype: node.inputs[1].type.dtype, shape: [mul(og, groups), floorDiv(c, groups), kh, kw] } };
  const view = { ...node, op: 'conv2d', inputs: [node.inputs[0], w], attrs: { stride: [1, 1], padding: pad, dilation, groups } };
  return { view, read: { flipped: true, inputDilation: stride } };
}

/** The 16 uniform words of conv2d's kernels, in order (`p.w[0..3]`). */
const GEMM_WORDS = ['M', 'OG', 'K', 'O', 'TN', 'TM', 'TT', 'OHW', 'C', 'H', 'W', 'CG', 'KH', 'KW', 'OW', 'KHW'] as const;

/**
 * conv2d as an implicit GEMM (see the head of this file): the shader of one variant, its uniform words
 * (GEMM_WORDS as sizes, a symbolic batch included) and the workgroup count (word TT: groups x tile rows
 * x tile columns). Both variants have the same grid, uniforms and bindings.
 */
export function conv2dGemm(node: Node, options: { variant: ConvVariant; epilogue?: ConvEpilogue; read?: ConvRead }): { wgsl: string; words: Dim[]; workgroups: Dim } {
  checkF32(node);
  // the operands as the convolution reads them: transpose_x / transpose_w store them with the first two axes swapped
  const [x, w] = conv2dOperands(node.inputs[0].type, node.inputs[1].type, node.attrs);
  const tx = node.attrs.transpose_x === true;
  const tw = node.attrs.transpose_w === true;
  const to = node.attrs.transpose_out === true;
  const out = node.outputs[0].type.shape;
  const { stride, padding, dilation, groups } = params(node);
  const [n, c, h, wd] = x.shape;
  const [o, cg, kh, kw] = w.shape;
  const [oh, ow] = [out[2], out[3]];
  const T = CONV_TILE;
  const og = floorDiv(o, groups);
  const ohw = mul(oh, ow);
  const m = mul(n, ohw);
  const khw = mul(kh, kw);
  const k = mul(cg, khw);
  const tn = ceilDiv(og, T);
  const tm = ceilDiv(m, T);
  const tt = mul(groups, mul(tm, tn));
  const values: Record<(typeof GEMM_WORDS)[number], Dim> = { M: m, OG: og, K: k, O: o, TN: tn, TM: tm, TT: tt, OHW: ohw, C: c, H: h, W: wd, CG: cg, KH: kh, KW: kw, OW: ow, KHW: khw };
  const words = GEMM_WORDS.map((name) => values[name]);
  const epi = options.epilogue;
  const tiled = options.variant === 'tiled';
  const read = options.read ?? CONV2D_READ;
  const flipped = read.flipped;
  const [sh, sw] = read.inputDilation;
  if ((tx || tw || to) && (flipped || groups !== 1)) throw new Error('conv2d reads or stores transposed operands only as itself and with groups 1');
  if (to && options.epilogue) throw new Error('a conv2d storing its result transposed takes no epilogue');
  // output (nb, o, ohw) at (nb * O + o) * OHW + ohw, or with transpose_out (o * NB + nb) * OHW + ohw
  const outAt = (nb: string, o: string) => (to ? `(${o} * (M / OHW) + ${nb}) * OHW + ohw` : `ob + ${o} * OHW`);
  const outBase = to ? [] : ['    let ob = nb * O * OHW + ohw;'];
  // input pixel (nb, channel c, row, column) at ((nb * C + c) * H + row) * W + column, or with transpose_x
  // ((c * NB + nb) * H + row) * W + column: the base of (nb, gc) and the step between channels (XC = NB * H)
  const xBase = (nb: string, gc: string) => (tx ? `(${gc} * (M / OHW) + ${nb}) * H` : `(${nb} * C + ${gc}) * H`);
  const xc = tx ? 'XC' : 'H';
  // weight (o, ci, tap) at o * K + ci * KHW + tap, or with transpose_w (ci * O + o) * KHW + tap (WC = O * KHW)
  const wo = tw ? 'KHW' : 'K';
  const wc = tw ? 'WC' : 'KHW';
  const swapped = [tx ? 'reading x' : '', tw ? 'reading w' : '', to ? 'storing the result' : ''].filter(Boolean).join(', ');
  const what = !flipped ? `conv2d f32${swapped ? `, ${swapped} with the first two axes swapped` : ''}` : sh === 1 && sw === 1 ? 'conv_transpose2d f32 at stride 1, as the conv2d over its flipped weights' : `conv_transpose2d f32 at stride [${sh},${sw}], as the conv2d over its flipped weights and its input dilated by the stride`;
  // whether virtual input row (column) `v`, an i32, is an input pixel, and which (the input dilated by s: v / s where s divides v)
  const inside = (v: string, s: number, n: string) => (s === 1 ? `${v} >= 0i && ${v} < i32(${n})` : `${v} >= 0i && ${v} % ${s}i == 0i && ${v} / ${s}i < i32(${n})`);
  const at = (v: string, s: number) => (s === 1 ? `u32(${v})` : `u32(${v} / ${s}i)`);
  const pixel = (h: string, w: string, base: string) => `(${base} + ${at(h, sh)}) * W + ${at(w, sw)}`;
  const inBounds = (h: string, w: string) => `${inside(h, sh, 'H')} && ${inside(w, sw, 'W')}`;
  // flipped IOHW weights: the flat index in wt of B[k, j] for k = (ci, rq = kh * KW + kw) and channel j of group g
  const flippedIndex = (ci: string, rq: string, j: string) => `((g * CG + ${ci}) * OG + ${j}) * KHW + KHW - 1u - ${rq}`;
  const attrs = `stride [${stride}], padding [${padding}], dilation [${dilation}], groups ${groups}`;

  const body: string[] = [];
  // the store of one output element (n, o, ohw) at flat index `i`
  const store = (i: string, v: string) => (epi ? `${epi.call}(${i}, nb, o, ohw / OW, ohw % OW, ${v});` : `out[${i}] = ${v};`);
  const reduce = options.variant === 'reduce';
  // the direct and subgroup variants' loops over a channel's taps (kh, kw): row offset `ka`, dilated offsets `da`, `db`
  const tapLoops = [
    '    for (var a = 0u; a < KH; a++) {',
    `      let da = i32(${times('a', dilation[0])});`,
    flipped ? '      let ka = a * KW;' : '      let ka = kc + a * KW;',
    '      for (var b = 0u; b < KW; b++) {',
    `        let db = i32(${times('b', dilation[1])});`,
  ];
  const subgroup = options.variant === 'subgroup';
  // the subgroup variant's block: R positions per workgroup, `cols` channels per invocation, W invocations
  const R = SUBGROUP_POSITIONS;
  const cols = subgroupColumns(og);
  const W = isConcrete(og) ? Math.min(64, Math.max(SUBGROUP_SPREAD, Math.ceil(og / cols / SUBGROUP_SPREAD) * SUBGROUP_SPREAD)) : SUBGROUP_SPREAD;
  const span = W * cols;
  body.push('  let t = wid.y * nwg.x + wid.x;');
  if (tx) body.push('  let XC = (M / OHW) * H;');
  if (tw) body.push('  let WC = O * KHW;');
  if (reduce) {
    // one workgroup per output element t = (n, o, oh, ow); lane li sums k = li, li + 256, ...; then a tree in workgroup memory
    body.push('  if (t >= M * O) { return; }');
    body.push('  let nb = t / (O * OHW);');
    body.push('  let o = (t / OHW) % O;');
    body.push('  let ohw = t % OHW;');
    body.push(`  let g = ${groups === 1 ? '0u' : 'o / OG'};`);
    body.push(`  let ih0 = i32(${times('(ohw / OW)', stride[0])}) - ${padding[0]}i;`);
    body.push(`  let iw0 = i32(${times('(ohw % OW)', stride[1])}) - ${padding[1]}i;`);
    body.push(`  let xn = ${xBase('nb', 'g * CG')};`);
    body.push(`  let wo = o * ${wo};`);
    body.push('  var acc = 0.0;');
    body.push(`  for (var q = li; q < K; q += ${REDUCE_LANES}u) {`);
    body.push('    let ci = q / KHW;');
    body.push('    let rq = q % KHW;');
    body.push(`    let ih = ih0 + i32(${times('(rq / KW)', dilation[0])});`);
    body.push(`    let iw = iw0 + i32(${times('(rq % KW)', dilation[1])});`);
    body.push(`    if (${inBounds('ih', 'iw')}) { acc = fma(x[${pixel('ih', 'iw', `xn + ci * ${xc}`)}], wt[${flipped ? flippedIndex('ci', 'rq', '(o - g * OG)') : tw ? 'wo + ci * WC + rq' : 'wo + q'}], acc); }`);
    body.push('  }');
    body.push('  partial[li] = acc;');
    body.push('  workgroupBarrier();');
    body.push(`  for (var s = ${REDUCE_LANES / 2}u; s > 0u; s = s >> 1u) {`);
    body.push('    if (li < s) { partial[li] = partial[li] + partial[li + s]; }');
    body.push('    workgroupBarrier();');
    body.push('  }');
    body.push(`  if (li == 0u) { ${store(to ? outAt('nb', 'o') : 't', 'partial[0]')} }`);
  } else if (subgroup) {
    // 16 positions per workgroup (rows), `cols` channels per invocation W apart; lane s (mod 8) gathers
    // positions s and s + 8 for each tap and subgroupBroadcast hands them to the subgroup
    body.push(`  let tilesN = (OG + ${span - 1}u) / ${span}u;`);
    body.push(`  let tilesM = (M + ${R - 1}u) / ${R}u;`);
    body.push(`  if (t >= tilesN * tilesM * ${groups}u) { return; }`);
    body.push(`  let col0 = (t % tilesN) * ${span}u;`);
    body.push('  let rest = t / tilesN;');
    body.push(`  let row0 = (rest % tilesM) * ${R}u;`);
    body.push(`  let g = ${groups === 1 ? '0u' : 'rest / tilesM'};`);
    body.push('  let rl = M - 1u;');
    for (let r = 0; r < R / SUBGROUP_SPREAD; r++) {
      body.push(`  let p${r} = min(row0 + ${r * SUBGROUP_SPREAD}u + sid % ${SUBGROUP_SPREAD}u, rl);`);
      body.push(`  let ohw${r} = p${r} % OHW;`);
      body.push(`  let ih${r} = i32(${times(`(ohw${r} / OW)`, stride[0])}) - ${padding[0]}i;`);
      body.push(`  let iw${r} = i32(${times(`(ohw${r} % OW)`, stride[1])}) - ${padding[1]}i;`);
      body.push(`  let xn${r} = ${xBase(`(p${r} / OHW)`, 'g * CG')};`);
    }
    body.push('  let cl = OG - 1u;');
    for (let j = 0; j < cols; j++) {
      body.push(`  let c${j} = col0 + li + ${j * W}u;`);
      body.push(flipped ? `  let cj${j} = min(c${j}, cl);` : `  let wo${j} = (g * OG + min(c${j}, cl)) * ${wo};`);
    }
    const accType = cols === 1 ? 'f32' : `vec${cols}<f32>`;
    for (let i = 0; i < R; i++) body.push(`  var acc${i} = ${accType}(0.0);`);
    body.push('  for (var ci = 0u; ci < CG; ci++) {');
    if (flipped) for (let j = 0; j < cols; j++) body.push(`    let wo${j} = ((g * CG + ci) * OG + cj${j}) * KHW + KHW - 1u;`);
    else body.push(`    let kc = ci * ${wc};`);
    body.push(...tapLoops);
    for (let r = 0; r < R / SUBGROUP_SPREAD; r++) {
      body.push(`        let h${r} = ih${r} + da;`);
      body.push(`        let w${r} = iw${r} + db;`);
      body.push(`        var x${r} = 0.0;`);
      body.push(`        if (${inBounds(`h${r}`, `w${r}`)}) { x${r} = x[${pixel(`h${r}`, `w${r}`, `xn${r} + ci * ${xc}`)}]; }`);
    }
    body.push('        let q = ka + b;');
    body.push(`        let wv = ${accType}(${Array.from({ length: cols }, (_, j) => (flipped ? `wt[wo${j} - q]` : `wt[wo${j} + q]`)).join(', ')});`);
    for (let i = 0; i < R; i++) body.push(`        acc${i} = fma(${accType}(subgroupBroadcast(x${Math.floor(i / SUBGROUP_SPREAD)}, ${i % SUBGROUP_SPREAD}u)), wv, acc${i});`);
    body.push('      }');
    body.push('    }');
    body.push('  }');
    for (let i = 0; i < R; i++) {
      body.push(`  if (row0 + ${i}u < M) {`);
      body.push(`    let nb = (row0 + ${i}u) / OHW;`);
      body.push(`    let ohw = (row0 + ${i}u) % OHW;`);
      body.push(...outBase);
      for (let j = 0; j < cols; j++) {
        body.push(`    if (c${j} < OG) {`);
        body.push(`      let o = g * OG + c${j};`);
        body.push(`      ${store(outAt('nb', 'o'), cols === 1 ? `acc${i}` : `acc${i}[${j}]`)}`);
        body.push('    }');
      }
      body.push('  }');
    }
  } else {
  body.push('  if (t >= TT) { return; }');
  body.push(`  let col0 = (t % TN) * ${T}u;`);
  body.push('  let rest = t / TN;');
  body.push(`  let row0 = (rest % TM) * ${T}u;`);
  body.push(`  let g = ${groups === 1 ? '0u' : 'rest / TM'};`);
  if (!tiled) {
    // 4 positions (rows r0 .. r0 + 3) x 4 channels (columns c0 .. c0 + 3) per invocation: 8 of the
    // invocations share the channels (a CPU's SIMD vector), so per tap 4 reads of x and 4 of the weights
    // feed 16 fmas. Positions and channels past the edges are clamped for the loads and not stored.
    const P = DIRECT_POSITIONS;
    body.push(`  let r0 = row0 + (li % ${T / P}u) * ${P}u;`);
    body.push(`  let c0 = col0 + (li / ${T / P}u) * 4u;`);
    body.push('  if (r0 >= M || c0 >= OG) { return; }');
    body.push('  let rl = M - 1u;');
    for (let i = 0; i < P; i++) {
      body.push(`  let p${i} = min(r0 + ${i}u, rl);`);
      body.push(`  let ohw${i} = p${i} % OHW;`);
      body.push(`  let ih${i} = i32(${times(`(ohw${i} / OW)`, stride[0])}) - ${padding[0]}i;`);
      body.push(`  let iw${i} = i32(${times(`(ohw${i} % OW)`, stride[1])}) - ${padding[1]}i;`);
      body.push(`  let xn${i} = ${xBase(`(p${i} / OHW)`, 'g * CG')};`);
    }
    body.push('  let cl = OG - 1u;');
    if (flipped) body.push('  let cj = vec4<u32>(min(c0, cl), min(c0 + 1u, cl), min(c0 + 2u, cl), min(c0 + 3u, cl));');
    else body.push(`  let wo = (vec4<u32>(min(c0, cl), min(c0 + 1u, cl), min(c0 + 2u, cl), min(c0 + 3u, cl)) + g * OG) * ${wo};`);
    for (let i = 0; i < P; i++) body.push(`  var acc${i} = vec4<f32>(0.0);`);
    body.push('  for (var ci = 0u; ci < CG; ci++) {');
    if (flipped) body.push('    let wo = ((g * CG + ci) * OG + cj) * KHW + KHW - 1u;');
    else body.push(`    let kc = ci * ${wc};`);
    body.push(...tapLoops);
    // each position's pixel for this tap, 0 in the padding (a masked read: padding lanes load nothing)
    for (let i = 0; i < P; i++) {
      body.push(`        let h${i} = ih${i} + da;`);
      body.push(`        let w${i} = iw${i} + db;`);
      body.push(`        var x${i} = 0.0;`);
      body.push(`        if (${inBounds(`h${i}`, `w${i}`)}) { x${i} = x[${pixel(`h${i}`, `w${i}`, `xn${i} + ci * ${xc}`)}]; }`);
    }
    body.push('        let q = ka + b;');
    // flipped: wo already ends at the channel's last tap, so tap q is wo - q
    body.push(flipped ? '        let wv = vec4<f32>(wt[wo.x - q], wt[wo.y - q], wt[wo.z - q], wt[wo.w - q]);' : '        let wv = vec4<f32>(wt[wo.x + q], wt[wo.y + q], wt[wo.z + q], wt[wo.w + q]);');
    for (let i = 0; i < P; i++) body.push(`        acc${i} = fma(vec4<f32>(x${i}), wv, acc${i});`);
    body.push('      }');
    body.push('    }');
    body.push('  }');
    for (let i = 0; i < P; i++) {
      body.push(`  if (r0 + ${i}u < M) {`);
      body.push(`    let nb = p${i} / OHW;`);
      body.push(`    let ohw = ohw${i};`);
      body.push(...outBase);
      body.push('    for (var j = 0u; j < 4u; j++) {');
      body.push('      if (c0 + j >= OG) { break; }');
      body.push('      let o = g * OG + c0 + j;');
      body.push(`      ${store(outAt('nb', 'o'), `acc${i}[j]`)}`);
      body.push('    }');
      body.push('  }');
    }
  } else {
    const R = T / 4; // vec4s per row of either tile
    const LANES = ['x', 'y', 'z', 'w'];
    for (let i = 0; i < 4; i++) body.push(`  var acc${i} = vec4<f32>(0.0);`);
    body.push('  let xg = g * CG;');
    body.push('  let wg = g * OG;');
    body.push(`  let steps = (K + ${T - 1}u) / ${T}u;`);
    body.push('  for (var s = 0u; s < steps; s++) {');
    body.push(`    let k0 = s * ${T}u;`);
    body.push(`    for (var l = 0u; l < ${(T * T) / 4 / 64}u; l++) {`);
    body.push('      let e = li + l * 64u;');
    // A: position row0 + e / R, its k columns k0 + 4 * (e % R) .. + 3, gathered from x
    body.push(`      let ar = row0 + e / ${R}u;`);
    body.push(`      let ac = k0 + (e % ${R}u) * 4u;`);
    body.push('      var va = vec4<f32>(0.0);');
    body.push('      if (ar < M) {');
    body.push('        let nb = ar / OHW;');
    body.push('        let ohw = ar % OHW;');
    body.push(`        let ih0 = i32(${times('(ohw / OW)', stride[0])}) - ${padding[0]}i;`);
    body.push(`        let iw0 = i32(${times('(ohw % OW)', stride[1])}) - ${padding[1]}i;`);
    body.push(`        let xn = ${xBase('nb', 'xg')};`);
    body.push('        for (var j = 0u; j < 4u; j++) {');
    body.push('          let q = ac + j;');
    body.push('          if (q >= K) { break; }');
    body.push('          let ci = q / KHW;');
    body.push('          let rq = q % KHW;');
    body.push(`          let ih = ih0 + i32(${times('(rq / KW)', dilation[0])});`);
    body.push(`          let iw = iw0 + i32(${times('(rq % KW)', dilation[1])});`);
    body.push(`          if (${inBounds('ih', 'iw')}) { va[j] = x[${pixel('ih', 'iw', `xn + ci * ${xc}`)}]; }`);
    body.push('        }');
    body.push('      }');
    body.push('      tileA[e] = va;');
    // B: k row k0 + e / R, channels col0 + 4 * (e % R) .. + 3 of the group: wt[(wg + j) * K + k]
    body.push(`      let br = k0 + e / ${R}u;`);
    body.push(`      let bc = col0 + (e % ${R}u) * 4u;`);
    body.push('      var vb = vec4<f32>(0.0);');
    body.push('      if (br < K) {');
    body.push(`        let bo = ${flipped ? flippedIndex('(br / KHW)', '(br % KHW)', 'bc') : tw ? '(wg + bc) * KHW + (br / KHW) * WC + br % KHW' : '(wg + bc) * K + br'};`);
    const step = flipped || tw ? 'KHW' : 'K'; // between neighbouring channels
    for (let j = 0; j < 4; j++) body.push(`        if (bc${j > 0 ? ` + ${j}u` : ''} < OG) { vb.${LANES[j]} = wt[bo${j > 0 ? ` + ${j}u * ${step}` : ''}]; }`);
    body.push('      }');
    body.push('      tileB[e] = vb;');
    body.push('    }');
    body.push('    workgroupBarrier();');
    body.push(`    for (var q = 0u; q < ${T / 4}u; q++) {`);
    for (let j = 0; j < 4; j++) body.push(`      let b${j} = tileB[(q * 4u${j > 0 ? ` + ${j}u` : ''}) * ${R}u + lid.x];`);
    for (let i = 0; i < 4; i++) {
      body.push(`      let a${i} = tileA[(lid.y * 4u${i > 0 ? ` + ${i}u` : ''}) * ${R}u + q];`);
      for (let j = 0; j < 4; j++) body.push(`      acc${i} = fma(vec4<f32>(a${i}.${LANES[j]}), b${j}, acc${i});`);
    }
    body.push('    }');
    body.push('    workgroupBarrier();');
    body.push('  }');
    body.push('  let r0 = row0 + lid.y * 4u;');
    body.push('  let c0 = col0 + lid.x * 4u;');
    for (let i = 0; i < 4; i++) {
      body.push(`  if (r0 + ${i}u < M) {`);
      body.push(`    let nb = (r0 + ${i}u) / OHW;`);
      body.push(`    let ohw = (r0 + ${i}u) % OHW;`);
      body.push(...outBase);
      for (let j = 0; j < 4; j++) {
        body.push(`    if (c0 + ${j}u < OG) {`);
        body.push(`      let o = wg + c0 + ${j}u;`);
        body.push(`      ${store(outAt('nb', 'o'), `acc${i}.${LANES[j]}`)}`);
        body.push('    }');
      }
      body.push('  }');
    }
  }

  }
  const text = body.join('\n');
  const L: string[] = [];
  if (subgroup) L.push('enable subgroups;', '');
  L.push(
    subgroup
      ? `// ${what}, ${attrs}: CPU subgroup variant, ${R} positions per workgroup gathered by ${SUBGROUP_SPREAD} lanes and broadcast to the subgroup, ${cols} channel${cols > 1 ? 's' : ''} per invocation, ${W} invocations, a direct loop over (ci, kh, kw) (no barriers).`
      : reduce
      ? `// ${what}, ${attrs}: one workgroup per output element, ${REDUCE_LANES} invocations each summing every ${REDUCE_LANES}th k = (ci, kh, kw), then a tree in workgroup memory (few outputs, a long k: weight gradients).`
      : tiled
      ? `// ${what}, ${attrs}: an implicit GEMM, ${T}x${T} output tiles (positions x channels), k = (ci, kh, kw) in steps of ${T} through workgroup memory (A gathered from x), a 4x4 register block per invocation.`
      : `// ${what}, ${attrs}: ${T}x${T} output tiles (positions x channels), ${DIRECT_POSITIONS} positions and 4 channels per invocation, a direct loop over (ci, kh, kw) from storage (no barriers).`,
  );
  if (epi) L.push(epi.comment);
  L.push('struct Params {', `  w: array<vec4<u32>, 4>, // ${GEMM_WORDS.join(', ')}`, ...(epi?.fields ?? []), '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> x: array<f32>;');
  L.push('@group(0) @binding(2) var<storage, read> wt: array<f32>;');
  if (epi) L.push(...epi.declarations);
  else L.push('@group(0) @binding(3) var<storage, read_write> out: array<f32>;');
  if (reduce) L.push(`var<workgroup> partial: array<f32, ${REDUCE_LANES}>;`);
  if (tiled) {
    L.push(`var<workgroup> tileA: array<vec4<f32>, ${(T * T) / 4}>; // [${T} positions][${T / 4} vec4s along k]`);
    L.push(`var<workgroup> tileB: array<vec4<f32>, ${(T * T) / 4}>; // [${T} k][${T / 4} vec4s along the channels]`);
  }
  L.push('');
  L.push(tiled ? '@compute @workgroup_size(8, 8)' : `@compute @workgroup_size(${reduce ? REDUCE_LANES : subgroup ? W : (T / DIRECT_POSITIONS) * (T / 4)})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  L.push(`        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32${subgroup ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {`);
  GEMM_WORDS.forEach((name, i) => {
    if (new RegExp(`\\b${name}\\b`).test(text)) L.push(`  let ${name} = ${uvec('w', i)};`);
  });
  L.push(...body, '}', '');
  if (epi) L.push(...epi.functions);
  return { wgsl: L.join('\n'), words, workgroups: reduce ? mul(m, o) : subgroup ? mul(groups, mul(ceilDiv(m, R), ceilDiv(og, span))) : tt };
}

/**
 * out[n, g*OG + o, oh, ow] = sum over the group's input channels ci and taps (kh, kw) with
 * oh + p - kh*d = ih*s for an ih in [0, H) (likewise for ow) of x[n, ci, ih, iw] * w[ci, o, kh, kw].
 */
export function convTranspose2dPlans(node: Node): KernelPlan[] {
  const v = conv2dViewOf(node);
  if (v) return conv2dPlans(v.view, v.read).map((p) => ({ ...p, op: node.op }));
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
  /**
   * The loop over the taps `k` of one axis (output coordinate `o`, input size `n`) and the input position
   * `v` each reads, skipping the taps that read none. Undilated with a stride s, only the taps
   * k = (o + p) mod s, + s, ... can land on an input pixel, and their input positions fall by 1 per
   * step: the loop visits just those (a max-pool gradient's 2x2 windows at stride 2: 1 tap in 4), in
   * increasing k as the full loop does, so the sum's order is unchanged.
   */
  const tapLoop = (v: string, o: string, k: string, kn: string, axis: 0 | 1, n: string): string[] => {
    const [s, p, d] = [stride[axis], padding[axis], dilation[axis]];
    if (s > 1 && d === 1) {
      return [
        `let t${v} = i32(${o}) + ${p}i;`,
        `for (var ${k} = u32(t${v} % ${s}i); ${k} < ${kn}; ${k} += ${s}u) {`,
        `  let ${v} = (t${v} - i32(${k})) / ${s}i;`,
        `  if (${v} < 0i) { break; }`,
        `  if (${v} >= i32(${n})) { continue; }`,
      ];
    }
    const lines = [`for (var ${k} = 0u; ${k} < ${kn}; ${k}++) {`, `  let t${v} = i32(${o}) + ${p}i - i32(${times(k, d)});`];
    lines.push(s === 1 ? `  if (t${v} < 0i) { continue; }` : `  if (t${v} < 0i || t${v} % ${s}i != 0i) { continue; }`);
    lines.push(`  let ${v} = ${s === 1 ? `t${v}` : `t${v} / ${s}i`};`, `  if (${v} >= i32(${n})) { continue; }`);
    return lines;
  };
  const body = [
    ...(groups === 1 ? ['let g = 0u;', 'let oc = i1;'] : ['let g = i1 / OG;', 'let oc = i1 % OG;']),
    'var acc = 0.0;',
    'for (var c = 0u; c < CG; c++) {',
    '  let ci = g * CG + c;',
    ...tapLoop('ih', 'i2', 'a', 'KH', 0, 'H').map((l) => `  ${l}`),
    '    let xr = ((i0 * C + ci) * H + u32(ih)) * W;',
    '    let wr = ((ci * OG + oc) * KH + a) * KW;',
    ...tapLoop('iw', 'i3', 'b', 'KW', 1, 'W').map((l) => `    ${l}`),
    '      acc += x[xr + u32(iw)] * wt[wr + b];',
    '    }',
    '  }',
    '}',
  ];
  return { what: `conv_transpose2d f32, stride [${stride}], padding [${padding}], dilation [${dilation}], groups ${groups}, as a gather`, words, body };
}
