// Sums of matmuls that contract the same kind of axis as one matmul: Σ_t A_tᵀ B_t = [A_1; …; A_n]ᵀ [B_1; …; B_n].
//
// A weight shared by every step of an unrolled recurrence gets one gradient term per step, h_tᵀ dz_t,
// and autodiff adds them up: an add tree of n matmuls, n dispatches (the adds ride in their epilogues).
// Stacking the steps' operands along the contracted axis gives the same sum as one matmul over n times
// as many rows, as cuDNN computes an RNN's weight gradients: two concats of n inputs (a dispatch per
// 7 inputs each) and one matmul. An LSTM classifier over 128 steps sums 128 such terms per weight.
//
// A tree qualifies when it is a chain of adds, each read once and by the next add only (not a result),
// with at least MIN_TERMS leaves of the form matmul(transpose(A), B) (or matmul with transpose_a)
// whose A is [N_t, P] and B is [N_t, Q], of f32, each leaf read by the tree alone; other leaves are
// added to the matmul as before. The sum is the same up to rounding (one dot product over all rows
// instead of per-step dot products added in order). Pure; the old nodes are left to dce.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { graphUses } from '../ir/uses.ts';
import { dimEquals } from '../shapes/dim.ts';
import { sameType, Substitution, withNodes } from './rewrite.ts';

/** Fewer terms than this stay as they are: two concats and a matmul would not be fewer dispatches. */
export const MIN_TERMS = 4;

/** A term A_tᵀ B_t: its operands before the transpose. */
interface Term {
  readonly a: Value;
  readonly b: Value;
}

export function batchMatmulSums(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === 'add')) return g;
  const { producer, consumers, results } = graphUses(g);
  const nodeOf = (v: Value): Node | undefined => {
    const k = producer.get(v.id);
    return k === undefined ? undefined : g.nodes[k];
  };
  const readOnce = (v: Value) => !results.has(v.id) && (consumers.get(v.id) ?? []).length === 1 && g.nodes[consumers.get(v.id)![0]].inputs.filter((w) => w.id === v.id).length === 1;
  const isF32Matrix = (v: Value) => v.type.dtype === 'f32' && v.type.shape.length === 2;
  /** The operands of a leaf that is matmul(transpose(A), B), else undefined. */
  const termOf = (v: Value): Term | undefined => {
    const mm = nodeOf(v);
    if (!mm || mm.op !== 'matmul' || !readOnce(v) || !isF32Matrix(v) || mm.attrs.transpose_b) return undefined;
    const [x, b] = mm.inputs;
    if (!isF32Matrix(x) || !isF32Matrix(b)) return undefined;
    if (mm.attrs.transpose_a) return { a: x, b };
    const t = nodeOf(x);
    const perm = t?.op === 'transpose' ? (t.attrs.perm as number[]) : undefined;
    if (!t || !perm || perm[0] !== 1 || perm[1] !== 0 || !isF32Matrix(t.inputs[0])) return undefined;
    return { a: t.inputs[0], b };
  };
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
  const fresh = (type: TensorType): Value => ({ id: nextId++, type });
  const nodes: Node[] = [];
  let changed = false;
  g.nodes.forEach((n, k) => {
    if (n.op !== 'add' || n.outputs.length !== 1 || !isF32Matrix(n.outputs[0]) || isInner(k)) {
      nodes.push(n);
      return;
    }
    const leaves = leavesOf(n.outputs[0], true);
    const terms: Term[] = [];
    const others: Value[] = [];
    for (const leaf of leaves) {
      const t = termOf(leaf);
      const fits = t && (terms.length === 0 || (dimEquals(t.a.type.shape[1], terms[0].a.type.shape[1]) && dimEquals(t.b.type.shape[1], terms[0].b.type.shape[1])));
      if (t && fits && dimEquals(t.a.type.shape[0], t.b.type.shape[0])) terms.push(t);
      else others.push(leaf);
    }
    if (terms.length < MIN_TERMS) {
      nodes.push(n);
      return;
    }
    const emit = (op: string, inputs: Value[], attrs: Attrs, out?: Value): Value | undefined => {
      const types = inferOp(op, inputs.map((v) => v.type), attrs);
      if (isShapeError(types)) return undefined;
      const v = out ?? fresh(types[0] as TensorType);
      nodes.push({ op, inputs, attrs, outputs: [v], span: n.span });
      return v;
    };
    const mark = nodes.length;
    const a = emit('concat', terms.map((t) => t.a), { axis: 0 });
    const b = a && emit('concat', terms.map((t) => t.b), { axis: 0 });
    const at = a && b && emit('transpose', [a], { perm: [1, 0] });
    // the matmul is the sum itself when no other leaf is added to it
    const product = at && b && emit('matmul', [at, b], {}, others.length === 0 ? n.outputs[0] : undefined);
    let sum = product;
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
  return changed ? withNodes(g, nodes, new Substitution()) : g;
}
