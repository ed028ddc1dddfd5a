// Elementwise kernels merged once views have freed their bindings: a fused_elementwise B becomes one kernel with an earlier one, A, that computes its inputs or reads them too.
//
// Elementwise fusion (fuse.ts) groups nodes under the 8-storage-buffer limit, counting every distinct
// value a group reads. Later passes shrink what a kernel binds: copies read in place (view-inputs.ts)
// turn an LSTM's four gates into four views of one buffer, bound once. So two kernels that could not be
// one then can be now: the backward cell's kernel computing dc and the one computing dc * f from it, or
// the kernels computing the four gate gradients from the same inputs. A fused_elementwise B is merged
// into a fused_elementwise A that computes some of its inputs, or is among the nearest SIBLINGS earlier
// kernels reading one of them, when both
// iterate over the same shape, every other input of B is defined before A (so no path leads from A to B
// through another node, and the merged kernel can run where A did), B reads none of A's results through
// a view, neither writes a parameter's or state's update (fuse-updates.ts merges those), the merged
// kernel binds at most MAX_STORAGE_BUFFERS buffers (the operands of one in-place concat it stores bind
// that concat's buffer once, codegen/fused.ts). A's results that B alone read become
// registers; the others stay outputs. Each sub-op computes what it did, from the same values, and the
// operands stay opaque to the WGSL compiler (codegen/fused.ts), so the bits are the same. Pure.
import type { AttrValue, Graph, Node, Value } from '../ir/types.ts';
import { graphUses, layerCallsWithout } from '../ir/uses.ts';
import { boundBuffers, decodeFusedBody, decodeInputViews, decodeOutputViews, encodeFusedBody, encodeInputViews, encodeOutputViews, FUSED_OP, type FusedSubOp, type InputView, type OutputView } from '../ops/fused.ts';
import { sameShape } from '../ops/util.ts';
import { MAX_STORAGE_BUFFERS } from './fuse.ts';

/** Earlier readers of each of B's inputs tried as siblings to merge with (a bound on the search). */
const SIBLINGS = 4;

/** A and B as one fused_elementwise node (A first), keeping A's results that `outside` says are read elsewhere. */
function merged(a: Node, b: Node, outside: (v: Value) => boolean): Node | undefined {
  const bodyA = decodeFusedBody(a.attrs);
  const bodyB = decodeFusedBody(b.attrs);
  const viewsA = decodeInputViews(a.attrs, a.inputs.length);
  const viewsB = decodeInputViews(b.attrs, b.inputs.length);
  const outA = decodeOutputViews(a.attrs, a.outputs.map((v) => v.type));
  const outB = decodeOutputViews(b.attrs, b.outputs.map((v) => v.type));
  if (typeof bodyA === 'string' || typeof bodyB === 'string' || typeof viewsA === 'string' || typeof viewsB === 'string' || typeof outA === 'string' || typeof outB === 'string') return undefined;
  const fromA = new Map(a.outputs.map((v, o) => [v.id, o]));
  // B reads A's results as registers, so never through a view
  if (viewsB.some((v) => fromA.has(b.inputs[v.input].id))) return undefined;
  const inputs: Value[] = [...a.inputs];
  const bInput = new Map<number, number>(); // B's input position -> its position among the merged inputs
  // an input A reads the same way (the same value, through the same view or none) is shared
  const viewKey = (views: readonly InputView[], i: number) => {
    const v = views.find((w) => w.input === i);
    return v ? JSON.stringify([v.offset, v.shape, v.strides]) : '-';
  };
  const seen = new Map<string, number>(a.inputs.map((v, i) => [`${v.id} ${viewKey(viewsA, i)}`, i]));
  b.inputs.forEach((v, i) => {
    if (fromA.has(v.id)) return;
    const key = `${v.id} ${viewKey(viewsB, i)}`;
    if (!seen.has(key)) seen.set(key, inputs.push(v) - 1);
    bInput.set(i, seen.get(key)!);
  });
  const m = inputs.length;
  const nA = a.inputs.length;
  const nB = b.inputs.length;
  const regA = (r: number) => (r < nA ? r : m + (r - nA));
  const regB = (r: number) => (r < nB ? (bInput.has(r) ? bInput.get(r)! : regA(bodyA.outputs[fromA.get(b.inputs[r].id)!])) : m + bodyA.ops.length + (r - nB));
  const ops: FusedSubOp[] = [...bodyA.ops.map((s) => ({ ...s, args: s.args.map(regA) })), ...bodyB.ops.map((s) => ({ ...s, args: s.args.map(regB) }))];
  const keptA = a.outputs.flatMap((v, o) => (outside(v) ? [o] : []));
  const outputs = [...keptA.map((o) => regA(bodyA.outputs[o])), ...bodyB.outputs.map(regB)];
  const views: InputView[] = [...viewsA];
  for (const v of viewsB) if (!views.some((w) => w.input === bInput.get(v.input))) views.push({ ...v, input: bInput.get(v.input)! });
  const outViews: OutputView[] = [
    ...outA.flatMap((v) => (keptA.includes(v.output) ? [{ ...v, output: keptA.indexOf(v.output) }] : [])),
    ...outB.map((v) => ({ ...v, output: keptA.length + v.output })),
  ];
  const attrs: Record<string, AttrValue> = { ...encodeFusedBody({ ops, outputs }) };
  if (views.length > 0) attrs.views = encodeInputViews(views);
  if (outViews.length > 0) attrs.out_views = encodeOutputViews(outViews);
  return { op: FUSED_OP, inputs, attrs, outputs: [...keptA.map((o) => a.outputs[o]), ...b.outputs], span: a.span };
}

