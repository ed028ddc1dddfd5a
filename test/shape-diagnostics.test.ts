// Shape, type and elaboration diagnostics (E03xx), written as source text: the code, the exact primary span
// (the offending operand as written), the label (the type found there), secondary labels (where the other
// shape came from) and the help line; one root cause gives one diagnostic; errors inside the standard
// library are shown at the user's call.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { dimToString } from '../compiler/shapes/dim.ts';
import type { Diagnostic } from '../compiler/diagnostics/diagnostic.ts';
import { stdlibModules } from '../compiler/frontend/stdlib.ts';
import { BUILTIN_NAMES } from '../compiler/elaborate/builtins.ts';
import { BUILTIN_SIGNATURES, signatureText } from '../compiler/elaborate/builtin-signatures.ts';

const FILE = 'test.dl';

interface SpanAt {
  /** The text the span covers; its `occurrence`-th appearance in the file (default the first). */
  readonly at: string;
  readonly occurrence?: number;
  /** The file the span is in (default the test's own file); for stdlib files `at` is matched against its text. */
  readonly file?: string;
}

interface Expected extends SpanAt {
  readonly code: string;
  readonly label?: string;
  /** Substrings the message must contain. */
  readonly message?: readonly string[];
  /** The help line exactly, a pattern it must match, or null for "no help". */
  readonly help?: string | RegExp | null;
  /** Each must be among the secondary labels (by span, and message substring when given). */
  readonly secondary?: readonly (SpanAt & { readonly message?: string })[];
}

function sourceOf(file: string, source: string): string {
  if (file === FILE) return source;
  const text = stdlibModules().sources.get(file);
  if (text === undefined) throw new Error(`no source for ${file}`);
  return text;
}

/** Start offsets of `at` in `text`, as a whole word where it begins or ends with a word character. */
function occurrences(text: string, at: string): number[] {
  const escaped = at.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const before = /^\w/.test(at) ? '(?<![A-Za-z0-9_])' : '';
  const after = /\w$/.test(at) ? '(?![A-Za-z0-9_])' : '';
  return [...text.matchAll(new RegExp(`${before}${escaped}${after}`, 'g'))].map((m) => m.index);
}

function expectSpan(source: string, span: Diagnostic['span'], want: SpanAt, what: string): void {
  const file = want.file ?? FILE;
  expect(span.file, `${what}: file`).toBe(file);
  const text = sourceOf(file, source);
  expect(text.slice(span.start, span.end), `${what}: text`).toBe(want.at);
  const starts = occurrences(text, want.at);
  expect(starts.length, `${what}: \`${want.at}\` occurs in ${file}`).toBeGreaterThan(want.occurrence ?? 0);
  expect(span.start, `${what}: occurrence ${want.occurrence ?? 0} of \`${want.at}\``).toBe(starts[want.occurrence ?? 0]);
}

function check(source: string): readonly Diagnostic[] {
  return checkSource(source, FILE).diagnostics;
}

/** Exactly the expected diagnostics, in order. */
function expectDiagnostics(source: string, expected: readonly Expected[]): readonly Diagnostic[] {
  const diagnostics = check(source);
  const shown = diagnostics.map((d) => `${d.code} ${d.message}`);
  expect(shown.map((s) => s.slice(0, 5)), shown.join('\n')).toEqual(expected.map((e) => e.code));
  expected.forEach((e, i) => {
    const d = diagnostics[i];
    expectSpan(source, d.span, e, `${e.code} primary span`);
    if (e.label !== undefined) expect(d.label, `${e.code} label`).toBe(e.label);
    for (const m of e.message ?? []) expect(d.message).toContain(m);
    if (e.help === null) expect(d.help, `${e.code} has no help`).toBeUndefined();
    else if (typeof e.help === 'string') expect(d.help).toBe(e.help);
    else if (e.help instanceof RegExp) expect(d.help).toMatch(e.help);
    for (const s of e.secondary ?? []) {
      const file = s.file ?? FILE;
      const text = sourceOf(file, source);
      const starts = occurrences(text, s.at);
      const start = starts[s.occurrence ?? 0];
      const found = d.secondary.find((l) => l.span.file === file && l.span.start === start && text.slice(l.span.start, l.span.end) === s.at);
      const have = d.secondary.map((l) => `${l.span.file}:${sourceOf(l.span.file, source).slice(l.span.start, l.span.end)} (${l.message})`);
      expect(found, `${e.code}: a secondary label on \`${s.at}\` in ${file}; have ${have.join('; ')}`).toBeDefined();
      if (s.message) expect(found!.message).toContain(s.message);
    }
  });
  return diagnostics;
}

describe('cosine_similarity of rows that do not pair up', () => {
  it('is one error at the call, not one per product inside the standard library', () => {
    const ds = check('use std.math.{cosine_similarity}\nmodel M {\n  input a: f32[B, 4]\n  input b: f32[N, 4]\n  output s = cosine_similarity(a, b)\n}\n');
    expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual(['E0301 mul shapes do not broadcast: f32[B, 4] and f32[N, 4]']);
  });
});

describe('a body unrolled at compile time', () => {
  it('reports its error once, not once per step of a scan or a for loop', () => {
    expectDiagnostics(`model M {
  input x: f32[B, 6, 4]
  let h = scan xt in x along 1 carry (s = zeros([B, 3])) {
    let bad = xt + zeros([B, 5])
    s = s + 1.0
    yield s
  }
  output y = h
}
`, [{ code: 'E0301', at: 'xt', occurrence: 1 }]);
    expectDiagnostics(`model M {
  input x: f32[B, 4]
  for i in 0..8 {
    let bad = x + zeros([B, 5])
  }
  output y = x
}
`, [{ code: 'E0301', at: 'x', occurrence: 1 }]);
  });
});

