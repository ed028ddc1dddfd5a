// fused_foreach: one fused_elementwise body applied to several same-layout tensors at once (multi-tensor apply), one kernel.
//
// Built by compiler/optimize/fuse-updates.ts from the per-parameter optimizer updates that have the same
// body. Attributes: `ops` and `outputs`, the body in fused_elementwise's encoding (ops/fused.ts);
// `shared`, one boolean per body input: true for a scalar every member reads (the step size, a bias
// correction), false for a tensor each member has its own of; `offsets`, per member, the element where
// its tensors start in the buffers (arenas) the kernel runs over, relative to the first member's.
// Inputs: per body input, the shared value or the members' values in order. Outputs: per body output,
// the members' values in order. Member i's tensors all have one shape, which fits before member i + 1's
// offset. The kernel (codegen/fused-foreach.ts) is the body's fused_elementwise kernel over the whole
// span, from member 0's offset to the end of the last member, read and written through arenas in which
// every member's tensors sit at those offsets (the padding between members is computed and never read).
// `in_place` (optional) lists [body output, body input] pairs: the output, the new values of parameters
// or optimizer states, is written straight into their arena (compiler/optimize/fuse-updates.ts decides).
// When the input is an own body input (>= 0) it is those old values, which the kernel reads from the
// output's binding (one binding, read and write); -1 when the kernel does not read them.
import type { Attrs, Node, TensorType } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { isConcrete } from '../shapes/dim.ts';
import { foreachPlans } from '../codegen/fused-foreach.ts';
import { decodeFusedBody, type FusedBody, FUSED_OP } from './fused.ts';
import { getOp, inferOp, isShapeError, registerOp, type ShapeError } from './registry.ts';
import { err, sameShape, typeStr } from './util.ts';

export const FUSED_FOREACH_OP = 'fused_foreach';

export interface ForeachLayout {
  readonly body: FusedBody;
  readonly shared: readonly boolean[];
  readonly offsets: readonly number[];
  /** [body output, own body input or -1] pairs written in place. */
  readonly inPlace: readonly (readonly [number, number])[];
}

/** The body, the shared flags and the offsets from the attributes, or what is malformed. */
export function decodeForeach(attrs: Attrs): ForeachLayout | string {
  const body = decodeFusedBody(attrs);
  if (typeof body === 'string') return body.replace(FUSED_OP, FUSED_FOREACH_OP);
  const { shared, offsets } = attrs;
  if (!Array.isArray(shared) || !shared.every((x) => typeof x === 'boolean')) return `${FUSED_FOREACH_OP} needs a shared list of booleans`;
  if (!Array.isArray(offsets) || offsets.length < 1 || !offsets.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) return `${FUSED_FOREACH_OP} needs an offsets list of element offsets`;
  const pairs = attrs.in_place ?? [];
  const nIn = (shared as boolean[]).length;
  const valid = (x: unknown): x is [number, number] =>
    Array.isArray(x) && x.length === 2 && Number.isInteger(x[0]) && Number.isInteger(x[1]) && x[0] >= 0 && x[0] < body.outputs.length && x[1] >= -1 && x[1] < nIn && !(shared as boolean[])[x[1]];
  if (!Array.isArray(pairs) || !pairs.every(valid)) return `${FUSED_FOREACH_OP} in_place must list [output, own input] pairs`;
  const inPlace = pairs as [number, number][];
  const read = inPlace.filter((x) => x[1] >= 0);
  if (new Set(inPlace.map((x) => x[0])).size !== inPlace.length || new Set(read.map((x) => x[1])).size !== read.length) return `${FUSED_FOREACH_OP} in_place pairs an output or an input twice`;
  return { body, shared: shared as boolean[], offsets: offsets as number[], inPlace };
}

/** Node input index of body input `j` for member `i`. */
export function foreachInput(layout: ForeachLayout, j: number, i: number): number {
  const n = layout.offsets.length;
  let at = 0;
  for (let k = 0; k < j; k++) at += layout.shared[k] ? 1 : n;
  return layout.shared[j] ? at : at + i;
}

/** The node inputs of member 0's own tensors (those bound as arena ranges), one per own body input. */
export function foreachOwnInputs(node: Node): number[] {
  const layout = decodeForeach(node.attrs);
  if (typeof layout === 'string') throw new Error(layout);
  return layout.shared.flatMap((s, j) => (s ? [] : [foreachInput(layout, j, 0)]));
}

