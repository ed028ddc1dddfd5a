// The fusion pipeline lowering applies: elementwise and epilogue fusion (fuse.ts), reduction fusion (fuse-rows.ts), then movement chains (fuse-views.ts), with one report in the input graph's node numbers.
import type { Graph, Node } from '../ir/types.ts';
import { graphUses } from '../ir/uses.ts';
import { FUSED_REDUCE_OP } from '../ops/fused-reduce.ts';
import { type FusedGroup, type FuseOptions, type FuseRejection, type FuseReport, fuseWithReport } from './fuse.ts';
import { fuseRowsWithReport } from './fuse-rows.ts';
import { fuseViews } from './fuse-views.ts';
import { redrawMasks, rematerialize } from './remat.ts';
import { readViewsInPlace } from './view-inputs.ts';
import { concatsInPlace, isInPlace, transposesInPlace } from './concat-in-place.ts';
import { concatsAsViews } from './concat-views.ts';
import { dce } from './dce.ts';
import { mergeElementwise } from './merge-elementwise.ts';
import { matmulColumns } from './matmul-columns.ts';
import { packOutputs } from './pack-outputs.ts';

export interface FusionOptions extends FuseOptions {
  /** Fuse reductions with their producers and consumers (fused_reduce; default true). */
  readonly rows?: boolean;
  /** Fuse chains of movement ops into one strided_copy each, and into the concats they feed (fuse-views.ts; default true). */
  readonly views?: boolean;
  /** Let fused elementwise kernels read strided copies' results through views of their sources instead (view-inputs.ts; default true). */
  readonly viewInputs?: boolean;
  /** Make a concat of evenly spaced views of one source one strided copy (concat-views.ts; default true). */
  readonly concatViews?: boolean;
  /** Let fused kernels store a concat's operands straight into its buffer, so the concat dispatches nothing (concat-in-place.ts; default true). */
  readonly concatsInPlace?: boolean;
  /** Let the producer of a transpose's operand store it transposed into the result's buffer, so the transpose dispatches nothing (concat-in-place.ts; default true). */
  readonly transposesInPlace?: boolean;
  /** Merge fused elementwise kernels into the ones that compute their inputs where the bindings now allow (merge-elementwise.ts; default true). */
  readonly mergeElementwise?: boolean;
  /** Let a fused elementwise kernel that reads a matmul product only as column blocks compute them itself (matmul-columns.ts; default true). */
  readonly matmulColumns?: boolean;
  /** Store several results of one kernel, which only view-reading kernels read, as slabs of one buffer, where that leaves fewer kernels (pack-outputs.ts; default true). */
  readonly packOutputs?: boolean;
  /** Also fuse the graph with shared elementwise values recomputed per reader (remat.ts), and keep it where it has fewer kernels (default true). */
  readonly remat?: boolean;
  /** Redraw random masks in each kernel that reads them instead of storing them (remat.ts redrawMasks; default true). */
  readonly redraw?: boolean;
  /**
   * A graph with the same nodes as the one fused and fewer outputs (a training step without its metric
   * totals): whether to recompute, and which values, is decided on it and applied to the graph fused,
   * so outputs added only to be read back do not change the kernels chosen for the rest.
   */
  readonly rematLike?: Graph;
}

/** Nodes of a fused graph that dispatch: all but the ops that alias their operand's buffer and the concats done in place. */
export function kernelCount(g: Graph): number {
  return g.nodes.filter((n) => n.op !== 'reshape' && n.op !== 'stop_gradient' && !isInPlace(n)).length;
}

/** The fused graph and one report of the passes, every node index counted in `g`. Pure. */
export function fuseGraph(g: Graph, options: FusionOptions = {}): { graph: Graph; report: FuseReport } {
  // dropout masks redrawn by the kernels that read them (remat.ts redrawMasks), then the fusion passes
  const drawn = options.redraw === false ? undefined : redrawMasks(g);
  // the reference graph redrawn the same way (its nodes are g's, so the redrawn nodes are too)
  const like = options.rematLike && options.redraw !== false ? { ...options, rematLike: redrawMasks(options.rematLike).graph } : options;
  if (!drawn || drawn.graph === g) return fuseWithRemat(g, like);
  const fused = fuseWithRemat(drawn.graph, like);
  return { graph: fused.graph, report: inNodesOf(g, fused.report, drawn.origin) };
}

