// Strided copies read in place (compiler/optimize/view-inputs.ts): fused kernels read a copy's source through views, with the same bits in the interpreter and on WebGPU, and one dispatch fewer per copy.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import type { Graph, ParamInfo, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { decodeInputViews, FUSED_OP, type InputView } from '../compiler/ops/fused.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { FUSED_REDUCE_OP } from '../compiler/ops/fused-reduce.ts';
import { inferOp, isShapeError } from '../compiler/ops/registry.ts';
import { STRIDED_COPIES_OP, STRIDED_COPY_OP } from '../compiler/ops/strided-copy.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { readViewsInPlace } from '../compiler/optimize/view-inputs.ts';
import { type Dim, sym } from '../compiler/shapes/dim.ts';
import { expectSameBits, type FusedCase, feedsFor, gpuMismatches } from './fused-cases.ts';
import { f32t, GraphBuilder as G } from './graph-builder.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261206);
const B = sym('B');

const COPIES = new Set([STRIDED_COPY_OP, STRIDED_COPIES_OP, 'slice', 'transpose', 'broadcast_to']);
const copies = (g: Graph) => g.nodes.filter((n) => COPIES.has(n.op)).length;
const viewed = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op && n.attrs.views !== undefined).length;

/** An LSTM cell: the four gates are column blocks of one pre-activation z = x w + b. */
function lstmCell(): FusedCase {
  const b = new G();
  const H = 5;
  const x = b.input('x', f32t(B, 3));
  const w = b.input('w', f32t(3, 4 * H));
  const bias = b.input('bias', f32t(4 * H));
  const c = b.input('c', f32t(B, H));
  const z = b.op('add', [b.op('matmul', [x, w]), bias]);
  const gate = (k: number) => b.op('slice', [z], { starts: [0, k * H], stops: [null, (k + 1) * H] });
  const [i, f, g, o] = [0, 1, 2, 3].map(gate);
  const c2 = b.op('add', [b.op('mul', [b.op('sigmoid', [f]), c]), b.op('mul', [b.op('sigmoid', [i]), b.op('tanh', [g])])]);
  const h2 = b.op('mul', [b.op('sigmoid', [o]), b.op('tanh', [c2])]);
  const sizes = new Map([['B', 3]]);
  return { graph: b.graph({ h2, c2 }), feeds: feedsFor(b, sizes, seededRandom(SEED)), sizes };
}

