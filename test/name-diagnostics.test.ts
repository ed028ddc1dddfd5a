// Name and placement diagnostics, written as source text: the code, the exact span (the marked text) and the help line.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { parse } from '../grammar/parse.ts';

interface Expected {
  readonly code: string;
  /** The text the primary span covers; its `occurrence`-th appearance in the source (default the first). */
  readonly at: string;
  readonly occurrence?: number;
  readonly message?: string;
  readonly help?: string;
  readonly secondaryAt?: string;
}

function expectDiagnostics(source: string, expected: readonly Expected[], loader?: Parameters<typeof checkSource>[2]): void {
  const { diagnostics } = checkSource(source, 'test.dl', loader);
  const actual = diagnostics.map((d) => ({
    code: d.code,
    at: source.slice(d.span.start, d.span.end),
    start: d.span.start,
    message: d.message,
    help: d.help,
    secondary: d.secondary.map((l) => source.slice(l.span.start, l.span.end)),
  }));
  expect(actual.map((a) => `${a.code} ${a.at}`)).toEqual(expected.map((e) => `${e.code} ${e.at}`));
  expected.forEach((e, i) => {
    // the occurrence-th appearance of `at` as a whole word
    const pattern = new RegExp(`(?<![A-Za-z0-9_])${e.at.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9_])`, 'g');
    const starts = [...source.matchAll(pattern)].map((m) => m.index);
    const start = starts[e.occurrence ?? 0];
    expect(actual[i].start, `span of ${e.code}`).toBe(start);
    if (e.message) expect(actual[i].message).toContain(e.message);
    if (e.help) expect(actual[i].help).toBe(e.help);
    if (e.secondaryAt) expect(actual[i].secondary).toContain(e.secondaryAt);
  });
}

describe('E0201 unknown names', () => {
  it('suggests the closest name in scope', () => {
    expectDiagnostics('model M {\n  input image: f32[B, 784]\n  output y = rleu(imgae)\n}\n', [
      { code: 'E0201', at: 'rleu', message: 'unknown name `rleu`', help: 'did you mean `relu`?' },
      { code: 'E0201', at: 'imgae', help: 'did you mean `image`?' },
    ]);
  });

  it("names PyTorch's random and concatenation functions by dlc's name, not the nearest spelling (`randn` suggested `range`)", () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  let a = randn([B, 4]) + rand([B, 4])\n  let c = cat([x, x], axis: 0)\n  output y = a + randn_like(x)\n}\n';
    expectDiagnostics(src, [
      { code: 'E0201', at: 'randn', help: 'dlc calls it `random_normal`' },
      { code: 'E0201', at: 'rand', help: 'dlc calls it `random_uniform`' },
      { code: 'E0201', at: 'cat', help: 'dlc calls it `concat`' },
      { code: 'E0201', at: 'randn_like', help: 'dlc calls it `random_normal` (`random_normal(shape(x))`)' },
    ]);
  });

  it('knows hyperparameters, members declared later, loop variables, symbolic sizes and scan carries', () => {
    expectDiagnostics(
      `layer Rnn(n: int, depth: int = 2 * n) {
  forward(x: f32[B, T, n]) -> f32[B, T, n] {
    let h0 = zeros([B, n])
    let hs = scan xt in x along 1 carry (h = h0) {
      h = tanh(xt @ w + h @ u)
      yield h
    }
    for i in 0..depth {
      hs = hs + h[:, None, :] * i
    }
    return hs
  }
  param w: f32[n, n] = glorot_uniform
  param u: f32[n, n] = glorot_uniform
}
`,
      [],
    );
  });

  it('a lowercase unknown name in a shape is an error, a capitalised one a symbolic size', () => {
    expectDiagnostics('layer L(hidden: int) {\n  param w: f32[hiden, K] = zeros\n}\n', [
      { code: 'E0201', at: 'hiden', help: 'did you mean `hidden`?' },
    ]);
  });

  it('assigning to an undeclared name asks for let', () => {
    expectDiagnostics('model M {\n  input x: f32[B]\n  y = x * 2\n}\n', [
      { code: 'E0201', at: 'y', occurrence: 0, help: 'declare it first with `let y = ...`' },
    ]);
  });

  it('names are scoped: a forward local is not visible in another layer', () => {
    expectDiagnostics(
      'layer A {\n  forward(x: f32[B]) -> f32[B] {\n    let t = x\n    return t\n  }\n}\n\nlayer C {\n  forward(x: f32[B]) -> f32[B] = t\n}\n',
      [{ code: 'E0201', at: 't', occurrence: 2 }],
    );
  });
});

