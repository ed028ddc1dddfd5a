// Loads the dataset a train block's `data` setting names (`mnist()`, `iris()`, `csv(path: ...)`, `cifar10()`, `uci_har()`, `tiny_shakespeare(context: n)`, `text(path: ..., context: n)`) in Node.
import { isAbsolute, resolve } from 'node:path';
import { InputError } from '../errors.ts';
import { type CsvLabelType, type CsvSpec, CSV_LABEL_TYPES } from '../csv.ts';
import { DATASETS } from '../catalog.ts';
import type { Dataset } from '../data.ts';
import { loadIris } from '../iris.ts';
import { type MnistLayout, type MnistOptions, MNIST_LAYOUTS } from '../mnist.ts';
import type { SettingValue } from '../program.ts';
import { loadCsvFile, loadCsvFileSync } from './csv-file.ts';
import { loadMnist, loadMnistSync } from './mnist.ts';
import { type DatasetPart, loadCifar10, loadTextWindows, loadUciHar } from './downloaded.ts';

/** The dataset names `loadDataset` knows, with their arguments. */
export const KNOWN_DATASETS = DATASETS;

/** The argument that says where a dataset's files are, which `--data name:<where>` sets. */
export const LOCATION_ARGUMENT: Readonly<Record<string, string>> = { csv: 'path', cifar10: 'dir', uci_har: 'dir', tiny_shakespeare: 'path', text: 'path' };

export interface LoadDatasetOptions {
  /** Directory that relative CSV paths are resolved against (the .dl file's directory); default the working directory. */
  readonly baseDir?: string;
  /** For a csv(): how the caller reads it beyond its arguments (a label it may lack, where a features list came from, how its user sets header and delimiter). */
  readonly csv?: Pick<CsvSpec, 'labelOptional' | 'featuresFrom' | 'optionHint'>;
}

type Plan =
  | { readonly kind: 'mnist'; readonly options: MnistOptions }
  | { readonly kind: 'iris' }
  | { readonly kind: 'csv'; readonly path: string; readonly spec: CsvSpec }
  | { readonly kind: 'files'; readonly load: () => Dataset };

/**
 * The dataset for a `data` setting: a call `{ call: 'mnist', args: {} }` (as the program stores
 * `data = mnist()`) or a bare name. Throws for unknown names (listing the known ones), unknown
 * arguments and arguments of the wrong type.
 */
export async function loadDataset(spec: SettingValue, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const plan = planDataset(spec, options);
  switch (plan.kind) {
    case 'mnist':
      return loadMnist(plan.options);
    case 'iris':
      return loadIris();
    case 'csv':
      return loadCsvFile(plan.path, plan.spec);
    case 'files':
      return plan.load();
  }
}

/** The synchronous `loadDataset`. */
export function loadDatasetSync(spec: SettingValue, options: LoadDatasetOptions = {}): Dataset {
  const plan = planDataset(spec, options);
  switch (plan.kind) {
    case 'mnist':
      return loadMnistSync(plan.options);
    case 'iris':
      return loadIris();
    case 'csv':
      return loadCsvFileSync(plan.path, plan.spec);
    case 'files':
      return plan.load();
  }
}

