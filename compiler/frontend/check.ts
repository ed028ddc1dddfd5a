// The front end as one pure function: text in, AST and every syntax, name, shape and train-block diagnostic out.
import type { Arg, ModelDecl, Program, TrainDecl } from '../../grammar/ast.ts';
import { parse } from '../../grammar/parse.ts';
import { diagnostic, DiagnosticBag, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { elaborate } from '../elaborate/elaborate.ts';
import { bindingLimitDiagnostics, DEFAULT_MAX_BINDING_BYTES } from '../codegen/program.ts';
import type { Graph } from '../ir/types.ts';
import { resolveNames, type ModuleLoader } from '../resolve/resolve.ts';
import { stdlibModules } from './stdlib.ts';
import { planTraining } from '../train/plan.ts';
import { tableMetricDiagnostics } from '../train/metric-totals.ts';
import { timeStage } from '../stage-times.ts';

export interface CheckResult {
  readonly program: Program;
  readonly diagnostics: readonly Diagnostic[];
  /** True when more diagnostics were found than are reported. */
  readonly truncated: boolean;
  /** One typed graph per model, when the file has no syntax or name errors. */
  readonly graphs: ReadonlyMap<string, Graph>;
  /** The modules the file's names come from: the standard library's and the local files it imports. */
  readonly modules: readonly Program[];
  /** Where each file's local `use "path"` leads: importer file -> (path as written -> imported file). */
  readonly imports: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export interface CheckOptions {
  /** Elaborate the training variant (default) or the evaluation variant of each model. */
  readonly training?: boolean;
  /** Also check each train block's setup (optimizer, schedule, datasets, parameter paths) against its model with the block's arguments (default true). */
  readonly trainBlocks?: boolean;
  /** Hyperparameters the caller gives a model (`--args`), over its train block's. */
  readonly modelArgs?: ReadonlyMap<string, readonly Arg[]>;
}

/**
 * The arguments a model is elaborated with: its train block's (`train M(hidden: 512)`), with the
 * caller's (`--args`) replacing those of the same name; a caller's value by position gives the
 * model's hyperparameter at that position (`--args 64` is `hidden: 64`).
 */
export function modelArguments(program: Program, model: string, given: readonly Arg[] = []): Arg[] {
  const decl = program.body.stmts.find((d): d is ModelDecl => d.kind === 'Model' && d.name.text === model);
  const train = program.body.stmts.find((d): d is TrainDecl => d.kind === 'Train' && d.model.text === model);
  const byName = given.map((a, i): Arg => (a.name || !decl?.params[i] ? a : { ...a, name: decl.params[i].name }));
  const named = (a: Arg) => (a.name ? a.name.text : undefined);
  const kept = (train?.args ?? []).filter((a) => !byName.some((g) => named(g) !== undefined && named(g) === named(a)));
  return [...kept, ...byName];
}

/**
 * `--args "hidden: 16, depth: 1"` as the arguments of `model`, read as a call's; a message when they
 * are not exactly one argument list (`16) {} train M(8` would end the list early and declare more),
 * or give one hyperparameter twice (by name, or by position and name when `program` declares the model).
 */
export function parseModelArgs(text: string, model: string, program?: Program): Arg[] | string {
  const usage = `cannot read --args \`${text}\`; write them as in a call: "hidden: 16, depth: 1"`;
  const head = `train ${model}(`;
  const source = `${head}${text}) {}`;
  const parsed = parse(source, '<--args>');
  const [decl, ...rest] = parsed.program.body.stmts;
  // the list must end at the `)` this function writes, and the train block be the empty one after it
  const whole = decl?.kind === 'Train' && rest.length === 0 && decl.body.stmts.length === 0 && decl.body.span.start === head.length + text.length + 2 && decl.span.end === source.length;
  if (parsed.diagnostics.length > 0 || !whole || decl.kind !== 'Train') return usage;
  const args = [...(decl.args ?? [])];
  const params = program?.body.stmts.find((d): d is ModelDecl => d.kind === 'Model' && d.name.text === model)?.params ?? [];
  const seen = new Set<string>();
  for (const [i, a] of args.entries()) {
    const name = a.name?.text ?? (a.name === null && args.slice(0, i).every((b) => b.name === null) ? params[i]?.name.text : undefined);
    if (name === undefined) continue;
    if (seen.has(name)) return `--args gives \`${name}\` twice (\`${text}\`): give each hyperparameter once`;
    seen.add(name);
  }
  return args;
}

/** The local files `program` imports, and the files they import, each once (a cycle ends where it closes). */
function localImports(program: Program, loadModule: ModuleLoader | undefined): { modules: Program[]; imports: Map<string, Map<string, string>>; diagnostics: Diagnostic[] } {
  const found: Program[] = [];
  const diagnostics: Diagnostic[] = [];
  const imports = new Map<string, Map<string, string>>();
  const seen = new Set<string>([program.file]);
  const visit = (p: Program) => {
    for (const d of p.body.stmts) {
      if (d.kind !== 'Use' || Array.isArray(d.source)) continue;
      const path = (d.source as { value: string }).value;
      const loaded = loadModule?.(p.file, path);
      if (!loaded) continue;
      const m = loaded.program;
      (imports.get(p.file) ?? imports.set(p.file, new Map()).get(p.file)!).set(path, m.file);
      if (seen.has(m.file)) continue;
      seen.add(m.file);
      found.push(m);
      diagnostics.push(...loaded.diagnostics);
      visit(m);
    }
  };
  visit(program);
  return { modules: found, imports, diagnostics };
}

export function checkSource(text: string, file: string, loadModule?: ModuleLoader, options: CheckOptions = {}): CheckResult {
  const parsed = timeStage('parse', () => parse(text, file));
  const bag = new DiagnosticBag();
  for (const d of parsed.diagnostics) bag.add(d);
  // Inside a declaration that does not parse, name errors would mostly echo the syntax errors: drop them there.
  const broken = parsed.program.body.stmts
    .filter((decl) => parsed.diagnostics.some((d) => d.span.start >= decl.span.start && d.span.start <= decl.span.end))
    .map((decl) => decl.span);
  const inBroken = (d: Diagnostic) => d.span.file === file && broken.some((s) => d.span.start >= s.start && d.span.start <= s.end);
  for (const d of timeStage('resolve', () => resolveNames(parsed.program, loadModule))) if (!inBroken(d)) bag.add(d);
  // the files it imports, and theirs: a syntax error there is this check's too (the model would be built
  // from what the parser recovered, silently: a layer whose forward did not parse)
  const local = localImports(parsed.program, loadModule);
  for (const d of local.diagnostics) bag.add(d);
  let graphs: ReadonlyMap<string, Graph> = new Map();
  let modules: readonly Program[] = stdlibModules().programs;
  let imports: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map();
  // Shapes are checked by elaborating, which needs every name resolved.
  if (!bag.hasErrors) {
    modules = [...modules, ...local.modules];
    imports = local.imports;
    // each model as it is trained and compiled: with its train block's arguments and the caller's (a
    // model whose defaults alone break a `where`, or that has a hyperparameter without one, is fine then)
    const modelArgs = new Map(
      parsed.program.body.stmts.flatMap((d) => (d.kind === 'Model' ? [[d.name.text, modelArguments(parsed.program, d.name.text, options.modelArgs?.get(d.name.text))] as [string, Arg[]]] : [])),
    );
    const result = timeStage('elaborate', () => elaborate(parsed.program, { modules, imports, training: options.training ?? true, modelArgs }));
    for (const d of result.diagnostics) bag.add(d);
    graphs = result.graphs;
    // tensors whose size is known and past one storage binding: compile refuses them (E0401), so check does too
    if (!bag.hasErrors) for (const d of bindingLimitDiagnostics([...graphs.values()], DEFAULT_MAX_BINDING_BYTES, file)) bag.add(d);
    // a metric with a shape (confusion_matrix) must be a sum over the batch: it is reported over a set, from its totals
    if (!bag.hasErrors) for (const g of graphs.values()) for (const d of tableMetricDiagnostics(g)) bag.add(d);
    // each train block as compiling would plan it
    if (!bag.hasErrors && options.trainBlocks !== false) {
      const trainingGraphs = options.training === false ? elaborate(parsed.program, { modules, imports, training: true, modelArgs }).graphs : graphs;
      for (const train of parsed.program.body.stmts.filter((d): d is TrainDecl => d.kind === 'Train')) {
        const model = trainingGraphs.get(train.model.text);
        if (model) for (const d of planTraining(train, model).diagnostics) bag.add(d);
        else {
          // a model imported from a local file: dlc train and dlc compile take the models a file declares
          const from = parsed.program.body.stmts.find(
            (d) => d.kind === 'Use' && !Array.isArray(d.source) && Array.isArray(d.imports) && d.imports.some((i) => (i.alias ?? i.name).text === train.model.text),
          );
          if (from && from.kind === 'Use' && !Array.isArray(from.source)) {
            const path = (from.source as { value: string }).value;
            bag.add(
              diagnostic('E0206', `\`${train.model.text}\` is imported from "${path}": dlc train and dlc compile take the models a file declares, so this train block would never run`, train.model.span, {
                help: `put this train block in ${path} beside the model, or declare the model in this file`,
              }),
            );
          }
        }
      }
    }
  }
  return { program: parsed.program, diagnostics: inSourceOrder(bag.items), truncated: bag.truncated, graphs, modules, imports };
}

/**
 * The diagnostics of each file in the order of their text (syntax, name and shape errors are found in
 * separate passes); the files in the order their first diagnostic was found. The sort is stable.
 */
export function inSourceOrder(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const fileRank = new Map<string, number>();
  for (const d of diagnostics) if (!fileRank.has(d.span.file)) fileRank.set(d.span.file, fileRank.size);
  return [...diagnostics].sort((a, b) => fileRank.get(a.span.file)! - fileRank.get(b.span.file)! || a.span.start - b.span.start);
}
