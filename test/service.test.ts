// dlc in a long-running service: shared devices, max_batch, buffers released and trimmed, bounded pools, typed errors, named steps, sizes per call and parameter access.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { Model } from '../runtime/model.ts';
import { acquireDevice } from '../runtime/device.ts';
import { Dataset } from '../runtime/data.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { BusyError, DeviceLostError, DisposedError, DlcRuntimeError, ExpiredError, GPUValidationError, InputError, OutOfMemoryError } from '../runtime/errors.ts';
import { argsOf } from './helpers.ts';
import { toStorageArray } from '../runtime/executor.ts';

function program(file: string, model: string, args: string): ModelProgram {
  const r = compileSource(readFileSync(`examples/${file}.dl`, 'utf8'), `examples/${file}.dl`, undefined, { modelArgs: new Map([[model, argsOf(model, args)]]) });
  const p = r.programs.find((x) => x.model === model);
  if (!p) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return p;
}

const TINY = `use std.nn.{Dense}
use std.act.{softmax}
use std.loss.{cross_entropy}

model Tiny {
  input x: f32[B, 4]
  input y: i32[B]
  layer fc = Dense(4, 3)
  let logits = fc(x)
  output probs = softmax(logits, axis: -1)
  loss = cross_entropy(logits, y)
}

train Tiny {
  optimizer = sgd(lr: 0.1)
  batch = 4
  max_batch = 8
}
`;

function tiny(): ModelProgram {
  const r = compileSource(TINY, 'tiny.dl');
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !r.programs[0]) throw new Error(errors.map((d) => d.message).join('\n'));
  return r.programs[0];
}

const MLP = () => program('mnist_mlp', 'MnistMlp', 'hidden: 8');

function rows(n: number, width: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n * width }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32));
}
const labels = (n: number, k: number) => Int32Array.from({ length: n }, (_, i) => i % k);

/** A device of the test's own (errors made on it stay in the test). */
async function ownDevice(): Promise<GPUDevice> {
  return (await acquireDevice()).device;
}

/** Counts the live GPU buffers and their bytes made on `device` from now on (createBuffer and destroy wrapped, as a reporter did). */
function trackBuffers(device: GPUDevice): { live: Set<GPUBuffer>; bytes(): number; restore(): void } {
  const live = new Set<GPUBuffer>();
  const deviceProto = Object.getPrototypeOf(device) as GPUDevice;
  const bufferProto = (globalThis as unknown as { GPUBuffer: { prototype: GPUBuffer } }).GPUBuffer.prototype;
  const create = deviceProto.createBuffer;
  const destroy = bufferProto.destroy;
  deviceProto.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor) {
    const b = create.call(this, desc);
    if (this === device) live.add(b);
    return b;
  };
  bufferProto.destroy = function (this: GPUBuffer) {
    live.delete(this);
    return destroy.call(this);
  };
  return {
    live,
    bytes: () => [...live].reduce((a, b) => a + b.size, 0),
    restore: () => {
      deviceProto.createBuffer = create;
      bufferProto.destroy = destroy;
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 50));

