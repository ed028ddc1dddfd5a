// `npm run bench`: dlc against TF.js (WebGPU backend) in one process, on one Dawn device.
//
//   tsx bench/run.ts            sizes for a CPU adapter (lavapipe): matmul 256, 512; MLP batch 128, 4096; ...
//   tsx bench/run.ts --full     the issue's sizes for a real GPU: matmul 1024, 2048, 4096; bigger CNN/Transformer
//   tsx bench/run.ts --tiny     1 step, tiny sizes: checks the harness works (the smoke test)
//   --reps N --warmup N         timed and untimed steps per benchmark
//   --only matmul,mlp,...       groups to run (matmul, mlp, lenet, transformer, lstm)
//   --out FILE                  results JSON (default bench/results/<adapter>-<date>.json)
//   --doc FILE | --no-doc       the Markdown file whose table to update (default docs/benchmarks.md; --tiny: none)
//   --kernels auto|gpu|cpu      dlc's kernel variants: auto (default) picks the CPU variants on a software adapter;
//                               gpu forces the GPU variants (relative timings of them on lavapipe; no doc by default)
//   --profile                   also time each dlc kernel alone (Model.profile): a table per benchmark, and the JSON's dlc.profile
//   --table RESULTS.json        only put an existing results file's table into the doc (runs nothing)
//
// Every step is timed from the host's first call to the GPU's completion, the same way for both sides:
// training steps end with `device.queue.onSubmittedWorkDone()` (TF.js's pending command encoder is
// submitted first), matmuls with a readback of the product's first row. Speed is never asserted.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileModel, dispatchesOf, dispatchesPerStep, dlcMemory, dlcPredictor, dlcTrainer, type DlcRun } from './dlc-side.ts';
import { machineInfo, openSharedGpu, type SharedGpu } from './gpu.ts';
import { updateDoc, type BenchFile, type BenchResult, type ProfileSummary, type SideResult } from './report.ts';
import { formatProfile, slowestKernels, sourceText } from '../runtime/profile.ts';
import { tfGpt, tfLeNet, tfLstm, tfLstmTrain, tfMatmul, tfMlp, type GptConfig, type LstmConfig, type TfRun } from './tfjs-side.ts';
import { intData, timeSteps, uniformData } from './timing.ts';
import { root } from './paths.ts';


type Mode = 'tiny' | 'default' | 'full';
interface Sizes {
  readonly matmul: readonly number[];
  readonly mlpBatches: readonly number[];
  readonly lenetBatch: number;
  readonly gpt: GptConfig & { readonly batch: number };
  readonly lstm: LstmConfig;
  readonly warmup: number;
  readonly reps: number;
}

const SIZES: Record<Mode, Sizes> = {
  tiny: { matmul: [64], mlpBatches: [8], lenetBatch: 2, gpt: { vocab: 11, ctx: 8, d: 8, heads: 2, depth: 1, batch: 2 }, lstm: { steps: 3, features: 9, hidden: 4, layers: 1, classes: 6, batch: 2 }, warmup: 1, reps: 1 },
  default: { matmul: [256, 512], mlpBatches: [128, 4096], lenetBatch: 16, gpt: { vocab: 65, ctx: 32, d: 64, heads: 4, depth: 2, batch: 8 }, lstm: { steps: 32, features: 9, hidden: 64, layers: 2, classes: 6, batch: 64 }, warmup: 2, reps: 7 },
  full: { matmul: [1024, 2048, 4096], mlpBatches: [128, 4096], lenetBatch: 64, gpt: { vocab: 65, ctx: 128, d: 256, heads: 8, depth: 4, batch: 32 }, lstm: { steps: 128, features: 9, hidden: 64, layers: 2, classes: 6, batch: 64 }, warmup: 5, reps: 30 },
};
const USAGE = `usage: tsx bench/run.ts [--full | --tiny] [--reps N] [--warmup N] [--only matmul,mlp,lenet,transformer,lstm] [--kernels auto|gpu|cpu] [--profile] [--out FILE] [--doc FILE | --no-doc]\n       tsx bench/run.ts --table RESULTS.json [--doc FILE]`;
const GROUPS = ['matmul', 'mlp', 'lenet', 'transformer', 'lstm'] as const;

