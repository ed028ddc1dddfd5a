// Broadcast sinking: explicit broadcast_to nodes move below elementwise ops and reshapes, and vanish where an elementwise op's own broadcasting does the same.
//
// Autodiff makes these: the gradient of a sum or a mean is its cotangent broadcast back to the
// input's shape (the seed 1/B of a mean becomes a [B] tensor of copies), and the ops after it
// (a negation, a reshape back to [B, 1], a product with the one-hot rows) each kept a kernel of its
// own, since fusion does not see through a materialized broadcast. Each rule keeps the node's output
// value (its id and type), so the graph's results are untouched:
//
//   f(.., broadcast_to(x), ..)    -> f(.., x, ..)              an elementwise op's operands broadcast
//                                                              anyway, when the result type stays
//   f(broadcast_to(x, s), y)      -> broadcast_to(f(x, y), s)  otherwise the op computes on the smaller
//                                                              shape first (f(x, y) is a new node): a
//                                                              negated or scaled 1/B stays one element
//   reshape(broadcast_to(x), t)   -> broadcast_to(x, t)        x has one element (every element is x's)
//   broadcast_to(reshape(x), t)   -> broadcast_to(x, t)        x has one element
//   broadcast_to(broadcast_to(x), t) -> broadcast_to(x, t)     numpy broadcasts compose
//
// A broadcast_to that no longer has a reader is left for dce. Pure: the input graph is not changed.
import '../ops/index.ts';
import { getOp, inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { Substitution, sameType, withNodes } from './rewrite.ts';

/** Exactly one element: rank 0, or every size the constant 1. */
function single(t: TensorType): boolean {
  return t.shape.every((d) => d === 1);
}

function isElementwise(n: Node): boolean {
  return getOp(n.op)?.family === 'elementwise' && n.outputs.length === 1;
}

/** The type `op` gives on these operands, or undefined when its shape rule refuses them. */
function inferred(op: string, inputs: readonly Value[], attrs: Attrs): TensorType | undefined {
  const r = inferOp(op, inputs.map((v) => v.type), attrs);
  return isShapeError(r) || r.length !== 1 ? undefined : r[0];
}

export function sinkBroadcasts(g: Graph): Graph {
  let nextId = firstFreeId(g);
  const s = new Substitution();
  const defs = new Map<number, Node>();
  const broadcastOf = (v: Value): Node | undefined => {
    const p = defs.get(v.id);
    return p?.op === 'broadcast_to' ? p : undefined;
  };
  const nodes: Node[] = [];
  let changed = false;
  const emit = (n: Node) => {
    for (const o of n.outputs) defs.set(o.id, n);
    nodes.push(n);
  };
  const broadcastTo = (n: Node, x: Value): Node | undefined => {
    const attrs = { shape: [...n.outputs[0].type.shape] };
    const t = inferred('broadcast_to', [x], attrs);
    return t && sameType(t, n.outputs[0].type) ? { op: 'broadcast_to', inputs: [x], attrs, outputs: n.outputs, span: n.span } : undefined;
  };

  for (const original of g.nodes) {
    let n = s.node(original);
    if (n !== original) changed = true;
    const out = n.outputs[0];
    if (isElementwise(n) && n.inputs.some((v) => broadcastOf(v))) {
      // the op on the unbroadcast operands; when that is smaller than the result, broadcast after it
      const inputs = n.inputs.map((v) => broadcastOf(v)?.inputs[0] ?? v);
      const t = inferred(n.op, inputs, n.attrs);
      if (t && sameType(t, out.type)) {
        n = { ...n, inputs };
        changed = true;
      } else if (t && t.dtype === out.type.dtype) {
        const inner: Node = { op: n.op, inputs, attrs: n.attrs, outputs: [{ id: nextId++, type: t }], span: n.span };
        const outer = broadcastTo(n, inner.outputs[0]);
        if (outer) {
          emit(inner);
          n = outer;
          changed = true;
        }
      }
    } else if (n.op === 'reshape' || n.op === 'broadcast_to') {
      const p = defs.get(n.inputs[0].id);
      const x = p?.inputs[0];
      const rewritable =
        x !== undefined &&
        ((n.op === 'reshape' && p!.op === 'broadcast_to' && single(x.type)) ||
          (n.op === 'broadcast_to' && p!.op === 'reshape' && single(x.type)) ||
          (n.op === 'broadcast_to' && p!.op === 'broadcast_to'));
      const outer = rewritable ? broadcastTo(n, x) : undefined;
      if (outer) {
        n = outer;
        changed = true;
      }
    }
    emit(n);
  }
  return changed ? withNodes(g, nodes, s) : g;
}
