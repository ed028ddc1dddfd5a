// A stable text form of a graph, in the spirit of a jaxpr: one equation per line, values named %id.
import { dimToString, isDim } from '../shapes/dim.ts';
import type { AttrValue, Graph, TensorType, Value } from './types.ts';

export function typeText(t: TensorType): string {
  return `${t.dtype}[${t.shape.map(dimToString).join(', ')}]`;
}

function valueText(v: Value): string {
  return `%${v.id}`;
}

function attrText(a: AttrValue): string {
  if (a === null) return 'none';
  if (Array.isArray(a)) return `[${a.map(attrText).join(', ')}]`;
  if (typeof a === 'object' && isDim(a)) return dimToString(a);
  if (typeof a === 'string') return JSON.stringify(a);
  return String(a);
}

export function printGraph(g: Graph): string {
  const lines: string[] = [`graph ${g.name} {`];
  for (const i of g.inputs) lines.push(`  input  ${valueText(i.value)}: ${typeText(i.value.type)}  // ${i.name}`);
  for (const p of g.params) lines.push(`  param  ${valueText(p.value)}: ${typeText(p.value.type)} = ${p.init.kind}  // ${p.path}`);
  for (const s of g.state) lines.push(`  state  ${valueText(s.value)}: ${typeText(s.value.type)} = ${s.init.kind}  // ${s.path}`);
  for (const n of g.nodes) {
    const attrs = Object.entries(n.attrs);
    const attrPart = attrs.length ? `[${attrs.map(([k, v]) => `${k}=${attrText(v)}`).join(', ')}]` : '';
    const outs = n.outputs.map((o) => `${valueText(o)}: ${typeText(o.type)}`).join(', ');
    lines.push(`  ${outs} = ${n.op}${attrPart}(${n.inputs.map(valueText).join(', ')})`);
  }
  for (const [name, v] of g.outputs) lines.push(`  output ${name} = ${valueText(v)}`);
  for (const [name, v] of g.losses) lines.push(`  loss   ${name} = ${valueText(v)}`);
  for (const [name, v] of g.metrics) lines.push(`  metric ${name} = ${valueText(v)}`);
  for (const p of g.params) if (p.update) lines.push(`  update ${p.path} = ${valueText(p.update)}`);
  for (const s of g.state) if (s.update) lines.push(`  update ${s.path} = ${valueText(s.update)}`);
  lines.push('}');
  return lines.join('\n');
}
