// CIFAR-10 in its binary distribution's record format (1 label byte, then 3 planes of 32x32 bytes) as a Dataset: `image` f32 [3, 32, 32], `label` i32; browser-safe.
import { InputError } from './errors.ts';
import { Dataset } from './data.ts';

/** Label order of the distribution (batches.meta.txt). */
export const CIFAR10_CLASSES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export const CIFAR10_SIDE = 32;
/** Bytes of one record: the label, then the red, green and blue planes, row-major. */
export const CIFAR10_RECORD = 1 + 3 * CIFAR10_SIDE * CIFAR10_SIDE;

/** The training files of the binary distribution (`cifar-10-batches-bin/`), and its test file. */
export const CIFAR10_TRAIN_FILES: readonly string[] = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILES: readonly string[] = ['test_batch.bin'];

/**
 * The dataset from the bytes of one or more batch files, records in file order. Pixels become
 * f32 in [0, 1], channels first (NCHW, as the planes are stored). `names` name the files in messages.
 */
export function cifar10FromBatches(files: readonly Uint8Array[], names: readonly string[] = []): Dataset {
  let total = 0;
  files.forEach((bytes, f) => {
    if (bytes.length === 0 || bytes.length % CIFAR10_RECORD !== 0) {
      throw new InputError(`${names[f] ?? `CIFAR-10 file ${f}`}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD}-byte records; is it a file of the binary version (cifar-10-binary.tar.gz)?`);
    }
    total += bytes.length / CIFAR10_RECORD;
  });
  const pixels = CIFAR10_RECORD - 1;
  const image = new Float32Array(total * pixels);
  const label = new Int32Array(total);
  let n = 0;
  files.forEach((bytes, f) => {
    for (let at = 0; at < bytes.length; at += CIFAR10_RECORD, n++) {
      const cls = bytes[at];
      if (cls >= CIFAR10_CLASSES.length) throw new InputError(`${names[f] ?? `CIFAR-10 file ${f}`}: record ${at / CIFAR10_RECORD} has label ${cls}, not 0-9`);
      label[n] = cls;
      const out = n * pixels;
      for (let i = 0; i < pixels; i++) image[out + i] = bytes[at + 1 + i] / 255;
    }
  });
  return new Dataset({ image: { data: image, shape: [3, CIFAR10_SIDE, CIFAR10_SIDE] }, label: { data: label, shape: [], classes: CIFAR10_CLASSES } }, total);
}
