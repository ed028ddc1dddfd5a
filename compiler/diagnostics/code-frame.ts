// A code frame for a terminal: the line of a span and the one above it, carets under the span by display width, long lines trimmed around it.
import stringWidth from 'string-width';
import type { Position } from './source.ts';

/** Lines wider than this (in terminal columns) are cut around the span, with `...` where text was left out. */
export const MAX_FRAME_WIDTH = 100;
/** How many columns of a cut line are kept before the span, when there are that many. */
const CONTEXT_BEFORE = 30;
const ELLIPSIS = '...';

interface Cell {
  readonly text: string;
  /** Terminal columns this character takes: 2 for East Asian wide characters, 0 for combining marks. */
  readonly width: number;
}

/** The characters of a line with their display widths (a tab counts 1 here and is kept as a tab). */
function cells(line: string): Cell[] {
  // U+2028 and U+2029 do not end a line for dlc (nor for SourceText); shown as spaces, they cannot end one on screen either
  return Array.from(line, (ch) => (ch === '\u2028' || ch === '\u2029' ? { text: ' ', width: 1 } : { text: ch, width: ch === '\t' ? 1 : stringWidth(ch) }));
}

function widthOf(cs: readonly Cell[]): number {
  return cs.reduce((sum, c) => sum + c.width, 0);
}

/** The part of a line between display columns `from` and `to` (0-based, half-open), with `...` where it was cut. */
function cut(line: readonly Cell[], from: number, to: number): Cell[] {
  const kept: Cell[] = [];
  let column = 0;
  for (const c of line) {
    if (column >= from && column + c.width <= to) kept.push(c);
    column += c.width;
  }
  const ellipsis = { text: ELLIPSIS, width: ELLIPSIS.length };
  return [...(from > 0 ? [ellipsis] : []), ...kept, ...(column > to ? [ellipsis] : [])];
}

/**
 * rustc-like and compatible with @babel/code-frame's plain output:
 *
 *       3 |   let y = relu
 *     > 4 |     (x)
 *         |     ^ message
 *
 * `start` and `end` are on one line (1-based, UTF-16 columns; `end` exclusive). A byte-order mark at the
 * start of the text is neither shown nor counted: positions given are already without it.
 */
export function codeFrame(text: string, start: Position, end: Position, message?: string): string {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|[\n\r]/);
  const lineNumber = Math.min(start.line, lines.length);
  const first = Math.max(1, lineNumber - 1);
  const gutterWidth = String(lineNumber).length;

  const marked = cells(lines[lineNumber - 1]);
  // the span in cells, from UTF-16 columns (a character outside the BMP is two units, one cell)
  const cellIndex = (column: number) => Array.from(lines[lineNumber - 1].slice(0, Math.max(0, column - 1))).length;
  const startCell = Math.min(cellIndex(start.column), marked.length);
  const endCell = Math.max(startCell, Math.min(cellIndex(end.column), marked.length));
  const startColumn = widthOf(marked.slice(0, startCell));
  const spanWidth = Math.max(1, widthOf(marked.slice(startCell, endCell)));

  // the window of display columns shown: all of a short line, or MAX_FRAME_WIDTH around the span
  const total = Math.max(...lines.slice(first - 1, lineNumber).map((l) => widthOf(cells(l))));
  let from = 0;
  let to = Number.POSITIVE_INFINITY;
  if (total > MAX_FRAME_WIDTH) {
    from = Math.max(0, Math.min(startColumn - CONTEXT_BEFORE, startColumn + spanWidth - MAX_FRAME_WIDTH + CONTEXT_BEFORE));
    if (from <= ELLIPSIS.length) from = 0;
    to = from + MAX_FRAME_WIDTH;
  }

  const out: string[] = [];
  for (let n = first; n <= lineNumber; n++) {
    const shown = cut(cells(lines[n - 1]), from, to);
    const gutter = ` ${String(n).padStart(gutterWidth)} |`;
    const body = shown.map((c) => c.text).join('');
    out.push(`${n === lineNumber ? '>' : ' '}${gutter}${body.length > 0 ? ` ${body}` : ''}`);
  }
  // the caret line keeps the tabs of the text before the span, so it lines up however wide a tab is drawn
  const before: Cell[] = from > 0 ? [{ text: ELLIPSIS, width: ELLIPSIS.length }] : [];
  for (let i = 0, column = 0; i < startCell; column += marked[i].width, i++) if (column >= from) before.push(marked[i]);
  const spacing = before.map((c) => (c.text === '\t' ? '\t' : ' '.repeat(c.width))).join('');
  const carets = '^'.repeat(Math.min(spanWidth, Math.max(1, to - Math.max(from, startColumn))));
  out.push(`  ${' '.repeat(gutterWidth)} | ${spacing}${carets}${message ? ` ${message}` : ''}`);
  return out.join('\n');
}
