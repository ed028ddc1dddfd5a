// Reduction fusion: each row reduction grows into one fused_reduce kernel with its elementwise producers and consumers (softmax, log-softmax with cross-entropy, layer norm, a loss's mean).
//
// Runs on the graph elementwise fusion (optimize/fuse.ts) produced, where each chain of elementwise
// ops is already one node. Seeds are f32 reduce_sum and reduce_max nodes, in graph order; a seed's row
// domain is its input shape and reduced axes (compiler/ops/fused-reduce.ts). A group grows from its
// seed by its neighbours (the producers of the values it reads, the consumers of the values it
// defines, and the other reductions of the values it reads: a layer norm's two parameter gradients sum
// one cotangent) until none can join. A neighbour joins when
//   - it is an elementwise node (fused or not), a reduction, or a reshape or broadcast_to, and is in
//     no other group;
//   - the group with it is still a row kernel: every value has the domain's whole-row, row or scalar
//     shape, and broadcasts along the rows (the op's own check, `rowLayout`, decides);
//   - the kernel stays within the storage buffers (its inputs plus its outputs);
//   - joining makes no cycle: no value leaves the group and comes back through other nodes (or through
//     another group, which will be one node).
// Scalar constants (`full`) the members read fold into the kernel as uniform words. A group of one
// node is left as it was. Values keep their ids, so the graph's results are untouched.
import '../ops/index.ts';
import type { AttrValue, Graph, Node, Value } from '../ir/types.ts';
import { FUSED_OP, isFusableSubOp, isInlinableConstant, type FusedSubOp } from '../ops/fused.ts';
import { encodeRowBody, FUSED_REDUCE_OP } from '../ops/fused-reduce.ts';
import { reduceAxes } from '../ops/reduce.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import { isConcrete } from '../shapes/dim.ts';
import { graphUses } from '../ir/uses.ts';
import { GroupOrder, successors, type Successors, VisitMarks } from '../ir/reach.ts';
import { contractGroups, type Contraction } from './contract.ts';
import { MAX_STORAGE_BUFFERS } from './fuse.ts';

export type RowFuseReason = 'bindings' | 'cycle' | 'shape';

/** A neighbour that did not join a reduction's kernel, and why (the last reason it was refused). */
export interface RowFuseRejection {
  readonly node: number;
  readonly op: string;
  /** The index of the group's seed reduction. */
  readonly group: number;
  readonly reason: RowFuseReason;
  readonly detail: string;
}

export interface RowFusedGroup {
  /** The member nodes' indices in the input graph, in order. */
  readonly nodes: readonly number[];
  readonly ops: readonly string[];
  readonly inputs: number;
  readonly outputs: number;
  /** Scalar constants folded in as uniform words. */
  readonly constants: number;
}

export interface RowFuseReport {
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly groups: readonly RowFusedGroup[];
  readonly rejected: readonly RowFuseRejection[];
  /** The nodes the pass's cycle checks and reorderings visited, in all: its work, which grows with the graph's size (tests count it). */
  readonly visited: number;
}

const hasF16 = (n: Node) => [...n.inputs, ...n.outputs].some((v) => v.type.dtype === 'f16');
const isReduction = (n: Node) => (n.op === 'reduce_sum' || n.op === 'reduce_max') && n.outputs.length === 1 && n.inputs[0]?.type.dtype === 'f32';

/** A node that can be a unit of a row kernel. */
function joinable(n: Node): boolean {
  if (hasF16(n) || n.outputs.length === 0) return false;
  if (n.op === FUSED_OP || isReduction(n)) return true;
  if (n.op === 'reshape' || n.op === 'broadcast_to') return n.inputs.length === 1;
  return n.op !== 'full' && isFusableSubOp(n.op) && n.outputs.length === 1;
}

/** Each node's producers, flattened as `successors` are: the same edges reversed. */
function predecessors(succ: Successors): Successors {
  const N = succ.start.length - 1;
  const start = new Int32Array(N + 1);
  for (let e = 0; e < succ.next.length; e++) start[succ.next[e] + 1]++;
  for (let k = 0; k < N; k++) start[k + 1] += start[k];
  const fill = start.slice(0, N);
  const next = new Int32Array(succ.next.length);
  for (let k = 0; k < N; k++) for (let e = succ.start[k]; e < succ.start[k + 1]; e++) next[fill[succ.next[e]]++] = k;
  return { start, next };
}

