// Finds the dlc command, runs it on an editor buffer (stdin, a timeout, stale runs killed), and reads its check and fmt answers; no VS Code here.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseCheckOutput, type CheckOutput } from './diagnostics.mts';

/** How to start dlc: a program and the arguments that come before dlc's own. */
export interface DlcCommand {
  readonly command: string;
  readonly prefixArgs: readonly string[];
  /** Windows `.cmd`/`.bat` launchers (node_modules/.bin/dlc.cmd) run only through the shell. */
  readonly shell: boolean;
  /** Where it was found, for messages: the `dlc.path` setting, the workspace's node_modules/.bin, or PATH. */
  readonly source: 'setting' | 'workspace' | 'path';
}

export interface ResolveOptions {
  /** The `dlc.path` setting; empty or undefined when unset. */
  readonly setting?: string;
  /** The workspace folders, first the one holding the buffer. */
  readonly workspaceFolders: readonly string[];
  /** Whether the workspace is trusted: an untrusted one's node_modules/.bin/dlc is never run. */
  readonly trusted: boolean;
  readonly env: { readonly PATH?: string; readonly Path?: string; readonly PATHEXT?: string; readonly HOME?: string; readonly USERPROFILE?: string };
  readonly platform: NodeJS.Platform;
  /** Whether a path is an existing file; the file system's by default, tests pass their own. */
  readonly isFile?: (path: string) => boolean;
}

export type Resolved = { readonly kind: 'found'; readonly dlc: DlcCommand } | { readonly kind: 'not-found'; readonly message: string };

function fileExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The names a command may have on this platform: `dlc`, or on Windows `dlc.cmd`, `dlc.exe`, ... by PATHEXT. */
function executableNames(name: string, options: ResolveOptions): string[] {
  if (options.platform !== 'win32') return [name];
  const exts = (options.env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter((e) => e !== '');
  if (exts.some((e) => name.toLowerCase().endsWith(e.toLowerCase()))) return [name];
  return [...exts.map((e) => name + e.toLowerCase()), name];
}

function commandFor(path: string, source: DlcCommand['source'], platform: NodeJS.Platform): DlcCommand {
  // a script (bin/dlc.js of a dlc checkout) runs under the node on PATH, as `npm run dlc` does
  if (/\.[cm]?js$/i.test(path)) return { command: 'node', prefixArgs: [path], shell: false, source };
  return { command: path, prefixArgs: [], shell: platform === 'win32' && /\.(cmd|bat)$/i.test(path), source };
}

function searchPath(name: string, options: ResolveOptions, isFile: (p: string) => boolean): string | undefined {
  const pathEnv = options.env.PATH ?? options.env.Path ?? '';
  const sep = options.platform === 'win32' ? ';' : ':';
  for (const dir of pathEnv.split(sep)) {
    if (dir === '') continue;
    for (const candidate of executableNames(name, options)) {
      const full = join(dir, candidate);
      if (isFile(full)) return full;
    }
  }
  return undefined;
}

/**
 * Finds dlc: the `dlc.path` setting (a path, absolute, `~/`, or relative to the first workspace
 * folder, or a bare name looked up on PATH), else the workspace's node_modules/.bin/dlc (trusted
 * workspaces only), else `dlc` on PATH.
 */
export function resolveDlc(options: ResolveOptions): Resolved {
  const isFile = options.isFile ?? fileExists;
  const setting = options.setting?.trim() ?? '';
  if (setting !== '') {
    const home = options.env.HOME ?? options.env.USERPROFILE;
    const expanded = (setting === '~' || setting.startsWith('~/') || setting.startsWith('~\\')) && home !== undefined ? join(home, setting.slice(1)) : setting;
    const bare = !/[\\/]/.test(expanded);
    if (bare) {
      const found = searchPath(expanded, options, isFile);
      if (found !== undefined) return { kind: 'found', dlc: commandFor(found, 'setting', options.platform) };
      return { kind: 'not-found', message: `dlc.path is \`${setting}\`, but there is no \`${expanded}\` on PATH` };
    }
    const base = options.workspaceFolders[0];
    const full = isAbsolute(expanded) || base === undefined ? resolve(expanded) : resolve(base, expanded);
    for (const candidate of executableNames(full, options)) {
      if (isFile(candidate)) return { kind: 'found', dlc: commandFor(candidate, 'setting', options.platform) };
    }
    return { kind: 'not-found', message: `dlc.path is \`${setting}\`, but there is no such file (${full})` };
  }
  if (options.trusted) {
    for (const folder of options.workspaceFolders) {
      for (const candidate of executableNames(join(folder, 'node_modules', '.bin', 'dlc'), options)) {
        if (isFile(candidate)) return { kind: 'found', dlc: commandFor(candidate, 'workspace', options.platform) };
      }
    }
  }
  const onPath = searchPath('dlc', options, isFile);
  if (onPath !== undefined) return { kind: 'found', dlc: commandFor(onPath, 'path', options.platform) };
  const looked = options.trusted ? 'the workspace has no node_modules/.bin/dlc and there is no `dlc` on PATH' : 'there is no `dlc` on PATH (an untrusted workspace\'s node_modules/.bin/dlc is not run)';
  return { kind: 'not-found', message: `dlc was not found: ${looked}. Install dlc in the workspace or on PATH, or set \`dlc.path\` to it.` };
}

export type RunResult =
  | { readonly kind: 'exited'; readonly exitCode: number | null; readonly stdout: string; readonly stderr: string }
  | { readonly kind: 'not-found'; readonly message: string }
  | { readonly kind: 'timed-out'; readonly timeoutMs: number }
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'failed'; readonly message: string };

