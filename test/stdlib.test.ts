// Every std.nn / std.act / std.loss / std.metrics declaration, compiled from tiny .dl models and checked numerically against independent float64 references.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { interpretGraph, type InterpretResult } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { initialize } from '../compiler/interpret/init.ts';
import { evaluate } from '../compiler/shapes/dim.ts';
import { GraphEditor } from '../compiler/ir/editor.ts';
import { addGradients } from '../compiler/autodiff/grad.ts';

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: one seed for the whole file, one stream per test (named), printed so
// a failure can be reproduced with DLC_STDLIB_SEED=<seed>.

const SEED = Number(process.env.DLC_STDLIB_SEED ?? 20250101) >>> 0;
console.log(`stdlib.test.ts: PRNG seed ${SEED} (set DLC_STDLIB_SEED to change it)`);

/** mulberry32: a tiny 32-bit PRNG giving uniform floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stream for one test: the file seed mixed with the test's name (FNV-1a). */
function prng(name: string): () => number {
  let h = (SEED ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return mulberry32(h);
}

function uniform(r: () => number, n: number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

function ints(r: () => number, n: number, hi: number): number[] {
  return Array.from({ length: n }, () => Math.floor(r() * hi));
}

const prod = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------------------------
// Compiling and running .dl source.

const USES = [
  'use std.nn.{Dense, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, Flatten, Dropout, BatchNorm, LayerNorm, RMSNorm, GroupNorm, Upsample, Embedding, RNNCell, RNN, LSTMCell, LSTM, GRUCell, GRU, MultiHeadAttention, TransformerBlock, Residual, Sequential, dropout, bernoulli}',
  'use std.act.{relu, leaky_relu, gelu, silu, elu, softplus, logsumexp, softmax, log_softmax}',
  'use std.loss.{mse, l1, huber, cross_entropy, binary_cross_entropy, nll, kl_normal}',
  'use std.math.{var, std, normalize, cosine_similarity, tril, triu}',
  'use std.metrics.{accuracy, precision, recall, f1, binary_accuracy, binary_precision, binary_recall, binary_f1, auc, confusion_matrix, binary_confusion_matrix}',
].join('\n');

/** Compiles one model (no diagnostics, a well-formed graph) in training or evaluation mode. */
function compile(source: string, training = true): Graph {
  const res = checkSource(`${USES}\n${source}`, 'stdlib_test.dl', undefined, { training });
  expect(res.diagnostics.map((d) => `${d.code}: ${d.message}`)).toEqual([]);
  expect(res.graphs.size).toBe(1);
  const graph = [...res.graphs.values()][0];
  expect(verifyGraph(graph)).toEqual([]);
  return graph;
}

interface RunOptions {
  /** Parameters by path; any missing one is drawn uniformly from [-scale, scale] with `r`. */
  readonly params?: Record<string, number[]>;
  readonly scale?: number;
  /** State buffers by path; `rng.key` defaults to `key`, the others to their initializer. */
  readonly state?: Record<string, number[]>;
  readonly key?: number;
}

interface Run {
  readonly graph: Graph;
  /** Every parameter fed, by path (flat, row-major). */
  readonly p: Record<string, number[]>;
  readonly res: InterpretResult;
  /** An output, loss or metric by name. */
  out(name: string): Tensor;
}

function constShape(shape: readonly unknown[]): number[] {
  return shape.map((d) => evaluate(d as Parameters<typeof evaluate>[0], new Map()));
}

function run(graph: Graph, inputs: Record<string, Tensor>, r: () => number, opts: RunOptions = {}): Run {
  const p: Record<string, number[]> = {};
  const params = new Map<string, Tensor>();
  for (const info of graph.params) {
    const shape = constShape(info.value.type.shape);
    const scale = opts.scale ?? 1;
    const values = opts.params?.[info.path] ?? uniform(r, prod(shape), -scale, scale);
    p[info.path] = values;
    params.set(info.path, tensor(info.value.type.dtype, shape, values));
  }
  for (const path of Object.keys(opts.params ?? {})) {
    if (!graph.params.some((q) => q.path === path)) throw new Error(`no parameter ${path}; the graph has ${graph.params.map((q) => q.path).join(', ')}`);
  }
  const state = new Map<string, Tensor>();
  for (const info of graph.state) {
    const shape = constShape(info.value.type.shape);
    let values: number[] | undefined = opts.state?.[info.path];
    if (!values && info.path === 'rng.key') values = [opts.key ?? 1];
    if (!values && info.init.kind === 'zeros') values = new Array<number>(prod(shape)).fill(0);
    if (!values && info.init.kind === 'ones') values = new Array<number>(prod(shape)).fill(1);
    if (!values) throw new Error(`state ${info.path}: give it a value`);
    state.set(info.path, tensor(info.value.type.dtype, shape, values));
  }
  const res = interpretGraph(graph, { inputs: new Map(Object.entries(inputs)), params, state });
  const out = (name: string): Tensor => {
    const t = res.outputs.get(name) ?? res.losses.get(name) ?? res.metrics.get(name);
    if (!t) throw new Error(`no output ${name}`);
    return t;
  };
  return { graph, p, res, out };
}

/** d loss / d parameter `path`, run on the same feeds as `m` (its graph with the gradient added as an output). */
function gradientsOf(m: Run, path: string, inputs: Record<string, Tensor>): Tensor {
  const e = new GraphEditor(m.graph);
  const param = m.graph.params.find((q) => q.path === path)!.value;
  const grad = addGradients(e, m.graph.losses.get('loss')!, [param]).get(param.id)!;
  e.outputs.set('#grad', grad);
  const g = e.finish();
  const params = new Map(m.graph.params.map((q) => [q.path, tensor(q.value.type.dtype, constShape(q.value.type.shape), m.p[q.path])]));
  return interpretGraph(g, { inputs: new Map(Object.entries(inputs)), params, state: new Map() }).outputs.get('#grad')!;
}

/** Compiles and runs in one go. */
function model(source: string, inputs: Record<string, Tensor>, r: () => number, opts: RunOptions & { training?: boolean } = {}): Run {
  return run(compile(source, opts.training ?? true), inputs, r, opts);
}

const f32 = (shape: number[], values: number[]) => tensor('f32', shape, values);
const i32 = (shape: number[], values: number[]) => tensor('i32', shape, values);

/** Elementwise |actual - expected| <= tol * max(1, |expected|), and the same shape. */
function expectClose(actual: Tensor, shape: readonly number[], expected: readonly number[], tol = 1e-9): void {
  expect(actual.shape).toEqual(shape);
  expect(actual.data.length).toBe(expected.length);
  let worst = 0;
  let where = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual.data[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      where = i;
    }
  }
  expect(worst, where < 0 ? '' : `element ${where}: got ${actual.data[where]}, want ${expected[where]}`).toBeLessThanOrEqual(tol);
}

function expectScalar(actual: Tensor, expected: number, tol = 1e-9): void {
  expectClose(actual, [], [expected], tol);
}

// ---------------------------------------------------------------------------------------------
// Independent float64 references (naive loops over flat row-major arrays).

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** erf by its everywhere-positive series 2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1} / (2n+1)!!, for |x| <= 4. */
function erfRef(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

const geluRef = (x: number) => 0.5 * x * (1 + erfRef(x / Math.SQRT2));

/** [m, k] @ [k, n] -> [m, n]. */
function matmul(a: readonly number[], b: readonly number[], m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += a[i * k + t] * b[t * n + j];
      out[i * n + j] = acc;
    }
  }
  return out;
}

/** Rows [m, k] through a dense layer: x @ w + b. */
function dense(x: readonly number[], m: number, k: number, n: number, w: readonly number[], b?: readonly number[]): number[] {
  const y = matmul(x, w, m, k, n);
  if (b) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) y[i * n + j] += b[j];
  return y;
}

/** A size per spatial axis: `k` is [k, k]. */
const two = (v: number | readonly [number, number]): readonly [number, number] => (typeof v === 'number' ? [v, v] : v);

function conv2dRef(
  x: readonly number[], [N, C, H, W]: readonly number[], w: readonly number[], O: number, K: number | readonly [number, number],
  opts: { stride?: number | readonly [number, number]; padding?: number | readonly [number, number]; dilation?: number | readonly [number, number]; groups?: number; bias?: readonly number[] },
): { y: number[]; shape: number[] } {
  const { groups = 1, bias } = opts;
  const [KH, KW] = two(K);
  const [sh, sw] = two(opts.stride ?? 1);
  const [ph, pw] = two(opts.padding ?? 0);
  const [dh, dw] = two(opts.dilation ?? 1);
  const HO = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const WO = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const cg = C / groups;
  const og = O / groups;
  const y: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / og);
      for (let oh = 0; oh < HO; oh++) {
        for (let ow = 0; ow < WO; ow++) {
          let acc = bias ? bias[o] : 0;
          for (let ci = 0; ci < cg; ci++) {
            const c = g * cg + ci;
            for (let kh = 0; kh < KH; kh++) {
              for (let kw = 0; kw < KW; kw++) {
                const ih = oh * sh - ph + kh * dh;
                const iw = ow * sw - pw + kw * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + c) * H + ih) * W + iw] * w[((o * cg + ci) * KH + kh) * KW + kw];
              }
            }
          }
          y.push(acc);
        }
      }
    }
  }
  return { y, shape: [N, O, HO, WO] };
}

/** Scatter form of the transposed convolution: each input pixel adds w[c, o] at (i s - p + k). */
function convTranspose2dRef(
  x: readonly number[], [N, C, H, W]: readonly number[], w: readonly number[], O: number, K: number,
  { stride = 1, padding = 0, outputPadding = 0, bias }: { stride?: number; padding?: number; outputPadding?: number; bias?: readonly number[] },
): { y: number[]; shape: number[] } {
  const HO = (H - 1) * stride - 2 * padding + K + outputPadding;
  const WO = (W - 1) * stride - 2 * padding + K + outputPadding;
  const y = new Array<number>(N * O * HO * WO).fill(0);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) for (let i = 0; i < HO * WO; i++) y[(n * O + o) * HO * WO + i] = bias ? bias[o] : 0;
    for (let c = 0; c < C; c++) {
      for (let ih = 0; ih < H; ih++) {
        for (let iw = 0; iw < W; iw++) {
          const v = x[((n * C + c) * H + ih) * W + iw];
          for (let o = 0; o < O; o++) {
            for (let kh = 0; kh < K; kh++) {
              for (let kw = 0; kw < K; kw++) {
                const oh = ih * stride - padding + kh;
                const ow = iw * stride - padding + kw;
                if (oh < 0 || oh >= HO || ow < 0 || ow >= WO) continue;
                y[((n * O + o) * HO + oh) * WO + ow] += v * w[((c * O + o) * K + kh) * K + kw];
              }
            }
          }
        }
      }
    }
  }
  return { y, shape: [N, O, HO, WO] };
}

/** Max or mean pooling; padded positions are skipped (max: -inf, mean: not counted). */
function poolRef(x: readonly number[], [N, C, H, W]: readonly number[], K: number | readonly [number, number], stride: number | readonly [number, number], padding: number | readonly [number, number], kind: 'max' | 'avg'): { y: number[]; shape: number[] } {
  const [KH, KW] = two(K);
  const [sh, sw] = two(stride);
  const [ph, pw] = two(padding);
  const HO = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const WO = Math.floor((W + 2 * pw - KW) / sw) + 1;
  const y: number[] = [];
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < HO; oh++) {
      for (let ow = 0; ow < WO; ow++) {
        let best = -Infinity;
        let sum = 0;
        let count = 0;
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            const ih = oh * sh - ph + kh;
            const iw = ow * sw - pw + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const v = x[(nc * H + ih) * W + iw];
            best = Math.max(best, v);
            sum += v;
            count++;
          }
        }
        y.push(kind === 'max' ? best : sum / count);
      }
    }
  }
  return { y, shape: [N, C, HO, WO] };
}

/** Layer norm of each row of length d. */
function layerNormRef(x: readonly number[], d: number, gamma: readonly number[], beta: readonly number[], eps = 1e-5): number[] {
  const y: number[] = [];
  for (let r = 0; r < x.length / d; r++) {
    const row = x.slice(r * d, r * d + d);
    const mu = row.reduce((a, b) => a + b, 0) / d;
    const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / d;
    for (let j = 0; j < d; j++) y.push(((row[j] - mu) / Math.sqrt(v + eps)) * gamma[j] + beta[j]);
  }
  return y;
}

/** Softmax of a plain array. */
function softmaxRef(row: readonly number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** log(sum(exp(row))), shifted by the max. */
function lseRef(row: readonly number[]): number {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((a, b) => a + Math.exp(b - m), 0));
}

/** Multi-head self-attention over x [B, L, d] with the MultiHeadAttention parameters under `pre`. */
function attentionRef(x: readonly number[], B: number, L: number, d: number, heads: number, p: Record<string, number[]>, pre: string, causal: boolean, keep?: readonly number[]): number[] {
  const dh = d / heads;
  const z = dense(x, B * L, d, 3 * d, p[`${pre}.qkv.w`], p[`${pre}.qkv.b`]);
  const y = new Array<number>(B * L * d).fill(0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      const q = (i: number, e: number) => z[(b * L + i) * 3 * d + h * dh + e];
      const k = (j: number, e: number) => z[(b * L + j) * 3 * d + d + h * dh + e];
      const v = (j: number, e: number) => z[(b * L + j) * 3 * d + 2 * d + h * dh + e];
      for (let i = 0; i < L; i++) {
        const visible = causal ? i + 1 : L;
        const scores: number[] = [];
        for (let j = 0; j < visible; j++) {
          let s = 0;
          for (let e = 0; e < dh; e++) s += q(i, e) * k(j, e);
          // a key the mask leaves out scores -1e9, as the layer's select does
          scores.push(keep && !keep[b * L + j] ? -1e9 : s / Math.sqrt(dh));
        }
        const wts = softmaxRef(scores);
        for (let e = 0; e < dh; e++) {
          let acc = 0;
          for (let j = 0; j < visible; j++) acc += wts[j] * v(j, e);
          y[(b * L + i) * d + h * dh + e] = acc;
        }
      }
    }
  }
  return dense(y, B * L, d, d, p[`${pre}.out.w`], p[`${pre}.out.b`]);
}

/** The LSTM step: gates i, f, g, o from z = x w_x + h w_h + b; returns [h', c'] for [B, H]. */
function lstmStep(x: readonly number[], h: readonly number[], c: readonly number[], B: number, F: number, H: number, p: Record<string, number[]>, pre: string, forgetBias: number): [number[], number[]] {
  const zx = matmul(x, p[`${pre}.w_x`], B, F, 4 * H);
  const zh = matmul(h, p[`${pre}.w_h`], B, H, 4 * H);
  const h2: number[] = [];
  const c2: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const z = (gate: number) => zx[b * 4 * H + gate * H + j] + zh[b * 4 * H + gate * H + j] + p[`${pre}.b`][gate * H + j];
      const ig = sigmoid(z(0));
      const fg = sigmoid(z(1) + forgetBias);
      const gg = Math.tanh(z(2));
      const og = sigmoid(z(3));
      const cn = fg * c[b * H + j] + ig * gg;
      c2.push(cn);
      h2.push(og * Math.tanh(cn));
    }
  }
  return [h2, c2];
}

/** The GRU step (PyTorch's formulation) for [B, H]. */
function gruStep(x: readonly number[], h: readonly number[], B: number, F: number, H: number, p: Record<string, number[]>, pre: string): number[] {
  const gx = dense(x, B, F, 3 * H, p[`${pre}.w_x`], p[`${pre}.b_x`]);
  const gh = dense(h, B, H, 3 * H, p[`${pre}.w_h`], p[`${pre}.b_h`]);
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const r = sigmoid(gx[b * 3 * H + j] + gh[b * 3 * H + j]);
      const zg = sigmoid(gx[b * 3 * H + H + j] + gh[b * 3 * H + H + j]);
      const n = Math.tanh(gx[b * 3 * H + 2 * H + j] + r * gh[b * 3 * H + 2 * H + j]);
      out.push((1 - zg) * n + zg * h[b * H + j]);
    }
  }
  return out;
}

