// dlc train's checkpoints on a GPU: restore_best checks the epoch its file holds, --resume refuses files it cannot continue (saying what to do), starts a new run when none exists yet, and fit's restoreBest across a resume; the data a checkpoint records (--data with its CSV's flags) and --resume keeping to it.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc, repoTempDir } from './cli-helpers.ts';
import { IRIS_MODEL } from './helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { loadIris } from '../runtime/iris.ts';
import { Model } from '../runtime/model.ts';
import { InputError } from '../runtime/errors.ts';
import { decodeSafetensors, encodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

const MODEL = IRIS_MODEL.replace('use std.optim.{adam}', 'use std.optim.{adam, sgd}');
const block = (extra: string, optimizer = 'adam(lr: 0.01)') => `train Iris {\n  data = iris()\n  split = [0.6, 0.2, 0.2]\n  seed = 3\n  optimizer = ${optimizer}\n  batch = 8\n${extra}}\n`;

/** A safetensors file rewritten with some metadata changed. */
function editMetadata(path: string, change: Record<string, string>): void {
  const { tensors, metadata } = decodeSafetensors(readFileSync(path));
  writeFileSync(path, encodeSafetensors(tensors, { ...metadata, ...change }));
}

const train = (file: string, ...flags: string[]) => dlc('train', file, '--no-progress', ...flags);

describe('restore_best', () => {
  it('loads the best file only when it holds the best epoch, and says so when it does not', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('ck-restore');
    const file = join(dir, 'iris.dl');
    // val_accuracy stays at its first value for these epochs: the best is epoch 1
    writeFileSync(file, MODEL + block('  early_stopping { monitor = "val_accuracy"; patience = 10; restore_best = true }\n  checkpoint { path = "ck.safetensors" }\n'));
    const first = await train(file, '--epochs', '3');
    expect(first.status, first.err).toBe(EXIT_OK);
    expect(first.out).toContain(`restored the weights of epoch 1 (val_accuracy`);
    // a best no later epoch can beat, so epoch 1 stays the best whatever training does
    const best = join(dir, 'ck.best.safetensors');
    editMetadata(join(dir, 'ck.safetensors'), { 'dlc.early_stopping': JSON.stringify({ best: 2, bestEpoch: 0, wait: 0, monitor: 'val_accuracy', mode: 'max' }) });
    const ck = readFileSync(join(dir, 'ck.safetensors'));
    const kept = await train(file, '--epochs', '4', '--resume');
    expect(kept.out, kept.err).toContain(`restored the weights of epoch 1 (val_accuracy 2.0000) from ${best}`);
    // the best file now says it holds another epoch (another run's, or one a crash left behind)
    writeFileSync(join(dir, 'ck.safetensors'), ck);
    editMetadata(best, { 'dlc.epoch': '3' });
    const resumed = await train(file, '--epochs', '4', '--resume');
    expect(resumed.status, resumed.err).toBe(EXIT_OK);
    expect(resumed.out).not.toContain('restored the weights');
    expect(resumed.err).toContain(`warning: restore_best: ${join(dir, 'ck.best.safetensors')} holds the weights of epoch 3, not of epoch 1, the best one`);
  });
});

