// Optimizer and schedule graphs run in the interpreter for a few steps against hand-written float64 PyTorch formulas.
import { describe, expect, it } from 'vitest';
import { GraphEditor } from '../compiler/ir/editor.ts';
import type { DType, Graph, InputInfo, ParamInfo, Value } from '../compiler/ir/types.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import {
  applyOptimizer,
  clipByGlobalNorm,
  clipByValue,
  stepCounter,
  type OptimizerSpec,
  type Options,
  type ParamGrad,
} from '../compiler/train/optimizers.ts';
import { scheduleLr, type ScheduleSpec } from '../compiler/train/schedules.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';

const span = { file: 'test.dl', start: 0, end: 0 };


const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

interface ParamDecl {
  readonly path: string;
  readonly shape: readonly number[];
  readonly options?: Options;
  readonly dtype?: DType;
}

type Arrays = Map<string, Float64Array>;

interface Built {
  readonly graph: Graph;
  readonly decls: readonly ParamDecl[];
}

type GradTransform = (editor: GraphEditor, grads: Value[]) => Value[];

/**
 * A graph whose parameters are the declared ones and whose gradients are inputs `grad.<path>`;
 * the optimizer's new values come out as outputs `new.<path>`, the learning rate as `lr`.
 */
function build(spec: OptimizerSpec, decls: readonly ParamDecl[], opts: { baseLr?: number; schedule?: ScheduleSpec; clip?: GradTransform; step?: string } = {}): Built {
  let id = 0;
  const inputs: InputInfo[] = [];
  const params: ParamInfo[] = [];
  const pv = new Map<string, [Value, Value]>();
  for (const d of decls) {
    const type = { dtype: d.dtype ?? 'f32', shape: d.shape };
    const p: Value = { id: id++, type, name: d.path };
    const g: Value = { id: id++, type, name: `grad.${d.path}` };
    params.push({ path: d.path, value: p, init: { kind: 'zeros', options: {} }, span });
    inputs.push({ name: `grad.${d.path}`, value: g, span });
    pv.set(d.path, [p, g]);
  }
  const base: Graph = {
    name: 'Opt',
    inputs,
    params,
    state: [],
    nodes: [],
    outputs: new Map(),
    losses: new Map(),
    metrics: new Map(),
    layerCalls: [],
    constraints: [],
  };
  const editor = new GraphEditor(base);
  const stepName = opts.step ?? 'train';
  const t = stepCounter(editor, stepName);
  const lr = scheduleLr(editor, opts.baseLr ?? Number(spec.options.lr ?? 1e-3), opts.schedule, t);
  let grads = decls.map((d) => pv.get(d.path)![1]);
  if (opts.clip) grads = opts.clip(editor, grads);
  const pgs: ParamGrad[] = decls.map((d, i) => ({ path: d.path, param: pv.get(d.path)![0], grad: grads[i], ...(d.options ? { options: d.options } : {}) }));
  const updated = applyOptimizer(editor, spec, pgs, lr, stepName);
  for (const [path, v] of updated) editor.outputs.set(`new.${path}`, v);
  editor.outputs.set('lr', lr);
  return { graph: editor.finish(), decls };
}

/** The fresh contents of every state buffer, from its init spec. */
function initialState(graph: Graph): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (const s of graph.state) {
    const shape = s.value.type.shape as number[];
    const value = s.init.kind === 'zeros' ? 0 : s.init.kind === 'constant' ? s.init.options.value : NaN;
    expect(Number.isNaN(value)).toBe(false);
    m.set(s.path, tensor(s.value.type.dtype, shape, value));
  }
  return m;
}

/** Runs `grads.length` steps, feeding the new parameters and state back; returns the parameters after each step. */
function run(built: Built, init: Arrays, grads: readonly Arrays[]): { history: Arrays[]; state: Map<string, Tensor>; lrs: number[] } {
  const { graph, decls } = built;
  let params = new Map<string, Tensor>(decls.map((d) => [d.path, tensor(d.dtype ?? 'f32', d.shape, init.get(d.path)!)]));
  let state = initialState(graph);
  const history: Arrays[] = [];
  const lrs: number[] = [];
  for (const g of grads) {
    const inputs = new Map<string, Tensor>(decls.map((d) => [`grad.${d.path}`, tensor(d.dtype ?? 'f32', d.shape, g.get(d.path)!)]));
    const r = interpretGraph(graph, { inputs, params, state });
    params = new Map(decls.map((d) => [d.path, r.outputs.get(`new.${d.path}`)!]));
    // every state buffer must be updated (the optimizer owns all of them here)
    expect([...r.state.keys()].sort()).toEqual(graph.state.map((s) => s.path).sort());
    state = r.state;
    history.push(new Map(decls.map((d) => [d.path, Float64Array.from(params.get(d.path)!.data)])));
    lrs.push(r.outputs.get('lr')!.data[0]);
  }
  return { history, state, lrs };
}