describe('E0301 operands do not fit the operation', () => {
  it('gather with indices of a lower rank: named gather, as called (not take_along_axis), with the axis to add', () => {
    const src = `model M {
  input q: f32[B, 2]
  input action: i32[B]
  output y = gather(q, action, axis: 1)
}
`;
    expectDiagnostics(src, [
      {
        code: 'E0301',
        at: 'action',
        occurrence: 1,
        label: 'i32[B]',
        message: ['`gather` needs indices of the same rank as the array: f32[B, 2] and i32[B]'],
        help: 'add the axis: reshape the indices to [B, 1] (`indices[..., None]`)',
        secondary: [{ at: 'q', occurrence: 1, message: 'f32[B, 2]' }],
      },
    ]);
  });

  it('matmul inner dimensions: the left operand, with the weight and its declaration as secondaries', () => {
    const src = `model M {
  input image: f32[B, 784]
  param w: f32[748, 10] = glorot_uniform
  let logits = image @ w
  output y = logits
}
`;
    expectDiagnostics(src, [
      {
        code: 'E0301',
        at: 'image',
        occurrence: 1,
        label: 'f32[B, 784]',
        message: ['matmul inner dimensions differ', 'f32[B, 784] @ f32[748, 10]'],
        help: null,
        secondary: [
          { at: 'w', occurrence: 1, message: 'f32[748, 10]' },
          { at: 'w', occurrence: 0, message: '`w` is declared here' },
        ],
      },
    ]);
  });

  it('matmul with a transposed weight suggests transposing it', () => {
    const src = 'model M {\n  input image: f32[B, 784]\n  param w: f32[10, 784] = glorot_uniform\n  output y = image @ w\n}\n';
    expectDiagnostics(src, [
      { code: 'E0301', at: 'image', occurrence: 1, label: 'f32[B, 784]', help: /transpose/, secondary: [{ at: 'w', occurrence: 0, message: 'declared here' }] },
    ]);
  });

  it('matmul of an unflattened image suggests flattening it', () => {
    const src = 'model M {\n  input x: f32[B, 1, 28, 28]\n  param w: f32[784, 10] = zeros\n  output y = x @ w\n}\n';
    expectDiagnostics(src, [{ code: 'E0301', at: 'x', occurrence: 1, label: 'f32[B, 1, 28, 28]', help: /flatten.*\[B, 784\]/ }]);
  });

  it('shapes that do not broadcast in +: the left operand, the right one as secondary', () => {
    const src = 'model M {\n  input a: f32[B, 3]\n  input bb: f32[B, 4]\n  output y = a + bb\n}\n';
    expectDiagnostics(src, [
      {
        code: 'E0301',
        at: 'a',
        occurrence: 1,
        label: 'f32[B, 3]',
        message: ['do not broadcast', 'f32[B, 3]', 'f32[B, 4]'],
        secondary: [{ at: 'bb', occurrence: 1, message: 'f32[B, 4]' }],
      },
    ]);
  });

  it('labels of another rank than the logits without their class axis: accuracy would compare every pair', () => {
    const src = 'use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  input label: i32[B, 1]\n  layer fc = Dense(4, 3)\n  metric acc = accuracy(fc(x), label)\n}\n';
    expectDiagnostics(src, [
      {
        code: 'E0304',
        at: 'accuracy(fc(x), label)',
        message: ['shape(labels) == shape(logits)[:-1]', 'labels: i32[B, 1]', 'logits: f32[B, 3]'],
        secondary: [{ at: 'shape(labels) == shape(logits)[:-1]', file: 'stdlib/metrics.dl', message: 'standard library' }],
      },
    ]);
    expectDiagnostics(src.replace('accuracy(', 'precision('), [{ code: 'E0304', at: 'precision(fc(x), label)', message: ['labels: i32[B, 1]'] }]);
    expectDiagnostics(src.replace('i32[B, 1]', 'i32[B]'), []);
  });

  it('a regression loss of a [B, 1] prediction against a [B] target: the shapes must be one', () => {
    const src = 'use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  input y: f32[B]\n  layer r = Dense(4, 1)\n  loss = mse(r(x), y)\n}\n';
    expectDiagnostics(src, [{ code: 'E0304', at: 'mse(r(x), y)', message: ['pred: f32[B, 1]', 'target: f32[B]'] }]);
    expectDiagnostics(src.replace('mse(r(x), y)', 'mse(r(x), reshape(y, [B, 1]))'), []);
  });

  it('a layer\'s size variable is its own, whatever the caller calls its sizes; within one call it must agree', () => {
    const layer = 'layer Pair(d: int) {\n  forward(x: f32[B, L, d], y: f32[B, L, d]) -> f32[B, L, d] = x + y\n}\n';
    const model = (second: string) => `${layer}model M {\n  input tokens: f32[B, L, 4]\n  layer f = Pair(4)\n  output z = f(tokens[:, 1:], ${second})\n}\n`;
    // the model's tokens[:, 1:] is [B, L - 1, 4]: the layer's L is the model's L - 1
    expectDiagnostics(model('tokens[:, :-1]'), []);
    expectDiagnostics(model('tokens'), [{ code: 'E0302', at: 'tokens', occurrence: 2, message: ['`Pair` takes f32[B, L - 1, 4] for `y`', 'the argument is f32[B, L, 4]'] }]);
  });

  it('broadcasting with a size-1 or missing axis is fine', () => {
    expectDiagnostics('model M {\n  input a: f32[B, 3]\n  input c: f32[1, 3]\n  input d: f32[3]\n  output y = a + c - d\n}\n', []);
  });

  it('an i32 tensor plus an f32 tensor: a dtype mismatch with a cast hint', () => {
    const src = 'model M {\n  input ids: i32[B, 3]\n  input v: f32[B, 3]\n  output y = ids + v\n}\n';
    expectDiagnostics(src, [
      {
        code: 'E0301',
        // the operand to cast is underlined: the integer one, towards the float one (it underlined v)
        at: 'ids',
        occurrence: 1,
        label: 'i32[B, 3]',
        message: ['different dtypes', 'i32[B, 3]', 'f32[B, 3]'],
        help: 'cast the underlined i32 operand: cast(..., f32)',
        secondary: [{ at: 'v', occurrence: 1, message: 'f32[B, 3]' }],
      },
    ]);
  });

  it('conv2d input channels differ from the weight', () => {
    const src = 'model M {\n  input x: f32[B, 3, 8, 8]\n  param k: f32[4, 2, 3, 3] = he_uniform\n  output y = conv2d(x, k)\n}\n';
    expectDiagnostics(src, [
      {
        code: 'E0301',
        at: 'x',
        occurrence: 1,
        label: 'f32[B, 3, 8, 8]',
        message: ['conv2d', 'channels'],
        secondary: [
          { at: 'k', occurrence: 1, message: 'f32[4, 2, 3, 3]' },
          { at: 'k', occurrence: 0, message: 'declared here' },
        ],
      },
    ]);
  });

  it('reshape to a different element count', () => {
    const src = 'model M {\n  input x: f32[B, 12]\n  output y = reshape(x, [B, 5])\n}\n';
    expectDiagnostics(src, [
      { code: 'E0301', at: 'x', occurrence: 1, label: 'f32[B, 12]', message: ['reshape changes the number of elements', '[B, 5]'], help: /12\*B.*5\*B/ },
    ]);
  });

  it('take with float indices', () => {
    const src = 'model M {\n  input table: f32[10, 4]\n  input idx: f32[B]\n  output y = take(table, idx)\n}\n';
    expectDiagnostics(src, [
      { code: 'E0301', at: 'idx', occurrence: 1, label: 'f32[B]', message: ['integer indices'], help: /i32/, secondary: [{ at: 'table', occurrence: 1 }] },
    ]);
  });

  it('an integer index out of range of a concrete axis', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = x[:, 4]\n}\n', [{ code: 'E0301', at: '4', occurrence: 1, message: ['out of range'] }]);
  });
});

describe('E0302 value does not match its declared type', () => {
  it('a forward argument of the wrong shape', () => {
    const src = `layer L {
  forward(x: f32[B, 4]) -> f32[B, 4] = x
}
model M {
  input v: f32[B, 5]
  layer l = L()
  output y = l(v)
}
`;
    expectDiagnostics(src, [{ code: 'E0302', at: 'v', occurrence: 1, label: 'f32[B, 5]', message: ['f32[B, 4]', 'f32[B, 5]'] }]);
  });

  it('a forward argument of the wrong dtype, also into stdlib functions and layers', () => {
    expectDiagnostics('model M {\n  input ids: i32[B, 10]\n  output y = softmax(ids)\n}\n', [
      { code: 'E0302', at: 'ids', occurrence: 1, label: 'i32[B, 10]', message: ['f32', 'i32[B, 10]'] },
    ]);
    expectDiagnostics('model M {\n  input ids: i32[B, 784]\n  layer fc = Dense(784, 10)\n  output y = fc(ids)\n}\n', [
      { code: 'E0302', at: 'ids', occurrence: 1, label: 'i32[B, 784]', message: ['f32'] },
    ]);
  });

  it('a rank-4 image into a rank-2 forward suggests flattening', () => {
    const src = `layer L {
  param w: f32[784, 10] = zeros
  forward(x: f32[B, 784]) -> f32[B, 10] = x @ w
}
model M {
  input img: f32[B, 1, 28, 28]
  layer l = L()
  output y = l(img)
}
`;
    expectDiagnostics(src, [{ code: 'E0302', at: 'img', occurrence: 1, label: 'f32[B, 1, 28, 28]', help: /flatten/ }]);
  });

  it('a forward whose result differs from its declared return type', () => {
    const src = `layer L {
  forward(x: f32[B, 4]) -> f32[B, 5] = x
}
model M {
  input v: f32[B, 4]
  layer l = L()
  output y = l(v)
}
`;
    expectDiagnostics(src, [
      { code: 'E0302', at: 'l(v)', label: 'f32[B, 4]', message: ['f32[B, 4]', 'f32[B, 5]'], secondary: [{ at: 'f32[B, 5]', message: 'declared' }] },
    ]);
  });

  it('a fn declaring a compile-time result type (int, float, bool, fn, int[]) returns it; a wrong kind is one E0302 at the call', () => {
    const ok = `fn double(a: int) -> int = 2 * a
fn half(a: int) -> float = a
fn big(a: int) -> bool = a > 3
fn act(a: int) -> fn = relu
fn dims(a: int) -> int[] = [a, a]
model M {
  input x: f32[B, 4]
  output y = act(1)(x * float(double(3)) * half(1) * float(len(dims(2))))
  output z = if big(5) { x } else { -x }
}
`;
    expectDiagnostics(ok, []);
    const bad = 'fn f(a: int) -> int = a > 1\nmodel M {\n  input x: f32[B, 4]\n  output y = x * float(f(2))\n}\n';
    expectDiagnostics(bad, [{ code: 'E0302', at: 'f(2)', message: ['a bool', 'declared return type is int'], secondary: [{ at: 'int', occurrence: 1 }] }]);
  });

  it('a typed let that does not match', () => {
    expectDiagnostics('model M {\n  input a: f32[B, 3]\n  let y: f32[B, 4] = a * 2.0\n  output o = y\n}\n', [
      { code: 'E0302', at: 'a * 2.0', label: 'f32[B, 3]', message: ['f32[B, 4]'] },
    ]);
  });

  it('a loss that is not a scalar', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  loss = x * 2.0\n}\n', [
      { code: 'E0302', at: 'x * 2.0', label: 'f32[B, 4]', message: ['scalar'], help: /mean/ },
    ]);
  });
});

