// The kernel report of `dlc compile --report`: dispatches before and after fusion, the fusion decisions,
// a table of kernels per graph (op, .dl lines, FLOPs and bytes at the report's sizes) and peak memory.
//
// `buildKernelReport` is a pure function from the compiled program (and optionally the same model compiled
// without fusion, and what the fusion pass decided per graph) to a report model; `renderMarkdown` and
// `renderHtml` print it. FLOPs are estimates: elementwise kernels count one per output element and
// sub-op, matmul 2·m·n·k per batch (times the column blocks of a fused_matmul_columns), convolutions
// 2·N·O·OH·OW·C/groups·KH·KW, reductions and pooling one per input element, random draws one per output element, data movement none. Bytes are the sizes of
// every buffer a dispatch binds (inputs and outputs), at the bound sizes, except that a slice or gather
// reads as many elements as it writes, an input read through a view counts the view's elements and an
// output stored into a slab of a larger buffer its own.
import '../ops/index.ts';
import type { Span } from '../../grammar/ast.ts';
import { bufferBytes, bufferNumel, memoryReport } from '../../runtime/memory.ts';
import type { BufferDecl, GraphProgram, KernelDecl, ModelProgram } from '../../runtime/program.ts';
import { brokenCondition, evalShape, fittingSizes, sizeNames } from '../../runtime/sizes.ts';
import { predictGraph, type ModelGraphs } from '../codegen/program.ts';
import type { Graph, Node, TensorType } from '../ir/types.ts';
import { decodeFusedBody, decodeInputViews, decodeOutputViews, FUSED_OP, MATMUL_OPERAND_OPS } from '../ops/fused.ts';
import { evaluate, isConcrete, type Dim } from '../shapes/dim.ts';
import { FUSED_COLUMNS_OP } from '../ops/fused-matmul-columns.ts';
import { STRIDED_COPIES_OP, STRIDED_COPY_OP } from '../ops/strided-copy.ts';
import { inPlaceNodeOf } from '../optimize/concat-in-place.ts';
import { FUSED_FOREACH_OP, inPlaceOutputs } from '../ops/fused-foreach.ts';
import { getOp } from '../ops/registry.ts';
import { type FuseReason, type FuseReport } from '../optimize/fuse.ts';
import { fuseGraph } from '../optimize/fusion.ts';
import { fuseUpdates } from '../optimize/fuse-updates.ts';
import { DEFAULT_BATCH } from '../train/plan.ts';

/** A line of a `.dl` file. */
export interface SourceLine {
  readonly file: string;
  readonly line: number;
}

/** What the fusion pass saw and made of one graph: the graph before fusion, after it, and its report. */
export interface GraphFusion {
  readonly before: Graph;
  readonly after: Graph;
  readonly report: FuseReport;
}

export interface KernelRow {
  /** 0-based dispatch index in the graph. */
  readonly index: number;
  readonly op: string;
  /** For a fused kernel: the ops it computes, in order (constants not counted). */
  readonly subOps?: readonly string[];
  /** The .dl lines the kernel covers: every sub-op's line for a fused kernel, else its own. */
  readonly lines: readonly SourceLine[];
  readonly flops: number;
  /** For a fused kernel: the FLOPs of each sub-op (a matmul's 2·m·n·k apart from its epilogue's). */
  readonly parts?: readonly { readonly op: string; readonly flops: number }[];
  readonly bytes: number;
  /** The kernel runs only when the sizes change (codegen/once.ts), not at every run. */
  readonly once?: boolean;
}

export interface Refusal {
  readonly op: string;
  readonly line?: SourceLine;
  /** The op of the last node of the group that refused it, and its line. */
  readonly groupOp: string;
  readonly groupLine?: SourceLine;
  readonly reason: FuseReason;
  readonly detail: string;
}

export interface GraphReport {
  readonly name: string;
  /** Dispatches without fusion (when the unfused program was given). */
  readonly unfused?: number;
  readonly dispatches: number;
  /** Of the dispatches, those that run only when the sizes change (a causal mask). */
  readonly once: number;
  /** What the fusion pass decided (when it was given). */
  readonly fusion?: {
    readonly groups: number;
    /** Nodes that went into fused kernels. */
    readonly fusedNodes: number;
    readonly nodesBefore: number;
    readonly nodesAfter: number;
    readonly refusals: readonly Refusal[];
  };
  readonly kernels: readonly KernelRow[];
  readonly flops: number;
  readonly bytes: number;
}

