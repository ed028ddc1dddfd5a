// Sampling from language models: draw()'s temperature, top-k and top-p, sampleTokens on both next-token conventions (GPU), and dlc sample on a trained character Transformer.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc, repoTempDir, ROOT } from './cli-helpers.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { encodeSafetensors } from '../runtime/safetensors.ts';
import { draw, sampleTokens } from '../runtime/sample.ts';
import { getDevice } from './gpu-helpers.ts';

describe('draw', () => {
  const probs = Float32Array.from([0.2, 0.5, 0.3]);
  it('inverts the cumulative distribution, likeliest first', () => {
    // order 1 (0.5), 2 (0.3), 0 (0.2)
    expect([0, 0.49, 0.51, 0.79, 0.81, 0.999].map((u) => draw(probs, 1, undefined, u))).toEqual([1, 1, 2, 2, 0, 0]);
  });
  it('takes the likeliest at temperature 0 or top-k 1', () => {
    expect(draw(probs, 0, undefined, 0.99)).toBe(1);
    expect(draw(probs, 1, 1, 0.99)).toBe(1);
  });
  it('renormalizes the top k, and sharpens below temperature 1', () => {
    // top-2: 0.5 / 0.8 = 0.625 for token 1
    expect([0.6, 0.63].map((u) => draw(probs, 1, 2, u))).toEqual([1, 2]);
    // T = 0.5: p^2 = 0.25, 0.09, 0.04 -> token 1 has 0.658, token 2 0.237
    expect([0.65, 0.66, 0.89, 0.9].map((u) => draw(probs, 0.5, undefined, u))).toEqual([1, 2, 2, 0]);
  });
  it('top-p keeps the likeliest tokens until their share reaches p, at least one, and renormalizes', () => {
    // p = 0.7: 0.5, then 0.5 + 0.3 = 0.8 >= 0.7: tokens 1 and 2, with 0.625 and 0.375
    expect([0.6, 0.63, 0.999].map((u) => draw(probs, 1, undefined, u, 0.7))).toEqual([1, 2, 2]);
    // p = 0.4: token 1 alone
    expect(draw(probs, 1, undefined, 0.999, 0.4)).toBe(1);
    // p = 1: every token
    expect(draw(probs, 1, undefined, 0.999, 1)).toBe(0);
  });
});

/** A model whose next token is the successor (mod V) of the token it reads last: row k of the table peaks at k + 1. */
const successorModel = (reads: string) => `use std.nn.{Embedding}
model Next(V: int = 7) {
  input tokens: i32[B, L]
  where L >= 2
  layer emb = Embedding(V, V)
  ${reads}
  output next_probs = softmax(emb(last), axis: -1)
}
`;

describe('sampleTokens', () => {
  for (const [convention, reads] of [
    ['reads the whole row', 'let last = tokens[:, -1]'],
    ['reads tokens[:, :-1] (trained on rows shifted by one)', 'let x = tokens[:, :-1]\n  let last = x[:, -1]'],
  ] as const) {
    it(`follows a model that ${convention}`, { timeout: 60_000 }, async () => {
      const r = compileSource(successorModel(reads), 'next.dl');
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      const model = await Model.create(r.programs[0], { device: await getDevice(), batchSize: 1, sizes: { L: 8 } });
      try {
        const table = new Float32Array(49);
        for (let k = 0; k < 7; k++) table[k * 7 + ((k + 1) % 7)] = 20;
        await model.loadWeights(encodeSafetensors({ 'emb.weight': { dtype: 'f32', shape: [7, 7], data: table } }));
        // rows longer than the context slide; the successor chain never breaks
        expect(await sampleTokens(model, [5, 3], { length: 12, context: 4, temperature: 0 })).toEqual([4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1]);
        const seen: number[] = [];
        const drawn = await sampleTokens(model, [1, 2], { length: 5, context: 8, seed: 4, onToken: (t) => seen.push(t) });
        expect(drawn).toEqual([3, 4, 5, 6, 0]);
        expect(seen).toEqual(drawn);
      } finally {
        model.dispose();
      }
    });
  }

  it('samples from a model whose rows have a fixed length (a scan needs one), padding a short prompt on the left', { timeout: 60_000 }, async () => {
    // the successor model over rows of exactly 6 tokens; its last token is the one that counts
    const source = successorModel('let last = tokens[:, -1]').replace('input tokens: i32[B, L]\n  where L >= 2', 'input tokens: i32[B, 6]');
    const r = compileSource(source, 'next.dl');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice(), batchSize: 1 });
    try {
      const table = new Float32Array(49);
      for (let k = 0; k < 7; k++) table[k * 7 + ((k + 1) % 7)] = 20;
      await model.loadWeights(encodeSafetensors({ 'emb.weight': { dtype: 'f32', shape: [7, 7], data: table } }));
      // [5, 3] is read as [5, 5, 5, 5, 5, 3]; the context option gives way to the fixed length
      expect(await sampleTokens(model, [5, 3], { length: 9, context: 100, temperature: 0 })).toEqual([4, 5, 6, 0, 1, 2, 3, 4, 5]);
    } finally {
      model.dispose();
    }
  });
});

