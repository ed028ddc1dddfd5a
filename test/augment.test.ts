// Training-batch augmentation: random shifts and flips move pixels as specified, deterministically per (seed, epoch, batch).
import { describe, expect, it } from 'vitest';
import { augmentBatch, imageGeometry, parseAugmentations } from '../runtime/augment.ts';

describe('augmentation', () => {
  it('parses the train block setting and rejects unknown augmentations and arguments', () => {
    expect(parseAugmentations([{ call: 'random_shift', args: { pixels: 2 } }, { call: 'horizontal_flip', args: {} }])).toEqual([
      { kind: 'random_shift', pixels: 2, column: 'image' },
      { kind: 'horizontal_flip', column: 'image' },
    ]);
    expect(parseAugmentations(undefined)).toEqual([]);
    expect(() => parseAugmentations([{ call: 'rotate', args: {} }])).toThrow(/unknown augmentation rotate \(known: random_shift, horizontal_flip\)/);
    expect(() => parseAugmentations([{ call: 'random_shift', args: { px: 2 } }])).toThrow(/no argument px/);
    expect(() => parseAugmentations([{ call: 'random_shift', args: { pixels: -1 } }])).toThrow(/non-negative integer/);
  });

  it('reads image geometry from [C, H, W], [H, W] or a square flat shape', () => {
    expect(imageGeometry([784], 'image')).toEqual({ channels: 1, height: 28, width: 28 });
    expect(imageGeometry([3, 32, 16], 'image')).toEqual({ channels: 3, height: 32, width: 16 });
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
});
