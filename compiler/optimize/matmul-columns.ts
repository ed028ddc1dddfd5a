// Matmul products read as column blocks: a matmul (or fused_matmul) whose product one fused_elementwise reads only as column blocks becomes one kernel with it (fused_matmul_columns).
//
// An LSTM cell computes z = x W_x + h W_h + b, splits z into four gates (column blocks of width H) and
// combines them per unit. Epilogue fusion (fuse.ts) makes the product and its bias adds one kernel, which
// stores z, and the cell another, which reads z through four views (view-inputs.ts): two dispatches per
// step and direction, and z round-trips through memory. The cell's element (b, j) needs the product's
// columns j, H + j, 2H + j and 3H + j, which no tile of the product's kernel holds together. So the
// merged kernel iterates over the cell's elements and computes those G = 4 dot products itself, one
// fma per k in increasing k as every matmul kernel does, then the product kernel's epilogue at each of
// the G columns (its inputs read through views shifted by the block's offset: the bias's o_g .. o_g +
// H - 1), then the cell's body: the same sub-ops on the same values, so the same bits, in one dispatch.
// A GRU's three gates and a gated MLP's two halves have the same shape.
//
// Merged: a fused_elementwise E (no optimizer update) and the producer P of one of its inputs z when
//   - P is a matmul or a fused_matmul whose one output is z, with b a matrix [k, n], neither operand
//     transposed, k and n known numbers, no output stored into a slab and no random draw in its epilogue
//     (drawn at the product's element index, which the merged kernel does not walk);
//   - z is not a graph result, and read by E and at most by later kernels, which write no optimizer
//     update: then the merged kernel stores z as well, which its blocks must tile (each block an output
//     stored into z's buffer, and an in-place concat of them defines z);
//   - E reads z only through views that are column blocks of E's shape: z's own strides, a known
//     column offset o with o + w <= n, where w is E's last axis and E's other axes are z's;
//   - each invocation's G * k fmas stay within MAX_COLUMN_FMAS: past it the product's own tiled
//     kernel, with its workgroup-memory reuse, pays for the extra dispatch on a GPU;
//   - the kernel binds at most MAX_STORAGE_BUFFERS buffers (a and b, the distinct inputs of both
//     bodies, the outputs), and reads no buffer it writes (an in-place concat's slab).
// The merged node takes E's place and P goes: P's operands are defined before P, E's other inputs
// before E, and z's other readers come after E. A candidate refused for its fmas, its bindings or
// blocks that do not tile a stored z is reported (the fusion report's refusals). Pure.
import type { AttrValue, Graph, Node, Value } from '../ir/types.ts';
import { graphUses, layerCallsWithout } from '../ir/uses.ts';
import { firstFreeId } from '../ir/editor.ts';
import { stridesOf } from '../codegen/per-element.ts';
import { broadcastStrides } from '../codegen/elementwise.ts';
import { boundBuffers, broadcastsTo, decodeFusedBody, decodeInputViews, decodeOutputViews, drawsRandom, encodeFusedBody, encodeInputViews, encodeOutputViews, FUSED_OP, type FusedBody, type FusedSubOp, type InputView, type OutputView } from '../ops/fused.ts';
import { FUSED_MATMUL_OP } from '../ops/fused-matmul.ts';
import { FUSED_COLUMNS_OP } from '../ops/fused-matmul-columns.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import { sameShape } from '../ops/util.ts';
import { add, dimEquals, isConcrete, mul } from '../shapes/dim.ts';
import { inPlaceNodeOf } from './concat-in-place.ts';
import { MAX_STORAGE_BUFFERS } from './fuse.ts';

/** The most fmas one invocation of a merged kernel runs (G blocks times k). */
export const MAX_COLUMN_FMAS = 2048;

/**
 * P (the product's kernel) and E (its reader) as one fused_matmul_columns node, or undefined where the
 * rules above refuse. With `store` (z is read later by others too) the node also stores z, its blocks
 * as outputs in z's buffer, and the concat of them that is z follows it, in place.
 */
