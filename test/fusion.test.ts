// Elementwise fusion (compiler/optimize/fuse.ts, fused_elementwise): fused graphs compute exactly what
// the unfused ones do, in the float64 interpreter and on WebGPU (Dawn on lavapipe), for every example
// and for generated random elementwise graphs; the dispatch counts per example are a golden; and the
// pass says why a candidate did not fuse.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { compileTraining, type CompiledTraining } from '../compiler/frontend/train.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph, type InterpretResult } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { AttrValue, Attrs, DType, Graph, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { printGraph } from '../compiler/ir/print.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { BINARY_OPS, UNARY_OPS } from '../compiler/ops/elementwise.ts';
import { drawsRandom, FUSED_OP } from '../compiler/ops/fused.ts';
import { getOp, inferOp, isShapeError } from '../compiler/ops/index.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { Model } from '../runtime/model.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G } from './graph-builder.ts';
import { argsOf, EXAMPLE_CASES, type ExampleCase, type Batch, randomBatch } from './helpers.ts';

const SEED = 7;
const UPDATE = process.env.DLC_UPDATE_GOLDENS === '1';
const GOLDEN = join(import.meta.dirname, 'golden', 'kernel-counts.json');

// ---- shared helpers -------------------------------------------------------------------------------

/** Elements that differ in bits (float64 here: the interpreter), NaN equal to NaN; the first few as text. */
function bitDiff(a: ArrayLike<number>, b: ArrayLike<number>): { count: number; first: string } {
  let count = 0;
  let first = '';
  if (a.length !== b.length) return { count: Math.max(a.length, b.length), first: `lengths ${a.length} and ${b.length}` };
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    if (count++ === 0) first = `[${i}]: ${a[i]} vs ${b[i]}`;
  }
  return { count, first };
}

/** The outputs whose bits differ when the interpreter runs `fused` instead of `graph` on these inputs, as "name: first difference". */
function outputBitDiffs(graph: Graph, fused: Graph, inputs: ReadonlyMap<string, Tensor>): string[] {
  const feeds = { inputs: new Map(inputs), params: new Map(), state: new Map() };
  const want = interpretGraph(graph, feeds).outputs;
  const got = interpretGraph(fused, feeds).outputs;
  return [...want].flatMap(([k, t]) => {
    const d = bitDiff(got.get(k)!.data, t.data);
    return d.count === 0 ? [] : [`${k}: ${d.count} differ, ${d.first}`];
  });
}

/** Every value a graph run exposes, by name: outputs, losses, metrics, state and parameter updates. */
function exposed(g: Graph, r: InterpretResult): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of [...r.outputs, ...r.losses, ...r.metrics]) out.set(k, v);
  for (const [k, v] of r.state) out.set(`state ${k}`, v);
  for (const p of g.params) if (p.update) out.set(`update ${p.path}`, r.values.get(p.update.id)!);
  return out;
}

const compiled = new Map<string, { fused: ModelProgram; unfused: ModelProgram; training: CompiledTraining }>();

function compileCase(c: ExampleCase) {
  const key = `${c.file}:${c.model}:${c.args}`;
  let entry = compiled.get(key);
  if (!entry) {
    const file = `examples/${c.file}.dl`;
    const text = readFileSync(file, 'utf8');
    const modelArgs = new Map([[c.model, argsOf(c.model, c.args)]]);
    const program = (fuse: boolean) => {
      const r = compileSource(text, file, undefined, { modelArgs, fuse });
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      return r.programs.find((p) => p.model === c.model)!;
    };
    const training = compileTraining(text, file, undefined, { modelArgs }).trainings.find((t) => t.forward.name === c.model)!;
    compiled.set(key, (entry = { fused: program(true), unfused: program(false), training }));
  }
  return entry;
}

// ---- 1. every example: the fused graphs in the float64 interpreter --------------------------------