export interface MemoryFigures {
  readonly params: number;
  readonly state: number;
  /** Every graph's inputs. */
  readonly inputs: number;
  readonly plannedTemps: number;
  readonly unplannedTemps: number;
  /** Parameters, state, inputs and planned temporaries: the peak the executor holds. */
  readonly planned: number;
  readonly unplanned: number;
  readonly largestBuffer: number;
  readonly largestWhat: string;
  readonly graphs: readonly { readonly name: string; readonly inputs: number; readonly temps: number; readonly unplannedTemps: number; readonly tempCount: number; readonly tempBuffers: number }[];
}

export interface KernelReport {
  readonly model: string;
  readonly file: string;
  /** The batch size the numbers are for, and where it came from; absent when the model has no B. */
  readonly batch?: { readonly value: number; readonly from: string };
  /** Every symbolic size and its value (B included). */
  readonly sizes: Readonly<Record<string, number>>;
  /** Sizes other than B that took a default value (1) because none was given. */
  readonly defaulted: readonly string[];
  /** Of the defaulted sizes (and a default B), those raised from 1 to fit the model's conditions (H=2 for `where H % 2 == 0`). */
  readonly raised?: readonly string[];
  /** The model's condition the sizes still break, where no nearby sizes fit it: the numbers are for sizes the model refuses. */
  readonly broken?: string;
  readonly graphs: readonly GraphReport[];
  readonly memory: MemoryFigures;
}

export interface KernelReportInput {
  /** The program as emitted (fused, memory planned). */
  readonly program: ModelProgram;
  /** The same model compiled with fusion off, for the dispatch counts before fusion. */
  readonly unfused?: ModelProgram;
  /** Per graph, in the program's order (predict, evaluate, steps): what fusion did. */
  readonly fusion?: readonly GraphFusion[];
  /** The report's sizes: a batch size (else the train block's, else 1), others (else 1). */
  readonly batch?: number;
  readonly sizes?: ReadonlyMap<string, number>;
  /** The line of a span (sub-ops of fused kernels and refused nodes); without it only kernels' own lines show. */
  readonly lineOf?: (span: Span) => SourceLine | undefined;
}

/** The graphs of a program in order: predict, evaluate, every training step. */
export function programGraphs(p: ModelProgram): GraphProgram[] {
  return [p.graphs.predict, p.graphs.evaluate, ...p.graphs.steps];
}

/** What the fusion pass does to each of a model's graphs (predict, evaluate, steps), as lowerModel applies it. */
export function fusionOf(m: ModelGraphs): GraphFusion[] {
  const fused = [predictGraph(m.evaluation), m.evaluation, ...m.steps].map((before) => {
    const { graph, report } = fuseGraph(before);
    return { before, after: graph, report };
  });
  // the steps' optimizer updates then go over arenas (fuse-updates.ts), as lowering does
  const steps = fuseUpdates(fused.slice(2).map((f) => f.after)).steps;
  return fused.map((f, i) => (i < 2 ? f : { ...f, after: steps[i - 2] }));
}

/**
 * The sizes a report uses: B from the flag, else the train block's batch, else 1; other sizes given, else 1,
 * raised to the nearest that the model's conditions accept (`raised`), else the condition they break (`broken`).
 */
export function reportSizes(program: ModelProgram, batch?: number, given: ReadonlyMap<string, number> = new Map()): { sizes: Map<string, number>; batch?: { value: number; from: string }; defaulted: string[]; raised?: string[]; broken?: string } {
  const names = new Set(program.sizes);
  for (const g of programGraphs(program)) {
    for (const b of g.buffers) if (b.kind === 'input' || b.kind === 'temp') for (const d of b.shape) sizeNames(d, names);
    for (const k of g.kernels) for (const u of [...k.uniforms, k.workgroups]) sizeNames(u, names);
  }
  const sizes = new Map<string, number>();
  const defaulted: string[] = [];
  let batchInfo: { value: number; from: string } | undefined;
  // a train block without `batch` trains at the default batch, as dlc train does
  const blockBatch = program.training?.settings.batch;
  const trainBatch = program.training ? (blockBatch ?? DEFAULT_BATCH) : undefined;
  for (const n of [...names].sort()) {
    if (n === 'B') {
      const value = batch ?? given.get('B') ?? (typeof trainBatch === 'number' ? trainBatch : 1);
      const from =
        batch !== undefined || given.has('B') ? 'given'
        : typeof blockBatch === 'number' ? "the train block's batch"
        : typeof trainBatch === 'number' ? `the train block's default batch, ${DEFAULT_BATCH}`
        : 'default: no train block';
      batchInfo = { value, from };
      sizes.set(n, value);
    } else if (given.has(n)) sizes.set(n, given.get(n)!);
    else {
      sizes.set(n, 1);
      defaulted.push(n);
    }
  }
  // defaults the model's own conditions refuse (H=1 against `where H % 2 == 0`): the nearest that fit, else say which breaks
  const graphs = programGraphs(program);
  const named = new Set(graphs.flatMap((g) => g.constraints.flatMap((c) => [...sizeNames(c.left), ...sizeNames(c.right)])));
  const free = [...defaulted, ...(batchInfo && batchInfo.from.startsWith('default') ? ['B'] : [])].filter((n) => named.has(n));
  const fitted = fittingSizes(sizes, free, (at) => brokenCondition(graphs, at));
  const raised = free.filter((n) => fitted.sizes.get(n) !== sizes.get(n));
  if (batchInfo && raised.includes('B')) batchInfo = { value: fitted.sizes.get('B')!, from: "default, raised to fit the model's conditions: no train block" };
  return { sizes: fitted.sizes, ...(batchInfo ? { batch: batchInfo } : {}), defaulted, ...(raised.length > 0 ? { raised } : {}), ...(fitted.broken !== undefined ? { broken: fitted.broken } : {}) };
}

