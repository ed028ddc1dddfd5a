// Kernels for the constants: full (a baked number, or a symbolic size passed as a uniform word) and iota.
import type { Node } from '../ir/types.ts';
import { isDim, mod } from '../shapes/dim.ts';
import type { KernelPlan } from './kernel.ts';
import { kernelStorageType } from './matmul.ts';
import { perElementPlan, storageConst } from './per-element.ts';

/**
 * Every element the value. A number (or boolean) is baked, wrapped to the dtype; a symbolic size (the
 * batch B in `mean`) is a uniform word taken mod 2^32, so a negative size reads back as an i32.
 */
export function fullPlans(node: Node): KernelPlan[] {
  const out = node.outputs[0].type;
  const value = node.attrs.value;
  const ty = kernelStorageType(out.dtype);
  const symbolic = typeof value === 'object' && value !== null && isDim(value);
  let result: string;
  if (!symbolic) result = storageConst(out.dtype, Number(value));
  else if (out.dtype === 'bool') result = 'select(0u, 1u, v != 0u)';
  else result = ty === 'u32' ? 'v' : ty === 'i32' ? 'bitcast<i32>(v)' : 'f32(bitcast<i32>(v))';
  return [
    perElementPlan({
      op: node.op,
      what: `full ${out.dtype} with ${symbolic ? 'a size from the uniform' : `the constant ${String(value)}`}`,
      shape: out.shape,
      index: false,
      inputs: [],
      outDtype: out.dtype,
      words: symbolic ? [['v', mod(value, 2 ** 32)]] : [],
      body: [],
      result,
    }),
  ];
}

/** Each element is its index along `axis`. */
export function iotaPlans(node: Node): KernelPlan[] {
  const out = node.outputs[0].type;
  const rank = out.shape.length;
  const raw = typeof node.attrs.axis === 'number' ? node.attrs.axis : 0;
  const axis = raw < 0 ? raw + rank : raw;
  const ty = kernelStorageType(out.dtype);
  const i = `i${axis}`;
  return [
    perElementPlan({
      op: node.op,
      what: `iota ${out.dtype} along axis ${axis}`,
      shape: out.shape,
      inputs: [],
      outDtype: out.dtype,
      body: [],
      result: ty === 'u32' ? i : `${ty}(${i})`,
    }),
  ];
}