/** The node outputs written in place (`in_place`), of every member (empty for other ops). */
export function inPlaceOutputs(node: Node): Set<number> {
  const out = new Set<number>();
  if (node.op !== FUSED_FOREACH_OP) return out;
  const layout = decodeForeach(node.attrs);
  if (typeof layout === 'string') return out;
  const n = layout.offsets.length;
  for (const [o] of layout.inPlace) for (let m = 0; m < n; m++) out.add(o * n + m);
  return out;
}

/** The elements the kernel runs over: member 0's offset (0) to the end of the last member. */
export function foreachSpan(node: Node): number {
  const layout = decodeForeach(node.attrs);
  if (typeof layout === 'string') throw new Error(layout);
  const n = layout.offsets.length;
  const last = node.outputs[node.outputs.length - 1].type.shape as number[];
  return layout.offsets[n - 1] + last.reduce((a, b) => a * b, 1);
}

const numel = (t: TensorType): number | undefined => (t.shape.every(isConcrete) ? (t.shape as number[]).reduce((a, b) => a * b, 1) : undefined);

/** Every member's output types, or why the node does not type-check. */
function foreachTypes(inputs: readonly TensorType[], layout: ForeachLayout, attrs: Attrs): TensorType[][] | ShapeError {
  const { shared, offsets } = layout;
  const n = offsets.length;
  const expected = shared.reduce((a, s) => a + (s ? 1 : n), 0);
  if (inputs.length !== expected) return err(`${FUSED_FOREACH_OP} of ${n} members over ${shared.length} body inputs takes ${expected} operands, found ${inputs.length}`);
  const perMember: TensorType[][] = [];
  for (let i = 0; i < n; i++) {
    const ins = shared.map((_, j) => inputs[foreachInput(layout, j, i)]);
    const outs = inferOp(FUSED_OP, ins, { ops: attrs.ops, outputs: attrs.outputs });
    if (isShapeError(outs)) return { message: `${FUSED_FOREACH_OP} member ${i}: ${outs.message}` };
    const size = numel(outs[0]);
    if (size === undefined) return err(`${FUSED_FOREACH_OP} member ${i} has the symbolic shape ${typeStr(outs[0])}; members need concrete sizes`);
    const same = (t: TensorType) => sameShape(t.shape, outs[0].shape);
    if (!shared.every((s, j) => s || same(ins[j])) || !outs.every(same)) return err(`${FUSED_FOREACH_OP} member ${i}: every own input and output must have one shape, ${typeStr(outs[0])}`);
    if (shared.some((s, j) => s && numel(ins[j]) !== 1)) return err(`${FUSED_FOREACH_OP}: a shared input must be a scalar`);
    const end = i + 1 < n ? offsets[i + 1] : Infinity;
    if (offsets[i] + size > end || (i === 0 && offsets[0] !== 0)) return err(`${FUSED_FOREACH_OP} member ${i} (${size} elements at ${offsets[i]}) does not fit before the next member's offset ${end}`);
    perMember.push(outs);
  }
  return perMember;
}

registerOp({
  name: FUSED_FOREACH_OP,
  family: 'fused',
  arity: 'variadic',
  // fusion runs after autodiff: no gradient flows through a fused node
  differentiable: 'none',
  attrs: { ops: 'required', outputs: 'required', shared: 'required', offsets: 'required', in_place: 'optional' },
  lower: { kind: 'kernel', kernel: foreachPlans },
  infer(inputs, attrs) {
    const layout = decodeForeach(attrs);
    if (typeof layout === 'string') return err(layout);
    const t = foreachTypes(inputs, layout, attrs);
    if (!Array.isArray(t)) return t;
    // position-major: every member's first output, then every member's second, ...
    return layout.body.outputs.flatMap((_, o) => t.map((outs) => outs[o]));
  },
  interpret(inputs, attrs, env) {
    const layout = decodeForeach(attrs);
    if (typeof layout === 'string') throw new Error(layout);
    const n = layout.offsets.length;
    // each member through fused_elementwise's interpreter: what the separate update nodes computed
    const fused = getOp(FUSED_OP)!;
    const fusedAttrs = { ops: attrs.ops, outputs: attrs.outputs };
    const perMember: Tensor[][] = [];
    for (let i = 0; i < n; i++) perMember.push(fused.interpret(layout.shared.map((_, j) => inputs[foreachInput(layout, j, i)]), fusedAttrs, env));
    return layout.body.outputs.flatMap((_, o) => perMember.map((outs) => outs[o]));
  },
});