const ALIASING_OPS = new Set(['reshape', 'stop_gradient']);

/**
 * The node of the fused graph each buffer of the lowered graph belongs to, numbering buffers as lowerGraph
 * does (parameters, state, inputs, then every non-aliasing node's outputs, then any arenas and their
 * ranges); undefined when the count does not match (then kernels are reported from the program alone).
 */
function bufferOwners(after: Graph, g: GraphProgram): Map<number, Node> | undefined {
  const owners = new Map<number, Node>();
  let at = after.params.length + after.state.length + after.inputs.length;
  // an in-place concat's (or transpose's) buffer is allocated at its first operand's producer, and belongs to that node
  const concatOf = inPlaceNodeOf(after.nodes);
  const allocated = new Set<Node>();
  for (const n of after.nodes) {
    if (ALIASING_OPS.has(n.op) || allocated.has(n)) continue;
    // a fused_foreach's outputs written in place have no buffer of their own
    const inPlace = inPlaceOutputs(n);
    for (let i = 0; i < n.outputs.length; i++) {
      const concat = concatOf.get(n.outputs[i].id);
      if (concat && allocated.has(concat)) continue;
      if (concat) allocated.add(concat);
      if (!inPlace.has(i)) owners.set(at++, concat ?? n);
    }
  }
  if (at > g.buffers.length) return undefined;
  // an arena range a fused_foreach binds belongs to the node of the member view it starts at
  const viewKey = (b: BufferDecl) => (b.kind === 'temp' && b.view ? `${b.view.buffer}:${b.view.offset}` : undefined);
  const starts = new Map<string, Node>();
  g.buffers.slice(0, at).forEach((b, i) => {
    const key = viewKey(b);
    if (key !== undefined && owners.has(i)) starts.set(key, owners.get(i)!);
  });
  g.buffers.forEach((b, i) => {
    const key = viewKey(b);
    if (i >= at && key !== undefined && starts.has(key)) owners.set(i, starts.get(key)!);
  });
  return owners;
}

/** Ops whose kernel gathers one input element per output element (a slice reads the slice, not its whole operand). */
const GATHER_OPS: ReadonlySet<string> = new Set(['slice', STRIDED_COPY_OP, STRIDED_COPIES_OP]);

/** The bytes a kernel moves from the buffers it binds: each whole, except what a gather reads, at most its outputs' size. */
function boundBytes(k: KernelDecl, bytesOf: (buffer: number) => number): number {
  const written = k.outputs.reduce((a, i) => a + bytesOf(i), 0);
  const bound = k.inputs.reduce((a, i) => a + bytesOf(i), 0);
  return written + (GATHER_OPS.has(k.op) ? Math.min(bound, written) : bound);
}

/**
 * The bytes a kernel that reads an input through a view or stores into a slab of a larger buffer moves:
 * each such input's view elements (a scan step reads one time step of the precomputed inputs, not the
 * whole buffer it binds; broadcast axes read nothing more), every other input whole, and its outputs'
 * own elements. Undefined for a kernel with no views: it moves every buffer it binds.
 */
