// Optional tensor arguments: `mask: f32[B, T] = None` may be left out, `mask == None` tells which, and using one left out is a clear error.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor } from '../compiler/interpret/tensor.ts';

const SOURCE = `fn masked_mean(x: f32[B, T], mask: f32[B, T] = None) -> f32[] {
  if mask != None {
    return sum(x * mask) / sum(mask)
  }
  return mean(x)
}

layer Scale(k: float) {
  forward(x: f32[B, N], gain: f32[N] = None) -> f32[B, N] {
    let y = x * k
    if gain == None {
      return y
    }
    return y * gain
  }
}

model M {
  input x: f32[B, 3]
  input m: f32[B, 3]
  input g: f32[3]
  layer s = Scale(2.0)
  output plain = masked_mean(x)
  output masked = masked_mean(x, m)
  output named = masked_mean(x, mask: m)
  output explicit = masked_mean(x, mask: None)
  output scaled = s(x)
  output gained = s(x, g)
}
`;

describe('optional tensor arguments', () => {
  it('are left out, given by position or by name, or given None', () => {
    const r = checkSource(SOURCE, 'opt.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
    const x = [1, 2, 3, 4, 5, 6];
    const m = [1, 0, 1, 0, 0, 1];
    const g = [1, 10, 100];
    const feeds = { inputs: new Map([['x', tensor('f32', [2, 3], x)], ['m', tensor('f32', [2, 3], m)], ['g', tensor('f32', [3], g)]]), params: new Map(), state: new Map() };
    const out = interpretGraph(r.graphs.get('M')!, feeds, { sizes: new Map([['B', 2]]) });
    const value = (name: string) => Array.from(out.outputs.get(name)!.data);
    expect(value('plain')).toEqual([3.5]);
    expect(value('masked')).toEqual([(1 + 3 + 6) / 3]);
    expect(value('named')).toEqual([(1 + 3 + 6) / 3]);
    expect(value('explicit')).toEqual([3.5]);
    expect(value('scaled')).toEqual(x.map((v) => 2 * v));
    expect(value('gained')).toEqual(x.map((v, i) => 2 * v * g[i % 3]));
  });

  it('given, an optional tensor is checked against its declared type', () => {
    const r = checkSource(SOURCE.replace('input m: f32[B, 3]', 'input m: f32[B, 4]'), 'opt.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual(['E0302 `masked_mean` takes f32[B, 3] for `mask`, but the argument is f32[B, 4]']);
  });

  it('using one that was left out says so and how to test for it', () => {
    const src = 'fn f(x: f32[B, T], mask: f32[B, T] = None) -> f32[] = sum(x * mask)\nmodel M {\n  input x: f32[B, 3]\n  output y = f(x)\n}\n';
    const [d] = checkSource(src, 'opt.dl').diagnostics;
    expect(`${d.code} ${d.message}`).toBe('E0307 expected a tensor or a number, found None');
    expect(src.slice(d.span.start, d.span.end)).toBe('mask');
    expect(d.help).toBe('an optional tensor argument that was not given is None: test `mask != None` before using it');
  });

  it('None is only accepted where the declared default is None', () => {
    const src = 'fn f(x: f32[B, T], w: f32[T]) -> f32[B, T] = x * w\nmodel M {\n  input x: f32[B, 3]\n  output y = f(x, None)\n}\n';
    expect(checkSource(src, 'opt.dl').diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual(['E0303 `w` must be a tensor, found None']);
  });
});

describe('bool tensor parameters', () => {
  const src = (keep: string) => `fn attend(x: f32[B, T, T], mask: bool[T, T] = None) -> f32[B, T, T] {
  if mask == None {
    return x
  }
  return select(mask, x, -1e9)
}
model M {
  input x: f32[B, 4, 4]
  input keep: ${keep}
  output a = attend(x)
  output b = attend(x, keep)
}
`;

  it('bool[T, T] is a tensor type (bool[] stays a list of bools), optional like any tensor', () => {
    const r = checkSource(src('bool[4, 4]'), 'mask.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
    const keep = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1];
    const x = Array.from({ length: 16 }, (_, i) => i);
    const out = interpretGraph(r.graphs.get('M')!, { inputs: new Map([['x', tensor('f32', [1, 4, 4], x)], ['keep', tensor('bool', [4, 4], keep)]]), params: new Map(), state: new Map() }, { sizes: new Map([['B', 1]]) });
    expect(Array.from(out.outputs.get('a')!.data)).toEqual(x);
    expect(Array.from(out.outputs.get('b')!.data)).toEqual(x.map((v, i) => (keep[i] ? v : Math.fround(-1e9))));
  });

  it('its shape is checked (it was not: a bool tensor skipped the argument check)', () => {
    const r = checkSource(src('bool[4, 3]'), 'mask.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual(['E0302 `attend` takes bool[4, 4] for `mask`, but the argument is bool[4, 3]']);
  });

  it('bool[] is still a list of bools', () => {
    const r = checkSource('fn f(x: f32[B, 2], flags: bool[] = [true, false]) -> f32[B, 2] {\n  if flags[0] {\n    return x * 2.0\n  }\n  return x\n}\nmodel M {\n  input x: f32[B, 2]\n  output y = f(x)\n}\n', 'flags.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });
});
