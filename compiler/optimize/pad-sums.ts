// Sums of zero-padded blocks of one axis as one concat: Σ_i pad(b_i) = the blocks side by side, with zeros between and around them.
//
// Slicing a tensor step by step (an unrolled scan reading x_t = x[:, t]) gives each slice's cotangent
// zero-padded back to the whole axis, and fan-out adds them. autodiff joins two such blocks as they meet
// (autodiff/sum-cotangents.ts), but where two readers' cotangents interleave (a bidirectional LSTM's
// two directions both read every x_t of the layer below) each block is added to a running sum that is
// no longer padded: T pads and T adds. Here the zero pads along one axis among an add chain's leaves
// (stack-sums.ts) are dealt, in axis order, into layers of disjoint blocks (one per reader of every
// position), and each layer becomes one concat of its blocks with zero fills in the gaps, padded once
// to the whole axis; the layers and the other leaves are added as before. Where no two blocks share a
// layer, the chain is left as it was. The values are the same (x + 0 is x; a -0 may become +0 or stay -0).
import type { Graph, Value } from '../ir/types.ts';
import { type Emit, stackSums, type StackRule } from './stack-sums.ts';

/** A block padded with zeros along one axis. */
interface Block {
  readonly x: Value;
  readonly axis: number;
  readonly before: number;
  readonly size: number;
  readonly whole: number;
}

const PADDED_BLOCKS: StackRule<Block> = {
  minTerms: 2,
  root: () => true,
  termOf: (v, nodeOf, readOnce) => {
    const n = nodeOf(v);
    if (!n || n.op !== 'pad' || !readOnce(v) || (n.attrs.value !== undefined && n.attrs.value !== 0)) return undefined;
    const before = n.attrs.before as readonly number[];
    const after = n.attrs.after as readonly number[];
    const axes = before.flatMap((b, i) => (b !== 0 || after[i] !== 0 ? [i] : []));
    const size = n.inputs[0].type.shape[axes[0]];
    const whole = v.type.shape[axes[0]];
    if (axes.length !== 1 || typeof size !== 'number' || typeof whole !== 'number') return undefined;
    return { x: n.inputs[0], axis: axes[0], before: before[axes[0]], size, whole };
  },
  fits: (first, b) => b.axis === first.axis && b.x.type.dtype === first.x.type.dtype,
  stack: (blocks, emit, out) => {
    // blocks in axis order, dealt into layers of disjoint blocks: each to the first layer it fits after
    const layers: Block[][] = [];
    for (const b of [...blocks].sort((p, q) => p.before - q.before)) {
      const layer = layers.find((l) => l[l.length - 1].before + l[l.length - 1].size <= b.before);
      if (layer) layer.push(b);
      else layers.push([b]);
    }
    if (layers.length === blocks.length) return undefined; // every block overlaps the others: nothing to join
    let sum: Value | undefined;
    for (const [i, layer] of layers.entries()) {
      const last = i === layers.length - 1;
      const joined = joinLayer(layer, emit, last && i === 0 ? out : undefined);
      sum = joined && (i === 0 ? joined : sum && emit('add', [sum, joined], {}, last ? out : undefined));
      if (!sum) return undefined;
    }
    return sum;
  },
};

/** Disjoint blocks in axis order side by side, zeros between them, padded to the whole axis. */
function joinLayer(layer: readonly Block[], emit: Emit, out: Value | undefined): Value | undefined {
  const { axis, whole, x } = layer[0];
  const parts: Value[] = [];
  let at = layer[0].before;
  for (const b of layer) {
    if (b.before > at) {
      const zeros = emit('full', [], { shape: b.x.type.shape.map((d, i) => (i === axis ? b.before - at : d)), value: 0, dtype: x.type.dtype });
      if (!zeros) return undefined;
      parts.push(zeros);
    }
    parts.push(b.x);
    at = b.before + b.size;
  }
  const first = layer[0].before;
  const padded = first > 0 || at < whole;
  const joined = parts.length === 1 ? parts[0] : emit('concat', parts, { axis }, padded ? undefined : out);
  if (!joined || !padded) return joined;
  const pads = (k: number) => x.type.shape.map((_, i) => (i === axis ? k : 0));
  return emit('pad', [joined], { before: pads(first), after: pads(whole - at) }, out);
}

export function joinPaddedSums(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === 'pad')) return g;
  return stackSums(g, PADDED_BLOCKS);
}
