// `dlc summary`: a Keras-style table of a model's layers, their output shapes and parameter counts.
import { dimToString, isConcrete } from '../shapes/dim.ts';
import { typeText } from '../ir/print.ts';
import type { Graph, TensorType } from '../ir/types.ts';

function count(t: TensorType): number {
  return t.shape.reduce<number>((n, d) => n * (isConcrete(d) ? d : Number.NaN), 1);
}

function shapeOf(t: TensorType): string {
  return `[${t.shape.map(dimToString).join(', ')}]`;
}

export function summarize(g: Graph): string {
  const rows: [string, string, string][] = [];
  const seen = new Set<string>();
  const owned = (prefix: string) =>
    g.params.filter((p) => p.path === prefix || p.path.startsWith(`${prefix}.`)).reduce((n, p) => n + count(p.value.type), 0);
  for (const call of g.layerCalls.filter((c) => c.depth === 0)) {
    if (seen.has(call.path)) continue;
    seen.add(call.path);
    const out = call.outputs.map((v) => shapeOf(v.type)).join(', ') || '-';
    rows.push([`${call.path} (${call.layer})`, out, owned(call.path).toLocaleString('en-US')]);
  }
  // parameters the model declares itself, or of layers it never calls
  for (const p of g.params) {
    if ([...seen].some((s) => p.path === s || p.path.startsWith(`${s}.`))) continue;
    rows.push([`${p.path} (param)`, shapeOf(p.value.type), count(p.value.type).toLocaleString('en-US')]);
  }
  const total = g.params.reduce((n, p) => n + count(p.value.type), 0);
  // the random key dropout and noise draw from is the model's, not a layer's: named, not counted
  const stateCount = g.state.filter((s) => s.path !== 'rng.key').reduce((n, s) => n + count(s.value.type), 0);
  const randomKey = g.state.some((s) => s.path === 'rng.key');
  const header: [string, string, string] = ['Layer (type)', 'Output shape', 'Param #'];
  const widths = [0, 1, 2].map((i) => Math.max(header[i].length, ...rows.map((r) => r[i].length)));
  const line = (r: [string, string, string]) => `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padStart(widths[2])}`;
  const rule = '-'.repeat(widths[0] + widths[1] + widths[2] + 4);
  const inputs = g.inputs.map((i) => `${i.name}: ${typeText(i.value.type)}`).join(', ');
  return [
    `Model: ${g.name}`,
    `Inputs: ${inputs || '-'}`,
    rule,
    line(header),
    rule.replace(/-/g, '='),
    ...rows.map(line),
    rule,
    `Total params: ${total.toLocaleString('en-US')}`,
    `Non-trainable state: ${stateCount.toLocaleString('en-US')}${randomKey ? ' (and the random key rng.key)' : ''}`,
  ].join('\n');
}

/**
 * `dlc summary --weights`: the tensors a weights file for the model holds, as a state_dict listing:
 * each path, dtype and shape, and whether it is a parameter or the model's own state (batch norm's
 * running statistics). What loadWeights, init_from and --checkpoint match a file's names against.
 */
export function weightList(g: Graph): string {
  const rows: [string, string, string][] = [
    ...g.params.map((p): [string, string, string] => [p.path, typeText(p.value.type), 'param']),
    ...g.state.filter((x) => !x.path.startsWith('opt.') && x.path !== 'rng.key').map((x): [string, string, string] => [x.path, typeText(x.value.type), 'state']),
  ];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length), 0));
  return [`Model: ${g.name} (${rows.length} tensors)`, ...rows.map((r) => `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2]}`)].join('\n');
}
