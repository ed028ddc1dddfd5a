// Movement chains as one strided_copy, and concats of them as one strided_concat (compiler/optimize/fuse-views.ts): generated chains and concats give the same bits fused and unfused, in the interpreter and on WebGPU.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Dim } from '../compiler/shapes/dim.ts';
import { dimToString, isConcrete, mul, sym } from '../compiler/shapes/dim.ts';
import type { Graph, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { fuseViews } from '../compiler/optimize/fuse-views.ts';
import { fuseGraph } from '../compiler/optimize/fusion.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { STRIDED_CONCAT_OP, STRIDED_COPIES_OP, STRIDED_COPY_OP } from '../compiler/ops/strided-copy.ts';
import { FUSED_OP } from '../compiler/ops/fused.ts';
import { getDevice, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G } from './graph-builder.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261204);
const CHAINS = 400;
const B = sym('B');

interface Case {
  readonly graph: Graph;
  readonly feeds: Map<string, Tensor>;
  readonly sizes: Map<string, number>;
}

/** Asserts that fuseViews' graph gives the input graph's outputs in the interpreter, bit for bit. */
function expectSameInterpretation(c: Case, fused: Graph, what: string): void {
  const run = (g: Graph) => interpretGraph(g, { inputs: c.feeds, params: new Map(), state: new Map() }).outputs;
  const [want, got] = [run(c.graph), run(fused)];
  for (const [k, t] of want) expect([...got.get(k)!.data], `${what} output ${k}`).toEqual([...t.data]);
}

/** The outputs (as `<what> j output k`) whose bits differ on WebGPU between the graphs and fuseViews' graphs, all in one submission each. */
async function gpuMismatches(cases: readonly Case[], what: string): Promise<string[]> {
  const device = await getDevice();
  const jobs = cases.map((c) => ({ graph: c.graph, feeds: c.feeds, sizes: c.sizes }));
  const fusedJobs = cases.map((c) => ({ graph: fuseViews(c.graph).graph, feeds: c.feeds, sizes: c.sizes }));
  const [a, b] = [await runGraphs(device, jobs), await runGraphs(device, fusedJobs)];
  const bad: string[] = [];
  a.forEach((outs, j) => {
    for (const [k, x] of outs) if (x.length !== b[j].get(k)!.length || x.some((w, i) => w !== b[j].get(k)![i])) bad.push(`${what} ${j} output ${k}`);
  });
  return bad;
}

/** `steps` random movement ops after `v` (slices, transposes, reshapes, broadcasts); intermediates sometimes also returned as `mid{s}`. */
function growChain(b: G, v: Value, rand: () => number, steps: number, outputs: Record<string, Value>, tag = ''): Value {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  for (let s = 0; s < steps; s++) {
    const sh = v.type.shape;
    const r = sh.length;
    const kind = pick(['slice', 'transpose', 'reshape', 'broadcast_to']);
    if (kind === 'slice') {
      const starts = sh.map((d) => (isConcrete(d) && d > 1 ? Math.floor(rand() * 2) : 0));
      const stops = sh.map((d, a) => (isConcrete(d) && d - starts[a] > 1 && rand() < 0.5 ? d - 1 : null));
      const steps_ = sh.map((d) => (isConcrete(d) && d > 2 && rand() < 0.3 ? 2 : 1));
      v = b.op('slice', [v], { starts, stops, steps: steps_ });
    } else if (kind === 'transpose') {
      const perm = Array.from({ length: r }, (_, i) => i).sort(() => rand() - 0.5);
      v = b.op('transpose', [v], { perm });
    } else if (kind === 'reshape') {
      const a = Math.floor(rand() * r);
      const d = sh[a];
      const mode = rand();
      if (mode < 0.4 && a + 1 < r && isConcrete(d) && isConcrete(sh[a + 1])) {
        v = b.op('reshape', [v], { shape: [...sh.slice(0, a), d * (sh[a + 1] as number), ...sh.slice(a + 2)] }); // merge two axes
      } else if (mode < 0.8 && isConcrete(d) && d % 2 === 0) {
        v = b.op('reshape', [v], { shape: [...sh.slice(0, a), 2, d / 2, ...sh.slice(a + 1)] }); // split one
      } else {
        v = b.op('reshape', [v], { shape: [...sh.slice(0, a), 1, ...sh.slice(a)] }); // a new axis of 1
      }
    } else {
      const ones = sh.map((d, a) => (isConcrete(d) && d === 1 ? a : -1)).filter((a) => a >= 0);
      v = ones.length > 0 && rand() < 0.6 ? b.op('broadcast_to', [v], { shape: sh.map((d, a) => (a === ones[0] ? 3 : d)) }) : b.op('broadcast_to', [v], { shape: [2, ...sh] });
    }
    if (rand() < 0.1) outputs[`mid${tag}${s}`] = v;
  }
  return v;
}

/**
 * A random chain of 2 to 5 movement ops on a random input, sometimes with an intermediate also
 * returned; with `siblings`, 2 to 4 chains of 1 to 4 ops from the same input (one strided_copies).
 */
function randomChain(rand: () => number, siblings = false): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new G();
  const rank = 2 + Math.floor(rand() * 3);
  const symbolic = rand() < 0.3;
  const shape: Dim[] = Array.from({ length: rank }, (_, a) => (symbolic && a === 0 ? B : pick([1, 2, 3, 4, 6])));
  const sizes = new Map(symbolic ? [['B', 3]] : []);
  const x = b.input('x', f32t(...shape));
  const outputs: Record<string, Value> = {};
  if (siblings) {
    const n = 2 + Math.floor(rand() * 3);
    for (let c = 0; c < n; c++) outputs[`y${c}`] = growChain(b, x, rand, 1 + Math.floor(rand() * 4), outputs, `${c}_`);
  } else outputs.y = growChain(b, x, rand, 2 + Math.floor(rand() * 4), outputs);
  const dims = shape.map((d) => (isConcrete(d) ? d : sizes.get('B')!));
  const n = dims.reduce((p, q) => p * q, 1);
  const feeds = new Map([['x', tensor('f32', dims, Array.from({ length: n }, () => Math.fround(rand() * 8 - 4)))]]);
  return { graph: b.graph(outputs), feeds, sizes };
}

