// `init_from` for dlc train: the weights file read (before anything is moved aside), loaded into a new run, and what it left out said plainly.
import { existsSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { isRunState, type Model } from '../../runtime/model.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import { WeightsError } from '../../runtime/errors.ts';
import { isTorchCounter, isTransposeOf, TRANSPOSED_HINT } from '../../runtime/model.ts';
import { decodeSafetensorsShapes } from '../../runtime/safetensors.ts';
import { renameRuleProblem, type SettingValue } from '../train/plan.ts';
import { DataSettingError, TrainError, type TrainIo } from './train.ts';

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

/** What `init_from` reads: the file, its bytes, and the renames and transposes to read it with (`init_from { path; rename; transpose }`). */
export interface InitFrom {
  readonly path: string;
  readonly bytes: Uint8Array;
  /** `"FILE -> MODEL"` rules, the first whose MODEL side matches a model path giving its file name; `*` stands for any run of characters. */
  readonly rename: readonly string[];
  /** Model paths (or `*` patterns) of 2-d tensors the file holds transposed. */
  readonly transpose: readonly string[];
}

/** The train block's `init_from` file, read whole; undefined without one. Every failure names the setting and the file. */
export async function readInitFrom(program: ModelProgram, file: string): Promise<InitFrom | undefined> {
  const setting = program.training?.settings.init_from;
  if (setting === undefined || setting === null) return undefined;
  const block = typeof setting === 'object' && !Array.isArray(setting) && 'call' in setting ? setting.args : undefined;
  const given = block ? block.path : setting;
  const strings = (v: SettingValue | undefined, what: string): string[] => {
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x): x is string => typeof x === 'string')) throw new TrainError(`init_from's ${what} is a list of strings, not ${JSON.stringify(v)}`);
    return list;
  };
  // the compiler refuses anything but a path (E0206); a program built otherwise is told the same
  if (typeof given !== 'string' || given === '') throw new TrainError(`init_from is the path of a safetensors file, not ${JSON.stringify(given ?? setting)}`);
  const rename = strings(block?.rename, 'rename');
  for (const rule of rename) {
    const why = renameRuleProblem(rule);
    if (why !== undefined) throw new TrainError(`init_from's rename ${JSON.stringify(rule)}: ${why}`);
  }
  const transpose = strings(block?.transpose, 'transpose');
  const path = resolvePath(dirname(file), given);
  if (!existsSync(path)) throw new TrainError(`init_from: no weights file at ${path}; train the model that produces it first`);
  try {
    return { path, bytes: await readWeightsFile(path), rename, transpose };
  } catch (e) {
    throw new TrainError(`init_from: ${path}: ${(e as Error).message}`);
  }
}

/** `text` matched against a pattern with at most one `*`: what the `*` stands for, or undefined. */
function matchStar(pattern: string, text: string): string | undefined {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === text ? '' : undefined;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  if (text.length < head.length + tail.length || !text.startsWith(head) || !text.endsWith(tail)) return undefined;
  return text.slice(head.length, text.length - tail.length);
}

/** The rename rules as loadWeights' map: each model path's name in the file (the first rule whose model side matches; else the path itself). */
export function renameMap(rules: readonly string[]): (path: string) => string {
  const parsed = rules.map((r) => r.split('->').map((x) => x.trim()) as [string, string]);
  return (path) => {
    for (const [from, to] of parsed) {
      const star = matchStar(to, path);
      if (star !== undefined) return from.replace('*', star);
    }
    return path;
  };
}

