// Differential testing: seeded random .dl models (test/dl-gen.ts) compiled fused and unfused, run on WebGPU with both kernel variants, against the float64 interpreter (outputs, losses, metrics, one SGD step's gradients and state), and the interpreter's gradients against finite differences.
import { describe, expect, it } from 'vitest';
import { gradcheck } from '../compiler/autodiff/gradcheck.ts';
import { addGradients } from '../compiler/autodiff/grad.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph, type InterpretResult } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { GraphEditor } from '../compiler/ir/editor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { evaluate } from '../compiler/shapes/dim.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { generateModel, LEARNING_RATE, STEMS, type GeneratedModel } from './dl-gen.ts';
import { getDevice } from './gpu-helpers.ts';

/** Model i of a run is generated from seed SEED + i; a failure names its seed, replayed alone with DLC_SEED=<seed> DLC_DIFF_MODELS=1. */
const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : 1;
/**
 * Nearly all the time goes to lavapipe compiling each model's pipelines (its fused kernels are new WGSL,
 * and Mesa's shader cache starts empty on CI): seeds 1 to 6 took 197 s of CPU cold on a loaded 2-core
 * machine (the first model pays for the shaders every model shares), 1 to 3 s per model warm. Six models
 * (one per stem; seed 6 catches the broadcast-column matmul epilogue bug, seed 1 a `%` without gradient)
 * keep the file near 3 minutes on CI's 2 slow cores; raise DLC_DIFF_MODELS for local soak runs.
 */
const MODELS_DEFAULT = 6;
const MODELS = process.env.DLC_DIFF_MODELS !== undefined ? Number(process.env.DLC_DIFF_MODELS) : MODELS_DEFAULT;
/**
 * Which kernel variants each model runs (fused and unfused): by default one, alternating every six
 * seeds (so each stem gets both within twelve), which halves the pipelines to compile;
 * DLC_DIFF_KERNELS=both runs both on every model.
 */
const BOTH_KERNELS = process.env.DLC_DIFF_KERNELS === 'both';
function kernelVariants(seed: number): readonly ('gpu' | 'cpu')[] {
  return BOTH_KERNELS ? ['gpu', 'cpu'] : [Math.floor(seed / STEMS.length) % 2 === 0 ? 'gpu' : 'cpu'];
}
/** How many generated models the cheap check-only test runs through `dlc check`. */
const CHECKED_MODELS = 300;

// Tolerances, float32 on WebGPU against the float64 interpreter. A generated model chains 5 to 10
// ops (exp, pow, softmax, normalizations, matmuls, recurrences) on values of unknown scale, so the f32
// rounding error of an element grows with the scale of the whole tensor, not only its own size (a
// difference of two large numbers): the absolute part is relative to the tensor's largest |element|.
// Values (outputs, losses, metrics, BatchNorm running statistics): 2e-4 of the tensor's scale (at
// least 1) plus 2e-3 of the element.
const VALUE_TOL = { atol: 2e-4, rtol: 2e-3 };
// Gradients (read back from one SGD step as (before - after) / lr, exact for lr = 1024): f32 backward
// passes accumulate more rounding (sums over the batch, reductions of products), so 2.5 times looser.
const GRADIENT_TOL = { atol: 5e-4, rtol: 5e-3 };
// Finite differences: gradcheck's relative error of one directional derivative in float64; a kink
// (relu, abs, max, %, floor) inside the default step 1e-6 is retried at step 1e-8 before it counts,
// and a jump at the point itself (the quotients at the two steps disagree) is not judged.
const GRADCHECK_TOL = 1e-4;

/**
 * Every element within atol * max(1, max|ref|) + rtol * |ref| of the reference (NaN only where the
 * reference is NaN); otherwise a line naming the worst element.
 */
function mismatch(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number }): string | undefined {
  if (got.length !== want.length) return `${what}: ${got.length} elements, the reference has ${want.length}`;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const nan = Number.isNaN(got[i]) || Number.isNaN(want[i]);
    const ratio = nan ? (Number.isNaN(got[i]) && Number.isNaN(want[i]) ? 0 : Infinity) : Math.abs(got[i] - want[i]) / (tol.atol * Math.max(1, scale) + tol.rtol * Math.abs(want[i]));
    if (ratio > worst) {
      worst = ratio;
      at = i;
    }
  }
  return worst > 1 ? `${what}: element ${at} is ${got[at]}, the reference ${want[at]} (largest |reference| ${scale.toExponential(2)}, ${worst.toFixed(1)} times the tolerance)` : undefined;
}

