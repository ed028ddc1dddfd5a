// Code generation for fused_matmul: the matmul kernel (tiled or blocked, codegen/matmul.ts) whose store applies an epilogue.
//
// Both variants keep their grid, workgroup size and inner loop: only the store of each output element
// changes, to a call `epilogue(index, row, column, value)` that computes the body (codegen/fused.ts's
// statements, with the same exclusive-or-with-zero operands, so every sub-op sees an opaque value as the
// unfused kernel did after loading it from memory, and the backend cannot contract across kernels) and
// stores every output at the element's index.
//
// Epilogue inputs are addressed like fused_elementwise's: at the output index ('same'), element 0
// ('scalar'), or through broadcast strides aligned to the output's axes ('strided', a bias [n] or a
// residual with broadcast batch axes). A strided input's offset is split: its batch part is computed once
// per invocation from the matmul's batch indices, then row * stride[rank - 2] + column * stride[rank - 1].
//
// An epilogue input read through a view (ops/fused.ts's `views`: an LSTM's saved gate, a column block of
// its pre-activation) is strided with its view's strides, and its view's offset joins the batch part.
//
// Uniform layout: the matmul's words (codegen/matmul.ts), then `ez` (a vec4 of zeros for the opaque
// operands), one `es{i}` per strided epilogue input (its strides over the output's axes), then `eo` (the
// viewed inputs' offsets) when there are views, then per output stored into an in-place concat's slab
// its `os{o}` and then `oo` (their offsets), then `c` (the constants). Bindings (group 0): 0 the
// uniform, 1 a, 2 b, then the epilogue inputs (read-only; one viewed more than once is bound once), then
// the outputs (read-write). The workgroup count is the matmul's.
import type { DType, Node, Value } from '../ir/types.ts';
import { decodeFusedBody, decodeInputViews, decodeOutputViews } from '../ops/fused.ts';
import { accessOf, broadcastStrides, storageType, uvec } from './elementwise.ts';
import { fusedBodyCode } from './fused.ts';
import { firstPositions, type KernelPlan, padUniforms } from './kernel.ts';
import { lowerMatmul, type MatmulEpilogue, matmulTransposes, matmulUniformDims, widePlans } from './matmul.ts';
import { lowerRowsMatmuls } from './matmul-rows.ts';

const OP = 'fused_matmul';

