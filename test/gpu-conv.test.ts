// conv2d as an implicit GEMM (codegen/conv.ts) on Dawn (lavapipe): every variant of the kernel (the tiled
// one for GPUs; for CPU adapters the subgroup variant, 1, 2 or 4 channels per invocation, and the direct
// loop for those without subgroups), forced in turn, on generated convolutions (sizes that are not
// multiples of the 32x32 tile or of 4, several tiles along positions, channels and k, stride 2,
// padding, dilation, groups, a symbolic batch B) against the float64 interpreter, the tiled kernel
// against the CPU ones bit for bit, and fused_conv2d (a bias, residual and ReLU epilogue, the convolution also stored)
// against the unfused graph bit for bit in each variant, the 'reduce' variant (one workgroup per
// output, for weight gradients) included, which is also checked against the interpreter; and
// conv_transpose2d (a conv2d's input gradient), which runs the same kernels over its flipped weights and
// its input dilated by the stride (`conv2dViewOf`), through the same checks.
// DLC_GPU_CONV_CASES sets the number of generated cases (default 12; lavapipe is slow).
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Attrs } from '../compiler/ir/types.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { inferOp, isShapeError } from '../compiler/ops/index.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { type Dim, dimToString, evaluate, sym } from '../compiler/shapes/dim.ts';
import { getDevice, type GraphJob, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G, scalar } from './graph-builder.ts';

interface Spec {
  readonly n: Dim;
  readonly sizes: ReadonlyMap<string, number>;
  readonly c: number;
  readonly o: number;
  readonly kh: number;
  readonly kw: number;
  readonly h: number;
  readonly w: number;
  readonly attrs: Attrs;
  /** A conv_transpose2d (weights [c, o / groups, kh, kw]) instead of a conv2d. */
  readonly transpose?: boolean;
}

interface Case extends GraphJob {
  readonly text: string;
  /** The same graph with the convolution's inputs replaced by their absolute values (the error bound). */
  readonly absFeeds: ReadonlyMap<string, Tensor>;
  /** Terms per output element: C/groups * KH * KW. */
  readonly terms: number;
}

/** A random conv2d configuration that the shape rules accept. */
function randomSpec(random: () => number): Spec {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  for (;;) {
    const groups = pick([1, 1, 1, 2, 3]);
    const cg = pick([1, 2, 3, 4, 5, 8, 12]);
    const og = pick([1, 3, 4, 6, 8, 13, 33, 40]);
    const sizes = new Map<string, number>();
    let n: Dim = int(1, 2);
    if (random() < 0.4) {
      sizes.set('B', int(1, 3));
      n = sym('B');
    }
    const spec: Spec = {
      n,
      sizes,
      c: groups * cg,
      o: groups * og,
      kh: int(1, 4),
      kw: int(1, 4),
      h: int(1, 13),
      w: int(1, 13),
      attrs: { stride: [int(1, 2), int(1, 2)], padding: [int(0, 2), int(0, 2)], dilation: [random() < 0.3 ? 2 : 1, random() < 0.3 ? 2 : 1], groups },
    };
    if (!isShapeError(inferOp('conv2d', [f32t(spec.n, spec.c, spec.h, spec.w), f32t(spec.o, cg, spec.kh, spec.kw)], spec.attrs))) return spec;
  }
}

/** Several tiles along every axis of the GEMM: M = 2*13*11 positions, 40 channels, K = 8*9 = 72. */
const FIXED: readonly Spec[] = [
  { n: sym('B'), sizes: new Map([['B', 2]]), c: 8, o: 40, kh: 3, kw: 3, h: 13, w: 11, attrs: { padding: [1, 1] } },
  { n: 1, sizes: new Map(), c: 6, o: 36, kh: 3, kw: 2, h: 17, w: 15, attrs: { stride: [2, 2], padding: [2, 1], dilation: [2, 1], groups: 3 } },
  { n: 3, sizes: new Map(), c: 7, o: 5, kh: 5, kw: 5, h: 9, w: 10, attrs: { padding: [2, 2] } },
  // a weight gradient's shape: the batch as channels, the output gradient as a 10x10 kernel (k = 1,600), 486 outputs
  { n: 1, sizes: new Map(), c: 16, o: 6, kh: 10, kw: 10, h: 14, w: 14, attrs: { padding: [2, 2] } },
];

