// Code generation for one elementwise node: a WGSL compute shader with broadcasting index math driven by a uniform buffer.
//
// One invocation computes one output element at row-major index `idx`. The output's sizes and each
// broadcast operand's strides (0 along broadcast axes) are not baked into the shader: they come from
// the uniform buffer, so a shape with a symbolic size (the batch B) compiles once and serves every
// binding of B. Only the rank and the dtypes are static. An operand whose symbolic shape equals the
// output's reads at `idx`, and one with a single element reads at 0, without any index arithmetic.
//
// Bindings (group 0): 0 the uniform `Params`; 1..n the inputs, `var<storage, read>`; n+1 the output,
// `var<storage, read_write>`. bool is stored as u32 0/1. Dispatch is `dispatchSize(numel)`: past
// 65,535 workgroups the grid folds into a second dimension and the shader linearizes it back.
import type { DType, Node } from '../ir/types.ts';
import { type Dim, dimEquals, evaluate, isConcrete, mul, shapeToString } from '../shapes/dim.ts';
import { getOp } from '../ops/index.ts';

export const WORKGROUP_SIZE = 256;
export const MAX_WORKGROUPS_PER_DIM = 65535;

/** How an input is addressed: at the output index, at element 0, or through broadcast strides. */
export type OperandAccess = 'same' | 'scalar' | 'strided';

export interface ElementwiseOperand {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
  readonly access: OperandAccess;
}

export interface ElementwiseKernel {
  readonly op: string;
  readonly wgsl: string;
  readonly entryPoint: 'main';
  readonly workgroupSize: number;
  readonly inputs: readonly ElementwiseOperand[];
  readonly output: { readonly dtype: DType; readonly shape: readonly Dim[] };
  /** The strided inputs in uniform order (indices into `inputs`). */
  readonly stridedInputs: readonly number[];
  /** Size of the uniform buffer in bytes. */
  readonly uniformBytes: number;
}

/** The WGSL type an element of this dtype has in a storage buffer. */
export function storageType(d: DType): 'f32' | 'i32' | 'u32' {
  switch (d) {
    case 'f32':
    case 'i32':
    case 'u32':
      return d;
    case 'bool':
      return 'u32';
    case 'f16':
      throw new Error('f16 is not lowered yet (it needs the shader-f16 feature)');
  }
}

const LANES = ['x', 'y', 'z', 'w'];

/** `arr[k].lane` for element `i` of a uniform `array<vec4<u32>, K>`. */
export function uvec(arr: string, i: number): string {
  return `p.${arr}[${i >> 2}].${LANES[i & 3]}`;
}

function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]));
}

export function accessOf(shape: readonly Dim[], out: readonly Dim[]): OperandAccess {
  if (sameShape(shape, out)) return 'same';
  if (shape.every((d) => isConcrete(d) && d === 1)) return 'scalar';
  return 'strided';
}

/**
 * WGSL lines that load every operand of an invocation at flat output index `idx` as `v0, v1, ...`:
 * strided operands walk the output's axes once (sizes and strides from the uniform), and bools are
 * read from their u32 storage; operand i is read from the array `arrayOf(i)` (default `in{i}`), a strided
 * one from the element its `offsets` entry names on (a uniform word; default 0). With `indexed`, the
 * output index's axes `i0, i1, ...` are computed even when no operand is strided. Shared by
 * the elementwise and the fused elementwise kernels.
 */
export function operandLoads(
  inputs: readonly ElementwiseOperand[],
  strided: readonly number[],
  rank: number,
  arrayOf: (i: number) => string = (i) => `in${i}`,
  offsets: ReadonlyMap<number, string> = new Map(),
  indexed = strided.length > 0,
): string[] {
  const lines: string[] = [];
  if (indexed) {
    for (const i of strided) lines.push(`  var o${i} = ${offsets.get(i) ?? '0u'};`);
    lines.push('  var rem = idx;');
    for (let a = rank - 1; a >= 0; a--) {
      if (a > 0) {
        lines.push(`  let i${a} = rem % ${uvec('shape', a)};`);
        lines.push(`  rem = rem / ${uvec('shape', a)};`);
      } else {
        lines.push('  let i0 = rem;');
      }
      for (const i of strided) lines.push(`  o${i} += i${a} * ${uvec(`stride${i}`, a)};`);
    }
  }
  inputs.forEach((x, i) => {
    const at = x.access === 'same' ? 'idx' : x.access === 'scalar' ? '0u' : `o${i}`;
    const load = `${arrayOf(i)}[${at}]`;
    lines.push(`  let v${i} = ${x.dtype === 'bool' ? `(${load} != 0u)` : load};`);
  });
  return lines;
}

