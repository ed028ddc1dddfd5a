// Policy-gradient training from episodes (REINFORCE): run environments with the model's sampled actions, turn rewards into discounted returns, and take a training step on them; browser-safe.
import { InputError } from './errors.ts';
import { shuffledIndices } from './data.ts';
import type { Environment } from './cartpole.ts';

/**
 * The part of a compiled model the loop drives: predict for acting (asked for the sampled action
 * only, so other outputs may read inputs an environment does not give), a training step for learning.
 * The parameters are `never` so that every generated model, whatever its input names, is one; the
 * loop passes the names `PolicyNames` gives.
 */
export interface PolicyModel {
  predict(inputs: never, options: never): Promise<Record<string, ArrayLike<number>>>;
  trainStep(batch: never): { values(): Promise<Record<string, number>> };
}

/** Which of the model's inputs and outputs play which part (the names examples/reinforce_cartpole.dl uses by default). */
export interface PolicyNames {
  readonly observation?: string;
  readonly action?: string;
  readonly returns?: string;
  /** The output holding one sampled action per row. */
  readonly sampledAction?: string;
}

export interface EpisodeOptions extends PolicyNames {
  /** Discount of future rewards (default 0.99). */
  readonly gamma?: number;
  /** The most steps one batch holds (the model's max_batch); longer collections are subsampled at random. */
  readonly maxBatch?: number;
  /** Seed of the subsampling. */
  readonly seed?: number;
  /** An episode still running after this many steps ends there, as if truncated (default 100,000). */
  readonly maxSteps?: number;
}

export interface Episodes {
  /** The training batch: each step's observation, action and discounted return. */
  readonly batch: { readonly observation: Float32Array; readonly action: Int32Array; readonly returns: Float32Array };
  /** Rows in the batch. */
  readonly steps: number;
  /** Each episode's undiscounted total reward, in environment order. */
  readonly episodeReturns: readonly number[];
}

const DEFAULT_NAMES = { observation: 'observation', action: 'action', returns: 'returns', sampledAction: 'sampled_action' } as const;

/** Discounted returns G_t = r_t + gamma G_{t+1} of one episode's rewards. */
export function discountedReturns(rewards: readonly number[], gamma: number): Float32Array {
  const out = new Float32Array(rewards.length);
  let g = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    g = rewards[t] + gamma * g;
    out[t] = g;
  }
  return out;
}

/**
 * One episode in each environment, run side by side: every step asks the model for actions for all
 * environments still running (one predict call), until each episode ends.
 */
export async function collectEpisodes(model: PolicyModel, envs: readonly Environment[], options: EpisodeOptions = {}): Promise<Episodes> {
  if (envs.length === 0) throw new InputError('collectEpisodes needs at least one environment');
  const names = { ...DEFAULT_NAMES, ...options };
  const gamma = options.gamma ?? 0.99;
  if (!(gamma >= 0 && gamma <= 1)) throw new InputError(`gamma must be in [0, 1], got ${gamma}`);
  const size = envs[0].observationSize;
  const maxSteps = options.maxSteps ?? 100_000;
  if (!(Number.isInteger(maxSteps) && maxSteps >= 1)) throw new InputError(`maxSteps must be a positive integer, got ${maxSteps}`);
  const trace = envs.map(() => ({ observations: [] as Float32Array[], actions: [] as number[], rewards: [] as number[] }));
  const current = envs.map((e) => e.reset());
  let running = envs.map((_, i) => i);
  while (running.length > 0) {
    const observation = new Float32Array(running.length * size);
    running.forEach((i, row) => observation.set(current[i], row * size));
    // only the acting output: another output (a log-prob of `action`) needs inputs acting does not have
    const out = await model.predict({ [names.observation]: observation } as never, { outputs: [names.sampledAction] } as never);
    const sampled = out[names.sampledAction];
    if (!sampled || sampled.length !== running.length) throw new InputError(`the model's output \`${names.sampledAction}\` must hold one action per row`);
    const next: number[] = [];
    running.forEach((i, row) => {
      const action = sampled[row];
      const result = envs[i].step(action);
      trace[i].observations.push(current[i]);
      trace[i].actions.push(action);
      trace[i].rewards.push(result.reward);
      current[i] = result.observation;
      if (!result.terminated && !result.truncated && trace[i].rewards.length < maxSteps) next.push(i);
    });
    running = next;
  }
  let rows = trace.map((t, i) => t.rewards.map((_, step) => [i, step] as const)).flat();
  const maxBatch = options.maxBatch ?? Infinity;
  if (rows.length > maxBatch) {
    // an unbiased subsample keeps the batch within the buffers the model allocated
    const all = rows;
    rows = Array.from(shuffledIndices(all.length, options.seed ?? 0).subarray(0, maxBatch), (k) => all[k]);
  }
  const returns = trace.map((t) => discountedReturns(t.rewards, gamma));
  const batch = { observation: new Float32Array(rows.length * size), action: new Int32Array(rows.length), returns: new Float32Array(rows.length) };
  rows.forEach(([i, step], r) => {
    batch.observation.set(trace[i].observations[step], r * size);
    batch.action[r] = trace[i].actions[step];
    batch.returns[r] = returns[i][step];
  });
  return { batch, steps: rows.length, episodeReturns: trace.map((t) => t.rewards.reduce((a, b) => a + b, 0)) };
}

/** One policy update: collect an episode in each environment, then one training step on all their steps. */
export async function reinforceUpdate(model: PolicyModel, envs: readonly Environment[], options: EpisodeOptions = {}): Promise<{ values: Record<string, number>; meanReturn: number; steps: number }> {
  const names = { ...DEFAULT_NAMES, ...options };
  const episodes = await collectEpisodes(model, envs, options);
  const values = await model.trainStep({ [names.observation]: episodes.batch.observation, [names.action]: episodes.batch.action, [names.returns]: episodes.batch.returns } as never).values();
  const meanReturn = episodes.episodeReturns.reduce((a, b) => a + b, 0) / episodes.episodeReturns.length;
  return { values, meanReturn, steps: episodes.steps };
}
