// Matmul products read as column blocks (compiler/optimize/matmul-columns.ts, fused_matmul_columns): one kernel for the product and its reader, the same bits in the interpreter and on WebGPU, and the refusals.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import type { Graph, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { FUSED_COLUMNS_OP } from '../compiler/ops/fused-matmul-columns.ts';
import { drawsRandom } from '../compiler/ops/fused.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';
import { MAX_COLUMN_FMAS } from '../compiler/optimize/matmul-columns.ts';
import { type Dim, sym } from '../compiler/shapes/dim.ts';
import { expectSameBits, type FusedCase, feedsFor } from './fused-cases.ts';
import { getDevice, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G, scalar } from './graph-builder.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261207);
const B = sym('B');
const columnsKernels = (g: Graph) => g.nodes.filter((n) => n.op === FUSED_COLUMNS_OP).length;

/** Column block [o, o + w) of z along its last axis. */
function block(b: G, z: Value, o: number, w: number): Value {
  const r = z.type.shape.length;
  return b.op('slice', [z], { starts: [...new Array(r - 1).fill(0), o], stops: [...new Array(r - 1).fill(null), o + w] });
}

/** One LSTM step: z = x W_x + h W_h + b, four gates, the new c and h. */
function lstmStep(H: number, F: number): FusedCase {
  const b = new G();
  const x = b.input('x', f32t(B, F));
  const h = b.input('h', f32t(B, H));
  const c = b.input('c', f32t(B, H));
  const wx = b.input('wx', f32t(F, 4 * H));
  const wh = b.input('wh', f32t(H, 4 * H));
  const bias = b.input('b', f32t(4 * H));
  const z = b.op('add', [b.op('add', [b.op('matmul', [x, wx]), b.op('matmul', [h, wh])]), bias]);
  const [i, f, g, o] = [0, 1, 2, 3].map((k) => block(b, z, k * H, H));
  const c2 = b.op('add', [b.op('mul', [b.op('sigmoid', [f]), c]), b.op('mul', [b.op('sigmoid', [i]), b.op('tanh', [g])])]);
  const h2 = b.op('mul', [b.op('sigmoid', [o]), b.op('tanh', [c2])]);
  const sizes = new Map([['B', 3]]);
  return { graph: b.graph({ c: c2, h: h2 }), feeds: feedsFor(b, sizes, seededRandom(SEED)), sizes };
}

/**
 * A random product x [..., m, k] @ w [k, n] with a random epilogue (bias, residual, scaling, unary), G of
 * its column blocks of width w read by a random elementwise body (with inputs of its own, and a dropout
 * mask drawn over the block's shape); the product sometimes also read by a later row sum (the merged kernel
 * then stores it too) or returned (no merge).
 */