/**
 * The WGSL shader for one elementwise node (any rank, numpy broadcasting). Pure: the same node
 * structure gives the same text. Throws when the op is not elementwise or has no lowering.
 */
export function lowerElementwise(node: Node, options: { workgroupSize?: number } = {}): ElementwiseKernel {
  const def = getOp(node.op);
  if (!def || def.family !== 'elementwise') throw new Error(`${node.op} is not an elementwise op`);
  const spec = def.lower;
  if (!spec || spec.kind !== 'elementwise' || !spec.expr) throw new Error(`elementwise op ${node.op} has no lowering`);
  if (node.outputs.length !== 1) throw new Error(`${node.op}: an elementwise node has one output`);
  const wg = options.workgroupSize ?? WORKGROUP_SIZE;
  if (!Number.isInteger(wg) || wg < 1 || wg > 256) throw new Error(`workgroup size ${wg} is outside 1..256`);

  const outType = node.outputs[0].type;
  const rank = outType.shape.length;
  const inputs: ElementwiseOperand[] = node.inputs.map((v) => {
    if (v.type.shape.length > rank) throw new Error(`${node.op}: operand rank ${v.type.shape.length} exceeds output rank ${rank}`);
    return { dtype: v.type.dtype, shape: v.type.shape, access: accessOf(v.type.shape, outType.shape) };
  });
  const strided = inputs.flatMap((x, i) => (x.access === 'strided' ? [i] : []));
  const k = Math.max(1, Math.ceil(rank / 4));

  const fields = ['  header: vec4<u32>, // x: element count'];
  if (strided.length > 0) {
    fields.push(`  shape: array<vec4<u32>, ${k}>,`);
    for (const i of strided) fields.push(`  stride${i}: array<vec4<u32>, ${k}>,`);
  }
  const uniformWords = 4 + (strided.length > 0 ? 4 * k * (1 + strided.length) : 0);

  const args = inputs.map((_, i) => `v${i}`);
  const expr = spec.expr(args, node.attrs, outType.dtype, inputs.map((x) => x.dtype));
  const helpers = Object.entries(spec.helpers ?? {})
    .filter(([name]) => new RegExp(`\\b${name}\\(`).test(expr))
    .map(([, code]) => code);

  const lines: string[] = [];
  lines.push(`// ${node.op}(${inputs.map((x) => x.dtype).join(', ')}) -> ${outType.dtype}, rank ${rank}: one invocation per output element.`);
  lines.push('struct Params {', ...fields, '}');
  lines.push('@group(0) @binding(0) var<uniform> p: Params;');
  inputs.forEach((x, i) => lines.push(`@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<${storageType(x.dtype)}>;`));
  lines.push(`@group(0) @binding(${inputs.length + 1}) var<storage, read_write> out: array<${storageType(outType.dtype)}>;`);
  lines.push('', ...helpers.flatMap((h) => [h, '']));
  lines.push(`@compute @workgroup_size(${wg})`);
  lines.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  lines.push('        @builtin(local_invocation_index) lid: u32) {');
  lines.push(`  let idx = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`);
  lines.push('  if (idx >= p.header.x) { return; }');
  lines.push(...operandLoads(inputs, strided, rank));
  lines.push(`  let r = ${expr};`);
  lines.push(`  out[idx] = ${outType.dtype === 'bool' ? 'select(0u, 1u, r)' : 'r'};`);
  lines.push('}', '');

  return {
    op: node.op,
    wgsl: lines.join('\n'),
    entryPoint: 'main',
    workgroupSize: wg,
    inputs,
    output: { dtype: outType.dtype, shape: outType.shape },
    stridedInputs: strided,
    uniformBytes: uniformWords * 4,
  };
}

