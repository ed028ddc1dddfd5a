// `dlc evaluate`: a saved checkpoint's loss and metrics on a split of the model's data, split exactly as training split it (test by default, else validation), or on all of it.
import { loadCheckpoint } from './checkpoints.ts';
import { evaluateDataset } from '../../runtime/fit.ts';
import type { MetricValue } from '../../runtime/metric-tables.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import type { Dataset } from '../../runtime/data.ts';
import { existsSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { checkBatchSizes, checkClasses, checkDataIndices, checkpointMetadata, dataLikeTraining, noteBatchAveraged, type PreparedData, prepareData, printSetMetrics, recordedSplit, savedCheckpoint, splitLikeTraining, TrainError, type TrainFlags, type TrainIo, withModel } from './train.ts';

export const SPLITS = ['train', 'validation', 'test', 'all'] as const;

export interface EvaluateFlags extends TrainFlags {
  /** Which split: train, validation or test (default: test when training held one out, else validation), or all: every example of the data, in its order, unsplit. */
  readonly split?: string;
}

/**
 * The checkpoint to load and the split to run it on, as `--checkpoint` and `--split` say; shared with dlc predict.
 * `rows` gives each example's position in the data loaded (a CSV's data row, from 0). `needed` are
 * the inputs the command reads: a CSV without the label column is read when they leave it out.
 */
export async function checkpointAndSplit(program: ModelProgram, file: string, flags: EvaluateFlags, io: TrainIo, needed?: ReadonlySet<string>): Promise<{ path: string; data: PreparedData; split: (typeof SPLITS)[number]; set: Dataset; rows: Uint32Array }> {
  if (flags.split !== undefined && !(SPLITS as readonly string[]).includes(flags.split)) throw new TrainError(`--split takes ${SPLITS.join(', ')}, not \`${flags.split}\``);
  const saved = savedCheckpoint(program, file, flags);
  // the split the checkpoint was trained on: its --seed, --limit and --data unless given, and its classes
  const metadata = checkpointMetadata(saved);
  const whole = flags.split === 'all';
  // a whole file is not split: only the data training used (its --data, read as it was) carries over
  const chosen = whole ? dataLikeTraining(flags, recordedSplit(metadata)) : splitLikeTraining(flags, metadata, io);
  const data = await prepareData(program, file, chosen, io, { recorded: metadata, whole, ...(needed ? { needed } : {}) });
  checkClasses(program, data.train, metadata, saved);
  checkDataIndices(program, data);
  const split = (flags.split ?? (data.test && data.test.length > 0 ? 'test' : 'validation')) as (typeof SPLITS)[number];
  const set = data[split];
  if (!set || set.length === 0) throw new TrainError(whole ? `the data of ${program.model} has no examples` : `the ${split} split of ${program.model}'s data is empty (the train block's split gives it no examples)`);
  // a last batch the model's conditions on B refuse: said now, naming the split, not by the runtime mid-way
  checkBatchSizes(program, [{ split, data: set }], data.sizes, data.batchSize, { flag: flags.batch !== undefined, untouched: 'nothing was run' });
  return { path: restoredBest(saved, metadata, flags, io), data, split, set, rows: data.rows?.[split] ?? Uint32Array.from({ length: set.length }, (_, i) => i) };
}

/**
 * The weights to run: those early stopping's `restore_best` restored when training ended (the weights
 * of its test metrics), unless --checkpoint names a file; the checkpoint itself stays the last epoch's,
 * for --resume. Says which it takes.
 */
function restoredBest(path: string, metadata: Readonly<Record<string, string>>, flags: EvaluateFlags, io: TrainIo): string {
  let restored: { file: string; epoch: number; monitor: string } | null;
  try {
    restored = JSON.parse(metadata['dlc.restored_best'] ?? 'null') as typeof restored;
  } catch {
    restored = null;
  }
  if (!restored) return path;
  const best = resolvePath(dirname(path), restored.file);
  if (flags.checkpoint !== undefined) {
    io.err(`note: early stopping restored epoch ${restored.epoch} (best ${restored.monitor}) when this run ended; its weights are in ${best}, and this runs ${path} as --checkpoint says`);
    return path;
  }
  if (!existsSync(best)) {
    io.err(`warning: early stopping restored epoch ${restored.epoch} (best ${restored.monitor}) when training ended, but its weights, ${best}, are missing: this runs the last epoch's, ${path}`);
    return path;
  }
  io.err(`note: using the weights of epoch ${restored.epoch} that early stopping restored (best ${restored.monitor}; the numbers dlc train reported), ${best}; the last epoch's are in ${path} (--checkpoint ${path})`);
  return best;
}

/** Loads the checkpoint into `program`'s model and evaluates it on the chosen split; returns the metrics it printed. */
export async function evaluateProgram(program: ModelProgram, file: string, flags: EvaluateFlags, io: TrainIo): Promise<Record<string, MetricValue>> {
  const { path, data, split, set } = await checkpointAndSplit(program, file, flags, io);
  return withModel(program, { seed: data.seed, batchSize: data.batchSize, sizes: data.sizes }, async (model) => {
    const report = await loadCheckpoint(model, path, io.err);
    const epoch = report.metadata['dlc.epoch'];
    io.err(`evaluating ${path}${epoch ? ` (after epoch ${epoch})` : ''} on ${split === 'all' ? `all ${set.length} examples of the data, in order,` : `${set.length} ${split} examples`} on ${model.adapterInfo}`);
    const metrics = await evaluateDataset(model, set, data.batchSize);
    printSetMetrics(split, metrics, program, set, io);
    noteBatchAveraged(program, set.length, data.batchSize, io);
    return metrics;
  });
}
