// The shared generator for "one invocation per output element" kernels (movement, gather, conv, pool, random, constants).
//
// A kernel iterates over a shape (normally the output's): invocation `idx` (the linear workgroup index
// times 256 plus the local index) returns past the element count, unravels `idx` into `i0..i{r-1}`
// over that shape (from the uniform buffer; the sizes it divides by, every axis but the first, baked
// where they are known: a division by a constant is a multiply and a shift, while a CPU driver divides
// by a uniform one lane at a time: LeNet's max-pool gradients on lavapipe 3.2 -> 2.5 and 1.5 -> 0.9 ms),
// runs the op-specific body and stores one element. Sizes
// that the body needs (input shapes, strides, offsets, symbolic attribute values) are named uniform
// words, so a symbolic batch binds at run time and one shader serves every batch size; attributes that
// are plain numbers (perm, strides, paddings, kernel sizes, depth, stream) may be baked into the text.
//
// Uniform layout: `header` (x: element count), `shape` (the iteration shape, one u32 per axis, when
// the body uses the multi-index), then `w` (the named words, in order). Bindings (group 0): 0 the
// uniform, then the bound inputs (`var<storage, read>`) in order, then the output.
import type { DType } from '../ir/types.ts';
import { type Dim, isConcrete, mul } from '../shapes/dim.ts';
import { ceilDiv, type KernelPlan, padUniforms } from './kernel.ts';
import { kernelStorageType, uvec } from './matmul.ts';

export const PER_ELEMENT_WORKGROUP = 256;

export interface PerElementSpec {
  readonly op: string;
  /** A one-line description for the shader's first comment. */
  readonly what: string;
  /** The iteration shape: one invocation per element (normally the output's shape). */
  readonly shape: readonly Dim[];
  /** Whether the body reads the multi-index `i0..i{r-1}` (else only the flat `idx`). Default true. */
  readonly index?: boolean;
  /** The node inputs bound, in order, with the names the body reads them by. */
  readonly inputs: readonly { readonly name: string; readonly dtype: DType; readonly node: number }[];
  readonly outDtype: DType;
  /** Named u32 uniform words the body reads by name (sizes, strides, offsets). */
  readonly words?: readonly (readonly [string, Dim])[];
  /** WGSL statements computing the element (may `return` early after storing). */
  readonly body: readonly string[];
  /** The value stored, an expression of the output's storage type (bool as u32 0/1). */
  readonly result: string;
  /** Where the value is stored (default `idx`). */
  readonly store?: string;
  /** WGSL functions emitted before main. */
  readonly helpers?: readonly string[];
}

/** The product of a shape's sizes. */
export function numelOf(shape: readonly Dim[]): Dim {
  return shape.reduce<Dim>((a, b) => mul(a, b), 1);
}

/** Row-major strides of a (possibly symbolic) shape. */
export function stridesOf(shape: readonly Dim[]): Dim[] {
  const out = new Array<Dim>(shape.length);
  let acc: Dim = 1;
  for (let a = shape.length - 1; a >= 0; a--) {
    out[a] = acc;
    acc = mul(acc, shape[a]);
  }
  return out;
}

/** Reinterprets bits at run time: a constant bitcast to an infinity or NaN is a WGSL compile error. */
const F32_BITS_HELPER = `// A non-finite f32 from its bits, at run time (a constant expression cannot be infinite or NaN).
fn dlc_f32_bits(b: u32) -> f32 {
  return bitcast<f32>(b);
}`;

/**
 * An exact f32 constant (any value, NaN and infinities included) as WGSL text; a non-finite one calls
 * `dlc_f32_bits`, which perElementPlan emits when the body mentions it.
 */
export function f32Const(v: number): string {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
  const hex = `0x${bits.toString(16).padStart(8, '0')}u`;
  return Number.isFinite(Math.fround(v)) ? `bitcast<f32>(${hex})` : `dlc_f32_bits(${hex})`;
}

