// Movement chains as one kernel: slices, reshapes, transposes and broadcasts that feed only one another become one strided_copy.
//
// Each of these ops reads its operand through a strided view of the same storage: a transpose permutes
// the strides, a slice moves the offset and scales the strides by its steps, a broadcast gives its new
// axes stride 0, and a reshape splits or merges axes where the merged ones are contiguous in the view.
// A chain of them whose intermediate values nothing else reads (and the graph does not return) is one
// gather: output element i reads offset + Σ i_a * strides[a] of the chain's first operand. So a chain
// with two or more dispatches (reshapes have none: they alias) becomes one strided_copy node
// (ops/strided-copy.ts), with every size symbolic where the shapes are. Attention's head split, the
// slice of the fused q/k/v projection then a reshape and a transpose, is one kernel instead of two.
// Chains from one source share one kernel (strided_copies): attention's q, k and v, three views of one
// projection, are one dispatch instead of three. A concat reads its operands through such views too
// (strided_concat): attention's backward pass transposes the q, k and v gradients back from heads and
// concatenates them, one kernel instead of four.
// A reshape the view cannot follow (merging axes a slice or a transpose made non-contiguous) ends the
// chain there; the values are copied unchanged, so results are bit-identical.
import type { Graph, Node, Value } from '../ir/types.ts';
import { CONCAT_MAX_INPUTS } from '../codegen/movement.ts';
import { graphUses } from '../ir/uses.ts';
import { sliceBounds } from '../ops/movement.ts';
import { stridesOf } from '../codegen/per-element.ts';
import { STRIDED_CONCAT_OP, STRIDED_COPIES_OP, STRIDED_COPY_OP } from '../ops/strided-copy.ts';
import { add, type Dim, dimEquals, isConcrete, mul } from '../shapes/dim.ts';
import { contractGroups, type Contraction } from './contract.ts';
import { MAX_STORAGE_BUFFERS } from './fuse.ts';

/** Results one strided_copies kernel writes: the storage buffers less its operand. */
const MAX_COPIES = MAX_STORAGE_BUFFERS - 1;

/** A strided view of a row-major buffer: element i is offset + Σ i_a * strides[a]. */
export interface View {
  readonly offset: Dim;
  readonly shape: readonly Dim[];
  readonly strides: readonly Dim[];
}

export const VIEW_OPS = new Set(['slice', 'reshape', 'transpose', 'broadcast_to']);

/** The view of a movement op's result, given its operand's; undefined when it is not a strided view. */
export function viewAfter(v: View, n: Node): View | undefined {
  const out = n.outputs[0].type.shape;
  switch (n.op) {
    case 'transpose': {
      const perm = n.attrs.perm as number[];
      return { offset: v.offset, shape: out, strides: perm.map((p) => v.strides[p]) };
    }
    case 'slice': {
      const starts = n.attrs.starts as Dim[];
      const stops = n.attrs.stops as (Dim | null)[];
      const steps = (n.attrs.steps as number[] | undefined) ?? v.shape.map(() => 1);
      if (steps.some((s) => !(s >= 1))) return undefined;
      let offset = v.offset;
      const strides = v.shape.map((d, a) => {
        offset = add(offset, mul(sliceBounds(d, starts[a], stops[a], steps[a]).start, v.strides[a]));
        return mul(v.strides[a], steps[a]);
      });
      return { offset, shape: out, strides };
    }
    case 'broadcast_to': {
      const lead = out.length - v.shape.length;
      const strides = out.map((d, a) => (a < lead || (dimEquals(v.shape[a - lead], 1) && !dimEquals(d, 1)) ? 0 : v.strides[a - lead]));
      return { offset: v.offset, shape: out, strides };
    }
    case 'reshape':
      return reshapeView(v, out);
    default:
      return undefined;
  }
}

/**
 * A reshape of a view: the view's axes (size-1 axes dropped) and the new shape's are matched in groups
 * of equal size products, each group of view axes must be contiguous (stride[a] = size[a+1] * stride[a+1]),
 * and the group's new axes take row-major strides from its innermost stride.
 */
function reshapeView(v: View, to: readonly Dim[]): View | undefined {
  const axes = v.shape.map((_, a) => a).filter((a) => !dimEquals(v.shape[a], 1));
  const strides: Dim[] = new Array(to.length);
  let i = 0;
  let k = 0;
  while (k < to.length) {
    if (dimEquals(to[k], 1)) {
      strides[k++] = 0;
      continue;
    }
    if (i >= axes.length) return undefined;
    let pin: Dim = v.shape[axes[i]];
    let pout: Dim = to[k];
    let j = i + 1;
    let l = k + 1;
    while (!dimEquals(pin, pout)) {
      if (!isConcrete(pin) || !isConcrete(pout)) return undefined;
      if (pin < pout) {
        if (j >= axes.length) return undefined;
        pin = mul(pin, v.shape[axes[j++]]);
      } else {
        if (l >= to.length) return undefined;
        pout = mul(pout, to[l++]);
      }
    }
    for (let t = i; t + 1 < j; t++) if (!dimEquals(v.strides[axes[t]], mul(v.shape[axes[t + 1]], v.strides[axes[t + 1]]))) return undefined;
    let st: Dim = v.strides[axes[j - 1]];
    for (let m = l - 1; m >= k; m--) {
      strides[m] = dimEquals(to[m], 1) ? 0 : st;
      st = mul(st, to[m]);
    }
    i = j;
    k = l;
  }
  return i === axes.length ? { offset: v.offset, shape: to, strides } : undefined;
}

