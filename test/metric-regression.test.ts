// std.metrics' regression metrics (mae, rmse, mape, r2, max_error): exact over a data set cut into uneven batches, against float64 values by hand, in the interpreter and on WebGPU; r2 from its sums and max_error from the batches' maxima.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import { MAX_TOTAL_PREFIX, metricTotals } from '../compiler/train/metric-totals.ts';
import { addTotals, batchAveraged } from '../runtime/fit.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

// the predictions are an input, so the values by hand, the interpreter and the GPU see the same ones
const FORECAST = `model Forecast {
  input pred: f32[B]
  input y: f32[B]
  input pred2: f32[B, 3]
  input y2: f32[B, 3]
  output p = pred * 1.0
  loss = mse(pred, y)
  metric mae = mae(pred, y)
  metric rmse = rmse(pred, y)
  metric mape = mape(pred, y)
  metric r2 = r2(pred, y)
  metric max_error = max_error(pred, y)
  // a multi-step forecast [B, H]: pooled over every element
  metric r2_steps = r2(pred2, y2)
  metric max_error_steps = max_error(pred2, y2)
}
`;

/** The metrics in float64 over every value of `pred` against `y`. */
function byHand(pred: readonly number[], y: readonly number[]): Record<string, number> {
  const n = y.length;
  const e = y.map((v, i) => v - pred[i]);
  const mean = y.reduce((a, b) => a + b, 0) / n;
  const sse = e.reduce((a, b) => a + b * b, 0);
  const sst = y.reduce((a, b) => a + (b - mean) ** 2, 0);
  return {
    mae: e.reduce((a, b) => a + Math.abs(b), 0) / n,
    rmse: Math.sqrt(sse / n),
    mape: (100 * e.reduce((a, b, i) => a + Math.abs(b) / Math.max(Math.abs(y[i]), 1e-7), 0)) / n,
    r2: 1 - sse / sst,
    max_error: Math.max(...e.map(Math.abs)),
  };
}

const N = 23;
const random = seededRandom(7);
// a level well away from 0 (as a series in its units), the predictions off by a little; one large miss in the last rows
const Y = Array.from({ length: N }, (_, i) => 50 + 10 * Math.sin(i / 3) + random());
const PRED = Y.map((v, i) => v + (random() - 0.5) * 3 + (i === 21 ? 9 : 0));
const Y2 = Array.from({ length: N * 3 }, (_, i) => 20 + Math.cos(i / 5) * 4 + random());
const PRED2 = Y2.map((v, i) => v + (random() - 0.5) * 2 - (i === 4 ? 6 : 0));
const f32 = (xs: readonly number[]) => Array.from(Float32Array.from(xs));
/** Uneven batches: the last one short, one of a single row. */
const RANGES: readonly (readonly [number, number])[] = [[0, 7], [7, 8], [8, 15], [15, 22], [22, 23]];

