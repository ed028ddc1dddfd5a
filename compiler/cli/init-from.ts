// `init_from` for dlc train: the weights file read (before anything is moved aside), loaded into a new run, and what it left out said plainly.
import { existsSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { isRunState, type Model } from '../../runtime/model.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import { WeightsError } from '../../runtime/errors.ts';
import { TrainError, type TrainIo } from './train.ts';

/** The bytes of a weights file, or why they cannot be read, in words (a folder, permission denied, missing). */
export async function readWeightsFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(fileRefusal(e));
  }
}

/** Why reading a file failed, as a user reads it. */
export function fileRefusal(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const why: Record<string, string> = {
    ENOENT: 'there is no such file',
    EISDIR: 'it is a folder, not a weights file',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    ENOTDIR: 'a part of the path is a file, not a folder',
  };
  return why[code] ?? (err as Error).message;
}

/** Two paths naming one file (through links too). */
export function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolvePath(p);
    }
  };
  return resolvePath(a) === resolvePath(b) || real(a) === real(b);
}

/** The train block's `init_from` file, read whole; undefined without one. Every failure names the setting and the file. */
export async function readInitFrom(program: ModelProgram, file: string): Promise<{ path: string; bytes: Uint8Array } | undefined> {
  const setting = program.training?.settings.init_from;
  if (setting === undefined || setting === null) return undefined;
  // the compiler refuses anything but a path (E0206); a program built otherwise is told the same
  if (typeof setting !== 'string' || setting === '') throw new TrainError(`init_from is the path of a safetensors file, not ${JSON.stringify(setting)}`);
  const path = resolvePath(dirname(file), setting);
  if (!existsSync(path)) throw new TrainError(`init_from: no weights file at ${path}; train the model that produces it first`);
  try {
    return { path, bytes: await readWeightsFile(path) };
  } catch (e) {
    throw new TrainError(`init_from: ${path}: ${(e as Error).message}`);
  }
}

const list = (names: readonly string[], most = 6) => `${names.slice(0, most).map((n) => `\`${n}\``).join(', ')}${names.length > most ? ` and ${names.length - most} more` : ''}`;

/**
 * Prefix renames that would make the file's unused tensors match the model's unloaded ones (the file
 * has `trunk.*`, the model `body.*`): each pair of names with a common dotted ending votes for its
 * prefixes; the renames that cover the most tensors win.
 */
export function prefixRenames(unused: readonly string[], wanted: readonly string[]): { from: string; to: string; count: number }[] {
  if (unused.length * wanted.length > 4_000_000) return [];
  const votes = new Map<string, { from: string; to: string; covers: Set<string> }>();
  const split = wanted.map((w) => w.split('.'));
  for (const u of unused) {
    const us = u.split('.');
    for (const ws of split) {
      let k = 0;
      while (k < us.length && k < ws.length && us[us.length - 1 - k] === ws[ws.length - 1 - k]) k++;
      if (k === 0 || k === us.length || k === ws.length) continue;
      const from = us.slice(0, us.length - k).join('.');
      const to = ws.slice(0, ws.length - k).join('.');
      const key = `${from}\u0000${to}`;
      const v = votes.get(key) ?? { from, to, covers: new Set<string>() };
      v.covers.add(u);
      votes.set(key, v);
    }
  }
  const ranked = [...votes.values()].sort((a, b) => b.covers.size - a.covers.size || a.from.length - b.from.length);
  const covered = new Set<string>();
  const out: { from: string; to: string; count: number }[] = [];
  for (const v of ranked) {
    const fresh = [...v.covers].filter((u) => !covered.has(u));
    // one tensor alone is a coincidence of names unless it is all there is
    if (fresh.length === 0 || (fresh.length < 2 && unused.length > 1)) continue;
    for (const u of fresh) covered.add(u);
    out.push({ from: v.from, to: v.to, count: fresh.length });
    if (out.length === 3) break;
  }
  return out;
}

/**
 * Loads `init.bytes` into a new run of `model` (the weights and the model's own state, not the
 * optimizer's), and says what it did: how many parameters it set, each tensor of another shape, the
 * file's tensors that matched nothing (with the rename that would match them), and each frozen
 * parameter it left at its initial value (which training will never change).
 */
export async function loadInitFrom(model: Model, program: ModelProgram, init: { path: string; bytes: Uint8Array }, io: TrainIo): Promise<void> {
  const { path } = init;
  let report;
  try {
    report = await model.loadWeights(init.bytes, { partial: true, weightsOnly: true, skipMismatched: true });
  } catch (e) {
    if (!(e instanceof WeightsError)) throw e;
    const why = e.message.replace(/^cannot read the weights: invalid safetensors file: /, 'not a valid safetensors file: ');
    throw new TrainError(`init_from: ${path}: ${why}`);
  }
  const params = new Set(program.params.map((p) => p.path));
  const loaded = new Set(report.loaded);
  const loadedParams = report.loaded.filter((name) => params.has(name)).length;
  const loadedState = report.loaded.length - loadedParams;
  const missingParams = report.missing.filter((name) => params.has(name)).length;
  const fileModel = report.metadata['dlc.model'];
  if (loadedParams === 0) io.err(`warning: init_from: no parameter of ${program.model} is in ${path} (it has ${list(report.ignored, 3)}); every parameter keeps its initial value`);
  else io.err(`initialized ${loadedParams} of ${params.size} parameters${loadedState > 0 ? ` and ${loadedState} state tensors` : ''} from ${path}${missingParams > 0 ? ` (${missingParams} parameters keep their initial values)` : ''}`);
  // a new head under the old name: its shape differs, so it starts afresh
  for (const m of report.mismatched) io.err(`note: init_from: \`${m.path}\` is ${m.file} in ${path} but ${m.model} in ${program.model}; it keeps its initial value`);
  // the file's tensors that set nothing, and the renaming that would make them fit
  if (report.ignored.length > 0) {
    const wanted = [...program.params.map((p) => p.path), ...program.state.map((s) => s.path).filter((s) => !isRunState(s))].filter((n) => !loaded.has(n));
    const renames = prefixRenames(report.ignored, wanted);
    const hint = renames.length > 0 ? `; ${renames.map((r) => `its \`${r.from}.*\` would match ${program.model}'s \`${r.to}.*\` (${r.count} tensors)`).join(', ')}: rename the layer${renames.length > 1 ? 's' : ''} to match` : '';
    if (loadedParams > 0 || renames.length > 0) io.err(`note: init_from: ${report.ignored.length} tensor${report.ignored.length === 1 ? '' : 's'} of ${path}${fileModel ? ` (a checkpoint of ${fileModel})` : ''} match nothing in ${program.model}: ${list([...report.ignored].sort())}${hint}`);
  }
  // frozen (never trained) and not loaded: they stay at their random initial values for good
  const stuck = program.params.filter((p) => !p.trainable && !loaded.has(p.path)).map((p) => p.path);
  if (stuck.length > 0) {
    io.err(`warning: init_from: ${stuck.length} frozen parameter${stuck.length === 1 ? '' : 's'} of ${program.model} ${stuck.length === 1 ? 'is' : 'are'} not in ${path} (or ${stuck.length === 1 ? 'has' : 'have'} another shape there) and keep${stuck.length === 1 ? 's' : ''} ${stuck.length === 1 ? 'its' : 'their'} random initial value for the whole run: ${list(stuck, 8)}`);
  }
}
