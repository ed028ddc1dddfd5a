// Which of a graph's inputs each of its results depends on, along the data edges of the graph before fusion (a fused kernel may read inputs that only some of its outputs depend on).
import type { Graph, Value } from './types.ts';
import { graphUses } from './uses.ts';

/** The inputs each result depends on: every output, loss and metric by name, and the parameter and state updates together. */
export interface InputDependencies {
  readonly outputs: Readonly<Record<string, readonly string[]>>;
  readonly updates: readonly string[];
}

/** The names of the inputs `values` depend on, in the graph's input order. */
export function inputsReaching(g: Graph, values: readonly Value[]): string[] {
  const { producer } = graphUses(g);
  const seen = new Set<number>();
  const stack = values.map((v) => v.id);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const k = producer.get(id);
    if (k !== undefined) for (const v of g.nodes[k].inputs) stack.push(v.id);
  }
  return g.inputs.filter((i) => seen.has(i.value.id)).map((i) => i.name);
}

export function inputDependencies(g: Graph): InputDependencies {
  const outputs: Record<string, readonly string[]> = {};
  for (const map of [g.outputs, g.losses, g.metrics]) for (const [name, v] of map) outputs[name] = inputsReaching(g, [v]);
  const updates = [...g.params, ...g.state].flatMap((x) => (x.update ? [x.update] : []));
  return { outputs, updates: inputsReaching(g, updates) };
}