function merged(p: Node, e: Node, z: Value, slabOf: ReadonlyMap<number, Node>, store: { nextId: number } | undefined): Node[] | ColumnsRefusal | undefined {
  if ((p.op !== 'matmul' && p.op !== FUSED_MATMUL_OP) || p.outputs.length !== 1 || p.outputs[0].id !== z.id) return undefined;
  if (p.attrs.transpose_a === true || p.attrs.transpose_b === true || p.attrs.out_views !== undefined || drawsRandom(p.attrs)) return undefined;
  const [a, b] = p.inputs;
  const k = a.type.shape[a.type.shape.length - 1];
  const n = b.type.shape[1];
  if (b.type.shape.length !== 2 || a.type.shape.length < 2 || z.type.dtype !== 'f32' || !isConcrete(k) || !isConcrete(n)) return undefined;
  const pBody: FusedBody | string = p.op === 'matmul' ? { ops: [], outputs: [0] } : decodeFusedBody(p.attrs);
  const pViews = p.op === 'matmul' ? [] : decodeInputViews(p.attrs, p.inputs.length, FUSED_MATMUL_OP);
  const eBody = decodeFusedBody(e.attrs);
  const eViews = decodeInputViews(e.attrs, e.inputs.length);
  const eOutViews = decodeOutputViews(e.attrs, e.outputs.map((v) => v.type));
  if (typeof pBody === 'string' || typeof pViews === 'string' || typeof eBody === 'string' || typeof eViews === 'string' || typeof eOutViews === 'string') return undefined;

  // E's reads of z: column blocks of E's shape
  const shape = e.outputs[0].type.shape;
  const w = shape[shape.length - 1];
  if (!isConcrete(w) || !sameShape(shape, [...z.type.shape.slice(0, -1), w])) return undefined;
  const zStrides = stridesOf(z.type.shape);
  const blockOf = new Map<number, number>(); // E's input position -> its block
  const offsets: number[] = [];
  for (const [i, v] of e.inputs.entries()) {
    if (v.id !== z.id) continue;
    const view = eViews.find((x) => x.input === i);
    if (!view || !sameShape(view.shape, shape) || !view.strides.every((s, ax) => dimEquals(s, zStrides[ax]))) return undefined;
    const o = view.offset;
    if (!isConcrete(o) || o < 0 || o + w > n) return undefined;
    blockOf.set(i, offsets.includes(o) ? offsets.indexOf(o) : offsets.push(o) - 1);
  }
  const blocks = offsets.length;
  if (blocks === 0) return undefined;
  if (blocks * k > MAX_COLUMN_FMAS) return { reason: 'fmas', detail: `its ${blocks} column blocks of a product with k = ${k} are ${blocks * k} fmas per element, past ${MAX_COLUMN_FMAS}: the product keeps its own kernel` };

  // the merged node's inputs: a, b, then each (value, view) either body reads, once
  const inputs: Value[] = [a, b];
  const views: InputView[] = [];
  const seen = new Map<string, number>();
  const input = (v: Value, view?: Omit<InputView, 'input'>): number => {
    const key = `${v.id} ${view ? JSON.stringify([view.offset, view.shape, view.strides]) : '-'}`;
    if (!seen.has(key)) {
      const at = inputs.push(v) - 1;
      if (view) views.push({ input: at, ...view });
      seen.set(key, at);
    }
    return seen.get(key)!;
  };
  // P's epilogue input i (node input 2 + i, register 1 + i) at block g: its view over z's axes, shifted by the block's offset
  const last = z.type.shape.length - 1;
  const pInput: number[][] = offsets.map(() => []);
  for (let i = 0; i + 2 < p.inputs.length; i++) {
    const v = p.inputs[2 + i];
    const own = pViews.find((x) => x.input === 2 + i);
    const seenShape = own ? own.shape : v.type.shape;
    if (!broadcastsTo(seenShape, z.type.shape)) return undefined;
    const strides = broadcastStrides(seenShape, z.type.shape, FUSED_COLUMNS_OP, own?.strides);
    offsets.forEach((o, g) => pInput[g].push(input(v, { offset: add(own?.offset ?? 0, mul(o, strides[last])), shape, strides })));
  }
  const eInput = new Map<number, number>();
  for (const [i, v] of e.inputs.entries()) {
    if (blockOf.has(i)) continue;
    const own = eViews.find((x) => x.input === i);
    eInput.set(i, input(v, own ? { offset: own.offset, shape: own.shape, strides: own.strides } : undefined));
  }

  // registers: the blocks, the inputs (register blocks + j is node input 2 + j), then P's body once per block, then E's
  const loaded = blocks + inputs.length - 2;
  const reg = (at: number) => blocks + at - 2;
  const ops: FusedSubOp[] = [];
  const pOut: number[] = [];
  offsets.forEach((_, g) => {
    const base = loaded + ops.length;
    const map = (r: number) => (r === 0 ? g : r <= p.inputs.length - 2 ? reg(pInput[g][r - 1]) : base + (r - (p.inputs.length - 1)));
    ops.push(...pBody.ops.map((s) => ({ ...s, args: s.args.map(map) })));
    pOut.push(map(pBody.outputs[0]));
  });
  const eBase = loaded + ops.length;
  const mapE = (r: number) => (r < e.inputs.length ? (blockOf.has(r) ? pOut[blockOf.get(r)!] : reg(eInput.get(r)!)) : eBase + (r - e.inputs.length));
  ops.push(...eBody.ops.map((s) => ({ ...s, args: s.args.map(mapE) })));
  const outputs = eBody.outputs.map(mapE);

  // z stored too: its blocks, in order of their columns, must tile it
  const outViews: OutputView[] = [...eOutViews];
  const blockValues: Value[] = [];
  const order = offsets.map((o, g) => [o, g]).sort((x, y) => x[0] - y[0]);
  if (store) {
    if (blocks * w !== n || order.some(([o], i) => o !== i * w)) return { reason: 'shape', detail: `the product is read elsewhere too, and its ${blocks} column blocks of width ${w} do not tile its ${n} columns, so the kernel could not store it` };
    for (const [o, g] of order) {
      outViews.push({ output: e.outputs.length + blockValues.length, offset: o, strides: zStrides, buffer: z.id });
      outputs.push(pOut[g]);
      blockValues.push({ id: store.nextId++, type: { dtype: 'f32', shape } });
    }
  }
  const attrs: Record<string, AttrValue> = { columns: offsets, width: w, ...encodeFusedBody({ ops, outputs }) };
  if (views.length > 0) attrs.views = encodeInputViews(views);
  if (outViews.length > 0) attrs.out_views = encodeOutputViews(outViews);
  const node: Node = { op: FUSED_COLUMNS_OP, inputs, attrs, outputs: [...e.outputs, ...blockValues], span: e.span };
  const types = inferOp(FUSED_COLUMNS_OP, inputs.map((v) => v.type), attrs);
  if (isShapeError(types) || !types.every((t, o) => t.dtype === node.outputs[o].type.dtype && sameShape(t.shape, node.outputs[o].type.shape))) return undefined;

  const bound = boundBuffers(node);
  if (bound > MAX_STORAGE_BUFFERS) return { reason: 'bindings', detail: `computing the product's column blocks in its reader would bind ${bound} storage buffers (limit ${MAX_STORAGE_BUFFERS}: a, b, the inputs of both bodies, the outputs${store ? ' and the product' : ''})` };
  // no buffer both read and written: an input that lives in a slab E stores into
  const writes = new Set(eOutViews.flatMap((v) => (v.buffer === undefined ? [] : [v.buffer])));
  if (inputs.some((v) => writes.has(v.id) || writes.has(slabOf.get(v.id)?.outputs[0].id ?? -1))) return undefined;
  if (!store) return [node];
  return [node, { op: 'concat', inputs: blockValues, attrs: { axis: last, in_place: true }, outputs: [z], span: p.span }];
}

