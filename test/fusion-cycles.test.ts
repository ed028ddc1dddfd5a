// Fusion never makes a cycle between kernels: generated graphs whose elementwise groups are joined through
// kernels fusion cannot enter (argmax, reductions, reshapes, matmuls) go through the whole fusion pipeline,
// and the fused graph verifies and computes what the unfused one does; and the model a user reported.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { printGraph } from '../compiler/ir/print.ts';
import { fuseGraph } from '../compiler/optimize/fusion.ts';
import { GraphBuilder as G } from './graph-builder.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { redrawMasks, rematerialize } from '../compiler/optimize/remat.ts';
import { argsOf } from './helpers.ts';

const GRAPHS = Number(process.env.DLC_FUSION_GRAPHS ?? 500);
const [ROWS, COLS] = [2, 3];

/**
 * A random DAG over [2, 3] values: elementwise f32 ops, and between them the kernels a group cannot take
 * in: row reductions (kept as [2, 1]), argmax (its i32 index, arithmetic on it, and its cast back), a
 * reshape round trip and a matmul. These make paths that leave one group and come back to another, the
 * shape that once made a cycle (argmax(logits) read by a group whose other member fed the loss).
 */
function barrierGraph(random: () => number): { graph: Graph; feeds: Map<string, Tensor> } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const b = new G();
  const feeds = new Map<string, Tensor>();
  const full = (value: number, dtype: 'f32' | 'i32' = 'f32') => b.op('full', [], { shape: [], value, dtype });
  const values: Value[] = [];
  const ints: Value[] = [];
  for (let i = 0; i < 2; i++) {
    values.push(b.input(`x${i}`, { dtype: 'f32', shape: [ROWS, COLS] }));
    feeds.set(`x${i}`, tensor('f32', [ROWS, COLS], Array.from({ length: ROWS * COLS }, () => Math.fround(random() * 4 - 2))));
  }
  const label = b.input('label', { dtype: 'i32', shape: [ROWS] });
  feeds.set('label', tensor('i32', [ROWS], Array.from({ length: ROWS }, () => Math.floor(random() * 7) - 3)));
  ints.push(label);
  const w = b.input('w', { dtype: 'f32', shape: [COLS, COLS] });
  feeds.set('w', tensor('f32', [COLS, COLS], Array.from({ length: COLS * COLS }, () => Math.fround(random() - 0.5))));
  const column = (v: Value): Value => b.op('cast', [b.op('reshape', [v], { shape: [ROWS, 1] })], { dtype: 'f32' });
  const count = 6 + Math.floor(random() * 20);
  for (let k = 0; k < count; k++) {
    const x = random() < 0.7 ? values[values.length - 1 - Math.floor(random() * Math.min(4, values.length))] : pick(values);
    const y = pick(values);
    const kind = random();
    let v: Value;
    if (kind < 0.25) v = b.op(pick(['neg', 'abs', 'tanh', 'sigmoid']), [x]);
    else if (kind < 0.5) v = b.op(pick(['add', 'sub', 'mul', 'maximum']), [x, random() < 0.2 ? full(Math.fround(random() * 2)) : y]);
    else if (kind < 0.6) v = b.op('add', [x, b.op(pick(['reduce_sum', 'reduce_max']), [y], { axes: [1], keepdims: true })]);
    else if (kind < 0.75) {
      // an index: argmax of a value, or arithmetic on an index (label % 2, index - 1)
      const index = random() < 0.5 || ints.length === 0 ? b.op('argmax', [y], { axis: 1 }) : b.op(pick(['mod', 'sub', 'add']), [pick(ints), full(1 + Math.floor(random() * 2), 'i32')]);
      ints.push(index);
      v = b.op('mul', [x, column(index)]);
    } else if (kind < 0.85) v = b.op('reshape', [b.op('reshape', [b.op('neg', [x])], { shape: [ROWS * COLS] })], { shape: [ROWS, COLS] });
    else if (kind < 0.93) v = b.op('matmul', [x, w]);
    else {
      // two indices compared, as accuracy compares argmax with a label
      const eq = b.op('eq', [b.op('argmax', [x], { axis: 1 }), pick(ints)]);
      v = b.op('add', [y, column(eq)]);
    }
    values.push(v);
  }
  const outputs: Record<string, Value> = { y: values[values.length - 1] };
  values.slice(3, -1).forEach((v, i) => {
    if (random() < 0.3) outputs[`y${i}`] = v;
  });
  ints.slice(1).forEach((v, i) => {
    if (random() < 0.3) outputs[`i${i}`] = v;
  });
  return { graph: b.graph(outputs), feeds };
}

