// Checks compile-time gradients against central finite differences along seeded random directions, in float64.
import { interpretGraph, type Feeds } from '../interpret/interpret.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { GraphEditor } from '../ir/editor.ts';
import type { Graph, Value } from '../ir/types.ts';
import { addGradients } from './grad.ts';

export interface GradcheckRow {
  /** The parameter path or input name. */
  readonly name: string;
  /** <gradient, direction> from the backward graph. */
  readonly analytic: number;
  /** (L(x + h d) - L(x - h d)) / 2h. */
  readonly numeric: number;
  /** |analytic - numeric| / max(|analytic|, |numeric|, 10^4 times the finite difference's rounding noise, 1e-12). */
  readonly relError: number;
  readonly absError: number;
}

export interface GradcheckOptions {
  readonly loss?: string;
  /** Parameter paths and float input names to check; default every parameter. */
  readonly wrt?: readonly string[];
  readonly sizes?: ReadonlyMap<string, number>;
  readonly seed?: number;
  readonly step?: number;
}

/** A seeded standard-normal stream (mulberry32 + Box-Muller) for directions. */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

export function gradcheck(graph: Graph, feeds: Feeds, options: GradcheckOptions = {}): GradcheckRow[] {
  const lossName = options.loss ?? [...graph.losses.keys()][0];
  const loss = graph.losses.get(lossName);
  if (!loss) throw new Error(`the graph has no loss \`${lossName}\``);
  const targets: { name: string; value: Value; feed: 'params' | 'inputs' }[] = [];
  const wanted = options.wrt ? new Set(options.wrt) : undefined;
  for (const p of graph.params) if (!wanted || wanted.has(p.path)) targets.push({ name: p.path, value: p.value, feed: 'params' });
  for (const i of graph.inputs) {
    if (wanted?.has(i.name) && (i.value.type.dtype === 'f32' || i.value.type.dtype === 'f16')) targets.push({ name: i.name, value: i.value, feed: 'inputs' });
  }

  const editor = new GraphEditor(graph);
  const grads = addGradients(editor, loss, targets.map((t) => t.value));
  targets.forEach((t) => editor.outputs.set(`\u0000grad:${t.name}`, grads.get(t.value.id)!));
  const withGrads = editor.finish();
  const env = { sizes: options.sizes };
  const analytic = interpretGraph(withGrads, feeds, env).outputs;

  const h = options.step ?? 1e-6;
  const random = normals(options.seed ?? 1);
  // what stop_gradient stops is held at its value: the finite differences move only what the gradient
  // flows through (a REINFORCE advantage, a target network), as the analytic gradient does
  const base = interpretGraph(graph, feeds, env).values;
  const pinned = new Map(graph.nodes.flatMap((n) => (n.op === 'stop_gradient' ? n.outputs.map((o): [number, Tensor] => [o.id, base.get(o.id)!]) : [])));
  const lossAt = (name: string, feed: 'params' | 'inputs', shifted: Tensor): number => {
    const next: Feeds = { ...feeds, [feed]: new Map(feeds[feed]).set(name, shifted) };
    return interpretGraph(graph, next, { ...env, pinned }).losses.get(lossName)!.data[0];
  };
  return targets.map((t) => {
    const x = feeds[t.feed].get(t.name)!;
    const d = x.data.map(() => random());
    const g = analytic.get(`\u0000grad:${t.name}`)!;
    let a = 0;
    for (let i = 0; i < d.length; i++) a += g.data[i] * d[i];
    const shift = (sign: number): Tensor => ({ ...x, data: x.data.map((v, i) => v + sign * h * d[i]) });
    const up = lossAt(t.name, t.feed, shift(1));
    const down = lossAt(t.name, t.feed, shift(-1));
    const n = (up - down) / (2 * h);
    const absError = Math.abs(a - n);
    // the difference of two float64 losses carries rounding of a few ulps of the loss: a gradient within
    // 10^4 times that noise is measured against it, so a true 0 measured as 1e-11 is no error
    const noise = (16 * Number.EPSILON * (Math.abs(up) + Math.abs(down))) / (2 * h);
    return { name: t.name, analytic: a, numeric: n, absError, relError: absError / Math.max(Math.abs(a), Math.abs(n), 1e4 * noise, 1e-12) };
  });
}
