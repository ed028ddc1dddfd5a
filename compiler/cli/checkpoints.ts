// What dlc train keeps on disk: the checkpoint with its numbered copies, the best weights by a monitor, early stopping's best for restore_best, and what a run resumes from.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { monitorMode, type EarlyStopping, type EarlyStoppingState, type EpochLogs } from '../../runtime/fit.ts';
import type { LoadReport, Model } from '../../runtime/model.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import { WeightsError } from '../../runtime/errors.ts';
import { processAlive, temporaryFileOwner, temporaryPathFor, writeFileAtomic } from '../../runtime/node/checkpoint-file.ts';
import { isFileSystemError, makeFolders, writeRefusal } from './file-errors.ts';
import { readWeightsFile } from './init-from.ts';
import { decodeSafetensors, decodeSafetensorsMetadata } from '../../runtime/safetensors.ts';

/** A checkpoint that cannot be written, read or resumed from: a one-line message that says what to do. */
export class CheckpointError extends Error {}

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
  /** Early stopping's monitor and mode, recorded with its state so a resumed run judges the same quantity the same way. */
  readonly stopping?: { readonly monitor: string; readonly mode: 'min' | 'max' };
}

const sibling = (path: string, suffix: string) => path.replace(/(\.safetensors)?$/, suffix);

/**
 * The plan for a checkpoint at `path` with the block's `every`, `keep`, `monitor` and `mode`, and early
 * stopping's restore_best. A monitor without `mode` is judged as the program's definitions say
 * (`directions`: losses fall, std.metrics' scores rise); one they do not cover is a CheckpointError.
 */
