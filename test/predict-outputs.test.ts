// predict(inputs, { outputs }): only the kernels the named outputs need run, and only the inputs they read are needed.
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { InputError } from '../runtime/errors.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { dataflowInputs, outputSubset, reportedResults } from '../runtime/subset.ts';
import { getDevice } from './gpu-helpers.ts';
import { dlc, repoTempDir, ROOT } from './cli-helpers.ts';
import { EXIT_OK } from '../compiler/cli/main.ts';

const TWO_TOWER = `use std.nn.{Dense, Embedding}
use std.math.{normalize}

model TwoTower(n_users: int = 12, n_items: int = 10, d: int = 8) {
  input user: i32[B]
  input item: i32[N]
  layer user_emb = Embedding(n_users, d)
  layer item_emb = Embedding(n_items, d)
  layer user_tower = Dense(d, d)
  layer item_tower = Dense(d, d)
  output user_vec = normalize(user_tower(relu(user_emb(user))), axis: -1)
  output item_vec = normalize(item_tower(relu(item_emb(item))), axis: -1)
}
`;

// the encoder draws (the reparameterization), so predict advances the random key
const VAE = `use std.nn.{Dense}

model Vae(d: int = 6, k: int = 3) {
  input image: f32[B, d]
  input z: f32[B, k]
  layer enc = Dense(d, 2 * k)
  layer dec = Dense(k, d)
  let h = enc(image)
  let mu = h[:, 0:k]
  let logvar = h[:, k:2 * k]
  let sample = mu + exp(0.5 * logvar) * random_normal([B, k])
  output recon = sigmoid(dec(sample))
  output decoded = sigmoid(dec(z))
}
`;

// mu_out shares \`mu\` with diff, which also reads \`a\`: fusion puts both in one kernel that reads x and a
const SHARED = `model Shared {
  input x: f32[B, 2]
  input a: f32[B, 2]
  input eps: f32[]
  param w: f32[2, 2] = ones
  let mu = x @ w
  output mu_out = mu
  output diff = a - mu
  output scaled = mu * eps
  loss = mean(diff * diff)
}

train Shared {
  optimizer = sgd(lr: 0.1)
}
`;

function compileModel(text: string, name: string): ModelProgram {
  const r = compileSource(text, `${name}.dl`);
  const p = r.programs.find((x) => x.model === name);
  if (!p) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return p;
}

/** Count the dispatches of `work` (every compute pass's dispatchWorkgroups on this process's WebGPU). */
async function countDispatches(work: () => Promise<unknown>): Promise<number> {
  const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: { dispatchWorkgroups: (...a: unknown[]) => void } } }).GPUComputePassEncoder.prototype;
  const original = proto.dispatchWorkgroups;
  let n = 0;
  proto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
    n++;
    return original.apply(this, a);
  };
  try {
    await work();
  } finally {
    proto.dispatchWorkgroups = original;
  }
  return n;
}