/** A report counted in a rewritten graph's nodes, counted in `g`'s: `origin[k]` is the node of `g` that node k is or copies. */
function inNodesOf(g: Graph, report: FuseReport, origin: readonly number[]): FuseReport {
  const at = (k: number) => origin[k] ?? k;
  return {
    ...report,
    nodesBefore: g.nodes.length,
    groups: report.groups.map((grp) => {
      const nodes = [...new Set(grp.nodes.map(at))].sort((a, b) => a - b);
      return { ...grp, nodes, ops: nodes.map((k) => g.nodes[k].op) };
    }),
    rejected: report.rejected.map((r) => ({ ...r, node: at(r.node), group: at(r.group) })),
    prologues: report.prologues.map((p) => ({ ...p, transpose: at(p.transpose), matmul: at(p.matmul), ...(p.sibling === undefined ? {} : { sibling: at(p.sibling) }) })),
  };
}

/** The fusion passes on `g`, and on `g` with shared elementwise values recomputed per reader where that has fewer kernels. */
function fuseWithRemat(g: Graph, options: FusionOptions): { graph: Graph; report: FuseReport } {
  const { rematLike, ...rest } = options;
  if (options.remat === false) return fusePipeline(g, rest);
  if (!rematLike || rematLike.nodes.length !== g.nodes.length) return rematChoice(g, rest).fused;
  // decided on the reference graph: no copies, or the copies it made (by node index, the same in g)
  const { keep } = rematChoice(rematLike, rest);
  const copied = keep && rematerialize(g, keep);
  if (!copied || copied.graph === g) return fusePipeline(g, rest);
  const recomputed = fusePipeline(copied.graph, rest);
  return { graph: recomputed.graph, report: inNodesOf(g, recomputed.report, copied.origin) };
}

/**
 * `g` fused with the fewest kernels: without copies, with every copy, or again without the copies
 * that joined no group; `keep` is the nodes not copied in the choice (undefined: no copies).
 */
function rematChoice(g: Graph, options: FusionOptions): { fused: { graph: Graph; report: FuseReport }; keep?: ReadonlySet<number> } {
  const plain = fusePipeline(g, options);
  let copied = rematerialize(g);
  if (copied.graph === g) return { fused: plain };
  let recomputed = fusePipeline(copied.graph, options);
  let keep: ReadonlySet<number> = new Set();
  // a copy that joined no group is a kernel of its own: once more, without copies of those nodes
  const originOf = new Map<number, number>(copied.graph.nodes.map((n, k) => [n.outputs[0]?.id ?? -1, copied.origin[k]]));
  const alone = recomputed.graph.nodes.flatMap((n) => (n.outputs.length === 1 && copied.copies.has(n.outputs[0].id) ? [originOf.get(n.outputs[0].id)!] : []));
  if (alone.length > 0) {
    const retry = rematerialize(g, new Set(alone));
    const again = retry.graph === g ? plain : fusePipeline(retry.graph, options);
    if (kernelCount(again.graph) < kernelCount(recomputed.graph)) {
      copied = retry;
      recomputed = again;
      keep = new Set(alone);
    }
  }
  if (kernelCount(recomputed.graph) >= kernelCount(plain.graph)) return { fused: plain };
  // the report in `g`'s node numbers: a copy counts as the node it copies
  return { fused: { graph: recomputed.graph, report: inNodesOf(g, recomputed.report, copied.origin) }, keep };
}

/** The report's groups, each found by a value its nodes define (node numbers of `g`), as the passes after fusion merge and replace them. */
class GroupTable {
  private readonly slots: (FusedGroup | undefined)[] = [];
  private readonly byValue = new Map<number, number>();
  constructor(
    private readonly g: Graph,
    groups: readonly FusedGroup[],
  ) {
    for (const grp of groups) this.add(grp);
  }
  /** The slot of the group whose nodes define value `id`, or -1. */
  find(id: number): number {
    const at = this.byValue.get(id);
    return at !== undefined && this.slots[at] ? at : -1;
  }
  get(at: number): FusedGroup {
    return this.slots[at]!;
  }
  add(grp: FusedGroup): number {
    const at = this.slots.push(grp) - 1;
    this.set(at, grp);
    return at;
  }
  remove(at: number): void {
    this.slots[at] = undefined;
  }
  /** Puts `grp` in slot `at`, where the group it replaces was: every value its nodes define finds it. */
  set(at: number, grp: FusedGroup): void {
    this.slots[at] = grp;
    for (const k of grp.nodes) for (const v of this.g.nodes[k].outputs) this.byValue.set(v.id, at);
  }
  list(): FusedGroup[] {
    return this.slots.filter((grp): grp is FusedGroup => grp !== undefined);
  }
}

