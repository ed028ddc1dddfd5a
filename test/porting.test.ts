// Bringing PyTorch-trained weights into dlc: loadWeights' map and transpose against a reference computed from torch's layout, PyTorch's num_batches_tracked skipped, transposed tensors named.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc, repoTempDir } from './cli-helpers.ts';
import { IRIS_MODEL, zerosFile } from './helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

const SRC = `use std.nn.{Dense, BatchNorm}

model Normed {
  input x: f32[B, 3]
  layer fc = Dense(3, 2)
  layer bn = BatchNorm(2)
  output out = bn(fc(x))
}
`;

const f32 = (shape: number[], values: number[]): StoredTensor => ({ dtype: 'f32', shape, data: Float32Array.from(values) });

/** A PyTorch state_dict of Linear(3, 2) and BatchNorm1d(2), as torch names and lays it out ([out, in]). */
const TORCH = {
  'fc.weight': f32([2, 3], [0.5, -1, 2, 1.5, 0.25, -0.75]),
  'fc.bias': f32([2], [0.1, -0.2]),
  'bn.weight': f32([2], [1.5, 0.5]),
  'bn.bias': f32([2], [0.3, -0.4]),
  'bn.running_mean': f32([2], [0.2, -0.1]),
  'bn.running_var': f32([2], [2, 0.5]),
};

/** PyTorch's eval-mode Linear then BatchNorm1d on `x` (rows of 3), in f64. */
function torchForward(x: number[]): number[] {
  const w = TORCH['fc.weight'].data as Float32Array;
  const out: number[] = [];
  for (let r = 0; r < x.length / 3; r++) {
    for (let o = 0; o < 2; o++) {
      let y = TORCH['fc.bias'].data[o] as number;
      for (let i = 0; i < 3; i++) y += x[r * 3 + i] * w[o * 3 + i];
      const bn = (k: keyof typeof TORCH) => TORCH[k].data[o] as number;
      out.push(((y - bn('bn.running_mean')) / Math.sqrt(bn('bn.running_var') + 1e-5)) * bn('bn.weight') + bn('bn.bias'));
    }
  }
  return out;
}

const DLC_NAMES: Record<string, string> = { 'fc.w': 'fc.weight', 'fc.b': 'fc.bias', 'bn.gamma': 'bn.weight', 'bn.beta': 'bn.bias', 'bn.running_mean': 'bn.running_mean', 'bn.running_var': 'bn.running_var' };
const counter: StoredTensor = { dtype: 'i32', shape: [], data: Int32Array.from([7]) };