export function checkpointPlan(
  path: string,
  options: { readonly every?: number; readonly keep?: number; readonly monitor?: string; readonly mode?: 'min' | 'max' },
  earlyStopping: EarlyStopping | undefined,
  program: Pick<ModelProgram, 'directions'> = {},
): CheckpointPlan {
  const modeOf = (monitor: string, given: 'min' | 'max' | undefined, what: string): 'min' | 'max' => {
    const mode = given ?? monitorMode(program, monitor);
    if (mode === undefined) throw new CheckpointError(`${what} cannot tell whether ${monitor} is better higher or lower (the model's definition of it does not say): give mode = "min" (an error) or "max" (a score)`);
    return mode;
  };
  const best = options.monitor === undefined ? undefined : { monitor: options.monitor, mode: modeOf(options.monitor, options.mode, "the checkpoint's monitor"), path: sibling(path, '.best.safetensors') };
  const stopping = earlyStopping ? { monitor: earlyStopping.monitor, mode: modeOf(earlyStopping.monitor, earlyStopping.mode, 'early stopping') } : undefined;
  let restore: CheckpointPlan['restore'];
  if (earlyStopping?.restoreBest) {
    // the best file holds early stopping's best too when the checkpoint monitors the same thing, judged the same way
    const shared = best !== undefined && best.monitor === earlyStopping.monitor && (earlyStopping.minDelta ?? 0) === 0 && best.mode === stopping!.mode;
    restore = { path: shared ? best.path : best === undefined ? sibling(path, '.best.safetensors') : sibling(path, `.best-${earlyStopping.monitor}.safetensors`), shared };
  }
  return { path, every: options.every ?? 1, ...(options.keep !== undefined ? { keep: options.keep } : {}), ...(best ? { best } : {}), ...(restore ? { restore } : {}), ...(stopping ? { stopping } : {}) };
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
 * Before a run writes where its checkpoint goes (a new run or --resume): the path must name a file,
 * not a folder; the folder is made, and proven writable by writing and removing a file (not after
 * the first epoch); the checkpoint is locked against a second `dlc train` writing it at once (a
 * `<path>.lock` holding the pid and host; a stale one, whose process is gone, is replaced: see
 * lockCheckpoint); and the
 * temporary files of saves killed midway (their process gone) are removed. Returns the lock's release.
 */
export function openCheckpointFolder(plan: CheckpointPlan, notes: (line: string) => void): () => void {
  const path = plan.path;
  if (/[\\/]$/.test(path) || (existsSync(path) && statSync(path).isDirectory())) {
    throw new CheckpointError(`the checkpoint ${path} is a folder; give a file path such as ${join(path, 'model.safetensors')} (--checkpoint or the checkpoint block's path)`);
  }
  const dir = dirname(path);
  const probe = temporaryPathFor(path);
  try {
    makeFolders(dir);
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (e) {
    if (!isFileSystemError(e)) throw e;
    throw new CheckpointError(`cannot write the checkpoint ${path}: ${writeRefusal(e)}; nothing was trained. Give a checkpoint path where files can be written (--checkpoint)`);
  }
  const release = lockCheckpoint(path, notes);
  try {
    removeStaleTemporaryFiles(plan);
  } catch (e) {
    release();
    throw e;
  }
  return release;
}

/** The lock file that keeps two runs from writing one checkpoint. */
export const lockPathOf = (path: string) => `${path}.lock`;

/**
 * How old a lock file that names no run (empty, or not a lock's JSON: a run killed between creating
 * it and writing it) must be to count as stale; a younger one may be a run writing it right now.
 */
export const UNREADABLE_LOCK_GRACE_MS = 5_000;

/** What a lock file says of the run that holds it. */
type LockHolder =
  | { readonly kind: 'live'; readonly pid: number; readonly host: string; readonly started?: string }
  | { readonly kind: 'dead'; readonly pid: number }
  | { readonly kind: 'unreadable'; readonly empty: boolean; readonly ageMs: number };

/** The lock at `lock` as it is now (undefined: there is none), judged: a run alive (or on another host, which cannot be asked), one that ended, or no run named. */
function lockHolder(lock: string): LockHolder | undefined {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(lock).mtimeMs;
    text = readFileSync(lock, 'utf8');
  } catch (e) {
    // no such file, or a part of the path is a file (no lock can be there: the write check says why)
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    if (!isFileSystemError(e)) throw e;
    throw new CheckpointError(`cannot read the lock of the checkpoint (${lock}): ${writeRefusal(e)}`);
  }
  let held: { pid?: unknown; host?: unknown; started?: unknown } | undefined;
  try {
    held = JSON.parse(text) as typeof held;
  } catch {
    held = undefined;
  }
  const pid = held !== null && typeof held === 'object' && typeof held.pid === 'number' && Number.isSafeInteger(held.pid) && held.pid > 0 ? held.pid : undefined;
  const host = held !== null && typeof held === 'object' && typeof held.host === 'string' ? held.host : undefined;
  if (pid === undefined || host === undefined) return { kind: 'unreadable', empty: text.trim() === '', ageMs: Date.now() - mtimeMs };
  if (host === hostname() && !processAlive(pid)) return { kind: 'dead', pid };
  return { kind: 'live', pid, host, ...(typeof held?.started === 'string' ? { started: held.started } : {}) };
}

const isStale = (h: LockHolder): h is Exclude<LockHolder, { kind: 'live' }> => h.kind === 'dead' || (h.kind === 'unreadable' && h.ageMs >= UNREADABLE_LOCK_GRACE_MS);

/** The refusal for a lock held by a live run, or by a run that may be writing it right now. */
function heldError(path: string, holder: LockHolder): CheckpointError {
  const lock = lockPathOf(path);
  const remedy = `Wait for it to finish, or give this run another --checkpoint (if no such run is going on, delete ${lock})`;
  if (holder.kind === 'unreadable') {
    return new CheckpointError(
      `the lock on the checkpoint ${path} (${lock}) ${holder.empty ? 'is empty' : 'names no run'}: another dlc train is taking it right now, or one was killed as it did (it counts as stale ${UNREADABLE_LOCK_GRACE_MS / 1000} s after it was written). ${remedy}`,
    );
  }
  const who = holder.kind === 'live' ? `another dlc train (pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''}${holder.started !== undefined ? `, started ${holder.started}` : ''})` : 'another dlc train';
  return new CheckpointError(`${who} is writing the checkpoint ${path}: two runs would mix their files. ${remedy}`);
}

/** Refuses at once, without taking it, when a live run holds the checkpoint's lock (so --resume reports the run, not the state it is rewriting). */
export function refuseIfLocked(path: string): void {
  const holder = lockHolder(lockPathOf(path));
  if (holder !== undefined && !isStale(holder)) throw heldError(path, holder);
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Takes `<path>.lock` for this process; refuses while another live run holds it. A stale lock (its
 * run ended, or one that names no run and is older than UNREADABLE_LOCK_GRACE_MS) is replaced, with
 * a note. Replacing is atomic against other runs doing the same: only the run that creates
 * `<path>.lock.takeover` (exclusively) may remove a lock, and it judges the lock again while it holds
 * that, so a run that judged the old lock stale never removes the lock another run took since.
 * Returns the lock's release.
 */
export function lockCheckpoint(path: string, notes: (line: string) => void): () => void {
  const lock = lockPathOf(path);
  const takeover = `${lock}.takeover`;
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString(), token: randomBytes(6).toString('hex') });
  const refused = (e: unknown) => {
    if (!isFileSystemError(e)) return e;
    return new CheckpointError(`cannot lock the checkpoint ${path} (${lock}): ${writeRefusal(e)}`);
  };
  /** Creates `file` holding `text` if there is none; false if there is one. */
  const create = (file: string, text: string): boolean => {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw refused(e);
    }
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    return true;
  };
  for (let attempt = 0; attempt < 500; attempt++) {
    if (create(lock, mine)) {
      return () => {
        try {
          if (readFileSync(lock, 'utf8') === mine) unlinkSync(lock);
        } catch {
          // already gone
        }
      };
    }
    const seen = lockHolder(lock);
    if (seen === undefined) continue; // released since: try again
    if (!isStale(seen)) throw heldError(path, seen);
    if (!create(takeover, mine)) {
      // another run is replacing the stale lock: a moment, then judge what it left (a takeover file
      // outlives its run only if that run was killed between two file operations)
      let age = 0;
      try {
        age = Date.now() - statSync(takeover).mtimeMs;
      } catch {
        continue;
      }
      if (age > UNREADABLE_LOCK_GRACE_MS) {
        throw new CheckpointError(`the stale lock on the checkpoint ${path} was being replaced by a run that did not finish (${takeover} is ${Math.round(age / 1000)} s old): if no dlc train is starting on this checkpoint, delete ${takeover} and ${lock}`);
      }
      pause(5);
      continue;
    }
    try {
      // judged again: the lock may be another run's since it was read
      const now = lockHolder(lock);
      if (now === undefined || !isStale(now)) continue;
      unlinkSync(lock);
      notes(
        now.kind === 'dead'
          ? `note: removed a stale lock on ${path}: its run (pid ${now.pid}) ended without releasing it`
          : `note: removed a stale lock on ${path}: it was ${now.empty ? 'empty' : 'not a lock dlc writes'} and ${Math.round(now.ageMs / 1000)} s old (a run killed as it took the lock?)`,
      );
    } finally {
      try {
        unlinkSync(takeover);
      } catch {
        // nothing to release
      }
    }
  }
  throw new CheckpointError(`cannot lock the checkpoint ${path} (${lock}): runs kept taking and releasing it; try again`);
}

