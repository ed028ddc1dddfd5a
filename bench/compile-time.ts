// Compile time of unrolled recurrences by stage: the standard library's GRU and the LSTM classifier at growing sequence lengths.
//
//   npx tsx bench/compile-time.ts                       GRU and LSTM at T = 64, 128, 256, 512, 1024
//   npx tsx bench/compile-time.ts --steps 64,2048 --models gru
//   npx tsx bench/compile-time.ts --json FILE           also write the rows as JSON
//
// Each (model, T) compiles in a fresh Node process, as `dlc compile` would: compileSource (a predict, an
// evaluate and a training step) and the TypeScript module's text. Stages are seconds of the process's
// CPU time (steadier than wall time on a shared machine; garbage collection threads count), each counted
// once (a stage inside another is not in the outer one: compiler/stage-times.ts); `other` is the rest
// of the CPU total (training plans, metric totals, predict graphs); `wall` is the wall-clock total. Nodes: the training step's
// graph before fusion. Speed is never asserted anywhere.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '../grammar/parse.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { emitModule } from '../compiler/emit/module.ts';
import { recordStageTimes, timeStage } from '../compiler/stage-times.ts';
import { root } from './paths.ts';

const STAGES = ['parse', 'resolve', 'elaborate', 'autodiff', 'optimize', 'fuse', 'codegen', 'memory', 'emit'] as const;

interface Case {
  readonly source: string;
  readonly file: string;
  readonly model: string;
  readonly args: (steps: number) => string;
}

const GRU_SOURCE = `use std.nn.{GRU, Dense}
model GruTagger(steps: int = 4, features: int = 8, hidden: int = 32, classes: int = 4) {
  input x: f32[B, steps, features]
  input label: i32[B]
  layer gru = GRU(features, hidden)
  layer head = Dense(hidden, classes)
  let hs = gru(x)
  let logits = head(hs[:, steps - 1, :])
  output probs = softmax(logits, axis: -1)
  loss = cross_entropy(logits, label)
}
train GruTagger() {
  optimizer = adam(lr: 1e-2)
  batch = 16
  epochs = 1
  minimize loss
}
`;

const CASES: Record<string, Case> = {
  // std.nn's GRU, one layer, one direction
  gru: { source: GRU_SOURCE, file: 'gru_tagger.dl', model: 'GruTagger', args: (t) => `steps: ${t}` },
  // examples/lstm_classifier.dl with one bidirectional layer (two recurrences of T steps each)
  lstm: { source: readFileSync(join(root, 'examples/lstm_classifier.dl'), 'utf8'), file: 'lstm_classifier.dl', model: 'ActivityClassifier', args: (t) => `steps: ${t}, layers: 1` },
};

interface Row {
  readonly model: string;
  readonly steps: number;
  readonly total: number;
  readonly cpu: number;
  readonly stages: Record<string, number>;
  readonly nodes: number;
  readonly kernels: number;
}

function argsOf(model: string, args: string) {
  const decl = parse(`train ${model}(${args}) {}`, 'args.dl').program.body.stmts[0];
  return decl.kind === 'Train' ? [...(decl.args ?? [])] : [];
}

/** The process's CPU time in milliseconds: steadier than wall time on a shared machine. */
const cpuClock = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** One compile in this process, timed by stage. */
function compileOnce(name: string, steps: number): Row {
  const c = CASES[name];
  if (!c) throw new Error(`unknown model ${name}: ${Object.keys(CASES).join(', ')}`);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const { result, times } = recordStageTimes(() => {
    const compiled = compileSource(c.source, c.file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args(steps))]]), keepGraphs: true });
    const program = compiled.programs[0];
    if (!program) throw new Error(compiled.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
    timeStage('emit', () => emitModule(program));
    return compiled;
  }, cpuClock);
  const total = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stages = Object.fromEntries(STAGES.map((s) => [s, (times.get(s) ?? 0) / 1000]));
  const counted = Object.values(stages).reduce((a, b) => a + b, 0);
  const cpuTotal = (cpu.user + cpu.system) / 1e6;
  const step = result.programs[0].graphs.steps[0];
  return { model: name, steps, total, cpu: cpuTotal, stages: { ...stages, other: cpuTotal - counted }, nodes: result.graphs![0].steps[0].nodes.length, kernels: step.kernels.length };
}

function table(rows: readonly Row[]): string {
  const cols = [...STAGES, 'other'];
  const head = `| model | T | ${cols.join(' | ')} | CPU s | wall s | step nodes | step kernels |`;
  const rule = `|${' --- |'.repeat(cols.length + 6)}`;
  const lines = rows.map((r) => `| ${r.model} | ${r.steps} | ${cols.map((s) => r.stages[s].toFixed(2)).join(' | ')} | ${r.cpu.toFixed(1)} | ${r.total.toFixed(1)} | ${r.nodes} | ${r.kernels} |`);
  return [head, rule, ...lines].join('\n');
}

const argv = process.argv.slice(2);
const option = (flag: string) => {
  const at = argv.indexOf(flag);
  return at >= 0 ? argv[at + 1] : undefined;
};
const one = option('--one');
if (one) {
  // the child: one compile, its row as JSON on stdout
  process.stdout.write(JSON.stringify(compileOnce(one, Number(option('--at')))));
} else {
  const models = (option('--models') ?? 'gru,lstm').split(',');
  const steps = (option('--steps') ?? '64,128,256,512,1024').split(',').map(Number);
  const rows: Row[] = [];
  const json = option('--json');
  const self = fileURLToPath(import.meta.url);
  for (const model of models) {
    for (const t of steps) {
      const out = execFileSync(process.execPath, ['--max-old-space-size=12000', '--import', 'tsx/esm', self, '--one', model, '--at', String(t)], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24 });
      const row = JSON.parse(out) as Row;
      rows.push(row);
      process.stderr.write(`${model} T=${t}: ${row.cpu.toFixed(1)} s CPU, ${row.total.toFixed(1)} s wall\n`);
      // written after every row, so a long run stopped early keeps what it measured
      if (json) writeFileSync(json, `${JSON.stringify({ machine: machine(), rows }, null, 2)}\n`);
    }
  }
  console.log(table(rows));
}

function machine(): string {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  return `${cpu}, Node ${process.version}`;
}
