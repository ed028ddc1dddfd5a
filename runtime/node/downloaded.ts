// Node loaders for datasets no npm package ships (CIFAR-10, UCI HAR, Tiny Shakespeare): read from a folder the user downloaded them to, with instructions when they are missing.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { InputError } from '../errors.ts';
import { CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES, cifar10FromBatches } from '../cifar10.ts';
import type { Dataset } from '../data.ts';
import { textWindows } from '../text.ts';
import { UCI_HAR_CHANNELS, uciHarFromText } from '../uci-har.ts';

/** Where each dataset is looked for by default, under `$DLC_DATA` (else `./data`), and where to get it. */
export const DOWNLOADED: Readonly<Record<'cifar10' | 'uci_har' | 'tiny_shakespeare', { readonly folder: string; readonly url: string; readonly unpack: string }>> = {
  cifar10: { folder: 'cifar-10-batches-bin', url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz', unpack: 'tar xzf cifar-10-binary.tar.gz' },
  uci_har: { folder: 'UCI HAR Dataset', url: 'https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip', unpack: 'unzip the archive, then the "UCI HAR Dataset.zip" inside it' },
  tiny_shakespeare: { folder: 'tiny_shakespeare', url: 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt', unpack: 'save it as input.txt' },
};

export type DatasetPart = 'train' | 'test';

/** The data root: `$DLC_DATA`, else `data/` in the working directory. */
export function dataRoot(): string {
  return resolve(process.env.DLC_DATA ?? 'data');
}

/** The folder (or file) a loader reads: `given` resolved against `baseDir`, else the dataset's default under the data root. */
function located(name: keyof typeof DOWNLOADED, given: string | undefined, baseDir: string | undefined): string {
  if (given === undefined) return join(dataRoot(), DOWNLOADED[name].folder);
  return isAbsolute(given) ? given : resolve(baseDir ?? process.cwd(), given);
}

function missing(name: keyof typeof DOWNLOADED, where: string, what: string, argument: string): InputError {
  const d = DOWNLOADED[name];
  const root = dataRoot();
  return new InputError(
    `${name}: ${what} not found in ${where}. No npm package ships this dataset, so dlc reads it from disk: download ${d.url}, ${d.unpack}` +
      ` so that ${join(root, d.folder)} holds it (the data root is $DLC_DATA, else ./data), or pass ${name}(${argument}: "...") in the train block or --data ${name}:<path>`,
  );
}

/** CIFAR-10's binary version: the five training batches (`part: "train"`) or the test batch, from `dir` (default `<data root>/cifar-10-batches-bin`). */
export function loadCifar10(options: { dir?: string; part?: DatasetPart; baseDir?: string } = {}): Dataset {
  const dir = located('cifar10', options.dir, options.baseDir);
  const files = options.part === 'test' ? CIFAR10_TEST_FILES : CIFAR10_TRAIN_FILES;
  const paths = files.map((f) => join(dir, f));
  const absent = files.filter((_, k) => !existsSync(paths[k]));
  if (absent.length > 0) throw missing('cifar10', dir, absent.join(', '), 'dir');
  return cifar10FromBatches(paths.map((p) => new Uint8Array(readFileSync(p))), paths);
}

/** UCI HAR's raw inertial signals of one part, from `dir` (default `<data root>/UCI HAR Dataset`): `x` [128, 9], `label`. */
export function loadUciHar(options: { dir?: string; part?: DatasetPart; baseDir?: string } = {}): Dataset {
  const dir = located('uci_har', options.dir, options.baseDir);
  const part = options.part ?? 'train';
  const files = [...UCI_HAR_CHANNELS.map((c) => join(dir, part, 'Inertial Signals', `${c}_${part}.txt`)), join(dir, part, `y_${part}.txt`)];
  const absent = files.filter((f) => !existsSync(f));
  if (absent.length > 0) throw missing('uci_har', dir, absent.length === files.length ? `the ${part} part (${part}/Inertial Signals/*_${part}.txt, ${part}/y_${part}.txt)` : absent.join(', '), 'dir');
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  return uciHarFromText(texts.slice(0, -1), texts[texts.length - 1], files);
}

/** A text file as windows of `context` characters (text.ts textWindows); Tiny Shakespeare's default file is `<data root>/tiny_shakespeare/input.txt`. */
export function loadTextWindows(options: { path?: string; context: number; baseDir?: string; name?: 'tiny_shakespeare' }): Dataset {
  const path = options.path === undefined ? join(located('tiny_shakespeare', undefined, undefined), 'input.txt') : located('tiny_shakespeare', options.path, options.baseDir);
  if (!existsSync(path)) {
    if (options.name === 'tiny_shakespeare') throw missing('tiny_shakespeare', path, 'the text', 'path');
    throw new InputError(`text: no file at ${path}`);
  }
  return textWindows(readFileSync(path, 'utf8'), options.context);
}
