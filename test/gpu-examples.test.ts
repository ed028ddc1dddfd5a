// Every example model on real WebGPU (Dawn on lavapipe): the compiled program agrees with the float64
// interpreter on the same graphs (initial weights, evaluate, predict, one training step including the
// updated parameters and optimizer state), and a few dozen steps on a small learnable dataset train it.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { compileTraining, type CompiledTraining } from '../compiler/frontend/train.ts';
import { predictGraph } from '../compiler/codegen/program.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { initialize } from '../compiler/interpret/init.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { Model } from '../runtime/model.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { evalShape } from '../runtime/sizes.ts';
import { argsOf, EXAMPLE_CASES, type ExampleCase, type Batch, randomBatch } from './helpers.ts';

const SEED = 3;

/** The GPU program and the float64 graphs it was lowered from, for one example at its small sizes. */
function compileCase(c: ExampleCase, edit: (text: string) => string = (t) => t): { program: ModelProgram; training: CompiledTraining } {
  const file = `examples/${c.file}.dl`;
  const text = edit(readFileSync(file, 'utf8'));
  const modelArgs = new Map([[c.model, argsOf(c.model, c.args)]]);
  const compiled = compileSource(text, file, undefined, { modelArgs });
  expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const program = compiled.programs.find((p) => p.model === c.model);
  if (!program) throw new Error(`no program for ${c.model}`);
  const { trainings, diagnostics } = compileTraining(text, file, undefined, { modelArgs });
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const training = trainings.find((t) => t.forward.name === c.model);
  if (!training) throw new Error(`no training graphs for ${c.model}`);
  return { program, training };
}

/** The batch as interpreter feeds (the same f32-rounded values the GPU reads). */
function feedsOf(program: ModelProgram, batch: Batch, sizes: Record<string, number>): Map<string, Tensor> {
  const bound = new Map(Object.entries(sizes));
  return new Map(program.inputs.map((i) => [i.name, tensor(i.dtype === 'f32' ? 'f32' : 'i32', evalShape(i.shape, bound), Array.from(batch[i.name]))]));
}

/**
 * The reference's initial parameters and state. Parameters follow the training forward graph (stream k
 * for parameter k). State buffers are numbered in first-seen order over forward, steps, evaluation,
 * which is how lowerModel numbers them; `initialize` numbers one graph's state, so each state buffer
 * is taken from the graph that first declares it at the position it has in the model-wide order.
 */
function referenceInit(t: CompiledTraining, seed: number): { params: Map<string, Tensor>; state: Map<string, Tensor> } {
  const params = initialize(t.forward, seed).params;
  const order: Graph['state'][number][] = [];
  for (const g of [t.forward, ...t.steps, t.evaluation]) for (const s of g.state) if (!order.some((x) => x.path === s.path)) order.push(s);
  // a graph holding exactly the model-wide state list gives the model-wide stream numbering
  const state = initialize({ ...t.forward, params: [], state: order }, seed).state;
  return { params, state };
}

/** Every parameter and state buffer on the GPU, as float64 arrays by path. */
async function gpuWeights(model: Model): Promise<Map<string, Float64Array>> {
  const decoded = decodeSafetensors(await model.saveWeights());
  return new Map([...decoded.tensors].map(([k, t]) => [k, Float64Array.from(t.data as ArrayLike<number>)]));
}

/** Largest |gpu - ref| / (atol + rtol |ref|) over the elements (atol may be per element): at most 1 means within tolerance. */
function scaledError(gpu: ArrayLike<number>, ref: ArrayLike<number>, atol: number | ArrayLike<number>, rtol: number): { ratio: number; abs: number; at: number } {
  let ratio = 0;
  let abs = 0;
  let at = -1;
  expect(gpu.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(gpu[i] - ref[i]);
    const r = Number.isNaN(d) ? Infinity : d / ((typeof atol === 'number' ? atol : atol[i]) + rtol * Math.abs(ref[i]));
    if (r > ratio) {
      ratio = r;
      at = i;
    }
    if (d > abs || Number.isNaN(d)) abs = d;
  }
  return { ratio, abs, at };
}

