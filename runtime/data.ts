// Typed in-memory datasets: named typed-array columns, seeded shuffling, splits and mini-batches (Node and browser).
import { InputError } from './errors.ts';
import { brand, isBranded } from './brand.ts';

/** Element types a dataset column holds. */
export type ColumnDType = 'f32' | 'i32' | 'u32';

export type ColumnArray = Float32Array | Int32Array | Uint32Array;

/** What a caller passes to build a column: the flat data and the shape of one example (`[]` for a scalar). */
export interface ColumnInput {
  readonly data: ColumnArray;
  readonly shape: readonly number[];
  /** For a class-label column: the name of each class index. */
  readonly classes?: readonly string[];
  /** The name of each element of one example, where the data named them (a CSV's header names of its feature columns, or of its label column). */
  readonly names?: readonly string[];
  /** For a categorical column (i32, one value per example): the string index k stands for is `vocabulary[k - 1]`; 0 is a value outside it, or missing (runtime/vocabulary.ts). */
  readonly vocabulary?: readonly string[];
}

/** One validated column: `data` holds `length * exampleSize` elements, example after example. */
export interface Column {
  readonly name: string;
  readonly dtype: ColumnDType;
  readonly shape: readonly number[];
  /** Elements per example: the product of `shape` (1 for a scalar). */
  readonly exampleSize: number;
  readonly data: ColumnArray;
  readonly classes?: readonly string[];
  /** The name of each element of one example (`exampleSize` of them), where the data named them. */
  readonly names?: readonly string[];
  readonly vocabulary?: readonly string[];
}

/**
 * One mini-batch: `columns[name]` holds `length * exampleSize` elements of that column, in batch order.
 * Every batch gets freshly allocated arrays, so keeping or mutating one never affects the dataset or
 * another batch. `indices` are the examples' positions in the dataset.
 */
export interface Batch {
  readonly length: number;
  readonly columns: Readonly<Record<string, ColumnArray>>;
  readonly indices: Uint32Array;
}

export interface SplitOptions {
  /** Shuffle before splitting (default true). */
  readonly shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  readonly seed?: number;
  /**
   * Stratify by this column (integer class indices, one per example): each part holds about its
   * fraction of every class, so a rare class is not left out of a held-out part by chance. The
   * parts' sizes are those of the unstratified split.
   */
  readonly stratify?: string;
}

export interface BatchOptions {
  /** Visit the examples in a seeded random order (default false: dataset order). */
  readonly shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  readonly seed?: number;
  /** The epoch number: with the same seed, each epoch gets its own order (default 0). */
  readonly epoch?: number;
  /** Drop the last batch when it is smaller than `batchSize` (default false). */
  readonly dropLast?: boolean;
}

/** The dtype of a column's typed array; throws (naming the column when given) for any other array. */
export function columnDType(data: unknown, name?: string): ColumnDType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Uint32Array) return 'u32';
  throw new InputError(`${name === undefined ? 'a dataset column' : `column '${name}'`} must hold a Float32Array, Int32Array or Uint32Array`);
}

function allocate(dtype: ColumnDType, n: number): ColumnArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'u32':
      return new Uint32Array(n);
  }
}

function checkCount(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`${what} must be a non-negative integer, got ${n}`);
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new InputError(`a shuffle seed must be an integer, got ${seed}`);
}

/**
 * A small seeded PRNG (mulberry32 over a splitmix32-mixed seed): the same seed gives the same stream
 * on every JavaScript engine, since it uses only 32-bit integer arithmetic.
 */
export class Rng {
  private state: number;

  /** Any safe integer seed; the high and low 32-bit halves both matter. */
  constructor(seed: number) {
    checkSeed(seed);
    const low = seed >>> 0;
    const high = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.state = mix32(mix32(low) ^ high);
  }

