// From source to training graphs: check, elaborate each trained model with its train block's arguments, plan, differentiate.
import type { Arg, TrainDecl } from '../../grammar/ast.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { elaborate } from '../elaborate/elaborate.ts';
import { frozenLayers } from '../train/frozen-layers.ts';
import type { Graph } from '../ir/types.ts';
import type { ModuleLoader } from '../resolve/resolve.ts';
import { planTraining, type TrainingPlan } from '../train/plan.ts';
import { buildTrainingGraph } from '../train/training-graph.ts';
import { optimize } from '../optimize/index.ts';
import { metricTotals } from '../train/metric-totals.ts';
import { type CheckResult, checkSource, inSourceOrder, modelArguments } from './check.ts';
import { timeStage } from '../stage-times.ts';

export interface CompiledTraining {
  readonly plan: TrainingPlan;
  /** The forward graphs: training variant (dropout on, batch statistics) and evaluation variant. */
  readonly forward: Graph;
  readonly evaluation: Graph;
  /** The evaluation graph before the optimization passes (lowering finds metric totals in it). */
  readonly unoptimizedEvaluation: Graph;
  /**
   * One training graph per step, in the plan's order, after the optimization passes; a step whose
   * losses or metrics are functions of sums over the batch (precision, recall, F1) also outputs those
   * sums (`#total<k>`, compiler/train/metric-totals.ts), so a training epoch totals them as a set does.
   */
  readonly steps: readonly Graph[];
  /** Per step, the graph that finishes its epoch's totals into those losses and metrics (undefined where it has none). */
  readonly stepTotals: readonly (Graph | undefined)[];
}

export function compileTraining(
  text: string,
  file: string,
  loadModule?: ModuleLoader,
  options: {
    readonly modelArgs?: ReadonlyMap<string, readonly Arg[]>;
    /** Skip checking the train block's data against the model (the caller brings its own). */ readonly ownData?: boolean;
    /** Skip checking the train block's batch against the model's conditions on B (the caller brings its own: dlc train checks it). */ readonly ownBatch?: boolean;
    /** Only the train blocks of this model. */ readonly only?: string;
  } = {},
): { trainings: readonly CompiledTraining[]; diagnostics: readonly Diagnostic[]; checked: CheckResult } {
  // the train blocks are planned below, with the caller's arguments
  const checked = checkSource(text, file, loadModule, { trainBlocks: false, ...(options.modelArgs ? { modelArgs: options.modelArgs } : {}) });
  if (checked.diagnostics.some((d) => d.severity === 'error')) return { trainings: [], diagnostics: checked.diagnostics, checked };
  const diagnostics: Diagnostic[] = [...checked.diagnostics];
  const trainings: CompiledTraining[] = [];
  // the standard library and the local files the source imports
  const modules = checked.modules;
  for (const train of checked.program.body.stmts.filter((d): d is TrainDecl => d.kind === 'Train' && (options.only === undefined || d.model.text === options.only))) {
    // the train block's arguments, and the caller's (`--args`) over them
    const given = options.modelArgs?.get(train.model.text) ?? [];
    // every model as check elaborates it (with its own train block's arguments), so another model's
    // defaults, which its train block overrides, do not fail this block's compile
    const modelArgs = new Map(
      checked.program.body.stmts.flatMap((d) => (d.kind === 'Model' ? [[d.name.text, modelArguments(checked.program, d.name.text, options.modelArgs?.get(d.name.text))] as [string, Arg[]]] : [])),
    );
    const variant = (training: boolean) => timeStage('elaborate', () => elaborate(checked.program, { modules, imports: checked.imports, training, modelArgs }));
    const trainVariant = variant(true);
    const evalVariant = variant(false);
    diagnostics.push(...trainVariant.diagnostics);
    let forward = trainVariant.graphs.get(train.model.text);
    const evaluation = evalVariant.graphs.get(train.model.text);
    if (!forward || !evaluation) continue;
    // the block's data is checked against the model the block describes; with the caller's own
    // arguments or data, dlc train checks the data it loads instead
    const checkData = !options.ownData && given.length === 0;
    const planned = planTraining(train, forward, { checkData, checkBatch: !options.ownBatch });
    diagnostics.push(...planned.diagnostics);
    if (!planned.plan) continue;
    let plan = planned.plan;
    // `freeze_mode = "inference"`: the frozen layers are built as in evaluation within the training step
    const inference = plan.settings.freeze_mode === 'inference' ? frozenLayers(forward, plan.frozen) : new Set<string>();
    if (inference.size > 0) {
      const rebuilt = elaborate(checked.program, { modules, imports: checked.imports, training: true, modelArgs, inferenceLayers: new Map([[train.model.text, inference]]) }).graphs.get(train.model.text);
      const replanned = rebuilt && planTraining(train, rebuilt, { checkData, checkBatch: !options.ownBatch });
      if (!rebuilt || !replanned?.plan) continue;
      forward = rebuilt;
      plan = replanned.plan;
    }
    // the sums are found before the optimizer stacks the rows of unrolled steps, as the evaluation's
    const split = plan.steps.map((s) => {
      const raw = timeStage('autodiff', () => buildTrainingGraph(forward, plan, s));
      const totals = metricTotals(raw).split;
      return { step: timeStage('optimize', () => optimize(totals?.evaluation ?? raw)), finish: totals?.finish };
    });
    trainings.push({ plan, forward, evaluation: timeStage('optimize', () => optimize(evaluation)), unoptimizedEvaluation: evaluation, steps: split.map((x) => x.step), stepTotals: split.map((x) => x.finish) });
  }
  // in source order, as dlc check lists them
  return { trainings, diagnostics: inSourceOrder(diagnostics), checked };
}
