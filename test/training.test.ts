// Training graphs: every example's loss passes a float64 gradient check, train blocks become per-step graphs
// (a GAN's steps each update only their own parameters, frozen parameters never change), and input gradients exist.
import { readFileSync } from 'node:fs';
import { argsOf } from './helpers.ts';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { gradcheck } from '../compiler/autodiff/gradcheck.ts';
import { elaborate } from '../compiler/elaborate/elaborate.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { stdlibModules } from '../compiler/frontend/stdlib.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { defaultSizes, randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { withInputGradients } from '../compiler/train/training-graph.ts';
import { matchesPath } from '../compiler/train/plan.ts';

const SEED = Number(process.env.DLC_SEED ?? 7);

const MODELS: { file: string; model: string; args: string; sizes: Record<string, number>; intRange?: Record<string, number> }[] = [
  { file: 'mnist_mlp', model: 'MnistMlp', args: 'hidden: 6', sizes: { B: 3 }, intRange: { label: 10 } },
  { file: 'lenet', model: 'LeNet', args: '', sizes: { B: 1 }, intRange: { label: 10 } },
  { file: 'resnet', model: 'Cifar10ResNet', args: 'depth: 1', sizes: { B: 1 }, intRange: { label: 10 } },
  { file: 'lstm_classifier', model: 'ActivityClassifier', args: 'steps: 3, features: 2, hidden: 3, layers: 1, classes: 3', sizes: { B: 2 }, intRange: { label: 3 } },
  { file: 'char_transformer', model: 'CharGPT', args: 'vocab: 7, ctx: 6, d: 4, heads: 2, depth: 1', sizes: { B: 2, L: 5 }, intRange: { tokens: 7 } },
  { file: 'gan', model: 'Gan', args: 'latent: 3, hidden: 5, pixels: 6', sizes: { B: 3 } },
  { file: 'autoencoder', model: 'AutoEncoder', args: 'code: 3', sizes: { B: 2 } },
  { file: 'reinforce_cartpole', model: 'CartPolePolicy', args: 'hidden: 5', sizes: { B: 4 }, intRange: { action: 2 } },
  { file: 'a2c_pendulum', model: 'PendulumActorCritic', args: 'hidden: 5', sizes: { B: 4 } },
];

describe(`every example's loss passes a directional gradient check (seed ${SEED})`, () => {
  for (const m of MODELS) {
    it(`${m.file}: ${m.model}`, () => {
      const text = readFileSync(`examples/${m.file}.dl`, 'utf8');
      const program = parse(text, m.file).program;
      const g = elaborate(program, { modules: stdlibModules().programs, training: true, modelArgs: new Map([[m.model, argsOf(m.model, m.args)]]) }).graphs.get(m.model)!;
      const sizes = new Map(Object.entries(m.sizes));
      const feeds = randomFeeds(g, sizes, seededRandom(SEED), { intRange: m.intRange });
      for (const loss of g.losses.keys()) {
        const rows = gradcheck(g, feeds, { loss, sizes, seed: SEED });
        expect(rows.length).toBe(g.params.length);
        for (const r of rows) {
          // central differences in float64: 1e-5 absolute plus 1e-3 relative
          expect(r.absError, `${m.model} d${loss}/d${r.name}: analytic ${r.analytic}, numeric ${r.numeric}`).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(r.numeric));
        }
      }
    });
  }
});

