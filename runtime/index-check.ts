// Host-side check of the inputs a model uses as indices (labels, tokens): a value outside its range is an input error naming the input, the position and what it indexes, where the GPU would clamp it silently.
import { InputError } from './errors.ts';
import type { InputDecl } from './program.ts';
import { evalShape, evalSize } from './sizes.ts';

/** The coordinates of flat element `i` in `shape` (`[r, c, ...]`). */
function coordinatesOf(i: number, shape: readonly number[]): number[] {
  const at: number[] = [];
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = Math.max(1, shape[d]);
    at.unshift(rest % n);
    rest = Math.floor(rest / n);
  }
  return at;
}

/**
 * Throws an InputError for the first value of an index input outside [0, bound) at these sizes.
 * `options.data` names where the batch comes from ("the training data") and `options.first` is the
 * position of its first example there, for a check of a data set batch by batch before training;
 * `options.example` names the example at a position instead (a CSV's `row 3 of data.csv`).
 */
export function checkIndexInputs(inputs: readonly InputDecl[], batch: Readonly<Record<string, ArrayLike<number>>>, sizes: ReadonlyMap<string, number>, options: { readonly data?: string; readonly first?: number; readonly example?: (position: number) => string } = {}): void {
  for (const decl of inputs) {
    const data = batch[decl.name];
    if (!decl.indices || data === undefined) continue;
    for (const use of decl.indices) {
      let bound: number;
      try {
        bound = evalSize(use.bound, sizes);
      } catch {
        continue; // a size this run does not bind: the run itself reports it
      }
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if ((v >= 0 && v < bound) || v === use.ignore) continue;
        let shape: number[] = [data.length];
        try {
          shape = evalShape(decl.shape, sizes);
        } catch {
          // keep the flat position
        }
        // the user's line first: a standard-library loss's gather is the user's call of it
        const { source } = use;
        const where = source ? ` (${source.caller ? `${source.caller.file}:${source.caller.line}:${source.caller.col}, in ` : ''}${source.file}:${source.line}:${source.col})` : '';
        const at = coordinatesOf(i, shape);
        const example = (options.first ?? 0) + (at[0] ?? 0);
        const position = options.data === undefined ? `at [${at.join(', ')}]` : options.example ? `in ${options.example(example)} (${options.data})` : `in example ${example} (counted from 0) of ${options.data}`;
        throw new InputError(`${options.data === undefined ? 'input' : 'column'} \`${decl.name}\` holds ${v} ${position}, but the model uses it to index ${use.what}, of size ${bound}${where}: every value must be in 0..${bound - 1}${use.ignore !== undefined ? ` or be ${use.ignore} (ignore_index)` : ''}`);
      }
    }
  }
}
