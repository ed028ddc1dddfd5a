// A compiled model on a WebGPU device: train steps, evaluation, prediction, fitting, and weights in and out as safetensors.
import { acquireDevice, lostError, type DeviceOptions, type DeviceWatch } from './device.ts';
import { DisposedError, DlcRuntimeError, GPUValidationError, InputError, OutOfMemoryError, WeightsError } from './errors.ts';
import { Executor, toStorageArray, type HostArray, type ScalarRecord, type StepHandle, type TypedArray } from './executor.ts';
import { programGraphs, reportingStep, type GraphProgram, type ModelProgram } from './program.ts';
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from './safetensors.ts';
import type { Dataset } from './data.ts';
import { addTotals, fit, type FitOptions, type History } from './fit.ts';
import { adaptStatistics, type AdaptOptions, type AdaptReport } from './adapt.ts';
import { formatBytes, memoryReport, modelBytes, type MemoryReport } from './memory.ts';
import { summarizeProfile, type KernelTime, type Profile } from './profile.ts';
import type { UploadOptions } from './upload.ts';
import { checkIndexInputs } from './index-check.ts';
import { dataflowInputs, outputSubset, reportedResults } from './subset.ts';
import { brokenCondition, sizeText } from './sizes.ts';
import { nestedArray, type MetricValue } from './metric-tables.ts';

export interface CreateOptions extends DeviceOptions {
  /** Seed of the initial weights and of dropout (default: the train block's `seed`, else 0). */
  readonly seed?: number;
  /**
   * Allocate the buffers of predict and evaluate up front for batches up to this size (the size `B`), and
   * those of the train steps at the first training call; larger batches grow them.
   */
  readonly batchSize?: number;
  /**
   * Other symbolic sizes to allocate for up front (e.g. `{ T: 64 }`); also the sizes the inputs cannot
   * tell: the L of `tokens: i32[B, L]` (a flat array gives only B * L), or B for a predict that reads no input.
   */
  readonly sizes?: Readonly<Record<string, number>>;
  /** Kernel variants: 'auto' (default) picks the CPU variants on software adapters such as lavapipe. */
  readonly kernels?: 'auto' | 'gpu' | 'cpu';
  /** Use the reductions' subgroup variants when the device has the `subgroups` feature (default true). */
  readonly subgroups?: boolean;
  /**
   * The kernels' GPU variants for other grid shapes: the wide matmul tiers (codegen/matmul-wide.ts) and
   * conv2d's one-workgroup-per-output reduction ('reduce', for weight gradients). 'auto' (default): where
   * they fill the device better at the bound sizes; 'off': never; a variant's name: wherever a kernel
   * has it (for tests and benchmarks). CPU kernels have none.
   */
  readonly wideKernels?: 'auto' | 'off' | (string & {});
  /**
   * Let temporaries that are never live at once share GPU buffers, as the compiler's memory plan says
   * (default true; false gives every temporary a buffer of its own, as programs without a plan have).
   */
  readonly memoryPlan?: boolean;
  /**
   * The most GPU memory, in bytes, the model may take at the declared sizes (parameters, state and every
   * graph's buffers); `Model.create` fails with an OutOfMemoryError before allocating anything when the
   * plan needs more. WebGPU does not tell a device's memory, so without this only the per-buffer limits
   * (maxBufferSize, maxStorageBufferBindingSize) are checked.
   */
  readonly memoryBudget?: number;
  /**
   * Inputs of `minBytes` or more (default 1 MiB: a batch of images) are written into a pool of up to
   * `maxBuffers` (default 6) staging buffers kept mapped from step to step and copied on the GPU, not
   * through `queue.writeBuffer`, which makes a new staging buffer for every write over 4 MiB
   * (runtime/upload.ts). `false`: every input through `queue.writeBuffer`.
   */
  readonly uploads?: Partial<UploadOptions> | false;
  /**
   * Refuse a training batch (`trainStep`, `fit`) whose f32 inputs hold NaN or ±Infinity, with an
   * InputError before anything runs: one such batch would otherwise make the weights NaN for good (an
   * online-trained model fed from user traffic). It costs a scan of every value on the host. Default false.
   */
  readonly checkFinite?: boolean;
}

export interface SaveOptions {
  /**
   * Include optimizer state, step counters and the RNG key (default true): everything to resume training.
   * Without them the file still holds the model's own state (batch norm's running statistics).
   */
  readonly trainingState?: boolean;
  /** Extra string metadata stored in the file's header. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface LoadOptions {
  /**
   * Accept a file that lacks some of the model's parameters or has extra tensors (transfer learning).
   * The training run's state in the file (optimizer moments and step counters `opt.*`, `rng.key`, the
   * step) is taken only from this model's own checkpoint (its `dlc.model`) or a file that sets all of
   * this model's run state: another model's checkpoint leaves it behind (listed in `ignored`), so the
   * new heads' zero moments do not meet the old run's Adam `t`.
   * Default false.
   */
  readonly partial?: boolean;
  /**
   * Load the model's parameters and its own state (batch norm's running statistics) only: not the
   * optimizer's moments and step counter (`opt.*`), the random key (`rng.key`) or the step, which a
   * training run's checkpoint also holds. Transfer learning (`init_from`) starts a new run. Default false.
   */
  readonly weightsOnly?: boolean;
  /**
   * Skip tensors whose dtype or shape differs from the model's (a new head under an old name), reporting
   * them in `mismatched`, instead of refusing the file; what they would have set keeps its value. Default false.
   */
  readonly skipMismatched?: boolean;
  /**
   * Where each of this model's tensors comes from in the file, as copyParametersFrom's `map`: the file's
   * name for the model's `path` (`(path) => 'module.' + path` for a file saved from PyTorch's
   * DataParallel), undefined to leave it out; or an object `{ 'fc.w': 'fc.weight' }` of the model's
   * paths to the file's names (paths it does not list keep their own name). Default: the same names.
   */
  readonly map?: Readonly<Record<string, string>> | ((path: string) => string | undefined);
  /**
   * Model paths whose 2-d tensor the file holds transposed, read as its transpose: PyTorch's
   * `Linear.weight` is [out, in] where dlc's Dense `w` is [in, out]. Each must name a tensor of the model.
   */
  readonly transpose?: readonly string[];
}

/** PyTorch's batch-norm step counter (`bn.num_batches_tracked`): no dlc model has it, so loading skips it, strict or not. */
export function isTorchCounter(name: string): boolean {
  return /(^|\.)num_batches_tracked$/.test(name);
}

/** Whether a 2-d tensor of shape `file` is the transpose of the model's `model` (PyTorch's Linear weight is [out, in]). */
export function isTransposeOf(file: readonly number[], model: readonly number[]): boolean {
  return file.length === 2 && model.length === 2 && file[0] !== file[1] && file[0] === model[1] && file[1] === model[0];
}

/** What a transposed 2-d tensor is likely to be, for a message. */
export const TRANSPOSED_HINT = "it is the transpose of the model's: transposed? (PyTorch's Linear stores [out, in], dlc's Dense [in, out])";

