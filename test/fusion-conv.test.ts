// Convolution epilogue fusion (fused_conv2d, fused_conv_transpose2d; compiler/optimize/fuse.ts): a convolution
// and the elementwise ops that consume its output (bias, batch norm, activation, residual, scaling) run as one
// kernel. Fused and unfused graphs give the same bits in the float64 interpreter and on WebGPU (Dawn on
// lavapipe): generated convolutions (random channels, kernels, strides, padding, dilation, groups, symbolic
// batch, conv2d and conv_transpose2d) with random epilogues, hand-built cases the pass must get right or
// refuse, and the LeNet and ResNet training steps (every loss, metric, parameter and state update).
// DLC_FUSION_CONV_CASES sets the number of generated cases (default 32; lavapipe is slow).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileTraining } from '../compiler/frontend/train.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { type Feeds, interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Attrs, Graph, InputInfo, Value } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { lowerNode } from '../compiler/codegen/kernel.ts';
import { FUSED_CONV_OPS } from '../compiler/ops/fused-conv.ts';
import { drawsRandom, encodeFusedBody, FUSED_OP } from '../compiler/ops/fused.ts';
import { FUSED_MATMUL_OP } from '../compiler/ops/fused-matmul.ts';
import { inferOp, isShapeError } from '../compiler/ops/index.ts';
import { fuseWithReport } from '../compiler/optimize/fuse.ts';
import { type Dim, evaluate, sym } from '../compiler/shapes/dim.ts';
import { getDevice, type GraphJob, runGraphs } from './gpu-helpers.ts';
import { f32t, GraphBuilder as G, scalar, SPAN as span } from './graph-builder.ts';
import { argsOf, EXAMPLE_CASES } from './helpers.ts';

const FUSED_CONVS: readonly string[] = Object.values(FUSED_CONV_OPS);




/** Elements whose float64 bits differ (NaN equal to NaN). */
function bitDiffs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad++;
  return bad;
}

/** Outputs whose 32-bit words differ between two runGraphs results, described. */
function wordDiffs(want: readonly Map<string, Uint32Array>[], got: readonly Map<string, Uint32Array>[], label: (i: number) => string): { compared: number; bad: string[] } {
  const bad: string[] = [];
  let compared = 0;
  want.forEach((outs, i) => {
    for (const [k, x] of outs) {
      const y = got[i].get(k);
      compared++;
      if (!y) {
        bad.push(`${label(i)}: output ${k} missing`);
        continue;
      }
      const at = x.findIndex((w, j) => w !== y[j]);
      if (at >= 0 || x.length !== y.length) bad.push(`${label(i)}: output ${k}[${at}] unfused ${x[at]?.toString(16)}, fused ${y[at]?.toString(16)}`);
    }
  });
  return { compared, bad };
}

interface Case extends GraphJob {
  readonly text: string;
}

