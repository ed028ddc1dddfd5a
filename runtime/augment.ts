// Data augmentation for training batches: seeded random shifts and horizontal flips of image columns, on the host.
import type { ColumnArray } from './data.ts';
import { deriveSeed, Rng } from './data.ts';
import type { SettingValue } from './program.ts';
import { AUGMENTATIONS } from './catalog.ts';
import { InputError } from './errors.ts';

export type Augmentation =
  | { readonly kind: 'random_shift'; readonly pixels: number; readonly column: string; readonly layout?: ImageLayout }
  | { readonly kind: 'horizontal_flip'; readonly column: string; readonly layout?: ImageLayout };

/**
 * Where a 3-d image column keeps its channels: first (`nchw`: [C, H, W] per example) or last (`nhwc`:
 * [H, W, C], as `mnist(layout: "nhwc")` gives). Left out, a shape [H, W, C] with C of 4 or less and H over 4
 * is read as channels-last, and any other 3-d shape as [C, H, W].
 */
export type ImageLayout = 'nchw' | 'nhwc';

export const IMAGE_LAYOUTS: readonly ImageLayout[] = ['nchw', 'nhwc'];

export { AUGMENTATIONS };

/** The train block's `augment = [random_shift(pixels: 2), horizontal_flip()]` as augmentations; anything else is an InputError. */
export function parseAugmentations(setting: SettingValue | undefined): Augmentation[] {
  if (setting === undefined || setting === null) return [];
  const items = Array.isArray(setting) ? setting : [setting];
  return items.map((item: SettingValue): Augmentation => {
    const call = typeof item === 'string' ? { call: item, args: {} } : item !== null && typeof item === 'object' && !Array.isArray(item) && 'call' in item ? item : undefined;
    if (!call) throw new InputError(`augment: expected calls such as random_shift(pixels: 2), found ${JSON.stringify(item)}`);
    const known = AUGMENTATIONS[call.call as Augmentation['kind']];
    if (!Object.hasOwn(AUGMENTATIONS, call.call) || !known) throw new InputError(`augment: unknown augmentation ${call.call} (known: ${Object.keys(AUGMENTATIONS).join(', ')})`);
    for (const key of Object.keys(call.args)) if (!known.includes(key)) throw new InputError(`augment: ${call.call}() has no argument ${key} (arguments: ${known.join(', ')})`);
    const column = call.args.column ?? 'image';
    if (typeof column !== 'string') throw new InputError(`augment: ${call.call}(column: ...) must be a string`);
    const layout = call.args.layout;
    if (layout !== undefined && !IMAGE_LAYOUTS.includes(layout as ImageLayout)) throw new InputError(`augment: ${call.call}(layout: ...) is ${IMAGE_LAYOUTS.map((l) => `"${l}"`).join(' or ')}, not ${JSON.stringify(layout)}`);
    const laid = layout !== undefined ? { layout: layout as ImageLayout } : {};
    if (call.call === 'random_shift') {
      const pixels = call.args.pixels ?? 2;
      if (typeof pixels !== 'number' || !Number.isInteger(pixels) || pixels < 0) throw new InputError(`augment: random_shift(pixels: ...) must be a whole number of 0 or more, not ${JSON.stringify(pixels)}`);
      return { kind: 'random_shift', pixels, column, ...laid };
    }
    return { kind: 'horizontal_flip', column, ...laid };
  });
}

/** One example of an image column: its sizes and the strides of a channel, a row and a pixel within the example. */
export interface ImageGeometry {
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly channelsLast: boolean;
}

/**
 * Channels, height and width of one example of an image column: [C, H, W] or [H, W, C] (see ImageLayout),
 * [H, W], or a square [H * W]; a layout given for a shape that is not 3-d, or a shape that is no image, is an InputError.
 */
export function imageGeometry(shape: readonly number[], column: string, layout?: ImageLayout): ImageGeometry {
  if (shape.length === 3) {
    const last = layout === 'nhwc' || (layout === undefined && shape[2] <= 4 && shape[0] > 4);
    return last ? { channels: shape[2], height: shape[0], width: shape[1], channelsLast: true } : { channels: shape[0], height: shape[1], width: shape[2], channelsLast: false };
  }
  if (layout === 'nhwc') throw new InputError(`augment: column ${column} of shape [${shape.join(', ')}] has no channel axis, so layout: "nhwc" does not apply (a channels-last image is [H, W, C])`);
  if (shape.length === 2) return { channels: 1, height: shape[0], width: shape[1], channelsLast: false };
  const side = Math.round(Math.sqrt(shape[0] ?? 0));
  if (shape.length === 1 && side * side === shape[0]) return { channels: 1, height: side, width: side, channelsLast: false };
  throw new InputError(`augment: column ${column} of shape [${shape.join(', ')}] is not an image ([C, H, W], [H, W, C], [H, W] or a square [H * W]); name the image column with column: "..."`);
}

/**
 * Applies the augmentations to a batch in place. The random draws depend only on `seed`, the epoch
 * and the batch index, so a resumed run augments exactly as an uninterrupted one.
 */
export function augmentBatch(
  columns: Readonly<Record<string, ColumnArray>>,
  shapes: Readonly<Record<string, readonly number[]>>,
  augmentations: readonly Augmentation[],
  at: { readonly seed: number; readonly epoch: number; readonly batch: number },
): void {
  if (augmentations.length === 0) return;
  const rng = new Rng(deriveSeed(deriveSeed(at.seed ^ 0x5eed, at.epoch), at.batch));
  for (const a of augmentations) {
    const data = columns[a.column];
    const shape = shapes[a.column];
    if (!data || !shape) throw new InputError(`augment: the data has no column ${a.column}; it has ${Object.keys(columns).join(', ')} (name the image column with column: "...")`);
    const { channels, height, width, channelsLast } = imageGeometry(shape, a.column, a.layout);
    // element (c, y, x) of an example is at c * cStride + y * yStride + x * xStride
    const cStride = channelsLast ? 1 : height * width;
    const xStride = channelsLast ? channels : 1;
    const yStride = width * xStride;
    const size = channels * height * width;
    const examples = data.length / size;
    const scratch = new Float64Array(size);
    for (let e = 0; e < examples; e++) {
      const base = e * size;
      if (a.kind === 'horizontal_flip') {
        if (rng.nextFloat() < 0.5) continue;
        for (let c = 0; c < channels; c++) {
          for (let y = 0; y < height; y++) {
            const row = base + c * cStride + y * yStride;
            for (let x = 0; x < width >> 1; x++) {
              const left = row + x * xStride;
              const right = row + (width - 1 - x) * xStride;
              const t = data[left];
              data[left] = data[right];
              data[right] = t;
            }
          }
        }
        continue;
      }
      const dx = rng.nextInt(2 * a.pixels + 1) - a.pixels;
      const dy = rng.nextInt(2 * a.pixels + 1) - a.pixels;
      if (dx === 0 && dy === 0) continue;
      for (let i = 0; i < size; i++) scratch[i] = data[base + i];
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < height; y++) {
          const sy = y - dy;
          for (let x = 0; x < width; x++) {
            const sx = x - dx;
            data[base + c * cStride + y * yStride + x * xStride] = sy >= 0 && sy < height && sx >= 0 && sx < width ? scratch[c * cStride + sy * yStride + sx * xStride] : 0;
          }
        }
      }
    }
  }
}
