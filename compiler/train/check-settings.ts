// The train block's optimizer, schedule, clipping and parameter-group values checked when the block is planned (dlc check), by building their updates on a scratch graph.
import type * as A from '../../grammar/ast.ts';
import { GraphEditor } from '../ir/editor.ts';
import type { Graph, Value } from '../ir/types.ts';
import { applyOptimizer, clipByGlobalNorm, clipByValue, stepCounter, type ParamGrad } from './optimizers.ts';
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
  const scratch: Graph = { name: 'settings', inputs: [], params: [], state: [], nodes: [], outputs: new Map(), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
  const attempt = (span: A.Span, build: () => void) => {
    try {
      build();
    } catch (e) {
      const message = (e as Error).message;
      if (!problems.some((p) => p.message === message)) problems.push({ message, span });
    }
  };
  for (const step of plan.steps) {
    const editor = new GraphEditor(scratch, step.span);
    const spanOf = (setting: string) => plan.settingSpans[setting] ?? step.optimizerSpan;
    const grads: Value[] = step.params.map(() => editor.scalar(0));
    if (plan.clipGradNorm !== undefined) attempt(spanOf('clip_grad_norm'), () => clipByGlobalNorm(editor, grads, plan.clipGradNorm!));
    if (plan.clipGradValue !== undefined) attempt(spanOf('clip_grad_value'), () => clipByValue(editor, grads, plan.clipGradValue!));
    const counter = stepCounter(editor, step.name);
    const stepLr = step.optimizer.options.lr;
    let lr: Value = editor.scalar(typeof stepLr === 'number' ? stepLr : plan.baseLr);
    attempt(spanOf('schedule'), () => {
      lr = scheduleLr(editor, typeof stepLr === 'number' ? stepLr : plan.baseLr, plan.schedule, counter);
    });
    const params: ParamGrad[] = step.params.map((path, i) => {
      const options = Object.assign({}, ...plan.groups.filter((g) => g.params.some((q) => matchesPath(path, q))).map((g) => g.options));
      return { path, param: grads[i], grad: grads[i], ...(Object.keys(options).length > 0 ? { options } : {}) };
    });
    // (a parameter group's options are checked with the optimizer's, per parameter)
    attempt(step.optimizerSpan, () => applyOptimizer(editor, step.optimizer, params, lr, step.name));
  }
  return problems;
}
