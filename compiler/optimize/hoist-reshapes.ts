// Unit-axis reshapes hoisted above the elementwise chains they read: reshape(f(a, b), t) = f(reshape(a, t), reshape(b, t)), so a per-channel chain broadcasts into the kernel that reads it.
//
// Evaluation folds a batch norm into a scale and a shift per channel: gamma * rsqrt(var + eps), a [C]
// chain over a parameter and a running statistic, reshaped to [1, C, 1, 1] for the convolution's
// epilogue. Fusion stops at a reshape (it is no elementwise op), so the chain was a kernel of its own at
// every batch norm of every predict. With the reshape moved to the chain's leaves the chain computes on
// [1, C, 1, 1], and fusion recomputes it in the kernel that reads it (a broadcast chain whose every use
// is inside the group, optimize/fuse.ts). A reshape moves up through f when
//   - it only inserts or removes axes of size 1 (its operand's other sizes are its result's, in order);
//   - f is an elementwise primitive (one result, no f16) whose result this reshape alone reads, and is
//     not a graph result (so nothing is computed twice);
//   - each operand of f has one element (a constant: it broadcasts to either shape), or has f's result
//     shape and is a parameter, state or input (reshaped too) or such a chain itself (moved the same
//     way): the chain computes on the model's own tensors, never on a kernel's result, whose kernel
//     would then have to compute a broadcast shape it cannot share (a training step's batch statistics).
// The values are the same elements in the same order, so the bits are the same. The reshape's result
// keeps its id; the old chain is left to dce. Pure.
import '../ops/index.ts';
import { getOp, inferOp, isShapeError } from '../ops/registry.ts';
import type { Dim } from '../shapes/dim.ts';
import { dimEquals, isConcrete } from '../shapes/dim.ts';
import type { Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { graphUses } from '../ir/uses.ts';
import { sameType } from './rewrite.ts';
import { sameShape } from '../ops/util.ts';

const isUnit = (d: Dim) => isConcrete(d) && d === 1;

/** Whether reshaping `from` to `to` only inserts or removes axes of size 1. */
function unitAxesOnly(from: readonly Dim[], to: readonly Dim[]): boolean {
  const a = from.filter((d) => !isUnit(d));
  const b = to.filter((d) => !isUnit(d));
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]));
}

/** A one-element operand, which broadcasts to the chain's shape either way (a constant): it is not reshaped. */
const single = (t: TensorType, to: readonly Dim[]) => t.shape.every(isUnit) && t.shape.length <= to.length;

function elementwise(n: Node): boolean {
  const def = getOp(n.op);
  return !!def && def.family === 'elementwise' && n.outputs.length === 1 && [...n.inputs, ...n.outputs].every((v) => v.type.dtype !== 'f16');
}

export function hoistReshapes(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === 'reshape')) return g;
  const { producer, consumers, results } = graphUses(g);
  const readOnlyBy = (v: Value, k: number) => !results.has(v.id) && (consumers.get(v.id) ?? []).every((c) => c === k) && (consumers.get(v.id) ?? []).length > 0;
  /** The elementwise node that defines `v` for reader `k` alone, when its chain may move below a reshape to `to`. */
  const movable = (v: Value, k: number, to: readonly Dim[]): number | undefined => {
    const p = producer.get(v.id);
    if (p === undefined || !elementwise(g.nodes[p]) || !readOnlyBy(v, k) || !unitAxesOnly(v.type.shape, to)) return undefined;
    const n = g.nodes[p];
    // an operand of the result's shape is a parameter, state or input, or such a chain itself
    const leaf = (a: Value) => !producer.has(a.id) || movable(a, p, to) !== undefined;
    const moves = (a: Value) => sameShape(a.type.shape, v.type.shape) && !single(a.type, to);
    if (!n.inputs.every((a) => (moves(a) && leaf(a)) || single(a.type, to))) return undefined;
    // the op's own shape rule agrees: the same result, reshaped
    const types = inferOp(n.op, n.inputs.map((a) => (moves(a) ? { dtype: a.type.dtype, shape: [...to] } : a.type)), n.attrs);
    return !isShapeError(types) && types.length === 1 && sameType(types[0], { dtype: v.type.dtype, shape: [...to] }) ? p : undefined;
  };

  let nextId = firstFreeId(g);
  const nodes: Node[] = [];
  let changed = false;
  /** `v` reshaped to `to`, as a value: the chain that defines it recomputed at `to` where it may move, else a reshape of it. */
  const reshaped = (v: Value, reader: number, to: readonly Dim[], out?: Value): Value => {
    const p = movable(v, reader, to);
    const type: TensorType = { dtype: v.type.dtype, shape: [...to] };
    const result = out ?? { id: nextId++, type };
    if (p === undefined) {
      nodes.push({ op: 'reshape', inputs: [v], attrs: { shape: [...to] }, outputs: [result], span: g.nodes[reader]?.span ?? g.nodes[0].span });
      return result;
    }
    const f = g.nodes[p];
    const inputs = f.inputs.map((a) => (single(a.type, to) ? a : reshaped(a, p, to)));
    const types = inferOp(f.op, inputs.map((a) => a.type), f.attrs);
    if (isShapeError(types) || !sameType(types[0], type)) throw new Error(`internal: hoisting a reshape through ${f.op} changed its type`);
    nodes.push({ ...f, inputs, outputs: [result] });
    return result;
  };
  g.nodes.forEach((n, k) => {
    const [x] = n.inputs;
    if (n.op !== 'reshape' || n.outputs.length !== 1 || x === undefined || movable(x, k, n.outputs[0].type.shape) === undefined) {
      nodes.push(n);
      return;
    }
    reshaped(x, k, n.outputs[0].type.shape, n.outputs[0]);
    changed = true;
  });
  return changed ? { ...g, nodes } : g;
}