/** The one dispatch of a fused_matmul node, with the blocked CPU variant as `cpuWgsl` and the rows kernels as `cpuVariants` where they apply. */
export function fusedMatmulPlans(node: Node): KernelPlan[] {
  const body = decodeFusedBody(node.attrs);
  if (typeof body === 'string') throw new Error(body);
  const [a, b] = node.inputs;
  const outShape = node.outputs[0].type.shape;
  const rank = outShape.length;
  const batchRank = rank - 2;
  const kr = Math.max(1, Math.ceil(rank / 4));
  // the matmul alone (with its transposed operands), as codegen/matmul.ts lowers it
  const mmValue: Value = { id: -1, type: { dtype: 'f32', shape: outShape } };
  const t = matmulTransposes(node.attrs);
  const mmAttrs = { ...(t.a ? { transpose_a: true } : {}), ...(t.b ? { transpose_b: true } : {}) };
  const mmNode: Node = { op: 'matmul', inputs: [a, b], attrs: mmAttrs, outputs: [mmValue], span: node.span };
  const views = decodeInputViews(node.attrs, node.inputs.length, OP);
  if (typeof views === 'string') throw new Error(views);
  // per epilogue input: its view, if it is read through one (ops/fused.ts)
  const viewOf = new Map(views.map((v) => [v.input - 2, v]));
  const extras = node.inputs.slice(2).map((v, i) => {
    const view = viewOf.get(i);
    return { dtype: v.type.dtype, shape: view?.shape ?? v.type.shape, access: view ? ('strided' as const) : accessOf(v.type.shape, outShape) };
  });
  const strided = extras.flatMap((x, i) => (x.access === 'strided' ? [i] : []));
  // an epilogue input that appears more than once (views of one buffer) is bound once, at its first position
  const first = firstPositions(node.inputs.slice(2));
  const boundExtras = extras.flatMap((_, i) => (first[i] === i ? [i] : []));
  const code = fusedBodyCode(body, ['f32', ...extras.map((x) => x.dtype)], 'p.ez', { elementIndex: 'idx' });

  const fields = ['  ez: vec4<u32>, // zeros: the opaque operands of the epilogue'];
  for (const i of strided) fields.push(`  es${i}: array<vec4<u32>, ${kr}>, // epilogue input ${i}: strides over the output's axes`);
  if (views.length > 0) fields.push(`  eo: array<vec4<u32>, ${Math.ceil(views.length / 4)}>, // viewed epilogue inputs' offsets`);
  // outputs stored into an in-place concat's slab (ops/fused.ts's out_views)
  const outViews = decodeOutputViews(node.attrs, node.outputs.map((v) => v.type), OP);
  if (typeof outViews === 'string') throw new Error(outViews);
  const outViewOf = new Map(outViews.map((v, j) => [v.output, j]));
  for (const v of outViews) fields.push(`  os${v.output}: array<vec4<u32>, ${kr}>, // output ${v.output}: strides in its slab`);
  if (outViews.length > 0) fields.push(`  oo: array<vec4<u32>, ${Math.ceil(outViews.length / 4)}>, // viewed outputs' offsets`);
  if (code.constWords.length > 0) fields.push(`  c: array<vec4<u32>, ${Math.ceil(code.constWords.length / 4)}>, // constants`);
  const decls: string[] = [];
  boundExtras.forEach((i, b) => decls.push(`@group(0) @binding(${3 + b}) var<storage, read> e${i}: array<${storageType(extras[i].dtype)}>;`));
  const outs = body.outputs.map((r, o) => ({ r, o, dtype: code.dtypes[r] }));
  outs.forEach((x) => decls.push(`@group(0) @binding(${3 + boundExtras.length + x.o}) var<storage, read_write> out${x.o}: array<${storageType(x.dtype)}>;`));
  for (const i of strided) decls.push(`var<private> eb${i}: u32; // epilogue input ${i}: the offset of this invocation's batch (and its view's)`);
  for (const v of outViews) decls.push(`var<private> ob${v.output}: u32; // output ${v.output}: its slab's offset for this invocation's batch`);

  const prologue: string[] = [];
  const viewed = [...viewOf.keys()];
  for (const i of strided) {
    const terms = Array.from({ length: batchRank }, (_, d) => `i${d} * ${uvec(`es${i}`, d)}`);
    if (viewOf.has(i)) terms.unshift(uvec('eo', viewed.indexOf(i)));
    if (terms.length > 0) prologue.push(`  eb${i} = ${terms.join(' + ')};`);
  }
  outViews.forEach((v, j) => prologue.push(`  ob${v.output} = ${[uvec('oo', j), ...Array.from({ length: batchRank }, (_, d) => `i${d} * ${uvec(`os${v.output}`, d)}`)].join(' + ')};`));
  const fn: string[] = [...[...code.helpers.values()].flatMap((h) => [h, ''])];
  fn.push('fn epilogue(idx: u32, r: u32, c: u32, v0: f32) {');
  extras.forEach((x, i) => {
    let at = 'idx';
    if (x.access === 'scalar') at = '0u';
    else if (x.access === 'strided') {
      fn.push(`  let o${i} = eb${i} + r * ${uvec(`es${i}`, rank - 2)} + c * ${uvec(`es${i}`, rank - 1)};`);
      at = `o${i}`;
    }
    const load = `e${first[i]}[${at}]`;
    fn.push(`  let v${i + 1} = ${x.dtype === 'bool' ? `(${load} != 0u)` : load};`);
  });
  fn.push(...code.stmts);
  for (const x of outs) {
    const at = outViewOf.has(x.o) ? `ob${x.o} + r * ${uvec(`os${x.o}`, rank - 2)} + c * ${uvec(`os${x.o}`, rank - 1)}` : 'idx';
    fn.push(`  out${x.o}[${at}] = ${x.dtype === 'bool' ? `select(0u, 1u, ${code.names[x.r]})` : code.names[x.r]};`);
  }
  fn.push('}', '');

  const epilogue: MatmulEpilogue = {
    comment: `// ${OP}: epilogue (${['f32', ...extras.map((x) => x.dtype)].join(', ')}) -> (${outs.map((x) => x.dtype as DType).join(', ')}): ${body.ops.map((s) => s.op).join(', ') || 'the matmul result'}, applied to each element at store time.`,
    fields,
    declarations: decls,
    prologue,
    call: 'epilogue',
    functions: fn,
  };
  const tiled = lowerMatmul(mmNode, { epilogue });
  const blocked = lowerMatmul(mmNode, { variant: 'blocked', epilogue });
  const mmWords = matmulUniformDims(tiled);
  // a view's own strides, with 0 along the axes it broadcasts over (a column m[:, 1:2] added to every column)
  const stridesOf = (i: number) => broadcastStrides(extras[i].shape, outShape, `${OP}: epilogue input ${i}`, viewOf.get(i)?.strides);
  const offsetWords = views.length > 0 ? padUniforms(viewed.map((i) => viewOf.get(i)!.offset)) : [];
  const outViewWords = [...outViews.flatMap((v) => padUniforms(v.strides)), ...(outViews.length > 0 ? padUniforms(outViews.map((v) => v.offset)) : [])];
  const words = padUniforms([...mmWords, 0, 0, 0, 0, ...strided.flatMap((i) => padUniforms(stridesOf(i))), ...offsetWords, ...outViewWords, ...code.constWords]);
  const rows = lowerRowsMatmuls(mmNode, mmWords, epilogue);
  const inputs = boundExtras.length < extras.length ? { inputs: [0, 1, ...boundExtras.map((i) => i + 2)] } : {};
  return [{ op: OP, wgsl: tiled.wgsl, uniforms: words, workgroups: mmWords[6], cpuWgsl: blocked.wgsl, ...(rows.length > 0 ? { cpuVariants: rows } : {}), wide: widePlans(mmNode, mmWords, epilogue), ...inputs }];
}