/** A one-layer LSTM, where fusion keeps its gates recomputed per reader (optimize/remat.ts): 209 -> 185 kernels per step. */
const RECOMPUTED_GATES: ExampleCase = { file: 'lstm_classifier', model: 'ActivityClassifier', args: 'steps: 6, features: 3, hidden: 5, layers: 1, classes: 3', sizes: { B: 2 }, intRange: { label: 3 } };

describe('fusion keeps every example graph exactly (float64 interpreter)', () => {
  for (const c of [...EXAMPLE_CASES, RECOMPUTED_GATES]) {
    it(`${c.file}: ${c.model} (${c.args})`, () => {
      const { training } = compileCase(c);
      const sizes = new Map(Object.entries(c.sizes));
      const lines: string[] = [];
      for (const g of [training.evaluation, ...training.steps]) {
        const { graph: fused, report } = fuseGraph(g);
        expect(verifyGraph(fused), `${g.name}: the fused graph verifies`).toEqual([]);
        // this case's training step keeps the copies: fewer kernels than fusing without them
        if (c === RECOMPUTED_GATES && g !== training.evaluation) expect(kernelCount(fused)).toBeLessThan(kernelCount(fuseGraph(g, { remat: false }).graph));
        expect(fused.nodes.some((n) => getOp(n.op)?.family === 'fused'), `${g.name} has fused nodes`).toBe(true);
        const feeds = randomFeeds(g, sizes, seededRandom(SEED), { intRange: c.intRange ?? {} });
        const want = exposed(g, interpretGraph(g, feeds));
        const got = exposed(fused, interpretGraph(fused, feeds));
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [k, t] of want) {
          const d = bitDiff(got.get(k)!.data, t.data);
          expect(d.count, `${g.name} ${k}: ${d.first}`).toBe(0);
        }
        lines.push(`${g.name} ${report.nodesBefore} -> ${report.nodesAfter} nodes, ${want.size} values identical`);
      }
      console.log(`${c.model}: ${lines.join('; ')}`);
    });
  }
});

// ---- 2. dispatch counts before and after fusion: a golden -----------------------------------------

type Counts = Record<string, { predict: number; evaluate: number; steps: Record<string, number> }>;

function countsOf(p: ModelProgram): Counts[string] {
  return {
    predict: p.graphs.predict.kernels.length,
    evaluate: p.graphs.evaluate.kernels.length,
    steps: Object.fromEntries(p.graphs.steps.map((s) => [s.name, s.kernels.length])),
  };
}

describe('dispatch counts per example, unfused and fused (test/golden/kernel-counts.json)', () => {
  it('match the golden, and fusion lowers every count', () => {
    const actual: Record<string, { unfused: Counts[string]; fused: Counts[string] }> = {};
    for (const c of EXAMPLE_CASES) {
      const { fused, unfused } = compileCase(c);
      const entry = { unfused: countsOf(unfused), fused: countsOf(fused) };
      actual[c.model] = entry;
      for (const k of ['predict', 'evaluate'] as const) expect(entry.fused[k], `${c.model} ${k}`).toBeLessThanOrEqual(entry.unfused[k]);
      for (const [s, n] of Object.entries(entry.fused.steps)) expect(n, `${c.model} step ${s}`).toBeLessThan(entry.unfused.steps[s]);
    }
    const text = `${JSON.stringify(actual, null, 2)}\n`;
    if (UPDATE) {
      writeFileSync(GOLDEN, text);
      return;
    }
    if (!existsSync(GOLDEN)) throw new Error(`missing golden ${GOLDEN}; run DLC_UPDATE_GOLDENS=1 npx vitest run test/fusion.test.ts and review the diff`);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });
});

// ---- 3. why a candidate did not fuse ----------------------------------------------------------------