/** Elementwise, epilogue, reduction and movement fusion, then copies read in place, concats written in place and elementwise kernels merged, with one report in `g`'s node numbers. */
function fusePipeline(g: Graph, options: FusionOptions): { graph: Graph; report: FuseReport } {
  const fused = fuseAndView(g, options);
  // the copies a rewritten concat read are dead once it reads their source
  const stacked = options.concatViews === false ? fused.graph : dce(concatsAsViews(fused.graph).graph);
  const none = (x: Graph): ReturnType<typeof matmulColumns> => ({ graph: x, merges: [], refusals: [] });
  const columns = (x: Graph) => (options.matmulColumns === false ? none(x) : matmulColumns(x));
  const tail = (early: ReturnType<typeof matmulColumns>) => {
    const concats = options.concatsInPlace === false ? early.graph : concatsInPlace(early.graph).graph;
    const slabs = options.transposesInPlace === false ? concats : transposesInPlace(concats).graph;
    const merged = options.mergeElementwise === false ? { graph: slabs, merges: [] as [number, number][] } : mergeElementwise(slabs);
    return { early, merges: merged.merges, late: columns(merged.graph) };
  };
  // kernels' results packed into shared buffers (pack-outputs.ts), where that leaves fewer kernels
  let chosen = tail(none(stacked));
  let start = stacked;
  const packed = options.packOutputs === false ? { graph: stacked, packs: 0 } : packOutputs(stacked);
  if (packed.packs > 0) {
    const other = tail(none(packed.graph));
    if (kernelCount(other.late.graph) < kernelCount(chosen.late.graph)) [chosen, start] = [other, packed.graph];
  }
  // products read as column blocks merged after the elementwise merges, and also before the concats in
  // place, whose slab outputs may take the binding a merge needs: whichever has fewer kernels
  const early = columns(start);
  if (early.merges.length > 0) {
    const other = tail(early);
    if (kernelCount(other.late.graph) < kernelCount(chosen.late.graph)) chosen = other;
  }
  const { merges } = chosen;
  const graph = chosen.late.graph;
  // the column merges the last pass refused, in `g`'s node numbers: the product's node and the last of its reader's group
  const definedIn = new Map<number, number>(g.nodes.flatMap((n, k) => n.outputs.map((v): [number, number] => [v.id, k])));
  const refusedBlocks: FuseRejection[] = chosen.late.refusals.flatMap((r) => {
    const node = definedIn.get(r.product);
    const reader = definedIn.get(r.reader);
    return node === undefined || reader === undefined ? [] : [{ node, op: g.nodes[node].op, group: reader, reason: r.reason, detail: r.detail }];
  });
  const base = refusedBlocks.length === 0 ? fused.report : { ...fused.report, rejected: [...fused.report.rejected, ...refusedBlocks] };
  if (merges.length === 0 && chosen.early.merges.length === 0 && chosen.late.merges.length === 0) return { graph, report: base };
  // a merged kernel's report group is both groups (a plain matmul merged into its reader joins the reader's)
  const table = new GroupTable(g, fused.report.groups);
  const defined = new Map<number, Node>(graph.nodes.flatMap((n) => n.outputs.map((v): [number, Node] => [v.id, n])));
  const record = (a: number, b: number, lone: boolean) => {
    const [ga, gb] = [table.find(a), table.find(b)];
    if (gb < 0 || ga === gb) return;
    const second = table.get(gb);
    // a lone node (a plain matmul) that defines a: a group of that node alone
    const first = ga >= 0 ? table.get(ga) : lone && definedIn.has(a) ? { ...second, nodes: [definedIn.get(a)!] } : undefined;
    if (!first) return;
    const nodes = [...new Set([...first.nodes, ...second.nodes])].sort((x, y) => x - y);
    const made = defined.get(b);
    const at = ga >= 0 ? ga : gb;
    if (at !== gb) table.remove(gb);
    table.set(at, { ...first, ...(made ? { op: made.op } : {}), nodes, ops: nodes.map((k) => g.nodes[k].op), inputs: made ? new Set(made.inputs.map((v) => v.id)).size : first.inputs, outputs: made?.outputs.length ?? first.outputs });
  };
  for (const [a, b] of chosen.early.merges) record(a, b, true);
  for (const [a, b] of merges) record(a, b, false);
  for (const [a, b] of chosen.late.merges) record(a, b, true);
  const groups = table.list();
  return { graph, report: { ...base, nodesAfter: graph.nodes.length, groups } };
}