function viewBytes(n: Node, sizes: ReadonlyMap<string, number>): number | undefined {
  const views = decodeInputViews(n.attrs, n.inputs.length, n.op);
  const outViews = decodeOutputViews(n.attrs, n.outputs.map((v) => v.type), n.op);
  if (typeof views === 'string' || typeof outViews === 'string' || (views.length === 0 && outViews.length === 0)) return undefined;
  const size = (d: Dim) => evaluate(d, sizes);
  const numel = (shape: readonly Dim[]) => shape.reduce((a: number, d) => a * size(d), 1);
  const elementBytes = (t: TensorType) => (t.dtype === 'f16' ? 2 : 4);
  const whole = (t: TensorType) => Math.max(4, numel(t.shape) * elementBytes(t));
  // a matmul's operands are bound apart from the body's inputs and read through no view
  const lead = MATMUL_OPERAND_OPS.has(n.op) ? 2 : 0;
  let bytes = n.inputs.slice(0, lead).reduce((a, v) => a + whole(v.type), 0);
  const read = new Map<number, { viewed: number; whole: boolean; type: TensorType }>();
  n.inputs.forEach((v, i) => {
    if (i < lead) return;
    const r = read.get(v.id) ?? { viewed: 0, whole: false, type: v.type };
    const view = views.find((w) => w.input === i);
    if (view) r.viewed += view.shape.reduce((a: number, d, axis) => (isConcrete(view.strides[axis]) && view.strides[axis] === 0 ? a : a * size(d)), 1) * elementBytes(v.type);
    else r.whole = true;
    read.set(v.id, r);
  });
  for (const r of read.values()) bytes += r.whole ? whole(r.type) : Math.min(whole(r.type), Math.max(4, r.viewed));
  return bytes + n.outputs.reduce((a, v) => a + whole(v.type), 0);
}

function sortLines(lines: Iterable<SourceLine>, file: string): SourceLine[] {
  const seen = new Map<string, SourceLine>();
  for (const l of lines) seen.set(`${l.file}:${l.line}`, l);
  return [...seen.values()].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file === file ? -1 : b.file === file ? 1 : a.file < b.file ? -1 : 1));
}

