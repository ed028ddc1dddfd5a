// Shared helpers for the parser suites: span rendering and stripping, so ASTs can be compared as plain data.
import type { Span } from '../grammar/ast.ts';

function isSpan(value: unknown): value is Span {
  return typeof value === 'object' && value !== null && 'start' in value && 'end' in value && 'file' in value;
}

/** Deep copy of an AST with every span removed (and the Program's `file`), for structural comparison. */
export function stripSpans(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSpans);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'span' || (k === 'file' && typeof v === 'string')) continue;
    out[k] = stripSpans(v);
  }
  return out;
}

/** 1-based line and column of each offset in `source`; `\n`, `\r\n` and lone `\r` end a line. */
export function lineColumn(source: string): (offset: number) => string {
  const starts = [0];
  for (let i = 0; i < source.length; i++) {
    const ch = source.charCodeAt(i);
    if (ch === 10 || (ch === 13 && source.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return `${lo + 1}:${offset - starts[lo] + 1}`;
  };
}

/** Deep copy of an AST with every span written as "line:col-line:col" (end exclusive), for golden files. */
export function renderSpans(value: unknown, source: string): unknown {
  const at = lineColumn(source);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    if (isSpan(v)) return `${at(v.start)}-${at(v.end)}`;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x);
    return out;
  };
  return walk(value);
}

/** JSON with two-space indentation, but any object or array that fits in `width` characters kept on one line. */
export function compactJson(value: unknown, width = 100): string {
  const write = (v: unknown, indent: string): string => {
    const flat = JSON.stringify(v);
    if (v === null || typeof v !== 'object' || flat.length + indent.length <= width) return flat;
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[\n${v.map((x) => inner + write(x, inner)).join(',\n')}\n${indent}]`;
    }
    const entries = Object.entries(v);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, inner)}`).join(',\n')}\n${indent}}`;
  };
  return write(value, '');
}
