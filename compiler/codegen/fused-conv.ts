// Code generation for fused_conv2d and fused_conv_transpose2d: the convolution's kernel (codegen/conv.ts) whose store applies an epilogue.
//
// fused_conv2d keeps both variants of conv2d's implicit GEMM (the tiled kernel for GPUs, the direct loop
// as `cpuWgsl`), their grid, workgroup size and inner loops: only the store of each output element
// changes, to a call `epilogue(index, n, o, oh, ow, value)` (`ConvEpilogue`), as fused_matmul does.
// Uniform layout there: conv2d's 16 words (`w`), then `ez` (zeros, the opaque operands), one `es{i}` per
// strided epilogue input, then `c` (the constants); the bindings as below.
//
// fused_conv_transpose2d: one invocation per output element, as the unfused convolution: the same uniform header, iteration
// shape and named words, the same loop text leaving the sum in `acc`. Instead of `out[idx] = acc` the
// invocation then loads each epilogue input, computes the body (codegen/fused.ts's statements, with the
// same exclusive-or-with-zero operands, the sum included: every sub-op sees an opaque value, as the unfused
// kernel did after loading it from memory, so the backend cannot contract or rewrite across what were
// separate kernels) and stores every output at the element's index.
//
// Epilogue inputs are addressed like fused_elementwise's: at the output index ('same'), element 0
// ('scalar'), or through broadcast strides over the output's axes ('strided': a bias [1, O, 1, 1] or
// [O, 1, 1], batch-norm statistics), from the output's multi-index `i0..i3` the loop already has.
//
// Uniform layout: `header` (x: element count; y, z, w: zeros, the opaque operands), `shape` (the output
// shape), `w` (the convolution's words), one `es{i}` per strided epilogue input (its strides over the
// output's axes), then `c` (the constants). Bindings (group 0): 0 the uniform, 1 x, 2 the weights, then
// the epilogue inputs (read-only), then the outputs (read-write). The workgroup count is the unfused
// convolution's: one 256-invocation workgroup per 256 output elements.
import type { DType, Node, Value } from '../ir/types.ts';
import type { FusedBody } from '../ops/fused.ts';
import type { Dim } from '../shapes/dim.ts';
import { convAnchorOf, splitFusedConvAttrs } from '../ops/fused-conv.ts';
import { type ConvEpilogue, type ConvRead, CONV2D_READ, conv2dGemm, conv2dReducePlans, conv2dSubgroupPlans, conv2dViewOf, convTranspose2dKernel } from './conv.ts';
import { accessOf, broadcastStrides, storageType, uvec } from './elementwise.ts';
import { fusedBodyCode } from './fused.ts';
import { ceilDiv, type KernelPlan, padUniforms } from './kernel.ts';
import { numelOf, PER_ELEMENT_WORKGROUP } from './per-element.ts';

