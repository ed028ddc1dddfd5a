// Learning-rate schedules as graph values of the step counter: constant, step, exponential, cosine, linear and warmup.
import type { GraphEditor } from '../ir/editor.ts';
import type { Value } from '../ir/types.ts';
import { constPow } from './powers.ts';

export type ScheduleKind = 'constant' | 'step' | 'exponential' | 'cosine' | 'linear' | 'warmup';

export interface ScheduleSpec {
  readonly kind: ScheduleKind;
  readonly options: Readonly<Record<string, number>>;
}

/** Each schedule's options and defaults (`null`: required). */
export const SCHEDULE_DEFAULTS: Readonly<Record<ScheduleKind, Readonly<Record<string, number | null>>>> = {
  constant: {},
  step: { every: null, gamma: 0.1 },
  exponential: { gamma: null },
  cosine: { total: null, min_lr: 0, warmup: 0 },
  linear: { total: null, end: 0 },
  warmup: { steps: null },
};

/**
 * The learning rate as an f32 scalar graph value of the step counter t (the number of updates done
 * before this one: 0 on the first step), with lr the base rate:
 *   constant:                lr
 *   step(every, gamma=0.1):  lr · gamma^⌊t / every⌋                     (torch StepLR)
 *   exponential(gamma):      lr · gamma^t                               (torch ExponentialLR)
 *   cosine(total, min_lr=0, warmup=0):
 *                            t < warmup: lr · (t + 1) / warmup          (linear warmup, never 0)
 *                            else min_lr + (lr − min_lr) · (1 + cos(π · p)) / 2,
 *                                 p = min(1, (t − warmup) / (total − warmup)), so min_lr from t = total on
 *   linear(total, end=0):    lr + (end − lr) · min(1, t / total)        (end is a learning rate)
 *   warmup(steps):           lr · min(1, (t + 1) / steps)
 * No spec is the constant schedule. The rate stays in [0, lr]: gamma is in [0, 1] and min_lr and end in
 * [0, lr] (a negative rate would be gradient ascent, as a negative lr is).
 */
export function scheduleLr(editor: GraphEditor, baseLr: number, spec: ScheduleSpec | undefined, step: Value): Value {
  if (!Number.isFinite(baseLr)) throw new Error(`the learning rate must be a finite number, not ${baseLr}`);
  if (step.type.shape.length !== 0) throw new Error(`internal: the step counter must be a scalar`);
  const kind = spec?.kind ?? 'constant';
  const defaults = SCHEDULE_DEFAULTS[kind];
  if (!defaults) throw new Error(`unknown learning-rate schedule ${String(kind)}`);
  const options = spec?.options ?? {};
  for (const name of Object.keys(options)) {
    if (!(name in defaults)) throw new Error(`schedule ${kind} has no option ${name}; it takes ${Object.keys(defaults).join(', ') || 'none'}`);
  }
  const opt = (name: string): number => {
    const v = name in options ? options[name] : defaults[name];
    if (v === null || v === undefined) throw new Error(`schedule ${kind} needs the option ${name}`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`schedule ${kind} option ${name} must be a finite number, not ${String(v)}`);
    return v;
  };
  const positive = (name: string): number => {
    const v = opt(name);
    if (!(v > 0)) throw new Error(`schedule ${kind} option ${name} must be positive, not ${v}`);
    return v;
  };

  /** A factor of the rate (gamma): in [0, 1], so the rate neither turns negative (gradient ascent) nor grows past lr. */
  const factor = (name: string): number => {
    const v = opt(name);
    if (v < 0 || v > 1) throw new Error(`schedule ${kind} option ${name} must be between 0 and 1, not ${v}: the rate is lr · ${name}^k, so ${v < 0 ? 'a negative factor makes it negative on every other decay (gradient ascent)' : 'a factor above 1 raises it past lr'}`);
    return v;
  };
  /** A rate the schedule ends at (min_lr, end): in [0, lr], for the same reasons. */
  const rate = (name: string): number => {
    const v = opt(name);
    if (v < 0 || v > baseLr) throw new Error(`schedule ${kind} option ${name} must be between 0 and the learning rate ${baseLr}, not ${v}: ${v < 0 ? 'a negative rate turns training into gradient ascent' : 'the schedule would raise the rate past lr'}`);
    return v;
  };

  const op = (name: string, inputs: readonly Value[], attrs = {}) => editor.op(name, inputs, attrs);
  const c = (v: number) => editor.scalar(v, 'f32');
  let stepF32: Value | undefined;
  const t = () => (stepF32 ??= step.type.dtype === 'f32' ? step : op('cast', [step], { dtype: 'f32' }));
  /** lr · min(1, (t + 1) / n): linear warmup reaching lr on step n − 1. */
  const warm = (n: number, top: Value) => op('mul', [top, op('minimum', [c(1), op('div', [op('add', [t(), c(1)]), c(n)])])]);

  switch (kind) {
    case 'constant':
      return c(baseLr);
    case 'step': {
      const every = positive('every');
      const gamma = factor('gamma');
      return op('mul', [c(baseLr), constPow(editor, gamma, op('floor', [op('div', [t(), c(every)])]))]);
    }
    case 'exponential':
      return op('mul', [c(baseLr), constPow(editor, factor('gamma'), t())]);
    case 'cosine': {
      const total = positive('total');
      const minLr = rate('min_lr');
      const warmup = opt('warmup');
      if (warmup < 0 || warmup >= total) throw new Error(`schedule cosine needs 0 <= warmup < total, not warmup ${warmup} and total ${total}`);
      const since = warmup > 0 ? op('sub', [t(), c(warmup)]) : t();
      const progress = op('minimum', [c(1), op('maximum', [c(0), op('div', [since, c(total - warmup)])])]);
      const wave = op('mul', [c(0.5), op('add', [c(1), op('cos', [op('mul', [c(Math.PI), progress])])])]);
      const cosine = op('add', [c(minLr), op('mul', [c(baseLr - minLr), wave])]);
      if (warmup === 0) return cosine;
      const inWarmup = op('lt', [t(), c(warmup)]);
      return op('select', [inWarmup, warm(warmup, c(baseLr)), cosine]);
    }
    case 'linear': {
      const total = positive('total');
      const end = rate('end');
      const frac = op('minimum', [c(1), op('div', [t(), c(total)])]);
      return op('add', [c(baseLr), op('mul', [c(end - baseLr), frac])]);
    }
    case 'warmup':
      return warm(positive('steps'), c(baseLr));
  }
}
