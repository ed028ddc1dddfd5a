// std.metrics.auc: Keras' thresholded ROC and PR areas, in the float64 interpreter against the formula of tf.keras.metrics.AUC and the exact area from sorted scores, totalled over batches, on WebGPU against the interpreter, and its diagnostics.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { metricTotals } from '../compiler/train/metric-totals.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

const SCORES = `use std.metrics.{auc}

model Scores {
  input z: f32[B]
  input label: f32[B]
  input logits: f32[B, 3]
  input cls: i32[B]
  metric roc = auc(z, label)
  metric pr = auc(z, label, curve: "pr")
  metric roc_few = auc(z, label, thresholds: 7)
  metric pr_few = auc(z, label, curve: "pr", thresholds: 7)
  metric class2 = auc(logits, cls, positive: 2)
  metric class0_pr = auc(logits, cls, positive: 0, curve: "pr", thresholds: 50)
}
`;

type Curve = 'roc' | 'pr';

/** True and false positives at each threshold (positive where the score is above it), in float64. */
function counts(scores: readonly number[], positive: readonly boolean[], cuts: readonly number[]) {
  const tp = cuts.map((t) => scores.filter((s, i) => s > t && positive[i]).length);
  const fp = cuts.map((t) => scores.filter((s, i) => s > t && !positive[i]).length);
  return { tp, fp, positives: positive.filter(Boolean).length, negatives: positive.filter((p) => !p).length };
}

const divideNoNan = (a: number, b: number) => (b === 0 ? 0 : a / b);

/** Keras' AUC.result (summation_method 'interpolation') from counts at ascending thresholds. */
function area(c: ReturnType<typeof counts>, curve: Curve): number {
  const { tp, fp, positives, negatives } = c;
  let sum = 0;
  for (let i = 0; i + 1 < tp.length; i++) {
    if (curve === 'roc') {
      const [x0, x1] = [divideNoNan(fp[i], negatives), divideNoNan(fp[i + 1], negatives)];
      const [y0, y1] = [divideNoNan(tp[i], positives), divideNoNan(tp[i + 1], positives)];
      sum += (x0 - x1) * ((y0 + y1) / 2);
    } else {
      // interpolate_pr_auc
      const [p0, p1] = [tp[i] + fp[i], tp[i + 1] + fp[i + 1]];
      const dtp = tp[i] - tp[i + 1];
      const slope = divideNoNan(dtp, Math.max(p0 - p1, 0));
      const intercept = tp[i + 1] - slope * p1;
      const ratio = p0 > 0 && p1 > 0 ? divideNoNan(p0, Math.max(p1, 0)) : 1;
      sum += divideNoNan(slope * (dtp + intercept * Math.log(ratio)), Math.max(positives, 0));
    }
  }
  return sum;
}

/** tf.keras.metrics.AUC(num_thresholds: n, curve) on probabilities and 0/1 labels. */
function kerasAuc(scores: readonly number[], positive: readonly boolean[], curve: Curve, n: number): number {
  const cuts = [-1e-7, ...Array.from({ length: n - 2 }, (_, i) => (i + 1) / (n - 1)), 1 + 1e-7];
  return area(counts(scores, positive, cuts), curve);
}

/**
 * The exact area, from the scores sorted: the same curve through every operating point (a threshold
 * below each distinct score). For ROC that is the Mann-Whitney statistic, checked here too.
 */
function exactAuc(scores: readonly number[], positive: readonly boolean[], curve: Curve): number {
  const distinct = [...new Set(scores)].sort((a, b) => a - b);
  const cuts = [-Infinity, ...distinct];
  return area(counts(scores, positive, cuts), curve);
}

