// Every stdlib layer and function passes a directional float64 gradient check, with respect to its parameters and its input.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { gradcheck } from '../compiler/autodiff/gradcheck.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import { addGradients } from '../compiler/autodiff/grad.ts';
import { GraphEditor } from '../compiler/ir/editor.ts';

const SEED = Number(process.env.DLC_SEED ?? 11);

/** name -> [input declarations, body producing `y` (a float tensor)]; the loss is mean(y * r) with a fixed random r. */
const CASES: Record<string, [string, string]> = {
  Dense: ['input x: f32[B, 3]', 'layer l = Dense(3, 2)\n  let y = l(x)'],
  Conv1d: ['input x: f32[B, 2, 7]', 'layer c = Conv1d(2, 3, 3, dilation: 2, causal: true)\n  layer d = Conv1d(3, 4, 2, stride: 2, padding: 1, groups: 1)\n  let y = d(c(x))'],
  Conv2d: ['input x: f32[B, 2, 5, 5]', 'layer l = Conv2d(2, 3, 3, stride: 2, padding: 1)\n  let y = l(x)'],
  ConvTranspose2d: ['input x: f32[B, 2, 3, 3]', 'layer l = ConvTranspose2d(2, 2, 3, stride: 2)\n  let y = l(x)'],
  'Conv2d, grouped and depthwise': ['input x: f32[B, 4, 5, 5]', 'layer g = Conv2d(4, 6, 3, padding: 1, groups: 2)\n  layer d = Conv2d(6, 6, 3, stride: 2, dilation: 2, padding: 2, groups: 6)\n  let y = d(g(x))'],
  'ConvTranspose2d, grouped': ['input x: f32[B, 4, 3, 3]', 'layer l = ConvTranspose2d(4, 6, 3, stride: 2, padding: 1, output_padding: 1, groups: 2)\n  let y = l(x)'],
  MaxPool2d: ['input x: f32[B, 1, 4, 4]', 'layer l = MaxPool2d(2)\n  let y = l(x)'],
  AvgPool2d: ['input x: f32[B, 1, 4, 4]', 'layer l = AvgPool2d(2)\n  let y = l(x)'],
  Flatten: ['input x: f32[B, 2, 2, 2]', 'layer l = Flatten()\n  let y = l(x)'],
  Dropout: ['input x: f32[B, 4]', 'layer l = Dropout(0.5)\n  let y = l(x)'],
  BatchNorm: ['input x: f32[B, 3]', 'layer l = BatchNorm(3)\n  let y = l(x)'],
  LayerNorm: ['input x: f32[B, 4]', 'layer l = LayerNorm(4)\n  let y = l(x)'],
  Normalization: ['input x: f32[B, 4]', 'layer l = Normalization(4)\n  let y = l(x)'],
  Embedding: ['input ids: i32[B, 3]', 'layer l = Embedding(5, 2)\n  let y = l(ids)'],
  RNNCell: ['input x: f32[B, 2]\n  input h: f32[B, 3]', 'layer l = RNNCell(2, 3)\n  let y = l(x, h)'],
  RNN: ['input x: f32[B, 3, 2]', 'layer l = RNN(2, 3)\n  let y = l(x)'],
  LSTMCell: ['input x: f32[B, 2]\n  input h: f32[B, 3]\n  input c: f32[B, 3]', 'layer l = LSTMCell(2, 3)\n  let y = l(x, h, c)[0]'],
  LSTM: ['input x: f32[B, 3, 2]', 'layer l = LSTM(2, 3)\n  let y = l(x)'],
  GRUCell: ['input x: f32[B, 2]\n  input h: f32[B, 3]', 'layer l = GRUCell(2, 3)\n  let y = l(x, h)'],
  GRU: ['input x: f32[B, 3, 2]', 'layer l = GRU(2, 3)\n  let y = l(x)'],
  'GRU, 2 bidirectional layers from h0, with h_n': ['input x: f32[B, 3, 2]\n  input h0: f32[4, B, 3]', 'layer l = GRU(2, 3, num_layers: 2, bidirectional: true, return_state: true)\n  let a, h = l(x, h0: h0)\n  let y = concat([reshape(a, [B, 18]), reshape(transpose(h, [1, 0, 2]), [B, 12])], axis: -1)'],
  'LSTM, bidirectional from h0 and c0, with h_n and c_n': ['input x: f32[B, 3, 2]\n  input h0: f32[2, B, 3]\n  input c0: f32[2, B, 3]', 'layer l = LSTM(2, 3, bidirectional: true, return_state: true)\n  let a, h, c = l(x, h0: h0, c0: c0)\n  let y = concat([reshape(a, [B, 18]), reshape(transpose(h, [1, 0, 2]), [B, 6]), reshape(transpose(c, [1, 0, 2]), [B, 6])], axis: -1)'],
  'RNN, 2 layers from h0, with h_n': ['input x: f32[B, 3, 2]\n  input h0: f32[2, B, 3]', 'layer l = RNN(2, 3, num_layers: 2, return_state: true)\n  let a, h = l(x, h0: h0)\n  let y = concat([reshape(a, [B, 9]), reshape(transpose(h, [1, 0, 2]), [B, 6])], axis: -1)'],
  MultiHeadAttention: ['input x: f32[B, 3, 4]', 'layer l = MultiHeadAttention(4, 2, causal: true)\n  let y = l(x, x[:, :, 0] > 0.0)'],
  TransformerBlock: ['input x: f32[B, 3, 4]', 'layer l = TransformerBlock(4, 2, ff: 6, causal: true)\n  let y = l(x)'],
  Residual: ['input x: f32[B, 3]', 'layer l = Residual(Dense(3, 3))\n  let y = l(x)'],
  Sequential: ['input x: f32[B, 3]', 'layer l = Sequential([Dense(3, 4), relu, Dense(4, 2)])\n  let y = l(x)'],
  RMSNorm: ['input x: f32[B, 2, 4]', 'layer l = RMSNorm(4)\n  let y = l(x)'],
  GroupNorm: ['input x: f32[B, 4, 2, 3]', 'layer l = GroupNorm(2, 4)\n  let y = l(x)'],
  Upsample: ['input x: f32[B, 2, 2, 3]', 'layer l = Upsample(2)\n  let y = l(x)'],
  var: ['input x: f32[B, 4]', 'let y = var(x, axis: 0) + var(transpose(x), axis: 1, correction: 0)'],
  std: ['input x: f32[B, 4]', 'let y = std(x, axis: -1)'],
  normalize: ['input x: f32[B, 4]', 'let y = normalize(x)'],
  cosine_similarity: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = cosine_similarity(x, t)'],
  tril: ['input x: f32[B, 4]', 'let y = tril(x, k: 1)'],
  triu: ['input x: f32[B, 4]', 'let y = triu(x)'],
  top_k: ['input x: f32[B, 5]', 'let values, ids = top_k(x, 3)\n  let y = values * 2.0'],
  huber: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = huber(x, t, delta: 0.5)'],
  // tensor bounds from t (their gradient where a bound is taken) and numbers; inputs are off the bounds
  clip: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = clip(x, t - 0.5, t + 0.5) + clip(x, -0.3, 0.3) * 2.0'],
  relu: ['input x: f32[B, 4]', 'let y = relu(x)'],
  leaky_relu: ['input x: f32[B, 4]', 'let y = leaky_relu(x)'],
  gelu: ['input x: f32[B, 4]', 'let y = gelu(x) + gelu(x, approximate: "tanh")'],
  silu: ['input x: f32[B, 4]', 'let y = silu(x)'],
  elu: ['input x: f32[B, 4]', 'let y = elu(x)'],
  softplus: ['input x: f32[B, 4]', 'let y = softplus(x)'],
  logsumexp: ['input x: f32[B, 4]', 'let y = logsumexp(x)'],
  softmax: ['input x: f32[B, 4]', 'let y = softmax(x)'],
  log_softmax: ['input x: f32[B, 4]', 'let y = log_softmax(x)'],
  mse: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = mse(x, t)'],
  l1: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = l1(x, t)'],
  cross_entropy: ['input x: f32[B, 4]\n  input label: i32[B]', 'let y = cross_entropy(x, label, label_smoothing: 0.1) + cross_entropy(x, label, ignore_index: 2)'],
  binary_cross_entropy: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = binary_cross_entropy(x, t)'],
  'cross_entropy, class weights': ['input x: f32[B, 4]\n  input label: i32[B]', 'let y = cross_entropy(x, label, weight: [0.5, 2.0, 1.0, 3.0]) + cross_entropy(x, label, weight: [0.5, 2.0, 1.0, 3.0], label_smoothing: 0.2, ignore_index: 2)'],
  'binary_cross_entropy, pos_weight': ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = binary_cross_entropy(x, t, pos_weight: 3.0) + binary_cross_entropy(x, t, pos_weight: [1.0, 2.0, 0.5, 4.0])'],
  nll: ['input x: f32[B, 4]\n  input label: i32[B]', 'let y = nll(log_softmax(x), label)'],
  dropout: ['input x: f32[B, 4]', 'let y = dropout(x, 0.3)'],
  kl_normal: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = kl_normal(x, t)'],
  // targets away from 0 (mape divides by them) and errors away from 0 (abs's kink)
  mae: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = mae(x, t + 3.0)'],
  rmse: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = rmse(x, t)'],
  mape: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = mape(x, t + 3.0)'],
  r2: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = r2(x, t)'],
  max_error: ['input x: f32[B, 4]\n  input t: f32[B, 4]', 'let y = max_error(x, t + 3.0)'],
  // the samples carry no gradient to p: x's reaches x through the product only
  bernoulli: ['input x: f32[B, 4]', 'let y = x * bernoulli(sigmoid(x))'],
};

