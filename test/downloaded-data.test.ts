// Datasets no npm package ships (CIFAR-10, UCI HAR, Tiny Shakespeare): their file formats parsed, their folders found, clear instructions when missing, and `dlc train` on the examples that read them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CIFAR10_RECORD, CIFAR10_TRAIN_FILES, cifar10FromBatches } from '../runtime/cifar10.ts';
import { textWindows, vocabularyOf } from '../runtime/text.ts';
import { UCI_HAR_CHANNELS, UCI_HAR_STEPS, uciHarFromText } from '../runtime/uci-har.ts';
import { InputError } from '../runtime/errors.ts';
import { loadCifar10, loadTextWindows, loadUciHar } from '../runtime/node/downloaded.ts';
import { loadDataset } from '../runtime/node/datasets.ts';
import { datasetColumns } from '../runtime/catalog.ts';
import type { SettingValue } from '../runtime/program.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { dlc, repoTempDir } from './cli-helpers.ts';

/** `count` CIFAR-10 records: record r has label (r + file) % 10 and pixel i = (r * 7 + i + file) % 256. */
function cifarBytes(count: number, file = 0): Uint8Array {
  const bytes = new Uint8Array(count * CIFAR10_RECORD);
  for (let r = 0; r < count; r++) {
    bytes[r * CIFAR10_RECORD] = (r + file) % 10;
    for (let i = 0; i < CIFAR10_RECORD - 1; i++) bytes[r * CIFAR10_RECORD + 1 + i] = (r * 7 + i + file) % 256;
  }
  return bytes;
}

/** A `cifar-10-batches-bin` folder with `perFile` records in each training batch and the test batch. */
function writeCifar(dir: string, perFile: number): void {
  mkdirSync(dir, { recursive: true });
  CIFAR10_TRAIN_FILES.forEach((f, k) => writeFileSync(join(dir, f), cifarBytes(perFile, k)));
  writeFileSync(join(dir, 'test_batch.bin'), cifarBytes(perFile, 9));
}

/** Reading t of channel c of example i, as UCI HAR writes them (scientific notation). */
const harValue = (i: number, c: number, t: number) => Math.sin(i + 0.1 * t) * (c + 1) * 0.25;

/** A `UCI HAR Dataset` folder with `n` examples in `part`. */
function writeHar(dir: string, part: 'train' | 'test', n: number): void {
  mkdirSync(join(dir, part, 'Inertial Signals'), { recursive: true });
  UCI_HAR_CHANNELS.forEach((ch, c) => {
    const rows = Array.from({ length: n }, (_, i) => '  ' + Array.from({ length: UCI_HAR_STEPS }, (_, t) => harValue(i, c, t).toExponential(7)).join(' '));
    writeFileSync(join(dir, part, 'Inertial Signals', `${ch}_${part}.txt`), rows.join('\n') + '\n');
  });
  writeFileSync(join(dir, part, `y_${part}.txt`), Array.from({ length: n }, (_, i) => String((i % 6) + 1)).join('\n') + '\n');
}

const SONNET = 'Shall I compare thee to a summer\'s day?\nThou art more lovely and more temperate:\nRough winds do shake the darling buds of May,\nAnd summer\'s lease hath all too short a date;\n';