function randomArrays(decls: readonly ParamDecl[], r: () => number, scale = 1): Arrays {
  return new Map(decls.map((d) => [d.path, Float64Array.from({ length: numel(d.shape) }, () => (r() * 2 - 1) * scale)]));
}

function expectClose(actual: Float64Array, expected: Float64Array, tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (err > tol * Math.max(1, Math.abs(expected[i]))) {
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]} (error ${err})`);
    }
  }
}

// ---- float64 references, written out from torch.optim's update rules -----------------------------------

/** A reference optimizer: one step over one parameter (elementwise, in place), with its own state. */
type RefStep = (p: Float64Array, g: Float64Array, lr: number, t: number) => void;
type RefFactory = (n: number) => RefStep;

function refSgd(o: { momentum?: number; dampening?: number; nesterov?: boolean; weight_decay?: number }): RefFactory {
  const mu = o.momentum ?? 0;
  const damp = o.dampening ?? 0;
  const wd = o.weight_decay ?? 0;
  return (n) => {
    const buf = new Float64Array(n);
    return (p, g, lr, t) => {
      for (let i = 0; i < n; i++) {
        let d = g[i] + wd * p[i];
        if (mu !== 0) {
          buf[i] = t === 1 ? d : mu * buf[i] + (1 - damp) * d;
          d = o.nesterov ? d + mu * buf[i] : buf[i];
        }
        p[i] = p[i] - lr * d;
      }
    };
  };
}

function refAdam(o: { beta1?: number; beta2?: number; eps?: number; weight_decay?: number; amsgrad?: boolean }, decoupled: boolean): RefFactory {
  const b1 = o.beta1 ?? 0.9;
  const b2 = o.beta2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  const wd = o.weight_decay ?? (decoupled ? 0.01 : 0);
  return (n) => {
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    const vmax = new Float64Array(n);
    return (p, g, lr, t) => {
      const bc1 = 1 - Math.pow(b1, t);
      const bc2 = 1 - Math.pow(b2, t);
      for (let i = 0; i < n; i++) {
        let d = g[i];
        if (decoupled) p[i] = p[i] * (1 - lr * wd);
        else d = d + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        let vv = v[i];
        if (o.amsgrad) {
          vmax[i] = Math.max(vmax[i], v[i]);
          vv = vmax[i];
        }
        const denom = Math.sqrt(vv) / Math.sqrt(bc2) + eps;
        p[i] = p[i] - (lr / bc1) * (m[i] / denom);
      }
    };
  };
}

function refRmsprop(o: { alpha?: number; eps?: number; momentum?: number; weight_decay?: number; centered?: boolean }): RefFactory {
  const alpha = o.alpha ?? 0.99;
  const eps = o.eps ?? 1e-8;
  const mu = o.momentum ?? 0;
  const wd = o.weight_decay ?? 0;
  return (n) => {
    const sq = new Float64Array(n);
    const ga = new Float64Array(n);
    const buf = new Float64Array(n);
    return (p, g, lr) => {
      for (let i = 0; i < n; i++) {
        const d = g[i] + wd * p[i];
        sq[i] = alpha * sq[i] + (1 - alpha) * d * d;
        let avg: number;
        if (o.centered) {
          ga[i] = alpha * ga[i] + (1 - alpha) * d;
          avg = Math.sqrt(sq[i] - ga[i] * ga[i]) + eps;
        } else {
          avg = Math.sqrt(sq[i]) + eps;
        }
        if (mu > 0) {
          buf[i] = mu * buf[i] + d / avg;
          p[i] = p[i] - lr * buf[i];
        } else {
          p[i] = p[i] - (lr * d) / avg;
        }
      }
    };
  };
}

function refAdagrad(o: { eps?: number; weight_decay?: number; initial_accumulator?: number; lr_decay?: number }): RefFactory {
  const eps = o.eps ?? 1e-10;
  const wd = o.weight_decay ?? 0;
  const decay = o.lr_decay ?? 0;
  return (n) => {
    const sum = new Float64Array(n).fill(o.initial_accumulator ?? 0);
    return (p, g, lr, t) => {
      const clr = lr / (1 + (t - 1) * decay);
      for (let i = 0; i < n; i++) {
        const d = g[i] + wd * p[i];
        sum[i] = sum[i] + d * d;
        p[i] = p[i] - (clr * d) / (Math.sqrt(sum[i]) + eps);
      }
    };
  };
}

/** Runs the reference over the same steps; `lrAt(t)` is the learning rate of step t = 1, 2, ... per parameter. */
function reference(decls: readonly ParamDecl[], make: (d: ParamDecl) => RefFactory, lrAt: (d: ParamDecl, t: number) => number, init: Arrays, grads: readonly Arrays[], pre?: (g: Arrays) => Arrays): Arrays[] {
  const p = new Map(decls.map((d) => [d.path, Float64Array.from(init.get(d.path)!)]));
  const steps = new Map(decls.map((d) => [d.path, make(d)(numel(d.shape))]));
  const history: Arrays[] = [];
  grads.forEach((g0, k) => {
    const g = pre ? pre(g0) : g0;
    for (const d of decls) steps.get(d.path)!(p.get(d.path)!, g.get(d.path)!, lrAt(d, k + 1), k + 1);
    history.push(new Map([...p].map(([path, a]) => [path, Float64Array.from(a)])));
  });
  return history;
}

function compare(got: Arrays[], want: Arrays[], tol = 1e-12): void {
  expect(got.length).toBe(want.length);
  got.forEach((step, k) => {
    for (const [path, a] of step) {
      try {
        expectClose(a, want[k].get(path)!, tol);
      } catch (e) {
        throw new Error(`step ${k + 1}, parameter ${path}: ${(e as Error).message}`);
      }
    }
  });
}

const DECLS: readonly ParamDecl[] = [
  { path: 'net.w', shape: [3, 4] },
  { path: 'net.b', shape: [4] },
  { path: 'scale', shape: [] },
];

/** Builds, runs three steps from seeded parameters and gradients, and compares against the reference with a constant lr. */
function check(spec: OptimizerSpec, ref: RefFactory, seed: number, steps = 3, decls = DECLS): Arrays[] {
  const r = seededRandom(seed);
  const init = randomArrays(decls, r);
  const grads = Array.from({ length: steps }, () => randomArrays(decls, r, 2));
  const built = build(spec, decls);
  const got = run(built, init, grads);
  const lr = Number(spec.options.lr ?? 1e-3);
  compare(got.history, reference(decls, () => ref, () => lr, init, grads));
  // the step counter counted the steps
  expect(got.state.get('opt.train.t')!.data[0]).toBe(steps);
  return got.history;
}

describe('optimizers against torch.optim formulas (three steps each)', () => {
  it('sgd', () => {
    check({ kind: 'sgd', options: { lr: 0.1 } }, refSgd({}), 1);
  });

  it('sgd with momentum, dampening and L2 weight decay (the buffer starts at the first gradient)', () => {
    const o = { momentum: 0.9, dampening: 0.3, weight_decay: 0.01 };
    check({ kind: 'sgd', options: { lr: 0.05, ...o } }, refSgd(o), 2);
  });

  it('sgd with plain momentum keeps one buffer per parameter', () => {
    const built = build({ kind: 'sgd', options: { lr: 0.1, momentum: 0.5 } }, DECLS);
    expect(built.graph.state.map((s) => s.path).sort()).toEqual(['opt.train.net.b.momentum', 'opt.train.net.w.momentum', 'opt.train.scale.momentum', 'opt.train.t']);
    check({ kind: 'sgd', options: { lr: 0.1, momentum: 0.5 } }, refSgd({ momentum: 0.5 }), 3);
  });

  it('sgd with nesterov momentum', () => {
    const o = { momentum: 0.9, nesterov: true, weight_decay: 0.05 };
    check({ kind: 'sgd', options: { lr: 0.02, ...o } }, refSgd(o), 4);
  });

  it('adam with defaults', () => {
    check({ kind: 'adam', options: {} }, refAdam({}, false), 5);
  });

  it('adam with L2 weight decay and custom betas', () => {
    const o = { beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: 0.1 };
    check({ kind: 'adam', options: { lr: 0.01, ...o } }, refAdam(o, false), 6);
  });

  it('adam with amsgrad', () => {
    const o = { amsgrad: true, beta2: 0.9 };
    const built = build({ kind: 'adam', options: { lr: 0.01, ...o } }, DECLS);
    expect(built.graph.state.some((s) => s.path === 'opt.train.net.w.vmax')).toBe(true);
    check({ kind: 'adam', options: { lr: 0.01, ...o } }, refAdam(o, false), 7);
  });

  it('adamw decays decoupled from the gradient (default weight_decay 0.01), unlike adam', () => {
    const adamw = check({ kind: 'adamw', options: { lr: 0.01 } }, refAdam({}, true), 8);
    check({ kind: 'adamw', options: { lr: 0.01, weight_decay: 0.2, beta1: 0.7 } }, refAdam({ weight_decay: 0.2, beta1: 0.7 }, true), 8);
    const adamL2 = check({ kind: 'adam', options: { lr: 0.01, weight_decay: 0.01 } }, refAdam({ weight_decay: 0.01 }, false), 8);
    const w1 = adamw[2].get('net.w')!;
    const w2 = adamL2[2].get('net.w')!;
    expect(w1.some((x, i) => Math.abs(x - w2[i]) > 1e-9)).toBe(true);
  });

  it('rmsprop', () => {
    check({ kind: 'rmsprop', options: {} }, refRmsprop({}), 9);
  });

  it('rmsprop centered with momentum and L2 weight decay', () => {
    const o = { alpha: 0.9, momentum: 0.8, centered: true, weight_decay: 0.02, eps: 1e-5 };
    check({ kind: 'rmsprop', options: { lr: 0.003, ...o } }, refRmsprop(o), 10);
  });

  it('adagrad with defaults', () => {
    check({ kind: 'adagrad', options: {} }, refAdagrad({}), 11);
  });

  it('adagrad with an initial accumulator, lr decay and L2 weight decay', () => {
    const o = { initial_accumulator: 0.1, lr_decay: 0.05, weight_decay: 0.03 };
    const built = build({ kind: 'adagrad', options: { lr: 0.1, ...o } }, DECLS);
    expect(built.graph.state.find((s) => s.path === 'opt.train.net.w.sum')!.init).toEqual({ kind: 'constant', options: { value: 0.1 } });
    check({ kind: 'adagrad', options: { lr: 0.1, ...o } }, refAdagrad(o), 12);
  });

  it('an f16 parameter is updated in its own dtype (the f32 lr is cast)', () => {
    const decls: ParamDecl[] = [{ path: 'h', shape: [5], dtype: 'f16' }];
    check({ kind: 'adam', options: { lr: 0.01 } }, refAdam({}, false), 13, 2, decls);
  });
});

describe('parameter groups, schedules in the update, and clipping', () => {
  it('a per-parameter override: no decay on the bias, and a group lr measured against the optimizer lr', () => {
    const decls: ParamDecl[] = [
      { path: 'net.w', shape: [3, 4] },
      { path: 'net.b', shape: [4], options: { weight_decay: 0, lr: 0.05 } },
      { path: 'emb', shape: [2, 2], options: { beta1: 0.5 } },
    ];
    const spec: OptimizerSpec = { kind: 'adamw', options: { lr: 0.01, weight_decay: 0.1 } };
    const r = seededRandom(21);
    const init = randomArrays(decls, r);
    const grads = Array.from({ length: 3 }, () => randomArrays(decls, r, 2));
    const got = run(build(spec, decls), init, grads);
    const want = reference(
      decls,
      (d) => refAdam({ weight_decay: Number(d.options?.weight_decay ?? 0.1), beta1: Number(d.options?.beta1 ?? 0.9) }, true),
      (d) => Number(d.options?.lr ?? 0.01),
      init,
      grads,
    );
    compare(got.history, want);
  });

  it('a scheduled lr reads the step counter before its increment', () => {
    const spec: OptimizerSpec = { kind: 'sgd', options: { lr: 0.1, momentum: 0.9 } };
    const schedule: ScheduleSpec = { kind: 'step', options: { every: 2, gamma: 0.5 } };
    const r = seededRandom(22);
    const init = randomArrays(DECLS, r);
    const grads = Array.from({ length: 5 }, () => randomArrays(DECLS, r));
    const got = run(build(spec, DECLS, { schedule }), init, grads);
    const lrs = [0.1, 0.1, 0.05, 0.05, 0.025];
    expect(got.lrs).toEqual(lrs);
    compare(got.history, reference(DECLS, () => refSgd({ momentum: 0.9 }), (_d, t) => lrs[t - 1], init, grads));
  });

  it('a group lr scales the scheduled lr', () => {
    const decls: ParamDecl[] = [
      { path: 'a', shape: [3] },
      { path: 'b', shape: [3], options: { lr: 0.3 } },
    ];
    const spec: OptimizerSpec = { kind: 'sgd', options: { lr: 0.1 } };
    const schedule: ScheduleSpec = { kind: 'exponential', options: { gamma: 0.9 } };
    const r = seededRandom(23);
    const init = randomArrays(decls, r);
    const grads = Array.from({ length: 3 }, () => randomArrays(decls, r));
    const got = run(build(spec, decls, { schedule }), init, grads);
    const want = reference(decls, () => refSgd({}), (d, t) => (d.path === 'b' ? 0.3 : 0.1) * Math.pow(0.9, t - 1), init, grads);
    compare(got.history, want);
  });

  function clipNorm(g: Arrays, max: number): Arrays {
    let ss = 0;
    for (const a of g.values()) for (const x of a) ss += x * x;
    const coef = Math.min(1, max / (Math.sqrt(ss) + 1e-6));
    return new Map([...g].map(([k, a]) => [k, a.map((x) => x * coef)]));
  }

  it('clipping by global norm scales every gradient by min(1, max / (norm + 1e-6))', () => {
    const spec: OptimizerSpec = { kind: 'sgd', options: { lr: 0.1 } };
    const r = seededRandom(24);
    const init = randomArrays(DECLS, r);
    // large gradients (clipped), then small ones (left alone), then large again
    const grads = [randomArrays(DECLS, r, 5), randomArrays(DECLS, r, 0.01), randomArrays(DECLS, r, 3)];
    const maxNorm = 1.5;
    const got = run(build(spec, DECLS, { clip: (e, g) => clipByGlobalNorm(e, g, maxNorm) }), init, grads);
    compare(got.history, reference(DECLS, () => refSgd({}), () => 0.1, init, grads, (g) => clipNorm(g, maxNorm)));
    // the small step really was below the limit, the large ones above
    const norms = grads.map((g) => Math.sqrt([...g.values()].reduce((s, a) => s + a.reduce((q, x) => q + x * x, 0), 0)));
    expect(norms[0]).toBeGreaterThan(maxNorm);
    expect(norms[1]).toBeLessThan(maxNorm);
  });

  it('clipped gradients have the global norm asked for', () => {
    const r = seededRandom(25);
    const grads = randomArrays(DECLS, r, 4);
    const built = build({ kind: 'sgd', options: { lr: 1 } }, DECLS, { clip: (e, g) => clipByGlobalNorm(e, g, 2) });
    const got = run(built, new Map(DECLS.map((d) => [d.path, new Float64Array(numel(d.shape))])), [grads]);
    // with lr 1 from zero parameters the update is minus the clipped gradient
    let ss = 0;
    for (const a of got.history[0].values()) for (const x of a) ss += x * x;
    expect(Math.sqrt(ss)).toBeCloseTo(2, 5);
  });

  it('clipping by value clamps every element', () => {
    const spec: OptimizerSpec = { kind: 'adam', options: { lr: 0.01 } };
    const r = seededRandom(26);
    const init = randomArrays(DECLS, r);
    const grads = Array.from({ length: 3 }, () => randomArrays(DECLS, r, 2));
    const limit = 0.7;
    const got = run(build(spec, DECLS, { clip: (e, g) => clipByValue(e, g, limit) }), init, grads);
    const clamp = (g: Arrays): Arrays => new Map([...g].map(([k, a]) => [k, a.map((x) => Math.min(limit, Math.max(-limit, x)))]));
    compare(got.history, reference(DECLS, () => refAdam({}, false), () => 0.01, init, grads, clamp));
  });

  it('two optimizer steps keep separate state and counters', () => {
    const built = build({ kind: 'adam', options: {} }, DECLS, { step: 'gen' });
    const paths = built.graph.state.map((s) => s.path);
    expect(paths).toContain('opt.gen.t');
    expect(paths).toContain('opt.gen.net.w.m');
    expect(paths).toContain('opt.gen.net.w.v');
    expect(paths).toContain('opt.gen.scale.v');
    for (const s of built.graph.state) expect(s.update).toBeDefined();
  });

  it('rejects unknown options and inconsistent settings', () => {
    expect(() => build({ kind: 'adam', options: { momentum: 0.9 } }, DECLS)).toThrow(/adam has no option momentum/);
    expect(() => build({ kind: 'sgd', options: { lr: 0.1, nesterov: true } }, DECLS)).toThrow(/nesterov/);
    expect(() => build({ kind: 'sgd', options: { lr: 0.1, momentum: true } }, DECLS)).toThrow(/must be a finite number/);
    // sgd's lr defaults to 0.01 with a group lr as without one (a group lr scales against it)
    expect(() => build({ kind: 'sgd', options: {} }, [{ path: 'a', shape: [2], options: { lr: 0.1 } }], { baseLr: 0.01 })).not.toThrow();
    expect(() => build({ kind: 'rmsprop', options: {} }, [{ path: 'a', shape: [2], options: { betas: 1 } }])).toThrow(/no option betas/);
  });
});

// ---- schedules -----------------------------------------------------------------------------------------

/** Evaluates a schedule at each step t by feeding t as an f32 scalar input. */
function scheduleAt(baseLr: number, spec: ScheduleSpec | undefined, ts: readonly number[]): number[] {
  const step: Value = { id: 0, type: { dtype: 'f32', shape: [] }, name: 't' };
  const base: Graph = {
    name: 'Sched',
    inputs: [{ name: 't', value: step, span }],
    params: [],
    state: [],
    nodes: [],
    outputs: new Map(),
    losses: new Map(),
    metrics: new Map(),
    layerCalls: [],
    constraints: [],
  };
  const editor = new GraphEditor(base);
  editor.outputs.set('lr', scheduleLr(editor, baseLr, spec, step));
  const graph = editor.finish();
  return ts.map((t) => interpretGraph(graph, { inputs: new Map([['t', tensor('f32', [], [t])]]), params: new Map(), state: new Map() }).outputs.get('lr')!.data[0]);
}

const TS = [0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 20, 100];

function expectSchedule(baseLr: number, spec: ScheduleSpec | undefined, formula: (t: number) => number): void {
  const got = scheduleAt(baseLr, spec, TS);
  TS.forEach((t, i) => {
    const want = formula(t);
    if (Math.abs(got[i] - want) > 1e-12 * Math.max(1, Math.abs(want))) throw new Error(`t = ${t}: got ${got[i]}, expected ${want}`);
  });
}

describe('learning-rate schedules', () => {
  it('constant (and no schedule at all)', () => {
    expectSchedule(0.3, { kind: 'constant', options: {} }, () => 0.3);
    expectSchedule(0.3, undefined, () => 0.3);
  });

  it('step: lr · gamma^floor(t / every)', () => {
    expectSchedule(0.1, { kind: 'step', options: { every: 3, gamma: 0.5 } }, (t) => 0.1 * Math.pow(0.5, Math.floor(t / 3)));
    expectSchedule(1, { kind: 'step', options: { every: 10 } }, (t) => Math.pow(0.1, Math.floor(t / 10)));
  });

  it('exponential: lr · gamma^t', () => {
    expectSchedule(0.02, { kind: 'exponential', options: { gamma: 0.97 } }, (t) => 0.02 * Math.pow(0.97, t));
  });

  it('cosine without warmup: min_lr + (lr − min_lr)(1 + cos(π min(1, t / total)))/2', () => {
    expectSchedule(0.1, { kind: 'cosine', options: { total: 10 } }, (t) => 0.1 * 0.5 * (1 + Math.cos((Math.PI * Math.min(t, 10)) / 10)));
    expectSchedule(0.1, { kind: 'cosine', options: { total: 10, min_lr: 0.01 } }, (t) => 0.01 + 0.09 * 0.5 * (1 + Math.cos((Math.PI * Math.min(t, 10)) / 10)));
  });

  it('cosine with linear warmup: lr (t + 1) / warmup, then the cosine over the remaining steps', () => {
    const lr = 0.5;
    const warmup = 4;
    const total = 11;
    const minLr = 0.05;
    expectSchedule(lr, { kind: 'cosine', options: { total, warmup, min_lr: minLr } }, (t) => {
      if (t < warmup) return (lr * (t + 1)) / warmup;
      const p = Math.min(1, (t - warmup) / (total - warmup));
      return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * p));
    });
    // the warmup reaches lr on its last step, and the cosine starts there
    const [last, first] = scheduleAt(lr, { kind: 'cosine', options: { total, warmup } }, [warmup - 1, warmup]);
    expect(last).toBeCloseTo(lr, 12);
    expect(first).toBeCloseTo(lr, 12);
  });

  it('linear: lr + (end − lr) min(1, t / total)', () => {
    expectSchedule(0.1, { kind: 'linear', options: { total: 10 } }, (t) => 0.1 - 0.1 * Math.min(1, t / 10));
    expectSchedule(0.1, { kind: 'linear', options: { total: 8, end: 0.02 } }, (t) => 0.1 + (0.02 - 0.1) * Math.min(1, t / 8));
  });

  it('warmup: lr · min(1, (t + 1) / steps)', () => {
    expectSchedule(0.4, { kind: 'warmup', options: { steps: 5 } }, (t) => 0.4 * Math.min(1, (t + 1) / 5));
  });

  it('rejects missing, unknown and out-of-range options', () => {
    expect(() => scheduleAt(0.1, { kind: 'step', options: {} }, [0])).toThrow(/needs the option every/);
    expect(() => scheduleAt(0.1, { kind: 'exponential', options: { gamma: 0.9, decay: 1 } }, [0])).toThrow(/no option decay/);
    expect(() => scheduleAt(0.1, { kind: 'cosine', options: { total: 5, warmup: 5 } }, [0])).toThrow(/warmup < total/);
    expect(() => scheduleAt(0.1, { kind: 'warmup', options: { steps: 0 } }, [0])).toThrow(/must be positive/);
  });

  it('rejects options that would make the rate negative or raise it past lr', () => {
    expect(() => scheduleAt(0.1, { kind: 'linear', options: { total: 4, end: -0.1 } }, [0])).toThrow('schedule linear option end must be between 0 and the learning rate 0.1, not -0.1: a negative rate turns training into gradient ascent');
    expect(() => scheduleAt(0.1, { kind: 'linear', options: { total: 4, end: 0.2 } }, [0])).toThrow(/end must be between 0 and the learning rate 0.1, not 0.2: the schedule would raise the rate past lr/);
    expect(() => scheduleAt(0.1, { kind: 'step', options: { every: 2, gamma: -1 } }, [0])).toThrow(/step option gamma must be between 0 and 1, not -1: .* negative/);
    expect(() => scheduleAt(0.1, { kind: 'exponential', options: { gamma: 1.05 } }, [0])).toThrow(/exponential option gamma must be between 0 and 1, not 1.05: .* raises it past lr/);
    expect(() => scheduleAt(0.1, { kind: 'cosine', options: { total: 4, min_lr: 1 } }, [0])).toThrow(/cosine option min_lr must be between 0 and the learning rate 0.1, not 1/);
    expect(() => scheduleAt(0.1, { kind: 'cosine', options: { total: 4, min_lr: -0.01 } }, [0])).toThrow(/min_lr must be between 0/);
    // the bounds themselves are fine: a constant rate, a decay to 0
    expect(scheduleAt(0.1, { kind: 'linear', options: { total: 4, end: 0.1 } }, [0, 8])).toEqual([0.1, 0.1]);
    expect(scheduleAt(0.1, { kind: 'step', options: { every: 1, gamma: 0 } }, [2])[0]).toBe(0);
    expect(scheduleAt(0.1, { kind: 'cosine', options: { total: 4, min_lr: 0.1 } }, [3])[0]).toBeCloseTo(0.1, 7);
  });
});