function concreteShape(shape: readonly Dim[], sizes: ReadonlyMap<string, number>): number[] {
  return shape.map((d) => {
    const v = isConcrete(d) ? d : evaluate(d, sizes);
    if (!Number.isInteger(v) || v < 0) throw new Error(`size ${String(v)} is not a non-negative integer`);
    return v;
  });
}

/**
 * Row-major strides of `shape` over the axes of `out`, right-aligned as numpy broadcasts (0 along an
 * axis it lacks or has size 1 on): how a broadcast operand is read at an output index. Broadcasting
 * is decided statically: only a size that is the constant 1 broadcasts. `what` names the operand in
 * the error when it does not broadcast (a compiler bug: shape inference checked it). `own`, when given,
 * are the operand's strides in place of row-major ones (a strided view of a larger buffer).
 */
export function broadcastStrides(shape: readonly Dim[], out: readonly Dim[], what: string, own?: readonly Dim[]): Dim[] {
  const strides: Dim[] = new Array<Dim>(out.length).fill(0);
  const lead = out.length - shape.length;
  let acc: Dim = 1;
  for (let a = shape.length - 1; a >= 0; a--) {
    const one = isConcrete(shape[a]) && shape[a] === 1;
    if (!one && !dimEquals(shape[a], out[lead + a])) throw new Error(`${what} ${shapeToString(shape)} does not broadcast to the output ${shapeToString(out)}`);
    strides[lead + a] = one ? 0 : (own?.[a] ?? acc);
    acc = mul(acc, shape[a]);
  }
  return strides;
}

/**
 * The uniform words as sizes: the element count, the output shape and, per strided input, its
 * row-major strides aligned to the output's axes (0 along an axis the input lacks or has size 1 on).
 * Broadcasting is decided statically: only a size that is the constant 1 broadcasts.
 */
export function elementwiseUniformDims(kernel: ElementwiseKernel): Dim[] {
  const out = kernel.output.shape;
  const words: Dim[] = new Array<Dim>(kernel.uniformBytes / 4).fill(0);
  words[0] = out.reduce<Dim>((a, b) => mul(a, b), 1);
  if (kernel.stridedInputs.length > 0) {
    const rank = out.length;
    const k = Math.max(1, Math.ceil(rank / 4));
    out.forEach((d, a) => (words[4 + a] = d));
    kernel.stridedInputs.forEach((i, j) => {
      const base = 4 + 4 * k * (1 + j);
      broadcastStrides(kernel.inputs[i].shape, out, `${kernel.op}: operand ${i}`).forEach((s, a) => (words[base + a] = s));
    });
  }
  return words;
}

/**
 * The uniform buffer contents for a kernel once the symbolic sizes are bound (the words of
 * `elementwiseUniformDims`, evaluated), with the concrete shapes, for buffer sizing.
 */
export function elementwiseUniforms(
  kernel: ElementwiseKernel,
  sizes: ReadonlyMap<string, number>,
): { data: Uint32Array<ArrayBuffer>; numel: number; outShape: number[]; inShapes: number[][] } {
  const outShape = concreteShape(kernel.output.shape, sizes);
  const inShapes = kernel.inputs.map((x) => concreteShape(x.shape, sizes));
  const numel = outShape.reduce((a, b) => a * b, 1);
  if (numel > 0xffffffff) throw new Error(`${kernel.op}: ${numel} elements do not fit a u32 index`);
  const data = Uint32Array.from(concreteShape(elementwiseUniformDims(kernel), sizes));
  return { data, numel, outShape, inShapes };
}

/**
 * Workgroup counts for `numel` elements: one dimension up to `maxPerDim` workgroups, then a second
 * one (the shader computes `wid.y * nwg.x + wid.x`; threads past the end fail the bounds check).
 */
export function dispatchSize(numel: number, workgroupSize: number = WORKGROUP_SIZE, maxPerDim: number = MAX_WORKGROUPS_PER_DIM): [number, number] {
  const groups = Math.ceil(numel / workgroupSize);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  if (y > maxPerDim) throw new Error(`${numel} elements need more than ${maxPerDim}^2 workgroups`);
  return [Math.ceil(groups / y), y];
}
