// The VS Code snippets, expanded with their defaults, compile (alone or inside a small wrapper), and the Model snippet is what dlc fmt prints.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const snippets = JSON.parse(readFileSync(join(root, 'grammar', 'vscode', 'snippets', 'dl.json'), 'utf8')) as Record<string, { prefix: string; body: string[] }>;

/**
 * The text VS Code inserts when each placeholder keeps its default: `${1:x}` is `x` (nested ones
 * too), a bare `$1` or `${1}` mirrors the default of that number elsewhere, `$0` is empty.
 */
function expand(body: readonly string[]): string {
  const text = body.join('\n');
  const defaults = new Map<string, string>();
  const resolve = (s: string): string => {
    let out = s;
    for (;;) {
      // innermost placeholders first: their default holds no further `${`
      const next = out.replace(/\$\{(\d+):([^${}]*)\}/g, (_, n: string, value: string) => {
        if (!defaults.has(n)) defaults.set(n, value);
        return value;
      });
      if (next === out) break;
      out = next;
    }
    return out.replace(/\$\{(\d+)\}|\$(\d+)/g, (_, a: string | undefined, b: string | undefined) => defaults.get(a ?? b!) ?? '');
  };
  return resolve(text);
}

/** Where a snippet that is not a whole file stands when it is checked: `%` marks its place. */
const WRAPPERS: Record<string, string> = {
  Layer: '%\n\nmodel Use {\n  input x: f32[B, 3]\n  layer l = Name(3, 5)\n  output y = l(x)\n}\n',
  Model: '%\n',
  Train: 'model Name {\n  input x: f32[B, 4]\n  input label: i32[B]\n  param w: f32[4, 3] = zeros\n  loss = cross_entropy(x @ w, label)\n}\n\n%\n',
  Function: '%\n\nmodel Use {\n  input x: f32[B, 3]\n  output y = name(x)\n}\n',
  Forward: 'layer L {\n  %\n}\n\nmodel Use {\n  input x: f32[B, 3]\n  layer l = L()\n  output y = l(x)\n}\n',
  Scan: 'fn cell(a: f32[B, 4], b: f32[B, 4]) -> f32[B, 4] = a + b\n\nmodel Use {\n  input x: f32[B, 6, 4]\n  let h0 = x[:, 0]\n  %\n  output y = hs\n}\n',
  For: 'model Use {\n  input x: f32[B, 4]\n  let layers = [Dense(4, 4), Dense(4, 4)]\n  %\n  output y = x\n}\n',
};

describe('snippets', () => {
  it('every snippet has a wrapper here', () => {
    expect(Object.keys(WRAPPERS).sort()).toEqual(Object.keys(snippets).sort());
  });

  it.each(Object.keys(snippets))('%s compiles as expanded with its defaults', (name) => {
    const expanded = expand(snippets[name].body).replace(/\t/g, '  ');
    const wrapper = WRAPPERS[name];
    const indent = /^( *)%/m.exec(wrapper)![1];
    const source = wrapper.replace(/^ *%/m, expanded.split('\n').map((l) => indent + l).join('\n'));
    const diagnostics = checkSource(source, `${name}.dl`).diagnostics.filter((d) => d.severity === 'error');
    expect(diagnostics.map((d) => `${d.code} ${d.message} @${source.slice(d.span.start, d.span.end)}`), source).toEqual([]);
  });

  it('the Model snippet is what dlc fmt prints', () => {
    const expanded = `${expand(snippets.Model.body).replace(/\t/g, '  ').replace(/^ +$/gm, '')}\n`;
    const parsed = parse(expanded, 'model.dl');
    expect(parsed.diagnostics).toEqual([]);
    expect(print(parsed.program)).toBe(expanded);
  });
});