describe('E0303 wrong arguments', () => {
  it('too many arguments: the first extra one', () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  layer d = Dense(4, 2, true, glorot_uniform, 7)\n  output y = d(x)\n}\n';
    expectDiagnostics(src, [{ code: 'E0303', at: '7', message: ['`Dense` takes 4 arguments', '5 were given'] }]);
    const fn = 'fn f(a: f32[B, 4]) -> f32[B, 4] = a\nmodel M {\n  input x: f32[B, 4]\n  output o = f(x, x)\n}\n';
    expectDiagnostics(fn, [{ code: 'E0303', at: 'x', occurrence: 2, message: ['`f` takes 1 argument'] }]);
  });

  it('an unknown keyword argument lists the parameters', () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  layer d = Dense(4, 2, bais: false)\n  output y = d(x)\n}\n';
    const [d] = check(src);
    expect(d.code).toBe('E0303');
    expect(d.message).toContain('no parameter `bais`');
    expect(d.help).toBe('its parameters are in, out, bias, init');
  });

  it('an unknown keyword argument is marked at the keyword', () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  layer d = Dense(4, 2, bais: false)\n  output y = d(x)\n}\n';
    expectDiagnostics(src, [{ code: 'E0303', at: 'bais' }]);
  });

  it('a missing argument: the call', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  layer d = Dense(4)\n  output y = d(x)\n}\n', [
      { code: 'E0303', at: 'Dense(4)', message: ['needs the argument `out`'] },
    ]);
    const fn = 'fn f(a: f32[B, 4], b: f32[B, 4]) -> f32[B, 4] = a + b\nmodel M {\n  input x: f32[B, 4]\n  output o = f(x)\n}\n';
    expectDiagnostics(fn, [{ code: 'E0303', at: 'f(x)', message: ['needs the argument `b`'] }]);
  });

  it("a builtin's misspelled keyword, extra positional value or argument given twice: at the argument, with the builtin's signature", () => {
    const conv = (call: string) => `model M {\n  input x: f32[B, 4, 6, 6]\n  param w: f32[4, 2, 3, 3]\n  output y = ${call}\n}\n`;
    const [d] = check(conv('conv_transpose2d(x, w, strid: 2)'));
    expect([d.code, d.message, d.help]).toEqual(['E0303', '`conv_transpose2d` has no parameter `strid`', 'did you mean `stride`? its parameters: conv_transpose2d(x, w, stride = 1, padding = 0, dilation = 1, output_padding = 0, groups = 1)']);
    expectDiagnostics(conv('conv_transpose2d(x, w, strid: 2)'), [{ code: 'E0303', at: 'strid' }]);
    expectDiagnostics(conv('conv_transpose2d(x, w, 1, 0, 1, 0, 1, 9)'), [{ code: 'E0303', at: '9', message: ['`conv_transpose2d` takes 7 arguments, but 8 were given'] }]);
    expectDiagnostics(conv('conv_transpose2d(x, w, 2, stride: 2)'), [{ code: 'E0303', at: 'stride', message: ['the argument `stride` of `conv_transpose2d` is given twice'] }]);
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = sum(x, axes: 1)\n}\n', [{ code: 'E0303', at: 'axes', message: ['`sum` has no parameter `axes`'] }]);
    // compile-time reductions take any number of values
    expect(check('model M {\n  input x: f32[B, 4]\n  output y = x * max(1, 2, 3)\n}\n')).toEqual([]);
  });

  it('every builtin has a signature, and docs/language.md lists it', () => {
    expect(BUILTIN_NAMES.filter((n) => !(n in BUILTIN_SIGNATURES))).toEqual([]);
    const docs = readFileSync('docs/language.md', 'utf8');
    expect(BUILTIN_NAMES.filter((n) => !docs.includes(`\`${signatureText(n)}\``))).toEqual([]);
  });

  it('a float where an int hyperparameter is declared', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  layer d = Dense(4.5, 2)\n  output o = d(x)\n}\n', [
      { code: 'E0303', at: '4.5', message: ['`in` is declared int'] },
    ]);
  });
});

describe('E0304 constraint violated', () => {
  it('a where clause in the user’s layer: at the constraint, with the values', () => {
    const src = `layer Att(d: int, heads: int) {
  where d % heads == 0
  forward(x: f32[B, d]) -> f32[B, d] = x
}
model M {
  input x: f32[B, 10]
  layer a = Att(10, 3)
  output y = a(x)
}
`;
    expectDiagnostics(src, [{ code: 'E0304', at: 'd % heads == 0', message: ['d = 10', 'heads = 3'] }]);
  });

  it('attention heads that do not divide d in a stdlib layer: at the user’s instantiation', () => {
    const src = 'model M {\n  input x: f32[B, 5, 10]\n  layer a = MultiHeadAttention(10, 3)\n  output y = a(x)\n}\n';
    expectDiagnostics(src, [
      {
        code: 'E0304',
        at: 'MultiHeadAttention(10, 3)',
        message: ['d % heads == 0', 'd = 10', 'heads = 3'],
        secondary: [{ at: 'd % heads == 0', file: 'stdlib/nn.dl', message: 'standard library' }],
      },
    ]);
  });
});

describe('W0301 a broadcast that pairs every example with every other', () => {
  it('[B, 1] against [B] is a warning at the expression, once; same-rank pairings written out, and sizes that lead no input, are not', () => {
    const model = (body: string) => `use std.nn.{Dense}\nmodel M {\n  input features: f32[B, 4]\n  input label: f32[B]\n  input tokens: i32[B, L]\n  layer fc = Dense(4, 1)\n  let pred = fc(features)\n${body}\n}\n`;
    const [w] = expectDiagnostics(model('  metric mae = mean(abs(pred - label))\n  metric mae2 = mean(abs(pred - label))'), [
      { code: 'W0301', at: 'pred - label', message: ['this broadcasts f32[B, 1] against f32[B] to f32[B, B]: every example of the batch paired with every other (B x B)'] },
      { code: 'W0301', at: 'pred - label', occurrence: 1 },
    ]);
    expect(w.severity).toBe('warning');
    expect(w.help).toContain('`label[:, None]`');
    expectDiagnostics(model('  metric r = mean(label / pred)'), [{ code: 'W0301', at: 'label / pred' }]);
    // each pair with its own, every pair on purpose, and a position grid over L (which leads no input)
    expect(check(model('  metric mae = mean(abs(pred[:, 0] - label))\n  metric d = mean(features[:, None, :] - features[None, :, :])\n  let pos = arange(L)\n  output causal = cast(pos[:, None] >= pos, f32)\n  metric m = mean(abs(pred - label[:, None]))'))).toEqual([]);
  });
});

describe('E0305 cannot evaluate at compile time', () => {
  it('a negative size for a new tensor (zeros, ones, full, random_*, arange), at the shape as written', () => {
    const model = (e: string) => `model M {\n  input x: f32[B, 4]\n  output y = ${e}\n}\n`;
    expectDiagnostics(model('zeros([2, -3])'), [{ code: 'E0305', at: '[2, -3]', message: ['`zeros` got the negative size -3 in [2, -3]'] }]);
    expectDiagnostics(model('x + random_normal([B, -1])'), [{ code: 'E0305', at: '[B, -1]', message: ['`random_normal` got the negative size -1 in [B, -1]'] }]);
    expectDiagnostics(model('full([1, 2 - 5], 1.0)'), [{ code: 'E0305', at: '[1, 2 - 5]', message: ['`full` got the negative size -3'] }]);
    expectDiagnostics(model('cast(arange(-1), f32)'), [{ code: 'E0305', at: '-1', message: ['`arange` got the negative size -1'] }]);
    expect(check(model('x + zeros([B, 4]) + cast(arange(4), f32)'))).toEqual([]);
  });

  it("a pooling mode that is not true or false; ceil_mode over a symbolic height is E0301 at the input", () => {
    const model = (input: string, e: string) => `use std.nn.{AvgPool2d}\nmodel M {\n  input x: f32[${input}]\n  output y = ${e}\n}\n`;
    expectDiagnostics(model('B, 1, 4, 4', 'max_pool2d(x, ceil_mode: 1)'), [{ code: 'E0305', at: '1', occurrence: 1, message: ['`ceil_mode` must be true or false, found an int'] }]);
    expectDiagnostics(model('B, 1, 4, 4', 'avg_pool2d(x, count_include_pad: "yes")'), [{ code: 'E0305', at: '"yes"', message: ['`count_include_pad` must be true or false'] }]);
    expectDiagnostics(model('B, 1, H, 4', 'avg_pool2d(x, ceil_mode: true)'), [{ code: 'E0301', at: 'x', occurrence: 1, message: ['avg_pool2d with ceil_mode needs concrete spatial sizes, found f32[B, 1, H, 4]'] }]);
    expect(check(model('B, 1, 5, 5', 'AvgPool2d(2, ceil_mode: true, count_include_pad: true)(x)'))).toEqual([]);
  });

  it('an if over a tensor', () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  let y = x\n  if x > 0.0 {\n    y = x * 2.0\n  }\n  output o = y\n}\n';
    expectDiagnostics(src, [{ code: 'E0305', at: 'x > 0.0', help: /select\(cond, a, b\)/ }]);
  });

  it('a list index out of range', () => {
    expectDiagnostics('model M {\n  let sizes = [4, 8]\n  input x: f32[B, sizes[2]]\n  output o = x\n}\n', [
      { code: 'E0305', at: '2', occurrence: 0, message: ['index 2 is out of range for a list of 2'] },
    ]);
    const neg = 'layer L(s: int[]) {\n  forward(x: f32[B, s[0]]) -> f32[B, s[-3]] = x\n}\nmodel M {\n  input x: f32[B, 4]\n  layer l = L([4, 4])\n  output y = l(x)\n}\n';
    expectDiagnostics(neg, [{ code: 'E0305', at: '-3', message: ['index -3'] }]);
  });
});