describe('a shared device', () => {
  it("another user's invalid WebGPU call leaves the models on the device working; the model's own errors are still reported", { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(MLP(), { device, seed: 1 });
    try {
      const image = rows(2, 784);
      const before = (await model.predict({ image })).probs;
      // unrelated code on the same device: MAP_READ | STORAGE is invalid, made outside any error scope
      device.createBuffer({ size: 16, usage: 0x1 | 0x80 });
      await device.queue.onSubmittedWorkDone();
      await settle();
      for (let i = 0; i < 2; i++) expect((await model.predict({ image })).probs).toEqual(before);
      await expect(model.trainStep({ image, label: labels(2, 10) }).values()).resolves.toHaveProperty('loss');
      // the model's own invalid work (its parameter buffer destroyed behind its back) is its error, and stays so
      const executor = (model as unknown as { executor: { arenas: GPUBuffer[]; params: Map<string, { buffer: GPUBuffer }> } }).executor;
      (executor.arenas[0] ?? [...executor.params.values()][0].buffer).destroy();
      const failed = model.trainStep({ image, label: labels(2, 10) }).values();
      await expect(failed).rejects.toBeInstanceOf(GPUValidationError);
      await expect(failed).rejects.toThrow(/internal error: WebGPU reported/);
      expect(() => model.trainStep({ image, label: labels(2, 10) })).toThrow(GPUValidationError);
    } finally {
      model.dispose();
      device.destroy();
    }
  });

  it('create() on a destroyed device rejects with DeviceLostError', { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    device.destroy();
    await expect(Model.create(tiny(), { device })).rejects.toBeInstanceOf(DeviceLostError);
    // the advice is a new device: creating the model again on this one fails the same way
    await expect(Model.create(tiny(), { device })).rejects.toThrow(/before the model could be created on it; create it on a new device: leave out `device`.*acquireDevice\(\)/);
    await expect(Model.create(tiny(), { device })).rejects.not.toThrow(/create the model again/);
  });

  it('copyParametersFrom on a device just lost rejects with DeviceLostError (it resolved, reporting a copy that never happened)', { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    const a = await Model.create(tiny(), { device, seed: 1 });
    const b = await Model.create(tiny(), { device, seed: 2 });
    try {
      device.destroy();
      const copy = b.copyParametersFrom(a);
      const average = b.copyParametersFrom(a, { tau: 0.5 });
      await expect(copy).rejects.toBeInstanceOf(DeviceLostError);
      await expect(average).rejects.toBeInstanceOf(DeviceLostError);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('models created on one device add one reaction to its lost promise, not one each', { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    const lost = device.lost;
    let reads = 0;
    Object.defineProperty(device, 'lost', {
      get: () => {
        reads++;
        return lost;
      },
    });
    try {
      for (let i = 0; i < 4; i++) (await Model.create(tiny(), { device })).dispose();
      expect(reads).toBeLessThanOrEqual(1);
    } finally {
      device.destroy();
    }
  });
});

describe('max_batch', () => {
  it("a batch above the train block's max_batch is an InputError naming it, for predict, trainStep, evaluate and create", { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(tiny(), { device });
    try {
      expect(model.maxBatch).toBe(8);
      await expect(model.predict({ x: rows(8, 4) })).resolves.toHaveProperty('probs');
      await expect(model.predict({ x: rows(9, 4) })).rejects.toThrow(InputError);
      await expect(model.predict({ x: rows(9, 4) })).rejects.toThrow(/B = 9.*max_batch = 8/);
      expect(() => model.trainStep({ x: rows(64, 4), y: labels(64, 3) })).toThrow(/max_batch = 8/);
      await expect(model.evaluate({ x: rows(9, 4), y: labels(9, 3) })).rejects.toThrow(/max_batch = 8/);
      // nothing grew: the step at 8 still runs
      await expect(model.trainStep({ x: rows(8, 4), y: labels(8, 3) }).values()).resolves.toHaveProperty('loss');
      await expect(Model.create(tiny(), { device, batchSize: 16 })).rejects.toThrow(/create\(\{ batchSize \}\) asks for batches of 16, over the train block's max_batch = 8/);
    } finally {
      model.dispose();
      device.destroy();
    }
  });
});

describe('a batch axis not named B', () => {
  it('batch and max_batch are E0206 (they size B, which the model lacks), and create({ batchSize }) an InputError: both were ignored silently', { timeout: 60_000 }, async () => {
    const src = (settings: string) => `use std.nn.{Dense}\nmodel M {\n  input x: f32[N, 4]\n  input y: f32[N, 2]\n  layer d = Dense(4, 2)\n  output out = d(x)\n  loss = mean((out - y) ** 2)\n}\ntrain M {\n  optimizer = sgd(lr: 0.1)\n${settings}}\n`;
    const r = compileSource(src('  max_batch = 8\n'), 'n.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual(['E0206 `max_batch` sets the batch size B, and no input of `M` has a size B (`x` is f32[N, 4])']);
    const plain = compileSource(src(''), 'n.dl');
    expect(plain.diagnostics).toEqual([]);
    const device = await ownDevice();
    try {
      await expect(Model.create(plain.programs[0], { device, batchSize: 4 })).rejects.toThrow('create({ batchSize }) sets the batch size B, and M has no size B (its sizes: N)');
    } finally {
      device.destroy();
    }
  });
});

describe('buffers sized for one large batch', () => {
  it('upload staging is freed once idle, trim() frees the rest, and the next call allocates at its own size', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const track = trackBuffers(device);
    const model = await Model.create(MLP(), { device, seed: 1 });
    try {
      const small = rows(4, 784);
      await model.trainStep({ image: small, label: labels(4, 10) }).values();
      await model.evaluate({ image: small, label: labels(4, 10) });
      const expected = (await model.predict({ image: small })).probs;
      const steady = track.bytes();
      // 2000 images: 6.3 MB through a mapped staging buffer, and every buffer of predict sized for them
      await model.predict({ image: rows(2000, 784) });
      const big = track.bytes();
      expect(big - steady).toBeGreaterThan(1.5 * 2000 * 784 * 4);
      for (let i = 0; i < 20; i++) await model.predict({ image: small });
      // the staging buffer no write took for many submits is gone
      expect(big - track.bytes()).toBeGreaterThanOrEqual(2000 * 784 * 4);
      model.trim();
      expect(track.bytes()).toBeLessThanOrEqual(steady);
      expect(model.sizedBytes).toBeLessThan(100_000);
      expect((await model.predict({ image: small })).probs).toEqual(expected);
      await expect(model.evaluate({ image: small, label: labels(4, 10) })).resolves.toHaveProperty('loss');
      await expect(model.trainStep({ image: small, label: labels(4, 10) }).values()).resolves.toHaveProperty('loss');
      // back to what the small batches need: the train step's buffers again, nothing of the large batch
      expect(track.bytes()).toBeLessThanOrEqual(steady);
    } finally {
      track.restore();
      model.dispose();
      device.destroy();
    }
  });

  it("trim(), growing batches and profile() leave no destroyed buffer in the executor's bookkeeping: it stays the same size cycle after cycle", { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(tiny(), { device, seed: 1 });
    const owned = () => [...(model as unknown as { executor: { owned: Iterable<GPUBuffer> } }).executor.owned].length;
    try {
      const cycle = async () => {
        // each batch size a little larger: every sized buffer is made again, the old one destroyed
        for (let b = 1; b <= 8; b++) await model.predict({ x: rows(b, 4) });
        await model.trainStep({ x: rows(8, 4), y: labels(8, 3) }).values();
        await model.profile({ x: rows(4, 4), y: labels(4, 3) }, { reps: 1 });
        model.trim();
      };
      await cycle();
      const after = owned();
      for (let i = 0; i < 10; i++) await cycle();
      // it held 3 buffers more per trim, 1 more per growth, one per model buffer per profile
      expect(owned()).toBe(after);
    } finally {
      model.dispose();
      device.destroy();
    }
  });

  it('a batch whose buffers exceed the device limits is refused before any buffer is freed or made, naming the call and B', { timeout: 120_000 }, async () => {
    const WIDE = `use std.nn.{Dense}\nuse std.loss.{cross_entropy}\nmodel Wide {\n  input x: f32[B, 4]\n  input y: i32[B]\n  layer fc = Dense(4, 4096)\n  output logits = fc(x)\n  loss = cross_entropy(logits, y)\n}\ntrain Wide {\n  optimizer = sgd(lr: 0.1)\n}\n`;
    const r = compileSource(WIDE, 'wide.dl');
    if (!r.programs[0]) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
    const device = await ownDevice();
    const model = await Model.create(r.programs[0], { device, seed: 1 });
    const track = trackBuffers(device);
    try {
      const x = rows(2, 4);
      await model.trainStep({ x, y: labels(2, 3) }).values();
      const expected = (await model.predict({ x })).logits;
      const held = model.sizedBytes;
      const live = track.live.size;
      // the [B, 4096] logits of one batch this large take more than one buffer may hold
      const limit = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
      const big = Math.floor(limit / (4096 * 4)) + 1;
      const huge = rows(big, 4);
      await expect(model.predict({ x: huge })).rejects.toThrow(OutOfMemoryError);
      await expect(model.predict({ x: huge })).rejects.toThrow(new RegExp(`^predict\\(\\) with B = ${big} needs .* for a tensor of f32\\[B, 4096\\].* of the predict graph, over this device's max\\w+ of .*; nothing was allocated or run: use a smaller batch .*set max_batch in the train block`));
      expect(() => model.trainStep({ x: huge, y: labels(big, 3) })).toThrow(new RegExp(`^trainStep\\(\\) with B = ${big} needs .* of the train graph`));
      await expect(model.evaluate({ x: huge, y: labels(big, 3) })).rejects.toThrow(/^evaluate\(\) with B = \d+ needs/);
      // nothing was allocated for them, and nothing the earlier batches sized was freed
      expect(model.sizedBytes).toBe(held);
      expect(track.live.size).toBe(live);
      expect(model.step).toBe(1);
      expect((await model.predict({ x })).logits).toEqual(expected);
    } finally {
      track.restore();
      model.dispose();
      device.destroy();
    }
  });

  it('memoryInUse is every GPU byte the model holds, as the device counts them: after create, training, a large batch, trim and dispose', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const track = trackBuffers(device);
    const model = await Model.create(MLP(), { device, seed: 1 });
    try {
      const held = () => model.memoryInUse;
      expect(held()).toBe(track.bytes());
      const created = held();
      const small = rows(4, 784);
      await model.trainStep({ image: small, label: labels(4, 10) }).values();
      await model.evaluate({ image: small, label: labels(4, 10) });
      // the optimizer's state, the train step's buffers and the 1 MiB ring of step values came with training
      expect(held()).toBeGreaterThan(created + (1 << 20));
      expect(held()).toBe(track.bytes());
      await model.predict({ image: rows(600, 784) });
      await model.saveWeights();
      const big = held();
      expect(big).toBe(track.bytes());
      expect(model.sizedBytes).toBeGreaterThan(600 * 784 * 4);
      model.trim();
      expect(held()).toBe(track.bytes());
      expect(big - held()).toBeGreaterThanOrEqual(600 * 784 * 4);
      // handles of steps never read hold their readback buffers: counted too
      const unread = Array.from({ length: 5 }, () => model.trainStep({ image: small, label: labels(4, 10) }));
      await device.queue.onSubmittedWorkDone();
      expect(held()).toBe(track.bytes());
      await Promise.all(unread.map((h) => h.values()));
      expect(held()).toBe(track.bytes());
    } finally {
      model.dispose();
      track.restore();
      device.destroy();
    }
    expect(model.memoryInUse).toBe(0);
    expect(track.bytes()).toBe(0);
  });

  it('a readback buffer over 4 MiB (saving large weights) is freed after its read, not pooled', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(program('mnist_mlp', 'MnistMlp', 'hidden: 1536'), { device, seed: 1 });
    const track = trackBuffers(device);
    try {
      const before = track.live.size;
      const bytes = await model.saveWeights();
      expect(bytes.length).toBeGreaterThan(4 << 20);
      expect(track.live.size).toBe(before);
    } finally {
      track.restore();
      model.dispose();
      device.destroy();
    }
  });

  it('reading 200 steps\' values at once keeps at most 32 readback buffers afterwards', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(tiny(), { device, seed: 1 });
    const batch = { x: rows(4, 4), y: labels(4, 3) };
    // the train step's buffers and the optimizer's state come with the first step: count from after it
    await model.trainStep(batch).values();
    const track = trackBuffers(device);
    try {
      const handles = Array.from({ length: 200 }, () => model.trainStep(batch));
      await Promise.all(handles.map((h) => h.values()));
      await Promise.all(Array.from({ length: 200 }, () => model.trainStep(batch).values()));
      expect(track.live.size).toBeLessThanOrEqual(32 + 4);
    } finally {
      track.restore();
      model.dispose();
      device.destroy();
    }
  });
});

describe('typed errors for service mistakes', () => {
  it('use after dispose is a DisposedError; evaluateSet([]) and bad seeds are InputErrors; a second fit() at once is a BusyError', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    for (const seed of [NaN, 1.5, 2 ** 32, 2 ** 40, -1]) {
      await expect(Model.create(tiny(), { device, seed })).rejects.toThrow(InputError);
    }
    for (const batchSize of [-1, 1.5, 0, NaN]) {
      await expect(Model.create(tiny(), { device, batchSize })).rejects.toThrow(InputError);
      await expect(Model.create(tiny(), { device, batchSize })).rejects.toThrow(`create({ batchSize }) was given ${batchSize}; a batch size is a whole number of at least 1`);
    }
    const model = await Model.create(tiny(), { device, seed: 2 ** 32 - 1 });
    try {
      expect(() => model.reset(NaN)).toThrow(/seed NaN; a seed is a whole number from 0 to 2\^32 - 1/);
      expect(() => model.reset(2 ** 32)).toThrow(InputError);
      await expect(model.evaluateSet([])).rejects.toThrow(InputError);
      const train = new Dataset({ x: { data: rows(32, 4), shape: [4] }, y: { data: labels(32, 3), shape: [] } });
      await expect(model.fit({ train }, { batchSize: 0 })).rejects.toBeInstanceOf(InputError);
      await expect(model.fit({ train: new Dataset({ x: { data: rows(8, 4), shape: [4] } }) }, { epochs: 1 })).rejects.toBeInstanceOf(InputError);
      expect(() => train.column('z')).toThrow(InputError);
      const first = model.fit({ train }, { epochs: 2, batchSize: 4 });
      await expect(model.fit({ train }, { epochs: 1, batchSize: 4 })).rejects.toBeInstanceOf(BusyError);
      await first;
      expect(model.step).toBe(16);
      await expect(model.fit({ train }, { epochs: 1, batchSize: 4 })).resolves.toHaveProperty('epochs');
    } finally {
      model.dispose();
    }
    expect(() => model.trainStep({ x: rows(1, 4), y: labels(1, 3) })).toThrow(DisposedError);
    await expect(model.predict({ x: rows(1, 4) })).rejects.toBeInstanceOf(DlcRuntimeError);
    await expect(model.predict({ x: rows(1, 4) })).rejects.toMatchObject({ code: 'disposed', name: 'DisposedError' });
    device.destroy();
  });
});

