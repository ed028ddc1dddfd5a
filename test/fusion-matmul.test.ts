// Matmul epilogue fusion (fused_matmul, compiler/optimize/fuse.ts): a matmul and the elementwise ops that
// consume its output run as one kernel. Fused and unfused graphs give the same bits in the float64
// interpreter and on WebGPU (Dawn on lavapipe), for both matmul variants (the tiled GPU kernel and the
// CPU kernels, blocked and rows): generated matmuls (random m, n, k, batch axes, broadcasting, symbolic sizes) with
// bias, activation, residual and scaling epilogues, a few hand-built cases the pass must get right, and
// the examples' programs on the tiled variant (test/fusion.test.ts runs them on the variant lavapipe
// picks, the blocked one). DLC_FUSION_MATMUL_CASES sets the number of generated cases (default 24: shader
// compilation of a distinct tiled kernel per case dominates on lavapipe; 80 cases took about 6 minutes).
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Attrs, Graph, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { matmulVectorAccess } from '../compiler/codegen/matmul.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { drawsRandom, FUSED_OP } from '../compiler/ops/fused.ts';
import { inferOp, isShapeError } from '../compiler/ops/index.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { type Dim, evaluate, sym } from '../compiler/shapes/dim.ts';
import { Model } from '../runtime/model.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { evalShape } from '../runtime/sizes.ts';
import { getDevice, type GraphJob, runGraphs } from './gpu-helpers.ts';
import { argsOf, EXAMPLE_CASES } from './helpers.ts';

const SEED = 11;

let nextId = 0;
const span = { file: 'fusion-matmul.test', start: 0, end: 0 };

