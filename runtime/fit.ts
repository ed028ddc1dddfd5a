// The fit loop: epochs of shuffled mini-batches, validation each epoch, early stopping, callbacks and a history.
import { augmentBatch, parseAugmentations, type Augmentation } from './augment.ts';
import type { AdaptReport } from './adapt.ts';
import { Dataset } from './data.ts';
import { BusyError, InputError } from './errors.ts';
import type { Model } from './model.ts';
import type { MetricTable, MetricValue } from './metric-tables.ts';
import { reportingStep, type ModelProgram, type SettingValue } from './program.ts';

export interface EarlyStopping {
  /** A reported name, `val_` + a reported name, or `loss` (the training loss). */
  readonly monitor: string;
  readonly patience: number;
  readonly mode?: 'min' | 'max';
  /** The least change that counts as an improvement (default 0). */
  readonly minDelta?: number;
  /** End with the weights of the best epoch (kept in memory), not the last one's; `History.restoredEpoch` says which. */
  readonly restoreBest?: boolean;
}

/** Where early stopping stands; saved with checkpoints so a resumed run stops where the uninterrupted one would. */
export interface EarlyStoppingState {
  best: number;
  bestEpoch: number;
  wait: number;
}

export interface StepInfo {
  readonly epoch: number;
  /** Batch index within the epoch (0-based) and the number of batches per epoch. */
  readonly batch: number;
  readonly batches: number;
  /** Training steps so far, all epochs. */
  readonly step: number;
  /** The step's losses and metrics, for steps a few steps behind the one just submitted (none for the others). */
  readonly values?: Readonly<Record<string, number>>;
}

export type EpochLogs = Readonly<Record<string, number>> & { readonly epoch: number };

export interface FitCallbacks {
  onStep?(info: StepInfo): void;
  /**
   * After validation; may save a checkpoint. Return 'stop' to end training. `state.tables` holds the
   * validation set's table metrics of an epoch that validated (`val_confusion`: a confusion matrix as
   * nested arrays), which the numeric logs leave out.
   */
  onEpochEnd?(logs: EpochLogs, state: { readonly earlyStopping?: EarlyStoppingState; readonly improved: boolean; readonly tables?: Readonly<Record<string, MetricTable>> }): void | 'stop' | Promise<void | 'stop'>;
}

/**
 * How to fit. Left out, `epochs`, `batchSize`, `seed`, `shuffle`, `maxSteps`, `validateEvery`, `augment` and
 * `earlyStopping` are the train block's (`epochs`, `batch`, `seed`, `shuffle`, `steps`, `eval_every`, `augment`,
 * `early_stopping { ... }`), as `dlc train` reads them (see `trainBlockFitOptions`); `augment: false` and
 * `earlyStopping: false` turn those off,
 * and so does fitting without validation data when the block's early stopping monitors a validation metric.
 */
export interface FitOptions {
  /** Default: the train block's `epochs`, else 1 (or as many as `maxSteps` take). */
  readonly epochs?: number;
  /** Default: the train block's `batch`, else 32. */
  readonly batchSize?: number;
  /** Shuffle the training batches each epoch (default true), seeded by `seed` and the epoch number. */
  readonly shuffle?: boolean;
  readonly seed?: number;
  /** Epochs already done (to resume from a checkpoint); the next epoch is `initialEpoch`. */
  readonly initialEpoch?: number;
  readonly earlyStopping?: EarlyStopping | false;
  readonly earlyStoppingState?: EarlyStoppingState;
  /**
   * With `earlyStopping.restoreBest` and an `earlyStoppingState` whose best epoch came before
   * `initialEpoch` (a resumed run): that epoch's weights (`saveWeights({ trainingState: false })`,
   * saved when it improved), which fit restores if no later epoch beats them. Without them such a
   * fit is an InputError: it could only end with the last weights while naming the earlier epoch.
   */
  readonly bestWeights?: Uint8Array;
  /**
   * Augmentations of the training batches (validation and test data are never augmented). Default: the
   * train block's `augment`, as `dlc train` applies it; `false` (or `[]`) trains without.
   */
  readonly augment?: readonly Augmentation[] | false;
  /** Validate every this many epochs (default 1); the last epoch is always validated. */
  readonly validateEvery?: number;
  /** Stop once the model has taken this many training steps (counting those of a resumed run), mid-epoch if need be. */
  readonly maxSteps?: number;
  /**
   * Sizes the inputs' lengths cannot tell (the L of `tokens: i32[B, L]`), for every step and validation
   * batch; by default those the data's column shapes give (a column of [12] per example gives L = 12).
   */
  readonly sizes?: Readonly<Record<string, number>>;
  /**
   * Adapt the train block's `adapt` layers (Normalization) to the training data before training (default
   * true): only a fit that starts the model's training (no step taken, `initialEpoch` 0), so a resumed or
   * continued one keeps the statistics it has. `History.adapted` says what was set.
   */
  readonly adapt?: boolean;
  /** Steps kept in flight before the loop waits for the oldest one's values (default 2). */
  readonly lookahead?: number;
  readonly callbacks?: FitCallbacks;
}

