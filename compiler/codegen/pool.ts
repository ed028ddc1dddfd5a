// Kernels for max_pool2d and avg_pool2d over NCHW: one invocation per output element, a direct loop over the window.
//
// Window positions in the padding are skipped, as in the interpreter: max_pool2d reads padding as
// -inf (and propagates NaN like the interpreter's max), avg_pool2d divides by the count of real
// positions, or with count_include_pad by the window's positions inside the padded input. In ceil
// mode the output shape holds the last, partial windows, whose positions past the input are skipped
// the same way. Spatial sizes are uniform words; kernel, stride and padding are baked.
import type { Node } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import type { KernelPlan } from './kernel.ts';
import { kernelStorageType } from './matmul.ts';
import { f32Const, perElementPlan } from './per-element.ts';

const MAX_F32 = `// NaN-propagating like the interpreter's max: WGSL's max need not be.
fn dlc_max_f32(a: f32, b: f32) -> f32 {
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  return max(a, b);
}`;

export function poolPlans(node: Node): KernelPlan[] {
  const isMax = node.op === 'max_pool2d';
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  const k = node.attrs.kernel as number[];
  const pair = (key: string, d: readonly number[]): number[] => {
    const v = node.attrs[key];
    return Array.isArray(v) ? [v[0] as number, v[1] as number] : [d[0], d[1]];
  };
  const stride = pair('stride', k);
  const padding = pair('padding', [0, 0]);
  const countPad = node.attrs.count_include_pad === true;
  const ty = kernelStorageType(x.dtype);
  if (!isMax && ty !== 'f32') throw new Error(`avg_pool2d is lowered for f32 only, found ${x.dtype}`);
  const words: [string, Dim][] = [
    ['C', x.shape[1]],
    ['H', x.shape[2]],
    ['W', x.shape[3]],
  ];
  const init = !isMax ? '0.0' : ty === 'f32' ? f32Const(-Infinity) : ty === 'i32' ? 'bitcast<i32>(0x80000000u)' : '0u';
  const combine = !isMax ? 'acc + v' : ty === 'f32' ? 'dlc_max_f32(acc, v)' : 'max(acc, v)';
  const pos = (i: string, a: string, axis: number): string => {
    const base = stride[axis] === 1 ? i : `${i} * ${stride[axis]}u`;
    return `i32(${base} + ${a}) - ${padding[axis]}i`;
  };
  const body = [
    'let plane = (i0 * C + i1) * H;',
    `var acc = ${init};`,
    ...(isMax ? [] : ['var count = 0u;']),
    `for (var a = 0u; a < ${k[0]}u; a++) {`,
    `  let ih = ${pos('i2', 'a', 0)};`,
    '  if (ih < 0i || ih >= i32(H)) { continue; }',
    `  for (var b = 0u; b < ${k[1]}u; b++) {`,
    `    let iw = ${pos('i3', 'b', 1)};`,
    '    if (iw < 0i || iw >= i32(W)) { continue; }',
    '    let v = x[(plane + u32(ih)) * W + u32(iw)];',
    `    acc = ${combine};`,
    ...(isMax ? [] : ['    count += 1u;']),
    '  }',
    '}',
  ];
  return [
    perElementPlan({
      op: node.op,
      what: `${node.op} ${x.dtype}, kernel [${k}], stride [${stride}], padding [${padding}]`,
      shape: out.shape,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      words,
      body,
      result: isMax ? 'acc' : countPad ? `acc / f32(${paddedCount(stride, padding, k)})` : 'acc / f32(count)',
      helpers: isMax && ty === 'f32' ? [MAX_F32] : [],
    }),
  ];
}

/** PyTorch's count_include_pad divisor in WGSL: the window's positions inside the padded input (not past it, in ceil mode). */
function paddedCount(stride: readonly number[], padding: readonly number[], k: readonly number[]): string {
  const along = (i: string, n: string, axis: number) => {
    const start = `(i32(${i} * ${stride[axis]}u) - ${padding[axis]}i)`;
    return `(min(${start} + ${k[axis]}i, i32(${n}) + ${padding[axis]}i) - ${start})`;
  };
  return `${along('i2', 'H', 0)} * ${along('i3', 'W', 1)}`;
}