/** A random conv_transpose2d (stride 1 to 3, output padding) whose padding is at most d * (k - 1) on both axes (conv2d's view applies). */
function randomTransposeSpec(random: () => number): Spec {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  for (;;) {
    const groups = pick([1, 1, 2]);
    const cg = pick([1, 3, 4, 6, 16]);
    const stride = [pick([1, 1, 2, 3]), pick([1, 2, 2])];
    // at a stride above 1 the view needs 16 channels per group (STRIDED_VIEW_MIN_CHANNELS)
    const og = stride[0] > 1 || stride[1] > 1 ? pick([16, 33]) : pick([1, 3, 5, 8, 33]);
    const [kh, kw] = [int(1, 5), int(1, 5)];
    const dilation = [random() < 0.3 ? 2 : 1, random() < 0.3 ? 2 : 1];
    const sizes = new Map<string, number>();
    let n: Dim = int(1, 2);
    if (random() < 0.4) {
      sizes.set('B', int(1, 3));
      n = sym('B');
    }
    const outputPadding = [0, 1].map((a) => int(0, Math.max(stride[a], dilation[a]) - 1));
    const attrs = { stride, padding: [int(0, dilation[0] * (kh - 1)), int(0, dilation[1] * (kw - 1))], dilation, groups, output_padding: outputPadding };
    const spec: Spec = { n, sizes, c: groups * cg, o: groups * og, kh, kw, h: int(1, 12), w: int(1, 12), attrs, transpose: true };
    if (!isShapeError(inferOp('conv_transpose2d', [f32t(n, spec.c, spec.h, spec.w), f32t(spec.c, og, kh, kw)], attrs))) return spec;
  }
}

function caseOf(s: Spec, random: () => number): Case {
  const groups = (s.attrs.groups as number | undefined) ?? 1;
  const b = new G();
  const feeds = new Map<string, Tensor>();
  const input = (name: string, shape: readonly Dim[]) => {
    const v = b.input(name, f32t(...shape));
    const cs = shape.map((d) => evaluate(d, s.sizes));
    feeds.set(name, tensor('f32', cs, Array.from({ length: cs.reduce((p, q) => p * q, 1) }, () => Math.fround((random() * 2 - 1) * 2))));
    return v;
  };
  const x = input('x', [s.n, s.c, s.h, s.w]);
  const wt = input('w', s.transpose ? [s.c, s.o / groups, s.kh, s.kw] : [s.o, s.c / groups, s.kh, s.kw]);
  const conv = b.op(s.transpose ? 'conv_transpose2d' : 'conv2d', [x, wt], s.attrs);
  const out = conv.type.shape;
  // relu(conv + bias[None, :, None, None] + residual): fuses into one fused_conv2d that also stores conv
  const bias = b.op('reshape', [input('bias', [s.o])], { shape: [1, s.o, 1, 1] });
  const y = b.op('maximum', [b.op('add', [b.op('add', [conv, bias]), input('res', out)]), scalar(b, 0)]);
  const absFeeds = new Map([...feeds].map(([k, t]) => [k, tensor('f32', [...t.shape], Array.from(t.data, Math.abs))]));
  const text = `${s.transpose ? 'conv_transpose2d' : 'conv2d'} x [${[s.n, s.c, s.h, s.w].map(dimToString).join(',')}] w [${(s.transpose ? [s.c, s.o / groups] : [s.o, s.c / groups]).join(',')},${s.kh},${s.kw}] ${JSON.stringify(s.attrs)}; sizes ${JSON.stringify([...s.sizes])}`;
  return { graph: b.graph({ conv, y }), feeds, sizes: s.sizes, text, absFeeds, terms: (s.c / groups) * s.kh * s.kw };
}

const CASES = Number(process.env.DLC_GPU_CONV_CASES ?? 12);

