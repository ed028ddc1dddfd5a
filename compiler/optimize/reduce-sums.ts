// Sums of reductions over the leading axis as one reduction over the terms stacked: Σ_t sum_A(x_t) = sum_A([x_1; …; x_n]) when A holds axis 0.
//
// A bias added at every step of an unrolled recurrence gets one gradient term per step, the step's
// cotangent summed over the batch, and autodiff adds them up: n reductions (an LSTM's forget-gate bias:
// a row kernel per step). Concatenating the steps' cotangents along axis 0 and reducing once gives the
// same sum. A term is reduce_sum(x_t) over axes that hold 0, every term over the same axes with the
// same keepdims and the same sizes past axis 0, in f32 (stack-sums.ts says which chains qualify).
//
// Where every x_t is the same slab of a concat c_t along an axis the sum keeps (the forget gate's
// cotangent is a quarter of the step's dz), the sum is that slab of Σ_t sum_A(c_t) instead: the c_t
// stacked, reduced, sliced. Then x_t keeps its one reader (so it is stored straight into c_t,
// concat-in-place.ts), and where the bias of the whole z sums the same c_t and a weight gradient
// stacks them (matmul-sums.ts), cse shares the concat and the reduction: the gate's bias gradient is a slice.
import type { Graph, Node, TensorType, Value } from '../ir/types.ts';
import { normAxis } from '../ops/util.ts';
import { reduceAxes } from '../ops/reduce.ts';
import { add, type Dim, dimEquals } from '../shapes/dim.ts';
import { stackSums, type Emit, type StackRule } from './stack-sums.ts';

/** A term sum_axes(x), and the concat x is a slab of (along `axis`, from `offset`), if any. */
interface Term {
  readonly x: Value;
  readonly axes: readonly number[];
  readonly keepdims: boolean;
  readonly slab?: { readonly concat: Value; readonly axis: number; readonly offset: Dim };
}

const pastFirstAxis = (a: TensorType, b: TensorType) => a.shape.length === b.shape.length && a.shape.every((d, i) => i === 0 || dimEquals(d, b.shape[i]));

/** Where x is an operand of a concat (its only reader but the reduction) along an axis other than 0 and the reduced ones. */
function slabOf(x: Value, readers: readonly Node[], axes: readonly number[]): Term['slab'] {
  const concats = readers.filter((r) => r.op === 'concat');
  if (concats.length !== 1 || readers.length !== 2) return undefined;
  const c = concats[0];
  const axis = normAxis(c.attrs.axis as number, x.type.shape.length);
  if (axis === null || axis === 0 || axes.includes(axis) || c.inputs.filter((v) => v.id === x.id).length !== 1) return undefined;
  let offset: Dim = 0;
  for (const v of c.inputs) {
    if (v.id === x.id) return { concat: c.outputs[0], axis, offset };
    offset = add(offset, v.type.shape[axis]);
  }
  return undefined;
}

/** The terms' sum as the sum of the same slab of their concats stacked, when every term is such a slab. */
function stackSlabs(terms: readonly Term[], emit: Emit, out: Value | undefined): Value | undefined {
  const { axis, offset } = terms[0].slab!;
  const whole = emit('concat', terms.map((t) => t.slab!.concat), { axis: 0 });
  if (!whole) return undefined;
  const size = terms[0].x.type.shape[axis];
  const starts = whole.type.shape.map((_, i) => (i === axis ? offset : 0));
  const stops = whole.type.shape.map((d, i) => (i === axis ? add(offset, size) : d));
  const slab = emit('slice', [whole], { starts, stops });
  return slab && emit('reduce_sum', [slab], { axes: [...terms[0].axes], keepdims: terms[0].keepdims }, out);
}

const REDUCE_TERMS: StackRule<Term> = {
  root: (v) => v.type.dtype === 'f32',
  termOf: (v, nodeOf, readOnce, readersOf) => {
    const n = nodeOf(v);
    if (!n || n.op !== 'reduce_sum' || n.inputs.length !== 1 || !readOnce(v)) return undefined;
    const x = n.inputs[0];
    const axes = reduceAxes(n.op, x.type, n.attrs);
    if (x.type.dtype !== 'f32' || !Array.isArray(axes) || axes[0] !== 0) return undefined;
    const slab = slabOf(x, readersOf(x), axes);
    return { x, axes, keepdims: n.attrs.keepdims === true, ...(slab ? { slab } : {}) };
  },
  fits: (first, t) => t.keepdims === first.keepdims && t.axes.length === first.axes.length && t.axes.every((a, i) => a === first.axes[i]) && pastFirstAxis(t.x.type, first.x.type),
  stack: (terms, emit, out) => {
    const f = terms[0].slab;
    const slabs = f !== undefined && terms.every((t) => t.slab && t.slab.axis === f.axis && dimEquals(t.slab.offset, f.offset) && pastFirstAxis(t.slab.concat.type, f.concat.type));
    if (slabs) return stackSlabs(terms, emit, out);
    const x = emit('concat', terms.map((t) => t.x), { axis: 0 });
    return x && emit('reduce_sum', [x], { axes: [...terms[0].axes], keepdims: terms[0].keepdims }, out);
  },
};

export function batchReduceSums(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === 'reduce_sum')) return g;
  return stackSums(g, REDUCE_TERMS);
}
