// The runtime's contract: typed errors (input, adapter, lost device, memory, shader), default WebGPU limits, clean shaders, the E0401 size limit.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { Model } from '../runtime/model.ts';
import { heldDawnObjects } from '../runtime/device.ts';
import { acquireDevice } from '../runtime/device.ts';
import { mergeCopies } from '../runtime/executor.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { DeviceLostError, InputError, NoAdapterError, OutOfMemoryError, ShaderError, WeightsError } from '../runtime/errors.ts';
import { argsOf, EXAMPLE_CASES } from './helpers.ts';
import { compile, getDevice } from './gpu-helpers.ts';

function program(file: string, model: string, args: string): ModelProgram {
  const r = compileSource(readFileSync(`examples/${file}.dl`, 'utf8'), `examples/${file}.dl`, undefined, { modelArgs: new Map([[model, argsOf(model, args)]]) });
  const p = r.programs.find((x) => x.model === model);
  if (!p) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return p;
}

const MLP = () => program('mnist_mlp', 'MnistMlp', 'hidden: 8');

describe('generated programs', () => {
  it('stay within WebGPU default limits: at most 8 storage buffers per dispatch, 256 invocations per workgroup, 16 KiB of workgroup memory', () => {
    for (const c of EXAMPLE_CASES) {
      const p = program(c.file, c.model, c.args);
      for (const g of [p.graphs.predict, p.graphs.evaluate, ...p.graphs.steps]) {
        for (const k of g.kernels) {
          expect(k.inputs.length + k.outputs.length, `${c.model} ${k.op}`).toBeLessThanOrEqual(8);
          // no buffer is bound as both input and output of one dispatch
          expect(k.inputs.filter((b) => k.outputs.includes(b)), `${c.model} ${k.op}`).toEqual([]);
        }
      }
      for (const wgsl of p.shaders) {
        const size = /@workgroup_size\((\d+)(?:,\s*(\d+))?(?:,\s*(\d+))?\)/.exec(wgsl);
        expect(size, wgsl.slice(0, 120)).not.toBeNull();
        const invocations = Number(size![1]) * Number(size![2] ?? 1) * Number(size![3] ?? 1);
        expect(invocations).toBeLessThanOrEqual(256);
        const shared = [...wgsl.matchAll(/var<workgroup>\s+\w+:\s*array<\w+,\s*(\d+)>/g)].reduce((a, m) => a + 4 * Number(m[1]), 0);
        expect(shared).toBeLessThanOrEqual(16384);
      }
    }
  });

  it('every shader of every example compiles on Dawn with no errors or warnings', { timeout: 180_000 }, async () => {
    const device = await getDevice();
    const shaders = new Set<string>();
    for (const c of EXAMPLE_CASES) for (const s of program(c.file, c.model, c.args).shaders) shaders.add(s);
    const results = await Promise.all([...shaders].map((s) => compile(device, s)));
    const noisy = results.flatMap((r, i) => (r.messages.length > 0 ? [`${r.messages.join('; ')}\n${[...shaders][i].slice(0, 200)}`] : []));
    expect(noisy).toEqual([]);
    expect(shaders.size).toBeGreaterThan(100);
  });

  it("every dispatch names a .dl position inside the file it came from (the model's or the stdlib's)", () => {
    const lines = (file: string) => readFileSync(file, 'utf8').split('\n');
    for (const c of EXAMPLE_CASES) {
      const p = program(c.file, c.model, c.args);
      for (const g of [p.graphs.predict, p.graphs.evaluate, ...p.graphs.steps]) {
        for (const k of g.kernels) {
          const text = lines(k.source!.file);
          expect(k.source!.line, `${c.model} ${k.op} ${k.source!.file}`).toBeGreaterThanOrEqual(1);
          expect(k.source!.line, `${c.model} ${k.op} ${k.source!.file}`).toBeLessThanOrEqual(text.length);
          expect(text[k.source!.line - 1].trim(), `${c.model} ${k.op} ${k.source!.file}:${k.source!.line}`).not.toBe('');
          // a kernel of standard-library code also names the user's call it ran under, in the example's file
          const caller = k.source!.caller;
          if (caller) {
            expect(caller.file, `${c.model} ${k.op}`).toBe(`examples/${c.file}.dl`);
            expect(lines(caller.file)[caller.line - 1].trim(), `${c.model} ${k.op} called at ${caller.line}`).not.toBe('');
          }
        }
        const fromLibrary = g.kernels.filter((k) => k.source!.file.startsWith('stdlib/'));
        expect(fromLibrary.every((k) => k.source!.caller !== undefined), `${c.model}: stdlib kernels without a caller`).toBe(true);
      }
    }
  });

  it('a tensor over the storage binding limit is a compile-time E0401 naming it and the limit', () => {
    const text = `use std.nn.{Dense}
model Huge {
  input x: f32[B, 100000]
  layer fc = Dense(100000, 1000)
  output y = fc(x)
}
`;
    const r = compileSource(text, 'huge.dl');
    expect(r.programs).toEqual([]);
    const d = r.diagnostics.find((x) => x.code === 'E0401');
    expect(d?.message).toMatch(/parameter fc\.w of type f32\[100000, 1000\] takes 400,000,000 bytes, over the storage binding limit of 134,217,728 bytes/);
    expect(text.slice(d!.span.start, d!.span.end)).toBe('fc(x)'); // the user's layer that owns the stdlib parameter
  });
});

describe('runtime', () => {
  it('runs a model with no symbolic sizes (the first run allocates even though the size key is empty)', { timeout: 60_000 }, async () => {
    const r = compileSource('model Fixed {\n  input x: f32[2, 3]\n  output y = exp(x) * 2.0\n}\n', 'fixed.dl');
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const { y } = await model.predict({ x: [0, 1, 2, 0, 0, 0] });
      expect(Array.from(y)).toEqual([2, 2 * Math.fround(Math.E), 2 * Math.fround(Math.exp(2)), 2, 2, 2].map((v) => expect.closeTo(v, 5)));
    } finally {
      model.dispose();
    }
  });
});