describe('file formats', () => {
  it('CIFAR-10 records: label byte, then the red, green and blue planes as [3, 32, 32] in [0, 1]', () => {
    const d = cifar10FromBatches([cifarBytes(3), cifarBytes(2, 1)]);
    expect(d.length).toBe(5);
    const image = d.column('image');
    expect(image.shape).toEqual([3, 32, 32]);
    expect(Array.from(d.column('label').data)).toEqual([0, 1, 2, 1, 2]);
    // example 4 is record 1 of the second file: pixel i = (7 + i + 1) % 256; green plane starts at 1024
    expect(image.data[4 * 3072 + 1024]).toBeCloseTo(((7 + 1024 + 1) % 256) / 255, 6);
    expect(d.column('label').classes?.[3]).toBe('cat');
    expect(() => cifar10FromBatches([new Uint8Array(CIFAR10_RECORD + 5)], ['x.bin'])).toThrow(/x\.bin: 3078 bytes is not a whole number of 3073-byte records/);
    const bad = cifarBytes(1);
    bad[0] = 12;
    expect(() => cifar10FromBatches([bad])).toThrow(/label 12, not 0-9/);
  });

  it('UCI HAR signals: nine channel files of 128 readings per row interleave as x[t, c]; labels 1-6 become 0-5', () => {
    const n = 4;
    const channels = UCI_HAR_CHANNELS.map((_, c) => Array.from({ length: n }, (_, i) => Array.from({ length: UCI_HAR_STEPS }, (_, t) => harValue(i, c, t).toExponential(7)).join(' ')).join('\n'));
    const d = uciHarFromText(channels, '1\n2\n6\n3\n');
    expect(d.length).toBe(n);
    expect(d.column('x').shape).toEqual([128, 9]);
    expect(Array.from(d.column('label').data)).toEqual([0, 1, 5, 2]);
    const x = d.column('x').data;
    for (const [i, t, c] of [[0, 0, 0], [2, 127, 8], [3, 50, 4]]) expect(x[(i * 128 + t) * 9 + c]).toBeCloseTo(harValue(i, c, t), 6);
    expect(() => uciHarFromText(channels, '1\n2\n7\n3\n', [...UCI_HAR_CHANNELS, 'y.txt'])).toThrow(/y\.txt, line 3: `7` is not an activity 1-6/);
    expect(() => uciHarFromText(channels, '1\n2\n3\n')).toThrow(/has 4 rows but labels has 3 labels/);
    const short = [...channels];
    short[2] = channels[2].replace(/ \S+$/m, '');
    expect(() => uciHarFromText(short, '1\n2\n6\n3\n')).toThrow(/total_acc_z, line 1: 127 readings, not 128/);
  });

  it('text windows overlap by one character, so every character after the first is a target exactly once', () => {
    const context = 9;
    const d = textWindows(SONNET, context);
    const vocab = vocabularyOf(SONNET);
    expect(d.column('tokens').classes).toEqual(vocab);
    expect(vocab).toEqual([...vocab].sort());
    const tokens = d.column('tokens').data;
    expect(d.length).toBe(Math.floor((SONNET.length - 1) / (context - 1)));
    let targets = '';
    for (let r = 0; r < d.length; r++) {
      const row = Array.from(tokens.subarray(r * context, (r + 1) * context), (k) => vocab[k]).join('');
      expect(row).toBe(SONNET.slice(r * (context - 1), r * (context - 1) + context));
      targets += row.slice(1);
    }
    expect(targets).toBe(SONNET.slice(1, 1 + d.length * (context - 1)));
    expect(() => textWindows('abc', 4)).toThrow(/fewer than one window/);
    expect(() => textWindows(SONNET, 1)).toThrow(/at least 2/);
  });
});

