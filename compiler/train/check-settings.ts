// The train block's optimizer, schedule, clipping and parameter-group values checked when the block is planned (dlc check), by building their updates on a scratch graph.
import type * as A from '../../grammar/ast.ts';
import { GraphEditor } from '../ir/editor.ts';
import type { Graph, Value } from '../ir/types.ts';
import { applyOptimizer, clipByGlobalNorm, optimizerLr, clipByValue, stepCounter, type ParamGrad } from './optimizers.ts';
import { matchesPath, type TrainingPlan } from './plan.ts';
import { scheduleLr } from './schedules.ts';

/**
 * What the optimizers, schedules and clipping refuse in the plan's values (`sgd(nesterov: true)`
 * without momentum, `step(every: 0)`, a negative `clip_grad_value`, a group `lr` under an optimizer
 * lr of 0, an option the optimizer does not take), each at the setting it comes from: the same
 * builders training uses run on a graph of one scalar per parameter, so `dlc check` reports what
 * `dlc train` would otherwise find only while building the step.
 */
export function settingProblems(plan: TrainingPlan): { message: string; span: A.Span }[] {
  const problems: { message: string; span: A.Span }[] = [];
  const scratchGraph = (): Graph => ({ name: 'settings', inputs: [], params: [], state: [], nodes: [], outputs: new Map(), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] });
  /** Runs `build`; what it throws is a problem at `span` (once per message). Whether it ran clean. */
  const attempt = (span: A.Span, build: () => void): boolean => {
    try {
      build();
      return true;
    } catch (e) {
      const message = (e as Error).message;
      if (!problems.some((p) => p.message === message)) problems.push({ message, span });
      return false;
    }
  };
  for (const step of plan.steps) {
    const editor = new GraphEditor(scratchGraph(), step.span);
    const spanOf = (setting: string) => plan.settingSpans[setting] ?? step.optimizerSpan;
    const grads: Value[] = step.params.map(() => editor.scalar(0));
    if (plan.clipGradNorm !== undefined) attempt(spanOf('clip_grad_norm'), () => clipByGlobalNorm(editor, grads, plan.clipGradNorm!));
    if (plan.clipGradValue !== undefined) attempt(spanOf('clip_grad_value'), () => clipByValue(editor, grads, plan.clipGradValue!));
    const counter = stepCounter(editor, step.name);
    attempt(spanOf('schedule'), () => scheduleLr(editor, optimizerLr(step.optimizer), plan.schedule, counter));
    const inGroup = (path: string, g: (typeof plan.groups)[number]) => g.params.some((q) => matchesPath(path, q));
    const params = step.params.map((path) => {
      const options = Object.assign({}, ...plan.groups.filter((g) => inGroup(path, g)).map((g) => g.options));
      return { path, ...(Object.keys(options).length > 0 ? { options } : {}) };
    });
    // each update on a graph of its own (the optimizer adds its state once per graph), at the schedule's rate
    const update = (ps: readonly { path: string; options?: ParamGrad['options'] }[]) => () => {
      const own = new GraphEditor(scratchGraph(), step.span);
      const rate = own.scalar(optimizerLr(step.optimizer));
      applyOptimizer(own, step.optimizer, ps.map((p) => ({ ...p, param: own.scalar(0), grad: own.scalar(0) })), rate, step.name);
    };
    // the optimizer's own options at the optimizer; then each parameter group's options at the option
    // (an option it does not take, a value out of range), their combination at the group, and last the
    // whole update (the group options are checked with the optimizer's, per parameter)
    let clean = attempt(step.optimizerSpan, update(params.map(({ options: _options, ...p }) => p)));
    if (!clean) continue;
    for (const g of plan.groups) {
      const first = params.find((p) => inGroup(p.path, g));
      if (!first) continue;
      for (const [key, value] of Object.entries(g.options)) clean = attempt(g.optionSpans[key] ?? g.span, update([{ ...first, options: { [key]: value } }])) && clean;
      if (clean) clean = attempt(g.span, update(params.filter((p) => inGroup(p.path, g))));
    }
    if (clean) attempt(step.optimizerSpan, update(params));
  }
  return problems;
}
