// Rematerialization for fusion: an elementwise value read by several elementwise kernels is recomputed in each instead of stored.
//
// Elementwise fusion (fuse.ts) gives every node one group. A value read by two groups is computed in one
// and stored as its extra output, which the other reads: a binding in each, and often a cycle that keeps
// groups apart. An LSTM cell's gates are the case: sigmoid(i), tanh(g), sigmoid(o) and tanh(c) feed the
// forward cell and, saved, the backward pass; the forward kernel cannot store all of them within 8
// storage buffers, so each becomes a kernel of its own (about 15 dispatches per unrolled step).
// Recomputing a gate from its pre-activation in every kernel that reads it, as the backward passes of
// fused RNN kernels do, needs no store and no extra dispatch.
//
// `rematerialize` gives every elementwise reader of such a value (after the first, in graph order) its
// own copy of the node, placed just before that reader, and then does the same for the copies' operands
// (last node to first, so a chain is copied whole: sigmoid(f + b_forget) is recomputed from f and
// b_forget). The original stays for its first elementwise reader and for every reader that is not
// elementwise (a matmul, a reduction) or a graph result. A copy is the same op on the same operands, so
// it gives the same bits. A node that reads two stored tensors of its own shape is not copied: its copy
// would bind two buffers in the reader's kernel where the stored value bound one (an LSTM's backward step
// sums the gradient from the layer above and the recurrent one, and a copy of that sum in the gate
// kernel split it in two at the binding limit). Whether copies pay depends on the binding limit and on
// which groups form, so the fusion pipeline (fusion.ts) fuses both graphs and keeps the one with fewer
// kernels. Pure.
import '../ops/index.ts';
import { getOp } from '../ops/registry.ts';
import { isFusableDraw } from '../ops/fused.ts';
import type { Graph, Node, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { graphUses } from '../ir/uses.ts';
import { dimEquals } from '../shapes/dim.ts';

/** The rewritten graph, and for each of its nodes the index of the input graph's node it is or copies. */
export interface Rematerialized {
  readonly graph: Graph;
  readonly origin: readonly number[];
  /** The ids of the values the copies define. */
  readonly copies: ReadonlySet<number>;
}

/** An elementwise primitive fused kernels compose (the same test as fuse.ts's). */
function isElementwise(n: Node): boolean {
  const def = getOp(n.op);
  return (
    !!def && def.family === 'elementwise' && def.lower?.kind === 'elementwise' && !!def.lower.expr && n.outputs.length === 1 && [...n.inputs, ...n.outputs].every((v) => v.type.dtype !== 'f16')
  );
}

/**
 * The longest chain of elementwise nodes a copy may recompute. A chain stops at a value that is stored
 * anyway: one no elementwise node defines, one something else reads (a matmul, a reduction) or the graph
 * returns, or one read twice that is itself too deep to copy. An LSTM's gates are 1 or 2 deep
 * (sigmoid(f + b_forget)), its cell state 4 (it is stored, and tanh(c) is recomputed from it); without the
 * bound a copy of c_t would copy c_(t-1), and so on back to the first step.
 */
export const MAX_DEPTH = 3;

const sameShape = (a: Value, b: Value) => a.type.shape.length === b.type.shape.length && a.type.shape.every((d, i) => dimEquals(d, b.type.shape[i]));

/**
 * A copy of every elementwise node for each elementwise reader after its first; nodes in `keep` (input
 * graph indices) are never copied. Pure.
 */
export function rematerialize(g: Graph, keep: ReadonlySet<number> = new Set(), options: { readonly draws?: boolean } = {}): Rematerialized {
  const { producer, consumers, results } = graphUses(g);
  // with `draws`, random draws are copied as elementwise nodes are (redrawMasks)
  const elementwise = options.draws ? (n: Node) => isElementwise(n) || isFusableDraw(n) : isElementwise;
  // how deep a copy of each node would recompute (graph order, so operands come first); over MAX_DEPTH
  // means the node is not copied, and its value, if read twice, is stored
  const depth = new Int32Array(g.nodes.length);
  const stored = (v: Value): boolean => {
    const p = producer.get(v.id);
    if (p === undefined || !elementwise(g.nodes[p]) || results.has(v.id)) return true;
    const readers = consumers.get(v.id) ?? [];
    return readers.some((c) => !elementwise(g.nodes[c])) || (readers.length > 1 && depth[p] > MAX_DEPTH);
  };
  g.nodes.forEach((n, k) => {
    depth[k] = elementwise(n) ? 1 + Math.max(0, ...n.inputs.map((v) => (stored(v) ? 0 : depth[producer.get(v.id)!]))) : 0;
  });
  let nextId = firstFreeId(g);
  // each node as a mutable record: its current inputs, and the copies to place just before it
  interface Slot {
    node: Node;
    readonly origin: number;
    readonly before: Slot[];
  }
  const slots: Slot[] = g.nodes.map((node, k) => ({ node, origin: k, before: [] }));
  const readers = new Map<number, Slot[]>(); // value id -> the slots that read it, in graph order
  const addReader = (v: Value, s: Slot) => {
    const list = readers.get(v.id) ?? readers.set(v.id, []).get(v.id)!;
    if (!list.includes(s)) list.push(s);
  };
  for (const s of slots) for (const v of s.node.inputs) addReader(v, s);

  const copies = new Set<number>();
  // copy `s` for `reader`, which reads `s`'s value; then the copy's operands gain a reader
  const copyFor = (s: Slot, reader: Slot): void => {
    const old = s.node.outputs[0];
    const value: Value = { ...old, id: nextId++ };
    const copy: Slot = { node: { ...s.node, outputs: [value] }, origin: s.origin, before: [] };
    reader.node = { ...reader.node, inputs: reader.node.inputs.map((v) => (v.id === old.id ? value : v)) };
    reader.before.push(copy);
    for (const v of copy.node.inputs) addReader(v, copy);
    readers.set(value.id, [reader]);
    copies.add(value.id);
  };

  // last to first: a node's readers, copies included, are all known when it is visited
  const visit = (s: Slot): void => {
    const n = s.node;
    if (!elementwise(n) || n.inputs.length === 0 || depth[s.origin] > MAX_DEPTH || keep.has(s.origin)) return;
    const out = n.outputs[0];
    // a copy reading two stored tensors of its own shape would bind two buffers where its reader bound one
    if (n.inputs.filter((v) => sameShape(v, out) && stored(v)).length >= 2) return;
    const all = readers.get(out.id) ?? [];
    const fusibleReaders = all.filter((r) => elementwise(r.node) && sameShape(r.node.outputs[0], out));
    const keepsOriginal = results.has(out.id) || all.some((r) => !fusibleReaders.includes(r));
    const copied = keepsOriginal ? fusibleReaders : fusibleReaders.slice(1);
    if (copied.length === 0) return;
    readers.set(out.id, all.filter((r) => !copied.includes(r)));
    for (const r of copied) copyFor(s, r);
  };
  for (let k = slots.length - 1; k >= 0; k--) visit(slots[k]);
  if (copies.size === 0) return { graph: g, origin: g.nodes.map((_, k) => k), copies };

  const nodes: Node[] = [];
  const origin: number[] = [];
  const emit = (s: Slot): void => {
    for (const c of s.before) emit(c);
    nodes.push(s.node);
    origin.push(s.origin);
  };
  slots.forEach(emit);
  return { graph: { ...g, nodes }, origin, copies };
}

/**
 * Dropout masks redrawn where they are read: each random draw, and the elementwise chain that makes a
 * mask of it (cast(draw >= p)), is copied for every elementwise reader after the first, so the forward
 * kernel that draws the mask no longer stores it for the backward pass, which draws it again at the same
 * element indices (counter-based: the same bits). Fusion puts each copy in its reader's kernel, so no
 * dispatch is added; the mask's buffer, live from the forward pass to the backward one, is gone (as
 * FlashAttention regenerates its dropout mask). Nodes that are not in such a chain are never copied. Pure.
 */
export function redrawMasks(g: Graph): Rematerialized {
  // most graphs draw nothing: no need to look at their uses
  if (!g.nodes.some(isFusableDraw)) return { graph: g, origin: g.nodes.map((_, k) => k), copies: new Set() };
  const { producer } = graphUses(g);
  // draw chains: a draw, or an elementwise node whose operands are draw chains or constants
  const chain = new Array<boolean>(g.nodes.length).fill(false);
  g.nodes.forEach((n, k) => {
    chain[k] =
      isFusableDraw(n) ||
      (isElementwise(n) &&
        n.inputs.some((v) => chain[producer.get(v.id) ?? -1] === true) &&
        n.inputs.every((v) => {
          const p = producer.get(v.id);
          return p !== undefined && (chain[p] || g.nodes[p].op === 'full');
        }));
  });
  return rematerialize(g, new Set(g.nodes.flatMap((_, k) => (chain[k] ? [] : [k]))), { draws: true });
}
