// `dlc weights`: a weights-only file from a training checkpoint (parameters and the model's own state, without the optimizer's state or the random key), to ship with a page.
import { readFile } from 'node:fs/promises';
import { isRunState } from '../../runtime/model.ts';
import { decodeSafetensors, type StoredTensor } from '../../runtime/safetensors.ts';
import { writeCheckpoint } from '../../runtime/node/checkpoint-file.ts';
import { WeightsError } from '../../runtime/errors.ts';
import { isFileSystemError, writeRefusal } from './file-errors.ts';
import { samePath } from './init-from.ts';

/** What `weightsOnly` made: the tensors kept and those of the training run left out. */
export interface WeightsOnly {
  readonly tensors: Map<string, StoredTensor>;
  readonly metadata: Record<string, string>;
  readonly dropped: readonly string[];
}

/** A checkpoint's bytes as a weights file: every tensor but the run's state (`opt.*`, `rng.key`); the metadata kept, its format `weights`. */
export function weightsOnly(bytes: Uint8Array): WeightsOnly {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const kept = new Map<string, StoredTensor>();
  const dropped: string[] = [];
  for (const [path, t] of tensors) {
    if (isRunState(path)) dropped.push(path);
    else kept.set(path, t);
  }
  return { tensors: kept, metadata: { ...metadata, 'dlc.format': 'weights' }, dropped };
}

/** Reads `checkpoint`, writes its weights-only file to `out`; a one-line error (and false) for a file it cannot read or write, or for `out` naming `checkpoint` itself. */
export async function writeWeightsOnly(checkpoint: string, out: string, io: { err(text: string): void }): Promise<boolean> {
  // writing over the file it reads would lose the training run's state (optimizer, step, random key) for good
  if (samePath(checkpoint, out)) {
    io.err(`error: -o ${out} is the checkpoint it reads: the weights-only file would replace it and lose its training state (optimizer state, step, random key) for good; write it elsewhere (-o ${out.replace(/(\.safetensors)?$/, '.weights.safetensors')})`);
    return false;
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(checkpoint);
  } catch (e) {
    io.err(`error: cannot read ${checkpoint}: ${isFileSystemError(e) && (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : writeRefusal(e)}`);
    return false;
  }
  let result: WeightsOnly;
  try {
    result = weightsOnly(bytes);
  } catch (e) {
    io.err(`error: ${checkpoint} is not a checkpoint dlc can read: ${(e as Error).message}`);
    return false;
  }
  try {
    await writeCheckpoint(out, result.tensors, result.metadata);
  } catch (e) {
    if (!(e instanceof WeightsError)) throw e;
    io.err(`error: ${e.message}`);
    return false;
  }
  const size = [...result.tensors.values()].reduce((a, t) => a + t.data.byteLength, 0);
  io.err(`wrote ${out}: ${result.tensors.size} tensors, ${size.toLocaleString('en-US')} bytes of weights${result.dropped.length > 0 ? `; left out the training run's ${result.dropped.length} (optimizer state, random key)` : ' (the file held no training state)'}`);
  return true;
}