/** The Elman step act(x w_x + h w_h + b). */
function rnnStep(x: readonly number[], h: readonly number[], B: number, F: number, H: number, p: Record<string, number[]>, pre: string, act: (v: number) => number): number[] {
  const a = matmul(x, p[`${pre}.w_x`], B, F, H);
  const c = matmul(h, p[`${pre}.w_h`], B, H, H);
  return a.map((v, i) => act(v + c[i] + p[`${pre}.b`][i % H]));
}

/** Runs a step function over [B, T, F] (batch-first), returning every h as [B, T, H]. */
function scanRef(x: readonly number[], B: number, T: number, F: number, H: number, step: (xt: number[], h: number[]) => number[]): number[] {
  let h = new Array<number>(B * H).fill(0);
  const out = new Array<number>(B * T * H).fill(0);
  for (let t = 0; t < T; t++) {
    const xt: number[] = [];
    for (let b = 0; b < B; b++) for (let j = 0; j < F; j++) xt.push(x[(b * T + t) * F + j]);
    h = step(xt, h);
    for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) out[(b * T + t) * H + j] = h[b * H + j];
  }
  return out;
}

/**
 * torch.nn.RNN/LSTM/GRU(batch_first=True) over x [B, T, F]: `layers` stacked layers of `dirs` directions, the
 * backward direction reading t = T-1..0 and storing each h at its own t, the two concatenated on the last axis.
 * A state is [h] or [h, c] ([B, H] each); `init(k)` gives the start of layer * dirs + direction k. Returns the
 * last layer's outputs [B, T, dirs * H] and every final state, in the order k.
 */
function stackedRef(
  x: readonly number[], B: number, T: number, F: number, H: number, layers: number, dirs: number,
  step: (k: number, inF: number, xt: number[], s: number[][]) => number[][], init: (k: number) => number[][],
): { y: number[]; finals: number[][][] } {
  let input = [...x];
  let inF = F;
  const finals: number[][][] = [];
  for (let l = 0; l < layers; l++) {
    const out = new Array<number>(B * T * dirs * H).fill(0);
    for (let d = 0; d < dirs; d++) {
      let s = init(l * dirs + d);
      for (let i = 0; i < T; i++) {
        const t = d === 0 ? i : T - 1 - i;
        const xt: number[] = [];
        for (let b = 0; b < B; b++) for (let j = 0; j < inF; j++) xt.push(input[(b * T + t) * inF + j]);
        s = step(l * dirs + d, inF, xt, s);
        for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) out[(b * T + t) * dirs * H + d * H + j] = s[0][b * H + j];
      }
      finals.push(s);
    }
    input = out;
    inF = dirs * H;
  }
  return { y: input, finals };
}

/** The parameter prefix of cell k = layer * dirs + direction of a stdlib recurrent layer called `name`. */
const cellPrefix = (name: string, dirs: number) => (k: number): string => {
  const l = Math.floor(k / dirs);
  const reverse = k % dirs === 1 ? '_reverse' : '';
  return l === 0 ? `${name}.cell${reverse}` : `${name}.upper${reverse}.${l - 1}`;
};

/** The [B, H] slice k of a [K, B, H] state. */
const stateAt = (s: readonly number[], k: number, B: number, H: number) => s.slice(k * B * H, (k + 1) * B * H);

/** Argmax of each row of C (first maximum). */
function argmaxRows(x: readonly number[], C: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / C; r++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (x[r * C + c] > x[r * C + best]) best = c;
    out.push(best);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Coverage: every public fn / layer of stdlib/*.dl must appear here, and have a describe below.

const TESTED = [
  // std.nn
  'Dense', 'Conv1d', 'Conv2d', 'ConvTranspose2d', 'MaxPool2d', 'AvgPool2d', 'Flatten', 'Dropout', 'BatchNorm', 'LayerNorm',
  'Embedding', 'RNNCell', 'RNN', 'LSTMCell', 'LSTM', 'GRUCell', 'GRU', 'MultiHeadAttention', 'TransformerBlock',
  'Residual', 'Sequential', 'dropout', 'bernoulli', 'RMSNorm', 'GroupNorm', 'Upsample', 'Normalization',
  // std.math
  'var', 'std', 'normalize', 'cosine_similarity', 'tril', 'triu', 'top_k', 'clip',
  // std.act
  'relu', 'leaky_relu', 'gelu', 'silu', 'elu', 'softplus', 'logsumexp', 'softmax', 'log_softmax',
  // std.loss
  'mse', 'l1', 'huber', 'cross_entropy', 'binary_cross_entropy', 'nll', 'kl_normal',
  // std.metrics
  'accuracy', 'top_k_accuracy', 'precision', 'recall', 'f1', 'binary_accuracy', 'binary_precision', 'binary_recall', 'binary_f1', 'auc', 'confusion_matrix', 'binary_confusion_matrix',
  'mae', 'rmse', 'mape', 'r2', 'max_error',
];

describe('coverage', () => {
  it('every public fn and layer in stdlib/*.dl has a test here', () => {
    const dir = join(import.meta.dirname, '..', 'stdlib');
    const declared: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.dl')).sort()) {
      const { program, diagnostics } = parse(readFileSync(join(dir, file), 'utf8'), `stdlib/${file}`);
      expect(diagnostics).toEqual([]);
      for (const d of program.body.stmts) {
        if ((d.kind === 'Fn' || d.kind === 'Layer') && !d.name.text.startsWith('_')) declared.push(d.name.text);
      }
    }
    expect(declared.length).toBeGreaterThan(30);
    expect([...TESTED].sort()).toEqual([...declared].sort());
  });
});

// ---------------------------------------------------------------------------------------------
// std.nn

describe('Dense', () => {
  it('computes x @ w + b over the last axis', () => {
    const r = prng('Dense');
    const x = uniform(r, 4 * 3);
    const m = model('model T {\n input x: f32[B, 3]\n layer d = Dense(3, 2)\n output y = d(x)\n}', { x: f32([4, 3], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['d.w', 'd.b']);
    expectClose(m.out('y'), [4, 2], dense(x, 4, 3, 2, m.p['d.w'], m.p['d.b']));
  });

  it('init sets the weight\'s initializer (GPT-2\'s normal(std: 0.02))', () => {
    const g = compile('model T {\n input x: f32[B, 3]\n layer d = Dense(3, 2, init: normal(std: 0.02))\n layer e = Dense(2, 2)\n output y = e(d(x))\n}');
    expect(g.params.map((q) => [q.path, q.init.kind, q.init.options])).toEqual([
      ['d.w', 'normal', { std: 0.02 }],
      ['d.b', 'zeros', {}],
      ['e.w', 'glorot_uniform', {}],
      ['e.b', 'zeros', {}],
    ]);
  });

  // regression: `bias: false` failed with E0201 (`b` is not available here) when Dense read the guarded-out b
  it('works on extra leading axes and without a bias', () => {
    const r = prng('Dense/nobias');
    const x = uniform(r, 2 * 3 * 4);
    const m = model('model T {\n input x: f32[B, T, 4]\n layer d = Dense(4, 5, bias: false)\n output y = d(x)\n}', { x: f32([2, 3, 4], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['d.w']);
    expectClose(m.out('y'), [2, 3, 5], dense(x, 6, 4, 5, m.p['d.w']));
  });
});

describe('Conv2d', () => {
  it('matches a naive convolution with stride and padding', () => {
    const r = prng('Conv2d');
    const xs = [2, 3, 5, 6];
    const x = uniform(r, prod(xs));
    const m = model('model T {\n input x: f32[B, 3, 5, 6]\n layer c = Conv2d(3, 4, 3, stride: 2, padding: 1)\n output y = c(x)\n}', { x: f32(xs, x) }, r);
    const ref = conv2dRef(x, xs, m.p['c.w'], 4, 3, { stride: 2, padding: 1, bias: m.p['c.b'] });
    expect(ref.shape).toEqual([2, 4, 3, 3]);
    expectClose(m.out('y'), ref.shape, ref.y);
  });

  it('matches a naive convolution with dilation, groups and no bias', () => {
    const r = prng('Conv2d/groups');
    const xs = [2, 4, 6, 5];
    const x = uniform(r, prod(xs));
    const m = model('model T {\n input x: f32[B, 4, 6, 5]\n layer c = Conv2d(4, 6, 2, dilation: 2, groups: 2, bias: false)\n output y = c(x)\n}', { x: f32(xs, x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['c.w']);
    const ref = conv2dRef(x, xs, m.p['c.w'], 6, 2, { dilation: 2, groups: 2 });
    expect(ref.shape).toEqual([2, 6, 4, 3]);
    expectClose(m.out('y'), ref.shape, ref.y);
  });
});

/** A naive 1-d convolution of x [N, C, L] with w [O, C / groups, K], `left` and `right` zeros padded at the ends. */
function conv1dRef(x: readonly number[], [N, C, L]: readonly number[], w: readonly number[], O: number, K: number, opts: { stride?: number; left?: number; right?: number; dilation?: number; groups?: number; bias?: readonly number[] }): { y: number[]; shape: number[] } {
  const { stride = 1, left = 0, right = 0, dilation = 1, groups = 1, bias } = opts;
  const Lo = Math.floor((L + left + right - dilation * (K - 1) - 1) / stride) + 1;
  const cg = C / groups;
  const y: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let t = 0; t < Lo; t++) {
        let acc = bias ? bias[o] : 0;
        const g = Math.floor(o / (O / groups));
        for (let c = 0; c < cg; c++)
          for (let j = 0; j < K; j++) {
            const at = t * stride + j * dilation - left;
            if (at >= 0 && at < L) acc += w[(o * cg + c) * K + j] * x[(n * C + g * cg + c) * L + at];
          }
        y.push(acc);
      }
  return { y, shape: [N, O, Lo] };
}

describe('Conv1d', () => {
  it('matches a naive 1-d convolution: causal (the start padded, the length kept), and with stride, padding, dilation and groups', () => {
    const r = prng('Conv1d');
    const xs = [2, 4, 9];
    const x = uniform(r, prod(xs));
    const m = model(
      'model T {\n input x: f32[B, 4, 9]\n layer c = Conv1d(4, 3, 3, dilation: 2, causal: true)\n layer d = Conv1d(4, 6, 2, stride: 2, padding: 1, groups: 2, bias: false)\n output y = c(x)\n output z = d(x)\n}',
      { x: f32(xs, x) },
      r,
    );
    expect(m.graph.params.map((q) => [q.path, q.value.type.shape])).toEqual([['c.w', [3, 4, 3]], ['c.b', [3]], ['d.w', [6, 2, 2]]]);
    const causal = conv1dRef(x, xs, m.p['c.w'], 3, 3, { left: 4, dilation: 2, bias: m.p['c.b'] });
    expect(causal.shape).toEqual([2, 3, 9]);
    expectClose(m.out('y'), causal.shape, causal.y);
    const strided = conv1dRef(x, xs, m.p['d.w'], 6, 2, { stride: 2, left: 1, right: 1, groups: 2 });
    expect(strided.shape).toEqual([2, 6, 5]);
    expectClose(m.out('z'), strided.shape, strided.y);
  });

  it('causal: an output step does not read a later input', () => {
    const r = prng('Conv1d/causal');
    const x = uniform(r, 1 * 2 * 6);
    const src = 'model T {\n input x: f32[B, 2, 6]\n layer c = Conv1d(2, 2, 2, dilation: 2, causal: true)\n output y = c(x)\n}';
    const params = { 'c.w': uniform(r, 8), 'c.b': uniform(r, 2) };
    const before = model(src, { x: f32([1, 2, 6], x) }, r, { params }).out('y');
    const later = x.slice();
    for (const c of [0, 1]) later[c * 6 + 5] += 1; // the last step changed
    const after = model(src, { x: f32([1, 2, 6], later) }, r, { params }).out('y');
    for (const c of [0, 1]) {
      expect(Array.from(after.data.slice(c * 6, c * 6 + 5))).toEqual(Array.from(before.data.slice(c * 6, c * 6 + 5)));
      expect(after.data[c * 6 + 5]).not.toBe(before.data[c * 6 + 5]);
    }
  });

  it('refuses padding with causal', () => {
    const errors = checkSource('model T {\n input x: f32[B, 2, 6]\n layer c = Conv1d(2, 2, 3, padding: 1, causal: true)\n output y = c(x)\n}', 't.dl').diagnostics.filter((d) => d.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(`${errors[0].message} ${errors[0].help ?? ''}`).toContain('causal: true pads the start itself');
  });
});

describe('a size per axis: kernel, stride, padding and dilation as [height, width]', () => {
  it('Conv2d, MaxPool2d and AvgPool2d take pairs (a 1x3 kernel, stride [2, 1]); ConvTranspose2d keeps its output size rule per axis; pair() says what it takes', () => {
    const r = prng('Conv2d/pairs');
    const xs = [2, 3, 5, 6];
    const x = uniform(r, prod(xs));
    const src = 'model T {\n input x: f32[B, 3, 5, 6]\n layer c = Conv2d(3, 4, [1, 3], stride: [2, 1], padding: [0, 1], dilation: [1, 2])\n' +
      ' layer mp = MaxPool2d([2, 3], stride: [1, 2])\n layer ap = AvgPool2d([3, 1], padding: [1, 0])\n layer t = ConvTranspose2d(3, 2, [2, 3], stride: [2, 1])\n' +
      ' output y = c(x)\n output m = mp(x)\n output a = ap(x)\n output u = t(x)\n}';
    const m = model(src, { x: f32(xs, x) }, r);
    expect(m.graph.params.find((q) => q.path === 'c.w')!.value.type.shape).toEqual([4, 3, 1, 3]);
    const ref = conv2dRef(x, xs, m.p['c.w'], 4, [1, 3], { stride: [2, 1], padding: [0, 1], dilation: [1, 2], bias: m.p['c.b'] });
    expect(ref.shape).toEqual([2, 4, 3, 4]);
    expectClose(m.out('y'), ref.shape, ref.y);
    const mp = poolRef(x, xs, [2, 3], [1, 2], 0, 'max');
    expectClose(m.out('m'), mp.shape, mp.y);
    const ap = poolRef(x, xs, [3, 1], [3, 1], [1, 0], 'avg');
    expectClose(m.out('a'), ap.shape, ap.y);
    expect(m.out('u').shape).toEqual([2, 2, (5 - 1) * 2 + 2, (6 - 1) * 1 + 3]);
    const bad = checkSource('model T {\n input x: f32[B, 3, 5, 6]\n layer c = Conv2d(3, 4, [1, 3, 3])\n output y = c(x)\n}', 't.dl').diagnostics;
    expect(bad.map((d) => `${d.code} ${d.message}`)).toEqual(['E0305 expected a whole number or a list of two ([height, width]), found a list']);
  });
});

describe('ConvTranspose2d', () => {
  it('matches the scatter form, with stride, padding and output padding', () => {
    const r = prng('ConvTranspose2d');
    const xs = [2, 3, 3, 4];
    const x = uniform(r, prod(xs));
    const m = model('model T {\n input x: f32[B, 3, 3, 4]\n layer c = ConvTranspose2d(3, 2, 3, stride: 2, padding: 1, output_padding: 1)\n output y = c(x)\n}', { x: f32(xs, x) }, r);
    const ref = convTranspose2dRef(x, xs, m.p['c.w'], 2, 3, { stride: 2, padding: 1, outputPadding: 1, bias: m.p['c.b'] });
    expect(ref.shape).toEqual([2, 2, 6, 8]);
    expectClose(m.out('y'), ref.shape, ref.y);
  });

  it('defaults: stride 1, no padding', () => {
    const r = prng('ConvTranspose2d/defaults');
    const xs = [1, 2, 3, 3];
    const x = uniform(r, prod(xs));
    const m = model('model T {\n input x: f32[B, 2, 3, 3]\n layer c = ConvTranspose2d(2, 3, 2)\n output y = c(x)\n}', { x: f32(xs, x) }, r);
    const ref = convTranspose2dRef(x, xs, m.p['c.w'], 3, 2, { bias: m.p['c.b'] });
    expectClose(m.out('y'), [1, 3, 4, 4], ref.y);
  });
});

describe('MaxPool2d', () => {
  it('takes the max of each window (default stride = kernel, and strided with padding)', () => {
    const r = prng('MaxPool2d');
    const xs = [2, 3, 5, 6];
    const x = uniform(r, prod(xs), -2, -0.5); // all negative: a padded zero would win
    const m = model('model T {\n input x: f32[B, 3, 5, 6]\n layer p1 = MaxPool2d(2)\n layer p2 = MaxPool2d(3, stride: 2, padding: 1)\n output a = p1(x)\n output b = p2(x)\n}', { x: f32(xs, x) }, r);
    const a = poolRef(x, xs, 2, 2, 0, 'max');
    const b = poolRef(x, xs, 3, 2, 1, 'max');
    expect(a.shape).toEqual([2, 3, 2, 3]);
    expectClose(m.out('a'), a.shape, a.y);
    expect(b.shape).toEqual([2, 3, 3, 3]);
    expectClose(m.out('b'), b.shape, b.y);
  });
});

describe('AvgPool2d', () => {
  it('averages each window; padding is not counted', () => {
    const r = prng('AvgPool2d');
    const xs = [2, 3, 5, 6];
    const x = uniform(r, prod(xs));
    const m = model('model T {\n input x: f32[B, 3, 5, 6]\n layer p1 = AvgPool2d(2)\n layer p2 = AvgPool2d(3, stride: 2, padding: 1)\n output a = p1(x)\n output b = p2(x)\n}', { x: f32(xs, x) }, r);
    const a = poolRef(x, xs, 2, 2, 0, 'avg');
    const b = poolRef(x, xs, 3, 2, 1, 'avg');
    expectClose(m.out('a'), a.shape, a.y);
    expectClose(m.out('b'), b.shape, b.y);
  });
});

describe('Flatten', () => {
  it('keeps the batch axis and flattens the rest in row-major order', () => {
    const r = prng('Flatten');
    const x = uniform(r, 2 * 3 * 2 * 2);
    const m = model('model T {\n input x: f32[B, 3, 2, 2]\n layer f = Flatten()\n output y = f(x)\n}', { x: f32([2, 3, 2, 2], x) }, r);
    expectClose(m.out('y'), [2, 12], x, 0);
  });
});

/** Checks a dropout result: each element 0 or x / (1 - p), about p of them zero. */
function checkDropout(x: readonly number[], y: Tensor, p: number): number {
  let zeros = 0;
  for (let i = 0; i < x.length; i++) {
    if (y.data[i] === 0) zeros++;
    else expect(Math.abs(y.data[i] - x[i] / (1 - p))).toBeLessThanOrEqual(1e-12);
  }
  const frac = zeros / x.length;
  // 5 standard deviations of a binomial proportion
  expect(Math.abs(frac - p)).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / x.length));
  return frac;
}

