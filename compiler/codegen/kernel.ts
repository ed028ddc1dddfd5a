// A node's dispatches as data: WGSL text, uniform words and workgroup count as symbolic sizes, bound by the runtime.
//
// Every kernel follows one binding convention (group 0): binding 0 is a uniform buffer of u32 words,
// then the node inputs it reads (read-only storage), then the outputs it writes (read-write storage).
// Workgroups are numbered linearly in the shader (`wid.y * nwg.x + wid.x`) so the runtime can fold a
// count past 65,535 into a second grid dimension. Sizes (the uniform words, the workgroup count) are
// Dims: the runtime evaluates them once the batch is known, so one shader serves every batch size.
import type { Node, Value } from '../ir/types.ts';
import { getOp } from '../ops/index.ts';
import { add, type Dim, floorDiv } from '../shapes/dim.ts';
import { elementwiseUniformDims, lowerElementwise } from './elementwise.ts';

export interface KernelPlan {
  readonly op: string;
  readonly wgsl: string;
  /** The uniform buffer's u32 words (a multiple of 4, at least 4). */
  readonly uniforms: readonly Dim[];
  readonly workgroups: Dim;
  /** The node inputs bound after the uniform, in order (default: all of them). */
  readonly inputs?: readonly number[];
  /** The node outputs bound after the inputs, in order (default: all of them). */
  readonly outputs?: readonly number[];
  /**
   * A variant for CPU adapters (lavapipe, SwiftShader), where workgroup barriers are costly: the same
   * bindings, uniforms and workgroup count, a different shader. The runtime picks one per adapter.
   */
  readonly cpuWgsl?: string;
  /**
   * CPU variants with their own grids (the matmul's rows kernels, codegen/matmul-rows.ts; the per-thread
   * folds of the reductions and of sum_squares), in order of preference: the same bindings and uniforms;
   * on CPU adapters the runtime uses the first whose `requires` is positive at the bound sizes and whose
   * `minSubgroupSize`, if any, the device's subgroups reach, instead of `cpuWgsl`.
   */
  readonly cpuVariants?: readonly CpuVariantPlan[];
  /**
   * A variant for devices with the `subgroups` feature (reductions combining with subgroupAdd): the same
   * bindings, uniforms and workgroup count; the runtime uses it where it would use `wgsl`.
   */
  readonly subgroupWgsl?: string;
  /**
   * Variants for GPU adapters that fill the device better at some sizes (the wide matmul tiers of
   * codegen/matmul-wide.ts, largest first; conv2d's one-workgroup-per-output reduction): the same
   * bindings and uniforms, their own workgroup count. The runtime uses the first whose count at the
   * bound sizes reaches its `minWorkgroups` (and whose `maxBaseWorkgroups`, if any, the plan's own
   * count does not pass), else `wgsl`.
   */
  readonly wide?: readonly WidePlan[];
}

export interface CpuVariantPlan {
  readonly name: string;
  readonly wgsl: string;
  readonly workgroups: Dim;
  /** A size that must be positive at the bound sizes for the variant to run (else `cpuWgsl` or `wgsl` does). */
  readonly requires?: Dim;
  /** The variant uses subgroup operations and needs the `subgroups` feature with subgroups of at least this many lanes. */
  readonly minSubgroupSize?: number;
}

export interface WidePlan {
  readonly name: string;
  readonly wgsl: string;
  readonly workgroups: Dim;
  readonly minWorkgroups: number;
  /** Used only where the plan's own kernel has at most this many workgroups (a variant for under-filled grids). */
  readonly maxBaseWorkgroups?: number;
}

/** Ceiling division of a size by a constant. */
export function ceilDiv(n: Dim, d: number): Dim {
  return floorDiv(add(n, d - 1), d);
}

/** Each value's first position among `values`: a kernel reading one buffer at several positions (views of it) binds it once, there. */
export function firstPositions(values: readonly Value[]): number[] {
  const at = new Map<number, number>();
  return values.map((v, i) => (at.has(v.id) ? at.get(v.id)! : (at.set(v.id, i), i)));
}

/** Pad a list of uniform words to a whole number of vec4s (at least one). */
export function padUniforms(words: readonly Dim[]): Dim[] {
  const out = [...words];
  while (out.length === 0 || out.length % 4 !== 0) out.push(0);
  return out;
}

/**
 * The dispatches that compute one node, from its registry entry: elementwise ops through the shared
 * elementwise generator, the others through their `lower.kernel`. Throws (an internal error) when the
 * op has no lowering; movement ops that only reinterpret a buffer never reach here (see program.ts).
 */
export function lowerNode(node: Node): readonly KernelPlan[] {
  const def = getOp(node.op);
  if (!def) throw new Error(`unknown op ${node.op}`);
  const spec = def.lower;
  if (spec?.kind === 'elementwise') {
    const k = lowerElementwise(node);
    const words = elementwiseUniformDims(k);
    return [{ op: node.op, wgsl: k.wgsl, uniforms: words, workgroups: ceilDiv(words[0], k.workgroupSize) }];
  }
  if (spec?.kind === 'kernel' && spec.kernel) return spec.kernel(node);
  throw new Error(`${node.op} has no WGSL lowering`);
}

/**
 * `lowerNode` with the plans of alike nodes made once: a node's plans depend only on its op, attributes,
 * value types and which of its inputs are one value, so an unrolled recurrence's steps share them.
 */
export function memoLowerNode(): (node: Node) => readonly KernelPlan[] {
  const plans = new Map<string, readonly KernelPlan[]>();
  return (node) => {
    const key = JSON.stringify([node.op, node.attrs, node.inputs.map((v) => v.type), node.outputs.map((v) => v.type), firstPositions(node.inputs)]);
    let made = plans.get(key);
    if (made === undefined) plans.set(key, (made = lowerNode(node)));
    return made;
  };
}
