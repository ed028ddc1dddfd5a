// Symbolic sizes used as numbers (`sum(x) / B`, `float(T)`, `1.0 / B`): scalars bound when the graph runs, in the interpreter and on WebGPU.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

const SOURCE = `model Sizes {
  input x: f32[B, T]
  output total = sum(x) / B
  output inv = 1.0 / B
  output half = B * 0.5
  output per_step = x / float(T)
  output count = int(B) * T
  output centred = x - sum(x, axis: 1, keepdims: true) / T
}
`;

/** What each output should be for x of shape [b, t] (row-major). */
function expected(x: number[], b: number, t: number): Record<string, number[]> {
  const total = x.reduce((a, v) => a + v, 0);
  const rowMean = (r: number) => x.slice(r * t, (r + 1) * t).reduce((a, v) => a + v, 0) / t;
  return {
    total: [total / b],
    inv: [1 / b],
    half: [b * 0.5],
    per_step: x.map((v) => v / t),
    count: [b * t],
    centred: x.map((v, i) => v - rowMean(Math.floor(i / t))),
  };
}

describe('sizes as numbers', () => {
  it('type-check: a size with a tensor takes its dtype; float(B) is f32 and int(B) i32, scalars', () => {
    const r = checkSource(SOURCE, 'sizes.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
    const g = r.graphs.get('Sizes')!;
    const types = Object.fromEntries([...g.outputs].map(([name, v]) => [name, `${v.type.dtype}[${v.type.shape.length}]`]));
    expect(types).toEqual({ total: 'f32[0]', inv: 'f32[0]', half: 'f32[0]', per_step: 'f32[2]', count: 'i32[0]', centred: 'f32[2]' });
  });

  it('the interpreter binds them from the fed shapes', () => {
    const g = checkSource(SOURCE, 'sizes.dl').graphs.get('Sizes')!;
    for (const [b, t] of [[2, 3], [5, 1]]) {
      const x = Array.from({ length: b * t }, (_, i) => (i * 7) % 5 - 1.5);
      const out = interpretGraph(g, { inputs: new Map([['x', tensor('f32', [b, t], x)]]), params: new Map(), state: new Map() }, { sizes: new Map([['B', b], ['T', t]]) });
      for (const [name, want] of Object.entries(expected(x, b, t))) {
        expect(Array.from(out.outputs.get(name)!.data), name).toEqual(want.map((v) => expect.closeTo(v, 12)));
      }
    }
  });

  it('on WebGPU one compiled model reads the batch size of each call', { timeout: 60_000 }, async () => {
    const r = compileSource(SOURCE, 'sizes.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      for (const [b, t] of [[2, 3], [4, 3]]) {
        const x = Array.from({ length: b * t }, (_, i) => (i * 7) % 5 - 1.5);
        const got = await model.predict({ x }, { sizes: { T: t } });
        for (const [name, want] of Object.entries(expected(x, b, t))) {
          expect(Array.from(got[name as keyof typeof got] as ArrayLike<number>), `${name} at B = ${b}`).toEqual(want.map((v) => expect.closeTo(v, 5)));
        }
      }
    } finally {
      model.dispose();
    }
  });

  it('a size still cannot stand where a compile-time number is needed', () => {
    const r = checkSource('model M {\n  input x: f32[B, 4]\n  output y = zeros([2]) + full([2], float(B))\n}\n', 'm.dl');
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual(['E0305 expected a number, found a tensor']);
  });
});

describe('sizes as indices, and zeros_like', () => {
  it('x[:, T - 1] takes the last step at every T; x[:, T] is E0301; zeros_like and ones_like keep shape and dtype', () => {
    const r = checkSource('model M {\n  input x: f32[B, T, 2]\n  input ids: i32[B, T]\n  output last = x[:, T - 1]\n  output z = zeros_like(ids)\n  output o = ones_like(x[:, 0])\n}\n', 'idx.dl');
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs.get('M')!;
    expect(Object.fromEntries([...g.outputs].map(([k, v]) => [k, v.type.dtype]))).toEqual({ last: 'f32', z: 'i32', o: 'f32' });
    for (const t of [1, 3]) {
      const x = Array.from({ length: 2 * t * 2 }, (_, i) => i);
      const out = interpretGraph(g, { inputs: new Map([['x', tensor('f32', [2, t, 2], x)], ['ids', tensor('i32', [2, t], new Array(2 * t).fill(5))]]), params: new Map(), state: new Map() }, { sizes: new Map([['B', 2], ['T', t]]) });
      expect(Array.from(out.outputs.get('last')!.data)).toEqual([0, 1].flatMap((b) => [x[(b * t + t - 1) * 2], x[(b * t + t - 1) * 2 + 1]]));
      expect(Array.from(out.outputs.get('z')!.data)).toEqual(new Array(2 * t).fill(0));
      expect(Array.from(out.outputs.get('o')!.data)).toEqual([1, 1, 1, 1]);
    }
    const bad = checkSource('model M {\n  input x: f32[B, T]\n  output y = x[:, T]\n}\n', 'idx.dl').diagnostics;
    expect(bad.map((d) => `${d.code} ${d.message}`)).toEqual(['E0301 the index T runs past the end of an axis of size T']);
  });
});

describe('slice bounds written with sizes, on WebGPU', () => {
  it('x[:, -T:], x[:, T - 3:T], x[:, -T] and x[:, 2:T - 1] read what Python would, and a T too small breaks the condition', { timeout: 60_000 }, async () => {
    const r = compileSource('model S {\n  input x: f32[B, T]\n  output a = x[:, -T:]\n  output b = x[:, T - 3:T]\n  output c = x[:, -T]\n  output d = x[:, 2:T - 1]\n}\n', 's.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const t = 5;
      const x = Array.from({ length: 2 * t }, (_, i) => i);
      const out = await model.predict({ x }, { sizes: { T: t } });
      const row = (b: number) => x.slice(b * t, (b + 1) * t);
      expect(Array.from(out.a)).toEqual(x);
      expect(Array.from(out.b)).toEqual([0, 1].flatMap((b) => row(b).slice(t - 3)));
      expect(Array.from(out.c)).toEqual([0, 1].map((b) => row(b)[0]));
      expect(Array.from(out.d)).toEqual([0, 1].flatMap((b) => row(b).slice(2, t - 1)));
      await expect(model.predict({ x: [1, 2, 3, 4] }, { sizes: { T: 2 } })).rejects.toThrow("the batch breaks the model's condition `T - 3 >= 0` with T = 2 (-1 >= 0 is false)");
    } finally {
      model.dispose();
    }
  });
});
