// The dlc side of the benchmarks: compile a .dl model with hyperparameters, run it on the shared device.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileSource } from '../compiler/frontend/compile.ts';
import { parse } from '../grammar/parse.ts';
import type { Arg } from '../grammar/ast.ts';
import { Model } from '../runtime/model.ts';
import type { Profile } from '../runtime/profile.ts';
import type { HostArray } from '../runtime/executor.ts';
import type { GraphProgram, ModelProgram } from '../runtime/program.ts';
import { evalShape } from '../runtime/sizes.ts';
import { root } from './paths.ts';

/** `MnistMlp`, `hidden: 16` -> the arguments of `train MnistMlp(hidden: 16) {}`. */
function argsOf(model: string, args: string): Arg[] {
  const decl = parse(`train ${model}(${args}) {}`, 'args.dl').program.body.stmts[0];
  return decl.kind === 'Train' ? [...(decl.args ?? [])] : [];
}

/** Compile `file` (relative to the project root) and return the program of `model`, with `args` overriding its hyperparameters. */
export function compileModel(file: string, model: string, args = ''): ModelProgram {
  const text = readFileSync(join(root, file), 'utf8');
  const result = compileSource(text, file, undefined, { modelArgs: new Map([[model, argsOf(model, args)]]) });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`${file}: ${errors.map((d) => d.message).join('; ')}`);
  const program = result.programs.find((p) => p.model === model);
  if (!program) throw new Error(`${file} has no model ${model}`);
  return program;
}

/** Dispatches a graph encodes at every run: its kernels less the once kernels (a causal mask), which run only when the sizes change. */
export function dispatchesOf(g: GraphProgram): number {
  return g.kernels.filter((k) => !k.once).length;
}

/** Dispatches one training step encodes: those of every step graph (a GAN has two). */
export function dispatchesPerStep(program: ModelProgram): number {
  return program.graphs.steps.reduce((n, g) => n + dispatchesOf(g), 0);
}

export interface DlcMemory {
  /** Parameters + state + the step graphs' inputs and temporaries at the benchmark's sizes. */
  readonly peakBytes: number;
  /** The same without the memory plan (one buffer per temporary), when the planner reports it. */
  readonly unplannedBytes?: number;
  /** How it was computed: 'memory-planner' (runtime/memory.ts memoryReport) or 'sum-of-buffers'. */
  readonly method: string;
}

interface MemoryModule {
  memoryReport(program: ModelProgram, sizes: ReadonlyMap<string, number>): {
    params: number;
    state: number;
    graphs: readonly { name: string; inputs: number; temps: number; unplannedTemps: number }[];
  };
}

/**
 * Peak GPU memory of a training step (or of predict, for graphs without steps). Uses the memory
 * planner's report when the runtime has one (runtime/memory.ts, or compiler/codegen/memory.ts), else
 * sums every buffer the graphs declare (reshapes alias, so each buffer is counted once).
 */
export async function dlcMemory(program: ModelProgram, sizes: ReadonlyMap<string, number>, graph: DlcRun['graph'] = program.graphs.steps.length > 0 ? 'steps' : 'predict'): Promise<DlcMemory> {
  const graphs: readonly GraphProgram[] = graph === 'steps' ? program.graphs.steps : [program.graphs.predict];
  const names = new Set(graphs.map((g) => g.name));
  for (const spec of ['../runtime/memory.ts', '../compiler/codegen/memory.ts']) {
    let mod: Partial<MemoryModule> | undefined;
    try {
      mod = (await import(/* @vite-ignore */ spec)) as Partial<MemoryModule>;
    } catch {
      continue;
    }
    if (typeof mod.memoryReport !== 'function') continue;
    try {
      const r = mod.memoryReport(program, sizes);
      const mine = r.graphs.filter((g) => names.has(g.name));
      if (mine.length !== graphs.length) continue;
      const fixed = r.params + r.state;
      return {
        peakBytes: fixed + mine.reduce((a, g) => a + g.inputs + g.temps, 0),
        unplannedBytes: fixed + mine.reduce((a, g) => a + g.inputs + g.unplannedTemps, 0),
        method: 'memory-planner',
      };
    } catch {
      continue;
    }
  }
  const bytes = (shape: readonly number[]) => 4 * shape.reduce((a, b) => a * b, 1);
  let total = program.params.reduce((a, p) => a + bytes(p.shape), 0) + program.state.reduce((a, s) => a + bytes(s.shape), 0);
  for (const g of graphs) for (const b of g.buffers) if (b.kind === 'input' || b.kind === 'temp') total += bytes(evalShape(b.shape, sizes));
  return { peakBytes: total, method: 'sum-of-buffers' };
}

export interface DlcRun {
  readonly model: Model;
  readonly program: ModelProgram;
  /** What a step runs: the training step graphs, or predict. */
  readonly graph: 'steps' | 'predict';
  /** One step, resolved once the GPU has finished it. */
  step(): Promise<void>;
  /** Each kernel of the step (or predict) timed alone on the same batch; trains nothing. */
  profile(reps: number): Promise<Profile>;
}

/** A training step of `program` on a fixed batch: trainStep submits, then wait for the queue to drain. */
export async function dlcTrainer(program: ModelProgram, device: GPUDevice, cpu: boolean, batch: Record<string, HostArray>, sizes: Record<string, number>): Promise<DlcRun> {
  const model = await Model.create(program, { device, kernels: cpu ? 'cpu' : 'gpu', seed: 1, batchSize: sizes.B, sizes });
  return {
    model,
    program,
    graph: 'steps',
    step: async () => {
      model.trainStep(batch);
      await device.queue.onSubmittedWorkDone();
    },
    profile: (reps) => model.profile(batch, { reps }),
  };
}

/** predict (the matmul model, the LSTM's inference): submits and reads its small outputs back. */
export async function dlcPredictor(program: ModelProgram, device: GPUDevice, cpu: boolean, inputs: Record<string, HostArray>): Promise<DlcRun> {
  const model = await Model.create(program, { device, kernels: cpu ? 'cpu' : 'gpu', seed: 1 });
  return {
    model,
    program,
    graph: 'predict',
    step: async () => {
      await model.predict(inputs);
    },
    profile: (reps) => model.profile(inputs, { graph: 'predict', reps }),
  };
}
