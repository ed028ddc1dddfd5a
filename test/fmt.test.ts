// The formatter's layout of comments and blank lines, and its line width: each case printed, then printed again unchanged.
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';
import { stripSpans } from './ast-utils.ts';

/** Formats `text`, checking that it parsed cleanly, that the result means the same and is a fixed point. */
function fmt(text: string): string {
  const { program, diagnostics } = parse(text, 'test.dl');
  expect(diagnostics).toEqual([]);
  const once = print(program);
  const again = parse(once, 'test.dl');
  expect(again.diagnostics).toEqual([]);
  expect(print(again.program)).toBe(once);
  expect(stripAll(again.program)).toEqual(stripAll(program));
  return once;
}

/** The AST without spans or comments: what the program means. */
function stripAll(value: unknown): unknown {
  const bare = stripSpans(value);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'trivia' && k !== 'endComments').map(([k, x]) => [k, walk(x)]));
  };
  return walk(bare);
}

describe('blank lines before end comments', () => {
  it('keeps a blank line before the comments at the end of a block and of the file', () => {
    const text = 'model M {\n  input x: f32[B, 4]\n\n  // note at end of block\n}\n\n// commented-out code:\n// model Old {\n//   input x: f32[B, 4]\n// }\n';
    expect(fmt(text)).toBe(text);
  });

  it('drops a blank line at the start of a block that holds only comments, and keeps at most one', () => {
    expect(fmt('model M {\n\n  // only a comment\n\n\n  // and another\n}\n')).toBe('model M {\n  // only a comment\n\n  // and another\n}\n');
  });
});

describe('block comments', () => {
  it('re-indents the further lines of a block comment by the shift of its first line', () => {
    const text = 'layer L(n: int) {\n        /* Weight matrix,\n         * glorot init. */\n        param w: f32[n, n] = zeros\n}\n';
    expect(fmt(text)).toBe('layer L(n: int) {\n  /* Weight matrix,\n   * glorot init. */\n  param w: f32[n, n] = zeros\n}\n');
  });

  it('replaces tab indentation in a block comment, so no tab is left beside the spaces', () => {
    const text = 'model M {\n\tinput x: f32[B, 4]\n\t/* multi\n\t   line\n\n\t   comment */\n\toutput y = x\n}\n';
    expect(fmt(text)).toBe('model M {\n  input x: f32[B, 4]\n  /* multi\n     line\n\n     comment */\n  output y = x\n}\n');
  });

  it('puts a further line that is less indented than the comment at the new indentation', () => {
    const text = 'model M {\n    input x: f32[B, 4]\n    /* a\n  b\nc */\n    output y = x\n}\n';
    expect(fmt(text)).toBe('model M {\n  input x: f32[B, 4]\n  /* a\n  b\n  c */\n  output y = x\n}\n');
  });
});
