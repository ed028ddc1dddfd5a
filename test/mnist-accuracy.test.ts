// The README's main job, in full: `dlc train examples/mnist_mlp.dl` reaches at least 97% accuracy on the held-out test split of the shipped digits.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_OK } from '../compiler/cli/main.ts';
import { dlc, repoTempDir } from './cli-helpers.ts';


describe('MNIST MLP', () => {
  // Several minutes on lavapipe: the whole train block (every epoch, augmentation, early stopping).
  it('reaches at least 97% test accuracy on the 10,000 shipped digits (85/5/10 split)', { timeout: 40 * 60_000 }, async () => {
    const dir = repoTempDir('mnist');
    const { status, out, err } = await dlc('train', 'examples/mnist_mlp.dl', '--no-progress', '--checkpoint', join(dir, 'mnist_mlp.safetensors'));
    expect(status, err).toBe(EXIT_OK);
    expect(err).toContain('8500 train, 500 validation, 1000 test examples');
    const test = /^test\s+loss (\S+)\s+accuracy (\S+)\s+precision (\S+)\s+recall (\S+)/m.exec(out);
    expect(test, out).not.toBeNull();
    const [loss, accuracy, precision, recall] = test!.slice(1).map(Number);
    console.log(`MNIST MLP test split: accuracy ${accuracy}, precision ${precision}, recall ${recall}, loss ${loss}`);
    expect(accuracy).toBeGreaterThanOrEqual(0.97);
    expect(precision).toBeGreaterThan(0.95);
    expect(recall).toBeGreaterThan(0.95);
  });
});
