// The optimization pipeline: simplify, broadcast sinking, unit-axis reshapes hoisted above elementwise chains, label gathers as selects, one-hot rows as comparisons, sorted scatters, batched matmul sums, padded blocks joined, concats of unit-axis reshapes as reshapes of concats, stacked shared-weight matmuls, fold, cse and dce, repeated until the graph stops changing; then batched reduction sums, and again.
import type { Graph } from '../ir/types.ts';
import { sinkBroadcasts } from './broadcasts.ts';
import { hoistReshapes } from './hoist-reshapes.ts';
import { selectLabels } from './gathers.ts';
import { oneHotCompares } from './one-hot.ts';
import { sortScatters } from './scatters.ts';
import { batchMatmulSums } from './matmul-sums.ts';
import { batchReduceSums } from './reduce-sums.ts';
import { joinPaddedSums } from './pad-sums.ts';
import { concatReshapes } from './concat-reshapes.ts';
import { stackSharedMatmuls } from './stack-matmuls.ts';
import { cse } from './cse.ts';
import { dce, dceKeeping } from './dce.ts';
import { fold } from './fold.ts';
import { simplify } from './simplify.ts';

export { batchMatmulSums, batchReduceSums, concatReshapes, cse, dce, dceKeeping, fold, hoistReshapes, joinPaddedSums, oneHotCompares, selectLabels, simplify, sinkBroadcasts, sortScatters, stackSharedMatmuls };

export type Pass = (g: Graph) => Graph;

/** The passes in the order `optimize` runs them; each returns its argument itself when it changes nothing. */
export const PASSES: readonly { readonly name: string; readonly run: Pass }[] = [
  { name: 'simplify', run: simplify },
  { name: 'sink-broadcasts', run: sinkBroadcasts },
  { name: 'hoist-reshapes', run: hoistReshapes },
  { name: 'select-labels', run: selectLabels },
  { name: 'one-hot-compares', run: oneHotCompares },
  { name: 'sort-scatters', run: sortScatters },
  { name: 'batch-matmul-sums', run: batchMatmulSums },
  { name: 'join-padded-sums', run: joinPaddedSums },
  { name: 'concat-reshapes', run: concatReshapes },
  { name: 'stack-shared-matmuls', run: stackSharedMatmuls },
  { name: 'fold', run: fold },
  { name: 'cse', run: cse },
  { name: 'dce', run: dce },
];

/**
 * Passes that choose between rewrites by how the rest of the graph reads a value, so they run only on a
 * graph the passes above have settled (autodiff's first draft still holds pads and duplicate concats
 * that simplify and cse remove); the rounds go on if they change it.
 */
export const LATE_PASSES: readonly { readonly name: string; readonly run: Pass }[] = [{ name: 'batch-reduce-sums', run: batchReduceSums }];

/** A bound on rounds, in case two passes ever undo each other; real graphs settle in two to four. */
export const MAX_ROUNDS = 10;

/**
 * Runs the pipeline to a fixed point. Value ids are kept (a pass reuses the first of equal values and
 * never renumbers), but a value the graph does not expose may disappear: to read one afterwards
 * (a gradient), put it in the graph's outputs first.
 */
export function optimize(g: Graph): Graph {
  let cur = g;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const before = cur;
    for (const p of PASSES) cur = p.run(cur);
    if (cur !== before) continue;
    for (const p of LATE_PASSES) cur = p.run(cur);
    if (cur === before) break;
  }
  return cur;
}