export interface RunOptions {
  readonly cwd: string;
  readonly timeoutMs: number;
  /** Aborting kills the process: a newer run for the same buffer has started, or the buffer was closed. */
  readonly signal?: AbortSignal;
}

/** Quotes one argument for cmd.exe (only Windows .cmd launchers go through the shell). */
function shellQuote(arg: string): string {
  return `"${arg.replace(/"/g, '""')}"`;
}

/** Runs dlc with `args`, `input` on its stdin; kills it after `timeoutMs` or when `signal` aborts. Never rejects. */
export function runDlc(dlc: DlcCommand, args: readonly string[], input: string, options: RunOptions): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    if (options.signal?.aborted) {
      resolvePromise({ kind: 'cancelled' });
      return;
    }
    const all = [...dlc.prefixArgs, ...args];
    let child: ReturnType<typeof spawn>;
    try {
      child = dlc.shell
        ? spawn(shellQuote(dlc.command), all.map(shellQuote), { cwd: options.cwd, shell: true, windowsHide: true })
        : spawn(dlc.command, all, { cwd: options.cwd, windowsHide: true });
    } catch (e) {
      resolvePromise({ kind: 'failed', message: `cannot start ${dlc.command}: ${(e as Error).message}` });
      return;
    }
    let settled = false;
    const finish = (result: RunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolvePromise(result);
    };
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    };
    const onAbort = () => {
      kill();
      finish({ kind: 'cancelled' });
    };
    const timer = setTimeout(() => {
      kill();
      finish({ kind: 'timed-out', timeoutMs: options.timeoutMs });
    }, options.timeoutMs);
    options.signal?.addEventListener('abort', onAbort);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => stdout.push(b));
    child.stderr!.on('data', (b: Buffer) => stderr.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') finish({ kind: 'not-found', message: `cannot run \`${dlc.command}\`: it was not found` });
      else finish({ kind: 'failed', message: `cannot run \`${dlc.command}\`: ${e.message}` });
    });
    child.on('close', (exitCode) => {
      finish({ kind: 'exited', exitCode, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    // dlc may exit before reading all of stdin (a bad flag): that is its answer, not an error here
    child.stdin!.on('error', () => {});
    child.stdin!.end(input, 'utf8');
  });
}

/** One run at a time per key (a buffer): starting another aborts the one before, whose answer is stale. */
export class LatestRuns {
  private readonly controllers = new Map<string, AbortController>();

  /** Aborts the key's running run, if any, and returns the new run's signal. */
  start(key: string): AbortSignal {
    this.controllers.get(key)?.abort();
    const controller = new AbortController();
    this.controllers.set(key, controller);
    return controller.signal;
  }

  /** The run with this signal is over; forgets it unless a newer one has taken its place. */
  finish(key: string, signal: AbortSignal): void {
    if (this.controllers.get(key)?.signal === signal) this.controllers.delete(key);
  }

  cancel(key: string): void {
    this.controllers.get(key)?.abort();
    this.controllers.delete(key);
  }

  cancelAll(): void {
    for (const key of [...this.controllers.keys()]) this.cancel(key);
  }

  get running(): number {
    return this.controllers.size;
  }
}

export interface Timers {
  readonly setTimeout: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout: (handle: unknown) => void;
}

const realTimers: Timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) };

