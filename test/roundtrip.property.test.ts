// Property: random well-formed ASTs print to text that parses cleanly back to the same AST and prints identically.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';
import { generateProgram } from './ast-gen.ts';
import { stripSpans } from './ast-utils.ts';

const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : 20240611;
const RUNS = process.env.DLC_RUNS !== undefined ? Number(process.env.DLC_RUNS) : 2000;

/** The AST without the statements' list layouts (trivia.lists), which the generated ASTs do not have. */
function withoutLists(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLists);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'lists').map(([k, v]) => [k, withoutLists(v)]));
}

// ------------------------------------------------------------------ the property

describe('print/parse round trip', () => {
  it(`holds for ${RUNS} random programs`, () => {
    console.log(`roundtrip: fast-check seed ${SEED} (replay with DLC_SEED=${SEED}), ${RUNS} runs`);
    let bytes = 0;
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 4 }), (seed, size) => {
        const ast = generateProgram(seed, size);
        const text = print(ast);
        bytes += text.length;
        const { program, diagnostics } = parse(text, 'gen.dl');
        const context = `program (generator seed ${seed}, size ${size}):\n${text}`;
        expect(diagnostics.map((d) => `${d.code} ${d.span.start}: ${d.message}`), context).toEqual([]);
        // `lists` records how the printed text laid its lists out (one item a line where too long), as spans record where
        expect(withoutLists(stripSpans(program)), context).toEqual(stripSpans(ast));
        expect(print(program), context).toBe(text);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`roundtrip: ${RUNS} programs, ${(bytes / 1024).toFixed(0)} KiB of text`);
  });
});
