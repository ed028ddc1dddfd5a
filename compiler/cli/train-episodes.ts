// `dlc train` and `dlc evaluate` for a train block with `env = cartpole(...)`: policy updates from episodes (runtime/rollouts.ts), with progress lines, atomic checkpoints and --resume; a checkpoint's episode returns.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { CartPole, type Environment } from '../../runtime/cartpole.ts';
import { writeFileAtomic } from '../../runtime/node/checkpoint-file.ts';
import type { ModelProgram, SettingValue } from '../../runtime/program.ts';
import { collectEpisodes, reinforceUpdate } from '../../runtime/rollouts.ts';
import { checkpointPathOf, logsLine, savedCheckpoint, TrainError, type TrainFlags, type TrainIo, withModel } from './train.ts';

/** The train block settings this loop acts on, or that the compiler built into the step. */
const HONOURED = new Set(['env', 'steps', 'seed', 'max_batch', 'checkpoint', 'log_every', 'clip_grad_norm', 'clip_grad_value']);

interface EnvPlan {
  readonly make: (seed: number) => Environment;
  readonly episodes: number;
  readonly gamma: number;
  readonly solvedAt?: number;
}

function envPlan(spec: SettingValue): EnvPlan {
  const call = typeof spec === 'string' ? { call: spec, args: {} as Record<string, SettingValue> } : spec && typeof spec === 'object' && !Array.isArray(spec) && 'call' in spec ? spec : undefined;
  // names and arguments were checked when the train block compiled (E0206, against runtime/catalog.ts)
  if (!call || call.call !== 'cartpole') throw new TrainError(`env must name an environment, e.g. cartpole(episodes: 16); got ${JSON.stringify(spec)}`);
  const number = (key: string, ok: (v: number) => boolean, what: string): number | undefined => {
    const v = call.args[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !ok(v)) throw new TrainError(`${call.call}(${key}: ...) must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const episodes = number('episodes', (v) => Number.isInteger(v) && v >= 1, 'a positive integer') ?? 16;
  const gamma = number('gamma', (v) => v >= 0 && v <= 1, 'a number in [0, 1]') ?? 0.99;
  const maxSteps = number('max_steps', (v) => Number.isInteger(v) && v >= 1, 'a positive integer') ?? 500;
  const solvedAt = number('solved_at', Number.isFinite, 'a number');
  return { make: (seed) => new CartPole(seed, maxSteps), episodes, gamma, ...(solvedAt !== undefined ? { solvedAt } : {}) };
}

/** Train `program` by policy updates on episodes of its `env`; returns the last update's values and mean episode return. */
export async function trainOnEpisodes(program: ModelProgram, file: string, flags: TrainFlags, io: TrainIo): Promise<Record<string, number>> {
  const settings = program.training!.settings;
  const plan = envPlan(settings.env);
  for (const [flag, value] of [['--data', flags.data], ['--limit', flags.limit], ['--epochs', flags.epochs], ['--batch', flags.batch], ['--profile', flags.profile || undefined]] as const) {
    if (value !== undefined) throw new TrainError(`${flag} does not apply: ${program.model} trains from episodes of its env, not from a dataset (use --steps)`);
  }
  const integer = (v: string | SettingValue | undefined, what: string, min: number): number | undefined => {
    if (v === undefined || v === null) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new TrainError(`${what} must be an integer of at least ${min}, got \`${String(v)}\``);
    return n;
  };
  const steps = integer(flags.steps, '--steps', 1) ?? integer(settings.steps, "the train block's steps", 1) ?? 100;
  const seed = integer(flags.seed, '--seed', 0) ?? integer(settings.seed, "the train block's seed", 0) ?? 0;
  const maxBatch = integer(settings.max_batch, "the train block's max_batch", 1) ?? 4096;
  const logEvery = integer(settings.log_every, "the train block's log_every", 1) ?? 10;
  const checkpointPath = checkpointPathOf(program, file, flags);
  const unused = Object.keys(settings).filter((k) => !HONOURED.has(k));
  if (unused.length > 0) io.err(`note: dlc train does not act on ${unused.map((k) => `\`${k}\``).join(', ')} when training from episodes`);

  return withModel(program, { seed, batchSize: maxBatch }, async (model) => {
    let done = 0;
    if (flags.resume) {
      if (!existsSync(checkpointPath)) throw new TrainError(`--resume: no checkpoint at ${checkpointPath}`);
      const report = await model.loadWeights(new Uint8Array(await readFile(checkpointPath)));
      done = Number(report.metadata['dlc.update'] ?? '0');
      io.err(`resumed from ${checkpointPath}: ${done} updates done`);
    }
    io.err(`training ${program.model} on ${model.adapterInfo}: ${steps} policy updates of ${plan.episodes} episodes each (gamma ${plan.gamma})`);
    const save = async (update: number) => writeFileAtomic(checkpointPath, await model.saveWeights({ metadata: { 'dlc.update': String(update) } }));
    const bar = io.tty && flags.progress !== false ? new cliProgress.SingleBar({ format: 'update {value}/{total} |{bar}| episode return {ret} | ETA {eta_formatted}', hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(steps, done, { ret: '-' });
    const start = Date.now();
    let last: Record<string, number> = {};
    for (let update = done; update < steps; update++) {
      // each update's episodes have seeds of their own, so a resumed run continues the sequence
      const envs = Array.from({ length: plan.episodes }, (_, i) => plan.make(seed * 1_000_003 + update * plan.episodes + i));
      const r = await reinforceUpdate(model, envs, { gamma: plan.gamma, maxBatch, seed: seed + update });
      last = { ...r.values, episode_return: r.meanReturn };
      bar?.update(update + 1, { ret: r.meanReturn.toFixed(1) });
      const solved = plan.solvedAt !== undefined && r.meanReturn >= plan.solvedAt;
      if ((update + 1) % logEvery === 0 || update + 1 === steps || solved) {
        if (!bar) io.out(`update ${update + 1}/${steps}  episode_return ${r.meanReturn.toFixed(1)}  ${logsLine(r.values)}  (${((Date.now() - start) / 1000).toFixed(1)}s)`);
        await save(update + 1);
      }
      if (solved) {
        bar?.stop();
        io.out(`solved: mean episode return ${r.meanReturn.toFixed(1)} >= ${plan.solvedAt} after ${update + 1} updates`);
        break;
      }
    }
    bar?.stop();
    io.err(`checkpoint: ${checkpointPath}`);
    return last;
  });
}

/**
 * A checkpoint's policy on fresh episodes of its `env` (seeds no training update used): acting through
 * `greedy_action` where the model declares it (else `sampled_action`); prints and returns the mean,
 * lowest and highest episode return.
 */
export async function evaluateOnEpisodes(program: ModelProgram, file: string, flags: TrainFlags & { readonly episodes?: string }, io: TrainIo): Promise<Record<string, number>> {
  const settings = program.training!.settings;
  const plan = envPlan(settings.env);
  const episodes = flags.episodes === undefined ? plan.episodes : Number(flags.episodes);
  if (!Number.isInteger(episodes) || episodes < 1) throw new TrainError(`--episodes must be a positive integer, got \`${flags.episodes}\``);
  const path = savedCheckpoint(program, file, flags);
  const greedy = program.outputs.some((o) => o.name === 'greedy_action');
  return withModel(program, { seed: 0, batchSize: episodes }, async (model) => {
    const report = await model.loadWeights(new Uint8Array(await readFile(path)));
    const update = report.metadata['dlc.update'];
    io.err(`evaluating ${path}${update ? ` (after ${update} updates)` : ''} on ${episodes} episodes, acting by ${greedy ? 'greedy_action' : 'sampled_action'}, on ${model.adapterInfo}`);
    // seeds past any a training run of this length draws
    const envs = Array.from({ length: episodes }, (_, i) => plan.make(2 ** 40 + i));
    const run = await collectEpisodes(model, envs, { gamma: plan.gamma, ...(greedy ? { sampledAction: 'greedy_action' } : {}) });
    const returns = run.episodeReturns;
    const metrics = { mean_return: returns.reduce((a, b) => a + b, 0) / returns.length, min_return: Math.min(...returns), max_return: Math.max(...returns) };
    io.out(`episodes ${episodes}  ${logsLine(metrics)}`);
    return metrics;
  });
}