describe('typed errors for models and handles', () => {
  it('training a model without a train block is an InputError (code input, not the internal code validation), for trainStep, profile, prepareTraining and fit', { timeout: 60_000 }, async () => {
    const r = compileSource('use std.nn.{Dense}\nmodel NoTrain {\n  input x: f32[B, 4]\n  layer fc = Dense(4, 2)\n  output y = fc(x)\n}\n', 'notrain.dl');
    if (!r.programs[0]) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
    const device = await ownDevice();
    const model = await Model.create(r.programs[0], { device });
    try {
      const x = rows(2, 4);
      expect(() => model.trainStep({ x })).toThrow(InputError);
      expect(() => model.trainStep({ x })).toThrow('trainStep(): the model NoTrain has no train block, so it cannot be trained');
      await expect(model.profile({ x })).rejects.toThrow(InputError);
      await expect(model.profile({ x })).rejects.toThrow(/profile\(\) \(pass \{ graph: 'predict' \}.*no train block/);
      await expect(model.prepareTraining()).rejects.toThrow(InputError);
      await expect(model.fit({ train: new Dataset({ x: { data: rows(4, 4), shape: [4] } }) })).rejects.toThrow(InputError);
      // what it can do still works
      await expect(model.profile({ x }, { graph: 'predict', reps: 1 })).resolves.toHaveProperty('kernels');
      expect((await model.predict({ x })).y).toHaveLength(4);
    } finally {
      model.dispose();
      device.destroy();
    }
  });

  it("a step's values read after more than 4096 later steps are an ExpiredError (code expired)", { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(tiny(), { device });
    try {
      const handle = model.trainStep({ x: rows(4, 4), y: labels(4, 3) });
      // 4097 steps later (counted, not run: the ring slot's number is all that decides)
      (model as unknown as { executor: { recorded: number } }).executor.recorded += 4097;
      const read = handle.values();
      await expect(read).rejects.toBeInstanceOf(ExpiredError);
      await expect(read).rejects.toMatchObject({ code: 'expired', name: 'ExpiredError' });
    } finally {
      model.dispose();
      device.destroy();
    }
  });
});

describe('create({ checkFinite })', () => {
  it('refuses a training batch with NaN or ±Infinity in an f32 input before anything trains; without it such a step makes the weights NaN', { timeout: 60_000 }, async () => {
    const device = await ownDevice();
    const guarded = await Model.create(tiny(), { device, seed: 1, checkFinite: true });
    const plain = await Model.create(tiny(), { device, seed: 1 });
    try {
      const y = labels(4, 3);
      const before = await guarded.getParameter('fc.w');
      for (const [bad, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity'], [1e39, '1e+39 (beyond the f32 range)']] as const) {
        // a Float64Array holds 1e39, which is Infinity once uploaded as f32
        const given = Float64Array.from(rows(4, 4), (v, i) => (i === 5 ? bad : v));
        expect(() => guarded.trainStep({ x: given, y })).toThrow(InputError);
        expect(() => guarded.trainStep({ x: given, y })).toThrow(`trainStep(): input \`x\` holds ${shown} at [5], and the model was created with { checkFinite: true }: nothing was trained`);
      }
      await expect(guarded.fit({ train: new Dataset({ x: { data: Float32Array.from(rows(4, 4), (v, i) => (i === 15 ? NaN : v)), shape: [4] }, y: { data: labels(4, 3), shape: [] } }) }, { batchSize: 4 })).rejects.toThrow(
        "fit(): the training data's `x` holds NaN in example 3 (counted from 0, value 3 of its 4), and the model was created with { checkFinite: true }: nothing was trained",
      );
      // named by its place in the data, whatever batch the shuffle puts it in
      await expect(guarded.fit({ train: new Dataset({ x: { data: Float32Array.from(rows(8, 4), (v, i) => (i === 9 ? Infinity : v)), shape: [4] }, y: { data: labels(8, 3), shape: [] } }) }, { batchSize: 4, seed: 5 })).rejects.toThrow(
        "fit(): the training data's `x` holds Infinity in example 2 (counted from 0, value 1 of its 4)",
      );
      expect(guarded.step).toBe(0);
      expect(await guarded.getParameter('fc.w')).toEqual(before);
      // finite batches train as before
      await expect(guarded.trainStep({ x: rows(4, 4), y }).values()).resolves.toHaveProperty('loss');
      // the default: a NaN batch trains, and the weights are NaN from then on
      const x = rows(4, 4);
      x[5] = NaN;
      await plain.trainStep({ x, y }).values();
      expect((await plain.getParameter('fc.w')).some(Number.isNaN)).toBe(true);
    } finally {
      guarded.dispose();
      plain.dispose();
      device.destroy();
    }
  });
});

describe('sizes per call', () => {
  it('trainStep, evaluate and evaluateSet take { sizes } as predict does; a length that misses a bound size says where it came from', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(program('char_transformer', 'CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 1'), { device, seed: 1, sizes: { L: 8 } });
    try {
      const tokens = (b: number, l: number) => Int32Array.from({ length: b * l }, (_, i) => (i * 7) % 11);
      expect(() => model.trainStep({ tokens: tokens(2, 5) })).toThrow(/L = 8 from create\(\{ sizes \}\)/);
      await expect(model.trainStep({ tokens: tokens(2, 5) }, { sizes: { L: 5 } }).values()).resolves.toHaveProperty('loss');
      const one = await model.evaluate({ tokens: tokens(2, 5) }, { sizes: { L: 5 } });
      const set = await model.evaluateSet([{ tokens: tokens(2, 5) }], { sizes: { L: 5 } });
      expect(set.loss).toBeCloseTo(one.loss, 5);
      expect(() => model.trainStep({ tokens: tokens(2, 5) }, { sizes: { L: 4 } })).toThrow(/L = 4 from trainStep\(\.\.\., \{ sizes \}\)/);
      // fit binds L from the data's column shape
      const train = new Dataset({ tokens: { data: tokens(6, 6), shape: [6] } });
      await expect(model.fit({ train }, { epochs: 1, batchSize: 3 })).resolves.toHaveProperty('epochs');
    } finally {
      model.dispose();
      device.destroy();
    }
  });
});

describe('one named step of a train block', () => {
  it("trainStep(batch, { step }) runs that step's graph only; an unknown step is an InputError listing them", { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(program('gan', 'Gan', 'latent: 4, hidden: 8, pixels: 12'), { device, seed: 1 });
    try {
      const image = rows(4, 12);
      const g0 = await model.getParameter('G.fc1.w');
      const d0 = await model.getParameter('D.fc1.w');
      const values = await model.trainStep({ image }, { step: 'discriminator' }).values();
      expect(Object.keys(values)).toContain('d_loss');
      expect(await model.getParameter('G.fc1.w')).toEqual(g0);
      expect(await model.getParameter('D.fc1.w')).not.toEqual(d0);
      const d1 = await model.getParameter('D.fc1.w');
      await model.trainStep({ image }, { step: 'generator' }).values();
      expect(await model.getParameter('D.fc1.w')).toEqual(d1);
      expect(await model.getParameter('G.fc1.w')).not.toEqual(g0);
      expect(() => model.trainStep({ image }, { step: 'critic' })).toThrow(/step `critic`.*`discriminator`, `generator`/);
    } finally {
      model.dispose();
      device.destroy();
    }
  });
});

describe('parameter access', () => {
  it('getParameter matches saveWeights, setParameter writes one, copyParametersFrom copies or averages (tau) with checked shapes', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const a = await Model.create(MLP(), { device, seed: 1 });
    const b = await Model.create(MLP(), { device, seed: 2 });
    try {
      const saved = decodeSafetensors(await a.saveWeights());
      for (const p of a.program.params) expect(Array.from(await a.getParameter(p.path)), p.path).toEqual(Array.from(saved.tensors.get(p.path)!.data as Float32Array));
      const path = a.program.params[0].path;
      const n = a.program.params[0].shape.reduce((x, y) => x * y, 1);
      await expect(a.getParameter('nope')).rejects.toThrow(/no parameter `nope`/);
      expect(() => a.setParameter(path, new Float32Array(n - 1))).toThrow(InputError);
      expect(() => a.setParameter(path, new Float32Array(n - 1))).toThrow(new RegExp(`${n - 1} values.*${n} values`));
      const ones = new Float32Array(n).fill(1);
      a.setParameter(path, ones);
      expect(await a.getParameter(path)).toEqual(ones);
      // Polyak averaging: b = 0.25 a + 0.75 b
      const aw = await a.getParameter(path);
      const bw = await b.getParameter(path);
      const report = await b.copyParametersFrom(a, { tau: 0.25 });
      expect(report.copied.length).toBe(a.program.params.length);
      const avg = await b.getParameter(path);
      for (let i = 0; i < n; i += 97) expect(avg[i]).toBeCloseTo(0.25 * aw[i] + 0.75 * bw[i], 6);
      // a copy, skipping one parameter through map
      const other = a.program.params[1].path;
      const kept = await b.getParameter(other);
      const copied = await b.copyParametersFrom(a, { map: (p) => (p === other ? undefined : p) });
      expect(copied.skipped).toEqual([other]);
      expect(await b.getParameter(path)).toEqual(await a.getParameter(path));
      expect(await b.getParameter(other)).toEqual(kept);
      await expect(b.copyParametersFrom(a, { map: (p) => (p === path ? other : p) })).rejects.toThrow(InputError);
      await expect(b.copyParametersFrom(a, { map: () => 'missing' })).rejects.toThrow(/no parameter `missing`/);
      await expect(b.copyParametersFrom(a, { tau: 0 })).rejects.toThrow(InputError);
      // calls run in the order they are made: an average not awaited, then a set, lands before the set
      // (it read both models on the host and wrote afterwards, undoing the set and any step between)
      const twos = new Float32Array(n).fill(3); // the average would be 2
      a.setParameter(path, new Float32Array(n).fill(4));
      b.setParameter(path, new Float32Array(n).fill(0));
      const pending = b.copyParametersFrom(a, { tau: 0.5 });
      b.setParameter(path, twos);
      await pending;
      expect(await b.getParameter(path)).toEqual(twos);
      // and an average a model takes from itself (one arena holds both ends) reads a copy
      const self = await b.copyParametersFrom(b, { tau: 0.5, map: (p) => p });
      expect(self.copied.length).toBe(b.program.params.length);
      expect(await b.getParameter(path)).toEqual(twos);
    } finally {
      a.dispose();
      b.dispose();
      device.destroy();
    }
  });
});

