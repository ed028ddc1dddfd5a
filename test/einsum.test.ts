// einsum: each subscript form against a naive float64 contraction, its gradients by finite differences, its errors, and WebGPU.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import { gradcheck } from '../compiler/autodiff/gradcheck.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

/** numpy's einsum over row-major arrays, by visiting every assignment of the letters. */
function einsumRef(spec: string, operands: { shape: number[]; data: number[] }[]): { shape: number[]; data: number[] } {
  const [lhs, rhs] = spec.replaceAll(' ', '').split('->');
  const subs = lhs.split(',');
  const size = new Map<string, number>();
  subs.forEach((s, i) => [...s].forEach((l, a) => size.set(l, operands[i].shape[a])));
  const out = rhs !== undefined ? [...rhs] : [...size.keys()].filter((l) => subs.join('').split(l).length === 2).sort();
  const letters = [...size.keys()];
  const shape = out.map((l) => size.get(l)!);
  const data = new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(0);
  const at = (s: string, shp: number[], v: Map<string, number>) => [...s].reduce((acc, l, a) => acc * shp[a] + v.get(l)!, 0);
  const visit = (k: number, v: Map<string, number>) => {
    if (k === letters.length) {
      const p = operands.reduce((acc, o, i) => acc * o.data[at(subs[i], o.shape, v)], 1);
      data[at(out.join(''), shape, v)] += p;
      return;
    }
    for (let i = 0; i < size.get(letters[k])!; i++) visit(k + 1, new Map(v).set(letters[k], i));
  };
  visit(0, new Map());
  return { shape, data };
}

const CASES: { spec: string; shapes: number[][] }[] = [
  { spec: 'ij,jk->ik', shapes: [[2, 3], [3, 4]] },
  { spec: 'bij,bjk->bik', shapes: [[2, 2, 3], [2, 3, 2]] },
  { spec: 'bhqd,bhkd->bhqk', shapes: [[2, 2, 3, 4], [2, 2, 5, 4]] },
  { spec: 'i,i->', shapes: [[5], [5]] },
  { spec: 'i,j->ij', shapes: [[3], [4]] },
  { spec: 'ij->ji', shapes: [[2, 3]] },
  { spec: 'bij->bj', shapes: [[2, 3, 4]] },
  { spec: 'ij,jk', shapes: [[2, 3], [3, 2]] },
  { spec: 'ij,jk,kl->il', shapes: [[2, 3], [3, 4], [4, 2]] },
  { spec: 'bi,bj->bij', shapes: [[3, 2], [3, 4]] },
  { spec: 'bij,jk->bki', shapes: [[2, 3, 4], [4, 5]] },
  { spec: 'ijk,k->', shapes: [[2, 3, 4], [4]] },
];

const names = (n: number) => Array.from({ length: n }, (_, i) => `x${i}`);

function model(spec: string, shapes: number[][]): string {
  const inputs = shapes.map((s, i) => `  input x${i}: f32[${s.join(', ')}]\n`).join('');
  return `model E {\n${inputs}  output y = einsum("${spec}", ${names(shapes.length).join(', ')})\n}\n`;
}

