// Every example model elaborates (train and eval variants), passes the IR verifier, and runs forward in the f64 interpreter.
import { readFileSync } from 'node:fs';
import { argsOf, EXAMPLE_CASES } from './helpers.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { elaborate } from '../compiler/elaborate/elaborate.ts';
import { stdlibModules } from '../compiler/frontend/stdlib.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261123);

const CASES = EXAMPLE_CASES;

describe(`every example elaborates, verifies and runs forward (seed ${SEED})`, () => {
  const stdlib = stdlibModules().programs;
  for (const c of CASES) {
    for (const training of [true, false]) {
      it(`${c.file}: ${c.model} (${training ? 'train' : 'eval'})`, () => {
        const text = readFileSync(`examples/${c.file}.dl`, 'utf8');
        expect(checkSource(text, `examples/${c.file}.dl`).diagnostics).toEqual([]);
        const program = parse(text, `examples/${c.file}.dl`).program;
        const result = elaborate(program, { modules: stdlib, training, modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) });
        expect(result.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
        const g = result.graphs.get(c.model)!;
        expect(g).toBeDefined();
        expect(verifyGraph(g)).toEqual([]);
        expect(g.losses.size + g.outputs.size).toBeGreaterThan(0);
        const sizes = new Map(Object.entries(c.sizes));
        const feeds = randomFeeds(g, sizes, seededRandom(SEED), { intRange: c.intRange ?? {} });
        const out = interpretGraph(g, feeds, { sizes });
        for (const [name, t] of [...out.outputs, ...out.losses, ...out.metrics]) {
          expect(t.data.every((x) => Number.isFinite(x)), `${name} is finite`).toBe(true);
        }
        for (const [name, t] of out.losses) expect(t.shape, `loss ${name} is a scalar`).toEqual([]);
      });
    }
  }
});

describe('constraints over run-time sizes', () => {
  it('are carried in the graph and checked when the sizes are bound', () => {
    const text = readFileSync('examples/char_transformer.dl', 'utf8');
    const program = parse(text, 'examples/char_transformer.dl').program;
    const args = argsOf('CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 1');
    const g = elaborate(program, { modules: stdlibModules().programs, training: false, modelArgs: new Map([['CharGPT', args]]) }).graphs.get('CharGPT')!;
    expect(g.constraints.map((c) => c.text)).toEqual(expect.arrayContaining(['L <= ctx + 1', 'L >= 2']));
    const ok = randomFeeds(g, new Map([['B', 1], ['L', 9]]), seededRandom(SEED), { intRange: { tokens: 11 } });
    expect(() => interpretGraph(g, ok, { sizes: new Map([['B', 1], ['L', 9]]) })).not.toThrow();
    const tooLong = randomFeeds(g, new Map([['B', 1], ['L', 10]]), seededRandom(SEED), { intRange: { tokens: 11 } });
    expect(() => interpretGraph(g, tooLong, { sizes: new Map([['B', 1], ['L', 10]]) })).toThrow(/constraint `L <= ctx \+ 1` does not hold/);
  });
});