/** A small graph builder: inputs, nodes through the registry's shape rules, outputs. */
class G {
  readonly inputs: { name: string; value: Value; span: typeof span }[] = [];
  readonly nodes: Node[] = [];
  input(name: string, type: TensorType): Value {
    const value = { id: nextId++, type };
    this.inputs.push({ name, value, span });
    return value;
  }
  op(op: string, inputs: readonly Value[], attrs: Attrs = {}): Value {
    const types = inferOp(op, inputs.map((v) => v.type), attrs);
    if (isShapeError(types)) throw new Error(`${op}: ${types.message}`);
    const outputs = types.map((type) => ({ id: nextId++, type }));
    this.nodes.push({ op, inputs, attrs, outputs, span });
    return outputs[0];
  }
  graph(outputs: Record<string, Value>): Graph {
    return { name: 'g', inputs: this.inputs, params: [], state: [], nodes: this.nodes, outputs: new Map(Object.entries(outputs)), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
  }
}

const f32t = (...shape: Dim[]): TensorType => ({ dtype: 'f32', shape });
const scalar = (b: G, value: number) => b.op('full', [], { shape: [], value, dtype: 'f32' });

/** Bits of a float64 interpreter result, NaN equal to NaN. */
function sameBits(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad++;
  return bad;
}

interface Case extends GraphJob {
  readonly text: string;
}

/**
 * A random matmul with a random epilogue chain; the feeds at concrete sizes (a symbolic B among them).
 * With `transposes`, either operand or both come through a transpose of the last two axes (a matmul
 * prologue: fusion folds it into the operand's loads), m is often a multiple of 4 (where the tiled kernel
 * reads A^T as vec4s), the transposed input sometimes passes through an elementwise op first, and the
 * epilogue may be empty (a plain matmul with a transposed operand).
 */
function randomCase(random: () => number, options: { transposes?: boolean } = {}): Case {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const sizes = new Map<string, number>();
  const batchRank = pick([0, 0, 1, 1, 2]);
  const symbolic = random() < 0.4;
  // m, n and k cross the 32x32 tile and the 32-step k edges now and then; n and k are often multiples
  // of 4, where the tiled kernel reads vec4s
  const m = options.transposes && random() < 0.35 ? 4 * int(1, 12) : int(1, random() < 0.3 ? 70 : 12);
  const n = random() < 0.35 ? 4 * int(1, 18) : int(1, random() < 0.3 ? 70 : 12);
  const k = random() < 0.35 ? 4 * int(1, 12) : int(1, random() < 0.3 ? 40 : 9);
  const batch: Dim[] = Array.from({ length: batchRank }, () => int(1, 3));
  const concrete = (d: Dim) => evaluate(d, sizes);
  let mDim: Dim = m;
  let kDim: Dim = k;
  if (symbolic) {
    // a symbolic batch axis, a symbolic row count (x [B, k] @ w [k, n]) or a symbolic k (x^T [m, B] @ dy [B, n])
    sizes.set('B', int(1, 5));
    if (batchRank > 0) batch[0] = sym('B');
    else if (random() < 0.7) mDim = sym('B');
    else kDim = sym('B');
  }
  const b = new G();
  const feeds = new Map<string, Tensor>();
  const input = (name: string, shape: Dim[]) => {
    const v = b.input(name, f32t(...shape));
    const cs = shape.map(concrete);
    feeds.set(name, tensor('f32', cs, Array.from({ length: cs.reduce((x, y) => x * y, 1) }, () => Math.fround((random() * 2 - 1) * 2))));
    return v;
  };
  // operands' batch axes: the full batch, some axes 1 (broadcast), or none (a weight matrix)
  const batchOf = () => (random() < 0.3 ? [] : batch.map((d) => (random() < 0.25 ? 1 : d)));
  let ta = false;
  let tb = false;
  if (options.transposes) {
    ta = random() < 0.6;
    tb = !ta || random() < 0.5;
  }
  const swap = (r: number) => Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
  /** An operand of shape [..., rows, cols], stored transposed ([..., cols, rows]) when `t`. */
  const operand = (name: string, lead: Dim[], rows: Dim, cols: Dim, t: boolean): Value => {
    if (!t) return input(name, [...lead, rows, cols]);
    let v = input(name, [...lead, cols, rows]);
    if (random() < 0.25) v = b.op(pick(['neg', 'tanh']), [v]);
    return b.op('transpose', [v], { perm: swap(v.type.shape.length) });
  };
  const a = operand('a', batchOf(), mDim, kDim, ta);
  const w = operand('w', random() < 0.5 ? [] : batchOf(), kDim, n, tb);
  const mm = b.op('matmul', [a, w]);
  const outShape = mm.type.shape;
  const steps: string[] = [];
  let x = mm;
  const outputs: Record<string, Value> = {};
  if (random() < 0.25) outputs.mm = mm; // also used outside the epilogue: stored as one more output
  const count = options.transposes ? int(0, 3) : int(1, 4);
  let key: Value | undefined;
  for (let s = 0; s < count; s++) {
    const kind = pick(['bias', 'bias', 'residual', 'scale', 'relu', 'unary', 'binary', 'dropout']);
    if (kind === 'dropout') {
      // a mask drawn at each output element's index, inside the epilogue
      if (!feeds.has('key')) feeds.set('key', tensor('u32', [], [Math.floor(random() * 2 ** 32)]));
      key ??= b.input('key', { dtype: 'u32', shape: [] });
      const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [key], { shape: outShape, stream: s }), scalar(b, 0.4)])], { dtype: 'f32' });
      x = b.op('div', [b.op('mul', [x, keep]), scalar(b, 0.6)]);
    } else if (kind === 'bias') {
      x = b.op('add', [x, input(`bias${s}`, [n])]);
    } else if (kind === 'residual') {
      const shape = outShape.map((d, i) => (i < outShape.length - 2 && random() < 0.3 ? 1 : d)).slice(random() < 0.3 ? Math.min(outShape.length - 2, 1) : 0);
      x = b.op(pick(['add', 'sub']), random() < 0.5 ? [x, input(`res${s}`, shape)] : [input(`res${s}`, shape), x]);
    } else if (kind === 'scale') {
      x = b.op(pick(['mul', 'div']), [x, scalar(b, pick([0.5, 3, 1 / 7, -1.25]))]);
    } else if (kind === 'relu') {
      x = b.op('maximum', [x, scalar(b, 0)]);
    } else if (kind === 'unary') {
      x = b.op(pick(['tanh', 'exp', 'neg', 'abs', 'sigmoid', 'sqrt', 'log', 'sin']), [x]);
    } else {
      // the chain reads the matmul result again (mm * h, h - mm, ...)
      x = b.op(pick(['mul', 'add', 'sub', 'minimum']), random() < 0.5 ? [x, mm] : [mm, x]);
    }
    steps.push(`${b.nodes[b.nodes.length - 1].op}`);
    if (s < count - 1 && random() < 0.15) outputs[`h${s}`] = x;
  }
  outputs.y = x;
  const text = `${ta ? 'T' : ''}[${a.type.shape.join(',')}] @ ${tb ? 'T' : ''}[${w.type.shape.join(',')}] then ${steps.join(', ')}; sizes ${JSON.stringify([...sizes])}; outputs ${Object.keys(outputs).join(',')}`;
  return { graph: b.graph(outputs), feeds, sizes, text };
}

