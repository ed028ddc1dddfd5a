// Code generation for fused_elementwise: a body of elementwise sub-ops composed into one shader.
//
// The same scheme as one elementwise node (codegen/elementwise.ts), generalized: one invocation per
// element of the output shape; each input has its own access (the output index, element 0, or
// broadcast strides from the uniform); each sub-op is a `let` over earlier registers, written by its
// registry `expr`; each output is stored at the index. Constants (`full` sub-ops) are uniform words
// read at run time, never literals: the values the unfused `full` kernel would have stored, and no
// constant expression the WGSL compiler could fold (or reject, for infinities and NaN).
//
// Uniform layout: `header` (x: element count; y, z, w: zeros the shader cannot know, see `opaque`), then, when an input is strided, `shape` and one
// `stride{i}` per strided input (exactly as elementwise.ts; a viewed input's are its view's), then, when
// inputs are viewed, `voff` (their offsets), then per output stored into a slab (`out_views`) its
// `ostride{o}` and then `ooff` (their offsets; the output index is walked for them too, so `shape` is
// there whenever an input or an output is strided), then `c` (the constants' words).
// Bindings (group 0): 0 the uniform, 1..n the inputs (read-only; an input viewed more than once is bound
// once), then the outputs (read-write).
import type { DType, Node } from '../ir/types.ts';
import { type Dim, isDim, mod, mul } from '../shapes/dim.ts';
import { getOp } from '../ops/registry.ts';
import { decodeFusedBody, decodeInputViews, decodeOutputViews, type FusedBody, FUSED_OP, isRandomSubOp } from '../ops/fused.ts';
import { philoxDraw, PHILOX_WGSL } from './random.ts';
import { wrap } from '../interpret/tensor.ts';
import { accessOf, broadcastStrides, type ElementwiseOperand, operandLoads, storageType, uvec, WORKGROUP_SIZE } from './elementwise.ts';
import { ceilDiv, firstPositions, type KernelPlan, padUniforms } from './kernel.ts';

/** The u32 word that holds a constant, and the WGSL that reads it back as a register value. */
export function constantWord(value: unknown, dtype: DType, word: string): { word: Dim; read: string } {
  const symbolic = typeof value === 'object' && value !== null && isDim(value);
  if (symbolic) {
    // a size, mod 2^32 as the full kernel passes it (a negative size reads back as an i32)
    const read = dtype === 'bool' ? `(${word} != 0u)` : dtype === 'u32' ? word : dtype === 'i32' ? `bitcast<i32>(${word})` : `f32(bitcast<i32>(${word}))`;
    return { word: mod(value, 2 ** 32), read };
  }
  const v = wrap(dtype, Number(value));
  switch (dtype) {
    case 'f32':
      return { word: new Uint32Array(Float32Array.of(v).buffer)[0], read: `bitcast<f32>(${word})` };
    case 'i32':
      return { word: v >>> 0, read: `bitcast<i32>(${word})` };
    case 'u32':
      return { word: v >>> 0, read: word };
    case 'bool':
      return { word: v, read: `(${word} != 0u)` };
    case 'f16':
      throw new Error('f16 is not lowered yet');
  }
}

/**
 * A register as operand `pos` of a sub-op, through an identity the WGSL compiler cannot see through: an
 * exclusive or with a uniform word that is 0 at run time (`header.y/z/w`, one per operand position).
 * Without it the fused kernel would let the backend apply rewrites that are not exact in IEEE
 * arithmetic across what were separate kernels (x - x to 0, 0 / x to 0, a * b + c to a fused
 * multiply-add); with it each sub-op sees opaque operands, as the unfused kernel that loaded them
 * from memory did, so fused and unfused results agree bit for bit.
 */
export function opaque(name: string, dtype: DType, pos: number, zeros = 'p.header'): string {
  const w = `${zeros}.${'yzw'[pos]}`;
  if (pos > 2) throw new Error(`${FUSED_OP}: a sub-op with more than 3 operands`);
  switch (dtype) {
    case 'f32':
      return `bitcast<f32>(bitcast<u32>(${name}) ^ ${w})`;
    case 'i32':
      return `(${name} ^ bitcast<i32>(${w}))`;
    case 'u32':
      return `(${name} ^ ${w})`;
    case 'bool':
      return `(${name} != (${w} != 0u))`;
    case 'f16':
      throw new Error('f16 is not lowered yet');
  }
}

