// The Normalization layer and `adapt = [norm]`: its mean and variance set from the training split only (float64 statistics), saved in checkpoints, kept by --resume; Model.adapt and fit() on Dawn; E0206 for what cannot be adapted.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc } from './cli-helpers.ts';
import { getDevice } from './gpu-helpers.ts';
import { EXIT_OK } from '../compiler/cli/main.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Dataset } from '../runtime/data.ts';
import { InputError } from '../runtime/errors.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';

const MODEL = `use std.nn.{Dense, Normalization}

model M {
  input features: f32[B, 3]
  input label: i32[B]
  layer norm = Normalization(3)
  layer fc = Dense(3, 2)
  let scaled = norm(features)
  output standardised = scaled
  let logits = fc(scaled)
  loss = cross_entropy(logits, label)
}
`;

/** 40 rows a,b,c,y on very different scales; the last 10 (held out by ordered_split) far off, so statistics over them would show. */
function rows(shift = 0): number[][] {
  return Array.from({ length: 40 }, (_, i) => {
    const far = i >= 30 ? 1000 : 0;
    return [((i * 37) % 17) * 250 + 3000 + far + shift, ((i * 11) % 13) / 100 - 0.05 + far, 7 + far, i % 2];
  });
}

const csv = (data: readonly (readonly number[])[]) => `a,b,c,y\n${data.map((r) => r.join(',')).join('\n')}\n`;

/** Per-column mean and population variance in float64, over the given rows' first three columns. */
function reference(data: readonly (readonly number[])[]): { mean: number[]; variance: number[] } {
  const mean = [0, 1, 2].map((f) => data.reduce((a, r) => a + r[f], 0) / data.length);
  const variance = [0, 1, 2].map((f) => data.reduce((a, r) => a + (r[f] - mean[f]) ** 2, 0) / data.length);
  return { mean, variance };
}

function tensor(path: string, name: string): number[] {
  const t = decodeSafetensors(readFileSync(path)).tensors.get(name);
  if (!t) throw new Error(`no tensor ${name} in ${path}`);
  return Array.from(t.data as Float32Array);
}

function closeTo(got: readonly number[], want: readonly number[]): void {
  expect(got.length).toBe(want.length);
  // f32 storage of float64 statistics: within the f32 rounding of each value
  got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 2 ** -23 + 1e-30));
}

describe('adapt in dlc check (E0206)', () => {
  const check = (adapt: string, model = MODEL) => {
    const source = `${model}\ntrain M {\n  adapt = ${adapt}\n}\n`;
    return checkSource(source, 'm.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end)]);
  };
  it('takes a Normalization applied to an input, and reports an unknown layer, one without statistics, and one applied to a computed value', () => {
    expect(check('[norm]')).toEqual([]);
    expect(check('[nrom]')).toEqual([['E0206', '`M` has no layer `nrom`', 'nrom']]);
    expect(check('[norm, fc]')).toEqual([['E0206', "`fc` is a Dense: `adapt` sets a layer's `mean` and `variance` state (f32[d]) from its input, and it has none", 'fc']]);
    expect(check('[norm]', MODEL.replace('norm(features)', 'norm(features * 2.0)'))).toEqual([
      ['E0206', '`norm` is applied to a value the model computes, not to a model input: `adapt` computes the statistics of an input\'s data', 'norm'],
    ]);
    expect(check('["norm"]')[0][1]).toBe('`adapt` lists layers of the model, by name');
  });
});

describe('adapt in dlc train', () => {
  it('sets mean and variance to the training split statistics (not the held-out rows), saves them, and --resume does not adapt again', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-adapt-'));
    const data = rows();
    writeFileSync(join(dir, 'd.csv'), csv(data));
    const file = join(dir, 'm.dl');
    writeFileSync(file, `${MODEL}\ntrain M {\n  data = csv(path: "d.csv", label: "y")\n  split = [0.75, 0.25]\n  ordered_split = true\n  adapt = [norm]\n  optimizer = adam(lr: 0.01)\n  batch = 8\n  epochs = 1\n}\n`);
    const trained = await dlc('train', file, '--no-progress');
    expect(trained.status, trained.err).toBe(EXIT_OK);
    expect(trained.err).toContain('adapted norm to the mean and variance of `features` over the 30 training examples');
    const checkpoint = join(dir, 'checkpoints/M.safetensors');
    const want = reference(data.slice(0, 30));
    closeTo(tensor(checkpoint, 'norm.mean'), want.mean);
    closeTo(tensor(checkpoint, 'norm.variance'), want.variance);
    // not the statistics of every row
    expect(Math.abs(tensor(checkpoint, 'norm.mean')[2] - reference(data).mean[2])).toBeGreaterThan(100);
    // the model standardises with them: predict's output is (x - mean) / sqrt(variance), each feature
    const predicted = (await dlc('predict', file, '--split', 'all', '--outputs', 'standardised')).out.trim().split('\n').map((l) => JSON.parse(l) as { standardised: number[] });
    predicted.slice(0, 30).forEach((p, i) => p.standardised.forEach((v, f) => expect(v).toBeCloseTo((data[i][f] - want.mean[f]) / Math.max(Math.sqrt(want.variance[f]), 1e-7), 3)));
    // the file changes under a resumed run: its statistics stay the checkpoint's
    writeFileSync(join(dir, 'd.csv'), csv(rows(500)));
    const resumed = await dlc('train', file, '--no-progress', '--resume', '--epochs', '2');
    expect(resumed.status, resumed.err).toBe(EXIT_OK);
    expect(resumed.err).not.toContain('adapted');
    closeTo(tensor(checkpoint, 'norm.mean'), want.mean);
    expect(JSON.parse(decodeSafetensors(readFileSync(checkpoint)).metadata['dlc.epoch'])).toBe(2);
  });
});

