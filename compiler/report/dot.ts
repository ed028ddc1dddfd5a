// `dlc graph --dot`: Graphviz of a model's layer structure, with the tensor shapes on the edges.
import { typeText } from '../ir/print.ts';
import type { Graph, Value } from '../ir/types.ts';

/** Top-level layer calls and graph inputs as nodes; an edge wherever a value flows from one to the next. */
export function toDot(g: Graph): string {
  const producer = new Map<number, Graph['nodes'][number]>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o.id, n);
  const calls = g.layerCalls.filter((c) => c.depth === 0);
  const source = new Map<number, string>();
  const sourceValue = new Map<string, Value>();
  g.inputs.forEach((i) => {
    source.set(i.value.id, `input_${i.name}`);
    sourceValue.set(`input_${i.name}`, i.value);
  });
  calls.forEach((c, k) =>
    c.outputs.forEach((o) => {
      source.set(o.id, `call_${k}`);
      if (!sourceValue.has(`call_${k}`)) sourceValue.set(`call_${k}`, o);
    }),
  );
  const params = new Set([...g.params, ...g.state].map((p) => p.value.id));

  // the layer calls or inputs a value was computed from, looking through the primitives in between
  const memo = new Map<number, Set<string>>();
  const sources = (v: Value): Set<string> => {
    const known = memo.get(v.id);
    if (known) return known;
    const result = new Set<string>();
    memo.set(v.id, result);
    const direct = source.get(v.id);
    if (direct) result.add(direct);
    else if (!params.has(v.id)) {
      const stack = [v];
      const visited = new Set<number>();
      while (stack.length > 0) {
        const cur = stack.pop()!;
        if (visited.has(cur.id)) continue;
        visited.add(cur.id);
        const s = source.get(cur.id);
        if (s && cur.id !== v.id) {
          result.add(s);
          continue;
        }
        const n = producer.get(cur.id);
        if (n) stack.push(...n.inputs);
      }
    }
    return result;
  };

  const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  const lines = [`digraph ${quote(g.name)} {`, '  rankdir=TB;', '  node [shape=box, fontname="Helvetica"];'];
  for (const i of g.inputs) lines.push(`  ${quote(`input_${i.name}`)} [label=${quote(`${i.name}\n${typeText(i.value.type)}`)}, shape=ellipse];`);
  calls.forEach((c, k) => lines.push(`  ${quote(`call_${k}`)} [label=${quote(`${c.path}\n${c.layer}`)}];`));
  const edges = new Set<string>();
  const edge = (from: string, to: string, v: Value) => {
    const e = `  ${quote(from)} -> ${quote(to)} [label=${quote(typeText(v.type))}];`;
    if (!edges.has(e)) edges.add(e), lines.push(e);
  };
  calls.forEach((c, k) => {
    for (const v of c.inputs) for (const s of sources(v)) edge(s, `call_${k}`, v);
  });
  const sinks: [string, string, Value][] = [
    ...[...g.outputs].map(([n, v]) => [`output_${n}`, `output ${n}`, v] as [string, string, Value]),
    ...[...g.losses].map(([n, v]) => [`loss_${n}`, `loss ${n}`, v] as [string, string, Value]),
    ...[...g.metrics].map(([n, v]) => [`metric_${n}`, `metric ${n}`, v] as [string, string, Value]),
  ];
  for (const [id, label, v] of sinks) {
    lines.push(`  ${quote(id)} [label=${quote(`${label}\n${typeText(v.type)}`)}, shape=ellipse];`);
    // what flows into an output is what its sources produced
    for (const s of sources(v)) edge(s, id, sourceValue.get(s) ?? v);
  }
  lines.push('}');
  return lines.join('\n');
}