/** Why a product read as column blocks kept its own kernel: past the fma bound, past the binding limit, or stored elsewhere in blocks that do not tile it. */
export interface ColumnsRefusal {
  readonly reason: 'fmas' | 'bindings' | 'shape';
  readonly detail: string;
}

/**
 * The graph with each product read only as column blocks computed by its reader, wherever the rules
 * above allow; each merge as the product's id and the reader's first output id, and each refusal of a
 * product its reader reads as column blocks, by the same ids.
 */
export function matmulColumns(g: Graph): { graph: Graph; merges: [number, number][]; refusals: (ColumnsRefusal & { product: number; reader: number })[] } {
  const { producer, consumers, results, updates } = graphUses(g);
  const slabOf = inPlaceNodeOf(g.nodes);
  const slots: Node[][] = g.nodes.map((n) => [n]);
  const ids = { nextId: firstFreeId(g) };
  const merges: [number, number][] = [];
  const refusals: (ColumnsRefusal & { product: number; reader: number })[] = [];
  const writesUpdate = (k: number) => g.nodes[k].outputs.some((v) => updates.has(v.id));
  for (let at = 0; at < slots.length; at++) {
    const e = slots[at][0];
    if (!e || e.op !== FUSED_OP || e.outputs.some((v) => updates.has(v.id))) continue;
    for (const z of new Map(e.inputs.map((v) => [v.id, v])).values()) {
      const j = producer.get(z.id);
      const p = j === undefined ? undefined : slots[j][0];
      const readers = consumers.get(z.id) ?? [];
      if (!p || results.has(z.id) || !readers.includes(at) || readers.some((r) => r < at || writesUpdate(r))) continue;
      const nodes = merged(p, e, z, slabOf, readers.length > 1 ? ids : undefined);
      if (!nodes) continue;
      if (!Array.isArray(nodes)) {
        refusals.push({ ...nodes, product: z.id, reader: e.outputs[0].id });
        continue;
      }
      slots[j!] = [];
      slots[at] = nodes;
      merges.push([z.id, e.outputs[0].id]);
      break;
    }
  }
  if (merges.length === 0) return { graph: g, merges, refusals };
  const kept = new Set(slots.flatMap((x) => x.flatMap((n) => n.outputs.map((v) => v.id))));
  return { graph: { ...g, nodes: slots.flat(), layerCalls: layerCallsWithout(g.layerCalls, (id) => producer.has(id) && !kept.has(id)) }, merges, refusals };
}