describe('E0202 duplicates', () => {
  it('points at both definitions', () => {
    expectDiagnostics('layer L {\n  param w: f32[2] = zeros\n  param w: f32[3] = ones\n}\n', [
      { code: 'E0202', at: 'w', occurrence: 1, message: 'parameter `w` is defined twice', secondaryAt: 'w' },
    ]);
    expectDiagnostics('model M {}\n\nmodel M {}\n', [{ code: 'E0202', at: 'M', occurrence: 1 }]);
  });

  it('a second train block for a model, and a second forward in a layer (each was ignored silently)', () => {
    const model = 'model M {\n  param w: f32[2] = zeros\n  loss l = sum(w * w)\n}\n';
    expectDiagnostics(`${model}train M {\n  epochs = 1\n}\ntrain M {\n  epochs = 2\n}\n`, [
      { code: 'E0202', at: 'M', occurrence: 2, message: '`M` has two train blocks; a model has one', secondaryAt: 'M' },
    ]);
    expectDiagnostics('layer L {\n  forward(x: f32[B]) -> f32[B] = x\n  forward(x: f32[B], y: f32[B]) -> f32[B] = x + y\n}\n', [
      { code: 'E0202', at: 'forward', occurrence: 1, message: 'the layer `L` declares `forward` twice; a layer has one', secondaryAt: 'forward' },
    ]);
  });

  // regression: every iteration declared `rep` again under one parameter path: `check` passed, the module listed
  // rep.w twice (tied when loaded) and training failed with an internal "parameter rep.w is updated twice"
  it('a layer, parameter or loss declared inside a `for` loop, with the list to write instead', () => {
    const model = 'use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  let h = x\n  for i in 0..2 {\n    if true {\n      layer rep = Dense(4, 4)\n      h = rep(h)\n    }\n  }\n  output y = h\n}\n';
    expectDiagnostics(model, [
      {
        code: 'E0202',
        at: 'rep',
        message: 'the layer `rep` is declared inside a `for` loop: every iteration would declare it again under the same name',
        help: 'declare one layer per iteration as a list before the loop, `layer reps = [Dense(4, 4) for i in 0..2]`, and call `reps[i](...)` inside it',
        secondaryAt: 'for',
      },
    ]);
    expectDiagnostics('layer L {\n  for i in 0..2 {\n    param w: f32[2] = zeros\n  }\n  forward(x: f32[B, 2]) -> f32[B, 2] = x * w\n}\n', [
      { code: 'E0202', at: 'w', message: 'the parameter `w` is declared inside a `for` loop', secondaryAt: 'for' },
    ]);
    expectDiagnostics('model M {\n  param w: f32[2] = zeros\n  for i in 0..2 {\n    loss = sum(w * w)\n  }\n}\n', [{ code: 'E0202', at: 'loss', message: 'the loss `loss` is declared inside' }]);
    // the rewrite is accepted
    expectDiagnostics('use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  let h = x\n  layer reps = [Dense(4, 4) for i in 0..2]\n  for i in 0..2 {\n    h = reps[i](h)\n  }\n  output y = h\n}\n', []);
  });

  // regression: a metric `val_acc` beside `acc` was shown in the epoch line as the validation accuracy's value
  it('a loss or metric whose name starts with `val_` (reserved for the validation values)', () => {
    const model = 'model M {\n  param w: f32[2] = zeros\n  loss l = sum(w * w)\n  metric val_l = sum(w)\n  loss val_x = sum(w * w)\n}\n';
    expectDiagnostics(model, [
      { code: 'E0202', at: 'val_l', message: 'the metric `val_l` takes a name reserved for validation: `val_l` is the validation value of `l`', help: 'names that start with `val_` are the validation values of the others: rename it' },
      { code: 'E0202', at: 'val_x', message: 'the loss `val_x` takes a name reserved for validation' },
    ]);
  });

  it('a scan variable named twice, or a carry named as a variable (the later binding hid the other silently)', () => {
    const inputs = 'model S(T: int = 3) {\n  input x: f32[B, T, 2]\n  input m: f32[B, T, 2]\n';
    expectDiagnostics(`${inputs}  output o = scan x_t, x_t in (x, m) along 1 { yield x_t }\n}\n`, [
      { code: 'E0202', at: 'x_t', occurrence: 1, message: 'the scan variable `x_t` is defined twice', secondaryAt: 'x_t' },
    ]);
    expectDiagnostics(`${inputs}  output o = scan h in x along 1 carry (h = x[:, 0]) { yield h }\n}\n`, [
      { code: 'E0202', at: 'h', occurrence: 1, message: 'the scan carry `h` is defined twice', secondaryAt: 'h' },
    ]);
    // two names: no diagnostic
    expectDiagnostics(`${inputs}  output o = scan x_t, m_t in (x, m) along 1 { yield x_t + m_t }\n}\n`, []);
  });
});