describe('the generated module of a language model', () => {
  it('has a typed sample() that runs sampleTokens on its token input and next-token output', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('sample-module');
    writeFileSync(join(dir, 'next.dl'), successorModel('let last = tokens[:, -1]'));
    const compiled = await dlc('compile', join(dir, 'next.dl'), '-o', dir, '--runtime', relative(dir, join(ROOT, 'runtime/index.ts')));
    expect(compiled.status, compiled.err).toBe(0);
    const source = readFileSync(join(dir, 'next.ts'), 'utf8');
    expect(source).toContain("sample(prompt: readonly number[], options: Omit<SampleOptions, 'input' | 'output'>): Promise<number[]>");
    const mod = (await import(join(dir, 'next.ts'))) as {
      create(options: object): Promise<{ loadWeights(bytes: Uint8Array): Promise<unknown>; sample(prompt: readonly number[], options: object): Promise<number[]>; dispose(): void }>;
    };
    const model = await mod.create({ device: await getDevice(), batchSize: 1, sizes: { L: 8 } });
    try {
      const table = new Float32Array(49);
      for (let k = 0; k < 7; k++) table[k * 7 + ((k + 3) % 7)] = 20;
      await model.loadWeights(encodeSafetensors({ 'emb.weight': { dtype: 'f32', shape: [7, 7], data: table } }));
      expect(await model.sample([5, 2], { length: 4, context: 8, temperature: 0 })).toEqual([5, 1, 4, 0]);
    } finally {
      model.dispose();
    }
  });
});

describe('dlc sample', () => {
  it('continues a prompt with a character Transformer trained by dlc train, reading the vocabulary from the checkpoint', { timeout: 240_000 }, async () => {
    const dir = repoTempDir('sample');
    // a period of 25 characters, so the training windows (16 apart) start at every phase of it
    writeFileSync(join(dir, 'pattern.txt'), 'the cat sat on a red mat\n'.repeat(300));
    const gpt = (await import('node:fs')).readFileSync('examples/char_transformer.dl', 'utf8');
    const small = gpt
      .replace(/train CharGPT\([^)]*\) \{[^]*$/, '')
      .concat(
        'train CharGPT(vocab: 13, ctx: 16, d: 32, heads: 2, depth: 1, p: 0.0) {\n',
        '  data = text(path: "pattern.txt", context: 17)\n  split = [0.9, 0.1]\n  seed = 1\n',
        '  optimizer = adamw(lr: 1e-2, weight_decay: 0.0)\n  batch = 32\n  epochs = 8\n  clip_grad_norm = 1.0\n',
        '  checkpoint { path = "gpt.safetensors" }\n}\n',
      );
    const file = join(dir, 'gpt.dl');
    writeFileSync(file, small);
    const trained = await dlc('train', file, '--no-progress');
    expect(trained.status, trained.err).toBe(0);
    const accuracy = Number(/^validation .*accuracy (\S+)/m.exec(trained.out)?.[1]);
    expect(accuracy).toBeGreaterThan(0.9);
    // the checkpoint knows the vocabulary and the window length, so sampling needs no data
    writeFileSync(join(dir, 'pattern.txt'), '');
    const greedy = await dlc('sample', file, '--prompt', 'a red', '--length', '60', '--temperature', '0');
    expect(greedy.status, greedy.err).toBe(0);
    expect(greedy.out).toBe(`${'a red mat\nthe cat sat on a red mat\nthe cat sat on a red mat\nthe cat sat on'.slice(0, 65)}\n`);
    const seeded = await Promise.all([1, 1, 2].map((seed) => dlc('sample', file, '--length', '30', '--seed', String(seed), '--top-k', '3')));
    expect(seeded[0].out).toBe(seeded[1].out);
    expect(seeded[0].out).toHaveLength(32);
    const unknown = await dlc('sample', file, '--prompt', 'THE CAT');
    expect(unknown.status).toBe(1);
    expect(unknown.err).toContain('error: the prompt has "T", "H", "E", "C", "A", not in the model\'s vocabulary of 13 characters');
    const bad = await dlc('sample', file, '--temperature', 'hot');
    expect(bad.err).toContain('--temperature must be a number of at least 0, got `hot`');
    const notLm = await dlc('sample', 'examples/mnist_mlp.dl');
    expect(notLm.status).toBe(1);
    expect(notLm.err).toContain('has no trained model with an i32 token input [B, L] and a next-token output [B, V]');
  });
});
