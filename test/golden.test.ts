// Golden ASTs of the examples, plus their canonical form: each example parses cleanly and prints back to itself.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';
import { compactJson, renderSpans, stripSpans } from './ast-utils.ts';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLES = join(ROOT, 'examples');
const GOLDENS = join(import.meta.dirname, 'golden');
const UPDATE = process.env.DLC_UPDATE_GOLDENS === '1';

const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.dl')).sort();

describe('examples', () => {
  it('are all found', () => {
    expect(examples.length).toBeGreaterThanOrEqual(8);
  });

  describe.each(examples)('%s', (name) => {
    const source = readFileSync(join(EXAMPLES, name), 'utf8');
    const file = `examples/${name}`;
    const { program, diagnostics } = parse(source, file);

    it('parses with no diagnostics', () => {
      expect(diagnostics).toEqual([]);
    });

    it('matches its golden AST', () => {
      const golden = join(GOLDENS, name.replace(/\.dl$/, '.ast.json'));
      const actual = `${compactJson(renderSpans(program, source))}\n`;
      if (UPDATE) {
        mkdirSync(GOLDENS, { recursive: true });
        writeFileSync(golden, actual);
        return;
      }
      if (!existsSync(golden)) {
        throw new Error(`missing golden ${golden}; run \`npm run golden:update\` and review the diff`);
      }
      expect(actual).toBe(readFileSync(golden, 'utf8'));
    });

    it('is canonically formatted', () => {
      expect(print(program)).toBe(source);
    });

    it('reparses from its printed form to the same AST', () => {
      const again = parse(print(program), file);
      expect(again.diagnostics).toEqual([]);
      expect(stripSpans(again.program)).toEqual(stripSpans(program));
    });
  });
});
