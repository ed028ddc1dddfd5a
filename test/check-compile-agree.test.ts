// check and compile agree on a file: each model elaborated with its own train block's arguments, a hyperparameter default checked against its declared kind whether or not an argument replaces it, and a train block or --args giving an argument once.
import { describe, expect, it } from 'vitest';
import { checkSource, parseModelArgs } from '../compiler/frontend/check.ts';
import { parse } from '../grammar/parse.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { compileSource } from '../compiler/frontend/compile.ts';

const FILE = 'test.dl';

const trained = (name: string, params: string, body: string, args: string) => `model ${name}${params} {
${body}
  input features: f32[B, 4]
  input label: i32[B]
  param w: f32[4, 3] = glorot_uniform
  loss = cross_entropy(features @ w, label)
}
train ${name}${args} {
  data = iris()
  optimizer = sgd(lr: 0.1)
}
`;

const codes = (src: string) => checkSource(src, FILE).diagnostics.map((d) => `${d.code} ${d.message}`);
const compileCodes = (src: string) => compileTraining(src, FILE).diagnostics.map((d) => `${d.code} ${d.message}`);

describe('check and compile agree', () => {
  it('compile elaborates every model with its own train block’s arguments, as check does', () => {
    // M's default breaks its `where`; its train block gives a good value. N's train block must not see M's default.
    const src = trained('M', '(h: int = 0)', '  where h > 0', '(h: 3)') + trained('N', '', '', '');
    expect(codes(src)).toEqual([]);
    expect(compileCodes(src)).toEqual([]);
    expect(compileTraining(src, FILE).trainings.map((t) => t.forward.name)).toEqual(['M', 'N']);
  });

  it('a default of the wrong kind is E0303 at the default, also when the train block overrides it', () => {
    for (const [decl, found] of [['k: int = "s"', 'a string'], ['k: int = 2 ** -1', 'a float']] as const) {
      const src = trained('M', `(${decl})`, '', '(k: 4)');
      const ds = checkSource(src, FILE).diagnostics;
      expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual([`E0303 \`k\` is declared int, found ${found}`]);
      expect(src.slice(ds[0].span.start, ds[0].span.end)).toBe(decl.slice('k: int = '.length));
      expect(compileCodes(src)).toEqual(codes(src));
    }
    // a default that cannot be evaluated with the arguments given is not reported when it is overridden
    expect(codes(trained('M', '(j: int = 2, k: int = 8 / j)', '', '(j: 0, k: 4)'))).toEqual([]);
    expect(codes(trained('M', '(j: int = 2, k: int = 8 / j)', '', '(j: 0)'))[0]).toMatch(/^E0305/);
  });
});

describe('a tensor past one storage binding (E0401)', () => {
  it('is reported by check as by compile (check said "no errors" for a file compile rejects)', () => {
    const src = 'model M {\n  input x: f32[B, 1000]\n  param w: f32[100000, 1000] = zeros\n  output y = w @ transpose(x)\n}\n';
    const checked = checkSource(src, FILE).diagnostics;
    expect(checked.map((d) => `${d.code} ${d.message}`)).toEqual(['E0401 parameter w of type f32[100000, 1000] takes 400,000,000 bytes, over the storage binding limit of 134,217,728 bytes']);
    expect(src.slice(checked[0].span.start, checked[0].span.end)).toBe('w');
    expect(compileSource(src, FILE).diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual(checked.map((d) => `${d.code} ${d.message}`));
  });
});

describe('a model argument given twice', () => {
  it('in a train block is E0303 at the second, as in a call (the last one won)', () => {
    const src = trained('M', '(h: int = 1)', '', '(h: 1, h: 2)');
    const ds = checkSource(src, FILE).diagnostics;
    expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual(['E0303 the argument `h` is given twice']);
    expect(src.slice(ds[0].span.start, ds[0].span.end)).toBe('h: 2');
    expect(codes(trained('M', '(h: int = 1, k: int = 2)', '', '(h: 1, k: 2)'))).toEqual([]);
  });

  it('in --args is refused, by name or by position and name; --args cannot end the list and declare more', () => {
    const program = parse('model M(hidden: int = 4, depth: int = 1) {\n  input x: f32[B, 4]\n  output y = x\n}\n', FILE).program;
    const read = (text: string) => {
      const r = parseModelArgs(text, 'M', program);
      return typeof r === 'string' ? r : r.map((a) => `${a.name?.text ?? '_'}`).join(',');
    };
    expect(read('hidden: 16, depth: 2')).toBe('hidden,depth');
    expect(read('16, depth: 2')).toBe('_,depth');
    expect(read('hidden: 16, hidden: 8')).toMatch(/gives `hidden` twice/);
    expect(read('16, hidden: 8')).toMatch(/gives `hidden` twice/);
    for (const injected of ['hidden: 16) {} train M(hidden: 8', 'hidden: 16) {} //', 'hidden: 16) { epochs = 3 } //', 'hidden: 16']) {
      expect(read(injected), injected).toMatch(injected === 'hidden: 16' ? /^hidden$/ : /^cannot read --args/);
    }
  });
});
