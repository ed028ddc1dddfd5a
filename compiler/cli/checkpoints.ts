// What dlc train keeps on disk: the checkpoint with its numbered copies, the best weights by a monitor, early stopping's best for restore_best, and what a run resumes from.
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { defaultMode, type EarlyStopping, type EarlyStoppingState, type EpochLogs } from '../../runtime/fit.ts';
import type { LoadReport, Model } from '../../runtime/model.ts';
import { WeightsError } from '../../runtime/errors.ts';
import { writeFileAtomic } from '../../runtime/node/checkpoint-file.ts';
import { makeFolders, writeRefusal } from './file-errors.ts';
import { readWeightsFile } from './init-from.ts';
import { decodeSafetensors } from '../../runtime/safetensors.ts';

/** Where and when training state is written, as the train block's `checkpoint` and `early_stopping` say. */
export interface CheckpointPlan {
  /** The full training state: weights, optimizer state, step, epoch, early stopping. */
  readonly path: string;
  /** Epochs between saves (the last epoch is always saved). */
  readonly every: number;
  /** Numbered copies kept (`<path>.epoch-<N>.safetensors`). */
  readonly keep?: number;
  /** The checkpoint's monitor: the weights of its best epoch at `path`. */
  readonly best?: { readonly monitor: string; readonly mode: 'min' | 'max'; readonly path: string };
  /** restore_best: where early stopping's best weights are, and whether the best file above already holds them. */
  readonly restore?: { readonly path: string; readonly shared: boolean };
}

const sibling = (path: string, suffix: string) => path.replace(/(\.safetensors)?$/, suffix);

/** The plan for a checkpoint at `path` with the block's `every`, `keep`, `monitor` and `mode`, and early stopping's restore_best. */
export function checkpointPlan(
  path: string,
  options: { readonly every?: number; readonly keep?: number; readonly monitor?: string; readonly mode?: 'min' | 'max' },
  earlyStopping: EarlyStopping | undefined,
): CheckpointPlan {
  const best = options.monitor === undefined ? undefined : { monitor: options.monitor, mode: options.mode ?? defaultMode(options.monitor), path: sibling(path, '.best.safetensors') };
  let restore: CheckpointPlan['restore'];
  if (earlyStopping?.restoreBest) {
    // the best file holds early stopping's best too when the checkpoint monitors the same thing, judged the same way
    const shared = best !== undefined && best.monitor === earlyStopping.monitor && (earlyStopping.minDelta ?? 0) === 0 && best.mode === (earlyStopping.mode ?? defaultMode(best.monitor));
    restore = { path: shared ? best.path : best === undefined ? sibling(path, '.best.safetensors') : sibling(path, `.best-${earlyStopping.monitor}.safetensors`), shared };
  }
  return { path, every: options.every ?? 1, ...(options.keep !== undefined ? { keep: options.keep } : {}), ...(best ? { best } : {}), ...(restore ? { restore } : {}) };
}

/** The numbered copies `keep` leaves beside a checkpoint, lowest epoch first. */
function numberedCopies(path: string): string[] {
  const dir = dirname(path);
  const stem = basename(sibling(path, '.epoch-'));
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((name) => {
      const epoch = name.startsWith(stem) && name.endsWith('.safetensors') ? Number(name.slice(stem.length, -'.safetensors'.length)) : NaN;
      return Number.isInteger(epoch) ? [{ path: join(dir, name), epoch }] : [];
    })
    .sort((a, b) => a.epoch - b.epoch)
    .map((c) => c.path);
}

/**
 * Before a run that starts over (no --resume) writes where an earlier run's checkpoint is: make sure
 * the folder can take it (not after the first epoch), and move the earlier run's files aside (the
 * checkpoint, its best weights and numbered copies become `*.previous.safetensors`, replacing an older
 * previous run's), so starting over never loses a trained model. Returns what was moved.
 */
export function prepareCheckpointFolder(plan: CheckpointPlan): string[] {
  const dir = dirname(plan.path);
  try {
    makeFolders(dir);
  } catch (e) {
    throw new Error(`cannot write the checkpoint ${plan.path}: ${writeRefusal(e)}`);
  }
  const moved: string[] = [];
  for (const { from, to } of earlierRun(plan)) {
    renameSync(from, to);
    moved.push(to);
  }
  return moved;
}

/** The files of an earlier run that prepareCheckpointFolder moves aside, and where to. */
export function earlierRun(plan: CheckpointPlan): { from: string; to: string }[] {
  const earlier = [plan.path, plan.best?.path, plan.restore?.path, ...numberedCopies(plan.path)].filter((p): p is string => p !== undefined && existsSync(p));
  return [...new Set(earlier)].map((from) => ({ from, to: sibling(from, '.previous.safetensors') }));
}