const rand = seededRandom(SEED);
const cases = Array.from({ length: CHAINS }, () => randomChain(rand));

describe(`${CHAINS} generated movement chains: one strided_copy each, the same bits as the unfused ops (seed ${SEED})`, () => {
  it('every fused graph verifies and the interpreter gives the same bits; most chains fuse, some reshapes cannot', () => {
    let fused = 0;
    let kept = 0;
    for (const [i, c] of cases.entries()) {
      const { graph, chains } = fuseViews(c.graph);
      expect(verifyGraph(graph), `chain ${i}`).toEqual([]);
      fused += chains.length;
      kept += graph.nodes.filter((n) => n.op !== STRIDED_COPY_OP && n.op !== 'reshape').length;
      expectSameInterpretation(c, graph, `chain ${i}`);
    }
    console.log(`movement chains: ${fused} fused into strided_copy, ${kept} movement dispatches left`);
    expect(fused).toBeGreaterThan(CHAINS / 2);
    expect(kept).toBeGreaterThan(0);
  });

  it('WebGPU: the strided copies give the unfused kernels\' bits', { timeout: 120_000 }, async () => {
    expect(await gpuMismatches(cases, 'chain')).toEqual([]);
  });
});

describe('fuse-views', () => {
  it("attention's head split (slice, reshape, transpose) is one strided_copy, in the fusion pipeline too", () => {
    const b = new G();
    const z = b.input('z', f32t(B, 5, 24)); // [B, T, 3d], d = 8
    const k = b.op('transpose', [b.op('reshape', [b.op('slice', [z], { starts: [0, 0, 8], stops: [null, null, 16] })], { shape: [B, 5, 2, 4] })], { perm: [0, 2, 1, 3] });
    const g = b.graph({ k: b.op('exp', [k]) });
    const { graph, chains } = fuseViews(g);
    expect(chains).toEqual([{ op: STRIDED_COPY_OP, nodes: [0, 1, 2], inputs: 1, outputs: 1 }]);
    const copy = graph.nodes.find((n) => n.op === STRIDED_COPY_OP)!;
    expect(copy.attrs).toEqual({ shape: [B, 2, 5, 4], offset: 8, strides: [120, 4, 24, 1] });
    const { graph: all, report } = fuseGraph(g, { viewInputs: false });
    expect(all.nodes.map((n) => n.op)).toEqual([STRIDED_COPY_OP, 'exp']);
    expect(report.groups.find((grp) => grp.op === STRIDED_COPY_OP)?.ops).toEqual(['slice', 'reshape', 'transpose']);
    // and with copies read in place (view-inputs.ts), the exp reads the head split through the view
    const inPlace = fuseGraph(g);
    expect(inPlace.graph.nodes.map((n) => n.op)).toEqual([FUSED_OP]);
    expect(inPlace.report.groups.map((grp) => grp.ops)).toEqual([['slice', 'reshape', 'transpose', 'exp']]);
    expect(fuseGraph(g, { views: false }).graph.nodes.map((n) => n.op)).toEqual(['slice', 'reshape', 'transpose', 'exp']);
  });

  it('refusals: a reshape that merges axes a transpose made non-contiguous ends the chain before it; a value read elsewhere ends the chain', () => {
    const b = new G();
    const x = b.input('x', f32t(3, 4));
    const merged = b.op('reshape', [b.op('transpose', [b.op('slice', [x], { starts: [1, 0], stops: [null, null] })], { perm: [1, 0] })], { shape: [8] });
    const b2 = new G();
    const x2 = b2.input('x', f32t(3, 4));
    const s = b2.op('slice', [x2], { starts: [1, 0], stops: [null, null] });
    const t = b2.op('transpose', [s], { perm: [1, 0] });
    // the slice and the transpose still become one copy, which the reshape then aliases
    const cut = fuseViews(b.graph({ merged }));
    expect(cut.chains).toEqual([{ op: STRIDED_COPY_OP, nodes: [0, 1], inputs: 1, outputs: 1 }]);
    expect(cut.graph.nodes.map((n) => n.op)).toEqual([STRIDED_COPY_OP, 'reshape']);
    expect(fuseViews(b2.graph({ t, s })).chains).toEqual([]);
  });
});

