// Losses and metrics over a whole data set (compiler/train/metric-totals.ts, Model.evaluateSet): which quantities split into sums over the batch, the float64 interpreter's totals against one batch of everything, and WebGPU giving the same precision, recall and F1 whatever the batch size.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph, type Feeds, type InterpretResult } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { MAX_TOTAL_PREFIX, metricTotals, TOTAL_PREFIX } from '../compiler/train/metric-totals.ts';
import { Model } from '../runtime/model.ts';
import { batchAveraged, evaluateDataset, fit } from '../runtime/fit.ts';
import { Dataset } from '../runtime/data.ts';
import { getDevice } from './gpu-helpers.ts';

const CLASSIFIER = `use std.nn.{Dense}

model Classifier {
  input features: f32[B, 4]
  input label: i32[B]
  layer fc1 = Dense(4, 8)
  layer fc2 = Dense(8, 3)
  let logits = fc2(relu(fc1(features)))
  loss = cross_entropy(logits, label)
  metric accuracy = accuracy(logits, label)
  metric top2 = top_k_accuracy(logits, label, k: 2)
  metric f1_macro = f1(logits, label, average: "macro")
  metric precision1 = precision(logits, label, positive: 1)
  metric recall2 = recall(logits, label, positive: 2)
  // a max over the batch: combined by max across batches
  metric worst = max(max(logits, axis: -1))
  // not functions of sums over the batch: stay averaged over batches
  metric scaled = mean(logits) * sum(fc2.w)
  metric spread = mean(max(logits - mean(logits, axis: 0), axis: -1))
}
`;

function evaluationOf(source: string): Graph {
  const r = compileSource(source, 'metrics.dl', undefined, { keepGraphs: true });
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.graphs![0].evaluation;
}

/** Rows lo..hi of every input (the first axis). */
function rows(inputs: ReadonlyMap<string, Tensor>, lo: number, hi: number): Map<string, Tensor> {
  return new Map(
    [...inputs].map(([name, t]) => {
      const row = t.shape.slice(1).reduce((a, b) => a * b, 1);
      return [name, tensor(t.dtype, [hi - lo, ...t.shape.slice(1)], Array.from(t.data.slice(lo * row, hi * row)))];
    }),
  );
}

/** The evaluate graph with totals run on each range of rows, its totals added, and the finishing graph's metrics. */
function finishBatches(totals: NonNullable<ReturnType<typeof metricTotals>['split']>, feeds: Feeds, ranges: readonly (readonly [number, number])[], each?: (run: InterpretResult, lo: number, hi: number) => void): Map<string, Tensor> {
  const sums = new Map<string, number[]>();
  for (const [lo, hi] of ranges) {
    const run = interpretGraph(totals.evaluation, { ...feeds, inputs: rows(feeds.inputs, lo, hi) });
    each?.(run, lo, hi);
    for (const i of totals.finish.inputs) {
      const t = run.outputs.get(i.name)!;
      const max = i.name.startsWith(MAX_TOTAL_PREFIX);
      const sum = sums.get(i.name) ?? sums.set(i.name, new Array(t.data.length).fill(max ? -Infinity : 0)).get(i.name)!;
      t.data.forEach((x, k) => (sum[k] = max ? Math.max(sum[k], x) : sum[k] + x));
    }
  }
  return interpretGraph(totals.finish, {
    inputs: new Map(totals.finish.inputs.map((i) => [i.name, tensor('f32', i.value.type.shape as number[], sums.get(i.name)!)])),
    params: new Map(),
    state: new Map(),
  }).metrics;
}

