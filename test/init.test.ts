// Parameter initializers: the right distribution for each kind (checked by moments on many samples), fans, determinism.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { fans, initialize, initialValues } from '../compiler/interpret/init.ts';

function moments(x: Float64Array): { mean: number; std: number; min: number; max: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / x.length), min: Math.min(...x), max: Math.max(...x) };
}

describe('initializers', () => {
  const shape = [200, 300]; // fan_in 200, fan_out 300, 60,000 samples
  const n = 60_000;
  const se = (std: number) => (5 * std) / Math.sqrt(n);

  it('zeros, ones and constant', () => {
    expect(initialValues({ kind: 'zeros', options: {} }, [3], 1, 0)).toEqual(Float64Array.of(0, 0, 0));
    expect(initialValues({ kind: 'ones', options: {} }, [2], 1, 0)).toEqual(Float64Array.of(1, 1));
    expect(initialValues({ kind: 'constant', options: { value: 0.5 } }, [2], 1, 0)).toEqual(Float64Array.of(0.5, 0.5));
  });

  it('normal and uniform follow their options', () => {
    const nm = moments(initialValues({ kind: 'normal', options: { std: 0.02, mean: 1 } }, shape, 7, 0));
    expect(Math.abs(nm.mean - 1)).toBeLessThan(se(0.02));
    expect(Math.abs(nm.std - 0.02)).toBeLessThan(0.02 * 0.02);
    const u = moments(initialValues({ kind: 'uniform', options: { low: -2, high: 4 } }, shape, 7, 1));
    expect(u.min).toBeGreaterThanOrEqual(-2);
    expect(u.max).toBeLessThan(4);
    expect(Math.abs(u.mean - 1)).toBeLessThan(se(6 / Math.sqrt(12)));
  });

  it('glorot and he use the fans of the stored layout', () => {
    expect(fans([200, 300])).toEqual({ fanIn: 200, fanOut: 300 });
    expect(fans([16, 6, 5, 5])).toEqual({ fanIn: 150, fanOut: 400 });
    const a = Math.sqrt(6 / 500);
    const gu = moments(initialValues({ kind: 'glorot_uniform', options: {} }, shape, 3, 0));
    expect(gu.max).toBeLessThanOrEqual(a);
    expect(gu.min).toBeGreaterThanOrEqual(-a);
    expect(Math.abs(gu.std - a / Math.sqrt(3))).toBeLessThan(0.02 * a);
    const gn = moments(initialValues({ kind: 'glorot_normal', options: {} }, shape, 3, 1));
    expect(Math.abs(gn.std - Math.sqrt(2 / 500))).toBeLessThan(0.02 * Math.sqrt(2 / 500));
    const b = Math.sqrt(6 / 200);
    const hu = moments(initialValues({ kind: 'he_uniform', options: {} }, shape, 3, 2));
    expect(hu.max).toBeLessThanOrEqual(b);
    expect(Math.abs(hu.std - b / Math.sqrt(3))).toBeLessThan(0.02 * b);
    const hn = moments(initialValues({ kind: 'he_normal', options: {} }, shape, 3, 3));
    expect(Math.abs(hn.std - Math.sqrt(2 / 200))).toBeLessThan(0.02 * Math.sqrt(2 / 200));
    expect(Math.abs(hn.mean)).toBeLessThan(se(Math.sqrt(2 / 200)));
  });

  it('a model starts from the same weights for the same seed, and different ones for another', () => {
    const g = checkSource('use std.nn.{Dense, BatchNorm}\n\nmodel M {\n  input x: f32[B, 4]\n  layer a = Dense(4, 3)\n  layer n = BatchNorm(3)\n  output y = n(a(x))\n}\n', 'm.dl').graphs.get('M')!;
    const one = initialize(g, 42);
    const two = initialize(g, 42);
    const other = initialize(g, 43);
    expect([...one.params.get('a.w')!.data]).toEqual([...two.params.get('a.w')!.data]);
    expect([...one.params.get('a.w')!.data]).not.toEqual([...other.params.get('a.w')!.data]);
    expect([...one.params.get('a.b')!.data]).toEqual([0, 0, 0]);
    expect([...one.state.get('n.running_var')!.data]).toEqual([1, 1, 1]);
  });

  it('zero_row: i sets row i of the first axis to zero after any initializer, and refuses a row past the axis', () => {
    const drawn = initialValues({ kind: 'uniform', options: { low: 1, high: 2 } }, [3, 2], 5, 0);
    const zeroed = initialValues({ kind: 'uniform', options: { low: 1, high: 2, zero_row: 1 } }, [3, 2], 5, 0);
    expect([...zeroed]).toEqual([drawn[0], drawn[1], 0, 0, drawn[4], drawn[5]]);
    const src = (init: string) => `model M {\n  param w: f32[3, 2] = ${init}\n  loss l = sum(w)\n}\n`;
    const g = checkSource(src('glorot_uniform(zero_row: 2)'), 'm.dl');
    expect(g.diagnostics).toEqual([]);
    expect([...initialize(g.graphs.get('M')!, 1).params.get('w')!.data.slice(4)]).toEqual([0, 0]);
    const past = checkSource(src('normal(std: 0.1, zero_row: 3)'), 'm.dl').diagnostics;
    expect(past.map((d) => `${d.code} ${d.message}`)).toEqual(['E0303 `zero_row: 3` is past the first axis of f32[3, 2]']);
    const negative = checkSource(src('normal(zero_row: -1)'), 'm.dl').diagnostics;
    expect(negative.map((d) => `${d.code} ${d.message}`)).toEqual(['E0303 `zero_row` is the index of a row, a whole number of 0 or more, not -1']);
  });
});