describe('E0201 in a shape', () => {
  it('a lowercase unknown name in a shape says symbolic sizes start with a capital letter', () => {
    const d = checkSource('model M {\n  input x: f32[batch, 4]\n  output y = x\n}\n', 'm.dl').diagnostics;
    expect(d.map((x) => [x.code, x.message, x.help])).toEqual([['E0201', 'unknown name `batch`', 'a size in a shape is a number, a hyperparameter, or a symbolic size, which starts with a capital letter (`Batch`)']]);
  });
});

describe('E0203 imports', () => {
  it('checks standard-library modules and items', () => {
    expectDiagnostics('use std.nn.{Dense, Conv2D}\nuse std.nnn.*\n', [
      { code: 'E0203', at: 'Conv2D', help: 'did you mean `Conv2d`?' },
      { code: 'E0203', at: 'std.nnn', help: 'did you mean `std.nn`?' },
    ]);
  });

  it('a keyword in an import list is a syntax error only, not also an import of an empty name', () => {
    const codes = checkSource('use std.optim.{sgd, let}\n', 'm.dl').diagnostics.map((d) => d.code);
    expect(codes.length).toBeGreaterThan(0);
    expect(codes.filter((c) => c !== 'E0010')).toEqual([]);
  });

  it('checks local files and the names they declare', () => {
    const blocks = parse('layer ResBlock {}\n', 'blocks.dl');
    const loader = (_importer: string, path: string) => (path === './blocks.dl' ? blocks : undefined);
    expectDiagnostics('use "./blocks.dl".{ResBlock, ResBlok}\nuse "./missing.dl".*\n', [
      { code: 'E0203', at: 'ResBlok', help: 'did you mean `ResBlock`?' },
      { code: 'E0203', at: '"./missing.dl"' },
    ], loader);
  });

  // regression: an imported model used as a sub-layer was "the size `Pre` is not bound" (or "`pre` is not available here")
  it('an imported model used as a value is a model, as in one file, under its own name or an alias', () => {
    const pre = parse('model Pre {\n  input x: f32[B, 4]\n  output y = x\n}\n', 'pre.dl');
    const loader = (_importer: string, path: string) => (path === './pre.dl' ? pre : undefined);
    const body = (name: string) => `model Outer {\n  input x: f32[B, 4]\n  layer inner = ${name}()\n  output y = inner(x)\n}\n`;
    expectDiagnostics(`use "./pre.dl".{Pre}\n${body('Pre')}`, [
      { code: 'E0201', at: 'Pre', occurrence: 1, message: '`Pre` is a model (imported from "./pre.dl"), and a model is not a value inside another', help: 'to use it as a building block, declare it in ./pre.dl as `layer Pre(...) { ... forward(...) }` and import that' },
    ], loader);
    expectDiagnostics(`use "./pre.dl".{Pre as pre}\n${body('pre')}`, [{ code: 'E0201', at: 'pre', occurrence: 2, message: '`pre` is a model (imported from "./pre.dl")' }], loader);
    expectDiagnostics(`use "./pre.dl".*\n${body('Pre')}`, [{ code: 'E0201', at: 'Pre', message: '`Pre` is a model (imported from "./pre.dl")' }], loader);
  });

  it("reports a syntax error in an imported file, and in the files it imports (check passed, and the layer whose forward did not parse compiled to nothing)", () => {
    const files: Record<string, string> = {
      './blocks.dl': 'use "./deep.dl".{Id}\nlayer Blk {\n  forward(x: f32[B, 4]) -> f32[B, 4] = x +\n}\n',
      './deep.dl': 'fn Id(x: f32[B, 4]) -> f32[B, 4] = x *\n',
    };
    const loader = (_importer: string, path: string) => (files[path] === undefined ? undefined : parse(files[path], path));
    const src = 'use "./blocks.dl".{Blk}\nmodel M {\n  input x: f32[B, 4]\n  layer b = Blk()\n  output y = b(x)\n}\n';
    const ds = checkSource(src, 'm.dl', loader).diagnostics;
    expect(ds.map((d) => [d.code, d.span.file])).toEqual([
      ['E0010', './blocks.dl'],
      ['E0010', './deep.dl'],
    ]);
    expect(ds.every((d) => d.severity === 'error')).toBe(true);
  });
});

