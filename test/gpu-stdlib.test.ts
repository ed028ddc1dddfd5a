// The newer stdlib layers and functions (std.math, Conv1d, RMSNorm, GroupNorm, Upsample, huber, kl_normal, top_k_accuracy, the recurrent layers' states, layers and directions) on WebGPU agree with the float64 interpreter on the same weights.
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
use std.math.{var, std, normalize, cosine_similarity, tril, triu, top_k, clip}
use std.loss.{huber, kl_normal}

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
  output kl = kl_normal(x, x * 0.5)
  output top2 = top_k_accuracy(x, label, k: 2)
  output best = top_k(x, 2)[0]
  output best_ids = cast(top_k(x, 2)[1], f32)
  output clipped = clip(x, -0.5, 0.5) + clip(x, x[:, 0:1], x[:, 1:2] + 0.25)
}
`;

/** Every output on the GPU against the float64 interpreter's, element by element (1e-5 + 1e-4 relative). */
function expectOutputsMatch(gpu: Readonly<Record<string, unknown>>, ref: ReadonlyMap<string, Tensor>): void {
  expect([...ref.keys()].sort()).toEqual(Object.keys(gpu).sort());
  for (const [name, want] of ref) {
    const got = gpu[name] as ArrayLike<number>;
    expect(got.length, name).toBe(want.data.length);
    for (let i = 0; i < want.data.length; i++) expect(Math.abs(got[i] - want.data[i]), `${name}[${i}]: ${got[i]} on the GPU, ${want.data[i]} in float64`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(want.data[i]));
  }
}

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
      expectOutputsMatch(gpu, ref.outputs);
    } finally {
      model.dispose();
    }
  });

  it('Conv1d (causal and dilated; strided, padded and grouped) agrees with the float64 interpreter', { timeout: 60_000 }, async () => {
    const source = `use std.nn.{Conv1d}
model Tcn {
  input seq: f32[B, 3, 10]
  layer causal = Conv1d(3, 4, 3, dilation: 2, causal: true)
  layer strided = Conv1d(4, 6, 3, stride: 2, padding: 1, groups: 2)
  output kept = causal(seq)
  output shorter = strided(relu(causal(seq)))
}
`;
    const res = compileSource(source, 'tcn.dl');
    expect(res.diagnostics).toEqual([]);
    const model = await Model.create(res.programs[0], { device: await getDevice(), seed: 3 });
    try {
      const random = seededRandom(4);
      const b = 2;
      const seq = Array.from({ length: b * 30 }, () => Math.fround(random() * 2 - 1));
      const gpu = await model.predict({ seq });
      const weights = decodeSafetensors(await model.saveWeights());
      const params = new Map<string, Tensor>([...weights.tensors].map(([k, t]) => [k, tensor('f32', [...t.shape], Array.from(t.data as ArrayLike<number>))]));
      const graph = checkSource(source, 'tcn.dl', undefined, { training: false }).graphs.get('Tcn')!;
      const ref = interpretGraph(graph, { inputs: new Map([['seq', tensor('f32', [b, 3, 10], seq)]]), params, state: new Map() }, { sizes: new Map([['B', b]]) });
      expect(ref.outputs.get('kept')!.shape).toEqual([b, 4, 10]);
      expect(ref.outputs.get('shorter')!.shape).toEqual([b, 6, 5]);
      expectOutputsMatch(gpu, ref.outputs);
    } finally {
      model.dispose();
    }
  });

  it('stacked, bidirectional GRU and LSTM from given states, with their final states, agree with the float64 interpreter', { timeout: 60_000 }, async () => {
    const source = `use std.nn.{GRU, LSTM}
model Recurrent {
  input x: f32[B, 4, 3]
  input h0: f32[4, B, 5]
  input c0: f32[2, B, 5]
  layer gru = GRU(3, 5, num_layers: 2, bidirectional: true, return_state: true)
  layer lstm = LSTM(3, 5, bidirectional: true, forget_bias: 0.0, return_state: true)
  let ys, h_n = gru(x, h0: h0)
  let zs, lh, lc = lstm(x, h0: h0[2:], c0: c0)
  output gru_out = ys
  output gru_h = h_n
  output lstm_out = zs
  output lstm_h = lh
  output lstm_c = lc
}
`;
    const res = compileSource(source, 'recurrent.dl');
    expect(res.diagnostics).toEqual([]);
    const model = await Model.create(res.programs[0], { device: await getDevice(), seed: 3 });
    try {
      const random = seededRandom(4);
      const b = 2;
      const draw = (n: number) => Array.from({ length: n }, () => Math.fround(random() * 2 - 1));
      const feeds = { x: draw(b * 12), h0: draw(4 * b * 5), c0: draw(2 * b * 5) };
      const gpu = await model.predict(feeds);
      const weights = decodeSafetensors(await model.saveWeights());
      const params = new Map<string, Tensor>([...weights.tensors].map(([k, t]) => [k, tensor('f32', [...t.shape], Array.from(t.data as ArrayLike<number>))]));
      const graph = checkSource(source, 'recurrent.dl', undefined, { training: false }).graphs.get('Recurrent')!;
      const inputs = new Map([['x', tensor('f32', [b, 4, 3], feeds.x)], ['h0', tensor('f32', [4, b, 5], feeds.h0)], ['c0', tensor('f32', [2, b, 5], feeds.c0)]]);
      const ref = interpretGraph(graph, { inputs, params, state: new Map() }, { sizes: new Map([['B', b]]) });
      expectOutputsMatch(gpu, ref.outputs);
    } finally {
      model.dispose();
    }
  });
});
