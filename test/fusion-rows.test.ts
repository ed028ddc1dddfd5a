// Reduction fusion (compiler/optimize/fuse-rows.ts, fused_reduce): softmax, layer norm, cross-entropy and generated row graphs compute what the unfused graphs do, in the interpreter and on WebGPU (Dawn on lavapipe), and the pass says why it did not fuse.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileTraining } from '../compiler/frontend/train.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { AttrValue, Graph, Value } from '../compiler/ir/types.ts';
import { drawsRandom, FUSED_OP } from '../compiler/ops/fused.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { FUSED_REDUCE_OP } from '../compiler/ops/fused-reduce.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { fuseGraph } from '../compiler/optimize/fusion.ts';
import { fuseRowsWithReport } from '../compiler/optimize/fuse-rows.ts';
import { type Dim, evaluate, sym } from '../compiler/shapes/dim.ts';
import { getDevice, type GraphJob, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G, scalar } from './graph-builder.ts';
import { argsOf } from './helpers.ts';




function softmax(b: G, x: Value, axis = -1): Value {
  const e = b.op('exp', [b.op('sub', [x, b.op('reduce_max', [x], { axes: [axis], keepdims: true })])]);
  return b.op('div', [e, b.op('reduce_sum', [e], { axes: [axis], keepdims: true })]);
}

/** Inverted dropout of `x` with probability `p`, its mask drawn from `key` (as std.nn's Dropout). */
function dropout(b: G, x: Value, key: Value, p: number, stream = 0): Value {
  const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [key], { shape: x.type.shape, stream }), scalar(b, p)])], { dtype: 'f32' });
  return b.op('div', [b.op('mul', [x, keep]), scalar(b, 1 - p)]);
}

function layerNorm(b: G, x: Value, gamma: Value, beta: Value): Value {
  const n = x.type.shape[x.type.shape.length - 1] as number;
  const mean = b.op('mul', [b.op('reduce_sum', [x], { axes: [-1], keepdims: true }), scalar(b, 1 / n)]);
  const xc = b.op('sub', [x, mean]);
  const v = b.op('mul', [b.op('reduce_sum', [b.op('mul', [xc, xc])], { axes: [-1], keepdims: true }), scalar(b, 1 / n)]);
  const y = b.op('mul', [xc, b.op('rsqrt', [b.op('add', [v, scalar(b, 1e-5)])])]);
  return b.op('add', [b.op('mul', [y, gamma]), beta]);
}

/** Feeds for a graph's inputs at the given sizes: uniform values in [-2, 2) (a u32 key: any u32). */
function feedsOf(g: Graph, sizes: ReadonlyMap<string, number>, random: () => number): Map<string, Tensor> {
  const feeds = new Map<string, Tensor>();
  for (const i of g.inputs) {
    const shape = i.value.type.shape.map((d) => evaluate(d, sizes));
    const n = shape.reduce((a, c) => a * c, 1);
    const draw = i.value.type.dtype === 'u32' ? () => Math.floor(random() * 2 ** 32) : () => Math.fround(random() * 4 - 2);
    feeds.set(i.name, tensor(i.value.type.dtype, shape, Array.from({ length: n }, draw)));
  }
  return feeds;
}

/** Elements whose float32 values differ by more than `tol` relative (NaN equal to NaN), and how many differ in bits. */
function compareWords(a: Uint32Array, b: Uint32Array, tol: number): { bad: number; bits: number; worst: number } {
  const x = new Float32Array(a.buffer, a.byteOffset, a.length);
  const y = new Float32Array(b.buffer, b.byteOffset, b.length);
  let bad = a.length === b.length ? 0 : Math.max(a.length, b.length);
  let bits = 0;
  let worst = 0;
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (a[i] === b[i]) continue;
    bits++;
    if (Number.isNaN(x[i]) && Number.isNaN(y[i])) continue;
    const rel = Math.abs(x[i] - y[i]) / Math.max(Math.abs(x[i]), Math.abs(y[i]), 1e-30);
    worst = Math.max(worst, Number.isNaN(rel) ? Infinity : rel);
    if (!(rel <= tol)) bad++;
  }
  return { bad, bits, worst };
}

