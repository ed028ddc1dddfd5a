// Training from episodes: the CartPole environment's dynamics and limits, discounted returns, batches of episodes, and `dlc train` solving examples/reinforce_cartpole.dl on WebGPU.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CartPole } from '../runtime/cartpole.ts';
import { collectEpisodes, discountedReturns, reinforceUpdate, type PolicyModel } from '../runtime/rollouts.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { dlc, repoTempDir } from './cli-helpers.ts';

/** Runs `policy` from a reset until the episode ends; the steps taken and how it ended. */
function episode(env: CartPole, policy: (obs: Float32Array) => number): { steps: number; terminated: boolean; truncated: boolean; last: Float32Array } {
  let obs = env.reset();
  for (let steps = 1; ; steps++) {
    const r = env.step(policy(obs));
    obs = r.observation;
    if (r.terminated || r.truncated) return { steps, terminated: r.terminated, truncated: r.truncated, last: obs };
  }
}

/** A policy of plain JavaScript in the shape of a compiled model: pushes toward the side the pole leans to. */
function scriptedModel(): PolicyModel & { calls: number[]; asked: unknown[] } {
  const calls: number[] = [];
  const asked: unknown[] = [];
  return {
    calls,
    asked,
    async predict(inputs: { observation: Float32Array }, options: { outputs?: readonly string[] }) {
      const obs = inputs.observation;
      const rows = obs.length / 4;
      calls.push(rows);
      asked.push(options.outputs);
      return { sampled_action: Int32Array.from({ length: rows }, (_, r) => (obs[r * 4 + 2] + 0.5 * obs[r * 4 + 3] > 0 ? 1 : 0)) };
    },
    trainStep() {
      throw new Error('not called');
    },
  };
}

describe('CartPole', () => {
  it('starts near upright, falls under a constant push, and ends at 12 degrees or 2.4 units', () => {
    const env = new CartPole(3);
    const start = env.reset();
    for (const v of start) expect(Math.abs(v)).toBeLessThanOrEqual(0.05);
    const pushed = episode(env, () => 1);
    expect(pushed.terminated).toBe(true);
    expect(pushed.steps).toBeGreaterThan(5);
    expect(pushed.steps).toBeLessThan(60);
    // pushing right tips the pole left (negative angle) past the limit
    expect(pushed.last[2]).toBeLessThan(-(12 * Math.PI) / 180);
    expect(() => env.step(2)).toThrow(/actions are 0 \(left\) and 1 \(right\)/);
  });

  it('moves as the equations of motion say: one step from rest with a push to the right', () => {
    const env = new CartPole(0);
    env.reset();
    // from a known state: reach into the private state through a fresh episode with a zero start
    (env as unknown as { state: number[] }).state = [0, 0, 0, 0];
    const r = env.step(1);
    // from rest and upright: theta'' = -F / (M l (4/3 - m / M)) = -10 / (1.1 * 0.5 * (4/3 - 0.1/1.1)), x'' = F/M - m l theta'' / M
    const thetaAcc = -10 / (1.1 * 0.5 * (4 / 3 - 0.1 / 1.1));
    const xAcc = 10 / 1.1 - (0.05 * thetaAcc) / 1.1;
    expect(r.observation[0]).toBe(0); // Euler: the position moves with the old velocity
    expect(r.observation[1]).toBeCloseTo(0.02 * xAcc, 6);
    expect(r.observation[2]).toBe(0);
    expect(r.observation[3]).toBeCloseTo(0.02 * thetaAcc, 6);
  });

  it('a balancing controller lasts until the step limit, which truncates rather than terminates', () => {
    const balanced = episode(new CartPole(5, 300), (o) => (o[2] + 0.5 * o[3] > 0 ? 1 : 0));
    expect(balanced).toMatchObject({ steps: 300, terminated: false, truncated: true });
  });

  it('is the same episode for the same seed', () => {
    const actions = (seed: number) => {
      const env = new CartPole(seed);
      return [...env.reset()];
    };
    expect(actions(9)).toEqual(actions(9));
    expect(actions(9)).not.toEqual(actions(10));
  });
});

