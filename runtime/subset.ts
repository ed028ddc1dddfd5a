// The part of a graph that some of its outputs need: `predict(inputs, { outputs })` runs only those kernels and asks only for the inputs those outputs depend on.
import { viewBase } from './memory.ts';
import type { BufferDecl, GraphProgram, ModelProgram, SizeExpr } from './program.ts';
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
 * The inputs it asks for are those the outputs (and the updates) depend on in the dataflow graph
 * (`g.dependencies`, see `dataflowInputs`): a fused kernel that computes an asked-for output may also
 * read an input only another output depends on, and that input becomes an unwritten temporary.
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
  const asked = dataflowNeeds(g, outputs);
  const inputs = Object.fromEntries(Object.entries(g.inputs).filter(([name, i]) => used.has(i) && asked.has(name)));
  if (kept.every(Boolean) && Object.keys(inputs).length === Object.keys(g.inputs).length && outputs.length === Object.keys(g.outputs).length) return g;
  // the buffers it uses, renumbered in their order
  const order = g.buffers.map((_, i) => i).filter((i) => used.has(i));
  const at = new Map(order.map((i, j) => [i, j]));
  const to = (i: number) => at.get(i)!;
  const buffers = order.map((i): BufferDecl => {
    const b = g.buffers[i];
    if (b.kind === 'input' && !asked.has(b.name)) return unwrittenInput(b);
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
    ...(g.dependencies ? { dependencies: { outputs: Object.fromEntries(outputs.map((o) => [o, g.dependencies!.outputs[o] ?? []])), updates: g.dependencies.updates } } : {}),
    name: `${g.name}[${outputs.join(',')}]`,
    buffers,
    kernels,
    inputs: Object.fromEntries(Object.entries(inputs).map(([name, i]) => [name, to(i)])),
    outputs: Object.fromEntries(outputs.map((o) => [o, to(g.outputs[o])])),
    updates: g.updates.map((u) => ({ target: to(u.target), source: to(u.source) })),
    constraints,
  };
}

/**
 * The inputs `outputs` and the graph's updates depend on in the dataflow graph (every input, where the
 * program does not say: compiled before `dependencies`).
 */
function dataflowNeeds(g: GraphProgram, outputs: readonly string[]): Set<string> {
  const d = g.dependencies;
  if (!d) return new Set(Object.keys(g.inputs));
  return new Set([...outputs.flatMap((o) => d.outputs[o] ?? Object.keys(g.inputs)), ...d.updates]);
}

/**
 * An input a kept kernel reads but no asked-for result depends on (a fused kernel computing another
 * output from it too): a temporary of its shape that nothing writes. WebGPU zeroes new buffers, and
 * whatever it holds reaches none of the results asked for.
 */
function unwrittenInput(b: Extract<BufferDecl, { kind: 'input' }>): BufferDecl {
  return { kind: 'temp', dtype: b.dtype, shape: b.shape, name: `${b.name} (not needed)` };
}

/**
 * The graph asking only for the inputs `results` (by default all its outputs) and its updates depend on
 * in the dataflow graph (a training step: those its losses, metrics and updates read; an acting-only
 * input such as a DQN's `epsilon` is not asked for). Inputs
 * read by a fused kernel for results of no interest become unwritten temporaries; the buffers keep
 * their numbers and the graph its name. Returns `g` itself when every input is needed.
 */
export function dataflowInputs(g: GraphProgram, results: readonly string[] = Object.keys(g.outputs)): GraphProgram {
  const asked = dataflowNeeds(g, results);
  const unasked = Object.keys(g.inputs).filter((name) => !asked.has(name));
  if (unasked.length === 0) return g;
  return {
    ...g,
    buffers: g.buffers.map((b) => (b.kind === 'input' && !asked.has(b.name) ? unwrittenInput(b) : b)),
    inputs: Object.fromEntries(Object.entries(g.inputs).filter(([name]) => asked.has(name))),
  };
}

/**
 * What a training step or `evaluate` reads back, whose inputs it asks for: everything but the declared
 * outputs that are not scalars (the graphs compute the model's outputs too, but report only scalars).
 */
export function reportedResults(program: ModelProgram, g: GraphProgram): string[] {
  const tensors = new Set(program.outputs.filter((o) => !o.shape.every((d) => d === 1)).map((o) => o.name));
  return Object.keys(g.outputs).filter((name) => !tensors.has(name));
}
