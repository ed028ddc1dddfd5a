// Optimizer updates on WebGPU (Dawn on lavapipe) against torch.optim's formulas in float64: the f32 step's
// updates, not only the f64 interpreter's, within 2e-6 of the update's size (and the weight's f32 rounding) (Adam's bias corrections and
// the exponential schedule's powers are where f32 lost digits).
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

const B = 4;
const X = Float32Array.from({ length: B * 3 }, (_, i) => Math.sin(1.3 * i + 0.2));
const Y = Float32Array.from({ length: B * 2 }, (_, i) => Math.cos(0.7 * i));

/** A Dense(3, 2) regression trained with `optimizer` (and `schedule`), its weights after each of `steps` steps. */
async function gpuRun(optimizer: string, schedule: string | undefined, steps: number): Promise<{ w: Float64Array; b: Float64Array }[]> {
  const src = `use std.nn.{Dense}\nmodel Lin {\n  input x: f32[B, 3]\n  input y: f32[B, 2]\n  layer fc = Dense(3, 2)\n  output p = fc(x)\n  loss = mse(p, y)\n}\ntrain Lin {\n  optimizer = ${optimizer}\n${schedule ? `  schedule = ${schedule}\n` : ''}  batch = ${B}\n}\n`;
  const r = compileSource(src, 'lin.dl');
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 3 });
  try {
    const weights = async () => {
      const t = decodeSafetensors(await model.saveWeights()).tensors;
      return { w: Float64Array.from(t.get('fc.w')!.data as Float32Array), b: Float64Array.from(t.get('fc.b')!.data as Float32Array) };
    };
    const out = [await weights()];
    for (let s = 0; s < steps; s++) {
      await model.trainStep({ x: X, y: Y }).values();
      out.push(await weights());
    }
    return out;
  } finally {
    model.dispose();
  }
}

/** mse(x @ w + b, y)'s gradients in float64. */
function grads(w: Float64Array, b: Float64Array): { w: Float64Array; b: Float64Array } {
  const gw = new Float64Array(6);
  const gb = new Float64Array(2);
  for (let i = 0; i < B; i++) {
    for (let o = 0; o < 2; o++) {
      let p = b[o];
      for (let k = 0; k < 3; k++) p += X[i * 3 + k] * w[k * 2 + o];
      const d = (2 * (p - Y[i * 2 + o])) / (B * 2);
      gb[o] += d;
      for (let k = 0; k < 3; k++) gw[k * 2 + o] += X[i * 3 + k] * d;
    }
  }
  return { w: gw, b: gb };
}

/** torch.optim.Adam / AdamW (amsgrad off) with a per-step learning rate, from the GPU's own initial weights. */
function adamReference(start: { w: Float64Array; b: Float64Array }, steps: number, o: { beta1: number; beta2: number; eps: number; wd: number; decoupled: boolean }, lr: (t: number) => number) {
  const w = start.w.slice();
  const b = start.b.slice();
  const m = { w: new Float64Array(6), b: new Float64Array(2) };
  const v = { w: new Float64Array(6), b: new Float64Array(2) };
  const out = [{ w: w.slice(), b: b.slice() }];
  for (let t = 1; t <= steps; t++) {
    const g = grads(w, b);
    const rate = lr(t - 1);
    for (const key of ['w', 'b'] as const) {
      const p = key === 'w' ? w : b;
      for (let i = 0; i < p.length; i++) {
        let gi = g[key][i];
        if (o.decoupled) p[i] *= 1 - rate * o.wd;
        else gi += o.wd * p[i];
        m[key][i] = o.beta1 * m[key][i] + (1 - o.beta1) * gi;
        v[key][i] = o.beta2 * v[key][i] + (1 - o.beta2) * gi * gi;
        const bc1 = 1 - Math.pow(o.beta1, t);
        const bc2 = 1 - Math.pow(o.beta2, t);
        p[i] -= (rate / bc1) * (m[key][i] / (Math.sqrt(v[key][i]) / Math.sqrt(bc2) + o.eps));
      }
    }
    out.push({ w: w.slice(), b: b.slice() });
  }
  return out;
}

/** Each step's update from the start, the GPU's against the reference's, relative to the largest update. */
function expectUpdatesClose(gpu: { w: Float64Array; b: Float64Array }[], ref: { w: Float64Array; b: Float64Array }[], tol: number): void {
  for (let s = 1; s < gpu.length; s++) {
    for (const key of ['w', 'b'] as const) {
      const got = gpu[s][key].map((x, i) => x - gpu[0][key][i]);
      const want = ref[s][key].map((x, i) => x - ref[0][key][i]);
      const scale = Math.max(...want.map(Math.abs));
      // the weights are f32: each update is also off by the rounding of the weight it lands on
      const rounding = 2 ** -23 * Math.max(...ref[s][key].map(Math.abs));
      const worst = Math.max(...got.map((x, i) => Math.abs(x - want[i])));
      expect(worst, `step ${s}, ${key}: updates ${Array.from(got)} against ${Array.from(want)}`).toBeLessThan(tol * scale + 2 * rounding);
    }
  }
}

describe('optimizer updates on WebGPU against float64', () => {
  it('adam with the default betas (0.9, 0.999): the bias corrections keep their digits in f32', { timeout: 60_000 }, async () => {
    const gpu = await gpuRun('adam(lr: 0.01)', undefined, 3);
    expectUpdatesClose(gpu, adamReference(gpu[0], 3, { beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0, decoupled: false }, () => 0.01), 2e-6);
  });

  it('adamw with weight decay, under an exponential schedule with gamma near 1', { timeout: 60_000 }, async () => {
    const gpu = await gpuRun('adamw(lr: 0.01, weight_decay: 0.5)', 'exponential(gamma: 0.9995)', 3);
    expectUpdatesClose(gpu, adamReference(gpu[0], 3, { beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.5, decoupled: true }, (t) => 0.01 * Math.pow(0.9995, t)), 2e-6);
  });
});