// One model (and its own device) at a time: each test's model is disposed after it, and its device
// must then be destroyed, not leaked.
let live: Model | undefined;
afterEach(async () => {
  if (!live) return;
  const device = live['executor'].device;
  live.dispose();
  live = undefined;
  const lost = await Promise.race([device.lost, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
  expect(lost?.reason, 'the model\'s device is destroyed on dispose').toBe('destroyed');
});

/** `sizes` tells the sizes a flat input cannot (the L of tokens: i32[B, L]) and reserves the buffers. */
async function create(program: ModelProgram, seed: number, sizes: Record<string, number>, kernels: 'auto' | 'gpu' | 'cpu' = 'auto'): Promise<Model> {
  const m = await Model.create(program, { seed, sizes, kernels });
  live = m;
  return m;
}

// Tolerances of float32 on the GPU against the float64 reference.
// Scalars (losses, metrics) and outputs: 1e-4 relative, with a 1e-5 absolute floor for values near 0.
const VALUE_TOL = { atol: 1e-5, rtol: 1e-4 };
// Weights after one step: old value (rounded to f32) plus an optimizer update computed in f32.
const STEP_TOL = { atol: 1e-5, rtol: 1e-4 };
// State after one step (running statistics, optimizer moments, counters, the RNG key): 1e-4 relative
// to each element and to the largest element of its buffer, with a 5e-8 floor: the rounding noise of an
// f32 gradient that is exactly zero in float64 (a bias right before BatchNorm: the GAN generator's first
// moment reaches 1.4e-8 with some noise draws, a gradient of 1.4e-7 from sums of terms near 1).
const STATE_TOL = { atol: 5e-8, rtol: 1e-4 };

// Both kernel variants: the GPU kernels, and the CPU variants that `kernels: 'auto'` picks on software
// adapters such as lavapipe (the training runs below use 'auto').
describe.each(['gpu', 'cpu'] as const)('every example on WebGPU agrees with the float64 interpreter (%s kernels)', (kernels) => {
  for (const c of EXAMPLE_CASES) {
    it(`${c.file}: ${c.model}`, async () => {
      const { program, training } = compileCase(c);
      const model = await create(program, SEED, c.sizes, kernels);
      const random = seededRandom(SEED);
      const batch = randomBatch(program, c.sizes, random, c.intRange, () => (random() * 2 - 1) * 0.5);
      const inputs = feedsOf(program, batch, c.sizes);
      const report: string[] = [];
      const check = (what: string, gpu: ArrayLike<number>, ref: ArrayLike<number>, tol: { atol: number | ArrayLike<number>; rtol: number }) => {
        const e = scaledError(gpu, ref, tol.atol, tol.rtol);
        report.push(`${what}: ${e.abs.toExponential(2)} (${e.ratio.toFixed(3)} of tol)`);
        expect(e.ratio, `${c.model} ${what}: element ${e.at} is ${gpu[e.at]} on the GPU, ${ref[e.at]} in the reference`).toBeLessThanOrEqual(1);
        return e;
      };

      // 1. the initial weights: the runtime's initializers and stream numbering match the reference's
      const ref = referenceInit(training, SEED);
      let gpu = await gpuWeights(model);
      expect([...gpu.keys()].sort()).toEqual([...ref.params.keys(), ...ref.state.keys()].sort());
      // the runtime computes the initial values with the reference's own initializers (runtime/init.ts),
      // so each GPU value is exactly the float64 reference rounded to f32
      let worstInit = 0;
      for (const [path, t] of [...ref.params, ...ref.state]) {
        const got = gpu.get(path)!;
        const rounded = Float64Array.from(t.data, (x) => (t.dtype === 'f32' ? Math.fround(x) : x));
        const off = rounded.findIndex((x, k) => x !== got[k]);
        expect(off, `${c.model} initial ${path}[${off}]: ${got[off]} on the GPU, ${rounded[off]} in the reference`).toBe(-1);
        for (let k = 0; k < got.length; k++) worstInit = Math.max(worstInit, Math.abs(got[k] - t.data[k]));
      }
      report.push(`init: ${worstInit.toExponential(2)} (exactly the reference rounded to f32)`);
      const params = new Map(ref.params);
      const state = new Map(ref.state);
      const run = (g: Graph) => {
        const r = interpretGraph(g, { inputs: new Map([...inputs].filter(([k]) => g.inputs.some((i) => i.name === k))), params, state }, { sizes: new Map(Object.entries(c.sizes)) });
        for (const [k, v] of r.state) state.set(k, v);
        return r;
      };

      // 2. evaluate: every loss and metric
      const evaluated = await model.evaluate(batch);
      const refEval = run(training.evaluation);
      for (const [name, t] of [...refEval.losses, ...refEval.metrics]) check(`evaluate ${name}`, [evaluated[name]], t.data, VALUE_TOL);

      // 3. predict: every declared output (the evaluation graph computes the same outputs)
      const predicted = await model.predict(batch);
      // the predict graph as lowered: it advances the RNG key when it draws random numbers, as the GPU's does
      const refPredict = run(predictGraph(training.evaluation));
      for (const [name, t] of refPredict.outputs) check(`predict ${name}`, predicted[name as keyof typeof predicted], t.data, VALUE_TOL);

      // 4. one training step: every step of the train block in order, each seeing the one before
      const handle = model.trainStep(batch);
      const values = await handle.values();
      const stepDecls = program.training?.steps ?? [];
      let stepBound = 0; // the largest move of any parameter element in the reference's steps
      for (const [i, g] of training.steps.entries()) {
        const before = new Map(params);
        const r = run(g);
        for (const p of g.params) {
          if (!p.update) continue;
          const next = r.values.get(p.update.id)!;
          params.set(p.path, next);
          const old = before.get(p.path)!.data;
          for (let k = 0; k < old.length; k++) stepBound = Math.max(stepBound, Math.abs(next.data[k] - old[k]));
        }
        const own = stepDecls[i].loss;
        check(`step ${stepDecls[i].name} ${own}`, [values[own]], r.losses.get(own)!.data, VALUE_TOL);
        // the other reported values come from the first step whose objective has them as terms, else the first step
        const reportedBy = (name: string) => Math.max(0, stepDecls.findIndex((s) => s.terms?.includes(name)));
        for (const [name, t] of [...r.losses, ...r.metrics]) {
          if (!stepDecls.some((s) => s.loss === name) && reportedBy(name) === i) check(`step ${name}`, [values[name]], t.data, VALUE_TOL);
        }
      }
      gpu = await gpuWeights(model);
      let worstParam = 0;
      let worstState = 0;
      let loosened = 0; // elements past the normal tolerance, allowed because their gradient is noise
      let loosenedMoment = 0; // the largest reference first moment among them
      for (const [path, t] of params) {
        // Adam divides the first moment by sqrt(second moment) + eps, so where the gradient is zero in
        // exact arithmetic (a bias right before BatchNorm, which subtracts the batch mean) the reference
        // moves by ~0 while the GPU's f32 rounding noise (~1e-9) gets normalized into a move of up to
        // the step size. The moments themselves are checked below (state, relative to each buffer's
        // scale); only where the reference's first moment is at most 1e-7 (a gradient at the rounding
        // noise of its f32 sums) may the parameter differ by up to the largest step any parameter took.
        const moment = [...state].find(([k]) => k.endsWith(`.${path}.m`))?.[1].data;
        const atol = moment ? Float64Array.from(moment, (m) => (Math.abs(m) <= 1e-7 ? Math.max(STEP_TOL.atol, stepBound * 1.01) : STEP_TOL.atol)) : STEP_TOL.atol;
        check(`updated ${path}`, gpu.get(path)!, t.data, { atol, rtol: STEP_TOL.rtol });
        const got = gpu.get(path)!;
        for (let k = 0; k < t.data.length; k++) {
          const d = Math.abs(got[k] - t.data[k]);
          if (d <= STEP_TOL.atol + STEP_TOL.rtol * Math.abs(t.data[k])) worstParam = Math.max(worstParam, d);
          else {
            loosened++;
            loosenedMoment = Math.max(loosenedMoment, Math.abs(moment![k]));
          }
        }
      }
      for (const [path, t] of state) {
        // second moments (squared gradients, ~1e-9) are compared as their square roots, the scale the
        // optimizer divides by, so that every optimizer buffer is on the gradient's scale
        const squared = /\.(v|vmax|square_avg)$/.test(path);
        const view = (xs: ArrayLike<number>) => (squared ? Float64Array.from(xs, (x) => Math.sqrt(Math.max(0, x))) : xs);
        const ref = view(t.data);
        let scale = 0;
        for (let k = 0; k < ref.length; k++) scale = Math.max(scale, Math.abs(ref[k]));
        const e = check(`updated ${path}`, view(gpu.get(path)!), ref, { atol: STATE_TOL.atol + STATE_TOL.rtol * scale, rtol: STATE_TOL.rtol });
        worstState = Math.max(worstState, e.abs);
      }
      console.log(`${c.model} (${kernels} kernels): ${report.filter((l) => !l.startsWith('updated') && !l.startsWith('init ')).join('; ')}; params after step: ${worstParam.toExponential(2)}${loosened ? ` (and ${loosened} elements with noise-level gradients, |m| <= ${loosenedMoment.toExponential(1)}, within the step size)` : ''}; state after step: ${worstState.toExponential(2)}`);
    });
  }
});


/**
 * Training runs: batch size and steps per example (lavapipe runs the convolutional nets' hundreds of
 * dispatches per step on the CPU, so those get smaller batches and fewer steps).
 */
const TRAINING: Record<string, { batch: number; steps: number }> = {
  Cifar10ResNet: { batch: 2, steps: 20 },
  LeNet: { batch: 4, steps: 20 },
  AutoEncoder: { batch: 4, steps: 30 },
};
const DEFAULT_TRAINING = { batch: 6, steps: 40 };

/**
 * A small fixed dataset with learnable structure: each example has a class y; its float inputs are
 * template y plus a little noise and its label is y; token rows count up by one modulo the vocabulary.
 * REINFORCE gets rollouts where the rewarded action is 1 exactly when the first observation is positive.
 */
function trainingData(c: ExampleCase, program: ModelProgram, B: number, batches: number, random: () => number): Batch[] {
  const bound = new Map(Object.entries({ ...c.sizes, B }));
  const classes = c.intRange?.label ?? 3;
  const rowSize = (name: string) => evalShape(program.inputs.find((i) => i.name === name)!.shape, bound).reduce((a, b) => a * b, 1) / B;
  // the autoencoder's images lie in [0, 1] (a sigmoid reconstructs them); the rest around 0
  const [lo, hi] = c.model === 'AutoEncoder' ? [0.1, 0.9] : [-0.8, 0.8];
  const templates = new Map(
    program.inputs.filter((i) => i.dtype === 'f32').map((i) => [i.name, Array.from({ length: classes }, () => Float32Array.from({ length: rowSize(i.name) }, () => lo + (hi - lo) * random()))]),
  );
  const out: Batch[] = [];
  for (let n = 0; n < batches; n++) {
    const ys = Array.from({ length: B }, () => Math.floor(random() * classes));
    const batch: Batch = {};
    for (const i of program.inputs) {
      const row = rowSize(i.name);
      if (i.name === 'tokens') {
        const vocab = c.intRange!.tokens;
        const starts = Array.from({ length: B }, () => Math.floor(random() * vocab));
        batch.tokens = Int32Array.from({ length: B * row }, (_, k) => (starts[Math.floor(k / row)] + (k % row)) % vocab);
      } else if (i.name === 'label') {
        batch.label = Int32Array.from(ys);
      } else if (i.dtype === 'f32') {
        const t = templates.get(i.name)!;
        batch[i.name] = Float32Array.from({ length: B * row }, (_, k) => t[ys[Math.floor(k / row)]][k % row] + 0.05 * (random() * 2 - 1));
      }
    }
    if (c.model === 'CartPolePolicy') {
      const observation = Float32Array.from({ length: B * 4 }, () => random() * 2 - 1);
      const action = Int32Array.from({ length: B }, () => (random() < 0.5 ? 1 : 0));
      const returns = Float32Array.from({ length: B }, (_, b) => (action[b] === rewarded(observation, b) ? 1 : 0));
      Object.assign(batch, { observation, action, returns });
    }
    out.push(batch);
  }
  return out;
}

/** The action the synthetic CartPole data rewards for row b. */
const rewarded = (observation: ArrayLike<number>, b: number) => (observation[b * 4] > 0 ? 1 : 0);

/**
 * The examples' learning-rate schedules warm up over 100 to 200 steps, longer than these runs, so the
 * training runs drop the `schedule` setting: every step then uses the optimizer's own base rate (the
 * optimizer, loss, clipping, weight decay and parameter groups stay as written).
 */
const withoutSchedule = (text: string) => text.replace(/^\s*schedule = .*$/gm, '');

/**
 * Source edits for the training runs: every example drops its schedule; CharGPT also trains at 10x its
 * base rate (AdamW at 3e-4 moves its loss by only ~1% in 40 steps: correct, as the one-step comparison
 * with the interpreter shows, but too little to tell training from noise).
 */
function trainingSource(c: ExampleCase): (text: string) => string {
  if (c.model === 'CharGPT') return (text) => withoutSchedule(text).replace('adamw(lr: 3e-4,', 'adamw(lr: 3e-3,');
  return withoutSchedule;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('every example trains on WebGPU', () => {
  for (const c of EXAMPLE_CASES) {
    it(`${c.file}: ${c.model}`, async () => {
      const { batch: B, steps } = TRAINING[c.model] ?? DEFAULT_TRAINING;
      const { program } = compileCase(c, trainingSource(c));
      const model = await create(program, SEED, { ...c.sizes, B });
      const data = trainingData(c, program, B, 2, seededRandom(SEED + 1));
      // REINFORCE: the policy's mean probability of the rewarded action on the data, before and after
      const rewardedProb = async () => {
        const probs: number[] = [];
        for (const b of data) {
          const p = (await model.predict(b)).action_probs;
          for (let r = 0; r < B; r++) probs.push(p[r * 2 + rewarded(b.observation, r)]);
        }
        return mean(probs);
      };
      const before = c.model === 'CartPolePolicy' ? await rewardedProb() : 0;
      const initial = await gpuWeights(model);

      const started = performance.now();
      const handles = Array.from({ length: steps }, (_, n) => model.trainStep(data[n % data.length]));
      const records = [];
      for (const h of handles) records.push(await h.values());
      const ms = (performance.now() - started) / steps;

      const losses = program.training!.steps.map((s) => s.loss);
      const lines: string[] = [];
      for (const l of losses) {
        const curve = records.map((r) => r[l]);
        for (const x of curve) expect(Number.isFinite(x), `${c.model} ${l} is ${x}`).toBe(true);
        const first = mean(curve.slice(0, 5));
        const last = mean(curve.slice(-5));
        lines.push(`${l} ${first.toFixed(4)} -> ${last.toFixed(4)}`);
        if (c.model === 'Gan') continue; // adversarial: neither loss need fall; both steps ran and stayed finite
        if (c.model === 'CartPolePolicy') continue; // checked through the policy below
        // clearly lower: the mean of the last 5 steps at least 10% below the mean of the first 5
        expect(last, `${c.model} ${l}: first 5 steps ${first}, last 5 ${last}`).toBeLessThan(first - 0.1 * Math.abs(first));
      }
      // every step ran: each trainable parameter moved (for the GAN, both D's and G's), and the frozen
      // ones (EncoderProbe's `freeze encoder`) did not
      const final = await gpuWeights(model);
      for (const p of program.params) {
        const moved = initial.get(p.path)!.some((x, k) => x !== final.get(p.path)![k]);
        expect(moved, `${c.model} ${p.path} (${p.trainable ? 'trainable' : 'frozen'}) ${moved ? 'moved' : 'did not move'}`).toBe(p.trainable);
      }
      if (c.model === 'CartPolePolicy') {
        // the policy-gradient loss has no floor (log-probs of unrewarded actions head to -inf), so what
        // must hold is that the policy now prefers the rewarded actions
        const after = await rewardedProb();
        lines.push(`p(rewarded action) ${before.toFixed(3)} -> ${after.toFixed(3)}`);
        expect(after, `p(rewarded action) ${before} -> ${after}`).toBeGreaterThan(before + 0.2);
      }
      console.log(`${c.model} (B = ${B}, ${steps} steps, ${ms.toFixed(0)} ms/step): ${lines.join('; ')}`);
    });
  }
});