/** Where a resumed run starts: the epochs done, early stopping's state, the monitor's best value. */
export interface ResumeState {
  readonly epoch: number;
  readonly earlyStopping?: EarlyStoppingState;
  readonly best?: number;
}

/** The parameter an optimizer state tensor belongs to (`opt.train.fc1.w.m` → `fc1.w`), if any. */
function paramOfState(path: string, params: ReadonlySet<string>): string | undefined {
  const m = /^opt\.[^.]+\.(.+)\.[^.]+$/.exec(path);
  return m && params.has(m[1]) ? m[1] : undefined;
}

const listed = (names: readonly string[], most = 6) => `${names.slice(0, most).map((n) => `\`${n}\``).join(', ')}${names.length > most ? ` and ${names.length - most} more` : ''}`;

/**
 * A checkpoint loaded whole into `model` (its metadata returned). A file that cannot be one says why
 * (a folder, not a safetensors file, another model's checkpoint). One whose optimizer state differs
 * only for parameters frozen since (or no longer frozen) loads, with a line for each to `notes` when
 * given (--resume). One made for other shapes says so in the command line's terms: the same --args
 * (the API's skipMismatched is no flag).
 */
export async function loadCheckpoint(model: Model, path: string, notes?: (line: string) => void): Promise<LoadReport> {
  let bytes: Uint8Array;
  try {
    bytes = await readWeightsFile(path);
  } catch (e) {
    throw new Error(`cannot read the checkpoint ${path}: ${(e as Error).message}`);
  }
  const program = model.program;
  const params = new Set(program.params.map((p) => p.path));
  let report: LoadReport;
  try {
    report = await model.loadWeights(bytes);
  } catch (e) {
    if (!(e instanceof WeightsError)) throw e;
    if (e.message.startsWith('cannot read the weights: ')) throw new Error(`${path} is not a checkpoint dlc can read: ${e.message.replace(/^cannot read the weights: (invalid safetensors file: )?/, '')}`);
    const { tensors, metadata } = decodeSafetensors(bytes);
    const of = metadata['dlc.model'];
    if (of !== undefined && of !== program.model) throw new Error(`${path} is a checkpoint of the model ${of}, not ${program.model}; give ${program.model}'s checkpoint with --checkpoint (or train it first)`);
    const declared = new Map([...program.params, ...program.state].map((d) => [d.path, d]));
    const extra = [...tensors.keys()].filter((n) => !declared.has(n));
    const lacking = [...params].filter((p) => !tensors.has(p));
    const reshaped = [...tensors].filter(([n, t]) => {
      const d = declared.get(n);
      return d !== undefined && (d.dtype !== t.dtype || d.shape.length !== t.shape.length || d.shape.some((x, i) => x !== t.shape[i]));
    });
    if (!(extra.length > 0 && lacking.length === 0 && reshaped.length === 0 && extra.every((n) => n.startsWith('opt.')))) {
      const detail = e.message.replace(/ \(pass \{ [^}]* \} to [^)]*\)$/, '');
      throw new Error(`${path} does not fit ${program.model} as this file and its --args make it: ${detail}. Was it trained with other --args, or an earlier version of the file? Give the same --args`);
    }
    // optimizer state for parameters this train block no longer trains (frozen since): dropped
    report = await model.loadWeights(bytes, { partial: true });
    const owners = [...new Set(extra.flatMap((n) => paramOfState(n, params) ?? []))];
    notes?.(`note: ${path} holds optimizer state for ${owners.length > 0 ? listed(owners) : listed(extra)}, which this train block does not train (frozen since it was saved?); that state is dropped`);
  }
  // parameters trained now that were not when the checkpoint was saved: their optimizer state starts at zero
  if (notes) {
    const loaded = new Set(report.loaded);
    const fresh = [...new Set(program.state.filter((s) => s.path.startsWith('opt.') && !loaded.has(s.path)).flatMap((s) => paramOfState(s.path, params) ?? []))];
    if (fresh.length > 0) {
      notes(
        `warning: ${path} has no optimizer state for ${listed(fresh)} (frozen when it was saved?): ${fresh.length === 1 ? 'its state starts' : 'their state starts'} at zero while the step count goes on from step ${report.metadata['dlc.step'] ?? '?'}, so Adam's bias correction makes their first updates differ from a fresh run's (larger or smaller, with the step count). To train them from a clean start, begin a new run from its weights (init_from = "${path}") instead of --resume`,
      );
    }
  }
  return report;
}

