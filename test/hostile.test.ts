// Hostile inputs: huge files, huge expressions and absurd nesting are diagnosed, never a crash, and parsing stays linear.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_NESTING, parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { MAX_GRAPH_NODES } from '../compiler/elaborate/builder.ts';

const MB = 1 << 20;
const EXAMPLES_DIR = join(import.meta.dirname, '..', 'examples');
const MODEL = readdirSync(EXAMPLES_DIR)
  .filter((f) => f.endsWith('.dl'))
  .sort()
  .map((f) => readFileSync(join(EXAMPLES_DIR, f), 'utf8'))
  .join('\n');

/** The examples repeated until the text is at least `bytes` long. */
function modelText(bytes: number): string {
  return `${MODEL}\n`.repeat(Math.ceil(bytes / (MODEL.length + 1)));
}

function codes(source: string): string[] {
  return parse(source).diagnostics.map((d) => d.code);
}

describe('huge inputs', () => {
  it('parses a 1 MB file of realistic models without diagnostics, and prints it back', () => {
    const text = modelText(MB);
    const { program, diagnostics } = parse(text);
    expect(diagnostics).toEqual([]);
    expect(program.body.stmts.length).toBeGreaterThan(1000);
    expect(print(program).length).toBeGreaterThan(MB / 2);
  });

  it('parses a 1 MB single-expression list', () => {
    const count = Math.ceil(MB / 6);
    const items = Array.from({ length: count }, (_, i) => `${i % 1000}.5`).join(', ');
    const text = `let xs = [${items}]\n`;
    expect(text.length).toBeGreaterThanOrEqual(MB);
    const { program, diagnostics } = parse(text);
    expect(diagnostics).toEqual([]);
    const decl = program.body.stmts[0];
    expect(decl.kind === 'Let' && decl.value.kind === 'List' && decl.value.items.length).toBe(count);
  });

  it('parses a 1 MB comment and a 1 MB string', () => {
    expect(codes(`// ${'x'.repeat(MB)}\nlet a = 1\n`)).toEqual([]);
    expect(codes(`/* ${'x\n'.repeat(MB / 2)} */\nlet a = 1\n`)).toEqual([]);
    expect(codes(`let s = "${'x'.repeat(MB)}"\n`)).toEqual([]);
    expect(codes(`let s = "${'x'.repeat(MB)}\n`)).toContain('E0002');
  });

  it('rejects, without a stack overflow, a long left-associative chain that nests the tree (regression)', () => {
    // 20,000 operands build a tree 20,000 deep; the trivia pass and the printer used to overflow the stack
    const n = 20_000;
    expect(codes(`let s = ${'a + '.repeat(n)}a\n`)).toEqual(['E0012']);
    expect(codes(`let s = a${'.b'.repeat(n)}\n`)).toEqual(['E0012']);
    expect(codes(`let s = f${'(x)'.repeat(n)}\n`)).toEqual(['E0012']);
    expect(codes(`let s = ${'a and '.repeat(n)}a\n`)).toEqual(['E0012']);
    // the declarations before and after it survive
    const { program } = parse(`let a = 1\n\nfn s() = ${'a - '.repeat(n)}a\n\nfn t() = 1\n`);
    expect(program.body.stmts.map((s) => s.kind)).toEqual(['Let', 'Fn']);
    // 900 operands are fine
    expect(codes(`let s = ${'a + '.repeat(900)}a\n`)).toEqual([]);
  });
});

describe('too much work at compile time (E0309), never an exhausted heap', () => {
  it('refuses a range of a billion items at once', () => {
    const d = checkSource('model M {\n  input x: f32[B, 4]\n  let s = [i for i in 0..1000000000]\n  output y = x\n}\n', 'big.dl').diagnostics;
    expect(d.map((x) => [x.code, x.message])).toEqual([['E0309', 'the range 0..1000000000 has 1,000,000,000 items, more than the 1,000,000 a compile-time range may have']]);
    // a layer list is a comprehension too
    expect(checkSource('use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  layer ls = [Dense(4, 4) for i in 0..100000000]\n  output y = x\n}\n', 'big.dl').diagnostics.map((x) => x.code)).toEqual(['E0309']);
  });

  it('refuses a model whose unrolled loops pass the operation budget, once', { timeout: 60_000 }, () => {
    const d = checkSource('model M {\n  input x: f32[B, 4]\n  let y = x\n  for i in 0..100 {\n    for j in 0..3000 {\n      y = y + 1.0\n    }\n  }\n  output z = y\n}\n', 'big.dl').diagnostics;
    expect(d.map((x) => x.code)).toEqual(['E0309']);
    expect(d[0].message).toContain(`more than ${MAX_GRAPH_NODES.toLocaleString('en-US')} operations`);
  });
});

