// The TF.js side of the benchmarks: the same models written with tfjs-core ops on the shared WebGPU device.
import type { Tensor, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import type { SharedGpu, Tf } from './gpu.ts';

export interface TfRun {
  /** One step, resolved once the GPU has finished it. */
  step(): Promise<void>;
  /** Kernels per step and peak tensor bytes during one step (tf.profile), run once after warmup. */
  profile(): Promise<{ kernels: number; peakBytes: number; gpuBytesAllocated: number }>;
  dispose(): void;
}

/** Finish a training step: TF.js batches its dispatches into its own command encoder; submit it and wait. */
async function drain(gpu: SharedGpu): Promise<void> {
  gpu.backend.ensureCommandEncoderReady();
  gpu.backend.endComputePassEncoder();
  gpu.backend.submitQueue();
  await gpu.device.queue.onSubmittedWorkDone();
}

function run(gpu: SharedGpu, stepOnly: () => void, vars: readonly Tensor[], optimizer?: { dispose(): void }): TfRun {
  const { tf } = gpu;
  return {
    step: async () => {
      stepOnly();
      await drain(gpu);
    },
    profile: async () => {
      const info = await tf.profile(() => {
        stepOnly();
      });
      await drain(gpu);
      return { kernels: info.kernels.length, peakBytes: info.peakBytes, gpuBytesAllocated: gpu.backend.memory().numBytesAllocatedInGPU };
    },
    dispose: () => {
      for (const v of vars) v.dispose();
      optimizer?.dispose();
    },
  };
}

/**
 * Gradients clipped to global norm 1 (as torch.nn.utils.clip_grad_norm_), then one Adam update of each
 * variable, step `t` (1-based), with decoupled weight decay `decay(i)` (AdamW) where given: TF.js's
 * own Adam has neither clipping nor decoupled decay, so the benchmarks write it with tf ops.
 */
function clippedAdam(
  tf: Tf,
  vars: readonly Variable[],
  moments: readonly { m: Variable; v: Variable }[],
  grads: Readonly<Record<string, Tensor>>,
  o: { lr: number; t: number; beta1: number; beta2: number; eps: number; decay?: (i: number) => number },
): void {
  const gs = vars.map((v) => grads[v.name]);
  // a chain of adds: TF.js's addN binds every input at once, past WebGPU's 8 storage buffers per stage
  const norm = tf.sqrt(gs.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)));
  const scale = tf.minimum(1, tf.div(1, tf.add(norm, 1e-6)));
  const c1 = 1 - o.beta1 ** o.t;
  const c2 = 1 - o.beta2 ** o.t;
  vars.forEach((p, i) => {
    const g = tf.mul(gs[i], scale);
    const { m, v } = moments[i];
    m.assign(tf.add(tf.mul(m, o.beta1), tf.mul(g, 1 - o.beta1)));
    v.assign(tf.add(tf.mul(v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2)));
    const decay = o.decay?.(i) ?? 0;
    const kept = decay > 0 ? tf.mul(p, 1 - o.lr * decay) : p;
    p.assign(tf.sub(kept, tf.div(tf.mul(m, o.lr / c1), tf.add(tf.sqrt(tf.div(v, c2)), o.eps))));
  });
}

// variables are made inside tidy so their initial-value tensors are freed
const glorot = (tf: Tf, fanIn: number, fanOut: number, shape: number[]) => {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  return tf.tidy(() => tf.variable(tf.randomUniform(shape, -a, a, 'float32', 7)));
};
const zeros = (tf: Tf, shape: number[]) => tf.tidy(() => tf.variable(tf.zeros(shape)));

/** A square matmul of two resident tensors; reads back the first row (as the dlc model does). */
export function tfMatmul(gpu: SharedGpu, n: number): TfRun {
  const { tf } = gpu;
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const step = () => tf.tidy(() => tf.slice(tf.matMul(a, b), [0, 0], [1, n]));
  return {
    step: async () => {
      const row = step();
      await row.data();
      row.dispose();
    },
    profile: async () => {
      const info = await tf.profile(() => step());
      tf.dispose(info.result);
      return { kernels: info.kernels.length, peakBytes: info.peakBytes, gpuBytesAllocated: gpu.backend.memory().numBytesAllocatedInGPU };
    },
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}

/** MLP 784 -> hidden -> 10, softmax cross-entropy, Adam; the batch is uploaded every step (as dlc's trainStep does). */
export function tfMlp(gpu: SharedGpu, hidden: number, image: Float32Array, label: Int32Array): TfRun {
  const { tf } = gpu;
  const batch = label.length;
  const w1 = glorot(tf, 784, hidden, [784, hidden]);
  const b1 = zeros(tf, [hidden]);
  const w2 = glorot(tf, hidden, 10, [hidden, 10]);
  const b2 = zeros(tf, [10]);
  const opt = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
  const step = () =>
    tf.tidy(() => {
      const x = tf.tensor2d(image, [batch, 784]);
      const y = tf.oneHot(tf.tensor1d(label, 'int32'), 10);
      opt.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2), b2)) as ReturnType<typeof tf.scalar>, false, [w1, b1, w2, b2]);
    });
  return run(gpu, step, [w1, b1, w2, b2], opt);
}

