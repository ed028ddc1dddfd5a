// Optimizers as graph builders: SGD, Adam, AdamW, RMSprop and Adagrad updates (PyTorch semantics), step counter and gradient clipping.
import type { GraphEditor } from '../ir/editor.ts';
import { isFloat, type DType, type Value } from '../ir/types.ts';
import { SUM_SQUARES_MAX_OPERANDS } from '../codegen/sum-squares.ts';
import { oneMinusConstPow } from './powers.ts';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad';
export type OptionValue = number | boolean;
export type Options = Readonly<Record<string, OptionValue>>;

export interface OptimizerSpec {
  readonly kind: OptimizerKind;
  readonly options: Options;
}

export interface ParamGrad {
  readonly path: string;
  readonly param: Value;
  readonly grad: Value;
  /** per-parameter-group overrides */
  readonly options?: Options;
}

/**
 * Every option each optimizer accepts and its default (`null`: no default, the option must be
 * given when it is read). `lr` itself arrives as a graph value; the number here is only the base that
 * a parameter group's own `lr` is measured against (see `applyOptimizer`).
 */
export const OPTIMIZER_DEFAULTS: Readonly<Record<OptimizerKind, Readonly<Record<string, OptionValue | null>>>> = {
  // sgd's lr defaults to 0.01, as Keras's SGD does (torch's is 1e-3); every optimizer has a default rate
  sgd: { lr: 0.01, momentum: 0, dampening: 0, nesterov: false, weight_decay: 0 },
  adam: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0, amsgrad: false },
  adamw: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, amsgrad: false },
  rmsprop: { lr: 1e-2, alpha: 0.99, eps: 1e-8, momentum: 0, weight_decay: 0, centered: false },
  adagrad: { lr: 1e-2, eps: 1e-10, weight_decay: 0, initial_accumulator: 0, lr_decay: 0 },
};

/** The base learning rate of an optimizer: its `lr` option, or the optimizer's default. */
export function optimizerLr(spec: OptimizerSpec): number {
  const lr = spec.options.lr;
  return typeof lr === 'number' ? lr : (OPTIMIZER_DEFAULTS[spec.kind].lr as number);
}

/** The state path of the step counter shared by every parameter one optimizer step updates. */
export function stepCounterPath(stepName: string): string {
  return `opt.${stepName}.t`;
}

/**
 * The step counter `opt.<step>.t` (f32 scalar, zeros init: the number of updates done before this
 * one), created on first use. Schedules read this value; `applyOptimizer` stores t + 1 as its update.
 * An f32 counts exactly up to 2^24 (about 16.7 million) steps.
 */
export function stepCounter(editor: GraphEditor, stepName: string): Value {
  const path = stepCounterPath(stepName);
  const existing = editor.state.find((s) => s.path === path);
  if (existing) return existing.value;
  return editor.addState(path, { dtype: 'f32', shape: [] }, { kind: 'zeros', options: {} });
}

/** Reads options with defaults and checks names and types; throws on an unknown option. */
class OptionReader {
  constructor(
    private readonly kind: OptimizerKind,
    private readonly options: Options,
    private readonly where: string,
  ) {
    const known = OPTIMIZER_DEFAULTS[kind];
    for (const name of Object.keys(options)) {
      if (!(name in known)) throw new Error(`${kind} has no option ${name} (${where}); it takes ${Object.keys(known).join(', ')}`);
    }
  }

  private raw(name: string): OptionValue {
    const v = name in this.options ? this.options[name] : OPTIMIZER_DEFAULTS[this.kind][name];
    if (v === null || v === undefined) throw new Error(`${this.kind} needs the option ${name} (${this.where})`);
    return v;
  }