/** The model paths the transpose entries name: a `*` pattern takes the 2-d tensors it matches; a pattern that matches none is an error. */
function transposedPaths(entries: readonly string[], decls: readonly { path: string; shape: readonly number[] }[], model: string): string[] {
  const out = new Set<string>();
  for (const entry of entries) {
    const hits = decls.filter((d) => matchStar(entry, d.path) !== undefined && (!entry.includes('*') || d.shape.length === 2));
    if (hits.length === 0) throw new TrainError(`init_from's transpose names \`${entry}\`, which ${entry.includes('*') ? 'matches no 2-d tensor' : 'is not a tensor'} of ${model} (it takes the model's paths, e.g. \`fc.w\` or \`*.w\`)`);
    for (const h of hits) out.add(h.path);
  }
  return [...out];
}

const list = (names: readonly string[], most = 6) => `${names.slice(0, most).map((n) => `\`${n}\``).join(', ')}${names.length > most ? ` and ${names.length - most} more` : ''}`;
const pattern = (prefix: string) => (prefix === '' ? '*' : `${prefix}.*`);
const sameOrTransposed = (a: readonly number[] | undefined, b: readonly number[] | undefined) =>
  a === undefined || b === undefined || (a.length === b.length && a.every((x, i) => x === b[i])) || isTransposeOf(a, b);

/**
 * Prefix renames that would make the file's unused tensors match the model's unloaded ones (the file
 * has `trunk.*`, the model `body.*`; the file `module.*`, DataParallel's wrapper, the model `*`): each
 * pair of names with a common dotted ending and a shape that fits (the same, or its transpose) votes
 * for its prefixes; the renames that cover the most tensors win. Without shapes, names alone vote.
 */
export function prefixRenames(unused: readonly string[], wanted: readonly string[], shapes?: { readonly file: ReadonlyMap<string, readonly number[]>; readonly model: ReadonlyMap<string, readonly number[]> }): { from: string; to: string; count: number }[] {
  if (unused.length * wanted.length > 4_000_000) return [];
  const votes = new Map<string, { from: string; to: string; covers: Set<string> }>();
  const split = wanted.map((w) => ({ name: w, parts: w.split('.') }));
  for (const u of unused) {
    const us = u.split('.');
    for (const { name, parts: ws } of split) {
      let k = 0;
      while (k < us.length && k < ws.length && us[us.length - 1 - k] === ws[ws.length - 1 - k]) k++;
      // a whole name on one side is a prefix the other lacks (`module.bn.beta` for `bn.beta`); both whole is the same name
      if (k === 0 || (k === us.length && k === ws.length)) continue;
      if (!sameOrTransposed(shapes?.file.get(u), shapes?.model.get(name))) continue;
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

/** A prefix rename that would set some of the tensors a message is about, checked against init_from's rules as they would read with it. */
export interface RenameHint {
  readonly from: string;
  readonly to: string;
  /** How many of those tensors it would set. */
  readonly count: number;
  /** Of those, the 2-d ones the file holds transposed that init_from's transpose does not name yet. */
  readonly transpose: readonly string[];
}

/**
 * The prefix renames (prefixRenames) that would set some of `targets`, the model paths a message is
 * about (the parameters an error names, not state tensors that happen to match): each is tried as
 * init_from's rename would read with it added after the block's rules, and kept only where a target's
 * file name is then one of `unused` with the target's shape (or its transpose, which the hint then
 * adds to transpose) and every tensor `loaded` now still finds its own. A rule an earlier rule hides,
 * one that matches only other tensors, or one that would unset what loads now is never proposed.
 */
export function renamesThatSet(
  targets: readonly string[],
  unused: readonly string[],
  loaded: readonly string[],
  rules: readonly string[],
  shapes: { readonly file: ReadonlyMap<string, readonly number[]>; readonly model: ReadonlyMap<string, readonly number[]> },
  transposed: ReadonlySet<string>,
): RenameHint[] {
  const available = new Set(unused);
  const before = renameMap(rules);
  const out: RenameHint[] = [];
  for (const { from, to } of prefixRenames(unused, targets, shapes)) {
    const nameOf = renameMap([...rules, `${pattern(from)} -> ${pattern(to)}`]);
    if (loaded.some((path) => nameOf(path) !== before(path))) continue;
    const set: string[] = [];
    const transpose: string[] = [];
    for (const target of targets) {
      const name = nameOf(target);
      const file = shapes.file.get(name);
      const model = shapes.model.get(target);
      if (!available.has(name) || file === undefined || model === undefined) continue;
      if (file.length === model.length && file.every((x, i) => x === model[i])) set.push(target);
      else if (isTransposeOf(file, model)) {
        set.push(target);
        if (!transposed.has(target)) transpose.push(target);
      }
    }
    if (set.length > 0) out.push({ from, to, count: set.length, transpose });
  }
  return out;
}

/** The hint's text: what each rename would match, and where to add it. */
function renameHintText(renames: readonly RenameHint[], model: string): string {
  if (renames.length === 0) return '';
  const rules = renames.map((r) => `"${pattern(r.from)} -> ${pattern(r.to)}"`).join(', ');
  const transpose = renames.flatMap((r) => r.transpose);
  const alsoTranspose = transpose.length > 0 ? ` and ${list(transpose)} to its transpose` : '';
  return `; ${renames.map((r) => `its \`${pattern(r.from)}\` would match ${model}'s \`${pattern(r.to)}\` (${r.count} tensor${r.count === 1 ? '' : 's'})`).join(', ')}: add ${rules} to init_from's rename${alsoTranspose}, or rename the layer${renames.length > 1 ? 's' : ''} to match`;
}