/** A constant of a storage dtype as WGSL text, already wrapped to the dtype (bool as u32 0/1). */
export function storageConst(dtype: DType, v: number): string {
  switch (dtype) {
    case 'f32':
      return f32Const(v);
    case 'i32': {
      const i = v | 0;
      return i === -2147483648 ? 'bitcast<i32>(0x80000000u)' : `${i}i`;
    }
    case 'u32':
      return `${v >>> 0}u`;
    case 'bool':
      return v !== 0 && !Number.isNaN(v) ? '1u' : '0u';
    case 'f16':
      throw new Error('f16 is not lowered yet');
  }
}

/** The dispatch for one per-element kernel: its WGSL, its uniform words and its workgroup count. */
export function perElementPlan(spec: PerElementSpec, extra: { inputs?: readonly number[] } = {}): KernelPlan {
  const rank = spec.shape.length;
  const useIndex = (spec.index ?? true) && rank > 0;
  const words = spec.words ?? [];
  const ks = Math.ceil(rank / 4);
  const kw = Math.ceil(words.length / 4);
  const wg = PER_ELEMENT_WORKGROUP;
  const count = numelOf(spec.shape);

  const fields = ['  header: vec4<u32>, // x: element count'];
  if (useIndex) fields.push(`  shape: array<vec4<u32>, ${ks}>,`);
  if (kw > 0) fields.push(`  w: array<vec4<u32>, ${kw}>,`);

  const text = [...spec.body, spec.result, spec.store ?? ''].join('\n');
  const mentions = (name: string) => new RegExp(`\\b${name}\\b`).test(text);

  const L: string[] = [];
  L.push(`// ${spec.op}: ${spec.what}; one invocation per element.`);
  L.push('struct Params {', ...fields, '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  spec.inputs.forEach((x, i) => L.push(`@group(0) @binding(${i + 1}) var<storage, read> ${x.name}: array<${kernelStorageType(x.dtype)}>;`));
  L.push(`@group(0) @binding(${spec.inputs.length + 1}) var<storage, read_write> out: array<${kernelStorageType(spec.outDtype)}>;`);
  const helpers = [...(spec.helpers ?? []), ...(/\bdlc_f32_bits\(/.test(text) ? [F32_BITS_HELPER] : [])];
  L.push('', ...helpers.flatMap((h) => [h, '']));
  L.push(`@compute @workgroup_size(${wg})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  L.push('        @builtin(local_invocation_index) lid: u32) {');
  L.push(`  let idx = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`);
  L.push('  if (idx >= p.header.x) { return; }');
  words.forEach(([name], j) => {
    if (mentions(name)) L.push(`  let ${name} = ${uvec('w', j)};`);
  });
  if (useIndex) {
    if (rank === 1) L.push('  let i0 = idx;');
    else {
      const src = rank > 2 ? 'rem' : 'idx';
      if (rank > 2) L.push('  var rem = idx;');
      for (let a = rank - 1; a >= 1; a--) {
        // a known size divides as a constant (a multiply and a shift; a CPU driver divides by a uniform one lane at a time)
        const d = spec.shape[a];
        const size = isConcrete(d) && d > 0 ? `${d}u` : uvec('shape', a);
        L.push(`  let i${a} = ${src} % ${size};`);
        if (a > 1) L.push(`  rem = rem / ${size};`);
        else L.push(`  let i0 = ${src} / ${size};`);
      }
    }
  }
  for (const line of spec.body) L.push(`  ${line}`);
  L.push(`  out[${spec.store ?? 'idx'}] = ${spec.result};`);
  L.push('}', '');

  const uniforms: Dim[] = [count, 0, 0, 0];
  if (useIndex) uniforms.push(...padUniforms(spec.shape));
  if (kw > 0) uniforms.push(...padUniforms(words.map(([, d]) => d)));
  const plan: KernelPlan = { op: spec.op, wgsl: L.join('\n'), uniforms, workgroups: ceilDiv(count, wg) };
  const inputs = extra.inputs ?? spec.inputs.map((x) => x.node);
  return { ...plan, inputs };
}
