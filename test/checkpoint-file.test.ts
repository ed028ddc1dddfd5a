// Tests for atomic checkpoint writes: complete files only, even when the writer is killed mid-write; failures leave the old file and no temp files.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { WeightsError } from '../runtime/errors.ts';
import { isTemporaryFileOf, readCheckpoint, temporaryPathFor, writeCheckpoint, writeFileAtomic } from '../runtime/node/checkpoint-file.ts';

const here = dirname(fileURLToPath(import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'dlc-checkpoint-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function temporaryFilesIn(dir: string, target: string): string[] {
  return readdirSync(dir).filter((f) => isTemporaryFileOf(f, target));
}

describe('writeFileAtomic', () => {
  it('writes, creates parent directories, replaces, and leaves no temporary files', async () => {
    const target = join(scratch, 'a', 'b', 'model.safetensors');
    await writeFileAtomic(target, Uint8Array.of(1, 2, 3));
    expect([...readFileSync(target)]).toEqual([1, 2, 3]);
    await writeFileAtomic(target, Uint8Array.of(9));
    expect([...readFileSync(target)]).toEqual([9]);
    expect(readdirSync(dirname(target))).toEqual(['model.safetensors']);
    expect(isTemporaryFileOf(temporaryPathFor(target).slice(dirname(target).length + 1), target)).toBe(true);
    expect(isTemporaryFileOf('model.safetensors', target)).toBe(false);
  });

  it('leaves the old file intact and removes its temporary file when the write fails', async () => {
    const dir = join(scratch, 'fail');
    mkdirSync(dir);
    const target = join(dir, 'model.safetensors');
    writeFileSync(target, 'old contents');
    // Bytes that make the write itself throw after the temporary file exists.
    await expect(writeFileAtomic(target, { length: 10 } as unknown as Uint8Array)).rejects.toThrow();
    expect(readFileSync(target, 'utf8')).toBe('old contents');
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    // A rename that fails (the target is a non-empty directory).
    const blocked = join(dir, 'blocked');
    mkdirSync(join(blocked, 'inside'), { recursive: true });
    await expect(writeFileAtomic(blocked, Uint8Array.of(1))).rejects.toThrow();
    expect(readdirSync(blocked)).toEqual(['inside']);
    expect(readdirSync(dir).sort()).toEqual(['blocked', 'model.safetensors']);
  });

  it('never leaves a partial file when the writer is killed mid-write', async () => {
    const dir = join(scratch, 'crash');
    const target = join(dir, 'model.safetensors');
    let generation = 0;
    let interruptedWrites = 0;
    // at least 6 kills, and more (up to 30) until one lands mid-write: where it lands depends on the load
    for (let round = 0; round < 30 && (round < 6 || interruptedWrites === 0); round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'checkpoint-crash-child.ts'), target, String(generation * 1000)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      // 'close', not 'exit': every line the child wrote must be read before checking the file.
      const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
      // Wait for at least one completed write, then kill at a varying moment.
      const started = Date.now();
      while (!out.includes('\n')) {
        if (Date.now() - started > 60_000 || child.exitCode !== null) throw new Error(`the writer did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 5 + (round % 6) * 17));
      child.kill('SIGKILL');
      await exited;
      const leftovers = temporaryFilesIn(dir, target);
      if (leftovers.length > 0) interruptedWrites++;
      for (const f of leftovers) rmSync(join(dir, f));
      const { tensors, metadata } = await readCheckpoint(target);
      const written = Number(metadata.generation);
      const lines = out.trim().split('\n').map(Number);
      // The file holds the last reported generation, or the one being written when the kill came (renamed, not yet reported).
      expect([lines[lines.length - 1], lines[lines.length - 1] + 1]).toContain(written);
      const data = tensors.get('weights')!.data;
      expect(data.length).toBe(1 << 20);
      expect(data.every((v) => v === written)).toBe(true);
      generation++;
    }
    // Not a correctness condition, but the test is only meaningful if some kills interrupted a write.
    expect(interruptedWrites).toBeGreaterThan(0);
  });
});

describe('checkpoints', () => {
  it('round-trip through a file', async () => {
    const path = join(scratch, 'ckpt', 'step-1.safetensors');
    await writeCheckpoint(path, { w: { dtype: 'f32', shape: [2], data: Float32Array.of(1, 2) } }, { step: '1' });
    const { tensors, metadata } = await readCheckpoint(path);
    expect(metadata).toEqual({ step: '1' });
    expect(tensors.get('w')!.data).toEqual(Float32Array.of(1, 2));
  });

  it('name the path when reading fails', async () => {
    await expect(readCheckpoint(join(scratch, 'nope.safetensors'))).rejects.toThrow(/checkpoint not found: .*nope\.safetensors/);
    const bad = join(scratch, 'bad.safetensors');
    writeFileSync(bad, 'garbage');
    await expect(readCheckpoint(bad)).rejects.toThrow(`${bad}: invalid safetensors file: the file is 7 bytes, too short for the 8-byte header length`);
    await expect(readCheckpoint(bad)).rejects.toMatchObject({ name: 'WeightsError', code: 'weights' });
    await expect(readCheckpoint(join(scratch, 'nope.safetensors'))).rejects.toBeInstanceOf(WeightsError);
  });
});