/**
 * A breadth-first walk along a graph's edges (consumers, or producers when reversed), one edge per step,
 * from sources it does not enter and over nodes it must not enter (the set being checked), reaching a
 * settled group's members all at once. It expands only nodes placed within its bound (at or before it
 * going forward, at or after it going backward) and keeps the rest until `widen` moves the bound.
 */
class Walk {
  /** Nodes reached (sources not included). */
  readonly reached: VisitMarks;
  /** Nodes an edge from a reached node leads to. */
  readonly arrived: VisitMarks;
  /** An edge from a reached node led into the closed set. */
  closed = false;
  /** The walk reached a node the other walk of a search had reached. */
  met = false;
  meets: Walk | undefined;
  private closedSet: ReadonlySet<number> = new Set();
  private sources: ReadonlySet<number> = new Set();
  private pending: number[] = []; // a queue: nodes near the sources go first, so a short path back is found early
  private head = 0;
  private later: number[] = [];
  private bound = 0;
  private node = -1;
  private edge = 0;
  constructor(
    n: number,
    /** Along consumers (forward) or producers (backward). */
    private readonly isForward: boolean,
    private readonly edges: Successors,
    private readonly pos: Int32Array,
    private readonly groupMembers: (k: number) => readonly number[] | undefined,
    private readonly visit: () => void,
  ) {
    this.reached = new VisitMarks(n);
    this.arrived = new VisitMarks(n);
  }
  /** Starts over from `sources`, never entering `closedSet`, expanding nodes up to `bound`. */
  start(sources: readonly number[], closedSet: ReadonlySet<number>, bound: number): void {
    this.reached.begin();
    this.arrived.begin();
    this.closed = false;
    this.met = false;
    this.sources = new Set(sources);
    this.closedSet = closedSet;
    this.pending = [...sources];
    this.head = 0;
    this.later = [];
    this.node = -1;
    this.bound = bound;
  }
  private within(k: number): boolean {
    return this.isForward ? this.pos[k] <= this.bound : this.pos[k] >= this.bound;
  }
  /** Moves the bound out to `bound`, if it is further. */
  widen(bound: number): void {
    if (this.isForward ? bound <= this.bound : bound >= this.bound) return;
    this.bound = bound;
    const later = this.later;
    this.later = [];
    for (const k of later) (this.within(k) ? this.pending : this.later).push(k);
  }
  private reach(k: number): void {
    if (this.closedSet.has(k) || !this.reached.visit(k)) return;
    this.visit();
    if (this.meets?.reached.has(k)) this.met = true;
    this.pending.push(k);
    for (const m of this.groupMembers(k) ?? []) this.reach(m);
  }
  /** Takes one edge (or moves to the next node); false when nothing within the bound is left. */
  step(): boolean {
    const { start, next } = this.edges;
    while (this.node < 0 || this.edge >= start[this.node + 1]) {
      if (this.head > 1024 && this.head * 2 > this.pending.length) {
        this.pending = this.pending.slice(this.head);
        this.head = 0;
      }
      const k = this.head < this.pending.length ? this.pending[this.head++] : undefined;
      if (k === undefined) {
        this.node = -1;
        return false;
      }
      if (!this.sources.has(k) && !this.within(k)) {
        this.later.push(k);
        continue;
      }
      this.node = k;
      this.edge = start[k];
    }
    const t = next[this.edge++];
    if (!this.sources.has(this.node)) {
      this.arrived.visit(t);
      if (this.closedSet.has(t)) this.closed = true;
    }
    this.reach(t);
    return true;
  }
}