/** The temporary files of saves to this plan's files whose process is gone (killed mid-save): they are never read, and each is a whole checkpoint's size. */
function removeStaleTemporaryFiles(plan: CheckpointPlan): void {
  const dir = dirname(plan.path);
  const stem = basename(plan.path).replace(/\.safetensors$/, '');
  for (const name of readdirSync(dir)) {
    const owner = temporaryFileOwner(name);
    if (!owner || !owner.target.startsWith(stem) || owner.pid === process.pid || processAlive(owner.pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // removed by someone else, or not ours to remove: harmless either way
    }
  }
}

/** A file's name in generation `n` of the runs moved aside: `.previous` for the last one, `.previous-<n>` before it. */
const generationName = (file: string, n: number) => sibling(file, n === 1 ? '.previous.safetensors' : `.previous-${n}.safetensors`);

/** The files of earlier runs kept beside the checkpoint, by generation (1: the last run moved aside). */
export function keptGenerations(path: string): Map<number, string[]> {
  const dir = dirname(path);
  const stem = basename(path).replace(/\.safetensors$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${stem}((?:\\.best(?:-\\w+)?|\\.epoch-\\d+)?)\\.previous(?:-(\\d+))?\\.safetensors$`);
  const out = new Map<number, string[]>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const m = pattern.exec(name);
    if (!m) continue;
    const n = m[2] === undefined ? 1 : Number(m[2]);
    if (n < 2 && m[2] !== undefined) continue;
    out.set(n, [...(out.get(n) ?? []), join(dir, name)]);
  }
  return out;
}

/**
 * Before a run that starts over (no --resume): the earlier run's files (the checkpoint, its best
 * weights and numbered copies) move aside as one set, `*.previous.safetensors`; sets moved aside
 * before it move back a generation (`*.previous-2.safetensors`, ...) rather than being replaced, so
 * starting over, however often, never loses a trained model. Returns where the earlier run's files went.
 */
export function moveEarlierRun(plan: CheckpointPlan): string[] {
  const run = earlierRun(plan);
  if (run.length === 0) return [];
  const kept = keptGenerations(plan.path);
  for (const n of [...kept.keys()].sort((a, b) => b - a)) {
    for (const file of kept.get(n)!) {
      const original = file.replace(/\.previous(?:-\d+)?\.safetensors$/, '.safetensors');
      renameSync(file, generationName(original, n + 1));
    }
  }
  for (const { from, to } of run) renameSync(from, to);
  return run.map((r) => r.to);
}

/** The files of an earlier run that moveEarlierRun moves aside, and where to. */
export function earlierRun(plan: CheckpointPlan): { from: string; to: string }[] {
  const earlier = [plan.path, plan.best?.path, plan.restore?.path, ...numberedCopies(plan.path)].filter((p): p is string => p !== undefined && existsSync(p) && !statSync(p).isDirectory());
  return [...new Set(earlier)].map((from) => ({ from, to: generationName(from, 1) }));
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

/** The optimizer's slots (`m`, `v`; `velocity`) that tensors named `opt.<step>.<param>.<slot>` keep for the model's parameters. */
function optimizerSlots(names: Iterable<string>, params: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  for (const n of names) {
    if (paramOfState(n, params) !== undefined) out.add(n.slice(n.lastIndexOf('.') + 1));
  }
  return out;
}

/** Copies of a checkpoint kept beside it (its numbered copies, newest first, then the earlier run's), to name when it cannot be read. */
function wholeCopiesOf(path: string): string[] {
  const previous = generationName(path, 1);
  return [...numberedCopies(path).reverse(), ...(existsSync(previous) ? [previous] : [])];
}

/**
 * A checkpoint loaded whole into `model` (its metadata returned). A file that cannot be one says why
 * (a folder, not a safetensors file, another model's checkpoint) and what to do. A checkpoint of
 * another model name whose tensors fit loads, with a warning to `warn` (a renamed model, or another
 * model with the same layers). With `resuming` (--resume): one whose optimizer state differs only for
 * parameters frozen since (or no longer frozen) loads, with a line for each; one of another optimizer
 * is refused. One made for other shapes says so in the command line's terms: the same --args, or
 * init_from for a model changed on purpose.
 */
export async function loadCheckpoint(model: Model, path: string, warn: (line: string) => void, resuming = false): Promise<LoadReport> {
  let bytes: Uint8Array;
  try {
    bytes = await readWeightsFile(path);
  } catch (e) {
    throw new CheckpointError(`cannot read the checkpoint ${path}: ${(e as Error).message}`);
  }
  const program = model.program;
  const params = new Set(program.params.map((p) => p.path));
  let header: Record<string, string> | undefined;
  try {
    header = decodeSafetensorsMetadata(bytes);
  } catch {
    header = undefined;
  }
  const of = header?.['dlc.model'];
  let names: string[] | undefined;
  try {
    names = [...decodeSafetensors(bytes, { convert: true }).tensors.keys()];
  } catch {
    names = undefined; // loadWeights below says what is wrong with the file
  }
  if (resuming && names) {
    const then = optimizerSlots(names, params);
    const now = optimizerSlots(program.state.map((s) => s.path), params);
    const show = (slots: Set<string>) => [...slots].sort().map((x) => `\`${x}\``).join(', ');
    if (then.size > 0 && now.size > 0 && (then.size !== now.size || [...then].some((x) => !now.has(x)))) {
      throw new CheckpointError(
        `--resume: ${path} holds another optimizer's state (${show(then)} for each parameter) than this train block's optimizer keeps (${show(now)}): it was trained with another optimizer, so the run cannot go on as it was. Resume with the optimizer it was trained with, or start a new run from its weights (init_from = "${path}")`,
      );
    }
  }
  let report: LoadReport;
  try {
    report = await model.loadWeights(bytes);
  } catch (e) {
    if (!(e instanceof WeightsError)) throw e;
    if (e.message.startsWith('cannot read the weights: ')) {
      const copies = wholeCopiesOf(path);
      const remedy = copies.length > 0 ? `; ${copies.length === 1 ? 'a copy is' : 'copies are'} kept beside it (${copies.slice(0, 3).join(', ')}): copy one over ${path} to go on from it` : '';
      throw new CheckpointError(`${path} is not a checkpoint dlc can read: ${e.message.replace(/^cannot read the weights: (invalid safetensors file: )?/, '')}${remedy}`);
    }
    // read as loadWeights read it (F16, I64 converted): the file's names and shapes are the problem, not its dtypes
    const decoded = decodeSafetensors(bytes, { convert: true });
    const tensors = new Map<string, { dtype: string; shape: readonly number[] }>([...decoded.tensors, ...(decoded.skipped ?? []).map((t) => [t.name, t] as const)]);
    if (of !== undefined && of !== program.model) throw new CheckpointError(`${path} is a checkpoint of the model ${of}, not ${program.model}; give ${program.model}'s checkpoint with --checkpoint (or train it first)`);
    const declared = new Map([...program.params, ...program.state].map((d) => [d.path, d]));
    const extra = [...tensors.keys()].filter((n) => !declared.has(n));
    const lacking = [...params].filter((p) => !tensors.has(p));
    const reshaped = [...tensors].filter(([n, t]) => {
      const d = declared.get(n);
      return d !== undefined && (d.dtype !== t.dtype || d.shape.length !== t.shape.length || d.shape.some((x, i) => x !== t.shape[i]));
    });
    if (!(extra.length > 0 && lacking.length === 0 && reshaped.length === 0 && extra.every((n) => n.startsWith('opt.')))) {
      const detail = e.message.replace(/ \(pass \{ [^}]* \} to [^)]*\)$/, '');
      throw new CheckpointError(
        `${path} does not fit ${program.model} as this file and its --args make it: ${detail}. Was it trained with other --args, or an earlier version of the file? Give the same --args; if the model changed on purpose, start a new run from these weights with init_from = "${path}" (tensors that no longer fit keep their initial values)`,
      );
    }
    // optimizer state for parameters this train block no longer trains (frozen since): dropped
    report = await model.loadWeights(bytes, { partial: true });
    const owners = [...new Set(extra.flatMap((n) => paramOfState(n, params) ?? []))];
    if (resuming) warn(`note: ${path} holds optimizer state for ${owners.length > 0 ? listed(owners) : listed(extra)}, which this train block does not train (frozen since it was saved?); that state is dropped`);
  }
  if (of !== undefined && of !== program.model) {
    warn(`warning: ${path} is a checkpoint of the model ${of}, not ${program.model}; its tensors fit ${program.model}, so it was loaded (a renamed model?). If it is another model's, give ${program.model}'s checkpoint with --checkpoint`);
  }
  // parameters trained now that were not when the checkpoint was saved: their optimizer state starts at zero
  if (resuming) {
    const loaded = new Set(report.loaded);
    const fresh = [...new Set(program.state.filter((s) => s.path.startsWith('opt.') && !loaded.has(s.path)).flatMap((s) => paramOfState(s.path, params) ?? []))];
    if (fresh.length > 0) {
      const adamLike = optimizerSlots(program.state.map((s) => s.path), params).has('v');
      warn(
        `warning: ${path} has no optimizer state for ${listed(fresh)} (frozen when it was saved?): ${fresh.length === 1 ? 'its state starts' : 'their state starts'} at zero while the step count goes on from step ${report.metadata['dlc.step'] ?? '?'}${adamLike ? ", so Adam's bias correction makes their first updates differ from a fresh run's (larger or smaller, with the step count)" : ''}. To train them from a clean start, begin a new run from its weights (init_from = "${path}") instead of --resume`,
      );
    }
  }
  return report;
}

