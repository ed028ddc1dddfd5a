// `scan` over several sequences at once (`scan x_t, m_t in (x, m)`): values against a float64 reference, printing, and its diagnostics.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';

const SOURCE = `model M(steps: int = 4) {
  input x: f32[B, steps, 2]
  input m: f32[B, steps]
  // a masked running sum: steps where m is 0 keep the state
  let hs = scan x_t, m_t in (x, m) along 1 carry (h = zeros([B, 2])) {
    h = select(m_t[:, None] > 0.5, h + x_t, h)
    yield h, m_t * 2.0
  }
  let sums, doubled = hs
  // backwards: each output at its own step
  let back = scan reverse a, b in (x, m) along 1 carry (c = zeros([B])) {
    c = c + a[:, 0] * b
    yield c
  }
  output y = sums
  output d = doubled
  output r = back
}
`;

describe('scan over several sequences', () => {
  it('slices each source along the axis together, forwards and in reverse', () => {
    const res = checkSource(SOURCE, 'scan.dl');
    expect(res.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
    const g = res.graphs.get('M')!;
    const [B, T] = [2, 4];
    const x = Array.from({ length: B * T * 2 }, (_, i) => (i % 7) - 3 + 0.25 * i);
    const m = [1, 0, 1, 1, 0, 1, 0, 1];
    const out = interpretGraph(g, { inputs: new Map([['x', tensor('f32', [B, T, 2], x)], ['m', tensor('f32', [B, T], m)]]), params: new Map(), state: new Map() }, { sizes: new Map([['B', B]]) }).outputs;
    const y: number[] = [];
    const r = new Array<number>(B * T).fill(0);
    for (let b = 0; b < B; b++) {
      const h = [0, 0];
      for (let t = 0; t < T; t++) {
        if (m[b * T + t] > 0.5) for (let j = 0; j < 2; j++) h[j] += x[(b * T + t) * 2 + j];
        y.push(...h);
      }
      let c = 0;
      for (let t = T - 1; t >= 0; t--) {
        c += x[(b * T + t) * 2] * m[b * T + t];
        r[b * T + t] = c;
      }
    }
    expect(out.get('y')!.shape).toEqual([B, T, 2]);
    expect(Array.from(out.get('y')!.data)).toEqual(y);
    expect(Array.from(out.get('d')!.data)).toEqual(m.map((v) => 2 * v));
    expect(Array.from(out.get('r')!.data)).toEqual(r);
  });

  it('prints back as written', () => {
    const printed = print(parse(SOURCE, 'scan.dl').program);
    expect(printed).toContain('scan x_t, m_t in (x, m) along 1 carry (h = zeros([B, 2])) {');
    expect(printed).toContain('scan reverse a, b in (x, m) along 1');
    expect(parse(printed, 'scan.dl').diagnostics).toEqual([]);
  });

  const diagnose = (scan: string) => {
    const src = `model M {\n  input x: f32[B, 4, 2]\n  input m: f32[B, 4]\n  let hs = ${scan} {\n    yield x_t\n  }\n  output y = hs\n}\n`;
    return checkSource(src, 'scan.dl').diagnostics.map((d) => `${d.code} ${d.message}${d.help ? ` | ${d.help}` : ''}`);
  };

  it('says how many sequences the variables need, and that their lengths must agree', () => {
    expect(diagnose('scan x_t, m_t in x along 1')).toEqual(['E0303 scan names 2 variables (`x_t`, `m_t`), so it runs over a tuple of 2 tensors, found a tensor | give one sequence for each variable: `scan x_t, m_t in (s0, s1)`']);
    expect(diagnose('scan x_t, m_t in (x, m, m) along 1')).toEqual(['E0303 scan names 2 variables (`x_t`, `m_t`), so it runs over a tuple of 2 tensors, found a list of 3 | give one sequence for each variable: `scan x_t, m_t in (s0, s1)`']);
    expect(diagnose('scan x_t in (x, m) along 1')).toEqual(['E0307 scan runs over a tensor, found a list | to scan several sequences together, name one variable for each: `scan x_t, m_t in (x, m)`']);
    expect(diagnose('scan x_t, m_t in (x, m[:, 1:]) along 1')).toEqual(['E0301 the sequences of a scan must have one length: `x_t` runs over 4 steps of f32[B, 4, 2], `m_t` over 3 of f32[B, 3] (axis 1)']);
  });
});
