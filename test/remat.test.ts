// Rematerialization (compiler/optimize/remat.ts): shared elementwise values recomputed per reader, kept by fuseGraph only where it saves kernels, and dropout masks redrawn where they are read, with the same bits.
import { describe, expect, it } from 'vitest';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { drawsRandom, FUSED_OP } from '../compiler/ops/fused.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { MAX_DEPTH, redrawMasks, rematerialize } from '../compiler/optimize/remat.ts';
import { readFileSync } from 'node:fs';
import { TOTAL_PREFIX } from '../compiler/train/metric-totals.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { f32t, GraphBuilder as G } from './graph-builder.ts';
import { argsOf } from './helpers.ts';

function sameBits(a: Graph, b: Graph, inputs: ReadonlyMap<string, Tensor>): boolean {
  const feeds = { inputs: new Map(inputs), params: new Map(), state: new Map() };
  const want = interpretGraph(a, feeds).outputs;
  const got = interpretGraph(b, feeds).outputs;
  return [...want].every(([k, t]) => {
    const g = got.get(k)!.data;
    return g.length === t.data.length && Array.from(t.data).every((x, i) => Object.is(x, g[i]));
  });
}

const ramp = (n: number, scale: number, shift: number) => Array.from({ length: n }, (_, i) => (i - shift) * scale);

/** Four gates read by a cell and, across a matmul, by a second kernel: an LSTM cell and its backward pass in miniature. */
function gates(): { g: Graph; inputs: Map<string, Tensor> } {
  const b = new G();
  const xs = [0, 1, 2, 3].map((i) => b.input(`x${i}`, f32t(4, 3)));
  const w = b.input('w', f32t(3, 3));
  const bias = b.input('bias', f32t(3));
  const s = [b.op('sigmoid', [b.op('add', [xs[0], bias])]), b.op('sigmoid', [xs[1]]), b.op('tanh', [xs[2]]), b.op('sigmoid', [xs[3]])];
  const h = b.op('add', [b.op('mul', [s[0], s[1]]), b.op('mul', [s[2], s[3]])]);
  const m = b.op('matmul', [h, w]);
  const d = b.op('mul', [b.op('mul', [m, b.op('mul', [s[0], s[1]])]), b.op('mul', [s[2], s[3]])]);
  const inputs = new Map<string, Tensor>([
    ...xs.map((_, i): [string, Tensor] => [`x${i}`, tensor('f32', [4, 3], ramp(12, 0.37 + i * 0.1, 5.5))]),
    ['w', tensor('f32', [3, 3], ramp(9, 0.21, 4))],
    ['bias', tensor('f32', [3], [0.5, -1, 1])],
  ]);
  return { g: b.graph({ h, d }), inputs };
}