  /** The next uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float uniformly distributed in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** An integer uniformly distributed in [0, n) for 1 <= n <= 2^32 (rejection sampling, no modulo bias). */
  nextInt(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1 || n > 0x1_0000_0000) throw new Error(`Rng.nextInt: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }
}

/** splitmix32's finalizer: scrambles a 32-bit value so nearby seeds give unrelated streams. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** A seed derived from a base seed and an epoch (or any second integer), stable across platforms. */
export function deriveSeed(seed: number, stream: number): number {
  checkSeed(seed);
  checkSeed(stream);
  return mix32(new Rng(seed).nextUint32() ^ mix32(new Rng(stream).nextUint32()));
}

/** The integers 0..n-1 in a seeded random order (Fisher-Yates). */
export function shuffledIndices(n: number, seed: number): Uint32Array {
  checkCount('the number of indices', n);
  if (n > 0x1_0000_0000) throw new InputError(`cannot shuffle ${n} indices (at most 2^32)`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * Exact sizes of a split of `n` examples by `fractions`: each part gets floor(fraction * n) and the
 * remainder goes to the last part with a non-zero fraction. Fractions must be finite, non-negative
 * and sum to 1 (within 1e-6).
 */
export function splitSizes(n: number, fractions: readonly number[]): number[] {
  checkCount('the number of examples', n);
  if (fractions.length === 0) throw new InputError('split needs at least one fraction');
  let sum = 0;
  fractions.forEach((f, i) => {
    if (typeof f !== 'number' || !Number.isFinite(f) || f < 0) {
      throw new InputError(`split fraction ${i} is ${String(f)}; fractions must be finite and non-negative`);
    }
    sum += f;
  });
  if (Math.abs(sum - 1) > 1e-6) throw new InputError(`split fractions [${fractions.join(', ')}] sum to ${sum}, not 1`);
  let remaining = n;
  const sizes = fractions.map((f) => {
    // The small epsilon keeps 0.29 * 100 = 28.999999999999996 from flooring to 28.
    const size = Math.min(remaining, Math.floor(f * n + 1e-9));
    remaining -= size;
    return size;
  });
  let last = fractions.length - 1;
  while (fractions[last] === 0) last--;
  sizes[last] += remaining;
  return sizes;
}

/**
 * A dataset: named columns with the same number of examples. Columns are never modified after
 * construction; every derived dataset (subset, split, take) and every batch copies its data.
 */
export class Dataset {
  readonly length: number;
  private readonly byName: ReadonlyMap<string, Column>;

  /** A Dataset from another copy of the runtime (a bundle or loader that loads dlc/runtime twice) is a Dataset too. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(this, value);
  }

  /**
   * Validates that every column's data is a whole number of examples and that all columns agree.
   * `length` is required only when it cannot be inferred (no columns, or every column has a 0 in its shape).
   * The typed arrays are adopted, not copied.
   */
  constructor(columns: Readonly<Record<string, ColumnInput>>, length?: number) {
    const byName = new Map<string, Column>();
    let inferred: { length: number; from: string } | undefined;
    if (length !== undefined) {
      checkCount('the dataset length', length);
      inferred = { length, from: 'the given length' };
    }
    for (const [name, input] of Object.entries(columns)) {
      if (input === null || typeof input !== 'object') throw new InputError(`column '${name}' must be an object { data, shape }`);
      const dtype = columnDType(input.data, name);
      if (!Array.isArray(input.shape)) throw new InputError(`column '${name}' needs a shape array (e.g. [] for a scalar per example)`);
      const shape: number[] = [...input.shape];
      let exampleSize = 1;
      for (const d of shape) {
        if (!Number.isSafeInteger(d) || d < 0) throw new InputError(`column '${name}' has an invalid shape [${shape.join(', ')}]: dimensions must be non-negative integers`);
        exampleSize *= d;
      }
      if (exampleSize > 0) {
        if (input.data.length % exampleSize !== 0) {
          throw new InputError(`column '${name}' has ${input.data.length} elements, not a whole number of examples of shape [${shape.join(', ')}] (${exampleSize} elements each)`);
        }
        const n = input.data.length / exampleSize;
        if (inferred === undefined) inferred = { length: n, from: `column '${name}'` };
        else if (inferred.length !== n) {
          throw new InputError(`column '${name}' has ${n} examples but ${inferred.from} has ${inferred.length}`);
        }
      } else if (input.data.length !== 0) {
        throw new InputError(`column '${name}' has shape [${shape.join(', ')}] (no elements per example) but ${input.data.length} elements`);
      }
      const classes = input.classes === undefined ? undefined : [...input.classes];
      const names = input.names === undefined ? undefined : [...input.names];
      if (names && names.length !== exampleSize) throw new InputError(`column '${name}' names ${names.length} elements, but one example holds ${exampleSize}`);
      const vocabulary = input.vocabulary === undefined ? undefined : [...input.vocabulary];
      if (vocabulary) {
        if (dtype !== 'i32' || exampleSize !== 1) throw new InputError(`column '${name}' has a vocabulary, so it holds one i32 index per example, not ${dtype}[${shape.join(', ')}]`);
        const bad = input.data.findIndex((v) => !(v >= 0 && v <= vocabulary.length));
        if (bad >= 0) throw new InputError(`column '${name}' holds ${input.data[bad]} at example ${bad}, outside its vocabulary's indices 0..${vocabulary.length}`);
      }
      byName.set(name, { name, dtype, shape, exampleSize, data: input.data, ...(classes ? { classes } : {}), ...(names ? { names } : {}), ...(vocabulary ? { vocabulary } : {}) });
    }
    if (inferred === undefined) {
      throw new InputError(byName.size === 0 ? 'a dataset with no columns needs an explicit length' : 'the dataset length cannot be inferred from columns with empty examples; pass it explicitly');
    }
    this.length = inferred.length;
    this.byName = byName;
  }

  /** Column names in insertion order. */
  get columnNames(): string[] {
    return [...this.byName.keys()];
  }

  /** The named column; throws listing the dataset's columns when there is none. */
  column(name: string): Column {
    const c = this.byName.get(name);
    if (c === undefined) throw new InputError(`the dataset has no column '${name}' (columns: ${this.columnNames.map((n) => `'${n}'`).join(', ') || 'none'})`);
    return c;
  }

  hasColumn(name: string): boolean {
    return this.byName.has(name);
  }

  /** All columns, in insertion order. */
  columns(): Column[] {
    return [...this.byName.values()];
  }

  /** A new dataset holding copies of the given examples, in the given order (repeats allowed). */
  subset(indices: ArrayLike<number>): Dataset {
    for (let i = 0; i < indices.length; i++) {
      const k = indices[i];
      if (!Number.isInteger(k) || k < 0 || k >= this.length) {
        throw new InputError(`subset index ${k} (at position ${i}) is out of range for a dataset of ${this.length} examples`);
      }
    }
    const out: Record<string, ColumnInput> = {};
    for (const c of this.byName.values()) out[c.name] = { data: gather(c, indices), ...described(c) };
    return new Dataset(out, indices.length);
  }

  /** A copy of the first min(n, length) examples. */
  take(n: number): Dataset {
    checkCount('take(n)', n);
    const count = Math.min(n, this.length);
    const out: Record<string, ColumnInput> = {};
    for (const c of this.byName.values()) out[c.name] = { data: c.data.slice(0, count * c.exampleSize), ...described(c) };
    return new Dataset(out, count);
  }

  /** A copy with the examples in a seeded random order. */
  shuffle(seed: number): Dataset {
    return this.subset(shuffledIndices(this.length, seed));
  }

  /**
   * Splits into `fractions.length` datasets (e.g. [0.8, 0.1, 0.1] for train/validation/test), sized by
   * `splitSizes`. With `shuffle` (the default) examples are assigned in a seeded random order;
   * without it the parts are consecutive runs (the last fraction is the end of the data), or, with
   * `stratify`, every class is divided in data order. Within a part, examples keep that order.
   */
  split(fractions: readonly number[], options: SplitOptions = {}): Dataset[] {
    return this.splitIndices(fractions, options).map((indices) => this.subset(indices));
  }

  /** The examples' positions in this dataset that `split` puts in each part, in the part's order. */
  splitIndices(fractions: readonly number[], options: SplitOptions = {}): Uint32Array[] {
    const sizes = splitSizes(this.length, fractions);
    const order = options.shuffle === false ? identity(this.length) : shuffledIndices(this.length, options.seed ?? 0);
    if (options.stratify !== undefined) return stratified(order, this.classIndices(options.stratify), sizes);
    const parts: Uint32Array[] = [];
    let start = 0;
    for (const size of sizes) {
      parts.push(order.slice(start, start + size));
      start += size;
    }
    return parts;
  }

  /** An integer column of one value per example (class indices), for stratifying. */
  private classIndices(name: string): ArrayLike<number> {
    const c = this.column(name);
    if (c.dtype === 'f32' || c.exampleSize !== 1) throw new InputError(`cannot stratify by column '${name}': it must hold one integer class index per example, not ${c.dtype} [${c.shape.join(', ')}]`);
    return c.data;
  }

  /** How many batches `batches(batchSize, { dropLast })` yields. */
  batchCount(batchSize: number, dropLast = false): number {
    checkBatchSize(batchSize);
    return dropLast ? Math.floor(this.length / batchSize) : Math.ceil(this.length / batchSize);
  }

  /**
   * Mini-batches covering every example exactly once (except the dropped tail with `dropLast`).
   * The last batch may be smaller than `batchSize`; each batch's arrays are fresh copies.
   */
  *batches(batchSize: number, options: BatchOptions = {}): Generator<Batch, void, undefined> {
    checkBatchSize(batchSize);
    const epoch = options.epoch ?? 0;
    checkCount('the epoch', epoch);
    const order = options.shuffle ? shuffledIndices(this.length, deriveSeed(options.seed ?? 0, epoch)) : identity(this.length);
    const count = this.batchCount(batchSize, options.dropLast ?? false);
    for (let b = 0; b < count; b++) {
      const indices = order.slice(b * batchSize, Math.min(this.length, (b + 1) * batchSize));
      const columns: Record<string, ColumnArray> = {};
      for (const c of this.byName.values()) columns[c.name] = gather(c, indices);
      yield { length: indices.length, columns, indices };
    }
  }
}