/** `data`, a row-major [rows, cols] matrix, transposed to [cols, rows] (same array type). */
function transposed<T extends ArrayLike<number> | ArrayLike<boolean>>(data: T, rows: number, cols: number): T {
  const out = new (data.constructor as new (n: number) => { [i: number]: unknown })(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out as unknown as T;
}

/** State that belongs to a training run rather than to the model: the optimizer's (`opt.<step>.*`) and the random key. */
export function isRunState(path: string): boolean {
  return path.startsWith('opt.') || path === 'rng.key';
}

export interface LoadReport {
  readonly loaded: readonly string[];
  readonly missing: readonly string[];
  readonly ignored: readonly string[];
  /** Tensors skipped for another dtype or shape (`skipMismatched`): the file's and the model's, e.g. `f32[10]`. */
  readonly mismatched: readonly { readonly path: string; readonly file: string; readonly model: string; readonly transposed?: boolean }[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** One batch by input name: each a flat array, or for a scalar input (`f32[]`) a plain number. */
export type Batch<I extends string> = { readonly [K in I]: HostArray | number };

/** Sizes given with one call (`{ L: 12 }`): those the inputs' lengths cannot tell apart, as `predict` takes them. */
export interface SizesOption {
  readonly sizes?: Readonly<Record<string, number>>;
}

/** `predict`'s options: the sizes, and which outputs to compute (all by default). */
export interface PredictOptions<O extends string = string> extends SizesOption {
  /** Only these outputs: the kernels they need run, and only the inputs they depend on are needed. */
  readonly outputs?: readonly O[];
}

export interface TrainStepOptions extends SizesOption {
  /** Run only this step of the train block (a GAN's `discriminator`), not every step in order. */
  readonly step?: string;
  /**
   * Also read back each step's sums over the batch (`ModelProgram.graphs.stepTotals`), for
   * `StepTotals`: fit adds them up over an epoch and finishes them with `finishStepTotals`.
   */
  readonly totals?: boolean;
}

/** By step name, the sums over one batch (`#total<k>`) a step with totals output. */
export type StepTotals = Readonly<Record<string, Readonly<Record<string, ArrayLike<number>>>>>;

export interface CopyParametersOptions {
  /**
   * The source parameter (or state buffer) for each of this model's parameters and own state buffers
   * (default: the same path); `undefined` leaves that one as it is.
   */
  readonly map?: (path: string) => string | undefined;
  /**
   * Polyak averaging: each parameter, and each f32 state buffer, becomes `tau * source + (1 - tau) *
   * itself` (default 1: a copy). State of other dtypes (counters) is copied.
   */
  readonly tau?: number;
  /**
   * Also copy (or average) the model's own state, batch norm's running statistics, as timm's ModelEmaV2
   * does (default true): a copy that normalises with the source's statistics. Never the run's state
   * (the optimizer's `opt.*`, the random key `rng.key`). `false` sets the parameters only.
   */
  readonly state?: boolean;
}

export interface CopyReport {
  /** This model's parameters, then its own state buffers, that were set, by path. */
  readonly copied: readonly string[];
  /** Those `map` left out. */
  readonly skipped: readonly string[];
}

/** A seed for the initial weights and random ops: a whole number in [0, 2^32); anything else is an InputError. */
function checkSeed(seed: unknown, where: string): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new InputError(`${where} was given the seed ${typeof seed === 'number' ? String(seed) : typeof seed}; a seed is a whole number from 0 to 2^32 - 1 (4294967295)`);
  }
  return seed;
}

/** A batch size: a whole number of at least 1; anything else is an InputError. */
function checkBatchSize(batch: unknown, where: string): number {
  if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1) {
    throw new InputError(`${where} was given ${typeof batch === 'number' ? String(batch) : typeof batch}; a batch size is a whole number of at least 1`);
  }
  return batch;
}

export interface ProfileOptions {
  /** Which graphs: every training step (default), or the evaluate or predict graph. */
  readonly graph?: 'train' | 'evaluate' | 'predict';
  /** Timed repetitions per kernel; the median counts (default 5). */
  readonly reps?: number;
}

/**
 * A model ready to run. Type parameters name the inputs, outputs and the reported values (losses and
 * metrics); the generated module fixes them from the .dl file so a wrong name is a type error.
 */
export class Model<I extends string = string, O extends string = string, R extends string = string> {
  private disposed = false;
  /** Why the device was lost when the model was disposed (a disposed model reports its disposal, not a loss after it). */
  private lostAtDispose: string | undefined;
  /** The train block's `max_batch`: a batch (the size B) above it is an InputError. */
  readonly maxBatch: number | undefined;
  /** Where each creation-time size came from, for messages (`create({ sizes })`, `create({ batchSize })`). */
  private sizeOrigins: ReadonlyMap<string, string> = new Map();
  /** Training steps run so far (every step of the train block counts once per batch). */
  step = 0;
  /** The sizes given at creation (and the batch size), for sizes the inputs do not determine. */
  private sizeHints: ReadonlyMap<string, number> = new Map();
  /** `create({ checkFinite })`: training batches with NaN or ±Infinity in an f32 input are refused. */
  private checkFinite = false;
  /** Whether the model was created with `{ checkFinite: true }`: training inputs holding NaN or ±Infinity are refused. */
  get checksFinite(): boolean {
    return this.checkFinite;
  }
  /**
   * The GPU memory the model takes at the sizes declared at creation, once it trains (undefined when some
   * size was not declared): the optimizer's state and the train steps' buffers are allocated at the first
   * training call, so a model that only predicts holds less.
   */
  memory: MemoryReport | undefined;

  readonly program: ModelProgram;
  private readonly executor: Executor;
  private readonly ownsDevice: boolean;
  /** The adapter the model runs on, in words. */
  readonly adapterInfo: string;
  /**
   * The device's one watch (runtime/device.ts), shared with every model on it: the model reads it and
   * adds nothing to the device, so a caller's device neither keeps disposed models alive nor
   * accumulates a reaction per model created on it.
   */
  private readonly watch: DeviceWatch;

  private constructor(program: ModelProgram, executor: Executor, ownsDevice: boolean, adapterInfo: string, watch: DeviceWatch) {
    this.program = program;
    this.executor = executor;
    this.ownsDevice = ownsDevice;
    this.adapterInfo = adapterInfo;
    this.watch = watch;
    const setting = program.training?.settings.max_batch;
    this.maxBatch = typeof setting === 'number' && Number.isInteger(setting) && setting > 0 ? setting : undefined;
  }

  /** Why the model's device was lost, if it was (before the model was disposed). */
  private get lostReason(): string | undefined {
    return this.disposed ? this.lostAtDispose : this.watch.reason;
  }

  static async create<I extends string = string, O extends string = string, R extends string = string>(program: ModelProgram, options: CreateOptions = {}): Promise<Model<I, O, R>> {
    if (program.format !== 'dlc-program' || program.version !== 1) throw new InputError('this is not a dlc program of format version 1: recompile the model with this version of dlc');
    // each graph asks only for the inputs its results depend on (a step needs no acting-only input)
    const { predict, evaluate, steps } = program.graphs;
    program = { ...program, graphs: { ...program.graphs, predict: dataflowInputs(predict), evaluate: dataflowInputs(evaluate, reportedResults(program, evaluate)), steps: steps.map((g) => dataflowInputs(g, reportedResults(program, g))) } };
    if (options.seed !== undefined) checkSeed(options.seed, 'create()');
    if (options.batchSize !== undefined) checkBatchSize(options.batchSize, 'create({ batchSize })');
    const settingSeed = program.training?.settings.seed;
    const seed = options.seed ?? (typeof settingSeed === 'number' ? checkSeed(settingSeed, "the train block's seed") : 0);
    const acquired = await acquireDevice(options);
    const cpuKernels = options.kernels === 'cpu' || ((options.kernels ?? 'auto') === 'auto' && acquired.cpu);
    const planned = options.memoryPlan ?? true;
    let memory: MemoryReport | undefined;
    let sizes: Map<string, number>;
    const origins = new Map<string, string>();
    try {
      sizes = sizeOptions(program, options.sizes, 'create');
      for (const name of sizes.keys()) origins.set(name, 'create({ sizes })');
      const settingBatch = program.training?.settings.batch;
      const settingMax = program.training?.settings.max_batch;
      const maxBatch = typeof settingMax === 'number' && settingMax > 0 ? settingMax : undefined;
      let batch = options.batchSize;
      if (batch !== undefined) origins.set('B', 'create({ batchSize })');
      else if (typeof settingBatch === 'number') {
        batch = maxBatch !== undefined ? Math.min(settingBatch, maxBatch) : settingBatch;
        origins.set('B', "the train block's batch");
      }
      if (options.batchSize !== undefined && !program.sizes.includes('B')) {
        throw new InputError(`create({ batchSize }) sets the batch size B, and ${program.model} has no size B (its sizes: ${program.sizes.join(', ') || 'none'}); name its batch axis B, or give the sizes with create({ sizes })`);
      }
      if (batch !== undefined && program.sizes.includes('B')) sizes.set('B', batch);
      const b = sizes.get('B');
      if (maxBatch !== undefined && b !== undefined && b > maxBatch) {
        throw new InputError(`${origins.get('B')} asks for batches of ${b}, over the train block's max_batch = ${maxBatch} (the largest batch ${program.model} allocates buffers for)`);
      }
      // sizes that break a condition of the model would size buffers it never runs at (negative lengths)
      const broken = brokenCondition(programGraphs(program), sizes);
      if (broken) throw new InputError(`the sizes given when creating the model break its condition ${broken}`);
      memory = Model.checkMemory(program, sizes, acquired.device.limits, planned, options.memoryBudget);
    } catch (e) {
      if (acquired.owned) acquired.device.destroy();
      throw e;
    }
    const executor = await Executor.create(acquired.device, program, seed, { cpuKernels, planMemory: planned, subgroups: options.subgroups ?? true, wide: options.wideKernels ?? 'auto', uploads: options.uploads });
    // a destroyed or lost device takes every call WebGPU makes without complaint: say so now, not at the first step
    if (acquired.watch.reason !== undefined) {
      executor.destroy();
      throw lostError(acquired.watch.reason, true);
    }
    const model = new Model<I, O, R>(program, executor, acquired.owned, acquired.adapterInfo, acquired.watch);
    model.memory = memory;
    model.sizeHints = new Map(sizes);
    model.sizeOrigins = origins;
    model.checkFinite = options.checkFinite === true;
    // the inference graphs' buffers now; the train steps' (and the optimizer's state) on the first training call
    if (program.sizes.every((s) => sizes.has(s))) {
      const { predict, evaluate, totals } = program.graphs;
      for (const g of [predict, evaluate, ...(totals ? [totals] : [])]) executor.reserve(g, sizes);
    }
    return model;
  }