export interface History {
  readonly epochs: EpochLogs[];
  readonly stoppedEarly: boolean;
  /** Training ended because the model reached `maxSteps`. */
  readonly reachedMaxSteps: boolean;
  readonly earlyStopping?: EarlyStoppingState;
  /** With `earlyStopping.restoreBest`: the epoch whose weights the model ended with, when it was not the last one trained. */
  readonly restoredEpoch?: number;
  /** The layers this fit adapted to the training data before its first step (FitOptions.adapt). */
  readonly adapted?: readonly AdaptReport[];
}

/** The fit options a train block gives (the settings `dlc train` acts on the same way). */
export function trainBlockFitOptions(program: ModelProgram): { epochs?: number; batchSize?: number; seed?: number; shuffle?: boolean; maxSteps?: number; validateEvery?: number; augment?: Augmentation[]; earlyStopping?: EarlyStopping } {
  const settings = program.training?.settings ?? {};
  const num = (name: string) => (typeof settings[name] === 'number' ? (settings[name] as number) : undefined);
  const out: ReturnType<typeof trainBlockFitOptions> = {};
  const put = <K extends keyof typeof out>(key: K, value: (typeof out)[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  put('epochs', num('epochs'));
  put('batchSize', num('batch'));
  put('seed', num('seed'));
  put('maxSteps', num('steps'));
  put('validateEvery', num('eval_every'));
  if (settings.shuffle === false) out.shuffle = false;
  put('earlyStopping', earlyStoppingSetting(settings.early_stopping));
  const augment = parseAugmentations(settings.augment);
  if (augment.length > 0) out.augment = augment;
  return out;
}

/** `early_stopping { monitor = ..., patience = ..., mode, min_delta, restore_best }` (or the call form) as fit's options. */
export function earlyStoppingSetting(v: SettingValue | undefined): EarlyStopping | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v) || !('call' in v)) return undefined;
  const a = v.args;
  return {
    monitor: typeof a.monitor === 'string' ? a.monitor : 'val_loss',
    patience: typeof a.patience === 'number' ? a.patience : 5,
    ...(a.mode === 'min' || a.mode === 'max' ? { mode: a.mode } : {}),
    ...(typeof a.min_delta === 'number' ? { minDelta: a.min_delta } : {}),
    ...(a.restore_best === true ? { restoreBest: true } : {}),
  };
}

function mean(records: readonly Record<string, number>[], weights: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  const total = weights.reduce((a, b) => a + b, 0);
  if (records.length === 0 || total === 0) return out;
  for (const name of Object.keys(records[0])) out[name] = records.reduce((a, r, i) => a + r[name] * weights[i], 0) / total;
  return out;
}

/** The losses and metrics evaluateDataset can only average over batches: neither means over the examples nor functions of sums over the batch (ModelProgram.means, graphs.totals). */
export function batchAveraged(program: ModelProgram): string[] {
  const whole = new Set([...Object.keys(program.graphs.totals?.outputs ?? {}), ...(program.means ?? [])]);
  return [...program.losses, ...program.metrics].filter((name) => !whole.has(name));
}

/**
 * The model's losses and metrics over a whole dataset, as over one batch: precision, recall, F1 and means
 * from sums over every batch, anything else averaged over batches weighted by their lengths (Model.evaluateSet);
 * a table metric (a confusion matrix) as the set's nested arrays.
 */
export async function evaluateDataset(model: Model, data: Dataset, batchSize: number, sizes?: Readonly<Record<string, number>>): Promise<Record<string, MetricValue>> {
  const inputs = new Set(model.program.inputs.map((i) => i.name));
  return model.evaluateSet(
    [...data.batches(batchSize)].map((b) => Object.fromEntries(Object.entries(b.columns).filter(([k]) => inputs.has(k)))),
    sizes ? { sizes } : {},
  );
}

/**
 * The sizes a dataset's column shapes give the model's inputs: an input declared [B, L] over a column
 * of [12] per example binds L = 12 (the size the flat batch cannot tell from B).
 */