/** The report model of one compiled program. */
export function buildKernelReport(input: KernelReportInput): KernelReport {
  const { program } = input;
  const { sizes, batch, defaulted, raised, broken } = reportSizes(program, input.batch, input.sizes);
  const lineOf = input.lineOf ?? (() => undefined);
  const paramShape = new Map(program.params.map((p) => [p.path, p.shape]));
  const stateShape = new Map(program.state.map((s) => [s.path, s.shape]));
  const unfused = input.unfused ? programGraphs(input.unfused) : undefined;

  const graphs = programGraphs(program).map((g, gi): GraphReport => {
    const shapeOf = (i: number): number[] => {
      const b: BufferDecl = g.buffers[i];
      if (b.kind === 'param') return [...(paramShape.get(b.path) ?? [])];
      if (b.kind === 'state') return [...(stateShape.get(b.path) ?? [])];
      if (b.kind === 'arena') return [b.size];
      return evalShape(b.shape, sizes);
    };
    const numel = (i: number): number => {
      const b = g.buffers[i];
      return b.kind === 'param' || b.kind === 'state' || b.kind === 'arena' ? shapeOf(i).reduce((x, y) => x * y, 1) : bufferNumel(b, sizes);
    };
    const fusion = input.fusion?.[gi];
    const owners = fusion ? bufferOwners(fusion.after, g) : undefined;
    // the fusion group of each value a group's members define (fused nodes keep their members' value ids)
    const groupOfValue = new Map<number, number>();
    fusion?.report.groups.forEach((grp, k) => {
      for (const m of grp.nodes) for (const v of fusion.before.nodes[m].outputs) groupOfValue.set(v.id, k);
    });

    // fused_foreach kernels in order, one per node (an output written in place is a range of the model's
    // arena, which no node owns)
    const foreachNodes = fusion?.after.nodes.filter((n) => n.op === FUSED_FOREACH_OP) ?? [];
    let foreachSeen = 0;
    const kernels = g.kernels.map((k: KernelDecl, index): KernelRow => {
      // KernelDecl.source has the line of the node's span counted in the model's own file, so it is only
      // trusted there; with the IR, the node's span gives the line in whichever file it is
      const node = k.op === FUSED_FOREACH_OP && owners ? foreachNodes[foreachSeen++] : owners?.get(k.outputs[0]);
      const nodeLine = node && node.op === k.op ? lineOf(node.span) : undefined;
      const own: SourceLine[] = nodeLine ? [nodeLine] : k.source && k.source.file === program.file ? [{ file: k.source.file, line: k.source.line }] : [];
      let subOps: string[] | undefined;
      let lines = own;
      if (isFusedOp(k.op)) {
        const group = node && node.op === k.op ? groupOfValue.get(node.outputs[0].id) : undefined;
        if (fusion && group !== undefined) {
          const grp = fusion.report.groups[group];
          subOps = [...grp.ops];
          const subLines = grp.nodes.map((m) => lineOf(fusion.before.nodes[m].span)).filter((l): l is SourceLine => l !== undefined);
          if (subLines.length > 0) lines = subLines;
        } else if (node && node.op === k.op) {
          const body = decodeFusedBody(node.attrs);
          // a fused matmul or convolution lists its anchor first; fused_elementwise and fused_foreach have none
          const anchor = anchorOf(k.op);
          if (typeof body !== 'string') subOps = [...(anchor === k.op ? [] : [anchor]), ...body.ops.filter((s) => s.op !== 'full').map((s) => s.op)];
        }
      }
      const parts = kernelFlops(k, subOps, shapeOf, numel, node?.attrs.transpose_out === true, node && Array.isArray(node.attrs.columns) ? node.attrs.columns.length : 1);
      return {
        index,
        op: k.op,
        ...(subOps ? { subOps } : {}),
        lines: sortLines(lines, program.file),
        flops: parts.reduce((a, x) => a + x.flops, 0),
        ...(subOps ? { parts } : {}),
        bytes: (node && node.op === k.op ? viewBytes(node, sizes) : undefined) ?? boundBytes(k, (i) => bufferBytes(numel(i))),
        ...(k.once ? { once: true } : {}),
      };
    });

    let fusionSummary: GraphReport['fusion'];
    if (fusion) {
      const { report, before } = fusion;
      fusionSummary = {
        groups: report.groups.length,
        fusedNodes: report.groups.reduce((a, grp) => a + grp.nodes.length, 0),
        nodesBefore: report.nodesBefore,
        nodesAfter: report.nodesAfter,
        refusals: report.rejected.map((r): Refusal => {
          const line = before.nodes[r.node] ? lineOf(before.nodes[r.node].span) : undefined;
          const groupLine = before.nodes[r.group] ? lineOf(before.nodes[r.group].span) : undefined;
          return { op: r.op, ...(line ? { line } : {}), groupOp: before.nodes[r.group]?.op ?? '?', ...(groupLine ? { groupLine } : {}), reason: r.reason, detail: r.detail };
        }),
      };
    }
    return {
      name: g.name,
      ...(unfused?.[gi] ? { unfused: unfused[gi].kernels.length } : {}),
      dispatches: g.kernels.length,
      once: g.kernels.filter((k) => k.once).length,
      ...(fusionSummary ? { fusion: fusionSummary } : {}),
      kernels,
      flops: kernels.reduce((a, k) => a + k.flops, 0),
      bytes: kernels.reduce((a, k) => a + k.bytes, 0),
    };
  });

  const m = memoryReport(program, sizes);
  const memory: MemoryFigures = {
    params: m.params,
    state: m.state,
    inputs: m.graphs.reduce((a, x) => a + x.inputs, 0),
    plannedTemps: m.graphs.reduce((a, x) => a + x.temps, 0),
    unplannedTemps: m.graphs.reduce((a, x) => a + x.unplannedTemps, 0),
    planned: m.total,
    unplanned: m.unplannedTotal,
    largestBuffer: m.largestBuffer,
    largestWhat: m.largestWhat,
    graphs: m.graphs.map((x) => ({ ...x })),
  };
  return { model: program.model, file: program.file, ...(batch ? { batch } : {}), sizes: Object.fromEntries(sizes), defaulted, ...(raised ? { raised } : {}), ...(broken !== undefined ? { broken } : {}), graphs, memory };
}

/** A kernel made by the fusion pass (fused_elementwise, or any other op of the `fused` family such as a matmul with its epilogue). */
function isFusedOp(op: string): boolean {
  return op === FUSED_OP || getOp(op)?.family === 'fused';
}

/** The contraction a fused kernel starts with (`fused_matmul` -> matmul, `fused_conv2d` -> conv2d), or its own name. */
function anchorOf(op: string): string {
  if (op === FUSED_COLUMNS_OP) return 'matmul';
  const inner = op.replace(/^fused_/, '');
  return getOp(inner)?.family === 'contraction' ? inner : op;
}

/**
 * The estimated floating-point operations of one dispatch (see the file comment), per sub-op for a fused
 * kernel: a matmul or convolution sub-op counts as its own kernel would over the fused kernel's first two
 * inputs (a and b, or x and w) and its iteration shape, every other sub-op one per element.
 */