function randomCase(random: () => number): FusedCase & { text: string; zOut: boolean } {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const sizes = new Map<string, number>([['B', int(1, 4)]]);
  const w = int(1, 12);
  const total = int(2, 5);
  const n = total * w + (random() < 0.25 ? int(1, 3) : 0);
  const k = random() < 0.2 ? int(33, 70) : int(1, 20);
  const lead: Dim[] = random() < 0.3 ? [random() < 0.5 ? B : int(1, 3), int(1, 5)] : [random() < 0.5 ? B : int(1, 9)];
  const b = new G();
  const x = b.input('x', f32t(...lead, k));
  const wt = b.input('w', f32t(k, n));
  let z = b.op('matmul', [x, wt]);
  const zShape = z.type.shape;
  const steps: string[] = [];
  for (let s = int(0, 2); s > 0; s--) {
    const kind = pick(['bias', 'residual', 'scale', 'unary']);
    if (kind === 'bias') z = b.op('add', [z, b.input(`pb${s}`, f32t(n))]);
    else if (kind === 'residual') z = b.op(pick(['add', 'sub']), [b.input(`pr${s}`, f32t(...zShape)), z]);
    else if (kind === 'scale') z = b.op('mul', [z, scalar(b, pick([0.5, -3, 1 / 7]))]);
    else z = b.op(pick(['tanh', 'neg', 'sigmoid']), [z]);
    steps.push(kind);
  }
  // G distinct blocks, in any order; now and then one that starts off the grid of widths
  const G_ = int(1, total);
  const grid = Array.from({ length: total }, (_, j) => j * w).sort(() => random() - 0.5);
  const offsets = grid.slice(0, G_);
  if (random() < 0.2 && n > total * w) offsets[0] = offsets[0] + 1;
  const blocks = offsets.map((o) => block(b, z, o, w));
  const shape = blocks[0].type.shape;
  let y = b.op(pick(['sigmoid', 'tanh', 'neg']), [blocks[0]]);
  for (const [j, bl] of blocks.slice(1).entries()) y = b.op(pick(['add', 'mul', 'sub', 'maximum']), random() < 0.5 ? [y, b.op(pick(['sigmoid', 'tanh', 'abs']), [bl])] : [bl, y]);
  if (random() < 0.5) y = b.op(pick(['add', 'mul']), [y, b.input('e', f32t(...(random() < 0.5 ? [w] : shape)))]);
  let key: Value | undefined;
  if (random() < 0.25) {
    key = b.input('key', { dtype: 'u32', shape: [] });
    const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [key], { shape, stream: 0 }), scalar(b, 0.3)])], { dtype: 'f32' });
    y = b.op('mul', [y, keep]);
  }
  const outputs: Record<string, Value> = { y: b.op('tanh', [y]) };
  const reader = random();
  if (reader < 0.25) outputs.zsum = b.op('reduce_sum', [z], { axes: [zShape.length - 1], keepdims: false });
  const zOut = reader > 0.92;
  if (zOut) outputs.z = z;
  const feeds = feedsFor(b, sizes, random);
  if (key) feeds.set('key', tensor('u32', [], [Math.floor(random() * 2 ** 32)]));
  const text = `[${lead.map(String).join(',')},${k}] @ [${k},${n}] then ${steps.join(', ') || 'nothing'}; blocks ${offsets.join(',')} of ${w}${key ? ', dropout' : ''}; outputs ${Object.keys(outputs).join(',')}; B ${sizes.get('B')}`;
  return { graph: b.graph(outputs), feeds, sizes, text, zOut };
}

