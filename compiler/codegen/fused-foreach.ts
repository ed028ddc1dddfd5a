// Code generation for fused_foreach: the body's fused_elementwise kernel run once over the members' whole span of the arenas.
//
// Every own input and output of the node is bound as one range of an arena (compiler/codegen/program.ts
// turns member 0's buffer into the range that starts there and covers the span), in which member i's
// tensor starts at `offsets[i]`, so element `idx` of every binding belongs to the same member and the
// kernel is exactly the 1-D fused_elementwise kernel of `span` elements: own inputs read at `idx`, shared
// scalars at 0. The padding between members is computed too and never read. An in-place pair binds once:
// the output's binding, read and written, and the input is read from it.
import type { Node, Value } from '../ir/types.ts';
import { decodeForeach, foreachInput, foreachSpan } from '../ops/fused-foreach.ts';
import { FUSED_OP } from '../ops/fused.ts';
import { fusedPlans } from './fused.ts';
import type { KernelPlan } from './kernel.ts';

/**
 * The one dispatch of a fused_foreach node. Its bindings are the node inputs and outputs of member 0
 * (and each shared scalar); the caller binds a member-0 buffer as the span-long arena range it starts.
 */
export function foreachPlans(node: Node): KernelPlan[] {
  const layout = decodeForeach(node.attrs);
  if (typeof layout === 'string') throw new Error(layout);
  const span = foreachSpan(node);
  const n = layout.offsets.length;
  const inputIdx = layout.shared.map((_, j) => foreachInput(layout, j, 0));
  const outputIdx = layout.body.outputs.map((_, o) => o * n);
  const flat = (v: Value, k: number): Value => ({ id: -1 - k, type: { dtype: v.type.dtype, shape: [span] } });
  const synthetic: Node = {
    op: FUSED_OP,
    inputs: inputIdx.map((at, j) => (layout.shared[j] ? node.inputs[at] : flat(node.inputs[at], j))),
    attrs: { ops: node.attrs.ops, outputs: node.attrs.outputs },
    outputs: outputIdx.map((at, o) => flat(node.outputs[at], layout.shared.length + o)),
    span: node.span,
  };
  const aliases = new Map(layout.inPlace.filter(([, j]) => j >= 0).map(([o, j]) => [j, o]));
  return fusedPlans(synthetic, { aliases }).map((plan) => ({ ...plan, op: node.op, inputs: inputIdx.filter((_, j) => !aliases.has(j)), outputs: outputIdx }));
}