function kernelFlops(k: KernelDecl, subOps: readonly string[] | undefined, shapeOf: (i: number) => number[], numel: (i: number) => number, storedTransposed = false, blocks = 1): { op: string; flops: number }[] {
  const out = k.outputs.length > 0 ? numel(k.outputs[0]) : 0;
  // a's last two axes are [m, k], or [k, m] when it is read transposed (a matmul prologue): where the
  // second-to-last is the output's m, k is the last (either way when k == m)
  const innerK = () => {
    const a = k.inputs.length > 0 ? shapeOf(k.inputs[0]) : [];
    const o = k.outputs.length > 0 ? shapeOf(k.outputs[0]) : [];
    if (a.length >= 2 && o.length >= 2 && a[a.length - 2] !== o[o.length - 2]) return a[a.length - 2];
    return a[a.length - 1] ?? 1;
  };
  const contraction = (op: string): number => {
    if (k.inputs.length < 2) return 0;
    // fused_matmul_columns computes `blocks` column blocks of the product per output element
    if (op === 'matmul') return 2 * out * innerK() * blocks;
    // weights [O, C/groups, KH, KW] (conv2d; stored [C, O, KH, KW] when read transposed, so per output
    // channel: all of them over the output's O, its axis 0 when it stores its result transposed) or
    // [C, O/groups, KH, KW] (conv_transpose2d)
    if (op === 'conv_transpose2d') return 2 * numel(k.inputs[0]) * shapeOf(k.inputs[1]).slice(1).reduce((x, y) => x * y, 1);
    const channels = k.outputs.length > 0 ? (shapeOf(k.outputs[0])[storedTransposed ? 0 : 1] ?? 1) : 1;
    return channels > 0 ? (2 * out * numel(k.inputs[1])) / channels : 0;
  };
  if (isFusedOp(k.op)) {
    // without the fusion data, a fused matmul or convolution (by its name) still counts its contraction
    const ops = subOps && subOps.length > 0 ? subOps : [anchorOf(k.op)];
    // data movement (a strided_copy's slices and transposes) does no arithmetic
    return ops.map((op) => ({ op, flops: getOp(op)?.family === 'contraction' ? contraction(op) : getOp(op)?.family === 'movement' ? 0 : out }));
  }
  const flops = (() => {
    switch (getOp(k.op)?.family) {
      case 'elementwise':
      case 'random':
        return out;
      case 'reduction':
        return k.inputs.length > 0 ? numel(k.inputs[0]) : 0;
      case 'contraction':
        return contraction(k.op);
      default:
        return 0;
    }
  })();
  return [{ op: k.op, flops }];
}

// ---- rendering ----------------------------------------------------------------------------------------

const int = (n: number) => n.toLocaleString('en-US');

/** 1234567 as `1.23 M`: a short form for FLOPs and bytes next to the exact count. */
function short(n: number, unit: string): string {
  const steps: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, p] of steps) if (n >= v) return `${(n / v).toFixed(2)} ${p}${unit}`;
  return `${n} ${unit}`;
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function lineText(l: SourceLine, file: string): string {
  return l.file === file ? `${basename(file)}:${l.line}` : `${l.file}:${l.line}`;
}

function basename(f: string): string {
  return f.slice(Math.max(f.lastIndexOf('/'), f.lastIndexOf('\\')) + 1);
}

/** Lines as `mnist_mlp.dl:23, 24, 40; stdlib/nn.dl:12` (one file's lines after its name). */
function linesText(lines: readonly SourceLine[], file: string): string {
  const byFile = new Map<string, number[]>();
  for (const l of lines) (byFile.get(l.file) ?? byFile.set(l.file, []).get(l.file)!).push(l.line);
  return [...byFile].map(([f, ls]) => `${lineText({ file: f, line: ls[0] }, file)}${ls.length > 1 ? `, ${ls.slice(1).join(', ')}` : ''}`).join('; ');
}

/** `fused_matmul: matmul (3,211,264 FLOPs), add, maximum`: a contraction inside a fused kernel shows its own FLOPs. */
function opText(k: KernelRow): string {
  if (k.once) return `${opTextOf(k)} (once per size)`;
  return opTextOf(k);
}

function opTextOf(k: KernelRow): string {
  if (!k.subOps) return k.op;
  const parts = k.parts ?? [];
  return `${k.op}: ${k.subOps.map((op, i) => (getOp(op)?.family === 'contraction' && parts[i]?.op === op && k.subOps!.length > 1 ? `${op} (${int(parts[i].flops)} FLOPs)` : op)).join(', ')}`;
}

/**
 * Identical rows once each, in the order they first appear, with how many times each came: an
 * optimizer's update of every parameter, refused for the same reason on the same line, is one row.
 */
export function groupedRows(rows: readonly (readonly string[])[]): string[][] {
  const seen = new Map<string, string[]>();
  for (const row of rows) {
    const key = JSON.stringify(row);
    const had = seen.get(key);
    if (had) had[had.length - 1] = String(Number(had[had.length - 1]) + 1);
    else seen.set(key, [...row, '1']);
  }
  return [...seen.values()];
}