describe('fused kernels read strided copies in place', () => {
  it("an LSTM cell reads its four gates straight from the pre-activation: no copy kernel, one binding of z", () => {
    const c = lstmCell();
    // with the product's columns computed by the cell (matmul-columns.ts) there would be no z to read
    const plain = fuseGraph(c.graph, { viewInputs: false, matmulColumns: false }).graph;
    const { graph, report } = fuseGraph(c.graph, { matmulColumns: false });
    expect(verifyGraph(graph)).toEqual([]);
    expect(copies(plain)).toBe(1);
    expect(copies(graph)).toBe(0);
    expect(kernelCount(graph)).toBe(kernelCount(plain) - 1);
    const cell = graph.nodes.find((n) => n.op === FUSED_OP && n.attrs.views !== undefined)!;
    const views = decodeInputViews(cell.attrs, cell.inputs.length) as InputView[];
    expect(views.map((v) => v.offset).sort()).toEqual([0, 10, 15, 5]);
    expect(views.every((v) => v.strides[0] === 20 && v.strides[1] === 1)).toBe(true);
    expect(new Set(views.map((v) => cell.inputs[v.input].id)).size).toBe(1);
    // the report lists the slices with the kernel that now reads them
    expect(report.groups.some((grp) => grp.op === FUSED_OP && grp.ops.includes('slice'))).toBe(true);
    expectSameBits(c, graph, 'lstm cell');
  });

  it('a row kernel (softmax over a slice) and a matmul epilogue (a slice added to a product) read their slices as views', () => {
    const b = new G();
    const z = b.input('z', f32t(B, 12));
    const a = b.input('a', f32t(B, 4));
    const w = b.input('w', f32t(4, 6));
    const s = b.op('slice', [z], { starts: [0, 2], stops: [null, 8] });
    const e = b.op('exp', [b.op('sub', [s, b.op('reduce_max', [s], { axes: [1], keepdims: true })])]);
    const soft = b.op('div', [e, b.op('reduce_sum', [e], { axes: [1], keepdims: true })]);
    const t = b.op('slice', [z], { starts: [0, 6], stops: [null, null] });
    const y = b.op('add', [b.op('matmul', [a, w]), t]);
    const sizes = new Map([['B', 3]]);
    const c: FusedCase = { graph: b.graph({ soft, y }), feeds: feedsFor(b, sizes, seededRandom(SEED + 1)), sizes };
    const plain = fuseGraph(c.graph, { viewInputs: false }).graph;
    const { graph } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    expect(copies(plain)).toBe(1);
    expect(copies(graph)).toBe(0);
    expect(viewed(graph, FUSED_REDUCE_OP)).toBe(1);
    expect(viewed(graph, FUSED_MATMUL_OP)).toBe(1);
    expectSameBits(c, graph, 'row and epilogue');
  });

  it('a lone elementwise op reading a transpose becomes one fused kernel, which the report lists with the transpose', () => {
    const b = new G();
    const x = b.input('x', f32t(B, 6));
    const y = b.op('exp', [b.op('transpose', [x], { perm: [1, 0] })]);
    const sizes = new Map([['B', 4]]);
    const c: FusedCase = { graph: b.graph({ y }), feeds: feedsFor(b, sizes, seededRandom(SEED + 3)), sizes };
    const { graph, report } = fuseGraph(c.graph);
    expect(graph.nodes.map((n) => n.op)).toEqual([FUSED_OP]);
    expect(report.groups.map((grp) => [grp.op, grp.ops])).toEqual([[FUSED_OP, ['transpose', 'exp']]]);
    expectSameBits(c, graph, 'transpose then exp');
  });

  it("a lone reduction reading a slice becomes one row kernel (an LSTM's gate bias gradient: a column block of the stacked dz, summed)", async () => {
    const b = new G();
    const dz = b.input('dz', f32t(B, 20));
    const db = b.op('reduce_sum', [dz], { axes: [0], keepdims: false });
    const dbf = b.op('reduce_sum', [b.op('slice', [dz], { starts: [0, 5], stops: [null, 10] })], { axes: [0], keepdims: false });
    const sizes = new Map([['B', 70]]);
    const c: FusedCase = { graph: b.graph({ db, dbf }), feeds: feedsFor(b, sizes, seededRandom(SEED + 4)), sizes };
    const { graph, report } = fuseGraph(c.graph);
    expect(verifyGraph(graph)).toEqual([]);
    expect(copies(graph)).toBe(0);
    expect(viewed(graph, FUSED_REDUCE_OP)).toBe(1);
    expect(kernelCount(graph)).toBe(2);
    expect(report.groups.map((grp) => [grp.op, grp.ops])).toContainEqual([FUSED_REDUCE_OP, ['slice', 'reduce_sum']]);
    expectSameBits(c, graph, 'sum of a slice');
    expect(await gpuMismatches([c], { viewInputs: false }, 'sum of a slice')).toEqual([]);
  });

  it('refusals: a result the graph returns, a matmul operand, or an optimizer update keeps its copy; a copy of several results keeps just those', () => {
    const b = new G();
    const z = b.input('z', f32t(4, 12));
    const w = b.input('w', f32t(6, 3));
    const s1 = b.op('slice', [z], { starts: [0, 0], stops: [null, 6] });
    const s2 = b.op('slice', [z], { starts: [0, 6], stops: [null, null] });
    const g = b.graph({ y: b.op('exp', [s2]), m: b.op('matmul', [s1, w]) }); // a lone elementwise op reads a view too
    const { graph } = fuseGraph(g);
    // s1 is a matmul operand, s2 an elementwise input: the strided_copies keeps s1 alone, as a strided_copy
    expect(graph.nodes.map((n) => n.op).filter((op) => COPIES.has(op))).toEqual([STRIDED_COPY_OP]);
    expect(viewed(graph, FUSED_OP)).toBe(1);
    const returned = new G();
    const z2 = returned.input('z', f32t(4, 12));
    const r = returned.op('slice', [z2], { starts: [0, 1], stops: [null, 7] });
    const y = returned.op('sigmoid', [returned.op('exp', [r])]);
    expect(readViewsInPlace(fuseGraph(returned.graph({ r, y }), { viewInputs: false }).graph).absorbed).toEqual([]);
    expect(readViewsInPlace(fuseGraph(returned.graph({ y }), { viewInputs: false }).graph).absorbed).toHaveLength(1);
    // a kernel that writes a parameter's update is left to fuse-updates
    const up = new G();
    const p = up.input('p', f32t(4, 6));
    const grad = up.input('grad', f32t(6, 4));
    const gt = up.op('transpose', [grad], { perm: [1, 0] });
    const next = up.op('sub', [p, up.op('mul', [gt, up.op('full', [], { shape: [], value: 0.1, dtype: 'f32' })])]);
    const ug = up.graph({ next });
    const asUpdate = fuseGraph({ ...ug, outputs: new Map(), params: [{ path: 'p', value: p, update: next } as unknown as ParamInfo] }, { viewInputs: false }).graph;
    expect(asUpdate.nodes.some((n) => n.op === FUSED_OP)).toBe(true);
    expect(readViewsInPlace(asUpdate).absorbed).toEqual([]);
    expect(readViewsInPlace(fuseGraph(ug, { viewInputs: false }).graph).absorbed).toHaveLength(1);
  });

  it('the views attribute is checked: an input out of range, two views of one input, a matmul operand', () => {
    const x: Value['type'] = f32t(4, 8);
    const body = { ops: [['exp', [0], []]], outputs: [1] };
    const view = (input: number) => [input, 0, [4, 4], [8, 1]];
    expect(inferOp(FUSED_OP, [x], { ...body, views: [view(0)] })).toEqual([f32t(4, 4)]);
    for (const views of [[view(1)], [view(0), view(0)], [[0, 0, [4], [8, 1]]]]) expect(isShapeError(inferOp(FUSED_OP, [x], { ...body, views }))).toBe(true);
    const mm = inferOp(FUSED_MATMUL_OP, [f32t(4, 8), f32t(8, 4)], { ops: [], outputs: [0], views: [view(0)] });
    expect(isShapeError(mm) && mm.message).toMatch(/epilogue inputs/);
  });
});

