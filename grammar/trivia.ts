// Attaches comments and blank lines to the statements around them, so the formatter can print them back.
import type { IToken } from 'chevrotain';
import { tokenEnd } from './cst-to-ast.ts';
import type { Block, ListLayout, Program, Span, Stmt, Trivia } from './ast.ts';

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
        ...(rebuilt.trivia.lists ? { lists: rebuilt.trivia.lists } : {}),
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
    const free = inside.filter((c) => !claimed.has(c));
    const lists = listLayouts(stmt, free, claimed);
    const withLists = lists.length > 0 ? ({ ...rebuilt, trivia: { ...rebuilt.trivia, lists } } as Stmt) : rebuilt;
    return { rebuilt: withLists, leftover: free.filter((c) => !claimed.has(c)) };
  }

  /**
   * The statement's bracketed lists that were written one item a line (a line break after the opening
   * bracket) or that have comments between their items; those comments are claimed, each kept beside
   * its item: after it when on its line, else before the next (or before the closing bracket).
   */
  function listLayouts(stmt: Stmt, free: readonly Comment[], claimed: Set<Comment>): ListLayout[] {
    const startingAt = new Map(free.map((c) => [c.start, c]));
    const layouts: ListLayout[] = [];
    for (const { items, from, afterDot } of bracketedLists(stmt)) {
      // the opening bracket: on from where the list's node or its callee ends, over blanks, comments and
      // a parenthesised callee's `)`
      let open = from;
      for (;;) {
        while (open < items[0].span.start && (/[\s)]/.test(source[open]) || (afterDot && source[open] === '.'))) open++;
        const c = startingAt.get(open);
        if (!c) break;
        open = c.end;
      }
      if (source[open] !== '(' && source[open] !== '[' && source[open] !== '{') continue;
      // the closing bracket: on from the last item over blanks, comments and a comma
      let close = items.at(-1)!.span.end;
      for (;;) {
        while (close < source.length && /[\s,]/.test(source[close])) close++;
        const c = startingAt.get(close);
        if (!c) break;
        close = c.end;
      }
      const leading: string[][] = items.map(() => []);
      const inline: string[][] = items.map(() => []);
      const trailing: string[][] = items.map(() => []);
      const end: string[] = [];
      let any = false;
      for (let i = 0; i <= items.length; i++) {
        const from = i === 0 ? open + 1 : items[i - 1].span.end;
        const to = i === items.length ? close : items[i].span.start;
        // the comma after the previous item: a comment after it on the next item's line goes with that item
        let comma = from;
        for (;;) {
          while (comma < to && /\s/.test(source[comma])) comma++;
          const c = startingAt.get(comma);
          if (!c) break;
          comma = c.end;
        }
        for (const c of free) {
          if (c.start < from || c.end > to || claimed.has(c)) continue;
          claimed.add(c);
          any = true;
          const beforeNext = i < items.length && (i === 0 || c.start > comma) && lineOf(c.end - 1) === lineOf(items[i].span.start);
          if (beforeNext) inline[i].push(c.text);
          else if (i > 0 && lineOf(c.start) === lineOf(items[i - 1].span.end - 1)) trailing[i - 1].push(c.text);
          else if (i < items.length) leading[i].push(c.text);
          else end.push(c.text);
        }
      }
      if (any || /[\n\r]/.test(source.slice(open, items[0].span.start))) {
        layouts.push({ at: items[0].span.start, leading, trailing, end, ...(inline.some((cs) => cs.length > 0) ? { inline } : {}) });
      }
    }
    return layouts;
  }

  const body = processBlock(program.body, comments);
  const stmts = body.stmts.map((s, i) =>
    i > 0 && !s.trivia.blankBefore && forcedBlankLine(body.stmts[i - 1], s) ? ({ ...s, trivia: { ...s.trivia, blankBefore: true } } as Stmt) : s,
  );
  return { ...program, body: { ...body, stmts } };
}

/** Where each kind of node keeps a bracketed list that may be written one item a line. */
const LIST_FIELDS: Readonly<Record<string, string>> = { Call: 'args', List: 'items', Tuple: 'items', Lambda: 'params', Layer: 'params', Model: 'params', Fn: 'params', Forward: 'params', Train: 'args', Use: 'imports' };

interface ListSite {
  readonly items: readonly { readonly span: Span }[];
  /** Where to look on from for the opening bracket. */
  readonly from: number;
  /** Whether a `.` comes before the bracket (an import list: `std.nn.{`). */
  readonly afterDot?: boolean;
}

/** The non-empty bracketed lists of a statement, outside its blocks (their statements have their own). */
function bracketedLists(stmt: Stmt): ListSite[] {
  const found: ListSite[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const node = value as Record<string, unknown> & { kind?: string; span?: Span };
    if (node.kind === 'Block') return;
    const field = node.kind ? LIST_FIELDS[node.kind] : undefined;
    const items = field ? node[field] : undefined;
    if (Array.isArray(items) && items.length > 0 && node.span) {
      // an import list's `{` comes after its source (`std.nn`, `"./x.dl"`) and a `.`
      const source = node.kind === 'Use' ? (node.source as { span: Span } | readonly { span: Span }[]) : undefined;
      const named = (source ? (Array.isArray(source) ? source.at(-1) : source) : (node.name ?? node.model ?? node.callee)) as { span: Span } | undefined;
      const from = named ? named.span.end : node.span.start + (node.kind === 'Forward' ? 'forward'.length : node.kind === 'Lambda' ? 'fn'.length : 0);
      found.push({ items: items as { span: Span }[], from, ...(source ? { afterDot: true } : {}) });
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'span' && k !== 'trivia') walk(v);
  };
  walk(stmt);
  return found;
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
