// Renders diagnostics for people (a code frame of the user's own text) or for tools (JSON).
import type { Span } from '../../grammar/ast.ts';
import { codeFrame } from './code-frame.ts';
import type { Diagnostic } from './diagnostic.ts';
import type { SourceText } from './source.ts';

export type SourceLookup = (file: string) => SourceText | undefined;

function frame(source: SourceText, span: Span, message: string | undefined): string {
  const start = source.position(span.start);
  // An empty span (a missing token) still gets one caret; a span over several lines, one at its start.
  const end = source.position(Math.max(span.end, span.start + 1));
  return codeFrame(source.text, start, end.line === start.line ? end : { line: start.line, column: start.column + 1 }, message);
}

function where(source: SourceText | undefined, span: Span): string {
  if (!source) return span.file;
  const p = source.position(span.start);
  return `${span.file}:${p.line}:${p.column}`;
}

/** rustc-style: `error[E0010]: message`, the location, a frame of the primary span, secondary frames, help. */
export function renderDiagnostic(d: Diagnostic, lookup: SourceLookup): string {
  const source = lookup(d.span.file);
  const lines = [`${d.severity}[${d.code}]: ${d.message}`, `  --> ${where(source, d.span)}`];
  if (source) lines.push(frame(source, d.span, d.label));
  for (const label of d.secondary) {
    const s = lookup(label.span.file);
    lines.push(`  ::: ${where(s, label.span)}`);
    if (s) lines.push(frame(s, label.span, label.message));
  }
  if (d.help) lines.push(`  = help: ${d.help}`);
  return lines.join('\n');
}

export interface JsonSpan {
  readonly file: string;
  readonly start: { readonly offset: number; readonly line: number; readonly column: number };
  readonly end: { readonly offset: number; readonly line: number; readonly column: number };
}

function jsonSpan(span: Span, lookup: SourceLookup): JsonSpan {
  const s = lookup(span.file);
  const pos = (offset: number) => ({ offset, ...(s ? s.position(offset) : { line: 0, column: 0 }) });
  return { file: span.file, start: pos(span.start), end: pos(span.end) };
}

export function diagnosticToJson(d: Diagnostic, lookup: SourceLookup): object {
  return {
    code: d.code,
    severity: d.severity,
    message: d.message,
    span: jsonSpan(d.span, lookup),
    ...(d.label !== undefined ? { label: d.label } : {}),
    secondary: d.secondary.map((l) => ({ message: l.message, span: jsonSpan(l.span, lookup) })),
    ...(d.help !== undefined ? { help: d.help } : {}),
  };
}
