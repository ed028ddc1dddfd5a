// Edge values on WebGPU against the float64 interpreter and PyTorch's conventions: NaN through tanh and the activations built on it, normalize of a zero vector, BatchNorm on one value per channel, cross_entropy's ignored rows, top_k with -inf, pow's IEEE special cases, argmax of NaN.
import { describe, expect, it } from 'vitest';
import { addGradients } from '../compiler/autodiff/grad.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { GraphEditor } from '../compiler/ir/editor.ts';
import { evaluate } from '../compiler/shapes/dim.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

/** A feed: its shape and its values (f32 unless `dtype` says i32). */
interface Feed {
  readonly shape: number[];
  readonly data: number[];
  readonly dtype?: 'i32';
}

/** One side's results: outputs, losses and metrics by name, each parameter's gradient and each state buffer after one step. */
interface Results {
  readonly values: Map<string, number[]>;
  readonly gradients: Map<string, number[]>;
  readonly state: Map<string, number[]>;
}

/** An SGD step of this rate leaves (before - after) / rate = the gradient exactly for the small values here. */
const LEARNING_RATE = 1024;

/**
 * Model M of `source` on Dawn (fused kernels) and in the float64 interpreter on the same inputs and
 * initial weights: predict outputs and evaluate's losses and metrics; with `train`, one SGD step's
 * gradients and state updates (the train block must be `sgd(lr: 1024.0)`). `fuse: false` runs the unfused kernels.
 */
async function gpuAndReference(source: string, feeds: Record<string, Feed>, train = false, fuse = true): Promise<{ gpu: Results; ref: Results }> {
  const compiled = compileSource(source, 'edge.dl', undefined, { fuse });
  expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const training = checkSource(source, 'edge.dl').graphs.get('M')!;
  const evaluation = checkSource(source, 'edge.dl', undefined, { training: false }).graphs.get('M')!;
  const inputs = new Map<string, Tensor>();
  const host: Record<string, Float32Array | Int32Array> = {};
  for (const [name, f] of Object.entries(feeds)) {
    const values = f.dtype === 'i32' ? f.data : f.data.map(Math.fround);
    inputs.set(name, tensor(f.dtype ?? 'f32', f.shape, values));
    host[name] = f.dtype === 'i32' ? Int32Array.from(values) : Float32Array.from(values);
  }
  const sizes = new Map([['B', Object.values(feeds)[0].shape[0]]]);
  const model = await Model.create(compiled.programs[0], { device: await getDevice(), seed: 3 });
  try {
    const params = new Map<string, Tensor>();
    const state = new Map<string, Tensor>();
    const isParam = new Set(training.params.map((p) => p.path));
    for (const [path, t] of decodeSafetensors(await model.saveWeights()).tensors) {
      (isParam.has(path) ? params : state).set(path, tensor('f32', [...t.shape], Array.from(t.data as ArrayLike<number>)));
    }
    const stateOf = (g: typeof training) => new Map(g.state.map((s) => [s.path, state.get(s.path) ?? tensor(s.value.type.dtype, s.value.type.shape.map((d) => evaluate(d, sizes)), 0)]));
    const gpu: Results = { values: new Map(), gradients: new Map(), state: new Map() };
    const ref: Results = { values: new Map(), gradients: new Map(), state: new Map() };
    const evalRef = interpretGraph(evaluation, { inputs, params, state: stateOf(evaluation) }, { sizes });
    for (const [name, t] of [...evalRef.outputs, ...evalRef.losses, ...evalRef.metrics]) ref.values.set(name, Array.from(t.data));
    for (const [name, v] of Object.entries(await model.predict(host as never))) gpu.values.set(name, Array.from(v as ArrayLike<number>));
    if (evalRef.losses.size + evalRef.metrics.size > 0) {
      for (const [name, v] of Object.entries(await model.evaluate(host as never))) gpu.values.set(name, [v as number]);
    }
    if (train) {
      const editor = new GraphEditor(training);
      const gradients = addGradients(editor, [...training.losses.values()][0], training.params.map((p) => p.value));
      for (const p of training.params) editor.outputs.set(`\0grad:${p.path}`, gradients.get(p.value.id)!);
      const trainRef = interpretGraph(editor.finish(), { inputs, params, state: stateOf(training) }, { sizes });
      for (const p of training.params) ref.gradients.set(p.path, Array.from(trainRef.outputs.get(`\0grad:${p.path}`)!.data));
      for (const [path, t] of trainRef.state) ref.state.set(path, Array.from(t.data));
      const before = new Map<string, Float32Array>();
      for (const p of training.params) before.set(p.path, Float32Array.from((await model.getParameter(p.path as never)) as Float32Array));
      await model.trainStep(host as never).values();
      for (const p of training.params) {
        const after = (await model.getParameter(p.path as never)) as Float32Array;
        gpu.gradients.set(p.path, Array.from(after, (v, k) => (before.get(p.path)![k] - v) / LEARNING_RATE));
      }
      for (const path of trainRef.state.keys()) gpu.state.set(path, Array.from((await model.getState(path as never)) as ArrayLike<number>));
    }
    return { gpu, ref };
  } finally {
    model.dispose();
  }
}