/** Every output of two runs of the same graphs: those over 1e-5 relative (as text), how many were compared and how many differ in bits. */
function compareRuns(want: readonly Map<string, Uint32Array>[], got: readonly Map<string, Uint32Array>[], texts: readonly string[]): { bad: string[]; compared: number; differ: number } {
  const bad: string[] = [];
  let compared = 0;
  let differ = 0;
  want.forEach((outs, i) => {
    for (const [k, x] of outs) {
      compared++;
      const r = compareWords(x, got[i].get(k)!, 1e-5);
      if (r.bits > 0) differ++;
      if (r.bad > 0) bad.push(`${texts[i]}: output ${k}: ${r.bad} elements over 1e-5 relative (worst ${r.worst})`);
    }
  });
  return { bad, compared, differ };
}

interface Case extends GraphJob {
  readonly text: string;
}

function handCases(): Case[] {
  const random = seededRandom(11);
  const cases: Case[] = [];
  const add = (text: string, build: (b: G) => Record<string, Value>, sizes: Map<string, number> = new Map()) => {
    const b = new G();
    const graph = b.graph(build(b));
    cases.push({ text, graph, feeds: feedsOf(graph, sizes, random), sizes });
  };
  add('softmax [5, 10] (per thread)', (b) => ({ y: softmax(b, b.input('x', f32t(5, 10))) }));
  add('softmax [3, 300] (a workgroup per row)', (b) => ({ y: softmax(b, b.input('x', f32t(3, 300))) }));
  add('softmax over axis 0 of [B, 7]', (b) => ({ y: softmax(b, b.input('x', f32t(sym('B'), 7)), 0) }), new Map([['B', 9]]));
  add("attention weights' dropout: softmax [B, 2, 6, 6] then a mask drawn in the same kernel", (b) => {
    const x = b.input('x', f32t(sym('B'), 2, 6, 6));
    return { y: dropout(b, softmax(b, x), b.input('key', { dtype: 'u32', shape: [] }), 0.25, 3) };
  }, new Map([['B', 3]]));
  add('layer norm [B, 4, 24]', (b) => ({ y: layerNorm(b, b.input('x', f32t(sym('B'), 4, 24)), b.input('g', f32t(24)), b.input('beta', f32t(24))) }), new Map([['B', 3]]));
  add("a layer norm's parameter gradients: two sums of one cotangent over the rows [B, 24]", (b) => {
    const dy = b.input('dy', f32t(sym('B'), 24));
    const xhat = b.input('xhat', f32t(sym('B'), 24));
    return { dbeta: b.op('reduce_sum', [dy], { axes: [0] }), dgamma: b.op('reduce_sum', [b.op('mul', [dy, xhat])], { axes: [0] }) };
  }, new Map([['B', 70]]));
  add('cross-entropy with logsumexp [B, 10]', (b) => {
    const x = b.input('x', f32t(sym('B'), 10));
    const t = b.input('t', f32t(sym('B'), 10));
    const m = b.op('reduce_max', [x], { axes: [1], keepdims: true });
    const lse = b.op('add', [m, b.op('log', [b.op('reduce_sum', [b.op('exp', [b.op('sub', [x, m])])], { axes: [1], keepdims: true })])]);
    const per = b.op('reduce_sum', [b.op('mul', [t, b.op('sub', [x, lse])])], { axes: [1] });
    return { loss: b.op('reduce_sum', [b.op('neg', [per])], { axes: [0] }), lse: b.op('reshape', [lse], { shape: [sym('B')] }) };
  }, new Map([['B', 6]]));
  add('noise from row-constant operands, summed: sum(2.0 * random_normal([B, 4])) and sum(w * noise) per row (a draw is per element)', (b) => {
    const key = b.input('key', { dtype: 'u32', shape: [] });
    const w = b.input('w', f32t(1));
    const x = b.input('x', f32t(sym('B'), 4)); // binds B, and is summed on its own
    const noise = b.op('mul', [scalar(b, 2), b.op('random_normal', [key], { shape: [sym('B'), 4], stream: 1 })]);
    const scaled = b.op('mul', [w, b.op('random_normal', [key], { shape: [sym('B'), 4], stream: 2 })]);
    return { total: b.op('reduce_sum', [noise], { axes: [1] }), rows: b.op('reduce_sum', [scaled], { axes: [1] }), xs: b.op('reduce_sum', [x], { axes: [1] }) };
  }, new Map([['B', 5]]));
  return cases;
}