/** Loads the checkpoint into `model` and reads where training stood. */
export async function resumeFrom(model: Model, plan: CheckpointPlan, notes: (line: string) => void): Promise<ResumeState> {
  const meta = (await loadCheckpoint(model, plan.path, notes)).metadata;
  const epoch = Number(meta['dlc.epoch'] ?? '0');
  const best = meta['dlc.best'] ? (JSON.parse(meta['dlc.best']) as { monitor?: string; value?: number }) : undefined;
  return {
    epoch: Number.isInteger(epoch) ? epoch : 0,
    ...(meta['dlc.early_stopping'] ? { earlyStopping: JSON.parse(meta['dlc.early_stopping']) as EarlyStoppingState } : {}),
    ...(best !== undefined && best.monitor === plan.best?.monitor && typeof best.value === 'number' ? { best: best.value } : {}),
  };
}

/**
 * Writes training state as the plan says, epoch by epoch: the best weights when the monitor improves
 * (before the checkpoint that records the best value, so a resumed run never replaces them with
 * worse ones), the checkpoint every `every` epochs with a numbered copy when `keep` asks (dropping the
 * oldest, those of an earlier run included), and early stopping's best weights when it improves.
 */
export class CheckpointWriter {
  private best: number;
  private savedEpoch: number;
  private lastState: EarlyStoppingState | undefined;
  private readonly copies: string[];

  constructor(
    private readonly model: Model,
    private readonly plan: CheckpointPlan,
    /** Recorded in every file besides the epoch (the data's sizes and vocabulary). */
    private readonly metadata: Readonly<Record<string, string>>,
    resume: ResumeState,
  ) {
    this.best = resume.best ?? (plan.best?.mode === 'min' ? Infinity : -Infinity);
    this.savedEpoch = resume.epoch;
    this.copies = plan.keep === undefined ? [] : numberedCopies(plan.path);
  }

  async epochEnd(logs: EpochLogs, state: { readonly earlyStopping?: EarlyStoppingState; readonly improved: boolean }): Promise<void> {
    this.lastState = state.earlyStopping;
    const weights = async () => this.model.saveWeights({ trainingState: false, metadata: { ...this.metadata, 'dlc.epoch': String(logs.epoch + 1) } });
    const { best, restore } = this.plan;
    const value = best ? logs[best.monitor] : undefined;
    if (best && value !== undefined && (best.mode === 'min' ? value < this.best : value > this.best)) {
      this.best = value;
      await writeFileAtomic(best.path, await weights());
    }
    if ((logs.epoch + 1) % this.plan.every === 0) await this.save(logs.epoch + 1);
    if (restore && !restore.shared && state.improved) await writeFileAtomic(restore.path, await weights());
  }

  /**
   * The last epoch's state, whatever `every` says, so --resume and evaluate see the end of training;
   * with `restored`, the checkpoint also records that restore_best restored that epoch's weights from
   * that file (beside the checkpoint), which evaluate and predict then run.
   */
  async finish(lastEpoch: number | undefined, restored?: { readonly file: string; readonly epoch: number; readonly monitor: string }): Promise<void> {
    if (lastEpoch !== undefined && (this.savedEpoch !== lastEpoch + 1 || restored)) await this.save(lastEpoch + 1, restored);
  }

  private async save(epoch: number, restored?: { readonly file: string; readonly epoch: number; readonly monitor: string }): Promise<void> {
    const metadata: Record<string, string> = { ...this.metadata, 'dlc.epoch': String(epoch), ...(restored ? { 'dlc.restored_best': JSON.stringify(restored) } : {}) };
    if (this.lastState) metadata['dlc.early_stopping'] = JSON.stringify(this.lastState);
    if (this.plan.best && Number.isFinite(this.best)) metadata['dlc.best'] = JSON.stringify({ monitor: this.plan.best.monitor, value: this.best });
    const bytes = await this.model.saveWeights({ metadata });
    await writeFileAtomic(this.plan.path, bytes);
    this.savedEpoch = epoch;
    if (this.plan.keep === undefined) return;
    const numbered = sibling(this.plan.path, `.epoch-${epoch}.safetensors`);
    await writeFileAtomic(numbered, bytes);
    if (this.copies.includes(numbered)) this.copies.splice(this.copies.indexOf(numbered), 1);
    this.copies.push(numbered);
    while (this.copies.length > this.plan.keep) await unlink(this.copies.shift()!).catch(() => undefined);
  }
}
