// The fit loop on WebGPU with iris and a CSV file: validation each epoch, early stopping, callbacks, history, evaluateDataset; dlc train --data.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoTempDir } from './cli-helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR, main } from '../compiler/cli/main.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { loadIris } from '../runtime/iris.ts';
import { Model } from '../runtime/model.ts';
import { evaluateDataset, fit, trainBlockFitOptions, type EpochLogs } from '../runtime/fit.ts';
import { InputError } from '../runtime/errors.ts';
import { getDevice } from './gpu-helpers.ts';
import { IRIS_MODEL } from './helpers.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { augmentBatch, parseAugmentations } from '../runtime/augment.ts';
import { Dataset } from '../runtime/data.ts';


/** A checkpoint's metadata (dlc.epoch, dlc.step, dlc.best, ...). */
const meta = (path: string) => decodeSafetensors(readFileSync(path)).metadata;

const IRIS = `${IRIS_MODEL}
train Iris {
  data = iris()
  split = [0.7, 0.15, 0.15]
  seed = 3
  optimizer = adam(lr: 0.03)
  batch = 16
  epochs = 40
  early_stopping {
    monitor = "val_loss"
    patience = 4
  }
}
`;


describe('fit', () => {
  it('trains iris with validation every epoch, callbacks, a history, and early stopping', { timeout: 120_000 }, async () => {
    const r = compileSource(IRIS, 'iris.dl');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const [train, validation, test] = loadIris().split([0.7, 0.15, 0.15], { seed: 3 });
    const model = await Model.create(r.programs[0], { device: await getDevice(), batchSize: 16, seed: 3 });
    try {
      const before = await evaluateDataset(model, test, 16);
      const steps: number[] = [];
      const epochs: EpochLogs[] = [];
      const history = await model.fit(
        { train, validation },
        {
          epochs: 200,
          batchSize: 16,
          seed: 3,
          earlyStopping: { monitor: 'val_loss', patience: 4 },
          callbacks: {
            onStep: (info) => steps.push(info.step),
            onEpochEnd: (logs) => {
              epochs.push(logs);
            },
          },
        },
      );
      // every step is reported once, in order
      expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
      expect(steps.length).toBe(history.epochs.length * train.batchCount(16));
      expect(history.epochs).toEqual(epochs);
      expect(Object.keys(history.epochs[0]).sort()).toEqual(['accuracy', 'epoch', 'loss', 'val_accuracy', 'val_loss']);
      // early stopping: training stopped before 200 epochs, 4 epochs after the best val_loss
      expect(history.stoppedEarly).toBe(true);
      const best = history.earlyStopping!;
      expect(history.epochs.length).toBe(best.bestEpoch + 1 + 4);
      expect(best.best).toBe(Math.min(...history.epochs.map((e) => e.val_loss)));
      const after = await evaluateDataset(model, test, 16);
      expect(after.loss).toBeLessThan((before.loss as number) * 0.5);
      expect(after.accuracy).toBeGreaterThan(0.85);
    } finally {
      model.dispose();
    }
  });

  it("options left out are the train block's (epochs, batch, seed, early_stopping), and restoreBest ends with the best epoch's weights", { timeout: 120_000 }, async () => {
    // the block: batch 16, 40 epochs, early stopping on val_loss with patience 4, and restore_best
    const src = IRIS.replace('    patience = 4\n', '    patience = 4\n    restore_best = true\n');
    const r = compileSource(src, 'iris.dl');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(trainBlockFitOptions(r.programs[0])).toEqual({ epochs: 40, batchSize: 16, seed: 3, earlyStopping: { monitor: 'val_loss', patience: 4, mode: 'min', restoreBest: true } });
    const [train, validation] = loadIris().split([0.7, 0.3], { seed: 3 });
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      let bestWeights: Uint8Array | undefined;
      let lastWeights: Uint8Array | undefined;
      const history = await model.fit({ train, validation }, {
        callbacks: {
          onEpochEnd: async (_logs, state) => {
            lastWeights = await model.saveWeights({ trainingState: false });
            if (state.improved) bestWeights = lastWeights;
          },
        },
      });
      expect(model.step).toBe(history.epochs.length * train.batchCount(16));
      expect(history.stoppedEarly).toBe(true);
      const best = history.earlyStopping!.bestEpoch;
      expect(history.epochs.length).toBe(best + 1 + 4);
      expect(history.restoredEpoch).toBe(best);
      const now = await model.saveWeights({ trainingState: false });
      const weights = (bytes: Uint8Array) => [...decodeSafetensors(bytes).tensors].filter(([k]) => k.startsWith('fc')).map(([k, t]) => [k, Array.from(t.data)]);
      expect(weights(now)).toEqual(weights(bestWeights!));
      expect(weights(now)).not.toEqual(weights(lastWeights!));
      // patience 0 stops at the first epoch that does not improve (it trained nothing: the check came before the first epoch)
      model.reset(3);
      const zero = await model.fit({ train, validation }, { epochs: 60, earlyStopping: { monitor: 'val_loss', patience: 0 } });
      expect(zero.epochs.length).toBe(zero.earlyStopping!.bestEpoch + 2);
      expect(zero.epochs.at(-1)!.val_loss).toBeGreaterThanOrEqual(zero.earlyStopping!.best);
      // earlyStopping: false trains every epoch asked for
      model.reset(3);
      const all = await model.fit({ train, validation }, { epochs: 3, earlyStopping: false });
      expect([all.epochs.length, all.stoppedEarly, all.earlyStopping]).toEqual([3, false, undefined]);
    } finally {
      model.dispose();
    }
  });

  it('maxSteps stops mid-epoch, and validateEvery validates every n epochs and the last', { timeout: 60_000 }, async () => {
    const r = compileSource(IRIS, 'iris.dl');
    const [train, validation] = loadIris().split([0.7, 0.3], { seed: 1 });
    const model = await Model.create(r.programs[0], { device: await getDevice(), batchSize: 16 });
    try {
      // 105 examples: 7 batches of 16 an epoch, so 17 steps end in the third epoch
      const history = await model.fit({ train, validation }, { epochs: 50, batchSize: 16, maxSteps: 17, validateEvery: 2 });
      expect(model.step).toBe(17);
      expect(history.reachedMaxSteps).toBe(true);
      expect(history.epochs.map((e) => [e.epoch, 'val_loss' in e])).toEqual([
        [0, false],
        [1, true],
        [2, true],
      ]);
      // a resumed run counts the steps already taken
      const again = await model.fit({ train, validation }, { epochs: 50, batchSize: 16, maxSteps: 17, initialEpoch: 3 });
      expect(again.epochs).toEqual([]);
      // and one resumed after early stopping ended it trains nothing more
      const earlyStopping = { monitor: 'val_loss', patience: 3 };
      const stopped = await model.fit({ train, validation }, { epochs: 50, batchSize: 16, initialEpoch: 5, earlyStopping, earlyStoppingState: { best: 0.4, bestEpoch: 1, wait: 3 } });
      expect(stopped.epochs).toEqual([]);
      expect(stopped.stoppedEarly).toBe(true);
      expect(model.step).toBe(17);
    } finally {
      model.dispose();
    }
  });

  it('dlc train acts on data and validation blocks, steps, metrics, checkpoint every and keep, and restore_best', { timeout: 180_000 }, async () => {
    const dir = repoTempDir('fit-settings');
    const file = join(dir, 'iris.dl');
    const source = IRIS.replace('  metric accuracy = accuracy(logits, label)\n', '  metric accuracy = accuracy(logits, label)\n  metric recall = recall(logits, label, average: "macro")\n').replace(/train Iris \{[^]*$/, '');
    const run = async (block: string, ...flags: string[]) => {
      writeFileSync(file, `${source}train Iris {\n${block}\n}\n`);
      let out = '';
      let err = '';
      const code = await main(['node', 'dlc', 'train', file, '--no-progress', ...flags], { out: (t: string) => (out += `${t}\n`), err: (t: string) => (err += `${t}\n`) });
      expect(code, err).toBe(EXIT_OK);
      expect(err).not.toContain('does not act on');
      return out;
    };
    const ck = join(dir, 'ck.safetensors');
    const blocks = `  data { source = iris(); split = [0.7, 0.15, 0.15]; seed = 3 }\n  optimizer = adam(lr: 0.03)\n  batch = 16\n`;
    // 7 steps an epoch: 20 steps end in epoch 3; validation every 2 epochs and at the end; metrics shows accuracy only
    let out = await run(`${blocks}  steps = 20\n  metrics = [accuracy]\n  validation { every = 2; metrics = [recall] }\n  checkpoint { path = "ck.safetensors"; every = 2; keep = 2 }`);
    const epochs = out.split('\n').filter((l) => l.startsWith('epoch '));
    expect(epochs.map((l) => l.replace(/-?\d+\.\d+/g, 'N'))).toEqual([
      'epoch 1/3  loss N  accuracy N  (Ns)',
      'epoch 2/3  loss N  accuracy N  val_loss N  val_recall N  (Ns)',
      'epoch 3/3  loss N  accuracy N  val_loss N  val_recall N  (Ns)',
    ]);
    expect(out).toContain('stopped after 20 steps (steps = 20)');
    expect(out).toMatch(/^test {2}loss \S+ {2}accuracy \S+$/m);
    // saved after epoch 2 and at the end (epoch 3), numbered copies of both kept
    expect(existsSync(join(dir, 'ck.epoch-2.safetensors')) && existsSync(join(dir, 'ck.epoch-3.safetensors'))).toBe(true);
    expect([meta(ck)['dlc.epoch'], meta(ck)['dlc.step']]).toEqual(['3', '20']);
    // keep = 2 drops the oldest numbered copy
    await run(`${blocks}  epochs = 4\n  checkpoint { path = "ck.safetensors"; keep = 2 }`);
    expect(['1', '2', '3', '4'].map((e) => existsSync(join(dir, `ck.epoch-${e}.safetensors`)))).toEqual([false, false, true, true]);

    // restore_best: after stopping early, the test metrics are those of the best epoch's weights
    out = await run(`${blocks}  epochs = 300\n  early_stopping { monitor = "val_loss"; patience = 2; restore_best = true }\n  checkpoint { path = "ck.safetensors" }`);
    const best = Number(/stopped early: val_loss did not improve for 2 epochs \(best \S+ at epoch (\d+)\)/.exec(out)?.[1]);
    expect(best).toBeGreaterThan(0);
    expect(out).toContain(`restored the weights of epoch ${best} (val_loss`);
    const bestFile = join(dir, 'ck.best.safetensors');
    expect(meta(bestFile)['dlc.epoch']).toBe(String(best));
    // the checkpoint keeps the last epoch's state, to resume from
    expect(meta(ck)['dlc.epoch']).toBe(String(best + 2));
    const trainedTest = /^test .*$/m.exec(out)?.[0];
    let evaluated = '';
    expect(await main(['node', 'dlc', 'evaluate', file, '--checkpoint', bestFile], { out: (t: string) => (evaluated += `${t}\n`), err: () => undefined })).toBe(EXIT_OK);
    expect(evaluated.trim()).toBe(trainedTest);
  });

  it('a resumed run keeps the best weights it had and rotates the numbered copies it left', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-resume-best');
    const file = join(dir, 'iris.dl');
    // the "best" by the highest validation loss: the first epoch's, as training lowers it
    const block = '  data = iris()\n  split = [0.7, 0.15, 0.15]\n  seed = 3\n  optimizer = adam(lr: 0.03)\n  batch = 16\n  checkpoint { path = "ck.safetensors"; monitor = "val_loss"; mode = "max"; keep = 2 }\n';
    writeFileSync(file, IRIS.replace(/train Iris \{[^]*$/, `train Iris {\n${block}}\n`));
    const logs: number[] = [];
    for (const flags of [['--epochs', '3'], ['--epochs', '5', '--resume']]) {
      let out = '';
      let err = '';
      const code = await main(['node', 'dlc', 'train', file, '--no-progress', ...flags], { out: (t: string) => (out += `${t}\n`), err: (t: string) => (err += `${t}\n`) });
      expect(code, err).toBe(EXIT_OK);
      for (const m of out.matchAll(/^epoch \d+\/\d+ .*val_loss (\S+)/gm)) logs.push(Number(m[1]));
    }
    expect(logs).toHaveLength(5);
    const highest = logs.indexOf(Math.max(...logs)) + 1;
    expect(meta(join(dir, 'ck.best.safetensors'))['dlc.epoch']).toBe(String(highest));
    expect(JSON.parse(meta(join(dir, 'ck.safetensors'))['dlc.best']).monitor).toBe('val_loss');
    expect(readdirSync(dir).filter((n) => n.includes('.epoch-')).sort()).toEqual(['ck.epoch-4.safetensors', 'ck.epoch-5.safetensors']);
  });

  it('init_from starts a new run from the weights: the optimizer state and step of the run that made them stay behind', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-init-from');
    const run = async (file: string, ...flags: string[]) => {
      let err = '';
      const code = await main(['node', 'dlc', 'train', file, '--no-progress', ...flags], { out: () => {}, err: (t: string) => (err += `${t}\n`) });
      expect(code, err).toBe(EXIT_OK);
      return err;
    };
    const block = (extra: string) => `train Iris {\n  data = iris()\n  seed = 3\n  optimizer = adam(lr: 0.03)\n  batch = 16\n  epochs = 2\n${extra}}\n`;
    const pre = join(dir, 'pre.dl');
    writeFileSync(pre, IRIS.replace(/train Iris \{[^]*$/, block('  checkpoint { path = "pre.safetensors" }\n')));
    await run(pre);
    const preSteps = Number(meta(join(dir, 'pre.safetensors'))['dlc.step']);
    expect(preSteps).toBeGreaterThan(0);
    // the same model fine-tuned from it: its step count restarts (the schedule and Adam's bias correction with it)
    const fine = join(dir, 'fine.dl');
    writeFileSync(fine, IRIS.replace(/train Iris \{[^]*$/, block('  init_from = "pre.safetensors"\n  checkpoint { path = "fine.safetensors" }\n')));
    const err = await run(fine);
    expect(err).toContain(`initialized 4 of 4 parameters from ${join(dir, 'pre.safetensors')}`);
    expect(Number(meta(join(dir, 'fine.safetensors'))['dlc.step'])).toBe(preSteps);
    // Adam's step counter counts the fine-tuning run's updates only
    const t = decodeSafetensors(readFileSync(join(dir, 'fine.safetensors'))).tensors.get('opt.train.t');
    expect(Array.from(t!.data)).toEqual([preSteps]);
    // a file that shares no parameter with the model: an error (E0207), not a silent "initialized"
    const other = join(dir, 'other.dl');
    writeFileSync(other, IRIS.replace(/fc(\d)/g, 'dense$1').replace(/train Iris \{[^]*$/, block('  init_from = "pre.safetensors"\n  checkpoint { path = "other.safetensors" }\n')));
    let otherErr = '';
    expect(await main(['node', 'dlc', 'train', other, '--no-progress'], { out: () => {}, err: (t: string) => (otherErr += `${t}\n`) })).toBe(EXIT_USER_ERROR);
    expect(otherErr).toMatch(/error\[E0207\]: init_from: no parameter of Iris is in .*pre\.safetensors: it has `fc1\.b` \[16\], .*; Iris expects `dense1\.w` \[4, 16\]/);
    // a new head under the old name (4 classes where there were 3): the backbone loads, the head starts afresh
    const head = join(dir, 'head.dl');
    writeFileSync(head, IRIS.replace('Dense(16, 3)', 'Dense(16, 4)').replace(/train Iris \{[^]*$/, block('  init_from = "pre.safetensors"\n  checkpoint { path = "head.safetensors" }\n')));
    const headErr = await run(head);
    expect(headErr).toContain(`initialized 2 of 4 parameters from ${join(dir, 'pre.safetensors')} (2 parameters keep their initial values)`);
    expect(headErr).toContain(`note: init_from: \`fc2.w\` is f32[16, 3] in ${join(dir, 'pre.safetensors')} but f32[16, 4] in Iris; it keeps its initial value`);
  });

  it('a run that starts over keeps the earlier run as *.previous.safetensors, and a checkpoint folder that cannot be made stops it before any epoch', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-previous');
    const file = join(dir, 'iris.dl');
    writeFileSync(file, IRIS.replace(/train Iris \{[^]*$/, 'train Iris {\n  data = iris()\n  seed = 3\n  optimizer = adam(lr: 0.03)\n  batch = 16\n  epochs = 2\n  checkpoint { path = "ck.safetensors" }\n}\n'));
    const run = async (...flags: string[]) => {
      let err = '';
      const code = await main(['node', 'dlc', 'train', file, '--no-progress', ...flags], { out: () => {}, err: (t: string) => (err += `${t}\n`) });
      return { code, err };
    };
    expect((await run()).code).toBe(EXIT_OK);
    const first = readFileSync(join(dir, 'ck.safetensors'));
    const again = await run('--epochs', '1');
    expect(again.code, again.err).toBe(EXIT_OK);
    expect(again.err).toContain(`note: ${join(dir, 'ck.safetensors')} held an earlier run; it is kept as ${join(dir, 'ck.previous.safetensors')}. To continue a run instead, use --resume`);
    expect(readFileSync(join(dir, 'ck.previous.safetensors')).equals(first)).toBe(true);
    expect(meta(join(dir, 'ck.safetensors'))['dlc.epoch']).toBe('1');
    // a file where the checkpoint's folder should be: refused before training
    writeFileSync(join(dir, 'afile'), '');
    const blocked = await run('--checkpoint', join(dir, 'afile', 'x.safetensors'));
    expect(blocked.code).toBe(EXIT_USER_ERROR);
    expect(blocked.err).toContain(`cannot write the checkpoint ${join(dir, 'afile', 'x.safetensors')}: a part of the path is a file, not a folder`);
    expect(blocked.err).not.toMatch(/^epoch /m);
  });

  it('shuffle = false keeps the batches in order but the split is drawn by the seed: iris, sorted by class, holds out every class', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-noshuffle');
    const file = join(dir, 'iris.dl');
    writeFileSync(file, IRIS.replace(/train Iris \{[^]*$/, 'train Iris {\n  data = iris()\n  split = [0.7, 0.3]\n  shuffle = false\n  optimizer = adam(lr: 0.03)\n  batch = 16\n  epochs = 1\n  checkpoint { path = "ck.safetensors" }\n}\n'));
    const io = { out: () => {}, err: () => {} };
    expect(await main(['node', 'dlc', 'train', file, '--no-progress'], io)).toBe(EXIT_OK);
    const out = join(dir, 'val.csv');
    expect(await main(['node', 'dlc', 'predict', file, '--split', 'validation', '--out', out], io)).toBe(EXIT_OK);
    const [header, ...lines] = readFileSync(out, 'utf8').trim().split('\n');
    const column = header.split(',').indexOf('label');
    expect(new Set(lines.map((l) => l.split(',')[column])).size).toBe(3);
  });

  it('dlc predict --outputs computes the outputs named; an unknown name lists the outputs', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-outputs');
    const file = join(dir, 'iris.dl');
    const model = IRIS.replace('  output probs = softmax(logits, axis: -1)\n', '  output probs = softmax(logits, axis: -1)\n  output hidden = relu(fc1(features))\n');
    writeFileSync(file, model.replace(/train Iris \{[^]*$/, 'train Iris {\n  data = iris()\n  optimizer = adam(lr: 0.03)\n  batch = 16\n  epochs = 1\n  checkpoint { path = "ck.safetensors" }\n}\n'));
    let err = '';
    const io = { out: () => {}, err: (t: string) => (err += t) };
    expect(await main(['node', 'dlc', 'train', file, '--no-progress'], io), err).toBe(EXIT_OK);
    const out = join(dir, 'probs.csv');
    expect(await main(['node', 'dlc', 'predict', file, '--outputs', 'probs', '--out', out], io), err).toBe(EXIT_OK);
    const header = readFileSync(out, 'utf8').split('\n')[0].split(',');
    expect(header.filter((h) => /^probs_\d+$/.test(h))).toEqual(['probs_0', 'probs_1', 'probs_2']);
    expect(header.some((h) => h.startsWith('hidden'))).toBe(false);
    err = '';
    expect(await main(['node', 'dlc', 'predict', file, '--outputs', 'probs,nope'], io)).toBe(EXIT_USER_ERROR);
    expect(err).toContain('--outputs names `nope`, which Iris does not output; its outputs are `probs`, `hidden`');
  });

  it('a checkpoint trained with other --args: evaluate says so in command-line terms', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-args');
    const file = join(dir, 'iris.dl');
    writeFileSync(file, IRIS.replace('model Iris {', 'model Iris(hidden: int = 16) {').replace('Dense(4, 16)', 'Dense(4, hidden)').replace('Dense(16, 3)', 'Dense(hidden, 3)').replace(/train Iris \{[^]*$/, 'train Iris {\n  data = iris()\n  epochs = 1\n  checkpoint { path = "ck.safetensors" }\n}\n'));
    const io = { out: () => {}, err: () => {} };
    expect(await main(['node', 'dlc', 'train', file, '--args', 'hidden: 4', '--no-progress'], io)).toBe(EXIT_OK);
    let err = '';
    expect(await main(['node', 'dlc', 'evaluate', file], { out: () => {}, err: (t: string) => (err += t) })).toBe(EXIT_USER_ERROR);
    expect(err).toContain(`${join(dir, 'ck.safetensors')} does not fit Iris as this file and its --args make it: the weights file has \`fc1.b\` as f32[4], but the model declares f32[16]. Was it trained with other --args`);
    expect(err).not.toContain('skipMismatched');
    expect(await main(['node', 'dlc', 'evaluate', file, '--args', 'hidden: 4'], io)).toBe(EXIT_OK);
  });

  it('a loss that turns NaN stops training before it can replace the saved checkpoint', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-diverged');
    const file = join(dir, 'iris.dl');
    const block = (lr: string) => `train Iris {\n  data = iris()\n  seed = 3\n  optimizer = sgd(lr: ${lr})\n  batch = 16\n  epochs = 2\n  checkpoint { path = "ck.safetensors" }\n}\n`;
    const run = async (...flags: string[]) => {
      let err = '';
      const code = await main(['node', 'dlc', 'train', file, '--no-progress', ...flags], { out: () => {}, err: (t: string) => (err += `${t}\n`) });
      return { code, err };
    };
    writeFileSync(file, IRIS.replace(/train Iris \{[^]*$/, block('0.05')));
    expect((await run()).code).toBe(EXIT_OK);
    const saved = readFileSync(join(dir, 'ck.safetensors'));
    // the same run resumed with a learning rate that blows it up
    writeFileSync(file, IRIS.replace(/train Iris \{[^]*$/, block('1e30')));
    const { code, err } = await run('--resume', '--epochs', '4');
    expect(code).toBe(EXIT_USER_ERROR);
    expect(err).toMatch(/the training loss `loss` is (NaN|Infinity) after epoch 3: training diverged .* stopped without saving, .*ck\.safetensors keeps the last good state/);
    expect(readFileSync(join(dir, 'ck.safetensors')).equals(saved)).toBe(true);
  });

  it('evaluate, predict and --resume split the data as the training run did (its --seed and --limit), and refuse other class names', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit-split');
    const csv = join(dir, 'pets.csv');
    const rows = Array.from({ length: 60 }, (_, i) => `${(i % 7) / 7},${(i % 5) / 5},${['cat', 'dog', 'eel'][i % 3]}`);
    writeFileSync(csv, `a,b,kind\n${rows.join('\n')}\n`);
    const file = join(dir, 'pets.dl');
    const model = IRIS.replace('input features: f32[B, 4]', 'input features: f32[B, 2]').replace('Dense(4, 16)', 'Dense(2, 16)');
    writeFileSync(file, model.replace(/train Iris \{[^]*$/, 'train Iris {\n  data = csv(path: "pets.csv", label: "kind")\n  split = [0.6, 0.2, 0.2]\n  optimizer = adam(lr: 0.03)\n  batch = 8\n  epochs = 2\n  checkpoint { path = "ck.safetensors" }\n}\n'));
    const run = async (...args: string[]) => {
      let [out, err] = ['', ''];
      const code = await main(['node', 'dlc', ...args], { out: (t: string) => (out += `${t}\n`), err: (t: string) => (err += `${t}\n`) });
      return { code, out, err };
    };
    const trained = await run('train', file, '--seed', '4', '--limit', '50', '--no-progress');
    expect(trained.code, trained.err).toBe(EXIT_OK);
    const testLine = /^test .*$/m.exec(trained.out)![0];
    // no flags: the recorded seed and limit, the same 10 test examples, the same metrics
    const evaluated = await run('evaluate', file);
    expect(evaluated.code, evaluated.err).toBe(EXIT_OK);
    expect(evaluated.err).toContain('note: the data is split as the training run split it (--seed 4 --limit 50, recorded in the checkpoint)');
    expect(evaluated.out.trim()).toBe(testLine);
    expect((await run('evaluate', file, '--seed', '5')).err).toContain('warning: the checkpoint was trained with --seed 4');
    // a --limit where training used all of the data is another split too
    const all = join(dir, 'all.safetensors');
    expect((await run('train', file, '--checkpoint', all, '--no-progress')).code).toBe(EXIT_OK);
    expect((await run('evaluate', file, '--checkpoint', all, '--limit', '30')).err).toContain('warning: the checkpoint was trained with all of the data (no --limit)');
    const resumed = await run('train', file, '--resume', '--epochs', '3', '--no-progress');
    expect(resumed.code, resumed.err).toBe(EXIT_OK);
    expect(resumed.err).toContain('30 train, 10 validation, 10 test examples');
    // a class the checkpoint never saw renumbers the others: refused
    writeFileSync(csv, `a,b,kind\n0.5,0.5,bat\n${rows.join('\n')}\n`);
    const relabeled = await run('evaluate', file);
    expect(relabeled.code).toBe(EXIT_USER_ERROR);
    expect(relabeled.err).toMatch(/the data's classes of `label` \("bat", "cat", "dog", "eel"\) are not those .*ck\.safetensors was trained with \("cat", "dog", "eel"\)/);
  });

  it('a label out of range anywhere in the data stops dlc train before anything runs, naming the split and example', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('fit-labels');
    writeFileSync(join(dir, 'd.csv'), `a,b,y\n${Array.from({ length: 40 }, (_, i) => `${i / 40},0.5,${i % 3}`).join('\n')}\n0.9,0.9,5\n`);
    const file = join(dir, 'm.dl');
    writeFileSync(file, 'use std.nn.{Dense}\nmodel M {\n  input features: f32[B, 2]\n  input label: i32[B]\n  layer fc = Dense(2, 3)\n  loss = cross_entropy(fc(features), label)\n}\ntrain M {\n  data = csv(path: "d.csv", label: "y")\n  split = [0.8, 0.2]\n  shuffle = false\n  optimizer = adam(lr: 0.01)\n  batch = 8\n  checkpoint { path = "m.safetensors" }\n}\n');
    let err = '';
    const code = await main(['node', 'dlc', 'train', file, '--no-progress'], { out: () => {}, err: (t: string) => (err += `${t}\n`) });
    expect(code).toBe(EXIT_USER_ERROR);
    // the example by its CSV row, numbered as the CSV's own errors number rows (the 41st data row), whichever split it fell in
    expect(err).toMatch(new RegExp(`column \`label\` holds 5 in row 41 of ${join(dir, 'd.csv').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(the (training|validation) data\\), but the model uses it to index axis 1 of f32\\[B, 3\\]`));
    // the user's cross_entropy line, then the standard library's gather in it
    expect(err).toContain(`of size 3 (${file}:6:10, in stdlib/loss.dl:`);
    expect(existsSync(join(dir, 'm.safetensors'))).toBe(false);
  });

  it('a stop from a callback ends training after that epoch', { timeout: 60_000 }, async () => {
    const r = compileSource(IRIS, 'iris.dl');
    const [train] = loadIris().split([0.7, 0.3], { seed: 1 });
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const history = await model.fit({ train }, { epochs: 50, batchSize: 32, callbacks: { onEpochEnd: (logs) => (logs.epoch === 2 ? 'stop' : undefined) } });
      expect(history.epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
      expect(history.stoppedEarly).toBe(false);
    } finally {
      model.dispose();
    }
  });

  it('dlc train reads a CSV file given by --data and reports clear errors for unknown data and missing columns', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('fit');
    const model = join(dir, 'iris.dl');
    writeFileSync(model, IRIS);
    const rows = loadIris();
    const features = rows.column('features').data;
    const labels = rows.column('label').data;
    const lines = ['sepal_length,sepal_width,petal_length,petal_width,species'];
    for (let i = 0; i < rows.length; i++) lines.push(`${Array.from(features.subarray(i * 4, i * 4 + 4)).join(',')},${['setosa', 'versicolor', 'virginica'][labels[i]]}`);
    writeFileSync(join(dir, 'iris.csv'), `${lines.join('\n')}\n`);
    let out = '';
    let err = '';
    const io = { out: (t: string) => (out += `${t}\n`), err: (t: string) => (err += `${t}\n`) };
    const ok = await main(['node', 'dlc', 'train', model, '--data', `csv:${join(dir, 'iris.csv')}:species`, '--epochs', '15', '--checkpoint', join(dir, 'ck.safetensors'), '--no-progress'], io);
    expect(ok, err).toBe(EXIT_OK);
    expect(err).toContain('105 train, 22 validation, 23 test examples');
    const accuracy = Number(/^test\s+loss \S+\s+accuracy (\S+)/m.exec(out)?.[1]);
    expect(accuracy).toBeGreaterThan(0.6); // 23 test flowers after 15 epochs; chance is 1/3
    // dlc evaluate splits the data as training did and reports the same test metrics from the checkpoint
    const trainedTest = /^test .*$/m.exec(out)?.[0];
    out = '';
    err = '';
    const evaluated = await main(['node', 'dlc', 'evaluate', model, '--data', `csv:${join(dir, 'iris.csv')}:species`, '--checkpoint', join(dir, 'ck.safetensors')], io);
    expect(evaluated, err).toBe(EXIT_OK);
    expect(err).toMatch(/evaluating .*ck\.safetensors \(after epoch 15\) on 23 test examples/);
    expect(out.trim()).toBe(trainedTest);
    // dlc predict: the same test examples' outputs beside their labels; their argmax agrees with the accuracy
    const preds = join(dir, 'preds.csv');
    expect(await main(['node', 'dlc', 'predict', model, '--data', `csv:${join(dir, 'iris.csv')}:species`, '--checkpoint', join(dir, 'ck.safetensors'), '--out', preds], io)).toBe(EXIT_OK);
    const [header, ...predicted] = readFileSync(preds, 'utf8').trim().split('\n');
    // the label also by its class name, and the likeliest class by name
    expect(header).toBe('example,label,label_name,probs_0,probs_1,probs_2,probs_class');
    expect(predicted).toHaveLength(23);
    const fields = predicted.map((r) => r.split(','));
    const hits = fields.filter(([, label, , ...rest]) => {
      const p = rest.slice(0, 3).map(Number);
      return p.indexOf(Math.max(...p)) === Number(label);
    }).length;
    expect(hits / 23).toBeCloseTo(Number(/accuracy (\S+)/.exec(trainedTest ?? '')?.[1]), 3);
    expect(fields.filter((f) => f[2] === f[6]).length).toBe(hits);
    expect(new Set(fields.map((f) => f[2]))).toEqual(new Set(['setosa', 'versicolor', 'virginica']));
    out = '';
    expect(await main(['node', 'dlc', 'predict', model, '--data', `csv:${join(dir, 'iris.csv')}:species`, '--checkpoint', join(dir, 'ck.safetensors')], io)).toBe(EXIT_OK);
    const jsonl = out.trim().split('\n').map((l) => JSON.parse(l) as { example: number; label: number; probs: number[] });
    expect(jsonl).toHaveLength(23);
    // `example` is the flower's data row in the file: 23 distinct rows, each with its row's label
    expect(new Set(jsonl.map((r) => r.example)).size).toBe(23);
    for (const r of jsonl) expect(r.label).toBe(labels[r.example]);
    expect(jsonl[0].probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    out = '';
    const validation = await main(['node', 'dlc', 'evaluate', model, '--data', `csv:${join(dir, 'iris.csv')}:species`, '--checkpoint', join(dir, 'ck.safetensors'), '--split', 'validation'], io);
    expect(validation).toBe(EXIT_OK);
    expect(out).toMatch(/^validation {2}loss /m);
    err = '';
    expect(await main(['node', 'dlc', 'evaluate', model, '--checkpoint', join(dir, 'none.safetensors')], io)).toBe(EXIT_USER_ERROR);
    expect(err).toMatch(/no checkpoint at .*none\.safetensors; train the model first/);
    err = '';
    expect(await main(['node', 'dlc', 'evaluate', model, '--checkpoint', join(dir, 'ck.safetensors'), '--split', 'dev'], io)).toBe(EXIT_USER_ERROR);
    expect(err).toContain('--split takes train, validation, test, all, not `dev`');
    err = '';
    const unknown = await main(['node', 'dlc', 'train', model, '--data', 'fashion_mnist'], io);
    expect(unknown).toBe(EXIT_USER_ERROR);
    expect(err).toMatch(/error: cannot load the data: unknown dataset 'fashion_mnist' \(known: mnist, iris, csv, cifar10, uci_har, tiny_shakespeare, text\)/);
    err = '';
    const mismatch = await main(['node', 'dlc', 'train', model, '--data', 'mnist', '--limit', '100'], io);
    expect(mismatch).toBe(EXIT_USER_ERROR);
    expect(err).toMatch(/the data has no column `features` for the input of Iris; it has `image`, `label`/);
  });
});

describe('fit from JavaScript', () => {
  it('a batch of arrays or a bare Dataset is an InputError saying what fit takes (it was a TypeError)', { timeout: 60_000 }, async () => {
    const r = compileSource(IRIS, 'iris.dl');
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      await expect(fit(model, { features: [1, 2, 3, 4], label: [0] } as never)).rejects.toThrow(new InputError('fit() takes { train: Dataset, validation?: Dataset }, with each Dataset made by new Dataset({ column: { data, shape } }) (runtime/data.ts)'));
      const iris = loadIris();
      await expect(fit(model, iris as never)).rejects.toThrow(/: wrap it as \{ train: data \}$/);
    } finally {
      model.dispose();
    }
  });
});

const AUGMENTED = `use std.nn.{Dense}
use std.loss.{cross_entropy}

model Shifted {
  input image: f32[B, 16]
  input label: i32[B]
  layer fc = Dense(16, 3)
  output logits = fc(image)
  loss = cross_entropy(logits, label)
}

train Shifted {
  optimizer = sgd(lr: 0.5)
  batch = 4
  epochs = 2
  seed = 9
  shuffle = false
  augment = [random_shift(pixels: 1)]
}
`;

describe("fit applies the train block's augment", () => {
  it('as dlc train does, unless augment: false (or other augmentations) is given; each step sees the augmented batch', { timeout: 120_000 }, async () => {
    const program = compileSource(AUGMENTED, 'shifted.dl').programs[0]!;
    const n = 8;
    const image = Float32Array.from({ length: n * 16 }, (_, i) => ((i * 37) % 11) / 11);
    const label = Int32Array.from({ length: n }, (_, i) => i % 3);
    const data = () => new Dataset({ image: { data: image.slice(), shape: [16] }, label: { data: label.slice(), shape: [] } });
    expect(trainBlockFitOptions(program).augment).toEqual([{ kind: 'random_shift', pixels: 1, column: 'image' }]);
    const trained = async (run: (model: Model) => Promise<unknown>): Promise<number[]> => {
      const model = await Model.create(program, { device: await getDevice(), seed: 1 });
      try {
        await run(model);
        return Array.from(await model.getParameter('fc.w'));
      } finally {
        model.dispose();
      }
    };
    const byDefault = await trained((m) => m.fit({ train: data() }));
    const without = await trained((m) => m.fit({ train: data() }, { augment: false }));
    const emptied = await trained((m) => m.fit({ train: data() }, { augment: [] }));
    // the reference: trainStep on batches augmented by hand, as fit documents (seed, epoch, batch index)
    const byHand = await trained(async (m) => {
      const augment = parseAugmentations(program.training!.settings.augment);
      for (let epoch = 0; epoch < 2; epoch++) {
        for (let b = 0; b < 2; b++) {
          const batch = { image: image.slice(b * 64, b * 64 + 64), label: label.slice(b * 4, b * 4 + 4) };
          augmentBatch(batch, { image: [16], label: [] }, augment, { seed: 9, epoch, batch: b });
          await m.trainStep(batch).values();
        }
      }
    });
    const plain = await trained(async (m) => {
      for (let epoch = 0; epoch < 2; epoch++) for (let b = 0; b < 2; b++) await m.trainStep({ image: image.slice(b * 64, b * 64 + 64), label: label.slice(b * 4, b * 4 + 4) }).values();
    });
    expect(byDefault).toEqual(byHand);
    expect(without).toEqual(plain);
    expect(emptied).toEqual(plain);
    expect(byDefault).not.toEqual(plain);
  });
});
