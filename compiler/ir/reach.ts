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

/**
 * How far back in node order a search toward a set of nodes must look once nodes are grouped. In a
 * graph in topological order a path into node `last` runs through lower-numbered nodes only, so a
 * search can skip every node after it. A group (contracted to one kernel) breaks that: a path may enter
 * it at a late member and leave it from an early one (argmax(logits) feeds a group whose other member,
 * `label % 2`, feeds the loss that the logits' group reads). The spans [lo, hi] of the groups noted here
 * give the bound that holds with them: every group that starts at or before the bound ends at or before
 * it. Spans only widen (a group's lo falls, its hi rises), so a prefix maximum over lo (a Fenwick tree)
 * answers each query in O(log n) steps per group crossed.
 */
export class SpanBound {
  private readonly tree: Int32Array;
  constructor(n: number) {
    this.tree = new Int32Array(n + 1).fill(-1);
  }
  /** A group now spans members lo .. hi. */
  note(lo: number, hi: number): void {
    const t = this.tree;
    for (let i = lo + 1; i < t.length; i += i & -i) if (t[i] < hi) t[i] = hi;
  }
  /** The highest hi among the spans with lo <= at (-1: none). */
  private reach(at: number): number {
    const t = this.tree;
    let best = -1;
    for (let i = Math.min(at, t.length - 2) + 1; i > 0; i -= i & -i) if (t[i] > best) best = t[i];
    return best;
  }
  /**
   * The least bound b >= last such that every group with a member at or before b (strict: before b)
   * ends at or before it: a path that ends at a node at or before `last` passes only through nodes and
   * groups that start at or before b (strict: before b).
   */
  bound(last: number, strict = false): number {
    let b = last;
    for (;;) {
      const far = this.reach(strict ? b - 1 : b);
      if (far <= b) return b;
      b = far;
    }
  }
}
