// Data augmentation for training batches: seeded random shifts and horizontal flips of image columns, on the host.
import type { ColumnArray } from './data.ts';
import { deriveSeed, Rng } from './data.ts';
import type { SettingValue } from './program.ts';
import { AUGMENTATIONS } from './catalog.ts';

export type Augmentation =
  | { readonly kind: 'random_shift'; readonly pixels: number; readonly column: string }
  | { readonly kind: 'horizontal_flip'; readonly column: string };

export { AUGMENTATIONS };

/** The train block's `augment = [random_shift(pixels: 2), horizontal_flip()]` as augmentations; throws on anything else. */
export function parseAugmentations(setting: SettingValue | undefined): Augmentation[] {
  if (setting === undefined || setting === null) return [];
  const items = Array.isArray(setting) ? setting : [setting];
  return items.map((item: SettingValue): Augmentation => {
    const call = typeof item === 'string' ? { call: item, args: {} } : item !== null && typeof item === 'object' && !Array.isArray(item) && 'call' in item ? item : undefined;
    if (!call) throw new Error(`augment: expected calls such as random_shift(pixels: 2), found ${JSON.stringify(item)}`);
    const known = AUGMENTATIONS[call.call as Augmentation['kind']];
    if (!Object.hasOwn(AUGMENTATIONS, call.call) || !known) throw new Error(`augment: unknown augmentation ${call.call} (known: ${Object.keys(AUGMENTATIONS).join(', ')})`);
    for (const key of Object.keys(call.args)) if (!known.includes(key)) throw new Error(`augment: ${call.call}() has no argument ${key} (arguments: ${known.join(', ')})`);
    const column = call.args.column ?? 'image';
    if (typeof column !== 'string') throw new Error(`augment: ${call.call}(column: ...) must be a string`);
    if (call.call === 'random_shift') {
      const pixels = call.args.pixels ?? 2;
      if (typeof pixels !== 'number' || !Number.isInteger(pixels) || pixels < 0) throw new Error('augment: random_shift(pixels: ...) must be a non-negative integer');
      return { kind: 'random_shift', pixels, column };
    }
    return { kind: 'horizontal_flip', column };
  });
}

/** Channels, height and width of one example of an image column: [C, H, W], [H, W], or a square [H * W]. */
export function imageGeometry(shape: readonly number[], column: string): { channels: number; height: number; width: number } {
  if (shape.length === 3) return { channels: shape[0], height: shape[1], width: shape[2] };
  if (shape.length === 2) return { channels: 1, height: shape[0], width: shape[1] };
  const side = Math.round(Math.sqrt(shape[0] ?? 0));
  if (shape.length === 1 && side * side === shape[0]) return { channels: 1, height: side, width: side };
  throw new Error(`augment: column ${column} of shape [${shape.join(', ')}] is not an image ([C, H, W], [H, W] or a square [H * W])`);
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
    if (!data || !shape) throw new Error(`augment: the data has no column ${a.column}`);
    const { channels, height, width } = imageGeometry(shape, a.column);
    const plane = height * width;
    const size = channels * plane;
    const examples = data.length / size;
    const scratch = new Float64Array(size);
    for (let e = 0; e < examples; e++) {
      const base = e * size;
      if (a.kind === 'horizontal_flip') {
        if (rng.nextFloat() < 0.5) continue;
        for (let c = 0; c < channels; c++) {
          for (let y = 0; y < height; y++) {
            const row = base + c * plane + y * width;
            for (let x = 0; x < width >> 1; x++) {
              const t = data[row + x];
              data[row + x] = data[row + width - 1 - x];
              data[row + width - 1 - x] = t;
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
            data[base + c * plane + y * width + x] = sy >= 0 && sy < height && sx >= 0 && sx < width ? scratch[c * plane + sy * width + sx] : 0;
          }
        }
      }
    }
  }
}
