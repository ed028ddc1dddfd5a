// Turns `dlc check --json` output into editor-neutral diagnostic records (0-based ranges) grouped by file, and merges what several open buffers report; no VS Code here.
import { isAbsolute, normalize, resolve } from 'node:path';

/** One position of `dlc check --json` (compiler/diagnostics/render.ts): 1-based line and column in UTF-16 code units. */
export interface JsonPosition {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

export interface JsonSpan {
  readonly file: string;
  readonly start: JsonPosition;
  readonly end: JsonPosition;
}

/** One diagnostic as `dlc check --json` prints it (diagnosticToJson). */
export interface JsonDiagnostic {
  readonly code: string;
  readonly severity: string;
  readonly message: string;
  readonly span: JsonSpan;
  readonly label?: string;
  readonly secondary: readonly { readonly message: string; readonly span: JsonSpan }[];
  readonly help?: string;
}

/** A 0-based range, as editors count: lines from 0, characters in UTF-16 code units from 0. */
export interface Range {
  readonly startLine: number;
  readonly startCharacter: number;
  readonly endLine: number;
  readonly endCharacter: number;
}

/** A place another part of the diagnostic points at (a secondary label, or the primary span's label). */
export interface RelatedRecord {
  readonly file: string;
  readonly range: Range;
  readonly message: string;
}

export type Severity = 'error' | 'warning' | 'information';

/** A diagnostic ready to publish: the absolute file it belongs to, its range, code, severity, message (help appended) and related places. */
export interface DiagnosticRecord {
  readonly file: string;
  readonly range: Range;
  readonly severity: Severity;
  readonly code: string;
  readonly message: string;
  readonly related: readonly RelatedRecord[];
}

/** What `dlc check --json -` said: diagnostics by absolute file, or why there are none to show. */
export type CheckOutput =
  | { readonly kind: 'diagnostics'; readonly file: string; readonly byFile: ReadonlyMap<string, readonly DiagnosticRecord[]> }
  | { readonly kind: 'failed'; readonly message: string };

/** The absolute, normalized path of a file named in dlc's output; relative names (the standard library's `stdlib/...`) are taken from `cwd`. */
export function absoluteFile(file: string, cwd: string): string {
  return isAbsolute(file) ? normalize(file) : resolve(cwd, file);
}

function rangeOf(span: JsonSpan): Range {
  // dlc prints line 0, column 0 for a file whose text it no longer has; keep such a span at the top
  const line = (p: JsonPosition) => Math.max(0, p.line - 1);
  const character = (p: JsonPosition) => Math.max(0, p.column - 1);
  return { startLine: line(span.start), startCharacter: character(span.start), endLine: line(span.end), endCharacter: character(span.end) };
}

function severityOf(severity: string): Severity {
  if (severity === 'error' || severity === 'warning') return severity;
  return severity === 'note' || severity === 'info' || severity === 'information' ? 'information' : 'error';
}

/** One JSON diagnostic as a record: 0-based ranges, the help line appended to the message, the primary label and the secondary labels as related places. */
export function toRecord(d: JsonDiagnostic, cwd: string): DiagnosticRecord {
  const file = absoluteFile(d.span.file, cwd);
  const range = rangeOf(d.span);
  const related: RelatedRecord[] = [];
  if (d.label !== undefined && d.label !== '') related.push({ file, range, message: d.label });
  for (const label of d.secondary ?? []) related.push({ file: absoluteFile(label.span.file, cwd), range: rangeOf(label.span), message: label.message });
  const message = d.help !== undefined && d.help !== '' ? `${d.message}\nhelp: ${d.help}` : d.message;
  return { file, range, severity: severityOf(d.severity), code: d.code, message, related };
}

/** Records grouped by the file they belong to; `alwaysInclude` (the checked buffer) gets an entry even when it is clean, so its old diagnostics are cleared. */
export function groupByFile(records: readonly DiagnosticRecord[], alwaysInclude: readonly string[] = []): Map<string, DiagnosticRecord[]> {
  const byFile = new Map<string, DiagnosticRecord[]>();
  for (const file of alwaysInclude) byFile.set(file, []);
  for (const r of records) {
    const list = byFile.get(r.file);
    if (list) list.push(r);
    else byFile.set(r.file, [r]);
  }
  return byFile;
}

function isJsonDiagnostic(v: unknown): v is JsonDiagnostic {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  const span = d.span as Record<string, unknown> | undefined;
  return typeof d.code === 'string' && typeof d.message === 'string' && typeof span === 'object' && span !== null && typeof span.file === 'string' && typeof span.start === 'object' && typeof span.end === 'object';
}

/**
 * Reads `dlc check --json --stdin-filepath <bufferFile> -`: exit 0 or 1 with a JSON array on stdout is
 * a result (the buffer always gets an entry, so a clean buffer clears its diagnostics); anything else
 * (an internal error, an old dlc without --json, a crash) is a failure with dlc's own words.
 */
export function parseCheckOutput(run: { readonly exitCode: number | null; readonly stdout: string; readonly stderr: string }, bufferFile: string, cwd: string): CheckOutput {
  const why = () => (run.stderr.trim() || run.stdout.trim() || `dlc exited with code ${run.exitCode}`).split('\n').slice(0, 20).join('\n');
  if (run.exitCode !== 0 && run.exitCode !== 1) return { kind: 'failed', message: why() };
  let parsed: unknown;
  try {
    parsed = JSON.parse(run.stdout);
  } catch {
    return { kind: 'failed', message: why() };
  }
  if (!Array.isArray(parsed) || !parsed.every(isJsonDiagnostic)) return { kind: 'failed', message: `dlc check --json printed something other than a list of diagnostics: ${run.stdout.slice(0, 200)}` };
  const records = parsed.map((d) => toRecord(d, cwd));
  const file = absoluteFile(bufferFile, cwd);
  return { kind: 'diagnostics', file, byFile: groupByFile(records, [file]) };
}

function recordKey(r: DiagnosticRecord): string {
  const { range: g } = r;
  return [r.code, r.severity, g.startLine, g.startCharacter, g.endLine, g.endCharacter, r.message].join('\u0000');
}

/**
 * What every checked buffer (an owner) last reported, merged per file: a file imported by two open
 * buffers, or open itself, shows each diagnostic once, and closing one buffer removes only what it
 * reported. A file open with unsaved edits shows only what its own buffer's check reported: the
 * others' checks read it from disk, so their diagnostics for it are at the saved text's positions.
 */
export class DiagnosticStore {
  private readonly byOwner = new Map<string, ReadonlyMap<string, readonly DiagnosticRecord[]>>();
  /** The file each owner's buffer is (the file its check was run as). */
  private readonly checkedFile = new Map<string, string>();
  /** The files open with edits not yet saved. */
  private readonly unsaved = new Set<string>();

