// Policy-gradient training from episodes (REINFORCE, and actor-critic with GAE(lambda)): run environments with the model's sampled actions, turn rewards into returns and advantages, and take a training step on them; browser-safe.
import { InputError } from './errors.ts';
import { shuffledIndices } from './data.ts';
import { isContinuous, type ContinuousEnvironment, type Environment } from './environment.ts';

/**
 * The part of a compiled model the loop drives: predict for acting (asked for the sampled action, and
 * the value with GAE, only, so other outputs may read inputs an environment does not give), a training
 * step for learning. The parameters are `never` so that every generated model, whatever its input
 * names, is one; the loop passes the names `PolicyNames` gives.
 */
export interface PolicyModel {
  predict(inputs: never, options: never): Promise<Record<string, ArrayLike<number>>>;
  trainStep(batch: never): { values(): Promise<Record<string, number>> };
}

/** Which of the model's inputs and outputs play which part (the names examples/reinforce_cartpole.dl and examples/a2c_pendulum.dl use by default). */
export interface PolicyNames {
  readonly observation?: string;
  readonly action?: string;
  readonly returns?: string;
  /** The input fed each step's GAE advantage (with `gaeLambda`). */
  readonly advantages?: string;
  /** The output holding one sampled action per row: an integer (discrete) or `actionSize` numbers (continuous). */
  readonly sampledAction?: string;
  /** The output holding the learned state value V(s), one per row (with `gaeLambda`). */
  readonly value?: string;
}

export interface EpisodeOptions extends PolicyNames {
  /** Discount of future rewards (default 0.99). */
  readonly gamma?: number;
  /**
   * GAE's lambda in [0, 1]: with it, acting also reads the model's `value` output, `returns` are the
   * value targets A_t + V(s_t), and `advantages` the GAE(gamma, lambda) estimates; a truncated
   * episode bootstraps from the value of the state it was cut off in. Without it, `returns` are the
   * discounted rewards to the episode's end (REINFORCE).
   */
  readonly gaeLambda?: number;
  /** The most steps one batch holds (the model's max_batch); longer collections are subsampled at random. */
  readonly maxBatch?: number;
  /** Seed of the subsampling. */
  readonly seed?: number;
  /** An episode still running after this many steps ends there, truncated (default 100,000). */
  readonly maxSteps?: number;
}

export interface Episodes {
  /**
   * The training batch: each step's observation, action (one integer per row for discrete actions,
   * `actionSize` numbers as sampled, before clipping, for continuous ones), return and, with GAE, advantage.
   */
  readonly batch: { readonly observation: Float32Array; readonly action: Int32Array | Float32Array; readonly returns: Float32Array; readonly advantages?: Float32Array };
  /** Rows in the batch. */
  readonly steps: number;
  /** Each episode's undiscounted total reward, in environment order. */
  readonly episodeReturns: readonly number[];
}

const DEFAULT_NAMES = { observation: 'observation', action: 'action', returns: 'returns', advantages: 'advantages', sampledAction: 'sampled_action', value: 'value' } as const;

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
 * Generalized advantage estimation (Schulman et al. 2016) over one episode: with
 * delta_t = r_t + gamma V(s_{t+1}) - V(s_t), A_t = delta_t + gamma lambda A_{t+1}, and the value target
 * A_t + V(s_t). `values[t]` is V(s_t); `bootstrap` is V of the state after the last step: the value of
 * the state a truncated episode was cut off in, 0 for one that terminated. Computed in float64.
 */
export function gaeAdvantages(rewards: readonly number[], values: ArrayLike<number>, gamma: number, lambda: number, bootstrap: number): { advantages: Float32Array; returns: Float32Array } {
  if (values.length !== rewards.length) throw new InputError(`gaeAdvantages needs one value per reward: ${rewards.length} rewards, ${values.length} values`);
  const advantages = new Float32Array(rewards.length);
  const returns = new Float32Array(rewards.length);
  let next = bootstrap;
  let a = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    a = rewards[t] + gamma * next - values[t] + gamma * lambda * a;
    advantages[t] = a;
    returns[t] = a + values[t];
    next = values[t];
  }
  return { advantages, returns };
}

