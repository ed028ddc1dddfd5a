// Fuzzing the front end: parse(), name resolution (checkSource) and print() never throw, and every diagnostic has a registered code and an in-bounds span.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { isCode } from '../compiler/diagnostics/codes.ts';
import type { Span } from '../grammar/ast.ts';
import { BUILTIN_TYPES, dlLexer, HARD_KEYWORDS, SOFT_KEYWORDS } from '../grammar/lexer.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { print } from '../grammar/printer.ts';

const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : 424242;
const RUNS = process.env.DLC_RUNS !== undefined ? Number(process.env.DLC_RUNS) : 10_000;
/** 10,000 front-end runs take about a minute alone, several when the GPU suites share the 2 cores. */
const FUZZ_TIMEOUT = 600_000;

const EXAMPLES_DIR = join(import.meta.dirname, '..', 'examples');
const EXAMPLES = readdirSync(EXAMPLES_DIR)
  .filter((f) => f.endsWith('.dl'))
  .sort()
  .map((f) => readFileSync(join(EXAMPLES_DIR, f), 'utf8'));

const PUNCTUATION = [
  '->', '=>', '...', '..', '.', '**', '==', '!=', '<=', '>=', '<', '>', '=', '+', '-', '*', '/', '%', '@',
  '(', ')', '[', ']', '{', '}', ',', ':', ';',
];
const OTHER_TOKENS = [
  'x', 'Dense', 'B', '_', 'f32[B, 784]', '0', '1', '3.5', '1e-3', '2147483648', '99999999999999999999', '1e999',
  '"s"', '"a\\nb"', '"\\q"', '"open', '// c\n', '/* c */', '/* open', '\\', '#', '$', '§', 'é', '\u0000',
];
const VOCABULARY = [...HARD_KEYWORDS, ...SOFT_KEYWORDS, ...BUILTIN_TYPES, ...PUNCTUATION, ...OTHER_TOKENS];

const counts = { strings: 0, soups: 0, mutations: 0, diagnostics: 0, escapes: 0 };

/** Parses and prints `text`; throws (failing the property) on an escaped exception or a malformed diagnostic. */
function check(text: string): void {
  let result;
  try {
    result = checkSource(text, 'fuzz.dl');
  } catch (e) {
    counts.escapes++;
    throw new Error(`checkSource() threw on ${JSON.stringify(text)}: ${(e as Error).stack}`);
  }
  const inBounds = (s: Span) => Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start <= s.end && s.end <= text.length;
  for (const d of result.diagnostics) {
    counts.diagnostics++;
    if (!isCode(d.code)) throw new Error(`unregistered code ${d.code} for ${JSON.stringify(text)}`);
    if (d.code === 'E0900') throw new Error(`internal parser error for ${JSON.stringify(text)}: ${d.message}`);
    // labels may point into the standard library; those in this text must lie inside it
    if (!inBounds(d.span) || !d.secondary.every((l) => l.span.file !== 'fuzz.dl' || inBounds(l.span))) {
      throw new Error(`${d.code} span ${d.span.start}..${d.span.end} out of 0..${text.length} for ${JSON.stringify(text)}`);
    }
  }
  try {
    print(result.program);
  } catch (e) {
    counts.escapes++;
    throw new Error(`print() threw on the program parsed from ${JSON.stringify(text)}: ${(e as Error).stack}`);
  }
}

const languageChar = fc.constantFrom(...'{}()[]<>=!+-*/%@.,:;"\\ \n\t_aZ09eE#');
const printableAscii = fc.integer({ min: 32, max: 126 }).map((c) => String.fromCharCode(c));
const controlChar = fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c));
const anyUnicode = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
const randomString = fc.string({ unit: fc.oneof(printableAscii, languageChar, anyUnicode, controlChar), maxLength: 200 });

const whitespace = fc.constantFrom(' ', ' ', ' ', '\n', '', '\t', '\n\n', '\r\n');
const tokenSoup = fc
  .array(fc.tuple(fc.constantFrom(...VOCABULARY), whitespace), { maxLength: 80 })
  .map((parts) => parts.map(([t, ws]) => t + ws).join(''));

/** Token boundaries of each example, comments included, as [start, end) offsets. */
const EXAMPLE_TOKENS = EXAMPLES.map((source) => {
  const lexed = dlLexer.tokenize(source);
  const all = [...lexed.tokens, ...((lexed.groups.comments ?? []) as typeof lexed.tokens)];
  return all.map((t) => [t.startOffset, t.endOffset! + 1] as const).sort((a, b) => a[0] - b[0]);
});

const mutation = fc
  .record({
    example: fc.nat({ max: EXAMPLES.length - 1 }),
    op: fc.constantFrom('delete', 'duplicate', 'swap', 'replace'),
    i: fc.nat(),
    j: fc.nat(),
    token: fc.constantFrom(...VOCABULARY),
  })
  .map(({ example, op, i, j, token }) => {
    const source = EXAMPLES[example];
    const tokens = EXAMPLE_TOKENS[example];
    const [as, ae] = tokens[i % tokens.length];
    const a = source.slice(as, ae);
    switch (op) {
      case 'delete':
        return source.slice(0, as) + source.slice(ae);
      case 'duplicate':
        return `${source.slice(0, ae)} ${a}${source.slice(ae)}`;
      case 'replace':
        return source.slice(0, as) + token + source.slice(ae);
      default: {
        const [bs, be] = tokens[j % tokens.length];
        if (bs === as) return source;
        const [[s1, e1], [s2, e2]] = as < bs ? [[as, ae], [bs, be]] : [[bs, be], [as, ae]];
        return source.slice(0, s1) + source.slice(s2, e2) + source.slice(e1, s2) + source.slice(s1, e1) + source.slice(e2);
      }
    }
  });

describe('fuzz', () => {
  console.log(`fuzz: seed ${SEED} (replay with DLC_SEED=${SEED}), ${RUNS} runs per kind`);

  afterAll(() => {
    console.log(
      `fuzz: ${counts.strings} random strings, ${counts.soups} token soups, ${counts.mutations} mutations, ` +
        `${counts.diagnostics} diagnostics, ${counts.escapes} escapes`,
    );
  });

  it('random strings', () => {
    fc.assert(
      fc.property(randomString, (text) => {
        counts.strings++;
        check(text);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('token soups', () => {
    fc.assert(
      fc.property(tokenSoup, (text) => {
        counts.soups++;
        check(text);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('one-token mutations of the examples', () => {
    fc.assert(
      fc.property(mutation, (text) => {
        counts.mutations++;
        check(text);
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);
});