describe('rematerialization', () => {
  it('copies each shared gate for its second reader, operands and all, and the copies give the same bits', () => {
    const { g, inputs } = gates();
    const { graph, origin } = rematerialize(g);
    expect(verifyGraph(graph)).toEqual([]);
    // four gates and the bias add copied once each
    expect(graph.nodes.length).toBe(g.nodes.length + 5);
    expect(graph.nodes.map((n, k) => n.op === g.nodes[origin[k]].op).every(Boolean)).toBe(true);
    expect(sameBits(g, graph, inputs)).toBe(true);
  });

  it('saves kernels where storing the gates would pass the binding limit, and the report counts copies as their originals', () => {
    const { g, inputs } = gates();
    // (packing the gates into one buffer, pack-outputs.ts, reaches the same count without copies: off here)
    const plain = fuseGraph(g, { remat: false, packOutputs: false });
    const { graph, report } = fuseGraph(g, { packOutputs: false });
    expect(verifyGraph(graph)).toEqual([]);
    // without copies the cell kernel would store h and four gates beside six inputs: it splits
    expect(kernelCount(plain.graph)).toBeGreaterThan(2);
    expect(kernelCount(fuseGraph(g, { remat: false }).graph)).toBe(2);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_OP, FUSED_MATMUL_OP]);
    expect(sameBits(g, graph, inputs)).toBe(true);
    for (const grp of report.groups) for (const k of grp.nodes) expect(k).toBeLessThan(g.nodes.length);
    for (const n of graph.nodes) expect(n.inputs.length + n.outputs.length).toBeLessThanOrEqual(8);
  });

  it('keeps the graph without copies when they save nothing', () => {
    const b = new G();
    const x = b.input('x', f32t(4, 4));
    const s = b.op('sigmoid', [x]);
    const y = b.op('add', [b.op('exp', [s]), b.op('matmul', [s, x])]);
    const g = b.graph({ y });
    expect(rematerialize(g).graph).not.toBe(g);
    expect(fuseGraph(g).graph.nodes.filter((n) => n.op === 'sigmoid').length).toBe(1);
    expect(fuseGraph(g).graph.nodes.length).toBe(fuseGraph(g, { remat: false }).graph.nodes.length);
  });

  it(`does not copy a recurrence: a chain deeper than ${MAX_DEPTH} (an LSTM's cell state) is stored`, () => {
    const b = new G();
    const x = b.input('x', f32t(2, 3));
    let c = b.input('c0', f32t(2, 3));
    const outs: Record<string, ReturnType<typeof b.op>> = {};
    for (let t = 0; t < 12; t++) {
      c = b.op('add', [b.op('mul', [b.op('sigmoid', [x]), c]), b.op('tanh', [x])]);
      outs[`y${t}`] = b.op('tanh', [c]);
    }
    const g = b.graph({ ...outs, c });
    const { graph, origin } = rematerialize(g);
    expect(verifyGraph(graph)).toEqual([]);
    // a state whose chain is short enough is copied for its second reader, once; the copy reads the
    // previous state, which is then too deep and stored: the copies never reach back along the steps
    const copiesOf = new Map<number, number>();
    for (const k of origin) copiesOf.set(k, (copiesOf.get(k) ?? 0) + 1);
    for (const [k, n] of copiesOf) if (g.nodes[k].op === 'add') expect(n).toBeLessThanOrEqual(2);
    expect(graph.nodes.length).toBeLessThan(g.nodes.length * 2);
  });

  it('keeps the fewest kernels of fusing without copies, with every copy, and again without the copies that joined no group (a two-layer LSTM)', () => {
    const file = 'examples/lstm_classifier.dl';
    const modelArgs = new Map([['ActivityClassifier', argsOf('ActivityClassifier', 'steps: 4, features: 3, hidden: 5, layers: 2, classes: 3')]]);
    const withTotals = compileTraining(readFileSync(file, 'utf8'), file, undefined, { modelArgs }).trainings[0].steps[0];
    // the step without its recall totals (outputs read back for the epoch's figure), on which lowering decides
    const step = { ...withTotals, outputs: new Map([...withTotals.outputs].filter(([name]) => !name.startsWith(TOTAL_PREFIX))) };
    expect(step.outputs.size).toBeLessThan(withTotals.outputs.size);
    const none = kernelCount(fuseGraph(step, { remat: false }).graph);
    const all = kernelCount(fuseGraph(rematerialize(step).graph, { remat: false }).graph);
    const { graph } = fuseGraph(step);
    expect(verifyGraph(graph)).toEqual([]);
    // since the stacked bias sums (reduce-sums.ts) every copy pays here: 200 kernels without copies, 184 with
    expect(kernelCount(graph)).toBeLessThanOrEqual(Math.min(none, all));
    expect(all).toBeLessThan(none);
    // decided on it, the step with totals takes the same copies: two kernels more (the totals), not the uncopied graph
    const like = fuseGraph(withTotals, { rematLike: step }).graph;
    expect(verifyGraph(like)).toEqual([]);
    expect(kernelCount(like)).toBe(kernelCount(graph) + 2);
    // (the uncopied one ties it by this count, and would lower to 138 dispatches per step against 121)
    expect(like.nodes.length).toBeLessThan(fuseGraph(withTotals, { remat: false }).graph.nodes.length);
  });
});