/**
 * Registers a fused kernel computes in front of its body instead of loading them (fused_matmul_columns's
 * column blocks of a matmul product, codegen/fused-columns.ts): the node's first `operands` inputs are
 * bound first (bindings 1.., declared by `declarations`) and read by the prologue alone; the body's
 * loaded inputs are the node's inputs after them, registers from `names.length` on. An invocation (index
 * `inv`, `invocations` of them) runs `stmts` once, which may return, then the body for each of its
 * `elements.count` elements (a loop over `me`, not unrolled: one copy of the body keeps the shader small):
 * at flat index `elements.index` (the body's `idx`, skipped past the element count), after
 * `elements.stmts` define the registers 0.. (named `names`, of `dtypes`). `fields` and `words` follow the
 * header in the uniform.
 */
export interface FusedPrologue {
  readonly op: string;
  readonly operands: number;
  readonly declarations: readonly string[];
  readonly names: readonly string[];
  readonly dtypes: readonly DType[];
  readonly fields: readonly string[];
  readonly words: readonly Dim[];
  readonly stmts: readonly string[];
  readonly elements: { readonly count: number; readonly index: string; readonly stmts: readonly string[] };
  readonly invocations: Dim;
  readonly comment: string;
}

/**
 * The one dispatch of a fused_elementwise node. `aliases` maps an input to the output written over it
 * (fused_foreach's in-place updates): the input has no binding of its own and is read, at the same
 * element, from the output's (WebGPU forbids a writable binding that overlaps another). `prologue`: the
 * registers computed before the body (above).
 */