/** The report as plain rows: shared by both renderers, so they say the same thing. */
interface Section {
  readonly title: string;
  readonly level: 2 | 3;
  readonly text?: readonly string[];
  readonly table?: { readonly head: readonly string[]; readonly align: readonly ('l' | 'r')[]; readonly rows: readonly (readonly string[])[]; readonly foot?: readonly string[] };
}

function header(r: KernelReport): string[] {
  const batch = r.batch ? `B=${r.batch.value} (${r.batch.from})` : 'none (the model has no batch size B)';
  const others = Object.entries(r.sizes).filter(([k]) => k !== 'B');
  return [
    `Model: ${r.model}`,
    `Source: ${r.file}`,
    `Batch size for the numbers: ${batch}`,
    `Other symbolic sizes: ${others.length === 0 ? 'none' : others.map(([k, v]) => `${k}=${v}${r.raised?.includes(k) ? " (default, raised from 1 to fit the model's conditions; set with --report-size)" : r.defaulted.includes(k) ? ' (default; set with --report-size)' : ''}`).join(', ')}`,
    ...(r.broken !== undefined ? [`Warning: these sizes break the model's condition ${r.broken}: the numbers are for sizes the model refuses; give sizes that satisfy it with --report-size (and --report-batch)`] : []),
  ];
}

function sections(r: KernelReport): Section[] {
  const out: Section[] = [];
  out.push({
    title: 'Dispatches and fusion',
    level: 2,
    table: {
      head: ['graph', 'dispatches unfused', 'dispatches fused', 'fused groups', 'nodes fused', 'refused candidates', 'FLOPs', 'bytes moved'],
      align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows: r.graphs.map((g) => [
        g.name,
        g.unfused === undefined ? '?' : int(g.unfused),
        g.once > 0 ? `${int(g.dispatches)} (${int(g.once)} once per size)` : int(g.dispatches),
        g.fusion ? int(g.fusion.groups) : '?',
        g.fusion ? int(g.fusion.fusedNodes) : '?',
        g.fusion ? int(g.fusion.refusals.length) : '?',
        short(g.flops, 'FLOP'),
        short(g.bytes, 'B'),
      ]),
    },
  });
  for (const g of r.graphs) {
    if (!g.fusion || g.fusion.refusals.length === 0) continue;
    const counts = new Map<string, number>();
    for (const x of g.fusion.refusals) counts.set(x.reason, (counts.get(x.reason) ?? 0) + 1);
    out.push({
      title: `Fusion refusals: ${g.name}`,
      level: 3,
      text: [`${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')} (bindings: the kernel would pass the storage-buffer limit; cycle: fusing would make a cycle between kernels; shape: the value's shape is not the group's; no-inputs: a group reading no buffer; matmul: the group already takes another matmul; conv: the group already takes a matmul or another convolution; shared: a transpose read by a matmul and something else stays, so the matmul reads its result; fmas: computing a product's column blocks in its reader would take too many fmas per element)`],
      table: {
        head: ['op', 'line', 'refused by the group ending in', 'reason', 'detail', 'times'],
        align: ['l', 'l', 'l', 'l', 'l', 'r'],
        rows: groupedRows(g.fusion.refusals.map((x) => [x.op, x.line ? lineText(x.line, r.file) : '', `${x.groupOp}${x.groupLine ? ` (${lineText(x.groupLine, r.file)})` : ''}`, x.reason, x.detail])),
      },
    });
  }
  const m = r.memory;
  out.push({
    title: `Peak memory${r.batch ? ` at B=${r.batch.value}` : ''}`,
    level: 2,
    text: ['Parameters and state once per model; each graph keeps its own inputs and temporaries. Planned: temporaries share buffers by liveness (the memory plan); unplanned: one buffer per temporary.'],
    table: {
      head: ['', 'planned', 'unplanned'],
      align: ['l', 'r', 'r'],
      rows: [
        ['parameters', `${int(m.params)} (${mib(m.params)})`, `${int(m.params)} (${mib(m.params)})`],
        ['state', `${int(m.state)} (${mib(m.state)})`, `${int(m.state)} (${mib(m.state)})`],
        ['inputs', `${int(m.inputs)} (${mib(m.inputs)})`, `${int(m.inputs)} (${mib(m.inputs)})`],
        ...m.graphs.map((x) => [`temporaries of ${x.name} (${x.tempCount} tensors)`, `${int(x.temps)} in ${x.tempBuffers} buffers`, int(x.unplannedTemps)]),
        ['temporaries', `${int(m.plannedTemps)} (${mib(m.plannedTemps)})`, `${int(m.unplannedTemps)} (${mib(m.unplannedTemps)})`],
      ],
      foot: ['peak bytes', `${int(m.planned)} (${mib(m.planned)})`, `${int(m.unplanned)} (${mib(m.unplanned)})`],
    },
  });
  out.push({ title: 'Largest buffer', level: 3, text: [`${int(m.largestBuffer)} bytes (${mib(m.largestBuffer)}): ${m.largestWhat}`] });
  // training steps first: they are the ones to tune
  const steps = r.graphs.slice(2);
  for (const g of [...steps, ...r.graphs.slice(0, 2)]) {
    out.push({
      title: `Kernels: ${g.name} (${g.dispatches} dispatches${g.once > 0 ? `, ${g.once} of them once per size` : ''})`,
      level: 2,
      table: {
        head: ['#', 'op', '.dl lines', 'FLOPs', 'bytes'],
        align: ['r', 'l', 'l', 'r', 'r'],
        rows: g.kernels.map((k) => [String(k.index), opText(k), linesText(k.lines, r.file), int(k.flops), int(k.bytes)]),
        foot: ['', 'total', '', int(g.flops), int(g.bytes)],
      },
    });
  }
  return out;
}