/** Equal within rtol (relative to max(1, |want|)), NaN only against NaN, infinities exactly. */
function expectClose(what: string, got: readonly number[] | undefined, want: readonly number[], rtol = 1e-5): void {
  expect(got, what).toBeDefined();
  expect(got!.length, what).toBe(want.length);
  const bad = want.flatMap((w, i) => {
    const g = got![i];
    const ok = Number.isNaN(w) ? Number.isNaN(g) : Number.isFinite(w) ? Math.abs(g - w) <= rtol * Math.max(1, Math.abs(w)) : g === w;
    return ok ? [] : [`[${i}] ${g}, expected ${w}`];
  });
  expect(bad, `${what}: got [${got!.join(', ')}]`).toEqual([]);
}

/** Both sides against the expected values (and so against each other). */
function expectBoth(what: string, r: { gpu: Results; ref: Results }, kind: keyof Results, name: string, want: readonly number[], rtol = 1e-5): void {
  expectClose(`${what}: interpreter ${kind} ${name}`, r.ref[kind].get(name), want, rtol);
  expectClose(`${what}: GPU ${kind} ${name}`, r.gpu[kind].get(name), want, rtol);
}

describe('edge values on WebGPU and in the interpreter', () => {
  it('NaN propagates through tanh, the activations built on it or on erf, sigmoid and softplus, fused into kernels and into a matmul epilogue (an RNN cell)', { timeout: 120_000 }, async () => {
    const source = `use std.nn.{Dense}
model M {
  input x: f32[B]
  layer cell = Dense(1, 2)
  output t = tanh(x * 2.0)
  output gt = gelu(x, approximate: "tanh")
  output ge = gelu(x)
  output sg = silu(x) + sigmoid(x)
  output sp = softplus(x)
  output h = tanh(cell(x[:, None]))
}
`;
    const x = [NaN, 0.25, -20, Infinity, -Infinity, 3];
    const r = await gpuAndReference(source, { x: { shape: [6], data: x } });
    const nanAt = (name: string, positions: number[]) => {
      for (const side of ['gpu', 'ref'] as const) {
        const v = r[side].values.get(name)!;
        const nans = v.flatMap((e, i) => (Number.isNaN(e) ? [i] : []));
        expect(nans, `${side} ${name} = [${v.join(', ')}]`).toEqual(positions);
      }
    };
    expectBoth('tanh(2x)', r, 'values', 't', x.map((v) => Math.tanh(2 * v)));
    // gelu(-inf) is -inf * 0 = NaN in PyTorch too; only the first element must be NaN otherwise
    for (const name of ['gt', 'ge', 'sg']) nanAt(name, [0, 4]);
    nanAt('sp', [0]);
    // an RNN cell's tanh in a matmul's epilogue: example 0's hidden state is NaN (it was -1, -1)
    nanAt('h', [0, 1]);
    for (const name of ['gt', 'ge', 'sg', 'sp', 'h']) expectClose(`${name}: GPU against the interpreter`, r.gpu.values.get(name), r.ref.values.get(name)!);
  });

  it("normalize and cosine_similarity of a zero vector have PyTorch's finite gradient (c / eps), on the GPU and in the interpreter", { timeout: 120_000 }, async () => {
    const source = `model M {
  input c: f32[B, 3]
  param j: f32[3] = zeros
  param k: f32[3] = zeros
  loss = sum(normalize(j, eps: 0.01) * c) + sum(cosine_similarity(k[None, :], c, eps: 0.01))
}
train M { optimizer = sgd(lr: 1024.0) }
`;
    const c = [1, 2, -2, 0.5, 0, 0];
    const r = await gpuAndReference(source, { c: { shape: [2, 3], data: c } }, true);
    // at j = 0 the norm is floored at eps, so normalize is j / eps there: the gradient is sum_b c_b / eps
    expectBoth('normalize', r, 'gradients', 'j', [0, 1, 2].map((i) => (c[i] + c[3 + i]) / 0.01), 1e-5);
    // cosine_similarity(k, c_b) = (k / eps) . (c_b / |c_b|)
    expectBoth('cosine_similarity', r, 'gradients', 'k', [0, 1, 2].map((i) => (c[i] / 3 + c[3 + i] / 0.5) / 0.01), 1e-5);
  });

  it('an Embedding padding row under normalize stays zero through training (it turned NaN after one step)', { timeout: 120_000 }, async () => {
    const source = `use std.nn.{Embedding, Dense}
model M {
  input tokens: i32[B, 3]
  input label: i32[B]
  layer emb = Embedding(5, 4, padding_idx: 0)
  layer head = Dense(4, 2)
  let v = normalize(emb(tokens), axis: -1)
  loss = cross_entropy(head(mean(v, axis: 1)), label)
}
train M { optimizer = sgd(lr: 0.1) }
`;
    const compiled = compileSource(source, 'padnorm.dl');
    expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const model = await Model.create(compiled.programs[0], { device: await getDevice(), seed: 1 });
    try {
      const batch = { tokens: Int32Array.from([1, 2, 0, 3, 4, 0]), label: Int32Array.from([0, 1]) };
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) losses.push((await model.trainStep(batch as never).values()).loss as number);
      expect(losses.every(Number.isFinite), `losses ${losses.join(', ')}`).toBe(true);
      expect(losses[2]).toBeLessThan(losses[0]);
      expect(Array.from((await model.getParameter('emb.weight' as never)) as Float32Array).slice(0, 4)).toEqual([0, 0, 0, 0]);
    } finally {
      model.dispose();
    }
  });

  it('BatchNorm(unbiased: true) trained on one value per channel keeps its running variance finite (count / (count - 1) made it NaN for good)', { timeout: 120_000 }, async () => {
    const source = `use std.nn.{BatchNorm}
model M {
  input x: f32[B, 3]
  layer bn = BatchNorm(3, unbiased: true)
  output y = bn(x)
  loss = sum(y * x)
}
train M { optimizer = sgd(lr: 1024.0) }
`;
    const r = await gpuAndReference(source, { x: { shape: [1, 3], data: [1, 2, 3] } }, true);
    // the biased variance of one value, 0: 0.9 * 1 + 0.1 * 0
    expectBoth('running_var after a batch of one', r, 'state', 'bn.running_var', [0.9, 0.9, 0.9]);
    expectBoth('running_mean after a batch of one', r, 'state', 'bn.running_mean', [0.1, 0.2, 0.3]);
  });

  it("cross_entropy's ignored rows count for exactly nothing, also holding -inf or NaN, with weight and label smoothing: PyTorch's losses, and a zero gradient to them", { timeout: 120_000 }, async () => {
    const rows = [[1, 2, 3], [0, 0, 0], [5, -1, -Infinity], [2, 1, 0]];
    const labels = [0, 1, -100, 2];
    const weights = [1, 2, 0.5];
    // torch.nn.functional.cross_entropy (reduction mean) written out: the ignored row is skipped
    const torchLoss = (w: number[] | null, smoothing: number) => {
      let num = 0;
      let den = 0;
      rows.forEach((row, i) => {
        if (labels[i] === -100) return;
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
        const wy = w ? w[labels[i]] : 1;
        const smooth = row.reduce((a, v, c) => a + (w ? w[c] : 1) * (lse - v), 0) / row.length;
        num += (1 - smoothing) * wy * (lse - row[labels[i]]) + smoothing * smooth;
        den += wy;
      });
      return num / den;
    };
    const losses = `  loss l_ign = cross_entropy(logits, label, ignore_index: -100)
  loss l_wi = cross_entropy(logits, label, weight: [1.0, 2.0, 0.5], ignore_index: -100)
  loss l_ls = cross_entropy(logits, label, label_smoothing: 0.1, ignore_index: -100)
  loss l_wls = cross_entropy(logits, label, weight: [1.0, 2.0, 0.5], label_smoothing: 0.1, ignore_index: -100)
  metric acc = accuracy(logits, label, ignore_index: -100)`;
    const source = `model M {
  input logits: f32[B, 3]
  input label: i32[B]
${losses}
}
`;
    const label: Feed = { shape: [4], data: labels, dtype: 'i32' };
    for (const ignored of [[5, -1, -Infinity], [NaN, NaN, NaN], [Infinity, 0, 0]]) {
      const logits: Feed = { shape: [4, 3], data: [...rows[0], ...rows[1], ...ignored, ...rows[3]] };
      const r = await gpuAndReference(source, { logits, label });
      const what = `ignored row [${ignored.join(', ')}]`;
      expectBoth(what, r, 'values', 'l_ign', [torchLoss(null, 0)]);
      expectBoth(what, r, 'values', 'l_wi', [torchLoss(weights, 0)]);
      expectBoth(what, r, 'values', 'l_ls', [torchLoss(null, 0.1)]);
      expectBoth(what, r, 'values', 'l_wls', [torchLoss(weights, 0.1)]);
      expectBoth(what, r, 'values', 'acc', [0]);
    }
    // the gradient of every form to the logits: finite, and exactly 0 on the ignored row
    const trained = `model M {
  input logits: f32[4, 3]
  input label: i32[4]
  param a: f32[4, 3] = zeros
  loss = cross_entropy(logits + a, label, ignore_index: -100) + cross_entropy(logits + a, label, weight: [1.0, 2.0, 0.5], label_smoothing: 0.1, ignore_index: -100) + cross_entropy(logits + a, label, label_smoothing: 0.1, ignore_index: -100)
}
train M { optimizer = sgd(lr: 1024.0) }
`;
    for (const ignored of [[5, -1, -Infinity], [NaN, NaN, NaN]]) {
      const r = await gpuAndReference(trained, { logits: { shape: [4, 3], data: [...rows[0], ...rows[1], ...ignored, ...rows[3]] }, label }, true);
      const want = r.ref.gradients.get('a')!;
      expect(want.slice(6, 9), 'the interpreter gives the ignored row no gradient').toEqual([0, 0, 0]);
      expect(want.every(Number.isFinite), `interpreter gradient [${want.join(', ')}]`).toBe(true);
      expectClose(`GPU gradient, ignored row [${ignored.join(', ')}]`, r.gpu.gradients.get('a'), want, 1e-4);
    }
  });

  it('top_k returns k distinct indices with -inf in the row and NaN first, and argmax points at the first NaN, as torch.topk and torch.argmax', { timeout: 120_000 }, async () => {
    const source = `model M {
  input x: f32[B, 4]
  let tk = top_k(x, 3)
  output tv = tk[0]
  output ti = tk[1]
  output am = argmax(x, axis: -1)
  output mx = max(x, axis: -1)
}
`;
    const rows = [
      [-Infinity, -Infinity, 1, -Infinity],
      [1, NaN, 3, 2],
      [NaN, 1, NaN, 3],
      [2, 5, 5, 1],
      [-Infinity, -Infinity, -Infinity, -Infinity],
    ];
    const r = await gpuAndReference(source, { x: { shape: [5, 4], data: rows.flat() } });
    // torch.topk(x, 3) and torch.argmax(x, -1) (torch orders tied -inf by index too)
    expectBoth('top_k values', r, 'values', 'tv', [1, -Infinity, -Infinity, NaN, 3, 2, NaN, NaN, 3, 5, 5, 2, -Infinity, -Infinity, -Infinity]);
    expectBoth('top_k indices', r, 'values', 'ti', [2, 0, 1, 1, 2, 3, 0, 2, 3, 1, 2, 0, 0, 1, 2]);
    expectBoth('argmax', r, 'values', 'am', [2, 1, 0, 1, 0]);
    expectBoth('max', r, 'values', 'mx', [1, NaN, NaN, 5, -Infinity]);
  });

  it("x ** 2 is the correctly rounded square (x * x, as torch), also inside mse; pow's IEEE special cases in a compiled model", { timeout: 120_000 }, async () => {
    const source = `use std.loss.{mse}
model M {
  input x: f32[B]
  input e: f32[B]
  output sq = x ** 2
  output p = pow(x, e)
  loss = mse(x[:5], zeros_like(x[:5]))
}
`;
    const x = [100, 89, 1e-7, -3.3, 12345.679, -0, -Infinity, 0, 1];
    const e = [2, 2, 2, 2, 2, -1, 0.5, NaN, NaN];
    const r = await gpuAndReference(source, { x: { shape: [9], data: x }, e: { shape: [9], data: e } });
    const squares = x.map((v) => Math.fround(Math.fround(v) * Math.fround(v)));
    // the GPU's exactly (WGSL's pow gave 9999.998 for 100 ** 2, and 1e-7 ** 2 six ulp off); the float64 interpreter's to within f32 rounding
    const pows = [...squares.slice(0, 5), -Infinity, Infinity, NaN, 1];
    expectClose('GPU x ** 2', r.gpu.values.get('sq'), squares, 0);
    expectClose('interpreter x ** 2', r.ref.values.get('sq'), squares, 1e-7);
    // pow(-0, -1) = -inf, pow(-inf, 0.5) = inf, pow(0, NaN) = NaN, pow(1, NaN) = 1 (C's pow, torch.pow)
    expectClose('GPU pow', r.gpu.values.get('p'), pows, 0);
    expectClose('interpreter pow', r.ref.values.get('p'), pows, 1e-7);
    expectBoth('mse', r, 'values', 'loss', [squares.slice(0, 5).reduce((a, v) => a + v, 0) / 5], 1e-6);
  });

  it('long f32 sums keep their small components: a whole-tensor sum and mean, and column sums folded in one invocation each (compensated accumulation)', { timeout: 120_000 }, async () => {
    const source = `model M {
  input x: f32[B, 64]
  output s = sum(x)
  output m = mean(x)
  output cs = sum(x, axis: 0)
  output sq = sum(x * x, axis: 0)
}
`;
    // 1 and 1.0001 alternating by column: a running sum past 2048 drops 1e-4 altogether (half an ulp is 1.2e-4)
    const rows = 4200;
    const small = Math.fround(1.0001);
    const data = Array.from({ length: rows * 64 }, (_, i) => (i % 2 === 0 ? small : 1));
    const total = (rows * 64 * (small + 1)) / 2;
    const relative = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);
    for (const fuse of [true, false]) {
      const r = await gpuAndReference(source, { x: { shape: [rows, 64], data } }, false, fuse);
      const worst = (name: string, want: (i: number) => number) => Math.max(...r.gpu.values.get(name)!.map((v, i) => relative(v, want(i))));
      const errors = {
        sum: relative(r.gpu.values.get('s')![0], total),
        mean: relative(r.gpu.values.get('m')![0], total / (rows * 64)),
        columns: worst('cs', (i) => rows * (i % 2 === 0 ? small : 1)),
        squares: worst('sq', (i) => rows * (i % 2 === 0 ? small * small : 1)),
      };
      // plain sequential f32 folds had 5e-6 (sum, mean) and 4.4e-5 (the columns: 4200.237 for 4200.420)
      for (const [name, e] of Object.entries(errors)) expect(e, `${fuse ? 'fused' : 'unfused'} ${name}: relative error ${e.toExponential(2)} against float64`).toBeLessThan(2e-7);
      expectClose('sum against the interpreter', r.gpu.values.get('s'), r.ref.values.get('s')!, 2e-7);
    }
  });
});