export function fusedPlans(node: Node, options: { readonly aliases?: ReadonlyMap<number, number>; readonly prologue?: FusedPrologue } = {}): KernelPlan[] {
  const aliases = options.aliases ?? new Map<number, number>();
  const prologue = options.prologue;
  const op = prologue?.op ?? FUSED_OP;
  // the node's inputs before the body's own (a prologue's operands), and the registers computed from them
  const lead = prologue?.operands ?? 0;
  const body = decodeFusedBody(node.attrs);
  if (typeof body === 'string') throw new Error(body);
  const allViews = decodeInputViews(node.attrs, node.inputs.length, op);
  if (typeof allViews === 'string') throw new Error(allViews);
  if (allViews.some((v) => v.input < lead)) throw new Error(`${op}: a view of a prologue operand`);
  // positions from here on count the body's loaded inputs (node input lead + i is input i)
  const views = allViews.map((v) => ({ ...v, input: v.input - lead }));
  const loaded = node.inputs.slice(lead);
  const viewOf = new Map(views.map((v) => [v.input, v]));
  const wg = WORKGROUP_SIZE;
  const outShape = node.outputs[0].type.shape;
  const rank = outShape.length;
  const inputs: ElementwiseOperand[] = loaded.map((v, i) => {
    const view = viewOf.get(i);
    return view ? { dtype: v.type.dtype, shape: view.shape, access: 'strided' } : { dtype: v.type.dtype, shape: v.type.shape, access: accessOf(v.type.shape, outShape) };
  });
  const strided = inputs.flatMap((x, i) => (x.access === 'strided' ? [i] : []));
  const k = Math.max(1, Math.ceil(rank / 4));
  for (const [i, o] of aliases) {
    if (inputs[i]?.access !== 'same' || viewOf.has(i) || node.outputs[o]?.type.dtype !== inputs[i].dtype) throw new Error(`${FUSED_OP}: input ${i} cannot be read from output ${o}`);
  }
  // an input that appears more than once (views of one buffer) is bound once, at its first position
  const first = firstPositions(loaded);
  const bound = inputs.flatMap((_, i) => (aliases.has(i) || first[i] !== i ? [] : [i]));
  const n = lead + bound.length;

  // registers: the prologue's, then v{i} for inputs, s{j} for sub-results
  const inputNames = [...(prologue?.names ?? []), ...inputs.map((_, i) => `v${i}`)];
  const { names, dtypes, stmts, constWords, helpers } = fusedBodyCode(body, [...(prologue?.dtypes ?? []), ...inputs.map((x) => x.dtype)], 'p.header', { elementIndex: 'idx', inputNames });

  // outputs stored into an in-place concat's slab (ops/fused.ts's out_views) walk the output's axes too
  const outViews = decodeOutputViews(node.attrs, node.outputs.map((v) => v.type));
  if (typeof outViews === 'string') throw new Error(outViews);
  const outViewOf = new Map(outViews.map((v, j) => [v.output, j]));
  const indexed = strided.length > 0 || outViews.length > 0;

  const fields = ['  header: vec4<u32>, // x: element count', ...(prologue?.fields ?? [])];
  if (indexed) fields.push(`  shape: array<vec4<u32>, ${k}>,`);
  for (const i of strided) fields.push(`  stride${i}: array<vec4<u32>, ${k}>,`);
  if (views.length > 0) fields.push(`  voff: array<vec4<u32>, ${Math.ceil(views.length / 4)}>, // viewed inputs' offsets`);
  for (const v of outViews) fields.push(`  ostride${v.output}: array<vec4<u32>, ${k}>, // output ${v.output}: strides in its slab`);
  if (outViews.length > 0) fields.push(`  ooff: array<vec4<u32>, ${Math.ceil(outViews.length / 4)}>, // viewed outputs' offsets`);
  if (constWords.length > 0) fields.push(`  c: array<vec4<u32>, ${Math.ceil(constWords.length / 4)}>, // constants`);

  const outs = body.outputs.map((r, o) => ({ r, o, dtype: dtypes[r] }));
  // outputs stored into slabs of one buffer are bound once, at the first of them
  const sharing = outs.map((x) => {
    const buffer = outViews.find((v) => v.output === x.o)?.buffer;
    return buffer === undefined ? x.o : outViews.filter((v) => v.buffer === buffer).reduce((m, v) => Math.min(m, v.output), x.o);
  });
  const boundOuts = outs.flatMap((x) => (sharing[x.o] === x.o ? [x.o] : []));
  const lines: string[] = [];
  const opsText = body.ops.map((s) => s.op).join(', ');
  lines.push(`// ${op}(${inputs.map((x) => x.dtype).join(', ')}) -> (${outs.map((x) => x.dtype).join(', ')}), rank ${rank}: ${opsText}; ${prologue ? `${prologue.elements.count} output elements per invocation` : 'one invocation per output element'}.`);
  if (prologue) lines.push(prologue.comment);
  lines.push('struct Params {', ...fields, '}');
  lines.push('@group(0) @binding(0) var<uniform> p: Params;');
  lines.push(...(prologue?.declarations ?? []));
  bound.forEach((i, b) => lines.push(`@group(0) @binding(${lead + b + 1}) var<storage, read> in${i}: array<${storageType(inputs[i].dtype)}>;`));
  boundOuts.forEach((o, b) => lines.push(`@group(0) @binding(${n + 1 + b}) var<storage, read_write> out${o}: array<${storageType(outs[o].dtype)}>;`));
  lines.push('', ...[...helpers.values()].flatMap((h) => [h, '']));
  lines.push(`@compute @workgroup_size(${wg})`);
  lines.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  lines.push('        @builtin(local_invocation_index) lid: u32) {');
  const offsets = new Map(views.map((v, j) => [v.input, uvec('voff', j)]));
  // the body at element `idx`: its inputs' loads, its sub-ops, its stores
  const element: string[] = [...operandLoads(inputs, strided, rank, (i) => (aliases.has(i) ? `out${aliases.get(i)}` : `in${first[i]}`), offsets, indexed), ...stmts];
  for (const x of outs) {
    const j = outViewOf.get(x.o);
    const at = j === undefined ? 'idx' : [uvec('ooff', j), ...Array.from({ length: rank }, (_, a) => `i${a} * ${uvec(`ostride${x.o}`, a)}`)].join(' + ');
    element.push(`  out${sharing[x.o]}[${at}] = ${x.dtype === 'bool' ? `select(0u, 1u, ${names[x.r]})` : names[x.r]};`);
  }
  if (!prologue) {
    lines.push(`  let idx = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`);
    lines.push('  if (idx >= p.header.x) { return; }');
    lines.push(...element);
  } else {
    lines.push(`  let inv = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`, ...prologue.stmts);
    const e = prologue.elements;
    lines.push(`  for (var me = 0u; me < ${e.count}u; me++) {`, `  let idx = ${e.index};`, '  if (idx < p.header.x) {', ...e.stmts, ...element, '  }', '  }');
  }
  lines.push('}', '');

  // the uniform words, in the order of the fields
  const axes = (dims: readonly Dim[]) => [...dims, ...new Array<Dim>(4 * k - dims.length).fill(0)];
  const words: Dim[] = [outShape.reduce<Dim>((a, d) => mul(a, d), 1), 0, 0, 0, ...(prologue?.words ?? [])];
  if (indexed) words.push(...axes(outShape));
  for (const i of strided) {
    const view = viewOf.get(i);
    words.push(...axes(broadcastStrides(inputs[i].shape, outShape, `${FUSED_OP}: input ${i}`, view?.strides)));
  }
  if (views.length > 0) words.push(...padUniforms(views.map((v) => v.offset)));
  for (const v of outViews) words.push(...axes(v.strides));
  if (outViews.length > 0) words.push(...padUniforms(outViews.map((v) => v.offset)));
  words.push(...constWords);
  const shared = lead > 0 || first.some((f, i) => f !== i);
  const boundInputs = [...Array.from({ length: lead }, (_, i) => i), ...bound.map((i) => lead + i)];
  return [{ op, wgsl: lines.join('\n'), uniforms: padUniforms(words), workgroups: ceilDiv(prologue?.invocations ?? words[0], wg), ...(shared ? { inputs: boundInputs } : {}), ...(boundOuts.length < outs.length ? { outputs: boundOuts } : {}) }];
}

