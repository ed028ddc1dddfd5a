// Two copies of the runtime in one process (tsx loading a generated module as CommonJS, a bundle mixing dlc/runtime and dlc/runtime/js): instanceof of the typed errors and fit()'s Dataset check hold across them.
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { Dataset } from '../runtime/data.ts';
import { BusyError, DlcRuntimeError, InputError, WeightsError } from '../runtime/errors.ts';

/** A second instance of a runtime module: the query string makes the loader evaluate the file again, as a second copy of the package does. */
async function secondCopy<T>(path: string): Promise<T> {
  return (await import(/* @vite-ignore */ `${path}?second-copy`)) as T;
}

const TINY = `use std.nn.{Dense}
use std.loss.{cross_entropy}

model Tiny {
  input x: f32[B, 4]
  input y: i32[B]
  layer fc = Dense(4, 3)
  output logits = fc(x)
  loss = cross_entropy(logits, y)
}

train Tiny {
  optimizer = sgd(lr: 0.1)
  batch = 4
  epochs = 1
}
`;

describe('two copies of the runtime', () => {
  it('an error thrown by one copy is instanceof its class, and DlcRuntimeError, in the other; other classes stay apart', async () => {
    const other = await secondCopy<typeof import('../runtime/errors.ts')>('../runtime/errors.ts');
    expect(other.InputError).not.toBe(InputError);
    const thrown = new other.InputError('from the other copy');
    expect(thrown instanceof InputError).toBe(true);
    expect(thrown instanceof DlcRuntimeError).toBe(true);
    expect(thrown instanceof Error).toBe(true);
    expect(thrown instanceof WeightsError).toBe(false);
    expect(new InputError('here') instanceof other.InputError).toBe(true);
    expect(new BusyError('here') instanceof other.DlcRuntimeError).toBe(true);
    expect(new other.DlcRuntimeError('input', 'base only') instanceof InputError).toBe(false);
    expect(new Error('plain') instanceof DlcRuntimeError).toBe(false);
    expect(({ code: 'input', name: 'InputError' }) instanceof InputError).toBe(false);
    for (const v of [null, undefined, 1, 'InputError'] as unknown[]) expect((v as object) instanceof InputError).toBe(false);
    // a caller's own subclass is checked by its prototype chain
    class MyError extends InputError {}
    expect(new MyError('mine') instanceof MyError).toBe(true);
    expect(new MyError('mine') instanceof other.InputError).toBe(true);
    expect(new InputError('not mine') instanceof MyError).toBe(false);
  });

  it('fit() trains on a Dataset made by the other copy', { timeout: 60_000 }, async () => {
    const other = await secondCopy<typeof import('../runtime/data.ts')>('../runtime/data.ts');
    expect(other.Dataset).not.toBe(Dataset);
    const compiled = compileSource(TINY, 'tiny.dl').programs[0]!;
    const model = await Model.create(compiled, { seed: 1 });
    try {
      const n = 8;
      const train = new other.Dataset({ x: { data: Float32Array.from({ length: n * 4 }, (_, i) => (i % 7) / 7), shape: [4] }, y: { data: Int32Array.from({ length: n }, (_, i) => i % 3), shape: [] } });
      expect(train instanceof Dataset).toBe(true);
      const history = await model.fit({ train });
      expect(history.epochs).toHaveLength(1);
      expect(model.step).toBe(2);
      await expect(model.fit({ train: { length: 8 } as unknown as Dataset })).rejects.toBeInstanceOf(InputError);
    } finally {
      model.dispose();
    }
  });
});