/** The graph with each fused_elementwise merged into the fused_elementwise that computes its inputs, wherever the rules above allow; each merge as an output id of A and one of B. */
export function mergeElementwise(g: Graph): { graph: Graph; merges: [number, number][] } {
  const { results, updates } = graphUses(g);
  const slots: (Node | undefined)[] = [...g.nodes];
  const slotOf = new Map<number, number>(); // value id -> the slot that defines it
  const readers = new Map<number, Set<number>>(); // value id -> the slots that read it
  slots.forEach((n, k) => {
    n!.outputs.forEach((v) => slotOf.set(v.id, k));
    for (const v of n!.inputs) (readers.get(v.id) ?? readers.set(v.id, new Set()).get(v.id)!).add(k);
  });
  const eligible = (n: Node) => n.op === FUSED_OP && !n.outputs.some((v) => updates.has(v.id));
  const merges: [number, number][] = [];
  for (let k = 0; k < slots.length; k++) {
    const b = slots[k];
    if (!b || !eligible(b)) continue;
    // the producers of B's inputs, and the nearest earlier kernels that read one of them too (siblings), latest first
    const producers = b.inputs.flatMap((v) => (slotOf.has(v.id) ? [slotOf.get(v.id)!] : []));
    const siblings = b.inputs.flatMap((v) => [...(readers.get(v.id) ?? [])].filter((r) => r < k).sort((x, y) => y - x).slice(0, SIBLINGS));
    const candidates = [...new Set([...producers, ...siblings])].sort((x, y) => y - x);
    for (const j of candidates) {
      const a = slots[j];
      if (!a || j >= k || !eligible(a) || !sameShape(a.outputs[0].type.shape, b.outputs[0].type.shape)) continue;
      const fromA = new Set(a.outputs.map((v) => v.id));
      if (!b.inputs.every((v) => fromA.has(v.id) || (slotOf.get(v.id) ?? -1) < j)) continue;
      const outside = (v: Value) => results.has(v.id) || [...(readers.get(v.id) ?? [])].some((r) => r !== k);
      const node = merged(a, b, outside);
      if (!node) continue;
      // outputs stored into one in-place concat's buffer bind it once
      if (boundBuffers(node) > MAX_STORAGE_BUFFERS) continue;
      slots[j] = node;
      slots[k] = undefined;
      for (const v of node.outputs) slotOf.set(v.id, j);
      for (const v of b.inputs) {
        const rs = readers.get(v.id)!;
        rs.delete(k);
        if (!fromA.has(v.id)) rs.add(j);
      }
      merges.push([a.outputs[0].id, b.outputs[0].id]);
      break;
    }
  }
  if (merges.length === 0) return { graph: g, merges };
  const kept = new Set(slots.flatMap((n) => (n ? n.outputs.map((v) => v.id) : [])));
  const layerCalls = layerCallsWithout(g.layerCalls, (id) => slotOf.has(id) && !kept.has(id));
  return { graph: { ...g, nodes: slots.filter((n): n is Node => n !== undefined), layerCalls }, merges };
}