// ---- concats of movement chains ----------------------------------------------------------------------

const CONCATS = 200;

/**
 * A concat of 2 or 3 operands of rank 3 along a random axis, each operand a plain input, an input
 * transposed back, a slice of a larger input, or heads merged back ([S0, 2, S1, S2 / 2] transposed to
 * [S0, S1, 2, S2 / 2] and reshaped to [S0, S1, S2]: not a view, so the concat must walk a finer index space).
 */
function randomConcat(rand: () => number): Case & { readonly kinds: string[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new G();
  const axis = Math.floor(rand() * 3);
  const base = [pick([1, 2, 3]), pick([2, 3]), pick([2, 4, 6])];
  const feeds = new Map<string, Tensor>();
  const input = (name: string, shape: number[]) => {
    const n = shape.reduce((p, q) => p * q, 1);
    feeds.set(name, tensor('f32', shape, Array.from({ length: n }, () => Math.fround(rand() * 8 - 4))));
    return b.input(name, f32t(...shape));
  };
  const kinds: string[] = [];
  const operands = Array.from({ length: 2 + Math.floor(rand() * 2) }, (_, k) => {
    const shape = base.map((d, a) => (a === axis ? (axis === 2 ? pick([2, 4]) : 1 + Math.floor(rand() * 3)) : d));
    const kind = pick(['plain', 'transposed', 'sliced', 'heads', 'heads']);
    kinds.push(kind);
    const name = `x${k}`;
    if (kind === 'transposed') {
      const perm = pick([[1, 0, 2], [2, 1, 0], [0, 2, 1], [1, 2, 0], [2, 0, 1]]);
      const inverse = perm.map((_, a) => perm.indexOf(a));
      return b.op('transpose', [input(name, perm.map((a) => shape[a]))], { perm: inverse });
    }
    if (kind === 'sliced') {
      const a = Math.floor(rand() * 3);
      const big = shape.map((d, j) => (j === a ? d + 1 : d));
      return b.op('slice', [input(name, big)], { starts: big.map((_, j) => (j === a ? 1 : 0)), stops: big.map(() => null) });
    }
    if (kind === 'heads') {
      const [s0, s1, s2] = shape;
      const t = b.op('transpose', [input(name, [s0, 2, s1, s2 / 2])], { perm: [0, 2, 1, 3] });
      return b.op('reshape', [t], { shape: [s0, s1, s2] });
    }
    return input(name, shape);
  });
  const y = b.op('concat', operands, { axis });
  return { graph: b.graph({ y: b.op('neg', [y]) }), feeds, sizes: new Map(), kinds };
}

const concatRand = seededRandom(SEED + 1);
const concats = Array.from({ length: CONCATS }, () => randomConcat(concatRand));

describe(`${CONCATS} generated concats of movement chains: one strided_concat where an operand is a chain, the same bits (seed ${SEED + 1})`, () => {
  it('every fused graph verifies and the interpreter gives the same bits; concats with a transposed or merged operand become one kernel', () => {
    let fused = 0;
    let refined = 0;
    for (const [i, c] of concats.entries()) {
      const { graph } = fuseViews(c.graph);
      expect(verifyGraph(graph), `concat ${i}`).toEqual([]);
      const node = graph.nodes.find((n) => n.op === STRIDED_CONCAT_OP);
      if (node) {
        fused++;
        if (node.attrs.out !== undefined) refined++;
        // its operands' chains are gone: only the concat and the negation are left
        expect(graph.nodes.map((n) => n.op), `concat ${i}`).toEqual([STRIDED_CONCAT_OP, 'neg']);
      }
      expectSameInterpretation(c, graph, `concat ${i} (${c.kinds.join(', ')})`);
    }
    console.log(`concats: ${fused} of ${CONCATS} as one strided_concat, ${refined} of them over a finer index space`);
    expect(fused).toBeGreaterThan(CONCATS / 2);
    expect(refined).toBeGreaterThan(CONCATS / 10);
  });

  it('WebGPU: the strided concats give the unfused kernels\' bits', { timeout: 120_000 }, async () => {
    expect(await gpuMismatches(concats, 'concat')).toEqual([]);
  });

  it("attention's backward concat of the q, k and v gradients, each transposed back from heads, is one kernel; a chain read elsewhere stays", () => {
    const b = new G();
    const heads = (name: string, shape: Dim[], perm: number[]) => b.op('reshape', [b.op('transpose', [b.input(name, f32t(...shape))], { perm })], { shape: [B, 5, 8] });
    const dq = heads('dq', [B, 2, 5, 4], [0, 2, 1, 3]);
    const dk = heads('dk', [B, 2, 4, 5], [0, 3, 1, 2]);
    const dv = heads('dv', [B, 2, 5, 4], [0, 2, 1, 3]);
    const { graph, chains } = fuseViews(b.graph({ y: b.op('concat', [dq, dk, dv], { axis: 2 }) }));
    expect(graph.nodes.map((n) => n.op)).toEqual([STRIDED_CONCAT_OP]);
    expect(graph.nodes[0].attrs).toMatchObject({ shape: [B, 5, 6, 4], axis: 2, sizes: [2, 2, 2], out: [B, 5, 24] });
    expect(chains).toEqual([{ op: STRIDED_CONCAT_OP, nodes: [0, 1, 2, 3, 4, 5, 6], inputs: 3, outputs: 1 }]);
    const b2 = new G();
    const x = b2.input('x', f32t(3, 4));
    const t = b2.op('transpose', [x], { perm: [1, 0] });
    const kept = fuseViews(b2.graph({ y: b2.op('concat', [t, b2.input('z', f32t(4, 2))], { axis: 1 }), t }));
    expect(kept.graph.nodes.map((n) => n.op)).toEqual(['transpose', 'concat']);
  });
});

// ---- sibling chains of one source ------------------------------------------------------------------

const SIBLINGS = 200;
const siblingRand = seededRandom(SEED + 2);
const siblingCases = Array.from({ length: SIBLINGS }, () => randomChain(siblingRand, true));

describe(`${SIBLINGS} generated sets of sibling chains: one strided_copies for the chains of one source, the same bits (seed ${SEED + 2})`, () => {
  it('every fused graph verifies and the interpreter gives the same bits; most sets are one kernel', () => {
    let merged = 0;
    for (const [i, c] of siblingCases.entries()) {
      const { graph } = fuseViews(c.graph);
      expect(verifyGraph(graph), `set ${i}`).toEqual([]);
      if (graph.nodes.some((n) => n.op === STRIDED_COPIES_OP)) merged++;
      expectSameInterpretation(c, graph, `set ${i}`);
    }
    console.log(`sibling chains: ${merged} of ${SIBLINGS} sets with a strided_copies`);
    expect(merged).toBeGreaterThan(SIBLINGS / 2);
  });

  it('WebGPU: the strided_copies kernels give the unfused kernels\' bits', { timeout: 120_000 }, async () => {
    expect(await gpuMismatches(siblingCases, 'set')).toEqual([]);
  });

  it("attention's head split of q, k and v from one projection is one strided_copies; a lone one-dispatch chain is left alone", () => {
    const b = new G();
    const z = b.input('z', f32t(B, 5, 24)); // [B, T, 3d], d = 8, 2 heads
    const head = (start: number, perm: number[]) => b.op('transpose', [b.op('reshape', [b.op('slice', [z], { starts: [0, 0, start], stops: [null, null, start + 8] })], { shape: [B, 5, 2, 4] })], { perm });
    const { graph, chains } = fuseViews(b.graph({ q: head(0, [0, 2, 1, 3]), k: head(8, [0, 2, 3, 1]), v: head(16, [0, 2, 1, 3]) }));
    expect(graph.nodes.map((n) => [n.op, n.outputs.length])).toEqual([[STRIDED_COPIES_OP, 3]]);
    expect(graph.nodes[0].attrs).toMatchObject({ ranks: [4, 4, 4], offsets: [0, 8, 16] });
    expect(chains).toEqual([{ op: STRIDED_COPIES_OP, nodes: [0, 1, 2, 3, 4, 5, 6, 7, 8], inputs: 1, outputs: 3 }]);
    const b2 = new G();
    const t = b2.op('transpose', [b2.input('x', f32t(3, 4))], { perm: [1, 0] });
    expect(fuseViews(b2.graph({ t })).graph.nodes.map((n) => n.op)).toEqual(['transpose']);
  });
});

describe('concats of evenly spaced views (concat-views.ts)', () => {
  it("a scan's inputs stacked by step (x[:, t] along axis 0, in order or reversed) and its input gradient's steps (rows of one product, along the features) are one strided copy each, a reversed one with a negative stride; the same bits", async () => {
    const { expectSameBits, feedsFor, gpuMismatches } = await import('./fused-cases.ts');
    const b = new G();
    const B = sym('B');
    const T = 9;
    const x = b.input('x', f32t(B, T, 3));
    const w = b.input('w', f32t(3, 4));
    const steps = Array.from({ length: T }, (_, t) => b.op('reshape', [b.op('slice', [x], { starts: [0, t, 0], stops: [null, t + 1, null] })], { shape: [B, 3] }));
    const forward = b.op('matmul', [b.op('concat', steps, { axis: 0 }), w]);
    const backward = b.op('matmul', [b.op('concat', [...steps].reverse(), { axis: 0 }), w]);
    // a stacked product [T * B, 4] back to [B, T * 4]: row block t is step t (step T - 1 - t when reversed)
    const rows = (p: Value) => Array.from({ length: T }, (_, t) => b.op('slice', [p], { starts: [mul(B, t), 0], stops: [mul(B, t + 1), null] }));
    const features = b.op('concat', rows(b.op('tanh', [forward])), { axis: 1 });
    const reversed = b.op('concat', rows(b.op('sigmoid', [backward])).reverse(), { axis: 1 });
    const sizes = new Map([['B', 5]]);
    const c = { graph: b.graph({ forward, backward, features, reversed }), feeds: feedsFor(b, sizes, seededRandom(SEED + 7)), sizes };
    const plain = fuseGraph(c.graph, { concatViews: false }).graph;
    const { graph } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    const copies = graph.nodes.filter((n) => n.op === STRIDED_COPY_OP).map((n) => [n.inputs[0].id === x.id ? 'x' : 'product', dimToString(n.attrs.offset as Dim), (n.attrs.strides as Dim[]).map(dimToString)]);
    expect(copies).toEqual([
      ['x', '0', ['3', String(3 * T), '1']],
      ['x', String(3 * (T - 1)), ['-3', String(3 * T), '1']],
      ['product', '0', ['4', '4*B', '1']],
      ['product', `${4 * (T - 1)}*B`, ['4', '-4*B', '1']],
    ]);
    expect(graph.nodes.filter((n) => n.op === 'concat')).toHaveLength(0);
    // each concat of 9 operands was two dispatches (7 operands each) after the copies of its operands; the copy is one
    const dispatches = (g: Graph) => g.nodes.filter((n) => n.op !== 'reshape').reduce((a, n) => a + lowerNode(n).length, 0);
    expect(dispatches(graph)).toBeLessThan(dispatches(plain) - 4);
    // the kernel holds a negative stride as its u32 residue
    const back = graph.nodes.filter((n) => n.op === STRIDED_COPY_OP)[1];
    expect(lowerNode(back)[0].uniforms).toContain(2 ** 32 - 3);
    expectSameBits(c, graph, 'stacked steps');
    expect(await gpuMismatches([c], { concatViews: false }, 'stacked steps')).toEqual([]);
  });
});
