// Sums of like terms as one op over their operands stacked: the driver of batch-matmul-sums, batch-reduce-sums and join-padded-sums.
//
// A value used at every step of an unrolled recurrence (a weight, a bias) gets one gradient term per
// step, and autodiff adds them up: a chain of adds, n terms, n dispatches. Where the terms are alike
// (Σ_t A_tᵀ B_t, Σ_t sum_0(x_t)), the sum is one op over the steps' operands concatenated along the axis
// the term reduces: a few concat dispatches and one kernel, as cuDNN computes an RNN's weight gradients.
//
// A chain qualifies when it is a tree of adds of one type, each read once and by the next add only
// (not a result), with at least MIN_TERMS leaves that are terms of the rule, each read by the tree
// alone; other leaves are added to the stacked op as before. The sum is the same up to rounding (one
// reduction over all rows instead of per-step reductions added in order). Pure; the old nodes are left to dce.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { graphUses } from '../ir/uses.ts';
import { sameType, Substitution, withNodes } from './rewrite.ts';
import { dependencyOrder } from './contract.ts';

/** Fewer terms than this stay as they are: the concats and the stacked op would not be fewer dispatches. */
export const MIN_TERMS = 4;

/** Appends a node `op(inputs)` and gives its result (`out` when given), or undefined when its shape rule refuses it. */
export type Emit = (op: string, inputs: readonly Value[], attrs: Attrs, out?: Value) => Value | undefined;

/** What a term is and how a sum of them is stacked. */
export interface StackRule<T> {
  /** The fewest terms worth stacking (default MIN_TERMS). */
  readonly minTerms?: number;
  /** Whether the chain rooted at an add with this result is looked at. */
  readonly root: (v: Value) => boolean;
  /**
   * The term leaf `v` is, or undefined. `nodeOf` finds a value's producer; `readOnce` says a value has one
   * reader, once; `readersOf` gives the nodes reading a value, each once.
   */
  readonly termOf: (v: Value, nodeOf: (v: Value) => Node | undefined, readOnce: (v: Value) => boolean, readersOf: (v: Value) => readonly Node[]) => T | undefined;
  /** Whether a term stacks with the first one taken. */
  readonly fits: (first: T, t: T) => boolean;
  /** The stacked sum of the terms through `emit`, written to `out` when given; undefined when a shape rule refused a node. */
  readonly stack: (terms: readonly T[], emit: Emit, out: Value | undefined) => Value | undefined;
}

export function stackSums<T>(g: Graph, rule: StackRule<T>): Graph {
  if (!g.nodes.some((n) => n.op === 'add')) return g;
  const { producer, consumers, results } = graphUses(g);
  const nodeOf = (v: Value): Node | undefined => {
    const k = producer.get(v.id);
    return k === undefined ? undefined : g.nodes[k];
  };
  const readersOf = (v: Value): readonly Node[] => (consumers.get(v.id) ?? []).map((k) => g.nodes[k]);
  const readOnce = (v: Value) => !results.has(v.id) && (consumers.get(v.id) ?? []).length === 1 && g.nodes[consumers.get(v.id)![0]].inputs.filter((w) => w.id === v.id).length === 1;
  /** The leaves of the add chain under `v`, left to right. */
  const leavesOf = (v: Value, isRoot: boolean): Value[] => {
    const n = nodeOf(v);
    if (!n || n.op !== 'add' || !sameType(n.inputs[0].type, v.type) || !sameType(n.inputs[1].type, v.type) || (!isRoot && !readOnce(v))) return [v];
    return [...leavesOf(n.inputs[0], false), ...leavesOf(n.inputs[1], false)];
  };
  const isInner = (k: number) => {
    const v = g.nodes[k].outputs[0];
    const reader = (consumers.get(v.id) ?? [])[0];
    return readOnce(v) && reader !== undefined && g.nodes[reader].op === 'add' && sameType(g.nodes[reader].outputs[0].type, v.type);
  };

  let nextId = firstFreeId(g);
  const nodes: Node[] = [];
  let changed = false;
  g.nodes.forEach((n, k) => {
    if (n.op !== 'add' || n.outputs.length !== 1 || !rule.root(n.outputs[0]) || isInner(k)) {
      nodes.push(n);
      return;
    }
    const terms: T[] = [];
    const others: Value[] = [];
    for (const leaf of leavesOf(n.outputs[0], true)) {
      const t = rule.termOf(leaf, nodeOf, readOnce, readersOf);
      if (t !== undefined && (terms.length === 0 || rule.fits(terms[0], t))) terms.push(t);
      else others.push(leaf);
    }
    if (terms.length < (rule.minTerms ?? MIN_TERMS)) {
      nodes.push(n);
      return;
    }
    const emit: Emit = (op, inputs, attrs, out) => {
      const types = inferOp(op, inputs.map((v) => v.type), attrs);
      if (isShapeError(types)) return undefined;
      const v = out ?? { id: nextId++, type: types[0] as TensorType };
      nodes.push({ op, inputs, attrs, outputs: [v], span: n.span });
      return v;
    };
    const mark = nodes.length;
    // the stacked op is the sum itself when no other leaf is added to it
    let sum = rule.stack(terms, emit, others.length === 0 ? n.outputs[0] : undefined);
    others.forEach((o, i) => {
      if (sum) sum = emit('add', [sum, o], {}, i === others.length - 1 ? n.outputs[0] : undefined);
    });
    if (!sum) {
      nodes.length = mark;
      nodes.push(n);
      return;
    }
    changed = true;
  });
  return changed ? withNodes(g, inDependencyOrder(nodes), new Substitution()) : g;
}

/**
 * The nodes with each after the producers of its inputs: a stacked op sits where its chain's root was,
 * but a rule may stack values defined after that (the concats a slab of which each term sums), so
 * where one reads a later value the nodes are reordered, each as early as it may (contract.ts's order).
 */
function inDependencyOrder(nodes: readonly Node[]): readonly Node[] {
  const producer = new Map<number, number>();
  nodes.forEach((n, k) => n.outputs.forEach((v) => producer.set(v.id, k)));
  if (nodes.every((n, k) => n.inputs.every((v) => (producer.get(v.id) ?? -1) < k))) return nodes;
  const ordered = dependencyOrder(nodes);
  if (!ordered) throw new Error('internal: stacking a sum made a cycle');
  return ordered;
}