const NOTE = 'FLOPs are estimates: elementwise = output elements x sub-ops; matmul = 2*m*n*k (inside a fused kernel, plus its epilogue); convolution = 2*N*O*OH*OW*C/groups*KH*KW; reductions and pooling = input elements; random = output elements; data movement = 0. Bytes: what a dispatch reads and writes: every buffer it binds, inputs and outputs, except that a slice or gather reads as many elements as it writes, an input read through a view (one time step of the inputs a scan precomputes) counts the elements of the view and an output stored into a slab of a larger buffer counts its own.';

function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** The report as GitHub-flavoured Markdown. */
export function renderMarkdown(r: KernelReport): string {
  const L: string[] = [`# Kernel report: ${r.model}`, ''];
  for (const h of header(r)) L.push(`- ${mdCell(h)}`);
  L.push('', `_${NOTE}_`, '');
  for (const s of sections(r)) {
    L.push(`${'#'.repeat(s.level)} ${mdCell(s.title)}`, '');
    for (const t of s.text ?? []) L.push(mdCell(t), '');
    if (s.table) {
      const row = (cells: readonly string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
      L.push(row(s.table.head), `| ${s.table.align.map((a) => (a === 'r' ? '---:' : '---')).join(' | ')} |`);
      for (const r2 of s.table.rows) L.push(row(r2));
      if (s.table.foot) L.push(row(s.table.foot.map((c) => (c ? `**${c}**` : c))));
      L.push('');
    }
  }
  return `${L.join('\n').trimEnd()}\n`;
}

/** Text safe inside HTML elements and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = [
  'body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:110em}',
  'table{border-collapse:collapse;margin:0.5em 0 1.5em}',
  'th,td{border:1px solid #ccc;padding:0.2em 0.6em;vertical-align:top}',
  'th{background:#f0f0f0}',
  'td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}',
  'tfoot td{font-weight:bold;background:#fafafa}',
  'code{font-family:ui-monospace,monospace}',
  '.note{color:#555;font-size:0.9em}',
].join('\n');

/** The report as one self-contained HTML page (no external fonts, scripts or styles). */
export function renderHtml(r: KernelReport): string {
  const e = escapeHtml;
  const L: string[] = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${e(`Kernel report: ${r.model}`)}</title>`, `<style>\n${CSS}\n</style>`, '</head>', '<body>'];
  L.push(`<h1>${e(`Kernel report: ${r.model}`)}</h1>`, '<ul>');
  for (const h of header(r)) L.push(`<li>${e(h)}</li>`);
  L.push('</ul>', `<p class="note">${e(NOTE)}</p>`);
  for (const s of sections(r)) {
    L.push(`<h${s.level}>${e(s.title)}</h${s.level}>`);
    for (const t of s.text ?? []) L.push(`<p>${e(t)}</p>`);
    if (!s.table) continue;
    const t = s.table;
    const cls = (i: number) => (t.align[i] === 'r' ? ' class="r"' : '');
    L.push('<table>', '<thead>', `<tr>${t.head.map((h, i) => `<th${cls(i)}>${e(h)}</th>`).join('')}</tr>`, '</thead>', '<tbody>');
    for (const row of t.rows) L.push(`<tr>${row.map((c, i) => `<td${cls(i)}>${e(c)}</td>`).join('')}</tr>`);
    L.push('</tbody>');
    if (t.foot) L.push('<tfoot>', `<tr>${t.foot.map((c, i) => `<td${cls(i)}>${e(c)}</td>`).join('')}</tr>`, '</tfoot>');
    L.push('</table>');
  }
  L.push('</body>', '</html>');
  return `${L.join('\n')}\n`;
}