describe('metric totals', () => {
  it('splits the quantities that are functions of sums over the batch, and only those; means need no totals', () => {
    const g = evaluationOf(CLASSIFIER);
    const { means, split } = metricTotals(g);
    expect([...split!.finish.metrics.keys()].sort()).toEqual(['f1_macro', 'precision1', 'recall2', 'worst']);
    // the max over the batch is a total that batches combine by max
    expect(split!.finish.inputs.filter((i) => i.name.startsWith(MAX_TOTAL_PREFIX))).toHaveLength(1);
    expect([...means].sort()).toEqual(['accuracy', 'loss', 'top2']);
    // the finishing graph reads totals only: no parameter, no batch input
    expect(split!.finish.params).toEqual([]);
    expect(split!.finish.inputs.every((i) => i.name.startsWith(TOTAL_PREFIX) && !i.value.type.shape.some((d) => typeof d !== 'number'))).toBe(true);
    // and the evaluation graph returns each of them
    for (const i of split!.finish.inputs) expect(split!.evaluation.outputs.get(i.name)).toBe(i.value);
  });

  it('in the float64 interpreter, the totals of 4 batches give what one batch of all the rows gives, and so do the means averaged by length', () => {
    const g = evaluationOf(CLASSIFIER);
    const totals = metricTotals(g).split!;
    const random = seededRandom(11);
    const N = 23;
    const feeds = randomFeeds(g, new Map([['B', N]]), random, { intRange: { label: 3 }, paramScale: 1 });
    const whole = interpretGraph(g, feeds).metrics;
    const wholeLoss = interpretGraph(g, feeds).losses.get('loss')!.data[0];
    let [loss, accuracy] = [0, 0];
    const finished = finishBatches(totals, feeds, [[0, 5], [5, 6], [6, 17], [17, 23]], (run, lo, hi) => {
      loss += (run.losses.get('loss')!.data[0] * (hi - lo)) / N;
      accuracy += (run.metrics.get('accuracy')!.data[0] * (hi - lo)) / N;
    });
    for (const name of ['f1_macro', 'precision1', 'recall2', 'worst']) expect(finished.get(name)!.data[0], name).toBeCloseTo(whole.get(name)!.data[0], 12);
    expect(accuracy).toBeCloseTo(whole.get('accuracy')!.data[0], 12);
    expect(loss).toBeCloseTo(wholeLoss, 12);
  });

  it('metrics with ignore_index over padded sequences are totals: exact over a data set whatever the batches', () => {
    const source = `use std.nn.{Embedding, GRU, Dense}
model Tagger {
  input tokens: i32[B, 5]
  input tags: i32[B, 5]
  layer emb = Embedding(6, 4, padding_idx: 0)
  layer rnn = GRU(4, 4, bidirectional: true)
  layer head = Dense(8, 3)
  let logits = head(rnn(emb(tokens)))
  loss = cross_entropy(logits, tags, ignore_index: -1)
  metric accuracy = accuracy(logits, tags, ignore_index: -1)
  metric top2 = top_k_accuracy(logits, tags, k: 2, ignore_index: -1)
  metric f1 = f1(logits, tags, average: "macro", ignore_index: -1)
}
`;
    const r = compileSource(source, 'tagger.dl', undefined, { keepGraphs: true });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    // a mean over the kept labels is a ratio of sums: averaging it over batches by their length would be wrong
    expect(Object.keys(r.programs[0].graphs.totals?.outputs ?? {}).sort()).toEqual(['accuracy', 'f1', 'loss', 'top2']);
    expect(r.programs[0].means ?? []).toEqual([]);
    const g = r.graphs![0].unoptimizedEvaluation!;
    const split = metricTotals(g).split;
    const random = seededRandom(3);
    const N = 9;
    const feeds = randomFeeds(g, new Map([['B', N]]), random, { intRange: { tokens: 6, tags: 3 }, paramScale: 1 });
    // padding: more ignored tags in later rows, none in row 0
    const tags = Array.from(feeds.inputs.get('tags')!.data).map((v, i) => (i % 5 >= 5 - Math.floor(i / 5) * 0.6 ? -1 : v));
    const inputs = new Map(feeds.inputs).set('tags', tensor('i32', [N, 5], tags));
    expect(tags.filter((v) => v === -1).length).toBeGreaterThan(10);
    const all = { ...feeds, inputs };
    const whole = interpretGraph(g, all);
    const finished = finishBatches(split!, all, [[0, 2], [2, 3], [3, 9]]);
    for (const name of ['accuracy', 'top2', 'f1']) expect(finished.get(name)!.data[0], name).toBeCloseTo(whole.metrics.get(name)!.data[0], 12);
    expect(finished.get('loss')!.data[0]).toBeCloseTo(whole.losses.get('loss')!.data[0], 12);
  });

  it('follows rows through padding and running sums along other axes (a causal convolution): means stay means, F1 a total; exact whatever the batches', () => {
    const source = `use std.nn.{Conv2d, Dense}
model Causal {
  input series: f32[B, 1, 1, 12]
  input label: i32[B]
  input target: f32[B]
  layer conv = Conv2d(1, 2, [1, 3])
  layer head = Dense(24, 2)
  // a left pad over time keeps the length; a running sum over time
  let h = cumsum(relu(conv(pad(series, [0, 0, 0, 2], [0, 0, 0, 0]))), axis: 3)
  let logits = head(reshape(h, [B, 24]))
  loss = cross_entropy(logits, label)
  metric mae = mae(logits[:, 0], target)
  metric f1 = f1(logits, label)
  // padding the batch axis adds rows: not row by row
  metric padded = mean(pad(target, [1], [0]))
}
`;
    const g = evaluationOf(source);
    const { means, split } = metricTotals(g);
    expect([...means].sort()).toEqual(['loss', 'mae']);
    expect([...split!.finish.metrics.keys()]).toEqual(['f1']);
    const random = seededRandom(5);
    const N = 13;
    const feeds = randomFeeds(g, new Map([['B', N]]), random, { intRange: { label: 2 }, paramScale: 1 });
    const whole = interpretGraph(g, feeds);
    const finished = finishBatches(split!, feeds, [[0, 4], [4, 5], [5, 13]]);
    expect(finished.get('f1')!.data[0]).toBeCloseTo(whole.metrics.get('f1')!.data[0], 12);
  });

  it('follows rows through embeddings, slices that keep every row, concats and zeros of the batch shape', () => {
    const g = evaluationOf(`use std.nn.{Embedding, Dense}
model Tokens {
  input tokens: i32[B, 6]
  input label: i32[B]
  layer emb = Embedding(10, 4)
  layer head = Dense(12, 2)
  let e = emb(tokens)
  let pooled = concat([mean(e, axis: 1), e[:, 0], zeros([B, 4])], axis: -1)
  let logits = head(pooled)
  loss = cross_entropy(logits, label)
  metric f1 = f1(logits, label)
  metric first = mean(e[0])
}
`);
    const { means, split } = metricTotals(g);
    // e[0] is one row of the batch: it stays averaged over batches
    expect([...split!.finish.metrics.keys()]).toEqual(['f1']);
    expect(means).toEqual(['loss']);
  });

  it('follows rows through attention over a run-time length L (batched q @ k^T, a causal mask over L, a mean over B * (L - 1)): totals, exact whatever the batches', () => {
    const g = evaluationOf(`use std.nn.{Embedding, TransformerBlock}
model Gpt {
  input tokens: i32[B, L]
  layer emb = Embedding(7, 4)
  layer block = TransformerBlock(4, 2, causal: true)
  let logits = block(emb(tokens[:, :-1])) @ transpose(emb.weight)
  loss = cross_entropy(logits, tokens[:, 1:])
  metric accuracy = accuracy(logits, tokens[:, 1:])
}
`);
    const { means, split } = metricTotals(g);
    // it was averaged over batches, with a note that the batch size changes the figures
    expect(means).toEqual([]);
    expect([...split!.finish.losses.keys(), ...split!.finish.metrics.keys()].sort()).toEqual(['accuracy', 'loss']);
    // the finishing graph binds no size: a mask over L stays in the evaluation graph
    expect(split!.finish.inputs.every((i) => i.value.type.shape.every((d) => typeof d === 'number'))).toBe(true);
    const random = seededRandom(5);
    const N = 7;
    const feeds = randomFeeds(g, new Map([['B', N], ['L', 5]]), random, { intRange: { tokens: 7 }, paramScale: 1 });
    const whole = interpretGraph(g, feeds);
    const finished = finishBatches(split!, feeds, [[0, 3], [3, 4], [4, 7]]);
    expect(finished.get('accuracy')!.data[0]).toBeCloseTo(whole.metrics.get('accuracy')!.data[0], 12);
    expect(finished.get('loss')!.data[0]).toBeCloseTo(whole.losses.get('loss')!.data[0], 12);
  });

  it('follows rows through convolutions, pooling and unrolled recurrences (found before the optimizer stacks their steps into one matmul)', () => {
    const models = {
      conv: `use std.nn.{Conv2d, MaxPool2d, Flatten, Dense}
model Conv {
  input image: f32[B, 1, 6, 6]
  input label: i32[B]
  layer conv = Conv2d(1, 2, 3, padding: 1)
  layer pool = MaxPool2d(2)
  layer head = Dense(18, 3)
  let logits = head(Flatten()(pool(relu(conv(image)))))
  loss = cross_entropy(logits, label)
  metric f1 = f1(logits, label, average: "macro")
}
`,
      gru: `use std.nn.{GRU, Dense}
model Seq {
  input x: f32[B, 4, 3]
  input label: i32[B]
  layer rnn = GRU(3, 5)
  layer head = Dense(5, 3)
  let logits = head(rnn(x)[:, -1])
  loss = cross_entropy(logits, label)
  metric f1 = f1(logits, label, average: "macro")
}
`,
    };
    for (const [name, source] of Object.entries(models)) {
      const r = compileSource(source, `${name}.dl`, undefined, { keepGraphs: true });
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      expect(Object.keys(r.programs[0].graphs.totals?.outputs ?? {}), name).toEqual(['f1']);
      expect(r.programs[0].means, name).toEqual(['loss']);
      // the totals of three batches finish to the F1 of all the rows
      const g = r.graphs![0].unoptimizedEvaluation!;
      const totals = metricTotals(g).split!;
      const N = 17;
      const feeds = randomFeeds(g, new Map([['B', N]]), seededRandom(5), { intRange: { label: 3 }, paramScale: 1 });
      const whole = interpretGraph(g, feeds).metrics.get('f1')!.data[0];
      const finished = finishBatches(totals, feeds, [[0, 6], [6, 7], [7, 17]]).get('f1')!.data[0];
      expect(finished, name).toBeCloseTo(whole, 12);
    }
  });

  it('the binary metrics of a one-logit model: precision, recall and F1 are totals, accuracy a mean; exact whatever the batches', () => {
    const g = evaluationOf(`use std.nn.{Dense}
model Sigmoid {
  input features: f32[B, 3]
  input label: f32[B]
  layer fc = Dense(3, 1)
  let z = fc(features)[:, 0]
  loss = binary_cross_entropy(z, label)
  metric acc = binary_accuracy(z, label)
  metric prec = binary_precision(z, label)
  metric rec = binary_recall(z, label, threshold: 0.4)
  metric f1s = binary_f1(z, label)
}
`);
    const { means, split } = metricTotals(g);
    expect([...split!.finish.metrics.keys()].sort()).toEqual(['f1s', 'prec', 'rec']);
    expect([...means].sort()).toEqual(['acc', 'loss']);
    const N = 21;
    const feeds = randomFeeds(g, new Map([['B', N]]), seededRandom(5), { paramScale: 1 });
    const label = feeds.inputs.get('label')!;
    const inputs = new Map(feeds.inputs).set('label', tensor('f32', [N], Array.from(label.data, (v) => (v > 0 ? 1 : 0))));
    const whole = interpretGraph(g, { ...feeds, inputs }).metrics;
    const finished = finishBatches(split!, { ...feeds, inputs }, [[0, 4], [4, 5], [5, 13], [13, 21]]);
    for (const name of ['prec', 'rec', 'f1s']) expect(finished.get(name)!.data[0], name).toBeCloseTo(whole.get(name)!.data[0], 12);
    expect(whole.get('f1s')!.data[0]).toBeGreaterThan(0);
  });

  it("a training epoch's precision, recall and F1 are the epoch's, from its summed totals: with lr 0 they equal the training set's; the batch average does not", { timeout: 120_000 }, async () => {
    const source = `${CLASSIFIER}
train Classifier {
  optimizer = sgd(lr: 0.0)
  batch = 4
  epochs = 1
}
`;
    const r = compileSource(source, 'metrics.dl');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const program = r.programs[0];
    expect(Object.keys(program.graphs.stepTotals ?? {})).toEqual([program.graphs.steps[0].name]);
    const model = await Model.create(program, { device: await getDevice(), seed: 5 });
    try {
      const random = seededRandom(8);
      const N = 30;
      const train = new Dataset({
        features: { data: Float32Array.from({ length: N * 4 }, () => random() * 4 - 2), shape: [4] },
        label: { data: Int32Array.from({ length: N }, () => Math.floor(random() * 3)), shape: [] },
      });
      const batchValues: Record<string, number>[] = [];
      const history = await fit(model, { train }, { epochs: 1, batchSize: 4, seed: 1, callbacks: { onStep: (info) => void batchValues.push({ ...info.values }) } });
      const epoch = history.epochs[0];
      const set = await evaluateDataset(model, train, 30);
      for (const name of ['f1_macro', 'precision1', 'recall2', 'loss', 'accuracy']) expect(epoch[name], name).toBeCloseTo(set[name] as number, 5);
      // the mean of the batches' F1 (what the epoch reported before) is another number
      const averaged = batchValues.reduce((a, v) => a + v.f1_macro, 0) / batchValues.length;
      expect(Math.abs(averaged - (set.f1_macro as number))).toBeGreaterThan(0.01);
    } finally {
      model.dispose();
    }
  });

  it('leaves a model without such quantities alone', () => {
    const g = evaluationOf(`model M {
  input x: f32[B, 3]
  output y = x * 2.0
  // each example against the batch's mean: not a function of sums over the batch
  metric spread = mean(abs(x - mean(x, axis: 0)))
}
`);
    expect(metricTotals(g)).toEqual({ means: [] });
  });

  it('on WebGPU, evaluateSet gives the same precision, recall and F1 for batches of 2, 5 and all 30 rows; averaging batches does not', async () => {
    const r = compileSource(CLASSIFIER, 'metrics.dl');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const program = r.programs[0];
    expect(program.graphs.totals).toBeDefined();
    // what dlc evaluate notes as averaged over batches
    expect(batchAveraged(program)).toEqual(['scaled', 'spread']);
    const model = await Model.create(program, { device: await getDevice(), seed: 5 });
    const random = seededRandom(3);
    const N = 30;
    const features = Float32Array.from({ length: N * 4 }, () => random() * 4 - 2);
    const label = Int32Array.from({ length: N }, () => Math.floor(random() * 3));
    const cut = (size: number) => Array.from({ length: Math.ceil(N / size) }, (_, i) => ({ features: features.slice(i * size * 4, Math.min(N, (i + 1) * size) * 4), label: label.slice(i * size, Math.min(N, (i + 1) * size)) }));
    const all = await model.evaluateSet(cut(N));
    const one = (await model.evaluateBatches(cut(N)))[0];
    for (const name of ['loss', 'accuracy', 'f1_macro', 'precision1', 'recall2', 'worst']) expect(all[name], name).toBeCloseTo(one[name], 5);
    for (const size of [2, 5]) {
      const set = await model.evaluateSet(cut(size));
      for (const name of ['loss', 'accuracy', 'f1_macro', 'precision1', 'recall2', 'worst']) expect(set[name], `${name} in batches of ${size}`).toBeCloseTo(all[name] as number, 5);
      // the batch-averaged F1 of small batches is another number
      const averaged = (await model.evaluateBatches(cut(size))).reduce((a, rec) => a + rec.f1_macro, 0) / Math.ceil(N / size);
      expect(Math.abs(averaged - (all.f1_macro as number))).toBeGreaterThan(0.01);
    }
    expect(Object.keys(all).some((k) => k.startsWith('#'))).toBe(false);
    model.dispose();
  });
});