/** A safetensors file as torch writes one: F32 tensors and I64 ones (a batch norm's num_batches_tracked). */
function torchFile(tensors: Record<string, StoredTensor>, i64: Record<string, bigint>): Uint8Array {
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let offset = 0;
  const add = (name: string, dtype: string, shape: readonly number[], bytes: Uint8Array) => {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  };
  for (const [name, t] of Object.entries(tensors)) add(name, 'F32', t.shape, new Uint8Array(Float32Array.from(t.data as Float32Array).buffer));
  for (const [name, v] of Object.entries(i64)) add(name, 'I64', [], new Uint8Array(BigInt64Array.from([v]).buffer));
  const text = JSON.stringify(header);
  const head = new TextEncoder().encode(text + ' '.repeat((8 - (text.length % 8)) % 8));
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('loadWeights from a PyTorch state_dict', () => {
  it('map renames, transpose reads Linear.weight as Dense.w, and the result computes what PyTorch computes', { timeout: 60_000 }, async () => {
    const model = await Model.create(compileSource(SRC, 'normed.dl').programs[0], { device: await getDevice() });
    try {
      const x = [1, 2, 3, -1, 0, 2];
      // the object form: the model's path to the file's name; DataParallel's `module.` prefix with the function form
      const torch = encodeSafetensors({ ...TORCH, 'bn.num_batches_tracked': counter });
      const report = await model.loadWeights(torch, { map: DLC_NAMES, transpose: ['fc.w'] });
      expect([...report.loaded].sort()).toEqual(Object.keys(DLC_NAMES).sort());
      expect(report.ignored).toEqual(['bn.num_batches_tracked']);
      const got = Array.from((await model.predict({ x })).out);
      torchForward(x).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
      const wrapped = encodeSafetensors(Object.fromEntries(Object.entries(TORCH).map(([k, t]) => [`module.${k}`, t])));
      await model.reset(3);
      await model.loadWeights(wrapped, { map: (path) => `module.${DLC_NAMES[path]}`, transpose: ['fc.w'] });
      const again = Array.from((await model.predict({ x })).out);
      expect(again).toEqual(got);
      // without the transpose: the shapes say it is the transpose, and what to pass
      await expect(model.loadWeights(torch, { map: DLC_NAMES })).rejects.toThrow(
        "the weights file has `fc.weight` (for `fc.w`) as f32[2, 3], but the model declares f32[3, 2]; it is the transpose of the model's: transposed? (PyTorch's Linear stores [out, in], dlc's Dense [in, out]): pass { transpose: ['fc.w'] } to read it transposed",
      );
      expect((await model.loadWeights(torch, { map: DLC_NAMES, skipMismatched: true, partial: true })).mismatched).toEqual([{ path: 'fc.w', file: 'f32[2, 3]', model: 'f32[3, 2]', transposed: true }]);
      // a name that is not the model's is refused, not ignored
      await expect(model.loadWeights(torch, { map: { 'fc.weight': 'fc.w' } })).rejects.toThrow('map names `fc.weight`, which is not a tensor of the model Normed');
      await expect(model.loadWeights(torch, { map: DLC_NAMES, transpose: ['fc.weight'] })).rejects.toThrow('transpose names `fc.weight`, which is not a tensor of the model Normed');
      await expect(model.loadWeights(torch, { map: DLC_NAMES, transpose: ['bn.gamma'] })).rejects.toThrow('only a 2-d tensor transposes');
    } finally {
      model.dispose();
    }
  });

  it("a strict load skips PyTorch's num_batches_tracked (I64 too) but still refuses other extra tensors and missing ones", { timeout: 60_000 }, async () => {
    const model = await Model.create(compileSource(SRC, 'normed.dl').programs[0], { device: await getDevice() });
    try {
      const renamed = Object.fromEntries(Object.entries(DLC_NAMES).map(([dlc, torch]) => [dlc, dlc === 'fc.w' ? f32([3, 2], [0.5, 1.5, -1, 0.25, 2, -0.75]) : TORCH[torch as keyof typeof TORCH]]));
      const withCounter = encodeSafetensors({ ...renamed, 'bn.num_batches_tracked': counter });
      expect((await model.loadWeights(withCounter)).ignored).toEqual(['bn.num_batches_tracked']);
      // torch's own dtype, I64, as torch writes it
      expect((await model.loadWeights(torchFile(renamed, { 'bn.num_batches_tracked': 123n }))).ignored).toEqual(['bn.num_batches_tracked']);
      expect((await model.loadWeights(torchFile(renamed, { 'bn.num_batches_tracked': 1n << 40n }))).ignored).toEqual(['bn.num_batches_tracked']);
      const { 'fc.b': _b, ...lacking } = renamed;
      void _b;
      await expect(model.loadWeights(encodeSafetensors({ ...lacking, 'bn.num_batches_tracked': counter }))).rejects.toThrow('it lacks `fc.b`');
      await expect(model.loadWeights(encodeSafetensors({ ...renamed, 'bn.num_batches_tracked': counter, 'extra.scale': f32([1], [1]) }))).rejects.toThrow('the model has no `extra.scale` (pass { partial: true }');
    } finally {
      model.dispose();
    }
  });
});


const IRIS_TRAIN = `${IRIS_MODEL}train Iris {\n  data = iris()\n  optimizer = adam(lr: 0.03)\n  batch = 16\n}\n`;
const IRIS_F16: [string, string, number[], number][] = [
  ['fc1.w', 'F16', [4, 16], 2],
  ['fc1.b', 'F16', [16], 2],
  ['fc2.w', 'F16', [16, 3], 2],
  ['fc2.b', 'F16', [3], 2],
];

describe('dlc evaluate and predict --checkpoint with a PyTorch-written file', () => {
  it('name the tensors that do not fit, not the dtype, and take num_batches_tracked as init_from does', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('porting-checkpoint');
    const file = join(dir, 'iris.dl');
    writeFileSync(file, IRIS_TRAIN);
    writeFileSync(join(dir, 'extra.safetensors'), zerosFile([...IRIS_F16, ['extra.scale', 'F16', [1], 2]]));
    writeFileSync(join(dir, 'counter.safetensors'), zerosFile([...IRIS_F16, ['bn.num_batches_tracked', 'I64', [], 8]]));
    for (const command of ['evaluate', 'predict']) {
      const r = await dlc(command, file, '--checkpoint', join(dir, 'extra.safetensors'));
      expect(r.status, r.err).toBe(EXIT_USER_ERROR);
      expect(r.err).toContain('the model has no `extra.scale`');
      expect(r.err).not.toContain('dtype');
    }
    const fine = await dlc('evaluate', file, '--checkpoint', join(dir, 'counter.safetensors'));
    expect(fine.status, fine.err).toBe(EXIT_OK);
    expect(fine.out + fine.err).toContain('accuracy');
  });
});

describe("BatchNorm's running variance", () => {
  it("is PyTorch's (unbiased) with unbiased: true and the biased one by default, after one training step", { timeout: 60_000 }, async () => {
    const src = (unbiased: boolean) => `use std.nn.{BatchNorm}
model M {
  input x: f32[B, 2, 3]
  layer bn = BatchNorm(2, momentum: 0.5${unbiased ? ', unbiased: true' : ''})
  output y = bn(x)
  loss = mean(y ** 2)
}
train M { optimizer = sgd(lr: 0.0) }
`;
    // [B = 2, C = 2, L = 3]
    const x = [1, 2, 4, -1, 0, 3, 0.5, -2, 1, 2, 2, 5];
    const expected = (unbiased: boolean) =>
      [0, 1].map((c) => {
        const v: number[] = [];
        for (let b = 0; b < 2; b++) for (let l = 0; l < 3; l++) v.push(x[b * 6 + c * 3 + l]);
        const mu = v.reduce((a, e) => a + e, 0) / v.length;
        const ss = v.reduce((a, e) => a + (e - mu) ** 2, 0);
        return 0.5 * 1 + 0.5 * (ss / (unbiased ? v.length - 1 : v.length));
      });
    for (const unbiased of [true, false]) {
      const model = await Model.create(compileSource(src(unbiased), 'bn.dl').programs[0], { device: await getDevice() });
      try {
        model.trainStep({ x });
        const got = decodeSafetensors(await model.saveWeights({ trainingState: false })).tensors.get('bn.running_var')!.data;
        expected(unbiased).forEach((v, i) => expect(got[i], String(unbiased)).toBeCloseTo(v, 5));
      } finally {
        model.dispose();
      }
    }
  });
});
