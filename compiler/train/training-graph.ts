// Builds one training graph per step: forward, loss, backward, clipping, schedule and optimizer update.
import { addGradients } from '../autodiff/grad.ts';
import { GraphEditor } from '../ir/editor.ts';
import type { Graph, Value } from '../ir/types.ts';
import { applyOptimizer, clipByGlobalNorm, clipByValue, optimizerLr, stepCounter, type ParamGrad } from './optimizers.ts';
import { matchesPath, type ObjectiveExpr, type TrainingPlan, type TrainStepPlan } from './plan.ts';
import { scheduleLr } from './schedules.ts';

/**
 * The training graph of `step`: the forward graph (training variant) plus the gradient of the step's
 * loss with respect to its parameters only, optional clipping, the learning-rate schedule over the
 * step's own counter, and the optimizer update. New parameter values are `ParamInfo.update`; new
 * optimizer moments and counters are state updates, and so is the random key (`rng.key`), which
 * advances by one per step so dropout masks differ from step to step. Parameters outside the step are untouched.
 */
export function buildTrainingGraph(forward: Graph, plan: TrainingPlan, step: TrainStepPlan): Graph {
  const editor = new GraphEditor(forward, step.span);
  let loss = step.objective ? objectiveValue(editor, forward, step.objective) : forward.losses.get(step.loss);
  if (!loss) throw new Error(`internal: the plan names a loss \`${step.loss}\` the graph lacks`);
  // an objective expression is a loss of this step, logged under the plan's name for it
  if (step.objective) editor.losses.set(step.loss, loss);
  if (step.maximize) loss = editor.op('neg', [loss]);

  const params = forward.params.filter((p) => step.params.includes(p.path));
  const gradients = addGradients(editor, loss, params.map((p) => p.value));
  let grads: Value[] = params.map((p) => gradients.get(p.value.id)!);
  // the nodes below implement train block settings: each carries the span of the setting it implements
  const settingSpan = (name: string) => plan.settingSpans[name] ?? step.optimizerSpan;
  if (plan.clipGradNorm !== undefined) grads = clipByGlobalNorm(editor.at(settingSpan('clip_grad_norm')), grads, plan.clipGradNorm);
  if (plan.clipGradValue !== undefined) grads = clipByValue(editor.at(settingSpan('clip_grad_value')), grads, plan.clipGradValue);

  // one step counter (`opt.<step>.t`, advanced by the optimizer) drives both the schedule and bias correction
  const counter = stepCounter(editor.at(step.optimizerSpan), step.name);
  const lr = scheduleLr(editor.at(settingSpan('schedule')), optimizerLr(step.optimizer), plan.schedule, counter);
  editor.at(step.optimizerSpan);

  const paramGrads: ParamGrad[] = params.map((p, i) => {
    const options = Object.assign({}, ...plan.groups.filter((g) => g.params.some((q) => matchesPath(p.path, q))).map((g) => g.options));
    return { path: p.path, param: p.value, grad: grads[i], ...(Object.keys(options).length > 0 ? { options } : {}) };
  });
  const updated = applyOptimizer(editor, step.optimizer, paramGrads, lr, step.name);
  for (const [path, value] of updated) editor.paramUpdates.set(path, value);
  // dropout and other random ops draw from Philox keyed by `rng.key`: each step moves to the next key
  const rngKey = forward.state.find((s) => s.path === 'rng.key');
  if (rngKey) editor.stateUpdates.set('rng.key', editor.at(step.span).op('add', [rngKey.value, editor.scalar(1, 'u32')]));
  return editor.finish(plan.steps.length === 1 ? forward.name : `${forward.name}.${step.name}`);
}

/** The forward graph with a step's objective expression as one more loss, under the step's name for it (`dlc gradcheck`). */
export function withObjectiveLoss(forward: Graph, step: TrainStepPlan): Graph {
  if (!step.objective) return forward;
  const editor = new GraphEditor(forward, step.span);
  editor.losses.set(step.loss, objectiveValue(editor, forward, step.objective));
  return editor.finish(forward.name);
}

/** The value of an objective expression of the forward graph's losses and metrics. */
function objectiveValue(editor: GraphEditor, forward: Graph, e: ObjectiveExpr): Value {
  switch (e.kind) {
    case 'quantity': {
      const v = forward.losses.get(e.name) ?? forward.metrics.get(e.name);
      if (!v) throw new Error(`internal: the objective names \`${e.name}\`, which the graph lacks`);
      return v;
    }
    case 'number':
      return editor.scalar(e.value);
    case 'neg':
      return editor.op('neg', [objectiveValue(editor, forward, e.operand)]);
    case 'binary':
      return editor.op(e.op, [objectiveValue(editor, forward, e.left), objectiveValue(editor, forward, e.right)]);
  }
}

/** The forward graph plus d(loss)/d(input) as outputs `grad.<input>` (saliency maps, adversarial examples). */
export function withInputGradients(forward: Graph, lossName: string, inputs: readonly string[]): Graph {
  const editor = new GraphEditor(forward);
  const loss = forward.losses.get(lossName);
  if (!loss) throw new Error(`the graph has no loss \`${lossName}\``);
  const chosen = forward.inputs.filter((i) => inputs.includes(i.name));
  const grads = addGradients(editor, loss, chosen.map((i) => i.value));
  for (const i of chosen) editor.outputs.set(`grad.${i.name}`, grads.get(i.value.id)!);
  return editor.finish();
}
