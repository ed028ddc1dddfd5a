// Kernels that depend on nothing but the sizes (a causal mask from arange, a zero state, padding zeros) run once per size binding, not every step.
//
// A kernel is *once* when it reads no graph input, parameter, state or arena buffer, only temporaries
// that once kernels alone write (so: none at all, like `iota` and `full`, or their results, like the
// mask `ge(iota, iota)`), and writes only temporaries of its own (not a view of an arena). Random ops
// read their seed from state, so they never are. Its results are the same at every run with the same
// sizes, so the runtime dispatches it when it prepares the graph for new sizes and skips it afterwards
// (runtime/executor.ts). The memory planner gives each temporary a once kernel touches a buffer of its
// own (codegen/memory.ts), so no other kernel overwrites a result that later steps still read.
import type { GraphProgram } from '../../runtime/program.ts';

/** The temporaries once kernels read or write, by buffer index: they keep their buffers across runs. */
export function onceTemps(g: GraphProgram): Set<number> {
  const out = new Set<number>();
  for (const k of g.kernels) if (k.once) for (const b of [...k.inputs, ...k.outputs]) out.add(b);
  return out;
}

/** The graph with its once kernels marked (`KernelDecl.once`). Pure. */
export function markOnceKernels(g: GraphProgram): GraphProgram {
  const writers = new Map<number, number[]>();
  g.kernels.forEach((k, n) => k.outputs.forEach((b) => writers.set(b, [...(writers.get(b) ?? []), n])));
  const isOwnTemp = (b: number) => {
    const d = g.buffers[b];
    return d?.kind === 'temp' && !d.view;
  };
  const once = new Set<number>();
  // kernels are in dependency order, so one pass sees every writer of an input before its reader
  g.kernels.forEach((k, n) => {
    if (!k.outputs.every(isOwnTemp)) return;
    const constantInputs = k.inputs.every((b) => isOwnTemp(b) && (writers.get(b) ?? []).length > 0 && writers.get(b)!.every((w) => w < n && once.has(w)));
    if (constantInputs) once.add(n);
  });
  // a once kernel's results must not be rewritten by a kernel that runs every step (nor its inputs, as that sheds more)
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of [...once]) {
      const k = g.kernels[n];
      if ([...k.inputs, ...k.outputs].some((b) => (writers.get(b) ?? []).some((w) => !once.has(w)))) {
        once.delete(n);
        changed = true;
      }
    }
  }
  if (once.size === 0) return g;
  return { ...g, kernels: g.kernels.map((k, n) => (once.has(n) ? { ...k, once: true } : k)) };
}
