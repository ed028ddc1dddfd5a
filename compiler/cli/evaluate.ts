// `dlc evaluate`: a saved checkpoint's loss and metrics on a split of the model's data, split exactly as training split it (test by default, else validation).
import { loadCheckpoint } from './checkpoints.ts';
import { evaluateDataset } from '../../runtime/fit.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import type { Dataset } from '../../runtime/data.ts';
import { checkBatchSizes, checkClasses, checkDataIndices, checkpointMetadata, logsLine, noteBatchAveraged, type PreparedData, prepareData, savedCheckpoint, splitLikeTraining, TrainError, type TrainFlags, type TrainIo, withModel } from './train.ts';

export const SPLITS = ['train', 'validation', 'test'] as const;

export interface EvaluateFlags extends TrainFlags {
  /** Which split: train, validation or test (default: test when training held one out, else validation). */
  readonly split?: string;
}

/** The checkpoint to load and the split to run it on, as `--checkpoint` and `--split` say; shared with dlc predict. */
export async function checkpointAndSplit(program: ModelProgram, file: string, flags: EvaluateFlags, io: TrainIo): Promise<{ path: string; data: PreparedData; split: (typeof SPLITS)[number]; set: Dataset }> {
  if (flags.split !== undefined && !(SPLITS as readonly string[]).includes(flags.split)) throw new TrainError(`--split takes ${SPLITS.join(', ')}, not \`${flags.split}\``);
  const path = savedCheckpoint(program, file, flags);
  // the split the checkpoint was trained on: its --seed, --limit and --data unless given, and its classes
  const metadata = checkpointMetadata(path);
  const data = await prepareData(program, file, splitLikeTraining(flags, metadata, io), io);
  checkClasses(program, data.train, metadata, path);
  checkDataIndices(program, data);
  const split = (flags.split ?? (data.test && data.test.length > 0 ? 'test' : 'validation')) as (typeof SPLITS)[number];
  const set = data[split];
  if (!set || set.length === 0) throw new TrainError(`the ${split} split of ${program.model}'s data is empty (the train block's split gives it no examples)`);
  // a last batch the model's conditions on B refuse: said now, naming the split, not by the runtime mid-way
  checkBatchSizes(program, [{ split, data: set }], data.sizes, data.batchSize, { flag: flags.batch !== undefined, untouched: 'nothing was run' });
  return { path, data, split, set };
}

/** Loads the checkpoint into `program`'s model and evaluates it on the chosen split; returns the metrics it printed. */
export async function evaluateProgram(program: ModelProgram, file: string, flags: EvaluateFlags, io: TrainIo): Promise<Record<string, number>> {
  const { path, data, split, set } = await checkpointAndSplit(program, file, flags, io);
  return withModel(program, { seed: data.seed, batchSize: data.batchSize, sizes: data.sizes }, async (model) => {
    const report = await loadCheckpoint(model, path, io.err);
    const epoch = report.metadata['dlc.epoch'];
    io.err(`evaluating ${path}${epoch ? ` (after epoch ${epoch})` : ''} on ${set.length} ${split} examples on ${model.adapterInfo}`);
    const metrics = await evaluateDataset(model, set, data.batchSize);
    io.out(`${split}  ${logsLine(metrics)}`);
    noteBatchAveraged(program, set.length, data.batchSize, io);
    return metrics;
  });
}
