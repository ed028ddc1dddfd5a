// Finds the elementwise broadcast that pairs every example with every other: [B, 1] against [B] gives [B, B].
import type { TensorType } from '../ir/types.ts';
import { type Dim, dimEquals, isConcrete } from '../shapes/dim.ts';

/** The batch size that an implicit broadcast puts on two axes, and the axes of the result it fills. */
export interface CrossBatch {
  readonly size: Dim;
  /** The result's axis that the lower-rank operand's batch axis lands on, and the higher-rank one's own batch axis. */
  readonly axes: readonly [number, number];
}

/**
 * numpy's broadcasting aligns shapes at the right, so a lower-rank operand's leading batch axis lands
 * where the other has a 1: `pred [B, 1] - label [B]` is `[B, B]`, every prediction against every label
 * (a mean over it is a number, and a wrong one). Only sizes that lead a model input count as the batch,
 * and only operands of different ranks: `x[:, None] - x[None, :]` asks for the pairs in so many words.
 */
export function crossBatchBroadcast(types: readonly TensorType[], batch: readonly Dim[]): CrossBatch | undefined {
  const isBatch = (d: Dim) => !isConcrete(d) && batch.some((b) => dimEquals(b, d));
  for (const low of types) {
    for (const high of types) {
      const offset = high.shape.length - low.shape.length;
      if (offset <= 0) continue;
      for (let i = 0; i < low.shape.length; i++) {
        const size = low.shape[i];
        const j = i + offset;
        if (!isBatch(size) || high.shape[j] !== 1) continue;
        // the higher-rank operand's own batch axis, where the lower one has 1 or no axis at all
        const k = high.shape.findIndex((d, at) => at !== j && dimEquals(d, size) && (at < offset || low.shape[at - offset] === 1));
        if (k >= 0) return { size, axes: [j, k] };
      }
    }
  }
  return undefined;
}