describe('train blocks for imported models', () => {
  it('are E0206 at the model name, saying where the model is and that the block would never run (check passed, train said "declares no model")', () => {
    const base = parse('model Ft {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  loss = cross_entropy(fc(x), label)\n}\n', 'base.dl');
    const loader = (_importer: string, path: string) => (path === './base.dl' ? base : undefined);
    const src = 'use "./base.dl".{Ft}\ntrain Ft {\n  data = iris()\n  optimizer = sgd(lr: 0.1)\n}\n';
    const ds = checkSource(src, 'stage.dl', loader).diagnostics;
    expect(ds.map((d) => [d.code, d.message, src.slice(d.span.start, d.span.end), d.help])).toEqual([
      ['E0206', '`Ft` is imported from "./base.dl": dlc train and dlc compile take the models a file declares, so this train block would never run', 'Ft', 'put this train block in ./base.dl beside the model, or declare the model in this file'],
    ]);
  });
});

describe('E0013 placement', () => {
  it('rejects statements outside their context with a hint', () => {
    expectDiagnostics('layer L {\n  input x: f32[B]\n}\n', [{ code: 'E0013', at: 'input', message: 'input is not allowed in a layer' }]);
    expectDiagnostics('model M {\n  forward(x: f32[B]) -> f32[B] = x\n}\n', [{ code: 'E0013', at: 'forward' }]);
    expectDiagnostics('layer L {\n  forward(x: f32[B]) -> f32[B] {\n    yield x\n  }\n}\n', [{ code: 'E0013', at: 'yield' }]);
  });
});

describe('E0013 for the syntax §12 documents as unsupported: one error with its rewrite, not the recovery cascade', () => {
  it('a second `for` clause in a comprehension', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  let y = [i * j for i in 0..3 for j in 0..2]\n  output o = x\n}\n', [
      { code: 'E0013', at: 'for', occurrence: 1, message: 'a comprehension has one `for` clause', help: 'nest the lists, `[[f(i, j) for j in 0..m] for i in 0..n]`, or run one index over both: `[f(k / m, k % m) for k in 0..n * m]` (§12)' },
    ]);
  });

  it('an assignment to a member or an element, and the syntax errors after it are still found', () => {
    expectDiagnostics('model M {\n  input x: f32[B, 4]\n  let y = x\n  y.a = x\n  y[0, 1:2] = concat([x,\n    x], axis: 0)\n  output o = x +\n}\n', [
      { code: 'E0013', at: 'y.a', message: 'only a plain name can be assigned, not a member', help: 'bind the value to a name of its own: `let y_a = ...` (§12)' },
      { code: 'E0013', at: 'y[0, 1:2]', message: 'only a plain name can be assigned, not an element' },
      { code: 'E0010', at: '}', message: 'expected an expression' },
    ]);
  });

  it('a layer declared inside a model or layer: the rest of the body still parses', () => {
    const src = 'model M {\n  layer Cell(n: int) {\n    param w: f32[n]\n    forward(x) = x * w\n  }\n  input x: f32[B, 4]\n  output o = x +\n}\nlayer L {\n  layer Inner {\n    forward(x) = x\n  }\n  forward(x) = x\n}\n';
    expectDiagnostics(src, [
      { code: 'E0013', at: 'layer Cell', message: 'a layer declaration (`layer Cell`) must be at the top level of the file', help: 'move `layer Cell(...) { ... }` out to the top level, and instantiate it here: `layer cell = Cell(...)` (§12)' },
      { code: 'E0010', at: '}', occurrence: 1, message: 'expected an expression' },
      { code: 'E0013', at: 'layer Inner', help: 'move `layer Inner { ... }` out to the top level, and instantiate it here: `layer inner = Inner(...)` (§12)' },
    ]);
  });

  it('valid neighbours are untouched: `layer name = L(...)` in a body, nested list comprehensions, plain reassignment', () => {
    expectDiagnostics('layer L(n: int) {\n  param w: f32[n]\n  forward(x) = x * w\n}\nmodel M {\n  input x: f32[B, 4]\n  layer l = L(4)\n  let k = [[i + j for j in 0..2] for i in 0..3]\n  let y = x\n  y = l(y)\n  output o = y\n}\n', []);
  });
});

