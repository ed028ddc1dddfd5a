// Continuous control and actor-critic training from episodes: Pendulum-v1's dynamics, GAE(lambda) against a float64 reference with episode ends and truncation, episodes of a Gaussian policy (clipped when stepping, trained on the sample), the checks of env settings, and `dlc train` improving examples/a2c_pendulum.dl on WebGPU with the checkpoint protections data training has.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pendulum } from '../runtime/pendulum.ts';
import type { ContinuousEnvironment, StepResult } from '../runtime/environment.ts';
import { CartPole } from '../runtime/cartpole.ts';
import { collectEpisodes, gaeAdvantages, policyUpdate, type PolicyModel } from '../runtime/rollouts.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { lockPathOf } from '../compiler/cli/checkpoints.ts';
import { dlc, repoTempDir } from './cli-helpers.ts';

/** Gymnasium's Pendulum-v1 step, written out in float64 from its source: the next (theta, thetadot) and the reward. */
function gymnasiumStep(th: number, thdot: number, torque: number): { th: number; thdot: number; reward: number } {
  const [g, m, l, dt] = [10, 1, 1, 0.05];
  const u = Math.min(2, Math.max(-2, torque));
  const angle = ((((th + Math.PI) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) - Math.PI;
  const costs = angle ** 2 + 0.1 * thdot ** 2 + 0.001 * u ** 2;
  let newthdot = thdot + ((3 * g) / (2 * l) * Math.sin(th) + (3 / (m * l ** 2)) * u) * dt;
  newthdot = Math.min(8, Math.max(-8, newthdot));
  return { th: th + newthdot * dt, thdot: newthdot, reward: -costs };
}

/** Sets a pendulum's private state, as a test of one step from a known state needs. */
const place = (env: Pendulum, theta: number, thetaDot: number) => Object.assign(env as unknown as { theta: number; thetaDot: number }, { theta, thetaDot });

describe('Pendulum', () => {
  it('moves as Gymnasium Pendulum-v1 does: dynamics, torque and speed limits, costs, observation', () => {
    const cases: [number, number, number][] = [
      [1, 0, 0],
      [Math.PI - 0.1, -2, 1.5],
      [-2.5, 7.9, 2], // the speed reaches the limit of 8
      [7, 0.3, 5], // a torque past the limit acts as 2; theta past pi is normalized in the cost
      [0.2, -0.4, -9],
    ];
    for (const [th, thdot, u] of cases) {
      const env = new Pendulum(0);
      env.reset();
      place(env, th, thdot);
      const got = env.step(Float32Array.of(u));
      const want = gymnasiumStep(th, thdot, u);
      expect(got.reward).toBeCloseTo(want.reward, 10);
      expect(Array.from(got.observation)).toEqual(Array.from(Float32Array.of(Math.cos(want.th), Math.sin(want.th), want.thdot)));
      expect(got.terminated).toBe(false);
    }
    // by hand: from theta = 1 at rest, no torque: thetadot' = 15 sin(1) * 0.05, and the cost is theta^2 = 1
    const env = new Pendulum(0);
    env.reset();
    place(env, 1, 0);
    const r = env.step([0]);
    expect(r.reward).toBe(-1);
    expect(r.observation[2]).toBeCloseTo(0.75 * Math.sin(1), 6);
    expect(r.observation[1]).toBeCloseTo(Math.sin(1 + 0.05 * 0.75 * Math.sin(1)), 6);
    // held upright with no speed and no torque: no cost at all
    place(env, 0, 0);
    expect(env.step([0]).reward === 0).toBe(true);
    // the speed never passes 8
    place(env, 0.5, 8);
    expect(env.step([2]).observation[2]).toBe(8);
    expect(() => env.step([Number.NaN])).toThrow(/one finite torque per step/);
    expect(() => env.step([0, 1])).toThrow(/one finite torque per step/);
  });

  it('starts anywhere on the circle with a speed in [-1, 1], seeded, and is truncated (never terminated) after 200 steps', () => {
    const starts = Array.from({ length: 200 }, (_, seed) => new Pendulum(seed).reset());
    for (const o of starts) {
      expect(Math.hypot(o[0], o[1])).toBeCloseTo(1, 6);
      expect(Math.abs(o[2])).toBeLessThanOrEqual(1);
    }
    // both halves of the circle and both directions occur
    expect(starts.some((o) => o[0] < -0.9) && starts.some((o) => o[0] > 0.9) && starts.some((o) => o[2] < -0.5) && starts.some((o) => o[2] > 0.5)).toBe(true);
    expect(Array.from(new Pendulum(7).reset())).toEqual(Array.from(new Pendulum(7).reset()));
    expect(Array.from(new Pendulum(7).reset())).not.toEqual(Array.from(new Pendulum(8).reset()));
    const env = new Pendulum(3);
    env.reset();
    let last: StepResult | undefined;
    let steps = 0;
    do {
      last = env.step([2]);
      steps++;
      expect(last.terminated).toBe(false);
    } while (!last.truncated);
    expect(steps).toBe(200);
    expect(new Pendulum(3, 17).maxSteps).toBe(17);
  });
});

/**
 * The textbook GAE recursion over one flat stream of steps from several episodes (as CleanRL and
 * Stable-Baselines3 loop over a rollout buffer), in float64: an episode's last step bootstraps from
 * V of the state after it when the episode was truncated (a time limit) and from 0 when it terminated,
 * and the advantage does not carry across an episode's end.
 */
function referenceGae(steps: readonly { reward: number; value: number; end?: 'terminated' | 'truncated'; nextValue?: number }[], gamma: number, lambda: number): { advantages: number[]; returns: number[] } {
  const advantages = new Array<number>(steps.length).fill(0);
  let lastGaeLam = 0;
  for (let t = steps.length - 1; t >= 0; t--) {
    const s = steps[t];
    let nextValue: number;
    let nextNonTerminal: number;
    if (s.end === undefined) {
      nextValue = steps[t + 1].value;
      nextNonTerminal = 1;
    } else {
      // the episode ends here: a truncated one's future is V(s_T), a terminated one's is nothing
      nextValue = s.end === 'truncated' ? s.nextValue! : 0;
      nextNonTerminal = 0;
      lastGaeLam = 0;
    }
    const delta = s.reward + gamma * nextValue - s.value;
    lastGaeLam = delta + gamma * lambda * (s.end === undefined ? nextNonTerminal * lastGaeLam : 0);
    advantages[t] = lastGaeLam;
  }
  return { advantages, returns: advantages.map((a, t) => a + steps[t].value) };
}

/** A seeded stream of uniform numbers in [0, 1). */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('GAE(lambda)', () => {
  it('equals the textbook recursion in float64 over episodes that terminate and episodes cut off by a time limit', () => {
    const random = seeded(11);
    for (const [gamma, lambda] of [[0.99, 0.95], [0.9, 0], [0.97, 1], [1, 0.5], [0, 0.9]]) {
      // a stream of episodes of 1 to 30 steps, each ending one way or the other
      const stream: { reward: number; value: number; end?: 'terminated' | 'truncated'; nextValue?: number }[] = [];
      const episodes: { from: number; to: number }[] = [];
      for (let e = 0; e < 12; e++) {
        const length = 1 + Math.floor(random() * 30);
        const from = stream.length;
        for (let t = 0; t < length; t++) stream.push({ reward: random() * 10 - 8, value: random() * 20 - 15 });
        const last = stream[stream.length - 1];
        if (random() < 0.5) last.end = 'terminated';
        else Object.assign(last, { end: 'truncated', nextValue: random() * 20 - 15 });
        episodes.push({ from, to: stream.length });
      }
      const want = referenceGae(stream, gamma, lambda);
      for (const { from, to } of episodes) {
        const steps = stream.slice(from, to);
        const end = steps[steps.length - 1];
        const got = gaeAdvantages(steps.map((s) => s.reward), steps.map((s) => s.value), gamma, lambda, end.end === 'truncated' ? end.nextValue! : 0);
        for (let t = 0; t < steps.length; t++) {
          const scale = Math.max(1, Math.abs(want.advantages[from + t]));
          expect(Math.abs(got.advantages[t] - want.advantages[from + t]) / scale, `gamma ${gamma} lambda ${lambda} step ${from + t}`).toBeLessThan(1e-6);
          expect(Math.abs(got.returns[t] - want.returns[from + t]) / Math.max(1, Math.abs(want.returns[from + t]))).toBeLessThan(1e-6);
        }
      }
    }
  });

  it('is the discounted return less the value at lambda 1, one-step TD error at lambda 0, and bootstraps a truncated episode', () => {
    const rewards = [1, -2, 3];
    const values = [0.5, 0.25, -1];
    // lambda 1, truncated after 3 steps with V(s_3) = 4: returns are r0 + g r1 + g^2 r2 + g^3 V(s_3)
    const g = 0.5;
    const full = gaeAdvantages(rewards, values, g, 1, 4);
    expect(full.returns[0]).toBeCloseTo(1 - 2 * g + 3 * g * g + 4 * g ** 3, 6);
    expect(full.returns[2]).toBeCloseTo(3 + 4 * g, 6);
    expect(full.advantages[1]).toBeCloseTo(-2 + 3 * g + 4 * g * g - 0.25, 6);
    // the same episode terminated: nothing past its end
    expect(gaeAdvantages(rewards, values, g, 1, 0).returns[2]).toBeCloseTo(3, 6);
    // lambda 0: A_t = r_t + g V(s_{t+1}) - V(s_t)
    const td = gaeAdvantages(rewards, values, g, 0, 4);
    expect(Array.from(td.advantages).map((x) => +x.toFixed(6))).toEqual([1 + g * 0.25 - 0.5, -2 + g * -1 - 0.25, 3 + g * 4 + 1]);
    expect(() => gaeAdvantages([1, 2], [0], g, 1, 0)).toThrow(/one value per reward/);
  });
});

/** An environment of one continuous action in [-1, 3] that records the actions it is given and ends as told. */
class ScriptedEnv implements ContinuousEnvironment {
  readonly observationSize = 2;
  readonly actionSize = 1;
  readonly actionLow = [-1];
  readonly actionHigh = [3];
  readonly given: number[] = [];
  private t = 0;
  constructor(
    private readonly id: number,
    private readonly length: number,
    private readonly end: 'terminated' | 'truncated',
  ) {}
  reset(): Float32Array {
    this.t = 0;
    return Float32Array.of(this.id, 0);
  }
  step(action: Float32Array): StepResult {
    this.given.push(action[0]);
    this.t++;
    const over = this.t >= this.length;
    return { observation: Float32Array.of(this.id, this.t), reward: this.id + this.t / 10, terminated: over && this.end === 'terminated', truncated: over && this.end === 'truncated' };
  }
}

/** A Gaussian policy of plain JavaScript in the shape of a compiled model: it samples 10 (t - 2) and values a state at id - t. */
function scriptedGaussian(): PolicyModel & { asked: unknown[] } {
  const asked: unknown[] = [];
  return {
    asked,
    async predict(inputs: { observation: Float32Array }, options: { outputs: readonly string[] }) {
      const obs = inputs.observation;
      const rows = obs.length / 2;
      asked.push([rows, ...options.outputs]);
      const out: Record<string, Float32Array> = { value: Float32Array.from({ length: rows }, (_, r) => obs[r * 2] - obs[r * 2 + 1]) };
      if (options.outputs.includes('sampled_action')) out.sampled_action = Float32Array.from({ length: rows }, (_, r) => 10 * (obs[r * 2 + 1] - 2));
      return out;
    },
    trainStep() {
      throw new Error('not called');
    },
  };
}

describe('episodes with continuous actions and a learned value', () => {
  it('clips actions when stepping, trains on the samples, reads values, and bootstraps only the truncated episodes', async () => {
    const model = scriptedGaussian();
    const envs = [new ScriptedEnv(1, 3, 'truncated'), new ScriptedEnv(2, 5, 'terminated'), new ScriptedEnv(3, 2, 'truncated')];
    const gamma = 0.9;
    const lambda = 0.8;
    const got = await collectEpisodes(model, envs, { gamma, gaeLambda: lambda });
    // each step's actions and values in one call; one more call for the values where episodes were cut off
    expect(model.asked).toEqual([
      [3, 'sampled_action', 'value'],
      [3, 'sampled_action', 'value'],
      [1, 'value'], // the third environment truncated after 2 steps: V(s_2)
      [2, 'sampled_action', 'value'],
      [1, 'value'], // the first after 3
      [1, 'sampled_action', 'value'],
      [1, 'sampled_action', 'value'],
    ]);
    // samples -20, -10, 0, 10, 20: the environments got them clipped to [-1, 3]
    expect(envs[1].given).toEqual([-1, -1, 0, 3, 3]);
    expect(Array.from(got.batch.action)).toEqual([-20, -10, 0, -20, -10, 0, 10, 20, -20, -10]);
    expect(got.batch.action).toBeInstanceOf(Float32Array);
    expect(got.steps).toBe(10);
    // the advantages and returns are GAE's with the values the model gave, bootstrapped from V(s_T) = id - T where truncated
    const expected = envs.flatMap((env, i) => {
      const length = [3, 5, 2][i];
      const id = i + 1;
      const steps = Array.from({ length }, (_, t) => ({ reward: id + (t + 1) / 10, value: id - t }));
      const last = steps[length - 1] as { reward: number; value: number; end?: 'terminated' | 'truncated'; nextValue?: number };
      if (i === 1) last.end = 'terminated';
      else Object.assign(last, { end: 'truncated', nextValue: id - length });
      return steps;
    });
    const want = referenceGae(expected, gamma, lambda);
    want.advantages.forEach((a, r) => expect(got.batch.advantages![r]).toBeCloseTo(a, 5));
    want.returns.forEach((x, r) => expect(got.batch.returns[r]).toBeCloseTo(x, 5));
    expect(got.episodeReturns.map((x) => +x.toFixed(6))).toEqual([3.6, 11.5, 6.3]);
  });

  it('cuts an endless episode at maxSteps and bootstraps it as truncated, and says what is wrong with a model or environments that do not fit', async () => {
    const endless = new ScriptedEnv(1, Infinity, 'terminated');
    const got = await collectEpisodes(scriptedGaussian(), [endless], { gamma: 0.5, gaeLambda: 1, maxSteps: 4 });
    // the fourth state is (1, 4): its value 1 - 4 = -3 is the bootstrap
    const rewards = [1.1, 1.2, 1.3, 1.4];
    expect(got.batch.returns[3]).toBeCloseTo(1.4 + 0.5 * -3, 6);
    expect(got.batch.returns[0]).toBeCloseTo(rewards.reduce((s, r, t) => s + r * 0.5 ** t, 0) + 0.5 ** 4 * -3, 5);
    // without GAE, returns are discounted rewards to the end, and no value is asked for
    const plain = scriptedGaussian();
    const reinforce = await collectEpisodes(plain, [new ScriptedEnv(1, 2, 'truncated')], { gamma: 0.5 });
    expect(reinforce.batch.advantages).toBeUndefined();
    expect(Array.from(reinforce.batch.returns).map((x) => +x.toFixed(6))).toEqual([1.7, 1.2]);
    expect(plain.asked).toEqual([[1, 'sampled_action'], [1, 'sampled_action']]);

    const broken = (out: Record<string, Float32Array>): PolicyModel => ({ predict: async () => out, trainStep: () => ({ values: async () => ({}) }) }) as PolicyModel;
    const env = () => new ScriptedEnv(1, 3, 'truncated');
    await expect(collectEpisodes(broken({ sampled_action: Float32Array.of(Number.NaN), value: Float32Array.of(0) }), [env()], { gaeLambda: 0.9 })).rejects.toThrow('the model\'s output `sampled_action` sampled the action NaN (has training diverged?)');
    await expect(collectEpisodes(broken({ sampled_action: Float32Array.of(1, 2) }), [env()])).rejects.toThrow('`sampled_action` must hold 1 number (one action) per row');
    await expect(collectEpisodes(broken({ sampled_action: Float32Array.of(1) }), [env()], { gaeLambda: 0.9 })).rejects.toThrow('`value` must hold one value per row');
    await expect(collectEpisodes(scriptedGaussian(), [env()], { gaeLambda: 1.5 })).rejects.toThrow('gaeLambda must be in [0, 1], got 1.5');
    await expect(collectEpisodes(scriptedGaussian(), [env(), new CartPole(1)])).rejects.toThrow('environments of one kind');
  });
});

describe('a model trained from pendulum episodes', () => {
  const text = readFileSync('examples/a2c_pendulum.dl', 'utf8');
  const codes = (source: string) => checkSource(source, 'p.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end).slice(0, 9)]);

  it('must declare what the environment feeds and reads, a value with gae_lambda (E0207 at the env setting)', () => {
    expect(codes(text)).toEqual([]);
    // no critic output: GAE has no value to estimate advantages from
    const withoutValue = text.replace('output value: f32[B] = v', 'metric mean_value = mean(v)');
    expect(codes(withoutValue)).toEqual([['E0207', '`pendulum()` needs the model to declare the output `value`: f32[B]', 'pendulum(']]);
    const help = checkSource(withoutValue, 'p.dl').diagnostics[0].help;
    expect(help).toMatch(/gae_lambda makes pendulum\(\) an actor-critic/);
    // without gae_lambda, REINFORCE: no value or advantages needed
    expect(codes(withoutValue.replace(', gae_lambda: 0.95', '').replace('stop_gradient(normalize(advantages))', 'stop_gradient(normalize(returns))').replace('input advantages: f32[B] // GAE(gamma, lambda) advantage of that step\n', ''))).toEqual([]);
    // a discrete action for a continuous environment, and a torque vector of the wrong length
    const discrete = text.replace('output sampled_action: f32[B, 1] = mu + sigma * random_normal(shape(mu))', 'output sampled_action: i32[B] = argmax(mu, axis: -1)');
    expect(codes(discrete)).toEqual([['E0207', '`pendulum()` needs the model to declare the output `sampled_action`: f32[B, 1]; it is i32[B]', 'pendulum(']]);
    expect(checkSource(discrete, 'p.dl').diagnostics[0].help).toMatch(/pendulum's action is 1 number per row/);
    const wide = text.replace('input action: f32[B, 1]', 'input action: f32[B, 2]').replace('let z = (action - mu) / sigma', 'let z = (action[:, :1] - mu) / sigma');
    expect(codes(wide)).toEqual([['E0207', '`pendulum()` needs the model to declare the input `action`: f32[B, 1]; it is f32[B, 2]', 'pendulum(']]);
    const noAdvantages = text.replace('input advantages: f32[B] // GAE(gamma, lambda) advantage of that step\n', '').replace('normalize(advantages)', 'normalize(returns)');
    expect(codes(noAdvantages)).toEqual([['E0207', '`pendulum()` needs the model to declare the input `advantages`: f32[B]', 'pendulum(']]);
    // the value is read while acting, from the observation alone
    const peeking = text.replace('output value: f32[B] = v', 'output value: f32[B] = v + action[:, 0]');
    expect(codes(peeking)).toEqual([['E0207', '`pendulum()` acts through `value` given `observation` alone, but `value` depends on the input `action`', 'pendulum(']]);
    // CartPole with gae_lambda needs a value too
    const cartpole = readFileSync('examples/reinforce_cartpole.dl', 'utf8').replace('gamma: 0.99,', 'gamma: 0.99, gae_lambda: 0.95,');
    expect(codes(cartpole).map((c) => c[1])).toEqual(['`cartpole()` needs the model to declare the input `advantages`: f32[B]', '`cartpole()` needs the model to declare the output `value`: f32[B]']);
  });

  it("checks pendulum(...)'s values when compiling (E0206 at the argument)", () => {
    const at = (args: string) => codes(text.replace(/env = pendulum\([^)]*\)/, `env = pendulum(${args})`));
    expect(at('episodes: 4, gamma: 0.9, gae_lambda: 0.95, max_steps: 100, solved_at: -300')).toEqual([]);
    expect(at('gae_lambda: 1.2')).toEqual([['E0206', "pendulum(gae_lambda: ...) must be GAE's lambda in [0, 1] (0: one-step TD advantages, 1: Monte-Carlo returns less the value), got 1.2", '1.2']]);
    expect(at('gae_lambda: 0.9, solved_at: 5')).toEqual([['E0206', "pendulum(solved_at: 5) can never be reached: every step's reward is at most 0, so an episode returns at most 0", '5']]);
    expect(at('gae_lambda: 0.9, episodes: 0')[0][1]).toBe('pendulum(episodes: ...) must be a positive integer (episodes collected per update), got 0');
    expect(at('gae_lambda: 0.9, torque: 3')).toEqual([['E0206', '`pendulum` has no argument `torque`', 'torque']]);
  });
});

describe('the Gaussian policy of examples/a2c_pendulum.dl on WebGPU', () => {
  it('samples N(mu, sigma) in the model, scores actions by the Gaussian log-density, and trains from pendulum episodes', { timeout: 180_000 }, async () => {
    const source = readFileSync('examples/a2c_pendulum.dl', 'utf8').replace('train PendulumActorCritic {', 'train PendulumActorCritic(hidden: 8) {');
    const program = compileSource(source, 'examples/a2c_pendulum.dl').programs[0];
    const model = await Model.create(program, { device: await getDevice(), seed: 3, batchSize: 1600 });
    try {
      // one state, 1600 times: the samples less the mean, over sigma (1 at the start), are standard normal
      const rows = 1600;
      const observation = new Float32Array(rows * 3);
      for (let r = 0; r < rows; r++) observation.set([0.6, -0.8, 0.5], r * 3);
      const out = await model.predict({ observation }, { outputs: ['sampled_action', 'greedy_action', 'value'] });
      const mu = out.greedy_action[0];
      expect(Math.abs(mu)).toBeLessThan(2);
      const z = Array.from(out.sampled_action, (a) => a - mu);
      const mean = z.reduce((a, b) => a + b, 0) / rows;
      const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / rows);
      expect(Math.abs(mean)).toBeLessThan(0.1);
      expect(Math.abs(sd - 1)).toBeLessThan(0.06);
      expect(z.filter((x) => Math.abs(x) < 1).length / rows).toBeCloseTo(0.6827, 1);
      // the policy loss of four actions with advantages that normalize to +-1: -(lp0 - lp1 + lp2 - lp3) / 4, lp the log-density of N(mu, 1)
      const actions = [mu + 0.3, mu - 1.2, mu + 2.5, mu];
      const logDensity = (a: number) => -0.5 * (a - mu) ** 2 - 0.5 * Math.log(2 * Math.PI);
      const four = new Float32Array(12);
      for (let r = 0; r < 4; r++) four.set([0.6, -0.8, 0.5], r * 3);
      const got = await model.evaluate({ observation: four, action: Float32Array.from(actions), advantages: Float32Array.of(1, -1, 1, -1), returns: new Float32Array(4) });
      const want = -(logDensity(actions[0]) - logDensity(actions[1]) + logDensity(actions[2]) - logDensity(actions[3])) / 4;
      expect(got.policy_loss).toBeCloseTo(want, 4);
      expect(got.std).toBeCloseTo(1, 6);
      // a policy update from real episodes: finite, and the policy's parameters move
      const before = await model.getParameter('log_std');
      const update = await policyUpdate(model, [new Pendulum(1, 30), new Pendulum(2, 30)], { gamma: 0.9, gaeLambda: 0.95 });
      expect(update.steps).toBe(60);
      expect(update.meanReturn).toBeLessThan(0);
      for (const v of Object.values(update.values)) expect(Number.isFinite(v)).toBe(true);
      expect((await model.getParameter('log_std'))[0]).not.toBe(before[0]);
    } finally {
      model.dispose();
    }
  });
});

/** examples/a2c_pendulum.dl with short episodes, a few per update and a small network, written to `dir`: the mechanics of a run in seconds. */
function smallPendulum(dir: string): string {
  const file = join(dir, 'pendulum.dl');
  const text = readFileSync('examples/a2c_pendulum.dl', 'utf8')
    .replace(/env = pendulum\([^)]*\)/, 'env = pendulum(episodes: 2, gamma: 0.9, gae_lambda: 0.95, max_steps: 12)')
    .replace('train PendulumActorCritic {', 'train PendulumActorCritic(hidden: 8) {');
  writeFileSync(file, text);
  return file;
}

/** The tensors of a checkpoint, by name, as plain arrays. */
async function tensorsOf(path: string): Promise<Map<string, number[]>> {
  const { decodeSafetensors } = await import('../runtime/safetensors.ts');
  return new Map([...decodeSafetensors(new Uint8Array(readFileSync(path))).tensors].map(([name, t]) => [name, Array.from(t.data as ArrayLike<number>)]));
}

describe('dlc train from pendulum episodes', () => {
  it('improves the mean episode return of examples/a2c_pendulum.dl on WebGPU, over its initial policy', { timeout: 600_000 }, async () => {
    const dir = repoTempDir('pendulum-train');
    const file = join(dir, 'a2c_pendulum.dl');
    // the example as it is, logging every update
    writeFileSync(file, readFileSync('examples/a2c_pendulum.dl', 'utf8').replace('  seed = 0\n', '  seed = 0\n  log_every = 1\n'));
    const r = await dlc('train', file, '--steps', '50', '--checkpoint', join(dir, 'p.safetensors'), '--no-progress');
    expect(r.status, r.err).toBe(EXIT_OK);
    const returns = [...r.out.matchAll(/^update (\d+)\/50 {2}episode_return (\S+)/gm)].map((m) => Number(m[2]));
    expect(returns.length).toBe(50);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(returns.slice(0, 10));
    const last = mean(returns.slice(-10));
    console.log(`a2c_pendulum: mean episode return over updates 1-10 ${first.toFixed(0)}, 41-50 ${last.toFixed(0)}; every update: ${returns.map((x) => x.toFixed(0)).join(' ')}`);
    // 32 episodes per update: the first policies' mean return is about -1,550 (on lavapipe, seed 0: -1,539, then -1,261 over the last 10)
    expect(first).toBeLessThan(-1400);
    expect(last, `updates 1-10: ${first}, 41-50: ${last}`).toBeGreaterThan(first + 150);
  });

  it('locks the checkpoint, keeps earlier runs by generation, and resumes exactly where a run stopped', { timeout: 300_000 }, async () => {
    const dir = repoTempDir('pendulum-ck');
    const file = smallPendulum(dir);
    const ck = join(dir, 'ck', 'p.safetensors');
    const train = (...args: string[]) => dlc('train', file, '--checkpoint', ck, '--no-progress', ...args);

    // a live run holds the lock: refused before anything trains
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'ck'));
    writeFileSync(lockPathOf(ck), JSON.stringify({ pid: process.pid, host: hostname(), started: '2025-01-01T00:00:00.000Z' }));
    const locked = await train('--steps', '2');
    expect(locked.status).toBe(EXIT_USER_ERROR);
    expect(locked.err).toContain(`another dlc train (pid ${process.pid}, started 2025-01-01T00:00:00.000Z) is writing the checkpoint ${ck}`);
    expect(existsSync(ck)).toBe(false);
    const { unlinkSync } = await import('node:fs');
    unlinkSync(lockPathOf(ck));

    // --resume before any checkpoint: a new run, with a note
    const first = await train('--steps', '2', '--resume');
    expect(first.status, first.err).toBe(EXIT_OK);
    expect(first.err).toContain(`note: --resume: no checkpoint at ${ck} yet, so this is a new run`);
    expect(first.err).toContain('2 policy updates of 2 episodes each (actor-critic: gamma 0.9, GAE lambda 0.95)');
    expect(first.out).toMatch(/^update 2\/2 {2}episode_return -\d+\.\d {2}loss \S+ {2}policy_loss \S+ {2}value_loss \S+ {2}std \S+/m);
    expect(existsSync(lockPathOf(ck))).toBe(false);
    const { checkpointMetadata } = await import('../compiler/cli/train.ts');
    expect(checkpointMetadata(ck)['dlc.update']).toBe('2');

    // finished: --resume says how to train more
    const done = await train('--steps', '2', '--resume');
    expect(done.status).toBe(EXIT_USER_ERROR);
    expect(done.err).toContain(`--resume: ${ck} already took 2 policy updates (steps = 2); pass --steps 3 or more to train more`);

    // resumed for a third update: the same weights, optimizer state and random key as three updates in one run
    const resumed = await train('--steps', '3', '--resume');
    expect(resumed.status, resumed.err).toBe(EXIT_OK);
    expect(resumed.err).toContain(`resumed from ${ck}: 2 updates done`);
    const afterResume = await tensorsOf(ck);

    // a new run moves the earlier one aside, and the one before that back a generation
    const straight = await train('--steps', '3');
    expect(straight.status, straight.err).toBe(EXIT_OK);
    const previous = ck.replace(/\.safetensors$/, '.previous.safetensors');
    expect(straight.err).toContain(`note: ${ck} held an earlier run; it is kept as ${previous}. To continue a run instead, use --resume`);
    expect(await tensorsOf(ck)).toEqual(afterResume);
    expect(await tensorsOf(previous)).toEqual(afterResume);
    const again = await train('--steps', '1');
    expect(again.status, again.err).toBe(EXIT_OK);
    expect(again.err).toContain('The run kept before it moved back a generation (*.previous-2.safetensors)');
    expect(existsSync(ck.replace(/\.safetensors$/, '.previous-2.safetensors'))).toBe(true);
    expect(checkpointMetadata(ck)['dlc.update']).toBe('1');

    // --resume with the checkpoint moved away but an earlier run kept: refused, saying where it is
    const { renameSync } = await import('node:fs');
    renameSync(ck, join(dir, 'elsewhere.safetensors'));
    const lost = await train('--steps', '4', '--resume');
    expect(lost.status).toBe(EXIT_USER_ERROR);
    expect(lost.err).toContain(`--resume: no checkpoint at ${ck}, but an earlier run is kept as ${previous} (3 updates)`);

    // dlc evaluate acts by the policy's mean (greedy_action), on fresh episodes
    const evaluated = await dlc('evaluate', file, '--checkpoint', previous, '--episodes', '3');
    expect(evaluated.status, evaluated.err).toBe(EXIT_OK);
    expect(evaluated.err).toContain('(after 3 updates) on 3 episodes, acting by greedy_action');
    expect(evaluated.out).toMatch(/^episodes 3 {2}mean_return -\d+\.\d+ {2}min_return -\S+ {2}max_return -\S+/m);
  });
});
