// Kernels for the data-movement primitives: copies (reshape, stop_gradient), transpose, broadcast_to, slice, concat and pad.
//
// All are per-element gathers (see per-element.ts): each output element computes the flat offset it
// reads from input sizes and strides passed as uniform words; only perms, steps and pad amounts (plain
// numbers in the attributes) are baked. concat of up to 7 inputs is one dispatch over the output (each
// element reads the input that holds it); of more, one dispatch per run of 7 inputs, each writing its
// slab of the output, so any number of inputs stays within the storage-buffer limit.
import type { Node } from '../ir/types.ts';
import { add, type Dim, isConcrete, knownNonNegative, mod } from '../shapes/dim.ts';
import { ceilDiv, type KernelPlan, padUniforms } from './kernel.ts';
import { numelOf, PER_ELEMENT_WORKGROUP, perElementPlan, storageConst, stridesOf } from './per-element.ts';
import { kernelStorageType, uvec } from './matmul.ts';
import { stridedCopiesViews } from '../ops/strided-copy.ts';

/** `a + b + ...` of WGSL u32 terms (`0u` when there are none). */
function sum(terms: readonly string[]): string {
  return terms.length === 0 ? '0u' : terms.join(' + ');
}

/** reshape and stop_gradient: the same elements in the same order. */
export function copyPlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  return [
    perElementPlan({
      op: node.op,
      what: `copy ${x.dtype}`,
      shape: out.shape,
      index: false,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      body: [],
      result: 'x[idx]',
    }),
  ];
}

/** out[i] = x[i permuted back]: output axis a reads input axis perm[a]. */
export function transposePlans(node: Node): KernelPlan[] {
  // its operand's producer stored it transposed (optimize/concat-in-place.ts)
  if (node.attrs.in_place === true) return [];
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  const perm = node.attrs.perm as number[];
  const str = stridesOf(x.shape);
  const words = perm.map((p, a): [string, Dim] => [`xs${a}`, str[p]]);
  return [
    perElementPlan({
      op: node.op,
      what: `transpose ${x.dtype} by [${perm.join(', ')}]`,
      shape: out.shape,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      words,
      body: [`let off = ${sum(perm.map((_, a) => `i${a} * xs${a}`))};`],
      result: 'x[off]',
    }),
  ];
}

/** numpy broadcasting: an input axis that is the constant 1, or missing, reads with stride 0. */
export function broadcastPlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  const lead = out.shape.length - x.shape.length;
  const str = stridesOf(x.shape);
  const axes = x.shape.flatMap((d, a) => (isConcrete(d) && d === 1 ? [] : [a]));
  return [
    perElementPlan({
      op: node.op,
      what: `broadcast ${x.dtype} rank ${x.shape.length} to rank ${out.shape.length}`,
      shape: out.shape,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      words: axes.map((a): [string, Dim] => [`xs${a}`, str[a]]),
      body: [`let off = ${sum(axes.map((a) => `i${a + lead} * xs${a}`))};`],
      result: 'x[off]',
    }),
  ];
}

/**
 * The first element a slice takes on one axis, as the shape rule computes it (ops/movement.ts
 * sliceBounds): Python's clamping on a concrete axis with concrete bounds, a symbolic start as given,
 * a negative start counted from the end.
 */
function sliceStart(n: Dim, start: Dim, stop: Dim | null): Dim {
  if (!isConcrete(start) || (stop !== null && !isConcrete(stop))) return isConcrete(start) && start < 0 ? add(n, start) : start;
  if (isConcrete(n)) return Math.min(n, Math.max(0, start < 0 ? start + n : start));
  return start < 0 ? add(n, start) : start;
}