// ---- generated graphs -------------------------------------------------------------------------------

const GENERATED = 150;

/**
 * A source z, 1 to 3 views of it (a slice, a transpose, a strided slice, a broadcast, or two of these),
 * each read by an elementwise body, a row kernel (a sum of squares over the last axis, scaled back) or a
 * matmul's epilogue, sometimes also returned (a copy that must stay).
 */
function randomCase(rand: () => number): FusedCase & { readonly kinds: string[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new G();
  const symbolic = rand() < 0.4;
  const rows: Dim = symbolic ? B : pick([2, 3, 5]);
  const z = b.input('z', f32t(rows, 4, 6));
  const outputs: Record<string, Value> = {};
  const kinds: string[] = [];
  const n = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < n; k++) {
    let v: Value;
    switch (pick(['slice', 'transpose', 'strided', 'broadcast', 'two', 'column', 'row'])) {
      case 'slice':
        v = b.op('slice', [z], { starts: [0, 1, 2], stops: [null, null, 5] });
        break;
      case 'transpose':
        v = b.op('transpose', [z], { perm: [0, 2, 1] });
        break;
      case 'strided':
        v = b.op('slice', [z], { starts: [0, 0, 1], stops: [null, null, null], steps: [1, 2, 2] });
        break;
      case 'broadcast':
        v = b.op('broadcast_to', [b.op('slice', [z], { starts: [0, 0, 0], stops: [null, 1, null] })], { shape: [rows, 3, 6] });
        break;
      // one column or one row of z, which its reader broadcasts over the other columns or rows (x @ w + m[:, 1:2])
      case 'column':
        v = b.op('slice', [z], { starts: [0, 0, 2], stops: [null, null, 3] });
        break;
      case 'row':
        v = b.op('slice', [z], { starts: [0, 1, 0], stops: [null, 2, null] });
        break;
      default:
        v = b.op('transpose', [b.op('slice', [z], { starts: [0, 1, 0], stops: [null, 3, null] })], { perm: [0, 2, 1] });
    }
    const kind = pick(['elementwise', 'elementwise', 'row', 'epilogue']);
    kinds.push(kind);
    // the reader's shape: v's, with a size-1 axis widened (broadcast)
    const wide = v.type.shape.map((d, a) => (d === 1 && a > 0 ? [0, 4, 6][a] : d));
    const other = b.input(`u${k}`, f32t(...(kind === 'epilogue' ? v.type.shape : wide)));
    if (kind === 'elementwise') outputs[`y${k}`] = b.op('mul', [b.op('tanh', [v]), b.op('add', [other, v])]);
    else if (kind === 'row') {
      const sq = b.op('mul', [v, v]);
      outputs[`y${k}`] = b.op('mul', [v, b.op('reduce_sum', [sq], { axes: [2], keepdims: true })]);
    } else {
      const w = b.input(`w${k}`, f32t(v.type.shape[2], wide[2]));
      const product = b.op('matmul', [wide[1] === v.type.shape[1] ? other : b.input(`r${k}`, f32t(rows, wide[1], v.type.shape[2])), w]);
      outputs[`y${k}`] = b.op('add', [product, v]);
    }
    if (rand() < 0.15) outputs[`v${k}`] = v;
  }
  const sizes = new Map([['B', 3]]);
  return { graph: b.graph(outputs), feeds: feedsFor(b, sizes, rand), sizes, kinds };
}