describe('products read as column blocks: one kernel', () => {
  it("an LSTM step: the product, its bias adds, the gates and the cell are one kernel, with the same bits in the interpreter", () => {
    const c = lstmStep(4, 3);
    const fused = fuseGraph(c.graph).graph;
    const without = fuseGraph(c.graph, { matmulColumns: false }).graph;
    expect(verifyGraph(fused)).toEqual([]);
    expect(columnsKernels(fused)).toBe(1);
    expect(kernelCount(fused)).toBe(kernelCount(without) - 1);
    const node = fused.nodes.find((n) => n.op === FUSED_COLUMNS_OP)!;
    // in the order the cell reads the gates (f first), each block once
    expect([...(node.attrs.columns as number[])].sort((x, y) => x - y)).toEqual([0, 4, 8, 12]);
    expect(node.attrs.width).toBe(4);
    expectSameBits(c, fused, 'lstm step');
  });

  it('the fusion report counts the merged kernel as one group with the product', () => {
    const c = lstmStep(4, 3);
    const { graph, report } = fuseGraph(c.graph);
    const grp = report.groups.find((x) => x.op === FUSED_COLUMNS_OP)!;
    expect(grp).toBeDefined();
    expect(grp.ops).toContain('matmul');
    expect(grp.ops).toContain('sigmoid');
    expect(report.nodesAfter).toBe(graph.nodes.length);
  });

  it('refused: a transposed weight, a draw in the product\'s epilogue, the product returned or read before its reader, too many fmas per element, the binding limit', () => {
    const refused = (build: (b: G) => Record<string, Value>) => {
      const b = new G();
      const g = b.graph(build(b));
      return columnsKernels(fuseGraph(g).graph);
    };
    const gates = (b: G, z: Value, H: number) => b.op('mul', [b.op('sigmoid', [block(b, z, 0, H)]), b.op('tanh', [block(b, z, H, H)])]);
    // the plain case merges, so each refusal below is the rule's
    expect(refused((b) => ({ y: gates(b, b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]), 4) }))).toBe(1);
    // w stored transposed ([n, k]): the matmul reads it with transpose_b
    expect(refused((b) => ({ y: gates(b, b.op('matmul', [b.input('x', f32t(B, 5)), b.op('transpose', [b.input('w', f32t(8, 5))], { perm: [1, 0] })]), 4) }))).toBe(0);
    // a dropout mask in the product's epilogue is drawn at the product's index
    expect(
      refused((b) => {
        const mm = b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]);
        const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [b.input('key', { dtype: 'u32', shape: [] })], { shape: mm.type.shape, stream: 0 }), scalar(b, 0.5)])], { dtype: 'f32' });
        return { y: gates(b, b.op('mul', [mm, keep]), 4) };
      }),
    ).toBe(0);
    // the product is a graph result
    expect(
      refused((b) => {
        const mm = b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]);
        return { y: gates(b, mm, 4), mm };
      }),
    ).toBe(0);
    // another kernel reads the product before its reader runs
    expect(
      refused((b) => {
        const mm = b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]);
        const early = b.op('reduce_sum', [mm], { axes: [1], keepdims: true });
        return { y: b.op('add', [gates(b, mm, 4), early]) };
      }),
    ).toBe(0);
    // k * G past MAX_COLUMN_FMAS
    const k = MAX_COLUMN_FMAS / 2 + 1;
    expect(refused((b) => ({ y: gates(b, b.op('matmul', [b.input('x', f32t(B, k)), b.input('w', f32t(k, 8))]), 4) }))).toBe(0);
    // a, b, six inputs of the body and an output: nine bindings
    expect(
      refused((b) => {
        let y = gates(b, b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]), 4);
        for (let i = 0; i < 6; i++) y = b.op(i % 2 ? 'add' : 'mul', [y, b.input(`e${i}`, f32t(B, 4))]);
        return { y };
      }),
    ).toBe(0);
  });
});

describe('the fusion report says why a product read as column blocks kept its kernel', () => {
  it('the binding limit and the fma bound, with the matmul and the reader named', () => {
    const report = (build: (b: G) => Record<string, Value>) => {
      const b = new G();
      const g = b.graph(build(b));
      return { g, rejected: fuseGraph(g).report.rejected.filter((r) => /column blocks/.test(r.detail)) };
    };
    const gates = (b: G, z: Value, H: number) => b.op('mul', [b.op('sigmoid', [block(b, z, 0, H)]), b.op('tanh', [block(b, z, H, H)])]);
    const wide = report((b) => {
      let y = gates(b, b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]), 4);
      for (let i = 0; i < 6; i++) y = b.op(i % 2 ? 'add' : 'mul', [y, b.input(`e${i}`, f32t(B, 4))]);
      return { y };
    });
    expect(wide.rejected.map((r) => [r.reason, wide.g.nodes[r.node].op])).toEqual([['bindings', 'matmul']]);
    expect(wide.rejected[0].detail).toBe("computing the product's column blocks in its reader would bind 9 storage buffers (limit 8: a, b, the inputs of both bodies, the outputs)");
    const k = MAX_COLUMN_FMAS / 2 + 1;
    const long = report((b) => ({ y: gates(b, b.op('matmul', [b.input('x', f32t(B, k)), b.input('w', f32t(k, 8))]), 4) }));
    expect(long.rejected.map((r) => r.reason)).toEqual(['fmas']);
    expect(long.rejected[0].detail).toBe(`its 2 column blocks of a product with k = ${k} are ${2 * k} fmas per element, past ${MAX_COLUMN_FMAS}: the product keeps its own kernel`);
    // the merged case has nothing to say
    expect(report((b) => ({ y: gates(b, b.op('matmul', [b.input('x', f32t(B, 5)), b.input('w', f32t(5, 8))]), 4) })).rejected).toEqual([]);
  });
});