/** The WGSL of a fused body: one `let` per sub-op over the registers (`v{i}` the inputs, `s{j}` the sub-results). */
export interface FusedBodyCode {
  /** Each register's WGSL name (inputs, then sub-results). */
  readonly names: string[];
  readonly dtypes: DType[];
  /** One `let s{j} = ...;` statement per sub-op, indented by two spaces. */
  readonly stmts: string[];
  /** The constants' uniform words, read as `c` (an array of vec4<u32>). */
  readonly constWords: Dim[];
  /** Helper functions the expressions call, by name. */
  readonly helpers: Map<string, string>;
}

/**
 * The statements of a fused body (shared by fused_elementwise, fused_matmul's epilogue and fused_reduce's
 * units). `zeros` is the uniform vec4 whose y, z and w words are 0 at run time (see `opaque`); constants
 * are read from `p.c`, from word `constBase` on. The inputs are named `inputNames` (default `v{i}`), the
 * sub-results `{prefix}s{j}`. A random draw's element is `elementIndex`, the flat index of the element in
 * the kernel's iteration shape.
 */
export function fusedBodyCode(
  body: FusedBody,
  inputDtypes: readonly DType[],
  zeros: string,
  options: { readonly inputNames?: readonly string[]; readonly prefix?: string; readonly constBase?: number; /** The element's flat index in the iteration shape, for random draws (a kernel without one cannot compute them). */ readonly elementIndex?: string } = {},
): FusedBodyCode {
  const names: string[] = inputDtypes.map((_, i) => options.inputNames?.[i] ?? `v${i}`);
  const constBase = options.constBase ?? 0;
  const dtypes: DType[] = [...inputDtypes];
  const stmts: string[] = [];
  const constWords: Dim[] = [];
  const helpers = new Map<string, string>();
  for (const [j, s] of body.ops.entries()) {
    const name = `${options.prefix ?? ''}s${j}`;
    let dtype: DType;
    let expr: string;
    if (s.op === 'full') {
      dtype = (s.attrs.dtype ?? 'f32') as DType;
      const c = constantWord(s.attrs.value, dtype, uvec('c', constBase + constWords.length));
      constWords.push(c.word);
      expr = c.read;
    } else if (isRandomSubOp(s.op)) {
      // drawn at the element's flat index, as the standalone kernel draws it (the key is a u32: no rewrite to hide)
      if (options.elementIndex === undefined) throw new Error(`${FUSED_OP}: ${s.op} needs the element index, which this kernel does not give its body`);
      dtype = 'f32';
      const draw = philoxDraw(s.op, s.attrs, names[s.args[0]], options.elementIndex, `${name}_`);
      stmts.push(...draw.stmts);
      expr = draw.result;
      helpers.set('dlc_philox', PHILOX_WGSL);
    } else {
      const def = getOp(s.op);
      const spec = def?.lower;
      if (!spec || spec.kind !== 'elementwise' || !spec.expr) throw new Error(`${FUSED_OP}: ${s.op} has no elementwise lowering`);
      const argDtypes = s.args.map((r) => dtypes[r]);
      dtype = resultDtype(s.op, argDtypes, s.attrs);
      expr = spec.expr(s.args.map((r, pos) => opaque(names[r], dtypes[r], pos, zeros)), s.attrs, dtype, argDtypes);
      for (const [h, code] of Object.entries(spec.helpers ?? {})) if (new RegExp(`\\b${h}\\(`).test(expr)) helpers.set(h, code);
    }
    names.push(name);
    dtypes.push(dtype);
    stmts.push(`  let ${name} = ${expr};`);
  }
  return { names, dtypes, stmts, constWords, helpers };
}

/** A sub-op's result dtype from its operand dtypes (the registry's rule; shapes do not matter here). */
function resultDtype(op: string, argDtypes: readonly DType[], attrs: Node['attrs']): DType {
  const def = getOp(op)!;
  const r = def.infer(argDtypes.map((d) => ({ dtype: d, shape: [] })), attrs);
  if (!Array.isArray(r)) throw new Error(`${FUSED_OP}: ${op}: ${r.message}`);
  return r[0].dtype;
}
