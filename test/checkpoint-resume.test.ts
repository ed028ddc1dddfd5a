// Checkpoints: training resumed from a checkpoint ends with the same state as uninterrupted training, and killing `dlc train` mid-save never leaves an unreadable checkpoint.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc, repoTempDir, ROOT } from './cli-helpers.ts';
import { EXIT_OK } from '../compiler/cli/main.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';

const MODEL = ['examples/mnist_mlp.dl', '--model', 'MnistMlp', '--args', 'hidden: 16', '--limit', '800', '--batch', '64', '--no-progress'];

/** `dlc train` of a long run (1000 epochs of 2 steps) in a child process, its output collected. */
function longRun(path: string, extra: readonly string[]) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/dlc.js'), 'train', ...MODEL, '--limit', '160', '--epochs', '1000', '--no-early-stopping', '--checkpoint', path, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  /** Resolves once two epochs of this run are trained and saved. */
  const twoEpochs = async () => {
    const started = Date.now();
    while ((output.match(/^epoch \d+\/1000/gm)?.length ?? 0) < 2) {
      if (Date.now() - started > 120_000) throw new Error(`dlc train did not save a checkpoint in time:\n${output}`);
      if (child.exitCode !== null) throw new Error(`dlc train exited early:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, exited, twoEpochs, output: () => output };
}

describe('checkpoints', () => {
  it('training resumed from a checkpoint gives the same parameters and optimizer state as uninterrupted training', { timeout: 180_000 }, async () => {
    const dir = repoTempDir('resume');
    const straight = join(dir, 'straight.safetensors');
    const split = join(dir, 'split.safetensors');
    const a = await dlc('train', ...MODEL, '--epochs', '4', '--checkpoint', straight);
    expect(a.status, a.err).toBe(EXIT_OK);
    const b1 = await dlc('train', ...MODEL, '--epochs', '2', '--checkpoint', split);
    expect(b1.status, b1.err).toBe(EXIT_OK);
    const b2 = await dlc('train', ...MODEL, '--epochs', '4', '--checkpoint', split, '--resume');
    expect(b2.status, b2.err).toBe(EXIT_OK);
    expect(b2.err).toContain('2 epochs done');
    // the resumed run trains epochs 3 and 4 only, and reports them under the same numbers
    expect(b2.out).toMatch(/^epoch 3\/4/m);
    expect(b2.out).not.toMatch(/^epoch 1\/4/m);
    expect(a.out.match(/^epoch 4\/4.*$/m)?.[0].replace(/\(.*s\)$/, '')).toBe(b2.out.match(/^epoch 4\/4.*$/m)?.[0].replace(/\(.*s\)$/, ''));
    const x = decodeSafetensors(readFileSync(straight));
    const y = decodeSafetensors(readFileSync(split));
    expect([...y.tensors.keys()].sort()).toEqual([...x.tensors.keys()].sort());
    // parameters, Adam moments, step counters and the RNG key
    expect([...x.tensors.keys()]).toEqual(expect.arrayContaining(['net.hidden.0.w', 'opt.train.t', 'rng.key', 'opt.train.net.hidden.0.w.m']));
    for (const [name, t] of x.tensors) {
      const u = y.tensors.get(name)!;
      expect(u.shape, name).toEqual(t.shape);
      expect(Array.from(u.data), name).toEqual(Array.from(t.data));
    }
    expect(x.metadata['dlc.epoch']).toBe('4');
    expect(y.metadata['dlc.step']).toBe(x.metadata['dlc.step']);
  });

  it('Ctrl-C (SIGINT) says which epoch the checkpoint holds and how to continue, and exits 130', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('interrupt');
    const path = join(dir, 'ck.safetensors');
    const run = longRun(path, []);
    await run.twoEpochs();
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.output()).toMatch(new RegExp(`interrupted: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} holds epoch \\d+; continue with --resume`));
  });

  it('killing `dlc train` at any moment leaves the latest checkpoint readable, and --resume continues from it', { timeout: 300_000 }, async () => {
    const dir = repoTempDir('resume');
    const path = join(dir, 'ck.safetensors');
    // a long run that saves every epoch (each epoch is 2 steps), killed at increasing delays after the first save
    let savedEpoch = 0;
    for (const delay of [0, 150, 400, 900]) {
      const run = longRun(path, existsSync(path) ? ['--resume'] : []);
      // wait for two saved epochs in this run, then kill without warning
      await run.twoEpochs();
      await new Promise((r) => setTimeout(r, delay));
      run.child.kill('SIGKILL');
      await run.exited;
      const saved = decodeSafetensors(readFileSync(path));
      // the epoch line prints just before its save, so at least the run's first epoch is saved, and nothing is lost
      const epoch = Number(saved.metadata['dlc.epoch']);
      expect(epoch).toBeGreaterThanOrEqual(savedEpoch + 1);
      savedEpoch = epoch;
      expect(saved.tensors.get('net.hidden.0.w')?.shape).toEqual([784, 16]);
    }
    // stray temporary files from a kill mid-write and the killed run's lock are the only traces, never a torn checkpoint
    expect(readdirSync(dir).filter((f) => !f.startsWith('.')).sort()).toEqual(['ck.best.safetensors', 'ck.safetensors', 'ck.safetensors.lock']);
    const last = Number(decodeSafetensors(readFileSync(path)).metadata['dlc.epoch']);
    const resumed = await dlc('train', ...MODEL, '--limit', '160', '--epochs', String(last + 1), '--checkpoint', path, '--resume');
    expect(resumed.status, resumed.err).toBe(EXIT_OK);
    expect(resumed.out).toMatch(new RegExp(`^epoch ${last + 1}/${last + 1}`, 'm'));
    // the run that resumed replaced the stale lock, removed the killed saves' temporary files, and released its lock
    expect(resumed.err).toMatch(/note: removed a stale lock on .*ck\.safetensors: its run \(pid \d+\) ended without releasing it/);
    expect(readdirSync(dir).sort()).toEqual(['ck.best.safetensors', 'ck.safetensors']);
  });
});
