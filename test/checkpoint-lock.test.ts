// The checkpoint lock (compiler/cli/checkpoints.ts): a stale lock replaced by exactly one of the runs that find it, an empty or unreadable lock stale only after a grace period, and a live lock reported before anything reads the checkpoint.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { repoTempDir } from './cli-helpers.ts';
import { lockCheckpoint, lockPathOf, refuseIfLocked, UNREADABLE_LOCK_GRACE_MS } from '../compiler/cli/checkpoints.ts';

/** A run that starts while this one reads `path`: it happens inside that read, as a second process would between two steps. */
const between = vi.hoisted(() => ({ path: '', run: undefined as (() => void) | undefined }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((...args: Parameters<typeof fs.readFileSync>) => {
    const text = fs.readFileSync(...args);
    if (between.run && args[0] === between.path) {
      const run = between.run;
      between.run = undefined;
      run();
    }
    return text;
  }) as typeof fs.readFileSync;
  return { ...fs, default: { ...fs, readFileSync }, readFileSync };
});

const here = dirname(fileURLToPath(import.meta.url));

/** The pid of a process that has ended. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

const noted = () => {
  const seen: string[] = [];
  return { seen, note: (l: string) => seen.push(l) };
};

describe('the checkpoint lock', () => {
  it('a stale lock is replaced by one run only: a run that judged it stale before another replaced it is refused, not handed the lock too', () => {
    const path = join(repoTempDir('lock-race'), 'ck.safetensors');
    const dead = deadPid();
    writeFileSync(lockPathOf(path), JSON.stringify({ pid: dead, host: hostname() }));
    const first = noted();
    const second = noted();
    let secondRelease: (() => void) | undefined;
    // the second run reads the stale lock, and the first takes it over in the meantime
    between.path = lockPathOf(path);
    between.run = () => {
      secondRelease = lockCheckpoint(path, first.note);
    };
    expect(() => lockCheckpoint(path, second.note)).toThrow(`another dlc train (pid ${process.pid}, started `);
    expect(between.run).toBeUndefined();
    expect(first.seen).toEqual([`note: removed a stale lock on ${path}: its run (pid ${dead}) ended without releasing it`]);
    expect(second.seen).toEqual([]);
    // the lock is the first run's, whole, and nothing of the takeover is left
    const held = readFileSync(lockPathOf(path), 'utf8');
    secondRelease!();
    expect(existsSync(lockPathOf(path))).toBe(false);
    expect(JSON.parse(held).pid).toBe(process.pid);
    expect(existsSync(`${lockPathOf(path)}.takeover`)).toBe(false);
  });

  it('two processes that start together over stale locks never both take one', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('lock-race-processes');
    const count = 60;
    for (let i = 0; i < count; i++) {
      // stale by a dead pid, or empty and past the grace period (a run killed as it took the lock)
      const lock = lockPathOf(join(dir, `ck${i}.safetensors`));
      writeFileSync(lock, i % 2 === 0 ? JSON.stringify({ pid: deadPid(), host: hostname() }) : '');
      const old = (Date.now() - 2 * UNREADABLE_LOCK_GRACE_MS) / 1000;
      utimesSync(lock, old, old);
    }
    const start = Date.now() + 15_000;
    const child = () =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', join(here, 'checkpoint-lock-child.ts'), dir, String(start), String(count), '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d));
        p.stderr.on('data', (d: Buffer) => (err += d));
        p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const [a, b] = await Promise.all([child(), child()]);
    expect(a).toHaveLength(count);
    expect(b).toHaveLength(count);
    const both = [...a].filter((x, i) => x === 'Y' && b[i] === 'Y').length;
    const neither = [...a].filter((x, i) => x === 'n' && b[i] === 'n').length;
    expect({ both, neither }).toEqual({ both: 0, neither: 0 });
  });

  it('an empty or unreadable lock blocks a run only while it may be another run taking the lock: older than the grace period it is replaced, with a note', () => {
    const dir = repoTempDir('lock-unreadable');
    for (const [text, what] of [['', 'empty'], ['garbage{', 'not a lock dlc writes'], ['{"pid":"abc"}', 'not a lock dlc writes']] as const) {
      const path = join(dir, `ck-${what.length}-${text.length}.safetensors`);
      const lock = lockPathOf(path);
      writeFileSync(lock, text);
      const { seen, note } = noted();
      const refusal = `the lock on the checkpoint ${path} (${lock}) ${text === '' ? 'is empty' : 'names no run'}: another dlc train is taking it right now, or one was killed as it did (it counts as stale 5 s after it was written). Wait for it to finish, or give this run another --checkpoint (if no such run is going on, delete ${lock})`;
      expect(() => lockCheckpoint(path, note)).toThrow(refusal);
      expect(() => refuseIfLocked(path)).toThrow(refusal);
      const old = (Date.now() - 60_000) / 1000;
      utimesSync(lock, old, old);
      refuseIfLocked(path);
      const release = lockCheckpoint(path, note);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(new RegExp(`^note: removed a stale lock on .*: it was ${what} and 6\\d s old \\(a run killed as it took the lock\\?\\)$`));
      expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
      release();
      expect(existsSync(lock)).toBe(false);
    }
  });

  it('a takeover left by a run killed midway is reported with what to delete', () => {
    const path = join(repoTempDir('lock-takeover'), 'ck.safetensors');
    const lock = lockPathOf(path);
    writeFileSync(lock, JSON.stringify({ pid: deadPid(), host: hostname() }));
    writeFileSync(`${lock}.takeover`, '');
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(`${lock}.takeover`, old, old);
    expect(() => lockCheckpoint(path, () => undefined)).toThrow(
      new RegExp(`^the stale lock on the checkpoint .*ck\\.safetensors was being replaced by a run that did not finish \\(.*ck\\.safetensors\\.lock\\.takeover is 6\\d s old\\): if no dlc train is starting on this checkpoint, delete .*\\.takeover and .*ck\\.safetensors\\.lock$`),
    );
  });

  it('refuseIfLocked names a live holder and lets a stale lock be', () => {
    const path = join(repoTempDir('lock-refuse'), 'ck.safetensors');
    refuseIfLocked(path);
    writeFileSync(lockPathOf(path), JSON.stringify({ pid: deadPid(), host: hostname() }));
    refuseIfLocked(path);
    writeFileSync(lockPathOf(path), JSON.stringify({ pid: process.pid, host: hostname(), started: '2025-01-01T00:00:00.000Z' }));
    expect(() => refuseIfLocked(path)).toThrow(`another dlc train (pid ${process.pid}, started 2025-01-01T00:00:00.000Z) is writing the checkpoint ${path}`);
  });
});