/** A random convolution (or transposed one) with a random epilogue chain; the feeds at concrete sizes. */
function randomCase(random: () => number): Case {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  for (;;) {
    const sizes = new Map<string, number>();
    const transpose = random() < 0.35;
    const groups = random() < 0.2 ? 2 : 1;
    let n: Dim = int(1, 3);
    if (random() < 0.4) {
      sizes.set('B', int(1, 3));
      n = sym('B');
    }
    const c = groups * int(1, 3);
    const og = int(1, 4);
    const [kh, kw] = [int(1, 3), int(1, 3)];
    const [h, w] = [int(1, 7), int(1, 7)];
    const stride = [int(1, 2), int(1, 2)];
    const dilation = [random() < 0.25 ? 2 : 1, random() < 0.25 ? 2 : 1];
    const padding = [int(0, 1), int(0, 1)];
    const attrs: Attrs = transpose
      ? { stride, padding, dilation, groups, output_padding: stride.map((s, i) => (random() < 0.3 ? Math.max(s, dilation[i]) - 1 : 0)) }
      : { stride, padding, dilation, groups };
    const op = transpose ? 'conv_transpose2d' : 'conv2d';
    const xType = f32t(n, c, h, w);
    const wType = transpose ? f32t(c, og, kh, kw) : f32t(groups * og, c / groups, kh, kw);
    if (isShapeError(inferOp(op, [xType, wType], attrs))) continue;

    const b = new G();
    const feeds = new Map<string, Tensor>();
    const input = (name: string, shape: readonly Dim[]) => {
      const v = b.input(name, f32t(...shape));
      const cs = shape.map((d) => evaluate(d, sizes));
      feeds.set(name, tensor('f32', cs, Array.from({ length: cs.reduce((p, q) => p * q, 1) }, () => Math.fround((random() * 2 - 1) * 2))));
      return v;
    };
    const x = input('x', xType.shape);
    const wt = input('w', wType.shape);
    const conv = b.op(op, [x, wt], attrs);
    const out = conv.type.shape;
    const o = out[1];
    const outputs: Record<string, Value> = {};
    if (random() < 0.25) outputs.conv = conv; // also used outside the epilogue: stored as one more output
    const steps: string[] = [];
    let y = conv;
    let extras = 0; // epilogue inputs, at most 3: with x, w and at most 3 outputs the kernel stays within 8 buffers
    let key: Value | undefined;
    const count = int(1, 4);
    for (let s = 0; s < count; s++) {
      const kinds = ['scale', 'relu', 'relu', 'unary', 'binary', ...(extras < 3 ? ['bias', 'bias', 'residual', 'dropout'] : []), ...(extras === 0 ? ['bn', 'bn'] : [])];
      const kind = pick(kinds);
      if (kind === 'dropout') {
        // a mask drawn at each output element's index, inside the epilogue (the key is one more input)
        if (!key) {
          key = b.input('key', { dtype: 'u32', shape: [] });
          feeds.set('key', tensor('u32', [], [Math.floor(random() * 2 ** 32)]));
          extras++;
        }
        const keep = b.op('cast', [b.op('ge', [b.op('random_uniform', [key], { shape: out, stream: s }), scalar(b, 0.3)])], { dtype: 'f32' });
        y = b.op('div', [b.op('mul', [y, keep]), scalar(b, 0.7)]);
      } else if (kind === 'bias') {
        // b[None, :, None, None] as the examples write it, or a bias already shaped [O, 1, 1]
        const bias = random() < 0.5 ? b.op('reshape', [input(`bias${s}`, [o])], { shape: [1, o, 1, 1] }) : input(`bias${s}`, [o, 1, 1]);
        y = b.op('add', random() < 0.8 ? [y, bias] : [bias, y]);
        extras++;
      } else if (kind === 'bn') {
        // batch norm at evaluation: (y - mean) * scale + shift, statistics per channel
        const stat = (name: string) => input(name, [1, o, 1, 1]);
        y = b.op('add', [b.op('mul', [b.op('sub', [y, stat(`mean${s}`)]), stat(`scale${s}`)]), stat(`shift${s}`)]);
        extras += 3;
      } else if (kind === 'residual') {
        y = b.op(pick(['add', 'sub']), random() < 0.5 ? [y, input(`res${s}`, random() < 0.3 ? [1, ...out.slice(1)] : out)] : [input(`res${s}`, out), y]);
        extras++;
      } else if (kind === 'scale') {
        y = b.op(pick(['mul', 'div']), [y, scalar(b, pick([0.5, 3, 1 / 7, -1.25]))]);
      } else if (kind === 'relu') {
        y = b.op('maximum', [y, scalar(b, 0)]);
      } else if (kind === 'unary') {
        y = b.op(pick(['tanh', 'exp', 'neg', 'abs', 'sigmoid', 'sqrt', 'log', 'sin']), [y]);
      } else {
        // the chain reads the convolution result again (conv * h, h - conv, ...)
        y = b.op(pick(['mul', 'add', 'sub', 'minimum']), random() < 0.5 ? [y, conv] : [conv, y]);
      }
      steps.push(b.nodes[b.nodes.length - 1].op);
      if (s < count - 1 && random() < 0.2 && Object.keys(outputs).length < 2) outputs[`h${s}`] = y;
    }
    outputs.y = y;
    const text = `${op} x [${x.type.shape.map(String).join(',')}] w [${wt.type.shape.join(',')}] ${JSON.stringify(attrs)} then ${steps.join(', ')}; sizes ${JSON.stringify([...sizes])}; outputs ${Object.keys(outputs).join(',')}`;
    return { graph: b.graph(outputs), feeds, sizes, text };
  }
}