describe('predict with outputs', () => {
  it('keeps only the kernels and inputs one output needs (a two-tower model: the item tower alone)', () => {
    const p = compileModel(TWO_TOWER, 'TwoTower');
    const full = p.graphs.predict;
    const items = outputSubset(full, ['item_vec']);
    expect(Object.keys(items.inputs)).toEqual(['item']);
    expect(Object.keys(items.outputs)).toEqual(['item_vec']);
    expect(items.kernels.length).toBeGreaterThan(0);
    expect(items.kernels.length).toBeLessThan(full.kernels.length);
    // no buffer of the user tower is left
    expect(items.buffers.length).toBeLessThan(full.buffers.length);
    expect(outputSubset(full, ['user_vec', 'item_vec'])).toBe(full);
  });

  it('on WebGPU, predicts one tower from its input alone, as the full predict does, with fewer dispatches', { timeout: 60_000 }, async () => {
    const model = await Model.create(compileModel(TWO_TOWER, 'TwoTower'), { device: await getDevice(), seed: 3 });
    try {
      const user = Int32Array.of(0, 5, 11);
      const item = Int32Array.of(9, 1, 4, 4, 0);
      let all: Record<string, Float32Array | Int32Array | Uint32Array> = {};
      const fullCount = await countDispatches(async () => (all = await model.predict({ user, item })));
      let items: Record<string, Float32Array | Int32Array | Uint32Array> = {};
      const itemCount = await countDispatches(async () => (items = await model.predict({ item }, { outputs: ['item_vec'] })));
      expect(Object.keys(items)).toEqual(['item_vec']);
      expect(items.item_vec.length).toBe(5 * 8);
      expect(Array.from(items.item_vec)).toEqual(Array.from(all.item_vec));
      const users = await model.predict({ user }, { outputs: ['user_vec'] });
      expect(Array.from(users.user_vec)).toEqual(Array.from(all.user_vec));
      expect(itemCount).toBeGreaterThan(0);
      expect(itemCount).toBeLessThan(fullCount);
      // a second call at other sizes reuses the subset
      const again = await model.predict({ item: item.subarray(0, 2) }, { outputs: ['item_vec'] });
      expect(Array.from(again.item_vec)).toEqual(Array.from(all.item_vec.subarray(0, 16)));
      // the full predict still needs both inputs
      await expect(model.predict({ item })).rejects.toThrow(/no input `user`/);
    } finally {
      model.dispose();
    }
  });

  it('makes an unknown output, or none, an InputError naming the outputs', { timeout: 60_000 }, async () => {
    const model = await Model.create(compileModel(TWO_TOWER, 'TwoTower'), { device: await getDevice() });
    try {
      const item = Int32Array.of(1);
      const unknown = model.predict({ item }, { outputs: ['item_vec', 'itemvec'] as never });
      await expect(unknown).rejects.toBeInstanceOf(InputError);
      await expect(unknown).rejects.toThrow(/no output of that name.*`itemvec`|`itemvec`.*its outputs are `user_vec`, `item_vec`/);
      await expect(model.predict({ item }, { outputs: [] })).rejects.toThrow(/non-empty array of output names; the outputs of TwoTower are `user_vec`, `item_vec`/);
    } finally {
      model.dispose();
    }
  });

  it('decodes from the latent z alone (a VAE), and advances the random key as the full predict does', { timeout: 60_000 }, async () => {
    const program = compileModel(VAE, 'Vae');
    expect(Object.keys(outputSubset(program.graphs.predict, ['decoded']).inputs)).toEqual(['z']);
    const device = await getDevice();
    const a = await Model.create(program, { device, seed: 5 });
    const b = await Model.create(program, { device, seed: 5 });
    try {
      const image = Float32Array.from({ length: 2 * 6 }, (_, i) => (i % 5) / 5);
      const z = Float32Array.from({ length: 2 * 3 }, (_, i) => i / 3 - 1);
      const fullA = await a.predict({ image, z });
      const decoded = await b.predict({ z }, { outputs: ['decoded'] });
      expect(Object.keys(decoded)).toEqual(['decoded']);
      expect(Array.from(decoded.decoded)).toEqual(Array.from(fullA.decoded));
      // both models have drawn once: their next draws (recon) agree
      const nextA = await a.predict({ image, z });
      const nextB = await b.predict({ image, z });
      expect(Array.from(nextB.recon)).toEqual(Array.from(nextA.recon));
      expect(Array.from(nextA.recon)).not.toEqual(Array.from(fullA.recon));
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('asks only for the inputs an output depends on in the dataflow graph, not every input its fused kernel reads', () => {
    const p = compileModel(SHARED, 'Shared');
    // the kernel that computes mu also reads a for diff (what made mu_out need a before)
    expect(p.graphs.predict.kernels.some((k) => k.inputs.includes(p.graphs.predict.inputs.a) && k.inputs.includes(p.graphs.predict.inputs.x))).toBe(true);
    expect(p.graphs.predict.dependencies?.outputs).toEqual({ mu_out: ['x'], diff: ['x', 'a'], scaled: ['x', 'eps'] });
    expect(Object.keys(outputSubset(p.graphs.predict, ['mu_out']).inputs)).toEqual(['x']);
    expect(Object.keys(outputSubset(p.graphs.predict, ['diff']).inputs)).toEqual(['x', 'a']);
    // the training step reads x and a, not the acting-only eps
    expect(Object.keys(p.graphs.steps[0].inputs)).toContain('eps');
    expect(Object.keys(dataflowInputs(p.graphs.steps[0], reportedResults(p, p.graphs.steps[0])).inputs)).toEqual(['x', 'a']);
    expect(Object.keys(dataflowInputs(p.graphs.evaluate, reportedResults(p, p.graphs.evaluate)).inputs)).toEqual(['x', 'a']);
  });

  it('on WebGPU, predicts mu_out from x alone and trains without the acting-only input, as with every input', { timeout: 60_000 }, async () => {
    const device = await getDevice();
    const program = compileModel(SHARED, 'Shared');
    const a = await Model.create(program, { device, seed: 1 });
    const b = await Model.create(program, { device, seed: 1 });
    try {
      const x = Float32Array.of(1, 2, -3, 0.5);
      const shift = Float32Array.of(0.5, -1, 2, 4);
      const full = await a.predict({ x, a: shift, eps: [2] });
      const alone = await a.predict({ x }, { outputs: ['mu_out'] });
      // x @ ones: each row's sum in both columns
      expect(Array.from(alone.mu_out)).toEqual([3, 3, -2.5, -2.5]);
      expect(Array.from(alone.mu_out)).toEqual(Array.from(full.mu_out));
      await expect(a.predict({ x }, { outputs: ['diff'] })).rejects.toThrow(/no input `a`/);
      // a scalar input takes a plain number
      const scaled = await a.predict({ x, eps: 0.5 }, { outputs: ['scaled'] });
      expect(Array.from(scaled.scaled)).toEqual([1.5, 1.5, -1.25, -1.25]);
      const withEps = await a.trainStep({ x, a: shift, eps: 0.25 }).values();
      const without = await b.trainStep({ x, a: shift }).values();
      expect(without.loss).toBe(withEps.loss);
      expect(Array.from(await b.getParameter('w'))).toEqual(Array.from(await a.getParameter('w')));
      expect((await b.evaluate({ x, a: shift })).loss).toBe((await a.evaluate({ x, a: shift })).loss);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("types it in the generated module: each output's inputs (OutputInputs), the outputs asked for as the result", { timeout: 120_000 }, async () => {
    const dir = repoTempDir('predict-outputs');
    writeFileSync(join(dir, 'tt.dl'), TWO_TOWER);
    writeFileSync(join(dir, 'sh.dl'), SHARED);
    for (const f of ['tt.dl', 'sh.dl']) {
      const r = await dlc('compile', join(dir, f), '-o', dir, '--runtime', relative(dir, join(ROOT, 'runtime/index.ts')));
      expect(r.status, r.err).toBe(EXIT_OK);
    }
    writeFileSync(
      join(dir, 'use.ts'),
      `import { create, type Outputs } from './two_tower.ts'; import { create as createShared } from './shared.ts';
const model = await create();
const item = new Int32Array(3);
const items: { readonly item_vec: Float32Array } = await model.predict({ item }, { outputs: ['item_vec'] });
const all: Outputs = await model.predict({ item, user: new Int32Array(2) });
console.log(items.item_vec.length, all.user_vec.length);
await model.predict({ item }, { outputs: ['user_vec'] });
const one = await model.predict({ item }, { outputs: ['item_vec'] });
console.log(one.user_vec);
await model.predict({ item }, { outputs: ['itemvec'] });
const sh = await createShared();
await sh.trainStep({ x: new Float32Array(2), a: new Float32Array(2) }).values();
await sh.evaluate({ x: new Float32Array(2), a: new Float32Array(2), eps: 0.5 });
sh.trainStep({ x: new Float32Array(2) });
`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023', 'DOM'], types: ['@webgpu/types'], typeRoots: [join(ROOT, 'node_modules')], allowImportingTsExtensions: true, noEmit: true, skipLibCheck: true, exactOptionalPropertyTypes: true },
        files: ['two_tower.ts', 'shared.ts', 'use.ts'],
      }),
    );
    let errors = '';
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      errors = String((e as { stdout?: string }).stdout ?? e);
    }
    const lines = errors.split('\n').filter((l) => /use\.ts\(\d+/.test(l)).map((l) => Number(/use\.ts\((\d+)/.exec(l)![1]));
    // lines 1-6 type-check; asking for user_vec without user, reading user_vec from an item_vec result, an unknown name do not;
    // a training step needs x and a (StepInputs), not the acting-only eps, and not without a
    expect([...new Set(lines)].sort((x, y) => x - y), errors).toEqual([7, 9, 10, 14]);
    expect(errors).toMatch(/use\.ts\(7,\d+\):[^\n]*Pick<Inputs, "user">/);
  });
});