describe('Embedding(padding_idx:) on WebGPU', () => {
  it('the stored padding row starts at zero, as the interpreter\'s init has it, and the saved weights carry it (as torch.nn.Embedding\'s)', { timeout: 60_000 }, async () => {
    const r = compileSource('use std.nn.{Embedding}\nmodel E {\n  input ids: i32[B]\n  layer emb = Embedding(5, 3, padding_idx: -2)\n  output y = emb(ids)\n}\n', 'e.dl');
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 9 });
    try {
      const w = Array.from(await model.getParameter('emb.weight'));
      expect(w.slice(9, 12)).toEqual([0, 0, 0]);
      expect([...w.slice(0, 9), ...w.slice(12)].every((v) => v !== 0)).toBe(true);
      const saved = decodeSafetensors(await model.saveWeights()).tensors.get('emb.weight')!;
      expect(Array.from(saved.data as Float32Array).slice(9, 12)).toEqual([0, 0, 0]);
    } finally {
      model.dispose();
    }
  });
});

describe('inputs used as indices', () => {
  it('the program says which inputs index what, through slices and reshapes, from the model graph before optimization', () => {
    const decl = (p: ModelProgram, name: string) => p.inputs.find((i) => i.name === name)!;
    expect(decl(MLP(), 'label').indices).toEqual([{ bound: 10, what: 'axis 1 of f32[B, 10]', source: { file: 'stdlib/loss.dl', line: 27, col: 14, caller: { file: 'examples/mnist_mlp.dl', line: 40, col: 10 } } }]);
    expect(decl(MLP(), 'image').indices).toBeUndefined();
    // tokens[:, :-1] index the embedding's rows; tokens[:, 1:] are the targets of the loss
    const gpt = program('char_transformer', 'CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 1');
    expect(decl(gpt, 'tokens').indices?.map((u) => [u.bound, u.what])).toEqual([
      [11, 'the rows of `tok.weight`'],
      [11, 'axis 2 of f32[B, L - 1, 11]'],
    ]);
    const policy = program('reinforce_cartpole', 'CartPolePolicy', 'hidden: 4');
    expect(decl(policy, 'action').indices?.[0]).toMatchObject({ bound: 2, source: { file: 'examples/reinforce_cartpole.dl', line: 46 } });
    expect(decl(policy, 'returns').indices).toBeUndefined();
  });

  it('models that create their own device share one Dawn instance, and disposing them lets their adapters go', { timeout: 60_000 }, async () => {
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const model = await Model.create(MLP(), { batchSize: 2 });
      await model.trainStep({ image: new Float32Array(2 * 784), label: Int32Array.from([1, 2]) }).values();
      model.dispose();
      // the device's lost promise, which releases what it held, settles after destroy()
      await new Promise((r) => setTimeout(r, 50));
      counts.push(heldDawnObjects());
    }
    expect(counts[2]).toBe(counts[0]);
  });

  it('an empty batch, a fractional label and a batch that is no object are InputErrors, and nothing runs', { timeout: 60_000 }, async () => {
    const model = await Model.create(MLP(), { device: await getDevice(), batchSize: 4 });
    try {
      expect(() => model.trainStep({ image: new Float32Array(0), label: new Int32Array(0) })).toThrow(/the batch is empty: its inputs make B = 0/);
      await expect(model.evaluate({ image: new Float32Array(0), label: new Int32Array(0) })).rejects.toThrow(InputError);
      await expect(model.evaluate({ image: new Float32Array(784), label: [1.5] })).rejects.toThrow('input `label` is i32, but holds 1.5 at [0]: give whole numbers (an Int32Array)');
      await expect(model.evaluate(null as never)).rejects.toThrow(/a batch is an object of inputs by name \(\{ image: \.\.\., label: \.\.\. \}\), not null/);
      expect(model.step).toBe(0);
      // whole numbers in a plain array are fine
      expect(Number.isFinite((await model.evaluate({ image: new Float32Array(784), label: [1] })).loss)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('results still in flight when the model is disposed reject with a disposed error, not an empty internal one', { timeout: 60_000 }, async () => {
    const model = await Model.create(MLP(), { device: await getDevice(), batchSize: 4 });
    const image = new Float32Array(4 * 784);
    const label = Int32Array.from([3, 9, 1, 0]);
    const step = model.trainStep({ image, label });
    const evaluated = model.evaluate({ image, label });
    model.dispose();
    for (const pending of [step.values(), evaluated]) {
      await expect(pending).rejects.toMatchObject({ code: 'disposed', message: expect.stringMatching(/was disposed before this result was read/) });
    }
    expect(() => model.trainStep({ image, label })).toThrow(/was disposed/);
  });

  it('a label or token out of range is an InputError naming its position and what it indexes, before anything runs', { timeout: 60_000 }, async () => {
    const model = await Model.create(MLP(), { device: await getDevice(), batchSize: 4 });
    try {
      const image = new Float32Array(4 * 784);
      const label = Int32Array.from([3, 9, 10, 0]);
      expect(() => model.trainStep({ image, label })).toThrow(InputError);
      expect(() => model.trainStep({ image, label })).toThrow('input `label` holds 10 at [2], but the model uses it to index axis 1 of f32[B, 10], of size 10 (examples/mnist_mlp.dl:40:10, in stdlib/loss.dl:27:14): every value must be in 0..9');
      await expect(model.evaluate({ image, label: Int32Array.from([0, -1, 0, 0]) })).rejects.toThrow(/input `label` holds -1 at \[1\]/);
      // nothing ran: the step counter did not move, and a valid batch trains
      expect(model.step).toBe(0);
      const values = await model.trainStep({ image, label: Int32Array.from([3, 9, 1, 0]) }).values();
      expect(Number.isFinite(values.loss)).toBe(true);
    } finally {
      model.dispose();
    }
    const gpt = await Model.create(program('char_transformer', 'CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 1'), { device: await getDevice(), batchSize: 2, sizes: { L: 5 } });
    try {
      const tokens = Int32Array.from({ length: 2 * 5 }, (_, i) => i % 11);
      tokens[7] = 11;
      // the first use listed is the embedding's rows (a table's rows before a loss's gather of the same tokens)
      expect(() => gpt.trainStep({ tokens })).toThrow('input `tokens` holds 11 at [1, 2], but the model uses it to index the rows of `tok.weight`, of size 11');
    } finally {
      gpt.dispose();
    }
  });
});

describe('runtime errors', () => {
  it('a wrong input name, a missing input and a wrong length are InputErrors naming the input and its declared shape', { timeout: 60_000 }, async () => {
    const model = await Model.create(MLP(), { device: await getDevice(), batchSize: 4 });
    try {
      const image = new Float32Array(4 * 784);
      const label = new Int32Array(4);
      expect(() => model.trainStep({ imag: image, label } as never)).toThrow(InputError);
      expect(() => model.trainStep({ imag: image, label } as never)).toThrow(/no input `image`.*f32\[B, 784\]/);
      expect(() => model.trainStep({ image, label, extra: label } as never)).toThrow(/has no input `extra`/);
      expect(() => model.trainStep({ image: new Float32Array(1000), label })).toThrow(/input `image` has 1000 values, which is not a whole number of f32\[784\] items/);
      expect(() => model.trainStep({ image, label: new Int32Array(3) })).toThrow(/input `label` has 3 values, but i32\[B\] with B = 4 needs 4/);
      // the model still works after rejected batches
      const v = await model.trainStep({ image, label }).values();
      expect(Number.isFinite(v.loss)).toBe(true);
      // the sizes of the last batch are reused only for the same lengths: after a good step, bad ones are still caught
      expect(() => model.trainStep({ image, label: new Int32Array(3) })).toThrow(/input `label` has 3 values, but i32\[B\] with B = 4 needs 4/);
      expect(() => model.trainStep({ image: new Float32Array(1000), label })).toThrow(/not a whole number of f32\[784\] items/);
      expect(() => model.trainStep({ image: new Float32Array(2 * 784), label })).toThrow(/input `label` has 4 values, but i32\[B\] with B = 2 needs 2/);
      const two = await model.evaluate({ image: new Float32Array(2 * 784), label: new Int32Array(2) });
      expect(Number.isFinite(two.loss)).toBe(true);
      expect(Number.isFinite((await model.trainStep({ image, label }).values()).loss)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('inputs that JavaScript callers get wrong (strings, nested rows, null) and unknown size names are InputErrors, not NaN outputs', { timeout: 60_000 }, async () => {
    const model = await Model.create(MLP(), { device: await getDevice(), batchSize: 2 });
    try {
      const row = Array.from({ length: 784 }, () => 0.5);
      await expect(model.predict({ image: [...row.slice(1), 'a'] as never })).rejects.toThrow('input `image` (f32[B, 784]) holds the string "a" at [783]: give numbers');
      await expect(model.predict({ image: [row, row] as never })).rejects.toThrow('input `image` (f32[B, 784]) holds an array at [0]: give the values flat, row after row (`rows.flat()`)');
      await expect(model.predict({ image: null as never })).rejects.toThrow('input `image` (f32[B, 784]) is null; give a typed array (Float32Array) or a flat array of numbers');
      expect(() => model.trainStep({ image: new Float32Array(784), label: 'x' as never })).toThrow('input `label` (i32[B]) is string; give a typed array (Int32Array) or a flat array of numbers');
      await expect(model.predict({ image: row }, { sizes: { Q: 3 } })).rejects.toThrow('predict() was given a size `Q`, but the model MnistMlp has no size of that name; its sizes are `B`');
      await expect(model.predict({ image: row }, { sizes: { B: 1.5 } })).rejects.toThrow('predict() was given B = 1.5; a size is a whole number, 0 or more');
      await expect(Model.create(MLP(), { device: await getDevice(), sizes: { T: 3 } })).rejects.toThrow(/create\(\) was given a size `T`/);
      // 64-bit integer arrays: named with what to give, not a TypeError from the conversion, nor "holds 0" for a label predict does not read
      await expect(model.predict({ image: new BigInt64Array(784) as never })).rejects.toThrow('input `image` (f32[B, 784]) is a BigInt64Array, whose BigInt values dlc does not convert; give a Float32Array or a flat array of numbers');
      await expect(model.predict({ image: new Float32Array(784), label: new BigUint64Array(1) } as never)).rejects.toThrow('input `label` (i32[B]) is a BigUint64Array, whose BigInt values dlc does not convert; give an Int32Array or a flat array of numbers');
      expect(() => model.trainStep({ image: new Float32Array(784), label: new BigInt64Array(1) as never })).toThrow(InputError);
      expect(() => model.setParameter(model.program.params[1].path, new BigInt64Array(model.program.params[1].shape[0]) as never)).toThrow(/is a BigInt64Array.*give a Float32Array/);
      await expect(model.predict({ image: [...row.slice(1), undefined] as never })).rejects.toThrow('input `image` (f32[B, 784]) holds undefined at [783]: give numbers');
      await expect(model.predict({ image: [...row.slice(1), {}] as never })).rejects.toThrow('holds an object at [783]');
      // a flat array of numbers is fine
      expect((await model.predict({ image: [...row, ...row] })).probs.length).toBe(20);
    } finally {
      model.dispose();
    }
  });

  it('weights that do not fit are WeightsErrors; a partial load reports what it skipped', { timeout: 60_000 }, async () => {
    const device = await getDevice();
    const a = await Model.create(MLP(), { device });
    const b = await Model.create(program('mnist_mlp', 'MnistMlp', 'hidden: 9'), { device });
    try {
      const bytes = await a.saveWeights();
      await expect(b.loadWeights(bytes)).rejects.toThrow(WeightsError);
      await expect(b.loadWeights(bytes)).rejects.toThrow(/the weights file has `net\.hidden\.0\.[wb]` as f32\[(784, )?8\], but the model declares f32\[(784, )?9\]/);
      await expect(a.loadWeights(bytes.slice(0, 100))).rejects.toThrow(/cannot read the weights/);
      // a new head under an old name: skipped and reported, the rest loaded
      const skipped = await b.loadWeights(bytes, { skipMismatched: true, weightsOnly: true });
      expect(skipped.mismatched.map((m) => [m.path, m.file, m.model])).toContainEqual(['net.hidden.0.w', 'f32[784, 8]', 'f32[784, 9]']);
      expect(skipped.mismatched.every((m) => skipped.missing.includes(m.path))).toBe(true);
      const sameShape = (await a.saveWeights({ trainingState: false }).then((x) => decodeSafetensors(x))).tensors;
      const after = decodeSafetensors(await b.saveWeights({ trainingState: false })).tensors;
      for (const path of skipped.loaded) expect(Array.from(after.get(path)!.data)).toEqual(Array.from(sameShape.get(path)!.data));
      expect(skipped.loaded.length).toBeGreaterThan(0);
      const weightsOnly = await a.saveWeights({ trainingState: false });
      const report = await a.loadWeights(weightsOnly);
      expect(report.loaded).toContain('net.hidden.1.b');
      expect(report.missing).toEqual([]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("weights without the training state keep batch norm's running statistics; a file without them is refused unless partial", { timeout: 60_000 }, async () => {
    const src = `use std.nn.{Dense, BatchNorm}

model Normed {
  input x: f32[B, 3]
  input y: f32[B, 2]
  layer fc = Dense(3, 2)
  layer bn = BatchNorm(2)
  output out = bn(fc(x))
  loss = mean((out - y) ** 2)
}

train Normed {
  optimizer = sgd(lr: 0.1)
  batch = 4
}
`;
    const p = compileSource(src, 'normed.dl').programs[0];
    const device = await getDevice();
    const a = await Model.create(p, { device, seed: 1 });
    const b = await Model.create(p, { device, seed: 2 });
    try {
      const x = [1, 2, 3, -1, 0, 2, 4, 1, -2, 0.5, 0.5, 0.5];
      for (let i = 0; i < 3; i++) a.trainStep({ x, y: [1, 0, 0, 1, 1, 1, 0, 0] });
      const weights = await a.saveWeights({ trainingState: false });
      const stored = decodeSafetensors(weights).tensors;
      expect([...stored.keys()].sort()).toEqual(['bn.beta', 'bn.gamma', 'bn.running_mean', 'bn.running_var', 'fc.b', 'fc.w']);
      expect(Array.from(stored.get('bn.running_mean')!.data).some((v) => v !== 0)).toBe(true);
      await b.loadWeights(weights);
      expect(Array.from((await b.predict({ x })).out)).toEqual(Array.from((await a.predict({ x })).out));
      // the running statistics are what the model computes with in evaluation: a file without them does not fit
      const { tensors } = decodeSafetensors(weights);
      tensors.delete('bn.running_var');
      const { encodeSafetensors } = await import('../runtime/safetensors.ts');
      const lacking = encodeSafetensors(new Map([...tensors].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }])));
      await expect(b.loadWeights(lacking)).rejects.toThrow('it lacks `bn.running_var`');
      expect((await b.loadWeights(lacking, { partial: true })).missing).toEqual(['bn.running_var']);
      // another run's optimizer state is named last, and alone it asks for weightsOnly
      const extra = (names: string[]) => encodeSafetensors(new Map([...decodeSafetensors(weights).tensors, ...names.map((n) => [n, { dtype: 'f32', shape: [2], data: new Float32Array(2) }] as const)].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }])));
      await expect(b.loadWeights(extra(['opt.fc.w.v', 'head.w']))).rejects.toThrow('the model has no `head.w`, `opt.fc.w.v` (pass { partial: true } to load what matches)');
      await expect(b.loadWeights(extra(['opt.fc.w.v']))).rejects.toThrow('the model has no `opt.fc.w.v` (pass { weightsOnly: true } to load the weights without the training run\'s state)');
      expect((await b.loadWeights(extra(['opt.fc.w.v']), { weightsOnly: true })).loaded).toContain('fc.w');
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  // regression: a partial load of another model's checkpoint took that run's step and Adam t while the new
  // head's moments stayed zero, so Adam's bias correction halved the first updates
  it("a partial load of another model's checkpoint leaves its optimizer state and step behind; of the model's own, takes them", { timeout: 120_000 }, async () => {
    const src = `use std.nn.{Dense}

model Pre {
  input x: f32[B, 3]
  input y: f32[B]
  layer enc = Dense(3, 4)
  layer head = Dense(4, 1)
  loss = mse(head(tanh(enc(x)))[:, 0], y)
}

train Pre {
  optimizer = adam(lr: 1e-2)
  batch = 4
}

model Fine {
  input x: f32[B, 3]
  input y: f32[B]
  layer enc = Dense(3, 4)
  layer reg = Dense(4, 1)
  loss = mse(reg(tanh(enc(x)))[:, 0], y)
}

train Fine {
  optimizer = adam(lr: 1e-3)
  batch = 4
}
`;
    const { programs } = compileSource(src, 'transfer.dl');
    const [pre, fine] = ['Pre', 'Fine'].map((name) => programs.find((p) => p.model === name)!);
    const device = await getDevice();
    const a = await Model.create(pre, { device, seed: 1 });
    const b = await Model.create(fine, { device, seed: 2 });
    const c = await Model.create(fine, { device, seed: 3 });
    try {
      const x = [1, 2, 3, -1, 0, 2, 4, 1, -2, 0.5, 0.5, 0.5];
      const y = [1, -1, 0.5, 2];
      for (let i = 0; i < 5; i++) a.trainStep({ x, y });
      const checkpoint = await a.saveWeights();
      expect(decodeSafetensors(checkpoint).tensors.has('opt.train.enc.w.m')).toBe(true);
      const report = await b.loadWeights(checkpoint, { partial: true });
      expect([...report.loaded].sort()).toEqual(['enc.b', 'enc.w']);
      expect(report.ignored).toContain('opt.train.t');
      expect(report.ignored).toContain('opt.train.enc.w.m');
      expect(b.step).toBe(0);
      expect(Array.from(await b.getState('opt.train.t'))).toEqual([0]);
      expect(Array.from(await b.getState('opt.train.enc.w.m')).every((v) => v === 0)).toBe(true);
      // a fresh Adam's first update moves every weight with a gradient by lr (m / sqrt(v) = sign(g))
      const before = await b.getParameter('reg.w');
      await b.trainStep({ x, y }).values();
      const after = await b.getParameter('reg.w');
      for (let i = 0; i < before.length; i++) expect(Math.abs(after[i] - before[i])).toBeCloseTo(1e-3, 6);
      expect(b.step).toBe(1);
      // the model's own checkpoint (its dlc.model) with an extra tensor: it resumes
      b.trainStep({ x, y });
      const own = decodeSafetensors(await b.saveWeights());
      own.tensors.set('head.w', { dtype: 'f32', shape: [2], data: new Float32Array(2) });
      const { encodeSafetensors } = await import('../runtime/safetensors.ts');
      const bytes = encodeSafetensors(new Map([...own.tensors].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }])), own.metadata);
      const resumed = await c.loadWeights(bytes, { partial: true });
      expect(resumed.loaded).toContain('opt.train.t');
      expect(resumed.ignored).toEqual(['head.w']);
      expect(c.step).toBe(2);
      expect(Array.from(await c.getState('opt.train.t'))).toEqual([2]);
      // the model's own checkpoint lacking one parameter's moments (a resumed run whose freeze changed) still resumes
      const moment = [...own.tensors.keys()].find((k) => k.startsWith('opt.train.reg.'))!;
      own.tensors.delete(moment);
      c.reset(5);
      const lacking = await c.loadWeights(encodeSafetensors(new Map([...own.tensors].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }])), own.metadata), { partial: true });
      expect(lacking.loaded).toContain('opt.train.t');
      expect(lacking.missing).toEqual([]);
      expect(c.step).toBe(2);
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });

  // regression: cls_loss and acc came from the regress step's forward pass, after the classify step had
  // updated on the same batch, so classify_objective did not equal cls_loss + 0.1 * reg_loss on one line
  it('with several steps, each value comes from one forward pass: a step\'s own loss and its objective\'s terms from that step, the rest from the first', { timeout: 120_000 }, async () => {
    const src = `use std.nn.{Dense}

model Steps {
  input x: f32[B, 3]
  input label: i32[B]
  input t: f32[B]
  layer enc = Dense(3, 4)
  layer cls = Dense(4, 2)
  layer reg = Dense(4, 1)
  let h = tanh(enc(x))
  let logits = cls(h)
  loss cls_loss = cross_entropy(logits, label)
  loss reg_loss = mse(reg(h)[:, 0], t)
  metric acc = accuracy(logits, label)
}

train Steps {
  batch = 4
  step classify {
    minimize cls_loss + 0.1 * reg_loss with sgd(lr: 0.5)
    freeze reg
  }
  step regress {
    minimize reg_loss over reg, enc with sgd(lr: 0.5)
  }
}
`;
    const p = compileSource(src, 'steps.dl').programs[0];
    expect(p.training!.steps.map((s) => [s.name, s.loss, s.terms])).toEqual([
      ['classify', 'classify_objective', ['cls_loss', 'reg_loss']],
      ['regress', 'reg_loss', undefined],
    ]);
    const device = await getDevice();
    const a = await Model.create(p, { device, seed: 1 });
    const b = await Model.create(p, { device, seed: 1 });
    try {
      const batch = { x: [1, 2, 3, -1, 0, 2, 4, 1, -2, 0.5, 0.5, 0.5], label: [0, 1, 1, 0], t: [1, -1, 0.5, 2] };
      const before = await a.evaluate(batch);
      const v = await a.trainStep(batch).values();
      // the classify step's objective and its terms: the weights before any update on this batch
      expect(v.classify_objective).toBeCloseTo(before.cls_loss + 0.1 * before.reg_loss, 5);
      expect(v.cls_loss).toBeCloseTo(before.cls_loss, 5);
      expect(v.acc).toBe(before.acc);
      // reg_loss is the regress step's own loss: its forward pass, after the classify step's update
      b.trainStep(batch, { step: 'classify' });
      const between = await b.evaluate(batch);
      expect(Math.abs(between.reg_loss - before.reg_loss)).toBeGreaterThan(1e-4);
      expect(v.reg_loss).toBeCloseTo(between.reg_loss, 5);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('no adapter is a NoAdapterError with what to install', async () => {
    const nav = globalThis as { navigator?: unknown };
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: { requestAdapter: async () => null } }, configurable: true });
    try {
      await expect(acquireDevice()).rejects.toThrow(NoAdapterError);
      await expect(acquireDevice()).rejects.toThrow(/no WebGPU adapter was found/);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete nav.navigator;
    }
  });

  it('a batch too large for the device is an OutOfMemoryError naming the tensor, before allocating anything', { timeout: 60_000 }, async () => {
    await expect(Model.create(MLP(), { device: await getDevice(), batchSize: 50_000_000 })).rejects.toThrow(OutOfMemoryError);
    await expect(Model.create(MLP(), { device: await getDevice(), batchSize: 50_000_000 })).rejects.toThrow(/MnistMlp needs [\d,]+ bytes .* at B = 50000000, and its largest buffer \(input image of predict\) takes [\d,]+ bytes .*over this device's limits \(maxBufferSize/);
  });

  it('a batch refused as too large leaves the model as it was: the next batches give their own outputs', { timeout: 60_000 }, async () => {
    const device = await getDevice();
    const src = 'use std.nn.{Dense}\nmodel Wide {\n  input x: f32[B, 2]\n  layer fc = Dense(2, 4096)\n  layer out = Dense(4096, 2)\n  output y = out(relu(fc(x)))\n}\n';
    const r = compileSource(src, 'wide.dl');
    const model = await Model.create(r.programs[0], { device, seed: 1 });
    try {
      const small = (b: number, at: number) => Float32Array.from({ length: 2 * b }, (_, i) => Math.sin(i + at));
      const first = (await model.predict({ x: small(10, 0) })).y.slice();
      // B × 4096 floats over the binding limit: refused when the buffer is allocated, after the old one went
      const huge = Math.floor(device.limits.maxStorageBufferBindingSize / (4096 * 4)) + 1;
      await expect(model.predict({ x: new Float32Array(2 * huge) })).rejects.toThrow(OutOfMemoryError);
      const other = (await model.predict({ x: small(10, 5) })).y.slice();
      const again = (await model.predict({ x: small(10, 0) })).y;
      expect(Array.from(again)).toEqual(Array.from(first));
      expect(Array.from(other)).not.toEqual(Array.from(first));
      const fresh = await Model.create(r.programs[0], { device, seed: 1 });
      expect(Array.from((await fresh.predict({ x: small(10, 5) })).y)).toEqual(Array.from(other));
      fresh.dispose();
    } finally {
      model.dispose();
    }
  });

  it('a model disposed on a device the caller keeps can be garbage-collected', { timeout: 60_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const device = await getDevice();
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 4; i++) {
      const model = await Model.create(MLP(), { device, batchSize: 2 });
      await model.predict({ image: new Float32Array(2 * 784) });
      model.dispose();
      refs.push(new WeakRef(model));
    }
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    // Dawn's bindings hold on to the last model's final read until the next one; the earlier ones are gone
    // (the device's lost promise held every one of them)
    expect(refs.slice(0, -1).map((r, i) => (r.deref() ? i : -1)).filter((i) => i >= 0)).toEqual([]);
  });

  it('a shader that does not compile is a ShaderError naming the op and its .dl line', { timeout: 60_000 }, async () => {
    const p = MLP();
    // a fused elementwise kernel (fusion is on by default), made invalid by a line that cannot compile
    const inference = new Set([p.graphs.predict, p.graphs.evaluate, ...(p.graphs.totals ? [p.graphs.totals] : [])].flatMap((g) => g.kernels.map((x) => x.shader)));
    const k = p.graphs.steps[0].kernels.find((x) => x.op === 'fused_elementwise' && !inference.has(x.shader))!;
    const invalid = (s: string) => s.replace('if (idx >= p.header.x) { return; }', 'if (idx >= p.header.x) { return; }\n  let broken: bool = 1u;');
    const broken: ModelProgram = { ...p, shaders: p.shaders.map((s, i) => (i === k.shader ? invalid(s) : s)) };
    // a train step's shader compiles when training is prepared (create() builds only the inference graphs')
    const model = await Model.create(broken, { device: await getDevice(), kernels: 'gpu' });
    try {
      const err = await model.prepareTraining().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ShaderError);
      const where = `${k.source!.file}:${k.source!.line}:${k.source!.col}`;
      expect((err as Error).message).toContain(`the WGSL for fused_elementwise (from ${where}) does not compile: `);
    } finally {
      model.dispose();
    }
    // an inference kernel's, in create()
    const e = p.graphs.predict.kernels.find((x) => x.op === 'fused_elementwise' || x.op.startsWith('fused'))!;
    const brokenPredict: ModelProgram = { ...p, shaders: p.shaders.map((s, i) => (i === e.shader ? `${s}\nfn broken() { let b: bool = 1u; }` : s)) };
    await expect(Model.create(brokenPredict, { device: await getDevice(), kernels: 'gpu' })).rejects.toBeInstanceOf(ShaderError);
  });

  it('a lost device turns every later call into a DeviceLostError, without hanging', { timeout: 60_000 }, async () => {
    const model = await Model.create(MLP(), { batchSize: 2 });
    const image = new Float32Array(2 * 784);
    const label = new Int32Array(2);
    await model.trainStep({ image, label }).values();
    (model as unknown as { executor: { device: GPUDevice } }).executor.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(() => model.trainStep({ image, label })).toThrow(DeviceLostError);
    await expect(model.predict({ image })).rejects.toThrow(/the GPU device was lost/);
    model.dispose();
  });
});

describe('update copies', () => {
  const A = { label: 'param arena' } as unknown as GPUBuffer;
  const T = { label: 'temp arena' } as unknown as GPUBuffer;
  const S = { label: 'a state buffer' } as unknown as GPUBuffer;
  const copy = (dst: GPUBuffer, dstOffset: number, src: GPUBuffer, srcOffset: number, size: number) => ({ dst, dstOffset, src, srcOffset, size });

  it('merges adjacent ranges at one distance, across padding only', () => {
    const copies = [copy(A, 512, T, 512, 40), copy(S, 0, T, 4096, 4), copy(A, 0, T, 0, 400), copy(A, 1024, T, 1024, 8), copy(A, 400, T, 400, 112)];
    // bytes 552..1024 of A are padding, except 600..640 (a frozen parameter's range)
    const free = (_: GPUBuffer, start: number, end: number) => end <= 600 || start >= 640;
    expect(mergeCopies(copies, free)).toEqual([copy(A, 0, T, 0, 552), copy(A, 1024, T, 1024, 8), copy(S, 0, T, 4096, 4)]);
    const all = mergeCopies(copies, () => true);
    expect(all).toEqual([copy(A, 0, T, 0, 1032), copy(S, 0, T, 4096, 4)]);
  });

  it('keeps ranges apart at different distances, from other sources, or empty', () => {
    const copies = [copy(A, 0, T, 0, 16), copy(A, 16, T, 32, 16), copy(A, 32, S, 48, 16), copy(A, 64, T, 64, 0)];
    expect(mergeCopies(copies, () => true)).toEqual(copies.slice(0, 3));
  });

  it('a trained model copies its updates in a few merged copies (one per arena)', async () => {
    const c = EXAMPLE_CASES.find((x) => x.model === 'CharGPT')!;
    const file = `examples/${c.file}.dl`;
    const compiled = compileSource(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) });
    const program = compiled.programs.find((p) => p.model === c.model)!;
    const model = await Model.create(program, { device: await getDevice(), seed: 1, batchSize: 2, sizes: { L: 6 } });
    model.trainStep({ tokens: Int32Array.from({ length: 12 }, (_, i) => i % 11) });
    const step = program.graphs.steps[0];
    const inst = (model as unknown as { executor: { graphs: Map<string, { copies: readonly unknown[] }> } }).executor.graphs.get(step.name)!;
    // parameters, first and second moments in arenas: those the update kernels write in place are no
    // copies at all, the rest are updated from temporary arenas at the same offsets; the step count and RNG key alone
    expect(step.updates.length).toBeGreaterThan(20);
    expect(inst.copies.length).toBeLessThanOrEqual(8);
    model.dispose();
  });

  it("an Adam MLP: parameters and second moments written in place, two copies (first moments, step count), though the weights' first moments come from matmul epilogues", async () => {
    const source = `use std.nn.{Dense}
use std.act.{relu}
use std.loss.{cross_entropy}
use std.optim.{adam}
model M {
  input x: f32[B, 12]
  input y: i32[B]
  layer a = Dense(12, 8)
  layer b = Dense(8, 3)
  loss = cross_entropy(b(relu(a(x))), y)
}
train M {
  optimizer = adam(lr: 1e-2)
  minimize loss
}`;
    const program = compileSource(source, 'm.dl').programs[0];
    const model = await Model.create(program, { device: await getDevice(), seed: 1, batchSize: 4 });
    const batch = { x: Float32Array.from({ length: 48 }, (_, i) => Math.sin(i)), y: Int32Array.from([0, 1, 2, 1]) };
    const before = (await model.trainStep(batch).values()).loss;
    for (let i = 0; i < 20; i++) model.trainStep(batch);
    const after = (await model.trainStep(batch).values()).loss;
    const step = program.graphs.steps[0];
    const inst = (model as unknown as { executor: { graphs: Map<string, { copies: readonly unknown[] }> } }).executor.graphs.get(step.name)!;
    // 13 new values: 4 parameters and 4 second moments in place, 4 first moments and the step count copied
    expect(step.updates.length).toBe(5);
    expect(inst.copies.length).toBe(2);
    // the merged copies still train: the loss on the one batch falls
    expect(after).toBeLessThan(before);
    model.dispose();
  });
});