const CASES = Number(process.env.DLC_COLUMNS_CASES ?? 60);
/** The first of them run on Dawn too (lavapipe compiles every distinct shader: about 3 s a case with an empty shader cache). */
const GPU_CASES = Number(process.env.DLC_COLUMNS_GPU_CASES ?? 16);

describe(`${CASES} generated products read as column blocks: merged against not (seed ${SEED})`, () => {
  const random = seededRandom(SEED);
  const cases = Array.from({ length: CASES }, () => randomCase(random));
  const fused = cases.map((c) => fuseGraph(c.graph).graph);

  it('the cases cover stored products, draws in the body, symbolic rows and blocks off the grid, and merge wherever the rules allow', () => {
    const merged = cases.filter((_, i) => columnsKernels(fused[i]) > 0);
    console.log(`${merged.length} of ${cases.length} cases merged`);
    expect(merged.length).toBeGreaterThan(cases.length * 0.75);
    expect(merged.filter((c) => c.graph.outputs.has('zsum')).length).toBeGreaterThan(3);
    expect(merged.filter((c) => c.graph.nodes.some((n) => n.op === 'random_uniform')).length).toBeGreaterThan(3);
    expect(fused.some((g) => g.nodes.some((n) => n.op === FUSED_COLUMNS_OP && drawsRandom(n.attrs)))).toBe(true);
    // a returned product is never merged
    for (const [i, c] of cases.entries()) if (c.zOut) expect(columnsKernels(fused[i]), c.text).toBe(0);
  });

  it('every merged graph verifies, has fewer kernels, and gives the same bits in the interpreter', () => {
    for (const [i, c] of cases.entries()) {
      expect(verifyGraph(fused[i]), c.text).toEqual([]);
      const without = fuseGraph(c.graph, { matmulColumns: false }).graph;
      expect(kernelCount(fused[i]), c.text).toBe(kernelCount(without) - columnsKernels(fused[i]));
      expectSameBits(c, fused[i], c.text);
    }
  });

  it(`WebGPU, the first ${GPU_CASES}: every kernel of the merged graphs (GPU, one row per invocation, CPU) gives the bits of the product's kernel and its reader`, { timeout: 300_000 }, async () => {
    // every matmul kernel variant gives the same bits (codegen/matmul.ts), so one run of the unmerged graphs serves
    const device = await getDevice();
    const some = cases.slice(0, GPU_CASES);
    const base = some.map((c) => ({ graph: fuseGraph(c.graph, { matmulColumns: false }).graph, feeds: c.feeds, sizes: c.sizes }));
    const full = some.map((c, i) => ({ graph: fused[i], feeds: c.feeds, sizes: c.sizes }));
    const want = await runGraphs(device, base, { variant: 'gpu' });
    const bad: string[] = [];
    for (const [name, options] of [['gpu', { variant: 'gpu' }], ['rows1', { wide: 'columns-rows1' }], ['cpu', { variant: 'cpu' }], ['cpu-plain', { variant: 'cpu-plain' }]] as const) {
      const got = await runGraphs(device, full, options);
      want.forEach((outs, j) => {
        for (const [k, x] of outs) if (x.length !== got[j].get(k)!.length || x.some((w, i) => w !== got[j].get(k)![i])) bad.push(`${some[j].text} output ${k} (${name})`);
      });
    }
    expect(bad).toEqual([]);
  });
});