/** out[i] = x[start + i * step] per axis; starts are uniform words (they may be symbolic), steps baked. */
export function slicePlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  const starts = node.attrs.starts as Dim[];
  const stops = node.attrs.stops as (Dim | null)[];
  const steps = (node.attrs.steps as number[] | undefined) ?? x.shape.map(() => 1);
  const str = stridesOf(x.shape);
  const words: [string, Dim][] = [];
  x.shape.forEach((n, a) => words.push([`st${a}`, sliceStart(n, starts[a], stops[a])], [`xs${a}`, str[a]]));
  const terms = x.shape.map((_, a) => `(st${a} + i${a}${steps[a] === 1 ? '' : ` * ${steps[a]}u`}) * xs${a}`);
  return [
    perElementPlan({
      op: node.op,
      what: `slice ${x.dtype} rank ${x.shape.length}, steps [${steps.join(', ')}]`,
      shape: out.shape,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      words,
      body: [`let off = ${sum(terms)};`],
      result: 'x[off]',
    }),
  ];
}

/** Inputs one concat kernel reads: 8 storage buffers less the output. */
export const CONCAT_MAX_INPUTS = 7;

/**
 * Up to 7 inputs: one dispatch over the output, each element reading the input whose range along the
 * axis holds it. More (an unrolled scan stacks one input per step): one dispatch per run of 7 inputs,
 * each walking its slab of the output along the axis the same way and writing it at the slab's offset.
 */
export function concatPlans(node: Node): KernelPlan[] {
  // done in place: its operands' producers stored them in its buffer (optimize/concat-in-place.ts)
  if (node.attrs.in_place === true) return [];
  const out = node.outputs[0].type;
  const rank = out.shape.length;
  const raw = node.attrs.axis as number;
  const axis = raw < 0 ? raw + rank : raw;
  if (node.inputs.length <= CONCAT_MAX_INPUTS) return [concatOnePlan(node, axis)];
  const plans: KernelPlan[] = [];
  let offset: Dim = 0;
  for (let first = 0; first < node.inputs.length; first += CONCAT_MAX_INPUTS) {
    const chunk = node.inputs.slice(first, first + CONCAT_MAX_INPUTS).map((_, j) => first + j);
    const sizes = chunk.map((i) => node.inputs[i].type.shape[axis]);
    const views = chunk.map((i) => ({ offset: 0, strides: stridesOf(node.inputs[i].type.shape) }));
    plans.push(concatKernel(node, axis, sizes, views, { inputs: chunk, at: offset }));
    offset = sizes.reduce((a, d) => add(a, d), offset);
  }
  return plans;
}

/** strided_copy: out[i] = x[offset + Σ i_a * strides[a]] (offset and strides as uniform words). */
export function stridedCopyPlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  // a negative stride (a reversed scan's steps, optimize/concat-views.ts) as its residue mod 2^32: the
  // kernel's u32 arithmetic wraps, so off + i * st lands where the signed sum does
  const strides = (node.attrs.strides as Dim[]).map((st) => (knownNonNegative(st) ? st : mod(st, 2 ** 32)));
  const words: [string, Dim][] = [['off', node.attrs.offset as Dim], ...strides.map((st, a): [string, Dim] => [`st${a}`, st])];
  const terms = ['off', ...out.shape.map((_, a) => `i${a} * st${a}`)];
  return [
    perElementPlan({
      op: node.op,
      what: `strided copy ${x.dtype}, rank ${out.shape.length}`,
      shape: out.shape,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      words,
      body: [`let at = ${terms.join(' + ')};`],
      result: 'x[at]',
    }),
  ];
}

/**
 * strided_copies: one invocation per element of all results in order; result k takes the flat range
 * [end{k-1}, end{k}), unravels its element over its own shape and reads x[off{k} + Σ i_a * st{k}_{a}].
 * Known sizes a result divides by are baked (a CPU driver divides by a uniform one lane at a time).
 */