describe('episodes', () => {
  it('discounted returns sum the rewards ahead', () => {
    expect(Array.from(discountedReturns([1, 1, 1], 0.5))).toEqual([1.75, 1.5, 1]);
    expect(Array.from(discountedReturns([0, 0, 2], 1))).toEqual([2, 2, 2]);
  });

  it('runs every environment to its end, one predict call per step for those still running, and batches each step', async () => {
    const model = scriptedModel();
    const envs = [new CartPole(1, 40), new CartPole(2, 25), new CartPole(3, 60)];
    const got = await collectEpisodes(model, envs, { gamma: 0.9 });
    // the controller balances, so each episode runs to its own step limit
    expect(got.episodeReturns).toEqual([40, 25, 60]);
    expect(got.steps).toBe(125);
    expect(model.calls.slice(0, 25).every((n) => n === 3)).toBe(true);
    expect(model.calls[25]).toBe(2);
    expect(model.calls.length).toBe(60);
    // acting asks for the sampled action alone
    expect(model.asked.every((o) => JSON.stringify(o) === '["sampled_action"]')).toBe(true);
    // the first row is the first environment's first step: its return is the discounted 40 rewards
    expect(got.batch.returns[0]).toBeCloseTo((1 - 0.9 ** 40) / (1 - 0.9), 4);
    expect(got.batch.returns[39]).toBeCloseTo(1, 6);
    expect(got.batch.observation.length).toBe(125 * 4);
  });

  it('ends an episode that never ends by itself at maxSteps', async () => {
    const endless = { observationSize: 4, actions: 2, reset: () => new Float32Array(4), step: () => ({ observation: new Float32Array(4), reward: 2, terminated: false, truncated: false }) };
    const got = await collectEpisodes(scriptedModel(), [endless, new CartPole(1, 10)], { maxSteps: 25 });
    expect(got.episodeReturns).toEqual([50, 10]);
    await expect(collectEpisodes(scriptedModel(), [endless], { maxSteps: 0 })).rejects.toThrow(/maxSteps must be a positive integer/);
  });

  it('subsamples a collection longer than max_batch', async () => {
    const got = await collectEpisodes(scriptedModel(), [new CartPole(1, 50), new CartPole(2, 50)], { maxBatch: 32, seed: 4 });
    expect(got.steps).toBe(32);
    expect(got.batch.action.length).toBe(32);
    expect(got.episodeReturns).toEqual([50, 50]);
  });
});

describe('a model trained from episodes', () => {
  it('must declare what the environment feeds and reads (E0207 at the env setting)', () => {
    const text = readFileSync('examples/reinforce_cartpole.dl', 'utf8');
    expect(checkSource(text, 'examples/reinforce_cartpole.dl').diagnostics).toEqual([]);
    const changed = text
      .replace('input observation: f32[B, 4]', 'input observation: f32[B, 3]')
      .replace('Policy(4, hidden, 2)', 'Policy(3, hidden, 2)')
      .replace('output sampled_action: i32[B] = categorical(logits)', 'output sampled = categorical(logits)');
    const diagnostics = checkSource(changed, 'p.dl').diagnostics;
    expect(diagnostics.map((d) => [d.code, d.message, changed.slice(d.span.start, d.span.end).slice(0, 9)])).toEqual([
      ['E0207', '`cartpole()` needs the model to declare the input `observation`: f32[B, 4]; it is f32[B, 3]', 'cartpole('],
      ['E0207', '`cartpole()` needs the model to declare the output `sampled_action`: i32[B]', 'cartpole('],
    ]);
  });
});