/** The dotted layer a path belongs to (`bn` for `bn.running_mean`). */
const layerOf = (path: string) => path.slice(0, Math.max(0, path.lastIndexOf('.')));

/**
 * Loads `init` into a new run of `model` (the weights and the model's own state, not the optimizer's),
 * renamed and transposed as its block says, and says what it did: how many parameters it set, each
 * tensor of another shape (a transposed one named as such), the file's tensors that matched nothing
 * (with the rename that would match them). A file that sets no parameter, or leaves a frozen one at its
 * random initial value (which training will never change), is an error: E0207 at the setting, naming
 * what the file has and what the model expects. Running statistics loaded into a layer whose
 * parameters were not are a warning.
 */
export async function loadInitFrom(model: Model, program: ModelProgram, init: InitFrom, io: TrainIo): Promise<void> {
  const { path } = init;
  const decls = [...program.params, ...program.state.filter((s) => !isRunState(s.path))];
  const transpose = transposedPaths(init.transpose, decls, program.model);
  let report;
  try {
    report = await model.loadWeights(init.bytes, { partial: true, weightsOnly: true, skipMismatched: true, ...(init.rename.length > 0 ? { map: renameMap(init.rename) } : {}), transpose });
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
  const fileShapes = decodeSafetensorsShapes(init.bytes);
  const modelShapes = new Map(decls.map((d) => [d.path, d.shape]));
  const shaped = (names: readonly string[], shapes: ReadonlyMap<string, readonly number[]>, most = 6) =>
    `${names.slice(0, most).map((n) => `\`${n}\`${shapes.has(n) ? ` [${shapes.get(n)!.join(', ')}]` : ''}`).join(', ')}${names.length > most ? ` and ${names.length - most} more` : ''}`;
  const how = `rename and transpose them on load with init_from's rename and transpose (docs/language.md, "Porting from PyTorch")`;
  // the file's tensors that set nothing, and the renaming that would make them fit
  // (each message counts only the tensors it is about: an error's parameters, not state that happens to match)
  const renameHint = (targets: readonly string[]) =>
    report.ignored.length === 0 ? '' : renameHintText(renamesThatSet(targets, report.ignored, report.loaded, init.rename, { file: fileShapes, model: modelShapes }, new Set(transpose)), program.model);
  const unloadedParams = program.params.map((p) => p.path).filter((n) => !loaded.has(n));
  const mismatchedText = (m: (typeof report.mismatched)[number]) => `\`${m.path}\` is ${m.file} in ${path} but ${m.model} in ${program.model}${m.transposed ? `: ${TRANSPOSED_HINT}; add \`${m.path}\` to init_from's transpose` : ''}`;
  if (loadedParams === 0 && params.size > 0) {
    const state = loadedState > 0 ? ` (only the state tensors ${list(report.loaded)} matched)` : '';
    const reshaped = report.mismatched.length > 0 ? `; ${report.mismatched.map(mismatchedText).join('; ')}` : '';
    throw new DataSettingError(
      `init_from: no parameter of ${program.model} is in ${path}${state}: it has ${shaped(report.ignored.some((n) => !isTorchCounter(n)) ? report.ignored.filter((n) => !isTorchCounter(n)).sort() : report.mismatched.map((m) => m.path), fileShapes)}; ${program.model} expects ${shaped(program.params.map((p) => p.path), modelShapes)}${reshaped}${renameHint(unloadedParams)}. Fix the names, or ${how}`,
      'init_from',
    );
  }
  // frozen (never trained) and not loaded: they would stay at their random initial values for good
  const stuck = program.params.filter((p) => !p.trainable && !loaded.has(p.path)).map((p) => p.path);
  if (stuck.length > 0) {
    const reshaped = report.mismatched.filter((m) => stuck.includes(m.path));
    throw new DataSettingError(
      `init_from: ${stuck.length} frozen parameter${stuck.length === 1 ? '' : 's'} of ${program.model} ${stuck.length === 1 ? 'is' : 'are'} not set by ${path} and would keep ${stuck.length === 1 ? 'its' : 'their'} random initial value for the whole run: ${shaped(stuck, modelShapes, 8)}${reshaped.length > 0 ? `; ${reshaped.map(mismatchedText).join('; ')}` : ''}${renameHint(stuck)}. Set ${stuck.length === 1 ? 'it' : 'them'} from the file (${how}), or unfreeze ${stuck.length === 1 ? 'it' : 'them'}`,
      'init_from',
    );
  }
  io.err(`initialized ${loadedParams} of ${params.size} parameters${loadedState > 0 ? ` and ${loadedState} state tensors` : ''} from ${path}${missingParams > 0 ? ` (${missingParams} parameters keep their initial values)` : ''}`);
  // a new head under the old name: its shape differs, so it starts afresh; the transpose of the model's shape is likely a PyTorch Linear
  for (const m of report.mismatched) io.err(`${m.transposed ? 'warning' : 'note'}: init_from: ${mismatchedText(m)}; it keeps its initial value`);
  // PyTorch's batch norm step counter is skipped without a word: no dlc model has one
  const unmatched = report.ignored.filter((n) => !isTorchCounter(n));
  if (unmatched.length > 0) {
    io.err(`note: init_from: ${unmatched.length} tensor${unmatched.length === 1 ? '' : 's'} of ${path}${fileModel ? ` (a checkpoint of ${fileModel})` : ''} match${unmatched.length === 1 ? 'es' : ''} nothing in ${program.model}: ${list([...unmatched].sort())}${renameHint(decls.map((d) => d.path).filter((n) => !loaded.has(n)))}`);
  }
  // a layer's running statistics from the file with its parameters left at their initial values: half one model, half another
  const stateOnly = new Map<string, string[]>();
  for (const name of report.loaded.filter((n) => !params.has(n))) {
    const layer = layerOf(name);
    const own = program.params.filter((p) => layerOf(p.path) === layer);
    if (own.length > 0 && own.every((p) => !loaded.has(p.path))) stateOnly.set(layer, [...(stateOnly.get(layer) ?? []), name]);
  }
  for (const [layer, names] of stateOnly) {
    io.err(`warning: init_from: ${list(names)} came from ${path}, but none of \`${layer}\`'s parameters (${list(program.params.filter((p) => layerOf(p.path) === layer).map((p) => p.path))}) did: the layer is half the file's, half its initial values`);
  }
}