function mannWhitney(scores: readonly number[], positive: readonly boolean[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((s, i) => {
    if (!positive[i]) return;
    scores.forEach((t, j) => {
      if (positive[j]) return;
      pairs++;
      wins += s > t ? 1 : s === t ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Scores that rank positives somewhat higher: z ~ N(1.2 label, 1.5), three-class logits the same way for class `cls`. */
function data(n: number, seed: number) {
  const random = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const label = Array.from({ length: n }, () => (random() < 0.4 ? 1 : 0));
  const z = label.map((y) => 1.2 * y + 1.5 * normal());
  const cls = Array.from({ length: n }, () => Math.floor(random() * 3));
  const logits = cls.flatMap((c) => [0, 1, 2].map((k) => (k === c ? 1 : 0) + normal()));
  return { z, label, cls, logits };
}

function feedsOf(d: ReturnType<typeof data>, lo = 0, hi = d.z.length) {
  const n = hi - lo;
  return new Map<string, Tensor>([
    ['z', tensor('f32', [n], d.z.slice(lo, hi))],
    ['label', tensor('f32', [n], d.label.slice(lo, hi))],
    ['logits', tensor('f32', [n, 3], d.logits.slice(lo * 3, hi * 3))],
    ['cls', tensor('i32', [n], d.cls.slice(lo, hi))],
  ]);
}

function classProbability(logits: readonly number[], k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < logits.length; i += 3) {
    const row = logits.slice(i, i + 3);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    out.push(e[k] / (e[0] + e[1] + e[2]));
  }
  return out;
}

/** What each metric of SCORES is, by Keras' formula. */
function expected(d: ReturnType<typeof data>): Record<string, number> {
  const p = d.z.map(sigmoid);
  const y = d.label.map((v) => v > 0.5);
  return {
    roc: kerasAuc(p, y, 'roc', 200),
    pr: kerasAuc(p, y, 'pr', 200),
    roc_few: kerasAuc(p, y, 'roc', 7),
    pr_few: kerasAuc(p, y, 'pr', 7),
    class2: kerasAuc(classProbability(d.logits, 2), d.cls.map((c) => c === 2), 'roc', 200),
    class0_pr: kerasAuc(classProbability(d.logits, 0), d.cls.map((c) => c === 0), 'pr', 50),
  };
}

function evaluationOf(source: string): Graph {
  const r = compileSource(source, 'scores.dl', undefined, { keepGraphs: true });
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.graphs![0].unoptimizedEvaluation!;
}

describe('auc', () => {
  it("the reference areas: thresholds at every score give the Mann-Whitney ROC AUC, and Keras' 200 thresholds come within 0.01 of the exact areas", () => {
    const d = data(400, 1);
    const p = d.z.map(sigmoid);
    const y = d.label.map((v) => v > 0.5);
    expect(exactAuc(p, y, 'roc')).toBeCloseTo(mannWhitney(p, y), 12);
    for (const curve of ['roc', 'pr'] as const) {
      const exact = exactAuc(p, y, curve);
      expect(exact, curve).toBeGreaterThan(0.55);
      expect(Math.abs(kerasAuc(p, y, curve, 200) - exact), curve).toBeLessThan(0.01);
      // and 7 thresholds are too few to come that close: the tests below would tell them apart
      expect(Math.abs(kerasAuc(p, y, curve, 7) - exact), curve).toBeGreaterThan(0.002);
    }
  });

  it("in the float64 interpreter, one batch gives Keras' AUC exactly, and the exact area within the thresholds' error", () => {
    const g = evaluationOf(SCORES);
    const d = data(300, 2);
    const metrics = interpretGraph(g, { inputs: feedsOf(d), params: new Map(), state: new Map() }).metrics;
    const want = expected(d);
    for (const [name, value] of Object.entries(want)) expect(metrics.get(name)!.data[0], name).toBeCloseTo(value, 12);
    const y = d.label.map((v) => v > 0.5);
    expect(Math.abs(metrics.get('roc')!.data[0] - exactAuc(d.z.map(sigmoid), y, 'roc'))).toBeLessThan(0.01);
    expect(Math.abs(metrics.get('pr')!.data[0] - exactAuc(d.z.map(sigmoid), y, 'pr'))).toBeLessThan(0.01);
  });

  it('is a function of sums over the batch: totals of uneven batches give the area of the whole set', () => {
    const g = evaluationOf(SCORES);
    const { means, split } = metricTotals(g);
    expect(means).toEqual([]);
    expect([...split!.finish.metrics.keys()].sort()).toEqual(['class0_pr', 'class2', 'pr', 'pr_few', 'roc', 'roc_few']);
    const d = data(90, 3);
    const sums = new Map<string, number[]>();
    for (const [lo, hi] of [[0, 1], [1, 30], [30, 31], [31, 90]]) {
      const run = interpretGraph(split!.evaluation, { inputs: feedsOf(d, lo, hi), params: new Map(), state: new Map() });
      for (const i of split!.finish.inputs) {
        const t = run.outputs.get(i.name)!;
        const sum = sums.get(i.name) ?? sums.set(i.name, new Array(t.data.length).fill(0)).get(i.name)!;
        t.data.forEach((x, k) => (sum[k] += x));
      }
    }
    const finished = interpretGraph(split!.finish, {
      inputs: new Map(split!.finish.inputs.map((i) => [i.name, tensor('f32', i.value.type.shape as number[], sums.get(i.name)!)])),
      params: new Map(),
      state: new Map(),
    }).metrics;
    for (const [name, value] of Object.entries(expected(d))) expect(finished.get(name)!.data[0], name).toBeCloseTo(value, 12);
  });

  it('on WebGPU, evaluateSet gives the interpreter\'s areas whatever the batch size', async () => {
    const r = compileSource(SCORES, 'scores.dl');
    expect(r.diagnostics.filter((x) => x.severity === 'error')).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const d = data(120, 4);
      const want = expected(d);
      const cut = (size: number) =>
        Array.from({ length: Math.ceil(d.z.length / size) }, (_, i) => {
          const [lo, hi] = [i * size, Math.min(d.z.length, (i + 1) * size)];
          return {
            z: Float32Array.from(d.z.slice(lo, hi)),
            label: Float32Array.from(d.label.slice(lo, hi)),
            logits: Float32Array.from(d.logits.slice(lo * 3, hi * 3)),
            cls: Int32Array.from(d.cls.slice(lo, hi)),
          };
        });
      for (const size of [7, 120]) {
        const set = await model.evaluateSet(cut(size));
        for (const [name, value] of Object.entries(want)) expect(set[name], `${name} in batches of ${size}`).toBeCloseTo(value, 5);
      }
    } finally {
      model.dispose();
    }
  });

  it('misuse is a diagnostic with a code and the call\'s span', () => {
    const cases: [string, string, RegExp][] = [
      ['auc(z, label, curve: "ROC")', 'E0304', /curve is "roc" \(the ROC curve\) or "pr" \(precision-recall\)/],
      ['auc(z, label, thresholds: 1)', 'E0304', /thresholds: 2 or more/],
      ['auc(z, label, thresholds: 10001)', 'E0304', /at most 10,000 thresholds/],
      ['auc(logits, cls)', 'E0304', /one logit per label/],
      ['auc(logits, cls, positive: 3)', 'E0304', /positive < C/],
      ['auc(logits, label, positive: 1)', 'E0302', /i32/],
      ['auc(logits, cls[:, None], positive: 1)', 'E0304', /logits \[\.\.\., C\] and integer labels/],
    ];
    for (const [call, code, message] of cases) {
      const source = `model M {
  input z: f32[B]
  input label: f32[B]
  input logits: f32[B, 3]
  input cls: i32[B]
  metric m = ${call}
}
`;
      const errors = compileSource(source, 'm.dl').diagnostics.filter((x) => x.severity === 'error');
      expect(errors.map((e) => e.code), call).toEqual([code]);
      expect(`${errors[0].message} ${errors[0].help ?? ""}`, call).toMatch(message);
      // the span is on the user's line, the metric's call
      expect(errors[0].span.file, call).toBe('m.dl');
      expect(source.slice(errors[0].span.start, errors[0].span.end), call).toContain('auc(');
    }
  });
});