  num(name: string): number {
    const v = this.raw(name);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${this.kind} option ${name} must be a finite number, not ${String(v)} (${this.where})`);
    const range = OPTION_RANGES[name];
    if (range && !range.ok(v)) throw new Error(`${this.kind} option ${name} must be ${range.text}, not ${v} (${this.where})`);
    return v;
  }

  bool(name: string): boolean {
    const v = this.raw(name);
    if (typeof v !== 'boolean') throw new Error(`${this.kind} option ${name} must be true or false, not ${String(v)} (${this.where})`);
    return v;
  }

  has(name: string): boolean {
    return name in this.options;
  }
}

/** The values each option may take, as torch.optim checks them. */
export const OPTION_RANGES: Readonly<Record<string, { ok: (v: number) => boolean; text: string }>> = {
  lr: { ok: (v) => v >= 0, text: '0 or more' },
  weight_decay: { ok: (v) => v >= 0, text: '0 or more' },
  momentum: { ok: (v) => v >= 0, text: '0 or more' },
  dampening: { ok: (v) => v >= 0, text: '0 or more' },
  eps: { ok: (v) => v >= 0, text: '0 or more' },
  beta1: { ok: (v) => v >= 0 && v < 1, text: 'in [0, 1)' },
  beta2: { ok: (v) => v >= 0 && v < 1, text: 'in [0, 1)' },
  alpha: { ok: (v) => v >= 0, text: '0 or more' },
};

/** Scalar constants and scalar-only expressions shared by every parameter of one call. */
class Scalars {
  private readonly memo = new Map<string, Value>();
  constructor(private readonly editor: GraphEditor) {}

  get(key: string, make: () => Value): Value {
    let v = this.memo.get(key);
    if (!v) {
      v = make();
      this.memo.set(key, v);
    }
    return v;
  }

  const(value: number, dtype: DType): Value {
    return this.get(`const:${dtype}:${value}`, () => this.editor.scalar(value, dtype));
  }

  /** A scalar value in another dtype (the f32 lr or step for an f16 parameter). */
  as(v: Value, dtype: DType): Value {
    if (v.type.dtype === dtype) return v;
    return this.get(`cast:${v.id}:${dtype}`, () => this.editor.op('cast', [v], { dtype }));
  }
}

/**
 * Appends the update of every parameter and returns the new parameter values by path (the caller
 * records them). Optimizer state becomes state buffers `opt.<step>.<path>.<slot>` (zeros init, except
 * Adagrad's `sum`, which starts at `initial_accumulator`), with their new values in
 * `editor.stateUpdates`; the shared step counter `opt.<step>.t` is incremented in-graph.
 *
 * With t the number of earlier steps (so t = 0 on the first), g the gradient and p the parameter,
 * all as in torch.optim:
 *   sgd:     g += wd·p; with momentum μ: b = g on the first step, else b = μ·b + (1 − dampening)·g;
 *            g = g + μ·b (nesterov) or b; p −= lr·g.
 *   adam:    g += wd·p; m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; (amsgrad: vmax = max(vmax, v), used for v)
 *            p −= (lr / (1 − β1^(t+1))) · m / (√v / √(1 − β2^(t+1)) + eps).
 *   adamw:   p ·= 1 − lr·wd first (decoupled decay, g unchanged), then the Adam step.
 *   rmsprop: g += wd·p; s = α·s + (1 − α)·g²; centered: a = α·a + (1 − α)·g, d = √(s − a²) + eps, else d = √s + eps;
 *            with momentum μ: b = μ·b + g/d, p −= lr·b; else p −= lr·g/d.
 *   adagrad: g += wd·p; s += g²; p −= lr / (1 + t·lr_decay) · g / (√s + eps).
 *
 * `lr` is a scalar graph value (a schedule's output). A parameter's `options` override the spec's for
 * that parameter; a group `lr` scales the schedule's value by group lr / spec lr (the spec's `lr`, or
 * the optimizer's default), which is exact for schedules that multiply the base rate.
 */
export function applyOptimizer(editor: GraphEditor, spec: OptimizerSpec, params: readonly ParamGrad[], lr: Value, stepName: string): Map<string, Value> {
  if (!(spec.kind in OPTIMIZER_DEFAULTS)) throw new Error(`unknown optimizer ${String(spec.kind)}`);
  if (lr.type.shape.length !== 0 || !isFloat(lr.type.dtype)) throw new Error(`internal: the learning rate must be a float scalar`);
  new OptionReader(spec.kind, spec.options, 'optimizer options');

  const k = new Scalars(editor);
  const op = (name: string, inputs: readonly Value[], attrs = {}) => editor.op(name, inputs, attrs);
  const tPath = stepCounterPath(stepName);
  const t = stepCounter(editor, stepName);
  let t1 = editor.stateUpdates.get(tPath);
  if (!t1) {
    t1 = op('add', [t, k.const(1, 'f32')]);
    editor.stateUpdates.set(tPath, t1);
  }
  const tNext = t1;

  const result = new Map<string, Value>();
  for (const pg of params) {
    if (result.has(pg.path)) throw new Error(`internal: parameter ${pg.path} is updated twice`);
    const p = pg.param;
    const g = pg.grad;
    const dtype = p.type.dtype;
    if (!isFloat(dtype)) throw new Error(`internal: cannot optimize the non-float parameter ${pg.path}`);
    if (g.type.dtype !== dtype) throw new Error(`internal: gradient of ${pg.path} is ${g.type.dtype}, the parameter ${dtype}`);
    const o = new OptionReader(spec.kind, { ...spec.options, ...(pg.options ?? {}) }, `parameter ${pg.path}`);
    const c = (v: number) => k.const(v, dtype);
    if (o.has('lr')) o.num('lr'); // its range checked (the rate itself arrives as `lr`)

    // this parameter's learning rate, in its dtype
    let plr = k.as(lr, dtype);
    if (pg.options && 'lr' in pg.options) {
      const base = new OptionReader(spec.kind, spec.options, 'optimizer options').num('lr');
      const own = o.num('lr');
      if (base === 0) throw new Error(`${spec.kind}: a parameter group lr needs a nonzero optimizer lr to scale against`);
      if (own !== base) plr = k.get(`lr:${dtype}:${own / base}`, () => op('mul', [k.as(lr, dtype), c(own / base)]));
    }
    const slot = (name: string, init = 0): Value =>
      editor.addState(`opt.${stepName}.${pg.path}.${name}`, p.type, init === 0 ? { kind: 'zeros', options: {} } : { kind: 'constant', options: { value: init } });
    const store = (name: string, v: Value) => editor.stateUpdates.set(`opt.${stepName}.${pg.path}.${name}`, v);
    const wd = o.num('weight_decay');
    /** L2 regularisation: the decay is added to the gradient. */
    const l2 = (grad: Value) => (wd !== 0 ? op('add', [grad, op('mul', [c(wd), p])]) : grad);
    /** lr · x, subtracted from `from`. */
    const step = (from: Value, rate: Value, x: Value) => op('sub', [from, op('mul', [rate, x])]);

    let next: Value;
    switch (spec.kind) {
      case 'sgd': {
        const mu = o.num('momentum');
        const damp = o.num('dampening');
        const nesterov = o.bool('nesterov');
        if (nesterov && (mu <= 0 || damp !== 0)) throw new Error(`sgd: nesterov momentum needs momentum > 0 and dampening 0 (parameter ${pg.path})`);
        let d = l2(g);
        if (mu !== 0) {
          const buf = slot('momentum');
          let later = op('add', [op('mul', [c(mu), buf]), damp !== 0 ? op('mul', [c(1 - damp), d]) : d]);
          // torch starts the buffer at the first gradient itself (no dampening); with dampening 0 the formula agrees.
          if (damp !== 0) {
            const first = k.get('first', () => op('eq', [t, k.const(0, 'f32')]));
            later = op('select', [first, d, later]);
          }
          store('momentum', later);
          d = nesterov ? op('add', [d, op('mul', [c(mu), later])]) : later;
        }
        next = step(p, plr, d);
        break;
      }
      case 'adam':
      case 'adamw': {
        const b1 = o.num('beta1');
        const b2 = o.num('beta2');
        const eps = o.num('eps');
        const amsgrad = o.bool('amsgrad');
        const decoupled = spec.kind === 'adamw';
        const d = decoupled ? g : l2(g);
        let from = p;
        if (decoupled && wd !== 0) {
          const keep = op('sub', [c(1), op('mul', [plr, c(wd)])]);
          from = op('mul', [p, keep]);
        }
        const m = slot('m');
        const v = slot('v');
        const m1 = op('add', [op('mul', [c(b1), m]), op('mul', [c(1 - b1), d])]);
        const v1 = op('add', [op('mul', [c(b2), v]), op('mul', [c(1 - b2), op('mul', [d, d])])]);
        store('m', m1);
        store('v', v1);
        let vUse = v1;
        if (amsgrad) {
          const vmax = slot('vmax');
          vUse = op('maximum', [vmax, v1]);
          store('vmax', vUse);
        }
        const tn = k.as(tNext, dtype);
        const bc1 = k.get(`bc:${dtype}:${b1}`, () => oneMinusConstPow(editor, b1, tn, dtype));
        const bc2 = k.get(`bc:${dtype}:${b2}`, () => oneMinusConstPow(editor, b2, tn, dtype));
        const stepSize = op('div', [plr, bc1]);
        const denom = op('add', [op('div', [op('sqrt', [vUse]), op('sqrt', [bc2])]), c(eps)]);
        next = step(from, stepSize, op('div', [m1, denom]));
        break;
      }
      case 'rmsprop': {
        const alpha = o.num('alpha');
        const eps = o.num('eps');
        const mu = o.num('momentum');
        const centered = o.bool('centered');
        const d = l2(g);
        const sq = slot('square_avg');
        const sq1 = op('add', [op('mul', [c(alpha), sq]), op('mul', [c(1 - alpha), op('mul', [d, d])])]);
        store('square_avg', sq1);
        let avg: Value;
        if (centered) {
          const ga = slot('grad_avg');
          const ga1 = op('add', [op('mul', [c(alpha), ga]), op('mul', [c(1 - alpha), d])]);
          store('grad_avg', ga1);
          avg = op('add', [op('sqrt', [op('sub', [sq1, op('mul', [ga1, ga1])])]), c(eps)]);
        } else {
          avg = op('add', [op('sqrt', [sq1]), c(eps)]);
        }
        if (mu > 0) {
          const buf = slot('momentum');
          const buf1 = op('add', [op('mul', [c(mu), buf]), op('div', [d, avg])]);
          store('momentum', buf1);
          next = step(p, plr, buf1);
        } else {
          next = step(p, plr, op('div', [d, avg]));
        }
        break;
      }
      case 'adagrad': {
        const eps = o.num('eps');
        const decay = o.num('lr_decay');
        const d = l2(g);
        const sum = slot('sum', o.num('initial_accumulator'));
        const sum1 = op('add', [sum, op('mul', [d, d])]);
        store('sum', sum1);
        let clr = plr;
        if (decay !== 0) clr = op('div', [plr, op('add', [c(1), op('mul', [k.as(t, dtype), c(decay)])])]);
        next = step(p, clr, op('div', [d, op('add', [op('sqrt', [sum1]), c(eps)])]));
        break;
      }
    }
    result.set(pg.path, next);
  }
  return result;
}

/** The squared L2 norm of a tensor, as an f32 scalar. */
/** Σ g² over every gradient, in f32: one sum_squares per 7 gradients (a kernel each, 64 partial sums), then the sum of the partials. */
function sumOfSquares(editor: GraphEditor, grads: readonly Value[]): Value {
  const f32 = grads.map((g) => (g.type.dtype === 'f32' ? g : editor.op('cast', [g], { dtype: 'f32' })));
  let partials: Value | undefined;
  for (let i = 0; i < f32.length; i += SUM_SQUARES_MAX_OPERANDS) {
    const part = editor.op('sum_squares', f32.slice(i, i + SUM_SQUARES_MAX_OPERANDS));
    partials = partials ? editor.op('add', [partials, part]) : part;
  }
  return editor.op('reduce_sum', [partials!], { axes: [0] });
}

/**
 * Clip by global norm (torch.nn.utils.clip_grad_norm_): n = √(Σ over every gradient of Σ g²), computed
 * in f32, and every gradient is scaled by min(1, maxNorm / (n + 1e-6)). Returns the clipped grads in order.
 */
export function clipByGlobalNorm(editor: GraphEditor, grads: readonly Value[], maxNorm: number): Value[] {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new Error(`clip norm must be a positive number, not ${maxNorm}`);
  if (grads.length === 0) return [];
  for (const g of grads) if (!isFloat(g.type.dtype)) throw new Error(`internal: cannot clip a ${g.type.dtype} gradient`);
  const norm = editor.op('sqrt', [sumOfSquares(editor, grads)]);
  const coef = editor.op('div', [editor.scalar(maxNorm), editor.op('add', [norm, editor.scalar(1e-6)])]);
  const scale = editor.op('minimum', [editor.scalar(1), coef]);
  const scaleIn = new Map<DType, Value>([['f32', scale]]);
  return grads.map((g) => {
    let s = scaleIn.get(g.type.dtype);
    if (!s) {
      s = editor.op('cast', [scale], { dtype: g.type.dtype });
      scaleIn.set(g.type.dtype, s);
    }
    return editor.op('mul', [g, s]);
  });
}

/** Clip by value (torch.nn.utils.clip_grad_value_): every element is clamped to [−limit, limit]. */
export function clipByValue(editor: GraphEditor, grads: readonly Value[], limit: number): Value[] {
  if (!(limit >= 0) || !Number.isFinite(limit)) throw new Error(`clip value must be a non-negative number, not ${limit}`);
  const bounds = new Map<DType, [Value, Value]>();
  return grads.map((g) => {
    const dtype = g.type.dtype;
    if (!isFloat(dtype)) throw new Error(`internal: cannot clip a ${dtype} gradient`);
    let b = bounds.get(dtype);
    if (!b) {
      b = [editor.scalar(-limit, dtype), editor.scalar(limit, dtype)];
      bounds.set(dtype, b);
    }
    return editor.op('minimum', [editor.op('maximum', [g, b[0]]), b[1]]);
  });
}