const NOISY = `use std.nn.{Dense}

model Noisy {
  input x: f32[B, 4]
  layer fc = Dense(4, 1)
  loss = mean((fc(x) + random_normal([B, 1])) ** 2)
}

train Noisy {
  optimizer = sgd(lr: 0.1)
  batch = 4
}
`;

describe('weights loaded and set without other calls', () => {
  it('loadWeights leaves no error scope pending, and setParameter one per call, however many run back to back (a weight-sync worker)', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const model = await Model.create(MLP(), { device, seed: 1 });
    const pending = () => [...(model as unknown as { executor: { scopes: Iterable<unknown> } }).executor.scopes].length;
    try {
      const weights = await model.saveWeights();
      const expected = (await model.predict({ image: rows(2, 784) })).probs;
      for (let i = 0; i < 20; i++) await model.loadWeights(weights);
      // one scope per tensor written (and none settled) before
      expect(pending()).toBe(0);
      const path = model.program.params[1].path;
      const values = await model.getParameter(path);
      for (let i = 0; i < 20; i++) model.setParameter(path, values);
      expect(pending()).toBeLessThanOrEqual(20);
      expect((await model.predict({ image: rows(2, 784) })).probs).toEqual(expected);
      expect(pending()).toBe(0);
    } finally {
      model.dispose();
      device.destroy();
    }
  });
});

