// Table metrics (std.metrics.confusion_matrix, f32[C, C]): counts against a reference in the float64 interpreter, totalled over batches, on WebGPU against the interpreter through evaluateSet and fit, the typed misuse diagnostics, the table printout and dlc train / dlc evaluate printing it.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { metricTotals } from '../compiler/train/metric-totals.ts';
import { EXIT_OK } from '../compiler/cli/main.ts';
import { Dataset } from '../runtime/data.ts';
import { evaluateDataset, fit } from '../runtime/fit.ts';
import { formatMetricTable, nestedArray } from '../runtime/metric-tables.ts';
import { Model } from '../runtime/model.ts';
import { dlc, repoTempDir } from './cli-helpers.ts';
import { getDevice } from './gpu-helpers.ts';

// the logits are an input, so the interpreter and the GPU see the same ones
const SCORES = `model Scores {
  input logits: f32[B, 3]
  input label: i32[B]
  input tag_logits: f32[B, 4, 3]
  input tags: i32[B, 4]
  let counts = confusion_matrix(logits, label)
  metric confusion = counts
  // a table computed from the totals: each class's recall, f32[3]
  metric recall_per_class = sum(counts * one_hot(arange(3), depth: 3), axis: 1) / maximum(sum(counts, axis: 1), 1.0)
  metric tag_confusion = confusion_matrix(tag_logits, tags, ignore_index: -1)
  // one logit per example: is it class 1?
  metric binary = binary_confusion_matrix(logits[:, 1], cast(label == 1, f32))
  metric accuracy = accuracy(logits, label)
  // ignore_index labels (-1) pass the runtime's index check: they index no class
  metric tag_f1 = f1(tag_logits, tags, average: "macro", ignore_index: -1)
}
`;

/** Counts by true class (row) and argmax class (column), of rows of `classes` logits, skipping `ignore` labels. */
function reference(logits: readonly number[], labels: readonly number[], classes: number, ignore?: number): number[][] {
  const out = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  labels.forEach((y, i) => {
    if (y === ignore) return;
    const row = logits.slice(i * classes, (i + 1) * classes);
    out[y][row.indexOf(Math.max(...row))]++;
  });
  return out;
}

function data(n: number, seed: number) {
  const random = seededRandom(seed);
  const label = Array.from({ length: n }, () => Math.floor(random() * 3));
  // logits that favour the label, so the matrix is not uniform
  const logits = label.flatMap((y) => [0, 1, 2].map((k) => (k === y ? 0.8 : 0) + random() * 2 - 1));
  const tags = Array.from({ length: n * 4 }, (_, i) => (i % 4 === 3 && i % 3 === 0 ? -1 : Math.floor(random() * 3)));
  const tagLogits = Array.from({ length: n * 4 * 3 }, () => random() * 2 - 1);
  return { logits, label, tags, tagLogits };
}

function feedsOf(d: ReturnType<typeof data>, lo = 0, hi = d.label.length): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['logits', tensor('f32', [hi - lo, 3], d.logits.slice(lo * 3, hi * 3))],
    ['label', tensor('i32', [hi - lo], d.label.slice(lo, hi))],
    ['tag_logits', tensor('f32', [hi - lo, 4, 3], d.tagLogits.slice(lo * 12, hi * 12))],
    ['tags', tensor('i32', [hi - lo, 4], d.tags.slice(lo * 4, hi * 4))],
  ]);
}

function expected(d: ReturnType<typeof data>) {
  const confusion = reference(d.logits, d.label, 3);
  return {
    confusion,
    recall_per_class: confusion.map((row, k) => row[k] / Math.max(row.reduce((a, b) => a + b, 0), 1)),
    tag_confusion: reference(d.tagLogits, d.tags, 3, -1),
    // rows: label 1 or not; columns: logit above 0 (sigmoid above 0.5) or not
    binary: [0, 1].map((positive) => [0, 1].map((predicted) => d.label.filter((y, i) => Number(y === 1) === positive && Number(d.logits[i * 3 + 1] > 0) === predicted).length)),
  };
}

function evaluationOf(source: string): Graph {
  const r = compileSource(source, 'scores.dl', undefined, { keepGraphs: true });
  expect(r.diagnostics.filter((x) => x.severity === 'error')).toEqual([]);
  return r.graphs![0].unoptimizedEvaluation!;
}