/** The one dispatch of a fused convolution node. */
export function fusedConvPlans(node: Node): KernelPlan[] {
  const anchor = convAnchorOf(node.op);
  if (!anchor) throw new Error(`${node.op} is not a fused convolution`);
  const split = splitFusedConvAttrs(node.attrs);
  if (typeof split === 'string') throw new Error(split);
  const { conv: convAttrs, body } = split;
  const [x, w] = node.inputs;
  const outShape = node.outputs[0].type.shape;
  const rank = outShape.length;
  // the convolution alone, as codegen/conv.ts lowers it
  const convValue: Value = { id: -1, type: { dtype: 'f32', shape: outShape } };
  const convNode: Node = { op: anchor, inputs: [x, w], attrs: convAttrs, outputs: [convValue], span: node.span };
  const extras = node.inputs.slice(2).map((v) => ({ dtype: v.type.dtype, shape: v.type.shape, access: accessOf(v.type.shape, outShape) }));
  if (anchor === 'conv2d') return [fusedConv2dPlan(node, convNode, body, extras, CONV2D_READ)];
  // a transposed convolution runs conv2d's kernels over its flipped weights (and its input dilated by the stride)
  const v = conv2dViewOf(convNode);
  if (v) return [fusedConv2dPlan(node, v.view, body, extras, v.read)];
  const conv = convTranspose2dKernel(convNode);
  const strided = extras.flatMap((e, i) => (e.access === 'strided' ? [i] : []));
  const code = fusedBodyCode(body, ['f32', ...extras.map((e) => e.dtype)], 'p.header', { elementIndex: 'idx' });
  const outs = body.outputs.map((r, o) => ({ r, o, dtype: code.dtypes[r] }));
  const ks = Math.max(1, Math.ceil(rank / 4));
  const kw = Math.ceil(conv.words.length / 4);
  const wg = PER_ELEMENT_WORKGROUP;

  const fields = ['  header: vec4<u32>, // x: element count; y, z, w: zeros (the opaque operands of the epilogue)', `  shape: array<vec4<u32>, ${ks}>,`];
  if (kw > 0) fields.push(`  w: array<vec4<u32>, ${kw}>,`);
  for (const i of strided) fields.push(`  es${i}: array<vec4<u32>, ${ks}>, // epilogue input ${i}: strides over the output's axes`);
  if (code.constWords.length > 0) fields.push(`  c: array<vec4<u32>, ${Math.ceil(code.constWords.length / 4)}>, // constants`);

  const mentions = (name: string) => new RegExp(`\\b${name}\\b`).test(conv.body.join('\n'));
  const L: string[] = [];
  L.push(`// ${node.op}: ${conv.what}; epilogue (${['f32', ...extras.map((e) => e.dtype)].join(', ')}) -> (${outs.map((o) => o.dtype).join(', ')}): ${body.ops.map((s) => s.op).join(', ') || `the ${anchor} result`}, applied to the sum before the store; one invocation per element.`);
  L.push('struct Params {', ...fields, '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> x: array<f32>;');
  L.push('@group(0) @binding(2) var<storage, read> wt: array<f32>;');
  extras.forEach((e, i) => L.push(`@group(0) @binding(${3 + i}) var<storage, read> e${i}: array<${storageType(e.dtype)}>;`));
  outs.forEach((o) => L.push(`@group(0) @binding(${3 + extras.length + o.o}) var<storage, read_write> out${o.o}: array<${storageType(o.dtype)}>;`));
  L.push('', ...[...code.helpers.values()].flatMap((h) => [h, '']));
  L.push(`@compute @workgroup_size(${wg})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  L.push('        @builtin(local_invocation_index) lid: u32) {');
  L.push(`  let idx = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`);
  L.push('  if (idx >= p.header.x) { return; }');
  conv.words.forEach(([name], j) => {
    if (mentions(name)) L.push(`  let ${name} = ${uvec('w', j)};`);
  });
  // the output's multi-index (per-element.ts's unravelling; a convolution's output has rank 4)
  L.push('  var rem = idx;');
  for (let a = rank - 1; a >= 1; a--) {
    L.push(`  let i${a} = rem % ${uvec('shape', a)};`);
    if (a > 1) L.push(`  rem = rem / ${uvec('shape', a)};`);
    else L.push(`  let i0 = rem / ${uvec('shape', 1)};`);
  }
  for (const line of conv.body) L.push(`  ${line}`);
  L.push('  let v0 = acc;');
  extras.forEach((e, i) => {
    let at = 'idx';
    if (e.access === 'scalar') at = '0u';
    else if (e.access === 'strided') {
      L.push(`  let eo${i} = ${Array.from({ length: rank }, (_, a) => `i${a} * ${uvec(`es${i}`, a)}`).join(' + ')};`);
      at = `eo${i}`;
    }
    const load = `e${i}[${at}]`;
    L.push(`  let v${i + 1} = ${e.dtype === 'bool' ? `(${load} != 0u)` : load};`);
  });
  L.push(...code.stmts);
  for (const o of outs) L.push(`  out${o.o}[idx] = ${o.dtype === 'bool' ? `select(0u, 1u, ${code.names[o.r]})` : code.names[o.r]};`);
  L.push('}', '');

  const count = numelOf(outShape);
  const words: Dim[] = [
    count,
    0,
    0,
    0,
    ...padUniforms(outShape),
    ...(kw > 0 ? padUniforms(conv.words.map(([, d]) => d)) : []),
    ...strided.flatMap((i) => padUniforms(broadcastStrides(extras[i].shape, outShape, `${node.op}: epilogue input ${i}`))),
    ...(code.constWords.length > 0 ? padUniforms(code.constWords) : []),
  ];
  return [{ op: node.op, wgsl: L.join('\n'), uniforms: words, workgroups: ceilDiv(count, wg) }];
}

/** fused_conv2d (and a stride-1 fused_conv_transpose2d as its conv2d view): conv2d's variants (codegen/conv.ts) with the epilogue at the store. */
function fusedConv2dPlan(node: Node, convNode: Node, body: FusedBody, extras: readonly { dtype: DType; shape: readonly Dim[]; access: string }[], read: ConvRead): KernelPlan {
  const outShape = node.outputs[0].type.shape;
  const rank = outShape.length;
  const kr = Math.max(1, Math.ceil(rank / 4));
  const strided = extras.flatMap((e, i) => (e.access === 'strided' ? [i] : []));
  const code = fusedBodyCode(body, ['f32', ...extras.map((e) => e.dtype)], 'p.ez', { elementIndex: 'idx' });
  const outs = body.outputs.map((r, o) => ({ r, o, dtype: code.dtypes[r] }));

  const fields = ['  ez: vec4<u32>, // zeros: the opaque operands of the epilogue'];
  for (const i of strided) fields.push(`  es${i}: array<vec4<u32>, ${kr}>, // epilogue input ${i}: strides over the output's axes`);
  if (code.constWords.length > 0) fields.push(`  c: array<vec4<u32>, ${Math.ceil(code.constWords.length / 4)}>, // constants`);
  const decls: string[] = [];
  extras.forEach((e, i) => decls.push(`@group(0) @binding(${3 + i}) var<storage, read> e${i}: array<${storageType(e.dtype)}>;`));
  outs.forEach((o) => decls.push(`@group(0) @binding(${3 + extras.length + o.o}) var<storage, read_write> out${o.o}: array<${storageType(o.dtype)}>;`));

  const fn: string[] = [...[...code.helpers.values()].flatMap((h) => [h, ''])];
  fn.push('fn epilogue(idx: u32, i0: u32, i1: u32, i2: u32, i3: u32, v0: f32) {');
  extras.forEach((e, i) => {
    let at = 'idx';
    if (e.access === 'scalar') at = '0u';
    else if (e.access === 'strided') {
      fn.push(`  let eo${i} = ${Array.from({ length: rank }, (_, a) => `i${a} * ${uvec(`es${i}`, a)}`).join(' + ')};`);
      at = `eo${i}`;
    }
    const load = `e${i}[${at}]`;
    fn.push(`  let v${i + 1} = ${e.dtype === 'bool' ? `(${load} != 0u)` : load};`);
  });
  fn.push(...code.stmts);
  for (const o of outs) fn.push(`  out${o.o}[idx] = ${o.dtype === 'bool' ? `select(0u, 1u, ${code.names[o.r]})` : code.names[o.r]};`);
  fn.push('}', '');
  const epilogue: ConvEpilogue = {
    comment: `// ${node.op}: epilogue (${['f32', ...extras.map((e) => e.dtype)].join(', ')}) -> (${outs.map((o) => o.dtype).join(', ')}): ${body.ops.map((s) => s.op).join(', ') || 'the conv2d result'}, applied to each element at store time.`,
    fields,
    declarations: decls,
    call: 'epilogue',
    functions: fn,
  };
  const tiled = conv2dGemm(convNode, { variant: 'tiled', epilogue, read });
  const direct = conv2dGemm(convNode, { variant: 'direct', epilogue, read });
  const words = [
    ...tiled.words,
    0,
    0,
    0,
    0,
    ...strided.flatMap((i) => padUniforms(broadcastStrides(extras[i].shape, outShape, `${node.op}: epilogue input ${i}`))),
    ...(code.constWords.length > 0 ? padUniforms(code.constWords) : []),
  ];
  return { op: node.op, wgsl: tiled.wgsl, uniforms: words, workgroups: tiled.workgroups, cpuWgsl: direct.wgsl, cpuVariants: conv2dSubgroupPlans(convNode, epilogue, read), wide: conv2dReducePlans(convNode, epilogue, read) };
}