/** Runs a key's action once `delayMs` after the last schedule for that key (typing pauses). */
export class Debouncer {
  private readonly pending = new Map<string, unknown>();

  constructor(
    private readonly delayMs: number,
    private readonly timers: Timers = realTimers,
  ) {}

  schedule(key: string, action: () => void): void {
    this.cancel(key);
    this.pending.set(
      key,
      this.timers.setTimeout(() => {
        this.pending.delete(key);
        action();
      }, this.delayMs),
    );
  }

  cancel(key: string): void {
    const handle = this.pending.get(key);
    if (handle === undefined) return;
    this.timers.clearTimeout(handle);
    this.pending.delete(key);
  }

  dispose(): void {
    for (const key of [...this.pending.keys()]) this.cancel(key);
  }
}

/** The folder dlc runs in for a buffer: the buffer's own workspace folder, else the buffer's folder. */
export function workingDirectory(bufferFile: string, workspaceFolder: string | undefined): string {
  return workspaceFolder ?? dirname(bufferFile);
}

export type CheckResult = CheckOutput | { readonly kind: 'not-found'; readonly message: string } | { readonly kind: 'cancelled' };

/** `dlc check --json --stdin-filepath <file> -` on a buffer's text: its diagnostics by file, or why there are none. */
export async function checkBuffer(dlc: DlcCommand, buffer: { readonly file: string; readonly text: string }, options: RunOptions): Promise<CheckResult> {
  const run = await runDlc(dlc, ['check', '--json', '--stdin-filepath', buffer.file, '-'], buffer.text, options);
  switch (run.kind) {
    case 'exited':
      return parseCheckOutput(run, buffer.file, options.cwd);
    case 'timed-out':
      return { kind: 'failed', message: `dlc check did not answer within ${run.timeoutMs / 1000} s` };
    default:
      return run;
  }
}

export type FormatResult =
  | { readonly kind: 'formatted'; readonly text: string }
  | { readonly kind: 'syntax-errors'; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'not-found'; readonly message: string }
  | { readonly kind: 'cancelled' };

/** `dlc fmt - --stdin-filepath <file>` on a buffer's text: exit 0 is the formatted text, 3 means it has syntax errors (left as it is). */
export async function formatBuffer(dlc: DlcCommand, buffer: { readonly file: string; readonly text: string }, options: RunOptions): Promise<FormatResult> {
  const run = await runDlc(dlc, ['fmt', '-', '--stdin-filepath', buffer.file], buffer.text, options);
  switch (run.kind) {
    case 'exited':
      if (run.exitCode === 0) return { kind: 'formatted', text: run.stdout };
      if (run.exitCode === 3) return { kind: 'syntax-errors', message: run.stderr.trim() };
      return { kind: 'failed', message: (run.stderr.trim() || `dlc fmt exited with code ${run.exitCode}`).split('\n').slice(0, 20).join('\n') };
    case 'timed-out':
      return { kind: 'failed', message: `dlc fmt did not answer within ${run.timeoutMs / 1000} s` };
    default:
      return run;
  }
}

/** The one replacement (offsets into `before`) that turns `before` into `after`, or undefined when they are equal; it never splits a surrogate pair or a CRLF. */
export function minimalEdit(before: string, after: string): { readonly start: number; readonly end: number; readonly text: string } | undefined {
  if (before === after) return undefined;
  const splits = (s: string, i: number) => i > 0 && i < s.length && ((s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff) || (s[i - 1] === '\r' && s[i] === '\n'));
  let prefix = 0;
  const max = Math.min(before.length, after.length);
  while (prefix < max && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  while (splits(before, prefix) || splits(after, prefix)) prefix--;
  let suffix = 0;
  while (suffix < max - prefix && before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)) suffix++;
  while (suffix > 0 && (splits(before, before.length - suffix) || splits(after, after.length - suffix))) suffix--;
  return { start: prefix, end: before.length - suffix, text: after.slice(prefix, after.length - suffix) };
}
