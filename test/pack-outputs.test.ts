// Outputs packed into one buffer (compiler/optimize/pack-outputs.ts): a GRU's training step in fewer kernels, and generated graphs whose packed results keep their bits in the interpreter and on WebGPU.
import { afterEach, describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import type { Graph, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { boundBuffers, encodeFusedBody, FUSED_OP, type FusedSubOp } from '../compiler/ops/fused.ts';
import { getOp, inferOp } from '../compiler/ops/index.ts';
import { dce } from '../compiler/optimize/index.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { packOutputs } from '../compiler/optimize/pack-outputs.ts';
import { isInPlace } from '../compiler/optimize/concat-in-place.ts';
import { type Dim, sym } from '../compiler/shapes/dim.ts';
import { Model } from '../runtime/model.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { expectSameBits, type FusedCase, feedsFor } from './fused-cases.ts';
import { getDevice, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G, newValue, SPAN } from './graph-builder.ts';
import { argsOf, randomBatch } from './helpers.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261207) + 3;
const B = sym('B');

const GRU = `use std.nn.{GRU, Dense}
model GruTagger(steps: int = 4, features: int = 3, hidden: int = 5, classes: int = 3) {
  input x: f32[B, steps, features]
  input label: i32[B]
  layer gru = GRU(features, hidden)
  layer head = Dense(hidden, classes)
  let hs = gru(x)
  let logits = head(hs[:, steps - 1, :])
  output probs = softmax(logits, axis: -1)
  loss = cross_entropy(logits, label)
}
train GruTagger() {
  optimizer = adam(lr: 1e-2)
  batch = 2
  epochs = 1
  minimize loss
}
`;

/** The packed buffers of a graph: in-place concats whose operands are all results of one kernel. */
const packsOf = (g: Graph) => {
  const producer = new Map<number, Node>(g.nodes.flatMap((n) => n.outputs.map((v): [number, Node] => [v.id, n])));
  return g.nodes.filter((n) => isInPlace(n) && n.op === 'concat' && new Set(n.inputs.map((v) => producer.get(v.id))).size === 1).length;
};

let live: Model | undefined;
afterEach(() => {
  live?.dispose();
  live = undefined;
});

describe("a GRU's training step", () => {
  const training = compileTraining(GRU, 'gru.dl', undefined, { modelArgs: new Map([['GruTagger', argsOf('GruTagger', '')]]) }).trainings[0];
  const step = training.steps[0];

  it('packs the cell kernels\' saved results: fewer kernels, and the same bits in the interpreter', () => {
    const packed = fuseGraph(step).graph;
    const apart = fuseGraph(step, { packOutputs: false }).graph;
    expect(verifyGraph(packed)).toEqual([]);
    expect(packsOf(packed)).toBeGreaterThan(0);
    expect(kernelCount(packed)).toBeLessThan(kernelCount(apart));
    for (const n of packed.nodes) if (getOp(n.op)?.family === 'fused') expect(boundBuffers(n), n.op).toBeLessThanOrEqual(8);
    const feeds = randomFeeds(step, new Map([['B', 2]]), seededRandom(SEED), { intRange: { label: 3 } });
    const [want, got] = [interpretGraph(step, feeds), interpretGraph(packed, feeds)];
    for (const [k, t] of want.losses) expect([...got.losses.get(k)!.data], k).toEqual([...t.data]);
    for (const p of step.params) if (p.update) expect([...got.values.get(p.update.id)!.data], p.path).toEqual([...want.values.get(p.update.id)!.data]);
    console.log(`GRU step: ${kernelCount(apart)} kernels apart, ${kernelCount(packed)} packed`);
  });

  it('WebGPU: the fused program (packed) trains and predicts with the bits of the unfused one', async () => {
    const programs = [true, false].map((fuse) => compileSource(GRU, 'gru.dl', undefined, { fuse }).programs[0] as ModelProgram);
    const batch = randomBatch(programs[1], { B: 2 }, seededRandom(SEED), { label: 3 });
    const runs: Float32Array[][] = [];
    for (const p of programs) {
      const model = await Model.create(p, { seed: 5, sizes: { B: 2 } });
      live = model;
      const predicted = await model.predict(batch);
      const values = await model.trainStep(batch).values();
      const after = await model.predict(batch);
      runs.push([Float32Array.from(predicted.probs as ArrayLike<number>), Float32Array.of(values.loss as number), Float32Array.from(after.probs as ArrayLike<number>)]);
      model.dispose();
      live = undefined;
    }
    const bits = (xs: Float32Array[]) => xs.map((x) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)]);
    expect(bits(runs[0])).toEqual(bits(runs[1]));
  });
});

const GENERATED = 60;
const GPU_CASES = 20;

/**
 * A fused_elementwise W of 2-5 results of its inputs, read by later kernels: fused bodies of a few of
 * them, lone elementwise ops, row sums, now and then a matmul (which reads no views) or a graph result.
 */
