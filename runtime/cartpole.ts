// The CartPole balancing task (Barto, Sutton and Anderson 1983, as Gymnasium's CartPole-v1): a seeded environment for policy-gradient examples and tests; browser-safe.
import { InputError } from './errors.ts';
import { Rng } from './data.ts';
import type { Environment, StepResult } from './environment.ts';

export type { Environment, StepResult } from './environment.ts';

const GRAVITY = 9.8;
const CART_MASS = 1.0;
const POLE_MASS = 0.1;
const TOTAL_MASS = CART_MASS + POLE_MASS;
/** Half the pole's length. */
const POLE_HALF = 0.5;
const POLE_MOMENT = POLE_MASS * POLE_HALF;
const FORCE = 10.0;
/** Seconds per step (explicit Euler). */
const TAU = 0.02;
const ANGLE_LIMIT = (12 * 2 * Math.PI) / 360;
const POSITION_LIMIT = 2.4;

/**
 * CartPole-v1: observation [cart position, cart velocity, pole angle, pole angular velocity]; action 0
 * pushes the cart left, 1 right; reward 1 per step while the pole stands; the episode ends when the
 * pole leans past 12 degrees or the cart passes 2.4, or after `maxSteps` (500) steps.
 */
export class CartPole implements Environment {
  readonly observationSize = 4;
  readonly actions = 2;
  private state = [0, 0, 0, 0];
  private steps = 0;
  private readonly rng: Rng;
  readonly maxSteps: number;

  constructor(seed: number, maxSteps = 500) {
    this.rng = new Rng(seed);
    this.maxSteps = maxSteps;
  }

  reset(): Float32Array {
    // each variable uniform in [-0.05, 0.05]
    this.state = this.state.map(() => (this.rng.nextFloat() - 0.5) * 0.1);
    this.steps = 0;
    return Float32Array.from(this.state);
  }

  step(action: number): StepResult {
    if (action !== 0 && action !== 1) throw new InputError(`CartPole actions are 0 (left) and 1 (right), not ${action}`);
    const [x, xDot, theta, thetaDot] = this.state;
    const force = action === 1 ? FORCE : -FORCE;
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    const temp = (force + POLE_MOMENT * thetaDot * thetaDot * sin) / TOTAL_MASS;
    const thetaAcc = (GRAVITY * sin - cos * temp) / (POLE_HALF * (4 / 3 - (POLE_MASS * cos * cos) / TOTAL_MASS));
    const xAcc = temp - (POLE_MOMENT * thetaAcc * cos) / TOTAL_MASS;
    this.state = [x + TAU * xDot, xDot + TAU * xAcc, theta + TAU * thetaDot, thetaDot + TAU * thetaAcc];
    this.steps++;
    const terminated = Math.abs(this.state[0]) > POSITION_LIMIT || Math.abs(this.state[2]) > ANGLE_LIMIT;
    return { observation: Float32Array.from(this.state), reward: 1, terminated, truncated: !terminated && this.steps >= this.maxSteps };
  }
}