describe(`conv2d's implicit GEMM on WebGPU: ${FIXED.length} fixed and ${CASES} generated convolutions`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261123));
  const cases = [...FIXED, ...Array.from({ length: CASES }, () => randomSpec(random))].map((s) => caseOf(s, random));
  const fused = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph).graph }));

  it('the cases cover the configurations; every epilogue fuses; each convolution has its tiled, direct, subgroup and reduce variants', () => {
    const attrs = cases.map((c) => c.text);
    expect(attrs.some((t) => /"groups":[23]/.test(t))).toBe(true);
    expect(attrs.some((t) => /"stride":\[2/.test(t))).toBe(true);
    expect(attrs.some((t) => /"dilation":\[2/.test(t))).toBe(true);
    expect(attrs.some((t) => /\["B",/.test(t))).toBe(true);
    expect(cases.some((c) => c.terms > 64 && c.terms % 4 !== 0)).toBe(true);
    for (const [i, c] of cases.entries()) {
      const ops = fused[i].graph.nodes.map((n) => n.op).filter((op) => op !== 'reshape');
      expect(ops, c.text).toEqual(['fused_conv2d']);
      for (const node of [...c.graph.nodes, ...fused[i].graph.nodes].filter((n) => n.op === 'conv2d' || n.op === 'fused_conv2d')) {
        const [plan] = lowerNode(node);
        expect(plan.cpuWgsl, c.text).toBeDefined();
        expect(plan.wgsl).toMatch(/var<workgroup> tileA/);
        expect(plan.cpuWgsl).not.toMatch(/workgroupBarrier/);
        expect(plan.cpuVariants?.map((v) => [v.name, v.minSubgroupSize])).toEqual([['subgroup-direct', 8]]);
        expect(plan.cpuVariants![0].wgsl).toMatch(/^enable subgroups;\n\n\/\/ conv2d f32, .*: CPU subgroup variant, 16 positions per workgroup/);
        expect(plan.cpuVariants![0].wgsl).not.toMatch(/workgroupBarrier/);
        expect(plan.wide?.map((w) => w.name)).toEqual(['reduce']);
      }
    }
  });

  it('tiled, subgroup, direct and reduce variants against the interpreter, tiled against subgroup and direct, and fused against unfused bit for bit in each', async () => {
    await checkVariants(cases, fused);
  }, 600_000);
});

const TRANSPOSE_CASES = Number(process.env.DLC_GPU_CONV_CASES ?? 12);

describe(`conv_transpose2d as conv2d over flipped weights (and the input dilated by the stride): ${TRANSPOSE_CASES} generated and 3 fixed`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261123) + 7);
  const fixed: Spec[] = [
    // the input gradient of LeNet's second convolution: 16 -> 6 channels, 5x5, no padding (conv2d padding 4)
    { n: sym('B'), sizes: new Map([['B', 2]]), c: 16, o: 6, kh: 5, kw: 5, h: 10, w: 10, attrs: {}, transpose: true },
    // several tiles along positions, channels and k; padding 1 of a 3x3 (conv2d padding 1), groups
    { n: 2, sizes: new Map(), c: 12, o: 40, kh: 3, kw: 3, h: 9, w: 13, attrs: { padding: [1, 1], groups: 2 }, transpose: true },
    // the input gradient of a stride-2 3x3 convolution with padding 1 (a ResNet's downsampling): output padding 1
    { n: sym('B'), sizes: new Map([['B', 2]]), c: 8, o: 24, kh: 3, kw: 3, h: 7, w: 5, attrs: { stride: [2, 2], padding: [1, 1], output_padding: [1, 1] }, transpose: true },
  ];
  const cases = [...fixed, ...Array.from({ length: TRANSPOSE_CASES }, () => randomTransposeSpec(random))].map((s) => caseOf(s, random));
  const fused = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph).graph }));

  it('every case lowers to conv2d\'s implicit GEMM (fused or not); a padding past d * (k - 1), or a stride with few channels, keeps the gather', () => {
    expect(cases.some((c) => /"groups":2/.test(c.text))).toBe(true);
    expect(cases.some((c) => /"dilation":\[2/.test(c.text))).toBe(true);
    expect(cases.some((c) => /"stride":\[[23]/.test(c.text))).toBe(true);
    expect(cases.some((c) => /"output_padding":\[[12]/.test(c.text))).toBe(true);
    for (const [i, c] of cases.entries()) {
      expect(fused[i].graph.nodes.map((n) => n.op).filter((op) => op !== 'reshape'), c.text).toEqual(['fused_conv_transpose2d']);
      for (const node of [...c.graph.nodes, ...fused[i].graph.nodes].filter((n) => /conv_transpose2d/.test(n.op))) {
        const [plan] = lowerNode(node);
        expect(plan.op).toBe(node.op);
        expect(plan.wgsl, c.text).toMatch(/an implicit GEMM/);
        expect(plan.cpuWgsl).toMatch(/direct loop/);
        expect(plan.cpuVariants?.map((v) => v.name)).toEqual(['subgroup-direct']);
        expect(plan.cpuVariants![0].wgsl).toMatch(/flipped weights.*CPU subgroup variant/);
        expect(plan.wide?.map((w) => w.name)).toEqual(['reduce']);
      }
    }
    const gather = (attrs: Attrs, og = 3) => {
      const b = new G();
      b.op('conv_transpose2d', [b.input('x', f32t(1, 2, 5, 5)), b.input('w', f32t(2, og, 2, 2))], attrs);
      return lowerNode(b.nodes[0])[0].wgsl;
    };
    expect(gather({ padding: [1, 1] })).toMatch(/an implicit GEMM/);
    expect(gather({ padding: [2, 1] })).toMatch(/as a gather/);
    expect(gather({ stride: [2, 2] })).toMatch(/as a gather/);
    expect(gather({ stride: [2, 2] }, 16)).toMatch(/input dilated by the stride, .*: an implicit GEMM/);
    expect(gather({ stride: [1, 2], output_padding: [0, 1] }, 16)).toMatch(/input dilated by the stride, .*: an implicit GEMM/);
  });

  it('tiled, subgroup, direct and reduce variants against the interpreter, tiled against subgroup and direct, and fused against unfused bit for bit in each', async () => {
    await checkVariants(cases, fused);
  }, 600_000);
});

/** Runs the cases and their fused graphs in every variant; compares with the interpreter and each other. */
async function checkVariants(cases: readonly Case[], fused: readonly Case[]): Promise<void> {
  const device = await getDevice();
  const t0 = performance.now();
  const [gpu, cpu, gpuFused, cpuFused, direct, directFused, reduce, reduceFused] = [
    await runGraphs(device, cases, { variant: 'gpu' }),
    // on a CPU adapter with subgroups (lavapipe): the subgroup variant; without (SwiftShader): the direct loop
    await runGraphs(device, cases, { variant: 'cpu' }),
    await runGraphs(device, fused, { variant: 'gpu' }),
    await runGraphs(device, fused, { variant: 'cpu' }),
    await runGraphs(device, cases, { variant: 'cpu-plain' }),
    await runGraphs(device, fused, { variant: 'cpu-plain' }),
    // the one-workgroup-per-output reduction (for few outputs and a long k): its own order of sums
    await runGraphs(device, cases, { variant: 'gpu', wide: 'reduce' }),
    await runGraphs(device, fused, { variant: 'gpu', wide: 'reduce' }),
  ];
  const bad: string[] = [];
  let checked = 0;
  for (const [i, c] of cases.entries()) {
    const want = interpretGraph(c.graph, { inputs: c.feeds, params: new Map(), state: new Map() }).outputs.get('conv')!.data;
    const bound = interpretGraph(c.graph, { inputs: c.absFeeds, params: new Map(), state: new Map() }).outputs.get('conv')!.data;
    for (const [variant, res] of [['tiled', gpu[i]], ['subgroup', cpu[i]], ['direct', direct[i]], ['reduce', reduce[i]]] as const) {
      const got = new Float32Array(res.get('conv')!.buffer);
      expect(got.length, c.text).toBe(want.length);
      const at = want.findIndex((v, j) => !(Math.abs(got[j] - v) <= 1e-6 * (c.terms + 1) * bound[j]));
      if (at >= 0) bad.push(`${c.text}: ${variant} conv[${at}] = ${got[at]}, interpreter ${want[at]}`);
      checked += got.length;
    }
    const same = (label: string, a: Map<string, Uint32Array>, b: Map<string, Uint32Array>) => {
      for (const k of ['conv', 'y']) {
        const [p, q] = [a.get(k)!, b.get(k)!];
        const at = p.findIndex((v, j) => v !== q[j]);
        if (at >= 0 || p.length !== q.length) bad.push(`${c.text}: ${label} ${k}[${at}] ${p[at]?.toString(16)} vs ${q[at]?.toString(16)}`);
      }
    };
    same('tiled unfused vs fused', gpu[i], gpuFused[i]);
    same('subgroup unfused vs fused', cpu[i], cpuFused[i]);
    same('direct unfused vs fused', direct[i], directFused[i]);
    same('reduce unfused vs fused', reduce[i], reduceFused[i]);
    // the same fmas in the same order: a padding tap or a k past K adds 0 * w (finite here) in the tiled kernel
    same('tiled vs subgroup', gpu[i], cpu[i]);
    same('tiled vs direct', gpu[i], direct[i]);
  }
  console.log(`${cases.length} convolutions, ${checked} results against the interpreter, ${bad.length} mismatches (${(performance.now() - t0).toFixed(0)} ms)`);
  expect(checked).toBeGreaterThan(0);
  expect(bad.slice(0, 5)).toEqual([]);
}
