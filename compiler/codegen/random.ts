// Kernels for random_uniform and random_normal: Philox-4x32-10 per element, bit for bit as documented in runtime/philox.ts.
//
// Element i uses counter (i, 0, 0, 0) and key (the u32 key input, the stream attribute, baked). The
// high half of each 32x32-bit product comes from 16-bit halves (every partial product fits a u32);
// the low half is WGSL's wrapping u32 multiply. The uniform is (x0 >> 8) * 2^-24, exact in f32, so
// it matches the interpreter bit for bit; the normal is Box-Muller's cosine branch in f32.
import type { Node } from '../ir/types.ts';
import type { KernelPlan } from './kernel.ts';
import { f32Const, perElementPlan } from './per-element.ts';

export const PHILOX_WGSL = `// High 32 bits of a 32x32-bit product, from 16-bit halves.
fn dlc_mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let ll = al * bl;
  let lh = al * bh;
  let hl = ah * bl;
  let cross = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return ah * bh + (lh >> 16u) + (hl >> 16u) + (cross >> 16u);
}

// Philox-4x32-10 (Random123's philox4x32_10).
fn dlc_philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u); }
    let hi0 = dlc_mulhi(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = dlc_mulhi(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}`;

/**
 * The WGSL of one draw: statements (naming their temporaries `{prefix}bits`, `{prefix}u1`, `{prefix}u2`)
 * and the f32 result, for element `index` under the u32 `key`. The standalone kernel and a fused body's
 * random sub-op (codegen/fused.ts) both draw with it, so they give the same bits.
 */
export function philoxDraw(op: string, attrs: Node['attrs'], key: string, index: string, prefix = '', indent = '  '): { stmts: string[]; result: string } {
  const stream = (((attrs.stream ?? 0) as number) >>> 0).toString(16);
  const step = f32Const(2 ** -24);
  const bits = `${prefix}bits`;
  const stmts = [`${indent}let ${bits} = dlc_philox(vec4<u32>(${index}, 0u, 0u, 0u), vec2<u32>(${key}, 0x${stream}u));`];
  if (op === 'random_uniform') return { stmts, result: `f32(${bits}.x >> 8u) * ${step}` };
  if (op !== 'random_normal') throw new Error(`${op} is not a random draw`);
  stmts.push(`${indent}let ${prefix}u1 = f32((${bits}.x >> 8u) + 1u) * ${step};`, `${indent}let ${prefix}u2 = f32(${bits}.y >> 8u) * ${step};`);
  return { stmts, result: `sqrt(-2.0 * log(${prefix}u1)) * cos(6.283185307179586 * ${prefix}u2)` };
}

export function randomPlans(node: Node): KernelPlan[] {
  const out = node.outputs[0].type;
  if (out.dtype !== 'f32') throw new Error(`${node.op} is lowered for f32 only, found ${out.dtype}`);
  const stream = ((node.attrs.stream ?? 0) as number) >>> 0;
  const { stmts, result } = philoxDraw(node.op, node.attrs, 'key[0]', 'idx', '', '');
  return [
    perElementPlan({
      op: node.op,
      what: `${node.op} f32 from Philox-4x32-10, stream ${stream}`,
      shape: out.shape,
      index: false,
      inputs: [{ name: 'key', dtype: 'u32', node: 0 }],
      outDtype: 'f32',
      body: stmts,
      result,
      helpers: [PHILOX_WGSL],
    }),
  ];
}