describe('hand-built row graphs', () => {
  const cases = handCases();
  it('each fuses into one fused_reduce per row domain, verifies, and the interpreter gives the same bits', () => {
    for (const c of cases) {
      const { graph } = fuseGraph(c.graph);
      expect(verifyGraph(graph), c.text).toEqual([]);
      expect(graph.nodes.some((n) => n.op === FUSED_REDUCE_OP), c.text).toBe(true);
      const feeds = { inputs: c.feeds, params: new Map(), state: new Map(), sizes: c.sizes };
      const want = interpretGraph(c.graph, feeds).outputs;
      const got = interpretGraph(graph, feeds).outputs;
      for (const [k, t] of want) expect([...got.get(k)!.data].every((v, i) => Object.is(v, t.data[i])), `${c.text}: ${k}`).toBe(true);
    }
    const soft = fuseGraph(cases[0].graph).graph;
    expect(soft.nodes.map((n) => n.op)).toEqual([FUSED_REDUCE_OP]);
    // the dropout's mask is drawn by the softmax's row kernel, at each element's flat index
    const dropped = fuseGraph(cases[3].graph).graph;
    expect(dropped.nodes.map((n) => n.op)).toEqual([FUSED_REDUCE_OP]);
    expect(lowerNode(dropped.nodes[0])[0].wgsl).toMatch(/dlc_philox\(vec4<u32>\(\(fb \+ j0 \* p\.frs\[0\]\.x\)/);
    const ln = fuseGraph(cases[4].graph).graph;
    expect(ln.nodes.map((n) => n.op)).toEqual([FUSED_REDUCE_OP]);
    // sibling sums of one value over the same rows are one kernel with two results
    const grads = fuseGraph(cases[5].graph).graph;
    expect(grads.nodes.map((n) => [n.op, n.outputs.length])).toEqual([[FUSED_REDUCE_OP, 2]]);
  });

  it('sibling sums over other axes stay in their own kernels', () => {
    const b = new G();
    const dy = b.input('dy', f32t(6, 24));
    const graph = b.graph({ cols: b.op('reduce_sum', [dy], { axes: [0] }), rows: b.op('reduce_sum', [b.op('exp', [dy])], { axes: [1] }) });
    const fused = fuseGraph(graph).graph;
    expect(verifyGraph(fused)).toEqual([]);
    expect(fused.nodes.map((n) => n.op)).toEqual(['reduce_sum', FUSED_REDUCE_OP]);
  });

  it('WebGPU: fused and unfused agree within 1e-5 relative (in fact bit for bit)', async () => {
    const device = await getDevice();
    const fused = cases.map((c) => ({ ...c, graph: fuseGraph(c.graph).graph }));
    const [want, got] = [await runGraphs(device, cases), await runGraphs(device, fused)];
    const { bad, differ } = compareRuns(want, got, cases.map((c) => c.text));
    expect(bad).toEqual([]);
    expect(differ).toBe(0);
  }, 120_000);
});


// ---- generated row graphs -----------------------------------------------------------------------------

const GRAPHS = Number(process.env.DLC_FUSION_ROW_GRAPHS ?? 500);

/**
 * A random row graph: an input x of a random shape (rank 1 to 3, sometimes a symbolic B, sometimes a
 * row longer than 64 so the workgroup-per-row kernel runs), a prologue chain, a reduction (sum or max,
 * keepdims or not, over the last axis or a random set), row work, an epilogue that broadcasts the row
 * value back, now and then a second pass (a reduction of the epilogue), and random outputs of each kind.
 */
function randomRowCase(random: () => number, index: number): Case {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const b = new G();
  const sizes = new Map<string, number>();
  const rank = int(1, 3);
  const long = random() < 0.15;
  const concrete = Array.from({ length: rank }, () => int(1, 6));
  let axes: number[];
  if (random() < 0.6) axes = [rank - 1];
  else {
    axes = Array.from({ length: rank }, (_, a) => a).filter(() => random() < 0.5);
    if (axes.length === 0) axes = [int(0, rank - 1)];
  }
  if (long) concrete[axes[axes.length - 1]] = int(65, 300);
  for (const a of axes) if (concrete[a] === 1) concrete[a] = 2;
  const shape: Dim[] = [...concrete];
  if (random() < 0.4) {
    shape[0] = sym('B');
    sizes.set('B', concrete[0]);
  }
  // a row length known only at run time (a sequence length): 32 lanes per row when the rows are many too
  const last = axes[axes.length - 1];
  if (last > 0 && random() < 0.3) {
    shape[last] = sym('T');
    sizes.set('T', concrete[last]);
  }
  const keep = shape.map((d, a) => (axes.includes(a) ? 1 : d));
  const x = b.input('x', f32t(...shape));
  const vec = b.input('v', f32t(shape[rank - 1]));
  const steps: string[] = [];
  const unary = () => pick(['exp', 'tanh', 'neg', 'abs', 'sigmoid', 'sin']);
  const binary = () => pick(['add', 'sub', 'mul', 'maximum', 'minimum']);
  let full = x;
  for (let s = int(0, 2); s > 0; s--) {
    const r = random();
    full = r < 0.4 ? b.op(unary(), [full]) : r < 0.7 ? b.op(binary(), [full, vec]) : b.op(binary(), [full, scalar(b, pick([0.5, -1.5, 3]))]);
    steps.push(b.nodes[b.nodes.length - 1].op);
  }
  // random draws: a row kernel draws those over its whole domain at each element's index (recomputed in
  // every pass that needs them); one over the rows alone stays a kernel of its own
  let key: Value | undefined;
  const keyOf = () => (key ??= b.input('key', { dtype: 'u32', shape: [] }));
  if (random() < 0.15) {
    full = random() < 0.5 ? dropout(b, full, keyOf(), 0.3, int(0, 3)) : b.op('add', [full, b.op('random_normal', [keyOf()], { shape, stream: int(0, 3) })]);
    steps.push('drawn before the reduction');
  }
  const reduce = (v: Value): Value => {
    const op = pick(['reduce_sum', 'reduce_max']);
    const keepdims = random() < 0.7;
    let r = b.op(op, [v], { axes, keepdims });
    steps.push(`${op}${keepdims ? '' : ' (dropped axes)'}`);
    if (!keepdims) r = b.op('reshape', [r], { shape: keep });
    return r;
  };
  let row = reduce(full);
  for (let s = int(0, 2); s > 0; s--) {
    row = random() < 0.5 ? b.op(pick(['tanh', 'neg', 'sigmoid']), [row]) : b.op(binary(), [row, scalar(b, pick([1e-5, 2, -0.25]))]);
    steps.push(`row ${b.nodes[b.nodes.length - 1].op}`);
  }
  if (random() < 0.08) {
    row = b.op('add', [row, b.op('random_uniform', [keyOf()], { shape: keep })]);
    steps.push('row drawn');
  }
  const outputs: Record<string, Value> = {};
  if (random() < 0.5) outputs.row = row;
  if (random() < 0.3) outputs.pre = full;
  let y = b.op(pick(['sub', 'mul', 'add', 'div']), random() < 0.5 ? [full, row] : [row, full]);
  steps.push(`whole ${b.nodes[b.nodes.length - 1].op}`);
  if (random() < 0.5) {
    y = b.op(binary(), [y, pick([x, vec])]);
    steps.push(`whole ${b.nodes[b.nodes.length - 1].op}`);
  }
  if (random() < 0.2) {
    y = dropout(b, y, keyOf(), 0.5, int(0, 3));
    steps.push('dropout');
  }
  if (random() < 0.35) {
    const row2 = reduce(b.op('mul', [y, y]));
    outputs.row2 = random() < 0.5 ? row2 : b.op('reshape', [row2], { shape: shape.filter((_, a) => !axes.includes(a)) });
    y = b.op('mul', [y, row2]);
    steps.push('second pass');
  }
  outputs.y = y;
  const graph = b.graph(outputs);
  const text = `#${index} ${JSON.stringify(concrete)} over [${axes.join(',')}]${sizes.size ? ' (B symbolic)' : ''}: ${steps.join(', ')}; outputs ${Object.keys(outputs).join(',')}`;
  return { text, graph, feeds: feedsOf(graph, sizes, random), sizes };
}

describe(`${GRAPHS} generated row graphs: fused against unfused`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261123));
  const cases = Array.from({ length: GRAPHS }, (_, i) => randomRowCase(random, i));
  const fused = cases.map((c) => ({ ...c, graph: fuseGraph(c.graph).graph }));

  it('every graph fuses its reduction, verifies, and the interpreter gives the same bits', () => {
    let kernels = 0;
    for (const [i, c] of cases.entries()) {
      const g = fused[i].graph;
      expect(verifyGraph(g), c.text).toEqual([]);
      const rows = g.nodes.filter((n) => n.op === FUSED_REDUCE_OP);
      expect(rows.length, c.text).toBeGreaterThan(0);
      for (const n of rows) expect(() => lowerNode(n), c.text).not.toThrow();
      kernels += g.nodes.length;
      const feeds = { inputs: c.feeds, params: new Map(), state: new Map(), sizes: c.sizes };
      const want = interpretGraph(c.graph, feeds).outputs;
      const got = interpretGraph(g, feeds).outputs;
      for (const [k, t] of want) expect([...got.get(k)!.data].every((v, j) => Object.is(v, t.data[j])), `${c.text}: ${k}`).toBe(true);
    }
    // row kernels that draw random numbers (a dropout before or after the reduction)
    const drawing = fused.filter((c) => c.graph.nodes.some((n) => n.op === FUSED_REDUCE_OP && (n.attrs.ops as AttrValue[][]).some((u) => u[0] === FUSED_OP && drawsRandom(Object.fromEntries(u[2] as [string, AttrValue][]))))).length;
    console.log(`${cases.length} row graphs: ${cases.reduce((a, c) => a + c.graph.nodes.length, 0)} nodes unfused, ${kernels} fused; ${drawing} with a row kernel that draws random numbers`);
    expect(drawing).toBeGreaterThan(GRAPHS / 10);
    // the cases cover every kernel shape: per thread, a workgroup per row, and 32 lanes per row
    const shapes = new Set(fused.flatMap((c) => c.graph.nodes.filter((n) => n.op === FUSED_REDUCE_OP).map((n) => /one invocation per row|256 invocations per row|32 invocations per row/.exec(lowerNode(n)[0].wgsl)?.[0])));
    expect(shapes).toEqual(new Set(['one invocation per row', '256 invocations per row', '32 invocations per row']));
  });

  it('WebGPU: every output within 1e-5 relative of the unfused graph (all graphs in one submission)', async () => {
    const device = await getDevice();
    const t0 = performance.now();
    const [want, got] = [await runGraphs(device, cases), await runGraphs(device, fused)];
    const { bad, compared, differ } = compareRuns(want, got, cases.map((c) => c.text));
    console.log(`${compared} outputs of ${cases.length} row graphs compared: ${bad.length} over 1e-5, ${differ} not bit-identical (${(performance.now() - t0).toFixed(0)} ms)`);
    expect(bad.slice(0, 5)).toEqual([]);
  }, 600_000);

  it('WebGPU, CPU variants (a row per invocation wherever there are 64 rows or more): fused against unfused within 1e-5 relative', async () => {
    const device = await getDevice();
    const withCpu = fused.flatMap((c, i) => (c.graph.nodes.some((n) => lowerNode(n).some((p) => p.cpuVariants?.some((v) => v.name === 'per-thread'))) ? [i] : []));
    expect(withCpu.length).toBeGreaterThan(GRAPHS / 25);
    const [want, got] = [await runGraphs(device, withCpu.map((i) => cases[i]), { variant: 'cpu' }), await runGraphs(device, withCpu.map((i) => fused[i]), { variant: 'cpu' })];
    const { bad, compared, differ } = compareRuns(want, got, withCpu.map((i) => cases[i].text));
    console.log(`CPU variants: ${compared} outputs of ${withCpu.length} row graphs compared: ${bad.length} over 1e-5, ${differ} not bit-identical`);
    expect(bad.slice(0, 5)).toEqual([]);
  }, 600_000);

  it('WebGPU with subgroups: the graphs whose reductions combine by subgroupAdd, fused against unfused within 1e-5 relative', async () => {
    const device = await getDevice();
    expect(device.features.has('subgroups'), 'the test device has the subgroups feature').toBe(true);
    const withSubgroups = fused.flatMap((c, i) => (c.graph.nodes.some((n) => lowerNode(n).some((p) => p.subgroupWgsl !== undefined)) ? [i] : []));
    expect(withSubgroups.length).toBeGreaterThan(GRAPHS / 25);
    const [want, got] = [await runGraphs(device, withSubgroups.map((i) => cases[i]), { variant: 'subgroup' }), await runGraphs(device, withSubgroups.map((i) => fused[i]), { variant: 'subgroup' })];
    const { bad, compared, differ } = compareRuns(want, got, withSubgroups.map((i) => cases[i].text));
    console.log(`subgroups: ${compared} outputs of ${withSubgroups.length} row graphs compared: ${bad.length} over 1e-5, ${differ} not bit-identical`);
    expect(bad.slice(0, 5)).toEqual([]);
  }, 600_000);
});