const CASES = Number(process.env.DLC_FUSION_MATMUL_CASES ?? 24);

describe(`${CASES} generated matmul epilogues: fused against unfused`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261125));
  const cases = Array.from({ length: CASES }, () => randomCase(random));
  const fused = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph).graph }));

  it('the cases cover the tiled kernel\'s vec4 loads of A and of B, and scalar loads of each, and epilogues that draw a dropout mask', () => {
    const access = cases.map((c) => matmulVectorAccess(c.graph.nodes.find((n) => n.op === 'matmul')!));
    expect(new Set(access.map((x) => `${x.a} ${x.b}`))).toEqual(new Set(['true true', 'true false', 'false true', 'false false']));
    expect(fused.filter((c) => c.graph.nodes.some((n) => n.op === FUSED_MATMUL_OP && drawsRandom(n.attrs))).length).toBeGreaterThan(2);
  });

  it('every matmul fuses, the fused graph verifies, and the interpreter gives the same bits', () => {
    for (const [i, c] of cases.entries()) {
      const g = fused[i].graph;
      expect(verifyGraph(g), c.text).toEqual([]);
      expect(g.nodes.filter((n) => n.op === FUSED_MATMUL_OP).length, c.text).toBe(1);
      expect(g.nodes.some((n) => n.op === 'matmul'), c.text).toBe(false);
      const feeds = { inputs: c.feeds, params: new Map(), state: new Map() };
      const want = interpretGraph(c.graph, feeds).outputs;
      const got = interpretGraph(g, feeds).outputs;
      for (const [k, t] of want) expect(sameBits(got.get(k)!.data, t.data), `${c.text}: output ${k}`).toBe(0);
    }
  });

  for (const variant of ['gpu', 'cpu'] as const) {
    it(`WebGPU, the ${variant === 'gpu' ? 'tiled' : 'blocked and rows'} matmul kernels: the same bits fused and unfused (all cases in one submission)`, async () => {
      const device = await getDevice();
      const t0 = performance.now();
      const [want, got] = [await runGraphs(device, cases, { variant }), await runGraphs(device, fused, { variant })];
      const bad: string[] = [];
      let compared = 0;
      want.forEach((outs, i) => {
        for (const [k, x] of outs) {
          const y = got[i].get(k)!;
          compared++;
          const at = x.findIndex((word, j) => word !== y[j]);
          if (at >= 0 || x.length !== y.length) bad.push(`${cases[i].text}: output ${k}[${at}] unfused ${x[at]?.toString(16)}, fused ${y[at]?.toString(16)}`);
        }
      });
      console.log(`${variant} variant: ${compared} outputs of ${cases.length} cases compared, ${bad.length} differ (${(performance.now() - t0).toFixed(0)} ms)`);
      expect(bad.slice(0, 5)).toEqual([]);
    }, 300_000);
  }
});