export function stridedCopiesPlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const views = stridedCopiesViews(node.attrs)!;
  const ty = kernelStorageType(x.dtype);
  const words: Dim[] = [];
  const word = (d: Dim): string => {
    words.push(d);
    return uvec('w', words.length - 1);
  };
  let end: Dim = 0;
  const branches = views.map((v, k) => {
    const start = end;
    end = add(end, numelOf(v.shape));
    const rank = v.shape.length;
    const L = [`    let j = idx - ${k === 0 ? '0u' : word(start)};`, '    var rem = j;'];
    for (let a = rank - 1; a >= 1; a--) {
      const d = v.shape[a];
      const size = isConcrete(d) && d > 0 ? `${d}u` : word(d);
      L.push(`    let i${a} = rem % ${size};`, `    rem = rem / ${size};`);
    }
    const at = [word(v.offset), ...v.strides.map((st, a) => `${a === 0 ? 'rem' : `i${a}`} * ${word(st)}`)];
    L.push(`    out${k}[j] = x[${rank === 0 ? at[0] : at.join(' + ')}];`);
    return { L, end: word(end) };
  });
  const W: string[] = [];
  W.push(`// ${node.op}: ${views.length} strided copies of one ${x.dtype} operand in one dispatch; one invocation per element of all results.`);
  W.push('struct Params {', '  header: vec4<u32>, // x: element count of all results', `  w: array<vec4<u32>, ${Math.max(1, Math.ceil(words.length / 4))}>,`, '}');
  W.push('@group(0) @binding(0) var<uniform> p: Params;');
  W.push(`@group(0) @binding(1) var<storage, read> x: array<${ty}>;`);
  views.forEach((_, k) => W.push(`@group(0) @binding(${k + 2}) var<storage, read_write> out${k}: array<${ty}>;`));
  W.push('', `@compute @workgroup_size(${PER_ELEMENT_WORKGROUP})`);
  W.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  W.push('        @builtin(local_invocation_index) lid: u32) {');
  W.push(`  let idx = (wid.y * nwg.x + wid.x) * ${PER_ELEMENT_WORKGROUP}u + lid;`);
  W.push('  if (idx >= p.header.x) { return; }');
  branches.forEach((b, k) => {
    const head = k === 0 ? `  if (idx < ${b.end}) {` : k < branches.length - 1 ? `  } else if (idx < ${b.end}) {` : '  } else {';
    W.push(head, ...b.L);
  });
  W.push('  }', '}', '');
  const uniforms: Dim[] = [end, 0, 0, 0, ...padUniforms(words)];
  return [{ op: node.op, wgsl: W.join('\n'), uniforms, workgroups: ceilDiv(end, PER_ELEMENT_WORKGROUP), inputs: [0] }];
}

/** Where one input of a one-dispatch concat is read: element offset + Σ i_a * strides[a] of its buffer, i along the axis counted from the input's start. */
export interface ConcatView {
  readonly offset: Dim;
  readonly strides: readonly Dim[];
}

/** The one-dispatch concat: `end{k}` is where input k's range along the axis ends, `s{k}_{a}` its strides. */
function concatOnePlan(node: Node, axis: number): KernelPlan {
  const axisSizes = node.inputs.map((v) => v.type.shape[axis]);
  return concatKernel(node, axis, axisSizes, node.inputs.map((v) => ({ offset: 0, strides: stridesOf(v.type.shape) })));
}

/**
 * One dispatch over the output of a concat along `axis` of inputs that each span `axisSizes[k]` of it,
 * input k read through `views[k]` (a plain concat: offset 0 and its own row-major strides; strided_concat:
 * a view a chain of movement ops made). `off{k}` is the view's offset where it is not 0. `index` is
 * the shape the kernel walks (the output's, or a finer split of its axes: the same elements in order).
 * With `inputs` and `at`, the kernel reads only those node inputs and writes their slab of the output,
 * from `at` along the axis (one run of a concat of more than 7 inputs).
 */