interface Options {
  mode: Mode;
  warmup: number;
  reps: number;
  only: Set<string>;
  out?: string;
  doc?: string | null;
  kernels: 'auto' | 'gpu' | 'cpu';
  /** Also time each dlc kernel alone (Model.profile) and record where the step's time goes. */
  profile: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let mode: Mode = process.env.DLC_BENCH_FULL === '1' ? 'full' : 'default';
  let warmup: number | undefined;
  let reps: number | undefined;
  let only = new Set<string>(GROUPS);
  let out: string | undefined;
  let doc: string | null | undefined;
  let kernels: Options['kernels'] = 'auto';
  let profile = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--full') mode = 'full';
    else if (a === '--tiny') mode = 'tiny';
    else if (a === '--reps') reps = Number(value());
    else if (a === '--warmup') warmup = Number(value());
    else if (a === '--only') only = new Set(value().split(','));
    else if (a === '--out' || a === '--json') out = value();
    else if (a === '--doc') doc = value();
    else if (a === '--no-doc') doc = null;
    else if (a === '--profile') profile = true;
    else if (a === '--kernels') {
      const v = value();
      if (v !== 'auto' && v !== 'gpu' && v !== 'cpu') throw new Error(`--kernels: ${v} is not auto, gpu or cpu`);
      kernels = v;
    }
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  for (const g of only) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only: no benchmark group ${g}; the groups are ${GROUPS.join(', ')}`);
  const s = SIZES[mode];
  if (doc === undefined) doc = mode === 'tiny' || kernels !== 'auto' ? null : 'docs/benchmarks.md';
  return { mode, warmup: warmup ?? s.warmup, reps: reps ?? s.reps, only, out, doc, kernels, profile };
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);

/** Both sides of one benchmark, one after the other on the shared device; a failing side is reported, not fatal. */
async function compare(
  gpu: SharedGpu,
  o: Options,
  name: string,
  group: BenchResult['group'],
  config: Record<string, number | string>,
  dlc: () => Promise<{ run: DlcRun; sizes: Map<string, number> }>,
  tf: () => TfRun,
  flops?: number,
  notes?: string,
): Promise<BenchResult> {
  const gflops = (t: number | undefined) => (flops === undefined || t === undefined ? undefined : Number((flops / (t * 1e-3) / 1e9).toPrecision(4)));
  let d: SideResult;
  try {
    const { run, sizes } = await dlc();
    try {
      const timing = await timeSteps(o.warmup, o.reps, run.step);
      const mem = await dlcMemory(run.program, sizes, run.graph);
      d = {
        ...timing,
        gflops: gflops(timing.medianMs),
        dispatchesPerStep: run.graph === 'steps' ? dispatchesPerStep(run.program) : dispatchesOf(run.program.graphs.predict),
        peakBytes: mem.peakBytes,
        peakBytesMethod: mem.method,
        unplannedBytes: mem.unplannedBytes,
        ...(o.profile ? { profile: await profileOf(run, o.reps, name) } : {}),
      };
    } finally {
      run.model.dispose();
    }
  } catch (e) {
    d = { error: message(e) };
  }
  let t: SideResult;
  try {
    const before = gpu.tf.memory().numTensors;
    const run = tf();
    try {
      const timing = await timeSteps(o.warmup, o.reps, run.step);
      const p = await run.profile();
      t = { ...timing, gflops: gflops(timing.medianMs), dispatchesPerStep: p.kernels, peakBytes: p.peakBytes, peakBytesMethod: 'tf.profile peakBytes (every live tensor)', gpuBytesAllocated: p.gpuBytesAllocated };
    } finally {
      run.dispose();
      const leaked = gpu.tf.memory().numTensors - before;
      if (leaked > 0) console.warn(`  note: ${name} left ${leaked} TF.js tensors alive`);
    }
  } catch (e) {
    t = { error: message(e) };
  }
  const speedup = d.medianMs !== undefined && t.medianMs !== undefined ? Math.round((t.medianMs / d.medianMs) * 1000) / 1000 : undefined;
  const r: BenchResult = { name, group, config, dlc: d, tfjs: t, speedup, notes };
  const show = (s: SideResult) => (s.error ? `failed (${s.error})` : `${s.medianMs} ms${s.gflops !== undefined ? ` (${s.gflops} GFLOP/s)` : ''}`);
  console.log(`${name}: dlc ${show(d)}, TF.js ${show(t)}${speedup !== undefined ? `, speedup ${speedup}x` : ''}`);
  return r;
}

/** Each dlc kernel timed alone: printed as a table, kept in the JSON as the time by op and the slowest kernels. */
async function profileOf(run: DlcRun, reps: number, name: string): Promise<ProfileSummary> {
  const p = await run.profile(reps);
  console.log(`${name}, dlc kernel profile:\n${formatProfile(p, 8)}\n`);
  const round = (x: number) => Number(x.toPrecision(4));
  return {
    kernelMs: round(p.totalMs),
    roundTripMs: round(p.roundTripMs),
    byOp: p.byOp.map((s) => ({ op: s.key, kernels: s.kernels, ms: round(s.ms), share: round(s.share) })),
    slowest: slowestKernels(p, 10).map((k) => ({ graph: k.graph, index: k.index, op: k.op, ...(k.source ? { source: sourceText(k.source) } : {}), ms: round(k.ms) })),
  };
}

function slugOf(adapterInfo: string): string {
  return adapterInfo.split(' / ').slice(0, 2).join('-').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'unknown';
}

/** `--table FILE [--doc DOC]`: put an existing results file's table into the doc (e.g. one brought back from a GPU machine). */
function tableFromFile(argv: readonly string[]): void {
  const at = argv.indexOf('--table');
  const path = resolve(argv[at + 1] ?? '');
  const docAt = argv.indexOf('--doc');
  const doc = resolve(root, docAt >= 0 ? argv[docAt + 1] : 'docs/benchmarks.md');
  const file = JSON.parse(readFileSync(path, 'utf8')) as BenchFile;
  if (file.format !== 'dlc-bench') throw new Error(`${path} is not a dlc-bench results file`);
  updateDoc(doc, `${slugOf(String(file.machine.adapter))}-${file.mode}`, `${file.machine.adapter} on ${file.machine.cpu} (${file.mode})`, file, relative(root, path));
  console.log(`updated ${relative(process.cwd(), doc)} from ${relative(process.cwd(), path)}`);
}

export async function main(argv: readonly string[]): Promise<BenchFile | undefined> {
  if (argv.includes('--table')) {
    tableFromFile(argv);
    return undefined;
  }
  const o = parseArgs(argv);
  const s = SIZES[o.mode];
  const gpu = await openSharedGpu();
  // dlc's kernel variants: the adapter's (CPU variants on a software adapter) unless --kernels forces them
  const cpu = o.kernels === 'auto' ? gpu.cpu : o.kernels === 'cpu';
  const variants = o.kernels === 'auto' ? (gpu.cpu ? ' (software: dlc uses its CPU kernel variants)' : '') : ` (dlc forced to its ${o.kernels.toUpperCase()} kernel variants)`;
  console.log(`adapter: ${gpu.adapterInfo}${variants}; mode ${o.mode}, ${o.warmup} warmup + ${o.reps} timed steps`);
  const results: BenchResult[] = [];

  if (o.only.has('matmul')) {
    for (const n of s.matmul) {
      const program = compileModel('bench/models/matmul.dl', 'MatMul', `n: ${n}`);
      results.push(
        await compare(
          gpu,
          o,
          `matmul ${n}`,
          'matmul',
          { n },
          async () => ({ run: await dlcPredictor(program, gpu.device, cpu, { unused: [0] }), sizes: new Map([['B', 1]]) }),
          () => tfMatmul(gpu, n),
          2 * n ** 3,
          'f32 [n, n] @ [n, n] of resident tensors, then the first row read back',
        ),
      );
    }
  }

  if (o.only.has('mlp')) {
    const program = compileModel('bench/models/mlp.dl', 'Mlp', 'hidden: 128');
    for (const batch of s.mlpBatches) {
      const image = uniformData(batch * 784, 1);
      const label = intData(batch, 10, 2);
      results.push(
        await compare(
          gpu,
          o,
          `MLP 784-128-10 step, batch ${batch}`,
          'mlp',
          { batch, hidden: 128, model: 'bench/models/mlp.dl' },
          async () => ({ run: await dlcTrainer(program, gpu.device, cpu, { image, label }, { B: batch }), sizes: new Map([['B', batch]]) }),
          () => tfMlp(gpu, 128, image, label),
          undefined,
          'Adam, softmax cross-entropy, Glorot-uniform weights; the batch is uploaded every step',
        ),
      );
    }
  }

  if (o.only.has('lenet')) {
    const batch = s.lenetBatch;
    const program = compileModel('examples/lenet.dl', 'LeNet');
    const image = uniformData(batch * 784, 3);
    const label = intData(batch, 10, 4);
    results.push(
      await compare(
        gpu,
        o,
        `LeNet-5 step, batch ${batch}`,
        'lenet',
        { batch, model: 'examples/lenet.dl' },
        async () => ({ run: await dlcTrainer(program, gpu.device, cpu, { image, label }, { B: batch }), sizes: new Map([['B', batch]]) }),
        () => tfLeNet(gpu, image, label),
        undefined,
        'dlc NCHW (its step also computes the accuracy metric), TF.js NHWC; Adam',
      ),
    );
  }

  if (o.only.has('transformer')) {
    const g = s.gpt;
    const length = g.ctx + 1;
    const args = `vocab: ${g.vocab}, ctx: ${g.ctx}, d: ${g.d}, heads: ${g.heads}, depth: ${g.depth}, p: 0.0`;
    const program = compileModel('examples/char_transformer.dl', 'CharGPT', args);
    const tokens = intData(g.batch * length, g.vocab, 5);
    const sizes = { B: g.batch, L: length };
    results.push(
      await compare(
        gpu,
        o,
        `Transformer step (d ${g.d}, ${g.heads} heads, depth ${g.depth}, T ${g.ctx}), batch ${g.batch}`,
        'transformer',
        { ...g, length, model: 'examples/char_transformer.dl', args },
        async () => ({ run: await dlcTrainer(program, gpu.device, cpu, { tokens }, sizes), sizes: new Map(Object.entries(sizes)) }),
        () => tfGpt(gpu, g, tokens, g.batch, length),
        undefined,
        'dropout off on both sides (dlc compiled with p: 0.0); AdamW, clipping, warmup-cosine as the example; TF.js writes AdamW with tf ops',
      ),
    );
  }

  if (o.only.has('lstm')) {
    const l = s.lstm;
    // dropout off (p 0.0) for the training step's sake; inference never applies it
    const args = `steps: ${l.steps}, features: ${l.features}, hidden: ${l.hidden}, layers: ${l.layers}, classes: ${l.classes}, p: 0.0`;
    const program = compileModel('examples/lstm_classifier.dl', 'ActivityClassifier', args);
    const x = uniformData(l.batch * l.steps * l.features, 6);
    const label = intData(l.batch, l.classes, 7);
    results.push(
      await compare(
        gpu,
        o,
        `LSTM classifier inference (T ${l.steps}, hidden ${l.hidden}, ${l.layers} bidirectional layers), batch ${l.batch}`,
        'lstm',
        { ...l, model: 'examples/lstm_classifier.dl', args },
        async () => ({ run: await dlcPredictor(program, gpu.device, cpu, { x }), sizes: new Map([['B', l.batch]]) }),
        () => tfLstm(gpu, l, x),
        undefined,
        'predict: probabilities and argmax read back; TF.js step by step with tf ops (matMul, split, sigmoid, tanh), as a Layers LSTM runs',
      ),
    );
    results.push(
      await compare(
        gpu,
        o,
        `LSTM classifier step (T ${l.steps}, hidden ${l.hidden}, ${l.layers} bidirectional layers), batch ${l.batch}`,
        'lstm',
        { ...l, model: 'examples/lstm_classifier.dl', args },
        async () => ({ run: await dlcTrainer(program, gpu.device, cpu, { x, label }, { B: l.batch }), sizes: new Map([['B', l.batch]]) }),
        () => tfLstmTrain(gpu, l, x, label),
        undefined,
        'dropout off on both sides; Adam, clipping to norm 1, warmup-cosine as the example (TF.js writes them with tf ops); the batch is uploaded every step',
      ),
    );
  }

  const date = new Date().toISOString();
  const machine = machineInfo(gpu.adapterInfo);
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(resolve(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown (bundled)';
    }
  };
  let commit = process.env.DLC_BENCH_COMMIT ?? 'unknown';
  try {
    if (commit === 'unknown') {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (dirty) commit += ' (with uncommitted changes)';
    }
  } catch {
    // not a git checkout (a copy on a GPU machine)
  }
  const file: BenchFile = {
    format: 'dlc-bench',
    version: 1,
    date,
    mode: o.mode,
    warmup: o.warmup,
    reps: o.reps,
    machine,
    versions: { dlc: `${pkg('../')} ${commit}`, tfjs: pkg('@tensorflow/tfjs-core'), webgpu: pkg('webgpu') },
    timing: 'per step: from the first host call to GPU completion (training: queue.onSubmittedWorkDone after TF.js submits its pending commands; matmul: readback of the first row); median of the timed steps',
    ...(o.kernels !== 'auto' ? { kernels: o.kernels } : {}),
    results,
  };
  const slug = slugOf(gpu.adapterInfo);
  const out = resolve(root, o.out ?? `bench/results/${slug}-${date.slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
  console.log(`wrote ${relative(process.cwd(), out)}`);
  if (o.doc) {
    const title = `${gpu.adapterInfo} on ${machine.cpu} (${o.mode})`;
    updateDoc(resolve(root, o.doc), `${slug}-${o.mode}`, title, file, relative(root, out));
    console.log(`updated ${o.doc}`);
  }
  gpu.device.destroy();
  return file;
}

const entry = process.argv[1] ? resolve(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url) || /[\\/]bench[\\/]run\.(ts|mjs|js)$/.test(entry)) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exit(1);
    },
  );
}
