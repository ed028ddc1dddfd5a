// Who defines and who reads each value of a graph, and which values the graph hands out as results.
import type { Graph } from './types.ts';

export interface GraphUses {
  /** Value id -> the index of the node that defines it (graph inputs, parameters and state have none). */
  readonly producer: ReadonlyMap<number, number>;
  /** Value id -> the indices of the nodes that read it, in order, each once. */
  readonly consumers: ReadonlyMap<number, readonly number[]>;
  /** The ids of the values the graph returns: outputs, losses, metrics, parameter and state updates. */
  readonly results: ReadonlySet<number>;
}

export function graphUses(g: Graph): GraphUses {
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
  const results = new Set<number>([...g.outputs.values(), ...g.losses.values(), ...g.metrics.values()].map((v) => v.id));
  for (const x of [...g.params, ...g.state]) if (x.update) results.add(x.update.id);
  return { producer, consumers, results };
}