describe('loading from a download folder', () => {
  const saved = process.env.DLC_DATA;
  afterEach(() => {
    if (saved === undefined) delete process.env.DLC_DATA;
    else process.env.DLC_DATA = saved;
  });

  it('finds each dataset under $DLC_DATA, or where dir/path says, through the data setting', async () => {
    const root = repoTempDir('data');
    writeCifar(join(root, 'cifar-10-batches-bin'), 2);
    writeHar(join(root, 'UCI HAR Dataset'), 'train', 3);
    writeHar(join(root, 'UCI HAR Dataset'), 'test', 2);
    mkdirSync(join(root, 'tiny_shakespeare'));
    writeFileSync(join(root, 'tiny_shakespeare', 'input.txt'), SONNET);
    process.env.DLC_DATA = root;
    expect((await loadDataset({ call: 'cifar10', args: {} })).length).toBe(10);
    expect((await loadDataset({ call: 'cifar10', args: { part: 'test' } })).length).toBe(2);
    expect((await loadDataset({ call: 'uci_har', args: {} })).length).toBe(3);
    expect((await loadDataset({ call: 'uci_har', args: { part: 'test' } })).column('x').shape).toEqual([128, 9]);
    expect((await loadDataset({ call: 'tiny_shakespeare', args: { context: 17 } })).column('tokens').shape).toEqual([17]);
    // explicit locations, relative to the .dl file's folder
    delete process.env.DLC_DATA;
    expect(loadCifar10({ dir: 'cifar-10-batches-bin', baseDir: root }).length).toBe(10);
    expect(loadUciHar({ dir: join(root, 'UCI HAR Dataset'), part: 'test' }).length).toBe(2);
    expect((await loadDataset({ call: 'text', args: { path: 'tiny_shakespeare/input.txt', context: 5 } }, { baseDir: root })).length).toBe(Math.floor((SONNET.length - 1) / 4));
  });

  it('gives exactly the columns the compiler checks models against (runtime/catalog.ts datasetColumns)', async () => {
    const root = repoTempDir('data');
    writeCifar(join(root, 'cifar-10-batches-bin'), 1);
    writeHar(join(root, 'UCI HAR Dataset'), 'train', 1);
    writeFileSync(join(root, 'sonnet.txt'), SONNET);
    process.env.DLC_DATA = root;
    const calls: [string, Record<string, SettingValue>][] = [
      ['mnist', {}], ['mnist', { layout: 'nchw' }], ['mnist', { layout: 'nhwc' }], ['mnist', { layout: 'hw' }], ['iris', {}],
      ['cifar10', {}], ['uci_har', {}], ['text', { path: join(root, 'sonnet.txt'), context: 7 }], ['tiny_shakespeare', { path: join(root, 'sonnet.txt'), context: 5 }],
    ];
    for (const [call, args] of calls) {
      const data = await loadDataset({ call, args });
      const columns = Object.fromEntries(data.columns().map((c) => [c.name, { dtype: c.dtype, shape: c.shape }]));
      const declared = datasetColumns(call, args)!;
      expect(columns, `${call}(${JSON.stringify(args)})`).toEqual(Object.fromEntries(Object.entries(declared).map(([k, c]) => [k, { dtype: c.dtype, shape: c.shape }])));
      // a class count is an upper bound of the labels the data holds
      for (const [name, c] of Object.entries(declared)) {
        if (c.classes !== undefined) expect(Math.max(...data.column(name).data), `${call} ${name}`).toBeLessThan(c.classes);
      }
    }
  });

  it('says where it looked, where to download the files and how to point at them when they are missing', async () => {
    const root = repoTempDir('data');
    process.env.DLC_DATA = root;
    for (const [call, args, found] of [
      ['cifar10', {}, /cifar10: data_batch_1\.bin, .*test_batch|cifar10: data_batch_1\.bin/],
      ['uci_har', {}, /uci_har: the train part/],
      ['tiny_shakespeare', { context: 9 }, /tiny_shakespeare: the text not found/],
    ] as const) {
      const error = await loadDataset({ call, args }).then(
        () => undefined,
        (e: Error) => e.message,
      );
      expect(error, call).toMatch(found);
      expect(error, call).toContain(root);
      expect(error, call).toMatch(/download https:\/\//);
      expect(error, call).toContain(`--data ${call}:<path>`);
    }
    expect(() => loadTextWindows({ path: join(root, 'none.txt'), context: 4 })).toThrow(/text: no file at/);
    expect(() => loadTextWindows({ path: join(root, 'none.txt'), context: 4 })).toThrow(InputError);
    await expect(loadDataset({ call: 'cifar10', args: { part: 'valid' } })).rejects.toThrow(/cifar10\(part: \.\.\.\) must be "train" or "test"/);
    await expect(loadDataset({ call: 'tiny_shakespeare', args: {} })).rejects.toThrow(/needs a context/);
  });
});

describe('dlc train on the examples that read downloaded data', () => {
  const saved = process.env.DLC_DATA;
  afterEach(() => {
    if (saved === undefined) delete process.env.DLC_DATA;
    else process.env.DLC_DATA = saved;
  });

  it('trains the ResNet on CIFAR-10 files, validating on the test batch as its train block says', { timeout: 240_000 }, async () => {
    const root = repoTempDir('data');
    writeCifar(join(root, 'cifar-10-batches-bin'), 4);
    process.env.DLC_DATA = root;
    const ck = join(root, 'resnet.safetensors');
    const r = await dlc('train', 'examples/resnet.dl', '--args', 'depth: 1', '--epochs', '1', '--batch', '8', '--checkpoint', ck, '--no-progress');
    expect(r.status, r.err).toBe(EXIT_OK);
    // all 20 training records train; the 4 test records validate
    expect(r.err).toMatch(/20 train, 4 validation, 0 test examples/);
    expect(r.out).toMatch(/epoch 1\/1 .*val_accuracy/);
    expect(r.out).toMatch(/^validation {2}loss /m);
  });

  it('trains the LSTM classifier on UCI HAR files', { timeout: 240_000 }, async () => {
    const root = repoTempDir('data');
    writeHar(join(root, 'UCI HAR Dataset'), 'train', 12);
    process.env.DLC_DATA = root;
    const r = await dlc('train', 'examples/lstm_classifier.dl', '--args', 'hidden: 4, layers: 1', '--epochs', '1', '--batch', '4', '--checkpoint', join(root, 'har.safetensors'), '--no-progress');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(r.out).toMatch(/epoch 1\/1 .*loss .*val_loss/);
    // a model built for shorter sequences is told so before anything runs
    const short = await dlc('train', 'examples/lstm_classifier.dl', '--args', 'steps: 16, hidden: 4, layers: 1', '--epochs', '1', '--checkpoint', join(root, 'short.safetensors'));
    expect(short.status).toBe(EXIT_USER_ERROR);
    expect(short.err).toContain("the data's `x` is [128, 9] per example, but ActivityClassifier reads f32[B, 16, 9]");
  });

  it('trains the character Transformer on a text file given with --data, keeping the train block\'s context', { timeout: 240_000 }, async () => {
    const root = repoTempDir('data');
    const text = join(root, 'sonnet.txt');
    writeFileSync(text, SONNET.repeat(6));
    const r = await dlc('train', 'examples/char_transformer.dl', '--args', 'vocab: 65, ctx: 256, d: 8, heads: 2, depth: 1', '--data', `tiny_shakespeare:${text}`, '--epochs', '1', '--batch', '2', '--checkpoint', join(root, 'gpt.safetensors'), '--no-progress');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(r.out).toMatch(/epoch 1\/1 .*perplexity/);
    // another text dataset named by the flag keeps the block's context (only the location is the flag's)
    const other = await dlc('train', 'examples/char_transformer.dl', '--args', 'vocab: 65, ctx: 256, d: 8, heads: 2, depth: 1', '--data', `text:${join(root, 'none.txt')}`, '--epochs', '1');
    expect(other.status).toBe(EXIT_USER_ERROR);
    expect(other.err).toMatch(/text: no file at .*none\.txt/);
  });

  it('explains how to get CIFAR-10 when it is not there, without a stack trace', async () => {
    process.env.DLC_DATA = repoTempDir('data');
    const r = await dlc('train', 'examples/resnet.dl', '--args', 'depth: 1', '--epochs', '1');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toMatch(/cannot load the data: cifar10: .* not found in .*cifar-10-batches-bin.*download https:\/\/www\.cs\.toronto\.edu/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