const PROLOGUE_CASES = Number(process.env.DLC_FUSION_PROLOGUE_CASES ?? 16);

describe(`${PROLOGUE_CASES} generated matmuls with transposed operands (prologues): fused against unfused`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261125) + 1);
  const cases = Array.from({ length: PROLOGUE_CASES }, () => randomCase(random, { transposes: true }));
  const fused = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph).graph }));
  const folded = (g: Graph) => g.nodes.find((n) => n.op === 'matmul' || n.op === FUSED_MATMUL_OP)!;

  it('the cases cover vec4 and scalar loads of A^T and of B^T, symbolic sizes, and matmuls with and without an epilogue', () => {
    const access = fused.map((c) => ({ node: folded(c.graph), access: matmulVectorAccess(folded(c.graph)) }));
    const seen = new Set(access.flatMap(({ node, access: x }) => [node.attrs.transpose_a ? `A^T ${x.a}` : '', node.attrs.transpose_b ? `B^T ${x.b}` : ''].filter((t) => t)));
    expect(seen).toEqual(new Set(['A^T true', 'A^T false', 'B^T true', 'B^T false']));
    expect(new Set(fused.map((c) => folded(c.graph).op))).toEqual(new Set(['matmul', FUSED_MATMUL_OP]));
    expect(cases.some((c) => (c.sizes?.size ?? 0) > 0)).toBe(true);
  });

  it('every transpose folds into the matmul, the fused graph verifies, and the interpreter gives the same bits', () => {
    for (const [i, c] of cases.entries()) {
      const g = fused[i].graph;
      expect(verifyGraph(g), c.text).toEqual([]);
      expect(g.nodes.some((n) => n.op === 'transpose'), c.text).toBe(false);
      expect(g.nodes.filter((n) => n.op === 'matmul' || n.op === FUSED_MATMUL_OP).length, c.text).toBe(1);
      const mm = c.graph.nodes.find((n) => n.op === 'matmul')!;
      const tr = (v: Value) => c.graph.nodes.some((n) => n.op === 'transpose' && n.outputs[0].id === v.id);
      expect([folded(g).attrs.transpose_a ?? false, folded(g).attrs.transpose_b ?? false], c.text).toEqual([tr(mm.inputs[0]), tr(mm.inputs[1])]);
      const feeds = { inputs: c.feeds, params: new Map(), state: new Map() };
      const want = interpretGraph(c.graph, feeds).outputs;
      const got = interpretGraph(g, feeds).outputs;
      for (const [k, t] of want) expect(sameBits(got.get(k)!.data, t.data), `${c.text}: output ${k}`).toBe(0);
    }
  });

  for (const variant of ['gpu', 'cpu'] as const) {
    it(`WebGPU, the ${variant === 'gpu' ? 'tiled' : 'blocked and rows'} matmul kernels reading transposed operands: the same bits as the transpose and the matmul`, async () => {
      const device = await getDevice();
      const [want, got] = [await runGraphs(device, cases, { variant }), await runGraphs(device, fused, { variant })];
      const bad: string[] = [];
      want.forEach((outs, i) => {
        for (const [k, x] of outs) {
          const y = got[i].get(k)!;
          const at = x.findIndex((word, j) => word !== y[j]);
          if (at >= 0 || x.length !== y.length) bad.push(`${cases[i].text}: output ${k}[${at}] unfused ${x[at]?.toString(16)}, fused ${y[at]?.toString(16)}`);
        }
      });
      expect(bad.slice(0, 5)).toEqual([]);
    }, 300_000);
  }
});