  /**
   * The memory the program needs at the declared sizes, checked against the device's per-buffer limits
   * and the caller's budget before anything is allocated. Sizes not declared (a batch given only with
   * the first step) are checked when the buffers are allocated instead; the parameters and state are
   * always checked.
   */
  private static checkMemory(program: ModelProgram, sizes: ReadonlyMap<string, number>, limits: GPUSupportedLimits, planned: boolean, budget: number | undefined): MemoryReport | undefined {
    const known = program.sizes.every((s) => sizes.has(s));
    let report: MemoryReport | undefined;
    if (known) {
      try {
        report = memoryReport(program, sizes);
      } catch {
        report = undefined; // sizes that give no tensor: the first step reports them as an input error
      }
    }
    const at = [...sizes].map(([k, v]) => `${k} = ${v}`).join(', ');
    const maxBuffer = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
    const need = report ? (planned ? report.total : report.unplannedTotal) : modelBytes(program);
    const limitsText = `maxBufferSize ${formatBytes(limits.maxBufferSize)}, maxStorageBufferBindingSize ${formatBytes(limits.maxStorageBufferBindingSize)}${budget !== undefined ? `, memory budget ${formatBytes(budget)}` : ''}`;
    if (report && report.largestBuffer > maxBuffer) {
      throw new OutOfMemoryError(
        `the model ${program.model} needs ${formatBytes(need)} in all${at ? ` at ${at}` : ''}, and its largest buffer (${report.largestWhat}) takes ${formatBytes(report.largestBuffer)}, over this device's limits (${limitsText}); use a smaller batch or smaller layers`,
      );
    }
    if (budget !== undefined && need > budget) {
      const breakdown = report ? ` (parameters ${formatBytes(report.params)}, state ${formatBytes(report.state)}, buffers of the graphs ${formatBytes(need - report.params - report.state)}${planned ? '' : `; ${formatBytes(report.total)} with the memory plan`})` : '';
      throw new OutOfMemoryError(`the model ${program.model} needs ${formatBytes(need)}${at ? ` at ${at}` : ''}${breakdown}, over the memory budget (${limitsText}); use a smaller batch or smaller layers`);
    }
    return report;
  }

  /**
   * An error WebGPU reported for the model's own work (from the error scopes around it; what other code
   * on a shared device gets wrong is not counted): every later call, and a read already waiting, fails with it.
   */
  private throwIfWebGpuReported(): void {
    const r = this.executor.reported;
    if (!r) return;
    if (r.kind === 'out-of-memory') throw new OutOfMemoryError(`the GPU ran out of memory during ${r.what} of ${this.program.model}: ${r.message}`);
    throw new GPUValidationError(`internal error: WebGPU reported: ${r.message}`);
  }

  private check(): void {
    if (this.disposed) throw new DisposedError(`the model ${this.program.model} was disposed`);
    if (this.lostReason !== undefined) throw lostError(this.lostReason);
    this.throwIfWebGpuReported();
  }

  /** Names of the values `trainStep` and `evaluate` report. */
  get reported(): readonly R[] {
    return [...this.program.losses, ...this.program.metrics] as R[];
  }

