// Strided copies read in place: a copy's result that only fused kernels read becomes a view those kernels read through.
//
// fuse-views.ts makes each chain of slices, transposes and broadcasts one gather (strided_copy, or
// strided_copies for several views of one source); a lone slice, transpose or broadcast is one too.
// Where every reader of such a result is a fused kernel that can read an input through a view (a
// fused_elementwise, a fused_reduce, a fused_matmul's epilogue input, a lone elementwise op, which
// becomes a fused_elementwise of one sub-op, or a lone reduction, which becomes a fused_reduce of one
// unit) and keeps its result types when it does, the copy need not be stored at all: each reader takes
// the copy's source as an input read through the same view (ops/fused.ts, `views`), and the copy is
// dropped, or keeps only the results something else reads. A kernel that writes a parameter's or a
// state's update is left to fuse-updates.ts. An LSTM cell's four gates are four column blocks of one
// pre-activation z; the cell kernel reads them straight from z instead of a strided_copies kernel
// writing them out first: one dispatch per step fewer, forward and backward. The values read are the
// same elements, so results are bit-identical. Pure.
import type { AttrValue, Graph, Node, Value } from '../ir/types.ts';
import { graphUses, layerCallsWithout } from '../ir/uses.ts';
import { asFusedElementwise, decodeInputViews, encodeInputViews, FUSED_OP, type InputView, MATMUL_OPERAND_OPS } from '../ops/fused.ts';
import { FUSED_MATMUL_OP } from '../ops/fused-matmul.ts';
import { FUSED_COLUMNS_OP } from '../ops/fused-matmul-columns.ts';
import { asFusedReduce, FUSED_REDUCE_OP } from '../ops/fused-reduce.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import { STRIDED_COPIES_OP, STRIDED_COPY_OP, stridedCopiesViews } from '../ops/strided-copy.ts';
import { stridesOf } from '../codegen/per-element.ts';
import type { Dim } from '../shapes/dim.ts';
import { sameShape } from '../ops/util.ts';
import { type View, VIEW_OPS, viewAfter } from './fuse-views.ts';

/** What readViewsInPlace did to one copy node: the results its readers now read as views, and the nodes (output ids) that read them. */
export interface ViewAbsorption {
  /** The copy node's index in the input graph. */
  readonly copy: number;
  /** The ids of its results now read in place. */
  readonly results: readonly number[];
  /** Each reader, by the id of its first output. */
  readonly readers: readonly number[];
  /** Whether the copy node is gone (every result was absorbed). */
  readonly removed: boolean;
}

/** The views a strided_copy, strided_copies or lone movement node (a slice, a transpose, a broadcast) writes, one per output; undefined for any other node. */
function copyViews(n: Node): View[] | undefined {
  if (n.op === STRIDED_COPY_OP) return [{ shape: n.attrs.shape as Dim[], offset: n.attrs.offset as Dim, strides: n.attrs.strides as Dim[] }];
  if (n.op === STRIDED_COPIES_OP) return stridedCopiesViews(n.attrs);
  if (!VIEW_OPS.has(n.op) || n.op === 'reshape' || n.outputs.length !== 1) return undefined;
  const x = n.inputs[0].type.shape;
  const view = viewAfter({ offset: 0, shape: x, strides: stridesOf(x) }, n);
  return view && [view];
}

/** A copy node writing just `views` (one or more) of `source` to `outputs`. */
function copyNode(like: Node, source: Value, views: readonly View[], outputs: readonly Value[]): Node {
  if (views.length === 1) {
    const [v] = views;
    return { op: STRIDED_COPY_OP, inputs: [source], attrs: { shape: [...v.shape], offset: v.offset, strides: [...v.strides] }, outputs: [...outputs], span: like.span };
  }
  const attrs = {
    ranks: views.map((v) => v.shape.length),
    shapes: views.flatMap((v): AttrValue[] => [...v.shape]),
    offsets: views.map((v) => v.offset),
    strides: views.flatMap((v): AttrValue[] => [...v.strides]),
  };
  return { op: STRIDED_COPIES_OP, inputs: [source], attrs, outputs: [...outputs], span: like.span };
}

/** The kernels that can read an input through a view: elementwise bodies, row kernels, and a matmul's epilogue inputs (a product's column blocks' body inputs). */
const READERS = new Set([FUSED_OP, FUSED_REDUCE_OP, FUSED_MATMUL_OP, FUSED_COLUMNS_OP]);