/**
 * LeNet-5 as examples/lenet.dl, in NHWC (TF.js's conv layout). With one channel, dlc's [B, 1, 28, 28]
 * and TF.js's [B, 28, 28, 1] are the same bytes, so both get the same array.
 */
export function tfLeNet(gpu: SharedGpu, image: Float32Array, label: Int32Array): TfRun {
  const { tf } = gpu;
  const batch = label.length;
  const heNormal = (shape: number[], fanIn: number) => tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', 3)));
  const c1w = heNormal([5, 5, 1, 6], 25);
  const c1b = zeros(tf, [6]);
  const c2w = heNormal([5, 5, 6, 16], 150);
  const c2b = zeros(tf, [16]);
  const f1w = glorot(tf, 400, 120, [400, 120]);
  const f1b = zeros(tf, [120]);
  const f2w = glorot(tf, 120, 84, [120, 84]);
  const f2b = zeros(tf, [84]);
  const f3w = glorot(tf, 84, 10, [84, 10]);
  const f3b = zeros(tf, [10]);
  const vars = [c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b];
  const opt = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
  const step = () =>
    tf.tidy(() => {
      const x = tf.tensor4d(image, [batch, 28, 28, 1]);
      const y = tf.oneHot(tf.tensor1d(label, 'int32'), 10);
      opt.minimize(
        () => {
          const convBlock = (input: Tensor4D, w: Tensor, b: Tensor, pad: 'same' | 'valid') =>
            tf.maxPool(tf.relu(tf.add(tf.conv2d(input, w as Tensor4D, 1, pad), b)) as Tensor4D, 2, 2, 'valid') as Tensor4D;
          const h = convBlock(convBlock(x, c1w, c1b, 'same'), c2w, c2b, 'valid');
          const flat = tf.reshape(h, [batch, 400]);
          const z = tf.relu(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(flat, f1w), f1b)), f2w), f2b));
          return tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(z, f3w), f3b)) as ReturnType<typeof tf.scalar>;
        },
        false,
        vars,
      );
    });
  return run(gpu, step, vars, opt);
}

export interface GptConfig {
  readonly vocab: number;
  readonly ctx: number;
  readonly d: number;
  readonly heads: number;
  readonly depth: number;
}

/**
 * examples/char_transformer.dl's CharGPT without dropout (the dlc side is compiled with p: 0): token and
 * learned position embeddings, pre-norm blocks of causal multi-head attention and a GELU MLP (4d),
 * a final LayerNorm, logits through the tied token embedding, cross-entropy on the shifted tokens. The
 * step matches the example's train block: global-norm clipping at 1.0, AdamW (beta2 0.95, weight decay
 * 0.1 except embeddings, LayerNorms and biases) and a warmup-cosine learning rate computed on the host.
 */
