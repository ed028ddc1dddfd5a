// The newer stdlib layers and functions (std.math, RMSNorm, GroupNorm, Upsample, huber, top_k_accuracy) on WebGPU agree with the float64 interpreter on the same weights.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

const SOURCE = `use std.nn.{RMSNorm, GroupNorm, Upsample}
use std.math.{var, std, normalize, cosine_similarity, tril, triu}
use std.loss.{huber}

model Newer {
  input x: f32[B, 4]
  input img: f32[B, 4, 3, 3]
  input label: i32[B]
  layer rms = RMSNorm(4)
  layer group = GroupNorm(2, 4)
  layer up = Upsample(2)
  output variance = var(x, axis: 0)
  output deviation = std(x, axis: -1, keepdims: true, correction: 0)
  output unit = normalize(x)
  output cosine = cosine_similarity(x, x * x)
  output lower = tril(x[:, :, None] * x[:, None, :])
  output upper = triu(x[:, :, None] * x[:, None, :], k: 1)
  output scaled = rms(x)
  output grouped = group(img)
  output larger = up(img)
  output robust = huber(x, x * 0.25, delta: 0.5)
  output top2 = top_k_accuracy(x, label, k: 2)
}
`;

describe('newer stdlib on WebGPU', () => {
  it("every output agrees with the float64 interpreter on the GPU model's own weights", { timeout: 60_000 }, async () => {
    const res = compileSource(SOURCE, 'newer.dl');
    expect(res.diagnostics).toEqual([]);
    const model = await Model.create(res.programs[0], { device: await getDevice(), seed: 5 });
    try {
      const random = seededRandom(9);
      const b = 3;
      const x = Array.from({ length: b * 4 }, () => Math.fround(random() * 4 - 2));
      const img = Array.from({ length: b * 36 }, () => Math.fround(random() * 2 - 1));
      const label = [0, 3, 1];
      const gpu = await model.predict({ x, img, label });
      const weights = decodeSafetensors(await model.saveWeights());
      const params = new Map<string, Tensor>([...weights.tensors].map(([k, t]) => [k, tensor('f32', [...t.shape], Array.from(t.data as ArrayLike<number>))]));
      const graph = checkSource(SOURCE, 'newer.dl', undefined, { training: false }).graphs.get('Newer')!;
      const ref = interpretGraph(graph, { inputs: new Map([['x', tensor('f32', [b, 4], x)], ['img', tensor('f32', [b, 4, 3, 3], img)], ['label', tensor('i32', [b], label)]]), params, state: new Map() }, { sizes: new Map([['B', b]]) });
      expect([...ref.outputs.keys()].sort()).toEqual(Object.keys(gpu).sort());
      for (const [name, want] of ref.outputs) {
        const got = gpu[name as keyof typeof gpu] as ArrayLike<number>;
        expect(got.length, name).toBe(want.data.length);
        for (let i = 0; i < want.data.length; i++) expect(Math.abs(got[i] - want.data[i]), `${name}[${i}]: ${got[i]} on the GPU, ${want.data[i]} in float64`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(want.data[i]));
      }
    } finally {
      model.dispose();
    }
  });
});
