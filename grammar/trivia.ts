// Attaches comments and blank lines to the statements around them, so the formatter can print them back.
import type { IToken } from 'chevrotain';
import { tokenEnd } from './cst-to-ast.ts';
import type { Block, Program, Stmt, Trivia } from './ast.ts';

interface Comment {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Each comment goes to the innermost block around it: as a trailing comment of the statement that
 * ends on its line, else as a leading comment of the next statement (comments inside a statement's
 * expression move in front of it), else to the block's end. The AST stays readonly: this rebuilds it.
 */
export function attachTrivia(program: Program, commentTokens: readonly IToken[], source: string): Program {
  const lineStarts = computeLineStarts(source);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const comments: Comment[] = commentTokens
    .map((t) => ({ text: commentText(t.image, indentOfLine(source, lineStarts[lineOf(t.startOffset)])), start: t.startOffset, end: tokenEnd(t) }))
    .sort((a, b) => a.start - b.start);

  function processBlock(block: Block, inside: readonly Comment[]): Block {
    const stmts = block.stmts;
    const leading: Comment[][] = stmts.map(() => []);
    const trailing: Comment[][] = stmts.map(() => []);
    const innerOf: Comment[][] = stmts.map(() => []);
    const endComments: Comment[] = [];
    let s = 0;
    for (const c of inside) {
      while (s < stmts.length && stmts[s].span.end <= c.start) s++;
      // now stmts[s] (if any) is the first statement that ends after the comment starts
      if (s < stmts.length && stmts[s].span.start <= c.start) {
        innerOf[s].push(c);
        continue;
      }
      const prev = s - 1;
      const commentLine = lineOf(c.start);
      const nextStartsOnSameLine = s < stmts.length && lineOf(stmts[s].span.start) === lineOf(c.end);
      if (prev >= 0 && lineOf(stmts[prev].span.end - 1) === commentLine && !nextStartsOnSameLine) {
        trailing[prev].push(c);
      } else if (s < stmts.length) {
        leading[s].push(c);
      } else {
        endComments.push(c);
      }
    }

    const newStmts = stmts.map((stmt, i): Stmt => {
      const { rebuilt, leftover } = processStatement(stmt, innerOf[i]);
      const lead = [...leading[i], ...leftover];
      const firstLine = lineOf(lead.length > 0 ? Math.min(lead[0].start, stmt.span.start) : stmt.span.start);
      let blankBefore = false;
      if (i > 0) {
        const prev = stmts[i - 1];
        const prevEnd = trailing[i - 1].length > 0 ? trailing[i - 1].at(-1)!.end : prev.span.end;
        blankBefore = firstLine - lineOf(Math.max(prev.span.start, prevEnd - 1)) > 1;
      }
      // Blank lines between leading comments, and between them and the statement, are kept (at most one).
      const leadingTexts: string[] = [];
      lead.forEach((c, k) => {
        leadingTexts.push(c.text);
        const nextStart = k + 1 < lead.length ? lead[k + 1].start : stmt.span.start;
        if (nextStart > c.end && lineOf(nextStart) - lineOf(c.end - 1) > 1) leadingTexts.push('');
      });
      const trivia: Trivia = {
        leading: leadingTexts,
        trailing: trailing[i].map((c) => c.text),
        blankBefore,
      };
      return { ...rebuilt, trivia } as Stmt;
    });
    // Blank lines before the comments at the end of the block are kept (at most one), but not at its start.
    const endTexts: string[] = [];
    let previousEnd = stmts.length > 0 ? Math.max(stmts.at(-1)!.span.end, trailing[stmts.length - 1].at(-1)?.end ?? 0) : -1;
    for (const c of endComments) {
      if (previousEnd >= 0 && lineOf(c.start) - lineOf(previousEnd - 1) > 1) endTexts.push('');
      endTexts.push(c.text);
      previousEnd = c.end;
    }
    return { ...block, stmts: newStmts, endComments: endTexts };
  }

  /** Hands comments inside nested blocks to those blocks; the rest of the comments inside are returned. */
  function processStatement(stmt: Stmt, inside: readonly Comment[]): { rebuilt: Stmt; leftover: Comment[] } {
    const claimed = new Set<Comment>();
    const rebuild = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(rebuild);
      if (value === null || typeof value !== 'object') return value;
      const obj = value as Record<string, unknown>;
      if (obj.kind === 'Block') {
        const b = obj as unknown as Block;
        const mine = inside.filter((c) => c.start >= b.span.start && c.end <= b.span.end);
        for (const c of mine) claimed.add(c);
        return processBlock(b, mine);
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) out[k] = k === 'span' || k === 'trivia' ? v : rebuild(v);
      return out;
    };
    const rebuilt = rebuild(stmt) as Stmt;
    return { rebuilt, leftover: inside.filter((c) => !claimed.has(c)) };
  }

  const body = processBlock(program.body, comments);
  const stmts = body.stmts.map((s, i) =>
    i > 0 && !s.trivia.blankBefore && forcedBlankLine(body.stmts[i - 1], s) ? ({ ...s, trivia: { ...s.trivia, blankBefore: true } } as Stmt) : s,
  );
  return { ...program, body: { ...body, stmts } };
}

/** Top-level declarations other than runs of `use` or of `let` always stand apart by one blank line. */
function forcedBlankLine(previous: Stmt, next: Stmt): boolean {
  return !((previous.kind === 'Use' && next.kind === 'Use') || (previous.kind === 'Let' && next.kind === 'Let'));
}

/**
 * A comment's text as the printer wants it: `\r\n` as `\n`, no trailing blanks, and each further line of a
 * block comment without the indentation of the line the comment starts on, so that the printer can put
 * the new indentation there instead and the comment's lines move together. A further line indented
 * less than that (or differently) loses what it has of it, up to its length: it lands at the new indentation.
 */
function commentText(image: string, indent: string): string {
  const lines = image.replace(/\r\n?/g, '\n').replace(/[ \t]+$/gm, '').split('\n');
  return lines
    .map((line, i) => {
      if (i === 0) return line;
      if (line.startsWith(indent)) return line.slice(indent.length);
      const own = /^[ \t]*/.exec(line)![0].length;
      return line.slice(Math.min(own, indent.length));
    })
    .join('\n');
}

/** The spaces and tabs that start the line beginning at `lineStart`. */
function indentOfLine(source: string, lineStart: number): string {
  return /^[ \t]*/.exec(source.slice(lineStart, lineStart + 256))![0];
}

function computeLineStarts(source: string): number[] {
  const starts = [0];
  for (let i = 0; i < source.length; i++) {
    const ch = source.charCodeAt(i);
    if (ch === 10) starts.push(i + 1);
    else if (ch === 13 && source.charCodeAt(i + 1) !== 10) starts.push(i + 1);
  }
  return starts;
}