/** The node reading the inputs at `at` through views of their sources, or undefined when its op cannot or its types would change. */
export function withViews(original: Node, at: ReadonlyMap<number, { source: Value; view: View }>): Node | undefined {
  // a lone elementwise primitive reads through views as a fused body of one sub-op, a lone reduction as a row kernel of one unit
  const n = original.op === FUSED_OP ? original : (asFusedElementwise(original) ?? asFusedReduce(original) ?? original);
  if (!READERS.has(n.op) || (MATMUL_OPERAND_OPS.has(n.op) && [...at.keys()].some((pos) => pos < 2))) return undefined;
  const own = decodeInputViews(n.attrs, n.inputs.length, n.op);
  if (typeof own === 'string') return undefined;
  const added = [...at].map(([input, { view }]): InputView => ({ input, ...view }));
  const inputs = n.inputs.map((v, pos) => at.get(pos)?.source ?? v);
  const node: Node = { ...n, inputs, attrs: { ...n.attrs, views: encodeInputViews([...own, ...added].sort((a, b) => a.input - b.input)) } };
  const types = inferOp(n.op, inputs.map((v) => v.type), node.attrs);
  const same = !isShapeError(types) && types.length === n.outputs.length && n.outputs.length > 0 && types.every((t, o) => t.dtype === n.outputs[o].type.dtype && sameShape(t.shape, n.outputs[o].type.shape));
  return same ? node : undefined;
}

/** The graph with every strided copy result that only fused kernels read (through a view of its source, keeping their types) no longer stored; what it absorbed. */
export function readViewsInPlace(g: Graph): { graph: Graph; absorbed: ViewAbsorption[] } {
  const { consumers, results, updates } = graphUses(g);
  const nodes = g.nodes;
  // a kernel that writes a parameter's or a state's update is left as it is: fuse-updates.ts merges
  // those into arena-wide kernels, which read their inputs element by element
  const writesUpdate = (m: number) => nodes[m].outputs.some((v) => updates.has(v.id));
  // per reader node: input position -> the source it reads through a view instead
  const rewired = new Map<number, Map<number, { source: Value; view: View }>>();
  const replaced = new Map<number, Node | undefined>();
  const absorbed: ViewAbsorption[] = [];
  nodes.forEach((n, k) => {
    const views = copyViews(n);
    if (!views || views.length !== n.outputs.length) return;
    const source = n.inputs[0];
    const kept: number[] = [];
    const taken: number[] = [];
    const readersOf: number[] = [];
    n.outputs.forEach((r, j) => {
      const readers = [...new Set(consumers.get(r.id) ?? [])];
      // each reader with this result (and what it already reads through views) read in place
      const trial = readers.map((m) => {
        const at = new Map(rewired.get(m) ?? []);
        nodes[m].inputs.forEach((v, pos) => v.id === r.id && at.set(pos, { source, view: views[j] }));
        return at;
      });
      const inPlace = !results.has(r.id) && readers.length > 0 && r.type.dtype !== 'f16' && readers.every((m, i) => !writesUpdate(m) && withViews(nodes[m], trial[i]) !== undefined);
      if (!inPlace) {
        kept.push(j);
        return;
      }
      taken.push(j);
      readers.forEach((m, i) => rewired.set(m, trial[i]));
      readersOf.push(...readers);
    });
    if (taken.length === 0) return;
    replaced.set(k, kept.length === 0 ? undefined : copyNode(n, source, kept.map((j) => views[j]), kept.map((j) => n.outputs[j])));
    absorbed.push({ copy: k, results: taken.map((j) => n.outputs[j].id), readers: [...new Set(readersOf)].map((m) => nodes[m].outputs[0].id), removed: kept.length === 0 });
  });
  if (absorbed.length === 0) return { graph: g, absorbed };

  const out: Node[] = [];
  nodes.forEach((n, k) => {
    if (replaced.has(k)) {
      const copy = replaced.get(k);
      if (copy) out.push(copy);
      return;
    }
    const at = rewired.get(k);
    out.push(at ? withViews(n, at)! : n);
  });
  // a layer call keeps only the values that still exist
  const gone = new Set(absorbed.flatMap((a) => a.results));
  return { graph: { ...g, nodes: out, layerCalls: layerCallsWithout(g.layerCalls, (id) => gone.has(id)) }, absorbed };
}
