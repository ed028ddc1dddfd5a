// Code generation for sum_squares: one workgroup folds the squares of every operand's elements, then a tree.
//
// Each of the 256 invocations folds x² over elements lid, lid + 256, ... of each operand in turn, then the workgroup combines its 256
// partial sums by a tree in workgroup memory, and invocation 0 stores the scalar. The operands' element
// counts come from the uniform (`p.n`, one u32 each), so symbolic sizes bind at run time. One workgroup
// is what the per-tensor reductions it replaces used for a whole-tensor sum (a row per workgroup).
//
// Bindings (group 0): 0 the uniform, 1..k the operands, k + 1 the result.
import type { Node } from '../ir/types.ts';
import { mul, type Dim } from '../shapes/dim.ts';
import { padUniforms, type KernelPlan } from './kernel.ts';
import { uvec } from './matmul.ts';
import { REDUCE_WORKGROUP_SIZE, workgroupCombine } from './reduce.ts';

/** Operands one sum_squares kernel takes: 8 storage buffers less the result. */
export const SUM_SQUARES_MAX_OPERANDS = 7;

export function sumSquaresPlans(node: Node): KernelPlan[] {
  const k = node.inputs.length;
  if (k > SUM_SQUARES_MAX_OPERANDS) throw new Error(`sum_squares over ${k} operands: at most ${SUM_SQUARES_MAX_OPERANDS}`);
  const wg = REDUCE_WORKGROUP_SIZE;
  const words = padUniforms(node.inputs.map((v) => v.type.shape.reduce<Dim>((n, d) => mul(n, d), 1)));
  const wgsl = [
    `// sum_squares of ${k} f32 tensor${k === 1 ? '' : 's'}: one workgroup of ${wg}, strided partial sums, then a tree.`,
    `struct Params { n: array<vec4<u32>, ${words.length / 4}> }`,
    '@group(0) @binding(0) var<uniform> p: Params;',
    ...node.inputs.map((_, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<f32>;`),
    `@group(0) @binding(${k + 1}) var<storage, read_write> out0: array<f32>;`,
    `var<workgroup> sv: array<f32, ${wg}>;`,
    '',
    `@compute @workgroup_size(${wg})`,
    'fn main(@builtin(local_invocation_index) lid: u32) {',
    '  var acc = 0.0;',
    ...node.inputs.flatMap((_, i) => [`  for (var j = lid; j < ${uvec('n', i)}; j += ${wg}u) {`, `    let v = in${i}[j];`, '    acc = acc + v * v;', '  }']),
    ...workgroupCombine('acc', (a, b) => `${a} + ${b}`, wg, false),
    '  if (lid == 0u) { out0[0] = acc; }',
    '}',
    '',
  ].join('\n');
  return [{ op: node.op, wgsl, uniforms: words, workgroups: 1 }];
}