describe('evaluation noise', () => {
  it('each batch of one evaluation draws its own noise, reproducibly, and the key training draws from does not move', { timeout: 120_000 }, async () => {
    const r = compileSource(NOISY, 'noisy.dl');
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0 || !r.programs[0]) throw new Error(errors.map((d) => d.message).join('\n'));
    const device = await ownDevice();
    const a = await Model.create(r.programs[0], { device, seed: 5 });
    const b = await Model.create(r.programs[0], { device, seed: 5 });
    try {
      const x = rows(4, 4);
      const key = Array.from(await a.getState('rng.key'));
      const one = (await a.evaluate({ x })).loss;
      // batch 0 draws what evaluate draws; the others (the same data) other noise
      expect((await a.evaluateSet([{ x }])).loss).toBe(one);
      const each = (await a.evaluateBatches([{ x }, { x }, { x }])).map((v) => v.loss);
      expect(each[0]).toBe(one);
      expect(new Set(each).size).toBe(3);
      const set = (await a.evaluateSet([{ x }, { x }, { x }])).loss;
      expect(set).toBeCloseTo((each[0] + each[1] + each[2]) / 3, 5);
      expect((await a.evaluateSet([{ x }, { x }, { x }])).loss).toBe(set);
      // a set refused part-way (its third batch) leaves the key as it was too
      await expect(a.evaluateSet([{ x }, { x }, { x: new Float32Array(3) }])).rejects.toThrow(InputError);
      expect(Array.from(await a.getState('rng.key'))).toEqual(key);
      // training after the evaluations draws what it would have drawn without them
      const la = await a.trainStep({ x }).values();
      const lb = await b.trainStep({ x }).values();
      expect(la).toEqual(lb);
      expect(Array.from(await a.getState('rng.key'))).toEqual(Array.from(await b.getState('rng.key')));
      expect(await a.getParameter('fc.w')).toEqual(await b.getParameter('fc.w'));
    } finally {
      a.dispose();
      b.dispose();
      device.destroy();
    }
  });
});