describe('the row pass says why a neighbour did not join', () => {
  it('shape: a row value without its size-1 axis would broadcast along the wrong axis', () => {
    const b = new G();
    const x = b.input('x', f32t(4, 4));
    const y = b.op('sub', [x, b.op('reduce_sum', [x], { axes: [1] })]);
    const { graph, report } = fuseRowsWithReport(b.graph({ y }));
    expect(graph.nodes.map((n) => n.op)).toEqual(['reduce_sum', 'sub']);
    expect(report.rejected).toEqual([expect.objectContaining({ op: 'sub', reason: 'shape', detail: expect.stringMatching(/does not broadcast along the rows/) })]);
  });

  it('bindings: a prologue reading too many tensors stays out under a tighter limit', () => {
    const b = new G();
    const xs = ['x', 'a', 'c', 'd'].map((n) => b.input(n, f32t(4, 8)));
    const sum = xs.slice(1).reduce((acc, v) => b.op('add', [acc, v]), xs[0]);
    const y = b.op('reduce_max', [sum], { axes: [1], keepdims: true });
    const loose = fuseRowsWithReport(b.graph({ y }));
    expect(loose.graph.nodes.map((n) => n.op)).toEqual([FUSED_REDUCE_OP]);
    const tight = fuseRowsWithReport(b.graph({ y }), { maxStorageBuffers: 3 });
    // the last add joins (it reads two tensors, the kernel writes one); the one before would make it read three
    expect(tight.graph.nodes.map((n) => n.op)).toEqual(['add', 'add', FUSED_REDUCE_OP]);
    expect(tight.report.rejected).toEqual([expect.objectContaining({ op: 'add', reason: 'bindings', detail: expect.stringMatching(/over the limit of 3 storage buffers/) })]);
  });

  it('cycle: a value that leaves the kernel through a matmul cannot come back into it', () => {
    const b = new G();
    const x = b.input('x', f32t(4, 4));
    const w = b.input('w', f32t(4, 4));
    const e = b.op('exp', [x]);
    const s = b.op('reduce_sum', [e], { axes: [1], keepdims: true });
    const y = b.op('mul', [b.op('matmul', [e, w]), s]);
    const { graph, report } = fuseRowsWithReport(b.graph({ y }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_REDUCE_OP, 'matmul', 'mul']);
    expect(report.rejected).toEqual([expect.objectContaining({ op: 'mul', reason: 'cycle' })]);
  });
});

