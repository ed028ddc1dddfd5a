// The IR verifier: SSA (each value defined once, before use), arity, attributes and types re-inferred by the registry.
import '../ops/index.ts';
import { getOp, inferOp, isShapeError } from '../ops/registry.ts';
import { dimEquals } from '../shapes/dim.ts';
import { typeText } from './print.ts';
import type { Graph, TensorType } from './types.ts';

function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => dimEquals(d, b.shape[i]));
}

/** Every problem found, as plain messages; an empty list means the graph is well formed. */
export function verifyGraph(g: Graph): string[] {
  const problems: string[] = [];
  const defined = new Map<number, TensorType>();
  const define = (id: number, type: TensorType, where: string) => {
    if (defined.has(id)) problems.push(`%${id} is defined twice (${where})`);
    defined.set(id, type);
  };
  for (const i of g.inputs) define(i.value.id, i.value.type, `input ${i.name}`);
  for (const p of g.params) define(p.value.id, p.value.type, `param ${p.path}`);
  for (const s of g.state) define(s.value.id, s.value.type, `state ${s.path}`);
  g.nodes.forEach((n, k) => {
    const where = `node ${k} (${n.op})`;
    const def = getOp(n.op);
    if (!def) {
      problems.push(`${where}: unknown op`);
      return;
    }
    for (const v of n.inputs) {
      const t = defined.get(v.id);
      if (!t) problems.push(`${where}: %${v.id} is used before it is defined`);
      else if (!sameType(t, v.type)) problems.push(`${where}: %${v.id} is used as ${typeText(v.type)} but defined as ${typeText(t)}`);
    }
    const inferred = inferOp(n.op, n.inputs.map((v) => v.type), n.attrs);
    if (isShapeError(inferred)) problems.push(`${where}: ${inferred.message}`);
    else if (inferred.length !== n.outputs.length) problems.push(`${where}: ${n.outputs.length} outputs, the rule gives ${inferred.length}`);
    else inferred.forEach((t, i) => {
      if (!sameType(t, n.outputs[i].type)) problems.push(`${where}: output ${i} is ${typeText(n.outputs[i].type)}, the rule gives ${typeText(t)}`);
    });
    n.outputs.forEach((o) => define(o.id, o.type, where));
  });
  const used = (what: string, id: number) => {
    if (!defined.has(id)) problems.push(`${what} refers to undefined %${id}`);
  };
  for (const [name, v] of g.outputs) used(`output ${name}`, v.id);
  for (const [name, v] of g.losses) used(`loss ${name}`, v.id);
  for (const [name, v] of g.metrics) used(`metric ${name}`, v.id);
  for (const s of g.state) if (s.update) used(`the update of ${s.path}`, s.update.id);
  for (const p of g.params) if (p.update) used(`the update of ${p.path}`, p.update.id);
  return problems;
}