/**
 * Early stopping's state as a checkpoint recorded it (`dlc.early_stopping`), for a run that judges
 * `stopping`: the state of another monitor or mode (the file changed since) would compare the new
 * metric with the old one's best, so it starts afresh, with a note. Files from before the monitor was
 * recorded are taken as they are.
 */
export function resumedEarlyStopping(recorded: string | undefined, stopping: CheckpointPlan['stopping'], path: string, notes: (line: string) => void): EarlyStoppingState | undefined {
  if (recorded === undefined || stopping === undefined) return undefined;
  let state: { best?: unknown; bestEpoch?: unknown; wait?: unknown; monitor?: unknown; mode?: unknown };
  try {
    state = JSON.parse(recorded) as typeof state;
  } catch {
    throw new CheckpointError(`--resume: ${path} records early stopping's state as ${JSON.stringify(recorded)}, which is not JSON (a damaged file?); copy a whole copy over it, or start a new run`);
  }
  const best = state.best === null ? (stopping.mode === 'min' ? Infinity : -Infinity) : state.best;
  if (typeof best !== 'number' || typeof state.bestEpoch !== 'number' || typeof state.wait !== 'number') {
    throw new CheckpointError(`--resume: ${path} records early stopping's state as ${recorded}, which is not { best, bestEpoch, wait } (a damaged file?); copy a whole copy over it, or start a new run`);
  }
  const then = typeof state.monitor === 'string' ? { monitor: state.monitor, mode: state.mode === 'max' ? 'max' : 'min' } : undefined;
  if (then && (then.monitor !== stopping.monitor || then.mode !== stopping.mode)) {
    notes(`note: early stopping now watches ${stopping.monitor} (${stopping.mode}); ${path} recorded its state for ${then.monitor} (${then.mode}), so it starts afresh: no best value yet, patience counted from this epoch`);
    return undefined;
  }
  return { best, bestEpoch: state.bestEpoch, wait: state.wait };
}