  /**
   * One training step on a batch (every step of the train block, in order, e.g. a GAN's
   * discriminator then generator), submitted as one command buffer. Returns at once; the losses
   * and metrics are read only when `values()` is called.
   */
  trainStep(rows: Batch<I>, options: TrainStepOptions = {}): StepHandle & { readonly step: number; readonly totals?: () => Promise<StepTotals> } {
    const batch = this.scalarInputs(rows);
    this.check();
    const all = this.trainSteps('trainStep()');
    let steps = all;
    if (options.step !== undefined) {
      const one = all.find((g) => g.name === options.step);
      if (!one) throw new InputError(`trainStep() was given the step \`${String(options.step)}\`, but the train block of ${this.program.model} has ${all.length === 1 ? 'one step' : 'the steps'} ${all.map((g) => `\`${g.name}\``).join(', ')}`);
      steps = [one];
    }
    const given = sizeOptions(this.program, options.sizes, 'trainStep');
    const finishing = this.program.graphs.stepTotals ?? {};
    // every step's inputs and sizes checked before any step allocates or encodes anything
    const runs = steps.map((g) => ({ g, inputs: this.inputsOf(g, batch), sizes: this.requireExamples(this.bindSizes(g, batch, given, 'trainStep')) }));
    if (this.checkFinite) for (const { inputs } of runs) this.requireFinite(inputs);
    const records = this.executor.submit((encoder) =>
      runs.map(({ g, inputs, sizes }) => {
        this.executor.encode(encoder, g, inputs, sizes);
        const finish = options.totals ? finishing[g.name] : undefined;
        const read = finish ? this.executor.encodeRead(encoder, g, Object.keys(finish.inputs), sizes) : undefined;
        return { g, record: this.executor.recordScalars(encoder, g, this.executor.scalarNames(g)), read };
      }),
    );
    const stepNumber = ++this.step;
    let cached: Promise<Record<string, number>> | undefined;
    return {
      step: stepNumber,
      values: () =>
        (cached ??= (async () => {
          const out: Record<string, number> = {};
          // every step reports everything it computes; each value comes from one step's forward pass
          // (reportingStep: a step's own loss and its objective's terms from that step, anything else
          // from the first step, before any update on this batch)
          for (const r of records) {
            const [vals] = await this.guard(this.executor.readScalars([r.record]));
            for (const [k, v] of Object.entries(vals)) if (!(k in out) || reportingStep(this.program.training, k) === r.g.name) out[k] = v;
          }
          return out;
        })()),
      ...(records.some((r) => r.read)
        ? {
            totals: async () => {
              const out: Record<string, Record<string, ArrayLike<number>>> = {};
              for (const r of records) {
                if (!r.read) continue;
                const read = await this.guard(r.read());
                out[r.g.name] = Object.fromEntries(Object.entries(read).map(([k, v]) => [k, v.data]));
              }
              return out;
            },
          }
        : {}),
    };
  }

  /** A plain number for a scalar input (`epsilon: f32[]`) is its one value: `{ epsilon: 0.5 }` as `{ epsilon: [0.5] }`. */
  private scalarInputs(batch: unknown): Readonly<Record<string, HostArray>> {
    if (typeof batch !== 'object' || batch === null) return batch as Readonly<Record<string, HostArray>>;
    const record = batch as Record<string, unknown>;
    const scalar = this.program.inputs.filter((i) => i.shape.length === 0 && (typeof record[i.name] === 'number' || typeof record[i.name] === 'boolean'));
    if (scalar.length === 0) return batch as Readonly<Record<string, HostArray>>;
    return { ...record, ...Object.fromEntries(scalar.map((i) => [i.name, [record[i.name]]])) } as Readonly<Record<string, HostArray>>;
  }

  /**
   * The losses and metrics of training step `step` that are functions of sums over the batch, from
   * those sums added up over many batches (an epoch's `StepTotals`), as `evaluateSet` finishes a set's.
   */
  async finishStepTotals(step: string, sums: Readonly<Record<string, ArrayLike<number>>>): Promise<Record<string, MetricValue>> {
    this.check();
    const finish = this.program.graphs.stepTotals?.[step];
    if (!finish) throw new InputError(`the training step \`${step}\` has no totals to finish`);
    return this.finishTotals(finish, sums);
  }

  /** A finishing graph run on totals: its outputs by name, numbers and tables (`program.tables`, as nested arrays). */
  private async finishTotals(finish: GraphProgram, sums: Readonly<Record<string, ArrayLike<number>>>): Promise<Record<string, MetricValue>> {
    const totals = Object.fromEntries(Object.keys(finish.inputs).map((name) => [name, Float32Array.from(sums[name])]));
    const tables = this.program.tables ?? {};
    const names = [...this.executor.scalarNames(finish), ...Object.keys(finish.outputs).filter((name) => name in tables)];
    const finished = await this.guard(
      this.executor.submit((encoder) => {
        this.executor.encode(encoder, finish, totals, new Map());
        return this.executor.encodeRead(encoder, finish, names, new Map());
      })(),
    );
    return Object.fromEntries(Object.entries(finished).map(([name, { data }]) => [name, name in tables ? nestedArray(data, tables[name]) : Number(data[0])]));
  }

  private inputsOf(g: GraphProgram, batch: Readonly<Record<string, HostArray>>): Record<string, HostArray> {
    if (typeof batch !== 'object' || batch === null) throw new InputError(`a batch is an object of inputs by name ({ ${this.program.inputs.map((i) => `${i.name}: ...`).join(', ')} }), not ${batch === null ? 'null' : typeof batch}`);
    const out: Record<string, HostArray> = {};
    for (const name of Object.keys(g.inputs)) {
      if (!(name in batch)) {
        const want = this.program.inputs.find((i) => i.name === name);
        throw new InputError(`the batch has no input \`${name}\`${want ? ` (${want.dtype}[${want.shape.map(sizeText).join(', ')}])` : ''}; it has ${Object.keys(batch).map((k) => `\`${k}\``).join(', ') || 'none'}`);
      }
      out[name] = hostArray(name, this.program.inputs.find((i) => i.name === name), batch[name]);
    }
    for (const name of Object.keys(batch)) {
      const decl = this.program.inputs.find((i) => i.name === name);
      if (!decl) {
        throw new InputError(`the model ${this.program.model} has no input \`${name}\`; its inputs are ${this.program.inputs.map((i) => `\`${i.name}\``).join(', ')}`);
      }
      // an input this graph does not read still tells sizes (and is checked as a label): the same checks
      if (!(name in out)) hostArray(name, decl, batch[name]);
    }
    return out;
  }

  /**
   * The sizes of a graph's run: from its inputs, then the other inputs given, then the creation-time
   * sizes, with the values of inputs used as indices checked. Callers check the batch's input names
   * first (`inputsOf`).
   */
  private bindSizes(g: GraphProgram, batch: Readonly<Record<string, HostArray>>, given: ReadonlyMap<string, number> = new Map(), where = 'predict'): Map<string, number> {
    const origins = new Map(this.sizeOrigins);
    for (const name of given.keys()) origins.set(name, `${where}(..., { sizes })`);
    const sizes = this.executor.bindSizes(g, batch, given, { extra: this.program.inputs, hints: this.sizeHints, origins });
    const b = sizes.get('B');
    if (this.maxBatch !== undefined && b !== undefined && b > this.maxBatch) {
      throw new InputError(`the batch has B = ${b}${given.has('B') ? ` (from ${where}(..., { sizes }))` : ''}, over the train block's max_batch = ${this.maxBatch}, the largest batch ${this.program.model} allocates buffers for; split it into batches of at most ${this.maxBatch}`);
    }
    // labels and tokens out of range: an input error rather than a clamped index on the GPU
    checkIndexInputs(this.program.inputs, batch, sizes);
    // integer inputs given as floats (a plain array, a Float32Array): whole numbers only, not cut down silently
    for (const decl of this.program.inputs) {
      const data = batch[decl.name];
      if (decl.dtype === 'f32' || data === undefined || data instanceof Int32Array || data instanceof Uint32Array || data instanceof Uint8Array) continue;
      const at = Array.prototype.findIndex.call(data, (v: number) => !Number.isInteger(v));
      if (at >= 0) throw new InputError(`input \`${decl.name}\` is ${decl.dtype}, but holds ${data[at]} at [${at}]: give whole numbers (an Int32Array)`);
    }
    this.checkBufferSizes(g, sizes, where);
    return sizes;
  }

  /**
   * Refuse a run whose buffers would not fit the device before any of them is freed or made (as
   * `create()` checks the declared sizes with `checkMemory`): the model stays as it was, sized for
   * the batches before, and the message names the call and its sizes.
   */
  private checkBufferSizes(g: GraphProgram, sizes: ReadonlyMap<string, number>, where: string): void {
    const over = this.executor.oversized(g, sizes);
    if (!over) return;
    const at = [...sizes].map(([k, v]) => `${k} = ${v}`).join(', ');
    const hasBatch = sizes.has('B');
    const advice = !hasBatch
      ? 'use smaller sizes'
      : this.maxBatch !== undefined
        ? `use a smaller batch (split it into several calls), or lower the train block's max_batch (${this.maxBatch}) so such batches are refused as input errors`
        : 'use a smaller batch (split it into several calls), or set max_batch in the train block so batches this large are refused as input errors up front';
    throw new OutOfMemoryError(
      `${where}() with ${at || 'these sizes'} needs ${formatBytes(over.bytes)} for ${over.what} of the ${g.name} graph, over this device's ${over.limitName} of ${formatBytes(over.limit)}; nothing was allocated or run: ${advice}`,
    );
  }

  /** `create({ checkFinite: true })`: an f32 input holding NaN or ±Infinity is an InputError, before anything is trained. */
  private requireFinite(inputs: Readonly<Record<string, HostArray>>): void {
    for (const decl of this.program.inputs) {
      const data = inputs[decl.name];
      if (decl.dtype !== 'f32' || data === undefined) continue;
      for (let i = 0; i < data.length; i++) {
        // as the f32 it uploads as: 1e39 is Infinity there
        if (!Number.isFinite(Math.fround(data[i]))) {
          const beyond = Number.isFinite(data[i]) ? ' (beyond the f32 range)' : '';
          throw new InputError(`trainStep(): input \`${decl.name}\` holds ${data[i]}${beyond} at [${i}], and the model was created with { checkFinite: true }: nothing was trained`);
        }
      }
    }
  }

  /** A batch that trains or evaluates has examples: losses over none are NaN (predict may take an empty batch). */
  private requireExamples(sizes: ReadonlyMap<string, number>): ReadonlyMap<string, number> {
    for (const [name, n] of sizes) if (n === 0) throw new InputError(`the batch is empty: its inputs make ${name} = 0, so there is no loss or metric to compute`);
    return sizes;
  }

  /**
   * A result read from the GPU, with its failures as typed errors. Work still in flight when dispose()
   * freed the model's buffers may fail, or may read what the freed buffers hold: either way it is a
   * `disposed` error, never a value.
   */
  private async guard<T>(p: Promise<T>): Promise<T> {
    const disposed = () => new DisposedError(`the model ${this.program.model} was disposed before this result was read`);
    let value: T;
    try {
      value = await p;
    } catch (e) {
      if (this.lostReason !== undefined) throw lostError(this.lostReason);
      if (e instanceof DlcRuntimeError) throw e;
      if (this.disposed) throw disposed();
      await this.executor.settled();
      this.throwIfWebGpuReported();
      throw new GPUValidationError(`internal error: ${(e as Error).message}`);
    }
    if (this.disposed) throw disposed();
    // WebGPU reports a failed submit through its error scope, not through the read: the value read may be stale
    await this.executor.settled();
    this.throwIfWebGpuReported();
    return value;
  }

  /** Losses and metrics on one batch, in evaluation mode (no dropout, running statistics). */
  async evaluate(batch: Batch<I>, options: SizesOption = {}): Promise<Record<R, number>> {
    const [r] = await this.evaluateBatches([batch], options);
    return r as Record<R, number>;
  }

  /** Evaluate many batches with one readback at the end; one record per batch. */
  async evaluateBatches(batches: Iterable<Readonly<Record<string, HostArray | number>>>, options: SizesOption = {}): Promise<Record<string, number>[]> {
    this.check();
    const given = sizeOptions(this.program, options.sizes, 'evaluate');
    const records = this.submitEvaluations([...batches].map((b) => this.scalarInputs(b)), [], given, 'evaluate').map((p) => p.record);
    return this.guard(this.executor.readScalars(records));
  }

  /**
   * One batch through the evaluate graph in its own submit: its losses and metrics recorded, the
   * outputs named in `reads` (the totals of evaluateSet) read back with them, and its length B.
   */
  private submitEvaluate(batch: Readonly<Record<string, HostArray>>, reads: readonly string[], given: ReadonlyMap<string, number>, where: string, index: number): { record: ScalarRecord; read?: () => Promise<Record<string, { data: TypedArray }>>; length: number } {
    batch = this.scalarInputs(batch);
    const g = this.program.graphs.evaluate;
    const inputs = this.inputsOf(g, batch);
    const sizes = this.requireExamples(this.bindSizes(g, batch, given, where));
    return this.executor.submit((encoder) => {
      this.executor.encodeRandomKeyFold(encoder, index);
      this.executor.encode(encoder, g, inputs, sizes);
      const record = this.executor.recordScalars(encoder, g, this.executor.scalarNames(g));
      return { record, length: sizes.get('B') ?? 1, ...(reads.length > 0 ? { read: this.executor.encodeRead(encoder, g, reads, sizes) } : {}) };
    });
  }

  /**
   * The batches of one evaluation, each in its own submit and with its own random noise: batch 0 draws
   * from the model's key as `evaluate` does, batch i from a hash of that key and i. The model's key is
   * put back after the last (also when a batch is refused), so evaluating neither moves the key training
   * draws from nor depends on anything but the model, its key and the batches.
   */
  private submitEvaluations(batches: readonly Readonly<Record<string, HostArray>>[], reads: readonly string[], given: ReadonlyMap<string, number>, where: string): ReturnType<Model<I, O, R>['submitEvaluate']>[] {
    const folds = batches.length > 1 && this.executor.hasRandomKey;
    const out: ReturnType<Model<I, O, R>['submitEvaluate']>[] = [];
    try {
      for (const batch of batches) out.push(this.submitEvaluate(batch, reads, given, where, folds ? out.length : 0));
    } finally {
      // batch 0 saved the key whether or not a later batch was submitted
      if (folds && out.length > 0) this.executor.restoreRandomKey();
    }
    return out;
  }

  /**
   * Losses and metrics over many batches taken as one data set: those that are functions of sums over
   * the batch (precision, recall, F1, means; `program.graphs.totals`) from the sums over every batch,
   * added in float64, the others averaged over the batches, weighted by their lengths (the size B). Unlike averaging `evaluateBatches`, the result does not depend on how the
   * set is cut into batches. A table metric (a confusion matrix, `program.tables`) is a sum over the
   * examples: here it is the set's, as nested arrays; `evaluate`, `evaluateBatches` and `trainStep` report numbers only.
   */
  async evaluateSet(batches: Iterable<Batch<I>>, options: SizesOption = {}): Promise<Record<string, MetricValue>> {
    this.check();
    const finish = this.program.graphs.totals;
    const names = this.executor.scalarNames(this.program.graphs.evaluate);
    const totalNames = finish ? Object.keys(finish.inputs) : [];
    const given = sizeOptions(this.program, options.sizes, 'evaluateSet');
    const list = [...batches];
    // a set of no batches has no loss or metric: an error, as an empty batch is, not a record of none
    if (list.length === 0) throw new InputError('evaluateSet() was given no batches, so there is no loss or metric to compute');
    const pending = this.submitEvaluations(list as readonly Readonly<Record<string, HostArray>>[], totalNames, given, 'evaluateSet');
    const records = await this.guard(this.executor.readScalars(pending.map((p) => p.record)));
    const weight = pending.reduce((a, p) => a + p.length, 0);
    const out: Record<string, MetricValue> = {};
    if (records.length === 0 || weight === 0) return out;
    for (const name of names) out[name] = records.reduce((a, r, i) => a + r[name] * pending[i].length, 0) / weight;
    if (!finish) return out;
    // the totals of every batch, added in float64, then the quantities they give
    const sums = new Map<string, Float64Array>();
    for (const p of pending) {
      const read = await this.guard(p.read!());
      addTotals(sums, Object.fromEntries(totalNames.map((name) => [name, read[name].data])));
    }
    Object.assign(out, await this.finishTotals(finish, Object.fromEntries(sums)));
    return out;
  }

  /** The predict graphs of output lists asked for so far (`predict(inputs, { outputs })`), by the sorted list. */
  private readonly predictSubsets = new Map<string, GraphProgram>();

  /** The part of the predict graph that computes `outputs` (runtime/subset.ts), made once per list. */
  private predictSubset(outputs: readonly string[]): GraphProgram {
    const g = this.program.graphs.predict;
    const known = Object.keys(g.outputs);
    const list = known.map((k) => `\`${k}\``).join(', ');
    if (!Array.isArray(outputs) || outputs.length === 0 || outputs.some((o) => typeof o !== 'string')) {
      throw new InputError(`predict()'s \`outputs\` is a non-empty array of output names; the outputs of ${this.program.model} are ${list}`);
    }
    for (const name of outputs) {
      if (!known.includes(name)) throw new InputError(`predict() was asked for the output \`${name}\`, but ${this.program.model} has no output of that name; its outputs are ${list}`);
    }
    const wanted = known.filter((k) => outputs.includes(k));
    const key = wanted.join(',');
    let subset = this.predictSubsets.get(key);
    if (!subset) {
      subset = outputSubset(g, wanted);
      this.predictSubsets.set(key, subset);
    }
    return subset;
  }

  /**
   * The declared outputs for a batch of inputs, in evaluation mode. `sizes` fixes symbolic sizes the
   * inputs' lengths cannot tell apart: `{ B: 1 }` for one row of `tokens: i32[B, L]` of any length.
   * `outputs` names some of the outputs: only the kernels they need run, and only the inputs those
   * outputs depend on are needed (a decoder's output from its latent alone, one tower of two).
   */
  async predict<K extends O = O>(rows: Partial<Batch<I>>, options: PredictOptions<K> = {}): Promise<Record<K, TypedArray>> {
    const inputs = this.scalarInputs(rows);
    this.check();
    const g = options.outputs === undefined ? this.program.graphs.predict : this.predictSubset(options.outputs);
    const given = this.inputsOf(g, inputs as Record<string, HostArray>);
    const sizes = this.bindSizes(g, inputs as Record<string, HostArray>, sizeOptions(this.program, options.sizes, 'predict'), 'predict');
    // the outputs' copies ride in the same submit as the graph
    const pending = this.executor.submit((encoder) => {
      this.executor.encode(encoder, g, given, sizes);
      return this.executor.encodeRead(encoder, g, Object.keys(g.outputs), sizes);
    });
    const read = await this.guard(pending());
    return Object.fromEntries(Object.entries(read).map(([k, v]) => [k, v.data])) as Record<O, TypedArray>;
  }

  /**
   * Time each kernel of the training step (or the evaluate or predict graph) on `batch`, one kernel
   * at a time: where the step's GPU time goes, by kernel, op and .dl line (see runtime/profile.ts,
   * `formatProfile` for a table). Profiling trains nothing: parameters, optimizer state and the step
   * count are left as they were.
   */
  async profile(given: Partial<Batch<I>>, options: ProfileOptions = {}): Promise<Profile> {
    const batch = this.scalarInputs(given);
    this.check();
    const reps = options.reps ?? 5;
    if (!Number.isInteger(reps) || reps < 1) throw new InputError(`profile reps must be a positive integer, not ${reps}`);
    const which = options.graph ?? 'train';
    const graphs = which === 'train' ? this.trainSteps("profile() (pass { graph: 'predict' } or { graph: 'evaluate' } to time those)") : [this.program.graphs[which]];
    const kernels: KernelTime[] = [];
    let roundTrip = 0;
    let resolution = 0;
    const sizes: Record<string, number> = {};
    for (const g of graphs) {
      const inputs = this.inputsOf(g, batch as Record<string, HostArray>);
      const bound = this.bindSizes(g, batch as Record<string, HostArray>, new Map(), 'profile');
      Object.assign(sizes, Object.fromEntries(bound));
      const r = await this.guard(this.executor.profile(g, inputs, bound, reps));
      roundTrip = Math.max(roundTrip, r.roundTripMs);
      resolution = Math.max(resolution, r.resolutionMs);
      g.kernels.forEach((k, index) => kernels.push({ graph: g.name, index, op: k.op, ...(k.source ? { source: k.source } : {}), ms: r.kernelMs[index] }));
    }
    return summarizeProfile({ adapter: this.adapterInfo, sizes, reps, kernels, roundTripMs: roundTrip, resolutionMs: resolution });
  }

  /**
   * Compile the train steps' shaders now. `create()` compiles only what `predict` and `evaluate` run, so
   * a page that only predicts never builds the training pipelines; the first `trainStep` builds them
   * (synchronously) if nothing did before. `fit()` calls this first; call it to move that cost elsewhere.
   */
  async prepareTraining(): Promise<void> {
    this.check();
    await this.guard(this.executor.prepareGraphs(this.trainSteps('prepareTraining()')));
  }

  /** The train block's steps: a model without one cannot train, an InputError (a mistake of the caller's, not dlc's). */
  private trainSteps(call: string): readonly GraphProgram[] {
    const steps = this.program.graphs.steps;
    if (steps.length === 0) throw new InputError(`${call}: the model ${this.program.model} has no train block, so it cannot be trained; add a train block to its .dl file to train it`);
    return steps;
  }

  /** Train on a dataset for some epochs with validation, early stopping and callbacks (see fit.ts); one fit at a time. */
  fit(data: { readonly train: Dataset; readonly validation?: Dataset }, options: FitOptions = {}): Promise<History> {
    return fit(this as unknown as Model, data, options);
  }

  /**
   * Set each layer the train block adapts (`adapt = [norm]`, std.nn's Normalization; `options.layers`
   * picks some) to the per-feature mean and variance of its input's column over `data`, as Keras'
   * `Normalization.adapt()`: float64 statistics, the population variance. `fit()` does it on its
   * training data before the model's first step; call it yourself when you feed batches with
   * `trainStep`. Every layer's statistics are computed (and checked) before any state is written.
   */
  async adapt(data: Dataset, options: AdaptOptions = {}): Promise<AdaptReport[]> {
    this.check();
    const shapeOf = (path: string) => this.program.state.find((s) => s.path === path)?.shape ?? [0];
    const reports = adaptStatistics(this.program.model, this.program.training?.adapt ?? [], shapeOf, data, options);
    const targets = this.program.training?.adapt ?? [];
    for (const r of reports) {
      const t = targets.find((x) => x.layer === r.layer)!;
      this.executor.writeModelBuffer(t.mean, r.mean);
      this.executor.writeModelBuffer(t.variance, r.variance);
    }
    await this.guard(Promise.resolve());
    return reports;
  }

  /**
   * The weights as a safetensors file. By default with the full training state (optimizer moments,
   * step counters, RNG key, running statistics) so training resumes exactly where it stopped.
   */
  async saveWeights(options: SaveOptions = {}): Promise<Uint8Array> {
    this.check();
    const buffers = await this.guard(this.executor.readModelBuffers());
    const tensors = new Map<string, StoredTensor>();
    const withState = options.trainingState ?? true;
    for (const [path, b] of buffers) {
      // the model's own state (batch norm's running statistics) is part of its weights: only the run's is left
      if (b.kind === 'state' && !withState && isRunState(path)) continue;
      tensors.set(path, { dtype: b.dtype, shape: b.shape, data: b.data });
    }
    return encodeSafetensors(tensors, { ...options.metadata, 'dlc.model': this.program.model, 'dlc.format': withState ? 'training-state' : 'weights', 'dlc.step': String(this.step) });
  }

  /**
   * Load weights saved by `saveWeights` (or any safetensors file with the model's parameter paths).
   * Every tensor is checked against the model before anything is written: a wrong shape or dtype
   * names the parameter; missing or unknown tensors are an error unless `partial` is set.
   */
  async loadWeights(bytes: Uint8Array, options: LoadOptions = {}): Promise<LoadReport> {
    this.check();
    let decoded;
    try {
      // other writers' dtypes (PyTorch's F16 weights, I64 counters) read as the runtime's where they fit
      decoded = decodeSafetensors(bytes, { convert: true });
    } catch (e) {
      throw new WeightsError(`cannot read the weights: ${(e as Error).message}`);
    }
    const state = options.weightsOnly ? this.program.state.filter((d) => !isRunState(d.path)) : this.program.state;
    const decls = new Map<string, { dtype: string; shape: readonly number[] }>([...this.program.params, ...state].map((d) => [d.path, d]));
    // the file's name for each model path (options.map), read backwards: the model path each file tensor sets
    const { map } = options;
    const toModel = new Map<string, string>();
    for (const path of decls.keys()) {
      const from = map === undefined ? path : typeof map === 'function' ? map(path) : Object.hasOwn(map, path) ? map[path] : path;
      if (from === undefined) continue;
      if (typeof from !== 'string') throw new WeightsError(`map gave ${JSON.stringify(from)} for \`${path}\`: it gives the file's name for a model path (a string), or undefined to leave it out`);
      const twice = toModel.get(from);
      if (twice !== undefined) throw new WeightsError(`map gives the file's \`${from}\` to both \`${twice}\` and \`${path}\`; each file tensor sets one model tensor`);
      toModel.set(from, path);
    }
    if (map !== undefined && typeof map !== 'function') {
      const unknown = Object.keys(map).filter((k) => !decls.has(k));
      if (unknown.length > 0) throw new WeightsError(`map names ${unknown.slice(0, 5).map((k) => `\`${k}\``).join(', ')}, which ${unknown.length === 1 ? 'is not a tensor' : 'are not tensors'} of the model ${this.program.model} (its keys are the model's paths, its values the file's names)`);
    }
    const transpose = new Set(options.transpose ?? []);
    for (const path of transpose) {
      const d = decls.get(path);
      if (d === undefined) throw new WeightsError(`transpose names \`${path}\`, which is not a tensor of the model ${this.program.model} (give the model's paths, after map)`);
      if (d.shape.length !== 2) throw new WeightsError(`transpose names \`${path}\`, which the model declares as ${d.dtype}[${d.shape.join(', ')}]: only a 2-d tensor transposes`);
    }
    const loaded: string[] = [];
    const ignored: string[] = [];
    const mismatched: { path: string; file: string; model: string; transposed?: boolean }[] = [];
    const writes: [string, TypedArray][] = [];
    // a tensor no runtime dtype holds: refused only where the model would load it
    for (const t of decoded.skipped ?? []) {
      const path = toModel.get(t.name);
      const d = path === undefined ? undefined : decls.get(path);
      if (options.weightsOnly && !d && isRunState(t.name)) continue;
      if (path === undefined || !d) ignored.push(t.name);
      else if (options.skipMismatched) mismatched.push({ path, file: `${t.dtype}[${t.shape.join(', ')}]`, model: `${d.dtype}[${d.shape.join(', ')}]` });
      else throw new WeightsError(`the weights file has \`${t.name}\` as ${t.dtype}[${t.shape.join(', ')}], which cannot be loaded: ${t.why} (pass { skipMismatched: true } to load the rest)`);
    }
    for (const [name, stored] of decoded.tensors) {
      const path = toModel.get(name);
      const d = path === undefined ? undefined : decls.get(path);
      if (options.weightsOnly && !d && isRunState(name)) continue;
      if (path === undefined || !d) {
        ignored.push(name);
        continue;
      }
      let t = stored;
      if (transpose.has(path) && t.shape.length === 2) t = { ...t, shape: [t.shape[1], t.shape[0]], data: transposed(t.data, t.shape[0], t.shape[1]) };
      if (t.dtype !== d.dtype || t.shape.length !== d.shape.length || t.shape.some((x, i) => x !== d.shape[i])) {
        const file = `${t.dtype}[${t.shape.join(', ')}]`;
        const model = `${d.dtype}[${d.shape.join(', ')}]`;
        const flipped = !transpose.has(path) && isTransposeOf(t.shape, d.shape);
        if (options.skipMismatched) {
          mismatched.push({ path, file, model, ...(flipped ? { transposed: true } : {}) });
          continue;
        }
        const shown = name === path ? `\`${name}\`` : `\`${name}\` (for \`${path}\`)`;
        throw new WeightsError(`the weights file has ${shown} as ${file}${transpose.has(path) ? ' once transposed' : ''}, but the model declares ${model}${flipped ? `; ${TRANSPOSED_HINT}: pass { transpose: ['${path}'] } to read it transposed, or { skipMismatched: true } to load the rest` : ' (pass { skipMismatched: true } to load the rest)'}`);
      }
      writes.push([path, toStorageArray(t.dtype, t.data instanceof Uint8Array ? Array.from(t.data) : t.data)]);
      loaded.push(path);
    }
    // what the model computes with: its parameters and its own state (a batch norm's running statistics)
    const required = [...this.program.params, ...this.program.state.filter((d) => !isRunState(d.path))];
    const missing = required.map((p) => p.path).filter((p) => !loaded.includes(p));
    const lacking = missing.filter((p) => !mismatched.some((m) => m.path === p));
    if (!options.partial && (lacking.length > 0 || ignored.some((n) => !isTorchCounter(n)))) {
      const parts = [];
      const shown = (names: readonly string[]) => `${names.slice(0, 5).map((m) => `\`${m}\``).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
      // the weights first: another training run's optimizer state is the least of the differences
      // PyTorch's num_batches_tracked is skipped (it stays in `ignored`): no dlc model counts batches there
      const unknown = [...ignored.filter((n) => !isRunState(n) && !isTorchCounter(n)), ...ignored.filter((n) => isRunState(n))];
      if (lacking.length > 0) parts.push(`it lacks ${shown(lacking)}`);
      if (unknown.length > 0) parts.push(`the model has no ${shown(unknown)}`);
      const onlyRunState = lacking.length === 0 && unknown.every((n) => isRunState(n));
      const how = onlyRunState ? 'pass { weightsOnly: true } to load the weights without the training run\'s state' : 'pass { partial: true } to load what matches';
      throw new WeightsError(`the weights do not match the model ${this.program.model}: ${parts.join('; ')} (${how})`);
    }
    // a partial load takes the run's state (optimizer moments and step counters, the key, the step) from
    // this model's own checkpoint (a resumed run whose freeze changed), or from a file that sets all of it:
    // another model's checkpoint (transfer learning) would otherwise bring its Adam t and step while this
    // model's new heads keep zero moments, halving the first updates
    const runState = this.program.state.filter((d) => isRunState(d.path)).map((d) => d.path);
    const own = decoded.metadata['dlc.model'] === this.program.model;
    const takesRun = !options.weightsOnly && (!options.partial || own || runState.every((p) => loaded.includes(p)));
    if (!takesRun) {
      const left = new Set(loaded.filter((p) => isRunState(p)));
      for (const [name, path] of toModel) if (left.has(path) && decoded.tensors.has(name)) ignored.push(name);
      for (let i = writes.length - 1; i >= 0; i--) if (left.has(writes[i][0])) writes.splice(i, 1);
      for (let i = loaded.length - 1; i >= 0; i--) if (left.has(loaded[i])) loaded.splice(i, 1);
    }
    this.executor.writeModelBuffers(writes, 'loading the weights');
    const step = Number(decoded.metadata['dlc.step']);
    if (takesRun && decoded.metadata['dlc.format'] === 'training-state' && Number.isSafeInteger(step)) this.step = step;
    // settle the writes' error scopes now: a weight-sync worker that only ever loads must not pile them up
    // until some other call waits on the GPU (and what WebGPU refused is this call's error)
    await this.guard(Promise.resolve());
    return { loaded, missing, ignored, mismatched, metadata: decoded.metadata };
  }

  /** Reset every parameter and state buffer to its initial value for `seed` (a whole number in [0, 2^32)). */
  reset(seed: number): void {
    this.check();
    this.executor.initialize(checkSeed(seed, 'reset()'));
    this.step = 0;
  }

  /**
   * Free the GPU buffers whose size depends on the batch (each graph's inputs and temporaries, upload
   * staging, pooled readback buffers): after one large batch, the next call allocates for its own
   * size. Parameters, optimizer state and the step count stay. Work in flight is unaffected.
   */
  trim(): void {
    this.check();
    this.executor.trim();
  }

  /** GPU bytes held for the sizes of the runs so far: what `trim` frees (inputs, temporaries, upload staging, pooled readback buffers). */
  get sizedBytes(): number {
    return this.executor.sizedBytes;
  }

  /**
   * The GPU memory the model holds now, in bytes: parameters, state and the optimizer's state once
   * allocated, every graph's buffers at the largest sizes run so far, upload staging, readback buffers
   * and the 1 MiB ring of step values (allocated at the first train step or evaluation). It changes as
   * batches grow, `trim()` frees and training starts; 0 once disposed. `memory` is the plan at the
   * sizes declared at creation, which does not change.
   */
  get memoryInUse(): number {
    return this.disposed ? 0 : this.executor.bytesHeld;
  }

  private paramDecl(path: unknown, where: string) {
    const d = this.program.params.find((p) => p.path === path);
    if (!d) {
      const some = this.program.params.slice(0, 8).map((p) => `\`${p.path}\``).join(', ');
      const state = this.program.state.some((s) => s.path === path) ? `; \`${String(path)}\` is a state buffer: read it with getState()` : '';
      throw new InputError(`${where}: the model ${this.program.model} has no parameter \`${String(path)}\`${state || `; its parameters are ${some}${this.program.params.length > 8 ? ` and ${this.program.params.length - 8} more` : ''}`}`);
    }
    return d;
  }

  /**
   * One state buffer's values (row-major), as of the work submitted so far: the model's own state (batch
   * norm's `running_mean` and `running_var`), the optimizer's (`opt.<step>.<param>.m`, step counters) or the
   * random key (`rng.key`). State is read, not set: `loadWeights` sets it with the parameters.
   */
  async getState(path: string): Promise<TypedArray> {
    this.check();
    if (!this.program.state.some((s) => s.path === path)) {
      const own = this.program.state.filter((s) => !isRunState(s.path));
      const names = (own.length > 0 ? own : this.program.state).slice(0, 8).map((s) => `\`${s.path}\``).join(', ');
      const isParam = this.program.params.some((p) => p.path === path);
      throw new InputError(
        `getState(): the model ${this.program.model} has no state buffer \`${String(path)}\`${isParam ? `; \`${String(path)}\` is a parameter: read it with getParameter()` : this.program.state.length === 0 ? '; it has no state' : `; its state buffers include ${names}`}`,
      );
    }
    const read = await this.guard(this.executor.readModelBuffers([path]));
    return read.get(path)!.data;
  }

  /** One parameter's values (row-major), as of the work submitted so far. */
  async getParameter(path: string): Promise<TypedArray> {
    this.check();
    this.paramDecl(path, 'getParameter()');
    const read = await this.guard(this.executor.readModelBuffers([path]));
    return read.get(path)!.data;
  }

  /** Overwrite one parameter (row-major, exactly its element count); later steps and predictions use it. */
  setParameter(path: string, data: HostArray): void {
    this.check();
    const d = this.paramDecl(path, 'setParameter()');
    const values = hostArray(`setParameter(${path})`, d, data);
    const numel = d.shape.reduce((a, b) => a * b, 1);
    if (values.length !== numel) throw new InputError(`setParameter() was given ${values.length} values for \`${path}\`, which is ${d.dtype}[${d.shape.join(', ')}]: ${numel} values`);
    this.executor.writeModelBuffer(path, toStorageArray(d.dtype, values));
  }

  /**
   * Set this model's parameters from another model's (a target network): each parameter from the
   * source's of the same path, or of `map(path)` (`undefined` skips it); with `tau` < 1, Polyak
   * averaging `tau * source + (1 - tau) * own`. The model's own state (batch norm's running statistics)
   * goes with them, copied or averaged alike, unless `state: false`; the run's (`opt.*`, `rng.key`) never. Every pair is checked (shape, dtype) before anything
   * is written. On one device with `tau` 1 it is a copy on the GPU, ordered after both models' work.
   */
  async copyParametersFrom(other: Model<string, string, string>, options: CopyParametersOptions = {}): Promise<CopyReport> {
    this.check();
    if (!(other instanceof Model)) throw new InputError('copyParametersFrom() takes another model made by dlc (a generated class or a runtime Model)');
    other.check();
    const tau = options.tau ?? 1;
    if (typeof tau !== 'number' || !(tau > 0 && tau <= 1)) throw new InputError(`copyParametersFrom() was given tau = ${String(tau)}; tau is a number in (0, 1] (1 copies)`);
    if (options.state !== undefined && typeof options.state !== 'boolean') throw new InputError(`copyParametersFrom() was given state = ${String(options.state)}; state is true (the default: copy the model's own state too) or false`);
    const pairs: { from: string; to: string; average: boolean }[] = [];
    const skipped: string[] = [];
    const ownState = options.state === false ? [] : this.program.state.filter((s) => !isRunState(s.path));
    const sourceState = other.program.state.filter((s) => !isRunState(s.path));
    for (const [kind, mine, theirs] of [['parameter', this.program.params, other.program.params], ['state buffer', ownState, sourceState]] as const) {
      for (const p of mine) {
        const from = options.map ? options.map(p.path) : p.path;
        if (from === undefined) {
          skipped.push(p.path);
          continue;
        }
        const src = theirs.find((q) => q.path === from);
        if (!src) {
          const hint = kind === 'state buffer' ? `; pass { map } to say where each comes from or to skip it, or { state: false } to copy the parameters only` : `; pass { map } to say where each parameter comes from, or to skip it`;
          throw new InputError(`copyParametersFrom(): the source model ${other.program.model} has no ${kind} \`${String(from)}\`${from !== p.path ? ` (for \`${p.path}\`)` : ''}${hint}`);
        }
        if (src.dtype !== p.dtype || src.shape.length !== p.shape.length || src.shape.some((x, i) => x !== p.shape[i])) {
          throw new InputError(`copyParametersFrom(): \`${from}\` of ${other.program.model} is ${src.dtype}[${src.shape.join(', ')}], but \`${p.path}\` of ${this.program.model} is ${p.dtype}[${p.shape.join(', ')}]`);
        }
        if (kind === 'parameter' && tau !== 1 && p.dtype !== 'f32') throw new InputError(`copyParametersFrom(): averaging with tau = ${tau} needs f32 parameters; \`${p.path}\` is ${p.dtype}`);
        // state of another dtype (a counter) is copied, as timm's EMA copies integer buffers
        pairs.push({ from, to: p.path, average: tau !== 1 && p.dtype === 'f32' });
      }
    }
    const copies = pairs.filter((x) => !x.average);
    const averages = pairs.filter((x) => x.average);
    // on one device, in queue order with every other call (a copy and an average alike); between
    // devices, through the host: await it before the next call that should see it
    if (other.executor.device === this.executor.device) {
      if (copies.length > 0) this.executor.copyModelBuffersFrom(other.executor, copies);
      if (averages.length > 0) this.executor.lerpModelBuffersFrom(other.executor, averages, tau);
    } else {
      const src = await other.guard(other.executor.readModelBuffers(pairs.map((x) => x.from)));
      const own = averages.length === 0 ? undefined : await this.guard(this.executor.readModelBuffers(averages.map((x) => x.to)));
      this.check();
      for (const { from, to, average } of pairs) {
        const s = src.get(from)!.data;
        const o = average ? own!.get(to)!.data : undefined;
        const data = o ? Float32Array.from(s, (v, i) => tau * v + (1 - tau) * o[i]) : s;
        this.executor.writeModelBuffer(to, data);
      }
    }
    await this.guard(Promise.resolve());
    // nothing was read back on one device, so no failed read tells of a device lost meanwhile: ask
    if (this.lostReason !== undefined) throw lostError(this.lostReason);
    return { copied: pairs.map((x) => x.to), skipped };
  }

  /** Free every GPU buffer (and the device, if the model created it). Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.lostAtDispose = this.watch.reason;
    this.disposed = true;
    this.executor.destroy();
    if (this.ownsDevice) this.executor.device.destroy();
  }
}

/**
 * An input as given, checked where TypeScript's types do not reach (callers in JavaScript): a typed
 * array, or a flat array of numbers. Strings and nested rows would upload as NaN, null as a TypeError.
 */
