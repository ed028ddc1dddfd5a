// Code generation for sum_squares: 64 workgroups fold the squares of every operand's elements, a partial sum each.
//
// Workgroup w takes the 256-element blocks w, w + 64, w + 128, ... of each operand in turn (invocation
// lid the block's element lid), folds x² over them, combines its 256 sums by a tree in workgroup memory
// and stores partial w; the graph sums the 64 partials (ops/sum-squares.ts). So the work spreads over
// 64 workgroups whatever the model's size. The operands' element counts come from the uniform (`p.n`,
// one u32 each), so symbolic sizes bind at run time.
//
// On CPU adapters (`cpuVariants`) the 64 partial sums are 64 invocations (8 workgroups of 8), partial p
// folding the same blocks p, p + 64, ... of each operand, element by element in order: no tree, no
// barriers (a CPU runs a tree's levels by switching between the invocations' contexts). On lavapipe the
// Transformer step's four sum_squares (global-norm clipping) went from 6.1 to 0.2 ms.
//
// Bindings (group 0): 0 the uniform, 1..k the operands, k + 1 the 64 partial sums.
import type { Node } from '../ir/types.ts';
import { padUniforms, type KernelPlan } from './kernel.ts';
import { uvec } from './matmul.ts';
import { numelOf } from './per-element.ts';
import { workgroupCombine } from './reduce.ts';

/** Operands one sum_squares kernel takes: 8 storage buffers less the result. */
export const SUM_SQUARES_MAX_OPERANDS = 7;
/** Partial sums (and workgroups) of one sum_squares. */
export const SUM_SQUARES_PARTS = 64;
/** Elements a workgroup takes from an operand at a time. */
export const SUM_SQUARES_BLOCK = 256;

export function sumSquaresPlans(node: Node): KernelPlan[] {
  const k = node.inputs.length;
  if (k > SUM_SQUARES_MAX_OPERANDS) throw new Error(`sum_squares over ${k} operands: at most ${SUM_SQUARES_MAX_OPERANDS}`);
  const wg = SUM_SQUARES_BLOCK;
  const words = padUniforms(node.inputs.map((v) => numelOf(v.type.shape)));
  // both variants' bindings: the uniform (each operand's element count), the operands, the 64 partial sums
  const declarations = [
    `struct Params { n: array<vec4<u32>, ${words.length / 4}> }`,
    '@group(0) @binding(0) var<uniform> p: Params;',
    ...node.inputs.map((_, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<f32>;`),
    `@group(0) @binding(${k + 1}) var<storage, read_write> out0: array<f32>;`,
  ];
  const wgsl = [
    `// sum_squares of ${k} f32 tensor${k === 1 ? '' : 's'}: ${SUM_SQUARES_PARTS} workgroups of ${wg}, a partial sum each (blocks of ${SUM_SQUARES_BLOCK} round robin), then a tree.`,
    ...declarations,
    `var<workgroup> sv: array<f32, ${wg}>;`,
    '',
    `@compute @workgroup_size(${wg})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  var acc = 0.0;',
    ...node.inputs.flatMap((_, i) => [
      `  for (var j = wid.x * ${SUM_SQUARES_BLOCK}u + lid; j < ${uvec('n', i)}; j += ${SUM_SQUARES_PARTS * SUM_SQUARES_BLOCK}u) {`,
      `    let v = in${i}[j];`,
      '    acc = acc + v * v;',
      '  }',
    ]),
    ...workgroupCombine('acc', (a, b) => `${a} + ${b}`, wg, false),
    '  if (lid == 0u) { out0[wid.x] = acc; }',
    '}',
    '',
  ].join('\n');
  const lanes = 8;
  const cpuWgsl = [
    `// sum_squares of ${k} f32 tensor${k === 1 ? '' : 's'}, for CPU adapters: ${SUM_SQUARES_PARTS} invocations (${SUM_SQUARES_PARTS / lanes} workgroups of ${lanes}), partial p folding blocks p, p + ${SUM_SQUARES_PARTS}, ... of ${SUM_SQUARES_BLOCK} elements in order.`,
    ...declarations,
    '',
    `@compute @workgroup_size(${lanes})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    `  let part = wid.x * ${lanes}u + lid;`,
    '  var acc = 0.0;',
    ...node.inputs.flatMap((_, i) => [
      `  for (var b = part * ${SUM_SQUARES_BLOCK}u; b < ${uvec('n', i)}; b += ${SUM_SQUARES_PARTS * SUM_SQUARES_BLOCK}u) {`,
      `    let e = min(b + ${SUM_SQUARES_BLOCK}u, ${uvec('n', i)});`,
      '    for (var j = b; j < e; j++) {',
      `      let v = in${i}[j];`,
      '      acc = acc + v * v;',
      '    }',
      '  }',
    ]),
    '  out0[part] = acc;',
    '}',
    '',
  ].join('\n');
  return [{ op: node.op, wgsl, uniforms: words, workgroups: SUM_SQUARES_PARTS, cpuVariants: [{ name: 'per-thread', wgsl: cpuWgsl, workgroups: SUM_SQUARES_PARTS / lanes }] }];
}