describe('the pass on hand-built matmul graphs', () => {
  it('x @ w + b, relu: one fused_matmul with the bias as a strided input', () => {
    const b = new G();
    const x = b.input('x', f32t(sym('B'), 5));
    const w = b.input('w', f32t(5, 3));
    const bias = b.input('b', f32t(3));
    const y = b.op('maximum', [b.op('add', [b.op('matmul', [x, w]), bias]), scalar(b, 0)]);
    const { graph, report } = fuseWithReport(b.graph({ y }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_MATMUL_OP]);
    expect(graph.nodes[0].inputs.map((v) => v.id)).toEqual([x.id, w.id, bias.id]);
    expect(report.groups.map((g) => [g.op, g.ops])).toEqual([[FUSED_MATMUL_OP, ['matmul', 'add', 'maximum']]]);
  });

  it("a constant that one group folds and a fused matmul binds as its operand (an LSTM's zero state times W_h) is kept, before the matmul", () => {
    const b = new G();
    const zero = b.op('full', [], { shape: [sym('B'), 5], value: 0, dtype: 'f32' });
    const x = b.input('x', f32t(sym('B'), 5));
    const w = b.input('w', f32t(5, 3));
    const bias = b.input('b', f32t(3));
    const y = b.op('add', [b.op('matmul', [zero, w]), bias]);
    const c = b.op('mul', [b.op('sigmoid', [x]), zero]);
    const g = b.graph({ y, c });
    const { graph } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual(['full', FUSED_MATMUL_OP, FUSED_OP]);
    const sizes = new Map([['B', 2]]);
    const feeds = { inputs: new Map([['x', tensor('f32', [2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])], ['w', tensor('f32', [5, 3], Array.from({ length: 15 }, (_, i) => i / 7))], ['b', tensor('f32', [3], [1, -2, 3])]]), params: new Map(), state: new Map() };
    expect([...interpretGraph(graph, feeds, { sizes }).outputs.get('y')!.data]).toEqual([1, -2, 3, 1, -2, 3]);
  });

  it('a matmul result used elsewhere is stored as one more output; with fusion of matmuls off nothing changes', () => {
    const b = new G();
    const x = b.input('x', f32t(4, 5));
    const w = b.input('w', f32t(5, 3));
    const mm = b.op('matmul', [x, w]);
    const y = b.op('tanh', [mm]);
    const s = b.op('reduce_sum', [mm], { axes: [0], keepdims: false });
    const g = b.graph({ y, s });
    const { graph } = fuseWithReport(g);
    const fm = graph.nodes.find((n) => n.op === FUSED_MATMUL_OP)!;
    expect(fm.outputs.map((v) => v.id)).toEqual([mm.id, y.id]);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_MATMUL_OP, 'reduce_sum']);
    expect(fuseWithReport(g, { matmul: false }).graph.nodes.map((n) => n.op)).toEqual(['matmul', 'tanh', 'reduce_sum']);
  });

  it('refusals: a group of another shape, a second matmul, the binding limit, a cycle', () => {
    const b = new G();
    const x = b.input('x', f32t(4, 5));
    const w = b.input('w', f32t(5, 3));
    const v = b.input('v', f32t(5, 3));
    const m1 = b.op('matmul', [x, w]);
    const m2 = b.op('matmul', [x, v]);
    const h = b.op('add', [m1, m2]); // one epilogue, two matmuls: the second stays a matmul
    const r = b.op('reduce_sum', [m1], { axes: [1], keepdims: true });
    const z = b.op('sub', [h, r]); // m1 feeds the group directly and through the reduction: a cycle
    const wide = b.op('add', [b.op('reshape', [m2], { shape: [4, 3, 1] }), b.input('q', f32t(4, 3, 2))]);
    const { graph, report } = fuseWithReport(b.graph({ z, wide }));
    expect(verifyGraph(graph)).toEqual([]);
    const mm = report.rejected.filter((x) => x.op === 'matmul');
    expect(mm.map((x) => x.reason).sort()).toEqual(['cycle']);
    expect(graph.nodes.filter((n) => n.op === FUSED_MATMUL_OP).length).toBe(1);
    // a tight limit: a and b and one output already take 3 buffers
    const tight = fuseWithReport(b.graph({ z, wide }), { maxStorageBuffers: 3 });
    expect(tight.report.rejected.some((x) => x.op === 'matmul' && x.reason === 'bindings')).toBe(true);
    for (const n of tight.graph.nodes) if (n.op === FUSED_MATMUL_OP || n.op === FUSED_OP) expect(n.inputs.length + n.outputs.length).toBeLessThanOrEqual(3);
  });

  it('prologues: dW = x^T @ dy and dx = dy @ w^T read x and w directly; a transpose read by two matmuls folds into both', () => {
    const b = new G();
    const x = b.input('x', f32t(sym('B'), 6));
    const w = b.input('w', f32t(6, 3));
    const dy = b.input('dy', f32t(sym('B'), 3));
    const xt = b.op('transpose', [x], { perm: [1, 0] });
    const dw = b.op('matmul', [xt, dy]);
    const wt = b.op('transpose', [w], { perm: [1, 0] });
    const dx = b.op('tanh', [b.op('matmul', [dy, wt])]);
    const gram = b.op('matmul', [xt, x]); // the same transpose, folded into a second matmul
    const { graph, report } = fuseWithReport(b.graph({ dw, dx, gram }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => [n.op, n.inputs.map((v) => v.id), n.attrs.transpose_a ?? false, n.attrs.transpose_b ?? false])).toEqual([
      ['matmul', [x.id, dy.id], true, false],
      [FUSED_MATMUL_OP, [dy.id, w.id], false, true],
      ['matmul', [x.id, x.id], true, false],
    ]);
    expect(report.prologues.map((p) => [b.nodes[p.transpose].op, p.matmul, p.operand])).toEqual([
      ['transpose', 1, 'a'],
      ['transpose', 5, 'a'],
      ['transpose', 3, 'b'],
    ]);
    expect(fuseWithReport(b.graph({ dw, dx, gram }), { prologues: false }).graph.nodes.filter((n) => n.op === 'transpose').length).toBe(2);
  });

  it('prologues: broadcast batch axes, a transpose of both operands, and a transpose of a transposed operand flips the attribute back', () => {
    const b = new G();
    const q = b.input('q', f32t(2, sym('B'), 5, 4));
    const k = b.input('k', f32t(1, sym('B'), 7, 4));
    const s = b.op('matmul', [q, b.op('transpose', [k], { perm: [0, 1, 3, 2] })]); // [2, B, 5, 7]
    const g1 = fuseWithReport(b.graph({ s }));
    expect(g1.graph.nodes.map((n) => [n.op, n.attrs])).toEqual([['matmul', { transpose_b: true }]]);
    // a hand-written matmul that already reads A transposed: folding a transpose of A gives a plain read
    const b2 = new G();
    const y = b2.input('y', f32t(3, 5));
    const z = b2.input('z', f32t(5, 4));
    const m = b2.op('matmul', [b2.op('transpose', [y], { perm: [1, 0] }), b2.op('transpose', [z], { perm: [1, 0] })], { transpose_a: true, transpose_b: true });
    const g2 = fuseWithReport(b2.graph({ m }));
    expect(verifyGraph(g2.graph)).toEqual([]);
    expect(g2.graph.nodes.map((n) => [n.op, n.inputs.map((v) => v.id), n.attrs])).toEqual([['matmul', [y.id, z.id], {}]]);
    const random = seededRandom(3);
    const feeds = new Map([['y', tensor('f32', [3, 5], Array.from({ length: 15 }, () => random()))], ['z', tensor('f32', [5, 4], Array.from({ length: 20 }, () => random()))]]);
    const run = (g: Graph) => interpretGraph(g, { inputs: feeds, params: new Map(), state: new Map() }).outputs.get('m')!.data;
    expect(sameBits(run(g2.graph), run(b2.graph({ m })))).toBe(0);
  });

  it('prologues through a sibling: transpose(k, [0, 2, 3, 1]) read by a matmul is the swap of transpose(k, [0, 2, 1, 3]); the matmul reads that with transpose_b', () => {
    const b = new G();
    const q = b.input('q', f32t(sym('B'), 2, 5, 4)); // [B, h, T, d]
    const k = b.input('k', f32t(sym('B'), 5, 2, 4)); // [B, T, h, d]
    const p = b.input('p', f32t(sym('B'), 2, 5, 5));
    const kh = b.op('transpose', [k], { perm: [0, 2, 1, 3] }); // [B, h, T, d]
    const o = b.op('matmul', [p, kh]); // [B, h, T, d]
    const kt = b.op('transpose', [k], { perm: [0, 2, 3, 1] }); // [B, h, d, T]
    const s = b.op('matmul', [q, kt]); // [B, h, T, T]
    const e = b.op('exp', [k]);
    const late = b.op('transpose', [e], { perm: [0, 2, 3, 1] }); // its sibling comes after its matmul: it stays
    const u = b.op('matmul', [q, late]);
    const sib = b.op('transpose', [e], { perm: [0, 2, 1, 3] });
    const { graph, report } = fuseWithReport(b.graph({ o, s, u, sib }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(report.prologues.map((x) => [b.nodes[x.transpose].attrs.perm, x.matmul, x.operand, x.sibling])).toEqual([[[0, 2, 3, 1], 3, 'b', 0]]);
    const mm = graph.nodes.find((n) => n.op === 'matmul' && n.outputs[0].id === s.id)!;
    expect([mm.inputs.map((v) => v.id), mm.attrs]).toEqual([[q.id, kh.id], { transpose_b: true }]);
    expect(graph.nodes.filter((n) => n.op === 'transpose').map((n) => n.attrs.perm)).toEqual([[0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]]);
    const random = seededRandom(5);
    const fill = (shape: number[]) => tensor('f32', shape, Array.from({ length: shape.reduce((a, x) => a * x, 1) }, () => random() - 0.5));
    const feeds = new Map([['q', fill([3, 2, 5, 4])], ['k', fill([3, 5, 2, 4])], ['p', fill([3, 2, 5, 5])]]);
    const run = (g: Graph) => interpretGraph(g, { inputs: feeds, params: new Map(), state: new Map() }).outputs;
    const [want, got] = [run(b.graph({ o, s, u, sib })), run(graph)];
    for (const name of ['o', 's', 'u', 'sib']) expect(sameBits(got.get(name)!.data, want.get(name)!.data), name).toBe(0);
    // two siblings each read only by matmuls: one folds into the other, never both
    const b2 = new G();
    const k2 = b2.input('k', f32t(3, 5, 2, 4));
    const q2 = b2.input('q', f32t(3, 2, 5, 4));
    const a2 = b2.op('matmul', [q2, b2.op('transpose', [k2], { perm: [0, 2, 3, 1] })]);
    const c2 = b2.op('matmul', [b2.op('transpose', [k2], { perm: [0, 2, 1, 3] }), b2.input('w', f32t(4, 3))]);
    const both = fuseWithReport(b2.graph({ a2, c2 }));
    expect(verifyGraph(both.graph)).toEqual([]);
    expect(both.graph.nodes.filter((n) => n.op === 'transpose')).toHaveLength(1);
    expect(both.report.prologues).toHaveLength(1);
  });

  it('refusals: a transpose also read by something else, or returned, stays (reason shared); other permutations are left alone', () => {
    const b = new G();
    const x = b.input('x', f32t(4, 6));
    const w = b.input('w', f32t(4, 3));
    const xt = b.op('transpose', [x], { perm: [1, 0] });
    const y = b.op('matmul', [xt, w]);
    const e = b.op('exp', [xt]);
    const h = b.input('h', f32t(2, 3, 5));
    const ht = b.op('transpose', [h], { perm: [1, 0, 2] }); // not the last two axes
    const z = b.op('matmul', [ht, b.input('v', f32t(5, 2))]);
    const { graph, report } = fuseWithReport(b.graph({ y, e, z }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.filter((n) => n.op === 'transpose').length).toBe(2);
    expect(report.prologues).toEqual([]);
    expect(report.rejected.filter((r) => r.reason === 'shared').map((r) => [r.op, b.nodes[r.group].op, r.detail])).toEqual([
      ['transpose', 'matmul', 'the exp at node 2 also reads the transposed value: the transpose stays and the matmul reads its result'],
    ]);
    const b2 = new G();
    const x2 = b2.input('x', f32t(4, 6));
    const xt2 = b2.op('transpose', [x2], { perm: [1, 0] });
    const y2 = b2.op('matmul', [xt2, b2.input('w', f32t(4, 3))]);
    const returned = fuseWithReport(b2.graph({ y: y2, xt: xt2 }));
    expect(returned.report.rejected.map((r) => [r.reason, r.detail])).toEqual([['shared', 'the graph returns the transposed value: the transpose stays and the matmul reads its result']]);
    expect(returned.graph.nodes.map((n) => n.op)).toEqual(['transpose', 'matmul']);
  });
});

// ---- the examples on the tiled variant ---------------------------------------------------------------

let live: Model | undefined;
afterEach(() => {
  live?.dispose();
  live = undefined;
});

async function results(program: ModelProgram, sizes: Record<string, number>, batch: Record<string, Float32Array | Int32Array>): Promise<Map<string, Uint32Array>> {
  const model = await Model.create(program, { seed: SEED, sizes, kernels: 'gpu' });
  live = model;
  const out = new Map<string, Uint32Array>();
  const bits = (xs: ArrayLike<number>) => new Uint32Array(Float32Array.from(xs).buffer);
  for (const [k, v] of Object.entries(await model.evaluate(batch))) out.set(`evaluate ${k}`, bits([v as number]));
  for (const [k, v] of Object.entries(await model.predict(batch))) out.set(`predict ${k}`, bits(v as ArrayLike<number>));
  for (const [k, v] of Object.entries(await model.trainStep(batch).values())) out.set(`step ${k}`, bits([v as number]));
  for (const [k, t] of decodeSafetensors(await model.saveWeights()).tensors) out.set(`weights ${k}`, bits(t.data as ArrayLike<number>));
  model.dispose();
  live = undefined;
  return out;
}

describe('examples on the tiled matmul kernels: the fused program against the unfused one', () => {
  for (const c of EXAMPLE_CASES.filter((x) => ['MnistMlp', 'EncoderProbe', 'CartPolePolicy', 'AutoEncoder'].includes(x.model))) {
    it(`${c.file}: ${c.model}`, async () => {
      const file = `examples/${c.file}.dl`;
      const text = readFileSync(file, 'utf8');
      const modelArgs = new Map([[c.model, argsOf(c.model, c.args)]]);
      const program = (fuse: boolean) => compileSource(text, file, undefined, { modelArgs, fuse }).programs.find((p) => p.model === c.model)!;
      const [unfused, fused] = [program(false), program(true)];
      expect(fused.graphs.steps.some((s) => s.kernels.some((k) => k.op === FUSED_MATMUL_OP))).toBe(true);
      const random = seededRandom(SEED);
      const bound = new Map(Object.entries(c.sizes));
      const batch: Record<string, Float32Array | Int32Array> = {};
      for (const i of unfused.inputs) {
        const n = evalShape(i.shape, bound).reduce((x, y) => x * y, 1);
        batch[i.name] = i.dtype === 'f32' ? Float32Array.from({ length: n }, () => random() - 0.5) : Int32Array.from({ length: n }, () => Math.floor(random() * (c.intRange?.[i.name] ?? 2)));
      }
      const want = await results(unfused, c.sizes, batch);
      const got = await results(fused, c.sizes, batch);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      const differ = [...want].filter(([k, x]) => x.some((w, i) => w !== got.get(k)![i])).map(([k]) => k);
      console.log(`${c.model} (tiled): ${want.size - differ.length} of ${want.size} results bit-identical fused and unfused`);
      expect(differ).toEqual([]);
    }, 120_000);
  }
});