describe('train blocks become training graphs', () => {
  it('the GAN has two steps, each updating only its own parameter set', () => {
    const text = readFileSync('examples/gan.dl', 'utf8');
    const { trainings, diagnostics } = compileTraining(text, 'examples/gan.dl');
    expect(diagnostics).toEqual([]);
    const [t] = trainings;
    expect(t.steps.map((s) => s.name)).toEqual(['Gan.discriminator', 'Gan.generator']);
    const [d, gen] = t.steps;
    const updated = (g: typeof d) => g.params.filter((p) => p.update).map((p) => p.path);
    expect(updated(d).every((p) => p.startsWith('D.'))).toBe(true);
    expect(updated(gen).every((p) => p.startsWith('G.'))).toBe(true);
    expect(updated(d).length).toBeGreaterThan(0);
    expect(updated(gen).length).toBeGreaterThan(0);
    for (const g of t.steps) expect(verifyGraph(g)).toEqual([]);
  });

  it('frozen parameters get no update and the step trains the rest', () => {
    const src = `use std.nn.{Dense}

model M {
  input x: f32[B, 3]
  input y: f32[B, 2]
  layer a = Dense(3, 4)
  layer b = Dense(4, 2)
  loss = mean((b(a(x)) - y) ** 2)
}

train M {
  optimizer = sgd(lr: 0.1, momentum: 0.9)
  freeze a
}
`;
    const { trainings, diagnostics } = compileTraining(src, 'm.dl');
    expect(diagnostics).toEqual([]);
    const g = trainings[0].steps[0];
    expect(verifyGraph(g)).toEqual([]);
    expect(g.params.filter((p) => p.update).map((p) => p.path)).toEqual(['b.w', 'b.b']);
    // one step in the interpreter moves b and only b, by -lr * gradient on the first step
    const sizes = new Map([['B', 4]]);
    const feeds = randomFeeds(g, sizes, seededRandom(SEED));
    const out = interpretGraph(g, feeds, { sizes });
    expect(out.values.get(g.params.find((p) => p.path === 'b.w')!.update!.id)).toBeDefined();
  });

  it('a layer shared by binding it again keeps the name of its first layer statement: freeze and param paths use it', () => {
    const src = `use std.nn.{Embedding, Dense}
layer TiedHead(emb: fn) {
  layer e = emb
  forward(x: f32[B, T, D]) = x @ transpose(e.weight)
}
model Tie {
  input tokens: i32[B, T]
  layer tok = Embedding(7, 4)
  layer head = TiedHead(tok)
  layer alias = tok
  layer proj = Dense(4, 4)
  loss = cross_entropy(head(proj(tok(tokens)) + alias(tokens)), tokens)
}
train Tie {
  optimizer = sgd(lr: 0.1)
  freeze tok
}
`;
    const checked = checkSource(src, 'tie.dl');
    expect(checked.diagnostics).toEqual([]);
    expect(checked.graphs.get('Tie')!.params.map((p) => p.path).sort()).toEqual(['proj.b', 'proj.w', 'tok.weight']);
    const step = compileTraining(src, 'tie.dl').trainings[0].steps[0];
    expect(step.params.filter((p) => p.update).map((p) => p.path).sort()).toEqual(['proj.b', 'proj.w']);
    // a let names a layer until a layer statement does
    const viaLet = checkSource('use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  let d = Dense(4, 4)\n  layer a = d\n  loss = mean(a(x))\n}\n', 'm.dl');
    expect(viaLet.graphs.get('M')!.params.map((p) => p.path)).toEqual(['a.w', 'a.b']);
  });

  it('a path pattern may start with a wildcard: `*.b` is every bias, `freeze *.w` every weight', () => {
    const src = (statement: string) => `use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 3]\n  layer a = Dense(3, 4)\n  layer b = Dense(4, 2)\n  loss = mean(b(a(x)) ** 2)\n}\ntrain M {\n  optimizer = sgd(lr: 0.1, weight_decay: 0.1)\n${statement}\n}\n`;
    const frozen = compileTraining(src('  freeze *.w'), 'm.dl');
    expect(frozen.diagnostics).toEqual([]);
    expect(frozen.trainings[0].steps[0].params.filter((p) => p.update).map((p) => p.path)).toEqual(['a.b', 'b.b']);
    const grouped = compileTraining(src('  param_group {\n    params = [*.b]\n    weight_decay = 0.0\n  }'), 'm.dl');
    expect(grouped.diagnostics).toEqual([]);
    expect(matchesPath('net.stages.0.conv.b', '*.b')).toBe(true);
    expect(matchesPath('net.stages.0.conv.w', '*.b')).toBe(false);
  });

  it('reports datasets, environments and augmentations dlc train does not know, with their spans, in dlc check too', () => {
    const src = [
      'model M {\n  input x: f32[B, 2]\n  param w: f32[2] = zeros\n  loss l = sum(x * w)\n}\n',
      'train M {',
      '  data = minst(layuot: "flat")',
      '  validation = tiny_shakespeare(path: "a.txt", split: 2)',
      '  augment = [random_shift(pixel: 2), "random_crop"]',
      '  env = cartpol()',
      '}',
      '',
    ].join('\n');
    const expected = [
      ['`minst` is not a dataset dlc train knows', 'minst(layuot: "flat")', 'did you mean `mnist`?'],
      ['`tiny_shakespeare` has no argument `split`', 'split', 'its arguments are path, context'],
      ['`random_shift` has no argument `pixel`', 'pixel', 'did you mean `pixels`?'],
      ['`random_crop` is not an augmentation dlc train knows', '"random_crop"', 'it knows random_shift, horizontal_flip'],
      ['`cartpol` is not an environment dlc train knows', 'cartpol()', 'did you mean `cartpole`?'],
    ];
    for (const diagnostics of [compileTraining(src, 'm.dl').diagnostics, checkSource(src, 'm.dl').diagnostics]) {
      expect(diagnostics.map((d) => [d.message, src.slice(d.span.start, d.span.end), d.help])).toEqual(expected);
      expect(diagnostics.every((d) => d.code === 'E0206')).toBe(true);
    }
  });

  it('reports a positional argument of a dataset or augmentation call (check passed; dlc train said "csv() has no argument \'0\'")', () => {
    const src = 'model M {\n  input features: f32[B, 2]\n  param w: f32[2] = zeros\n  loss l = sum(features * w)\n}\ntrain M {\n  data = csv("data.csv", label: "y")\n  augment = [random_shift(2)]\n}\n';
    for (const diagnostics of [compileTraining(src, 'm.dl').diagnostics, checkSource(src, 'm.dl').diagnostics]) {
      expect(diagnostics.map((d) => [d.code, d.message, src.slice(d.span.start, d.span.end)])).toEqual([
        ['E0206', '`csv` takes its arguments by name', '"data.csv"'],
        ['E0206', '`random_shift` takes its arguments by name', '2'],
      ]);
      expect(diagnostics[0].help).toBe('e.g. `csv(path: ...)`; its arguments are path, label, features, categorical, header, label_type, classes, delimiter, missing');
    }
  });

  it("checks augment against the data's known columns: channels-last images are images, a column that is missing or no image is E0207", () => {
    const model = (input: string) => `model M {\n  input image: f32[${input}]\n  input label: i32[B]\n  param w: f32[784] = zeros\n  loss l = sum(reshape(image, [-1, 784]) * w)\n}\n`;
    const check = (input: string, data: string, augment: string) =>
      checkSource(`${model(input)}\ntrain M {\n  data = ${data}\n  augment = [${augment}]\n}\n`, 'm.dl').diagnostics.map((d) => [d.code, d.message]);
    expect(check('B, 28, 28, 1', 'mnist(layout: "nhwc")', 'random_shift(pixels: 2), horizontal_flip()')).toEqual([]);
    expect(check('B, 1, 28, 28', 'mnist(layout: "nchw")', 'random_shift(pixels: 2)')).toEqual([]);
    expect(check('B, 784', 'mnist()', 'random_shift(pixels: 2)')).toEqual([]);
    expect(check('B, 784', 'mnist()', 'random_shift(pixels: 2, column: "pixels")')).toEqual([
      ['E0207', 'augment: random_shift() works on the column `pixels`, which `mnist()` does not give; it gives `image`, `label`'],
    ]);
    expect(check('B, 784', 'mnist()', 'horizontal_flip(column: "label")')).toEqual([
      ['E0207', 'augment: column label of shape [] is not an image ([C, H, W], [H, W, C], [H, W] or a square [H * W]); name the image column with column: "...", as `mnist()` gives it'],
    ]);
    expect(check('B, 28, 28', 'mnist(layout: "hw")', 'horizontal_flip(layout: "nhwc")').map(([c]) => c)).toEqual(['E0207']);
    expect(check('B, 784', 'mnist()', 'random_shift(pixels: -1)')).toEqual([['E0206', 'augment: random_shift(pixels: ...) must be a whole number of 0 or more, not -1']]);
  });

  it('reports data whose columns do not fit the model before anything runs (E0207), in dlc check too', () => {
    const model = 'model M {\n  input image: f32[B, 1, 28, 28]\n  input label: i32[B]\n  param w: f32[784] = zeros\n  loss l = sum(reshape(image, [-1, 784]) * w)\n}\n';
    const codes = (data: string) => checkSource(`${model}\ntrain M {\n  data = ${data}\n}\n`, 'm.dl').diagnostics.map((d) => [d.code, d.message]);
    expect(codes('mnist(layout: "nchw")')).toEqual([]);
    // a flat column of the same size feeds the shaped input, as dlc train allows
    expect(codes('mnist()')).toEqual([]);
    expect(codes('cifar10()')).toEqual([['E0207', "`cifar10()` gives `image` as f32[3, 32, 32] per example, but the model's input is f32[B, 1, 28, 28]: axis 1 is 1, the data's 3; axis 2 is 28, the data's 32; axis 3 is 28, the data's 32"]]);
    expect(codes('iris()')).toEqual([['E0207', "`iris()` has no column `image` for the model's input image: f32[B, 1, 28, 28]; it gives `features`, `label`"]]);
    // an image input generic over H and W: the flat column cannot give them, and the help names the layout that does
    const generic = (data: string) => checkSource(`model M {\n  input image: f32[B, 1, H, W]\n  input label: i32[B]\n  param w: f32[1] = zeros\n  loss l = sum(image) * w[0]\n}\n\ntrain M {\n  data = ${data}\n}\n`, 'm.dl').diagnostics.map((d) => [d.code, d.message, d.help]);
    expect(generic('mnist(layout: "nchw")')).toEqual([]);
    expect(generic('mnist()')).toEqual([['E0207', "`mnist()` gives `image` as f32[784] per example, but the model's input is f32[B, 1, H, W]: one example is [1, H, W] after the batch axis", '`mnist(layout: "nchw")` gives `image` as [1, 28, 28] per example']]);
    expect(generic('mnist(layout: "nhwc")').map(([, , help]) => help)).toEqual(['`mnist(layout: "nchw")` gives `image` as [1, 28, 28] per example']);
    // a symbolic size takes the data's value; a CSV's column sizes are known only when it is read, but
    // its names are always `features` and (with `label:`) `label`
    const text = 'model T {\n  input tokens: i32[B, L]\n  param w: f32[3] = zeros\n  loss l = sum(w)\n}\n';
    expect(checkSource(`${text}\ntrain T {\n  data = text(path: "a.txt", context: 9)\n}\n`, 't.dl').diagnostics).toEqual([]);
    expect(codes('csv(path: "x.csv")')).toEqual([
      ['E0207', "`csv()` has no column `image` for the model's input image: f32[B, 1, 28, 28]; it gives `features` (every other column of the file, as f32)"],
      ['E0207', "`csv()` has no column `label` for the model's input label: i32[B]; it gives `features` (every other column of the file, as f32)"],
    ]);
    expect(codes('csv(path: "x.csv", label: "digit")').map(([c, m]) => `${c} ${m.split(' for ')[0]}`)).toEqual(['E0207 `csv()` has no column `image`']);
    const wrongType = checkSource(`${text.replace('i32[B, L]', 'f32[B, L]')}\ntrain T {\n  data = text(path: "a.txt", context: 9)\n}\n`, 't.dl').diagnostics;
    expect(wrongType.map((d) => d.message)).toEqual(["`text()` gives `tokens` as i32[9] per example, but the model's input is f32[B, L]: i32 data for a f32 input"]);
    // the model as the train block's own arguments make it; a caller's arguments bring their own data
    const lstm = readFileSync('examples/lstm_classifier.dl', 'utf8').replace('train ActivityClassifier(hidden: 64, layers: 2)', 'train ActivityClassifier(hidden: 4, layers: 1, steps: 16)');
    expect(checkSource(lstm, 'l.dl').diagnostics.map((d) => d.message)).toEqual(["`uci_har()` gives `x` as f32[128, 9] per example, but the model's input is f32[B, 16, 9]: axis 1 is 16, the data's 128"]);
    expect(compileTraining(lstm, 'l.dl', undefined, { modelArgs: new Map([['ActivityClassifier', argsOf('ActivityClassifier', 'steps: 3, hidden: 4, layers: 1')]]) }).diagnostics).toEqual([]);
    // labels of more classes than the model's logits have
    const head = (classes: number) => `use std.nn.{Dense}\nmodel H {\n  input image: f32[B, 784]\n  input label: i32[B]\n  layer fc = Dense(784, ${classes})\n  loss = cross_entropy(fc(image), label)\n}\ntrain H {\n  data = mnist()\n}\n`;
    expect(checkSource(head(5), 'h.dl').diagnostics.map((d) => [d.code, d.message, d.help])).toEqual([
      ['E0207', '`mnist()` has 10 classes, labels 0..9, but the model uses `label` to index axis 1 of f32[B, 5], of size 5', 'give the model 10 outputs where it has 5'],
    ]);
    expect(checkSource(head(10), 'h.dl').diagnostics).toEqual([]);
    expect(checkSource(head(12), 'h.dl').diagnostics).toEqual([]);
    // the same mistake with a hand-written loss over one_hot (labels 5..9 were rows of zeros)
    const oneHot = (depth: number) => `use std.nn.{Dense}\nmodel H {\n  input image: f32[B, 784]\n  input label: i32[B]\n  layer fc = Dense(784, ${depth})\n  loss = -mean(sum(one_hot(label, ${depth}) * log_softmax(fc(image)), axis: -1))\n}\ntrain H {\n  data = mnist()\n}\n`;
    expect(checkSource(oneHot(5), 'h.dl').diagnostics.map((d) => [d.code, d.message])).toEqual([['E0207', '`mnist()` has 10 classes, labels 0..9, but the model uses `label` as one_hot classes, of depth 5']]);
    expect(checkSource(oneHot(10), 'h.dl').diagnostics).toEqual([]);
  });

  it('reads data and validation blocks into the settings dlc train acts on, and checks what training logs and counts (E0206)', () => {
    const model = 'model M {\n  input features: f32[B, 4]\n  input label: i32[B]\n  param w: f32[4, 3] = zeros\n  let logits = features @ w\n  loss = cross_entropy(logits, label)\n  metric accuracy = accuracy(logits, label)\n}\n';
    const settingsOf = (body: string) => {
      const r = compileTraining(`${model}\ntrain M {\n${body}\n}\n`, 'm.dl');
      expect(r.diagnostics).toEqual([]);
      return r.trainings[0].plan.settings;
    };
    expect(settingsOf('  data {\n    source = iris()\n    split = [0.7, 0.15, 0.15]\n    seed = 3\n  }\n  validation { every = 2; metrics = [accuracy] }')).toEqual({
      data: { call: 'iris', args: {} },
      split: [0.7, 0.15, 0.15],
      seed: 3,
      eval_every: 2,
      validation_metrics: ['accuracy'],
    });
    expect(settingsOf('  data { path = "iris.csv"; label = "species"; columns = ["a", "b", "c", "d"] }\n  validation { split = 0.25 }')).toEqual({
      data: { call: 'csv', args: { path: 'iris.csv', label: 'species', features: ['a', 'b', 'c', 'd'] } },
      split: [0.75, 0.25],
    });
    expect(settingsOf('  data = iris()\n  validation { source = iris() }\n  steps = 20\n  metrics = [accuracy]')).toEqual({ data: { call: 'iris', args: {} }, validation: { call: 'iris', args: {} }, steps: 20, metrics: ['accuracy'] });
    const src = [
      model,
      'train M {',
      '  data { source = iris(); label = "x" }',
      '  split = [0.5, 0.5]',
      '  validation { every = 0; split = 0.2; metrics = [acuracy] }',
      '  metrics = [loss]',
      '  steps = 2.5',
      '  early_stopping { monitor = "val_acuracy"; patience = -1 }',
      '  checkpoint { keep = 0; mode = "best"; monitor = "f1" }',
      '}',
      '',
    ].join('\n');
    const expected = [
      ["`label` describes a CSV file's columns: give it with `path`, or as an argument of the source", 'label = "x"', undefined],
      ['`every` must be a whole number of at least 1', '0', undefined],
      ['`M` has no metric `acuracy`', 'acuracy', 'did you mean `accuracy`?'],
      ['`M` has no metric `loss`', 'loss', 'its metrics are `accuracy`'],
      ['`steps` must be a whole number of at least 1', '2.5', undefined],
      ['`M` reports no `val_acuracy`', '"val_acuracy"', 'did you mean `val_accuracy`?'],
      ['`patience` must be a whole number of at least 1', '-1', undefined],
      ['`keep` must be a whole number of at least 1', '0', undefined],
      ['`mode` is "min" or "max"', '"best"', undefined],
      ['`M` reports no `f1`', '"f1"', 'it reports `loss`, `accuracy`, `val_loss`, `val_accuracy`'],
    ];
    // in source order, as dlc check lists them
    expected.splice(2, 0, ['`split` is given twice', 'split = 0.2', 'keep one of them']);
    for (const diagnostics of [compileTraining(src, 'm.dl').diagnostics, checkSource(src, 'm.dl').diagnostics]) {
      expect(diagnostics.map((d) => [d.message, src.slice(d.span.start, d.span.end), d.help])).toEqual(expected);
      expect(diagnostics.every((d) => d.code === 'E0206')).toBe(true);
    }
    const empty = compileTraining(`${model}\ntrain M {\n  data { seed = 1 }\n}\n`, 'm.dl').diagnostics;
    expect(empty.map((d) => d.message)).toEqual(['a `data` block needs `source = <dataset>` (e.g. `source = mnist()`) or `path = "<file>.csv"`']);
  });

  it('a loss the trained parameters reach only through argmax, comparisons, integer casts or stop_gradient is E0206 (it trained nothing)', () => {
    const src = (loss: string, extra = '') => `use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  let logits = fc(x)\n  loss = ${loss}\n${extra}}\ntrain M {\n  optimizer = sgd(lr: 0.1)\n  minimize loss\n}\n`;
    const shown = (source: string) => checkSource(source, 'm.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end)]);
    const none = 'has no gradient with respect to the parameters the step trains (fc.w, fc.b): every path from them goes through an operation with no gradient (argmax, a comparison, an integer cast, floor, sign or stop_gradient)';
    expect(shown(src('1.0 - mean(cast(argmax(logits, axis: -1) == label, f32))'))).toEqual([['E0206', `\`loss\` ${none}`, 'minimize loss']]);
    expect(shown(src('mean(stop_gradient(logits))'))).toEqual([['E0206', `\`loss\` ${none}`, 'minimize loss']]);
    expect(shown(src('mean(cast(cast(logits, i32), f32))'))).toEqual([['E0206', `\`loss\` ${none}`, 'minimize loss']]);
    expect(shown(src('mean(x)'))[0][1]).toBe('`loss` has no gradient with respect to the parameters the step trains (fc.w, fc.b): it does not read them at all');
    // differentiable paths, also through select's values and a metric-free mix, are fine
    expect(shown(src('cross_entropy(logits, label)'))).toEqual([]);
    expect(shown(src('mean(select(logits > 0.0, logits, 0.0))'))).toEqual([]);
  });

  it("mnist's layout and scale are checked by dlc check at the argument (dlc train failed after loading, with no code or span)", () => {
    const model = 'model M {\n  input image: f32[B, 784]\n  input label: i32[B]\n  param w: f32[784, 10] = zeros\n  loss = cross_entropy(image @ w, label)\n}\n';
    const problems = (args: string) => {
      const source = `${model}train M {\n  data = mnist(${args})\n}\n`;
      return checkSource(source, 'm.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end)]);
    };
    expect(problems('layout: "bogus"')).toEqual([['E0206', '`layout` is one of "flat", "nchw", "nhwc", "hw", not "bogus"', '"bogus"']]);
    expect(problems('scale: 255.0')).toEqual([['E0206', '`scale` is the range the pixels are scaled to, two numbers [lo, hi], not 255', '255.0']]);
    expect(problems('scale: "unit"')).toEqual([['E0206', '`scale` is the range the pixels are scaled to, two numbers [lo, hi], not "unit"', '"unit"']]);
    expect(problems('layout: "flat", scale: [-1.0, 1.0]')).toEqual([]);
  });

  it('reports optimizer, schedule, clipping and split values training would refuse, at their settings, in dlc check too (E0206)', () => {
    const model = 'use std.nn.{Dense}\nmodel M {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  loss = cross_entropy(fc(x), label)\n}\n';
    const problems = (body: string) => {
      const source = `${model}\ntrain M {\n${body}\n}\n`;
      const planned = compileTraining(source, 'm.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end).split('\n')[0]]);
      // dlc check plans the block too, so it finds the same
      expect(checkSource(source, 'm.dl').diagnostics.map((d) => d.message)).toEqual(planned.map((p) => p[1]));
      return planned;
    };
    expect(problems('  optimizer = sgd(lr: 0.1)\n  clip_grad_value = -0.5')).toEqual([['E0206', 'clip value must be a non-negative number, not -0.5', 'clip_grad_value = -0.5']]);
    expect(problems('  optimizer = sgd(lr: 0.1, nesterov: true)')).toEqual([['E0206', '`sgd` nesterov momentum needs momentum > 0 and dampening 0', 'nesterov: true']]);
    expect(problems('  optimizer = sgd(lr: 0.1)\n  schedule = step(every: 0)')).toEqual([['E0206', 'schedule step option every must be positive, not 0', 'schedule = step(every: 0)']]);
    // a schedule that would make the rate negative, or raise it past lr, as a negative lr is
    expect(problems('  optimizer = sgd(lr: 0.1)\n  schedule = linear(total: 4, end: -0.1)')).toEqual([['E0206', 'schedule linear option end must be between 0 and the learning rate 0.1, not -0.1: a negative rate turns training into gradient ascent', 'schedule = linear(total: 4, end: -0.1)']]);
    expect(problems('  optimizer = sgd(lr: 0.1)\n  schedule = step(every: 2, gamma: -1.0)')[0][0]).toBe('E0206');
    expect(problems('  optimizer = sgd(lr: 0.1)\n  schedule = cosine(total: 4, min_lr: 1.0)')[0][1]).toMatch(/^schedule cosine option min_lr must be between 0 and the learning rate 0.1, not 1/);
    // a param_group's option is reported at that option, its combination at the group
    const badKey = problems('  optimizer = adamw(lr: 0.1)\n  param_group {\n    params = [fc.b]\n    momentum = 0.9\n  }');
    expect(badKey.length).toBe(1);
    expect(badKey[0][1]).toMatch(/^adamw has no option momentum \(parameter fc.b\)/);
    expect(badKey[0][2]).toBe('momentum = 0.9');
    expect(problems('  optimizer = sgd(lr: 0.1)\n  param_group head {\n    params = [fc.b]\n    lr = 0.3\n    momentum = -0.5\n  }')).toEqual([['E0206', 'sgd option momentum must be 0 or more, not -0.5 (parameter fc.b)', 'momentum = -0.5']]);
    expect(problems('  optimizer = sgd(lr: 0.1, momentum: 0.9, nesterov: true)\n  param_group {\n    params = [fc.b]\n    momentum = 0.0\n  }')).toEqual([['E0206', 'sgd: nesterov momentum needs momentum > 0 and dampening 0 (parameter fc.b)', 'momentum = 0.0']]);
    // the optimizer's own problem stays at the optimizer, not at a group's unrelated option
    expect(problems('  optimizer = sgd(lr: 0.1, nesterov: true)\n  param_group {\n    params = [fc.b]\n    lr = 0.3\n  }')).toEqual([['E0206', '`sgd` nesterov momentum needs momentum > 0 and dampening 0', 'nesterov: true']]);
    // sgd's lr defaults to 0.01 with and without a group that sets its own
    expect(problems('  optimizer = sgd(momentum: 0.9)')).toEqual([]);
    expect(problems('  optimizer = sgd(momentum: 0.9)\n  param_group head {\n    params = [fc.b]\n    lr = 0.3\n  }')).toEqual([]);
    expect(problems('  split = [0.5, 0.2, 0.2]')).toEqual([['E0206', 'the split fractions [0.5, 0.2, 0.2] add up to 0.9, not 1', 'split = [0.5, 0.2, 0.2]']]);
    expect(problems('  split = 0.5')[0][1]).toBe('`split` is a list of two or three fractions of the data: [train, validation] or [train, validation, test]');
    expect(problems('  split = [0.5, 0.2, 0.2, 0.1]')[0][1]).toMatch(/two or three fractions/);
    expect(problems('  optimizer = sgd(lr: 0.1, momentum: 0.9, nesterov: true)\n  split = [0.8, 0.2]')).toEqual([]);
    expect(problems('  param_group {\n    params = [fc.*]\n    lr = 0.1\n  }\n  param_group {\n    params = [fc.b]\n    weight_decay = 0.0\n  }')).toEqual([['E0206', '`fc.b` is in two param groups; each parameter takes the options of one', '[fc.b]']]);
    expect(problems('  data = csv(path: "x.csv", label: "y", label_type: "clas")').filter(([c]) => c === 'E0206')).toEqual([['E0206', '`label_type` is one of "auto", "class", "int", "float", not "clas"', '"clas"']]);
    expect(problems('  data = csv(path: "x.csv", label: "y", missing: "zero")').filter(([c]) => c === 'E0206')).toEqual([['E0206', '`missing` is a number (0.0, -1.0) or "nan", not "zero"', '"zero"']]);
    expect(problems('  data = csv(path: "x.csv", label: "y", missing: "nan")\n  validation = csv(path: "v.csv", label: "y", missing: -1.0)').filter(([c]) => c === 'E0206')).toEqual([]);
    // option ranges as torch.optim checks them, at the option (not the whole setting, naming a parameter), and counts dlc train would refuse
    expect(problems('  optimizer = sgd(lr: -0.1)')).toEqual([['E0206', '`sgd` option `lr` must be 0 or more, not -0.1', 'lr: -0.1']]);
    expect(problems('  optimizer = adam(lr: 0.1, beta1: 1.5)')).toEqual([['E0206', '`adam` option `beta1` must be in [0, 1), not 1.5', 'beta1: 1.5']]);
    expect(problems('  optimizer = sgd(lr: 0.1, momentum: -0.9)')).toEqual([['E0206', '`sgd` option `momentum` must be 0 or more, not -0.9', 'momentum: -0.9']]);
    expect(problems('  minimize loss with adam(eps: -1.0)')).toEqual([['E0206', '`adam` option `eps` must be 0 or more, not -1', 'eps: -1.0']]);
    for (const bad of ['0', '2.5', '-4', '"32"']) expect(problems(`  batch = ${bad}`), bad).toEqual([['E0206', '`batch` must be a whole number of at least 1', bad]]);
    expect(problems('  batch = 32\n  max_batch = 8')).toEqual([['E0206', '`batch = 32` is over `max_batch = 8`, the largest batch the model allocates buffers for', 'batch = 32']]);
    expect(problems('  batch = 8\n  max_batch = 8')).toEqual([]);
    expect(problems('  seed = -1')[0][1]).toBe('`seed` must be a whole number of at least 0');
    expect(problems('  epochs = 0')[0][1]).toBe('`epochs` must be a whole number of at least 1');
    // what dlc train read wrongly or too late: a setting twice, a bool that is not one, patience 0, a validation metric with no validation set
    expect(problems('  epochs = 2\n  epochs = 3')).toEqual([['E0206', '`epochs` is given twice', 'epochs']]);
    expect(problems('  shuffle = "no"')).toEqual([['E0206', '`shuffle` is true or false', '"no"']]);
    expect(problems('  early_stopping {\n    monitor = "val_loss"\n    restore_best = "yes"\n  }')).toEqual([['E0206', '`restore_best` is true or false', '"yes"']]);
    expect(problems('  early_stopping {\n    monitor = "val_loss"\n    patience = 0\n  }')).toEqual([['E0206', '`patience` must be a whole number of at least 1', '0']]);
    expect(problems('  split = [1.0, 0.0]\n  early_stopping {\n    monitor = "val_loss"\n  }')).toEqual([['E0206', 'early_stopping watches `val_loss`, but `split` leaves no validation set', '"val_loss"']]);
  });

  it('reports a train block that names no loss to minimize when there are several', () => {
    const src = 'model M {\n  param w: f32[2] = zeros\n  loss l1 = sum(w)\n  loss l2 = sum(w * w)\n}\n\ntrain M {\n  epochs = 1\n}\n';
    const { diagnostics } = compileTraining(src, 'm.dl');
    expect(diagnostics.map((d) => d.code)).toEqual(['E0206']);
    expect(diagnostics[0].message).toContain('2 losses');
  });

  it('every example with a train block compiles to verified training graphs', () => {
    for (const f of ['mnist_mlp', 'lenet', 'gan', 'reinforce_cartpole', 'a2c_pendulum', 'autoencoder']) {
      const { trainings, diagnostics } = compileTraining(readFileSync(`examples/${f}.dl`, 'utf8'), `examples/${f}.dl`);
      expect(diagnostics.map((d) => `${d.code} ${d.message}`), f).toEqual([]);
      expect(trainings.length, f).toBeGreaterThan(0);
      for (const t of trainings) for (const g of t.steps) expect(verifyGraph(g), f).toEqual([]);
    }
  });
});

describe('what a step takes', () => {
  const MODEL = `use std.nn.{Dense}
model Two {
  input x: f32[B, 3]
  input y: f32[B, 2]
  layer enc = Dense(3, 4)
  layer dec = Dense(4, 2)
  layer extra = Dense(2, 2)
  let out = dec(relu(enc(x)))
  loss a = mean((out - y) ** 2)
  loss b = mean(extra(out) ** 2)
}
`;
  const plan = (body: string) => compileTraining(`${MODEL}train Two {\n${body}}\n`, 's.dl');
  const messages = (body: string) => plan(body).diagnostics.map((d) => `${d.code} ${d.message}`);

  it('its optimizer wherever it is written, and its freeze; other settings are the block\'s (E0206), and a step with no objective is E0206', () => {
    const r = plan('  step one {\n    optimizer = sgd(lr: 0.1)\n    freeze dec\n    minimize a over enc, dec\n  }\n  step two {\n    minimize b over extra\n  }\n');
    expect(r.diagnostics).toEqual([]);
    const [one, two] = r.trainings[0].plan.steps;
    expect([one.optimizer.kind, one.optimizer.options.lr, one.params]).toEqual(['sgd', 0.1, ['enc.w', 'enc.b']]);
    expect([two.optimizer.kind, two.params]).toEqual(['adam', ['extra.w', 'extra.b']]);
    expect(messages('  step one {\n    clip_grad_norm = 1.0\n    minimize a\n  }\n')).toEqual(['E0206 `clip_grad_norm` applies to the whole train block, not to one step: a step takes its objective, its `optimizer` and `freeze`']);
    expect(messages('  step one {\n    minimize a over enc, dec\n  }\n  step two {\n    optimizer = adam(lr: 0.1)\n  }\n')).toEqual([
      'W0206 `extra.w`, `extra.b` are in no objective\'s `over`, so training leaves them at their initial value',
      'E0206 the step `two` has no `minimize` or `maximize`, so it would train nothing',
    ]);
  });

  it('parameters in no objective\'s over are a warning (W0206): training would leave them as they start', () => {
    expect(messages('  minimize a over enc\n')).toEqual(['W0206 `dec.w`, `dec.b`, `extra.w`, `extra.b` are in no objective\'s `over`, so training leaves them at their initial value']);
    expect(messages('  minimize a over enc\n  freeze dec, extra\n')).toEqual([]);
  });
});

describe('gradients with respect to inputs', () => {
  it('are exposed as outputs and match finite differences', () => {
    const src = 'use std.nn.{Dense}\n\nmodel M {\n  input x: f32[B, 3]\n  layer d = Dense(3, 2)\n  loss = mean(tanh(d(x)) ** 2)\n}\n';
    const g = checkSource(src, 'm.dl').graphs.get('M')!;
    const withGrad = withInputGradients(g, 'loss', ['x']);
    expect([...withGrad.outputs.keys()]).toContain('grad.x');
    const sizes = defaultSizes(g);
    const feeds = randomFeeds(g, sizes, seededRandom(SEED));
    const [row] = gradcheck(g, feeds, { wrt: ['x'], sizes, seed: SEED });
    expect(row.name).toBe('x');
    expect(row.relError).toBeLessThan(1e-6);
  });

  it("hold what stop_gradient stops at its value in the finite differences (a REINFORCE advantage, a target): the analytic gradient's meaning", () => {
    const src = 'model M {\n  input x: f32[B, 3]\n  param w: f32[3] = ones\n  let y = x * w\n  loss = mean(y * stop_gradient(y))\n}\n';
    const g = checkSource(src, 'm.dl').graphs.get('M')!;
    const sizes = defaultSizes(g);
    const feeds = randomFeeds(g, sizes, seededRandom(SEED));
    const [row] = gradcheck(g, feeds, { sizes, seed: SEED });
    expect(row.relError).toBeLessThan(1e-6);
    // d/dw mean(y * stop(y)) is mean(x * y): half of d/dw mean(y * y)
    const plain = checkSource(src.replace('stop_gradient(y)', 'y'), 'm.dl').graphs.get('M')!;
    const [both] = gradcheck(plain, feeds, { sizes, seed: SEED });
    expect(both.analytic).toBeCloseTo(2 * row.analytic, 9);
  });
});

describe('optimized training graphs', () => {
  it('compute the same step as the unoptimized ones', async () => {
    const { buildTrainingGraph } = await import('../compiler/train/training-graph.ts');
    const src = readFileSync('examples/mnist_mlp.dl', 'utf8').replace('model MnistMlp(hidden: int = 128', 'model MnistMlp(hidden: int = 8');
    const { trainings, diagnostics } = compileTraining(src, 'mnist.dl');
    expect(diagnostics).toEqual([]);
    const t = trainings[0];
    const raw = buildTrainingGraph(t.forward, t.plan, t.plan.steps[0]);
    const optimized = t.steps[0];
    expect(optimized.nodes.length).toBeLessThan(raw.nodes.length);
    expect(verifyGraph(optimized)).toEqual([]);
    const sizes = new Map([['B', 4]]);
    const feeds = randomFeeds(raw, sizes, seededRandom(SEED), { intRange: { label: 10 } });
    const a = interpretGraph(raw, feeds, { sizes });
    const b = interpretGraph(optimized, feeds, { sizes });
    for (const p of raw.params) {
      const after = (g: typeof raw, r: typeof a) => r.values.get(g.params.find((q) => q.path === p.path)!.update!.id)!.data;
      const x = after(raw, a);
      const y = after(optimized, b);
      x.forEach((v, i) => expect(Math.abs(v - y[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(v))));
    }
  });
});

describe('objectives', () => {
  const model = (extra: string) => `use std.nn.{Dense}\nmodel Two {\n  input x: f32[B, 4]\n  layer fc = Dense(4, 4)\n  let y = fc(x)\n  loss recon = mean((y - x) ** 2)\n  loss kl = mean(y ** 2)\n${extra}}\n`;
  const train = (objective: string) => `train Two {\n  optimizer = sgd(lr: 1.0)\n  ${objective}\n}\n`;

  it('an expression of losses trains as the same loss written in the model, whose named losses it may read', () => {
    const written = compileTraining(model('  loss total = recon + 0.1 * kl\n') + train('minimize total'), 'two.dl');
    const expression = compileTraining(model('') + train('minimize recon + 0.1 * kl'), 'two.dl');
    expect(written.diagnostics).toEqual([]);
    expect(expression.diagnostics).toEqual([]);
    const [a, b] = [written.trainings[0].steps[0], expression.trainings[0].steps[0]];
    expect(expression.trainings[0].plan.steps[0].loss).toBe('objective');
    expect([...b.losses.keys()]).toContain('objective');
    const sizes = new Map([['B', 3]]);
    const feeds = randomFeeds(a, sizes, seededRandom(SEED));
    const [ra, rb] = [interpretGraph(a, feeds, { sizes }), interpretGraph(b, feeds, { sizes })];
    expect(rb.losses.get('objective')!.data[0]).toBeCloseTo(ra.losses.get('total')!.data[0], 12);
    for (const p of a.params) {
      const after = (g: typeof a, r: typeof ra) => r.values.get(g.params.find((q) => q.path === p.path)!.update!.id)!.data;
      const [x, y] = [after(a, ra), after(b, rb)];
      x.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 12));
    }
  });

  it('reports names that are no loss or metric, and expressions it cannot minimize, at their spans', () => {
    const unknown = compileTraining(model('') + train('minimize recon + 0.1 * klx'), 'two.dl').diagnostics;
    expect(unknown.map((d) => [d.code, d.message, d.help])).toEqual([['E0206', '`Two` has no loss or metric `klx`', 'did you mean `kl`?']]);
    const compared = compileTraining(model('') + train('minimize recon > 2.0'), 'two.dl').diagnostics;
    expect(compared.map((d) => d.code)).toEqual(['E0206']);
    expect(compared[0].message).toMatch(/an objective is a loss, or an expression of losses and metrics/);
  });
});

describe('autodiff edge cases', () => {
  it('gives exact zeros for a parameter the loss does not use, and stops at stop_gradient', async () => {
    const { GraphEditor } = await import('../compiler/ir/editor.ts');
    const { addGradients } = await import('../compiler/autodiff/grad.ts');
    const src = 'model M {\n  input x: f32[B, 2]\n  param used: f32[2] = ones\n  param unused: f32[3] = ones\n  param blocked: f32[2] = ones\n  loss = sum(x * used + stop_gradient(x * blocked))\n}\n';
    const g = checkSource(src, 'm.dl').graphs.get('M')!;
    const editor = new GraphEditor(g);
    const grads = addGradients(editor, g.losses.get('loss')!, g.params.map((p) => p.value));
    g.params.forEach((p) => editor.outputs.set(`grad.${p.path}`, grads.get(p.value.id)!));
    const withGrads = editor.finish();
    expect(verifyGraph(withGrads)).toEqual([]);
    const sizes = new Map([['B', 3]]);
    const out = interpretGraph(withGrads, randomFeeds(g, sizes, seededRandom(SEED)), { sizes }).outputs;
    expect([...out.get('grad.unused')!.data]).toEqual([0, 0, 0]);
    expect([...out.get('grad.blocked')!.data]).toEqual([0, 0]);
    expect([...out.get('grad.used')!.data].some((v) => v !== 0)).toBe(true);
  });
});
