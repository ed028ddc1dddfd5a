// Language features for tabular data: lists of numbers as constant tensors (`features - [0.0, 100.0]`, tensor(...)), isnan/isfinite, in the interpreter and on WebGPU.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { typeToString } from '../compiler/elaborate/builder.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';
import { CODES } from '../compiler/diagnostics/codes.ts';

/** The model's graph, with no diagnostics. */
function graphOf(source: string, name: string, training = false): Graph {
  const r = checkSource(source, 'tab.dl', undefined, { training });
  expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  return r.graphs.get(name)!;
}

/** Diagnostics of a source, as `code message`. */
function diagnosticsOf(source: string): string[] {
  return checkSource(source, 'tab.dl').diagnostics.map((d) => `${d.code} ${d.message}`);
}

function run(graph: Graph, inputs: Record<string, Tensor>, sizes: Record<string, number>) {
  return interpretGraph(graph, { inputs: new Map(Object.entries(inputs)), params: new Map(), state: new Map() }, { sizes: new Map(Object.entries(sizes)) });
}

const LISTS = `model Lists(mu: float[] = [0.0, 100.0, 0.5], sd: float[] = [1.0, 20.0, 0.25]) {
  input x: f32[B, 3]
  input ids: i32[B]
  output scaled = (x - mu) / sd
  output literal = x * [1.0, -2.0, 3.0] + 1.0
  output grid = tensor([[1, 2, 3], [4, 5, 6]], dtype: f32) * 0.5
  output shifted = ids[:, None] + [10, 20, 30, 40]
  output counts = tensor([1, 2, 3])
  output flags = tensor([true, false, true])
  output picked = select(x > [0.0, 50.0, 1.0], x, [9.0, 8.0, 7.0])
}
`;

function listsExpected(x: number[], ids: number[]): Record<string, number[]> {
  const mu = [0, 100, 0.5];
  const sd = [1, 20, 0.25];
  return {
    scaled: x.map((v, i) => (v - mu[i % 3]) / sd[i % 3]),
    literal: x.map((v, i) => v * [1, -2, 3][i % 3] + 1),
    grid: [0.5, 1, 1.5, 2, 2.5, 3],
    shifted: ids.flatMap((v) => [10, 20, 30, 40].map((c) => v + c)),
    counts: [1, 2, 3],
    flags: [1, 0, 1],
    picked: x.map((v, i) => (v > [0, 50, 1][i % 3] ? v : [9, 8, 7][i % 3])),
  };
}

describe('a list of numbers where a tensor is expected', () => {
  it('is a constant tensor: its dtype from its values (f32 beside an f32 tensor), its shape from its nesting', () => {
    const g = graphOf(LISTS, 'Lists');
    const types = Object.fromEntries([...g.outputs].map(([k, v]) => [k, typeToString(v.type)]));
    expect(types).toEqual({
      scaled: 'f32[B, 3]',
      literal: 'f32[B, 3]',
      grid: 'f32[2, 3]',
      shifted: 'i32[B, 4]',
      counts: 'i32[3]',
      flags: 'bool[3]',
      picked: 'f32[B, 3]',
    });
  });

  it('the interpreter computes with its values', () => {
    const g = graphOf(LISTS, 'Lists');
    const x = [0.5, 130, 2, -1, 40, 0.75];
    const ids = [7, -3];
    const out = run(g, { x: tensor('f32', [2, 3], x), ids: tensor('i32', [2], ids) }, { B: 2 });
    for (const [name, want] of Object.entries(listsExpected(x, ids))) expect(Array.from(out.outputs.get(name)!.data), name).toEqual(want.map((v) => expect.closeTo(v, 12)));
  });

  it('on WebGPU agrees with the interpreter', { timeout: 60_000 }, async () => {
    const r = compileSource(LISTS, 'tab.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const x = [0.5, 130, 2, -1, 40, 0.75];
      const got = await model.predict({ x, ids: [7, -3] });
      for (const [name, want] of Object.entries(listsExpected(x, [7, -3]))) {
        expect(Array.from(got[name as keyof typeof got] as ArrayLike<number>).map(Number), name).toEqual(want.map((v) => expect.closeTo(v, 5)));
      }
    } finally {
      model.dispose();
    }
  });

  it('ragged rows, mixed bools and numbers, an empty list and a list of tensors are errors that say what a tensor list holds', () => {
    const wrap = (e: string) => `model M {\n  input x: f32[B, 2]\n  output y = ${e}\n}\n`;
    expect(diagnosticsOf(wrap('x + [[1.0, 2.0], [3.0]]'))).toEqual(['E0301 the rows of this list have different lengths (2 and 1): a tensor needs rows of one shape']);
    expect(diagnosticsOf(wrap('x + [[1.0, 2.0], 3.0]'))).toEqual(['E0301 the rows of this list nest to different depths: a tensor needs rows of one shape']);
    expect(diagnosticsOf(wrap('x + [true, 1.0]'))).toEqual(['E0307 a list mixes bools and numbers: a tensor has one dtype']);
    expect(diagnosticsOf(wrap('x + tensor([])'))).toEqual(['E0305 an empty list has no values to make a tensor of']);
    expect(diagnosticsOf(wrap('x + [x, x]'))).toEqual(['E0307 expected a tensor or a number, found a list holding a tensor']);
    const help = checkSource(wrap('x + [x, x]'), 'tab.dl').diagnostics[0].help;
    expect(help).toContain('tensor(values, dtype: f32)');
  });

  it("a list passed to a fn's tensor parameter is E0303 with tensor(...) as the help; with it, it compiles", () => {
    const src = (arg: string) => `fn g(x: f32[...]) -> f32[...] = x * 2.0\nmodel M(mu: float[] = [1.0, 2.0]) {\n  input x: f32[B, 2]\n  output y = x + g(${arg})\n}\n`;
    const d = checkSource(src('mu'), 'tab.dl').diagnostics;
    expect(d.map((x) => `${x.code} ${x.message}`)).toEqual(['E0303 `x` must be a tensor, found a list']);
    expect(d[0].help).toContain('tensor(values, dtype: f32)');
    expect(diagnosticsOf(src('tensor(mu)'))).toEqual([]);
  });

  it('dlc explain E0307 says how a list becomes a tensor', () => {
    expect(CODES.E0307.explanation).toContain("'features - mu'");
    expect(CODES.E0307.explanation).toContain("'tensor(values, dtype: f32)'");
  });

  it('tensor(x) of a tensor is x, and tensor(x, dtype:) casts', () => {
    const g = graphOf('model M {\n  input x: f32[B]\n  output same = tensor(x)\n  output whole = tensor(x, dtype: i32)\n}\n', 'M');
    const out = run(g, { x: tensor('f32', [2], [1.5, -2.5]) }, { B: 2 });
    expect(Array.from(out.outputs.get('same')!.data)).toEqual([1.5, -2.5]);
    expect(Array.from(out.outputs.get('whole')!.data)).toEqual([1, -2]);
  });
});

