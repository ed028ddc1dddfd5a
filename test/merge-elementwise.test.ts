// Elementwise kernels merged after views and slabs freed their bindings (compiler/optimize/merge-elementwise.ts): the same bits in the interpreter and on WebGPU, fewer dispatches, and the refusals.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import type { Graph, Node, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { decodeOutputViews, FUSED_OP } from '../compiler/ops/fused.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { mergeElementwise } from '../compiler/optimize/merge-elementwise.ts';
import { dce } from '../compiler/optimize/index.ts';
import { type Dim, sym } from '../compiler/shapes/dim.ts';
import { expectSameBits, type FusedCase, feedsFor, gpuMismatches } from './fused-cases.ts';
import { f32t, GraphBuilder as G } from './graph-builder.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261206);
const B = sym('B');

/** The storage buffers a node's kernel binds: its distinct inputs, and its outputs less those that share a concat's buffer. */
function bindings(n: Node): number {
  const views = decodeOutputViews(n.attrs, n.outputs.map((v) => v.type), n.op);
  const buffer = (o: number) => (typeof views === 'string' ? undefined : views.find((v) => v.output === o)?.buffer);
  return new Set(n.inputs.map((v) => v.id)).size + new Set(n.outputs.map((_, o) => buffer(o) ?? `own ${o}`)).size;
}

const elementwiseKernels = (g: Graph) => g.nodes.filter((n) => n.op === FUSED_OP).length;

/**
 * An LSTM's backward cell in miniature: four gates as column blocks of z, dc from dh through a row kernel
 * in between (so fusion makes separate kernels), then the gate gradients concatenated into dz.
 */
function backwardCell(): FusedCase {
  const b = new G();
  const H = 4;
  const z = b.input('z', f32t(B, 4 * H));
  const dh = b.input('dh', f32t(B, H));
  const c = b.input('c', f32t(B, H));
  const dcNext = b.input('dcn', f32t(B, H));
  const gate = (k: number) => b.op('slice', [z], { starts: [0, k * H], stops: [null, (k + 1) * H] });
  const [i, f, g, o] = [0, 1, 2, 3].map(gate);
  const tc = b.op('tanh', [c]);
  const dc = b.op('add', [dcNext, b.op('mul', [b.op('mul', [dh, b.op('sigmoid', [o])]), b.op('sub', [b.op('full', [], { shape: [], value: 1, dtype: 'f32' }), b.op('mul', [tc, tc])])])]);
  const di = b.op('mul', [dc, b.op('tanh', [g])]);
  const dg = b.op('mul', [dc, b.op('sigmoid', [i])]);
  const df = b.op('mul', [dc, c]);
  const dO = b.op('mul', [dh, tc]);
  const dz = b.op('concat', [di, df, dg, dO], { axis: 1 });
  const dcPrev = b.op('mul', [dc, b.op('sigmoid', [f])]);
  const sizes = new Map([['B', 3]]);
  return { graph: b.graph({ dz: b.op('exp', [dz]), dcPrev }), feeds: feedsFor(b, sizes, seededRandom(SEED)), sizes };
}

describe('merging elementwise kernels', () => {
  it("a backward cell: kernels the binding limit kept apart are one once z is bound once and dz's slabs share a binding; the same bits", () => {
    const c = backwardCell();
    const apart = fuseGraph(c.graph, { mergeElementwise: false }).graph;
    const { graph, report } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    expect(kernelCount(graph)).toBeLessThan(kernelCount(apart));
    expect(elementwiseKernels(graph)).toBeLessThan(elementwiseKernels(apart));
    for (const n of graph.nodes) expect(bindings(n), `${n.op} binds at most 8 buffers`).toBeLessThanOrEqual(8);
    // the report groups every merged kernel's nodes together: every node of the graph is in one group
    const grouped = report.groups.flatMap((grp) => grp.nodes);
    expect(new Set(grouped).size).toBe(grouped.length);
    expectSameBits(c, graph, 'backward cell');
  });

  it('siblings reading one input become one kernel; kernels whose other inputs come later, or that pass the binding limit, stay apart', () => {
    const b = new G();
    const x = [0, 1, 2, 3, 4].map((i) => b.input(`x${i}`, f32t(2, 3)));
    const w = b.input('w', f32t(3, 3));
    const y1 = b.op('mul', [b.op('exp', [x[0]]), b.op('add', [x[1], x[2]])]);
    const mm = b.op('matmul', [y1, w]); // y2 reads the matmul, which reads y1: y2 cannot run where y1 does
    const y2 = b.op('mul', [b.op('sin', [x[2]]), b.op('add', [mm, x[3]])]);
    const y3 = b.op('mul', [b.op('cos', [x[2]]), b.op('add', [x[3], x[4]])]);
    const g = b.graph({ y1, y2, y3, mm });
    // matmuls without epilogues, so y2 is an elementwise kernel of its own
    const plain = fuseGraph(g, { mergeElementwise: false, matmul: false }).graph;
    expect(elementwiseKernels(plain)).toBe(3);
    const { graph } = fuseGraph(g, { matmul: false });
    expect(verifyGraph(graph)).toEqual([]);
    // y3 joins y2 (they share x2 and x3); y2 waits for the matmul, which waits for y1, so y1 stays apart
    expect(elementwiseKernels(graph)).toBe(2);
    const kernelOf = (v: Value) => graph.nodes.find((n) => n.outputs.some((o) => o.id === v.id))!;
    expect(kernelOf(y2)).toBe(kernelOf(y3));
    expect(kernelOf(y1)).not.toBe(kernelOf(y2));
    const c: FusedCase = { graph: g, feeds: feedsFor(b, new Map(), seededRandom(SEED + 1)), sizes: new Map() };
    expectSameBits(c, graph, 'siblings');
    // eight inputs and two results would pass the limit
    const wide = new G();
    const xs = Array.from({ length: 8 }, (_, i) => wide.input(`x${i}`, f32t(2, 3)));
    const u = wide.op('mul', [wide.op('exp', [xs[0]]), wide.op('add', [xs[1], wide.op('add', [xs[2], xs[3]])])]);
    const v = wide.op('mul', [wide.op('sin', [xs[3]]), wide.op('add', [xs[4], wide.op('add', [xs[5], wide.op('add', [xs[6], xs[7]])])])]);
    const wg = wide.graph({ u, v });
    const fusedWide = fuseGraph(wg, { mergeElementwise: false }).graph;
    expect(elementwiseKernels(fusedWide)).toBe(2);
    expect(mergeElementwise(fusedWide).merges).toEqual([]);
  });
});

