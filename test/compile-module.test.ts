// `dlc compile`: the generated module (TypeScript, or JavaScript plus .d.ts) type-checks under tsc --strict, rejects misuse at compile time, and runs.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc, repoTempDir, ROOT } from './cli-helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { moduleFileName } from '../compiler/emit/module.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { argsOf } from './helpers.ts';

function runtimeImport(dir: string): string {
  return relative(dir, join(ROOT, 'runtime/index.ts'));
}

/** tsc --strict (and erasableSyntaxOnly) over a folder; returns its diagnostics (empty when clean). */
function tsc(dir: string, files: readonly string[]): string {
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM'],
        types: ['@webgpu/types'],
        typeRoots: [join(ROOT, 'node_modules')],
        allowImportingTsExtensions: true,
        noEmit: true,
        skipLibCheck: true,
        exactOptionalPropertyTypes: true,
        noUnusedLocals: true,
        // what `npm create vite` gives (and Node's type stripping needs): no parameter properties or enums, in the module or the runtime
        erasableSyntaxOnly: true,
        verbatimModuleSyntax: true,
      },
      files,
    }),
  );
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? e);
  }
}

/** The part of the generated MNIST module this test calls (the real types are checked by tsc above). */
interface GeneratedMlpModule {
  program: ModelProgram;
  create(options: { batchSize?: number; seed?: number }): Promise<{
    trainStep(batch: { image: Float32Array; label: Int32Array }): { values(): Promise<Record<string, number>> };
    predict(inputs: { image: Float32Array }): Promise<{ probs: Float32Array }>;
    dispose(): void;
  }>;
}

const EXAMPLES: readonly [file: string, model: string, args: string][] = [
  ['mnist_mlp', 'MnistMlp', 'hidden: 16'],
  ['lenet', 'LeNet', ''],
  ['resnet', 'Cifar10ResNet', 'depth: 1'],
  ['lstm_classifier', 'ActivityClassifier', 'steps: 4, features: 3, hidden: 5, layers: 2, classes: 3'],
  ['char_transformer', 'CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 2'],
  ['gan', 'Gan', 'latent: 4, hidden: 8, pixels: 12'],
  ['autoencoder', 'AutoEncoder', 'code: 4'],
  ['reinforce_cartpole', 'CartPolePolicy', 'hidden: 8'],
  ['a2c_pendulum', 'PendulumActorCritic', 'hidden: 8'],
];

