// Label gathers as one-hot selects: take_along_axis of one index per row, over the last axis of a row that a reduction reads anyway, becomes a masked sum the row's kernel computes.
//
// Cross-entropy picks each row's score at its label: take_along_axis(x, labels[.., 1], axis: -1), one
// gather kernel beside the log-sum-exp's row kernel that reads the same row. As
//   reshape(sum(select(one_hot(labels, clamp: true) as bool, x, 0), axis: -1), [.., 1])
// it is elementwise work and a reduction over the row, which reduction fusion (fuse-rows.ts) puts in
// that kernel, and the one-hot rows are the same value the gather's gradient selects with (ops/gather.ts),
// so one one_hot kernel serves both. The value is the same: the one score plus zeros (a -0 score gives
// +0), NaN or infinity elsewhere in the row never reach it (a select, not a product), and indices out of
// range clamp as the gather's read does. Applied only where the row is read by a sum or max over the
// same axis (so the select's read of the whole row costs nothing extra) and x is f32. Pure.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { Substitution, withNodes } from './rewrite.ts';

export function selectLabels(g: Graph): Graph {
  let nextId = firstFreeId(g);
  // values some reduction reads over exactly one axis: value id -> those axes
  const rowReads = new Map<number, Set<number>>();
  for (const n of g.nodes) {
    if ((n.op !== 'reduce_sum' && n.op !== 'reduce_max') || !Array.isArray(n.attrs.axes) || n.attrs.axes.length !== 1) continue;
    const rank = n.inputs[0].type.shape.length;
    const axis = ((n.attrs.axes[0] as number) + rank) % rank;
    (rowReads.get(n.inputs[0].id) ?? rowReads.set(n.inputs[0].id, new Set()).get(n.inputs[0].id)!).add(axis);
  }
  const nodes: Node[] = [];
  let changed = false;
  const make = (op: string, inputs: readonly Value[], attrs: Attrs, span: Node['span']): Value | undefined => {
    const t = inferOp(op, inputs.map((v) => v.type), attrs);
    if (isShapeError(t) || t.length !== 1) return undefined;
    const out: Value = { id: nextId++, type: t[0] as TensorType };
    nodes.push({ op, inputs, attrs, outputs: [out], span });
    return out;
  };
  for (const n of g.nodes) {
    const [x, idx] = n.inputs;
    const rank = x?.type.shape.length ?? 0;
    const axis = rank - 1;
    const applies =
      n.op === 'take_along_axis' && rank >= 1 && x.type.dtype === 'f32' && n.attrs.axis === axis && idx.type.shape[axis] === 1 && (rowReads.get(x.id)?.has(axis) ?? false);
    if (!applies) {
      nodes.push(n);
      continue;
    }
    const before = nodes.length;
    const rows = make('reshape', [idx], { shape: idx.type.shape.slice(0, axis) }, n.span);
    const hot = rows && make('one_hot', [rows], { depth: x.type.shape[axis], dtype: 'bool', clamp: true }, n.span);
    const zero = make('full', [], { shape: [], value: 0, dtype: 'f32' }, n.span);
    const picked = hot && zero && make('select', [hot, x, zero], {}, n.span);
    // the sum drops the axis and a reshape restores it, so that a reader that drops it too (the loss's
    // reshape to [B]) reads the row kernel's per-row value directly once simplify folds the two reshapes
    const sum = picked && make('reduce_sum', [picked], { axes: [axis], keepdims: false }, n.span);
    const shape = { shape: [...n.outputs[0].type.shape] };
    const back = sum && inferOp('reshape', [sum.type], shape);
    if (!sum || !back || isShapeError(back)) {
      nodes.length = before;
      nodes.push(n);
      continue;
    }
    nodes.push({ op: 'reshape', inputs: [sum], attrs: shape, outputs: n.outputs, span: n.span });
    changed = true;
  }
  return changed ? withNodes(g, nodes, new Substitution()) : g;
}