export function columnSizes(program: ModelProgram, data: Dataset): Record<string, number> {
  const out: Record<string, number> = {};
  const shapes = new Map(data.columns().map((c) => [c.name, c.shape]));
  for (const input of program.inputs) {
    const shape = shapes.get(input.name);
    if (!shape || input.shape[0] !== 'B' || input.shape.length !== shape.length + 1) continue;
    input.shape.slice(1).forEach((d, i) => {
      if (typeof d === 'string' && d !== 'B' && program.sizes.includes(d) && !(d in out)) out[d] = shape[i];
    });
  }
  return out;
}

/** Models with a fit() running: a second one at once would interleave its steps with the first's. */
const fitting = new WeakSet<object>();

/**
 * Adds one batch's sums (by name) into `sums`, in float64: how a set (`evaluateSet`) or an epoch (`fit`)
 * totals its batches. A total named `#totalmax<k>` (`#totalmin<k>`) is a max (min) over the batch, and
 * batches combine by the largest (smallest) value (compiler/train/metric-totals.ts).
 */
export function addTotals(sums: Map<string, Float64Array>, batch: Readonly<Record<string, ArrayLike<number>>>): void {
  for (const [name, data] of Object.entries(batch)) {
    const combine = name.startsWith('#totalmax') ? Math.max : name.startsWith('#totalmin') ? Math.min : undefined;
    const sum = sums.get(name) ?? sums.set(name, new Float64Array(data.length).fill(combine === Math.max ? -Infinity : combine === Math.min ? Infinity : 0)).get(name)!;
    if (combine) for (let i = 0; i < data.length; i++) sum[i] = combine(sum[i], data[i]);
    else for (let i = 0; i < data.length; i++) sum[i] += data[i];
  }
}

/**
 * Whether a logged quantity (`loss`, `val_accuracy`) is better lower ('min') or higher ('max'), as the
 * model's definitions say (ModelProgram.directions: losses fall; std.metrics' scores rise, its errors
 * fall); undefined when they do not say, never guessed from the name.
 */
export function monitorMode(program: Pick<ModelProgram, 'directions'>, monitor: string): 'min' | 'max' | undefined {
  const name = monitor.replace(/^val_/, '');
  return program.directions && Object.hasOwn(program.directions, name) ? program.directions[name] : undefined;
}

/** An f32 input column of the training data holding NaN or ±Infinity (as the f32 it uploads as) is an InputError naming fit(), the column and the example. */
function requireFiniteExamples(model: Model, train: Dataset): void {
  for (const decl of model.program.inputs) {
    if (decl.dtype !== 'f32' || !train.hasColumn(decl.name)) continue;
    const { data, exampleSize } = train.column(decl.name);
    for (let i = 0; i < data.length; i++) {
      if (Number.isFinite(Math.fround(data[i]))) continue;
      const beyond = Number.isFinite(data[i]) ? ' (beyond the f32 range)' : '';
      const within = exampleSize > 1 ? `, value ${i % exampleSize} of its ${exampleSize}` : '';
      throw new InputError(`fit(): the training data's \`${decl.name}\` holds ${data[i]}${beyond} in example ${Math.floor(i / Math.max(1, exampleSize))} (counted from 0${within}), and the model was created with { checkFinite: true }: nothing was trained`);
    }
  }
}

function isBetter(value: number, best: number, mode: 'min' | 'max', minDelta: number): boolean {
  return mode === 'min' ? value < best - minDelta : value > best + minDelta;
}

export async function fit(model: Model, data: { readonly train: Dataset; readonly validation?: Dataset }, given: FitOptions = {}): Promise<History> {
  // JavaScript callers: a batch of arrays, or a Dataset not wrapped in { train }, is a message, not a TypeError
  const isDataset = (d: unknown) => d instanceof Dataset;
  if (data === null || typeof data !== 'object' || !isDataset((data as { train?: unknown }).train) || ((data as { validation?: unknown }).validation !== undefined && !isDataset((data as { validation?: unknown }).validation))) {
    throw new InputError(`fit() takes { train: Dataset, validation?: Dataset }, with each Dataset made by new Dataset({ column: { data, shape } }) (runtime/data.ts)${isDataset(data) ? ': wrap it as { train: data }' : ''}`);
  }
  if (fitting.has(model)) throw new BusyError(`the model ${model.program.model} is already fitting: a second fit() would interleave its steps with the first's; await the first (or use another model)`);
  fitting.add(model);
  try {
    return await fitNow(model, data, given);
  } finally {
    fitting.delete(model);
  }
}

