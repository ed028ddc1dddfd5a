// Training-batch augmentation: random shifts and flips move pixels as specified, deterministically per (seed, epoch, batch).
import { describe, expect, it } from 'vitest';
import { augmentBatch, imageGeometry, parseAugmentations, type Augmentation } from '../runtime/augment.ts';
import { InputError } from '../runtime/errors.ts';

describe('augmentation', () => {
  it('parses the train block setting and rejects unknown augmentations and arguments', () => {
    expect(parseAugmentations([{ call: 'random_shift', args: { pixels: 2 } }, { call: 'horizontal_flip', args: {} }])).toEqual([
      { kind: 'random_shift', pixels: 2, column: 'image' },
      { kind: 'horizontal_flip', column: 'image' },
    ]);
    expect(parseAugmentations(undefined)).toEqual([]);
    expect(() => parseAugmentations([{ call: 'rotate', args: {} }])).toThrow(/unknown augmentation rotate \(known: random_shift, horizontal_flip\)/);
    expect(() => parseAugmentations([{ call: 'random_shift', args: { px: 2 } }])).toThrow(/no argument px/);
    expect(() => parseAugmentations([{ call: 'random_shift', args: { pixels: -1 } }])).toThrow(/a whole number of 0 or more/);
    expect(parseAugmentations([{ call: 'horizontal_flip', args: { layout: 'nhwc' } }])).toEqual([{ kind: 'horizontal_flip', column: 'image', layout: 'nhwc' }]);
    expect(() => parseAugmentations([{ call: 'horizontal_flip', args: { layout: 'hwc' } }])).toThrow(/layout: \.\.\.\) is "nchw" or "nhwc", not "hwc"/);
    // every mistake is an InputError, not a plain Error
    for (const bad of [[{ call: 'rotate', args: {} }], [{ call: 'random_shift', args: { pixels: 1.5 } }], [[1]], [{ call: 'random_shift', args: { column: 3 } }]]) {
      expect(() => parseAugmentations(bad as never)).toThrow(InputError);
    }
    expect(() => augmentBatch({ x: new Float32Array(4) }, { x: [4] }, [{ kind: 'horizontal_flip', column: 'image' }], { seed: 0, epoch: 0, batch: 0 })).toThrow(InputError);
    expect(() => augmentBatch({ label: new Float32Array(4) }, { label: [] }, [{ kind: 'horizontal_flip', column: 'label' }], { seed: 0, epoch: 0, batch: 0 })).toThrow(InputError);
  });

  it('reads image geometry from [C, H, W], [H, W] or a square flat shape', () => {
    expect(imageGeometry([784], 'image')).toEqual({ channels: 1, height: 28, width: 28, channelsLast: false });
    expect(imageGeometry([3, 32, 16], 'image')).toEqual({ channels: 3, height: 32, width: 16, channelsLast: false });
    expect(imageGeometry([16, 8, 8], 'image')).toEqual({ channels: 16, height: 8, width: 8, channelsLast: false });
    // channels-last: mnist(layout: "nhwc") gives [28, 28, 1]; cifar-style [32, 32, 3]; a layout overrides the guess
    expect(imageGeometry([28, 28, 1], 'image')).toEqual({ channels: 1, height: 28, width: 28, channelsLast: true });
    expect(imageGeometry([32, 16, 3], 'image')).toEqual({ channels: 3, height: 32, width: 16, channelsLast: true });
    expect(imageGeometry([4, 4, 4], 'image')).toMatchObject({ channelsLast: false });
    expect(imageGeometry([4, 4, 4], 'image', 'nhwc')).toMatchObject({ channelsLast: true });
    expect(imageGeometry([28, 28, 1], 'image', 'nchw')).toEqual({ channels: 28, height: 28, width: 1, channelsLast: false });
    expect(() => imageGeometry([28, 28], 'image', 'nhwc')).toThrow(/has no channel axis/);
    expect(() => imageGeometry([10], 'x')).toThrow(/not an image/);
  });

  it('a shift moves every pixel by one offset per example and fills with zeros; flips mirror rows', () => {
    const side = 5;
    const n = 40;
    const image = Float32Array.from({ length: n * side * side }, (_, i) => (i % (side * side)) + 1);
    const shifted = image.slice();
    augmentBatch({ image: shifted }, { image: [side * side] }, [{ kind: 'random_shift', pixels: 1, column: 'image' }], { seed: 3, epoch: 0, batch: 0 });
    let moved = 0;
    for (let e = 0; e < n; e++) {
      const src = image.subarray(e * 25, e * 25 + 25);
      const dst = shifted.subarray(e * 25, e * 25 + 25);
      // find the offset that explains the result
      const fits = [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => [dx, dy])).filter(([dx, dy]) =>
        Array.from({ length: 25 }, (_, i) => {
          const [y, x] = [Math.floor(i / 5), i % 5];
          const [sy, sx] = [y - dy, x - dx];
          return dst[i] === (sy >= 0 && sy < 5 && sx >= 0 && sx < 5 ? src[sy * 5 + sx] : 0);
        }).every(Boolean),
      );
      expect(fits.length, `example ${e}`).toBeGreaterThanOrEqual(1);
      if (fits[0][0] !== 0 || fits[0][1] !== 0) moved++;
    }
    expect(moved).toBeGreaterThan(n / 2); // 8 of 9 offsets move
    const again = image.slice();
    augmentBatch({ image: again }, { image: [25] }, [{ kind: 'random_shift', pixels: 1, column: 'image' }], { seed: 3, epoch: 0, batch: 0 });
    expect(again).toEqual(shifted);
    const other = image.slice();
    augmentBatch({ image: other }, { image: [25] }, [{ kind: 'random_shift', pixels: 1, column: 'image' }], { seed: 3, epoch: 1, batch: 0 });
    expect(other).not.toEqual(shifted);

    const flipped = Float32Array.from({ length: 2 * 6 }, (_, i) => i);
    augmentBatch({ image: flipped }, { image: [2, 3] }, [{ kind: 'horizontal_flip', column: 'image' }], { seed: 1, epoch: 0, batch: 0 });
    expect([Array.from(flipped.subarray(0, 3)), Array.from(flipped.subarray(3, 6))]).toSatisfy(
      ([a, b]: number[][]) => (a.join() === '0,1,2' && b.join() === '3,4,5') || (a.join() === '2,1,0' && b.join() === '5,4,3'),
    );
  });

  it('channels-last images are augmented as their channels-first transposes are (the same draws, the same pixels moved)', () => {
    const [n, h, w, c] = [30, 7, 6, 3];
    let seed = 7;
    const nhwc = Float32Array.from({ length: n * h * w * c }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) + 1);
    const at = (e: number, ch: number, y: number, x: number) => ((e * h + y) * w + x) * c + ch;
    const toNchw = (d: Float32Array) => {
      const out = new Float32Array(d.length);
      for (let e = 0; e < n; e++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((e * c + ch) * h + y) * w + x] = d[at(e, ch, y, x)];
      return out;
    };
    for (const augmentation of [
      [{ kind: 'random_shift', pixels: 2, column: 'image' }],
      [{ kind: 'horizontal_flip', column: 'image' }],
      [{ kind: 'horizontal_flip', column: 'image' }, { kind: 'random_shift', pixels: 1, column: 'image' }],
    ] as Augmentation[][]) {
      const last = nhwc.slice();
      augmentBatch({ image: last }, { image: [h, w, c] }, augmentation, { seed: 5, epoch: 2, batch: 1 });
      const first = toNchw(nhwc);
      augmentBatch({ image: first }, { image: [c, h, w] }, augmentation, { seed: 5, epoch: 2, batch: 1 });
      expect(toNchw(last)).toEqual(first);
      expect(last).not.toEqual(nhwc);
    }
    // the reporter's case: all-ones 28x28 images keep as many pixels in [28, 28, 1] as in [1, 28, 28] (zeroed before)
    const kept = (shape: number[]) => {
      const ones = new Float32Array(20 * 784).fill(1);
      augmentBatch({ image: ones }, { image: shape }, [{ kind: 'random_shift', pixels: 2, column: 'image' }], { seed: 0, epoch: 0, batch: 0 });
      return Array.from({ length: 20 }, (_, e) => ones.subarray(e * 784, (e + 1) * 784).reduce((a, b) => a + b, 0));
    };
    expect(kept([28, 28, 1])).toEqual(kept([1, 28, 28]));
    expect(Math.min(...kept([28, 28, 1]))).toBeGreaterThanOrEqual(26 * 26);
  });
});
