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
import { SpanBound, successors, VisitMarks } from '../ir/reach.ts';
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

  /** Whether a value leaving `set` comes back to it through nodes outside it (whole groups count as one node). */
  const succ = successors(g, uses);
  const marks = new VisitMarks(N);
  const stack: number[] = [];
  // nodes after the set (or after the end of a settled group that starts within it) cannot lead back
  const spans = new SpanBound(N);
  const cycles = (set: ReadonlySet<number>): boolean => {
    const last = spans.bound(Math.max(...set));
    marks.begin();
    stack.length = 0;
    const push = (k: number) => {
      if (k > last || !marks.visit(k)) return;
      stack.push(k);
      // a node of a settled group brings the whole group along
      if (groupOf[k] >= 0) for (const m of groups[groupOf[k]].members) push(m);
    };
    for (const m of set) for (let e = succ.start[m]; e < succ.start[m + 1]; e++) if (!set.has(succ.next[e])) push(succ.next[e]);
    while (stack.length > 0) {
      const k = stack.pop()!;
      for (let e = succ.start[k]; e < succ.start[k + 1]; e++) {
        const c = succ.next[e];
        if (set.has(c)) return true;
        push(c);
      }
    }
    return false;
  };

  for (let seed = 0; seed < N; seed++) {
    const s = nodes[seed];
    if (groupOf[seed] >= 0 || !isReduction(s)) continue;
    const shape = s.inputs[0].type.shape;
    const axes = reduceAxes(s.op, s.inputs[0].type, s.attrs);
    if (!Array.isArray(axes) || axes.every((a) => isConcrete(shape[a]) && shape[a] === 1)) continue;
    let members = [seed];
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
        const trialSet = new Set(trial);
        if (cycles(trialSet)) {
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
    spans.note(Math.min(...members), Math.max(...members));
  }

  const rejected = [...rejections.values()].filter((r) => groupOf[r.node] !== groupOf[r.group] || groupOf[r.node] < 0);
  if (groups.length === 0) return { graph: g, report: { nodesBefore: N, nodesAfter: N, groups: [], rejected } };
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
  return { graph, report: { nodesBefore: N, nodesAfter: graph.nodes.length, groups: report, rejected } };
}

/** The graph with reductions fused into row kernels (see fuseRowsWithReport). */
export function fuseRows(g: Graph, options: { readonly maxStorageBuffers?: number } = {}): Graph {
  return fuseRowsWithReport(g, options).graph;
}
