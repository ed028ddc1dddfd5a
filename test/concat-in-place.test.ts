// Concats in place (compiler/optimize/concat-in-place.ts): fused kernels store a concat's operands straight into its buffer, with the kernels' bits on WebGPU and one dispatch fewer per concat.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import type { Graph, ParamInfo, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { decodeOutputViews, FUSED_OP } from '../compiler/ops/fused.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { FUSED_REDUCE_OP } from '../compiler/ops/fused-reduce.ts';
import { inferOp, isShapeError } from '../compiler/ops/registry.ts';
import { concatsInPlace, isInPlace } from '../compiler/optimize/concat-in-place.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { type Dim, sym } from '../compiler/shapes/dim.ts';
import { expectSameBits, type FusedCase, feedsFor, gpuMismatches } from './fused-cases.ts';
import { f32t, GraphBuilder as G } from './graph-builder.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261206);
const B = sym('B');

const inPlace = (g: Graph) => g.nodes.filter(isInPlace).length;

/** Three operands along the last axis: an elementwise body's, a matmul epilogue's and a softmax's (a row kernel's whole-row output). */
function threeWriters(): FusedCase {
  const b = new G();
  const x = b.input('x', f32t(B, 4));
  const y = b.input('y', f32t(B, 4));
  const a = b.input('a', f32t(B, 3));
  const w = b.input('w', f32t(3, 5));
  const bias = b.input('bias', f32t(5));
  const e = b.op('mul', [b.op('sigmoid', [x]), y]);
  const m = b.op('tanh', [b.op('add', [b.op('matmul', [a, w]), bias])]);
  const ex = b.op('exp', [b.op('sub', [y, b.op('reduce_max', [y], { axes: [1], keepdims: true })])]);
  const soft = b.op('div', [ex, b.op('reduce_sum', [ex], { axes: [1], keepdims: true })]);
  const cat = b.op('concat', [e, m, soft], { axis: 1 });
  const sizes = new Map([['B', 3]]);
  return { graph: b.graph({ out: b.op('mul', [cat, cat]) }), feeds: feedsFor(b, sizes, seededRandom(SEED)), sizes };
}