describe('Dropout', () => {
  const src = 'model T {\n input x: f32[B, N]\n layer drop = Dropout(0.3)\n output y = drop(x)\n}';

  it('training: zeroes about p of the elements and scales the rest by 1 / (1 - p)', () => {
    const r = prng('Dropout');
    const x = uniform(r, 4 * 2048, 0.5, 1.5);
    const g = compile(src, true);
    expect(g.state.map((s) => s.path)).toEqual(['rng.key']);
    const a = run(g, { x: f32([4, 2048], x) }, r, { key: 7 });
    checkDropout(x, a.out('y'), 0.3);
    // the key decides the mask: the same key repeats it, another key changes it
    const again = run(g, { x: f32([4, 2048], x) }, r, { key: 7 });
    expect([...again.out('y').data]).toEqual([...a.out('y').data]);
    const other = run(g, { x: f32([4, 2048], x) }, r, { key: 8 });
    checkDropout(x, other.out('y'), 0.3);
    expect([...other.out('y').data]).not.toEqual([...a.out('y').data]);
  });

  it('evaluation: the identity, with no random key', () => {
    const r = prng('Dropout/eval');
    const x = uniform(r, 3 * 5);
    const g = compile(src, false);
    expect(g.state).toEqual([]);
    expectClose(run(g, { x: f32([3, 5], x) }, r).out('y'), [3, 5], x, 0);
  });

  it('p = 0 is the identity in training too', () => {
    const r = prng('Dropout/p0');
    const x = uniform(r, 3 * 5);
    const m = model('model T {\n input x: f32[B, 5]\n layer drop = Dropout(0.0)\n output y = drop(x)\n}', { x: f32([3, 5], x) }, r);
    expectClose(m.out('y'), [3, 5], x, 0);
  });
});

describe('dropout (fn)', () => {
  const src = 'model T {\n input x: f32[B, N]\n output y = dropout(x, p: 0.6)\n}';

  it('training: zeroes about p of the elements and scales the rest by 1 / (1 - p)', () => {
    const r = prng('dropout');
    const x = uniform(r, 4 * 2048, -1.5, -0.5);
    const m = model(src, { x: f32([4, 2048], x) }, r, { key: 3 });
    checkDropout(x, m.out('y'), 0.6);
  });

  it('default p = 0.5', () => {
    const r = prng('dropout/default');
    const x = uniform(r, 2 * 2048, 0.5, 1.5);
    const m = model('model T {\n input x: f32[B, N]\n output y = dropout(x)\n}', { x: f32([2, 2048], x) }, r, { key: 11 });
    checkDropout(x, m.out('y'), 0.5);
  });

  it('evaluation and p = 0: the identity', () => {
    const r = prng('dropout/eval');
    const x = uniform(r, 3 * 4);
    expectClose(model(src, { x: f32([3, 4], x) }, r, { training: false }).out('y'), [3, 4], x, 0);
    const z = model('model T {\n input x: f32[B, N]\n output y = dropout(x, p: 0.0)\n}', { x: f32([3, 4], x) }, r);
    expect(z.graph.state).toEqual([]);
    expectClose(z.out('y'), [3, 4], x, 0);
  });
});

describe('bernoulli', () => {
  const src = 'model T {\n input p: f32[B, N]\n output y = bernoulli(p)\n}';
  // four rows of 4096: p = 0, 0.2, 0.7 and 1 (and p outside [0, 1] as torch clamps it: -1 and 2)
  const levels = [0, 0.2, 0.7, 1, -1, 2];
  const N = 4096;
  const p = levels.flatMap((v) => new Array<number>(N).fill(v));

  for (const training of [true, false]) {
    it(`0/1 samples, 1 with probability p, in ${training ? 'training' : 'evaluation'} too`, () => {
      const r = prng(`bernoulli/${training}`);
      const m = model(src, { p: f32([levels.length, N], p) }, r, { key: 9, training });
      const y = m.out('y');
      expect(y.shape).toEqual([levels.length, N]);
      expect(y.data.every((v) => v === 0 || v === 1)).toBe(true);
      levels.forEach((level, row) => {
        const rate = y.data.slice(row * N, (row + 1) * N).reduce((a, v) => a + v, 0) / N;
        const want = Math.min(Math.max(level, 0), 1);
        // 5 standard deviations of a binomial mean over N draws
        expect(Math.abs(rate - want), `p = ${level}: rate ${rate}`).toBeLessThanOrEqual(5 * Math.sqrt((want * (1 - want)) / N));
      });
      // the key decides the samples
      expect([...model(src, { p: f32([levels.length, N], p) }, r, { key: 9, training }).out('y').data]).toEqual([...y.data]);
      expect([...model(src, { p: f32([levels.length, N], p) }, r, { key: 10, training }).out('y').data]).not.toEqual([...y.data]);
    });
  }

  it('samples independently of each other (the two halves of a row of p = 0.5 agree about half the time)', () => {
    const r = prng('bernoulli/independent');
    const m = model(src, { p: f32([2, N], new Array<number>(2 * N).fill(0.5)) }, r, { key: 4 });
    const y = m.out('y').data;
    const agree = Array.from({ length: N }, (_, i) => (y[i] === y[N + i] ? 1 : 0) as number).reduce((a, v) => a + v, 0) / N;
    expect(Math.abs(agree - 0.5)).toBeLessThanOrEqual(5 * Math.sqrt(0.25 / N));
  });
});

/** BatchNorm reference over x [B, C, S] (S = the flattened spatial size): batch or given statistics. */
function batchNormRef(x: readonly number[], B: number, C: number, S: number, gamma: readonly number[], beta: readonly number[], stats?: { mean: readonly number[]; var: readonly number[] }, eps = 1e-5) {
  const mu: number[] = [];
  const va: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let b = 0; b < B; b++) for (let k = 0; k < S; k++) s += x[(b * C + c) * S + k];
    const m = s / (B * S);
    let v = 0;
    for (let b = 0; b < B; b++) for (let k = 0; k < S; k++) v += (x[(b * C + c) * S + k] - m) ** 2;
    mu.push(m);
    va.push(v / (B * S));
  }
  const useMu = stats ? stats.mean : mu;
  const useVar = stats ? stats.var : va;
  const y = x.map((v, i) => {
    const c = Math.floor(i / S) % C;
    return ((v - useMu[c]) / Math.sqrt(useVar[c] + eps)) * gamma[c] + beta[c];
  });
  return { y, mu, va };
}

describe('BatchNorm', () => {
  const src = (momentum: string) => `model T {\n input x: f32[B, 3, 2, 2]\n layer bn = BatchNorm(3${momentum})\n output y = bn(x)\n}`;

  // regression: BatchNorm once reassigned `mu`/`var` after binding them to the running buffers, which wrote the
  // batch statistics into the buffers and normalised with the old running ones
  it('training: batch statistics per channel, and the running averages move by momentum', () => {
    const r = prng('BatchNorm');
    const xs = [5, 3, 2, 2];
    const x = uniform(r, prod(xs)).map((v, i) => 3 * v + (Math.floor(i / 4) % 3) - 1);
    const rm = uniform(r, 3);
    const rv = uniform(r, 3, 0.5, 2);
    const g = compile(src(', momentum: 0.2'), true);
    expect(g.params.map((q) => q.path)).toEqual(['bn.gamma', 'bn.beta']);
    expect(g.state.map((s) => s.path)).toEqual(['bn.running_mean', 'bn.running_var']);
    const m = run(g, { x: f32(xs, x) }, r, { state: { 'bn.running_mean': rm, 'bn.running_var': rv } });
    const ref = batchNormRef(x, 5, 3, 4, m.p['bn.gamma'], m.p['bn.beta']);
    expectClose(m.out('y'), xs, ref.y);
    expectClose(m.res.state.get('bn.running_mean')!, [3], rm.map((v, c) => 0.8 * v + 0.2 * ref.mu[c]));
    expectClose(m.res.state.get('bn.running_var')!, [3], rv.map((v, c) => 0.8 * v + 0.2 * ref.va[c]));
  });

  it('training with gamma = 1, beta = 0: each channel of the output has mean ~0 and variance ~1', () => {
    const r = prng('BatchNorm/moments');
    const xs = [6, 3, 2, 2];
    const x = uniform(r, prod(xs)).map((v) => 5 * v + 2);
    const m = model(src(''), { x: f32(xs, x) }, r, { params: { 'bn.gamma': [1, 1, 1], 'bn.beta': [0, 0, 0] } });
    const y = m.out('y').data;
    for (let c = 0; c < 3; c++) {
      const vals: number[] = [];
      for (let b = 0; b < 6; b++) for (let k = 0; k < 4; k++) vals.push(y[(b * 3 + c) * 4 + k]);
      const mu = vals.reduce((a, v) => a + v, 0) / vals.length;
      const va = vals.reduce((a, v) => a + (v - mu) ** 2, 0) / vals.length;
      expect(Math.abs(mu)).toBeLessThan(1e-12);
      expect(Math.abs(va - 1)).toBeLessThan(1e-4); // eps = 1e-5 against a variance of several units
    }
    // default momentum 0.1 from the initial running state (zeros, ones)
    const ref = batchNormRef(x, 6, 3, 4, [1, 1, 1], [0, 0, 0]);
    expectClose(m.res.state.get('bn.running_mean')!, [3], ref.mu.map((v) => 0.1 * v));
    expectClose(m.res.state.get('bn.running_var')!, [3], ref.va.map((v) => 0.9 + 0.1 * v));
  });

  it('evaluation: normalises with the running state and leaves it alone', () => {
    const r = prng('BatchNorm/eval');
    const xs = [2, 3, 2, 2];
    const x = uniform(r, prod(xs));
    const rm = uniform(r, 3);
    const rv = uniform(r, 3, 0.5, 2);
    const g = compile(src(''), false);
    expect(g.state.every((s) => s.update === undefined)).toBe(true);
    const m = run(g, { x: f32(xs, x) }, r, { state: { 'bn.running_mean': rm, 'bn.running_var': rv } });
    const ref = batchNormRef(x, 2, 3, 4, m.p['bn.gamma'], m.p['bn.beta'], { mean: rm, var: rv });
    expectClose(m.out('y'), xs, ref.y);
    expect(m.res.state.has('bn.running_mean')).toBe(false);
  });

  // regression: both calls computed (1 - m) * running from the initial buffer, and only the last call's
  // update was kept, so the running statistics described the second input alone
  it('one layer called twice in a step (a siamese encoder): the running updates chain in call order, as PyTorch', () => {
    const r = prng('BatchNorm/twice');
    const xs = [4, 3, 2, 2];
    const a = uniform(r, prod(xs));
    const b = uniform(r, prod(xs)).map((v) => 4 * v + 10);
    const rm = uniform(r, 3);
    const rv = uniform(r, 3, 0.5, 2);
    const src2 = 'model T {\n input a: f32[B, 3, 2, 2]\n input b: f32[B, 3, 2, 2]\n layer bn = BatchNorm(3, momentum: 0.2)\n let ya = bn(a)\n output y = bn(b) + ya\n}';
    const m = run(compile(src2, true), { a: f32(xs, a), b: f32(xs, b) }, r, { state: { 'bn.running_mean': rm, 'bn.running_var': rv } });
    const ra = batchNormRef(a, 4, 3, 4, m.p['bn.gamma'], m.p['bn.beta']);
    const rb = batchNormRef(b, 4, 3, 4, m.p['bn.gamma'], m.p['bn.beta']);
    expectClose(m.out('y'), xs, ra.y.map((v, i) => v + rb.y[i]));
    expectClose(m.res.state.get('bn.running_mean')!, [3], rm.map((v, c) => 0.8 * (0.8 * v + 0.2 * ra.mu[c]) + 0.2 * rb.mu[c]));
    expectClose(m.res.state.get('bn.running_var')!, [3], rv.map((v, c) => 0.8 * (0.8 * v + 0.2 * ra.va[c]) + 0.2 * rb.va[c]));
  });

  it('rank-2 input [B, n] with a custom eps', () => {
    const r = prng('BatchNorm/rank2');
    const x = uniform(r, 4 * 3);
    const m = model('model T {\n input x: f32[B, 3]\n layer bn = BatchNorm(3, eps: 0.01)\n output y = bn(x)\n}', { x: f32([4, 3], x) }, r);
    expectClose(m.out('y'), [4, 3], batchNormRef(x, 4, 3, 1, m.p['bn.gamma'], m.p['bn.beta'], undefined, 0.01).y);
  });
});