const CASES = Number(process.env.DLC_FUSION_CONV_CASES ?? 32);

describe(`${CASES} generated convolution epilogues: fused against unfused`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261126));
  const cases = Array.from({ length: CASES }, () => randomCase(random));
  const fused = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph).graph }));

  it('both convolutions are generated, every one fuses, the fused graph verifies, and the interpreter gives the same bits', () => {
    expect(cases.some((c) => c.text.startsWith('conv2d'))).toBe(true);
    expect(cases.some((c) => c.text.startsWith('conv_transpose2d'))).toBe(true);
    // epilogues that draw a dropout mask, in both kinds of convolution
    const drawing = fused.filter((c) => c.graph.nodes.some((n) => FUSED_CONVS.includes(n.op) && drawsRandom(n.attrs))).map((c) => c.graph.nodes.find((n) => FUSED_CONVS.includes(n.op))!.op);
    expect(new Set(drawing)).toEqual(new Set(FUSED_CONVS));
    for (const [i, c] of cases.entries()) {
      const g = fused[i].graph;
      expect(verifyGraph(g), c.text).toEqual([]);
      expect(g.nodes.filter((n) => FUSED_CONVS.includes(n.op)).length, c.text).toBe(1);
      expect(g.nodes.some((n) => n.op === 'conv2d' || n.op === 'conv_transpose2d'), c.text).toBe(false);
      // the epilogue ran inside the convolution: no elementwise kernel is left
      expect(g.nodes.filter((n) => n.op !== 'reshape' && !FUSED_CONVS.includes(n.op)).map((n) => n.op), c.text).toEqual([]);
      const feeds = { inputs: c.feeds, params: new Map(), state: new Map() };
      const want = interpretGraph(c.graph, feeds).outputs;
      const got = interpretGraph(g, feeds).outputs;
      for (const [k, t] of want) expect(bitDiffs(got.get(k)!.data, t.data), `${c.text}: output ${k}`).toBe(0);
    }
  });

  it('WebGPU: the same bits fused and unfused (all cases in one submission)', async () => {
    const device = await getDevice();
    const t0 = performance.now();
    const [want, got] = [await runGraphs(device, cases), await runGraphs(device, fused)];
    const { compared, bad } = wordDiffs(want, got, (i) => cases[i].text);
    console.log(`${compared} outputs of ${cases.length} cases compared, ${bad.length} differ (${(performance.now() - t0).toFixed(0)} ms)`);
    expect(compared).toBeGreaterThanOrEqual(cases.length);
    expect(bad.slice(0, 5)).toEqual([]);
  }, 300_000);
});

/**
 * A conv2d reading one or both operands through a transpose by [1, 0, 2, 3] (a weight gradient reads both:
 * the batch contracted like a channel), with random sizes, stride, padding and dilation, and half of the
 * time a bias and ReLU epilogue; the feeds at concrete sizes.
 */
