// The part of the predict graph that some of its outputs need: `predict(inputs, { outputs })` runs only those kernels and reads only their inputs.
import { viewBase } from './memory.ts';
import type { BufferDecl, GraphProgram, SizeExpr } from './program.ts';
import { sizeNames } from './sizes.ts';

/**
 * The kernels that compute `outputs` (names of `g.outputs`), found backward from the outputs'
 * buffers: a kernel is needed when it writes a needed buffer (a view counts as its temporary arena),
 * and then every buffer it reads is needed. Kernels that write the model's state (a draw advancing the
 * random key) and the sources of the graph's updates are kept whatever is asked. A `once` kernel is
 * like any other: kept only where a kept kernel reads what it writes (it reads no input, so skipping
 * it changes nothing else). The result is a graph of its own (named `predict[a,b]`, so the executor
 * keeps its buffers apart) without the inputs, outputs, buffers, kernels and size conditions it no
 * longer uses (its buffers renumbered, memory slots as they were). Skipping kernels keeps the memory plan sound: a kept kernel reads only what kept
 * kernels wrote, and a slot's tensors are live at no more places than before.
 * Returns `g` itself when every kernel is needed and every input read.
 */
export function outputSubset(g: GraphProgram, outputs: readonly string[]): GraphProgram {
  const needed = new Set<number>();
  const need = (i: number) => {
    needed.add(i);
    needed.add(viewBase(g, i));
  };
  for (const name of outputs) need(g.outputs[name]);
  for (const u of g.updates) {
    need(u.source);
    need(u.target);
  }
  const isModelState = (i: number) => g.buffers[i].kind === 'state';
  const kept = new Array<boolean>(g.kernels.length).fill(false);
  for (let n = g.kernels.length - 1; n >= 0; n--) {
    const k = g.kernels[n];
    if (!k.outputs.some((i) => needed.has(i) || needed.has(viewBase(g, i)) || isModelState(i))) continue;
    kept[n] = true;
    for (const i of [...k.inputs, ...k.outputs]) need(i);
  }
  // a kernel may write a buffer an earlier one wrote too (an arena filled by parts): the backward
  // pass above marks the later writer's outputs needed, so the earlier writer is kept as well
  const used = new Set<number>(needed);
  g.kernels.forEach((k, n) => {
    if (kept[n]) for (const i of [...k.inputs, ...k.outputs]) used.add(i);
  });
  for (const i of [...used]) used.add(viewBase(g, i));
  const inputs = Object.fromEntries(Object.entries(g.inputs).filter(([, i]) => used.has(i)));
  if (kept.every(Boolean) && Object.keys(inputs).length === Object.keys(g.inputs).length && outputs.length === Object.keys(g.outputs).length) return g;
  // the buffers it uses, renumbered in their order
  const order = g.buffers.map((_, i) => i).filter((i) => used.has(i));
  const at = new Map(order.map((i, j) => [i, j]));
  const to = (i: number) => at.get(i)!;
  const buffers = order.map((i): BufferDecl => {
    const b = g.buffers[i];
    return b.kind === 'temp' && b.view ? { ...b, view: { ...b.view, buffer: to(b.view.buffer) } } : b;
  });
  const kernels = g.kernels.filter((_, n) => kept[n]).map((k) => ({ ...k, inputs: k.inputs.map(to), outputs: k.outputs.map(to) }));
  // the size conditions on sizes the kept part still has (a condition on a skipped input's size goes)
  const names = new Set<string>();
  const add = (e: SizeExpr) => sizeNames(e, names);
  for (const b of buffers) if (b.kind === 'input' || b.kind === 'temp') b.shape.forEach(add);
  for (const k of kernels) [...k.uniforms, k.workgroups].forEach(add);
  const constraints = g.constraints.filter((c) => [...sizeNames(c.left), ...sizeNames(c.right)].every((n) => names.has(n)));
  return {
    ...g,
    name: `${g.name}[${outputs.join(',')}]`,
    buffers,
    kernels,
    inputs: Object.fromEntries(Object.entries(inputs).map(([name, i]) => [name, to(i)])),
    outputs: Object.fromEntries(outputs.map((o) => [o, to(g.outputs[o])])),
    updates: g.updates.map((u) => ({ target: to(u.target), source: to(u.source) })),
    constraints,
  };
}