const NORMED = `use std.nn.{Dense, BatchNorm}

model Normed {
  input x: f32[B, 3]
  layer fc = Dense(3, 3)
  layer bn = BatchNorm(3)
  output y = bn(fc(x))
  loss = mean((y - 1.0) ** 2)
}

train Normed {
  optimizer = adam(lr: 0.01)
  batch = 4
}
`;

describe('copyParametersFrom and state', () => {
  it("copies or averages the model's own state (batch norm's running statistics) with the parameters, never the optimizer's, on one device and between two", { timeout: 120_000 }, async () => {
    const r = compileSource(NORMED, 'normed.dl');
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0 || !r.programs[0]) throw new Error(errors.map((d) => d.message).join('\n'));
    const program = r.programs[0];
    const device = await ownDevice();
    const second = await ownDevice();
    const g = await Model.create(program, { device, seed: 1 });
    const ema = await Model.create(program, { device, seed: 2 });
    const far = await Model.create(program, { device: second, seed: 3 });
    const stats = ['bn.running_mean', 'bn.running_var'];
    const read = async (m: Model, path: string) => Array.from(await m.getState(path));
    try {
      const x = rows(4, 3, 7);
      for (let i = 0; i < 3; i++) await g.trainStep({ x }).values();
      const source = await Promise.all(stats.map((s) => read(g, s)));
      expect(source[0].some((v) => v !== 0)).toBe(true);
      // tau 1 copies: the copy evaluates as the source does
      const report = await ema.copyParametersFrom(g);
      expect(report.copied).toEqual([...program.params.map((p) => p.path), ...stats]);
      expect(await Promise.all(stats.map((s) => read(ema, s)))).toEqual(source);
      expect(Array.from((await ema.predict({ x })).y)).toEqual(Array.from((await g.predict({ x })).y));
      // the run's state stays the target's own: it never trained, so its step counter is still 0
      const counter = program.state.find((s) => s.path.startsWith('opt.') && s.shape.length === 0)!.path;
      expect(Array.from(await ema.getState(counter))).toEqual([0]);
      // tau < 1 averages the statistics too, on one device (the lerp kernel) and between two (the host)
      // (ema equals g now: g takes another step first)
      await g.trainStep({ x }).values();
      const moved = await Promise.all(stats.map((s) => read(g, s)));
      for (const target of [ema, far]) {
        const own = await Promise.all(stats.map((s) => read(target, s)));
        await target.copyParametersFrom(g, { tau: 0.25 });
        const avg = await Promise.all(stats.map((s) => read(target, s)));
        for (let k = 0; k < stats.length; k++) for (let i = 0; i < 3; i++) expect(avg[k][i]).toBeCloseTo(0.25 * moved[k][i] + 0.75 * own[k][i], 6);
      }
      // state: false sets the parameters only
      await g.trainStep({ x }).values();
      const kept = await read(far, 'bn.running_mean');
      const only = await far.copyParametersFrom(g, { state: false });
      expect(only.copied).toEqual(program.params.map((p) => p.path));
      expect(await read(far, 'bn.running_mean')).toEqual(kept);
      // map reaches state too: skipping it leaves it
      const skipping = await far.copyParametersFrom(g, { map: (p) => (p.startsWith('bn.running') ? undefined : p) });
      expect(skipping.skipped).toEqual(stats);
      expect(await read(far, 'bn.running_mean')).toEqual(kept);
      await expect(far.copyParametersFrom(g, { map: (p) => (p === 'bn.running_var' ? 'bn.nope' : p) })).rejects.toThrow(/no state buffer `bn.nope` \(for `bn.running_var`\).*\{ state: false \}/);
    } finally {
      g.dispose();
      ema.dispose();
      far.dispose();
      device.destroy();
      second.destroy();
    }
  });
});