/** The largest relative difference between the graphs' outputs in the interpreter (NaN only against NaN). */
function worstDifference(graph: Graph, fused: Graph, inputs: ReadonlyMap<string, Tensor>): number {
  const feeds = { inputs: new Map(inputs), params: new Map(), state: new Map() };
  const want = interpretGraph(graph, feeds).outputs;
  const got = interpretGraph(fused, feeds).outputs;
  let worst = 0;
  for (const [name, t] of want) {
    const u = got.get(name);
    if (!u || u.data.length !== t.data.length) return Infinity;
    for (let i = 0; i < t.data.length; i++) {
      const [a, c] = [t.data[i], u.data[i]];
      if (Number.isNaN(a) || Number.isNaN(c)) {
        if (Number.isNaN(a) !== Number.isNaN(c)) return Infinity;
      } else if (a !== c) worst = Math.max(worst, Math.abs(a - c) / Math.max(Math.abs(a), Math.abs(c), 1e-30));
    }
  }
  return worst;
}

describe('fusion makes no cycle between kernels', () => {
  it(`${GRAPHS} generated graphs with paths between groups through argmax, reductions, reshapes and matmuls`, () => {
    const random = seededRandom(Number(process.env.DLC_SEED ?? 20261207));
    let kernelsBefore = 0;
    let kernelsAfter = 0;
    for (let n = 0; n < GRAPHS; n++) {
      const { graph, feeds } = barrierGraph(random);
      let fused: Graph;
      try {
        fused = fuseGraph(graph).graph;
      } catch (e) {
        throw new Error(`graph ${n}: ${(e as Error).message}\n${printGraph(graph)}`);
      }
      expect(verifyGraph(fused), `graph ${n}`).toEqual([]);
      expect(worstDifference(graph, fused, feeds), `graph ${n}\n${printGraph(graph)}`).toBeLessThanOrEqual(1e-6);
      kernelsBefore += graph.nodes.filter((m) => m.op !== 'full').length;
      kernelsAfter += fused.nodes.length;
    }
    console.log(`fusion-cycles: ${GRAPHS} graphs, ${kernelsBefore} nodes -> ${kernelsAfter} after fusion`);
    expect(kernelsAfter).toBeLessThan(kernelsBefore / 2);
  });

  it('compiles a model whose metric reads an index its loss also reads (label % 2): no E0900', () => {
    const source = `use std.nn.{Dense}
model Parity {
  input x: f32[B, 4]
  input label: i32[B]
  layer head = Dense(4, 2)
  let logits = head(x)
  let parity = label % 2
  loss = cross_entropy(logits, parity)
  metric accuracy = accuracy(logits, parity)
}
train Parity {
  optimizer = adam(lr: 1e-3)
  batch = 4
}
`;
    const result = compileSource(source, 'parity.dl');
    expect(result.diagnostics).toEqual([]);
    expect(result.programs.map((p) => p.model)).toEqual(['Parity']);
  });
});

describe("the elementwise pass's work grows with the sequence length, not with its square", () => {
  // An unrolled GRU's backward steps form groups that overlap the next step's in node order. Cycle checks
  // bounded by node numbers had to look past every such group, to the end of the backward pass: at
  // T = 16, 64 and 256 they visited 3,347, 56,291 and 913,187 super-nodes on the recomputing variant of
  // the step. Bounded by a topological order with groups side by side (GroupOrder), they stay near the step.
  const GRU = `use std.nn.{GRU, Dense}
model Tagger(steps: int = 4) {
  input x: f32[B, steps, 3]
  input label: i32[B]
  layer gru = GRU(3, 5)
  layer head = Dense(5, 2)
  let logits = head(gru(x)[:, steps - 1, :])
  loss = cross_entropy(logits, label)
}
train Tagger {
  optimizer = adam(lr: 1e-2)
  batch = 2
}
`;
  const workAt = (steps: number) => {
    const modelArgs = new Map([['Tagger', argsOf('Tagger', `steps: ${steps}`)]]);
    const step = compileTraining(GRU, 'gru.dl', undefined, { modelArgs }).trainings[0].steps[0];
    // the variant fuseGraph also tries: shared gates recomputed per reader, masks redrawn
    const copied = rematerialize(redrawMasks(step).graph).graph;
    const { graph, report } = fuseWithReport(copied);
    expect(verifyGraph(graph)).toEqual([]);
    return { nodes: copied.nodes.length, visited: report.visited };
  };

  it('a GRU step over 32 steps costs about 4 times one over 8', () => {
    const small = workAt(8);
    const large = workAt(32);
    expect(large.nodes / small.nodes).toBeGreaterThan(2.5);
    expect(large.visited / small.visited).toBeLessThan(1.5 * (large.nodes / small.nodes));
    expect(large.visited).toBeLessThan(2 * large.nodes);
  }, 120_000);
});
