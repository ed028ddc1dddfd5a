// Concats and transposes in place: where every operand's producer is a fused kernel, each stores its operand straight into its place in the result's buffer (a concat's slab, a transpose's permuted strides), and the node dispatches nothing.
//
// Operand j of a concat along axis a is the slab of the result that starts at index s_j (the sizes of
// the operands before it) along a: its element i is the result's element i + s_j e_a, at offset s_j *
// stride_a + Σ i_b * stride_b of the result's row-major storage. A fused kernel (fused_elementwise,
// fused_reduce's whole-row outputs, fused_matmul's epilogue) can store an output anywhere (ops/fused.ts's
// `out_views`), so when each operand is the output of such a kernel and read by the concat alone, the
// producers store the operands there and the concat is marked `in_place`: the lowering gives every
// operand the result's buffer (codegen/program.ts) and emits no kernel for it. An LSTM's backward step
// concatenates its four gate gradients into dz; with this the kernels that compute them write dz. A lone
// elementwise op becomes a fused_elementwise of one sub-op to do so, and so does a constant (`full`: an
// RNN's zero initial state heading the stack of its states that a weight gradient reads), a kernel
// that runs every step, as the slab is rewritten every step (codegen/once.ts).
//
// A fused_elementwise that computes several operands stores them all and binds the buffer once (the
// views name it); a matmul or row kernel stores one. An operand that is a graph result or read by
// anything else keeps its own buffer: where a fused_elementwise computes it, the kernel stores a copy
// into the slab too (one more output of the same register) and the concat reads the copy (a scan's
// yield h_t, also the next step's input). Refused: such an operand of any other kernel, a producer that
// is no fused kernel (a plain matmul, a reduction's row value), a matmul or row kernel writing two
// operands (both would bind the one buffer as writable), a producer reading an operand that lives in the
// buffer (it would bind the buffer it writes), a kernel over 8 bindings, and a concat whose result an
// optimizer update reads (fuse-updates.ts places such gradients in arenas). The values are the same
// tensors, so the interpreter ignores the attributes; the bits are the same. Pure.
import type { Graph, Node, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { MAX_STORAGE_BUFFERS } from './fuse.ts';
import { graphUses } from '../ir/uses.ts';
import { stridesOf } from '../codegen/per-element.ts';
import { asFusedElementwise, asFusedFull, boundBuffers, decodeFusedBody, decodeOutputViews, encodeFusedBody, encodeOutputViews, FUSED_OP, type OutputView, PER_ELEMENT_BODY_OPS, viewedInputTypes } from '../ops/fused.ts';
import { FUSED_MATMUL_OP } from '../ops/fused-matmul.ts';
import { FUSED_COLUMNS_OP } from '../ops/fused-matmul-columns.ts';
import { transposeAttrs } from '../ops/matmul.ts';
import { FUSED_REDUCE_OP, rowLayout } from '../ops/fused-reduce.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import { add, type Dim, mul } from '../shapes/dim.ts';

const WRITERS = new Set([FUSED_OP, FUSED_REDUCE_OP, FUSED_MATMUL_OP, FUSED_COLUMNS_OP]);

/** Whether a concat or transpose node dispatches nothing (its operands' producers store them in its buffer). */
export function isInPlace(n: Node): boolean {
  return (n.op === 'concat' || n.op === 'transpose') && n.attrs.in_place === true;
}

/** Each in-place concat's or transpose's operands (by value id) to the node: its result's buffer is theirs. */
export function inPlaceNodeOf(nodes: readonly Node[]): Map<number, Node> {
  const out = new Map<number, Node>();
  for (const n of nodes) if (isInPlace(n)) for (const v of n.inputs) out.set(v.id, n);
  return out;
}

/** The node as a kernel that can store an output into a slab: itself, or a lone elementwise op or constant as a fused body of one sub-op. */
function asWriter(n: Node): Node | undefined {
  return WRITERS.has(n.op) ? n : (asFusedElementwise(n) ?? asFusedFull(n));
}

/** Whether output `o` of a fused_reduce is a whole-row value (one per element of its row domain), which has a slab. */
function isWholeRow(n: Node, o: number): boolean {
  const types = viewedInputTypes(n.inputs.map((v) => v.type), n.attrs, FUSED_REDUCE_OP);
  if (typeof types === 'string') return false;
  const layout = rowLayout(types, n.attrs);
  if ('message' in layout) return false;
  const r = layout.outputs[o];
  return layout.units.some((u) => r >= u.first && r < u.first + u.count && u.cls === 'full');
}

/** The graph with every concat whose operands fused kernels can store in place marked `in_place`, and those kernels' `out_views`; how many it marked. */
export function concatsInPlace(g: Graph): { graph: Graph; count: number } {
  const { producer, consumers, results, updates } = graphUses(g);
  let nextId = firstFreeId(g);
  const nodes = g.nodes;
  const writesUpdate = (k: number) => nodes[k].outputs.some((v) => updates.has(v.id));
  const replaced = new Map<number, Node>();
  let count = 0;
  nodes.forEach((n, k) => {
    if (n.op !== 'concat' || isInPlace(n) || n.outputs.length !== 1) return;
    const y = n.outputs[0];
    if (y.type.dtype === 'f16' || (consumers.get(y.id) ?? []).some(writesUpdate)) return;
    const shape = y.type.shape;
    const axis = (n.attrs.axis as number) < 0 ? (n.attrs.axis as number) + shape.length : (n.attrs.axis as number);
    const strides = stridesOf(shape);
    if (new Set(n.inputs.map((v) => v.id)).size !== n.inputs.length) return;
    // the operands read by the concat alone live in its buffer; the others are copied there by their kernels
    const alone = (r: Value) => !results.has(r.id) && (consumers.get(r.id) ?? []).every((c) => c === k);
    const operands = new Set(n.inputs.filter(alone).map((v) => v.id));
    // per producer (by index): its node as rewritten so far and the slabs it stores
    const drafts = new Map<number, { node: Node; views: OutputView[] }>();
    const stored: Value[] = []; // the concat's operands: each r, or the copy of r its kernel stores
    let start: Dim = 0;
    const mark = nextId;
    for (const r of n.inputs) {
      const p = producer.get(r.id);
      if (p === undefined) return;
      const draft = drafts.get(p);
      let writer = draft?.node ?? asWriter(replaced.get(p) ?? nodes[p]);
      // a fused_elementwise (or a kernel of its body) may store several operands (it binds the buffer once); the other kernels one
      if (!writer || (draft && !PER_ELEMENT_BODY_OPS.has(writer.op)) || writer.inputs.some((v) => operands.has(v.id))) return;
      let o = writer.outputs.findIndex((v) => v.id === r.id);
      let operand = r;
      if (!alone(r)) {
        // r is read elsewhere too: a fused_elementwise stores a copy of it (one more output, the same register)
        const body = PER_ELEMENT_BODY_OPS.has(writer.op) ? decodeFusedBody(writer.attrs) : 'not elementwise';
        if (typeof body === 'string') {
          nextId = mark;
          return;
        }
        operand = { id: nextId++, type: r.type };
        writer = { ...writer, attrs: { ...writer.attrs, ...encodeFusedBody({ ops: body.ops, outputs: [...body.outputs, body.outputs[o]] }) }, outputs: [...writer.outputs, operand] };
        o = writer.outputs.length - 1;
      }
      if (writer.op === FUSED_REDUCE_OP && !isWholeRow(writer, o)) return;
      const own = draft?.views ?? decodeOutputViews(writer.attrs, writer.outputs.map((v) => v.type), writer.op);
      if (typeof own === 'string' || own.some((v) => v.output === o)) return;
      drafts.set(p, { node: writer, views: [...own, { output: o, offset: mul(start, strides[axis]), strides, buffer: y.id }] });
      stored.push(operand);
      start = add(start, r.type.shape[axis]);
    }
    const rewritten = new Map<number, Node>();
    for (const [p, { node, views }] of drafts) {
      const next: Node = { ...node, attrs: { ...node.attrs, out_views: encodeOutputViews(views.sort((a, b) => a.output - b.output)) } };
      const types = inferOp(next.op, next.inputs.map((v) => v.type), next.attrs);
      if (isShapeError(types) || boundBuffers(next) > MAX_STORAGE_BUFFERS) {
        nextId = mark;
        return;
      }
      rewritten.set(p, next);
    }
    for (const [p, node] of rewritten) replaced.set(p, node);
    replaced.set(k, { ...n, inputs: stored, attrs: { ...n.attrs, in_place: true } });
    count++;
  });
  if (count === 0) return { graph: g, count };
  return { graph: { ...g, nodes: nodes.map((n, k) => replaced.get(k) ?? n) }, count };
}

/** A plain f32 matmul as a fused_matmul with an empty epilogue (it stores its result, register 0), so it can store it through an output view. */
function asFusedMatmul(n: Node): Node | undefined {
  if (n.op !== 'matmul' || n.inputs.length !== 2 || n.outputs.length !== 1 || n.outputs[0].type.dtype !== 'f32') return undefined;
  return { ...n, op: FUSED_MATMUL_OP, attrs: { ...transposeAttrs(n.attrs.transpose_a === true, n.attrs.transpose_b === true), ...encodeFusedBody({ ops: [], outputs: [0] }) } };
}

/**
 * The graph with every transpose whose operand's producer can store it transposed marked `in_place`,
 * and that producer's `out_views`; how many it marked. Attention's heads go back to [B, L, h, d] by a
 * transpose of the [B, h, L, d] product P V: the product's kernel stores element (b, h, l, e) where the
 * transpose's result has it, and the transpose, a copy of the whole activation per layer, goes. The
 * producer is a fused kernel (as for concats: an elementwise body, a matmul epilogue, a row kernel's
 * whole-row output, a lone elementwise op) or a plain f32 matmul (made a fused_matmul with an empty
 * epilogue); the operand is read by the transpose alone and is no graph result, and the transpose's
 * result lives in no in-place concat (run this after concatsInPlace). The values are the same tensors,
 * so the interpreter ignores both attributes; the bits are the same. Pure.
 */
export function transposesInPlace(g: Graph): { graph: Graph; count: number } {
  if (!g.nodes.some((n) => n.op === 'transpose')) return { graph: g, count: 0 };
  const { producer, consumers, results } = graphUses(g);
  const nested = inPlaceNodeOf(g.nodes);
  const replaced = new Map<number, Node>();
  let count = 0;
  g.nodes.forEach((n, k) => {
    if (n.op !== 'transpose' || isInPlace(n) || n.outputs.length !== 1 || n.inputs.length !== 1 || nested.has(n.outputs[0].id)) return;
    const [v] = n.inputs;
    const y = n.outputs[0];
    const p = producer.get(v.id);
    if (p === undefined || v.type.dtype === 'f16' || results.has(v.id) || (consumers.get(v.id) ?? []).some((c) => c !== k)) return;
    const node = replaced.get(p) ?? g.nodes[p];
    const writer = asWriter(node) ?? asFusedMatmul(node);
    const o = writer?.outputs.findIndex((w) => w.id === v.id) ?? -1;
    if (!writer || o < 0 || (writer.op === FUSED_REDUCE_OP && !isWholeRow(writer, o))) return;
    const own = decodeOutputViews(writer.attrs, writer.outputs.map((w) => w.type), writer.op);
    if (typeof own === 'string' || own.some((w) => w.output === o)) return;
    // operand axis a is result axis j where perm[j] = a: its stride is the result's stride there
    const perm = n.attrs.perm as readonly number[];
    const resultStrides = stridesOf(y.type.shape);
    const strides = v.type.shape.map((_, a) => resultStrides[perm.indexOf(a)]);
    const next: Node = { ...writer, attrs: { ...writer.attrs, out_views: encodeOutputViews([...own, { output: o, offset: 0, strides, buffer: y.id }].sort((a, b) => a.output - b.output)) } };
    const types = inferOp(next.op, next.inputs.map((w) => w.type), next.attrs);
    if (isShapeError(types) || boundBuffers(next) > MAX_STORAGE_BUFFERS) return;
    replaced.set(p, next);
    replaced.set(k, { ...n, attrs: { ...n.attrs, in_place: true } });
    count++;
  });
  if (count === 0) return { graph: g, count };
  return { graph: { ...g, nodes: g.nodes.map((n, k) => replaced.get(k) ?? n) }, count };
}
