// The batch sizes training and evaluation run at for each split (its full batches and its last, partial one), and the nearest batch size that a model's conditions on B accept for all of them; shared by `dlc check` and `dlc train`.

/** One split of the data: its name (`training`, `validation`, `test`) and its number of examples where known. */
export interface SplitSize {
  readonly split: string;
  readonly examples?: number;
}

/** A batch size some split runs at: every batch of a split but the last (`last` false), or its last, smaller one. */
export interface BatchRun {
  readonly split: string;
  readonly examples?: number;
  readonly size: number;
  readonly last: boolean;
}

/**
 * The batch sizes that batches of `batch` give over `splits`, as `Dataset.batches` cuts them (no batch is
 * dropped): `batch` itself where a split has that many examples (or its size is unknown), and the
 * remainder where the examples do not divide evenly. An empty split runs nothing.
 */
export function batchRuns(batch: number, splits: readonly SplitSize[]): BatchRun[] {
  const runs: BatchRun[] = [];
  for (const s of splits) {
    const n = s.examples;
    if (n === undefined || n >= batch) runs.push({ split: s.split, ...(n !== undefined ? { examples: n } : {}), size: batch, last: false });
    const rest = n === undefined ? 0 : n % batch;
    if (n !== undefined && rest > 0) runs.push({ split: s.split, examples: n, size: rest, last: true });
  }
  return runs;
}

/**
 * The batch size nearest `batch` (the smaller on a tie, up to twice `batch` or 64) whose every run over
 * `splits` `fits` accepts; undefined when none does.
 */
export function nearestFittingBatch(batch: number, splits: readonly SplitSize[], fits: (size: number) => boolean): number | undefined {
  const limit = Math.max(64, 2 * batch);
  for (let d = 1; d <= limit; d++) {
    for (const b of [batch - d, batch + d]) {
      if (b >= 1 && b <= limit && batchRuns(b, splits).every((r) => fits(r.size))) return b;
    }
  }
  return undefined;
}

/** How a run is described in a message: `batches of 16`, or `the validation split's 15 examples leave a last batch of 15`. */
export function describeRun(run: BatchRun, batch: number): string {
  if (!run.last) return `batches of ${batch}`;
  return run.examples === run.size ? `the ${run.split} split's ${run.examples} example${run.examples === 1 ? '' : 's'} make one batch of ${run.size}` : `the ${run.split} split's ${run.examples} examples leave a last batch of ${run.size}`;
}