const NANS = `model Nans {
  input x: f32[B]
  output nan = isnan(x)
  output finite = isfinite(x)
  output filled = select(isnan(x), 0.0, x)
}
`;

describe('isnan and isfinite', () => {
  const x = [1.5, NaN, Infinity, -Infinity, 0, -2, 2 ** 120];
  const want = { nan: [0, 1, 0, 0, 0, 0, 0], finite: [1, 0, 0, 0, 1, 1, 1], filled: [1.5, 0, Infinity, -Infinity, 0, -2, 2 ** 120] };

  it('the interpreter: NaN only for NaN, finite for neither NaN nor ±inf', () => {
    const out = run(graphOf(NANS, 'Nans'), { x: tensor('f32', [x.length], x) }, { B: x.length });
    for (const [name, values] of Object.entries(want)) expect(Array.from(out.outputs.get(name)!.data), name).toEqual(values);
  });

  it('on WebGPU agree with the interpreter', { timeout: 60_000 }, async () => {
    const r = compileSource(NANS, 'nans.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const got = await model.predict({ x });
      for (const [name, values] of Object.entries(want)) expect(Array.from(got[name as keyof typeof got] as ArrayLike<number>).map(Number), name).toEqual(values);
    } finally {
      model.dispose();
    }
  });

  it('take a float tensor', () => {
    expect(diagnosticsOf('model M {\n  input i: i32[B]\n  output y = isnan(i)\n}\n')).toEqual(['E0307 `isnan` takes a float tensor, found i32[B]']);
  });
});

const WEIGHTED = `model Weighted {
  input z: f32[B, 3]
  input y: i32[B]
  input t: f32[B, 3]
  output ce = cross_entropy(z, y, weight: [0.5, 3.0, 1.25])
  output smooth = cross_entropy(z, y, weight: [0.5, 3.0, 1.25], label_smoothing: 0.2, ignore_index: 1)
  output bce = binary_cross_entropy(z, t, pos_weight: [1.0, 4.0, 0.5])
}
`;

describe('class-weighted losses on WebGPU', () => {
  it('cross_entropy(weight:) and binary_cross_entropy(pos_weight:) agree with the float64 interpreter', { timeout: 60_000 }, async () => {
    const z = [0.3, -1.2, 2.0, 1.5, 0.1, -0.7, -2.2, 0.4, 0.9, 0.05, 1.1, -0.3];
    const y = [0, 1, 2, 1];
    const t = [1, 0, 0.5, 0, 1, 1, 0.25, 0, 1, 1, 0, 0];
    const ref = run(graphOf(WEIGHTED, 'Weighted'), { z: tensor('f32', [4, 3], z), y: tensor('i32', [4], y), t: tensor('f32', [4, 3], t) }, { B: 4 });
    const r = compileSource(WEIGHTED, 'weighted.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice() });
    try {
      const got = await model.predict({ z, y, t });
      for (const name of ['ce', 'smooth', 'bce']) {
        const want = ref.outputs.get(name)!.data[0];
        const value = Number((got[name as keyof typeof got] as ArrayLike<number>)[0]);
        expect(Math.abs(value - want), `${name}: ${value} on the GPU, ${want} in float64`).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(want));
      }
    } finally {
      model.dispose();
    }
  });
});
