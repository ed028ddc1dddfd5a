// What dlc train does around its checkpoint files, without a GPU: write order, failed writes, locks, earlier runs kept by generation, stale temporary files, refusals before training.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoTempDir } from './cli-helpers.ts';
import { checkpointPlan, CheckpointWriter, lockCheckpoint, lockPathOf, moveEarlierRun, openCheckpointFolder, resumedEarlyStopping } from '../compiler/cli/checkpoints.ts';
import { writeWeightsOnly } from '../compiler/cli/weights.ts';
import { WeightsError } from '../runtime/errors.ts';
import type { Model } from '../runtime/model.ts';
import { writeCheckpoint, writeFileAtomic } from '../runtime/node/checkpoint-file.ts';
import { encodeSafetensors } from '../runtime/safetensors.ts';

/** A stand-in for a model: saveWeights encodes one tensor and the metadata it is given. */
const fakeModel = {
  saveWeights: async (options: { trainingState?: boolean; metadata?: Record<string, string> }) =>
    encodeSafetensors({ w: { dtype: 'f32', shape: [1], data: Float32Array.of(1) } }, { ...options.metadata, 'dlc.format': options.trainingState === false ? 'weights' : 'training-state' }),
} as unknown as Model;

/** The pid of a process that has ended. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

const lines = () => {
  const seen: string[] = [];
  return { seen, note: (l: string) => seen.push(l) };
};

describe('CheckpointWriter', () => {
  it("writes the monitor's best weights and early stopping's best weights before the checkpoint that records them", async () => {
    const dir = repoTempDir('ck-order');
    const plan = checkpointPlan(join(dir, 'ck.safetensors'), { monitor: 'val_accuracy' }, { monitor: 'val_loss', patience: 3, restoreBest: true }, { directions: { loss: 'min', accuracy: 'max' } });
    const order: string[] = [];
    const writer = new CheckpointWriter(fakeModel, plan, {}, { epoch: 0 }, async (path, bytes) => {
      order.push(path.slice(dir.length + 1));
      await writeFileAtomic(path, bytes);
    });
    await writer.epochEnd({ epoch: 0, val_loss: 0.5, val_accuracy: 0.8 }, { earlyStopping: { best: 0.5, bestEpoch: 0, wait: 0 }, improved: true });
    // a crash after the checkpoint's rename finds both best files of its epoch in place
    expect(order).toEqual(['ck.best.safetensors', 'ck.best-val_loss.safetensors', 'ck.safetensors']);
    // the checkpoint records early stopping's monitor and mode with its state
    const recorded = JSON.parse(readFileSync(join(dir, 'ck.safetensors')).subarray(8, 8 + Number(readFileSync(join(dir, 'ck.safetensors')).readBigUInt64LE(0))).toString())['__metadata__']['dlc.early_stopping'];
    expect(JSON.parse(recorded)).toEqual({ best: 0.5, bestEpoch: 0, wait: 0, monitor: 'val_loss', mode: 'min' });
  });

  it('a failed write (a full disk) names the file, why, and what the checkpoint still holds', async () => {
    const dir = repoTempDir('ck-full');
    const plan = checkpointPlan(join(dir, 'ck.safetensors'), {}, { monitor: 'val_loss', patience: 3, restoreBest: true }, { directions: { loss: 'min' } });
    let full = false;
    const writer = new CheckpointWriter(fakeModel, plan, {}, { epoch: 0 }, async (path, bytes) => {
      if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      await writeFileAtomic(path, bytes);
    });
    await writer.epochEnd({ epoch: 0, val_loss: 0.5 }, { earlyStopping: { best: 0.5, bestEpoch: 0, wait: 0 }, improved: true });
    full = true;
    await expect(writer.epochEnd({ epoch: 1, val_loss: 0.4 }, { earlyStopping: { best: 0.4, bestEpoch: 1, wait: 0 }, improved: true })).rejects.toThrow(
      `cannot save early stopping's best weights (restore_best) to ${join(dir, 'ck.best.safetensors')}: the disk is full; ${join(dir, 'ck.safetensors')} is intact and holds epoch 1: free what is needed and continue with --resume`,
    );
  });
});

describe('early stopping resumed', () => {
  const stopping = { monitor: 'val_accuracy', mode: 'max' as const };
  it("starts afresh, with a note, when the monitor or mode changed since the checkpoint; a file that did not record them is taken as it is", () => {
    const { seen, note } = lines();
    expect(resumedEarlyStopping(JSON.stringify({ best: 0.58, bestEpoch: 5, wait: 0, monitor: 'val_loss', mode: 'min' }), stopping, 'ck.safetensors', note)).toBeUndefined();
    expect(seen).toEqual(['note: early stopping now watches val_accuracy (max); ck.safetensors recorded its state for val_loss (min), so it starts afresh: no best value yet, patience counted from this epoch']);
    expect(resumedEarlyStopping(JSON.stringify({ best: 0.9, bestEpoch: 5, wait: 1, monitor: 'val_accuracy', mode: 'max' }), stopping, 'ck.safetensors', note)).toEqual({ best: 0.9, bestEpoch: 5, wait: 1 });
    expect(resumedEarlyStopping(JSON.stringify({ best: 0.9, bestEpoch: 5, wait: 1 }), stopping, 'ck.safetensors', note)).toEqual({ best: 0.9, bestEpoch: 5, wait: 1 });
    expect(seen).toHaveLength(1);
    expect(() => resumedEarlyStopping('{"best":', stopping, 'ck.safetensors', note)).toThrow(/not JSON \(a damaged file\?\)/);
  });
});

describe('the checkpoint folder', () => {
  it('is locked against a second run: a live holder is refused, a stale lock (its process gone) replaced with a note, and the lock released', () => {
    const dir = repoTempDir('ck-lock');
    const path = join(dir, 'ck.safetensors');
    const { seen, note } = lines();
    writeFileSync(lockPathOf(path), JSON.stringify({ pid: process.pid, host: hostname(), started: '2025-01-01T00:00:00.000Z' }));
    expect(() => lockCheckpoint(path, note)).toThrow(
      `another dlc train (pid ${process.pid}, started 2025-01-01T00:00:00.000Z) is writing the checkpoint ${path}: two runs would mix their files. Wait for it to finish, or give this run another --checkpoint (if no such run is going on, delete ${lockPathOf(path)})`,
    );
    const dead = deadPid();
    writeFileSync(lockPathOf(path), JSON.stringify({ pid: dead, host: hostname() }));
    const release = lockCheckpoint(path, note);
    expect(seen).toEqual([`note: removed a stale lock on ${path}: its run (pid ${dead}) ended without releasing it`]);
    expect(JSON.parse(readFileSync(lockPathOf(path), 'utf8')).pid).toBe(process.pid);
    release();
    expect(existsSync(lockPathOf(path))).toBe(false);
  });

  it("removes the temporary files of saves killed midway (their process gone), not a live writer's", () => {
    const dir = repoTempDir('ck-temp');
    const dead = deadPid();
    const stale = [`.ck.safetensors.${dead}.0123456789ab.tmp`, `.ck.epoch-20.safetensors.${dead}.ba9876543210.tmp`];
    const live = `.ck.best.safetensors.${process.ppid}.0123456789ab.tmp`;
    for (const f of [...stale, live, 'notes.txt']) writeFileSync(join(dir, f), 'x');
    openCheckpointFolder(checkpointPlan(join(dir, 'ck.safetensors'), {}, undefined), () => undefined)();
    expect(readdirSync(dir).sort()).toEqual([live, 'notes.txt'].sort());
  });

  it('a folder given as the checkpoint is refused before anything moves; an unwritable folder before any epoch', () => {
    const dir = repoTempDir('ck-folder');
    const runs = join(dir, 'runs');
    mkdirSync(runs);
    writeFileSync(join(runs, 'exp0-notes.txt'), 'mine');
    for (const given of [runs, `${runs}/`]) {
      expect(() => openCheckpointFolder(checkpointPlan(given, {}, undefined), () => undefined)).toThrow(`the checkpoint ${given} is a folder; give a file path such as ${join(given, 'model.safetensors')}`);
    }
    expect(readdirSync(dir)).toEqual(['runs']);
    expect(readdirSync(runs)).toEqual(['exp0-notes.txt']);
    // /sys takes no new files, even from root
    expect(() => openCheckpointFolder(checkpointPlan('/sys/dlc-test.safetensors', {}, undefined), () => undefined)).toThrow(
      'cannot write the checkpoint /sys/dlc-test.safetensors: permission denied; nothing was trained. Give a checkpoint path where files can be written (--checkpoint)',
    );
  });

  it('starting over twice keeps both earlier runs, each as a whole set of files', () => {
    const dir = repoTempDir('ck-generations');
    const plan = checkpointPlan(join(dir, 'ck.safetensors'), { keep: 2 }, undefined);
    const put = (names: string[], run: string) => names.forEach((n) => writeFileSync(join(dir, n), run));
    put(['ck.safetensors', 'ck.epoch-39.safetensors', 'ck.epoch-40.safetensors'], 'run 1');
    expect(moveEarlierRun(plan).map((p) => p.slice(dir.length + 1)).sort()).toEqual(['ck.epoch-39.previous.safetensors', 'ck.epoch-40.previous.safetensors', 'ck.previous.safetensors']);
    put(['ck.safetensors', 'ck.epoch-1.safetensors'], 'run 2');
    moveEarlierRun(plan);
    put(['ck.safetensors', 'ck.epoch-1.safetensors'], 'run 3');
    moveEarlierRun(plan);
    const held = Object.fromEntries(readdirSync(dir).sort().map((n) => [n, readFileSync(join(dir, n), 'utf8')]));
    expect(held).toEqual({
      'ck.epoch-1.previous-2.safetensors': 'run 2',
      'ck.epoch-1.previous.safetensors': 'run 3',
      'ck.epoch-39.previous-3.safetensors': 'run 1',
      'ck.epoch-40.previous-3.safetensors': 'run 1',
      'ck.previous-2.safetensors': 'run 2',
      'ck.previous-3.safetensors': 'run 1',
      'ck.previous.safetensors': 'run 3',
    });
  });
});

describe('writing files', () => {
  it('a folder that cannot be made is an error, not a hang; writeCheckpoint refusals are WeightsErrors naming the path', async () => {
    // Node's recursive mkdir spins forever where the file system answers ENOENT (/proc)
    await expect(writeFileAtomic('/proc/dlc-x/w.safetensors', Uint8Array.of(1))).rejects.toMatchObject({ code: 'ENOENT' });
    const dir = repoTempDir('ck-write');
    writeFileSync(join(dir, 'afile'), '');
    const under = join(dir, 'afile', 'w.safetensors');
    await expect(writeCheckpoint(under, { w: { dtype: 'f32', shape: [1], data: Float32Array.of(1) } })).rejects.toBeInstanceOf(WeightsError);
    await expect(writeCheckpoint(under, { w: { dtype: 'f32', shape: [1], data: Float32Array.of(1) } })).rejects.toThrow(`cannot write ${under}: a part of the path is a file, not a folder (nothing was replaced)`);
  }, 20_000);

  it('dlc weights refuses to write over the checkpoint it reads', async () => {
    const dir = repoTempDir('ck-weights');
    const ck = join(dir, 'ck.safetensors');
    writeFileSync(ck, await fakeModel.saveWeights({ metadata: {} }));
    const before = readFileSync(ck);
    const { seen, note } = lines();
    expect(await writeWeightsOnly(ck, join(dir, '.', 'ck.safetensors'), { err: note })).toBe(false);
    expect(seen[0]).toMatch(/^error: -o .*ck\.safetensors is the checkpoint it reads: .* lose its training state/);
    expect(readFileSync(ck).equals(before)).toBe(true);
  });
});