describe('E0306 scan over an axis of unknown length', () => {
  it('scanning a symbolic time axis', () => {
    const src = `model M {
  input x: f32[B, T, 4]
  let hs = scan xt in x along 1 carry (h = zeros([B, 4])) {
    h = tanh(xt + h)
    yield h
  }
  output o = hs
}
`;
    expectDiagnostics(src, [{ code: 'E0306', at: 'x', occurrence: 1, message: ['axis 1', 'f32[B, T, 4]'], help: /hyperparameter/ }]);
  });

  it('a concrete length is unrolled', () => {
    const src = 'model M(T: int = 3) {\n  input x: f32[B, T, 4]\n  let hs = scan xt in x along 1 carry (h = zeros([B, 4])) {\n    h = tanh(xt + h)\n    yield h\n  }\n  output o = hs\n}\n';
    expectDiagnostics(src, []);
  });
});

describe('E0307 wrong kind of value', () => {
  it('calling a tensor, calling a number', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output o = x(2)\n}\n', [{ code: 'E0307', at: 'x', occurrence: 1, message: ['tensor cannot be called'] }]);
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  let k = 3\n  output o = x * k(2)\n}\n', [{ code: 'E0307', at: 'k', occurrence: 1 }]);
  });

  it('a parameter initialized with a tensor', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  param w: f32[4, 4] = x\n  output o = x @ w\n}\n', [
      { code: 'E0307', at: 'x', occurrence: 1, message: ['initializer', 'found a tensor'] },
    ]);
  });

  it('arithmetic on a layer', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  layer d = Dense(4, 4)\n  output o = d + x\n}\n', [{ code: 'E0307', at: 'd', occurrence: 1 }]);
  });
});

describe('E0308 recursion', () => {
  it('a recursive fn stops with one diagnostic', () => {
    expectDiagnostics('fn f(n: int) -> int = f(n + 1)\nmodel M {\n  input x: f32[B, 4]\n  output o = x * f(1)\n}\n', [
      { code: 'E0308', at: 'f(n + 1)', message: ['deeper than 200'] },
    ]);
  });

  it('mutual recursion and a layer that contains itself', () => {
    const mutual = 'fn f(x: f32[B, 4]) -> f32[B, 4] = g(x)\nfn g(x: f32[B, 4]) -> f32[B, 4] = f(x)\nmodel M {\n  input x: f32[B, 4]\n  output o = f(x)\n}\n';
    const [d] = expectDiagnostics(mutual, [{ code: 'E0308', at: mutualAt(mutual) }]);
    expect(d.message).toContain('200');
    // the cycle is named
    expect(d.message).toMatch(/: `[fg]` → `[fg]` → `[fg]` → \.\.\. \(each uses the next, with no end\)$/);
    const [l] = expectDiagnostics('layer L {\n  layer inner = L()\n}\nmodel M {\n  layer l = L()\n}\n', [{ code: 'E0308', at: 'L()', occurrence: 0 }]);
    expect(l.message).toBe('layers nest deeper than 200 levels: `L` → `L` → ... (`L` uses itself, with no end)');
  });
});

/** The recursive call in the body of f or g, whichever the depth limit stops at. */
function mutualAt(src: string): string {
  const d = check(src)[0];
  return src.slice(d.span.start, d.span.end) === 'g(x)' ? 'g(x)' : 'f(x)';
}

describe('poison: one root cause, one diagnostic', () => {
  it('a bad matmul used many times afterwards', () => {
    const src = `model M {
  input image: f32[B, 784]
  input label: i32[B]
  param w: f32[748, 10] = glorot_uniform
  layer fc = Dense(10, 5)
  let logits = image @ w
  let h = fc(logits)
  let s = reshape(logits, [B, 2, 5])
  let c = concat([logits, h], axis: 1)
  let col = logits[:, 0]
  let t = logits.shape
  let m = mean(logits, axis: -1, keepdims: true)
  let z = zeros([B, 10]) + logits
  let r = relu(logits) * tanh(logits) - exp(logits) / maximum(logits, 0.0)
  let ys = [logits, r, z]
  for v in ys {
    r = r + v
  }
  output o: f32[B, 10] = logits
  output p = softmax(h, axis: -1)
  loss = cross_entropy(logits, label) + mean(r)
  metric acc = mean(cast(argmax(logits, axis: -1) == label, f32))
}
`;
    expectDiagnostics(src, [{ code: 'E0301', at: 'image', occurrence: 1 }]);
  });

  it('through fn arguments, state updates, scans and compile-time conditions', () => {
    const head = '  input x: f32[B, 4]\n  param w: f32[5, 4] = zeros\n  let y = x @ w\n';
    const one = (body: string, pre = '') => expectDiagnostics(`${pre}model M(T: int = 3) {\n${head}${body}}\n`, [{ code: 'E0301', at: 'x', occurrence: 1 }]);
    one('  output o = f(y) + f(f(y))\n', 'fn f(a: f32[B, 4]) -> f32[B, 4] = a * 2.0\n');
    one('  state st: f32[2, 4] = zeros\n  st = y\n  output o = y\n');
    one('  let hs = scan yt in y[:, None, :] along 1 carry (h = zeros([B, 4])) {\n    h = tanh(yt + h)\n    yield h\n  }\n  output o = hs\n');
    one('  if len(shape(y)) > 1 {\n    y = y * 2.0\n  }\n  output o = y\n');
    one('  layer d = Dense(4, 4)\n  output o = d(d(y)) + d(y)\n  loss = mean(d(y))\n');
  });

  it('independent errors are each reported once', () => {
    const src = 'model M {\n  input a: f32[B, 3]\n  input bb: f32[B, 4]\n  output y = a + bb\n  output z = a @ bb\n  output q = y * z\n}\n';
    expectDiagnostics(src, [
      { code: 'E0301', at: 'a', occurrence: 1, message: ['broadcast'] },
      { code: 'E0301', at: 'a', occurrence: 2, message: ['matmul'] },
    ]);
  });
});