export function concatKernel(
  node: Node,
  axis: number,
  axisSizes: readonly Dim[],
  views: readonly ConcatView[],
  options: { readonly index?: readonly Dim[]; readonly inputs?: readonly number[]; readonly at?: Dim } = {},
): KernelPlan {
  const result = node.outputs[0].type;
  const full = options.index ?? result.shape;
  const inputs = options.inputs ?? node.inputs.map((_, i) => i);
  const slab = axisSizes.reduce<Dim>((a, d) => add(a, d), 0);
  // the shape walked: the whole output, or this run's slab of it
  const shape = options.at === undefined ? full : full.map((d, a) => (a === axis ? slab : d));
  const k = inputs.length;
  const words: [string, Dim][] = [];
  const offset = (i: number) => !(isConcrete(views[i].offset) && views[i].offset === 0);
  let end: Dim = 0;
  views.forEach((view, i) => {
    end = add(end, axisSizes[i]);
    if (i < k - 1) words.push([`end${i}`, end]);
    if (offset(i)) words.push([`off${i}`, view.offset]);
    view.strides.forEach((st, a) => words.push([`s${i}_${a}`, st]));
  });
  let store: string | undefined;
  if (options.at !== undefined) {
    const ostr = stridesOf(full);
    words.push(['at', options.at], ...ostr.map((st, a): [string, Dim] => [`os${a}`, st]));
    store = sum(shape.map((_, a) => (a === axis ? `(at + i${a}) * os${a}` : `i${a} * os${a}`)));
  }
  // input i starts where input i - 1 ends
  const read = (i: number) => {
    const terms = shape.map((_, a) => (a === axis ? `${i > 0 ? `(j - end${i - 1})` : 'j'} * s${i}_${a}` : `i${a} * s${i}_${a}`));
    if (offset(i)) terms.unshift(`off${i}`);
    return `v = x${i}[${terms.join(' + ')}];`;
  };
  const body = [`let j = i${axis};`, `var v: ${kernelStorageType(result.dtype)};`];
  inputs.forEach((_, i) => {
    if (k === 1) body.push(read(i));
    else if (i === 0) body.push(`if (j < end0) { ${read(i)} }`);
    else if (i < k - 1) body.push(`else if (j < end${i}) { ${read(i)} }`);
    else body.push(`else { ${read(i)} }`);
  });
  return perElementPlan(
    {
      op: node.op,
      what: `${node.op} ${result.dtype} rank ${shape.length} on axis ${axis}, ${k} input${k === 1 ? '' : 's'}${options.at === undefined ? '' : ' (one run of a longer concat)'}`,
      shape,
      inputs: inputs.map((n, i) => ({ name: `x${i}`, dtype: node.inputs[n].type.dtype, node: n })),
      outDtype: result.dtype,
      words,
      body,
      result: 'v',
      ...(store ? { store } : {}),
    },
    { inputs },
  );
}

/** strided_concat: a concat whose inputs are read through strided views (ops/strided-copy.ts), one dispatch. */
export function stridedConcatPlans(node: Node): KernelPlan[] {
  const index = node.attrs.shape as Dim[];
  const rank = index.length;
  const axis = node.attrs.axis as number;
  const offsets = node.attrs.offsets as Dim[];
  const strides = node.attrs.strides as Dim[];
  const sizes = node.attrs.sizes as Dim[];
  const views = node.inputs.map((_, k) => ({ offset: offsets[k], strides: strides.slice(k * rank, (k + 1) * rank) }));
  return [concatKernel(node, axis, sizes, views, { index })];
}

/** Positions inside the input read it (shifted by `before`); the rest get the pad value (baked). */
export function padPlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  const before = node.attrs.before as number[];
  const after = node.attrs.after as number[];
  const value = typeof node.attrs.value === 'number' ? node.attrs.value : 0;
  const str = stridesOf(x.shape);
  const words: [string, Dim][] = [];
  const checks: string[] = [];
  const terms: string[] = [];
  x.shape.forEach((n, a) => {
    words.push([`xs${a}`, str[a]]);
    const j = before[a] > 0 ? `(i${a} - ${before[a]}u)` : `i${a}`;
    if (before[a] > 0) checks.push(`i${a} < ${before[a]}u`);
    if (before[a] > 0 || after[a] > 0) {
      words.push([`n${a}`, n]);
      checks.push(`${j} >= n${a}`);
    }
    terms.push(`${j} * xs${a}`);
  });
  const fill = storageConst(x.dtype, value);
  const body = checks.length > 0 ? [`if (${checks.join(' || ')}) {`, `  out[idx] = ${fill};`, '  return;', '}'] : [];
  return [
    perElementPlan({
      op: node.op,
      what: `pad ${x.dtype} before [${before.join(', ')}] after [${after.join(', ')}]`,
      shape: out.shape,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: out.dtype,
      words,
      body: [...body, `let off = ${sum(terms)};`],
      result: 'x[off]',
    }),
  ];
}
