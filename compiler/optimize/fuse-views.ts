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
// A reshape the view cannot follow (merging axes a slice or a transpose made non-contiguous) ends the
// chain there; the values are copied unchanged, so results are bit-identical.
import type { Graph, Node } from '../ir/types.ts';
import { graphUses } from '../ir/uses.ts';
import { sliceBounds } from '../ops/movement.ts';
import { stridesOf } from '../codegen/per-element.ts';
import { STRIDED_COPY_OP } from '../ops/strided-copy.ts';
import { add, type Dim, dimEquals, isConcrete, mul } from '../shapes/dim.ts';
import { contractGroups, type Contraction } from './contract.ts';

/** A strided view of a row-major buffer: element i is offset + Σ i_a * strides[a]. */
interface View {
  readonly offset: Dim;
  readonly shape: readonly Dim[];
  readonly strides: readonly Dim[];
}

const VIEW_OPS = new Set(['slice', 'reshape', 'transpose', 'broadcast_to']);

/** The view of a movement op's result, given its operand's; undefined when it is not a strided view. */
function viewAfter(v: View, n: Node): View | undefined {
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

/** The graph with each movement chain of two or more dispatches as one strided_copy; the chains, as node indices of `g`. */
export function fuseViews(g: Graph): { graph: Graph; chains: number[][] } {
  const { producer, consumers, results } = graphUses(g);
  const nodes = g.nodes;
  const taken = new Set<number>();
  const contractions: Contraction[] = [];
  const chains: number[][] = [];
  // from the last node back, so each chain is found from its end
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (!VIEW_OPS.has(n.op) || taken.has(k) || n.outputs.length !== 1 || n.outputs[0].type.dtype === 'f16') continue;
    const chain = [k];
    for (let cur = n; ; ) {
      const v = cur.inputs[0];
      const p = producer.get(v.id);
      if (p === undefined || !VIEW_OPS.has(nodes[p].op) || taken.has(p) || results.has(v.id) || (consumers.get(v.id) ?? []).length !== 1) break;
      chain.unshift(p);
      cur = nodes[p];
    }
    if (chain.filter((m) => nodes[m].op !== 'reshape').length < 2) continue;
    const source = nodes[chain[0]].inputs[0];
    let view: View | undefined = { offset: 0, shape: source.type.shape, strides: stridesOf(source.type.shape) };
    for (const m of chain) view = view && viewAfter(view, nodes[m]);
    if (!view) continue;
    for (const m of chain) taken.add(m);
    chains.push(chain);
    contractions.push({
      members: [...chain].sort((a, b) => a - b),
      node: { op: STRIDED_COPY_OP, inputs: [source], attrs: { shape: [...view.shape], offset: view.offset, strides: [...view.strides] }, outputs: n.outputs, span: n.span },
    });
  }
  return contractions.length === 0 ? { graph: g, chains } : { graph: contractGroups(g, contractions), chains };
}