/** Loads the checkpoint into `model` and reads where training stood; a weights-only file or one whose epoch is no count is refused. */
export async function resumeFrom(model: Model, plan: CheckpointPlan, notes: (line: string) => void): Promise<ResumeState> {
  const path = plan.path;
  let head: Record<string, string> = {};
  try {
    head = decodeSafetensorsMetadata(await readWeightsFile(path));
  } catch {
    // loadCheckpoint says what is wrong with the file
  }
  if (head['dlc.format'] === 'weights') {
    throw new CheckpointError(`--resume: ${path} is a weights-only file (no optimizer state, step or random key; dlc weights writes these): it cannot continue a run. Start a new run from it with init_from = "${path}", or resume from the training checkpoint`);
  }
  const meta = (await loadCheckpoint(model, path, notes, true)).metadata;
  const epochText = meta['dlc.epoch'] ?? '0';
  const epoch = Number(epochText);
  if (!/^\d+$/.test(epochText) || !Number.isSafeInteger(epoch)) {
    throw new CheckpointError(`--resume: ${path} records its epoch as ${JSON.stringify(epochText)}, not a count of epochs (a damaged or hand-edited file?); copy a whole copy over it${wholeCopiesOf(path).length > 0 ? ` (${wholeCopiesOf(path)[0]})` : ''}, or start a new run`);
  }
  const stepText = meta['dlc.step'];
  if (stepText !== undefined && !/^\d+$/.test(stepText)) {
    throw new CheckpointError(`--resume: ${path} records its step as ${JSON.stringify(stepText)}, not a count of steps (a damaged or hand-edited file?); copy a whole copy over it, or start a new run`);
  }
  let best: { monitor?: string; value?: number } | undefined;
  try {
    best = meta['dlc.best'] ? (JSON.parse(meta['dlc.best']) as { monitor?: string; value?: number }) : undefined;
  } catch {
    best = undefined;
  }
  const earlyStopping = resumedEarlyStopping(meta['dlc.early_stopping'], plan.stopping, path, notes);
  return {
    epoch,
    ...(earlyStopping ? { earlyStopping } : {}),
    ...(best !== undefined && best.monitor === plan.best?.monitor && typeof best.value === 'number' ? { best: best.value } : {}),
  };
}