describe('--resume', () => {
  it('refuses what it cannot continue, saying what to do: a weights-only file, another optimizer, a damaged epoch; notes another batch size and model name', { timeout: 240_000 }, async () => {
    const dir = repoTempDir('ck-refuse');
    const file = join(dir, 'iris.dl');
    const ck = join(dir, 'ck.safetensors');
    const source = (optimizer?: string) => MODEL + block('  checkpoint { path = "ck.safetensors"; keep = 2 }\n', optimizer);
    writeFileSync(file, source());
    expect((await train(file, '--epochs', '2')).status).toBe(EXIT_OK);
    const good = readFileSync(ck);
    // a weights-only file written over the checkpoint
    expect((await dlc('weights', ck, '-o', join(dir, 'w.safetensors'))).status).toBe(EXIT_OK);
    renameSync(join(dir, 'w.safetensors'), ck);
    let r = await train(file, '--epochs', '3', '--resume');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`error: --resume: ${ck} is a weights-only file (no optimizer state, step or random key; dlc weights writes these): it cannot continue a run. Start a new run from it with init_from = "${ck}"`);
    // another optimizer's state
    writeFileSync(ck, good);
    writeFileSync(file, source('sgd(lr: 0.01, momentum: 0.9)'));
    r = await train(file, '--epochs', '3', '--resume');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toMatch(/error: --resume: .*ck\.safetensors holds another optimizer's state \(`m`, `v` for each parameter\) than this train block's optimizer keeps \(`\w+`\)/);
    expect(r.err).not.toContain('frozen');
    writeFileSync(file, source());
    // an epoch that is no count
    editMetadata(ck, { 'dlc.epoch': 'x' });
    r = await train(file, '--epochs', '3', '--resume');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`error: --resume: ${ck} records its epoch as "x", not a count of epochs (a damaged or hand-edited file?); copy a whole copy over it (${join(dir, 'ck.epoch-2.safetensors')}), or start a new run`);
    // a truncated file names the whole copies beside it
    writeFileSync(ck, good.subarray(0, good.length - 40));
    r = await train(file, '--epochs', '3', '--resume');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`copies are kept beside it (${join(dir, 'ck.epoch-2.safetensors')}, ${join(dir, 'ck.epoch-1.safetensors')}): copy one over ${ck} to go on from it`);
    // a layer of another shape: the same --args, or init_from when the change is meant
    writeFileSync(ck, good);
    writeFileSync(file, source().replace('Dense(4, 16)', 'Dense(4, 12)').replace('Dense(16, 3)', 'Dense(12, 3)'));
    r = await train(file, '--epochs', '3', '--resume');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`if the model changed on purpose, start a new run from these weights with init_from = "${ck}"`);
    // the same layers under another model name, at another batch size: loads, with a warning and a note
    writeFileSync(file, source().replaceAll('Iris', 'IrisTanh'));
    r = await train(file, '--epochs', '3', '--resume', '--batch', '4');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(r.err).toContain(`warning: ${ck} is a checkpoint of the model Iris, not IrisTanh; its tensors fit IrisTanh, so it was loaded (a renamed model?)`);
    expect(r.err).toContain(`note: ${ck} was trained with batches of 8; this run takes batches of 4`);
  });

  it('with no checkpoint yet starts a new run (a retry wrapper\'s first try); with only an earlier run moved aside, says how to get it back', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('ck-auto');
    const file = join(dir, 'iris.dl');
    const ck = join(dir, 'ck.safetensors');
    writeFileSync(file, MODEL + block('  checkpoint { path = "ck.safetensors" }\n'));
    const r = await train(file, '--epochs', '1', '--resume');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(r.err).toContain(`note: --resume: no checkpoint at ${ck} yet, so this is a new run`);
    expect(existsSync(ck)).toBe(true);
    // the lock is released when the run ends
    expect(existsSync(`${ck}.lock`)).toBe(false);
    // a new run started by mistake and stopped before its first save: the earlier run is only moved aside
    renameSync(ck, join(dir, 'ck.previous.safetensors'));
    const again = await train(file, '--epochs', '2', '--resume');
    expect(again.status).toBe(EXIT_USER_ERROR);
    expect(again.err).toContain(`error: --resume: no checkpoint at ${ck}, but an earlier run is kept as ${join(dir, 'ck.previous.safetensors')} (epoch 1): rename it back to ${ck} to resume it, or run without --resume to start a new run`);
    expect(again.err).not.toContain('training Iris');
  });
});

