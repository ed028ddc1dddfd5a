// A concat of values each reshaped with a unit axis at the concat axis as a reshape of their concat: concat_a(x_j[.., 1, ..]) = reshape(concat_a(x_j)).
//
// An unrolled scan's `yield` stacks its per-step values h_t [B, H] into hs [B, T, H]: each is reshaped to
// [B, 1, H] and the reshapes are concatenated along axis 1. Concatenating the h_t themselves along axis 1
// gives [B, T * H], the same elements in the same row-major order (element (b, t, h) of hs is element
// (b, t * H + h)), so one reshape of that is hs. The concat then reads the kernels' results directly,
// which lets those kernels store them straight into its buffer (concat-in-place.ts). A unit axis after
// every axis of x_j (a concat of [.., 1] columns) interleaves instead, and is left alone. Pure; the values
// move unchanged, so the bits are the same; the old reshapes are left to dce.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { dimEquals } from '../shapes/dim.ts';
import { Substitution, withNodes } from './rewrite.ts';

export function concatReshapes(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === 'concat')) return g;
  const producer = new Map<number, Node>();
  for (const n of g.nodes) for (const v of n.outputs) producer.set(v.id, n);
  /** x where v = reshape(x) and v's shape is x's with a unit axis inserted at `axis` (not after x's last). */
  const unreshaped = (v: Value, axis: number): Value | undefined => {
    const q = producer.get(v.id);
    if (q?.op !== 'reshape' || q.inputs.length !== 1) return undefined;
    const x = q.inputs[0];
    const s = v.type.shape;
    const t = x.type.shape;
    if (s.length !== t.length + 1 || axis >= t.length || s[axis] !== 1) return undefined;
    return t.every((d, i) => dimEquals(d, s[i < axis ? i : i + 1])) ? x : undefined;
  };
  let nextId = firstFreeId(g);
  const nodes: Node[] = [];
  let changed = false;
  for (const n of g.nodes) {
    const rank = n.outputs[0]?.type.shape.length ?? 0;
    const a = typeof n.attrs.axis === 'number' ? (n.attrs.axis < 0 ? n.attrs.axis + rank : n.attrs.axis) : -1;
    const parts = n.op === 'concat' && n.outputs.length === 1 && a >= 0 ? n.inputs.map((v) => unreshaped(v, a)) : [];
    if (parts.length < 2 || parts.some((x) => x === undefined)) {
      nodes.push(n);
      continue;
    }
    const xs = parts as Value[];
    const joined = inferOp('concat', xs.map((x) => x.type), { axis: a });
    if (isShapeError(joined)) {
      nodes.push(n);
      continue;
    }
    const flat: Value = { id: nextId++, type: joined[0] as TensorType };
    nodes.push({ op: 'concat', inputs: xs, attrs: { axis: a }, outputs: [flat], span: n.span });
    nodes.push({ op: 'reshape', inputs: [flat], attrs: { shape: [...n.outputs[0].type.shape] }, outputs: n.outputs, span: n.span });
    changed = true;
  }
  return changed ? withNodes(g, nodes, new Substitution()) : g;
}
