// Shared plumbing for the optimization passes: type equality, producer lookup and value substitution across a whole graph.
import type { Graph, LayerCall, Node, TensorType, Value } from '../ir/types.ts';
import { dimEquals } from '../shapes/dim.ts';

/** Same dtype and, size by size, the same shape (symbolic sizes compared by normal form). */
export function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => dimEquals(d, b.shape[i]));
}

/**
 * A substitution of values by values (`%7 := %3`), built up while a pass walks the nodes in order.
 * Passes only ever substitute a value by one of the same type, so every use stays well typed.
 */
export class Substitution {
  private readonly map = new Map<number, Value>();
  get size(): number {
    return this.map.size;
  }
  set(from: Value, to: Value): void {
    if (from.id !== to.id) this.map.set(from.id, to);
  }
  /** The value a use of `v` now refers to, following chains (`%9 := %7 := %3`). */
  apply(v: Value): Value {
    let cur = v;
    for (let r = this.map.get(cur.id); r !== undefined; r = this.map.get(cur.id)) cur = r;
    return cur;
  }
  /** The node with its inputs substituted; the same object when none changed. */
  node(n: Node): Node {
    const inputs = n.inputs.map((v) => this.apply(v));
    return inputs.every((v, i) => v === n.inputs[i]) ? n : { ...n, inputs };
  }
}

function remapMap(m: ReadonlyMap<string, Value>, s: Substitution): ReadonlyMap<string, Value> {
  return new Map([...m].map(([k, v]) => [k, s.apply(v)]));
}

/**
 * The graph with new nodes, and every other reference to a value (outputs, losses, metrics, state
 * updates, layer calls) passed through the substitution. Inputs, params and state stay: they are the interface.
 */
export function withNodes(g: Graph, nodes: readonly Node[], s: Substitution): Graph {
  const call = (c: LayerCall): LayerCall => ({ ...c, inputs: c.inputs.map((v) => s.apply(v)), outputs: c.outputs.map((v) => s.apply(v)) });
  return {
    ...g,
    nodes,
    outputs: remapMap(g.outputs, s),
    losses: remapMap(g.losses, s),
    metrics: remapMap(g.metrics, s),
    state: g.state.map((st) => (st.update ? { ...st, update: s.apply(st.update) } : st)),
    params: g.params.map((p) => (p.update ? { ...p, update: s.apply(p.update) } : p)),
    layerCalls: g.layerCalls.map(call),
  };
}

/** The node defining each node-produced value, by id. */
export function producers(nodes: readonly Node[]): Map<number, Node> {
  const m = new Map<number, Node>();
  for (const n of nodes) for (const o of n.outputs) m.set(o.id, n);
  return m;
}
