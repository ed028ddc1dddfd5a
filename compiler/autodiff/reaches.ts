// Whether a loss depends on parameters through differentiable operations: a path autodiff can take (not argmax, a comparison, an integer cast, stop_gradient).
import '../ops/index.ts';
import { getOp } from '../ops/registry.ts';
import type { Graph } from '../ir/types.ts';

const floating = (dtype: string) => dtype === 'f32' || dtype === 'f16';

/** The parameter paths of `params` whose value reaches `target` (a value id) along a path a gradient flows back through (with `anyPath`, along any path). */
export function paramsWithGradient(graph: Graph, params: readonly string[], target: number, options: { readonly anyPath?: boolean } = {}): string[] {
  const reached: string[] = [];
  for (const path of params) {
    const p = graph.params.find((q) => q.path === path);
    if (!p) continue;
    const live = new Set<number>([p.value.id]);
    for (const n of graph.nodes) {
      const def = getOp(n.op);
      if (options.anyPath) {
        if (n.inputs.some((v) => live.has(v.id))) for (const o of n.outputs) live.add(o.id);
        continue;
      }
      if (!def || def.differentiable === 'none') continue;
      const flows = n.inputs.some((v, i) => live.has(v.id) && floating(v.type.dtype) && (def.differentiable === 'all' || (def.differentiable as readonly boolean[])[i]));
      if (flows) for (const o of n.outputs) if (floating(o.type.dtype)) live.add(o.id);
    }
    if (live.has(target)) reached.push(path);
  }
  return reached;
}
