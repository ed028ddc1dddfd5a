// Matmuls that share a right operand and wait for none of one another as one matmul over their left operands stacked by rows: A_t W = rows t of [A_1; …; A_n] W.
//
// An unrolled recurrence multiplies every step's input by the same weight: x_t W_x at each step of an
// LSTM, and in the backward pass dz_t W_xᵀ for the input's gradient. Unlike h_t W_h, which needs the
// previous step's result, none of these waits for another, so they can be one matmul over every step
// at once, as cuDNN computes an RNN's input projections: a concat of the left operands along rows (the
// weight gradient's stacked sum, matmul-sums.ts, concatenates the same operands in the same order, so
// cse merges the two), one matmul of n times the rows, and a slice of rows per step, which the kernels
// that read it read in place (view-inputs.ts). One dispatch for the projections of every step instead
// of one per step, and a matmul large enough to fill a GPU.
//
// A group qualifies when it has at least MIN_MATMULS matmuls of f32 matrices A_t [N, K] (not
// transposed) by the same right operand (with the same transpose), with the same N and K, and no left
// operand (nor the right one) depends on any of their results. Each element of the result is the same
// dot product over K, so the interpreter's values are the same; on a GPU the larger matmul may run
// another kernel variant, which can round differently. Pure; the old nodes are dropped.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { graphUses } from '../ir/uses.ts';
import { dimToString, mul } from '../shapes/dim.ts';
import { dependencyOrder } from './contract.ts';

/** Fewer matmuls than this stay as they are: a concat and slices would not pay for one matmul fewer. */
export const MIN_MATMULS = 4;

const isF32Matrix = (v: Value) => v.type.dtype === 'f32' && v.type.shape.length === 2;

export function stackSharedMatmuls(g: Graph): Graph {
  const nodes = g.nodes;
  const groups = new Map<string, number[]>();
  nodes.forEach((n, k) => {
    if (n.op !== 'matmul' || n.attrs.transpose_a === true || n.outputs.length !== 1) return;
    const [a, b] = n.inputs;
    if (!isF32Matrix(a) || !isF32Matrix(b) || !isF32Matrix(n.outputs[0])) return;
    const key = `${b.id}|${n.attrs.transpose_b === true}|${dimToString(a.type.shape[0])}|${dimToString(a.type.shape[1])}`;
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(k);
  });
  const candidates = [...groups.values()].filter((members) => members.length >= MIN_MATMULS);
  if (candidates.length === 0) return g;

  const { producer, consumers } = graphUses(g);
  /**
   * Whether a node that produces one of `operands` depends on one of `members` (their results, and
   * onwards): the search stops at the first, and never goes past the last such producer (nodes are in
   * topological order, so nothing after it leads back to it), so a recurrence's chain of dependent
   * matmuls is refused without a walk through the backward pass that follows it.
   */
  const dependsOnMembers = (members: readonly number[], operands: readonly Value[]): boolean => {
    const producers = new Set(operands.flatMap((v) => (producer.has(v.id) ? [producer.get(v.id)!] : [])));
    if (members.some((m) => producers.has(m))) return true;
    const last = Math.max(-1, ...producers);
    const seen = new Set<number>();
    const stack = [...members];
    while (stack.length > 0) {
      const k = stack.pop()!;
      for (const v of nodes[k].outputs) {
        for (const c of consumers.get(v.id) ?? []) {
          if (c > last || seen.has(c)) continue;
          if (producers.has(c)) return true;
          seen.add(c);
          stack.push(c);
        }
      }
    }
    return false;
  };

  let nextId = firstFreeId(g);
  const fresh = (type: TensorType): Value => ({ id: nextId++, type });
  // the new nodes, each with the original position it is ordered by
  const added: { node: Node; key: number }[] = [];
  const removed = new Set<number>();
  for (const members of candidates) {
    const first = nodes[members[0]];
    if (dependsOnMembers(members, [...members.map((m) => nodes[m].inputs[0]), first.inputs[1]])) continue;
    const emit = (op: string, inputs: Value[], attrs: Attrs, key: number, out?: Value): Value | undefined => {
      const types = inferOp(op, inputs.map((v) => v.type), attrs);
      if (isShapeError(types)) return undefined;
      const v = out ?? fresh(types[0] as TensorType);
      added.push({ node: { op, inputs, attrs, outputs: [v], span: first.span }, key });
      return v;
    };
    const mark = added.length;
    const rows = first.inputs[0].type.shape[0];
    const stacked = emit('concat', members.map((m) => nodes[m].inputs[0]), { axis: 0 }, members[0]);
    const product = stacked && emit('matmul', [stacked, first.inputs[1]], first.attrs, members[0]);
    const ok = product && members.every((m, t) => emit('slice', [product], { starts: [mul(rows, t), 0], stops: [mul(rows, t + 1), null] }, m, nodes[m].outputs[0]));
    if (!ok) {
      added.length = mark;
      continue;
    }
    for (const m of members) removed.add(m);
  }
  if (removed.size === 0) return g;

  // every node as early as its operands allow, in the original order otherwise (the new ones at their matmuls' places)
  const all: { node: Node; key: number }[] = [...nodes.flatMap((node, k) => (removed.has(k) ? [] : [{ node, key: k }])), ...added];
  const ordered = dependencyOrder(all.map((u) => u.node), all.map((u) => u.key));
  if (!ordered) throw new Error('stacking matmuls made a cycle (a compiler bug)');
  return { ...g, nodes: ordered };
}