describe('a policy with outputs and inputs acting does not use', () => {
  const text = readFileSync('examples/reinforce_cartpole.dl', 'utf8');
  const codes = (source: string) => checkSource(source, 'p.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end).slice(0, 9)]);

  it('checks: sampled_action may read only the observation, the losses only what episodes record (E0207 at env)', () => {
    // an output that reads `action` (a logged log-prob) is fine: acting asks for sampled_action alone
    expect(codes(text.replace('output greedy_action', 'output taken_logp = taken\n  output greedy_action'))).toEqual([]);
    const tempered = text
      .replace('input returns: f32[B]', 'input returns: f32[B]\n  input temperature: f32[]')
      .replace('output sampled_action: i32[B] = categorical(logits)', 'output sampled_action: i32[B] = categorical(logits / temperature)');
    expect(codes(tempered)).toEqual([['E0207', '`cartpole()` acts through `sampled_action` given `observation` alone, but `sampled_action` depends on the input `temperature`', 'cartpole(']]);
    const ppo = text.replace('input returns: f32[B]', 'input returns: f32[B]\n  input old_logp: f32[B]').replace('-mean(taken * advantage)', '-mean(exp(taken - old_logp) * advantage)');
    expect(codes(ppo)).toEqual([['E0207', '`cartpole()` episodes give `observation`, `action` and `returns`, but the model\'s losses and metrics also read the input `old_logp`', 'cartpole(']]);
  });

  it("checks cartpole(...)'s values when compiling (E0206 at the argument)", () => {
    const withEnv = (args: string) => text.replace(/env = cartpole\([^)]*\)/, `env = cartpole(${args})`);
    const at = (args: string) => codes(withEnv(args)).map(([code, message, span]) => [code, message, span]);
    expect(at('episodes: 16, gamma: 0.99, solved_at: 475')).toEqual([]);
    expect(at('gamma: 1.5')).toEqual([['E0206', 'cartpole(gamma: ...) must be a discount in [0, 1], got 1.5', '1.5']]);
    expect(at('episodes: 0')).toEqual([['E0206', 'cartpole(episodes: ...) must be a positive integer (episodes collected per update), got 0', '0']]);
    expect(at('episodes: 2.5')[0].slice(1)).toEqual(['cartpole(episodes: ...) must be a positive integer (episodes collected per update), got 2.5', '2.5']);
    expect(at('episodes: "many"')[0].slice(1)).toEqual(['cartpole(episodes: ...) must be a positive integer (episodes collected per update), got "many"', '"many"']);
    expect(at('max_steps: 0')[0][1]).toMatch(/^cartpole\(max_steps: \.\.\.\) must be a positive integer/);
    expect(at('max_steps: 100, solved_at: 475')).toEqual([['E0206', 'cartpole(solved_at: 475) can never be reached: an episode ends after max_steps = 100 steps, with a return of at most 100', '475']]);
    // the default max_steps is 500
    expect(at('solved_at: 501')[0][1]).toMatch(/max_steps = 500/);
  });

  it('on WebGPU, collects episodes and trains with an output that reads `action`', { timeout: 120_000 }, async () => {
    const source = text.replace('output greedy_action', 'output taken_logp = taken\n  output greedy_action');
    const program = compileSource(source, 'p.dl').programs[0];
    const model = await Model.create(program, { device: await getDevice(), seed: 2, batchSize: 64 });
    try {
      const got = await reinforceUpdate(model, [new CartPole(1, 20), new CartPole(2, 20)], { maxBatch: 40 });
      expect(got.steps).toBeGreaterThan(2);
      expect(Number.isFinite(got.values.loss)).toBe(true);
    } finally {
      model.dispose();
    }
  });
});

describe('dlc train from episodes', () => {
  it('solves CartPole with examples/reinforce_cartpole.dl on WebGPU, saving checkpoints it can resume from', { timeout: 300_000 }, async () => {
    const dir = repoTempDir('episodes');
    const ck = join(dir, 'policy.safetensors');
    const first = await dlc('train', 'examples/reinforce_cartpole.dl', '--steps', '10', '--checkpoint', ck, '--no-progress');
    expect(first.status, first.err).toBe(EXIT_OK);
    expect(first.out).toMatch(/^update 10\/10 {2}episode_return \S+ {2}loss /m);
    const rest = await dlc('train', 'examples/reinforce_cartpole.dl', '--checkpoint', ck, '--resume', '--no-progress');
    expect(rest.status, rest.err).toBe(EXIT_OK);
    expect(rest.err).toContain('10 updates done');
    // the train block stops at a mean return of 475 of the possible 500, within its 200 updates
    const solved = /solved: mean episode return (\S+) >= 475 after (\d+) updates/.exec(rest.out);
    expect(solved, rest.out).not.toBeNull();
    expect(Number(solved![2])).toBeGreaterThan(10);
    // dlc evaluate: the solved policy, acting greedily on fresh episodes, keeps the pole up
    const evaluated = await dlc('evaluate', 'examples/reinforce_cartpole.dl', '--checkpoint', ck, '--episodes', '8');
    expect(evaluated.status, evaluated.err).toBe(EXIT_OK);
    expect(evaluated.err).toMatch(/on 8 episodes, acting by greedy_action/);
    const mean = Number(/^episodes 8 {2}mean_return (\S+)/m.exec(evaluated.out)?.[1]);
    expect(mean).toBeGreaterThan(400);
  });

  it('rejects dataset flags and unknown environments clearly', async () => {
    const r = await dlc('train', 'examples/reinforce_cartpole.dl', '--data', 'mnist');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('--data does not apply: CartPolePolicy trains from episodes of its env');
    const dir = repoTempDir('episodes');
    const other = join(dir, 'car.dl');
    writeFileSync(other, readFileSync('examples/reinforce_cartpole.dl', 'utf8').replace(/env = cartpole\([^)]*\)/, 'env = mountain_car()'));
    const unknown = await dlc('train', other);
    expect(unknown.status).toBe(EXIT_USER_ERROR);
    // found when compiling, with its span
    expect(unknown.err).toContain('error[E0206]: `mountain_car` is not an environment dlc train knows');
    expect(unknown.err).toContain('car.dl:');
    expect(unknown.err).not.toMatch(/\n\s+at /);
  });
});
