// Diagnostics as values: a registered code, a primary span, secondary labels and an optional help line.
import { distance } from 'fastest-levenshtein';
import type { Span } from '../../grammar/ast.ts';
import { CODES, type Code } from './codes.ts';

export interface Label {
  readonly span: Span;
  readonly message: string;
}

export interface Diagnostic {
  readonly code: Code;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  readonly span: Span;
  /** What to print under the primary span (e.g. the shape found there). */
  readonly label?: string;
  readonly secondary: readonly Label[];
  readonly help?: string;
}

export function diagnostic(
  code: Code,
  message: string,
  span: Span,
  extra: { label?: string; secondary?: readonly Label[]; help?: string } = {},
): Diagnostic {
  return {
    code,
    severity: CODES[code].severity,
    message,
    span,
    ...(extra.label !== undefined ? { label: extra.label } : {}),
    secondary: extra.secondary ?? [],
    ...(extra.help !== undefined ? { help: extra.help } : {}),
  };
}

/** Collects diagnostics for one run and caps them, like graphql-js, so hostile input cannot flood the output. */
export class DiagnosticBag {
  static readonly LIMIT = 100;
  readonly items: Diagnostic[] = [];
  truncated = false;

  add(d: Diagnostic): void {
    if (this.items.length >= DiagnosticBag.LIMIT) {
      this.truncated = true;
      return;
    }
    this.items.push(d);
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

/** The closest candidate within a distance that scales with the word's length, for "did you mean". */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const s = suggest(word, candidates);
  return s === undefined ? undefined : `did you mean \`${s}\`?`;
}
