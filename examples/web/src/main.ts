// Trains the MNIST MLP (compiled ahead of time by `npm run web:gen`) on WebGPU in the browser, with a live loss curve.
//
// Query parameters: ?steps=N (train N steps on a subset, one epoch), ?batch=N, ?epochs=N, ?seed=N, ?val=N (validation examples),
// ?lookahead=N (steps in flight before the loop waits for a loss). Defaults come from the train block.
import { create, program } from '../generated/mnist_mlp.ts';
import type { SettingValue } from '../../../runtime/index.ts';
import { LossChart } from './chart.ts';
import { decodeDigits } from './digits.ts';
import type { TrainingProgress } from './progress.ts';

const progress: TrainingProgress = { status: 'starting', adapter: '', losses: [], step: 0, stepsPerSecond: 0, epochs: [], seconds: {}, done: false };
window.dlcTraining = progress;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function show(status: string): void {
  progress.status = status;
  $('status').textContent = status;
}

function setting(name: string): SettingValue | undefined {
  return program.training?.settings[name];
}

function numberSetting(name: string, fallback: number): number {
  const v = setting(name);
  return typeof v === 'number' ? v : fallback;
}

/** A positive integer query parameter, or the fallback. */
function param(name: string, fallback: number): number {
  const text = new URLSearchParams(location.search).get(name);
  if (text === null) return fallback;
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`the query parameter ${name}=${text} must be a non-negative integer`);
  return v;
}

function fmt(v: number | undefined, digits = 4): string {
  return v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

async function run(): Promise<void> {
  const chart = new LossChart($<HTMLCanvasElement>('loss'), progress.losses);
  const loss = program.training?.steps[0]?.loss ?? 'loss';
  const seed = param('seed', numberSetting('seed', 0));
  const batchSize = param('batch', numberSetting('batch', 32));
  const stepLimit = param('steps', 0);
  const lookahead = param('lookahead', 0);
  const epochs = param('epochs', stepLimit > 0 ? 1 : numberSetting('epochs', 1));
  const splitSetting = setting('split');
  const fractions = Array.isArray(splitSetting) ? (splitSetting as number[]) : [0.8, 0.1, 0.1];

  show('loading MNIST digits…');
  let t = performance.now();
  const response = await fetch(new URL('../generated/mnist-digits.bin', import.meta.url));
  if (!response.ok) throw new Error(`cannot load the MNIST digits: HTTP ${response.status} (run npm run web:gen)`);
  const data = decodeDigits(await response.arrayBuffer());
  let [train, validation] = data.split(fractions, { seed });
  if (stepLimit > 0) train = train.take(Math.min(train.length, stepLimit * batchSize));
  const valLimit = param('val', 0);
  if (valLimit > 0 && validation) validation = validation.take(Math.min(validation.length, valLimit));

  progress.seconds.load = (performance.now() - t) / 1000;

  show('compiling shaders…');
  t = performance.now();
  // ?staging=N: inputs of N bytes or more go through the runtime's staging pool (default 1 MiB)
  const staging = param('staging', 0);
  const model = await create({ seed, batchSize, ...(staging > 0 ? { uploads: { minBytes: staging } } : {}) });
  progress.seconds.create = (performance.now() - t) / 1000;
  progress.adapter = model.adapterInfo;
  $('adapter').textContent = model.adapterInfo;
  $('data').textContent = `${train.length} train / ${validation?.length ?? 0} validation examples, batch ${batchSize}, ${epochs} epoch${epochs === 1 ? '' : 's'}, seed ${seed}`;

  const started = performance.now();
  let windowStart = started;
  let windowStep = 0;
  try {
    show('training…');
    await model.fit(
      { train, ...(validation && validation.length > 0 ? { validation } : {}) },
      {
        epochs,
        batchSize,
        seed,
        shuffle: setting('shuffle') !== false,
        ...(lookahead > 0 ? { lookahead } : {}),
        // early stopping and augment (random_shift): the train block's (fit reads what its options leave out)
        callbacks: {
          onStep(info) {
            const value = info.values?.[loss];
            if (value !== undefined) progress.losses.push(value);
            progress.step = info.step;
            const now = performance.now();
            // steps/s over the last second or so (the first steps include shader compilation)
            if (now - windowStart > 1000) {
              progress.stepsPerSecond = (info.step - windowStep) / ((now - windowStart) / 1000);
              windowStart = now;
              windowStep = info.step;
            } else if (progress.stepsPerSecond === 0) {
              progress.stepsPerSecond = info.step / Math.max(1e-3, (now - started) / 1000);
            }
            $('step').textContent = `epoch ${info.epoch + 1}/${epochs}, batch ${info.batch + 1}/${info.batches} (step ${info.step})`;
            $('rate').textContent = progress.stepsPerSecond.toFixed(1);
            $('loss-value').textContent = fmt(value);
            chart.schedule();
          },
          onEpochEnd(logs) {
            progress.epochs.push({ ...logs });
            const row = document.createElement('tr');
            for (const text of [String(logs.epoch + 1), fmt(logs[loss]), fmt(logs[`val_${loss}`]), logs.val_accuracy === undefined ? '–' : `${(logs.val_accuracy * 100).toFixed(2)} %`]) {
              const cell = document.createElement('td');
              cell.textContent = text;
              row.append(cell);
            }
            $('epochs').append(row);
          },
        },
      },
    );
    chart.draw();
    progress.seconds.train = (performance.now() - started) / 1000;
    show(`done: ${progress.step} steps in ${progress.seconds.train.toFixed(1)} s`);
  } finally {
    model.dispose();
  }
}

run().then(
  () => {
    progress.done = true;
  },
  (e: unknown) => {
    const message = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
    progress.error = message;
    progress.done = true;
    show('failed');
    const box = $('error');
    box.textContent = message;
    box.hidden = false;
    console.error(e);
  },
);