describe("the row pass's work grows with the graph, not with its square", () => {
  // A Transformer has row reductions in every layer (layer norms, softmaxes and their gradients) and
  // values read across the whole graph (the causal mask, the gradient norm), so cycle checks that walk
  // from each group to the end of the graph grow with depth times depth. Counted in nodes visited.
  const workAt = (depth: number) => {
    const file = join(import.meta.dirname, '..', 'examples', 'char_transformer.dl');
    const modelArgs = new Map([['CharGPT', argsOf('CharGPT', `vocab: 11, ctx: 8, d: 8, heads: 2, depth: ${depth}`)]]);
    const training = compileTraining(readFileSync(file, 'utf8'), file, undefined, { modelArgs, ownData: true }).trainings[0];
    const graph = fuseWithReport(training.steps[0]).graph;
    const { report } = fuseRowsWithReport(graph);
    expect(report.groups.length).toBeGreaterThan(4 * depth);
    return { nodes: graph.nodes.length, visited: report.visited };
  };

  it('a training step of a 16-layer Transformer costs about 4 times a 4-layer one', () => {
    const small = workAt(4);
    const large = workAt(16);
    expect(large.nodes / small.nodes).toBeGreaterThan(3);
    expect(large.visited / small.visited).toBeLessThan(1.5 * (large.nodes / small.nodes));
    expect(large.visited).toBeLessThan(10 * large.nodes);
  }, 120_000);
});