describe('einsum', () => {
  it('every subscript form agrees with a naive contraction in float64', () => {
    const random = seededRandom(3);
    for (const { spec, shapes } of CASES) {
      const r = checkSource(model(spec, shapes), 'e.dl');
      expect(r.diagnostics, spec).toEqual([]);
      const operands = shapes.map((shape) => ({ shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1) }));
      const want = einsumRef(spec, operands);
      const got = interpretGraph(r.graphs.get('E')!, { inputs: new Map(operands.map((o, i) => [`x${i}`, tensor('f32', o.shape, o.data)])), params: new Map(), state: new Map() }).outputs.get('y')!;
      expect(got.shape, spec).toEqual(want.shape);
      expect(Array.from(got.data), spec).toEqual(want.data.map((v) => expect.closeTo(v, 10)));
    }
  });

  it('leading axes as `...`, and symbolic sizes: attention scores over [B, H, L, d]', () => {
    const src = `model A {\n  input q: f32[B, 2, L, 4]\n  input k: f32[B, 2, L, 4]\n  output s = einsum("...qd,...kd->...qk", q, k)\n  output t = einsum("bhqd,bhkd->bhqk", q, k)\n}\n`;
    const r = checkSource(src, 'a.dl');
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs.get('A')!;
    expect(g.outputs.get('s')!.type.shape.map(String)).toEqual(g.outputs.get('t')!.type.shape.map(String));
    const random = seededRandom(5);
    const q = Array.from({ length: 3 * 2 * 3 * 4 }, () => random());
    const k = Array.from({ length: 3 * 2 * 3 * 4 }, () => random());
    const out = interpretGraph(g, { inputs: new Map([['q', tensor('f32', [3, 2, 3, 4], q)], ['k', tensor('f32', [3, 2, 3, 4], k)]]), params: new Map(), state: new Map() }, { sizes: new Map([['B', 3], ['L', 3]]) });
    const want = einsumRef('bhqd,bhkd->bhqk', [{ shape: [3, 2, 3, 4], data: q }, { shape: [3, 2, 3, 4], data: k }]);
    expect(Array.from(out.outputs.get('s')!.data)).toEqual(want.data.map((v) => expect.closeTo(v, 10)));
    expect(Array.from(out.outputs.get('t')!.data)).toEqual(want.data.map((v) => expect.closeTo(v, 10)));
  });

  it('`...` axes of size 1 broadcast, as numpy\'s and `@` do', () => {
    const r = checkSource('model M {\n  input a: f32[1, 3, 2, 4]\n  input b: f32[5, 1, 4, 2]\n  output y = einsum("...ij,...jk->...ik", a, b)\n}\n', 'm.dl');
    expect(r.diagnostics).toEqual([]);
    const random = seededRandom(11);
    const a = Array.from({ length: 24 }, () => random());
    const b = Array.from({ length: 40 }, () => random());
    const y = interpretGraph(r.graphs.get('M')!, { inputs: new Map([['a', tensor('f32', [1, 3, 2, 4], a)], ['b', tensor('f32', [5, 1, 4, 2], b)]]), params: new Map(), state: new Map() }).outputs.get('y')!;
    expect(y.shape).toEqual([5, 3, 2, 2]);
    // y[p, q] = a[0, q] @ b[p, 0]
    const want: number[] = [];
    for (let p = 0; p < 5; p++) for (let q = 0; q < 3; q++) for (let i = 0; i < 2; i++) for (let k = 0; k < 2; k++) {
      let acc = 0;
      for (let j = 0; j < 4; j++) acc += a[(q * 2 + i) * 4 + j] * b[(p * 4 + j) * 2 + k];
      want.push(acc);
    }
    expect(Array.from(y.data)).toEqual(want.map((v) => expect.closeTo(v, 10)));
  });

  it('attention written with einsum runs in as many dispatches as with matmul and transpose', () => {
    const attention = (scores: string, mix: string) => `model A {\n  input q: f32[B, 2, 4, 8]\n  input k: f32[B, 2, 4, 8]\n  input v: f32[B, 2, 4, 8]\n  input y: f32[B, 2, 4, 8]\n  param w: f32[8, 8] = glorot_uniform\n  let s = ${scores}\n  let p = softmax(s * 0.35, axis: -1)\n  output o = ${mix}\n  loss = mean((o - y) ** 2)\n}\ntrain A {\n  optimizer = sgd(lr: 0.1)\n  batch = 2\n}\n`;
    const count = (src: string) => {
      const r = compileSource(src, 'a.dl');
      expect(r.diagnostics).toEqual([]);
      const g = r.programs[0].graphs;
      // dispatches per call: a kernel that runs `once` (a constant filled on first use) is not one
      const perCall = (ks: readonly { once?: boolean }[]) => ks.filter((k) => !k.once).length;
      return { predict: perCall(g.predict.kernels), step: perCall(g.steps[0].kernels) };
    };
    const byHand = count(attention('(q @ w) @ transpose(k)', 'p @ v'));
    const byEinsum = count(attention('einsum("bhqd,bhkd->bhqk", einsum("bhqe,ed->bhqd", q, w), k)', 'einsum("bhqk,bhkd->bhqd", p, v)'));
    expect(byEinsum).toEqual(byHand);
    // an elementwise product needs no matmul
    const hadamard = compileSource('model H {\n  input a: f32[B, 3]\n  input b: f32[B, 3]\n  output y = einsum("ij,ij->ij", a, b)\n}\n', 'h.dl');
    expect(hadamard.programs[0].graphs.predict.kernels.map((k) => k.op).join(' ')).not.toContain('matmul');
  });

  it('gradients match finite differences', () => {
    const src = `model G {\n  input x: f32[B, 3]\n  param w: f32[3, 4] = glorot_uniform\n  param v: f32[4, 2] = glorot_uniform\n  loss = sum(einsum("bi,ij,jk->bk", x, w, v) ** 2) + sum(einsum("bi,bi->b", x, x) * sum(w))\n}\n`;
    const r = checkSource(src, 'g.dl');
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs.get('G')!;
    const sizes = new Map([['B', 2]]);
    const rows = gradcheck(g, randomFeeds(g, sizes, seededRandom(7)), { sizes, seed: 7, wrt: ['w', 'v', 'x'] });
    expect(rows.map((row) => row.name).sort()).toEqual(['v', 'w', 'x']);
    for (const row of rows) expect(row.absError, row.name).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(row.numeric));
  });

  it('says what is wrong with the subscripts or the operands', () => {
    const messages = (body: string) => checkSource(`model M {\n  input a: f32[2, 3]\n  input b: f32[4, 5]\n  output y = ${body}\n}\n`, 'm.dl').diagnostics.map((d) => `${d.code} ${d.message}`);
    expect(messages('einsum("ij,jk->ik", a, b)')).toEqual(['E0301 einsum "ij,jk->ik": `j` is 3 in f32[2, 3] but 4 in f32[4, 5]']);
    expect(messages('einsum("ij->ik", a)')).toEqual(['E0303 einsum "ij->ik" has `k` in its output but in no operand']);
    expect(messages('einsum("ijk->i", a)')).toEqual(['E0301 einsum "ijk->i" gives f32[2, 3] the subscripts "ijk": 3 letters for 2 axes']);
    expect(messages('einsum("ij,jk->ik", a)')).toEqual(['E0303 the einsum subscripts "ij,jk->ik" describe 2 operands, but 1 is given']);
    expect(messages('einsum("ii->i", a)')[0]).toContain('repeats `i` within one operand');
    expect(messages('einsum("i1->i", a)')[0]).toContain('the einsum subscripts "i1->i" have `1`');
    expect(messages('einsum(a, b)')).toEqual(['E0303 einsum\'s first argument is its subscripts as a string ("bij,bjk->bik"), found a tensor']);
  });

  it('on WebGPU agrees with the interpreter, and trains through it', { timeout: 60_000 }, async () => {
    const src = `model W {\n  input x: f32[B, 3]\n  input y: f32[B, 2]\n  param w: f32[3, 2] = glorot_uniform\n  output out = einsum("bi,ij->bj", x, w)\n  loss = mean((out - y) ** 2)\n}\ntrain W {\n  optimizer = sgd(lr: 0.1)\n  batch = 2\n}\n`;
    const r = compileSource(src, 'w.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 2 });
    try {
      const x = [1, 2, 3, -1, 0.5, 2];
      const w = Array.from(await model.getParameter('w'));
      const { out } = await model.predict({ x });
      expect(Array.from(out)).toEqual(einsumRef('bi,ij->bj', [{ shape: [2, 3], data: x }, { shape: [3, 2], data: w }]).data.map((v) => expect.closeTo(v, 5)));
      const first = (await model.trainStep({ x, y: [1, 0, 0, 1] }).values()).loss;
      for (let i = 0; i < 20; i++) model.trainStep({ x, y: [1, 0, 0, 1] });
      expect((await model.trainStep({ x, y: [1, 0, 0, 1] }).values()).loss).toBeLessThan(first);
    } finally {
      model.dispose();
    }
  });
});