type AnyEnvironment = Environment | ContinuousEnvironment;

interface Trace {
  readonly observations: Float32Array[];
  /** One integer, or the continuous sample as drawn. */
  readonly actions: (number | Float32Array)[];
  readonly rewards: number[];
  readonly values: number[];
  /** V of the state a truncated episode was cut off in (0 when it terminated, or without GAE). */
  bootstrap: number;
}

/** The continuous action `sample` clipped into `env`'s bounds, to step it with; a non-finite sample is an InputError. */
function clippedAction(env: ContinuousEnvironment, sample: Float32Array, output: string): Float32Array {
  return sample.map((v, i) => {
    if (!Number.isFinite(v)) throw new InputError(`the model's output \`${output}\` sampled the action ${v} (has training diverged?)`);
    return Math.min(env.actionHigh[i], Math.max(env.actionLow[i], v));
  });
}

/**
 * One episode in each environment, run side by side: every step asks the model for actions (and, with
 * GAE, values) for all environments still running (one predict call), until each episode ends; a step
 * that truncates episodes asks once more, for the values of the states they were cut off in.
 */
export async function collectEpisodes(model: PolicyModel, envs: readonly AnyEnvironment[], options: EpisodeOptions = {}): Promise<Episodes> {
  if (envs.length === 0) throw new InputError('collectEpisodes needs at least one environment');
  const names = { ...DEFAULT_NAMES, ...options };
  const gamma = options.gamma ?? 0.99;
  if (!(gamma >= 0 && gamma <= 1)) throw new InputError(`gamma must be in [0, 1], got ${gamma}`);
  const lambda = options.gaeLambda;
  if (lambda !== undefined && !(lambda >= 0 && lambda <= 1)) throw new InputError(`gaeLambda must be in [0, 1], got ${lambda}`);
  const size = envs[0].observationSize;
  const continuous = isContinuous(envs[0]);
  const actionSize = continuous ? (envs[0] as ContinuousEnvironment).actionSize : 1;
  if (envs.some((e) => e.observationSize !== size || isContinuous(e) !== continuous || (isContinuous(e) && e.actionSize !== actionSize))) {
    throw new InputError('collectEpisodes needs environments of one kind: the same observation size and the same actions');
  }
  const maxSteps = options.maxSteps ?? 100_000;
  if (!(Number.isInteger(maxSteps) && maxSteps >= 1)) throw new InputError(`maxSteps must be a positive integer, got ${maxSteps}`);
  const trace: Trace[] = envs.map(() => ({ observations: [], actions: [], rewards: [], values: [], bootstrap: 0 }));
  const current = envs.map((e) => e.reset());
  const rowsOf = (indices: readonly number[], obs: readonly Float32Array[]) => {
    const observation = new Float32Array(indices.length * size);
    indices.forEach((i, row) => observation.set(obs[i], row * size));
    return observation;
  };
  const valuesOf = (out: Record<string, ArrayLike<number>>, rows: number): ArrayLike<number> => {
    const v = out[names.value];
    if (!v || v.length !== rows) throw new InputError(`the model's output \`${names.value}\` must hold one value per row`);
    return v;
  };
  let running = envs.map((_, i) => i);
  while (running.length > 0) {
    // only the acting outputs: another output (a log-prob of `action`) needs inputs acting does not have
    const outputs = lambda === undefined ? [names.sampledAction] : [names.sampledAction, names.value];
    const out = await model.predict({ [names.observation]: rowsOf(running, current) } as never, { outputs } as never);
    const sampled = out[names.sampledAction];
    if (!sampled || sampled.length !== running.length * actionSize) {
      throw new InputError(`the model's output \`${names.sampledAction}\` must hold ${continuous ? `${actionSize} number${actionSize > 1 ? 's' : ''} (one action)` : 'one action'} per row`);
    }
    const values = lambda === undefined ? undefined : valuesOf(out, running.length);
    const next: number[] = [];
    const truncated: number[] = [];
    running.forEach((i, row) => {
      const env = envs[i];
      let action: number | Float32Array;
      let result;
      if (isContinuous(env)) {
        action = Float32Array.from({ length: actionSize }, (_, k) => sampled[row * actionSize + k]);
        result = env.step(clippedAction(env, action, names.sampledAction));
      } else {
        action = sampled[row];
        result = env.step(action);
      }
      const t = trace[i];
      t.observations.push(current[i]);
      t.actions.push(action);
      t.rewards.push(result.reward);
      if (values) t.values.push(values[row]);
      current[i] = result.observation;
      if (result.terminated) return;
      if (result.truncated || t.rewards.length >= maxSteps) truncated.push(i);
      else next.push(i);
    });
    if (lambda !== undefined && truncated.length > 0) {
      // a time limit is not a terminal state: the return goes on past it, estimated by V(s_T)
      const last = valuesOf(await model.predict({ [names.observation]: rowsOf(truncated, current) } as never, { outputs: [names.value] } as never), truncated.length);
      truncated.forEach((i, row) => (trace[i].bootstrap = last[row]));
    }
    running = next;
  }
  let rows = trace.map((t, i) => t.rewards.map((_, step) => [i, step] as const)).flat();
  const maxBatch = options.maxBatch ?? Infinity;
  if (rows.length > maxBatch) {
    // an unbiased subsample keeps the batch within the buffers the model allocated
    const all = rows;
    rows = Array.from(shuffledIndices(all.length, options.seed ?? 0).subarray(0, maxBatch), (k) => all[k]);
  }
  const estimates = trace.map((t) => (lambda === undefined ? { returns: discountedReturns(t.rewards, gamma) } : gaeAdvantages(t.rewards, t.values, gamma, lambda, t.bootstrap)));
  const action = continuous ? new Float32Array(rows.length * actionSize) : new Int32Array(rows.length);
  const batch = { observation: new Float32Array(rows.length * size), action, returns: new Float32Array(rows.length), ...(lambda !== undefined ? { advantages: new Float32Array(rows.length) } : {}) };
  rows.forEach(([i, step], r) => {
    batch.observation.set(trace[i].observations[step], r * size);
    const a = trace[i].actions[step];
    if (typeof a === 'number') action[r] = a;
    else action.set(a, r * actionSize);
    batch.returns[r] = estimates[i].returns[step];
    if (batch.advantages) batch.advantages[r] = (estimates[i] as { advantages: Float32Array }).advantages[step];
  });
  return { batch, steps: rows.length, episodeReturns: trace.map((t) => t.rewards.reduce((a, b) => a + b, 0)) };
}

/**
 * One policy update: collect an episode in each environment, then one training step on all their
 * steps (observation, action and returns, and with `gaeLambda` the advantages).
 */
export async function policyUpdate(model: PolicyModel, envs: readonly AnyEnvironment[], options: EpisodeOptions = {}): Promise<{ values: Record<string, number>; meanReturn: number; steps: number }> {
  const names = { ...DEFAULT_NAMES, ...options };
  const episodes = await collectEpisodes(model, envs, options);
  const { observation, action, returns, advantages } = episodes.batch;
  const batch = { [names.observation]: observation, [names.action]: action, [names.returns]: returns, ...(advantages ? { [names.advantages]: advantages } : {}) };
  const values = await model.trainStep(batch as never).values();
  const meanReturn = episodes.episodeReturns.reduce((a, b) => a + b, 0) / episodes.episodeReturns.length;
  return { values, meanReturn, steps: episodes.steps };
}

/** REINFORCE's update: `policyUpdate` without `gaeLambda` (the name examples and older code use). */
export const reinforceUpdate = policyUpdate;