export function tfGpt(gpu: SharedGpu, c: GptConfig, tokens: Int32Array, batch: number, length: number): TfRun {
  const { tf } = gpu;
  const { d, heads, vocab } = c;
  const hd = d / heads;
  const T = length - 1;
  let seed = 11;
  const normal = (shape: number[], std: number) => tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed++)));
  const ones = (shape: number[]) => tf.tidy(() => tf.variable(tf.ones(shape)));
  const decayed: Variable[] = [];
  const plain: Variable[] = [];
  const dense = (i: number, o: number) => {
    const a = Math.sqrt(6 / (i + o));
    const w = tf.tidy(() => tf.variable(tf.randomUniform([i, o], -a, a, 'float32', seed++)));
    const b = zeros(tf, [o]);
    decayed.push(w);
    plain.push(b);
    return { w, b };
  };
  const ln = () => {
    const g = ones([d]);
    const b = zeros(tf, [d]);
    plain.push(g, b);
    return { g, b };
  };
  const tok = normal([vocab, d], 0.02);
  const pos = normal([c.ctx, d], 0.02);
  plain.push(tok, pos);
  const blocks = Array.from({ length: c.depth }, () => ({ ln1: ln(), qkv: dense(d, 3 * d), proj: dense(d, d), ln2: ln(), up: dense(d, 4 * d), down: dense(4 * d, d) }));
  const lnF = ln();
  const vars = [...decayed, ...plain];
  const moments = vars.map((v) => tf.tidy(() => ({ m: tf.variable(tf.zerosLike(v)), v: tf.variable(tf.zerosLike(v)) })));
  const mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9)); // 0 on and below the diagonal

  const layerNorm = (x: Tensor, p: { g: Tensor; b: Tensor }) => {
    const mean = tf.mean(x, -1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, 1e-5))), p.g), p.b);
  };
  const linear = (x: Tensor, p: { w: Tensor; b: Tensor }, i: number, o: number) => tf.reshape(tf.add(tf.matMul(tf.reshape(x, [-1, i]), p.w), p.b), [batch, T, o]);
  const gelu = (x: Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
  const heads4 = (x: Tensor) => tf.transpose(tf.reshape(x, [batch, T, heads, hd]), [0, 2, 1, 3]);

  const all = tf.tensor2d(tokens, [batch, length], 'int32');
  const lossOf = (ids: Tensor, targets: Tensor) => () => {
    let x: Tensor = tf.add(tf.gather(tok, ids), tf.slice(pos, [0, 0], [T, d]));
    for (const b of blocks) {
      const [q, k, v] = tf.split(linear(layerNorm(x, b.ln1), b.qkv, d, 3 * d), 3, -1);
      const scores = tf.add(tf.div(tf.matMul(heads4(q), heads4(k), false, true), Math.sqrt(hd)), mask);
      const y = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), heads4(v)), [0, 2, 1, 3]), [batch, T, d]);
      x = tf.add(x, linear(y, b.proj, d, d));
      x = tf.add(x, linear(gelu(linear(layerNorm(x, b.ln2), b.up, d, 4 * d)), b.down, 4 * d, d));
    }
    const logits = tf.matMul(tf.reshape(layerNorm(x, lnF), [batch * T, d]), tok, false, true);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [batch * T]), vocab), logits) as ReturnType<typeof tf.scalar>;
  };

  const beta1 = 0.9;
  const beta2 = 0.95;
  const eps = 1e-8;
  let t = 0;
  const lrAt = (step: number) => {
    const [total, warmup, maxLr, minLr] = [5000, 200, 3e-4, 3e-5];
    if (step < warmup) return (maxLr * (step + 1)) / warmup;
    return minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos((Math.PI * Math.min(step - warmup, total - warmup)) / (total - warmup)));
  };
  const step = () =>
    tf.tidy(() => {
      const ids = tf.slice(all, [0, 0], [batch, T]);
      const targets = tf.slice(all, [0, 1], [batch, T]);
      const { grads } = tf.variableGrads(lossOf(ids, targets), vars);
      const lr = lrAt(t);
      t++;
      clippedAdam(tf, vars, moments, grads, { lr, t, beta1, beta2, eps, decay: (i) => (i < decayed.length ? 0.1 : 0) });
    });
  const inner = run(gpu, step, [...vars, ...moments.flatMap((x) => [x.m, x.v]), mask, all]);
  return inner;
}

export interface LstmConfig {
  readonly steps: number;
  readonly features: number;
  readonly hidden: number;
  readonly layers: number;
  readonly classes: number;
  readonly batch: number;
}