describe('step values', () => {
  it('read at once (pooled staging) or many steps later (the ring on the GPU), in any order, they are the same', async () => {
    const c = EXAMPLE_CASES.find((x) => x.model === 'MnistMlp')!;
    const file = `examples/${c.file}.dl`;
    const compiled = compileSource(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) });
    const program = compiled.programs.find((p) => p.model === c.model)!;
    const device = await getDevice();
    const r = (() => {
      let x = 7;
      return () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    })();
    const batches = Array.from({ length: 6 }, () => ({ image: Float32Array.from({ length: 4 * 784 }, r), label: Int32Array.from({ length: 4 }, () => Math.floor(r() * 10)) }));
    const eager = await Model.create(program, { device, seed: 5, batchSize: 4 });
    const now: Record<string, number>[] = [];
    for (const b of batches) now.push(await eager.trainStep(b).values());
    eager.dispose();
    const lazy = await Model.create(program, { device, seed: 5, batchSize: 4 });
    const handles = batches.map((b) => lazy.trainStep(b));
    const later = await Promise.all([...handles].reverse().map((h) => h.values()));
    later.reverse();
    expect(later).toEqual(now);
    expect(new Set(now.map((v) => v.loss)).size).toBe(6);
    lazy.dispose();
  });
});

describe('once kernels (results that depend on the sizes alone)', () => {
  /** The same program with every kernel run at every step: the reference. */
  const everyRun = (p: ModelProgram): ModelProgram => {
    const strip = (g: ModelProgram['graphs']['predict']) => ({ ...g, kernels: g.kernels.map(({ once: _once, ...k }) => k) });
    return { ...p, graphs: { predict: strip(p.graphs.predict), evaluate: strip(p.graphs.evaluate), steps: p.graphs.steps.map(strip) } };
  };
  const tokens = (B: number, L: number, seed: number) => Int32Array.from({ length: B * L }, (_, i) => (i * 7 + seed * 3) % 11);

  it("CharGPT's causal mask is dispatched at the first run at each size only, and every run gives the bits of running it each time", { timeout: 120_000 }, async () => {
    const p = program('char_transformer', 'CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 2');
    const onceOps = (g: ModelProgram['graphs']['predict']) => g.kernels.filter((k) => k.once).map((k) => k.op);
    expect(onceOps(p.graphs.predict)).toEqual(['iota', 'ge']);
    expect(onceOps(p.graphs.steps[0])).toContain('ge');
    const device = await getDevice();
    const [a, b] = [await Model.create(p, { device, seed: 3, sizes: { L: 6 } }), await Model.create(everyRun(p), { device, seed: 3, sizes: { L: 6 } })];
    try {
      // count the dispatches of a's runs
      const ex = (a as unknown as { executor: { dispatch: (...args: unknown[]) => void } }).executor;
      const dispatch = ex.dispatch.bind(ex);
      let count = 0;
      ex.dispatch = (...args: unknown[]) => {
        count++;
        dispatch(...args);
      };
      const runs: [number, number][] = [[2, 6], [2, 6], [3, 6], [3, 6], [2, 6]];
      const counts: number[] = [];
      for (const [i, [B, L]] of runs.entries()) {
        count = 0;
        const x = { tokens: tokens(B, L, i) };
        const [ya, yb] = [await a.predict(x), await b.predict(x)];
        counts.push(count);
        for (const k of Object.keys(yb)) expect(Array.from((ya as Record<string, Float32Array>)[k]), `run ${i}: ${k}`).toEqual(Array.from((yb as Record<string, Float32Array>)[k]));
      }
      const all = p.graphs.predict.kernels.length;
      expect(counts).toEqual([all, all - 2, all, all - 2, all]);
      // training: three steps at one size then one at another, the same losses bit for bit
      for (const [i, [B, L]] of [[2, 6], [2, 6], [2, 6], [3, 6], [3, 6]].entries()) {
        const batch = { tokens: tokens(B, L, 10 + i) };
        const [la, lb] = [await a.trainStep(batch).values(), await b.trainStep(batch).values()];
        expect(la, `step ${i}`).toEqual(lb);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});

describe('random numbers in predict', () => {
  it('each predict call draws afresh: categorical samples follow the probabilities, noise differs call to call', { timeout: 60_000 }, async () => {
    const src = 'model Sampler {\n  input logits: f32[B, 2]\n  output action = categorical(logits)\n  output noise = random_normal([B, 3])\n}\n';
    const r = compileSource(src, 'sampler.dl');
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 1 });
    try {
      const n = 300;
      let ones = 0;
      const noises = new Set<string>();
      for (let i = 0; i < n; i++) {
        const out = await model.predict({ logits: [0, 0.5] });
        ones += out.action[0];
        noises.add(Array.from(out.noise).join(','));
      }
      const p = 1 / (1 + Math.exp(-0.5)); // 0.62
      // 300 draws: the standard deviation of the fraction is 0.028; 0.12 is over 4 of them
      expect(Math.abs(ones / n - p)).toBeLessThan(0.12);
      expect(noises.size).toBe(n);
    } finally {
      model.dispose();
    }
  });
});

describe('size conditions', () => {
  const src = 'model Table {\n  input tokens: i32[B, L]\n  param pos: f32[4, 2] = constant(7.0)\n  output rows = pos[:L - 1] + 0.0 * cast(tokens[:, 1:, None], f32)\n}\n';

  it("a table sliced by a size: a batch past the table breaks the model's condition (it read past the table's end)", { timeout: 60_000 }, async () => {
    const model = await Model.create(compileSource(src, 'table.dl').programs[0], { device: await getDevice() });
    try {
      const ok = await model.predict({ tokens: [1, 2, 3, 4, 5] }, { sizes: { L: 5 } });
      expect(Array.from(ok.rows)).toEqual(new Array(8).fill(7));
      await expect(model.predict({ tokens: new Array(9).fill(1) }, { sizes: { L: 9 } })).rejects.toThrow("the batch breaks the model's condition `4 >= L - 1` with L = 9 (4 >= 8 is false)");
    } finally {
      model.dispose();
    }
  });

  it('sizes given when creating the model are checked against its conditions first (it failed with negative buffer lengths)', { timeout: 60_000 }, async () => {
    await expect(Model.create(compileSource(src, 'table.dl').programs[0], { device: await getDevice(), sizes: { L: 9 } })).rejects.toThrow(new InputError('the sizes given when creating the model break its condition `4 >= L - 1` (4 >= 8 is false)'));
  });
});

describe('one_hot labels', () => {
  it('a label past one_hot\'s depth is an InputError naming it (it was a row of zeros)', { timeout: 60_000 }, async () => {
    const src = 'model OneHot {\n  input label: i32[B]\n  output target = one_hot(label, 3)\n}\n';
    const model = await Model.create(compileSource(src, 'onehot.dl').programs[0], { device: await getDevice() });
    try {
      expect(Array.from((await model.predict({ label: [2, 0] })).target)).toEqual([0, 0, 1, 1, 0, 0]);
      await expect(model.predict({ label: [1, 3] })).rejects.toThrow(/input `label` holds 3 at \[1\], but the model uses it to index the classes of one_hot\(\.\.\., 3\), of size 3 \(onehot\.dl:3:\d+\): every value must be in 0\.\.2/);
    } finally {
      model.dispose();
    }
  });
});

describe('cross_entropy ignore_index at run time', () => {
  it('labels equal to ignore_index pass the index check, and any other label out of range is still an InputError (it clamped silently)', { timeout: 60_000 }, async () => {
    const src = 'model Ce {\n  input z: f32[B, 4]\n  input y: i32[B]\n  loss = cross_entropy(z, y, ignore_index: -100)\n}\n';
    const program = compileSource(src, 'ce.dl').programs[0];
    expect(program.inputs.find((i) => i.name === 'y')!.indices?.map((u) => [u.bound, u.ignore])).toEqual([[4, -100]]);
    const model = await Model.create(program, { device: await getDevice() });
    try {
      const z = [0.1, 0.2, 0.3, 0.4, 1, 0, 0, 0];
      const ok = await model.evaluate({ z, y: [2, -100] });
      expect(ok.loss).toBeCloseTo(Math.log(Math.exp(0.1) + Math.exp(0.2) + Math.exp(0.3) + Math.exp(0.4)) - 0.3, 5);
      await expect(model.evaluate({ z, y: [4, -100] })).rejects.toThrow(/input `y` holds 4 at \[0\], but the model uses it to index axis 1 of f32\[B, 4\], of size 4 \(ce\.dl:4:10, in stdlib\/loss\.dl:\d+:\d+\): every value must be in 0\.\.3 or be -100 \(ignore_index\)/);
      await expect(model.evaluate({ z, y: [-1, 0] })).rejects.toThrow(/holds -1 at \[0\]/);
    } finally {
      model.dispose();
    }
  });
});
