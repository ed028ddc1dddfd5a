// Who defines and who reads each value of a graph, and which values the graph hands out as results.
import type { Graph, LayerCall } from './types.ts';

export interface GraphUses {
  /** Value id -> the index of the node that defines it (graph inputs, parameters and state have none). */
  readonly producer: ReadonlyMap<number, number>;
  /** Value id -> the indices of the nodes that read it, in order, each once. */
  readonly consumers: ReadonlyMap<number, readonly number[]>;
  /** The ids of the values the graph returns: outputs, losses, metrics, parameter and state updates. */
  readonly results: ReadonlySet<number>;
  /** The ids of the parameters' and state's new values (a subset of `results`). */
  readonly updates: ReadonlySet<number>;
}

/** Graphs are never changed once built (every pass returns a new one), so each graph's uses are computed once. */
const cache = new WeakMap<Graph, GraphUses>();

export function graphUses(g: Graph): GraphUses {
  let uses = cache.get(g);
  if (!uses) cache.set(g, (uses = computeUses(g)));
  return uses;
}

function computeUses(g: Graph): GraphUses {
  const producer = new Map<number, number>();
  g.nodes.forEach((n, k) => n.outputs.forEach((v) => producer.set(v.id, k)));
  const consumers = new Map<number, number[]>();
  g.nodes.forEach((n, k) => {
    for (const v of n.inputs) {
      const list = consumers.get(v.id) ?? [];
      if (list[list.length - 1] !== k) list.push(k);
      consumers.set(v.id, list);
    }
  });
  const updates = new Set<number>([...g.params, ...g.state].flatMap((x) => (x.update ? [x.update.id] : [])));
  const results = new Set<number>([...[...g.outputs.values(), ...g.losses.values(), ...g.metrics.values()].map((v) => v.id), ...updates]);
  return { producer, consumers, results, updates };
}

/** The layer calls with the values `gone` says a rewrite removed left out, and calls that keep no output dropped. */
export function layerCallsWithout(calls: readonly LayerCall[], gone: (id: number) => boolean): LayerCall[] {
  return calls.flatMap((c) => {
    const outputs = c.outputs.filter((v) => !gone(v.id));
    return outputs.length === 0 ? [] : [{ ...c, inputs: c.inputs.filter((v) => !gone(v.id)), outputs }];
  });
}