describe('dlc compile', () => {
  it('writes one typed module per example model, and every one passes tsc --strict', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('compile');
    const files: string[] = [];
    for (const [file, model, args] of EXAMPLES) {
      const r = await dlc('compile', `examples/${file}.dl`, '-o', dir, '--model', model, ...(args ? ['--args', args] : []), '--runtime', runtimeImport(dir));
      expect(r.err).toContain('wrote');
      expect(r.status, r.err).toBe(EXIT_OK);
      files.push(`${moduleFileName(model)}.ts`);
    }
    expect(readdirSync(dir).sort()).toEqual([...files].sort());
    expect(tsc(dir, files)).toBe('');
  });

  it('with --js writes JavaScript and a declaration file that type-check a caller', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const r = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--js', '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(readdirSync(dir).sort()).toEqual(['mnist_mlp.d.ts', 'mnist_mlp.js']);
    const js = readFileSync(join(dir, 'mnist_mlp.js'), 'utf8');
    expect(js).not.toMatch(/:\s*Promise<|interface /); // plain JavaScript
    const dts = readFileSync(join(dir, 'mnist_mlp.d.ts'), 'utf8');
    expect(dts).toContain('export interface Inputs');
    expect(dts).toContain('readonly image: Float32Array | readonly number[];');
    writeFileSync(
      join(dir, 'use.ts'),
      `import { create, type Outputs, type Reported } from './mnist_mlp.js';
const model = await create({ batchSize: 4 });
const values: Record<Reported, number> = await model.trainStep({ image: new Float32Array(4 * 784), label: new Int32Array(4) }).values();
const out: Outputs = await model.predict({ image: new Float32Array(4 * 784) });
console.log(values.accuracy, out.probs.length);
model.dispose();
`,
    );
    expect(tsc(dir, ['use.ts'])).toBe('');
  });

  it('makes a wrong input name, a wrong array type, an unknown metric and a missing input type errors', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const r = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--model', 'MnistMlp', '--args', 'hidden: 8', '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(
      join(dir, 'misuse.ts'),
      `import { create } from './mnist_mlp.ts';
const model = await create();
model.trainStep({ imag: new Float32Array(784), label: new Int32Array(1) });
model.trainStep({ image: new Float32Array(784), label: new Float32Array(1) });
const v = await model.evaluate({ image: new Float32Array(784), label: new Int32Array(1) });
console.log(v.f1);
await model.predict({});
`,
    );
    const errors = tsc(dir, ['mnist_mlp.ts', 'misuse.ts']);
    expect(errors).toMatch(/misuse\.ts\(3,.*'imag'/);
    expect(errors).toMatch(/misuse\.ts\(4,\d+\): error TS2322: Type 'Float32Array<ArrayBuffer>' is not assignable to type 'readonly number\[\] \| Int32Array/);
    expect(errors).toMatch(/misuse\.ts\(6,.*'f1'/);
    expect(errors).toMatch(/misuse\.ts\(7,\d+\): error TS2345:[^\n]*\n\s+Property 'image' is missing/);
  });

  it("types a step's objective among what trainStep reports (minimize an expression: its value is reported under the step's name)", { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const file = join(dir, 'obj.dl');
    writeFileSync(file, 'model Obj {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  let logits = fc(x)\n  loss = cross_entropy(logits, label)\n  metric m = mean(logits)\n}\ntrain Obj {\n  optimizer = sgd(lr: 0.1)\n  minimize loss + 0.1 * m\n}\n');
    const r = await dlc('compile', file, '-o', dir, '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(join(dir, 'use.ts'), `import { create } from './obj.ts';\nconst model = await create();\nconst v = await model.trainStep({ x: new Float32Array(4), label: new Int32Array(1) }).values();\nconst o: number = v.objective + v.loss + v.m;\nconsole.log(o, v.nope);\n`);
    const errors = tsc(dir, ['obj.ts', 'use.ts']);
    expect(errors).toMatch(/use\.ts\(5,.*'nope'/);
    expect(errors).not.toMatch(/use\.ts\(4,/);
  });

  it('types a table metric (a confusion matrix) as number[][] in what evaluateSet reports, and leaves it out of evaluate and trainStep', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const file = join(dir, 'tables.dl');
    writeFileSync(
      file,
      'model Tables {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  let logits = fc(x)\n  loss = cross_entropy(logits, label)\n  metric area = auc(logits, label, positive: 1)\n  metric confusion = confusion_matrix(logits, label)\n}\ntrain Tables {\n  optimizer = sgd(lr: 0.1)\n}\n',
    );
    const r = await dlc('compile', file, '-o', dir, '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(
      join(dir, 'use.ts'),
      `import { create, type TableMetric } from './tables.ts';
const model = await create();
const batch = { x: new Float32Array(4), label: new Int32Array(1) };
const set = await model.evaluateSet([batch]);
const fine: number = set.confusion[1]![2]! + set.area + set.loss;
const table: TableMetric = 'confusion';
const one = await model.evaluate(batch);
console.log(fine, table, one.confusion);
const scalar: number = set.confusion;
const step = await model.trainStep(batch).values();
console.log(scalar, step.confusion);
`,
    );
    const errors = tsc(dir, ['tables.ts', 'use.ts']);
    expect(errors).not.toMatch(/use\.ts\([1-7],/);
    expect(errors).toMatch(/use\.ts\(8,.*'confusion'/);
    expect(errors).toMatch(/use\.ts\(9,\d+\): error TS2322: Type 'number\[\]\[\]' is not assignable to type 'number'/);
    expect(errors).toMatch(/use\.ts\(11,.*'confusion'/);
  });

  it('leaves trainStep, fit and prepareTraining out of the module of a model without a train block, and makes its profile name a graph', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const file = join(dir, 'notrain.dl');
    writeFileSync(file, 'model NoTrain {\n  input x: f32[B, 4]\n  layer fc = Dense(4, 2)\n  output y = fc(x)\n}\n');
    const r = await dlc('compile', file, '-o', dir, '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(
      join(dir, 'use.ts'),
      `import { create } from './no_train.ts';
const model = await create();
const x = new Float32Array(4);
model.trainStep({ x });
await model.prepareTraining();
await model.profile({ x });
const { y } = await model.predict({ x });
const p = await model.profile({ x }, { graph: 'predict' });
console.log(y.length, p.kernels.length);
`,
    );
    const errors = tsc(dir, ['no_train.ts', 'use.ts']);
    expect(errors).toMatch(/use\.ts\(4,\d+\): error TS2339: Property 'trainStep' does not exist/);
    expect(errors).toMatch(/use\.ts\(5,\d+\): error TS2339: Property 'prepareTraining' does not exist/);
    expect(errors).toMatch(/use\.ts\(6,\d+\): error TS2554/);
    expect(errors).not.toMatch(/use\.ts\((7|8|9),/);
    expect(errors).not.toMatch(/no_train\.ts/);
    expect(readFileSync(join(dir, 'no_train.ts'), 'utf8')).not.toMatch(/\bfit\(/);
  });

  it("has adapt(), its layers typed, only where the train block adapts layers", { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const model = 'use std.nn.{Dense, Normalization}\nmodel Scaled {\n  input x: f32[B, 4]\n  input label: i32[B]\n  layer norm = Normalization(4)\n  layer fc = Dense(4, 2)\n  loss = cross_entropy(fc(norm(x)), label)\n}\n';
    writeFileSync(join(dir, 'scaled.dl'), `${model}train Scaled {\n  adapt = [norm]\n}\n`);
    writeFileSync(join(dir, 'plain.dl'), `${model.replaceAll('Scaled', 'Plain')}train Plain {\n  batch = 4\n}\n`);
    for (const f of ['scaled.dl', 'plain.dl']) {
      const r = await dlc('compile', join(dir, f), '-o', dir, '--runtime', runtimeImport(dir));
      expect(r.status, r.err).toBe(EXIT_OK);
    }
    writeFileSync(
      join(dir, 'use.ts'),
      `import { Dataset } from '${runtimeImport(dir)}';
import { create } from './scaled.ts';
import { create as createPlain } from './plain.ts';
const data = new Dataset({ x: { data: new Float32Array(8), shape: [4] }, label: { data: new Int32Array(2), shape: [] } });
const model = await create();
const [report] = await model.adapt(data, { layers: ['norm'] });
await model.adapt(data, { layers: ['fc'] });
const plain = await createPlain();
await plain.adapt(data);
console.log(report.mean.length);
`,
    );
    const errors = tsc(dir, ['scaled.ts', 'plain.ts', 'use.ts']);
    expect(errors).toMatch(/use\.ts\(7,\d+\): error TS2322: Type '"fc"' is not assignable to type '"norm"'/);
    expect(errors).toMatch(/use\.ts\(9,\d+\): error TS2339: Property 'adapt' does not exist/);
    expect(errors.split('\n').filter((l) => l.includes('error')).length).toBe(2);
  });

  // regression: trainStep(batch, { step: 'regress' }) was typed to report classify's objective, which it lacks at run time
  it("types trainStep's values by the steps that run: one step alone reports its own objective only", { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const model = `use std.nn.{Dense}
model Steps {
  input x: f32[B, 3]
  input t: f32[B]
  layer enc = Dense(3, 4)
  layer reg = Dense(4, 1)
  let h = tanh(enc(x))
  loss a = mse(reg(h)[:, 0], t)
  loss b = mean(h * h)
}
train Steps {
  step classify {
    minimize a + 0.1 * b with sgd(lr: 0.1)
  }
  step regress {
    minimize a over reg with sgd(lr: 0.1)
  }
}
`;
    writeFileSync(join(dir, 'steps.dl'), model);
    const r = await dlc('compile', join(dir, 'steps.dl'), '-o', dir, '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(
      join(dir, 'use.ts'),
      `import { create, type StepInputs } from './steps.ts';
declare const batch: StepInputs;
const m = await create();
const all = await m.trainStep(batch).values();
const classify = await m.trainStep(batch, { step: 'classify' }).values();
const regress = await m.trainStep(batch, { step: 'regress' }).values();
export const used = [all.classify_objective, all.a, classify.classify_objective, regress.a, regress.b];
console.log(regress.classify_objective);
`,
    );
    const errors = tsc(dir, ['steps.ts', 'use.ts']);
    expect(errors).toMatch(/use\.ts\(8,\d+\): error TS2339: Property 'classify_objective' does not exist/);
    expect(errors.split('\n').filter((l) => l.includes('error')).length, errors).toBe(1);
  });

  it('types the service API: named steps, size names, parameter paths; the calls run on WebGPU', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('compile');
    const r = await dlc('compile', 'examples/gan.dl', '-o', dir, '--model', 'Gan', '--args', 'latent: 4, hidden: 8, pixels: 12', '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(
      join(dir, 'service.ts'),
      `import { create, type TrainStepName, type Size } from './gan.ts';
const a = await create({ batchSize: 4 });
const b = await create({ batchSize: 4, seed: 1 });
const image = new Float32Array(4 * 12);
const d = await a.trainStep({ image }, { step: 'discriminator', sizes: { B: 4 } }).values();
const w: Float32Array = await a.getParameter('G.fc1.w');
a.setParameter('G.fc1.w', w);
const report = await b.copyParametersFrom(a, { tau: 0.5, map: (path) => (path.startsWith('D.') ? undefined : path) });
await a.evaluate({ image }, { sizes: { B: 4 } });
await a.evaluateSet([{ image }], { sizes: { B: 4 } });
a.trim();
const steps: TrainStepName[] = ['discriminator', 'generator'];
const sizes: Size[] = ['B'];
export const used = [d.d_loss, report.copied, steps, sizes, a.maxBatch, a.runtime.program.model];
a.trainStep({ image }, { step: 'critic' });
await a.getParameter('G.nope');
await a.predict({}, { sizes: { N: 1 } });
`,
    );
    const errors = tsc(dir, ['gan.ts', 'service.ts']);
    const lines = [...errors.matchAll(/service\.ts\((\d+),/g)].map((m) => Number(m[1]));
    expect(new Set(lines), errors).toEqual(new Set([15, 16, 17]));
    expect(errors).toMatch(/'"critic"' is not assignable to type 'TrainStepName \| undefined'/);
    expect(errors).toMatch(/'N' does not exist in type 'Partial<Record<"B", number>>'/);
    expect(errors).toMatch(/'"G.nope"' is not assignable to parameter of type 'ParameterPath'/);
    // and the same calls run
    const mod = (await import(join(dir, 'gan.ts'))) as {
      create(o: { batchSize: number; seed?: number }): Promise<{
        trainStep(b: { image: Float32Array }, o: { step: string }): { values(): Promise<Record<string, number>> };
        getParameter(p: string): Promise<Float32Array>;
        copyParametersFrom(o: unknown, options?: { tau?: number }): Promise<{ copied: string[] }>;
        trim(): void;
        dispose(): void;
      }>;
    };
    const a = await mod.create({ batchSize: 4 });
    const b = await mod.create({ batchSize: 4, seed: 1 });
    try {
      expect(Object.keys(await a.trainStep({ image: new Float32Array(48).fill(0.5) }, { step: 'discriminator' }).values())).toContain('d_loss');
      await b.copyParametersFrom(a);
      expect(await b.getParameter('G.fc1.w')).toEqual(await a.getParameter('G.fc1.w'));
      a.trim();
      await expect(a.trainStep({ image: new Float32Array(48) }, { step: 'generator' }).values()).resolves.toHaveProperty('g_loss');
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("getState reads state buffers by typed path: batch norm's running statistics after a step match the batch's mean and variance", { timeout: 120_000 }, async () => {
    const dir = repoTempDir('compile');
    const file = join(dir, 'bn.dl');
    writeFileSync(
      file,
      'use std.nn.{BatchNorm, Dense}\nmodel Bn {\n  input x: f32[B, 3]\n  input label: i32[B]\n  layer bn = BatchNorm(3, momentum: 0.25)\n  layer fc = Dense(3, 2)\n  let logits = fc(bn(x))\n  output probs = softmax(logits, axis: -1)\n  loss = cross_entropy(logits, label)\n}\ntrain Bn {\n  optimizer = adam(lr: 0.01)\n}\n',
    );
    const r = await dlc('compile', file, '-o', dir, '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    writeFileSync(
      join(dir, 'state.ts'),
      `import { create, type StatePath } from './bn.ts';\nconst model = await create({ batchSize: 4 });\nconst mean: Float32Array = await model.getState('bn.running_mean');\nconst path: StatePath = 'bn.running_var';\nexport const used = [mean, path];\nawait model.getState('bn.gamma');\n`,
    );
    const errors = tsc(dir, ['bn.ts', 'state.ts']);
    expect([...errors.matchAll(/state\.ts\((\d+),/g)].map((m) => Number(m[1])), errors).toEqual([6]);
    expect(errors).toMatch(/'"bn.gamma"' is not assignable to parameter of type 'StatePath'/);
    const mod = (await import(join(dir, 'bn.ts'))) as {
      create(o: { batchSize: number }): Promise<{
        trainStep(b: { x: Float32Array; label: Int32Array }): { values(): Promise<Record<string, number>> };
        getState(p: string): Promise<Float32Array>;
        getParameter(p: string): Promise<Float32Array>;
        dispose(): void;
      }>;
    };
    const model = await mod.create({ batchSize: 4 });
    try {
      expect(Array.from(await model.getState('bn.running_mean'))).toEqual([0, 0, 0]);
      expect(Array.from(await model.getState('bn.running_var'))).toEqual([1, 1, 1]);
      const x = Float32Array.from([1, 2, 3, 3, 0, -1, 5, 2, 0.5, -1, 4, 2]);
      await model.trainStep({ x, label: Int32Array.from([0, 1, 0, 1]) }).values();
      // the reference: (1 - momentum) * initial + momentum * the batch's statistic (biased variance)
      for (let c = 0; c < 3; c++) {
        const col = [0, 1, 2, 3].map((i) => x[i * 3 + c]);
        const mu = col.reduce((a, b) => a + b, 0) / 4;
        const v = col.reduce((a, b) => a + (b - mu) ** 2, 0) / 4;
        expect((await model.getState('bn.running_mean'))[c]).toBeCloseTo(0.25 * mu, 5);
        expect((await model.getState('bn.running_var'))[c]).toBeCloseTo(0.75 + 0.25 * v, 5);
      }
      await expect(model.getState('bn.gamma')).rejects.toThrow(/no state buffer `bn.gamma`; `bn.gamma` is a parameter: read it with getParameter\(\)/);
      await expect(model.getParameter('bn.running_mean')).rejects.toThrow(/`bn.running_mean` is a state buffer: read it with getState\(\)/);
    } finally {
      model.dispose();
    }
  });

  it('by default imports the runtime as `dlc/runtime`, which the package exports', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const r = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--model', 'MnistMlp', '--args', 'hidden: 8');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(readFileSync(join(dir, 'mnist_mlp.ts'), 'utf8')).toContain("from 'dlc/runtime';");
    expect(tsc(dir, ['mnist_mlp.ts'])).toBe('');
    // the README's use of the module type-checks against it, word for word
    const readme = readFileSync('README.md', 'utf8');
    const snippet = /```ts\n(import \{ create \} from '\.\/generated\/mnist_mlp\.ts';[^]*?)```/.exec(readme)?.[1];
    expect(snippet).toBeDefined();
    const usage = `declare const image: Float32Array;\ndeclare const label: Int32Array;\n${snippet!.replace('./generated/mnist_mlp.ts', './mnist_mlp.ts')}export { probs, bytes };\n`;
    writeFileSync(join(dir, 'readme-usage.ts'), usage);
    expect(tsc(dir, ['readme-usage.ts'])).toBe('');
  });

  it('with --js --runtime dlc/runtime/js runs in plain Node, no TypeScript loader, once `npm run build` has written dist/', { timeout: 180_000 }, async () => {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { encoding: 'utf8', stdio: 'pipe' });
    const dir = repoTempDir('plain-js');
    const r = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--js', '--runtime', 'dlc/runtime/js', '--args', 'hidden: 8');
    expect(r.status, r.err).toBe(EXIT_OK);
    // inside this package, `dlc/runtime/js` resolves by the package's own exports (a user's project: npm install or npm link)
    writeFileSync(
      join(dir, 'app.js'),
      [
        "import { create } from './mnist_mlp.js';",
        'const model = await create({ batchSize: 2 });',
        'const image = new Float32Array(2 * 784).map((_, i) => (i % 7) / 7);',
        'const { loss } = await model.trainStep({ image, label: Int32Array.from([3, 5]) }).values();',
        'const { probs } = await model.predict({ image });',
        'model.dispose();',
        'console.log(JSON.stringify({ loss, sum: probs.slice(0, 10).reduce((a, b) => a + b, 0) }));',
      ].join('\n'),
    );
    const out = execFileSync(process.execPath, [join(dir, 'app.js')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    const { loss, sum } = JSON.parse(out.trim().split('\n').at(-1)!) as { loss: number; sum: number };
    expect(Number.isFinite(loss)).toBe(true);
    expect(sum).toBeCloseTo(1, 5);
  });

  it('reports the source diagnostics and writes nothing for a broken model', async () => {
    const dir = repoTempDir('compile');
    const bad = join(dir, 'bad.dl');
    writeFileSync(bad, 'model M {\n  input x: f32[B, 3]\n  layer fc = Dense(4, 2)\n  output y = fc(x)\n}\n');
    const r = await dlc('compile', bad, '-o', join(dir, 'out'));
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toMatch(/E03\d\d/);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('applies --args to the only model without --model, and asks which model when there are several', async () => {
    const dir = repoTempDir('compile');
    const one = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--args', 'hidden: 8');
    expect(one.status, one.err).toBe(EXIT_OK);
    // hidden 8: fc1's weight is 784 x 8
    expect(readFileSync(join(dir, 'mnist_mlp.ts'), 'utf8')).toMatch(/6272/);
    const two = join(dir, 'two.dl');
    writeFileSync(two, 'model A(n: int = 2) {\n  input x: f32[B, n]\n  output y = x\n}\n\nmodel C(n: int = 2) {\n  input x: f32[B, n]\n  output y = x\n}\n');
    const r = await dlc('compile', two, '-o', join(dir, 'out'), '--args', 'n: 3');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('--args needs --model');
    expect(r.err).toContain('`A`, `C`');
  });

  it('the generated module trains and predicts on WebGPU through its typed API', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('compile');
    const r = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--model', 'MnistMlp', '--args', 'hidden: 8', '--runtime', runtimeImport(dir));
    expect(r.status, r.err).toBe(EXIT_OK);
    const mod = (await import(join(dir, 'mnist_mlp.ts'))) as GeneratedMlpModule;
    // the module holds the compiled program exactly, its shaders written out one WGSL line per line
    const text = readFileSync(join(dir, 'mnist_mlp.ts'), 'utf8');
    const compiled = compileSource(readFileSync('examples/mnist_mlp.dl', 'utf8'), 'examples/mnist_mlp.dl', undefined, { modelArgs: new Map([['MnistMlp', argsOf('MnistMlp', 'hidden: 8')]]) }).programs[0];
    expect(mod.program).toEqual(compiled);
    expect(text.split('\n').length).toBeGreaterThan(compiled.shaders.reduce((n, s) => n + s.split('\n').length, 0));
    const model = await mod.create({ batchSize: 8, seed: 3 });
    try {
      const image = Float32Array.from({ length: 8 * 784 }, (_, i) => ((i * 37) % 101) / 101);
      const label = Int32Array.from({ length: 8 }, (_, i) => i % 10);
      const first = await model.trainStep({ image, label }).values();
      let last = first;
      for (let i = 0; i < 40; i++) last = await model.trainStep({ image, label }).values();
      // the train block warms the learning rate up over 200 steps, so 40 steps only start the descent
      expect(last.loss).toBeLessThan(first.loss - 0.3);
      const { probs } = await model.predict({ image });
      expect(probs.length).toBe(80);
      for (let b = 0; b < 8; b++) expect(probs.slice(b * 10, b * 10 + 10).reduce((a, x) => a + x, 0)).toBeCloseTo(1, 4);
      await expect(model.predict({ image: new Float32Array(783) } as never)).rejects.toThrow(/input `image` has 783 values.*784/);
    } finally {
      model.dispose();
    }
  });
});
