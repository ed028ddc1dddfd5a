// Model.profile: every kernel of a step timed alone on real WebGPU, summed by op and by .dl line, and the model left untouched.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { formatProfile, summarizeProfile, type KernelTime } from '../runtime/profile.ts';
import { InputError } from '../runtime/errors.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getDevice } from './gpu-helpers.ts';
import { dlc, repoTempDir } from './cli-helpers.ts';
import { argsOf } from './helpers.ts';

function program(file: string, model: string, args: string): ModelProgram {
  const r = compileSource(readFileSync(`examples/${file}.dl`, 'utf8'), `examples/${file}.dl`, undefined, { modelArgs: new Map([[model, argsOf(model, args)]]) });
  const p = r.programs.find((x) => x.model === model);
  if (!p) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return p;
}

const B = 4;
const batch = {
  image: Float32Array.from({ length: B * 784 }, (_, i) => ((i * 7919) % 256) / 255),
  label: Int32Array.from({ length: B }, (_, i) => (i * 3) % 10),
};

describe('Model.profile', () => {
  it('times every kernel of the training step, sums them by op and by line, and trains nothing', { timeout: 120_000 }, async () => {
    const device = await getDevice();
    const p = program('mnist_mlp', 'MnistMlp', 'hidden: 8');
    const profiled = await Model.create(p, { device, seed: 3 });
    const fresh = await Model.create(p, { device, seed: 3 });
    try {
      const before = await profiled.saveWeights();
      const prof = await profiled.profile(batch, { reps: 2 });
      const kernels = p.graphs.steps.flatMap((g) => g.kernels.map((k, index) => ({ graph: g.name, index, op: k.op })));
      expect(prof.kernels.map(({ graph, index, op }) => ({ graph, index, op }))).toEqual(kernels);
      for (const k of prof.kernels) expect(Number.isFinite(k.ms) && k.ms >= 0, `${k.op}: ${k.ms}`).toBe(true);
      expect(prof.kernels.every((k) => k.source !== undefined)).toBe(true);
      expect(prof.sizes).toMatchObject({ B });
      expect(prof.roundTripMs).toBeGreaterThan(0);
      // the resolution is the empty submit's spread; kernels below it are marked, and counted
      expect(Number.isFinite(prof.resolutionMs) && prof.resolutionMs >= 0).toBe(true);
      expect(prof.kernels.filter((k) => k.belowResolution).map((k) => k.index)).toEqual(prof.kernels.filter((k) => k.ms < prof.resolutionMs).map((k) => k.index));
      expect(prof.belowResolution).toBe(prof.kernels.filter((k) => k.ms < prof.resolutionMs).length);
      const sum = (xs: readonly { ms: number }[]) => xs.reduce((a, x) => a + x.ms, 0);
      expect(sum(prof.byOp)).toBeCloseTo(prof.totalMs, 9);
      expect(sum(prof.bySource)).toBeCloseTo(prof.totalMs, 9);
      expect(prof.byOp.reduce((a, s) => a + s.kernels, 0)).toBe(kernels.length);
      expect(new Set(prof.byOp.map((s) => s.key))).toEqual(new Set(kernels.map((k) => k.op)));
      for (let i = 1; i < prof.byOp.length; i++) expect(prof.byOp[i].ms).toBeLessThanOrEqual(prof.byOp[i - 1].ms);
      const table = formatProfile(prof, 3);
      expect(table).toMatch(new RegExp(`^${kernels.length} kernels, `));
      expect(table).toContain(`x ${prof.byOp[0].key}`);
      // the model is as it was: same weights, same step count, and its next step is a fresh model's
      expect(profiled.step).toBe(0);
      expect(Buffer.from(await profiled.saveWeights()).equals(Buffer.from(before))).toBe(true);
      const [a, b] = [await profiled.trainStep(batch).values(), await fresh.trainStep(batch).values()];
      expect(a).toEqual(b);
      expect(Buffer.from(await profiled.saveWeights()).equals(Buffer.from(await fresh.saveWeights()))).toBe(true);
    } finally {
      profiled.dispose();
      fresh.dispose();
    }
  });

  it('profiles the predict and evaluate graphs, and rejects a bad repetition count', { timeout: 120_000 }, async () => {
    const device = await getDevice();
    const p = program('mnist_mlp', 'MnistMlp', 'hidden: 8');
    const model = await Model.create(p, { device, seed: 3 });
    try {
      const predict = await model.profile({ image: batch.image }, { graph: 'predict', reps: 1 });
      expect(predict.kernels.map((k) => k.op)).toEqual(p.graphs.predict.kernels.map((k) => k.op));
      expect(predict.kernels.every((k) => k.graph === 'predict')).toBe(true);
      const evaluate = await model.profile(batch, { graph: 'evaluate', reps: 1 });
      expect(evaluate.kernels).toHaveLength(p.graphs.evaluate.kernels.length);
      await expect(model.profile(batch, { reps: 0 })).rejects.toThrow(InputError);
      await expect(model.profile({ image: batch.image }, { reps: 1 })).rejects.toThrow(/no input `label`/);
    } finally {
      model.dispose();
    }
  });

  it('dlc train --profile prints the step\'s kernel table on the first batch and trains nothing', { timeout: 120_000 }, async () => {
    const path = join(repoTempDir('profile'), 'mlp.safetensors');
    const r = await dlc('train', 'examples/mnist_mlp.dl', '--model', 'MnistMlp', '--args', 'hidden: 16', '--limit', '64', '--batch', '16', '--no-progress', '--profile', '--checkpoint', path);
    expect(r.err).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^\d+ kernels, [\d.]+ ms of kernel time \(median of 5; empty submit [\d.]+ ms, varying by [\d.]+ ms\) on /m);
    expect(r.out).toMatch(/slowest \d+ kernels:\n {2}.* ms .*train#\d+ \w+ {2}(examples|stdlib)\/\w+\.dl:\d+:\d+/);
    expect(r.out).toContain('by op:');
    expect(existsSync(path)).toBe(false);
  });
});

describe('a profile whose kernels are below its resolution says so', () => {
  const kernel = (index: number, ms: number): KernelTime => ({ graph: 'train', index, op: 'fused_matmul', ms });
  const profileOf = (ms: readonly number[], resolutionMs: number) => summarizeProfile({ adapter: 'test', sizes: { B: 4 }, reps: 5, kernels: ms.map((x, i) => kernel(i, x)), roundTripMs: 10.9, resolutionMs });

  it('marks the kernels under the empty submit\'s spread and warns, instead of presenting noise as shares', () => {
    // the reporter's run: one kernel got all the noise, the rest read exactly 0
    const p = profileOf([8.973, 0.112, 0, 0, 0], 2.5);
    expect(p.belowResolution).toBe(4);
    expect(p.kernels.map((k) => k.belowResolution === true)).toEqual([false, true, true, true, true]);
    const table = formatProfile(p, 3);
    expect(table).toContain('empty submit 10.900 ms, varying by 2.500 ms');
    expect(table).toMatch(/warning: 4 of 5 kernels took less than the resolution of 2\.500 ms .*noise/);
    expect(table).toContain('~0.112 ms');
    expect(table).toMatch(/ 8\.973 ms /);
    const all = formatProfile(profileOf([0.3, 0.2, 0], 2.5), 3);
    expect(all).toMatch(/warning: every kernel took less than the resolution/);
  });

  it('says nothing when every kernel is above it', () => {
    const p = profileOf([8.9, 3.1], 0.05);
    expect(p.belowResolution).toBe(0);
    expect(formatProfile(p, 3)).not.toMatch(/warning|~/);
  });
});