const noWeights = { params: new Map(), state: new Map() };

describe('confusion_matrix', () => {
  it('counts examples by true class (rows) and predicted class (columns) in the float64 interpreter; ignore_index leaves labels out', () => {
    const d = data(40, 1);
    const metrics = interpretGraph(evaluationOf(SCORES), { inputs: feedsOf(d), ...noWeights }).metrics;
    const want = expected(d);
    expect(d.tags.filter((t) => t === -1).length).toBeGreaterThan(5);
    expect(nestedArray(metrics.get('confusion')!.data, [3, 3])).toEqual(want.confusion);
    expect(nestedArray(metrics.get('tag_confusion')!.data, [3, 3])).toEqual(want.tag_confusion);
    expect(nestedArray(metrics.get('binary')!.data, [2, 2])).toEqual(want.binary);
    expect(want.binary.flat().every((n) => n > 0)).toBe(true);
    const recall = Array.from(metrics.get('recall_per_class')!.data);
    recall.forEach((r, k) => expect(r).toBeCloseTo(want.recall_per_class[k], 12));
    // the diagonal over the total is the accuracy
    const diagonal = want.confusion.reduce((a, row, k) => a + row[k], 0);
    expect(metrics.get('accuracy')!.data[0]).toBeCloseTo(diagonal / 40, 12);
  });

  it('is a sum over the batch: the totals of uneven batches finish to the tables of the whole set', () => {
    const g = evaluationOf(SCORES);
    const { split } = metricTotals(g);
    expect([...split!.finish.metrics.keys()].sort()).toEqual(['binary', 'confusion', 'recall_per_class', 'tag_confusion', 'tag_f1']);
    const d = data(50, 2);
    const sums = new Map<string, number[]>();
    for (const [lo, hi] of [[0, 1], [1, 20], [20, 50]]) {
      const run = interpretGraph(split!.evaluation, { inputs: feedsOf(d, lo, hi), ...noWeights });
      for (const i of split!.finish.inputs) {
        const t = run.outputs.get(i.name)!;
        const sum = sums.get(i.name) ?? sums.set(i.name, new Array(t.data.length).fill(0)).get(i.name)!;
        t.data.forEach((x, k) => (sum[k] += x));
      }
    }
    const inputs = new Map(split!.finish.inputs.map((i) => [i.name, tensor('f32', i.value.type.shape as number[], sums.get(i.name)!)]));
    const finished = interpretGraph(split!.finish, { inputs, ...noWeights }).metrics;
    const want = expected(d);
    expect(nestedArray(finished.get('confusion')!.data, [3, 3])).toEqual(want.confusion);
    expect(nestedArray(finished.get('tag_confusion')!.data, [3, 3])).toEqual(want.tag_confusion);
    expect(nestedArray(finished.get('binary')!.data, [2, 2])).toEqual(want.binary);
  });

  it("on WebGPU, evaluateSet returns the interpreter's tables as nested arrays whatever the batch size; evaluate reports numbers only", async () => {
    const r = compileSource(SCORES, 'scores.dl');
    expect(r.diagnostics.filter((x) => x.severity === 'error')).toEqual([]);
    const program = r.programs[0];
    expect(program.tables).toEqual({ confusion: [3, 3], recall_per_class: [3], tag_confusion: [3, 3], binary: [2, 2] });
    const model = await Model.create(program, { device: await getDevice() });
    try {
      const d = data(45, 3);
      const interpreted = interpretGraph(evaluationOf(SCORES), { inputs: feedsOf(d), ...noWeights }).metrics;
      const want = expected(d);
      const cut = (size: number) =>
        Array.from({ length: Math.ceil(45 / size) }, (_, i) => {
          const [lo, hi] = [i * size, Math.min(45, (i + 1) * size)];
          return { logits: Float32Array.from(d.logits.slice(lo * 3, hi * 3)), label: Int32Array.from(d.label.slice(lo, hi)), tag_logits: Float32Array.from(d.tagLogits.slice(lo * 12, hi * 12)), tags: Int32Array.from(d.tags.slice(lo * 4, hi * 4)) };
        });
      for (const size of [4, 45]) {
        const set = await model.evaluateSet(cut(size));
        expect(set.confusion, `batches of ${size}`).toEqual(nestedArray(interpreted.get('confusion')!.data, [3, 3]));
        expect(set.confusion).toEqual(want.confusion);
        expect(set.tag_confusion).toEqual(want.tag_confusion);
        expect(set.binary).toEqual(want.binary);
        (set.recall_per_class as number[]).forEach((v, k) => expect(v).toBeCloseTo(want.recall_per_class[k], 6));
        expect(set.accuracy).toBeCloseTo(interpreted.get('accuracy')!.data[0], 6);
        expect(set.tag_f1).toBeCloseTo(interpreted.get('tag_f1')!.data[0], 6);
      }
      const one = await model.evaluate(cut(45)[0]);
      expect(Object.keys(one).sort()).toEqual(['accuracy', 'tag_f1']);
    } finally {
      model.dispose();
    }
  });

  it("a model trains with one: fit's epoch logs hold the numbers, onEpochEnd gets the validation matrix, evaluateDataset the set's, whose diagonal is the accuracy", { timeout: 120_000 }, async () => {
    const source = `use std.nn.{Dense}
model Classifier {
  input features: f32[B, 4]
  input label: i32[B]
  layer fc = Dense(4, 3)
  let logits = fc(features)
  loss = cross_entropy(logits, label)
  metric accuracy = accuracy(logits, label)
  metric confusion = confusion_matrix(logits, label)
}
train Classifier {
  optimizer = sgd(lr: 0.1)
}
`;
    const r = compileSource(source, 'classifier.dl');
    expect(r.diagnostics.filter((x) => x.severity === 'error')).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 2 });
    try {
      const random = seededRandom(4);
      const N = 36;
      const label = Int32Array.from({ length: N }, () => Math.floor(random() * 3));
      const features = Float32Array.from({ length: N * 4 }, (_, i) => (i % 4 === label[Math.floor(i / 4)] ? 2 : 0) + random() - 0.5);
      const set = new Dataset({ features: { data: features, shape: [4] }, label: { data: label, shape: [] } });
      const steps: Record<string, number>[] = [];
      const tables: (Readonly<Record<string, unknown>> | undefined)[] = [];
      const history = await fit(model, { train: set, validation: set }, { epochs: 2, batchSize: 8, validateEvery: 2, callbacks: { onStep: (s) => void (s.values && steps.push({ ...s.values })), onEpochEnd: (_, state) => void tables.push(state.tables) } });
      expect(Object.keys(history.epochs[0]).sort()).toEqual(['accuracy', 'epoch', 'loss']);
      expect(Object.keys(history.epochs[1]).sort()).toEqual(['accuracy', 'epoch', 'loss', 'val_accuracy', 'val_loss']);
      // the validation set's matrix reaches onEpochEnd on the epoch that validated, and is the set's
      expect(tables[0]).toBeUndefined();
      const validated = tables[1]!.val_confusion as number[][];
      expect(validated.flat().reduce((a, b) => a + b, 0)).toBe(N);
      expect(validated.reduce((a, row, k) => a + row[k], 0) / N).toBeCloseTo(history.epochs[1].val_accuracy, 6);
      expect(steps.every((v) => !('confusion' in v))).toBe(true);
      const result = await evaluateDataset(model, set, 5);
      const confusion = result.confusion as number[][];
      expect(confusion.flat().reduce((a, b) => a + b, 0)).toBe(N);
      confusion.forEach((row, k) => expect(row.reduce((a, b) => a + b, 0)).toBe(label.filter((y) => y === k).length));
      expect(confusion.reduce((a, row, k) => a + row[k], 0) / N).toBeCloseTo(result.accuracy as number, 6);
    } finally {
      model.dispose();
    }
  });

  it('misuse is a diagnostic with a code at the metric', () => {
    const cases: [string, string, RegExp][] = [
      ['metric m = confusion_matrix(z, label)', 'E0304', /logits \[\.\.\., C\] and integer labels/],
      ['metric m = confusion_matrix(logits, z)', 'E0302', /i32/],
      ['metric m = confusion_matrix(logits, label[:, None])', 'E0304', /integer labels \[\.\.\.\]/],
      // a table that is not a sum over the examples: it has no value over a set
      ['metric m = logits[0]', 'E0302', /the metric `m` is a table \(f32\[3\]\), but not a sum over the examples/],
      // a table whose shape is known only when running
      ['metric m = one_hot(label, depth: 3)', 'E0302', /fixed shape/],
    ];
    for (const [line, code, message] of cases) {
      const source = `model M {\n  input z: f32[B]\n  input logits: f32[B, 3]\n  input label: i32[B]\n  ${line}\n}\n`;
      const errors = compileSource(source, 'm.dl').diagnostics.filter((x) => x.severity === 'error');
      expect(errors.map((e) => e.code), line).toEqual([code]);
      expect(`${errors[0].message} ${errors[0].help ?? ''}`, line).toMatch(message);
      expect(errors[0].span.file, line).toBe('m.dl');
      expect(source.slice(errors[0].span.start, errors[0].span.end).length, line).toBeGreaterThan(0);
    }
    const monitored = `model M {\n  input x: f32[B, 3]\n  input label: i32[B]\n  layer fc = Dense(3, 3)\n  loss = cross_entropy(fc(x), label)\n  metric confusion = confusion_matrix(fc(x), label)\n}\ntrain M {\n  optimizer = sgd(lr: 0.1)\n  early_stopping {\n    monitor = "val_confusion"\n  }\n}\n`;
    const errors = compileSource(monitored, 'm.dl').diagnostics.filter((x) => x.severity === 'error');
    expect(errors.map((e) => `${e.code} ${e.message}`)).toEqual(['E0206 `confusion` is a table metric (a matrix of counts), not a number early stopping can watch']);
  });

  it('prints as a grid under its name: labelled rows and columns, counts as whole numbers, a vector as one row', () => {
    expect(formatMetricTable('confusion', [[12, 0, 1], [0, 9, 3], [2, 0, 14]], ['setosa', 'versicolor', 'virginica'])).toBe(
      ['confusion', '              setosa  versicolor  virginica', '  setosa          12           0          1', '  versicolor       0           9          3', '  virginica        2           0         14'].join('\n'),
    );
    expect(formatMetricTable('m', [[1, 2], [3, 40]])).toBe(['m', '     0   1', '  0  1   2', '  1  3  40'].join('\n'));
    expect(formatMetricTable('recall', [0.5, 1, 0.25])).toBe(['recall', '       0  1       2', '  0.5000  1  0.2500'].join('\n'));
  });

  it('dlc train prints the test set\'s matrix at the end, and dlc evaluate the split\'s, rows and columns named by the classes', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('confusion');
    const file = join(dir, 'iris.dl');
    writeFileSync(
      file,
      'use std.nn.{Dense}\n\nmodel Iris {\n  input features: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  let logits = fc(features)\n  loss = cross_entropy(logits, label)\n  metric accuracy = accuracy(logits, label)\n  metric confusion = confusion_matrix(logits, label)\n}\n\ntrain Iris {\n  data = iris()\n  optimizer = adam(lr: 0.05)\n  epochs = 2\n  batch = 16\n}\n',
    );
    const checkpoint = join(dir, 'iris.safetensors');
    const trained = await dlc('train', file, '--no-progress', '--checkpoint', checkpoint);
    expect(trained.status, trained.err).toBe(EXIT_OK);
    const matrixOf = (out: string, title: string) => {
      const lines = out.split('\n');
      const at = lines.findIndex((l) => l.startsWith(`${title}  `));
      expect(lines[at + 1]).toBe('confusion');
      expect(lines[at + 2].trim().split(/\s+/)).toEqual(['setosa', 'versicolor', 'virginica']);
      const rows = lines.slice(at + 3, at + 6).map((l) => l.trim().split(/\s+/));
      expect(rows.map((r) => r[0])).toEqual(['setosa', 'versicolor', 'virginica']);
      return { rows: rows.map((r) => r.slice(1).map(Number)), accuracy: Number(/accuracy (\S+)/.exec(lines[at])![1]) };
    };
    // iris: 15 test examples
    const test = matrixOf(trained.out, 'test');
    expect(test.rows.flat().reduce((a, b) => a + b, 0)).toBe(15);
    expect(test.rows.reduce((a, row, k) => a + row[k], 0) / 15).toBeCloseTo(test.accuracy, 4);
    const evaluated = await dlc('evaluate', file, '--checkpoint', checkpoint);
    expect(evaluated.status, evaluated.err).toBe(EXIT_OK);
    expect(matrixOf(evaluated.out, 'test')).toEqual(test);
  });
});