describe('concats in place', () => {
  it('an elementwise body, a matmul epilogue and a softmax store their operands into the concat: no concat kernel', () => {
    const c = threeWriters();
    const plain = fuseGraph(c.graph, { concatsInPlace: false }).graph;
    const { graph } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    expect(inPlace(graph)).toBe(1);
    expect(kernelCount(graph)).toBe(kernelCount(plain) - 1);
    // each writer stores its slab: offsets 0, 4 and 9 of a row of 13, the result's strides
    const slabs = graph.nodes.flatMap((n) => {
      const views = decodeOutputViews(n.attrs, n.outputs.map((v) => v.type), n.op);
      return typeof views === 'string' ? [] : views.map((v) => [n.op, v.offset, v.strides.map(String)]);
    });
    expect(slabs.sort((p, q) => Number(p[1]) - Number(q[1]))).toEqual([
      [FUSED_OP, 0, ['13', '1']],
      [FUSED_MATMUL_OP, 4, ['13', '1']],
      [FUSED_REDUCE_OP, 9, ['13', '1']],
    ]);
    // the values are the same tensors
    const run = (g: Graph) => interpretGraph(g, { inputs: c.feeds, params: new Map(), state: new Map() }, { sizes: c.sizes }).outputs.get('out')!.data;
    expect([...run(graph)]).toEqual([...run(c.graph)]);
  });

  it("an operand read elsewhere too (a scan's yield, also the next step's input): its elementwise kernel stores a copy into the slab, one more output of the same register", async () => {
    const b = new G();
    const x = b.input('x', f32t(B, 4));
    const y = b.input('y', f32t(B, 4));
    const w = b.input('w', f32t(4, 4));
    // h1 is read by the concat and by a matmul; h2 (the matmul's epilogue) by the concat alone
    const h1 = b.op('add', [b.op('exp', [x]), b.op('sin', [y])]);
    const h2 = b.op('tanh', [b.op('matmul', [h1, w])]);
    const sizes = new Map([['B', 3]]);
    const c: FusedCase = { graph: b.graph({ hs: b.op('concat', [h1, h2], { axis: 1 }), next: b.op('matmul', [h1, b.input('v', f32t(4, 2))]) }), feeds: feedsFor(b, sizes, seededRandom(SEED + 9)), sizes };
    const plain = fuseGraph(c.graph, { concatsInPlace: false }).graph;
    const { graph } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    expect(inPlace(graph)).toBe(1);
    expect(kernelCount(graph)).toBe(kernelCount(plain) - 1);
    // h1's kernel stores it twice: for the matmul and, through its view, into the concat's buffer
    const h1Kernel = graph.nodes.find((n) => n.op === FUSED_OP && n.outputs.some((v) => v.id === h1.id))!;
    expect(h1Kernel.outputs).toHaveLength(2);
    const views = decodeOutputViews(h1Kernel.attrs, h1Kernel.outputs.map((v) => v.type));
    expect(typeof views !== 'string' && views.map((v) => v.output)).toEqual([1]);
    expectSameBits(c, graph, 'copies into the slab');
    expect(await gpuMismatches([c], { concatsInPlace: false }, 'copies into the slab')).toEqual([]);
  });

  it("a constant operand (an RNN's zero initial state heading the stack of its states) is stored into its slab by a kernel of its own, which reads nothing", async () => {
    const b = new G();
    const x = b.input('x', f32t(B, 4));
    const w = b.input('w', f32t(4, 8));
    // h0 = 0 is read by the stack and by the first step; each h_t (a cell: two column blocks of one
    // matmul's result, an elementwise kernel of its own) by the stack and the next step
    const h0 = b.op('full', [], { shape: [B, 4], value: 0, dtype: 'f32' });
    const hs = [h0];
    for (let t = 0; t < 3; t++) {
      const z = b.op('matmul', [hs[t], w]);
      const block = (j: number) => b.op('slice', [z], { starts: [0, 4 * j], stops: [null, 4 * j + 4] });
      hs.push(b.op('mul', [b.op('tanh', [b.op('add', [block(0), x])]), b.op('sigmoid', [block(1)])]));
    }
    const sizes = new Map([['B', 3]]);
    const c: FusedCase = { graph: b.graph({ stack: b.op('concat', hs, { axis: 0 }), last: hs[3] }), feeds: feedsFor(b, sizes, seededRandom(SEED + 10)), sizes };
    const plain = fuseGraph(c.graph, { concatsInPlace: false }).graph;
    const { graph } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    expect(inPlace(graph)).toBe(1);
    const zeros = graph.nodes.filter((n) => n.op === FUSED_OP && n.inputs.length === 0);
    expect(zeros).toHaveLength(1);
    expect(zeros[0].attrs.ops).toEqual([['full', [], [['shape', [B, 4]], ['value', 0], ['dtype', 'f32']]]]);
    expect(typeof decodeOutputViews(zeros[0].attrs, zeros[0].outputs.map((v) => v.type)) !== 'string').toBe(true);
    // the concat kernel (one dispatch for four operands) is gone; the constant is a kernel either way
    expect(kernelCount(graph)).toBe(kernelCount(plain) - 1);
    expectSameBits(c, graph, 'a constant in its slab');
    expect(await gpuMismatches([c], { concatsInPlace: false }, 'a constant in its slab')).toEqual([]);
  });

  it("a transpose of a kernel's result (attention's heads back to [B, L, h, d]) is stored transposed by that kernel, a plain matmul made a fused one; one read elsewhere stays", async () => {
    const b = new G();
    const p = b.input('p', f32t(B, 2, 5, 5));
    const v = b.input('v', f32t(B, 2, 5, 4));
    const w = b.input('w', f32t(8, 3));
    const heads = b.op('transpose', [b.op('matmul', [p, v])], { perm: [0, 2, 1, 3] });
    const y = b.op('matmul', [b.op('reshape', [heads], { shape: [B, 5, 8] }), w]);
    // a second product read by its transpose and by a reduction: its transpose stays a kernel
    const t = b.op('tanh', [b.op('matmul', [p, v])]);
    const kept = b.op('transpose', [t], { perm: [0, 2, 1, 3] });
    const sizes = new Map([['B', 3]]);
    const c: FusedCase = { graph: b.graph({ y, kept, s: b.op('reduce_sum', [t], { axes: [3] }) }), feeds: feedsFor(b, sizes, seededRandom(SEED + 11)), sizes };
    const plain = fuseGraph(c.graph, { transposesInPlace: false }).graph;
    const { graph } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    const transposes = graph.nodes.filter((n) => n.op === 'transpose');
    expect(transposes.map((n) => n.attrs.in_place === true)).toEqual([true, false]);
    expect(kernelCount(graph)).toBe(kernelCount(plain) - 1);
    // the product stores element (b, h, l, e) at b * 40 + l * 8 + h * 4 + e, where the transpose has it
    const product = graph.nodes.find((n) => n.op === FUSED_MATMUL_OP && n.outputs.some((o) => o.id === transposes[0].inputs[0].id))!;
    const views = decodeOutputViews(product.attrs, product.outputs.map((o) => o.type), FUSED_MATMUL_OP);
    expect(typeof views !== 'string' && views.map((x) => [x.offset, x.strides])).toEqual([[0, [40, 4, 8, 1]]]);
    expectSameBits(c, graph, 'a transpose in place');
    expect(await gpuMismatches([c], { transposesInPlace: false }, 'a transpose in place')).toEqual([]);
  });

  it('refusals: a plain matmul, two operands of one matmul kernel, a kernel reading another operand, a result an update reads', () => {
    const refused = (build: (b: G) => Record<string, Value>, params?: (b: G, outs: Record<string, Value>) => ParamInfo[]): number => {
      const b = new G();
      const outs = build(b);
      const g = b.graph(outs);
      const fused = fuseGraph({ ...g, params: params ? params(b, outs) : [] }, { concatsInPlace: false, remat: false }).graph;
      expect(fused.nodes.some((n) => n.op === 'concat')).toBe(true);
      return concatsInPlace(fused).count;
    };
    const x = (b: G) => b.input('x', f32t(2, 3));
    // a positive control: two elementwise bodies
    expect(refused((b) => ({ c: b.op('concat', [b.op('exp', [b.op('sin', [x(b)])]), b.op('cos', [b.op('exp', [x(b)])])], { axis: 0 }) }))).toBe(1);
    // an operand also returned: its elementwise kernel stores a copy
    expect(refused((b) => {
      const e = b.op('exp', [b.op('sin', [x(b)])]);
      return { e, c: b.op('concat', [e, b.op('cos', [x(b)])], { axis: 0 }) };
    })).toBe(1);
    // a plain matmul's result
    expect(refused((b) => ({ c: b.op('concat', [b.op('matmul', [x(b), b.input('w', f32t(3, 3))]), b.op('exp', [x(b)])], { axis: 0 }) }))).toBe(0);
    // an elementwise kernel writing two operands (exp(x) and exp(x) * x, one group) stores both, binding the buffer once
    expect(refused((b) => {
      const xx = x(b);
      const e = b.op('exp', [xx]);
      return { c: b.op('concat', [e, b.op('mul', [e, xx])], { axis: 1 }) };
    })).toBe(1);
    // a matmul kernel writing two operands (its product and tanh of it) does not
    expect(refused((b) => {
      const mm = b.op('matmul', [x(b), b.input('w', f32t(3, 3))]);
      return { c: b.op('concat', [mm, b.op('tanh', [mm])], { axis: 1 }) };
    })).toBe(0);
    // a kernel reading another operand (it would bind the buffer it writes)
    expect(refused((b) => {
      const matmulOut = b.op('matmul', [x(b), b.input('w', f32t(3, 3))]);
      const e = b.op('exp', [b.op('sin', [x(b)])]);
      return { c: b.op('concat', [e, b.op('add', [matmulOut, b.op('neg', [e])])], { axis: 0 }), e2: b.op('mul', [e, e]) };
    })).toBe(0);
    // a concat whose result an optimizer update reads
    expect(
      refused(
        (b) => {
          const p = b.input('p', f32t(4, 3));
          const c = b.op('concat', [b.op('exp', [b.op('sin', [x(b)])]), b.op('cos', [b.op('exp', [x(b)])])], { axis: 0 });
          return { next: b.op('sub', [p, b.op('mul', [c, b.op('full', [], { shape: [], value: 0.1, dtype: 'f32' })])]) };
        },
        (b, outs) => [{ path: 'p', value: b.inputs.find((i) => i.name === 'p')!.value, update: outs.next } as unknown as ParamInfo],
      ),
    ).toBe(0);
  });

  it('out_views is checked: an output out of range, two views of one output, strides of the wrong rank', () => {
    const x = f32t(4, 8);
    const body = { ops: [['exp', [0], []]], outputs: [1] };
    expect(inferOp(FUSED_OP, [x], { ...body, out_views: [[0, 3, [16, 1]]] })).toEqual([x]);
    for (const out_views of [[[1, 0, [16, 1]]], [[0, 0, [16, 1]], [0, 8, [16, 1]]], [[0, 0, [1]]]]) expect(isShapeError(inferOp(FUSED_OP, [x], { ...body, out_views }))).toBe(true);
  });
});

