// Adding two cotangents: zero-padded blocks of one axis that meet (the gradients of slices that split a tensor) join by concat.
//
// A tensor split by slices along one axis (an LSTM's four gates, a Transformer's q, k and v) gets from
// each slice's vjp its cotangent zero-padded back to the whole axis, and fan-out adds them: three pads
// and two adds of full-size tensors. Where the two blocks are disjoint and adjacent, their sum is the
// blocks side by side, padded once: concat(a, b) padded to the whole axis, and once the blocks cover
// the axis, a single concat. The values are the same (x + 0 is x; only a -0 block edge becomes +0 in
// the add and stays -0 in the concat), and the replaced pads are left for dce.
import type { GraphEditor } from '../ir/editor.ts';
import type { Node, Value } from '../ir/types.ts';
import { add, type Dim, dimEquals, isConcrete, sub } from '../shapes/dim.ts';

/** A value that is zeros along one axis except for a run of blocks: `before` zeros, the blocks, `after` zeros. */
interface Padded {
  readonly axis: number;
  readonly before: Dim;
  readonly blocks: readonly Value[];
  readonly after: Dim;
}

/** prev + ct, as one concat of their blocks where both are zero-padded blocks of one axis that meet; else an add. */
export function sumCotangents(editor: GraphEditor, producerOf: (v: Value) => Node | undefined, prev: Value, ct: Value): Value {
  const a = paddedBlocks(prev, producerOf);
  const b = paddedBlocks(ct, producerOf);
  if (a && b && a.axis === b.axis) {
    const n = prev.type.shape[a.axis];
    // a's blocks end where b's begin, or the other way round
    if (dimEquals(sub(n, a.after), b.before)) return padded(editor, a.axis, a.before, [...a.blocks, ...b.blocks], b.after);
    if (dimEquals(sub(n, b.after), a.before)) return padded(editor, a.axis, b.before, [...b.blocks, ...a.blocks], a.after);
  }
  return editor.op('add', [prev, ct]);
}

function isZeroFill(n: Node | undefined): boolean {
  return n?.op === 'full' && n.attrs.value === 0;
}

/** How `v` is made of zeros and blocks along one axis: a zero pad on one axis, or a concat with zero fills at its ends. */
function paddedBlocks(v: Value, producerOf: (v: Value) => Node | undefined): Padded | undefined {
  const n = producerOf(v);
  if (!n) return undefined;
  if (n.op === 'pad' && (n.attrs.value === undefined || n.attrs.value === 0)) {
    const before = n.attrs.before as number[];
    const after = n.attrs.after as number[];
    const axes = before.map((_, i) => i).filter((i) => before[i] !== 0 || after[i] !== 0);
    if (axes.length !== 1) return undefined;
    const axis = axes[0];
    return { axis, before: before[axis], blocks: blocksOf(n.inputs[0], axis, producerOf), after: after[axis] };
  }
  if (n.op === 'concat') {
    const axis = n.attrs.axis as number;
    if (axis < 0) return undefined;
    const parts = n.inputs;
    let lo = 0;
    let hi = parts.length;
    let before: Dim = 0;
    let after: Dim = 0;
    while (lo < hi && isZeroFill(producerOf(parts[lo]))) before = add(before, parts[lo++].type.shape[axis]);
    while (hi > lo && isZeroFill(producerOf(parts[hi - 1]))) after = add(after, parts[--hi].type.shape[axis]);
    if (lo === 0 && hi === parts.length) return undefined;
    return { axis, before, blocks: parts.slice(lo, hi).flatMap((p) => blocksOf(p, axis, producerOf)), after };
  }
  return undefined;
}

/** A block, or the parts of a concat along the same axis (so joined blocks stay one flat concat). */
function blocksOf(v: Value, axis: number, producerOf: (v: Value) => Node | undefined): Value[] {
  const n = producerOf(v);
  return n?.op === 'concat' && n.attrs.axis === axis ? [...n.inputs] : [v];
}

/** The blocks side by side along `axis`, with `before` and `after` zeros around them. */
function padded(editor: GraphEditor, axis: number, before: Dim, blocks: readonly Value[], after: Dim): Value {
  const joined = blocks.length === 1 ? blocks[0] : editor.op('concat', blocks, { axis });
  if (isConcrete(before) && isConcrete(after)) {
    if (before === 0 && after === 0) return joined;
    const r = joined.type.shape.length;
    const at = (k: number) => Array.from({ length: r }, (_, i) => (i === axis ? k : 0));
    return editor.op('pad', [joined], { before: at(before), after: at(after) });
  }
  const zeros = (k: Dim) => editor.op('full', [], { shape: joined.type.shape.map((d, i) => (i === axis ? k : d)), value: 0, dtype: joined.type.dtype });
  const parts = [...(dimEquals(before, 0) ? [] : [zeros(before)]), joined, ...(dimEquals(after, 0) ? [] : [zeros(after)])];
  return parts.length === 1 ? joined : editor.op('concat', parts, { axis });
}