function hostArray(name: string, decl: { dtype: string; shape: readonly unknown[] } | undefined, data: unknown): HostArray {
  const shape = decl ? ` (${decl.dtype}[${decl.shape.join(', ')}])` : '';
  const want = decl?.dtype === 'f32' ? 'Float32Array' : decl?.dtype === 'i32' ? 'Int32Array' : decl ? 'Uint32Array' : 'Float32Array or Int32Array';
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    // 64-bit integers do not convert to numbers (Float32Array.from throws a TypeError on them)
    const tag = Object.prototype.toString.call(data).slice(8, -1);
    if (tag === 'BigInt64Array' || tag === 'BigUint64Array') throw new InputError(`input \`${name}\`${shape} is a ${tag}, whose BigInt values dlc does not convert; give ${/^[AEIOU]/.test(want) ? 'an' : 'a'} ${want} or a flat array of numbers`);
    return data as HostArray;
  }
  if (!Array.isArray(data)) {
    throw new InputError(`input \`${name}\`${shape} is ${data === null ? 'null' : typeof data}; give a typed array (${want}) or a flat array of numbers`);
  }
  const at = data.findIndex((v) => typeof v !== 'number');
  if (at >= 0) {
    const v: unknown = data[at];
    const what = Array.isArray(v) ? 'an array' : v === null ? 'null' : v === undefined ? 'undefined' : typeof v === 'string' ? `the string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v)}` : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
    const hint = Array.isArray(v) ? ': give the values flat, row after row (`rows.flat()`)' : ': give numbers';
    throw new InputError(`input \`${name}\`${shape} holds ${what} at [${at}]${hint}`);
  }
  return data as readonly number[];
}

/** Sizes given by name (to create() or predict()): the model's own size names, as whole numbers. */
function sizeOptions(program: ModelProgram, given: Readonly<Record<string, number>> | undefined, where: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const [name, value] of Object.entries(given ?? {})) {
    if (!program.sizes.includes(name)) {
      const known = program.sizes.length ? `its sizes are ${program.sizes.map((s) => `\`${s}\``).join(', ')}` : 'it has no symbolic sizes';
      throw new InputError(`${where}() was given a size \`${name}\`, but the model ${program.model} has no size of that name; ${known}`);
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new InputError(`${where}() was given ${name} = ${String(value)}; a size is a whole number, 0 or more`);
    sizes.set(name, value);
  }
  return sizes;
}