describe('Model.adapt and fit()', () => {
  it('adapt sets the statistics of a dataset; fit adapts its training data only when it starts training', { timeout: 120_000 }, async () => {
    const r = compileSource(`${MODEL}\ntrain M {\n  adapt = [norm]\n  optimizer = sgd(lr: 0.0)\n  batch = 8\n}\n`, 'm.dl');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(r.programs[0].training?.adapt).toEqual([{ layer: 'norm', input: 'features', mean: 'norm.mean', variance: 'norm.variance' }]);
    const dataset = (data: readonly (readonly number[])[]) =>
      new Dataset({ features: { data: Float32Array.from(data.flatMap((x) => x.slice(0, 3))), shape: [3] }, label: { data: Int32Array.from(data, (x) => x[3]), shape: [] } });
    const data = rows();
    const model = await Model.create(r.programs[0], { device: await getDevice(), batchSize: 8 });
    try {
      // a host-fed model: adapt, then train steps
      const reports = await model.adapt(dataset(data.slice(0, 20)));
      expect(reports.map((x) => [x.layer, x.input, x.count])).toEqual([['norm', 'features', 20]]);
      const want = reference(data.slice(0, 20));
      closeTo(Array.from(await model.getState('norm.mean')), want.mean);
      closeTo(Array.from(await model.getState('norm.variance')), want.variance);
      await expect(model.adapt(dataset(data), { layers: ['fc'] })).rejects.toThrow(new InputError('adapt(): `fc` is not a layer the train block adapts (`norm`)'));
      const nan = new Dataset({ features: { data: Float32Array.of(1, NaN, 3), shape: [3] } });
      await expect(model.adapt(nan)).rejects.toThrow('adapt() of `norm`: the column `features` holds NaN in example 0 (counted from 0): fill missing values before adapting');
      // fit from step 0 adapts to its training data, not the validation data
      model.reset(0);
      const history = await model.fit({ train: dataset(data.slice(0, 30)), validation: dataset(data.slice(30)) }, { epochs: 1 });
      expect(history.adapted?.map((x) => x.count)).toEqual([30]);
      closeTo(Array.from(await model.getState('norm.mean')), reference(data.slice(0, 30)).mean);
      // a second fit continues training: no adapting
      const again = await model.fit({ train: dataset(data.slice(30)) }, { epochs: 1 });
      expect(again.adapted).toBeUndefined();
      closeTo(Array.from(await model.getState('norm.mean')), reference(data.slice(0, 30)).mean);
    } finally {
      model.dispose();
    }
  });
});