  /** Replaces what `owner`, the buffer of `checkedFile`, reported; returns the files whose merged diagnostics may have changed. */
  set(owner: string, byFile: ReadonlyMap<string, readonly DiagnosticRecord[]>, checkedFile?: string): string[] {
    const before = this.byOwner.get(owner);
    this.byOwner.set(owner, byFile);
    if (checkedFile !== undefined) this.checkedFile.set(owner, checkedFile);
    return [...new Set([...(before?.keys() ?? []), ...byFile.keys()])];
  }

  /** Forgets what `owner` reported (its buffer was closed); returns the files to republish. */
  delete(owner: string): string[] {
    const before = this.byOwner.get(owner);
    this.byOwner.delete(owner);
    this.checkedFile.delete(owner);
    return [...(before?.keys() ?? [])];
  }

  /**
   * Says whether `file` is open with unsaved edits (its text differs from the disk's, which other
   * buffers' checks read); returns the files to republish (`file`, when that changed).
   */
  setUnsaved(file: string, unsaved: boolean): string[] {
    if (this.unsaved.has(file) === unsaved) return [];
    if (unsaved) this.unsaved.add(file);
    else this.unsaved.delete(file);
    return [file];
  }

  /** The diagnostics for `file`, each once, in the order they were reported: every owner's, or only its own buffer's while it has unsaved edits. */
  get(file: string): DiagnosticRecord[] {
    const seen = new Set<string>();
    const out: DiagnosticRecord[] = [];
    const onlyOwn = this.unsaved.has(file);
    for (const [owner, byFile] of this.byOwner) {
      if (onlyOwn && this.checkedFile.get(owner) !== file) continue;
      for (const r of byFile.get(file) ?? []) {
        const key = recordKey(r);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(r);
      }
    }
    return out;
  }

  owners(): string[] {
    return [...this.byOwner.keys()];
  }
}
