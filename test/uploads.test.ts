// Inputs written through the staging pool (runtime/upload.ts) train, evaluate and predict bit for bit like queue.writeBuffer, and fall back to it without waiting.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import type { Executor } from '../runtime/executor.ts';
import { Model, type CreateOptions } from '../runtime/model.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { argsOf, randomBatch, type Batch } from './helpers.ts';
import { getDevice } from './gpu-helpers.ts';

function program(file: string, model: string, args: string): ModelProgram {
  const r = compileSource(readFileSync(`examples/${file}.dl`, 'utf8'), `examples/${file}.dl`, undefined, { modelArgs: new Map([[model, argsOf(model, args)]]) });
  const p = r.programs.find((x) => x.model === model);
  if (!p) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return p;
}

/** The pool's tally of one model: writes served from staging buffers, and those through writeBuffer. */
const counts = (m: Model) => (m as unknown as { executor: Executor }).executor.uploads.counts;

interface Run {
  losses: Record<string, number>[];
  evaluated: Record<string, number>[];
  predicted: number[][];
  weights: Uint8Array;
  counts: { staged: number; direct: number };
}

/** Train on `batches` (one trainStep each, values read at the end), evaluate them back to back, predict the first, save. */
async function run(p: ModelProgram, batches: readonly Batch[], uploads: CreateOptions['uploads']): Promise<Run> {
  const model = await Model.create(p, { device: await getDevice(), seed: 5, batchSize: 8, uploads });
  try {
    const steps = batches.map((b) => model.trainStep(b));
    const losses = await Promise.all(steps.map((s) => s.values()));
    const evaluated = await model.evaluateBatches(batches);
    const out = await model.predict(batches[0]);
    const predicted = Object.values(out).map((a) => [...a]);
    return { losses, evaluated, predicted, weights: await model.saveWeights(), counts: { ...counts(model) } };
  } finally {
    model.dispose();
  }
}

describe('staged input uploads', () => {
  const cases: { name: string; p: () => ModelProgram; ints: Record<string, number> }[] = [
    { name: 'the MNIST MLP', p: () => program('mnist_mlp', 'MnistMlp', 'hidden: 8'), ints: { label: 10 } },
    // two step graphs (discriminator, generator) in one command buffer, each copying its own batch
    { name: 'the GAN', p: () => program('gan', 'Gan', 'latent: 4, hidden: 8, pixels: 12'), ints: {} },
  ];
  for (const c of cases) {
    it(`${c.name}: staged copies give the same losses, metrics, outputs and weights as queue.writeBuffer, bit for bit`, { timeout: 120_000 }, async () => {
      const p = c.p();
      const random = seededRandom(11);
      // full batches, then a smaller last one (the pool's buffers of the larger size give way)
      const batches = [8, 8, 8, 3].map((B) => randomBatch(p, { B }, random, c.ints));
      const direct = await run(p, batches, false);
      const staged = await run(p, batches, { minBytes: 16, maxBuffers: 4 });
      expect(direct.counts.staged).toBe(0);
      expect(staged.counts.staged).toBeGreaterThanOrEqual(batches.length);
      expect(staged.losses).toEqual(direct.losses);
      expect(staged.evaluated).toEqual(direct.evaluated);
      expect(staged.predicted).toEqual(direct.predicted);
      expect(Buffer.from(staged.weights).equals(Buffer.from(direct.weights))).toBe(true);
      for (const l of staged.losses) for (const v of Object.values(l)) expect(Number.isFinite(v)).toBe(true);
    });
  }

  it('with every staging buffer in flight, a write goes through queue.writeBuffer instead of waiting', { timeout: 60_000 }, async () => {
    const p = program('mnist_mlp', 'MnistMlp', 'hidden: 8');
    const random = seededRandom(12);
    const batches = [0, 1, 2, 3].map(() => randomBatch(p, { B: 8 }, random, { label: 10 }));
    const model = await Model.create(p, { device: await getDevice(), seed: 5, batchSize: 8, uploads: { minBytes: 1024, maxBuffers: 1 } });
    try {
      // submitted back to back: the one staging buffer is mapped again only after the first submit has run
      const evaluated = await model.evaluateBatches(batches);
      // only the images (8 x 784 floats) are over 1 KiB; the labels always go through writeBuffer
      expect(counts(model)).toEqual({ staged: 1, direct: 7 });
      const reference = await Model.create(p, { device: await getDevice(), seed: 5, batchSize: 8, uploads: false });
      try {
        expect(evaluated).toEqual(await reference.evaluateBatches(batches));
      } finally {
        reference.dispose();
      }
      // once the GPU is done, the buffer is mapped again and serves the next write
      await (await getDevice()).queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, 10));
      await model.evaluate(batches[0]);
      expect(counts(model).staged).toBe(2);
    } finally {
      model.dispose();
    }
  });

  it('disposing a model while its staging buffers are being mapped again is clean', { timeout: 60_000 }, async () => {
    const p = program('mnist_mlp', 'MnistMlp', 'hidden: 8');
    const batch = randomBatch(p, { B: 8 }, seededRandom(13), { label: 10 });
    const model = await Model.create(p, { device: await getDevice(), seed: 5, batchSize: 8, uploads: { minBytes: 16 } });
    model.trainStep(batch);
    model.trainStep(batch);
    model.dispose();
    await (await getDevice()).queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 10));
    expect(counts(model).staged).toBeGreaterThan(0);
  });
});
