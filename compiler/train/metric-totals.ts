// Losses and metrics over a whole data set: each one that is a function of sums over the batch becomes those sums (added up across batches) and a finishing graph.
//
// Precision, recall and F1 are not means over examples: averaging a per-batch F1 over batches gives
// another number than the F1 of the whole set, and one that moves with the batch size (a macro average
// also scores a class absent from a small batch as 0). What they are is a function of counts summed over
// the examples: tp / max(tp + fp, 1). So is a mean (a sum over the batch divided by B) and an accuracy.
// `metricTotals` finds, for each loss and metric of the evaluation graph, whether it is such a function:
//   - a batch value is a graph input or anything computed from one row by row: B stays the leading axis
//     (elementwise ops, reductions, argmax and cumsum over other axes, x @ W with weights, one_hot,
//     casts, padding of other axes, transposes and reshapes that keep the leading B);
//   - a total is a reduce_sum of a batch value over axes that include the leading one (into a value with
//     no symbolic size), or a `full` whose value is a size with B in it (a count of examples or of
//     elements: the B of a mean); or a reduce_max / reduce_min over such axes (max_error), which
//     batches combine by their largest / smallest value instead of adding (`#totalmax<k>`);
//   - the quantity is computed from totals and constants only (no parameter, no batch value, no size but
//     B), and no batch value reads a total (x - mean(x) over the batch is not row by row).
// Such a quantity gets its totals as extra outputs of the evaluation graph (`#total<k>`, k over the
// distinct totals) and a finishing graph whose inputs are those totals and whose results are the
// quantities. The runtime adds the totals of every batch in float64 and runs the finishing graph once
// (Model.evaluateSet). A plain mean over the examples (sum / B: a loss, an accuracy) is left to that
// average too, which gives the same number without the extra outputs; so is anything that is not a
// function of totals (a parameter read after a sum, a median). Pure.
import '../ops/index.ts';
import { getOp } from '../ops/registry.ts';
import type { Graph, InputInfo, Node, Value } from '../ir/types.ts';
import { graphUses } from '../ir/uses.ts';
import { typeText } from '../ir/print.ts';
import { diagnostic, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { type Dim, freeVars, isConcrete, isDim, sizeName } from '../shapes/dim.ts';

/** The prefix of the evaluation graph's outputs (and the finishing graph's inputs) that carry totals: not a name a program can declare. */
export const TOTAL_PREFIX = '#total';
/**
 * The totals combined across batches by their largest or smallest value, not added (a max over the
 * batch: max_error): `#totalmax<k>`, `#totalmin<k>`; runtime/fit.ts addTotals reads the name.
 */
export const MAX_TOTAL_PREFIX = `${TOTAL_PREFIX}max`;
export const MIN_TOTAL_PREFIX = `${TOTAL_PREFIX}min`;

export interface MetricTotals {
  /** The losses and metrics that are means over the examples: the length-weighted average of their batch values is exact. */
  readonly means: readonly string[];
  /** Where some quantity needs totals: the graphs that compute them. */
  readonly split?: {
    /** The evaluation graph with each total as an output named `#total<k>`. */
    readonly evaluation: Graph;
    /** Inputs `#total<k>`, results (as metrics) the losses and metrics computed from totals. */
    readonly finish: Graph;
  };
}

/**
 * How a value depends on the batch. 'sized': the same for every row but shaped or valued by another
 * run-time size (a causal mask over L, the count L of a mean over time): rows may read it, the
 * finishing graph (which binds no size) may not.
 */
type Kind = 'fixed' | 'sized' | 'weights' | 'batch' | 'total' | 'summary' | 'mixed';

/** Whether a size is the batch B itself (plain, or declared a multiple). */
const isBatch = (d: Dim) => sizeName(d) === 'B';

const leadsWithB = (v: Value) => v.type.shape.length > 0 && isBatch(v.type.shape[0]);
const concreteShape = (v: Value) => v.type.shape.every(isConcrete);
const mentionsB = (d: unknown) => isDim(d) && freeVars(d).includes('B');

/** The axes a reduction or argmax reads, normalized (undefined: all). */
function readAxes(n: Node): number[] | undefined {
  const rank = n.inputs[0].type.shape.length;
  const norm = (a: number) => (a < 0 ? a + rank : a);
  if (n.op === 'argmax' || n.op === 'argmin') return typeof n.attrs.axis === 'number' ? [norm(n.attrs.axis)] : undefined;
  const axes = n.attrs.axes;
  return Array.isArray(axes) ? axes.map((a) => norm(Number(a))) : undefined;
}

/** Whether node `n`, reading batch values, computes its result row by row with B still leading. */
function rowByRow(n: Node, kinds: readonly Kind[]): boolean {
  const out = n.outputs[0];
  if (n.outputs.length !== 1 || !leadsWithB(out)) return false;
  // the other operands: constants or weights, never a total (a sum over the batch read by every row)
  if (kinds.some((k) => k !== 'batch' && k !== 'fixed' && k !== 'sized' && k !== 'weights')) return false;
  const batchOperands = n.inputs.filter((_, i) => kinds[i] === 'batch');
  if (!batchOperands.every(leadsWithB)) return false;
  const family = getOp(n.op)?.family;
  if (family === 'elementwise') return true;
  switch (n.op) {
    case 'reduce_sum':
    case 'reduce_max':
    case 'reduce_min':
    case 'reduce_mean':
    case 'argmax':
    case 'argmin': {
      const axes = readAxes(n);
      return axes !== undefined && !axes.includes(0);
    }
    case 'one_hot':
    case 'broadcast_to':
    case 'stop_gradient':
      return true;
    case 'take': {
      // an embedding: a table of weights gathered by a batch of indices along its first axis; or a
      // batch value gathered along another axis by indices that are not the batch's
      const axis = Number(n.attrs.axis);
      if (kinds[0] !== 'batch' && kinds[1] === 'batch') return axis === 0 || axis === -n.inputs[0].type.shape.length;
      return kinds[0] === 'batch' && kinds[1] !== 'batch' && axis !== 0 && axis !== -n.inputs[0].type.shape.length;
    }
    case 'take_along_axis': {
      const rank = n.inputs[0].type.shape.length;
      const axis = Number(n.attrs.axis);
      return axis !== 0 && axis !== -rank;
    }
    case 'slice': {
      // every row kept, in order: `x[:, 0]`
      const [start, stop, step] = [(n.attrs.starts as unknown[])?.[0], (n.attrs.stops as unknown[])?.[0], (n.attrs.steps as unknown[] | undefined)?.[0] ?? 1];
      return (start === 0 || start === null) && (stop === null || stop === undefined || (isDim(stop) && isBatch(stop))) && step === 1;
    }
    case 'concat': {
      const rank = out.type.shape.length;
      const axis = Number(n.attrs.axis);
      return axis !== 0 && axis !== -rank && kinds.every((k) => k === 'batch');
    }
    case 'pad': {
      // padding along the other axes, each row on its own (a causal convolution's left pad over time)
      const [before, after] = [n.attrs.before, n.attrs.after];
      return Array.isArray(before) && Array.isArray(after) && before[0] === 0 && after[0] === 0;
    }
    case 'cumsum': {
      // a running sum along another axis stays within the row
      const axis = Number(n.attrs.axis);
      return axis !== 0 && axis !== -n.inputs[0].type.shape.length;
    }
    case 'transpose': {
      const perm = n.attrs.perm;
      return Array.isArray(perm) && perm[0] === 0;
    }
    case 'reshape':
      return leadsWithB(n.inputs[0]);
    case 'conv2d':
    case 'conv_transpose2d':
      // each example's image convolved with the weights (NCHW: the batch leads, and stays first)
      return kinds[0] === 'batch' && kinds[1] !== 'batch' && n.attrs.transpose_x !== true && n.attrs.transpose_out !== true;
    case 'max_pool2d':
    case 'avg_pool2d':
      return kinds[0] === 'batch';
    case 'matmul':
      // rows of a batch matrix times weights; or one example's matrices times its own (attention's
      // q @ k^T and weights @ v: both lead with B over batch axes, so the example stays on its row)
      if (kinds[0] === 'batch' && kinds[1] === 'batch') return n.inputs.every((v) => v.type.shape.length >= 3);
      return kinds[0] === 'batch' && kinds[1] !== 'batch' && n.inputs[0].type.shape.length >= 2 && n.attrs.transpose_a !== true;
    default:
      return false;
  }
}

/** The means among the losses and metrics, and the split of those that are other functions of batch totals (as above). */
export function metricTotals(evaluation: Graph): MetricTotals {
  const { producer } = graphUses(evaluation);
  const kind = new Map<number, Kind>();
  for (const i of evaluation.inputs) kind.set(i.value.id, 'batch');
  for (const p of [...evaluation.params, ...evaluation.state]) kind.set(p.value.id, 'weights');
  const kindOf = (v: Value): Kind => kind.get(v.id) ?? 'mixed';
  /** The totals that are a max or min over the batch, by value id: the prefix of their names. */
  const combinedBy = new Map<number, string>();

  for (const n of evaluation.nodes) {
    const kinds = n.inputs.map(kindOf);
    let k: Kind;
    if (n.op === 'full' && n.inputs.length === 0) {
      const value = n.attrs.value;
      const out = n.outputs[0];
      if (mentionsB(value)) k = out.type.shape.length === 0 && out.type.dtype === 'f32' ? 'total' : 'mixed';
      else if (out.type.shape.some(mentionsB)) k = leadsWithB(out) ? 'batch' : 'mixed';
      else k = concreteShape(out) && !(isDim(value) && !isConcrete(value)) ? 'fixed' : 'sized';
    } else if (kinds.includes('mixed')) k = 'mixed';
    else if (kinds.includes('batch')) {
      // a sum over the batch adds up across batches; a max or min over it combines by max or min
      const axes = n.op === 'reduce_sum' || n.op === 'reduce_max' || n.op === 'reduce_min' ? readAxes(n) : undefined;
      const out = n.outputs[0];
      if (axes?.includes(0) && kinds[0] === 'batch' && n.outputs.length === 1 && out.type.dtype === 'f32' && concreteShape(out)) {
        k = 'total';
        if (n.op !== 'reduce_sum') combinedBy.set(out.id, n.op === 'reduce_max' ? MAX_TOTAL_PREFIX : MIN_TOTAL_PREFIX);
      } else k = rowByRow(n, kinds) ? 'batch' : 'mixed';
    } else if (kinds.includes('total') || kinds.includes('summary')) {
      k = kinds.includes('weights') || kinds.includes('sized') || !n.outputs.every(concreteShape) ? 'mixed' : 'summary';
    } else {
      // no batch value read: still a batch value when it has the batch's shape (zeros([B, hidden]));
      // a constant of another run-time size has no place in the finishing graph
      const shapes = n.outputs.map((v) => v.type.shape);
      if (shapes.some((shape) => shape.some(mentionsB))) k = n.outputs.every(leadsWithB) ? 'batch' : 'mixed';
      else if (!n.outputs.every(concreteShape) || kinds.includes('sized')) k = 'sized';
      else k = kinds.includes('weights') ? 'weights' : 'fixed';
    }
    for (const v of n.outputs) kind.set(v.id, k);
  }

  // a mean over the examples (a total divided by B), or a sum of such means scaled by constants
  // (mean(a) + mean(b)), needs no totals: the average of the batches' values, weighted by their
  // lengths, is the same number, with no extra outputs to store
  const definedBy = (v: Value): Node | undefined => {
    const at = producer.get(v.id);
    return at === undefined ? undefined : evaluation.nodes[at];
  };
  const isMean = (v: Value): boolean => {
    const n = definedBy(v);
    if (!n) return false;
    const constant = (w: Value) => kindOf(w) === 'fixed';
    const [a, b] = n.inputs;
    switch (n.op) {
      case 'div': {
        const count = definedBy(b);
        if (kindOf(a) === 'total' && !combinedBy.has(a.id) && count?.op === 'full' && isDim(count.attrs.value) && isBatch(count.attrs.value)) return true;
        return isMean(a) && constant(b);
      }
      case 'add':
      case 'sub':
        return isMean(a) && isMean(b);
      case 'mul':
        return (isMean(a) && constant(b)) || (constant(a) && isMean(b));
      case 'neg':
        return isMean(a);
      default:
        return false;
    }
  };
  const all = [...evaluation.losses, ...evaluation.metrics];
  const means = all.filter(([, v]) => isMean(v)).map(([name]) => name);
  const quantities = all.filter(([, v]) => {
    const k = kindOf(v);
    return (k === 'total' || k === 'summary') && !isMean(v);
  });
  if (quantities.length === 0) return { means };

  // the finishing graph: the totals the quantities read, and the summary and constant nodes between
  const totals: Value[] = [];
  const needed = new Set<number>(); // node indices
  const seen = new Set<number>();
  const visit = (v: Value): void => {
    if (seen.has(v.id)) return;
    seen.add(v.id);
    if (kindOf(v) === 'total') {
      totals.push(v);
      return;
    }
    const at = producer.get(v.id);
    if (at === undefined) return;
    needed.add(at);
    evaluation.nodes[at].inputs.forEach(visit);
  };
  for (const [, v] of quantities) visit(v);
  totals.sort((a, b) => a.id - b.id);
  const name = (k: number) => `${combinedBy.get(totals[k].id) ?? TOTAL_PREFIX}${k}`;
  const span = evaluation.nodes[producer.get(quantities[0][1].id) ?? 0]?.span ?? evaluation.inputs[0]?.span;
  const inputs: InputInfo[] = totals.map((value, k) => ({ name: name(k), value, span: span! }));
  const finish: Graph = {
    name: `${evaluation.name}.totals`,
    inputs,
    params: [],
    state: [],
    nodes: evaluation.nodes.filter((_, k) => needed.has(k)),
    outputs: new Map(),
    losses: new Map(),
    metrics: new Map(quantities),
    layerCalls: [],
    constraints: [],
  };
  const outputs = new Map(evaluation.outputs);
  totals.forEach((v, k) => outputs.set(name(k), v));
  return { means, split: { evaluation: { ...evaluation, outputs }, finish } };
}

/**
 * E0302 for each metric with a shape (a table, such as confusion_matrix's [C, C]) that is not a function
 * of sums over the batch: such a metric is reported over a data set only, from its totals, so one that
 * needs averaging over batches (a per-batch table, a row of the batch) has no value to report.
 */
export function tableMetricDiagnostics(graph: Graph): Diagnostic[] {
  const tables = [...graph.metrics].filter(([, v]) => v.type.shape.length > 0);
  if (tables.length === 0) return [];
  const finished = metricTotals(graph).split?.finish.metrics;
  const { producer } = graphUses(graph);
  return tables
    .filter(([name]) => !finished?.has(name))
    .map(([name, v]) => {
      const at = producer.get(v.id);
      const span = at !== undefined ? graph.nodes[at].span : graph.inputs.find((i) => i.value.id === v.id)?.span;
      return diagnostic('E0302', `the metric \`${name}\` is a table (${typeText(v.type)}), but not a sum over the examples of the batch: a metric with a shape is reported over a data set, from its sums over every batch`, (span?.site ?? span)!, {
        label: typeText(v.type),
        help: 'sum counts over the examples, as confusion_matrix(logits, labels) does, or reduce the metric to a scalar (mean(...))',
      });
    });
}