describe('fit resumed with restoreBest', () => {
  it('needs the best epoch\'s weights when that epoch came before initialEpoch, and ends with them when no later epoch beats them', { timeout: 120_000 }, async () => {
    const r = compileSource(MODEL + block(''), 'iris.dl');
    const [train, validation] = loadIris().split([0.7, 0.3], { seed: 3 });
    const model = await Model.create(r.programs[0], { device: await getDevice(), batchSize: 16, seed: 3 });
    try {
      const earlyStopping = { monitor: 'val_loss', patience: 5, restoreBest: true };
      // a best no epoch can beat
      const state = { best: -1, bestEpoch: 1, wait: 0 };
      const options = { epochs: 4, batchSize: 16, initialEpoch: 2, earlyStopping, earlyStoppingState: state };
      await expect(model.fit({ train, validation }, options)).rejects.toBeInstanceOf(InputError);
      await expect(model.fit({ train, validation }, options)).rejects.toThrow(/pass that epoch's weights as bestWeights/);
      const bestWeights = await model.saveWeights({ trainingState: false });
      const history = await model.fit({ train, validation }, { ...options, bestWeights });
      expect(history.epochs).toHaveLength(2);
      expect(history.restoredEpoch).toBe(1);
      const now = decodeSafetensors(await model.saveWeights({ trainingState: false })).tensors;
      for (const [name, t] of decodeSafetensors(bestWeights).tensors) expect(Array.from(now.get(name)!.data), name).toEqual(Array.from(t.data));
    } finally {
      model.dispose();
    }
  });
});

describe('the data a checkpoint records', () => {
  /** Iris as a CSV file: `;` between fields with a header, or `,` without one (the label last). */
  function irisCsv(dir: string): { semi: string; bare: string } {
    const data = loadIris();
    const features = data.column('features').data;
    const labels = data.column('label').data;
    const rows = Array.from({ length: data.length }, (_, i) => [...Array.from(features.subarray(i * 4, i * 4 + 4)), ['setosa', 'versicolor', 'virginica'][labels[i]]]);
    const semi = join(dir, 'iris_semi.csv');
    const bare = join(dir, 'iris_bare.csv');
    writeFileSync(semi, `a;b;c;d;species\n${rows.map((r) => r.join(';')).join('\n')}\n`);
    writeFileSync(bare, `${rows.map((r) => r.join(',')).join('\n')}\n`);
    return { semi, bare };
  }

  it("--data csv with --delimiter or --header: evaluate, predict and --resume read the file as training did, without the flags again", { timeout: 240_000 }, async () => {
    const dir = repoTempDir('ck-csv-flags');
    const { semi, bare } = irisCsv(dir);
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL + block(''));
    for (const [name, data, flags, shown] of [
      ['semi', `csv:${semi}:species`, ['--delimiter', ';'], '--delimiter ";"'],
      ['bare', `csv:${bare}:4`, ['--header', 'false'], '--header false'],
    ] as const) {
      const ck = join(dir, `${name}.safetensors`);
      const trained = await train(file, '--epochs', '1', '--data', data, ...flags, '--checkpoint', ck);
      expect(trained.status, trained.err).toBe(EXIT_OK);
      const testLine = /^test .*$/m.exec(trained.out)![0];
      const evaluated = await dlc('evaluate', file, '--checkpoint', ck);
      expect(evaluated.status, evaluated.err).toBe(EXIT_OK);
      expect(evaluated.err).toContain(`note: the data is split as the training run split it (--seed 3 --data ${data} ${shown}, recorded in the checkpoint)`);
      expect(evaluated.out.trim()).toBe(testLine);
      const predicted = await dlc('predict', file, '--checkpoint', ck);
      expect(predicted.status, predicted.err).toBe(EXIT_OK);
      expect(predicted.out.trim().split('\n')).toHaveLength(30);
      const all = await dlc('evaluate', file, '--checkpoint', ck, '--split', 'all');
      expect(all.status, all.err).toBe(EXIT_OK);
      expect(all.err).toContain('on all 150 examples of the data');
      const resumed = await train(file, '--epochs', '2', '--resume', '--checkpoint', ck);
      expect(resumed.status, resumed.err).toBe(EXIT_OK);
      expect(resumed.err).toContain('resumed from');
      expect(resumed.err).toContain('1 epoch done');
      // and the resumed run records them again, for the next command
      const again = await dlc('evaluate', file, '--checkpoint', ck);
      expect(again.status, again.err).toBe(EXIT_OK);
      expect(again.err).toContain(`(--seed 3 --data ${data} ${shown}, recorded in the checkpoint)`);
    }
  });

  it('--resume refuses a --seed, --limit or --data other than the run recorded, and leaves the checkpoint as it was; a live lock is named before what the checkpoint holds', { timeout: 240_000 }, async () => {
    const dir = repoTempDir('ck-resume-split');
    const { semi } = irisCsv(dir);
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL + block(''));
    const ck = join(dir, 'ck.safetensors');
    expect((await train(file, '--epochs', '1', '--checkpoint', ck)).status).toBe(EXIT_OK);
    const saved = readFileSync(ck);
    const refusals = [
      [['--seed', '4'], '--seed 3', '--seed 4'],
      [['--limit', '100'], 'all of the data (no --limit)', '--limit 100'],
      [['--data', `csv:${semi}:species`, '--delimiter', ';'], "the train block's data (no --data)", `--data csv:${semi}:species`],
    ] as const;
    for (const [flags, recorded, given] of refusals) {
      const r = await train(file, '--epochs', '2', '--resume', '--checkpoint', ck, ...flags);
      expect(r.status).toBe(EXIT_USER_ERROR);
      expect(r.err).toContain(
        `error: --resume: ${ck} was trained with ${recorded} (recorded in the checkpoint), not ${given}: a resumed run trains on the examples that run trained on (another split would hold out some of them, and the checkpoint would no longer say which examples trained it). Drop ${given} to continue the run, or start a new run without --resume (init_from = "${ck}" starts it from these weights)`,
      );
      expect(r.err).not.toContain('training Iris');
      expect(readFileSync(ck).equals(saved)).toBe(true);
    }
    // evaluate may score another split: a warning, as before
    const other = await dlc('evaluate', file, '--checkpoint', ck, '--seed', '4');
    expect(other.status, other.err).toBe(EXIT_OK);
    expect(other.err).toContain('warning: the checkpoint was trained with --seed 3');
    // another run writing the checkpoint: named, not "already finished" from the state it is rewriting
    writeFileSync(`${ck}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), started: '2025-01-01T00:00:00.000Z' }));
    const locked = await train(file, '--epochs', '1', '--resume', '--checkpoint', ck);
    rmSync(`${ck}.lock`);
    expect(locked.status).toBe(EXIT_USER_ERROR);
    expect(locked.err).toContain(`error: another dlc train (pid ${process.pid}, started 2025-01-01T00:00:00.000Z) is writing the checkpoint ${ck}`);
    expect(locked.err).not.toContain('already finished');
    // the recorded flags given again: the run goes on
    const same = await train(file, '--epochs', '2', '--resume', '--checkpoint', ck, '--seed', '3');
    expect(same.status, same.err).toBe(EXIT_OK);
    expect(JSON.parse(decodeSafetensors(readFileSync(ck)).metadata['dlc.split'])).toEqual({ seed: 3 });
  });
});