function prologueCase(random: () => number, which: 'x' | 'w' | 'both' | 'gradient'): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const n = pick([1, 2, 3, 5]);
  const c = pick([1, 2, 3, 6]);
  const o = pick([1, 4, 6, 9, 33]);
  const [kh, kw] = [pick([1, 2, 3, 5]), pick([1, 3])];
  const stride: [number, number] = [pick([1, 1, 2]), pick([1, 2])];
  const dilation: [number, number] = [pick([1, 1, 2]), 1];
  const padding: [number, number] = [pick([0, 1, 2]), pick([0, 1])];
  const [h, w] = [dilation[0] * (kh - 1) + 1 + pick([0, 3, 8]), dilation[1] * (kw - 1) + 1 + pick([0, 4, 9])];
  const b = new G();
  const symbolic = random() < 0.5;
  const N: Dim = symbolic ? sym('B') : n;
  const x = which === 'w' ? b.input('x', f32t(N, c, h, w)) : b.op('transpose', [b.input('xt', f32t(c, N, h, w))], { perm: [1, 0, 2, 3] });
  const wt = which === 'x' ? b.input('w', f32t(o, c, kh, kw)) : b.op('transpose', [b.input('wt', f32t(c, o, kh, kw))], { perm: [1, 0, 2, 3] });
  let y = b.op('conv2d', [x, wt], { stride, padding, dilation });
  // a weight gradient: both operands transposed, and the result transposed back
  const epilogue = which !== 'gradient' && random() < 0.5;
  if (epilogue) y = b.op('maximum', [b.op('add', [y, b.input('bias', f32t(o, 1, 1))]), scalar(b, 0)]);
  if (which === 'gradient') y = b.op('transpose', [y], { perm: [1, 0, 2, 3] });
  const graph = b.graph({ y });
  const sizes = new Map<string, number>(symbolic ? [['B', n]] : []);
  const feeds = new Map<string, Tensor>(
    graph.inputs.map((i) => {
      const shape = i.value.type.shape.map((d) => evaluate(d, sizes));
      return [i.name, tensor('f32', shape, Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => random() * 2 - 1))];
    }),
  );
  const text = `conv2d ${which} transposed: n ${n}${symbolic ? ' (B)' : ''}, c ${c}, o ${o}, ${h}x${w}, kernel ${kh}x${kw}, stride [${stride}], padding [${padding}], dilation [${dilation}]${epilogue ? ', bias + relu' : ''}`;
  return { graph, feeds, sizes, text };
}

// lavapipe compiles every distinct convolution shader (sizes are baked), so few cases: each choice twice
const PROLOGUE_CASES = Number(process.env.DLC_FUSION_CONV_PROLOGUE_CASES ?? 8);

describe(`${PROLOGUE_CASES} generated convolutions of transposed operands (conv2d prologues): fused against unfused`, () => {
  const random = seededRandom(Number(process.env.DLC_SEED ?? 20261206) + 11);
  const cases = Array.from({ length: PROLOGUE_CASES }, (_, i) => prologueCase(random, (['x', 'w', 'both', 'gradient'] as const)[i % 4]));
  const folded = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph).graph }));
  const plain = cases.map((c) => ({ ...c, graph: fuseWithReport(c.graph, { prologues: false }).graph }));

  it('every transpose folds into the conv2d, which reads its operand through transpose_x / transpose_w and stores a transposed result through transpose_out; the interpreter gives the same bits', () => {
    for (const [i, c] of cases.entries()) {
      const g = folded[i].graph;
      expect(verifyGraph(g), c.text).toEqual([]);
      expect(g.nodes.some((n) => n.op === 'transpose'), c.text).toBe(false);
      const conv = g.nodes.find((n) => n.op === 'conv2d' || n.op === 'fused_conv2d')!;
      const grad = c.text.includes('gradient transposed');
      expect([conv.attrs.transpose_x === true, conv.attrs.transpose_w === true, conv.attrs.transpose_out === true], c.text).toEqual([
        c.text.includes('x transposed') || c.text.includes('both') || grad,
        c.text.includes('w transposed') || c.text.includes('both') || grad,
        grad,
      ]);
      const feeds = { inputs: c.feeds, params: new Map(), state: new Map() };
      const want = interpretGraph(c.graph, feeds, { sizes: c.sizes }).outputs;
      const got = interpretGraph(g, feeds, { sizes: c.sizes }).outputs;
      for (const [k, t] of want) expect(bitDiffs(got.get(k)!.data, t.data), `${c.text}: output ${k}`).toBe(0);
    }
  });

  for (const [variant, options] of [
    ['the tiled kernel (GPUs)', { variant: 'gpu' }],
    ['the reduce kernel (GPUs, few outputs)', { variant: 'gpu', wide: 'reduce' }],
    ['the subgroup kernel (CPU adapters)', { variant: 'cpu' }],
    ['the direct kernel (CPU adapters without subgroups)', { variant: 'cpu-plain' }],
  ] as const) {
    it(`WebGPU, ${variant}: the same bits reading the operands in place as transposing them first`, async () => {
      const device = await getDevice();
      const [want, got] = [await runGraphs(device, plain, options), await runGraphs(device, folded, options)];
      const { compared, bad } = wordDiffs(want, got, (i) => cases[i].text);
      expect(compared).toBe(cases.length);
      expect(bad.slice(0, 5)).toEqual([]);
    }, 300_000);
  }
});