/** The parameters of examples/lstm_classifier.dl (each layer's two directions, then the head) and its logits, step by step with tf ops. */
function lstmModel(tf: Tf, c: LstmConfig) {
  const H = c.hidden;
  const B = c.batch;
  const ones = (shape: number[]) => tf.tidy(() => tf.variable(tf.ones(shape)));
  const cell = (features: number) => ({ wx: glorot(tf, features, 4 * H, [features, 4 * H]), wh: glorot(tf, H, 4 * H, [H, 4 * H]), b: zeros(tf, [4 * H]), bf: ones([H]) });
  const layers = Array.from({ length: c.layers }, (_, l) => [cell(l === 0 ? c.features : 2 * H), cell(l === 0 ? c.features : 2 * H)]);
  const head = { w: glorot(tf, 2 * H, c.classes, [2 * H, c.classes]), b: zeros(tf, [c.classes]) };
  const vars = [...layers.flatMap((pair) => pair.flatMap((p) => [p.wx, p.wh, p.b, p.bf])), head.w, head.b];
  /** One direction over the steps in `order`: every h (by step) and the last h. */
  const scan = (p: ReturnType<typeof cell>, xs: Tensor[], order: number[]) => {
    let h: Tensor = tf.zeros([B, H]);
    let cs: Tensor = tf.zeros([B, H]);
    const hs: Tensor[] = new Array(xs.length);
    for (const t of order) {
      const z = tf.add(tf.add(tf.matMul(xs[t], p.wx), tf.matMul(h, p.wh)), p.b);
      const [i, f, g, o] = tf.split(z, 4, 1);
      cs = tf.add(tf.mul(tf.sigmoid(tf.add(f, p.bf)), cs), tf.mul(tf.sigmoid(i), tf.tanh(g)));
      h = tf.mul(tf.sigmoid(o), tf.tanh(cs));
      hs[t] = h;
    }
    return { hs, h };
  };
  const logits = (x: Tensor) => {
    let seq = x;
    let last: Tensor | undefined;
    const forwardOrder = Array.from({ length: c.steps }, (_, t) => t);
    for (const [fwd, bwd] of layers) {
      const xs = tf.unstack(seq, 1);
      const a = scan(fwd, xs, forwardOrder);
      const b = scan(bwd, xs, [...forwardOrder].reverse());
      seq = tf.concat([tf.stack(a.hs, 1), tf.stack(b.hs, 1)], 2);
      last = tf.concat([a.h, b.h], 1);
    }
    return tf.add(tf.matMul(last!, head.w), head.b);
  };
  return { vars, logits };
}

/**
 * Inference of examples/lstm_classifier.dl: stacked bidirectional LSTM layers (gates i, f, g, o; the
 * forget gate's own bias, ones), the last step's states of both directions, a dense head and softmax,
 * written step by step with tf ops; the probabilities and the argmax are read back, as dlc's predict does.
 */
export function tfLstm(gpu: SharedGpu, c: LstmConfig, x: Float32Array): TfRun {
  const { tf } = gpu;
  const { vars, logits } = lstmModel(tf, c);
  const forward = () =>
    tf.tidy(() => {
      const l = logits(tf.tensor3d(x, [c.batch, c.steps, c.features]));
      return [tf.softmax(l), tf.argMax(l, 1)];
    });
  return {
    step: async () => {
      const outs = forward();
      await Promise.all(outs.map((t) => t.data()));
      for (const t of outs) t.dispose();
    },
    profile: async () => {
      const info = await tf.profile(() => {
        const outs = forward();
        for (const t of outs) t.dispose();
      });
      return { kernels: info.kernels.length, peakBytes: info.peakBytes, gpuBytesAllocated: gpu.backend.memory().numBytesAllocatedInGPU };
    },
    dispose: () => {
      for (const v of vars) v.dispose();
    },
  };
}

/**
 * A training step of examples/lstm_classifier.dl as its train block runs it, dropout off: softmax
 * cross-entropy, gradients clipped to global norm 1, Adam (lr 2e-3) under the warmup-cosine schedule,
 * written with tf ops (TF.js's Adam has no clipping); the batch is uploaded every step.
 */
export function tfLstmTrain(gpu: SharedGpu, c: LstmConfig, x: Float32Array, label: Int32Array): TfRun {
  const { tf } = gpu;
  const { vars, logits } = lstmModel(tf, c);
  const moments = vars.map((v) => tf.tidy(() => ({ m: tf.variable(tf.zerosLike(v)), v: tf.variable(tf.zerosLike(v)) })));
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  let t = 0;
  const lrAt = (step: number) => {
    const [total, warmup, maxLr] = [4600, 100, 2e-3];
    if (step < warmup) return maxLr * Math.min(1, (step + 1) / warmup);
    return 0.5 * maxLr * (1 + Math.cos(Math.PI * Math.min(1, (step - warmup) / (total - warmup))));
  };
  const step = () =>
    tf.tidy(() => {
      const xs = tf.tensor3d(x, [c.batch, c.steps, c.features]);
      const y = tf.oneHot(tf.tensor1d(label, 'int32'), c.classes);
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, logits(xs)) as ReturnType<typeof tf.scalar>, vars);
      const lr = lrAt(t);
      t++;
      clippedAdam(tf, vars, moments, grads, { lr, t, beta1, beta2, eps });
    });
  return run(gpu, step, [...vars, ...moments.flatMap((m) => [m.m, m.v])]);
}