/** The graph with reductions fused into row kernels, and what the pass decided. Pure. */
export function fuseRowsWithReport(g: Graph, options: { readonly maxStorageBuffers?: number } = {}): { graph: Graph; report: RowFuseReport } {
  const maxBuffers = options.maxStorageBuffers ?? MAX_STORAGE_BUFFERS;
  const nodes = g.nodes;
  const N = nodes.length;
  const uses = graphUses(g);
  const { producer, consumers, results } = uses;
  const isConst = (k: number | undefined) => k !== undefined && nodes[k].op === 'full' && nodes[k].outputs.length === 1 && !hasF16(nodes[k]) && isInlinableConstant(nodes[k].attrs);

  const groupOf = new Int32Array(N).fill(-1);
  const groups: { seed: number; members: number[]; node: Node }[] = [];
  const rejections = new Map<string, RowFuseRejection>();

  /** The fused node of a member set (sorted), or why it cannot be one. */
  const build = (members: readonly number[], axes: readonly number[], span: Node['span']): Node | { reason: RowFuseReason; detail: string } => {
    const inSet = new Set(members);
    const inputs: Value[] = [];
    const reg = new Map<number, number>();
    const consts: Node[] = [];
    for (const m of members) {
      for (const v of nodes[m].inputs) {
        const p = producer.get(v.id);
        if ((p !== undefined && inSet.has(p)) || reg.has(v.id)) continue;
        if (isConst(p)) {
          if (!consts.includes(nodes[p!])) consts.push(nodes[p!]);
          continue;
        }
        reg.set(v.id, inputs.length);
        inputs.push(v);
      }
    }
    const units: FusedSubOp[] = [];
    let next = inputs.length;
    for (const c of consts) {
      reg.set(c.outputs[0].id, next++);
      units.push({ op: 'full', args: [], attrs: c.attrs });
    }
    const outputs: Value[] = [];
    for (const m of members) {
      const n = nodes[m];
      units.push({ op: n.op, args: n.inputs.map((v) => reg.get(v.id)!), attrs: n.attrs });
      for (const v of n.outputs) {
        reg.set(v.id, next++);
        if (results.has(v.id) || (consumers.get(v.id) ?? []).some((c) => !inSet.has(c))) outputs.push(v);
      }
    }
    if (outputs.length === 0) return { reason: 'shape', detail: 'the kernel would have no result' };
    const attrs = encodeRowBody(units, outputs.map((v) => reg.get(v.id)!), axes);
    // the op's own shape rule decides whether the units make a row kernel (ops/fused-reduce.ts rowLayout)
    const types = inferOp(FUSED_REDUCE_OP, inputs.map((v) => v.type), attrs);
    if (isShapeError(types)) return { reason: 'shape', detail: types.message };
    if (inputs.length + outputs.length > maxBuffers) return { reason: 'bindings', detail: `the kernel would bind ${inputs.length} inputs and ${outputs.length} outputs, over the limit of ${maxBuffers} storage buffers` };
    return { op: FUSED_REDUCE_OP, inputs, attrs, outputs, span };
  };

  // A topological order of the graph with every settled group as one node (its members side by side,
  // ir/reach.ts): a path between two nodes only runs through nodes placed between them, so a cycle check
  // searches only the stretch its set spans.
  const succ = successors(g, uses);
  let visited = 0;
  // Joining candidate c to the group (acyclic so far) makes a cycle exactly when a value leaving the
  // set comes back to it through other nodes: when a walk forward from the set, or one backward from it,
  // not entering the set, takes an edge into the set. Either walk alone decides; the two take a step
  // each in turn, and the first to finish (or to meet the other) answers, so a candidate far from the
  // group costs what the smaller side costs. Where c is placed after every member (a reader of the
  // group), the forward walk from the members is kept while they stay the same, so a group's many
  // readers (a gradient norm's, one per parameter update) share one walk; where c is placed before
  // every member (a producer), the backward walk from them is kept the same way.
  const pred = predecessors(succ);
  const groupMembers = (k: number) => (groupOf[k] >= 0 ? groups[groupOf[k]].members : undefined);
  const placed = new GroupOrder(N, succ, groupMembers);
  const { pos } = placed;
  const count = () => visited++;
  const keptAhead = new Walk(N, true, succ, pos, groupMembers, count);
  const keptBehind = new Walk(N, false, pred, pos, groupMembers, count);
  const ahead = new Walk(N, true, succ, pos, groupMembers, count);
  const behind = new Walk(N, false, pred, pos, groupMembers, count);
  let keptFor = '';
  /** Whether one walk of the two decides before the other: its answer (true: a cycle). */
  const race = (a: Walk, b: Walk, closes: () => boolean): boolean => {
    a.meets = b;
    b.meets = a;
    a.met = b.met = false;
    for (;;) {
      if (a.met || b.met || closes()) return true;
      if (!a.step()) return closes();
      if (a.met || b.met || closes()) return true;
      if (!b.step()) return closes();
    }
  };
  const cycles = (members: readonly number[], key: string, c: number): boolean => {
    let first = N;
    let last = -1;
    for (const m of members) {
      first = Math.min(first, pos[m]);
      last = Math.max(last, pos[m]);
    }
    const memberSet = new Set(members);
    const trial = new Set([...members, c]);
    if (pos[c] > last || pos[c] < first) {
      if (keptFor !== key) {
        keptFor = key;
        keptAhead.start(members, memberSet, -1);
        keptBehind.start(members, memberSet, N);
      }
      if (pos[c] > last) {
        // only the group can lead to c: forward from the members, backward from c
        keptAhead.widen(pos[c]);
        behind.start([c], trial, first);
        return race(keptAhead, behind, () => keptAhead.arrived.has(c) || behind.closed);
      }
      keptBehind.widen(pos[c]);
      ahead.start([c], trial, last);
      return race(keptBehind, ahead, () => keptBehind.arrived.has(c) || ahead.closed);
    }
    ahead.start([...trial], trial, last);
    behind.start([...trial], trial, first);
    return race(ahead, behind, () => ahead.closed || behind.closed);
  };


  for (let seed = 0; seed < N; seed++) {
    const s = nodes[seed];
    if (groupOf[seed] >= 0 || !isReduction(s)) continue;
    const shape = s.inputs[0].type.shape;
    const axes = reduceAxes(s.op, s.inputs[0].type, s.attrs);
    if (!Array.isArray(axes) || axes.every((a) => isConcrete(shape[a]) && shape[a] === 1)) continue;
    let members = [seed];
    keptFor = '';
    let fused: Node | undefined;
    const tried = new Map<number, string>(); // neighbour -> the member set (as text) it was last refused with
    for (let changed = true; changed; ) {
      changed = false;
      const inSet = new Set(members);
      const near = new Set<number>();
      for (const m of members) {
        for (const v of nodes[m].inputs) {
          const p = producer.get(v.id);
          if (p !== undefined) near.add(p);
          // sibling reductions: other sums of the same value (a layer norm's bias and scale gradients sum one cotangent)
          for (const c of consumers.get(v.id) ?? []) if (isReduction(nodes[c])) near.add(c);
        }
        for (const v of nodes[m].outputs) for (const c of consumers.get(v.id) ?? []) near.add(c);
      }
      const key = members.join(',');
      for (const c of [...near].sort((a, b) => a - b)) {
        if (inSet.has(c) || groupOf[c] >= 0 || !joinable(nodes[c]) || tried.get(c) === key) continue;
        tried.set(c, key);
        const reject = (reason: RowFuseReason, detail: string) => rejections.set(`${seed}:${c}`, { node: c, op: nodes[c].op, group: seed, reason, detail });
        const trial = [...members, c].sort((a, b) => a - b);
        if (cycles(members, key, c)) {
          reject('cycle', `a value of the kernel would come back to it through other nodes`);
          continue;
        }
        const built = build(trial, axes, s.span);
        if ('reason' in built) {
          reject(built.reason, built.detail);
          continue;
        }
        members = trial;
        fused = built;
        rejections.delete(`${seed}:${c}`);
        changed = true;
        break;
      }
    }
    if (!fused) continue;
    for (const m of members) groupOf[m] = groups.length;
    groups.push({ seed, members, node: fused });
    placed.settle(members);
  }

  const rejected = [...rejections.values()].filter((r) => groupOf[r.node] !== groupOf[r.group] || groupOf[r.node] < 0);
  if (groups.length === 0) return { graph: g, report: { nodesBefore: N, nodesAfter: N, groups: [], rejected, visited: visited + placed.visited } };
  const contractions: Contraction[] = [];
  const report: RowFusedGroup[] = [];
  for (const { members, node } of groups) {
    contractions.push({ members, node });
    const units = node.attrs.ops as readonly (readonly AttrValue[])[];
    report.push({ nodes: members, ops: members.map((m) => nodes[m].op), inputs: node.inputs.length, outputs: node.outputs.length, constants: units.filter((u) => u[0] === 'full').length });
  }
  // constants the kernels fold in; those every reader of which folded them in go
  const folded = new Set<number>();
  const dropped = new Set<number>();
  for (let k = 0; k < N; k++) {
    if (!isConst(k)) continue;
    folded.add(k);
    const readers = consumers.get(nodes[k].outputs[0].id) ?? [];
    if (!results.has(nodes[k].outputs[0].id) && readers.length > 0 && readers.every((c) => groupOf[c] >= 0)) dropped.add(k);
  }
  const graph = contractGroups(g, contractions, { folded, dropped });
  return { graph, report: { nodesBefore: N, nodesAfter: graph.nodes.length, groups: report, rejected, visited: visited + placed.visited } };
}

/** The graph with reductions fused into row kernels (see fuseRowsWithReport). */
export function fuseRows(g: Graph, options: { readonly maxStorageBuffers?: number } = {}): Graph {
  return fuseRowsWithReport(g, options).graph;
}
