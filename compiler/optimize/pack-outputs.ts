// Outputs packed: several same-shaped results of one fused kernel, read only by kernels that read through views, stored as slabs of one buffer that every kernel binds once.
//
// WebGPU binds at most 8 storage buffers per kernel, and an LSTM cell's kernels live at that limit: the
// forward cell stores its gates (sigmoid(i), tanh(g), ...) for the backward pass, each a buffer of its
// own, and the backward kernels read them each as a binding. Where a fused_elementwise (or a
// fused_matmul_columns) W computes k >= 2 results of its iteration shape [..., w] that are no graph
// result, no optimizer update and no slab already, and every reader of each reads it through a view it
// does not already have (a fused_elementwise, a fused_reduce, a matmul's epilogue input: view-inputs.ts
// `withViews`), the results become the slabs of an in-place concat P = [r_1 | ... | r_k] along the last
// axis: W stores r_i at offset i w of P's rows (out_views naming P's buffer, bound once), and each reader
// reads r_i as the view of P at that offset (several results of P bound once). The values are the same
// elements, so the bits are the same; the concat dispatches nothing. Pure.
import type { Graph, Node, Value } from '../ir/types.ts';
import { graphUses } from '../ir/uses.ts';
import { firstFreeId } from '../ir/editor.ts';
import { stridesOf } from '../codegen/per-element.ts';
import { decodeInputViews, decodeOutputViews, encodeOutputViews, type OutputView, PER_ELEMENT_BODY_OPS } from '../ops/fused.ts';
import { sameShape } from '../ops/util.ts';
import { type Dim, isConcrete, mul } from '../shapes/dim.ts';
import { inPlaceNodeOf } from './concat-in-place.ts';
import type { View } from './fuse-views.ts';
import { withViews } from './view-inputs.ts';

/** The graph with the results of each kernel that the rules above allow packed into one buffer; how many buffers it made. */
export function packOutputs(g: Graph): { graph: Graph; packs: number } {
  const { consumers, results, updates } = graphUses(g);
  const slabOf = inPlaceNodeOf(g.nodes);
  let nextId = firstFreeId(g);
  const nodes = g.nodes;
  const writesUpdate = (m: number) => nodes[m].outputs.some((v) => updates.has(v.id));
  // per reader: input position -> the packed buffer and the view of it it reads instead
  const rewired = new Map<number, Map<number, { source: Value; view: View }>>();
  const writers = new Map<number, Node>();
  const concats = new Map<number, Node>();
  nodes.forEach((w, k) => {
    if (!PER_ELEMENT_BODY_OPS.has(w.op) || writesUpdate(k) || w.outputs.length < 2) return;
    const own = decodeOutputViews(w.attrs, w.outputs.map((v) => v.type), w.op);
    if (typeof own === 'string') return;
    const shape = w.outputs[0].type.shape;
    const width = shape[shape.length - 1];
    if (shape.length === 0 || !isConcrete(width)) return;
    const probe: Value = { id: -1, type: { dtype: 'f32', shape: [...shape.slice(0, -1), mul(width, w.outputs.length)] } };
    const strides = stridesOf(probe.type.shape);
    /** The readers of result v at their positions, reading it through a view of `source` at `offset`, if every one can. */
    const readersOf = (v: Value, source: Value, offset: Dim, packed: Dim[]) => {
      const readers = [...new Set(consumers.get(v.id) ?? [])];
      if (readers.length === 0) return undefined;
      const trials = readers.map((m) => {
        const views = decodeInputViews(nodes[m].attrs, nodes[m].inputs.length, nodes[m].op);
        if (typeof views === 'string' || writesUpdate(m)) return undefined;
        const at = new Map(rewired.get(m) ?? []);
        for (const [pos, x] of nodes[m].inputs.entries()) {
          if (x.id !== v.id) continue;
          if (views.some((view) => view.input === pos)) return undefined;
          at.set(pos, { source, view: { offset, shape: [...v.type.shape], strides: packed } });
        }
        return withViews(nodes[m], at) && at;
      });
      return trials.every((t) => t !== undefined) ? readers.map((m, i): [number, Map<number, { source: Value; view: View }>] => [m, trials[i]!]) : undefined;
    };
    const packable = w.outputs.filter((v, o) => v.type.dtype === 'f32' && !results.has(v.id) && !slabOf.has(v.id) && !own.some((x) => x.output === o) && sameShape(v.type.shape, shape) && readersOf(v, probe, 0, strides) !== undefined);
    if (packable.length < 2) return;
    const p: Value = { id: nextId++, type: { dtype: 'f32', shape: [...shape.slice(0, -1), mul(width, packable.length)] } };
    const packed = stridesOf(p.type.shape);
    const views: OutputView[] = [...own];
    packable.forEach((v, i) => {
      for (const [m, at] of readersOf(v, p, i * width, packed)!) rewired.set(m, at);
      views.push({ output: w.outputs.indexOf(v), offset: i * width, strides: packed, buffer: p.id });
    });
    writers.set(k, { ...w, attrs: { ...w.attrs, out_views: encodeOutputViews(views.sort((a, b) => a.output - b.output)) } });
    concats.set(k, { op: 'concat', inputs: packable, attrs: { axis: shape.length - 1, in_place: true }, outputs: [p], span: w.span });
  });
  if (concats.size === 0) return { graph: g, packs: 0 };
  const out: Node[] = [];
  for (const [k, n] of nodes.entries()) {
    const at = rewired.get(k);
    const base = writers.get(k) ?? n;
    const node = at ? withViews(base, at) : base;
    // every reader was tried with its views; should one still refuse them, nothing is packed
    if (!node) return { graph: g, packs: 0 };
    out.push(node);
    if (concats.has(k)) out.push(concats.get(k)!);
  }
  return { graph: { ...g, nodes: out }, packs: concats.size };
}