// ---- generated graphs -------------------------------------------------------------------------------

const GENERATED = 80;

/** A concat of 2 to 4 operands along a random axis of rank 3, each an elementwise body's, a matmul epilogue's or a softmax's output, sometimes read elsewhere too. */
function randomCase(rand: () => number): FusedCase {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new G();
  const rows: Dim = rand() < 0.4 ? B : pick([1, 2, 3]);
  const axis = Math.floor(rand() * 3);
  const outputs: Record<string, Value> = {};
  const n = 2 + Math.floor(rand() * 3);
  const operands = Array.from({ length: n }, (_, k) => {
    const shape: Dim[] = [rows, 2, 4].map((d, a) => (a === axis ? (a === 0 ? pick([1, 2]) : pick([1, 2, 3])) : d));
    const x = b.input(`x${k}`, f32t(...shape));
    let v: Value;
    switch (pick(['elementwise', 'elementwise', 'matmul', 'softmax'])) {
      case 'elementwise':
        v = b.op('mul', [b.op('tanh', [x]), b.op('add', [x, b.input(`y${k}`, f32t(...shape))])]);
        break;
      case 'matmul': {
        const a = b.input(`a${k}`, f32t(...shape.slice(0, 2), 3));
        v = b.op('add', [b.op('matmul', [a, b.input(`w${k}`, f32t(3, shape[2]))]), x]);
        break;
      }
      default: {
        const e = b.op('exp', [b.op('sub', [x, b.op('reduce_max', [x], { axes: [2], keepdims: true })])]);
        v = b.op('div', [e, b.op('reduce_sum', [e], { axes: [2], keepdims: true })]);
      }
    }
    if (rand() < 0.1) outputs[`v${k}`] = v;
    return v;
  });
  outputs.y = b.op('sigmoid', [b.op('concat', operands, { axis })]);
  const sizes = new Map([['B', 2]]);
  return { graph: b.graph(outputs), feeds: feedsFor(b, sizes, rand), sizes };
}

