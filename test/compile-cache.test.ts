// The compile cache of the commands that run a model: a hit skips compiling, an edit to the file or a local import misses, DLC_CACHE=off stores nothing.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dlc, repoTempDir } from './cli-helpers.ts';

const LAYER = 'use std.nn.{Dense}\n\nlayer Hidden(n: int) {\n  layer fc = Dense(4, n)\n  forward(x: f32[B, 4]) -> f32[B, n] = relu(fc(x))\n}\n';
const MODEL = `use "./hidden.dl".{Hidden}
use std.nn.{Dense}

model Iris {
  input features: f32[B, 4]
  input label: i32[B]
  layer h = Hidden(8)
  layer out = Dense(8, 3)
  let logits = out(h(features))
  loss = cross_entropy(logits, label)
  metric accuracy = accuracy(logits, label)
}

train Iris {
  data = iris()
  split = [0.8, 0.2]
  batch = 32
  epochs = 1
}
`;

describe('the compile cache', () => {
  let saved: Record<string, string | undefined>;
  let cache: string;
  beforeEach(() => {
    saved = { DLC_CACHE_DIR: process.env.DLC_CACHE_DIR, DLC_CACHE: process.env.DLC_CACHE };
    cache = repoTempDir('compile-cache');
    process.env.DLC_CACHE_DIR = cache;
    delete process.env.DLC_CACHE;
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('serves an unchanged file and its imports from the cache, and compiles again after an edit to either', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('cached-model');
    const file = join(dir, 'iris.dl');
    writeFileSync(join(dir, 'hidden.dl'), LAYER);
    writeFileSync(file, MODEL);
    const train = () => dlc('train', file, '--no-progress', '--checkpoint', join(dir, 'ck.safetensors'));
    const first = await train();
    expect(first.status, first.err).toBe(0);
    const entries = readdirSync(cache);
    expect(entries).toHaveLength(1);
    // the entry is what the next run uses: change its epochs and the run follows
    const path = join(cache, entries[0]);
    const entry = JSON.parse(readFileSync(path, 'utf8'));
    expect(entry.sources.map((s: { path: string }) => s.path).sort()).toEqual([join(dir, 'hidden.dl'), file]);
    entry.programs[0].training.settings.epochs = 2;
    writeFileSync(path, JSON.stringify(entry));
    const hit = await train();
    expect(hit.err).toContain('batch 32, 2 epochs');
    // an edited import is a miss: compiled again, and stored again
    writeFileSync(join(dir, 'hidden.dl'), LAYER.replace('relu', 'tanh'));
    const miss = await train();
    expect(miss.err).toContain('batch 32, 1 epoch');
    expect(JSON.parse(readFileSync(path, 'utf8')).programs[0].training.settings.epochs).toBe(1);
    // other hyperparameters are another entry; a broken entry is a miss
    writeFileSync(path, '{"format": 1, "sources": [');
    expect((await train()).status).toBe(0);
    expect(JSON.parse(readFileSync(path, 'utf8')).format).toBe(1);
    expect((await dlc('train', file, '--no-progress', '--checkpoint', join(dir, 'ck.safetensors'), '--args', 'hidden: 8')).status).toBe(1);
    expect(readdirSync(cache)).toHaveLength(1);
  });

  it('stores nothing with DLC_CACHE=off, nor for a file with errors', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('uncached-model');
    writeFileSync(join(dir, 'hidden.dl'), LAYER);
    writeFileSync(join(dir, 'iris.dl'), MODEL);
    process.env.DLC_CACHE = 'off';
    expect((await dlc('evaluate', join(dir, 'iris.dl'), '--checkpoint', join(dir, 'none.safetensors'))).status).toBe(1);
    expect(readdirSync(cache)).toEqual([]);
    delete process.env.DLC_CACHE;
    writeFileSync(join(dir, 'iris.dl'), MODEL.replace('Dense(8, 3)', 'Dense(9, 3)'));
    const broken = await dlc('evaluate', join(dir, 'iris.dl'), '--checkpoint', join(dir, 'none.safetensors'));
    expect(broken.err).toContain('error[E');
    expect(readdirSync(cache)).toEqual([]);
  });
});
