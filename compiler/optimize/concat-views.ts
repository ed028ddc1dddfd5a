// A concat of evenly spaced strided views of one source as one strided copy: concat_a(view(s, o + j d)) = reshape(view(s, o, with a new axis of stride d at a)).
//
// An unrolled scan reads x_t = x[:, t] at every step, and stacking the steps' input projections
// (stack-matmuls.ts) concatenates them along axis 0: fuse-views.ts makes the slices one strided_copies
// (offsets t * F) and the concat then copies them again, a dispatch per 7 operands. The concat of n
// views that share the shape, the strides and the source, at offsets o, o + d, ..., o + (n - 1) d, is the
// view of shape S[:a] + [n] + S[a:] and strides st[:a] + [d] + st[a:] reshaped to the concat's shape
// (operand j's element i sits at row-major position j * S[a] + i_a along a): one strided_copy. The
// offsets step by an amount of known sign: a number, or a size polynomial that is never negative or
// never positive (B * F: an input gradient's steps, slices of one stacked [T * B, F] product,
// concatenated along the features into [B, T * F]). A reversed scan's stacking steps back: the new
// axis's stride is negative. The values are copied unchanged, so the bits are the same. Pure.
import type { Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import { STRIDED_COPIES_OP, STRIDED_COPY_OP, stridedCopiesViews } from '../ops/strided-copy.ts';
import { add, type Dim, dimEquals, knownNonNegative, mul, sub } from '../shapes/dim.ts';
import type { View } from './fuse-views.ts';

/** The graph with each such concat one strided copy and a reshape; how many it rewrote. */
export function concatsAsViews(g: Graph): { graph: Graph; count: number } {
  // each copy result: its source and view
  const viewOf = new Map<number, { source: Value; view: View }>();
  for (const n of g.nodes) {
    if (n.op === STRIDED_COPY_OP) viewOf.set(n.outputs[0].id, { source: n.inputs[0], view: { shape: n.attrs.shape as Dim[], offset: n.attrs.offset as Dim, strides: n.attrs.strides as Dim[] } });
    if (n.op === STRIDED_COPIES_OP) stridedCopiesViews(n.attrs)?.forEach((view, o) => n.outputs[o] && viewOf.set(n.outputs[o].id, { source: n.inputs[0], view }));
  }
  if (viewOf.size === 0) return { graph: g, count: 0 };
  let nextId = firstFreeId(g);
  const nodes: Node[] = [];
  let count = 0;
  for (const n of g.nodes) {
    const made = n.op === 'concat' && n.attrs.in_place !== true && n.outputs.length === 1 && n.inputs.length >= 2 ? asOneView(n, viewOf) : undefined;
    if (!made) {
      nodes.push(n);
      continue;
    }
    const flat: Value = { id: nextId++, type: made.type };
    nodes.push({ op: STRIDED_COPY_OP, inputs: [made.source], attrs: { shape: [...made.view.shape], offset: made.view.offset, strides: [...made.view.strides] }, outputs: [flat], span: n.span });
    nodes.push({ op: 'reshape', inputs: [flat], attrs: { shape: [...n.outputs[0].type.shape] }, outputs: n.outputs, span: n.span });
    count++;
  }
  return count === 0 ? { graph: g, count } : { graph: { ...g, nodes }, count };
}

/** The one view (of one source) a concat of evenly spaced views is, with its type; undefined when it is not one. */
function asOneView(n: Node, viewOf: ReadonlyMap<number, { source: Value; view: View }>): { source: Value; view: View; type: TensorType } | undefined {
  const parts = n.inputs.map((v) => viewOf.get(v.id));
  const first = parts[0];
  if (!first || parts.some((p) => !p || p.source.id !== first.source.id)) return undefined;
  const { shape, strides, offset } = first.view;
  const rank = shape.length;
  const axis = (n.attrs.axis as number) < 0 ? (n.attrs.axis as number) + rank : (n.attrs.axis as number);
  // a step of known sign: forward (B * F) or back (the reversed direction's -F: a negative stride, which
  // the copy's kernel holds as its u32 residue, codegen/movement.ts)
  const step = sub(parts[1]!.view.offset, offset);
  if (!(knownNonNegative(step) || knownNonNegative(sub(0, step))) || step === 0 || axis < 0 || axis >= rank) return undefined;
  const alike = parts.every((p, j) => {
    const v = p!.view;
    return v.shape.length === rank && v.shape.every((d, i) => dimEquals(d, shape[i]) && dimEquals(v.strides[i], strides[i])) && dimEquals(v.offset, add(offset, mul(j, step)));
  });
  if (!alike) return undefined;
  const view: View = { offset, shape: [...shape.slice(0, axis), n.inputs.length, ...shape.slice(axis)], strides: [...strides.slice(0, axis), step, ...strides.slice(axis)] };
  const types = inferOp(STRIDED_COPY_OP, [first.source.type], { shape: [...view.shape], offset: view.offset, strides: [...view.strides] });
  return isShapeError(types) ? undefined : { source: first.source, view, type: types[0] as TensorType };
}