describe('the pass on hand-built convolution graphs', () => {
  /** conv2d(x, w) + b[None, :, None, None], then ReLU: LeNet's Conv layer. */
  function lenetConv() {
    const b = new G();
    const x = b.input('x', f32t(sym('B'), 2, 6, 6));
    const w = b.input('w', f32t(3, 2, 3, 3));
    const bias = b.input('b', f32t(3));
    const conv = b.op('conv2d', [x, w], { stride: [1, 1], padding: [1, 1] });
    const shaped = b.op('reshape', [bias], { shape: [1, 3, 1, 1] });
    const y = b.op('maximum', [b.op('add', [conv, shaped]), scalar(b, 0)]);
    return { b, x, w, conv, shaped, y };
  }

  it('conv2d + bias, relu: one fused_conv2d that keeps the convolution attributes and reads the bias by strides', () => {
    const { b, x, w, shaped, y } = lenetConv();
    const { graph, report } = fuseWithReport(b.graph({ y }));
    expect(verifyGraph(graph)).toEqual([]);
    expect(graph.nodes.map((n) => n.op)).toEqual(['reshape', 'fused_conv2d']);
    const node = graph.nodes[1];
    expect(node.inputs.map((v) => v.id)).toEqual([x.id, w.id, shaped.id]);
    expect(node.attrs.stride).toEqual([1, 1]);
    expect(node.attrs.padding).toEqual([1, 1]);
    expect(node.outputs.map((v) => v.id)).toEqual([y.id]);
    expect(report.groups.map((g) => [g.op, g.ops])).toEqual([['fused_conv2d', ['conv2d', 'add', 'maximum']]]);
    // the shader: the bias read through strides over the output's axes, every operand opaque
    const [plan] = lowerNode(node);
    expect(plan.wgsl).toMatch(/let eo0 = i0 \* p\.es0\[0\]\.x \+ i1 \* p\.es0\[0\]\.y/);
    expect(plan.wgsl).toMatch(/bitcast<f32>\(bitcast<u32>\(v0\) \^ p\.ez\.y\)/);
    expect(plan.cpuWgsl).toMatch(/bitcast<f32>\(bitcast<u32>\(v0\) \^ p\.ez\.y\)/);
    expect(plan.uniforms.length % 4).toBe(0);
  });

  it('with conv: false nothing merges; a result used elsewhere is stored as one more output', () => {
    const { b, conv, y } = lenetConv();
    const s = b.op('reduce_sum', [conv], { axes: [0], keepdims: false });
    const g = b.graph({ y, s });
    const off = fuseWithReport(g, { conv: false }).graph;
    expect(off.nodes.map((n) => n.op)).toEqual(['conv2d', 'reshape', FUSED_OP, 'reduce_sum']);
    const { graph } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    const fc = graph.nodes.find((n) => n.op === 'fused_conv2d')!;
    expect(fc.outputs.map((v) => v.id)).toEqual([conv.id, y.id]);
    expect(graph.nodes.map((n) => n.op)).toEqual(['reshape', 'fused_conv2d', 'reduce_sum']);
  });

  it('refusals: a cycle through a reduction (training-mode batch norm), a group taken by a matmul, a second convolution, the binding limit', () => {
    const b = new G();
    const x = b.input('x', f32t(2, 3, 4, 5));
    const w = b.input('w', f32t(3, 3, 1, 1));
    const conv = b.op('conv2d', [x, w]);
    // batch norm with batch statistics: the mean is a reduction of the convolution that feeds the group
    const mean = b.op('reshape', [b.op('reduce_sum', [conv], { axes: [0, 2, 3], keepdims: false })], { shape: [1, 3, 1, 1] });
    const centered = b.op('tanh', [b.op('sub', [conv, mean])]);
    // a batched matmul of the convolution's shape: both feed one add; the matmul takes the group first
    const mm = b.op('matmul', [b.input('a', f32t(2, 3, 4, 6)), b.input('m', f32t(6, 5))]);
    const conv2 = b.op('conv2d', [x, w]);
    const both = b.op('add', [mm, conv2]);
    // two convolutions into one group: one is refused
    const conv3 = b.op('conv2d', [x, b.input('w3', f32t(3, 3, 1, 1))]);
    const conv4 = b.op('conv2d', [x, b.input('w4', f32t(3, 3, 1, 1))]);
    const pair = b.op('mul', [conv3, conv4]);
    const g = b.graph({ centered, both, pair });
    const { graph, report } = fuseWithReport(g);
    expect(verifyGraph(graph)).toEqual([]);
    const convs = report.rejected.filter((r) => r.op === 'conv2d');
    expect(convs.map((r) => r.reason).sort()).toEqual(['conv', 'conv', 'cycle']);
    expect(convs.find((r) => r.reason === 'cycle')!.detail).toMatch(/uses the conv2d's value and feeds the group/);
    expect(convs.some((r) => /already the epilogue of the matmul/.test(r.detail))).toBe(true);
    expect(convs.some((r) => /already the epilogue of the conv2d/.test(r.detail))).toBe(true);
    expect(graph.nodes.filter((n) => n.op === FUSED_MATMUL_OP).length).toBe(1);
    expect(graph.nodes.filter((n) => n.op === 'fused_conv2d').length).toBe(1);
    expect(graph.nodes.filter((n) => n.op === 'conv2d').length).toBe(3);
    // the interpreter agrees with the unfused graph
    const random = seededRandom(3);
    const feeds: Feeds = { inputs: new Map(g.inputs.map((i) => [i.name, tensor('f32', i.value.type.shape as number[], Array.from({ length: (i.value.type.shape as number[]).reduce((p, q) => p * q, 1) }, () => random() - 0.5))])), params: new Map(), state: new Map() };
    const want = interpretGraph(g, feeds).outputs;
    const got = interpretGraph(graph, feeds).outputs;
    for (const [k, t] of want) expect(bitDiffs(got.get(k)!.data, t.data), k).toBe(0);
    // a tight limit: x, w and one output already take 3 buffers, the bias makes 4
    const { b: lb, y } = lenetConv();
    const tight = fuseWithReport(lb.graph({ y }), { maxStorageBuffers: 3 });
    expect(tight.report.rejected.some((r) => r.op === 'conv2d' && r.reason === 'bindings' && /would bind 4 storage buffers, over the limit of 3/.test(r.detail))).toBe(true);
    expect(tight.graph.nodes.some((n) => FUSED_CONVS.includes(n.op))).toBe(false);
  });

  it('a malformed fused convolution is a shape error, not a crash', () => {
    const body = encodeFusedBody({ ops: [{ op: 'add', args: [0, 1], attrs: {} }], outputs: [2] });
    const x = f32t(1, 2, 4, 4);
    const w = f32t(3, 2, 3, 3);
    expect(inferOp('fused_conv2d', [x, w, f32t(1, 3, 1, 1)], body)).toEqual([f32t(1, 3, 2, 2)]);
    expect(isShapeError(inferOp('fused_conv2d', [x, f32t(3, 5, 3, 3), f32t(1, 3, 1, 1)], body))).toBe(true);
    expect(isShapeError(inferOp('fused_conv2d', [x, w, f32t(1, 4, 1, 1)], body))).toBe(true);
    expect(isShapeError(inferOp('fused_conv2d', [x, w, f32t(1, 3, 1, 1)], { ...body, outputs: [1] }))).toBe(true);
    expect(isShapeError(inferOp('fused_conv2d', [x, w, f32t(1, 3, 1, 1)], { ...body, ops: 'add' }))).toBe(true);
    expect(isShapeError(inferOp('fused_conv2d', [x], body))).toBe(true);
    expect(isShapeError(inferOp('fused_conv_transpose2d', [x, f32t(2, 3, 3, 3), f32t(1, 3, 1, 1)], { ...body, output_padding: [5, 5] }))).toBe(true);
    expect(isShapeError(inferOp('fused_conv2d', [{ dtype: 'i32', shape: [1, 2, 4, 4] }, { dtype: 'i32', shape: [3, 2, 3, 3] }, f32t(1, 3, 1, 1)], body))).toBe(true);
  });
});

// ---- the LeNet and ResNet training steps ------------------------------------------------------------

/** A training graph as a plain graph for runGraphs: parameters and state become inputs, every update an output. */
function asJob(g: Graph, feeds: Feeds, sizes: ReadonlyMap<string, number>): GraphJob {
  const inputs: InputInfo[] = [...g.inputs, ...g.params.map((p) => ({ name: `param ${p.path}`, value: p.value, span })), ...g.state.map((s) => ({ name: `state ${s.path}`, value: s.value, span }))];
  const outputs = new Map<string, Value>([...g.outputs, ...g.losses, ...g.metrics]);
  for (const p of g.params) if (p.update) outputs.set(`update ${p.path}`, p.update);
  for (const s of g.state) if (s.update) outputs.set(`update ${s.path}`, s.update);
  const fed = new Map<string, Tensor>(feeds.inputs);
  for (const [k, t] of feeds.params) fed.set(`param ${k}`, t);
  for (const [k, t] of feeds.state) fed.set(`state ${k}`, t);
  return { graph: { ...g, inputs, params: [], state: [], outputs, losses: new Map(), metrics: new Map() }, feeds: fed, sizes };
}

describe('the LeNet and ResNet training steps: convolution epilogues fused against unfused', () => {
  for (const c of EXAMPLE_CASES.filter((x) => x.model === 'LeNet' || x.model === 'Cifar10ResNet')) {
    it(`${c.file}: ${c.model}`, async () => {
      const file = `examples/${c.file}.dl`;
      const training = compileTraining(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) }).trainings.find((t) => t.forward.name === c.model)!;
      const sizes = new Map(Object.entries(c.sizes));
      const step = training.steps[0];
      const feeds = randomFeeds(step, sizes, seededRandom(5), { intRange: c.intRange ?? {} });
      const fused = fuseWithReport(step);
      const withoutConv = fuseWithReport(step, { conv: false });
      expect(verifyGraph(fused.graph)).toEqual([]);
      const convGroups = fused.report.groups.filter((g) => FUSED_CONVS.includes(g.op));
      expect(convGroups.length).toBeGreaterThan(0);
      // each convolution that takes its epilogue group saves a dispatch
      expect(fused.graph.nodes.length).toBe(withoutConv.graph.nodes.length - convGroups.length);

      // the float64 interpreter: every output, loss, metric and update bit for bit
      const jobs = [step, withoutConv.graph, fused.graph].map((g) => asJob(g, feeds, sizes));
      const results = jobs.map((j) => interpretGraph(j.graph, { inputs: j.feeds, params: new Map(), state: new Map() }).outputs);
      for (const [k, t] of results[0]) {
        expect(bitDiffs(results[2].get(k)!.data, t.data), `interpreter ${k}`).toBe(0);
      }

      // WebGPU: unfused, fused without the convolution epilogues, fused with them
      const device = await getDevice();
      const t0 = performance.now();
      const unfused = await runGraphs(device, [jobs[0]]);
      const noConv = await runGraphs(device, [jobs[1]]);
      const withConv = await runGraphs(device, [jobs[2]]);
      const a = wordDiffs(unfused, withConv, () => `${c.model} unfused vs fused`);
      const b = wordDiffs(noConv, withConv, () => `${c.model} without vs with convolution epilogues`);
      console.log(`${c.model} ${step.name}: ${step.nodes.length} -> ${withoutConv.graph.nodes.length} -> ${fused.graph.nodes.length} nodes (unfused, no conv epilogues, with them: ${convGroups.map((g) => g.ops.join('+')).join('; ')}); ${a.compared} results, ${a.bad.length} differ from unfused, ${b.bad.length} from no conv epilogues (${(performance.now() - t0).toFixed(0)} ms)`);
      expect(a.compared).toBe(results[0].size);
      expect(a.bad.slice(0, 5)).toEqual([]);
      expect(b.bad.slice(0, 5)).toEqual([]);
    }, 300_000);
  }
});