/** What fuseViews made: one strided_copy, strided_copies or strided_concat node, its operand and result counts, and the nodes of the input graph it replaced. */
export interface ViewFusion {
  readonly op: typeof STRIDED_COPY_OP | typeof STRIDED_COPIES_OP | typeof STRIDED_CONCAT_OP;
  readonly nodes: readonly number[];
  readonly inputs: number;
  readonly outputs: number;
}

/**
 * The graph with each movement chain of two or more dispatches as one strided_copy, the chains of one
 * source (of one dispatch or more) as one strided_copies, and each concat (of at most 7 operands) some
 * of whose operands are such chains as one strided_concat reading the chains' sources; what it fused,
 * as node indices of `g`.
 */
export function fuseViews(g: Graph): { graph: Graph; chains: ViewFusion[] } {
  const { producer, consumers, results } = graphUses(g);
  const nodes = g.nodes;
  const taken = new Set<number>();
  const contractions: Contraction[] = [];
  const chains: ViewFusion[] = [];
  const isView = (k: number) => VIEW_OPS.has(nodes[k].op) && !taken.has(k) && nodes[k].outputs.length === 1 && nodes[k].outputs[0].type.dtype !== 'f16';
  /** The movement ops that lead only to node k's operand (k included), first to last. */
  const chainTo = (k: number): number[] => {
    const chain = [k];
    for (let cur = nodes[k]; ; ) {
      const v = cur.inputs[0];
      const p = producer.get(v.id);
      if (p === undefined || !isView(p) || results.has(v.id) || (consumers.get(v.id) ?? []).length !== 1) break;
      chain.unshift(p);
      cur = nodes[p];
    }
    return chain;
  };
  const viewOf = (chain: readonly number[]): View | undefined => {
    const source = nodes[chain[0]].inputs[0];
    let view: View | undefined = { offset: 0, shape: source.type.shape, strides: stridesOf(source.type.shape) };
    for (const m of chain) view = view && viewAfter(view, nodes[m]);
    return view;
  };
  const dispatches = (chain: readonly number[]) => chain.filter((m) => nodes[m].op !== 'reshape').length;
  // from the last node back, so each chain is found from its end
  const candidates: { chain: number[]; view: View }[] = [];
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (n.op === 'concat') {
      const made = concatOfViews(k);
      if (made) {
        for (const m of made.members) taken.add(m);
        chains.push({ op: STRIDED_CONCAT_OP, nodes: made.members, inputs: made.node.inputs.length, outputs: 1 });
        contractions.push({ members: made.members, node: made.node });
      }
      continue;
    }
    if (!isView(k)) continue;
    const chain = chainTo(k);
    if (dispatches(chain) < 1) continue;
    const view = viewOf(chain);
    if (!view) continue;
    for (const m of chain) taken.add(m);
    candidates.push({ chain, view });
  }
  // chains of one source: up to 7 as one strided_copies (one dispatch for all); a chain alone, when it has two dispatches or more
  const bySource = new Map<number, { chain: number[]; view: View }[]>();
  for (const c of candidates.reverse()) {
    const id = nodes[c.chain[0]].inputs[0].id;
    bySource.set(id, [...(bySource.get(id) ?? []), c]);
  }
  for (const all of bySource.values()) {
    for (let at = 0; at < all.length; at += MAX_COPIES) {
      const group = all.slice(at, at + MAX_COPIES);
      const members = group.flatMap((c) => c.chain).sort((a, b) => a - b);
      const source = nodes[group[0].chain[0]].inputs[0];
      const last = (c: { chain: number[] }) => nodes[c.chain[c.chain.length - 1]];
      if (group.length > 1) {
        const views = group.map((c) => c.view);
        const attrs = { ranks: views.map((v) => v.shape.length), shapes: views.flatMap((v) => [...v.shape]), offsets: views.map((v) => v.offset), strides: views.flatMap((v) => [...v.strides]) };
        chains.push({ op: STRIDED_COPIES_OP, nodes: members, inputs: 1, outputs: group.length });
        contractions.push({ members, node: { op: STRIDED_COPIES_OP, inputs: [source], attrs, outputs: group.map((c) => last(c).outputs[0]), span: last(group[0]).span } });
      } else if (dispatches(group[0].chain) >= 2) {
        const { view } = group[0];
        chains.push({ op: STRIDED_COPY_OP, nodes: group[0].chain, inputs: 1, outputs: 1 });
        contractions.push({ members, node: { op: STRIDED_COPY_OP, inputs: [source], attrs: { shape: [...view.shape], offset: view.offset, strides: [...view.strides] }, outputs: last(group[0]).outputs, span: last(group[0]).span } });
      }
    }
  }
  return contractions.length === 0 ? { graph: g, chains } : { graph: contractGroups(g, contractions), chains };

  /**
   * Concat node k as a strided_concat over its operands' chains, when one of them dispatches at least
   * once. An operand whose chain ends in a reshape the view cannot follow (heads transposed back, then
   * merged: [B, L, 4, 16] -> [B, L, 64]) is read before that reshape, and the concat walks a finer
   * index space where every operand is such a view ([B, L, 12, 16] for [B, L, 192]).
   */
  function concatOfViews(k: number): { members: number[]; node: Node } | undefined {
    const n = nodes[k];
    const out = n.outputs[0].type;
    if (n.inputs.length > CONCAT_MAX_INPUTS || out.dtype === 'f16' || n.outputs.length !== 1) return undefined;
    const rank = out.shape.length;
    const axis = (n.attrs.axis as number) < 0 ? (n.attrs.axis as number) + rank : (n.attrs.axis as number);
    // per operand: its chain, the view after the whole chain, and after the chain less its trailing reshapes
    const operands = n.inputs.map((v) => {
      const p = producer.get(v.id);
      const alone = p !== undefined && isView(p) && !results.has(v.id) && (consumers.get(v.id) ?? []).length === 1;
      const chain = alone ? chainTo(p) : [];
      let cut = chain.length;
      while (cut > 0 && nodes[chain[cut - 1]].op === 'reshape') cut--;
      const own: View = { offset: 0, shape: v.type.shape, strides: stridesOf(v.type.shape) };
      return { v, chain, full: chain.length > 0 ? viewOf(chain) : undefined, trimmed: cut > 0 ? viewOf(chain.slice(0, cut)) : undefined, cut, own };
    });
    // the index space: the output's when every chain is a view of it, else the output's axes from the
    // concat axis on refined to [x, ...rest], with `rest` the trailing axes of the first operand that needs it
    const needsRefining = operands.find((o) => o.chain.length > 0 && !o.full && o.trimmed);
    const prefix = out.shape.slice(0, axis);
    const samePrefix = (shape: readonly Dim[]) => shape.length > axis && prefix.every((d, a) => dimEquals(d, shape[a]));
    let rest: readonly Dim[] = out.shape.slice(axis + 1);
    if (needsRefining) {
      if (!samePrefix(needsRefining.trimmed!.shape)) return undefined;
      rest = needsRefining.trimmed!.shape.slice(axis + 1);
    }
    /** A view of the operand over prefix + [x] + rest, and x; undefined when it has none. */
    const fit = (view: View | undefined): { view: View; x: Dim } | undefined => {
      if (!view || !samePrefix(view.shape)) return undefined;
      const tail = view.shape.slice(axis + 1);
      if (tail.length === rest.length && tail.every((d, a) => dimEquals(d, rest[a]))) return { view, x: view.shape[axis] };
      const total = view.shape.slice(axis);
      const restSize = rest.reduce<Dim>((a, d) => mul(a, d), 1);
      const size = total.reduce<Dim>((a, d) => mul(a, d), 1);
      if (!isConcrete(size) || !isConcrete(restSize) || restSize === 0 || size % restSize !== 0) return undefined;
      const x = size / restSize;
      const refined = reshapeView(view, [...prefix, x, ...rest]);
      return refined ? { view: refined, x } : undefined;
    };
    const members = [k];
    const inputs: Value[] = [];
    const sizes: Dim[] = [];
    const offsets: Dim[] = [];
    const strides: Dim[] = [];
    let absorbed = 0;
    for (const o of operands) {
      // the whole chain, the chain less its trailing reshapes, or the operand itself
      const tries: [View | undefined, number][] = [[o.full, o.chain.length], [o.trimmed, o.cut], [o.own, 0]];
      let chosen: { view: View; x: Dim; len: number } | undefined;
      for (const [view, len] of tries) {
        const f = fit(view);
        if (f) {
          chosen = { ...f, len };
          break;
        }
      }
      if (!chosen) return undefined;
      const chain = o.chain.slice(0, chosen.len);
      // a chain read before its trailing reshapes takes them along: nothing else reads them
      if (chosen.len > 0) members.push(...o.chain);
      absorbed += dispatches(chain);
      inputs.push(chosen.len === 0 ? o.v : nodes[chain[0]].inputs[0]);
      sizes.push(chosen.x);
      offsets.push(chosen.view.offset);
      strides.push(...chosen.view.strides);
    }
    if (absorbed === 0 || new Set(members).size !== members.length) return undefined;
    const index = [...prefix, sizes.reduce<Dim>((a, d) => add(a, d), 0), ...rest];
    const refined = index.length !== out.shape.length || index.some((d, a) => !dimEquals(d, out.shape[a]));
    const attrs = { shape: index, axis, sizes, offsets, strides, ...(refined ? { out: [...out.shape] } : {}) };
    return { members: members.sort((a, b) => a - b), node: { op: STRIDED_CONCAT_OP, inputs, attrs, outputs: n.outputs, span: n.span } };
  }
}