describe('train blocks', () => {
  const model = 'model Gan {\n  param z: f32[2] = zeros\n  layer D = Dense(2, 1)\n  layer G = Dense(2, 2)\n  loss d_loss = sum(z)\n  loss g_loss = sum(z)\n}\n\n';
  it('E0204 unknown settings, also inside setting blocks', () => {
    expectDiagnostics(`${model}train Gan {\n  epoch = 3\n  early_stopping {\n    patiense = 2\n  }\n}\n`, [
      { code: 'E0204', at: 'epoch', help: 'did you mean `epochs`?' },
      { code: 'E0204', at: 'patiense', help: 'did you mean `patience`?' },
    ]);
  });

  it('E0204 names other frameworks use say where dlc takes the setting', () => {
    expectDiagnostics(`${model}train Gan {\n  batch_size = 16\n  learning_rate = 0.1\n  early_stopping {\n    batch_size = 2\n  }\n}\n`, [
      { code: 'E0204', at: 'batch_size', help: 'dlc calls it `batch`' },
      { code: 'E0204', at: 'learning_rate', help: "the learning rate is the optimizer's: `optimizer = adam(lr: 1e-3)`" },
      // inside a setting block the name is no alias: its keys are listed as they are
      { code: 'E0204', at: 'batch_size', occurrence: 1 },
    ]);
  });

  it('E0205 an unknown model, and steps must name the model losses and members', () => {
    expectDiagnostics('train Nope {}\n', [{ code: 'E0205', at: 'Nope' }]);
    expectDiagnostics(`${model}train Gan {\n  step d {\n    minimize d_los over Dis with adam()\n  }\n  freeze G\n}\n`, [
      { code: 'E0201', at: 'd_los', help: 'did you mean `d_loss`?' },
      { code: 'E0201', at: 'Dis', message: 'the model has no member `Dis`' },
    ]);
  });
});

describe('E0307 an unknown dtype in a signature', () => {
  it('is reported where it is written, whether or not the layer or function is used', () => {
    const model = 'model M {\n  input x: f32[B, 4]\n  output y = x\n}\n';
    // a function's return type, used: it was an E0302 at the call ("the declared return dtype is floot")
    expectDiagnostics('fn f(x: f32[...]) -> floot[...] = x\nmodel M {\n  input x: f32[B, 4]\n  output y = f(x)\n}\n', [{ code: 'E0307', at: 'floot', message: '`floot` is not a tensor dtype' }]);
    // an unused layer's forward result and parameter: check said "no errors"
    expectDiagnostics(`layer L {\n  forward(x: f32[B, 4]) -> relu[B, 4] {\n    return x\n  }\n}\n${model}`, [{ code: 'E0307', at: 'relu' }]);
    expectDiagnostics(`fn g(x: f23[B, 4], n: int[] = [1], k: int = 2) -> f32[B, 4] = x\n${model}`, [{ code: 'E0307', at: 'f23' }]);
    expectDiagnostics(`fn g(x: f32[B, 4], m: bool[B, 4], n: int[] = [1]) -> (f32[B, 4], i32[B]) = x\n${model}`, []);
  });
});