/** The model's float64 graphs: evaluation (outputs, losses, metrics) and training (losses, state updates, and the analytic gradient of the loss as `\0grad:<path>` outputs). */
function referenceGraphs(source: string, file: string): { evaluation: Graph; training: Graph; withGradients: Graph } {
  const training = checkSource(source, file).graphs.get('M');
  const evaluation = checkSource(source, file, undefined, { training: false }).graphs.get('M');
  if (!training || !evaluation) throw new Error('the generated model M has no graph');
  const editor = new GraphEditor(training);
  const lossValue = [...training.losses.values()][0];
  const gradients = addGradients(editor, lossValue, training.params.map((p) => p.value));
  for (const p of training.params) {
    const g = gradients.get(p.value.id);
    if (g) editor.outputs.set(`\0grad:${p.path}`, g);
  }
  return { evaluation, training, withGradients: editor.finish() };
}

/** Random inputs in [-1, 1) (rounded to f32, as the GPU reads them), integers below their range, as interpreter feeds and as host arrays. */
function randomInputs(graph: Graph, model: GeneratedModel, sizes: ReadonlyMap<string, number>): { feeds: Map<string, Tensor>; host: Record<string, Float32Array | Int32Array> } {
  const random = seededRandom(model.seed + 101);
  const feeds = new Map<string, Tensor>();
  const host: Record<string, Float32Array | Int32Array> = {};
  for (const i of graph.inputs) {
    const shape = i.value.type.shape.map((d) => evaluate(d, sizes));
    const count = shape.reduce((a, b) => a * b, 1);
    const float = i.value.type.dtype === 'f32';
    const values = Array.from({ length: count }, () => (float ? Math.fround(random() * 2 - 1) : Math.floor(random() * (model.intRange[i.name] ?? 2))));
    feeds.set(i.name, tensor(i.value.type.dtype, shape, values));
    host[i.name] = float ? Float32Array.from(values) : Int32Array.from(values);
  }
  return { feeds, host };
}

