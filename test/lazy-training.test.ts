// Inference-only use: create() compiles only the pipelines predict and evaluate run; the train steps' are built on the first training call (synchronously in trainStep, ahead of time by prepareTraining and fit) and train exactly as when built ahead.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { acquireDevice } from '../runtime/device.ts';
import { Model } from '../runtime/model.ts';
import { Dataset } from '../runtime/data.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { argsOf } from './helpers.ts';

function mlp(): ModelProgram {
  const r = compileSource(readFileSync('examples/mnist_mlp.dl', 'utf8'), 'examples/mnist_mlp.dl', undefined, { modelArgs: new Map([['MnistMlp', argsOf('MnistMlp', 'hidden: 16')]]) });
  return r.programs.find((p) => p.model === 'MnistMlp')!;
}

/** A device of the test's own whose pipeline creations are counted. */
async function countingDevice(): Promise<{ device: GPUDevice; pipelines: () => number }> {
  const { device } = await acquireDevice();
  let count = 0;
  const asyncCreate = device.createComputePipelineAsync.bind(device);
  const syncCreate = device.createComputePipeline.bind(device);
  Object.assign(device, {
    createComputePipelineAsync: (d: GPUComputePipelineDescriptor) => (count++, asyncCreate(d)),
    createComputePipeline: (d: GPUComputePipelineDescriptor) => (count++, syncCreate(d)),
  });
  return { device, pipelines: () => count };
}

const rows = (n: number, width: number) => Float32Array.from({ length: n * width }, (_, i) => ((i * 7919) % 101) / 101);
const labels = (n: number) => Int32Array.from({ length: n }, (_, i) => i % 10);

describe('training pipelines are built on the first training call', () => {
  it('create() builds only the inference graphs\' pipelines; predict adds none; the first trainStep builds the rest and trains as a model prepared ahead', { timeout: 180_000 }, async () => {
    const program = mlp();
    const lazy = await countingDevice();
    const eager = await countingDevice();
    const a = await Model.create(program, { device: lazy.device, seed: 3 });
    const b = await Model.create(program, { device: eager.device, seed: 3 });
    try {
      // every shader an inference kernel may run (its own, subgroup, CPU and wide variants): create() builds no others
      const variants = new Set(
        [program.graphs.predict, program.graphs.evaluate, ...(program.graphs.totals ? [program.graphs.totals] : [])].flatMap((g) =>
          g.kernels.flatMap((k) => [k.shader, k.subgroupShader, k.cpuShader, ...(k.cpuVariants ?? []).map((v) => v.shader), ...(k.wide ?? []).map((w) => w.shader)].filter((x) => x !== undefined)),
        ),
      );
      const afterCreate = lazy.pipelines();
      expect(afterCreate).toBeGreaterThan(0);
      expect(afterCreate).toBeLessThanOrEqual(variants.size);
      const image = rows(4, 784);
      const before = (await a.predict({ image })).probs;
      expect(lazy.pipelines()).toBe(afterCreate);

      await b.prepareTraining();
      const prepared = eager.pipelines();
      expect(prepared).toBeGreaterThan(afterCreate);
      for (let i = 0; i < 3; i++) {
        const batch = { image: rows(8, 784).map((v) => v * (i + 1) * 0.3), label: labels(8) };
        const [va, vb] = await Promise.all([a.trainStep(batch).values(), b.trainStep(batch).values()]);
        expect(va).toEqual(vb);
      }
      expect(lazy.pipelines()).toBeGreaterThan(afterCreate);
      expect(eager.pipelines()).toBe(prepared);
      expect(await a.getParameter('net.hidden.0.w')).toEqual(await b.getParameter('net.hidden.0.w'));
      expect((await a.predict({ image })).probs).not.toEqual(before);
      // fit prepares ahead, then trains
      const history = await a.fit({ train: new Dataset({ image: { data: rows(16, 784), shape: [784] }, label: { data: labels(16), shape: [] } }) }, { epochs: 1, batchSize: 8 });
      expect(history.epochs).toHaveLength(1);
    } finally {
      a.dispose();
      b.dispose();
      lazy.device.destroy();
      eager.device.destroy();
    }
  });
});
