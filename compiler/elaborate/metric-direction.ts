// Whether a higher or a lower value of a metric is better, read from what the metric is (a std.metrics or std.loss call), never from its name.
import type * as A from '../../grammar/ast.ts';
import type { CtValue, Env } from './values.ts';

/** The standard library's functions whose value is better higher (scores) or lower (errors and losses). */
const HIGHER_IS_BETTER = new Set([
  'accuracy', 'top_k_accuracy', 'precision', 'recall', 'f1', 'binary_accuracy', 'binary_precision', 'binary_recall', 'binary_f1', 'auc', 'r2',
]);
const LOWER_IS_BETTER = new Set(['mse', 'l1', 'huber', 'cross_entropy', 'binary_cross_entropy', 'nll', 'kl_normal', 'mae', 'rmse', 'mape', 'max_error']);
/** Builtins that keep the order of their argument (an increasing function of it: sqrt(mse), exp(cross_entropy) as perplexity). */
const INCREASING = new Set(['sqrt', 'exp', 'log', 'log2', 'log10']);

export type Direction = 'min' | 'max';

const flip = (d: Direction | undefined): Direction | undefined => (d === undefined ? undefined : d === 'min' ? 'max' : 'min');

/**
 * The direction of a metric's expression: a call to one of the standard library's metrics or losses
 * gives theirs; an increasing builtin (sqrt, exp, log, log10) of one keeps it, negation and a
 * negative constant factor flip it (`-10.0 * log10(mse(...))`, PSNR, rises). Anything else is unknown
 * (undefined): early stopping and a checkpoint's monitor then need `mode`.
 */
export function metricDirection(e: A.Expr, env: Env): Direction | undefined {
  switch (e.kind) {
    case 'Unary':
      return e.op === '-' ? flip(metricDirection(e.operand, env)) : e.op === '+' ? metricDirection(e.operand, env) : undefined;
    case 'Binary': {
      if (e.op !== '*') return undefined;
      const factor = (x: A.Expr): number | undefined => (x.kind === 'Number' ? x.value : x.kind === 'Unary' && x.op === '-' && x.operand.kind === 'Number' ? -x.operand.value : undefined);
      const [k, other] = factor(e.left) !== undefined ? [factor(e.left)!, e.right] : factor(e.right) !== undefined ? [factor(e.right)!, e.left] : [undefined, undefined];
      if (k === undefined || other === undefined || k === 0) return undefined;
      const d = metricDirection(other, env);
      return k > 0 ? d : flip(d);
    }
    case 'Call': {
      const callee = calleeValue(e.callee, env);
      if (callee?.kind === 'builtin' && INCREASING.has(callee.name) && e.args.length === 1 && !e.args[0].name) return metricDirection(e.args[0].value, env);
      // the library's own function, not a user's of the same name
      if (callee?.kind === 'closure' && callee.span.file.startsWith('stdlib/')) {
        if (HIGHER_IS_BETTER.has(callee.name)) return 'max';
        if (LOWER_IS_BETTER.has(callee.name)) return 'min';
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** What a callee names (`accuracy`, `metrics.accuracy` of `use std.metrics as metrics`), without evaluating anything. */
function calleeValue(e: A.Expr, env: Env): CtValue | undefined {
  if (e.kind === 'Ident') return env.lookup(e.name);
  if (e.kind === 'Member') {
    const m = calleeValue(e.target, env);
    return m?.kind === 'module' && m.exports.includes(e.member.text) ? m.env.lookup(e.member.text) : undefined;
  }
  return undefined;
}