describe('regression metrics over a data set', () => {
  const expected = { ...byHand(f32(PRED), f32(Y)), ...Object.fromEntries(Object.entries(byHand(f32(PRED2), f32(Y2))).map(([k, v]) => [`${k}_steps`, v])) };

  it('are means or functions of totals (max_error combined by max), none averaged over batches', () => {
    const r = compileSource(FORECAST, 'forecast.dl', undefined, { keepGraphs: true });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const { means, split } = metricTotals(r.graphs![0].evaluation);
    expect([...means].sort()).toEqual(['loss', 'mae', 'mape']);
    expect([...split!.finish.metrics.keys()].sort()).toEqual(['max_error', 'max_error_steps', 'r2', 'r2_steps', 'rmse']);
    expect(split!.finish.inputs.filter((i) => i.name.startsWith(MAX_TOTAL_PREFIX))).toHaveLength(2);
    expect(batchAveraged(r.programs[0])).toEqual([]);
  });

  it('in the float64 interpreter, totals of uneven batches give the values by hand', () => {
    const r = compileSource(FORECAST, 'forecast.dl', undefined, { keepGraphs: true });
    const { split } = metricTotals(r.graphs![0].evaluation);
    const sums = new Map<string, Float64Array>();
    let [mae, mape] = [0, 0];
    for (const [lo, hi] of RANGES) {
      const inputs = new Map([
        ['pred', tensor('f32', [hi - lo], f32(PRED.slice(lo, hi)))],
        ['y', tensor('f32', [hi - lo], f32(Y.slice(lo, hi)))],
        ['pred2', tensor('f32', [hi - lo, 3], f32(PRED2.slice(lo * 3, hi * 3)))],
        ['y2', tensor('f32', [hi - lo, 3], f32(Y2.slice(lo * 3, hi * 3)))],
      ]);
      const run = interpretGraph(split!.evaluation, { inputs, params: new Map(), state: new Map() });
      // the runtime's own combination: sums added, maxima by max
      addTotals(sums, Object.fromEntries(split!.finish.inputs.map((i) => [i.name, run.outputs.get(i.name)!.data])));
      mae += (run.metrics.get('mae')!.data[0] * (hi - lo)) / N;
      mape += (run.metrics.get('mape')!.data[0] * (hi - lo)) / N;
    }
    const finished = interpretGraph(split!.finish, {
      inputs: new Map(split!.finish.inputs.map((i) => [i.name, tensor('f32', i.value.type.shape as number[], Array.from(sums.get(i.name)!))])),
      params: new Map(),
      state: new Map(),
    }).metrics;
    for (const name of ['rmse', 'r2', 'max_error', 'r2_steps', 'max_error_steps']) expect(finished.get(name)!.data[0], name).toBeCloseTo(expected[name], 9);
    expect(mae).toBeCloseTo(expected.mae, 9);
    expect(mape).toBeCloseTo(expected.mape, 9);
    // what averaging the batches would have given is another number
    const batchR2 = RANGES.filter(([lo, hi]) => hi - lo > 1).map(([lo, hi]) => byHand(f32(PRED.slice(lo, hi)), f32(Y.slice(lo, hi))).r2);
    expect(Math.abs(batchR2.reduce((a, b) => a + b, 0) / batchR2.length - expected.r2)).toBeGreaterThan(0.01);
  });

  it('on WebGPU, evaluateSet over uneven batches gives the values by hand, as one batch of every row does', async () => {
    const program = compileSource(FORECAST, 'forecast.dl').programs[0];
    const model = await Model.create(program, { device: await getDevice() });
    const batch = ([lo, hi]: readonly [number, number]) => ({
      pred: Float32Array.from(PRED.slice(lo, hi)),
      y: Float32Array.from(Y.slice(lo, hi)),
      pred2: Float32Array.from(PRED2.slice(lo * 3, hi * 3)),
      y2: Float32Array.from(Y2.slice(lo * 3, hi * 3)),
    });
    const uneven = await model.evaluateSet(RANGES.map(batch));
    const whole = await model.evaluateSet([batch([0, N])]);
    for (const name of ['mae', 'rmse', 'mape', 'r2', 'max_error', 'r2_steps', 'max_error_steps']) {
      const tolerance = name === 'max_error' || name === 'max_error_steps' ? 0 : 1e-5 * Math.max(1, Math.abs(expected[name]));
      expect(Math.abs((uneven[name] as number) - expected[name]), name).toBeLessThanOrEqual(tolerance);
      expect(Math.abs((whole[name] as number) - expected[name]), `${name} in one batch`).toBeLessThanOrEqual(tolerance);
    }
    model.dispose();
  });

  it('refuse a [B, 1] prediction against a [B] target with a clear message', () => {
    const source = 'model M {\n  input x: f32[B, 1]\n  input y: f32[B]\n  loss = mse(x[:, 0], y)\n  metric m = r2(x, y)\n}\n';
    const errors = compileSource(source, 'm.dl').diagnostics.filter((d) => d.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(`${errors[0].message} ${errors[0].help ?? ''}`).toMatch(/a \[B, 1\] prediction against a \[B\] target needs pred\[:, 0\]/);
  });
});