// ---- generated graphs -------------------------------------------------------------------------------

const GENERATED = 80;
/** Each generated graph compiles its own shaders, which lavapipe takes a while over. */
const GPU_CASES = 40;

/** A few elementwise chains over shared inputs of one shape, some separated by a matmul or a row sum, sometimes feeding a concat. */
function randomCase(rand: () => number): FusedCase {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new G();
  const rows: Dim = rand() < 0.4 ? B : pick([2, 3]);
  const xs = Array.from({ length: 3 + Math.floor(rand() * 4) }, (_, i) => b.input(`x${i}`, f32t(rows, 4)));
  const w = b.input('w', f32t(4, 4));
  const pool: Value[] = [...xs];
  const outputs: Record<string, Value> = {};
  const made: Value[] = [];
  for (let k = 0; k < 3 + Math.floor(rand() * 4); k++) {
    let v = pick(pool);
    for (let s = 0; s < 1 + Math.floor(rand() * 3); s++) v = b.op(pick(['add', 'mul', 'sub']), [b.op(pick(['exp', 'tanh', 'sigmoid', 'neg']), [v]), pick(pool)]);
    made.push(v);
    const after = rand();
    if (after < 0.25) pool.push(b.op('matmul', [v, w]));
    else if (after < 0.4) pool.push(b.op('mul', [v, b.op('reduce_sum', [v], { axes: [1], keepdims: true })]));
    else pool.push(v);
    if (rand() < 0.5) outputs[`y${k}`] = v;
  }
  if (made.length >= 2 && rand() < 0.5) outputs.cat = b.op('exp', [b.op('concat', made.slice(-2), { axis: 1 })]);
  if (Object.keys(outputs).length === 0) outputs.y = made[made.length - 1];
  const sizes = new Map([['B', 2]]);
  // as the compiler fuses them: after dce, which drops the chains nothing returns
  return { graph: dce(b.graph(outputs)), feeds: feedsFor(b, sizes, rand), sizes };
}

const rand = seededRandom(SEED + 9);
const cases = Array.from({ length: GENERATED }, () => randomCase(rand));

describe(`${GENERATED} generated graphs of elementwise chains: the same bits merged and not (seed ${SEED + 9})`, () => {
  it('every merged graph verifies, keeps the bits in the interpreter, binds at most 8 buffers per kernel, and never has more kernels', () => {
    let saved = 0;
    for (const [i, c] of cases.entries()) {
      const apart = fuseGraph(c.graph, { mergeElementwise: false }).graph;
      const { graph } = fuseGraph(c.graph);
      expect(verifyGraph(graph), `graph ${i}`).toEqual([]);
      expect(kernelCount(graph), `graph ${i}`).toBeLessThanOrEqual(kernelCount(apart));
      for (const n of graph.nodes) expect(bindings(n), `graph ${i}: ${n.op} binds at most 8 buffers`).toBeLessThanOrEqual(8);
      saved += kernelCount(apart) - kernelCount(graph);
      expectSameBits(c, graph, `graph ${i}`);
    }
    console.log(`merge-elementwise: ${saved} dispatches saved over ${GENERATED} graphs`);
    expect(saved).toBeGreaterThan(GENERATED / 4);
  });

  it(`WebGPU: merged kernels give the bits of the separate ones (GPU and CPU variants; the first ${GPU_CASES} graphs)`, { timeout: 300_000 }, async () => {
    expect(await gpuMismatches([backwardCell(), ...cases.slice(0, GPU_CASES)], { mergeElementwise: false }, 'graph')).toEqual([]);
  });
});