describe('the fusion report says why a candidate did not fuse', () => {
  it('binding limit: a sum of nine inputs splits where the kernel would bind more than 8 buffers', () => {
    const b = new G();
    const xs = Array.from({ length: 9 }, (_, i) => b.input(`x${i}`, f32t(4)));
    let acc = xs[0];
    for (const x of xs.slice(1)) acc = b.op('add', [acc, x]);
    const g = b.graph({ y: acc });
    const { graph, report } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    const limit = report.rejected.filter((r) => r.reason === 'bindings');
    expect(limit.length).toBeGreaterThan(0);
    expect(limit[0].detail).toMatch(/over the limit of 8 storage buffers/);
    for (const n of graph.nodes) if (n.op === FUSED_OP) expect(n.inputs.length + n.outputs.length).toBeLessThanOrEqual(8);
    expect(graph.nodes.length).toBe(2);
    // a lower limit splits it further
    const tight = fuseWithReport(g, { maxStorageBuffers: 3 });
    for (const n of tight.graph.nodes) expect(n.inputs.length + n.outputs.length).toBeLessThanOrEqual(3);
    expect(tight.report.rejected.some((r) => r.reason === 'bindings' && /limit of 3/.test(r.detail))).toBe(true);
  });

  it('a chain of 20,000 elementwise ops (an unrolled `for` loop) is one kernel, and each join counts its bindings from the last (the recount made it quadratic)', () => {
    const b = new G();
    const x = b.input('x', f32t(4));
    const one = b.op('full', [], { shape: [4], value: 1, dtype: 'f32' });
    let acc = b.op('mul', [x, x]);
    for (let i = 0; i < 20_000; i++) acc = b.op(i % 2 ? 'add' : 'sub', [acc, i % 3 ? one : x]);
    const { graph } = fuseWithReport(b.graph({ y: acc }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.filter((n) => n.op === FUSED_OP).length).toBe(1);
    const fused = graph.nodes.find((n) => n.op === FUSED_OP)!;
    expect(fused.inputs.length + fused.outputs.length).toBeLessThanOrEqual(8);
  });

  it('cycle: a value that feeds the group directly and through a reduction stays outside it', () => {
    const b = new G();
    const x = b.input('x', f32t(2, 3));
    const a = b.op('exp', [x]);
    const m = b.op('reduce_max', [a], { axes: [1], keepdims: true });
    const d = b.op('sub', [b.op('neg', [a]), m]);
    const { graph, report } = fuseWithReport(b.graph({ d }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(report.rejected.map((r) => [r.op, r.reason])).toEqual([['exp', 'cycle']]);
    expect(graph.nodes.map((n) => n.op)).toEqual(['exp', 'reduce_max', FUSED_OP]);
  });

  it('a one-element expression of constants (a mean gradient\'s 1/B) is recomputed by each group that reads it, with no dispatch of its own', () => {
    const b = new G();
    const x = b.input('x', f32t(3, 4));
    const y = b.input('y', f32t(3, 4));
    const seed = b.op('div', [b.op('full', [], { shape: [], value: 1, dtype: 'f32' }), b.op('full', [], { shape: [], value: 3, dtype: 'f32' })]);
    const neg = b.op('neg', [seed]);
    const p = b.op('mul', [x, neg]);
    const m = b.op('reduce_max', [p], { axes: [1], keepdims: true });
    const q = b.op('add', [b.op('mul', [y, seed]), m]);
    const g = b.graph({ p, q });
    const { graph, report } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_OP, 'reduce_max', FUSED_OP]);
    expect(report.rejected).toEqual([]);
    const inputs = new Map([['x', tensor('f32', [3, 4], Array.from({ length: 12 }, (_, i) => i - 5.5))], ['y', tensor('f32', [3, 4], Array.from({ length: 12 }, (_, i) => i * 0.3))]]);
    expect(outputBitDiffs(g, graph, inputs)).toEqual([]);
  });

  it('one-element groups (a schedule, bias corrections) merge into one dispatch, unless a third kernel lies between them', () => {
    const b = new G();
    const t = b.input('t', f32t());
    const x = b.input('x', f32t(4));
    const z = b.input('z', f32t(3));
    // two scalars, each read by groups of two shapes: groups of their own, then one kernel
    const a = b.op('exp', [t]);
    const c = b.op('log', [t]);
    const y1 = b.op('mul', [x, b.op('add', [a, c])]);
    const y2 = b.op('add', [z, b.op('mul', [a, c])]);
    // d reads a sum over y1, which reads a: d's group cannot join a's
    const d = b.op('sqrt', [b.op('reduce_sum', [y1], { axes: [0] })]);
    const y3 = b.op('mul', [z, d]);
    const y4 = b.op('sub', [x, d]);
    const g = b.graph({ y1, y2, y3, y4 });
    const { graph } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_OP, FUSED_OP, FUSED_OP, 'reduce_sum', 'sqrt', 'mul', 'sub']);
    expect(graph.nodes[0].outputs.map((v) => v.id).sort()).toEqual([a.id, c.id].sort());
    const inputs = new Map([['t', tensor('f32', [], [1.7])], ['x', tensor('f32', [4], [1, 2, 3, 0.5])], ['z', tensor('f32', [3], [0.25, 4, -1])]]);
    expect(outputBitDiffs(g, graph, inputs)).toEqual([]);
  });

  it('shape: a scalar used outside the group is not folded into a larger one', () => {
    const b = new G();
    const s = b.input('s', f32t());
    const x = b.input('x', f32t(5));
    const t = b.op('exp', [s]);
    const y = b.op('mul', [x, t]);
    const { report } = fuseWithReport(b.graph({ y, t }));
    expect(report.rejected.map((r) => [r.op, r.reason])).toEqual([['exp', 'shape']]);
    expect(report.rejected[0].detail).toMatch(/used outside it/);
  });

  it('shape: a random draw joins a group of its own shape (dropout), not one it would broadcast into', () => {
    const b = new G();
    const key = b.input('key', { dtype: 'u32', shape: [] });
    const x = b.input('x', f32t(3, 4));
    const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [key], { shape: [3, 4] }), b.op('full', [], { shape: [], value: 0.5, dtype: 'f32' })])], { dtype: 'f32' });
    const dropped = b.op('mul', [x, keep]);
    // a draw of one row, broadcast over the rows: element i of the group is not element i of the draw
    const noise = b.op('add', [dropped, b.op('random_normal', [key], { shape: [1, 4], stream: 1 })]);
    const g = b.graph({ y: noise });
    const { graph, report } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual(['random_normal', FUSED_OP]);
    expect(report.rejected).toEqual([expect.objectContaining({ op: 'random_normal', reason: 'shape', detail: expect.stringMatching(/joins only a group of its own shape/) })]);
    const feeds = new Map([['key', tensor('u32', [], [12345])], ['x', tensor('f32', [3, 4], Array.from({ length: 12 }, (_, i) => i - 5.5))]]);
    expect(outputBitDiffs(g, graph, feeds)).toEqual([]);
    // the kernel draws the mask at its element index, with the standalone kernel's Philox rounds
    const wgsl = lowerNode(graph.nodes[1])[0].wgsl;
    expect(wgsl).toMatch(/let s\d+_bits = dlc_philox\(vec4<u32>\(idx, 0u, 0u, 0u\), vec2<u32>\(v\d+, 0x0u\)\);/);
  });
});

