// Forward searches along a graph's data edges, as the fusion passes' cycle checks run them by the thousand: each node's consumers in one flat array, and visit marks that need no clearing between searches.
import type { Graph } from './types.ts';
import { graphUses, type GraphUses } from './uses.ts';

/** Node k's consumer nodes, each once, are `next[start[k]]` .. `next[start[k + 1] - 1]`. */
export interface Successors {
  readonly start: Int32Array;
  readonly next: Int32Array;
}

/** Every node's consumers (the nodes reading any of its outputs), flattened. */
export function successors(g: Graph, uses: GraphUses = graphUses(g)): Successors {
  const N = g.nodes.length;
  const lists: number[][] = g.nodes.map((n) => {
    const out = new Set<number>();
    for (const v of n.outputs) for (const c of uses.consumers.get(v.id) ?? []) out.add(c);
    return [...out];
  });
  const start = new Int32Array(N + 1);
  for (let k = 0; k < N; k++) start[k + 1] = start[k] + lists[k].length;
  const next = new Int32Array(start[N]);
  lists.forEach((list, k) => next.set(list, start[k]));
  return { start, next };
}

/** Marks over items 0 .. n-1 for one search at a time: `begin` forgets every mark at once. */
export class VisitMarks {
  private readonly at: Int32Array;
  private stamp = 0;
  constructor(n: number) {
    this.at = new Int32Array(n);
  }
  /** Starts a search: no item is marked. */
  begin(): void {
    if (this.stamp === 0x7fffffff) {
      this.at.fill(0);
      this.stamp = 0;
    }
    this.stamp++;
  }
  /** Marks item k; true when it was not marked yet in this search. */
  visit(k: number): boolean {
    if (this.at[k] === this.stamp) return false;
    this.at[k] = this.stamp;
    return true;
  }
  has(k: number): boolean {
    return this.at[k] === this.stamp;
  }
}
