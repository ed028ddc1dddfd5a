// Activations and losses at numerical extremes on WebGPU against float64 references (softplus far below 0, log1p/expm1/tanh/elu near 0, log_softmax and cross_entropy at large logits), and the gradients at the kinks of relu, elu and leaky_relu, the same as PyTorch's.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

const EXTREMES = `model Extremes {
  input x: f32[K]
  input logits: f32[B, 4]
  input label: i32[B]
  output sp = softplus(x)
  output log_sp = log(softplus(x))
  output lp = log1p(x)
  output em = expm1(x)
  output th = tanh(x)
  output el = elu(x)
  output lsm = log_softmax(logits)
  output ce = cross_entropy(logits, label)
}
`;

const X = [-20, -40, -80, 1e-8, -1e-7, 1e-6, -1e-5, 3e-3];
const LOGITS = [-1e4, -1e4, -1e4, -1e4, 1e4, 1e4, 1e4, 1e4, 88, 89, 90, 100];
const LABEL = [3, 0, 3];

const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
const logSoftmax = (row: number[]) => {
  const m = Math.max(...row);
  const s = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
  return row.map((v) => v - m - s);
};

/** |got - want| within rtol of |want| for every element. */
function expectRelative(name: string, got: ArrayLike<number>, want: readonly number[], rtol: number): void {
  expect(got.length, name).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${name}[${i}]: ${got[i]} on the GPU, ${want[i]} in float64`).toBeLessThanOrEqual(rtol * Math.abs(want[i]));
}

describe('numerics at the extremes on WebGPU', () => {
  it('softplus, log1p, expm1, tanh and elu keep their relative accuracy; log_softmax and cross_entropy stay exact at logits of 1e4', { timeout: 60_000 }, async () => {
    const r = compileSource(EXTREMES, 'extremes.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 1 });
    try {
      const x = X.map(Math.fround);
      const got = await model.predict({ x, logits: LOGITS, label: LABEL });
      // log(1 + exp(-20)) rounds to 0 in f32: softplus was 0 and its log -Infinity
      expectRelative('softplus', got.sp as ArrayLike<number>, x.map(softplus), 1e-5);
      expectRelative('log(softplus)', got.log_sp as ArrayLike<number>, x.map((v) => Math.log(softplus(v))), 1e-5);
      // log(1 + 1e-8) is 0 and exp(1e-7) - 1 is 1.19e-7 in f32; lavapipe's tanh(1e-7) is 1.19e-7
      expectRelative('log1p', Array.from(got.lp as ArrayLike<number>).slice(3), x.slice(3).map(Math.log1p), 1e-5);
      expectRelative('expm1', got.em as ArrayLike<number>, x.map(Math.expm1), 1e-5);
      expectRelative('tanh', got.th as ArrayLike<number>, x.map(Math.tanh), 1e-5);
      expectRelative('elu', got.el as ArrayLike<number>, x.map((v) => (v > 0 ? v : Math.expm1(v))), 1e-5);
      // x - logsumexp(x) was -1.38672 at -1e4 (logsumexp rounded to an ulp of 1e4, 1e-3)
      const rows = [0, 1, 2].map((i) => LOGITS.slice(i * 4, i * 4 + 4));
      const lsm = rows.flatMap(logSoftmax);
      const lsmGot = got.lsm as ArrayLike<number>;
      expectRelative('log_softmax rows of +-1e4', Array.from(lsmGot).slice(0, 8), lsm.slice(0, 8), 1e-6);
      // the top class of [88, 89, 90, 100]: log(1 + 6.8e-5) keeps f32's rounding of the sum near 1
      for (let i = 8; i < 12; i++) expect(Math.abs(lsmGot[i] - lsm[i]), `log_softmax[${i}]`).toBeLessThanOrEqual(1e-7 + 1e-6 * Math.abs(lsm[i]));
      const ce = -LABEL.reduce((a, l, i) => a + lsm[i * 4 + l], 0) / 3;
      expect(Math.abs((got.ce as ArrayLike<number>)[0] - ce), `cross_entropy ${(got.ce as ArrayLike<number>)[0]} vs ${ce}`).toBeLessThanOrEqual(1e-6 * ce);
    } finally {
      model.dispose();
    }
  });

  it("relu'(0) = 0, elu'(0) = alpha and leaky_relu'(0) = slope, as in PyTorch; softplus'(0) = 1/2", { timeout: 60_000 }, async () => {
    // every parameter starts at 0 and one sgd step of lr 1 leaves minus its gradient
    const src = `model Kinks {
  input x: f32[B, 1]
  param a: f32[1] = zeros
  param b: f32[1] = zeros
  param c: f32[1] = zeros
  param d: f32[1] = zeros
  loss = mean(x[:, 0]) * 0.0 + relu(a)[0] + elu(b, alpha: 0.7)[0] + leaky_relu(c, slope: 0.1)[0] + softplus(d)[0]
}
train Kinks {
  optimizer = sgd(lr: 1.0)
  minimize loss
}
`;
    const r = compileSource(src, 'kinks.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 1 });
    try {
      await model.trainStep({ x: new Float32Array([1]) }).values();
      const grad = async (p: string) => -(await model.getParameter(p))[0];
      expect(Math.abs(await grad('a'))).toBe(0);
      expect(await grad('b')).toBeCloseTo(0.7, 6);
      expect(await grad('c')).toBeCloseTo(0.1, 6);
      expect(await grad('d')).toBeCloseTo(0.5, 6);
    } finally {
      model.dispose();
    }
  });
});