/** Metrics are counts of argmax decisions: piecewise constant, with a zero gradient almost everywhere. */
const NOT_DIFFERENTIABLE = new Set(['accuracy', 'top_k_accuracy', 'precision', 'recall', 'f1', 'binary_accuracy', 'binary_precision', 'binary_recall', 'binary_f1', 'auc', 'confusion_matrix', 'binary_confusion_matrix']);

describe(`stdlib gradients (seed ${SEED})`, () => {
  for (const [name, [inputs, body]] of Object.entries(CASES)) {
    it(name, () => {
      const src = `model T {\n  ${inputs}\n  ${body}\n  let r = random_normal(shape(y))\n  loss = mean(y * stop_gradient(r))\n}\n`;
      const checked = checkSource(src, `${name}.dl`);
      expect(checked.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
      const g = checked.graphs.get('T')!;
      const sizes = new Map([['B', 3]]);
      const raw = randomFeeds(g, sizes, seededRandom(SEED), { intRange: { ids: 5, label: 4 } });
      // inputs away from the kinks of relu-like functions: shift values off zero
      const offKinks = [...raw.inputs].map(([k, t]) => [k, t.dtype === 'f32' ? { ...t, data: t.data.map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v)) } : t] as const);
      const feeds = { ...raw, inputs: new Map(offKinks) };
      const floatInputs = g.inputs.filter((i) => i.value.type.dtype === 'f32').map((i) => i.name);
      const rows = gradcheck(g, feeds, { sizes, seed: SEED, wrt: [...g.params.map((p) => p.path), ...floatInputs] });
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) expect(r.absError, `${name}: d/d${r.name} analytic ${r.analytic} numeric ${r.numeric}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(r.numeric));
    });
  }

  it("clip's gradient is torch.clamp's: 1 to x inside [lo, hi] bounds included, 0 outside, the rest to a tensor bound", () => {
    const src = `model T {\n  input x: f32[6]\n  input lo: f32[6]\n  loss = sum(clip(x, lo, 1.0) * 3.0)\n}\n`;
    const checked = checkSource(src, 'clip.dl');
    expect(checked.diagnostics).toEqual([]);
    const g = checked.graphs.get('T')!;
    const x = [-2, -1, 0, 1, 2, 0.5];
    const lo = [-1, -1, -1, -1, -1, 3];
    const editor = new GraphEditor(g);
    const [xv, lov] = g.inputs.map((i) => i.value);
    const grads = addGradients(editor, g.losses.get('loss')!, [xv, lov]);
    editor.outputs.set('dx', grads.get(xv.id)!);
    editor.outputs.set('dlo', grads.get(lov.id)!);
    const out = interpretGraph(editor.finish(), { inputs: new Map([['x', tensor('f32', [6], x)], ['lo', tensor('f32', [6], lo)]]), params: new Map(), state: new Map() }).outputs;
    // x = -1 and x = 1 sit on the bounds: the whole gradient goes to x (minimum/maximum would give half);
    // the last element has lo = 3 > hi = 1: the value is hi, and no gradient reaches x or lo
    expect(Array.from(out.get('dx')!.data)).toEqual([0, 3, 3, 3, 0, 0]);
    expect(Array.from(out.get('dlo')!.data)).toEqual([3, 0, 0, 0, 0, 0]);
  });

  it('covers every stdlib declaration', () => {
    const declared = readdirSync('stdlib')
      .filter((f) => f.endsWith('.dl'))
      .flatMap((f) => parse(readFileSync(`stdlib/${f}`, 'utf8'), f).program.body.stmts)
      .flatMap((d) => (d.kind === 'Fn' || d.kind === 'Layer' ? [d.name.text] : []))
      .filter((n) => !n.startsWith('_'));
    const missing = declared.filter((n) => !(n in CASES) && !NOT_DIFFERENTIABLE.has(n));
    expect(missing).toEqual([]);
  });
});
