// The layers `freeze_mode = "inference"` runs as in evaluation: those whose parameters are all frozen, and every layer inside them.
import type { Graph } from '../ir/types.ts';

/**
 * Each called layer (by path) that is, or sits inside, a layer with at least one parameter and every
 * parameter frozen: `freeze encoder` puts `encoder`, `encoder.bn1` and a parameterless
 * `encoder.drop` in the set, while a model-level dropout layer and a half-frozen block stay out.
 */
export function frozenLayers(graph: Graph, frozen: readonly string[]): Set<string> {
  const frozenSet = new Set(frozen);
  const under = (layer: string) => graph.params.filter((p) => p.path.startsWith(`${layer}.`));
  const allFrozen = new Map<string, boolean>();
  const wholeFrozen = (layer: string): boolean => {
    let v = allFrozen.get(layer);
    if (v === undefined) {
      const ps = under(layer);
      v = ps.length > 0 && ps.every((p) => frozenSet.has(p.path));
      allFrozen.set(layer, v);
    }
    return v;
  };
  const out = new Set<string>();
  for (const call of graph.layerCalls) {
    const parts = call.path.split('.');
    for (let n = 1; n <= parts.length; n++) {
      if (wholeFrozen(parts.slice(0, n).join('.'))) {
        out.add(call.path);
        break;
      }
    }
  }
  return out;
}
