// Inference-only use: create() compiles only the pipelines predict and evaluate run and holds no optimizer state; the train steps' pipelines, buffers and the optimizer's state come with the first training call (pipelines ahead of time by prepareTraining and fit), and train exactly as when made ahead.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { acquireDevice } from '../runtime/device.ts';
import { Model } from '../runtime/model.ts';
import { Dataset } from '../runtime/data.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
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

/** Counts the bytes of the buffers created on `device` from now on. */
function countBytes(device: GPUDevice): () => number {
  let bytes = 0;
  const create = device.createBuffer.bind(device);
  Object.assign(device, { createBuffer: (d: GPUBufferDescriptor) => ((bytes += d.size), create(d)) });
  return () => bytes;
}

describe("the optimizer's state is allocated on the first training call", () => {
  it('a model that only predicts holds none of it; saving, loading and reset before training act on it as when it was allocated', { timeout: 180_000 }, async () => {
    const program = mlp();
    const optimizer = program.state.filter((s) => s.path.startsWith('opt.'));
    const optimizerBytes = optimizer.reduce((a, s) => a + 4 * s.shape.reduce((x, y) => x * y, 1), 0);
    expect(optimizerBytes).toBeGreaterThan(50_000); // Adam: two moments per parameter
    const { device } = await acquireDevice();
    const bytes = countBytes(device);
    const batch = (i: number) => ({ image: rows(8, 784).map((v) => v * (i + 1) * 0.3), label: labels(8) });
    const a = await Model.create(program, { device, seed: 4, batchSize: 8 });
    const b = await Model.create(program, { device, seed: 11, batchSize: 8 });
    try {
      await a.predict({ image: rows(8, 784) });
      await a.evaluate(batch(0));
      // the saved file is as before: every state tensor, the optimizer's at its initial value
      const fresh = decodeSafetensors(await a.saveWeights());
      for (const s of program.state) expect(fresh.tensors.has(s.path), s.path).toBe(true);
      expect(Array.from(fresh.tensors.get(optimizer[1]!.path)!.data).every((v) => v === 0)).toBe(true);
      expect(Array.from(await a.getState(optimizer[1]!.path)).every((v) => v === 0)).toBe(true);
      const held = (m: Model) => (m as unknown as { executor: { state: Map<string, unknown> } }).executor.state;
      expect(optimizer.filter((s) => held(a).has(s.path))).toEqual([]);
      expect(held(a).has('rng.key')).toBe(true);
      const beforeTraining = bytes();
      await a.trainStep(batch(0)).values();
      // the first step allocated the optimizer's state (and its own buffers)
      expect(bytes() - beforeTraining).toBeGreaterThanOrEqual(optimizerBytes);
      expect(optimizer.every((s) => held(a).has(s.path))).toBe(true);
      for (let i = 1; i < 3; i++) await a.trainStep(batch(i)).values();
      // b loads a's whole checkpoint before it trains (moments held until allocated): both then train alike
      const checkpoint = await a.saveWeights();
      await b.loadWeights(checkpoint);
      b.step = a.step;
      const pending = decodeSafetensors(await b.saveWeights());
      const saved = decodeSafetensors(checkpoint);
      for (const s of optimizer) expect(pending.tensors.get(s.path)!.data, s.path).toEqual(saved.tensors.get(s.path)!.data);
      expect(await b.getState(optimizer[1]!.path)).toEqual(await a.getState(optimizer[1]!.path));
      for (let i = 3; i < 5; i++) {
        const [va, vb] = await Promise.all([a.trainStep(batch(i)).values(), b.trainStep(batch(i)).values()]);
        expect(vb).toEqual(va);
      }
      expect(await b.getParameter('net.hidden.0.w')).toEqual(await a.getParameter('net.hidden.0.w'));
      expect(await b.getState(optimizer[1]!.path)).toEqual(await a.getState(optimizer[1]!.path));
    } finally {
      a.dispose();
      b.dispose();
    }
    // reset before training (nothing allocated) and after (allocated) start the same run
    const c = await Model.create(program, { device, seed: 1 });
    const d = await Model.create(program, { device, seed: 1 });
    try {
      await d.trainStep(batch(7)).values();
      d.reset(6);
      c.reset(6);
      for (let i = 0; i < 2; i++) {
        const [vc, vd] = await Promise.all([c.trainStep(batch(i)).values(), d.trainStep(batch(i)).values()]);
        expect(vc).toEqual(vd);
      }
      expect(await c.saveWeights()).toEqual(await d.saveWeights());
    } finally {
      c.dispose();
      d.dispose();
      device.destroy();
    }
  });
});