describe('odd but honest input', () => {
  it('reads a file that starts with a byte-order mark, and shows characters one cannot see as escapes', () => {
    expect(checkSource('\uFEFFmodel M {\n  input x: f32[B, 4]\n  output y = x\n}\n', 'bom.dl').diagnostics).toEqual([]);
    const zw = parse('model M {\n  output y = x\u200b\n}\n').diagnostics;
    expect(zw.map((d) => [d.code, d.message])).toEqual([['E0001', 'unexpected character `\\u{200b}`']]);
  });

  it('names an empty slice and an overflowing size where they are written', () => {
    const slice = checkSource('model M {\n  input x: f32[B, 4]\n  output y = x[:, 3:1]\n}\n', 'm.dl').diagnostics;
    expect(slice.map((d) => [d.code, d.message])).toEqual([['E0301', 'the slice `3:1` ends before it starts on an axis of size 4']]);
    const size = checkSource('model M(n: int = 2) {\n  input x: f32[B, 4]\n  param w: f32[4, n ** 100] = zeros\n  output y = x @ w\n}\n', 'm.dl').diagnostics;
    expect(size.map((d) => d.code)).toEqual(['E0305']);
    expect(size[0].message).toContain('a size must be a whole number below 2^53: `n ** 100` is 1.2676506002282294e+30');
  });
});

describe('deep nesting', () => {
  const DEPTH = 10_000;
  const cases: [string, string][] = [
    ['parentheses', `let x = ${'('.repeat(DEPTH)}1${')'.repeat(DEPTH)}\n`],
    ['brackets', `let x = ${'['.repeat(DEPTH)}1${']'.repeat(DEPTH)}\n`],
    ['braces', `let x = ${'{'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}\n`],
    ['unclosed brackets', `let x = ${'(['.repeat(DEPTH)}\n`],
    ['prefix minus', `let x = ${'-'.repeat(DEPTH)}1\n`],
    ['prefix not', `let x = ${'not '.repeat(DEPTH)}true\n`],
    ['mixed prefixes', `let x = ${'- not + '.repeat(DEPTH / 3)}1\n`],
    ['a ** chain', `let x = ${'2 ** '.repeat(DEPTH)}2\n`],
    ['lambdas', `let f = ${'fn(x) => '.repeat(DEPTH)}x\n`],
    ['calls', `let x = ${'f('.repeat(DEPTH)}1${')'.repeat(DEPTH)}\n`],
    ['if expressions', `let x = ${'if c { '.repeat(DEPTH)}1${' } else { 2 }'.repeat(DEPTH)}\n`],
    ['blocks', `layer A {\n  forward() {\n${'for i in x {\n'.repeat(DEPTH)}${'}\n'.repeat(DEPTH)}  }\n}\n`],
  ];

  it.each(cases)('%s 10,000 deep give E0012, not a stack overflow', (_, text) => {
    const { program, diagnostics } = parse(text);
    expect(diagnostics.map((d) => d.code)).toContain('E0012');
    expect(() => print(program)).not.toThrow();
  });

  it('keeps parsing the declarations after a too-deep one', () => {
    const text = `let x = ${'('.repeat(DEPTH)}1${')'.repeat(DEPTH)}\n\nfn y() = 2\n`;
    const { program, diagnostics } = parse(text);
    expect(diagnostics.map((d) => d.code)).toEqual(['E0012']);
    expect(program.body.stmts.map((s) => s.kind === 'Fn' && s.name.text)).toEqual(['y']);
  });

  it(`accepts nesting just under the limit (${MAX_NESTING})`, () => {
    const n = MAX_NESTING - 10;
    expect(codes(`let x = ${'('.repeat(n)}1${')'.repeat(n)}\n`)).toEqual([]);
    expect(codes(`let x = ${'['.repeat(n)}1${']'.repeat(n)}\n`)).toEqual([]);
    expect(codes(`let x = ${'-'.repeat(n)}1\n`)).toEqual([]);
    expect(codes(`let x = ${'2 ** '.repeat(n)}2\n`)).toEqual([]);
    expect(codes(`let x = ${'f('.repeat(n)}1${')'.repeat(n)}\n`)).toEqual([]);
  });
});

describe('linear time', () => {
  /** The fastest of a few runs: the least disturbed by GC pauses and JIT warm-up. */
  function bestTime(text: string, runs: number): number {
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      parse(text);
      best = Math.min(best, performance.now() - t);
    }
    return best;
  }

  it('parsing 1 MB takes less than 8x the time of 256 KB', () => {
    const small = modelText(MB / 4);
    const large = modelText(MB);
    bestTime(small, 1);
    const tSmall = bestTime(small, 3);
    const tLarge = bestTime(large, 3);
    const ratio = tLarge / tSmall;
    console.log(
      `hostile: parse ${(small.length / 1024).toFixed(0)} KiB in ${tSmall.toFixed(0)} ms, ` +
        `${(large.length / 1024).toFixed(0)} KiB in ${tLarge.toFixed(0)} ms, ratio ${ratio.toFixed(2)} (linear: ${(large.length / small.length).toFixed(2)})`,
    );
    // linear is 4; quadratic would be 16. The bound is generous because wall-clock timings on shared machines are noisy.
    expect(ratio).toBeLessThan(8);
  });
});
