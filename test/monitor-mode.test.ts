// Early stopping's and a checkpoint's default mode: decided from what the monitored quantity is (a loss, a std.metrics score or error), never from its name; unknown needs `mode` (E0206), and fit() and checkpointPlan say so too.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { checkpointPlan, CheckpointError } from '../compiler/cli/checkpoints.ts';
import { Dataset } from '../runtime/data.ts';
import { InputError } from '../runtime/errors.ts';
import { monitorMode } from '../runtime/fit.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

/** A regression model whose metrics have names that contain `r2`, `acc`, `iou`, `f1`: none of them says what they are. */
const MODEL = `model Sensor {
  input features: f32[B, 4]
  input label: f32[B]
  input logits: f32[B, 3]
  input klass: i32[B]
  layer fc = Dense(4, 1)
  let pred = fc(features)[:, 0]
  output forecast = pred
  loss = mse(pred, label)
  metric mae_sensor2 = l1(pred, label)
  metric rmse_accel = sqrt(mse(pred, label))
  metric mse_previous_day = mse(pred, label)
  metric err2 = mae(pred, label)
  metric fit_quality = r2(pred, label)
  metric psnr_like = -10.0 * log10(mse(pred, label))
  metric perplexity = exp(cross_entropy(logits, klass))
  metric hits = 100.0 * accuracy(logits, klass)
  metric worst = max_error(pred, label)
  metric by_hand = mean(abs(pred - label))
  metric loss_like_f1 = mean(abs(pred - label)) * 2.0
}
`;

const train = (block: string) => `${MODEL}train Sensor {\n  optimizer = sgd(lr: 0.1)\n  split = [0.75, 0.25]\n${block}}\n`;

const settingsOf = (block: string) => {
  const r = compileSource(train(block), 'm.dl');
  expect(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message)).toEqual([]);
  return r.programs[0].training!.settings as Record<string, { args: Record<string, unknown> }>;
};

describe('the mode of a monitored loss or metric', () => {
  it('comes from what the metric is, whatever its name contains', () => {
    const cases: [string, 'min' | 'max'][] = [
      ['val_loss', 'min'],
      ['val_mae_sensor2', 'min'], // `r2` in the name: an error all the same
      ['val_rmse_accel', 'min'], // `acc`
      ['val_mse_previous_day', 'min'], // `iou` in "prev-iou-s"
      ['val_err2', 'min'],
      ['val_fit_quality', 'max'], // R², with no hint in the name
      ['val_psnr_like', 'max'], // minus a log of an error rises
      ['perplexity', 'min'],
      ['val_hits', 'max'],
      ['val_worst', 'min'],
    ];
    for (const [monitor, mode] of cases) {
      const settings = settingsOf(`  early_stopping { monitor = "${monitor}"; patience = 2 }\n  checkpoint { path = "ck.safetensors"; monitor = "${monitor}" }\n`);
      expect(settings.early_stopping.args.mode, monitor).toBe(mode);
      expect(settings.checkpoint.args.mode, monitor).toBe(mode);
    }
    // the default monitor, val_loss, and the call form
    expect(settingsOf('  early_stopping { patience = 2 }\n').early_stopping.args.mode).toBe('min');
    expect(settingsOf('  early_stopping = early_stopping(monitor: "val_fit_quality", patience: 2)\n').early_stopping.args.mode).toBe('max');
    // a mode written stays as written
    expect(settingsOf('  early_stopping { monitor = "val_by_hand"; mode = "max" }\n').early_stopping.args.mode).toBe('max');
  });

  it('is E0206 at the monitor, naming it, when the metric is written by hand', () => {
    for (const [block, key, watched] of [
      ['  early_stopping {\n    monitor = "val_by_hand"\n  }\n', 'early_stopping', 'val_by_hand'],
      ['  checkpoint {\n    path = "ck.safetensors"\n    monitor = "loss_like_f1"\n  }\n', 'checkpoint', 'loss_like_f1'],
      ['  early_stopping = early_stopping(monitor: "by_hand")\n', 'early_stopping', 'by_hand'],
    ]) {
      const source = train(block);
      const errors = compileSource(source, 'm.dl').diagnostics.filter((d) => d.severity === 'error');
      expect(errors.map((e) => e.code), block).toEqual(['E0206']);
      expect(errors[0].message).toContain(`${key} cannot tell whether \`${watched}\` is better`);
      expect(errors[0].help).toMatch(/mode = "min".*mode = "max"/);
      expect(source.slice(errors[0].span.start, errors[0].span.end)).toBe(`"${watched}"`);
    }
  });

  it("does not take a user's function of a library metric's name for the library's", () => {
    const source = `fn accuracy(pred: f32[B], label: f32[B]) -> f32[] {\n  return mean(abs(pred - label))\n}\n${train('  early_stopping { monitor = "val_mine" }\n').replace('metric by_hand', 'metric mine = accuracy(pred, label)\n  metric by_hand').replace('metric hits = 100.0 * accuracy(logits, klass)\n', '')}`;
    const errors = compileSource(source, 'm.dl').diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((e) => e.code)).toEqual(['E0206']);
  });

  it('is recorded in the program, and fit() and checkpointPlan refuse to guess the others', async () => {
    const program = compileSource(train(''), 'm.dl').programs[0];
    expect(program.directions).toMatchObject({ loss: 'min', mae_sensor2: 'min', fit_quality: 'max', hits: 'max' });
    expect(program.directions?.by_hand).toBeUndefined();
    expect(monitorMode(program, 'val_rmse_accel')).toBe('min');
    expect(monitorMode(program, 'val_by_hand')).toBeUndefined();
    expect(checkpointPlan('ck.safetensors', { monitor: 'val_fit_quality' }, { monitor: 'val_mae_sensor2', patience: 2 }, program)).toMatchObject({ best: { mode: 'max' }, stopping: { mode: 'min' } });
    expect(() => checkpointPlan('ck.safetensors', { monitor: 'by_hand' }, undefined, program)).toThrow(CheckpointError);
    expect(() => checkpointPlan('ck.safetensors', {}, { monitor: 'val_by_hand', patience: 2 }, program)).toThrow(/cannot tell whether val_by_hand is better/);

    const device = await getDevice();
    const model = await Model.create(program, { device, seed: 1, batchSize: 8 });
    const rows = 32;
    const features = Float32Array.from({ length: rows * 4 }, (_, i) => Math.sin(i));
    const weights = [1, -0.5, 0.25, 2];
    const data = new Dataset({
      features: { data: features, shape: [4] },
      label: { data: Float32Array.from({ length: rows }, (_, r) => weights.reduce((a, w, j) => a + w * features[r * 4 + j], 0)), shape: [] },
      logits: { data: new Float32Array(rows * 3), shape: [3] },
      klass: { data: new Int32Array(rows), shape: [] },
    });
    await expect(model.fit({ train: data, validation: data }, { epochs: 1, earlyStopping: { monitor: 'val_by_hand', patience: 2 } })).rejects.toThrow(InputError);
    // an error metric whose name contains `r2` is minimized: fitting a linear target, it falls every epoch, so nothing stops
    const history = await model.fit({ train: data, validation: data }, { epochs: 4, batchSize: 8, earlyStopping: { monitor: 'val_mae_sensor2', patience: 1 } });
    expect(history.stoppedEarly).toBe(false);
    model.dispose();
  }, 120_000);
});