/** Every disagreement of one generated model (empty when it passes). */
async function differences(model: GeneratedModel): Promise<string[]> {
  const file = `generated-${model.seed}.dl`;
  const problems: string[] = [];
  const checked = checkSource(model.source, file);
  const errors = checked.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) return errors.map((d) => `dlc check rejects the generated model (a generator bug): ${d.code} ${d.message}`);
  const compiled = { fused: compileSource(model.source, file), unfused: compileSource(model.source, file, undefined, { fuse: false }) };
  for (const [how, result] of Object.entries(compiled)) {
    const compileErrors = result.diagnostics.filter((d) => d.severity === 'error');
    if (compileErrors.length || result.programs.length !== 1) return [`the ${how} compile fails: ${compileErrors.map((d) => `${d.code} ${d.message}`).join('; ')}`];
  }
  const { evaluation, training, withGradients } = referenceGraphs(model.source, file);
  const sizes = new Map([['B', model.batch]]);
  const { feeds, host } = randomInputs(evaluation, model, sizes);
  const device = await getDevice();

  let weights: Uint8Array | undefined;
  let evalRef: InterpretResult | undefined;
  let trainRef: InterpretResult | undefined;
  const params = new Map<string, Tensor>();
  const state = new Map<string, Tensor>();
  const stateOf = (g: Graph) => new Map(g.state.map((s) => [s.path, state.get(s.path) ?? tensor(s.value.type.dtype, s.value.type.shape.map((d) => evaluate(d, sizes)), 0)]));
  for (const [how, result] of Object.entries(compiled)) {
    for (const kernels of kernelVariants(model.seed)) {
      const label = `${how}/${kernels}`;
      const gpu = await Model.create(result.programs[0], { device, seed: 3, kernels, batchSize: model.batch });
      try {
        if (!weights) {
          // the reference runs on the first variant's initial weights; the others load the same bytes
          weights = await gpu.saveWeights();
          const isParam = new Set(training.params.map((p) => p.path));
          for (const [path, t] of decodeSafetensors(weights).tensors) {
            (isParam.has(path) ? params : state).set(path, tensor(training.params.find((p) => p.path === path)?.value.type.dtype ?? 'f32', [...t.shape], Array.from(t.data as ArrayLike<number>)));
          }
          evalRef = interpretGraph(evaluation, { inputs: feeds, params, state: stateOf(evaluation) }, { sizes });
          trainRef = interpretGraph(withGradients, { inputs: feeds, params, state: stateOf(training) }, { sizes });
        } else await gpu.loadWeights(weights);
        const report = (line: string | undefined) => line !== undefined && problems.push(line);

        const predicted = await gpu.predict(host);
        for (const [name, t] of evalRef!.outputs) report(mismatch(`${label} predict ${name}`, predicted[name] as ArrayLike<number>, t.data, VALUE_TOL));
        const evaluated = await gpu.evaluate(host);
        for (const [name, t] of [...evalRef!.losses, ...evalRef!.metrics]) report(mismatch(`${label} evaluate ${name}`, [evaluated[name]], t.data, VALUE_TOL));

        const before = new Map<string, Float32Array>();
        for (const p of training.params) before.set(p.path, Float32Array.from((await gpu.getParameter(p.path)) as Float32Array));
        const values = await gpu.trainStep(host).values();
        for (const [name, t] of trainRef!.losses) report(mismatch(`${label} trainStep ${name}`, [values[name]], t.data, VALUE_TOL));
        for (const p of training.params) {
          const after = await gpu.getParameter(p.path);
          const gradient = Array.from(after, (v, k) => (before.get(p.path)![k] - v) / LEARNING_RATE);
          const want = trainRef!.outputs.get(`\0grad:${p.path}`)?.data ?? new Float64Array(gradient.length);
          report(mismatch(`${label} gradient of ${p.path}`, gradient, want, GRADIENT_TOL));
        }
        for (const [path, t] of trainRef!.state) report(mismatch(`${label} state ${path} after the step`, (await gpu.getState(path)) as ArrayLike<number>, t.data, VALUE_TOL));
      } finally {
        gpu.dispose();
      }
    }
  }

  // the interpreter's analytic gradients against central finite differences, one random direction per parameter
  const lossName = [...training.losses.keys()][0];
  const fdFeeds = { inputs: feeds, params, state: stateOf(training) };
  for (const row of gradcheck(training, fdFeeds, { loss: lossName, sizes, seed: 1 })) {
    if (row.relError <= GRADCHECK_TOL) continue;
    const fine = gradcheck(training, fdFeeds, { loss: lossName, sizes, seed: 1, step: 1e-8, wrt: [row.name] })[0];
    // a jump at the point itself (argmax or a comparison on an exact tie: repeated token ids give equal
    // features) makes the difference quotient grow as 1/step, so the two steps disagree: not judged
    const smooth = Math.abs(fine.numeric - row.numeric) <= 1e-2 * Math.max(Math.abs(fine.numeric), Math.abs(row.numeric));
    if (fine.relError > GRADCHECK_TOL && smooth) problems.push(`gradcheck of ${row.name}: analytic ${row.analytic}, finite differences ${row.numeric} (relative error ${row.relError.toExponential(2)}, ${fine.relError.toExponential(2)} at step 1e-8)`);
  }
  return problems;
}

describe('differential testing of generated models', () => {
  it(`the generator's models pass dlc check and cover every op family (seeds ${SEED} to ${SEED + CHECKED_MODELS - 1})`, () => {
    const stems = new Set<string>();
    for (let seed = SEED; seed < SEED + CHECKED_MODELS; seed++) {
      const model = generateModel(seed);
      expect(generateModel(seed).source, 'the generator is deterministic').toBe(model.source);
      const errors = checkSource(model.source, `generated-${seed}.dl`).diagnostics.filter((d) => d.severity === 'error');
      expect(errors.map((d) => `${d.code} ${d.message}`), `seed ${seed}:\n${model.source}`).toEqual([]);
      stems.add(model.stem);
    }
    expect([...stems].sort()).toEqual([...STEMS].sort());
  });

  for (let i = 0; i < MODELS; i++) {
    const model = generateModel(SEED + i);
    it(`seed ${model.seed} (${model.stem}): fused and unfused, ${kernelVariants(model.seed).join(' and ')} kernels, agree with the float64 interpreter`, { timeout: 300_000 }, async () => {
      // an exception (a shader that does not compile, a runtime error) is a disagreement too, reported with the model
      const problems = await differences(model).catch((e: unknown) => [`threw ${(e as Error).stack ?? String(e)}`]);
      const replay = `DLC_SEED=${model.seed} DLC_DIFF_MODELS=1 DLC_DIFF_KERNELS=both npx vitest run test/differential.test.ts`;
      expect(problems, `seed ${model.seed} disagrees (replay: ${replay}):\n${model.source}`).toEqual([]);
    });
  }
});