/**
 * A stratified split of the examples in `order` into parts of `sizes`: the examples sorted by class
 * (stably, so each class keeps `order`'s order) are dealt to the parts in an evenly spread sequence in
 * which part j comes up sizes[j] times, so every class, a run of that sequence, is divided about in
 * the fractions. Each part then lists its examples in `order`'s order.
 */
function stratified(order: Uint32Array, classOf: ArrayLike<number>, sizes: readonly number[]): Uint32Array[] {
  const n = order.length;
  const byClass = Array.from(order).sort((a, b) => classOf[a] - classOf[b]);
  const partOf = new Uint32Array(classOf.length);
  const dealt = sizes.map(() => 0);
  byClass.forEach((example, i) => {
    // the part furthest behind its share of the first i + 1 examples
    let best = 0;
    let behind = -Infinity;
    sizes.forEach((size, j) => {
      const d = (size * (i + 1)) / n - dealt[j];
      if (dealt[j] < size && d > behind) [best, behind] = [j, d];
    });
    dealt[best]++;
    partOf[example] = best;
  });
  const parts = sizes.map((size) => ({ at: 0, indices: new Uint32Array(size) }));
  for (const example of order) {
    const part = parts[partOf[example]];
    part.indices[part.at++] = example;
  }
  return parts.map((p) => p.indices);
}

/** A column's shape, class names, element names and vocabulary, for a copy of some of its examples. */
export function described(c: Column): { shape: readonly number[]; classes?: readonly string[]; names?: readonly string[]; vocabulary?: readonly string[] } {
  return { shape: c.shape, ...(c.classes ? { classes: c.classes } : {}), ...(c.names ? { names: c.names } : {}), ...(c.vocabulary ? { vocabulary: c.vocabulary } : {}) };
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InputError(`the batch size must be a positive integer, got ${batchSize}`);
}

function identity(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/** The column's examples at `indices`, copied into a fresh array. */
function gather(c: Column, indices: ArrayLike<number>): ColumnArray {
  const k = c.exampleSize;
  const out = allocate(c.dtype, indices.length * k);
  const src = c.data;
  if (k === 1) {
    for (let i = 0; i < indices.length; i++) out[i] = src[indices[i]];
  } else if (k > 0) {
    for (let i = 0; i < indices.length; i++) {
      const from = indices[i] * k;
      out.set(src.subarray(from, from + k), i * k);
    }
  }
  return out;
}

brand(Dataset, 'Dataset');