const rand = seededRandom(SEED + 2);
const cases = Array.from({ length: GENERATED }, () => randomCase(rand));

describe(`${GENERATED} generated graphs of views read by fused kernels: the same bits with and without views (seed ${SEED + 2})`, () => {
  it('every fused graph verifies, the interpreter gives the same bits, and views never add a kernel', () => {
    let saved = 0;
    const readers = new Map<string, number>();
    for (const [i, c] of cases.entries()) {
      const plain = fuseGraph(c.graph, { viewInputs: false }).graph;
      const { graph } = fuseGraph(c.graph);
      expect(verifyGraph(graph), `graph ${i}`).toEqual([]);
      expect(kernelCount(graph), `graph ${i}`).toBeLessThanOrEqual(kernelCount(plain));
      saved += kernelCount(plain) - kernelCount(graph);
      for (const op of [FUSED_OP, FUSED_REDUCE_OP, FUSED_MATMUL_OP]) readers.set(op, (readers.get(op) ?? 0) + viewed(graph, op));
      expectSameBits(c, graph, `graph ${i}`);
    }
    console.log(`view inputs: ${saved} dispatches saved over ${GENERATED} graphs; readers with views: ${[...readers].map(([op, k]) => `${op} ${k}`).join(', ')}`);
    expect(saved).toBeGreaterThan(GENERATED / 2);
    for (const k of readers.values()) expect(k).toBeGreaterThan(5);
  });

  it('WebGPU: fused kernels reading views give the bits of the kernels reading copies (GPU and CPU variants)', { timeout: 180_000 }, async () => {
    expect(await gpuMismatches([lstmCell(), ...cases], { viewInputs: false }, 'graph')).toEqual([]);
  });
});
