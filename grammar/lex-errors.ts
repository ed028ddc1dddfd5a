// Turns the lexer's errors into one diagnostic per mistake: a non-ASCII letter in a word, a `#` comment, any other stray character.
import { createTokenInstance, tokenMatcher, type ILexingError, type IToken } from 'chevrotain';
import type { Span } from './ast.ts';
import { tokenEnd } from './cst-to-ast.ts';
import * as T from './lexer.ts';
import { diagnostic, type Diagnostic } from '../compiler/diagnostics/diagnostic.ts';

export interface RepairedTokens {
  /** The tokens with each word that holds a non-ASCII letter joined into one Identifier, and `#` comments removed. */
  readonly tokens: IToken[];
  readonly comments: IToken[];
  readonly diagnostics: Diagnostic[];
}

/** Letters, combining marks and digits of any script: the characters a word of another language is made of. */
const WORD_CHARACTER = /^[\p{L}\p{M}\p{N}_]+$/u;

/**
 * The lexer skips each run of characters it cannot read and keeps going, so `héllo` reads as `h`, an
 * error and `llo`, and `# a comment` as an error and the words `a comment`: each such mistake would
 * cascade into syntax errors. Here a word with a non-ASCII letter becomes one Identifier (so that its
 * uses still resolve) with one error, and a `#` comment is dropped up to the end of its line.
 */
export function repairLexErrors(source: string, file: string, tokens: readonly IToken[], comments: readonly IToken[], errors: readonly ILexingError[]): RepairedTokens {
  if (errors.length === 0) return { tokens: [...tokens], comments: [...comments], diagnostics: [] };
  const diagnostics: Diagnostic[] = [];
  const span = (start: number, end: number): Span => ({ file, start, end });
  // `#`: skip to the end of the line, lexer errors inside included (`# don't`, `# café`)
  const skipped: [number, number][] = [];
  for (const e of errors) {
    if (source[e.offset] !== '#' || (skipped.length > 0 && e.offset < skipped.at(-1)![1])) continue;
    skipped.push([e.offset, endOfLine(source, e.offset)]);
    diagnostics.push(diagnostic('E0001', 'unexpected character `#`: `#` does not start a comment', span(e.offset, e.offset + 1), {
      help: 'comments start with `//` (or `/* ... */`); write `// ...`',
    }));
  }
  const isSkipped = inRanges(skipped);
  const kept = tokens.filter((t) => !isSkipped(t.startOffset));
  const keptComments = comments.filter((t) => !isSkipped(t.startOffset));
  const remaining = errors.filter((e) => !isSkipped(e.offset));

  // a word with letters of another script: join the pieces around each error into one Identifier
  const byStart = new Map(kept.map((t) => [t.startOffset, t]));
  const byEnd = new Map(kept.map((t) => [tokenEnd(t), t]));
  const errorAt = new Map(remaining.map((e) => [e.offset, e]));
  const done = new Set<ILexingError>();
  const joined = new Set<IToken>();
  const words: IToken[] = [];
  for (const e of remaining) {
    if (done.has(e) || !WORD_CHARACTER.test(errorText(source, e))) continue;
    let start = e.offset;
    const before = byEnd.get(start);
    const pieces: IToken[] = [];
    if (before && isWordPiece(before) && !tokenMatcher(before, T.Integer)) {
      start = before.startOffset;
      pieces.push(before);
    }
    let end = e.offset;
    const bad: ILexingError[] = [];
    for (;;) {
      const next = errorAt.get(end);
      if (next && WORD_CHARACTER.test(errorText(source, next))) {
        bad.push(next);
        done.add(next);
        end = next.offset + next.length;
        continue;
      }
      const after = byStart.get(end);
      if (!after || !isWordPiece(after)) break;
      pieces.push(after);
      end = tokenEnd(after);
      if (!errorAt.has(end)) break;
    }
    for (const p of pieces) joined.add(p);
    const image = source.slice(start, end);
    const first = pieces[0]?.startOffset === start ? pieces[0] : undefined;
    const line = first?.startLine ?? e.line ?? 1;
    const column = first?.startColumn ?? e.column ?? 1;
    words.push(createTokenInstance(T.Identifier, image, start, end - 1, line, line, column, column + image.length - 1));
    const characters = bad.map((b) => errorText(source, b)).join('');
    const ascii = asciiSpelling(image);
    const last = bad.at(-1)!;
    const message = characters === image ? `unexpected characters \`${image}\`: a name cannot have them` : `unexpected character${[...characters].length > 1 ? 's' : ''} \`${characters}\` in the name \`${image}\``;
    diagnostics.push(diagnostic('E0001', message, span(bad[0].offset, last.offset + Math.max(1, last.length)), {
      help: `names are ASCII letters, digits and \`_\`${ascii ? `: write \`${ascii}\`` : ''}`,
    }));
  }
  for (const e of remaining) {
    if (done.has(e)) continue;
    const length = Math.max(1, e.length);
    const text = source.slice(e.offset, e.offset + length);
    diagnostics.push(diagnostic('E0001', `unexpected character${length > 1 ? 's' : ''} \`${printable(text)}\``, span(e.offset, e.offset + length)));
  }
  const merged = [...kept.filter((t) => !joined.has(t)), ...words].sort((a, b) => a.startOffset - b.startOffset);
  return { tokens: merged, comments: keptComments, diagnostics };
}

/** Whether an offset lies in one of the sorted, disjoint half-open ranges; fastest when the offsets asked do not decrease. */
function inRanges(ranges: readonly [number, number][]): (offset: number) => boolean {
  let i = 0;
  let last = -1;
  return (offset) => {
    if (offset < last) i = 0;
    last = offset;
    while (i < ranges.length && ranges[i][1] <= offset) i++;
    return i < ranges.length && offset >= ranges[i][0];
  };
}

function errorText(source: string, e: ILexingError): string {
  return source.slice(e.offset, e.offset + Math.max(1, e.length));
}

/** A token that may be part of a word: a name, a keyword or a number written against letters (`x2`). */
function isWordPiece(t: IToken): boolean {
  return tokenMatcher(t, T.AnyWord) || tokenMatcher(t, T.Integer);
}

function endOfLine(source: string, offset: number): number {
  for (let i = offset; i < source.length; i++) if (source[i] === '\n' || source[i] === '\r') return i;
  return source.length;
}

/** `héllo` → `hello`: the word without its accents, when that leaves a valid ASCII name. */
function asciiSpelling(word: string): string | undefined {
  const stripped = word.normalize('NFD').replace(/\p{M}/gu, '');
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(stripped) ? stripped : undefined;
}

/** The text with characters one cannot see (controls, zero-width and other format characters, unusual spaces) as \u{..} escapes. */
export function printable(text: string): string {
  return [...text].map((ch) => (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch) ? `\\u{${ch.codePointAt(0)!.toString(16)}}` : ch)).join('');
}