// ---- 4. every example on WebGPU: fused against unfused ------------------------------------------

let live: Model | undefined;
afterEach(() => {
  live?.dispose();
  live = undefined;
});

/** evaluate, predict and one training step; every number that comes back, as f32 bits by name. */
async function runProgram(program: ModelProgram, c: ExampleCase, batch: Batch): Promise<Map<string, Float32Array>> {
  const model = await Model.create(program, { seed: SEED, sizes: c.sizes });
  live = model;
  const out = new Map<string, Float32Array>();
  const evaluated = await model.evaluate(batch);
  for (const [k, v] of Object.entries(evaluated)) out.set(`evaluate ${k}`, Float32Array.of(v as number));
  const predicted = await model.predict(batch);
  for (const [k, v] of Object.entries(predicted)) out.set(`predict ${k}`, Float32Array.from(v as ArrayLike<number>));
  const values = await model.trainStep(batch).values();
  for (const [k, v] of Object.entries(values)) out.set(`step ${k}`, Float32Array.of(v as number));
  const weights = decodeSafetensors(await model.saveWeights());
  for (const [k, t] of weights.tensors) out.set(`weights ${k}`, Float32Array.from(t.data as ArrayLike<number>));
  model.dispose();
  live = undefined;
  return out;
}

describe('every example on WebGPU: the fused program against the unfused one', () => {
  for (const c of [...EXAMPLE_CASES, RECOMPUTED_GATES]) {
    it(`${c.file}: ${c.model} (${c.args})`, async () => {
      const { fused, unfused } = compileCase(c);
      const batch = randomBatch(unfused, c.sizes, seededRandom(SEED), c.intRange);
      const a = await runProgram(unfused, c, batch);
      const b = await runProgram(fused, c, batch);
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      let identical = 0;
      let worst = 0;
      for (const [k, x] of a) {
        const y = b.get(k)!;
        const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
        const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
        if (xb.every((w, i) => w === yb[i])) {
          identical++;
          continue;
        }
        for (let i = 0; i < x.length; i++) {
          const rel = Math.abs(x[i] - y[i]) / Math.max(Math.abs(x[i]), Math.abs(y[i]), 1e-30);
          if (Number.isNaN(x[i]) !== Number.isNaN(y[i])) worst = Infinity;
          else if (!Number.isNaN(rel) && x[i] !== y[i]) worst = Math.max(worst, rel);
        }
      }
      console.log(`${c.model}: ${identical} of ${a.size} results bit-identical fused and unfused; worst relative difference ${worst.toExponential(2)} (dispatches per step ${unfused.graphs.steps.map((s) => s.kernels.length).join('+')} -> ${fused.graphs.steps.map((s) => s.kernels.length).join('+')})`);
      expect(worst).toBeLessThanOrEqual(1e-5);
      // every kernel that differs is an elementwise composition, evaluated in the same f32 operations
      expect(identical).toBe(a.size);
    });
  }
});

