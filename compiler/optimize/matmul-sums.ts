// Sums of matmuls that contract the same kind of axis as one matmul: Σ_t A_tᵀ B_t = [A_1; …; A_n]ᵀ [B_1; …; B_n].
//
// A weight shared by every step of an unrolled recurrence gets one gradient term per step, h_tᵀ dz_t,
// and autodiff adds them up: an add tree of n matmuls, n dispatches (the adds ride in their epilogues).
// Stacking the steps' operands along the contracted axis gives the same sum as one matmul over n times
// as many rows, as cuDNN computes an RNN's weight gradients: two concats of n inputs (a dispatch per
// 7 inputs each) and one matmul. An LSTM classifier over 128 steps sums 128 such terms per weight.
//
// A term is a leaf of the form matmul(transpose(A), B) (or matmul with transpose_a) whose A is [N_t, P]
// and B is [N_t, Q], of f32 (stack-sums.ts says which chains qualify).
import type { Graph, Node, Value } from '../ir/types.ts';
import { dimEquals } from '../shapes/dim.ts';
import { stackSums, type StackRule } from './stack-sums.ts';

export { MIN_TERMS } from './stack-sums.ts';

/** A term A_tᵀ B_t: its operands before the transpose. */
interface Term {
  readonly a: Value;
  readonly b: Value;
}

const isF32Matrix = (v: Value) => v.type.dtype === 'f32' && v.type.shape.length === 2;

const MATMUL_TERMS: StackRule<Term> = {
  root: isF32Matrix,
  termOf: (v, nodeOf, readOnce) => {
    const mm: Node | undefined = nodeOf(v);
    if (!mm || mm.op !== 'matmul' || !readOnce(v) || !isF32Matrix(v) || mm.attrs.transpose_b) return undefined;
    const [x, b] = mm.inputs;
    if (!isF32Matrix(x) || !isF32Matrix(b)) return undefined;
    const term = (a: Value): Term | undefined => (dimEquals(a.type.shape[0], b.type.shape[0]) ? { a, b } : undefined);
    if (mm.attrs.transpose_a) return term(x);
    const t = nodeOf(x);
    const perm = t?.op === 'transpose' ? (t.attrs.perm as number[]) : undefined;
    if (!t || !perm || perm[0] !== 1 || perm[1] !== 0 || !isF32Matrix(t.inputs[0])) return undefined;
    return term(t.inputs[0]);
  },
  fits: (first, t) => dimEquals(t.a.type.shape[1], first.a.type.shape[1]) && dimEquals(t.b.type.shape[1], first.b.type.shape[1]),
  stack: (terms, emit, out) => {
    const a = emit('concat', terms.map((t) => t.a), { axis: 0 });
    const b = a && emit('concat', terms.map((t) => t.b), { axis: 0 });
    const at = a && b && emit('transpose', [a], { perm: [1, 0] });
    return at && b && emit('matmul', [at, b], {}, out);
  },
};

export function batchMatmulSums(g: Graph): Graph {
  return stackSums(g, MATMUL_TERMS);
}