/** `values` copied into a typed array of `type` over a SharedArrayBuffer (a tensor from a worker thread). */
function shared<T extends Float32Array | Int32Array | Uint8Array>(type: { new (buffer: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, values: ArrayLike<number>): T {
  const out = new type(new SharedArrayBuffer(values.length * type.BYTES_PER_ELEMENT));
  out.set(values as ArrayLike<number> & number[]);
  return out;
}

describe('inputs over a SharedArrayBuffer', () => {
  it('are copied to an ordinary ArrayBuffer before upload; arrays of the storage type on an ArrayBuffer are not copied', () => {
    const plain = new Float32Array(4);
    expect(toStorageArray('f32', plain)).toBe(plain);
    const labels32 = new Int32Array(4);
    expect(toStorageArray('i32', labels32)).toBe(labels32);
    for (const [dtype, view] of [['f32', shared(Float32Array, [1, 2, 3])], ['i32', shared(Int32Array, [1, 2, 3])], ['u32', shared(Uint8Array, [1, 2, 3])]] as const) {
      const out = toStorageArray(dtype, view);
      expect(Object.prototype.toString.call(out.buffer), dtype).toBe('[object ArrayBuffer]');
      expect(Array.from(out)).toEqual([1, 2, 3]);
    }
  });

  it('predict, trainStep, evaluate, setParameter and loadWeights take them (Dawn crashed the process on them) and compute what ordinary arrays give', { timeout: 120_000 }, async () => {
    const device = await ownDevice();
    const a = await Model.create(tiny(), { device, seed: 1 });
    const b = await Model.create(tiny(), { device, seed: 1 });
    try {
      const x = rows(4, 4);
      const y = labels(4, 3);
      expect(Array.from((await b.predict({ x: shared(Float32Array, x) })).probs)).toEqual(Array.from((await a.predict({ x })).probs));
      expect(await b.trainStep({ x: shared(Float32Array, x), y: shared(Int32Array, y) }).values()).toEqual(await a.trainStep({ x, y }).values());
      expect(await b.evaluate({ x: shared(Float32Array, x), y: shared(Int32Array, y) })).toEqual(await a.evaluate({ x, y }));
      const path = a.program.params[1].path;
      const bias = Float32Array.of(0.5, -0.25, 2);
      a.setParameter(path, bias);
      b.setParameter(path, shared(Float32Array, bias));
      expect(await b.getParameter(path)).toEqual(bias);
      const weights = await a.saveWeights();
      await b.loadWeights(shared(Uint8Array, weights));
      for (const p of a.program.params) expect(await b.getParameter(p.path), p.path).toEqual(await a.getParameter(p.path));
      expect(Array.from((await b.predict({ x: shared(Float32Array, x) })).probs)).toEqual(Array.from((await a.predict({ x })).probs));
    } finally {
      a.dispose();
      b.dispose();
      device.destroy();
    }
  });
});