describe('copies that would bind more', () => {
  it("a sum of two stored tensors of its shape (an LSTM's gradient from above plus the recurrent one) is stored, not copied; a sum with a bias is copied", () => {
    const build = (wide: boolean) => {
      const b = new G();
      const x = b.input('x', f32t(4, 3));
      const w = b.input('w', f32t(3, 3));
      const other = wide ? b.input('up', f32t(4, 3)) : b.input('bias', f32t(3));
      const sum = b.op('add', [other, b.op('matmul', [x, w])]);
      return b.graph({ p: b.op('tanh', [sum]), q: b.op('mul', [sum, b.op('sigmoid', [x])]) });
    };
    const copiedOps = (g: Graph) => {
      const r = rematerialize(g);
      return r.graph.nodes.filter((n) => n.outputs.some((v) => r.copies.has(v.id))).map((n) => n.op);
    };
    expect(copiedOps(build(true))).toEqual([]);
    expect(copiedOps(build(false))).toEqual(['add']);
  });
});

describe('dropout masks redrawn where they are read (redrawMasks)', () => {
  /** y = dropout(x) @ w and the backward pass's dx = (dy @ wᵀ) * mask / (1 - p): the mask is read twice. */
  function dropout(): { g: Graph; inputs: Map<string, Tensor> } {
    const b = new G();
    const key = b.input('key', { dtype: 'u32', shape: [] });
    const x = b.input('x', f32t(4, 6));
    const w = b.input('w', f32t(6, 3));
    const dy = b.input('dy', f32t(4, 3));
    const scalar = (value: number) => b.op('full', [], { shape: [], value, dtype: 'f32' });
    const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [key], { shape: [4, 6], stream: 2 }), scalar(0.25)])], { dtype: 'f32' });
    const y = b.op('matmul', [b.op('div', [b.op('mul', [x, keep]), scalar(0.75)]), w]);
    const dx = b.op('div', [b.op('mul', [b.op('matmul', [dy, b.op('transpose', [w], { perm: [1, 0] })]), keep]), scalar(0.75)]);
    const inputs = new Map<string, Tensor>([
      ['key', tensor('u32', [], [2718281828])],
      ['x', tensor('f32', [4, 6], ramp(24, 0.3, 11))],
      ['w', tensor('f32', [6, 3], ramp(18, 0.17, 8))],
      ['dy', tensor('f32', [4, 3], ramp(12, 0.41, 6))],
    ]);
    return { g: b.graph({ y, dx }), inputs };
  }

  it('each kernel that reads the mask draws it, none stores it, the kernels are as many, and the bits are the same', async () => {
    const { g, inputs } = dropout();
    const { graph } = fuseGraph(g);
    const stored = fuseGraph(g, { redraw: false }).graph;
    expect(verifyGraph(graph)).toEqual([]);
    expect(kernelCount(graph)).toBe(kernelCount(stored));
    const drawing = (h: Graph) => h.nodes.filter((n) => drawsRandom(n.attrs));
    expect(drawing(stored)).toHaveLength(1);
    expect(drawing(graph)).toHaveLength(2);
    // without the redraw the forward kernel stores the mask for the backward one (one output more)
    const outputs = (h: Graph) => h.nodes.reduce((a, n) => a + n.outputs.length, 0);
    expect(outputs(graph)).toBe(outputs(stored) - 1);
    expect(sameBits(g, graph, inputs)).toBe(true);
    const { gpuMismatches } = await import('./fused-cases.ts');
    expect(await gpuMismatches([{ graph: g, feeds: inputs, sizes: new Map() }], { redraw: false }, 'redrawn masks')).toEqual([]);
  });

  it('copies only draws and the chains that make masks of them', () => {
    const { g } = dropout();
    const { graph, copies } = redrawMasks(g);
    const copied = graph.nodes.filter((n) => n.outputs.some((v) => copies.has(v.id))).map((n) => n.op);
    expect(copied.sort()).toEqual(['cast', 'ge', 'random_uniform']);
    // a graph without draws is left as it is
    const plain = gates().g;
    expect(redrawMasks(plain).graph).toBe(plain);
  });
});