function planDataset(spec: SettingValue, options: LoadDatasetOptions): Plan {
  let name: string;
  let args: Readonly<Record<string, SettingValue>>;
  if (typeof spec === 'string') {
    name = spec;
    args = {};
  } else if (spec !== null && typeof spec === 'object' && !Array.isArray(spec) && 'call' in spec) {
    name = spec.call;
    args = spec.args ?? {};
  } else {
    throw new InputError(`the data setting must name a dataset, e.g. mnist() (known: ${knownList()}); got ${JSON.stringify(spec)}`);
  }
  const known = KNOWN_DATASETS[name];
  if (!Object.hasOwn(KNOWN_DATASETS, name) || known === undefined) throw new InputError(`unknown dataset '${name}' (known: ${knownList()})`);
  for (const key of Object.keys(args)) {
    if (!known.includes(key)) {
      throw new InputError(`${name}() has no argument '${key}' (${known.length === 0 ? 'it takes none' : `arguments: ${known.join(', ')}`})`);
    }
  }
  const arg = new ArgReader(name, args);
  switch (name) {
    case 'mnist': {
      const layout = arg.string('layout');
      if (layout !== undefined && !MNIST_LAYOUTS.includes(layout as MnistLayout)) throw new InputError(`mnist(layout: "${layout}"): unknown layout (known: ${MNIST_LAYOUTS.join(', ')})`);
      const scale = arg.numbers('scale');
      if (scale !== undefined && scale.length !== 2) throw new InputError(`mnist(scale: ...) must be two numbers [lo, hi]`);
      return { kind: 'mnist', options: { ...(layout ? { layout: layout as MnistLayout } : {}), ...(scale ? { scale: [scale[0], scale[1]] } : {}) } };
    }
    case 'iris':
      return { kind: 'iris' };
    case 'cifar10':
    case 'uci_har': {
      const dir = arg.string('dir');
      const part = arg.part();
      const located = { ...(dir !== undefined ? { dir } : {}), ...(part !== undefined ? { part } : {}), ...(options.baseDir !== undefined ? { baseDir: options.baseDir } : {}) };
      return { kind: 'files', load: () => (name === 'cifar10' ? loadCifar10(located) : loadUciHar(located)) };
    }
    case 'tiny_shakespeare':
    case 'text': {
      const path = arg.string('path');
      if (name === 'text' && path === undefined) throw new InputError('text() needs a path: text(path: "corpus.txt", context: 257)');
      const context = arg.integer('context');
      if (context === undefined) throw new InputError(`${name}() needs a context, the characters of one row: ${name}(context: 257)`);
      return { kind: 'files', load: () => loadTextWindows({ context, ...(path !== undefined ? { path } : {}), ...(options.baseDir !== undefined ? { baseDir: options.baseDir } : {}), ...(name === 'tiny_shakespeare' ? { name } : {}) }) };
    }
    default: {
      const path = arg.string('path');
      if (path === undefined) throw new InputError('csv() needs a path: csv(path: "data.csv", label: "...")');
      const labelType = arg.string('label_type');
      if (labelType !== undefined && !CSV_LABEL_TYPES.includes(labelType as CsvLabelType)) {
        throw new InputError(`csv(label_type: "${labelType}"): unknown label type (known: ${CSV_LABEL_TYPES.join(', ')})`);
      }
      // one label column, or a list of them (a label of shape [k]: several targets)
      const label = Array.isArray(args.label) ? arg.columnRefs('label') : arg.columnRef('label');
      const features = arg.columnRefs('features');
      const categorical = arg.strings('categorical');
      const header = arg.boolean('header');
      const classes = arg.strings('classes');
      const delimiter = arg.string('delimiter');
      const missing = arg.missing();
      const csvSpec: CsvSpec = {
        ...(missing !== undefined ? { missing } : {}),
        ...(label !== undefined ? { label } : {}),
        ...(features !== undefined ? { features } : {}),
        ...(categorical !== undefined ? { categorical } : {}),
        ...(header !== undefined ? { header } : {}),
        ...(labelType !== undefined ? { labelType: labelType as CsvLabelType } : {}),
        ...(classes !== undefined ? { classes } : {}),
        ...(delimiter !== undefined ? { delimiter } : {}),
        ...options.csv,
      };
      return { kind: 'csv', path: isAbsolute(path) ? path : resolve(options.baseDir ?? process.cwd(), path), spec: csvSpec };
    }
  }
}

function knownList(): string {
  return Object.keys(KNOWN_DATASETS).join(', ');
}

/** Typed access to a call's arguments, with messages naming the call and argument. */
class ArgReader {
  private readonly call: string;
  private readonly args: Readonly<Record<string, SettingValue>>;

  constructor(call: string, args: Readonly<Record<string, SettingValue>>) {
    this.call = call;
    this.args = args;
  }

  private bad(key: string, expected: string): never {
    throw new InputError(`${this.call}(${key}: ...) must be ${expected}, got ${JSON.stringify(this.args[key])}`);
  }

  string(key: string): string | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : this.bad(key, 'a string');
  }

  integer(key: string): number | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return typeof v === 'number' && Number.isInteger(v) ? v : this.bad(key, 'an integer');
  }

  /** `part: "train"` or `"test"`. */
  part(): DatasetPart | undefined {
    const v = this.string('part');
    if (v === undefined || v === 'train' || v === 'test') return v;
    return this.bad('part', '"train" or "test"');
  }

  /** csv's `missing:`: a number, or "nan" (NaN). */
  missing(): number | undefined {
    const v = this.args.missing;
    if (v === undefined) return undefined;
    if (typeof v === 'string' && v.toLowerCase() === 'nan') return NaN;
    return typeof v === 'number' ? v : this.bad('missing', 'a number or "nan"');
  }

  boolean(key: string): boolean | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return typeof v === 'boolean' ? v : this.bad(key, 'true or false');
  }

  numbers(key: string): number[] | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : this.bad(key, 'a list of numbers');
  }

  strings(key: string): string[] | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : this.bad(key, 'a list of strings');
  }

  columnRef(key: string): string | number | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)) ? v : this.bad(key, key === 'label' ? 'a column name or 0-based index, or a list of them' : 'a column name or 0-based index');
  }

  columnRefs(key: string): (string | number)[] | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) && v.every((x) => typeof x === 'string' || (typeof x === 'number' && Number.isInteger(x)))
      ? (v as (string | number)[])
      : this.bad(key, 'a list of column names or 0-based indices');
  }
}
