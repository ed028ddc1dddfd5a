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
 * A topological order of a graph whose nodes are being grouped (each group to become one kernel), with
 * every group's members side by side: a path between two nodes runs only through nodes placed between
 * them, so a search toward a group need expand only nodes placed before it. Node order is such an order
 * until a group forms; `settle` then reorders the stretch its members span, which costs that stretch,
 * not the graph. (Bounding searches by node numbers instead had to extend the bound past every group
 * that starts within it, since a path may enter a group at a late member and leave it from an early one;
 * in an unrolled recurrence's backward pass, each step's groups overlap the next step's, so every bound
 * reached the end of the pass and the searches grew with the square of the sequence length.)
 */
export class GroupOrder {
  /** Node k's place in the order. */
  readonly pos: Int32Array;
  private readonly order: Int32Array;
  private readonly marks: VisitMarks;
  private readonly stack: number[] = [];
  /** The nodes `settle` visited, in all (its work: tests count it). */
  visited = 0;
  constructor(
    n: number,
    private readonly succ: Successors,
    /** The members of the settled group node k is in (undefined: none). */
    private readonly groupMembers: (k: number) => Iterable<number> | undefined,
  ) {
    this.order = Int32Array.from({ length: n }, (_, k) => k);
    this.pos = Int32Array.from({ length: n }, (_, k) => k);
    this.marks = new VisitMarks(n);
  }
  /**
   * Puts a new group (no cycle through it) side by side: within the stretch its members span, the other
   * nodes the group does not lead to, then the members, then the nodes it leads to, each in their old
   * order. An edge into the group comes from before it and one out of it goes after it; a settled group
   * in the stretch moves whole, since reaching one member reaches them all.
   */
  settle(members: Iterable<number>): void {
    const { pos, order, marks, stack, succ } = this;
    const inGroup = new Set(members);
    let lo = pos.length;
    let hi = -1;
    for (const m of inGroup) {
      lo = Math.min(lo, pos[m]);
      hi = Math.max(hi, pos[m]);
    }
    marks.begin();
    stack.length = 0;
    const push = (k: number) => {
      if (pos[k] > hi || inGroup.has(k) || !marks.visit(k)) return;
      this.visited++;
      stack.push(k);
      for (const m of this.groupMembers(k) ?? []) push(m);
    };
    for (const m of inGroup) for (let e = succ.start[m]; e < succ.start[m + 1]; e++) push(succ.next[e]);
    while (stack.length > 0) {
      const k = stack.pop()!;
      for (let e = succ.start[k]; e < succ.start[k + 1]; e++) push(succ.next[e]);
    }
    const stretch = Array.from(order.subarray(lo, hi + 1));
    const before = stretch.filter((k) => !inGroup.has(k) && !marks.has(k));
    const after = stretch.filter((k) => marks.has(k));
    const sorted = [...inGroup].sort((x, y) => pos[x] - pos[y]);
    [...before, ...sorted, ...after].forEach((k, i) => {
      order[lo + i] = k;
      pos[k] = lo + i;
    });
  }
}
