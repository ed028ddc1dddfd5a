// Diagnostics as values: a registered code, a primary span, secondary labels and an optional help line.
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

  /** Each reported diagnostic's code, span and message: a body unrolled n times (a scan, a `for`) reports its error once. */
  private readonly seen = new Set<string>();

  add(d: Diagnostic): void {
    const key = `${d.code}\u0000${d.span.file}\u0000${d.span.start}\u0000${d.span.end}\u0000${d.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
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

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment), because
 * the commonest typo in a name is a transposition: `rleu` is one edit from `relu`, not two.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = Array.from({ length: rows }, (_, i) => new Array<number>(cols).fill(0).map((_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate within a distance that scales with the word's length, for "did you mean". */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  // A third of the word, rounded up, so a swapped pair in a short word (rleu -> relu) still counts.
  const limit = Math.min(3, Math.ceil(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    if (Math.abs(candidate.length - word.length) > limit) continue;
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d <= limit && d < word.length && d < bestDistance) {
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

/** Keyword names from PyTorch and NumPy, and dlc's for them. */
const FOREIGN_KEYWORDS: Readonly<Record<string, string>> = { dim: 'axis', keepdim: 'keepdims', axes: 'axis', ignore_idx: 'ignore_index', negative_slope: 'slope' };

/** Function names from PyTorch and NumPy, and dlc's for them (edit distance would offer `range` for `randn`). */
const FOREIGN_NAMES: Readonly<Record<string, string>> = { randn: 'random_normal', rand: 'random_uniform', randn_like: 'random_normal', rand_like: 'random_uniform', cat: 'concat', clamp: 'clip' };

/** "dlc calls it `random_normal`" for a function another framework names, when dlc's name is visible. */
export function foreignName(name: string, visible: Iterable<string>): string | undefined {
  const ours = FOREIGN_NAMES[name];
  return ours !== undefined && [...visible].includes(ours) ? `dlc calls it \`${ours}\`${name.endsWith('_like') ? ` (\`${ours}(shape(x))\`)` : ''}` : undefined;
}

/** "dlc calls it `axis`" for a keyword another framework uses, when the callee has that parameter. */
export function foreignKeyword(key: string, names: Iterable<string>): string | undefined {
  const ours = FOREIGN_KEYWORDS[key];
  return ours !== undefined && [...names].includes(ours) ? `dlc calls it \`${ours}\`;` : undefined;
}