describe('Normalization', () => {
  it("(x - mean) / max(sqrt(variance), eps) per feature from its state, as Keras' Normalization; the identity until adapted", () => {
    const r = prng('Normalization');
    const x = uniform(r, 4 * 3, -5, 5);
    const src = 'model T {\n input x: f32[B, 3]\n layer n = Normalization(3, eps: 0.01)\n output y = n(x)\n}';
    const [mean, variance] = [[1, -2, 0.5], [4, 0, 0.25]];
    const m = model(src, { x: f32([4, 3], x) }, r, { state: { 'n.mean': mean, 'n.variance': variance } });
    expectClose(m.out('y'), [4, 3], x.map((v, i) => (v - mean[i % 3]) / Math.max(Math.sqrt(variance[i % 3]), 0.01)));
    expectClose(model(src, { x: f32([4, 3], x) }, r).out('y'), [4, 3], x);
  });
});

describe('LayerNorm', () => {
  it('normalises the last axis, then scales and shifts', () => {
    const r = prng('LayerNorm');
    const x = uniform(r, 2 * 3 * 4).map((v) => 4 * v + 100); // a large mean: the two-pass variance must not cancel
    const m = model('model T {\n input x: f32[B, T, 4]\n layer ln = LayerNorm(4)\n output y = ln(x)\n}', { x: f32([2, 3, 4], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['ln.gamma', 'ln.beta']);
    expectClose(m.out('y'), [2, 3, 4], layerNormRef(x, 4, m.p['ln.gamma'], m.p['ln.beta']));
  });

  it('custom eps', () => {
    const r = prng('LayerNorm/eps');
    const x = uniform(r, 3 * 5, -0.1, 0.1);
    const m = model('model T {\n input x: f32[B, 5]\n layer ln = LayerNorm(5, eps: 0.5)\n output y = ln(x)\n}', { x: f32([3, 5], x) }, r);
    expectClose(m.out('y'), [3, 5], layerNormRef(x, 5, m.p['ln.gamma'], m.p['ln.beta'], 0.5));
  });
});

describe('RMSNorm', () => {
  it('divides by the root mean square of the last axis, then scales', () => {
    const r = prng('RMSNorm');
    const x = uniform(r, 2 * 3 * 4, -2, 2);
    const m = model('model T {\n input x: f32[B, T, 4]\n layer n = RMSNorm(4, eps: 0.01)\n output y = n(x)\n}', { x: f32([2, 3, 4], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['n.gamma']);
    const g = m.p['n.gamma'];
    const want = x.map((v, i) => {
      const row = x.slice(i - (i % 4), i - (i % 4) + 4);
      return (v / Math.sqrt(row.reduce((a, u) => a + u * u, 0) / 4 + 0.01)) * g[i % 4];
    });
    expectClose(m.out('y'), [2, 3, 4], want);
  });
});

describe('GroupNorm', () => {
  it('normalises each group of channels over the channels and positions, then scales and shifts per channel', () => {
    const r = prng('GroupNorm');
    const [b, c, hw] = [2, 6, 4];
    const x = uniform(r, b * c * hw).map((v) => 3 * v + 50); // a large mean: two passes
    const m = model('model T {\n input x: f32[B, 6, 2, 2]\n layer n = GroupNorm(3, 6)\n output y = n(x)\n}', { x: f32([b, c, 2, 2], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['n.gamma', 'n.beta']);
    const [g, be] = [m.p['n.gamma'], m.p['n.beta']];
    const want = new Array<number>(x.length);
    const per = (c / 3) * hw;
    for (let s = 0; s < b; s++) {
      for (let grp = 0; grp < 3; grp++) {
        const at = s * c * hw + grp * per;
        const vals = x.slice(at, at + per);
        const mu = vals.reduce((a, v) => a + v, 0) / per;
        const v2 = vals.reduce((a, v) => a + (v - mu) ** 2, 0) / per;
        for (let k = 0; k < per; k++) {
          const ch = grp * (c / 3) + Math.floor(k / hw);
          want[at + k] = ((vals[k] - mu) / Math.sqrt(v2 + 1e-5)) * g[ch] + be[ch];
        }
      }
    }
    expectClose(m.out('y'), [b, c, 2, 2], want, 1e-8);
  });

  it('rank 2 ([B, n]) and one group per channel', () => {
    const r = prng('GroupNorm/rank2');
    const x = uniform(r, 3 * 4);
    const m = model('model T {\n input x: f32[B, 4]\n layer n = GroupNorm(2, 4)\n output y = n(x)\n}', { x: f32([3, 4], x) }, r);
    const [g, be] = [m.p['n.gamma'], m.p['n.beta']];
    const want = x.map((v, i) => {
      const at = i - (i % 2);
      const mu = (x[at] + x[at + 1]) / 2;
      const v2 = ((x[at] - mu) ** 2 + (x[at + 1] - mu) ** 2) / 2;
      return ((v - mu) / Math.sqrt(v2 + 1e-5)) * g[i % 4] + be[i % 4];
    });
    expectClose(m.out('y'), [3, 4], want, 1e-8);
  });
});

describe('Upsample', () => {
  it('repeats each pixel into a scale x scale block', () => {
    const r = prng('Upsample');
    const x = uniform(r, 2 * 2 * 2 * 3);
    const m = model('model T {\n input x: f32[B, C, H, W]\n layer u = Upsample(3)\n output y = u(x)\n}', { x: f32([2, 2, 2, 3], x) }, r);
    const want: number[] = [];
    for (let bc = 0; bc < 4; bc++) for (let i = 0; i < 6; i++) for (let j = 0; j < 9; j++) want.push(x[bc * 6 + Math.floor(i / 3) * 3 + Math.floor(j / 3)]);
    expectClose(m.out('y'), [2, 2, 6, 9], want, 0);
  });
});

describe('top_k', () => {
  it('the k largest along the last axis, largest first, with their indices as torch.topk; a tie goes to the lower index; k past N is E0304', () => {
    const x = [0.5, 2, -1, 2, 7, 0, /* row 2 */ -3, -2, -5, -1, -4, -6];
    const m = model('model T {\n input x: f32[B, 6]\n let v, i = top_k(x, 3)\n output values = v\n output ids = i\n}', { x: f32([2, 6], x) }, prng('top_k'));
    expectClose(m.out('values'), [2, 3], [7, 2, 2, -1, -2, -3]);
    expect(Array.from(m.out('ids').data)).toEqual([4, 1, 3, 3, 1, 0]);
    expect(m.out('ids').dtype).toBe('i32');
    const bad = checkSource('model T {\n input x: f32[B, 6]\n let v, i = top_k(x, 7)\n output values = v\n}', 't.dl').diagnostics;
    expect(bad.map((d) => d.code)).toEqual(['E0304']);
    expect(bad[0].message).toContain('k <= N');
  });
});

describe('clip', () => {
  it('limits x to [lo, hi] as torch.clamp: number or tensor bounds (broadcast), and hi everywhere when lo > hi', () => {
    const x = [-2, -0.5, 0, 0.5, 2, 1];
    const lo = [-1, 0, 0, 0, 1.5, 3];
    const m = model('model T {\n input x: f32[6]\n input lo: f32[6]\n output a = clip(x, -1.0, 1.0)\n output b = clip(x, lo, 1.75)\n output c = clip(x, 1.0, -1.0)\n}', { x: f32([6], x), lo: f32([6], lo) }, prng('clip'));
    expectClose(m.out('a'), [6], [-1, -0.5, 0, 0.5, 1, 1]);
    expectClose(m.out('b'), [6], [-1, 0, 0, 0.5, 1.75, 1.75]);
    expectClose(m.out('c'), [6], [-1, -1, -1, -1, -1, -1]);
  });
});

describe('std.math', () => {
  const x = uniform(prng('std.math'), 3 * 4, -2, 2).map((v) => v + 10);
  const col = (j: number) => [0, 1, 2].map((i) => x[i * 4 + j]);
  const row = (i: number) => x.slice(i * 4, i * 4 + 4);
  const variance = (v: number[], c: number) => {
    const mu = v.reduce((a, u) => a + u, 0) / v.length;
    return v.reduce((a, u) => a + (u - mu) ** 2, 0) / (v.length - c);
  };

  it('var and std: along one axis, unbiased by default (torch), biased with correction: 0, keepdims', () => {
    const m = model('model T {\n input x: f32[B, 4]\n output a = var(x, axis: 0)\n output b = var(x, axis: -1, correction: 0, keepdims: true)\n output c = std(x, axis: 1)\n}', { x: f32([3, 4], x) }, prng('var'));
    expectClose(m.out('a'), [4], [0, 1, 2, 3].map((j) => variance(col(j), 1)));
    expectClose(m.out('b'), [3, 1], [0, 1, 2].map((i) => variance(row(i), 0)));
    expectClose(m.out('c'), [3], [0, 1, 2].map((i) => Math.sqrt(variance(row(i), 1))));
  });

  it('var with a correction past the count divides by max(0, n - correction), as torch: inf, not a negative variance', () => {
    const m = model('model T {\n input x: f32[B, 3]\n output v = var(x, axis: 1, correction: 5)\n}', { x: f32([1, 3], [1, 2, 3]) }, prng('var/corr'));
    expect(Array.from(m.out('v').data)).toEqual([Infinity]);
  });

  it('normalize and cosine_similarity', () => {
    const y = x.map((v, i) => (i % 3 === 0 ? -v : 0.5 * v + i));
    const m = model('model T {\n input x: f32[B, 4]\n input y: f32[B, 4]\n output n = normalize(x)\n output c = cosine_similarity(x, y)\n output z = normalize(x * 0.0)\n}', { x: f32([3, 4], x), y: f32([3, 4], y) }, prng('normalize'));
    const norm = (v: number[]) => Math.sqrt(v.reduce((a, u) => a + u * u, 0));
    expectClose(m.out('n'), [3, 4], x.map((v, i) => v / norm(row(Math.floor(i / 4)))));
    expectClose(m.out('c'), [3], [0, 1, 2].map((i) => {
      const yr = y.slice(i * 4, i * 4 + 4);
      return row(i).reduce((a, u, k) => a + u * yr[k], 0) / (norm(row(i)) * norm(yr));
    }));
    expectClose(m.out('z'), [3, 4], new Array<number>(12).fill(0), 0); // a zero vector stays zero (eps), not NaN
  });

  it('tril and triu keep a triangle of the last two axes, shifted by k', () => {
    const m = model('model T {\n input x: f32[B, 4]\n output l = tril(x[None, :, :])\n output u = triu(x, k: 1)\n output d = tril(x, k: -1)\n}', { x: f32([3, 4], x) }, prng('tril'));
    const keep = (f: (i: number, j: number) => boolean) => x.map((v, n) => (f(Math.floor(n / 4), n % 4) ? v : 0));
    expectClose(m.out('l'), [1, 3, 4], keep((i, j) => j <= i), 0);
    expectClose(m.out('u'), [3, 4], keep((i, j) => j >= i + 1), 0);
    expectClose(m.out('d'), [3, 4], keep((i, j) => j <= i - 1), 0);
  });
});

describe('Embedding', () => {
  it('looks up rows of the table', () => {
    const r = prng('Embedding');
    const ids = ints(r, 2 * 3, 6);
    const m = model('model T {\n input ids: i32[B, T]\n layer emb = Embedding(6, 4)\n output y = emb(ids)\n}', { ids: i32([2, 3], ids) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['emb.weight']);
    const w = m.p['emb.weight'];
    expectClose(m.out('y'), [2, 3, 4], ids.flatMap((id) => w.slice(id * 4, id * 4 + 4)), 0);
  });

  it('padding_idx looks up zeros, its row starts at zero and gets no gradient, as PyTorch\'s; a negative one counts from the end', () => {
    const r = prng('Embedding padding');
    const ids = [2, 0, 5, 2, 2, 1];
    const feeds = { ids: i32([2, 3], ids) };
    const m = model('model T {\n input ids: i32[B, T]\n layer emb = Embedding(6, 4, padding_idx: 2)\n let y = emb(ids)\n output ys = y\n loss = sum(y * y)\n}', feeds, r);
    const w = m.p['emb.weight'];
    // the stored padding row is zero from the start (torch.nn.Embedding's is), so exported weights agree; the others are drawn
    const init = initialize(m.graph, 7).params.get('emb.weight')!.data;
    expect([...init.slice(8, 12)]).toEqual([0, 0, 0, 0]);
    expect([...init.slice(0, 8), ...init.slice(12)].every((v) => v !== 0)).toBe(true);
    // padding_idx: -4 of 6 is row 2
    const negative = model('model T {\n input ids: i32[B, T]\n layer emb = Embedding(6, 4, padding_idx: -4)\n let y = emb(ids)\n output ys = y\n loss = sum(y * y)\n}', feeds, r, { params: m.p });
    expectClose(negative.out('ys'), [2, 3, 4], [...m.out('ys').data], 0);
    expect([...initialize(negative.graph, 7).params.get('emb.weight')!.data]).toEqual([...init]);
    expectClose(m.out('ys'), [2, 3, 4], ids.flatMap((id) => (id === 2 ? [0, 0, 0, 0] : w.slice(id * 4, id * 4 + 4))), 0);
    const grads = gradientsOf(m, 'emb.weight', feeds);
    // d/dw sum(y^2) = 2 w per lookup, none for the padding row
    const count = (row: number) => ids.filter((id) => id === row && id !== 2).length;
    expectClose(grads, [6, 4], w.map((v, i) => 2 * v * count(Math.floor(i / 4))), 1e-9);
    const bad = checkSource(`${USES}\nmodel T {\n input ids: i32[B]\n layer emb = Embedding(6, 4, padding_idx: 6)\n output y = emb(ids)\n}`, 't.dl').diagnostics;
    expect(bad.map((d) => `${d.code} ${d.message}`)).toEqual(['E0304 constraint `padding_idx == None or padding_idx < vocab` is false (padding_idx = 6, vocab = 6)']);
    const below = `${USES}\nmodel T {\n input ids: i32[B]\n layer emb = Embedding(6, 4, padding_idx: -7)\n output y = emb(ids)\n}`;
    const low = checkSource(below, 't.dl').diagnostics;
    expect(low.map((d) => `${d.code} ${d.message}`)).toEqual(['E0304 constraint `padding_idx == None or padding_idx >= -vocab` is false (padding_idx = -7, vocab = 6)']);
    // at the layer's creation, where the index is given (it was at the forward call)
    expect(below.slice(low[0].span.start, low[0].span.end)).toBe('Embedding(6, 4, padding_idx: -7)');
  });
});

describe('RNNCell', () => {
  it('h\' = tanh(x w_x + h w_h + b), and a custom activation', () => {
    const r = prng('RNNCell');
    const x = uniform(r, 2 * 3);
    const h = uniform(r, 2 * 4);
    const m = model('model T {\n input x: f32[B, 3]\n input h: f32[B, 4]\n layer a = RNNCell(3, 4)\n layer b = RNNCell(3, 4, act: relu)\n output ya = a(x, h)\n output yb = b(x, h)\n}', { x: f32([2, 3], x), h: f32([2, 4], h) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['a.w_x', 'a.w_h', 'a.b', 'b.w_x', 'b.w_h', 'b.b']);
    expectClose(m.out('ya'), [2, 4], rnnStep(x, h, 2, 3, 4, m.p, 'a', Math.tanh));
    expectClose(m.out('yb'), [2, 4], rnnStep(x, h, 2, 3, 4, m.p, 'b', (v) => Math.max(v, 0)));
  });
});

describe('RNN', () => {
  it('scans the cell over time from a zero state and returns every h', () => {
    const r = prng('RNN');
    const [B, T, F, H] = [2, 4, 3, 5];
    const x = uniform(r, B * T * F);
    const m = model(`model T {\n input x: f32[B, ${T}, ${F}]\n layer rnn = RNN(${F}, ${H})\n layer r2 = RNN(${F}, ${H}, act: silu)\n output y = rnn(x)\n output y2 = r2(x)\n}`, { x: f32([B, T, F], x) }, r);
    expect(m.graph.params.map((q) => q.path).slice(0, 3)).toEqual(['rnn.cell.w_x', 'rnn.cell.w_h', 'rnn.cell.b']);
    expectClose(m.out('y'), [B, T, H], scanRef(x, B, T, F, H, (xt, h) => rnnStep(xt, h, B, F, H, m.p, 'rnn.cell', Math.tanh)));
    expectClose(m.out('y2'), [B, T, H], scanRef(x, B, T, F, H, (xt, h) => rnnStep(xt, h, B, F, H, m.p, 'r2.cell', (v) => v * sigmoid(v))));
  });
});

describe('LSTMCell', () => {
  it('follows the gate equations (i, f, g, o) with the forget bias', () => {
    const r = prng('LSTMCell');
    const [B, F, H] = [2, 3, 4];
    const x = uniform(r, B * F);
    const h = uniform(r, B * H);
    const c = uniform(r, B * H);
    const m = model(
      `model T {\n input x: f32[B, ${F}]\n input h: f32[B, ${H}]\n input c: f32[B, ${H}]\n layer cell = LSTMCell(${F}, ${H})\n layer cell2 = LSTMCell(${F}, ${H}, forget_bias: -0.5)\n let h1, c1 = cell(x, h, c)\n let h2, c2 = cell2(x, h, c)\n output ho = h1\n output co = c1\n output ho2 = h2\n output co2 = c2\n}`,
      { x: f32([B, F], x), h: f32([B, H], h), c: f32([B, H], c) },
      r,
    );
    expect(m.graph.params.map((q) => q.path).slice(0, 3)).toEqual(['cell.w_x', 'cell.w_h', 'cell.b']);
    const [hr, cr] = lstmStep(x, h, c, B, F, H, m.p, 'cell', 1.0);
    expectClose(m.out('ho'), [B, H], hr);
    expectClose(m.out('co'), [B, H], cr);
    const [hr2, cr2] = lstmStep(x, h, c, B, F, H, m.p, 'cell2', -0.5);
    expectClose(m.out('ho2'), [B, H], hr2);
    expectClose(m.out('co2'), [B, H], cr2);
  });
});

describe('LSTM', () => {
  it('scans the cell over time from zero states and returns every h', () => {
    const r = prng('LSTM');
    const [B, T, F, H] = [2, 5, 3, 4];
    const x = uniform(r, B * T * F);
    const m = model(`model T {\n input x: f32[B, ${T}, ${F}]\n layer lstm = LSTM(${F}, ${H}, forget_bias: 0.5)\n output y = lstm(x)\n}`, { x: f32([B, T, F], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['lstm.cell.w_x', 'lstm.cell.w_h', 'lstm.cell.b']);
    let c = new Array<number>(B * H).fill(0);
    const ref = scanRef(x, B, T, F, H, (xt, h) => {
      const [h2, c2] = lstmStep(xt, h, c, B, F, H, m.p, 'lstm.cell', 0.5);
      c = c2;
      return h2;
    });
    expectClose(m.out('y'), [B, T, H], ref);
  });
});

describe('GRUCell', () => {
  it('follows PyTorch\'s GRU equations', () => {
    const r = prng('GRUCell');
    const [B, F, H] = [3, 2, 4];
    const x = uniform(r, B * F);
    const h = uniform(r, B * H);
    const m = model(`model T {\n input x: f32[B, ${F}]\n input h: f32[B, ${H}]\n layer cell = GRUCell(${F}, ${H})\n output y = cell(x, h)\n}`, { x: f32([B, F], x), h: f32([B, H], h) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['cell.w_x', 'cell.w_h', 'cell.b_x', 'cell.b_h']);
    expectClose(m.out('y'), [B, H], gruStep(x, h, B, F, H, m.p, 'cell'));
  });
});

describe('GRU', () => {
  it('scans the cell over time from a zero state and returns every h', () => {
    const r = prng('GRU');
    const [B, T, F, H] = [2, 4, 3, 3];
    const x = uniform(r, B * T * F);
    const m = model(`model T {\n input x: f32[B, ${T}, ${F}]\n layer gru = GRU(${F}, ${H})\n output y = gru(x)\n}`, { x: f32([B, T, F], x) }, r);
    expectClose(m.out('y'), [B, T, H], scanRef(x, B, T, F, H, (xt, h) => gruStep(xt, h, B, F, H, m.p, 'gru.cell')));
  });
});

describe('recurrent layers: initial and final states, num_layers, bidirectional (PyTorch\'s conventions)', () => {
  const [B, T, F, H] = [2, 4, 3, 3];

  it('GRU: 2 bidirectional layers from h0, returning h_n [layers * 2, B, H]', () => {
    const r = prng('GRU stacked');
    const x = uniform(r, B * T * F);
    const h0 = uniform(r, 4 * B * H);
    const m = model(
      `model T {\n input x: f32[B, ${T}, ${F}]\n input h0: f32[4, B, ${H}]\n layer gru = GRU(${F}, ${H}, num_layers: 2, bidirectional: true, return_state: true)\n let y, h_n = gru(x, h0: h0)\n output ys = y\n output hs = h_n\n}`,
      { x: f32([B, T, F], x), h0: f32([4, B, H], h0) },
      r,
    );
    expect(m.graph.params.map((q) => q.path).filter((p) => p.endsWith('.w_x'))).toEqual(['gru.cell.w_x', 'gru.cell_reverse.w_x', 'gru.upper.0.w_x', 'gru.upper_reverse.0.w_x']);
    const pre = cellPrefix('gru', 2);
    const ref = stackedRef(x, B, T, F, H, 2, 2, (k, inF, xt, s) => [gruStep(xt, s[0], B, inF, H, m.p, pre(k))], (k) => [stateAt(h0, k, B, H)]);
    expectClose(m.out('ys'), [B, T, 2 * H], ref.y);
    expectClose(m.out('hs'), [4, B, H], ref.finals.flatMap((s) => s[0]));
  });

  it('LSTM: h0 and c0, returning h_n and c_n; bidirectional and 3 layers', () => {
    const r = prng('LSTM stacked');
    const x = uniform(r, B * T * F);
    const h0 = uniform(r, 2 * B * H);
    const c0 = uniform(r, 2 * B * H);
    const m = model(
      `model T {\n input x: f32[B, ${T}, ${F}]\n input h0: f32[2, B, ${H}]\n input c0: f32[2, B, ${H}]\n` +
        ` layer bi = LSTM(${F}, ${H}, forget_bias: 0.0, bidirectional: true, return_state: true)\n let y, h_n, c_n = bi(x, h0: h0, c0: c0)\n output ys = y\n output hs = h_n\n output cs = c_n\n` +
        ` layer deep = LSTM(${F}, ${H}, num_layers: 3, return_state: true)\n let y3, h3, c3 = deep(x, c0: c0[:1] + zeros([3, B, ${H}]))\n output y3s = y3\n output c3s = c3\n}`,
      { x: f32([B, T, F], x), h0: f32([2, B, H], h0), c0: f32([2, B, H], c0) },
      r,
    );
    const step = (pre: (k: number) => string, bias: number) => (k: number, inF: number, xt: number[], s: number[][]) => lstmStep(xt, s[0], s[1], B, inF, H, m.p, pre(k), bias);
    const bi = stackedRef(x, B, T, F, H, 1, 2, step(cellPrefix('bi', 2), 0), (k) => [stateAt(h0, k, B, H), stateAt(c0, k, B, H)]);
    expectClose(m.out('ys'), [B, T, 2 * H], bi.y);
    expectClose(m.out('hs'), [2, B, H], bi.finals.flatMap((s) => s[0]));
    expectClose(m.out('cs'), [2, B, H], bi.finals.flatMap((s) => s[1]));
    const zero = new Array<number>(B * H).fill(0);
    const deep = stackedRef(x, B, T, F, H, 3, 1, step(cellPrefix('deep', 1), 1), () => [zero, stateAt(c0, 0, B, H)]);
    expectClose(m.out('y3s'), [B, T, H], deep.y);
    expectClose(m.out('c3s'), [3, B, H], deep.finals.flatMap((s) => s[1]));
  });

  it('RNN: h0 and return_state with one layer give [1, B, H]; dropout acts between layers only in training', () => {
    const r = prng('RNN stacked');
    const x = uniform(r, B * T * F);
    const h0 = uniform(r, B * H);
    const src = `model T {\n input x: f32[B, ${T}, ${F}]\n input h0: f32[1, B, ${H}]\n layer rnn = RNN(${F}, ${H}, return_state: true)\n let y, h_n = rnn(x, h0: h0)\n output ys = y\n output hs = h_n\n` +
      ` layer two = RNN(${F}, ${H}, num_layers: 2, dropout: 0.5)\n output y2 = two(x)\n}`;
    const m = model(src, { x: f32([B, T, F], x), h0: f32([1, B, H], h0) }, r, { training: false });
    const ref = stackedRef(x, B, T, F, H, 1, 1, (k, inF, xt, s) => [rnnStep(xt, s[0], B, inF, H, m.p, 'rnn.cell', Math.tanh)], () => [h0]);
    expectClose(m.out('ys'), [B, T, H], ref.y);
    expectClose(m.out('hs'), [1, B, H], ref.finals[0][0]);
    const zero = new Array<number>(B * H).fill(0);
    const two = stackedRef(x, B, T, F, H, 2, 1, (k, inF, xt, s) => [rnnStep(xt, s[0], B, inF, H, m.p, cellPrefix('two', 1)(k), Math.tanh)], () => [zero]);
    expectClose(m.out('y2'), [B, T, H], two.y);
    // in training the second layer reads a dropped-out first layer: its outputs differ
    const trained = model(src, { x: f32([B, T, F], x), h0: f32([1, B, H], h0) }, prng('RNN stacked'), { training: true, params: m.p });
    expectClose(trained.out('ys'), [B, T, H], ref.y);
    expect(Math.max(...two.y.map((v, i) => Math.abs(v - trained.out('y2').data[i])))).toBeGreaterThan(1e-3);
  });

  it('dropout with num_layers: 1 is E0304 at the layer, with help (it applies between layers, so it would do nothing)', () => {
    for (const layer of ['RNN', 'LSTM', 'GRU']) {
      const src = `${USES}\nmodel T {\n input x: f32[B, 4, 3]\n layer rnn = ${layer}(3, 5, dropout: 0.5)\n output y = rnn(x)\n}`;
      const bad = checkSource(src, 't.dl').diagnostics;
      expect(bad.map((d) => `${d.code} ${d.message}`)).toEqual(['E0304 constraint `dropout == 0.0 or num_layers > 1` is false (dropout = 0.5, num_layers = 1)']);
      expect(src.slice(bad[0].span.start, bad[0].span.end)).toBe(`${layer}(3, 5, dropout: 0.5)`);
      expect(bad[0].help).toContain('with num_layers: 1 it would do nothing');
      expect(checkSource(src.replace('dropout: 0.5', 'dropout: 0.5, num_layers: 2'), 't.dl').diagnostics).toEqual([]);
    }
  });

  it('the porting note holds: torch-layout weights, transposed, biases summed (two for GRU), forget_bias: 0.0', () => {
    const r = prng('torch port');
    const x = uniform(r, B * T * F);
    /** torch's [rows, cols] weight, transposed to dlc's [cols, rows]. */
    const t = (w: number[], rows: number, cols: number) => Array.from({ length: rows * cols }, (_, i) => w[(i % rows) * cols + Math.floor(i / rows)]);
    const torchW = (gates: number) => ({ ih: uniform(r, gates * H * F), hh: uniform(r, gates * H * H), bih: uniform(r, gates * H), bhh: uniform(r, gates * H) });
    const lw = torchW(4);
    const gw = torchW(3);
    /** x @ W.T + b for x [B, n] and torch's W [m, n]. */
    const lin = (v: number[], W: number[], b: number[], n: number, m: number) => Array.from({ length: B * m }, (_, i) => {
      let acc = b[i % m];
      for (let k = 0; k < n; k++) acc += v[Math.floor(i / m) * n + k] * W[(i % m) * n + k];
      return acc;
    });
    // torch.nn.LSTM and torch.nn.GRU's documented equations, on torch's layout
    const torchLstm = (xt: number[], [h, c]: number[][]) => {
      const gi = lin(xt, lw.ih, lw.bih, F, 4 * H);
      const gh = lin(h, lw.hh, lw.bhh, H, 4 * H);
      const h2: number[] = [];
      const c2: number[] = [];
      for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) {
        const g = (k: number) => gi[b * 4 * H + k * H + j] + gh[b * 4 * H + k * H + j];
        const cn = sigmoid(g(1)) * c[b * H + j] + sigmoid(g(0)) * Math.tanh(g(2));
        c2.push(cn);
        h2.push(sigmoid(g(3)) * Math.tanh(cn));
      }
      return [h2, c2];
    };
    const torchGru = (xt: number[], [h]: number[][]) => {
      const gi = lin(xt, gw.ih, gw.bih, F, 3 * H);
      const gh = lin(h, gw.hh, gw.bhh, H, 3 * H);
      const out: number[] = [];
      for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) {
        const at = (v: number[], k: number) => v[b * 3 * H + k * H + j];
        const rg = sigmoid(at(gi, 0) + at(gh, 0));
        const zg = sigmoid(at(gi, 1) + at(gh, 1));
        const n = Math.tanh(at(gi, 2) + rg * at(gh, 2));
        out.push((1 - zg) * n + zg * h[b * H + j]);
      }
      return [out];
    };
    const params = {
      'ported.cell.w_x': t(lw.ih, 4 * H, F), 'ported.cell.w_h': t(lw.hh, 4 * H, H), 'ported.cell.b': lw.bih.map((v, i) => v + lw.bhh[i]),
      'kept.cell.w_x': t(lw.ih, 4 * H, F), 'kept.cell.w_h': t(lw.hh, 4 * H, H), 'kept.cell.b': lw.bih.map((v, i) => v + lw.bhh[i]),
      'gru.cell.w_x': t(gw.ih, 3 * H, F), 'gru.cell.w_h': t(gw.hh, 3 * H, H), 'gru.cell.b_x': gw.bih, 'gru.cell.b_h': gw.bhh,
    };
    const m = model(
      `model T {\n input x: f32[B, ${T}, ${F}]\n layer ported = LSTM(${F}, ${H}, forget_bias: 0.0)\n layer kept = LSTM(${F}, ${H})\n layer gru = GRU(${F}, ${H})\n output a = ported(x)\n output b = kept(x)\n output g = gru(x)\n}`,
      { x: f32([B, T, F], x) }, r, { params },
    );
    const zero = new Array<number>(B * H).fill(0);
    const lstmRef = stackedRef(x, B, T, F, H, 1, 1, (_k, _f, xt, s) => torchLstm(xt, s), () => [zero, zero]).y;
    expectClose(m.out('a'), [B, T, H], lstmRef);
    expect(Math.max(...lstmRef.map((v, i) => Math.abs(v - m.out('b').data[i])))).toBeGreaterThan(1e-2);
    expectClose(m.out('g'), [B, T, H], stackedRef(x, B, T, F, H, 1, 1, (_k, _f, xt, s) => torchGru(xt, s), () => [zero]).y);
  });

  it('a wrong h0 shape names the layer\'s state layout', () => {
    const res = checkSource(`${USES}\nmodel T {\n input x: f32[B, 4, 3]\n input h0: f32[B, 5]\n layer gru = GRU(3, 5)\n output y = gru(x, h0: h0)\n}`, 't.dl');
    expect(res.diagnostics.map((d) => d.code)).toEqual(['E0302']);
    expect(res.diagnostics[0].message).toContain('f32[1, B, 5]');
  });
});

describe('MultiHeadAttention', () => {
  const [B, L, d] = [2, 4, 6];
  const src = (args: string) => `model T {\n input x: f32[B, L, ${d}]\n layer attn = MultiHeadAttention(${d}${args})\n output y = attn(x)\n}`;

  it('matches naive scaled dot-product attention per head', () => {
    const r = prng('MultiHeadAttention');
    const x = uniform(r, B * L * d);
    const m = model(src(', 3'), { x: f32([B, L, d], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['attn.qkv.w', 'attn.qkv.b', 'attn.out.w', 'attn.out.b']);
    expectClose(m.out('y'), [B, L, d], attentionRef(x, B, L, d, 3, m.p, 'attn', false));
    // and a single head
    const one = model(src(', 1'), { x: f32([B, L, d], x) }, r);
    expectClose(one.out('y'), [B, L, d], attentionRef(x, B, L, d, 1, one.p, 'attn', false));
  });

  it('mask: keys marked false (padding) get no weight, and their values cannot change any output', () => {
    const r = prng('MultiHeadAttention/mask');
    const x = uniform(r, B * L * d);
    const keep = [1, 1, 1, 0, 1, 0, 1, 1];
    const g = compile(`model T {\n input x: f32[B, L, ${d}]\n input keep: bool[B, L]\n layer attn = MultiHeadAttention(${d}, 2)\n output y = attn(x, keep)\n}`);
    const m = run(g, { x: f32([B, L, d], x), keep: tensor('bool', [B, L], keep) }, r);
    expectClose(m.out('y'), [B, L, d], attentionRef(x, B, L, d, 2, m.p, 'attn', false, keep));
    // a masked token's own output changes with it, but no other position's does
    const x2 = x.map((v, i) => (Math.floor(i / d) === 3 ? v + 2 : v));
    const m2 = run(g, { x: f32([B, L, d], x2), keep: tensor('bool', [B, L], keep) }, r, { params: m.p });
    for (let i = 0; i < B * L; i++) {
      const row = (a: Float64Array) => [...a.slice(i * d, (i + 1) * d)];
      if (i === 3) expect(row(m2.out('y').data)).not.toEqual(row(m.out('y').data));
      else expectClose(tensor('f32', [d], row(m2.out('y').data)), [d], row(m.out('y').data), 1e-12);
    }
  });

  it('causal: matches masked attention, and a later token cannot change earlier outputs', () => {
    const r = prng('MultiHeadAttention/causal');
    const x = uniform(r, B * L * d);
    const g = compile(src(', 2, causal: true'));
    const m = run(g, { x: f32([B, L, d], x) }, r);
    expectClose(m.out('y'), [B, L, d], attentionRef(x, B, L, d, 2, m.p, 'attn', true));
    // change token 2 of every sequence
    const t = 2;
    const x2 = x.map((v, i) => (Math.floor(i / d) % L === t ? v + 1 + r() : v));
    const m2 = run(g, { x: f32([B, L, d], x2) }, r, { params: m.p });
    const y = m.out('y').data;
    const y2 = m2.out('y').data;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < L; i++) {
        const row = (a: Float64Array) => [...a.slice((b * L + i) * d, (b * L + i + 1) * d)];
        if (i < t) expect(row(y2)).toEqual(row(y));
        else expect(row(y2)).not.toEqual(row(y));
      }
    }
    // without the mask the change reaches position 0
    const full = compile(src(', 2'));
    const a = run(full, { x: f32([B, L, d], x) }, r, { params: m.p });
    const b2 = run(full, { x: f32([B, L, d], x2) }, r, { params: m.p });
    expect([...b2.out('y').data.slice(0, d)]).not.toEqual([...a.out('y').data.slice(0, d)]);
  });

  it('attention dropout is off in evaluation, and absent at p = 0', () => {
    const r = prng('MultiHeadAttention/dropout');
    const x = uniform(r, B * L * d);
    const g = compile(src(', 2, p: 0.5'), false);
    expect(g.state).toEqual([]);
    const m = run(g, { x: f32([B, L, d], x) }, r);
    expectClose(m.out('y'), [B, L, d], attentionRef(x, B, L, d, 2, m.p, 'attn', false));
    expect(compile(src(', 2'), true).state).toEqual([]);
    // in training it draws a mask
    expect(compile(src(', 2, p: 0.5'), true).state.map((s) => s.path)).toEqual(['rng.key']);
  });
});

describe('TransformerBlock', () => {
  const [B, L, d, ff] = [2, 3, 4, 6];

  function blockRef(x: readonly number[], p: Record<string, number[]>, heads: number, causal: boolean, act: (v: number) => number): number[] {
    const a = attentionRef(layerNormRef(x, d, p['blk.ln1.gamma'], p['blk.ln1.beta']), B, L, d, heads, p, 'blk.attn', causal);
    const x1 = x.map((v, i) => v + a[i]);
    const u = dense(layerNormRef(x1, d, p['blk.ln2.gamma'], p['blk.ln2.beta']), B * L, d, ff, p['blk.up.w'], p['blk.up.b']).map(act);
    const down = dense(u, B * L, ff, d, p['blk.down.w'], p['blk.down.b']);
    return x1.map((v, i) => v + down[i]);
  }

  it('pre-norm: x + attn(ln1(x)), then + down(gelu(up(ln2(x))))', () => {
    const r = prng('TransformerBlock');
    const x = uniform(r, B * L * d);
    const m = model(`model T {\n input x: f32[B, L, ${d}]\n layer blk = TransformerBlock(${d}, 2, ff: ${ff})\n output y = blk(x)\n}`, { x: f32([B, L, d], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual([
      'blk.ln1.gamma', 'blk.ln1.beta', 'blk.attn.qkv.w', 'blk.attn.qkv.b', 'blk.attn.out.w', 'blk.attn.out.b',
      'blk.ln2.gamma', 'blk.ln2.beta', 'blk.up.w', 'blk.up.b', 'blk.down.w', 'blk.down.b',
    ]);
    expect(m.graph.state).toEqual([]);
    expectClose(m.out('y'), [B, L, d], blockRef(x, m.p, 2, false, geluRef));
  });

  it('causal, with a custom activation and the default ff = 4 d', () => {
    const r = prng('TransformerBlock/causal');
    const x = uniform(r, B * L * d);
    const g = compile(`model T {\n input x: f32[B, L, ${d}]\n layer blk = TransformerBlock(${d}, 1, causal: true, act: relu, ff: ${ff})\n output y = blk(x)\n}`);
    const m = run(g, { x: f32([B, L, d], x) }, r);
    expectClose(m.out('y'), [B, L, d], blockRef(x, m.p, 1, true, (v) => Math.max(v, 0)));
    const def = compile(`model T {\n input x: f32[B, L, ${d}]\n layer blk = TransformerBlock(${d}, 2)\n output y = blk(x)\n}`);
    expect(constShape(def.params.find((q) => q.path === 'blk.up.w')!.value.type.shape)).toEqual([d, 4 * d]);
  });
});

describe('Residual', () => {
  it('x + inner(x)', () => {
    const r = prng('Residual');
    const x = uniform(r, 3 * 4);
    const m = model('model T {\n input x: f32[B, 4]\n layer res = Residual(Dense(4, 4))\n output y = res(x)\n}', { x: f32([3, 4], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['res.f.w', 'res.f.b']);
    const inner = dense(x, 3, 4, 4, m.p['res.f.w'], m.p['res.f.b']);
    expectClose(m.out('y'), [3, 4], x.map((v, i) => v + inner[i]));
  });
});

describe('Sequential', () => {
  it('applies layers and fns in order', () => {
    const r = prng('Sequential');
    const x = uniform(r, 3 * 4);
    const m = model('model T {\n input x: f32[B, 4]\n layer net = Sequential([Dense(4, 5), relu, Dense(5, 2)])\n output y = net(x)\n}', { x: f32([3, 4], x) }, r);
    expect(m.graph.params.map((q) => q.path)).toEqual(['net.items.0.w', 'net.items.0.b', 'net.items.2.w', 'net.items.2.b']);
    const h = dense(x, 3, 4, 5, m.p['net.items.0.w'], m.p['net.items.0.b']).map((v) => Math.max(v, 0));
    expectClose(m.out('y'), [3, 2], dense(h, 3, 5, 2, m.p['net.items.2.w'], m.p['net.items.2.b']));
  });
});

// ---------------------------------------------------------------------------------------------
// std.act

/** Runs `output y = <expr of x>` over x [2, 5] and compares elementwise with `ref`. */
function elementwise(name: string, expr: string, ref: (v: number) => number, values?: number[], tol = 1e-9): void {
  const r = prng(name);
  const x = values ?? uniform(r, 10, -4, 4);
  const m = model(`model T {\n input x: f32[B, N]\n output y = ${expr}\n}`, { x: f32([x.length / 5, 5], x) }, r);
  expectClose(m.out('y'), [x.length / 5, 5], x.map(ref), tol);
}

const EDGE = [-50, -20, -1, -1e-3, 0, 1e-3, 1, 20, 50, 0.5];

describe('relu', () => {
  it('max(x, 0)', () => {
    elementwise('relu', 'relu(x)', (v) => Math.max(v, 0));
    elementwise('relu/edge', 'relu(x)', (v) => Math.max(v, 0), EDGE);
  });
});

describe('leaky_relu', () => {
  it('x above 0, slope * x below (default 0.01, custom, and > 1)', () => {
    elementwise('leaky_relu', 'leaky_relu(x)', (v) => (v >= 0 ? v : 0.01 * v));
    elementwise('leaky_relu/0.2', 'leaky_relu(x, slope: 0.2)', (v) => (v >= 0 ? v : 0.2 * v));
    elementwise('leaky_relu/3', 'leaky_relu(x, 3.0)', (v) => (v >= 0 ? v : 3 * v), EDGE);
  });
});

describe('gelu', () => {
  it('x * Phi(x), exact (erf)', () => {
    elementwise('gelu', 'gelu(x)', geluRef);
    elementwise('gelu/edge', 'gelu(x)', (v) => (Math.abs(v) > 5 ? Math.max(v, 0) : geluRef(v)), EDGE);
  });

  it('approximate: "tanh" is GPT-2\'s form; another word is E0304', () => {
    const tanhGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    elementwise('gelu/tanh', 'gelu(x, approximate: "tanh")', tanhGelu);
    const bad = checkSource('model T {\n input x: f32[B, 2]\n output y = gelu(x, approximate: "fast")\n}', 'g.dl').diagnostics;
    expect(bad.map((d) => d.code)).toEqual(['E0304']);
  });
});

describe('silu', () => {
  it('x * sigmoid(x)', () => {
    elementwise('silu', 'silu(x)', (v) => v / (1 + Math.exp(-v)));
    elementwise('silu/edge', 'silu(x)', (v) => v / (1 + Math.exp(-v)), EDGE);
  });
});

describe('elu', () => {
  it('x above 0, alpha (exp(x) - 1) below, no overflow for large x', () => {
    elementwise('elu', 'elu(x)', (v) => (v > 0 ? v : Math.expm1(v)));
    elementwise('elu/alpha', 'elu(x, alpha: 0.5)', (v) => (v > 0 ? v : 0.5 * Math.expm1(v)));
    elementwise('elu/edge', 'elu(x * 20.0)', (v) => (20 * v > 0 ? 20 * v : Math.expm1(20 * v)), EDGE);
  });
});

describe('softplus', () => {
  it('log(1 + exp(x)), finite for large |x|', () => {
    const ref = (v: number) => (v > 30 ? v + Math.exp(-v) : Math.log1p(Math.exp(v)));
    elementwise('softplus', 'softplus(x)', ref);
    elementwise('softplus/edge', 'softplus(x)', ref, EDGE);
    elementwise('softplus/huge', 'softplus(x * 100.0)', (v) => ref(100 * v), EDGE);
  });
});

describe('logsumexp', () => {
  it('along the last axis, axis 0, all axes, keepdims; no overflow', () => {
    const r = prng('logsumexp');
    const x = uniform(r, 3 * 4, -3, 3);
    x[5] = 800; // exp(800) overflows float64 unless shifted
    const m = model(
      'model T {\n input x: f32[R, C]\n output a = logsumexp(x)\n output b = logsumexp(x, axis: 0)\n output c = logsumexp(x, axis: None)\n output d = logsumexp(x, axis: 1, keepdims: true)\n output e = logsumexp(x, axis: [0, 1], keepdims: true)\n}',
      { x: f32([3, 4], x) },
      r,
    );
    const rows = [0, 1, 2].map((i) => x.slice(i * 4, i * 4 + 4));
    const cols = [0, 1, 2, 3].map((j) => [0, 1, 2].map((i) => x[i * 4 + j]));
    expectClose(m.out('a'), [3], rows.map(lseRef));
    expectClose(m.out('b'), [4], cols.map(lseRef));
    expectClose(m.out('c'), [], [lseRef(x)]);
    expectClose(m.out('d'), [3, 1], rows.map(lseRef));
    expectClose(m.out('e'), [1, 1], [lseRef(x)]);
  });
});

describe('softmax', () => {
  it('matches exp / sum, sums to 1, is invariant to adding a constant, and works along axis 0', () => {
    const r = prng('softmax');
    const x = uniform(r, 3 * 5, -4, 4);
    const m = model(
      'model T {\n input x: f32[R, C]\n output a = softmax(x)\n output b = softmax(x + 1000.0)\n output c = softmax(x, axis: 0)\n output s = sum(softmax(x), axis: -1)\n}',
      { x: f32([3, 5], x) },
      r,
    );
    const rows = [0, 1, 2].flatMap((i) => softmaxRef(x.slice(i * 5, i * 5 + 5)));
    expectClose(m.out('a'), [3, 5], rows);
    expectClose(m.out('b'), [3, 5], rows, 1e-12 * 1e3); // the shift itself rounds x by ~1e-13
    expectClose(m.out('s'), [3], [1, 1, 1], 1e-14);
    const cols = [0, 1, 2, 3, 4].map((j) => softmaxRef([0, 1, 2].map((i) => x[i * 5 + j])));
    expectClose(m.out('c'), [3, 5], [0, 1, 2].flatMap((i) => cols.map((col) => col[i])));
  });
});

describe('log_softmax', () => {
  it('x - logsumexp(x), finite for extreme logits', () => {
    const r = prng('log_softmax');
    const x = uniform(r, 2 * 4, -3, 3);
    x[1] = 500;
    x[6] = -500;
    const m = model('model T {\n input x: f32[R, C]\n output a = log_softmax(x)\n output b = log_softmax(x, axis: 0)\n}', { x: f32([2, 4], x) }, r);
    const rows = [0, 1].flatMap((i) => {
      const row = x.slice(i * 4, i * 4 + 4);
      return row.map((v) => v - lseRef(row));
    });
    expectClose(m.out('a'), [2, 4], rows);
    const cols = [0, 1, 2, 3].map((j) => lseRef([x[j], x[4 + j]]));
    expectClose(m.out('b'), [2, 4], x.map((v, i) => v - cols[i % 4]));
  });
});

// ---------------------------------------------------------------------------------------------
// std.loss

describe('mse', () => {
  it('mean of squared differences over every element', () => {
    const r = prng('mse');
    const a = uniform(r, 3 * 4);
    const b = uniform(r, 3 * 4);
    const m = model('model T {\n input a: f32[B, 4]\n input b: f32[B, 4]\n loss = mse(a, b)\n}', { a: f32([3, 4], a), b: f32([3, 4], b) }, r);
    expect([...m.graph.losses.keys()]).toEqual(['loss']);
    expectScalar(m.out('loss'), a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / 12);
  });
});

describe('l1', () => {
  it('mean of absolute differences', () => {
    const r = prng('l1');
    const a = uniform(r, 2 * 3 * 2);
    const b = uniform(r, 2 * 3 * 2);
    const m = model('model T {\n input a: f32[B, 3, 2]\n input b: f32[B, 3, 2]\n output y = l1(a, b)\n}', { a: f32([2, 3, 2], a), b: f32([2, 3, 2], b) }, r);
    expectScalar(m.out('y'), a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / 12);
  });
});

/** -sum_c q_c log p_c with p = softmax(row), q = (1 - eps) onehot(label) + eps / C, averaged over rows. */
function crossEntropyRef(rows: readonly number[][], labels: readonly number[], eps = 0): number {
  let total = 0;
  rows.forEach((row, n) => {
    const p = softmaxRef(row);
    const C = row.length;
    for (let c = 0; c < C; c++) total -= ((1 - eps) * (c === labels[n] ? 1 : 0) + eps / C) * Math.log(p[c]);
  });
  return total / rows.length;
}

/** torch.nn.functional.cross_entropy with `weight`: per kept row (1 - eps) w[y] nll + eps / C sum_c w[c] (-log p_c), over the sum of w[y] of the kept rows. */
function weightedCrossEntropyRef(rows: readonly number[][], labels: readonly number[], w: readonly number[], eps = 0, ignore?: number): number {
  let total = 0;
  let weights = 0;
  rows.forEach((row, n) => {
    if (labels[n] === ignore) return;
    const p = softmaxRef(row);
    const C = row.length;
    total += (1 - eps) * w[labels[n]] * -Math.log(p[labels[n]]);
    for (let c = 0; c < C; c++) total += (eps / C) * w[c] * -Math.log(p[c]);
    weights += w[labels[n]];
  });
  return total / weights;
}

describe('kl_normal', () => {
  it("KL(N(mu, exp(logvar)) || N(0, 1)): the VAE formula -0.5 sum(1 + logvar - mu^2 - exp(logvar)) over the last axis, averaged over the rest", () => {
    const r = prng('kl_normal');
    const [A, B, D] = [2, 3, 4];
    const mu = uniform(r, A * B * D, -2, 2);
    const logvar = uniform(r, A * B * D, -3, 2);
    const m = model('model T {\n input mu: f32[A, B, 4]\n input lv: f32[A, B, 4]\n output y = kl_normal(mu, lv)\n output zero = kl_normal(mu * 0.0, lv * 0.0)\n}', { mu: f32([A, B, D], mu), lv: f32([A, B, D], logvar) }, r);
    // the KL of two normals, per latent dimension: log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2
    let total = 0;
    for (let row = 0; row < A * B; row++) {
      for (let j = 0; j < D; j++) {
        const s1 = Math.exp(0.5 * logvar[row * D + j]);
        total += Math.log(1 / s1) + (s1 * s1 + mu[row * D + j] ** 2) / 2 - 0.5;
      }
    }
    expectScalar(m.out('y'), total / (A * B), 1e-12);
    expectScalar(m.out('zero'), 0, 0);
  });
});

describe('huber', () => {
  it('quadratic within delta, linear beyond, averaged', () => {
    const r = prng('huber');
    const p = uniform(r, 2 * 5, -3, 3);
    const t = uniform(r, 2 * 5, -3, 3);
    const m = model('model T {\n input p: f32[B, 5]\n input t: f32[B, 5]\n output y = huber(p, t, delta: 1.5)\n output z = huber(p, t)\n}', { p: f32([2, 5], p), t: f32([2, 5], t) }, r);
    const ref = (delta: number) => p.reduce((a, v, i) => {
      const d = Math.abs(v - t[i]);
      return a + (d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta));
    }, 0) / p.length;
    expect(p.some((v, i) => Math.abs(v - t[i]) > 1.5) && p.some((v, i) => Math.abs(v - t[i]) < 1)).toBe(true);
    expectScalar(m.out('y'), ref(1.5));
    expectScalar(m.out('z'), ref(1));
  });
});

describe('cross_entropy', () => {
  it('against -sum q log softmax, with and without label smoothing', () => {
    const r = prng('cross_entropy');
    const [B, C] = [5, 4];
    const z = uniform(r, B * C, -3, 3);
    const y = ints(r, B, C);
    const m = model(
      `model T {\n input z: f32[B, ${C}]\n input y: i32[B]\n output plain = cross_entropy(z, y)\n output smooth = cross_entropy(z, y, label_smoothing: 0.1)\n output full = cross_entropy(z, y, label_smoothing: 1.0)\n}`,
      { z: f32([B, C], z), y: i32([B], y) },
      r,
    );
    const rows = [...Array(B).keys()].map((i) => z.slice(i * C, i * C + C));
    expectScalar(m.out('plain'), crossEntropyRef(rows, y));
    expectScalar(m.out('smooth'), crossEntropyRef(rows, y, 0.1));
    expectScalar(m.out('full'), crossEntropyRef(rows, y, 1.0));
    // ignore_index: labels equal to it count for nothing, the mean is over the others
    const padded = y.map((v, i) => (i % 2 === 1 ? -100 : v));
    const ig = model(
      `model T {\n input z: f32[B, ${C}]\n input y: i32[B]\n output ce = cross_entropy(z, y, ignore_index: -100)\n output none = cross_entropy(z * 0.0 + z, y - y - 1, ignore_index: -1)\n}`,
      { z: f32([B, C], z), y: i32([B], padded) },
      r,
    );
    const kept = [...Array(B).keys()].filter((i) => i % 2 === 0);
    expectScalar(ig.out('ce'), crossEntropyRef(kept.map((i) => rows[i]), kept.map((i) => padded[i])));
    expectScalar(ig.out('none'), 0); // every label ignored: 0, not NaN
  });

  it("weight: each label's term times its class's weight, over the sum of those weights (torch's weighted mean), with smoothing, ignore_index and axis 1", () => {
    const r = prng('cross_entropy/weight');
    const [B, C] = [6, 3];
    const z = uniform(r, B * C, -3, 3);
    const y = [0, 1, 2, 1, 1, 0];
    const w = [0.5, 3, 1.25];
    const m = model(
      `model T {\n input z: f32[B, ${C}]\n input y: i32[B]\n input wt: f32[${C}]\n output a = cross_entropy(z, y, weight: [0.5, 3.0, 1.25])\n output b = cross_entropy(z, y, weight: wt, label_smoothing: 0.3)\n output c = cross_entropy(z, y, weight: [0.5, 3.0, 1.25], ignore_index: 1)\n output d = cross_entropy(transpose(z)[None], y[None], axis: 1, weight: [0.5, 3.0, 1.25], label_smoothing: 0.3)\n output ones = cross_entropy(z, y, weight: [1.0, 1.0, 1.0], label_smoothing: 0.3)\n output none = cross_entropy(z, y - y - 1, weight: [0.5, 3.0, 1.25], ignore_index: -1)\n}`,
      { z: f32([B, C], z), y: i32([B], y), wt: f32([C], w) },
      r,
    );
    const rows = [...Array(B).keys()].map((i) => z.slice(i * C, i * C + C));
    expectScalar(m.out('a'), weightedCrossEntropyRef(rows, y, w));
    expectScalar(m.out('b'), weightedCrossEntropyRef(rows, y, w, 0.3));
    expectScalar(m.out('c'), weightedCrossEntropyRef(rows, y, w, 0, 1));
    expectScalar(m.out('d'), weightedCrossEntropyRef(rows, y, w, 0.3));
    // unit weights are the unweighted loss; every label ignored: 0, not NaN
    expectScalar(m.out('ones'), crossEntropyRef(rows, y, 0.3));
    expectScalar(m.out('none'), 0);
    // the weighted mean differs from the plain one here (the check is not vacuous)
    expect(Math.abs(weightedCrossEntropyRef(rows, y, w) - crossEntropyRef(rows, y))).toBeGreaterThan(1e-3);
  });

  it('weight needs one value per class', () => {
    const res = checkSource(`${USES}\nmodel T {\n input z: f32[B, 3]\n input y: i32[B]\n output a = cross_entropy(z, y, weight: [1.0, 2.0])\n}`, 'stdlib_test.dl');
    expect(res.diagnostics.map((d) => `${d.code} ${d.help}`)).toEqual(["E0304 cross_entropy's weight has one value per class"]);
  });

  it('class axis 1 of [B, C, L] with labels [B, L], and extreme logits stay finite', () => {
    const r = prng('cross_entropy/axis');
    const [B, C, L] = [2, 3, 4];
    const z = uniform(r, B * C * L, -3, 3);
    z[0] = 300;
    z[5] = -300;
    const y = ints(r, B * L, C);
    const m = model(`model T {\n input z: f32[B, ${C}, L]\n input y: i32[B, L]\n output a = cross_entropy(z, y, axis: 1)\n output s = cross_entropy(z, y, axis: 1, label_smoothing: 0.25)\n}`, { z: f32([B, C, L], z), y: i32([B, L], y) }, r);
    const rows: number[][] = [];
    for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) rows.push([0, 1, 2].map((c) => z[(b * C + c) * L + l]));
    expectScalar(m.out('a'), crossEntropyRef(rows, y));
    expectScalar(m.out('s'), crossEntropyRef(rows, y, 0.25));
  });
});

describe('binary_cross_entropy', () => {
  it('-t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)), averaged', () => {
    const r = prng('binary_cross_entropy');
    const z = uniform(r, 2 * 3, -4, 4);
    const t = uniform(r, 2 * 3, 0, 1);
    t[0] = 0;
    t[1] = 1;
    const m = model('model T {\n input z: f32[B, 3]\n input t: f32[B, 3]\n output y = binary_cross_entropy(z, t)\n}', { z: f32([2, 3], z), t: f32([2, 3], t) }, r);
    const ref = z.reduce((s, v, i) => s - t[i] * Math.log(sigmoid(v)) - (1 - t[i]) * Math.log(1 - sigmoid(v)), 0) / 6;
    expectScalar(m.out('y'), ref);
  });

  it('pos_weight p: -p t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)), a number or one per column, as torch', () => {
    const r = prng('binary_cross_entropy/pos_weight');
    const z = uniform(r, 2 * 3, -4, 4);
    const t = uniform(r, 2 * 3, 0, 1);
    t[0] = 0;
    t[1] = 1;
    const m = model('model T {\n input z: f32[B, 3]\n input t: f32[B, 3]\n output a = binary_cross_entropy(z, t, pos_weight: 2.5)\n output b = binary_cross_entropy(z, t, pos_weight: [1.0, 4.0, 0.5])\n output c = binary_cross_entropy(z, t, pos_weight: 1.0)\n}', { z: f32([2, 3], z), t: f32([2, 3], t) }, r);
    const ref = (p: (i: number) => number) => z.reduce((s, v, i) => s - p(i) * t[i] * Math.log(sigmoid(v)) - (1 - t[i]) * Math.log(1 - sigmoid(v)), 0) / 6;
    expectScalar(m.out('a'), ref(() => 2.5));
    expectScalar(m.out('b'), ref((i) => [1, 4, 0.5][i % 3]));
    expectScalar(m.out('c'), ref(() => 1));
  });

  it('stays finite and exact for |z| = 100', () => {
    const r = prng('binary_cross_entropy/huge');
    const m = model('model T {\n input z: f32[N]\n input t: f32[N]\n output y = binary_cross_entropy(z, t)\n}', { z: f32([4], [100, -100, 100, -100]), t: f32([4], [1, 0, 0, 1]) }, r);
    // the first two lose ~e^-100; the others cost 100 each
    expectScalar(m.out('y'), 200 / 4);
  });
});

describe('nll', () => {
  it('-mean of the labelled log-probabilities, also after log_softmax', () => {
    const r = prng('nll');
    const [B, C] = [4, 3];
    const lp = uniform(r, B * C, -3, 0);
    const y = ints(r, B, C);
    const m = model(`model T {\n input lp: f32[B, ${C}]\n input y: i32[B]\n output a = nll(lp, y)\n output b = nll(log_softmax(lp), y)\n output c = nll(lp, y, axis: -1)\n}`, { lp: f32([B, C], lp), y: i32([B], y) }, r);
    expectScalar(m.out('a'), -y.reduce((s, l, i) => s + lp[i * C + l], 0) / B);
    const rows = [...Array(B).keys()].map((i) => lp.slice(i * C, i * C + C));
    expectScalar(m.out('b'), crossEntropyRef(rows, y));
    expectScalar(m.out('c'), -y.reduce((s, l, i) => s + lp[i * C + l], 0) / B);
  });

  it('class axis 0', () => {
    const r = prng('nll/axis');
    const lp = uniform(r, 3 * 2, -3, 0);
    const y = [2, 0];
    const m = model('model T {\n input lp: f32[C, N]\n input y: i32[N]\n output a = nll(lp, y, axis: 0)\n}', { lp: f32([3, 2], lp), y: i32([2], y) }, r);
    expectScalar(m.out('a'), -(lp[2 * 2 + 0] + lp[0 * 2 + 1]) / 2);
  });
});

// ---------------------------------------------------------------------------------------------
// std.metrics

interface Counts {
  tp: number[];
  predicted: number[];
  actual: number[];
}

function countsRef(logits: readonly number[], labels: readonly number[], C: number): Counts {
  const pred = argmaxRows(logits, C);
  const counts: Counts = { tp: new Array<number>(C).fill(0), predicted: new Array<number>(C).fill(0), actual: new Array<number>(C).fill(0) };
  pred.forEach((p, i) => {
    counts.predicted[p]++;
    counts.actual[labels[i]]++;
    if (p === labels[i]) counts.tp[p]++;
  });
  return counts;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** scikit-learn's macro average: the mean over the classes in the labels or the predictions. */
const macroOf = (per: readonly number[], k: Counts) => meanOf(per.filter((_, c) => k.predicted[c] + k.actual[c] > 0));
const precisionRef = (k: Counts) => k.tp.map((t, c) => ratio(t, k.predicted[c]));
const recallRef = (k: Counts) => k.tp.map((t, c) => ratio(t, k.actual[c]));
const f1Ref = (k: Counts) => k.tp.map((t, c) => {
  const p = ratio(t, k.predicted[c]);
  const rc = ratio(t, k.actual[c]);
  return p + rc === 0 ? 0 : (2 * p * rc) / (p + rc);
});

/** Logits [N, C] and labels [N] where class C-1 is never predicted nor present. */
function metricData(name: string, N: number, C: number): { z: number[]; y: number[] } {
  const r = prng(name);
  const z = uniform(r, N * C, -2, 2);
  for (let i = 0; i < N; i++) z[i * C + C - 1] = -10;
  // labels agree with the argmax about half the time
  const pred = argmaxRows(z, C);
  const y = pred.map((p) => (r() < 0.5 ? p : Math.floor(r() * (C - 1))));
  return { z, y };
}

function metricModel(fn: string, name: string, N = 16, C = 4) {
  const { z, y } = metricData(name, N, C);
  const m = model(
    `model T {\n input z: f32[B, ${C}]\n input y: i32[B]\n metric bin = ${fn}(z, y, positive: 1)\n metric pos2 = ${fn}(z, y, positive: 2)\n metric absent = ${fn}(z, y, positive: ${C - 1})\n metric macro = ${fn}(z, y, average: "macro")\n}`,
    { z: f32([N, C], z), y: i32([N], y) },
    prng(`${name}/params`),
  );
  return { m, counts: countsRef(z, y, C) };
}

describe('regression metrics', () => {
  it('mae, rmse, mape, r2 and max_error of one batch, over [B] and [B, H]', () => {
    const r = prng('regression');
    const y = uniform(r, 12).map((v) => 10 + 5 * v);
    const p = y.map((v) => v + (r() - 0.5) * 2);
    const src = 'model T {\n input p: f32[B]\n input y: f32[B]\n input p2: f32[N, 3]\n input y2: f32[N, 3]\n' +
      ' metric mae = mae(p, y)\n metric rmse = rmse(p, y)\n metric mape = mape(p, y)\n metric r2 = r2(p, y)\n metric worst = max_error(p, y)\n metric r2_h = r2(p2, y2)\n}';
    const m = model(src, { p: f32([12], p), y: f32([12], y), p2: f32([4, 3], p), y2: f32([4, 3], y) }, r);
    const e = y.map((v, i) => v - p[i]);
    const mean = y.reduce((a, b) => a + b, 0) / 12;
    const sse = e.reduce((a, b) => a + b * b, 0);
    expectScalar(m.out('mae'), e.reduce((a, b) => a + Math.abs(b), 0) / 12);
    expectScalar(m.out('rmse'), Math.sqrt(sse / 12));
    expectScalar(m.out('mape'), (100 * e.reduce((a, b, i) => a + Math.abs(b / y[i]), 0)) / 12);
    expectScalar(m.out('r2'), 1 - sse / y.reduce((a, b) => a + (b - mean) ** 2, 0));
    expectScalar(m.out('worst'), Math.max(...e.map(Math.abs)));
    // pooled over every element: the same values as [B * H]
    expectScalar(m.out('r2_h'), 1 - sse / y.reduce((a, b) => a + (b - mean) ** 2, 0));
  });
});

describe('accuracy', () => {
  it('fraction of argmax predictions equal to the label, also over [B, T, C]', () => {
    const { z, y } = metricData('accuracy', 12, 3);
    const m = model('model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric acc = accuracy(z, y)\n}', { z: f32([12, 3], z), y: i32([12], y) }, prng('accuracy/p'));
    expect([...m.graph.metrics.keys()]).toEqual(['acc']);
    const pred = argmaxRows(z, 3);
    expectScalar(m.out('acc'), pred.filter((p, i) => p === y[i]).length / 12);
    const m3 = model('model T {\n input z: f32[B, T, 3]\n input y: i32[B, T]\n metric acc = accuracy(z, y)\n}', { z: f32([3, 4, 3], z), y: i32([3, 4], y) }, prng('accuracy/p3'));
    expectScalar(m3.out('acc'), pred.filter((p, i) => p === y[i]).length / 12);
  });
});

describe('metrics with ignore_index', () => {
  it('score only the labels that are not ignore_index, as if the others were absent (a real class as padding, over [B, T, C])', () => {
    const C = 4;
    const { z, y } = metricData('ignore_index', 24, C);
    const keep = y.map((l) => l !== 0);
    expect(keep.filter(Boolean).length).toBeGreaterThan(4);
    expect(keep.filter((k) => !k).length).toBeGreaterThan(2);
    const kz = z.filter((_, i) => keep[Math.floor(i / C)]);
    const ky = y.filter((_, i) => keep[i]);
    const src = `model T {\n input z: f32[B, T, ${C}]\n input y: i32[B, T]\n metric acc = accuracy(z, y, ignore_index: 0)\n metric top2 = top_k_accuracy(z, y, k: 2, ignore_index: 0)\n` +
      ` metric p = precision(z, y, average: "macro", ignore_index: 0)\n metric r = recall(z, y, positive: 2, ignore_index: 0)\n metric f = f1(z, y, average: "macro", ignore_index: 0)\n metric none = accuracy(z, y * 0, ignore_index: 0)\n}`;
    const m = model(src, { z: f32([4, 6, C], z), y: i32([4, 6], y) }, prng('ignore_index/p'));
    const pred = argmaxRows(kz, C);
    expectScalar(m.out('acc'), pred.filter((p, i) => p === ky[i]).length / ky.length);
    expectScalar(m.out('top2'), ky.filter((l, i) => kz.slice(i * C, i * C + C).filter((v) => v > kz[i * C + l]).length < 2).length / ky.length);
    const counts = countsRef(kz, ky, C);
    expectScalar(m.out('p'), macroOf(precisionRef(counts), counts));
    expectScalar(m.out('r'), recallRef(counts)[2]);
    expectScalar(m.out('f'), macroOf(f1Ref(counts), counts));
    // every label ignored: 0, as cross_entropy
    expectScalar(m.out('none'), 0);
  });
});

describe('macro metrics with ignore_index', () => {
  it('leave out the ignored class: a perfect tagger with padding scores 1 (torchmetrics), not 2/3', () => {
    const src = 'model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric f = f1(z, y, average: "macro", ignore_index: 0)\n metric r = recall(z, y, average: "macro", ignore_index: 0)\n metric p = precision(z, y, average: "macro", ignore_index: 0)\n}';
    const m = model(src, { z: f32([4, 3], [5, 0, 0, 0, 5, 0, 0, 0, 5, 0, 5, 0]), y: i32([4], [0, 1, 2, 1]) }, prng('macro/ignore'));
    for (const name of ['f', 'r', 'p']) expectScalar(m.out(name), 1);
  });
});

describe('top_k_accuracy', () => {
  it('the label among the k highest logits, also over [B, T, C]; k = 1 is accuracy; ties count for the label; k past C is E0304', () => {
    const C = 5;
    const { z, y } = metricData('top_k_accuracy', 12, C);
    // a tie: row 0's label logit equals the row's largest
    const row0 = z.slice(0, C);
    z[y[0]] = Math.max(...row0);
    const inTopK = (k: number) => y.filter((l, i) => z.slice(i * C, i * C + C).filter((v) => v > z[i * C + l]).length < k).length / y.length;
    const src = `model T {\n input z: f32[B, ${C}]\n input y: i32[B]\n metric top1 = top_k_accuracy(z, y, k: 1)\n metric top3 = top_k_accuracy(z, y, k: 3)\n metric top5 = top_k_accuracy(z, y)\n}`;
    const m = model(src, { z: f32([12, C], z), y: i32([12], y) }, prng('top_k/p'));
    expectScalar(m.out('top1'), inTopK(1));
    expectScalar(m.out('top3'), inTopK(3));
    expectScalar(m.out('top5'), 1);
    expect(inTopK(1)).toBeLessThan(inTopK(3));
    const m3 = model(`model T {\n input z: f32[B, T, ${C}]\n input y: i32[B, T]\n metric top3 = top_k_accuracy(z, y, k: 3)\n}`, { z: f32([3, 4, C], z), y: i32([3, 4], y) }, prng('top_k/p3'));
    expectScalar(m3.out('top3'), inTopK(3));
    const bad = checkSource(src.replace('k: 3', 'k: 6'), 't.dl').diagnostics;
    expect(bad.map((d) => d.code)).toEqual(['E0304']);
    expect(bad[0].message).toContain('k <= C');
  });
});

describe('binary_accuracy, binary_precision, binary_recall, binary_f1', () => {
  // one logit per example: positive when sigmoid(z) > threshold; labels 0/1 as f32 or i32
  const z = [2.1, -0.3, 0.4, -1.7, 0.05, -0.6, 1.2, -0.1, 0.9, -2.5];
  const t = [1, 0, 0, 1, 1, 0, 1, 1, 0, 0];
  const ref = (threshold: number) => {
    const pred = z.map((v) => (1 / (1 + Math.exp(-v)) > threshold ? 1 : 0));
    const tp = pred.filter((p, i) => p === 1 && t[i] === 1).length;
    const predicted = pred.filter((p) => p === 1).length;
    const actual = t.filter((v) => v === 1).length;
    return { acc: pred.filter((p, i) => p === t[i]).length / z.length, prec: tp / predicted, rec: tp / actual, f1: (2 * tp) / (predicted + actual) };
  };

  it('against thresholded sigmoid counts, at 0.5 and another threshold, with f32 and i32 labels', () => {
    const src = `model T {\n input z: f32[B]\n input t: f32[B]\n input k: i32[B]\n metric acc = binary_accuracy(z, t)\n metric prec = binary_precision(z, t)\n metric rec = binary_recall(z, k)\n metric f = binary_f1(z, k)\n metric acc3 = binary_accuracy(z, k, threshold: 0.3)\n metric prec3 = binary_precision(z, t, threshold: 0.3)\n metric rec3 = binary_recall(z, t, threshold: 0.3)\n metric f3 = binary_f1(z, t, threshold: 0.3)\n}`;
    const m = model(src, { z: f32([10], z), t: f32([10], t), k: i32([10], t) }, prng('binary metrics'));
    const [half, low] = [ref(0.5), ref(0.3)];
    expect(half).not.toEqual(low);
    expectScalar(m.out('acc'), half.acc, 1e-7);
    expectScalar(m.out('prec'), half.prec, 1e-7);
    expectScalar(m.out('rec'), half.rec, 1e-7);
    expectScalar(m.out('f'), half.f1, 1e-7);
    expectScalar(m.out('acc3'), low.acc, 1e-7);
    expectScalar(m.out('prec3'), low.prec, 1e-7);
    expectScalar(m.out('rec3'), low.rec, 1e-7);
    expectScalar(m.out('f3'), low.f1, 1e-7);
  });

  it('no positive predicted or labelled gives 0, not NaN; a [B, 1] logit against [B] labels is E0304 with the fix', () => {
    const m = model('model T {\n input z: f32[B]\n input t: f32[B]\n metric p = binary_precision(z, t)\n metric r = binary_recall(z, t)\n metric f = binary_f1(z, t)\n}', { z: f32([3], [-1, -2, -3]), t: f32([3], [0, 0, 0]) }, prng('binary metrics/none'));
    for (const name of ['p', 'r', 'f']) expectScalar(m.out(name), 0);
    const bad = checkSource(`${USES}\nmodel T {\n input z: f32[B, 1]\n input t: f32[B]\n metric a = binary_accuracy(z, t)\n}`, 't.dl').diagnostics;
    expect(bad.map((d) => `${d.code} ${d.help}`)).toEqual(['E0304 binary metrics take one logit per label: a [B, 1] logit against [B] labels needs logits[:, 0]']);
  });
});

describe('auc', () => {
  // test/metric-auc.test.ts checks it against Keras' formula, exact areas, over batches and on WebGPU
  it('1 for scores that rank every positive first, 0 reversed, 0.5 with 2 thresholds; Keras by hand at 3 thresholds', () => {
    const z = [2.0, 1.0, -0.5, 0.3, -2.0, 0.8];
    const t = [1, 1, 0, 1, 0, 0];
    const src = `model T {\n input z: f32[B]\n input t: f32[B]\n metric roc = auc(z, t)\n metric pr = auc(z, t, curve: "pr")\n metric reversed = auc(-z, t)\n metric two = auc(z, t, thresholds: 2)\n metric three = auc(z, t, thresholds: 3)\n}`;
    const m = model(src, { z: f32([6], z), t: f32([6], t) }, prng('auc'));
    // positives 2.0, 1.0, 0.3; negatives 0.8, -0.5, -2.0: 8 of the 9 pairs ranked right, so not 1
    expectScalar(m.out('reversed'), 1 - m.out('roc').data[0], 1e-12);
    expectScalar(m.out('two'), 0.5, 1e-12);
    // at 0.5 (sigmoid 0.5 is z = 0): tp 3, fp 1 of 3 negatives; the trapezoids (1 - 1/3) (1 + 1) / 2 + (1/3) (1 + 0) / 2
    expectScalar(m.out('three'), 2 / 3 + 1 / 6, 1e-12);
    const sorted = model(src, { z: f32([6], [2, 1, 0.5, -0.5, -1, -2]), t: f32([6], [1, 1, 1, 0, 0, 0]) }, prng('auc'));
    expectScalar(sorted.out('roc'), 1, 1e-12);
    expectScalar(sorted.out('pr'), 1, 1e-12);
    expectScalar(sorted.out('reversed'), 0, 1e-12);
  });
});

describe('confusion_matrix', () => {
  // test/metric-confusion.test.ts checks it over batches, on WebGPU and in dlc train / evaluate
  it('counts by true class (rows) and argmax (columns); ignore_index leaves labels out', () => {
    const z = [3, 0, 0, 0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 0, 4];
    const y = [0, 1, 1, 2, 2];
    const src = 'model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric cm = confusion_matrix(z, y)\n metric kept = confusion_matrix(z, y, ignore_index: 1)\n}';
    const m = model(src, { z: f32([5, 3], z), y: i32([5], y) }, prng('confusion_matrix'));
    // predictions 0, 1, 2, 0, 2
    expectClose(m.out('cm'), [3, 3], [1, 0, 0, 0, 1, 1, 1, 0, 1], 0);
    expectClose(m.out('kept'), [3, 3], [1, 0, 0, 0, 0, 0, 1, 0, 1], 0);
  });
});

describe('binary_confusion_matrix', () => {
  it('rows the label (0, 1), columns sigmoid(logit) > threshold, with f32 or i32 labels', () => {
    const z = [2.1, -0.3, 0.4, -1.7, 0.05, -0.6, 1.2];
    const t = [1, 0, 0, 1, 1, 0, 1];
    const src = 'model T {\n input z: f32[B]\n input t: f32[B]\n input k: i32[B]\n metric half = binary_confusion_matrix(z, t)\n metric low = binary_confusion_matrix(z, k, threshold: 0.3)\n}';
    const m = model(src, { z: f32([7], z), t: f32([7], t), k: i32([7], t) }, prng('binary_confusion_matrix'));
    const counts = (threshold: number) => [0, 1].flatMap((y) => [0, 1].map((p) => z.filter((v, i) => t[i] === y && Number(1 / (1 + Math.exp(-v)) > threshold) === p).length));
    expect(counts(0.5)).not.toEqual(counts(0.3));
    expectClose(m.out('half'), [2, 2], counts(0.5), 0);
    expectClose(m.out('low'), [2, 2], counts(0.3), 0);
  });
});

describe('precision', () => {
  it('tp / predicted per class (0 when never predicted), binary and macro', () => {
    const { m, counts } = metricModel('precision', 'precision');
    const per = precisionRef(counts);
    expect(counts.predicted[3]).toBe(0);
    expectScalar(m.out('bin'), per[1]);
    expectScalar(m.out('pos2'), per[2]);
    expectScalar(m.out('absent'), 0);
    expectScalar(m.out('macro'), macroOf(per, counts));
  });
});

describe('recall', () => {
  it('tp / actual per class (0 when absent), binary and macro', () => {
    const { m, counts } = metricModel('recall', 'recall');
    const per = recallRef(counts);
    expect(counts.actual[3]).toBe(0);
    expectScalar(m.out('bin'), per[1]);
    expectScalar(m.out('pos2'), per[2]);
    expectScalar(m.out('absent'), 0);
    expectScalar(m.out('macro'), macroOf(per, counts));
  });
});

describe('f1', () => {
  it('harmonic mean of precision and recall per class, binary and macro', () => {
    const { m, counts } = metricModel('f1', 'f1');
    const per = f1Ref(counts);
    expectScalar(m.out('bin'), per[1]);
    expectScalar(m.out('pos2'), per[2]);
    expectScalar(m.out('absent'), 0);
    expectScalar(m.out('macro'), macroOf(per, counts));
  });
  it('macro leaves out a class absent from both labels and predictions, as scikit-learn does', () => {
    // 3 classes, only 0 and 1 occur: labels [0, 0, 1], predictions [0, 1, 1]; over all 3 classes the
    // scores were 2/3 of scikit-learn's (precision 0.5 against 0.75, F1 0.444 against 0.667)
    const z = [5, 0, 0, 0, 5, 0, 0, 5, 0];
    const m = model('model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric p = precision(z, y, average: "macro")\n metric r = recall(z, y, average: "macro")\n metric f = f1(z, y, average: "macro")\n}', { z: f32([3, 3], z), y: i32([3], [0, 0, 1]) }, prng('macro/absent'));
    expectScalar(m.out('p'), (1 + 0.5) / 2);
    expectScalar(m.out('r'), (0.5 + 1) / 2);
    expectScalar(m.out('f'), (2 / 3 + 2 / 3) / 2);
  });

  it('with more than 2 classes the default "binary" needs positive: named (E0304, saying what to pass); 2 classes score class 1', () => {
    for (const fn of ['precision', 'recall', 'f1']) {
      const bad = checkSource(`model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric m = ${fn}(z, y)\n}`, 't.dl').diagnostics;
      expect(bad.map((d) => d.code), fn).toEqual(['E0304']);
      expect(bad[0].help).toBe('with more than 2 classes, pass average: "macro" (the mean over the classes) or positive: k (class k against the rest)');
      expect(checkSource(`model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric m = ${fn}(z, y, positive: 0)\n}`, 't.dl').diagnostics).toEqual([]);
      expect(checkSource(`model T {\n input z: f32[B, 3]\n input y: i32[B]\n metric m = ${fn}(z, y, positive: 3)\n}`, 't.dl').diagnostics[0].message).toMatch(/positive < C/);
    }
    const { z, y } = metricData('binary2', 10, 2);
    const m = model('model T {\n input z: f32[B, 2]\n input y: i32[B]\n metric p = precision(z, y)\n}', { z: f32([10, 2], z), y: i32([10], y) }, prng('binary2/p'));
    expectScalar(m.out('p'), precisionRef(countsRef(z, y, 2))[1]);
  });
});
