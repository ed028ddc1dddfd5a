// The inverted pendulum swing-up (Gymnasium's Pendulum-v1, the same dynamics and costs): a seeded environment with a continuous torque, for actor-critic examples and tests; browser-safe.
import { InputError } from './errors.ts';
import { Rng } from './data.ts';
import type { ContinuousEnvironment, StepResult } from './environment.ts';

const GRAVITY = 10.0;
const MASS = 1.0;
const LENGTH = 1.0;
/** Seconds per step (semi-implicit Euler: the new velocity moves the angle). */
const DT = 0.05;
const MAX_TORQUE = 2.0;
const MAX_SPEED = 8.0;

/** An angle in [-pi, pi). */
function normalizeAngle(theta: number): number {
  return ((((theta + Math.PI) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) - Math.PI;
}

/**
 * Pendulum-v1: observation [cos theta, sin theta, angular velocity] (theta 0 is upright); the action is
 * one torque, clipped to [-2, 2]; the reward is -(theta^2 + 0.1 thetadot^2 + 0.001 u^2) with theta
 * normalized to [-pi, pi), so 0 at best and about -16.3 at worst per step; the velocity is clipped to
 * [-8, 8]. It never terminates: an episode is truncated after `maxSteps` (200) steps. A reset draws
 * theta uniformly in [-pi, pi] and the velocity in [-1, 1].
 */
export class Pendulum implements ContinuousEnvironment {
  readonly observationSize = 3;
  readonly actionSize = 1;
  readonly actionLow = [-MAX_TORQUE];
  readonly actionHigh = [MAX_TORQUE];
  private theta = 0;
  private thetaDot = 0;
  private steps = 0;
  private readonly rng: Rng;
  readonly maxSteps: number;

  constructor(seed: number, maxSteps = 200) {
    this.rng = new Rng(seed);
    this.maxSteps = maxSteps;
  }

  reset(): Float32Array {
    this.theta = (this.rng.nextFloat() * 2 - 1) * Math.PI;
    this.thetaDot = this.rng.nextFloat() * 2 - 1;
    this.steps = 0;
    return this.observation();
  }

  step(action: Float32Array | readonly number[]): StepResult {
    if (action.length !== 1 || !Number.isFinite(action[0])) throw new InputError(`Pendulum takes one finite torque per step, not [${Array.from(action).join(', ')}]`);
    // as Gymnasium: the torque is clipped, and the cost is of the state before the step
    const u = Math.min(MAX_TORQUE, Math.max(-MAX_TORQUE, action[0]));
    const angle = normalizeAngle(this.theta);
    const cost = angle * angle + 0.1 * this.thetaDot * this.thetaDot + 0.001 * u * u;
    const accel = ((3 * GRAVITY) / (2 * LENGTH)) * Math.sin(this.theta) + (3 / (MASS * LENGTH * LENGTH)) * u;
    this.thetaDot = Math.min(MAX_SPEED, Math.max(-MAX_SPEED, this.thetaDot + accel * DT));
    this.theta += this.thetaDot * DT;
    this.steps++;
    return { observation: this.observation(), reward: -cost, terminated: false, truncated: this.steps >= this.maxSteps };
  }

  private observation(): Float32Array {
    return Float32Array.from([Math.cos(this.theta), Math.sin(this.theta), this.thetaDot]);
  }
}
