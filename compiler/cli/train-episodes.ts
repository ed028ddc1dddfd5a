// `dlc train` and `dlc evaluate` for a train block with `env = cartpole(...)` or `pendulum(...)`: policy updates from episodes (runtime/rollouts.ts), REINFORCE or actor-critic with GAE, with progress lines and the checkpoint protections data training has (a lock, earlier runs moved aside, atomic saves, --resume); a checkpoint's episode returns.
import { existsSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { CartPole } from '../../runtime/cartpole.ts';
import { ENVIRONMENT_LIMITS } from '../../runtime/catalog.ts';
import type { ContinuousEnvironment, Environment } from '../../runtime/environment.ts';
import { writeFileAtomic } from '../../runtime/node/checkpoint-file.ts';
import { Pendulum } from '../../runtime/pendulum.ts';
import type { ModelProgram, SettingValue } from '../../runtime/program.ts';
import { collectEpisodes, policyUpdate } from '../../runtime/rollouts.ts';
import { decodeSafetensorsMetadata } from '../../runtime/safetensors.ts';
import { CheckpointError, checkpointPlan, keptGenerations, loadCheckpoint, moveEarlierRun, openCheckpointFolder, refuseIfLocked } from './checkpoints.ts';
import { readWeightsFile } from './init-from.ts';
import { checkpointMetadata, checkpointPathOf, logsLine, savedCheckpoint, TrainError, type TrainFlags, type TrainIo, withModel } from './train.ts';

/** The train block settings this loop acts on, or that the compiler built into the step. */
const HONOURED = new Set(['env', 'steps', 'seed', 'max_batch', 'checkpoint', 'log_every', 'clip_grad_norm', 'clip_grad_value']);

/** The environments `env` may name (runtime/catalog.ts lists their arguments), made with a seed and a step limit. */
const MAKERS: Readonly<Record<string, (seed: number, maxSteps: number) => Environment | ContinuousEnvironment>> = {
  cartpole: (seed, maxSteps) => new CartPole(seed, maxSteps),
  pendulum: (seed, maxSteps) => new Pendulum(seed, maxSteps),
};

interface EnvPlan {
  readonly make: (seed: number) => Environment | ContinuousEnvironment;
  readonly episodes: number;
  readonly gamma: number;
  readonly gaeLambda?: number;
  readonly solvedAt?: number;
}

function envPlan(spec: SettingValue): EnvPlan {
  const call = typeof spec === 'string' ? { call: spec, args: {} as Record<string, SettingValue> } : spec && typeof spec === 'object' && !Array.isArray(spec) && 'call' in spec ? spec : undefined;
  // names and arguments were checked when the train block compiled (E0206, against runtime/catalog.ts)
  const make = call && Object.hasOwn(MAKERS, call.call) ? MAKERS[call.call] : undefined;
  if (!call || !make) throw new TrainError(`env must name an environment, e.g. cartpole(episodes: 16) or pendulum(episodes: 8, gae_lambda: 0.95); got ${JSON.stringify(spec)}`);
  const number = (key: string, ok: (v: number) => boolean, what: string): number | undefined => {
    const v = call.args[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !ok(v)) throw new TrainError(`${call.call}(${key}: ...) must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const episodes = number('episodes', (v) => Number.isInteger(v) && v >= 1, 'a positive integer') ?? 16;
  const gamma = number('gamma', (v) => v >= 0 && v <= 1, 'a number in [0, 1]') ?? 0.99;
  const gaeLambda = number('gae_lambda', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  const maxSteps = number('max_steps', (v) => Number.isInteger(v) && v >= 1, 'a positive integer') ?? ENVIRONMENT_LIMITS[call.call].maxSteps;
  const solvedAt = number('solved_at', Number.isFinite, 'a number');
  return { make: (seed) => make(seed, maxSteps), episodes, gamma, ...(gaeLambda !== undefined ? { gaeLambda } : {}), ...(solvedAt !== undefined ? { solvedAt } : {}) };
}

/** The updates a checkpoint records as done (`dlc.update`); a value that is no count is refused, as data training refuses an epoch that is none. */
function updatesDone(path: string, metadata: Readonly<Record<string, string>>): number {
  const text = metadata['dlc.update'] ?? '0';
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new CheckpointError(`--resume: ${path} records its updates as ${JSON.stringify(text)}, not a count of policy updates (a damaged or hand-edited file?); copy a whole copy over it, or start a new run`);
  }
  return Number(text);
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
  const checkpoint = checkpointPlan(checkpointPathOf(program, file, flags), {}, undefined);
  const path = checkpoint.path;
  // a run that is writing the checkpoint is named first: what it is rewriting says nothing yet
  refuseIfLocked(path);
  let resume = flags.resume === true;
  if (resume && !existsSync(path)) {
    // --resume before any checkpoint exists (a retry wrapper's first try): a new run, unless an earlier run was moved aside
    const previous = keptGenerations(path).get(1)?.find((f) => f.endsWith(path.replace(/^.*[\\/]/, '').replace(/(\.safetensors)?$/, '.previous.safetensors')));
    if (previous !== undefined) {
      const update = checkpointMetadata(previous)['dlc.update'];
      throw new TrainError(`--resume: no checkpoint at ${path}, but an earlier run is kept as ${previous}${update ? ` (${update} updates)` : ''}: rename it back to ${path} to resume it, or run without --resume to start a new run`);
    }
    io.err(`note: --resume: no checkpoint at ${path} yet, so this is a new run`);
    resume = false;
  }
  if (resume) {
    // refused before anything is locked or made: a weights-only file, one whose count is damaged, a finished run
    let head: Record<string, string> = {};
    try {
      head = decodeSafetensorsMetadata(await readWeightsFile(path));
    } catch {
      // loadCheckpoint says what is wrong with the file
    }
    if (head['dlc.format'] === 'weights') {
      throw new CheckpointError(`--resume: ${path} is a weights-only file (no optimizer state, step or random key; dlc weights writes these): it cannot continue a run. Resume from the training checkpoint, or start a new run`);
    }
    const done = updatesDone(path, head);
    if (done >= steps) throw new TrainError(`--resume: ${path} already took ${done} policy updates (steps = ${steps}); pass --steps ${done + 1} or more to train more`);
  }
  const unused = Object.keys(settings).filter((k) => !HONOURED.has(k));
  if (unused.length > 0) io.err(`note: dlc train does not act on ${unused.map((k) => `\`${k}\``).join(', ')} when training from episodes`);

  // the folder is writable, the checkpoint locked against a second run, stale temporary files gone, before anything moves or trains
  const release = openCheckpointFolder(checkpoint, io.err);
  try {
    if (!resume) {
      const generations = keptGenerations(path).size;
      const moved = moveEarlierRun(checkpoint);
      if (moved.length > 0) {
        const older = generations > 0 ? ` The ${generations === 1 ? 'run' : `${generations} runs`} kept before it moved back a generation (*.previous-2.safetensors${generations > 1 ? ', ...' : ''}); delete those you no longer need.` : '';
        io.err(`note: ${path} held an earlier run; it is kept as ${moved[0]}.${older} To continue a run instead, use --resume`);
      }
    }
    return await withModel(program, { seed, batchSize: maxBatch }, async (model) => {
      let done = 0;
      if (resume) {
        done = updatesDone(path, (await loadCheckpoint(model, path, io.err, true)).metadata);
        io.err(`resumed from ${path}: ${done} updates done`);
      }
      const method = plan.gaeLambda === undefined ? `gamma ${plan.gamma}` : `actor-critic: gamma ${plan.gamma}, GAE lambda ${plan.gaeLambda}`;
      io.err(`training ${program.model} on ${model.adapterInfo}: ${steps} policy updates of ${plan.episodes} episodes each (${method})`);
      const save = async (update: number) => writeFileAtomic(path, await model.saveWeights({ metadata: { 'dlc.update': String(update) } }));
      const bar = io.tty && flags.progress !== false ? new cliProgress.SingleBar({ format: 'update {value}/{total} |{bar}| episode return {ret} | ETA {eta_formatted}', hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
      // Ctrl-C: say what is saved and how to go on (saves are atomic, so the last one is whole)
      const onInterrupt = () => {
        bar?.stop();
        const saved = existsSync(path) ? checkpointMetadata(path)['dlc.update'] : undefined;
        io.err(`interrupted: ${saved ? `${path} holds ${saved} updates; continue with --resume` : 'no checkpoint was saved yet'}`);
        release();
        process.exit(130);
      };
      process.once('SIGINT', onInterrupt);
      try {
        bar?.start(steps, done, { ret: '-' });
        const start = Date.now();
        let last: Record<string, number> = {};
        for (let update = done; update < steps; update++) {
          // each update's episodes have seeds of their own, so a resumed run continues the sequence
          const envs = Array.from({ length: plan.episodes }, (_, i) => plan.make(seed * 1_000_003 + update * plan.episodes + i));
          const r = await policyUpdate(model, envs, { gamma: plan.gamma, ...(plan.gaeLambda !== undefined ? { gaeLambda: plan.gaeLambda } : {}), maxBatch, seed: seed + update });
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
        io.err(`checkpoint: ${path}`);
        return last;
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    });
  } finally {
    release();
  }
}

/**
 * A checkpoint's policy on fresh episodes of its `env` (seeds no training update used): acting through
 * `greedy_action` where the model declares it (the most likely action, or a Gaussian policy's mean;
 * else `sampled_action`); prints and returns the mean, lowest and highest episode return.
 */
export async function evaluateOnEpisodes(program: ModelProgram, file: string, flags: TrainFlags & { readonly episodes?: string }, io: TrainIo): Promise<Record<string, number>> {
  const settings = program.training!.settings;
  const plan = envPlan(settings.env);
  const episodes = flags.episodes === undefined ? plan.episodes : Number(flags.episodes);
  if (!Number.isInteger(episodes) || episodes < 1) throw new TrainError(`--episodes must be a positive integer, got \`${flags.episodes}\``);
  const path = savedCheckpoint(program, file, flags);
  const greedy = program.outputs.some((o) => o.name === 'greedy_action');
  return withModel(program, { seed: 0, batchSize: episodes }, async (model) => {
    const report = await loadCheckpoint(model, path, io.err);
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