/** How the writer puts bytes in a file (atomically by default; tests give their own). */
export type FileWriter = (path: string, bytes: Uint8Array) => Promise<void>;

/**
 * Writes training state as the plan says, epoch by epoch: the best weights when the monitor improves
 * and early stopping's best weights when it improves, both before the checkpoint that records them
 * (so a crash or a full disk between two writes never leaves a checkpoint naming a best epoch its
 * best file does not hold, and a resumed run never replaces them with worse ones), then the
 * checkpoint every `every` epochs with a numbered copy when `keep` asks (dropping the oldest, those
 * of an earlier run included). A write that fails says which file, why, and what the checkpoint holds.
 */
export class CheckpointWriter {
  private best: number;
  private savedEpoch: number;
  private lastState: EarlyStoppingState | undefined;
  private readonly copies: string[];
  /** The best files this run wrote (or found from the run it resumes). */
  readonly written = new Set<string>();

  constructor(
    private readonly model: Model,
    private readonly plan: CheckpointPlan,
    /** Recorded in every file besides the epoch (the data's sizes and vocabulary). */
    private readonly metadata: Readonly<Record<string, string>>,
    resume: ResumeState,
    private readonly write: FileWriter = writeFileAtomic,
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
      await this.put(best.path, await weights(), `the best weights by ${best.monitor}`);
      this.best = value;
    }
    if (restore && !restore.shared && state.improved) await this.put(restore.path, await weights(), "early stopping's best weights (restore_best)");
    if ((logs.epoch + 1) % this.plan.every === 0) await this.save(logs.epoch + 1);
  }

  /**
   * The last epoch's state, whatever `every` says, so --resume and evaluate see the end of training;
   * with `restored`, the checkpoint also records that restore_best restored that epoch's weights from
   * that file (beside the checkpoint), which evaluate and predict then run.
   */
  async finish(lastEpoch: number | undefined, restored?: { readonly file: string; readonly epoch: number; readonly monitor: string }): Promise<void> {
    if (lastEpoch !== undefined && (this.savedEpoch !== lastEpoch + 1 || restored)) await this.save(lastEpoch + 1, restored);
  }

  /** Writes one file; a file-system refusal says which file and what the checkpoint still holds. */
  private async put(path: string, bytes: Uint8Array, what: string): Promise<void> {
    try {
      await this.write(path, bytes);
    } catch (e) {
      if (!isFileSystemError(e)) throw e;
      const held = this.savedEpoch > 0 && existsSync(this.plan.path) ? `${this.plan.path} is intact and holds epoch ${this.savedEpoch}: free what is needed and continue with --resume` : 'no checkpoint was saved yet';
      throw new CheckpointError(`cannot save ${what} to ${path}: ${writeRefusal(e)}; ${held}`);
    }
    this.written.add(path);
  }

  private async save(epoch: number, restored?: { readonly file: string; readonly epoch: number; readonly monitor: string }): Promise<void> {
    const metadata: Record<string, string> = { ...this.metadata, 'dlc.epoch': String(epoch), ...(restored ? { 'dlc.restored_best': JSON.stringify(restored) } : {}) };
    if (this.lastState) metadata['dlc.early_stopping'] = JSON.stringify({ ...this.lastState, ...(this.plan.stopping ?? {}) });
    if (this.plan.best && Number.isFinite(this.best)) metadata['dlc.best'] = JSON.stringify({ monitor: this.plan.best.monitor, value: this.best });
    const bytes = await this.model.saveWeights({ metadata });
    await this.put(this.plan.path, bytes, 'the checkpoint');
    this.savedEpoch = epoch;
    if (this.plan.keep === undefined) return;
    const numbered = sibling(this.plan.path, `.epoch-${epoch}.safetensors`);
    await this.put(numbered, bytes, 'a numbered copy of the checkpoint');
    if (this.copies.includes(numbered)) this.copies.splice(this.copies.indexOf(numbered), 1);
    this.copies.push(numbered);
    while (this.copies.length > this.plan.keep) await unlink(this.copies.shift()!).catch(() => undefined);
  }
}