// ---- 5. generated elementwise graphs: fused against unfused, interpreter and WebGPU -------------

const GRAPHS = Number(process.env.DLC_FUSION_GRAPHS ?? 500);
const DTYPES: DType[] = ['f32', 'i32', 'u32', 'bool'];

/** A random concrete shape that broadcasts to `out`: some leading axes dropped, some sizes made 1. */
function broadcastable(out: readonly number[], random: () => number): number[] {
  const drop = Math.floor(random() * (out.length + 1) * 0.6);
  return out.slice(drop).map((d) => (random() < 0.3 ? 1 : d));
}

function randomValue(dtype: DType, random: () => number): number {
  const r = random();
  switch (dtype) {
    case 'f32':
      return r < 0.05 ? [0, -0, 1e30, -1e-30, Infinity, NaN][Math.floor(random() * 6)] : Math.fround((random() * 2 - 1) * 4);
    case 'i32':
      return r < 0.05 ? [-2147483648, 2147483647, 0, -1][Math.floor(random() * 4)] : Math.floor(random() * 21) - 10;
    case 'u32':
      return r < 0.05 ? [4294967295, 2147483648, 0][Math.floor(random() * 3)] : Math.floor(random() * 20);
    default:
      return random() < 0.5 ? 1 : 0;
  }
}