function randomCase(rand: () => number): FusedCase {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new G();
  const rows: Dim = rand() < 0.4 ? B : pick([2, 3]);
  const xs = Array.from({ length: 2 + Math.floor(rand() * 2) }, (_, i) => b.input(`x${i}`, f32t(rows, 4)));
  const k = 2 + Math.floor(rand() * 4);
  // W's body: result j is unary_j(x_a) op_j x_b
  const ops: FusedSubOp[] = [];
  const outs: number[] = [];
  for (let j = 0; j < k; j++) {
    ops.push({ op: pick(['exp', 'tanh', 'sigmoid', 'neg']), args: [Math.floor(rand() * xs.length)], attrs: {} });
    ops.push({ op: pick(['add', 'mul', 'sub']), args: [xs.length + ops.length - 1, Math.floor(rand() * xs.length)], attrs: {} });
    outs.push(xs.length + ops.length - 1);
  }
  const types = inferOp(FUSED_OP, xs.map((v) => v.type), encodeFusedBody({ ops, outputs: outs })) as TensorType[];
  const results = types.map(newValue);
  b.nodes.push({ op: FUSED_OP, inputs: xs, attrs: encodeFusedBody({ ops, outputs: outs }), outputs: results, span: SPAN });
  const outputs: Record<string, Value> = {};
  for (let r = 0; r < 1 + Math.floor(rand() * 4); r++) {
    const kind = rand();
    const some = results.filter(() => rand() < 0.6);
    const reads = some.length > 0 ? some : [pick(results)];
    let y: Value;
    if (kind < 0.15) y = b.op('matmul', [pick(reads), b.input(`w${r}`, f32t(4, 4))]);
    else if (kind < 0.35) y = b.op('reduce_sum', [pick(reads)], { axes: [1], keepdims: true });
    else if (kind < 0.55 || reads.length === 1) y = b.op(pick(['mul', 'add']), [pick(reads), pick(results)]);
    else {
      // a fused body over the results it reads and an input: a running sum of tanh
      const body: FusedSubOp[] = [];
      let acc = reads.length;
      body.push({ op: 'tanh', args: [reads.length], attrs: {} });
      for (let j = 0; j < reads.length; j++) {
        body.push({ op: pick(['add', 'mul', 'maximum']), args: [reads.length + 1 + body.length - 1, j], attrs: {} });
        acc = reads.length + 1 + body.length - 1;
      }
      const inputs = [...reads, pick(xs)];
      const attrs = encodeFusedBody({ ops: body, outputs: [acc] });
      y = newValue((inferOp(FUSED_OP, inputs.map((v) => v.type), attrs) as TensorType[])[0]);
      b.nodes.push({ op: FUSED_OP, inputs, attrs, outputs: [y], span: SPAN });
    }
    outputs[`y${r}`] = y;
  }
  if (rand() < 0.15) outputs.direct = results[0];
  const sizes = new Map([['B', 2]]);
  return { graph: dce(b.graph(outputs)), feeds: feedsFor(b, sizes, rand), sizes };
}

describe(`${GENERATED} generated kernels with several results: packed into one buffer against not (seed ${SEED})`, () => {
  const rand = seededRandom(SEED);
  const cases = Array.from({ length: GENERATED }, () => randomCase(rand));
  const fused = cases.map((c) => c.graph);
  const packed = fused.map((g) => packOutputs(g).graph);

  it('packs wherever every reader reads through views, verifies, binds at most 8 buffers, and keeps the bits in the interpreter', () => {
    const packs = packed.reduce((n, g) => n + packsOf(g), 0);
    console.log(`pack-outputs: ${packs} buffers packed over ${GENERATED} graphs`);
    expect(packed.filter((g) => packsOf(g) > 0).length).toBeGreaterThan(GENERATED / 3);
    for (const [i, c] of cases.entries()) {
      expect(verifyGraph(packed[i]), `graph ${i}`).toEqual([]);
      expect(kernelCount(packed[i]), `graph ${i}`).toBe(kernelCount(fused[i]));
      for (const n of packed[i].nodes) if (getOp(n.op)?.family === 'fused') expect(boundBuffers(n), `graph ${i}: ${n.op}`).toBeLessThanOrEqual(8);
      expectSameBits(c, packed[i], `graph ${i}`);
    }
  });

  it(`WebGPU: the packed kernels give the bits of the separate ones (GPU and CPU variants; the first ${GPU_CASES} graphs)`, { timeout: 300_000 }, async () => {
    const device = await getDevice();
    const bad: string[] = [];
    for (const variant of ['gpu', 'cpu'] as const) {
      const jobs = (gs: readonly Graph[]) => gs.slice(0, GPU_CASES).map((graph, i) => ({ graph, feeds: cases[i].feeds, sizes: cases[i].sizes }));
      const [a, b] = [await runGraphs(device, jobs(fused), { variant }), await runGraphs(device, jobs(packed), { variant })];
      a.forEach((outs, j) => {
        for (const [k, x] of outs) if (x.length !== b[j].get(k)!.length || x.some((w, i) => w !== b[j].get(k)![i])) bad.push(`graph ${j} output ${k} (${variant})`);
      });
    }
    expect(bad).toEqual([]);
  });
});