async function fitNow(model: Model, data: { readonly train: Dataset; readonly validation?: Dataset }, given: FitOptions): Promise<History> {
  await model.prepareTraining();
  const block = trainBlockFitOptions(model.program);
  const options = { ...block, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) } as FitOptions;
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
  const stepsPerEpoch = data.train.batchCount(batchSize);
  const epochs = options.epochs ?? (options.maxSteps !== undefined && stepsPerEpoch > 0 ? Math.ceil(options.maxSteps / stepsPerEpoch) : 1);
  if (!Number.isInteger(epochs) || epochs < 0) throw new InputError(`epochs must be a non-negative integer, got ${epochs}`);
  const inputs = new Set(model.program.inputs.map((i) => i.name));
  for (const name of inputs) {
    if (!data.train.hasColumn(name)) throw new InputError(`the training data has no column \`${name}\` for the model's input; it has ${data.train.columnNames.map((c) => `\`${c}\``).join(', ')}`);
  }
  // { checkFinite }: the whole training set before any step, so the example is named by its place in the data, not in a shuffled batch
  if (model.checksFinite) requireFiniteExamples(model, data.train);
  // the train block's early stopping on a validation metric waits for validation data: without any, it is off
  const inherited = given.earlyStopping === undefined && !(data.validation && data.validation.length > 0) && options.earlyStopping && options.earlyStopping.monitor.startsWith('val_');
  const es = options.earlyStopping === false || inherited ? undefined : options.earlyStopping;
  let best: { weights: Uint8Array; epoch: number } | undefined;
  const known = es ? es.mode ?? monitorMode(model.program, es.monitor) : 'min';
  if (known === undefined) {
    throw new InputError(`earlyStopping cannot tell whether ${es!.monitor} is better higher or lower (the model's definition of it does not say): pass mode: 'min' (an error) or 'max' (a score)`);
  }
  const mode = known;
  let esState: EarlyStoppingState | undefined = es ? { ...(options.earlyStoppingState ?? { best: mode === 'min' ? Infinity : -Infinity, bestEpoch: -1, wait: 0 }) } : undefined;
  // a resumed fit whose best epoch is behind it: restoreBest needs that epoch's weights from the caller
  if (es?.restoreBest && esState && esState.bestEpoch >= 0 && esState.bestEpoch < (options.initialEpoch ?? 0)) {
    if (!options.bestWeights) {
      throw new InputError(
        `earlyStopping.restoreBest with an earlyStoppingState whose best epoch (${esState.bestEpoch}) came before initialEpoch (${options.initialEpoch}): fit keeps best weights in memory only, so pass that epoch's weights as bestWeights (saveWeights({ trainingState: false }) when it improved), or fit with restoreBest: false`,
      );
    }
    best = { weights: options.bestWeights, epoch: esState.bestEpoch };
  }
  // a fit that starts training: the adapted layers' statistics from the training data, before the first step
  const adapts = (model.program.training?.adapt ?? []).length > 0 && options.adapt !== false && (options.initialEpoch ?? 0) === 0 && model.step === 0;
  const adapted = adapts ? await model.adapt(data.train) : undefined;
  const history: EpochLogs[] = [];
  const lookahead = options.lookahead ?? 2;
  const withTotals = model.program.graphs.stepTotals !== undefined;
  let stoppedEarly = false;
  const maxSteps = options.maxSteps;
  if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 0)) throw new InputError(`maxSteps must be a non-negative integer, got ${maxSteps}`);
  const reached = () => maxSteps !== undefined && model.step >= maxSteps;
  const validateEvery = options.validateEvery ?? 1;
  if (!Number.isInteger(validateEvery) || validateEvery < 1) throw new InputError(`validateEvery must be a positive integer, got ${validateEvery}`);
  const batches = data.train.batchCount(batchSize);
  const augment = options.augment === false ? [] : options.augment ?? [];
  const shapes = Object.fromEntries(data.train.columns().map((c) => [c.name, c.shape]));
  const sizes = { ...columnSizes(model.program, data.train), ...options.sizes };
  const sized = Object.keys(sizes).length > 0 ? { sizes } : {};
  // a run resumed after early stopping ended it: nothing more to train
  if (es && esState && esState.wait > 0 && esState.wait >= es.patience) {
    if (best) await model.loadWeights(best.weights, { weightsOnly: true });
    return { epochs: [], stoppedEarly: true, reachedMaxSteps: reached(), earlyStopping: esState, ...(best ? { restoredEpoch: best.epoch } : {}), ...(adapted ? { adapted } : {}) };
  }
  for (let epoch = options.initialEpoch ?? 0; epoch < epochs && !reached(); epoch++) {
    const pending: { handle: ReturnType<Model['trainStep']>; batch: number; length: number }[] = [];
    const trainValues: Record<string, number>[] = [];
    const lengths: number[] = [];
    // per step, its sums over the batch added up over the epoch (in float64), for the quantities that are functions of them
    const epochTotals = new Map<string, Map<string, Float64Array>>();
    const settle = async (): Promise<void> => {
      const p = pending.shift()!;
      const values = await p.handle.values();
      trainValues.push(values);
      lengths.push(p.length);
      for (const [step, totals] of Object.entries((await p.handle.totals?.()) ?? {})) {
        addTotals(epochTotals.get(step) ?? epochTotals.set(step, new Map()).get(step)!, totals);
      }
      options.callbacks?.onStep?.({ epoch, batch: p.batch, batches, step: p.handle.step, values });
    };
    let b = 0;
    for (const batch of data.train.batches(batchSize, { shuffle: options.shuffle ?? true, seed: options.seed ?? 0, epoch })) {
      augmentBatch(batch.columns, shapes, augment, { seed: options.seed ?? 0, epoch, batch: b });
      const feed = Object.fromEntries(Object.entries(batch.columns).filter(([k]) => inputs.has(k)));
      pending.push({ handle: model.trainStep(feed, { ...sized, ...(withTotals ? { totals: true } : {}) }), batch: b++, length: batch.length });
      if (pending.length > lookahead) await settle();
      if (reached()) break;
    }
    while (pending.length > 0) await settle();
    const last = epoch === epochs - 1 || reached();
    const logs: Record<string, number> = { epoch, ...mean(trainValues, lengths) };
    // precision, recall, F1 (functions of sums over the batch): the epoch's, from its summed totals, not
    // an average of per-batch values; each from the step trainStep reports it from (reportingStep)
    const totalled = new Set<string>();
    for (const [step, sums] of epochTotals) {
      for (const [name, value] of Object.entries(await model.finishStepTotals(step, Object.fromEntries(sums)))) {
        // an epoch's logs are numbers: a table metric (a confusion matrix) is evaluateDataset's
        if (typeof value !== 'number') continue;
        if (!totalled.has(name) || reportingStep(model.program.training, name) === step) logs[name] = value;
        totalled.add(name);
      }
    }
    const validated = data.validation !== undefined && data.validation.length > 0 && ((epoch + 1) % validateEvery === 0 || last);
    // the validation set's table metrics (a confusion matrix) go to onEpochEnd beside the numeric logs
    const tables: Record<string, MetricTable> = {};
    if (validated) {
      for (const [k, v] of Object.entries(await evaluateDataset(model, data.validation, batchSize, sized.sizes))) {
        if (typeof v === 'number') logs[`val_${k}`] = v;
        else tables[`val_${k}`] = v;
      }
    }
    let improved = false;
    // an epoch without validation says nothing about a validation metric: early stopping waits for the next
    if (es && esState && (validated || !es.monitor.startsWith('val_') || !data.validation)) {
      const value = logs[es.monitor];
      if (value === undefined) throw new InputError(`early stopping monitors \`${es.monitor}\`, which is not among ${Object.keys(logs).filter((k) => k !== 'epoch').map((k) => `\`${k}\``).join(', ')}`);
      if (isBetter(value, esState.best, mode, es.minDelta ?? 0)) {
        esState = { best: value, bestEpoch: epoch, wait: 0 };
        improved = true;
        if (es.restoreBest) best = { weights: await model.saveWeights({ trainingState: false }), epoch };
      } else {
        esState = { ...esState, wait: esState.wait + 1 };
      }
    }
    const entry = logs as EpochLogs;
    history.push(entry);
    const verdict = await options.callbacks?.onEpochEnd?.(entry, { ...(esState ? { earlyStopping: esState } : {}), improved, ...(Object.keys(tables).length > 0 ? { tables } : {}) });
    if (verdict === 'stop') break;
    // stop after an epoch that did not improve, once patience runs out (patience 0: the first such epoch)
    if (es && esState && !improved && esState.wait > 0 && esState.wait >= es.patience) {
      stoppedEarly = true;
      break;
    }
  }
  const lastEpoch = history.at(-1)?.epoch;
  let restoredEpoch: number | undefined;
  if (best && best.epoch !== lastEpoch) {
    await model.loadWeights(best.weights, { weightsOnly: true });
    restoredEpoch = best.epoch;
  }
  return { epochs: history, stoppedEarly, reachedMaxSteps: reached(), ...(esState ? { earlyStopping: esState } : {}), ...(restoredEpoch !== undefined ? { restoredEpoch } : {}), ...(adapted ? { adapted } : {}) };
}
