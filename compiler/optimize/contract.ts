// Replacing groups of nodes by one node each, in a topological order that keeps every node as early as the original order allows.
import type { Graph, Node } from '../ir/types.ts';
import { layerCallsWithout } from '../ir/uses.ts';

export interface Contraction {
  /** The member nodes' indices in the graph. */
  readonly members: readonly number[];
  /** The node that replaces them; it defines the members' values that are still read. */
  readonly node: Node;
}

/**
 * The graph with each group contracted to its node. `folded` are the constants the fused nodes fold
 * in (a group member's read of one is no edge), `dropped` those of them nothing else reads and the
 * transposes folded into matmuls (removed; a read of a dropped node depends on what that node read).
 * Value ids are kept, so the graph's results are untouched. Throws (a compiler bug) when the groups
 * make a cycle: the passes check before grouping.
 */
export function contractGroups(g: Graph, groups: readonly Contraction[], constants: { readonly folded?: ReadonlySet<number>; readonly dropped?: ReadonlySet<number> } = {}): Graph {
  const folded = constants.folded ?? new Set<number>();
  const dropped = constants.dropped ?? new Set<number>();
  const nodes = g.nodes;
  const N = nodes.length;
  const producer = new Map<number, number>();
  nodes.forEach((n, k) => n.outputs.forEach((v) => producer.set(v.id, k)));
  const unitOf = new Int32Array(N).map((_, k) => k); // a group's unit is N + its index
  groups.forEach((grp, i) => grp.members.forEach((m) => (unitOf[m] = N + i)));
  const units = new Map<number, { key: number; node: Node; deps: Set<number> }>();
  for (let k = 0; k < N; k++) {
    if (dropped.has(k)) continue;
    const u = unitOf[k];
    let unit = units.get(u);
    if (!unit) units.set(u, (unit = { key: k, node: u >= N ? groups[u - N].node : nodes[k], deps: new Set() }));
    const deps = unit.deps;
    const depend = (v: { readonly id: number }, direct: boolean): void => {
      const p = producer.get(v.id);
      if (p === undefined) return;
      if (dropped.has(p)) {
        for (const w of nodes[p].inputs) depend(w, false);
        return;
      }
      if (direct && u >= N && folded.has(p)) return;
      const d = unitOf[p];
      if (d !== u) deps.add(d);
    };
    for (const v of nodes[k].inputs) depend(v, true);
    // the replacing node may read values its members did not (a matmul reading a sibling transpose's
    // result); what it binds as an input is read, not folded, even a constant folded elsewhere (an
    // LSTM's zero state, a matmul operand here and an epilogue constant in another group)
    if (u >= N && unit.key === k) for (const v of unit.node.inputs) depend(v, false);
  }
  const order = stableOrder(units);
  if (!order) throw new Error('fusion made a cycle between groups (a compiler bug)');
  const ordered = order.map((u) => units.get(u)!.node);

  const defined = new Set<number>([...g.inputs, ...g.params, ...g.state].map((x) => x.value.id));
  for (const n of ordered) for (const o of n.outputs) defined.add(o.id);
  return { ...g, nodes: ordered, layerCalls: layerCallsWithout(g.layerCalls, (id) => !defined.has(id)) };
}

/**
 * The units (by name) in a topological order of their `deps`, each as early as they allow and, among
 * those ready together, by smallest `key` (the original position); undefined when the deps make a cycle.
 */
export function stableOrder(units: ReadonlyMap<number, { readonly key: number; readonly deps: ReadonlySet<number> }>): number[] | undefined {
  const waiting = new Map<number, number>();
  const dependents = new Map<number, number[]>();
  for (const [u, unit] of units) {
    waiting.set(u, unit.deps.size);
    for (const d of unit.deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(u);
  }
  const heap = new MinHeap();
  for (const [u, unit] of units) if (unit.deps.size === 0) heap.push(unit.key, u);
  const order: number[] = [];
  while (heap.size > 0) {
    const u = heap.pop();
    order.push(u);
    for (const t of dependents.get(u) ?? []) {
      const w = waiting.get(t)! - 1;
      waiting.set(t, w);
      if (w === 0) heap.push(units.get(t)!.key, t);
    }
  }
  return order.length === units.size ? order : undefined;
}

/**
 * The nodes in an order where each follows the producers of its inputs, each as early as that allows and,
 * among those ready together, by smallest key (default: its position); undefined when they make a cycle.
 */
export function dependencyOrder(nodes: readonly Node[], keys: readonly number[] = nodes.map((_, i) => i)): Node[] | undefined {
  const definedBy = new Map<number, number>();
  nodes.forEach((n, i) => n.outputs.forEach((v) => definedBy.set(v.id, i)));
  const units = new Map(nodes.map((n, i) => [i, { key: keys[i], deps: new Set(n.inputs.flatMap((v) => (definedBy.has(v.id) ? [definedBy.get(v.id)!] : []))) }]));
  return stableOrder(units)?.map((i) => nodes[i]);
}

/** A binary min-heap of (key, value) pairs, by key. */
export class MinHeap {
  private readonly keys: number[] = [];
  private readonly vals: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  push(key: number, val: number): void {
    const { keys, vals } = this;
    let i = keys.length;
    keys.push(key);
    vals.push(val);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p] <= keys[i]) break;
      [keys[p], keys[i]] = [keys[i], keys[p]];
      [vals[p], vals[i]] = [vals[i], vals[p]];
      i = p;
    }
  }
  pop(): number {
    const { keys, vals } = this;
    const top = vals[0];
    const lk = keys.pop()!;
    const lv = vals.pop()!;
    if (keys.length > 0) {
      keys[0] = lk;
      vals[0] = lv;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < keys.length && keys[l] < keys[m]) m = l;
        if (r < keys.length && keys[r] < keys[m]) m = r;
        if (m === i) break;
        [keys[m], keys[i]] = [keys[i], keys[m]];
        [vals[m], vals[i]] = [vals[i], vals[m]];
        i = m;
      }
    }
    return top;
  }
}