/** A random DAG of elementwise ops (with constants, broadcasting, casts, random draws and now and then a reduction). */
function randomGraph(random: () => number): { graph: Graph; feeds: Map<string, Tensor> } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const rank = Math.floor(random() * 4);
  const out = Array.from({ length: rank }, () => 1 + Math.floor(random() * 4));
  const b = new G();
  const feeds = new Map<string, Tensor>();
  const pool: Value[] = [];
  const nIn = 1 + Math.floor(random() * 4);
  for (let i = 0; i < nIn; i++) {
    const shape = i === 0 ? out : broadcastable(out, random);
    const dtype = pick(DTYPES);
    const v = b.input(`x${i}`, { dtype, shape });
    const n = shape.reduce((a, c) => a * c, 1);
    feeds.set(`x${i}`, tensor(dtype, shape, Array.from({ length: n }, () => randomValue(dtype, random))));
    pool.push(v);
  }
  const full = (dtype: DType): Value => b.op('full', [], { shape: random() < 0.8 ? [] : [1], value: dtype === 'bool' ? random() < 0.5 : randomValue(dtype, random), dtype });
  // a constant is a full, or now and then an expression of fulls (fused groups recompute those), kept in
  // a list so that several groups read the same one
  const constants: Value[] = [];
  const constant = (dtype: DType): Value => {
    const old = constants.filter((v) => v.type.dtype === dtype);
    if (old.length > 0 && random() < 0.3) return pick(old);
    if (random() < 0.6) return full(dtype);
    const unary = random() < 0.4;
    const op = unary ? pick(UNARY_OPS) : pick(BINARY_OPS);
    const args = unary ? [full(dtype)] : [full(dtype), full(dtype)];
    const v = isShapeError(inferOp(op, args.map((a) => a.type), {})) ? full(dtype) : b.op(op, args);
    constants.push(v);
    return v;
  };
  const made: Value[] = [];
  let key: Value | undefined;
  const target = 2 + Math.floor(random() * 7);
  for (let tries = 0; made.length < target && tries < 200; tries++) {
    const kind = random();
    let op: string;
    let args: Value[];
    let attrs: Attrs = {};
    const x = random() < 0.6 && made.length > 0 ? pick(made) : pick(pool);
    if (kind < 0.35) {
      op = pick(UNARY_OPS);
      args = [x];
    } else if (kind < 0.8) {
      op = pick(BINARY_OPS);
      const same = pool.filter((v) => v.type.dtype === x.type.dtype);
      const y = random() < 0.25 ? constant(x.type.dtype) : pick(same);
      args = random() < 0.5 ? [x, y] : [y, x];
    } else if (kind < 0.88) {
      op = 'cast';
      args = [x];
      attrs = { dtype: pick(DTYPES) };
    } else if (kind < 0.93) {
      op = 'select';
      const conds = pool.filter((v) => v.type.dtype === 'bool');
      const same = pool.filter((v) => v.type.dtype === x.type.dtype);
      if (conds.length === 0) continue;
      args = [pick(conds), x, pick(same)];
    } else if (kind < 0.97) {
      // a random draw (dropout's mask): fused groups draw it at their element index, so only a group of
      // its own shape takes it; one of a broadcast shape stays a kernel of its own
      op = random() < 0.5 ? 'random_uniform' : 'random_normal';
      key ??= b.input('key', { dtype: 'u32', shape: [] });
      if (!feeds.has('key')) feeds.set('key', tensor('u32', [], [Math.floor(random() * 2 ** 32)]));
      args = [key];
      attrs = { shape: random() < 0.7 ? out : broadcastable(out, random), stream: Math.floor(random() * 4) };
    } else {
      op = 'reduce_max';
      if (x.type.shape.length === 0 || x.type.dtype === 'bool') continue;
      args = [x];
      attrs = { axes: [Math.floor(random() * x.type.shape.length)], keepdims: true };
    }
    if (isShapeError(inferOp(op, args.map((v) => v.type), attrs))) continue;
    const v = b.op(op, args, attrs);
    made.push(v);
    pool.push(v);
  }
  // the last value is an output; so is each other value now and then (values used outside a group)
  const outputs: Record<string, Value> = {};
  made.forEach((v, i) => {
    if (i === made.length - 1 || random() < 0.25) outputs[`y${i}`] = v;
  });
  if (made.length === 0) outputs.y = b.op('neg', [b.op('cast', [pool[0]], { dtype: 'f32' })]);
  // drop the nodes no output needs (dead constants from refused candidates)
  const g = b.graph(outputs);
  return { graph: g, feeds };
}