describe('errors inside the standard library are shown at the user’s call', () => {
  it('Dense(784, 10) applied to f32[B, 748]: the argument in the user’s file, once', () => {
    const src = 'model M {\n  input x: f32[B, 748]\n  layer fc = Dense(784, 10)\n  output y = fc(x)\n  output z = relu(y) * 2.0\n  loss = mean(y)\n}\n';
    const [d] = expectDiagnostics(src, [{ code: 'E0302', at: 'x', occurrence: 1, label: 'f32[B, 748]', message: ['784', 'f32[B, 748]'] }]);
    expect(d.span.file).toBe(FILE);
    for (const l of d.secondary) expect(l.span.file === FILE || l.span.file.startsWith('stdlib/')).toBe(true);
  });

  it('Dense(784, 10) applied to f32[B, 748]: a secondary label points at the declaration in stdlib', () => {
    const src = 'model M {\n  input x: f32[B, 748]\n  layer fc = Dense(784, 10)\n  output y = fc(x)\n}\n';
    const [d] = check(src);
    expect(d.secondary.some((l) => l.span.file === 'stdlib/nn.dl')).toBe(true);
  });

  it('a rank-4 image into Dense suggests flattening', () => {
    const src = 'model M {\n  input img: f32[B, 1, 28, 28]\n  layer fc = Dense(784, 10)\n  output y = fc(img)\n}\n';
    expectDiagnostics(src, [{ code: 'E0302', at: 'img', occurrence: 1, label: 'f32[B, 1, 28, 28]', help: /flatten/ }]);
  });

  it('a shape error deep inside a stdlib function: at the user’s call, with a label inside the stdlib', () => {
    const src = 'model M {\n  input logits: f32[B, 10]\n  output p = logsumexp(logits, axis: 5)\n}\n';
    const [d] = expectDiagnostics(src, [{ code: 'E0301', at: 'logsumexp(logits, axis: 5)', message: ['`max` axis 5 is out of range for f32[B, 10] (rank 2: its axes are -2..1)'] }]);
    const inside = d.secondary.find((l) => l.span.file === 'stdlib/act.dl');
    expect(inside?.message).toContain('standard library');
  });

  it('an axis out of range: at the axis, naming the builtin the user called and the axes there are', () => {
    const model = (e: string) => `model M {\n  input x: f32[B, 4, 5]\n  input i: i32[B, 4, 5]\n  output y = ${e}\n}\n`;
    expectDiagnostics(model('sum(x, axis: 3)'), [{ code: 'E0301', at: '3', message: ['`sum` axis 3 is out of range for f32[B, 4, 5] (rank 3: its axes are -3..2)'] }]);
    expectDiagnostics(model('mean(x, axis: -4)'), [{ code: 'E0301', at: '-4', message: ['`mean` axis -4 is out of range'] }]);
    expectDiagnostics(model('stack([x, x], axis: 4)'), [{ code: 'E0301', at: '4', occurrence: 2, message: ['`stack` axis 4 is out of range for the stack of 2 f32[B, 4, 5] (rank 4: its axes are -4..3)'] }]);
    expectDiagnostics(model('gather(x, i, axis: 3)'), [{ code: 'E0301', at: '3', message: ['`gather` axis 3 is out of range'] }]);
    expectDiagnostics(model('argmax(x, axis: 7)'), [{ code: 'E0301', at: '7', message: ['`argmax` axis 7 is out of range'] }]);
    expectDiagnostics(model('softmax(x, axis: 3)'), [{ code: 'E0304', at: 'softmax(x, axis: 3)', message: ['axis < len(shape(x))', 'axis = 3', 'x: f32[B, 4, 5]'] }]);
    expect(check(model('sum(x, axis: -1) + mean(x, axis: 2) + softmax(x, axis: -3)[:, :, 0]'))).toEqual([]);
  });

  it('one-hot labels where cross_entropy and nll take class indices: at the call, with both types', () => {
    for (const fn of ['cross_entropy', 'nll']) {
      const src = `model M {\n  input logits: f32[B, 10]\n  input label: i32[B, 10]\n  loss = ${fn}(logits, label)\n}\n`;
      expectDiagnostics(src, [{ code: 'E0304', at: `${fn}(logits, label)`, message: ['labels: i32[B, 10]', 'scores: f32[B, 10]', 'ax = 1'] }]);
    }
  });

  it('a constraint of a stdlib layer: at the user’s instantiation', () => {
    const src = 'model M {\n  input x: f32[B, 4, 28, 28]\n  layer c = Conv2d(4, 6, 3, groups: 4)\n  output y = c(x)\n}\n';
    expectDiagnostics(src, [
      { code: 'E0304', at: 'Conv2d(4, 6, 3, groups: 4)', message: ['out_ch % groups == 0'], secondary: [{ at: 'out_ch % groups == 0', file: 'stdlib/nn.dl' }] },
    ]);
  });
});

describe('regressions in the builtins (compiler/elaborate/builtins.ts)', () => {
  it('an axis out of range is reported, not normalised twice into another axis (and mean does not crash)', () => {
    for (const f of ['sum', 'max', 'mean', 'min']) {
      expectDiagnostics(`model M {\n  input x: f32[B, 4]\n  output y = ${f}(x, axis: -3)\n}\n`, [{ code: 'E0301', at: '-3', message: ['out of range'] }]);
    }
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = argmax(x, axis: -3)\n}\n', [{ code: 'E0301', at: '-3', message: ['out of range'] }]);
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = concat([x, x], axis: -3)\n}\n', [{ code: 'E0301', message: ['out of range'], at: '-3' }]);
    // in range, a negative axis counts from the end: sum over B gives [4], which broadcasts with [B, 1]
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = sum(x, axis: -2) + mean(x, axis: -1, keepdims: true)\n}\n', []);
  });

  it('a poisoned tensor inside a list argument is not reported again', () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  param w: f32[5, 4] = zeros\n  let y = x @ w\n  output a = concat([y, x], axis: 1)\n  output c = stack([x, y])\n  output r = reshape(x, [y.shape[0], 4])\n}\n';
    expectDiagnostics(src, [{ code: 'E0301', at: 'x', occurrence: 1, message: ['matmul'] }]);
  });

  it('indexing a symbolic axis carries what it assumes of the size into the graph', async () => {
    const { interpretGraph } = await import('../compiler/interpret/interpret.ts');
    const { tensor } = await import('../compiler/interpret/tensor.ts');
    const src = 'model M {\n  input x: f32[B]\n  output y = x[1:][1:][0]\n}\n';
    const { diagnostics, graphs } = checkSource(src, FILE);
    expect(diagnostics).toEqual([]);
    const g = graphs.get('M')!;
    expect(g.constraints.map((c) => c.text)).toContain('B - 2 >= 1');
    const feed = (b: number) => ({ inputs: new Map([['x', tensor('f32', [b], Array.from({ length: b }, (_, i) => i))]]), params: new Map(), state: new Map() });
    expect(() => interpretGraph(g, feed(2))).toThrow(/constraint `B - 2 >= 1` does not hold/);
    expect([...interpretGraph(g, feed(3)).outputs.get('y')!.data]).toEqual([2]);
  });
});

