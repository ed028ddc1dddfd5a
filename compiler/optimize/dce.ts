// Dead-code elimination: keep only the nodes that outputs, losses, metrics, parameter and state updates or extra roots depend on.
import type { Graph, LayerCall, Node, Value } from '../ir/types.ts';

/**
 * `dce` with extra roots: value ids the caller keeps alive besides the graph's own results (gradients
 * it reads out, say). Inputs, params and state are never removed, used or not: they are the interface.
 * Layer calls keep only their references to values that still exist, and a call none of whose outputs
 * survives is dropped (summaries describe what runs).
 */
export function dceKeeping(g: Graph, roots: Iterable<number>): Graph {
  const live = new Set<number>(roots);
  const mark = (v: Value) => live.add(v.id);
  [...g.outputs.values(), ...g.losses.values(), ...g.metrics.values()].forEach(mark);
  for (const s of g.state) if (s.update) mark(s.update);
  for (const p of g.params) if (p.update) mark(p.update);
  const kept: Node[] = [];
  // Every op is pure (random ops are counter-based), so a node is needed only through its outputs.
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k];
    if (!n.outputs.some((o) => live.has(o.id))) continue;
    kept.push(n);
    n.inputs.forEach(mark);
  }
  if (kept.length === g.nodes.length) return g;
  kept.reverse();
  const defined = new Set<number>([...g.inputs, ...g.params, ...g.state].map((x) => x.value.id));
  for (const n of kept) for (const o of n.outputs) defined.add(o.id);
  const calls: LayerCall[] = [];
  for (const c of g.layerCalls) {
    const outputs = c.outputs.filter((v) => defined.has(v.id));
    if (outputs.length > 0) calls.push({ ...c, inputs: c.inputs.filter((v) => defined.has(v.id)), outputs });
  }
  return { ...g, nodes: kept, layerCalls: calls };
}

export function dce(g: Graph): Graph {
  return dceKeeping(g, []);
}