const rand = seededRandom(SEED + 5);
const cases = Array.from({ length: GENERATED }, () => randomCase(rand));

describe(`${GENERATED} generated concats of fused kernels' outputs: the same bits in place and not (seed ${SEED + 5})`, () => {
  it('every fused graph verifies and keeps its values, and most concats are done in place', () => {
    let done = 0;
    for (const [i, c] of cases.entries()) {
      const plain = fuseGraph(c.graph, { concatsInPlace: false }).graph;
      const { graph } = fuseGraph(c.graph);
      expect(verifyGraph(graph), `graph ${i}`).toEqual([]);
      expect(kernelCount(graph), `graph ${i}`).toBe(kernelCount(plain) - inPlace(graph));
      done += inPlace(graph);
      const run = (g: Graph) => interpretGraph(g, { inputs: c.feeds, params: new Map(), state: new Map() }, { sizes: c.sizes }).outputs;
      const [want, got] = [run(c.graph), run(graph)];
      for (const [k, t] of want) expect([...got.get(k)!.data], `graph ${i} output ${k}`).toEqual([...t.data]);
    }
    console.log(`concats in place: ${done} of ${GENERATED}`);
    expect(done).toBeGreaterThan(GENERATED / 2);
  });

  it("WebGPU: the kernels storing into the concat's buffer give the bits of the concat kernel (GPU and CPU variants)", { timeout: 180_000 }, async () => {
    expect(await gpuMismatches([threeWriters(), ...cases], { concatsInPlace: false }, 'graph')).toEqual([]);
  });
});