/** Elementwise, epilogue, reduction and movement fusion, then copies read in place, with one report in `g`'s node numbers. */
function fuseAndView(g: Graph, options: FusionOptions): { graph: Graph; report: FuseReport } {
  const base = fuseLoopsAndRows(g, options);
  if (options.views === false) return base;
  const { graph: viewed, chains } = fuseViews(base.graph);
  // movement ops are in no other group, so each chain member is a node of `g` itself
  const index = new Map<Node, number>(g.nodes.map((n, k) => [n, k]));
  let groups: FusedGroup[] = [
    ...base.report.groups,
    ...chains.map((chain) => {
      const nodes = chain.nodes.map((m) => index.get(base.graph.nodes[m]) ?? -1).filter((k) => k >= 0).sort((a, b) => a - b);
      return { op: chain.op, nodes, ops: nodes.map((k) => g.nodes[k].op), inputs: chain.inputs, outputs: chain.outputs, constants: 0 };
    }),
  ];
  const { graph, absorbed } = options.viewInputs === false ? { graph: viewed, absorbed: [] } : readViewsInPlace(viewed);
  if (graph === base.graph) return base;
  // a copy read in place: its nodes join its first reader's group, or its group writes fewer results
  const table = new GroupTable(g, groups);
  const defined = new Map<number, Node>(graph.nodes.flatMap((n) => n.outputs.map((v): [number, Node] => [v.id, n])));
  const definedBefore = new Map<number, number>(g.nodes.flatMap((n, k) => n.outputs.map((v): [number, number] => [v.id, k])));
  for (const a of absorbed) {
    const copy = viewed.nodes[a.copy];
    const own = table.find(copy.outputs[0].id);
    const members = own >= 0 ? table.get(own).nodes : index.has(copy) ? [index.get(copy)!] : [];
    if (!a.removed) {
      if (own >= 0) table.set(own, { ...table.get(own), outputs: table.get(own).outputs - a.results.length });
      continue;
    }
    const reader = table.find(a.readers[0]);
    if (own >= 0) table.remove(own);
    if (reader >= 0) {
      const nodes = [...new Set([...table.get(reader).nodes, ...members])].sort((x, y) => x - y);
      table.set(reader, { ...table.get(reader), nodes, ops: nodes.map((k) => g.nodes[k].op) });
      continue;
    }
    // a lone elementwise op or reduction that now reads a view: a group of its own with the copy's nodes
    const alone = definedBefore.get(a.readers[0]);
    const made = defined.get(a.readers[0]);
    if (alone === undefined || !made) continue;
    const nodes = [...new Set([alone, ...members])].sort((x, y) => x - y);
    table.add({ op: made.op, nodes, ops: nodes.map((k) => g.nodes[k].op), inputs: new Set(made.inputs.map((v) => v.id)).size, outputs: made.outputs.length, constants: 0 });
  }
  groups = table.list();
  return { graph, report: { ...base.report, nodesAfter: graph.nodes.length, groups } };
}

/** Elementwise and epilogue fusion, then reduction fusion, with one report in `g`'s node numbers. */
function fuseLoopsAndRows(g: Graph, options: FusionOptions): { graph: Graph; report: FuseReport } {
  const first = fuseWithReport(g, options);
  if (options.rows === false) return first;
  const second = fuseRowsWithReport(first.graph, options);
  if (second.report.groups.length === 0 && second.report.rejected.length === 0) return first;

  // each node of the intermediate graph as the input graph's nodes it stands for
  const original = new Map<Node, number>(g.nodes.map((n, k) => [n, k]));
  const { producer } = graphUses(g);
  const groupOfNode = new Map<number, number>(); // input-graph index -> its first-pass group
  first.report.groups.forEach((grp, i) => grp.nodes.forEach((k) => groupOfNode.set(k, i)));
  const membersOf = (n: Node): { nodes: number[]; group?: number } => {
    const k = original.get(n);
    if (k !== undefined) return { nodes: [k] };
    const at = producer.get(n.outputs[0].id)!;
    const group = groupOfNode.get(at);
    return group === undefined ? { nodes: [at] } : { nodes: [...first.report.groups[group].nodes], group };
  };
  // the index that names a node of the intermediate graph in messages: its own, or its group's last node's
  const nameOf = (n: Node) => Math.max(...membersOf(n).nodes);

  const absorbed = new Set<number>();
  const rowGroups: FusedGroup[] = second.report.groups.map((grp) => {
    const nodes: number[] = [];
    for (const m of grp.nodes) {
      const { nodes: ks, group } = membersOf(first.graph.nodes[m]);
      if (group !== undefined) absorbed.add(group);
      nodes.push(...ks);
    }
    nodes.sort((a, b) => a - b);
    return { op: FUSED_REDUCE_OP, nodes, ops: nodes.map((k) => g.nodes[k].op), inputs: grp.inputs, outputs: grp.outputs, constants: grp.constants };
  });
  const rejected: FuseRejection[] = second.report.rejected.map((r) => ({
    node: nameOf(first.graph.nodes[r.node]),
    op: r.op,
    group: nameOf(first.graph.nodes[r.group]),
    reason: r.reason,
    detail: r.detail,
  }));
  return {
    graph: second.graph,
    report: {
      nodesBefore: first.report.nodesBefore,
      nodesAfter: second.report.nodesAfter,
      groups: [...first.report.groups.filter((_, i) => !absorbed.has(i)), ...rowGroups],
      rejected: [...first.report.rejected, ...rejected],
      prologues: first.report.prologues,
      visited: first.report.visited + second.report.visited,
    },
  };
}