describe('mistakes users made, with the message a user needs', () => {
  it('a model used as a layer, a metric to maximize, a forward without return, a default of the wrong kind', () => {
    const inner = 'model Inner {\n  input x: f32[B, 4]\n  output y = x\n}\n';
    expectDiagnostics(`${inner}model Outer {\n  input x: f32[B, 4]\n  layer inner = Inner()\n  output y = inner(x)\n}\n`, [
      { code: 'E0201', at: 'Inner', occurrence: 1, message: ['`Inner` is a model, and a model is not a value inside another'], help: /declare it `layer Inner/ },
    ]);
    const metric = 'use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  loss = cross_entropy(fc(x), label)\n  metric acc = accuracy(fc(x), label)\n}\ntrain M {\n  maximize acc\n}\n';
    // a metric may be an objective (a WGAN critic's score); an accuracy has no gradient, and that is the reason given
    expectDiagnostics(metric, [{ code: 'E0206', at: 'maximize acc', message: ['`acc` has no gradient with respect to the parameters the step trains'], help: /minimize cross_entropy\(logits, label\)/ }]);
    expect(check(metric.replace('accuracy(fc(x), label)', 'mean(fc(x))'))).toEqual([]);
    const noReturn = 'layer L(d: int) {\n  forward(x: f32[B, d]) -> f32[B, d] {\n    let y = x\n  }\n}\nmodel M {\n  input x: f32[B, 4]\n  layer l = L(4)\n  output y = l(x)\n}\n';
    expectDiagnostics(noReturn, [{ code: 'E0302', at: 'f32[B, d]', occurrence: 1, message: ['the body ends without `return`, but promises f32[B, d]'] }]);
    expectDiagnostics('model M(hidden: int = 0.5) {\n  input x: f32[B, 4]\n  output y = x\n}\n', [{ code: 'E0303', at: '0.5', message: ['`hidden` is declared int, found a float'] }]);
  });

  it('initializer arguments: by position in torch.nn.init order, and a name they lack is E0303 (both were dropped silently)', () => {
    const model = (init: string) => `model M {\n  input x: f32[B, 4]\n  param w: f32[4] = ${init}\n  output y = x * w\n}\n`;
    const initOf = (init: string) => checkSource(model(init), 'm.dl').graphs.get('M')!.params[0].init;
    expect(initOf('normal(0.0, 0.02)')).toEqual({ kind: 'normal', options: { mean: 0, std: 0.02 } });
    expect(initOf('normal(std: 0.02)')).toEqual({ kind: 'normal', options: { std: 0.02 } });
    expect(initOf('constant(0.25)')).toEqual({ kind: 'constant', options: { value: 0.25 } });
    expect(initOf('uniform(-0.1, 0.1)')).toEqual({ kind: 'uniform', options: { low: -0.1, high: 0.1 } });
    expectDiagnostics(model('uniform(lo: -0.1, hi: 0.1)'), [{ code: 'E0303', at: 'lo', message: ['`uniform` has no parameter `lo`'], help: 'did you mean `low`? its parameters: uniform(low = 0, high = 1)' }]);
    expectDiagnostics(model('normal(0.0, 0.02, 3.0)'), [{ code: 'E0303', at: '3.0', message: ['`normal` takes 2 arguments, but 3 were given'] }]);
    expectDiagnostics(model('constant()'), [{ code: 'E0303', at: 'constant()', message: ['`constant` needs the argument `value`'] }]);
    expectDiagnostics(model('uniform(1.0, 0.0)'), [{ code: 'E0303', at: 'uniform(1.0, 0.0)', message: ['`uniform` needs low <= high, not 1 > 0'] }]);
  });

  it('a scan over an axis of length 0', () => {
    const src = 'model M {\n  input x: f32[B, 4, 5]\n  output y = scan r in x[:, :0] along 1 carry (h = x[:, 0]) {\n    h = h + r\n    yield h\n  }\n}\n';
    expectDiagnostics(src, [{ code: 'E0305', at: 'x[:, :0]', message: ['scan over axis 1 of f32[B, 0, 5], which has no steps'] }]);
  });

  it("Python's import, a layer whose name is taken for a size, an index tensor, and cast to bool", () => {
    expectDiagnostics('import std.nn\n', [{ code: 'E0011', at: 'import', help: 'did you mean `use`?' }]);
    const taken = 'layer B {\n  forward(x: f32[N, 4]) -> f32[N, 4] = x\n}\nmodel M {\n  input x: f32[B, 4]\n  output y = x\n}\n';
    expectDiagnostics(taken, [{ code: 'E0307', at: 'B', occurrence: 1, help: /`B` here names the layer B, not a new size/ }]);
    const gather = 'model M {\n  input table: f32[B, 10]\n  input idx: i32[B]\n  output y = table[:, idx]\n}\n';
    expectDiagnostics(gather, [{ code: 'E0305', at: 'idx', occurrence: 1, message: ['an index must be an integer known at compile time, not a tensor'], help: /take\(x, indices, axis: 1\)/ }]);
    expect(check('model M {\n  input x: f32[B, 4]\n  output y = cast(cast(x, bool), f32)\n}\n')).toEqual([]);
  });
});

describe('concat and stack of a list written out', () => {
  it('label each operand at its own item, with its own type', () => {
    const src = 'model M {\n  input a: f32[B, T, 16]\n  input b: f32[B, S, 16]\n  output y = concat([a, b], axis: 2)\n}\n';
    const [d] = expectDiagnostics(src, [{ code: 'E0301', at: 'b', occurrence: 1, label: 'f32[B, S, 16]' }]);
    expect(d.secondary.map((l) => [src.slice(l.span.start, l.span.end), l.message])).toEqual([['a', 'f32[B, T, 16]']]);
  });
});

describe('E0402 in dlc check, at what the user wrote (compile found them, at the first input)', () => {
  it('a parameter or state sized by a run-time size, and f16 tensors', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 16]\n  param w: f32[B, 16] = zeros\n  output y = x * w\n}\n', [
      { code: 'E0402', at: 'f32[B, 16]', occurrence: 1, message: ['the parameter `w` is f32[B, 16], with B known only when running'] },
    ]);
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = cast(cast(x, f16), f32)\n}\n', [{ code: 'E0402', at: 'f16', message: ['f16 tensors are not supported yet'] }]);
    expectDiagnostics('model M {\n  input x: f16[B, 4]\n  output y = x\n}\n', [{ code: 'E0402', at: 'f16', message: ['f16 tensors are not supported yet'] }]);
  });
});

describe('slices past the end of an axis, and the conditions slices and data give', () => {
  it('a slice that can never fit is E0301 at the slice: symbolic, concrete, negative start', () => {
    expectDiagnostics('model M {\n  input x: f32[B, T]\n  output y = x[:, :T + 1]\n}\n', [
      { code: 'E0301', at: ':T + 1', message: ['the slice `:T + 1` runs past the end of an axis of size T'], help: 'a slice or an index must stay inside the axis (slices do not clamp)' },
    ]);
    expectDiagnostics('model M {\n  input x: f32[B, 10]\n  output y = x[:, 5:20]\n}\n', [{ code: 'E0301', at: '5:20', message: ['the slice `5:20` runs past the end of an axis of size 10'] }]);
    expectDiagnostics('model M {\n  input x: f32[B, 10]\n  output y = x[:, -12:]\n}\n', [{ code: 'E0301', at: '-12:', message: ['the slice `-12:` runs past the end of an axis of size 10'] }]);
  });

  it('a table of fixed size sliced by a size carries the condition (it read past the table)', () => {
    const r = checkSource('model M {\n  input tokens: i32[B, L]\n  param pos: f32[4, 2] = zeros\n  output rows = pos[:L - 1]\n}\n', FILE);
    expect(r.diagnostics).toEqual([]);
    expect(r.graphs.get('M')!.constraints.map((c) => c.text)).toEqual(['4 >= L - 1', 'L - 1 >= 0']);
  });

  it('bounds written with sizes: -T counts from the end, T - 3 carries that it is not negative, a length that depends on sizes that it is not negative', () => {
    const r = checkSource('model M {\n  input x: f32[B, T]\n  output a = x[:, -T:]\n  output b = x[:, T - 3:T]\n  output c = x[:, -T]\n  output d = x[:, 2:T - 1]\n}\n', FILE);
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs.get('M')!;
    // -T: from the end, so x[:, -T:] is the whole axis (it was typed f32[B, 2*T] and failed at every T)
    expect(Object.fromEntries([...g.outputs].map(([k, v]) => [k, v.type.shape.map(dimToString).join(', ')]))).toEqual({ a: 'B, T', b: 'B, 3', c: 'B', d: 'B, T - 3' });
    expect(g.constraints.map((c) => c.text)).toEqual(['T - 3 >= 0', 'T >= 1', 'T >= 2', 'T - 1 >= 0', 'T - 1 >= 2']);
  });

  it('a size the train block’s data fixes is checked against the model’s conditions in dlc check', () => {
    const src = `model M(ctx: int = 8) {
  input tokens: i32[B, L]
  where L <= ctx + 1
  param pos: f32[ctx, 4] = zeros
  output rows = pos[:L - 1]
  loss = mean(rows)
}
train M {
  data = text(path: "t.txt", context: 20)
  optimizer = sgd(lr: 0.1)
}
`;
    const ds = checkSource(src, FILE).diagnostics;
    expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual([
      "E0304 `text()` gives examples with L = 20, which breaks the model's condition `L <= ctx + 1` (20 <= 9 is false)",
      "E0304 `text()` gives examples with L = 20, which breaks the model's condition `8 >= L - 1` (8 >= 19 is false)",
    ]);
    expect(src.slice(ds[0].span.start, ds[0].span.end)).toBe('text(path: "t.txt", context: 20)');
    expect(src.slice(ds[0].secondary[0].span.start, ds[0].secondary[0].span.end)).toBe('L <= ctx + 1');
    expect(checkSource(src.replace('context: 20', 'context: 9'), FILE).diagnostics).toEqual([]);
  });

  const pairs = (data: string, batch: string) => `model Pairs {
  input features: f32[B, 4]
  input label: i32[B]
  where B % 2 == 0
  param w: f32[4, 3] = zeros
  let z = reshape(features @ w, [B / 2, 2, 3])
  loss = cross_entropy(reshape(z + mean(z, axis: 1, keepdims: true), [B, 3]), label)
}
train Pairs {
  ${data}
  optimizer = sgd(lr: 0.1)
  ${batch}
}
`;

  it('a condition on the batch size B against the train block’s batch, and each split’s last batch where the data’s size is known', () => {
    // batch = 5 breaks B % 2 == 0 whatever the data: E0304 at the condition, the batch as a secondary label
    const odd = pairs('data { path = "d.csv"  label = "label"  columns = ["a", "b", "c", "d"] }', 'batch = 5');
    const [d] = checkSource(odd, FILE).diagnostics;
    expect(`${d.code} ${d.message}`).toBe("E0304 `batch = 5` gives batches of B = 5, which breaks the model's condition `B % 2 == 0` (1 == 0 is false)");
    expect(odd.slice(d.span.start, d.span.end)).toBe('B % 2 == 0');
    expect(d.secondary.map((l) => odd.slice(l.span.start, l.span.end))).toEqual(['batch = 5']);
    expect(d.help).toBe('`batch = 4` fits every batch');
    // iris: 150 examples split 120 / 15 / 15, so the validation split is one batch of 15 (this failed after the first epoch)
    const iris = pairs('data = iris()', 'batch = 16');
    const [v] = checkSource(iris, FILE).diagnostics;
    expect(`${v.code} ${v.message}`).toBe("E0304 with `batch = 16`, the validation split's 15 examples make one batch of 15, and B = 15 breaks the model's condition `B % 2 == 0` (1 == 0 is false)");
    expect(v.secondary.map((l) => `${iris.slice(l.span.start, l.span.end)}: ${l.message}`)).toEqual(['batch = 16: the batch size', 'iris(): `iris()`: training 120, validation 15, test 15 examples']);
    expect(v.help).toContain('no batch size fits every split: change `split`');
    // a split that leaves even sizes fits; the default batch of 32 is checked too, and the nearest batch that fits is named
    expect(checkSource(pairs('data = iris()\n  split = [0.8, 0.2]', 'batch = 16'), FILE).diagnostics).toEqual([]);
    const dflt = checkSource(pairs('data = iris()\n  split = [0.9, 0.1]', ''), FILE).diagnostics;
    expect(dflt.map((x) => `${x.code} ${x.message}`)).toEqual([
      "E0304 with the default batch of 32, the training split's 135 examples leave a last batch of 7, and B = 7 breaks the model's condition `B % 2 == 0` (1 == 0 is false)",
    ]);
    // another kind of condition: B >= 8 with batch = 14 leaves the validation split's 15 examples a last batch of 1; 15 is the nearest batch that fits
    const atLeastSrc = 'model Big {\n  input features: f32[B, 4]\n  input label: i32[B]\n  where B >= 8\n  param w: f32[4, 3] = zeros\n  loss = cross_entropy(features @ w, label)\n}\ntrain Big {\n  data = iris()\n  batch = 14\n}\n';
    const atLeast = checkSource(atLeastSrc, FILE).diagnostics;
    expect(atLeast.map((x) => `${x.code} ${x.message} | ${x.help}`)).toEqual([
      "E0304 with `batch = 14`, the validation split's 15 examples leave a last batch of 1, and B = 1 breaks the model's condition `B >= 8` (1 >= 8 is false) | `batch = 15` fits every batch of the splits (training 120, validation 15, test 15); every example is used, so a split's last batch holds what is left over (there is no drop_last)",
    ]);
  });

  it('a size fixed by a CSV’s listed columns is checked as a catalog dataset’s is', () => {
    const src = `model Fixed {
  input features: f32[B, F]
  input label: i32[B]
  where F % 4 == 0
  param w: f32[4, 2] = zeros
  loss = cross_entropy(mean(reshape(features, [B, F / 4, 4]), axis: 1) @ w, label)
}
train Fixed {
  data { path = "d6.csv"  label = "label"  columns = ["a", "b", "c", "d", "e", "f"] }
  optimizer = sgd(lr: 0.1)
}
`;
    const ds = checkSource(src, FILE).diagnostics;
    expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual(["E0304 the CSV's 6 listed `columns` give examples with F = 6, which breaks the model's condition `F % 4 == 0` (2 == 0 is false)"]);
    expect(src.slice(ds[0].span.start, ds[0].span.end)).toBe('path = "d6.csv"');
    expect(checkSource(src.replace(', "e", "f"', ', "e", "f", "g", "h"'), FILE).diagnostics).toEqual([]);
    // a concrete features axis that the listed columns do not fill is E0207
    const narrow = checkSource(src.replace('f32[B, F]', 'f32[B, 8]').replace('where F % 4 == 0', '').replaceAll('F / 4', '2'), FILE).diagnostics;
    expect(narrow.map((d) => d.code)).toEqual(['E0207']);
  });
});

describe('indices counted by arange reach the end of their table', () => {
  it('a table too short for arange(n) is E0301 at the user’s call; a symbolic n carries rows >= n at the call', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 2]\n  layer small = Embedding(3, 4)\n  output q = small(arange(5)[None, :])\n}\n', [
      { code: 'E0301', at: 'small(arange(5)[None, :])', message: ['the indices count 0 to 4, past the end of a table of 3 along axis 0'] },
    ]);
    const src = 'model M {\n  input tokens: i32[B, L]\n  layer wpe = Embedding(16, 4)\n  output p = wpe(arange(L - 1))\n  output t = take(ones([8]), arange(L))\n}\n';
    const r = checkSource(src, FILE);
    expect(r.diagnostics).toEqual([]);
    const cs = r.graphs.get('M')!.constraints;
    expect(cs.map((c) => c.text)).toEqual(['16 >= L - 1', '8 >= L']);
    expect(src.slice(cs[0].span.start, cs[0].span.end)).toBe('wpe(arange(L - 1))');
  });

  it('arange plus a constant offset (positions from 2) counts from the offset', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 2]\n  layer e = Embedding(4, 2)\n  output y = e(arange(3) + 2)\n}\n', [
      { code: 'E0301', at: 'e(arange(3) + 2)', message: ['the indices count 2 to 4, past the end of a table of 4 along axis 0'] },
    ]);
    const r = checkSource('model M {\n  input tokens: i32[B, L]\n  layer e = Embedding(16, 2)\n  output y = e(arange(L) + 1)\n}\n', FILE);
    expect(r.graphs.get('M')!.constraints.map((c) => c.text)).toEqual(['16 >= L + 1']);
  });

  it('indices that are not counted (an input, a slice of arange) carry nothing', () => {
    const r = checkSource('model M {\n  input ids: i32[B, L]\n  layer e = Embedding(16, 4)\n  output p = e(ids)\n  output q = e(arange(L + 5)[2:7])\n}\n', FILE);
    expect(r.diagnostics).toEqual([]);
    expect(r.graphs.get('M')!.constraints.map((c) => c.text)).toEqual(['L + 5 >= 7']);
  });
});

describe('habits from PyTorch', () => {
  it('a tensor method (w.T, x.view) says which function does it', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  param w: f32[8, 4] = ones\n  output y = x @ w.T\n}\n', [
      { code: 'E0307', at: 'T', message: ['a tensor has no member `T`'], help: 'tensor methods are functions in dlc: transpose(x) swaps the last two axes' },
    ]);
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  output y = x.view\n}\n', [{ code: 'E0307', at: 'view', help: 'tensor methods are functions in dlc: reshape(x, [...]) gives another shape' }]);
  });

  it('an integer scalar loss is told to cast, not to reduce', () => {
    expectDiagnostics('model M {\n  input label: i32[B]\n  loss = sum(label)\n}\n', [{ code: 'E0302', at: 'sum(label)', message: ['a loss must be a scalar f32, found i32[]'], help: 'cast it: cast(..., f32)' }]);
  });
});

describe('stack in the user’s shapes, and no follow-on errors', () => {
  it('stack of two shapes names them as written (it showed the concat of [B, 1, 8] and [B, 1, 9] it becomes)', () => {
    expectDiagnostics('model M {\n  input a: f32[B, 8]\n  input b: f32[B, 9]\n  output z = stack([a, b], axis: 1)\n}\n', [
      { code: 'E0301', at: 'b', occurrence: 1, label: 'f32[B, 9]', message: ['stack takes tensors of one type: item 1 is f32[B, 9], item 0 f32[B, 8]'], secondary: [{ at: 'a', occurrence: 1, message: 'f32[B, 8]' }] },
    ]);
  });

  it('a size that failed to evaluate gives one error, not a second about "a poison"', () => {
    const ds = check('model M {\n  input image: f32[B, 4, 2 * Hh, 2 * Wh]\n  output y = image\n}\n');
    expect(ds.map((d) => d.code)).toEqual(['E0201']);
    expect(ds.some((d) => d.message.includes('poison'))).toBe(false);
  });
});

describe('names of layers no statement binds', () => {
  it('are the class and a count, under the layer whose forward built them (they were tmp0#0 and _Dense#0)', () => {
    const inline = checkSource('model M {\n  input x: f32[B, 10]\n  let logits = Dense(10, 3)(x)\n  output y = Dense(3, 2)(logits)\n}\n', FILE);
    expect(inline.diagnostics).toEqual([]);
    expect(inline.graphs.get('M')!.params.map((p) => p.path)).toEqual(['Dense_0.w', 'Dense_0.b', 'Dense_1.w', 'Dense_1.b']);
    const inForward = checkSource('layer Mlp(d: int) {\n  forward(x: f32[B, d]) -> f32[B, d] {\n    for i in 0..2 {\n      x = relu(Dense(d, d)(x))\n    }\n    return x\n  }\n}\nmodel M {\n  input x: f32[B, 4]\n  layer m = Mlp(4)\n  let h = m(x)\n  output y = h\n}\n', FILE);
    expect(inForward.diagnostics).toEqual([]);
    expect(inForward.graphs.get('M')!.params.map((p) => p.path)).toEqual(['m.Dense_0.w', 'm.Dense_0.b', 'm.Dense_1.w', 'm.Dense_1.b']);
  });
});

describe('bool tensor parameters in messages', () => {
  it('show their declared shape', () => {
    const ds = check('fn h(x: f32[B, T], m: bool[B, T]) -> f32[B, T] = select(m, x, 0.0)\nmodel M {\n  input x: f32[B, 3]\n  output y = h(x, x)\n}\n');
    expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual(['E0302 `h` takes bool[B, T] for `m`, but the argument is f32[B, 3]']);
  });
});

describe('scan carries', () => {
  it('a carry that changes type is E0302; one started from a number takes its first step’s type and keeps it', () => {
    const scan = (init: string, body: string) => `model M {\n  input x: f32[B, 5, 3]\n  param w: f32[3, 4] = ones\n  let hs = scan x_t in x along 1 carry (h = ${init}) {\n    ${body}\n    yield h\n  }\n  output y = hs\n}\n`;
    expect(check(scan('zeros([B, 3])', 'h = tanh(x_t @ w)')).map((d) => `${d.code} ${d.message}`)).toEqual(['E0302 the carry `h` starts as f32[B, 3], but the scan body makes it f32[B, 4]']);
    expect(check(scan('0.0', 'h = tanh(x_t @ w + h)'))).toEqual([]);
  });
});

describe('keywords from PyTorch', () => {
  it('dim and keepdim say what dlc calls them, for builtins and stdlib functions alike', () => {
    const [softmax] = check('model M {\n  input x: f32[B, 4]\n  output y = softmax(x, dim: -1)\n}\n');
    expect([softmax.message, softmax.help]).toEqual(['`softmax` has no parameter `dim`', 'dlc calls it `axis`; its parameters are x, axis']);
    const [sum] = check('model M {\n  input x: f32[B, 4]\n  output y = sum(x, axis: 1, keepdim: true)\n}\n');
    expect(sum.help).toMatch(/^dlc calls it `keepdims`; its parameters: sum\(/);
  });
});

describe('an indexed axis of size 0', () => {
  it('is E0301 at check, so compile and gradcheck do not crash building its gradient', () => {
    const model = (param: string, loss: string) => `model M {\n  input x: f32[B, 4]\n  input y: i32[B]\n  param w: ${param} = zeros\n  loss = ${loss}\n}\n`;
    expectDiagnostics(model('f32[4, 0]', 'mean(take_along_axis(x @ w, y[:, None], axis: -1))'), [
      { code: 'E0301', at: 'x @ w', label: 'f32[B, 0]', message: ['take_along_axis indexes axis 1 of f32[B, 0], which has size 0'] },
    ]);
    // through the stdlib's cross_entropy: at the user's call
    expectDiagnostics(model('f32[4, 0]', 'cross_entropy(x @ w, y)'), [
      { code: 'E0301', at: 'cross_entropy(x @ w, y)', message: ['has size 0'], secondary: [{ at: 'scores', occurrence: 6, file: 'stdlib/loss.dl', message: 'standard library' }] },
    ]);
    expectDiagnostics(model('f32[0, 4]', 'mean(take(w, y) * x)'), [{ code: 'E0301', at: 'w', occurrence: 1, label: 'f32[0, 4]', message: ['take indexes axis 0 of f32[0, 4]'] }]);
    // a hyperparameter of 0 classes
    expectDiagnostics('model M(classes: int = 0) {\n  input x: f32[B, 4]\n  input y: i32[B]\n  layer fc = Dense(4, classes)\n  loss = cross_entropy(fc(x), y)\n}\n', [
      { code: 'E0301', at: 'cross_entropy(fc(x), y)', message: ['has size 0'] },
    ]);
    expectDiagnostics(model('f32[4, 1]', 'cross_entropy(x @ w, y) + mean(take(w, y, axis: 1))'), []);
  });
});

describe('scan diagnostics name the scan, not its internals', () => {
  const scan = (body: string, after = 'output y = hs', axis = '1') =>
    `model M {\n  input x: f32[B, 4, 3]\n  let hs = scan xt in x along ${axis} carry (h = zeros([B, 3]), t = 1) {\n    h = h + xt\n    t = t + 1\n${body}\n  }\n  ${after}\n}\n`;

  it('a yield whose shape changes from step to step: E0302 at the yielded value (it was an internal stack’s E0301 at `scan`)', () => {
    expectDiagnostics(scan('    yield xt[:, :t]'), [
      { code: 'E0302', at: 'xt[:, :t]', label: 'f32[B, 3]', message: ['its yield is f32[B, 2] at step 0 and f32[B, 3] at step 1'], help: /same shape at every step/ },
    ]);
  });

  it('a tuple yield is a tuple: indexing it says to unpack it (E0307, it was E0305 "a list takes one index")', () => {
    expectDiagnostics(scan('    yield h, xt', 'output y = hs[:, -1, 0]'), [
      { code: 'E0307', at: 'hs', occurrence: 1, message: ['`hs` is a tuple of 2 values'], help: 'unpack it first: `let a, b = ...`, then index one of them' },
    ]);
    expectDiagnostics(scan('    yield h, xt', 'output y = hs'), [{ code: 'E0307', at: 'hs', occurrence: 1, message: ['an output must be a tensor, found a tuple of 2 values'] }]);
    expect(check(scan('    yield h, xt', 'let a, b = hs\n  output y = a[:, -1, 0] + b[:, 0, 0]'))).toEqual([]);
  });

  it('a body that yields no value or two: E0013 at the scan’s first line, with a help', () => {
    const [none] = expectDiagnostics(scan('    let z = h'), [{ code: 'E0013', at: 'scan xt in x along 1', message: ['must yield exactly once per step; at step 0 it did not yield'] }]);
    expect(none.help).toMatch(/^end the body with `yield`/);
    expectDiagnostics(scan('    yield h\n    yield xt'), [
      { code: 'E0013', at: 'scan xt in x along 1', message: ['at step 0 it yielded 2 times'], secondary: [{ at: 'yield xt', message: 'yields here' }] },
    ]);
  });

  it('an `along` axis out of range: E0301 with the axes there are (it was E0305)', () => {
    expectDiagnostics(scan('    yield h', 'output y = hs', '3'), [{ code: 'E0301', at: '3', occurrence: 1, message: ['scan axis 3 is out of range for f32[B, 4, 3] (rank 3: its axes are -3..2)'] }]);
  });
});

describe('an error inside the user’s own layer', () => {
  it('names the instance that failed, its hyperparameters and the call, as a secondary label', () => {
    const src = `use std.nn.{Conv2d}
layer Block(cin: int, cout: int, stride: int = 1) {
  layer conv1 = Conv2d(cin, cout, 3, stride: stride, padding: 1)
  forward(x: f32[B, cin, H, W]) = relu(conv1(x) + x)
}
model M {
  input image: f32[B, 8, 28, 28]
  layer blocks = [Block(8, 8), Block(8, 8), Block(8, 8, stride: 2), Block(8, 8)]
  let h = image
  for blk in blocks {
    h = blk(h)
  }
  output y = h
}
`;
    expectDiagnostics(src, [
      {
        code: 'E0301',
        at: 'conv1(x)',
        message: ['add shapes do not broadcast'],
        secondary: [{ at: 'blk(h)', message: 'in `blocks.2` = Block(cin: 8, cout: 8, stride: 2), called here' }],
      },
    ]);
  });

  it("a layer's own `where` that fails names the call that built the instance (two instances, one breaks it)", () => {
    const src = `layer L2(d: int, heads: int) {
  where d % heads == 0
  layer fc = Dense(d, d)
  forward(x: f32[B, d]) -> f32[B, d] = fc(x)
}
layer Outer(d: int) {
  layer a = L2(d, 4)
  layer b = L2(d, 3)
  forward(x: f32[B, d]) -> f32[B, d] = b(a(x))
}
model M {
  input x: f32[B, 6]
  layer o = Outer(6)
  output y = o(x)
}
`;
    expectDiagnostics(src, [
      { code: 'E0304', at: 'd % heads == 0', message: ['d = 6, heads = 4'], secondary: [{ at: 'L2(d, 4)', message: 'in L2(d: 6, heads: 4), built here' }] },
    ]);
  });
});
