// What the episode loop (rollouts.ts) needs of an environment: discrete actions (one integer) or continuous ones (a vector within bounds); browser-safe.

export interface StepResult {
  readonly observation: Float32Array;
  readonly reward: number;
  /** The episode reached a terminal state (the pole fell): nothing follows, its value is 0. */
  readonly terminated: boolean;
  /** The episode was cut off at its step limit: the state has a value, which a learned baseline bootstraps from. */
  readonly truncated: boolean;
}

/** An environment with discrete actions `0 .. actions - 1` (CartPole). */
export interface Environment {
  readonly observationSize: number;
  readonly actions: number;
  reset(): Float32Array;
  step(action: number): StepResult;
}

/**
 * An environment with continuous actions: `actionSize` numbers per step, each within
 * [`actionLow[i]`, `actionHigh[i]`] (Pendulum's torque). The episode loop clips a sampled action into
 * these bounds before `step`, and trains on the sample as drawn.
 */
export interface ContinuousEnvironment {
  readonly observationSize: number;
  readonly actionSize: number;
  readonly actionLow: readonly number[];
  readonly actionHigh: readonly number[];
  reset(): Float32Array;
  step(action: Float32Array): StepResult;
}

/** Whether `env` takes continuous actions. */
export function isContinuous(env: Environment | ContinuousEnvironment): env is ContinuousEnvironment {
  return 'actionSize' in env;
}