describe(`${GRAPHS} generated elementwise graphs: fused against unfused`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261124));
  const cases = Array.from({ length: GRAPHS }, () => randomGraph(random));

  it('the interpreter gives the same bits for the fused graph, which verifies', () => {
    let fusedNodes = 0;
    let groups = 0;
    let recomputed = 0; // expressions of constants that fused groups recompute (no node of their own left)
    let draws = 0;
    let drawsFused = 0; // random draws a fused_elementwise computes (those of a broadcast shape stay kernels)
    for (const [n, { graph, feeds }] of cases.entries()) {
      const { graph: fused, report } = fuseWithReport(graph);
      expect(verifyGraph(fused), `graph ${n}`).toEqual([]);
      const fulls = new Set(graph.nodes.filter((m) => m.op === 'full').map((m) => m.outputs[0].id));
      const defined = new Set(fused.nodes.flatMap((m) => m.outputs.map((v) => v.id)));
      recomputed += graph.nodes.filter((m) => m.op !== 'full' && m.inputs.length > 0 && m.inputs.every((v) => fulls.has(v.id)) && !defined.has(m.outputs[0].id)).length;
      groups += report.groups.length;
      fusedNodes += report.groups.reduce((a, g) => a + g.nodes.length, 0);
      draws += graph.nodes.filter((m) => m.op.startsWith('random_')).length;
      drawsFused += fused.nodes.filter((m) => m.op === FUSED_OP && drawsRandom(m.attrs)).reduce((a, m) => a + (m.attrs.ops as AttrValue[][]).filter((o) => String(o[0]).startsWith('random_')).length, 0);
      expect(outputBitDiffs(graph, fused, feeds), `graph ${n}`).toEqual([]);
    }
    console.log(`generated graphs: ${cases.length}, ${groups} fused groups covering ${fusedNodes} nodes, ${recomputed} expressions of constants recomputed in them, ${drawsFused} of ${draws} random draws drawn inside them`);
    expect(groups).toBeGreaterThan(GRAPHS / 2);
    expect(recomputed).toBeGreaterThan(GRAPHS / 20);
    expect(drawsFused).toBeGreaterThan(GRAPHS / 20);
    expect(drawsFused).toBeLessThan(draws);
  });

  it('WebGPU gives the same bits for the fused and unfused programs (many graphs per submission)', async () => {
    const device = await getDevice();
    const per = 125;
    let mismatches = 0;
    let compared = 0;
    const bad: string[] = [];
    for (let start = 0; start < cases.length; start += per) {
      const batch = cases.slice(start, start + per);
      const fusedJobs = batch.map(({ graph, feeds }) => ({ graph: fuseWithReport(graph).graph, feeds }));
      const [a, b] = [await runGraphs(device, batch), await runGraphs(device, fusedJobs)];
      a.forEach((outs, j) => {
        for (const [k, x] of outs) {
          const y = b[j].get(k)!;
          compared++;
          const off = x.findIndex((w, i) => w !== y[i]);
          if (off >= 0 || x.length !== y.length) {
            mismatches++;
            if (process.env.DLC_FUSION_VERBOSE && bad.length < 2) {
              const fz = fusedJobs[j].graph;
              console.log(`graph ${start + j}:\n${printGraph(batch[j].graph)}\nfused:\n${printGraph(fz)}\n${fz.nodes.filter((nd) => nd.op === FUSED_OP).map((nd) => lowerNode(nd)[0].wgsl).join('\n')}\ninputs ${JSON.stringify([...batch[j].feeds].map(([kk, t]) => [kk, t.dtype, t.shape, [...t.data]]))}`);
            }
            if (bad.length < 5) bad.push(`graph ${start + j} output ${k}[${off}]: unfused bits ${x[off]?.toString(16)}, fused ${y[off]?.toString(16)}`);
          }
        }
      });
    }
    console.log(`generated graphs on WebGPU: ${compared} outputs compared, ${mismatches} mismatches`);
    expect(bad).toEqual([]);
    expect(mismatches).toBe(0);
    }, 600_000);
});
