// From source to runtime programs: one per model (trained models carry their training steps), or diagnostics.
import type { Arg } from '../../grammar/ast.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import { lowerModel, type ModelGraphs } from '../codegen/program.ts';
import { diagnostic, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { elaborate } from '../elaborate/elaborate.ts';
import { optimize } from '../optimize/index.ts';
import type { ModuleLoader } from '../resolve/resolve.ts';
import { stdlibModules } from './stdlib.ts';
import { timeStage } from '../stage-times.ts';
import { compileTraining } from './train.ts';
import type { ObjectiveExpr } from '../train/plan.ts';

export interface CompileResult {
  readonly programs: readonly ModelProgram[];
  readonly diagnostics: readonly Diagnostic[];
  /** With `keepGraphs`: the IR each program was lowered from, `graphs[i]` for `programs[i]` (`dlc compile --report`). */
  readonly graphs?: readonly ModelGraphs[];
}

/**
 * Every model in the file as a runtime program. A model named by a `train` block gets that block's
 * training steps and settings; other models get predict and evaluate only. Never throws: a compiler
 * bug becomes E0900.
 */
export function compileSource(
  text: string,
  file: string,
  loadModule?: ModuleLoader,
  options: {
    readonly modelArgs?: ReadonlyMap<string, readonly Arg[]>;
    readonly fuse?: boolean;
    /** Optimizer updates over arenas (default: as `fuse`). */ readonly fuseUpdates?: boolean;
    readonly keepGraphs?: boolean;
    /** The caller brings its own data (`dlc train --data`): the train block's data is not checked against the model. */ readonly ownData?: boolean;
    /** The caller brings its own batch size or example count (`dlc train --batch`, `--limit`): the train block's batch and splits are not checked against the model's conditions on B (dlc train checks those it runs). */ readonly ownBatch?: boolean;
    /** Build and lower only this model (`--model`); the file is still checked whole. */ readonly only?: string;
  } = {},
): CompileResult {
  try {
    const { trainings, diagnostics, checked } = compileTraining(text, file, loadModule, options);
    const all: Diagnostic[] = [...diagnostics];
    if (all.some((d) => d.severity === 'error')) return { programs: [], diagnostics: all };
    const programs: ModelProgram[] = [];
    const kept: ModelGraphs[] = [];
    const otherSources = stdlibModules().sources;
    // a compiler bug while lowering one model is that model's E0900, at its declaration; the others still compile
    const declared = new Map(checked.program.body.stmts.flatMap((s) => (s.kind === 'Model' ? [[s.name.text, s.name.span] as const] : [])));
    const lower = (m: ModelGraphs) => {
      let lowered: ReturnType<typeof lowerModel>;
      try {
        lowered = lowerModel({ ...m, otherSources }, { fuse: options.fuse, fuseUpdates: options.fuseUpdates });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        all.push(diagnostic('E0900', `internal error while compiling model \`${m.forward.name}\`: ${message}`, declared.get(m.forward.name) ?? { file, start: 0, end: 0 }));
        return;
      }
      all.push(...lowered.diagnostics);
      if (!lowered.program) return;
      programs.push(lowered.program);
      kept.push(m);
    };
    for (const t of trainings) {
      lower({
        file,
        source: text,
        forward: t.forward,
        evaluation: t.evaluation,
        unoptimizedEvaluation: t.unoptimizedEvaluation,
        steps: t.steps,
        stepTotals: t.stepTotals,
        training: {
          steps: t.plan.steps.map((s) => ({ name: s.name, loss: s.loss, params: s.params, maximize: s.maximize, ...(s.objective ? { terms: objectiveTerms(s.objective) } : {}) })),
          settings: t.plan.settings,
          ...(t.plan.adapt.length > 0 ? { adapt: t.plan.adapt } : {}),
        },
      });
    }
    const trained = new Set(trainings.map((t) => t.forward.name));
    const untrained = [...checked.graphs.keys()].filter((name) => !trained.has(name) && (options.only === undefined || name === options.only));
    if (untrained.length > 0) {
      const modules = checked.modules;
      const modelArgs = options.modelArgs ?? new Map();
      const trainGraphs = timeStage('elaborate', () => elaborate(checked.program, { modules, imports: checked.imports, training: true, modelArgs })).graphs;
      const evalGraphs = timeStage('elaborate', () => elaborate(checked.program, { modules, imports: checked.imports, training: false, modelArgs })).graphs;
      for (const name of untrained) {
        const forward = trainGraphs.get(name);
        const evaluation = evalGraphs.get(name);
        if (!forward || !evaluation) continue;
        lower({ file, source: text, forward, evaluation: timeStage('optimize', () => optimize(evaluation)), unoptimizedEvaluation: evaluation, steps: [] });
      }
    }
    return { programs, diagnostics: all, ...(options.keepGraphs ? { graphs: kept } : {}) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { programs: [], diagnostics: [diagnostic('E0900', `internal error while compiling: ${message}`, { file, start: 0, end: 0 })] };
  }
}

/** The losses and metrics an objective expression reads, once each, in the order written. */
function objectiveTerms(e: ObjectiveExpr): string[] {
  if (e.kind === 'quantity') return [e.name];
  if (e.kind === 'number') return [];
  if (e.kind === 'neg') return objectiveTerms(e.operand);
  return [...new Set([...objectiveTerms(e.left), ...objectiveTerms(e.right)])];
}