describe('suggestions for an unknown call', () => {
  const source = (call: string) => `use std.nn.{Dense}
layer Mlp(d: int) {
  layer fc = Dense(d, d)
  forward(x: f32[B, d]) -> f32[B, d] = fc(x)
}
model M {
  input x: f32[B, 4]
  layer net = Mlp(4)
  output y = ${call}
}
`;

  it('suggests no layer type for a lowercase call, and names clip for clamp', () => {
    expectDiagnostics(source('mlp(x, 0.0, 1.0)'), [{ code: 'E0201', at: 'mlp', message: 'unknown name `mlp`' }]);
    // it said "did you mean `Mlp`?"
    expect(checkSource(source('mlp(x, 0.0, 1.0)'), 'test.dl').diagnostics[0].help).toBeUndefined();
    expectDiagnostics(source('clamp(x, 0.0, 1.0)'), [{ code: 'E0201', at: 'clamp', help: 'dlc calls it `clip`' }]);
    expectDiagnostics(source('clp(x, 0.0, 1.0)'), [{ code: 'E0201', at: 'clp', help: 'did you mean `clip`?' }]);
    // a capitalised call is a layer's: layer types are suggested for it
    expectDiagnostics(source('Mpl(4)(x)'), [{ code: 'E0201', at: 'Mpl', help: 'did you mean `Mlp`?' }]);
  });
});

describe('E0201 a name with no value where it is used says why (it was "`x` is not available here")', () => {
  it('a member declared only under a guard that is false here names the guard', () => {
    const src = `layer MyDense(in: int, out: int, bias: bool = true) {
  param w: f32[in, out] = glorot_uniform
  param b: f32[out] = zeros if bias
  forward(x: f32[..., in]) -> f32[..., out] = x @ w + b
}
model M {
  input x: f32[B, 4]
  layer c = MyDense(4, 3, bias: false)
  output z = c(x)
}
`;
    expectDiagnostics(src, [{ code: 'E0201', at: 'b', occurrence: 1, message: '`b` is declared only `if bias`', help: 'use it under the same condition, e.g. `if bias { ... b ... } else { ... }`', secondaryAt: 'c(x)' }]);
  });

  it('a metric does not bind its name: the help says to bind it with let', () => {
    const src = 'model M {\n  input x: f32[B, 4]\n  input label: i32[B]\n  metric acc2 = accuracy(x, label)\n  output w = acc2\n}\n';
    expectDiagnostics(src, [{ code: 'E0201', at: 'acc2', occurrence: 1, message: 'a metric does not bind its name', help: 'to use the value, bind it with `let acc2 = accuracy(...)` and report it with `metric acc2 = acc2`' }]);
  });

  it('a top-level constant that cannot be evaluated is reported at its own error, used or not, once', () => {
    const fn = 'fn f(a: int = 1) -> int = a\nlet z = f(b: 1)\n';
    expectDiagnostics(`${fn}model M {\n  input x: f32[B, 4]\n  output y = x * float(z)\n}\n`, [{ code: 'E0303', at: 'b', message: '`f` has no parameter `b`' }]);
    expectDiagnostics(`${fn}model M(h: int = z) {\n  input x: f32[B, 4]\n  layer fc = Dense(4, h)\n  output y = fc(x)\n}\n`, [{ code: 'E0303', at: 'b' }]);
    expectDiagnostics(`${fn}model M {\n  input x: f32[B, 4]\n  output y = x\n}\n`, [{ code: 'E0303', at: 'b' }]);
  });

  it('a size used before the input that binds it says so', () => {
    expectDiagnostics('model M {\n  let n = H * 2\n  input x: f32[B, H]\n  output y = x * float(n)\n}\n', [
      { code: 'E0201', at: 'H', message: 'the size `H` is not bound here', help: 'a size gets its value from a type such as `input x: f32[B, H]`; use it after that declaration' },
    ]);
  });

  it("a model's where may stand before the inputs that bind its sizes, as the reference says", () => {
    const src = `model M(patch: int = 2) {
  where H % 2 == 0, W % patch == 0
  input x: f32[B, 1, H, W]
  layer pool = MaxPool2d(2)
  layer up = Upsample(2)
  output y: f32[B, 1, H, W] = up(pool(x))
  output z = reshape(x, [B, 1, H / patch, patch, W / patch, patch])
}
`;
    expectDiagnostics(src, []);
    // and it is still checked: a batch size that breaks it is E0304 at the condition
    const batch = `model M {
  where B % 4 == 0
  input features: f32[B, 4]
  input label: i32[B]
  layer fc = Dense(4, 3)
  loss = cross_entropy(fc(features), label)
}
train M {
  data = iris()
  batch = 16
  minimize loss
}
`;
    expectDiagnostics(batch, [{ code: 'E0304', at: 'B % 4 == 0', message: 'B = 15 breaks the model\'s condition' }]);
  });
});
