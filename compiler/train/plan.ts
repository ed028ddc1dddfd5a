// Reads a `train` block into a training plan: steps (loss, parameter set, optimizer), schedule, clipping, freezing, settings.
import type * as A from '../../grammar/ast.ts';
import { settingProblems } from './check-settings.ts';
import { diagnostic, didYouMean, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type { Graph, Value } from '../ir/types.ts';
import { inputsReaching } from '../ir/input-dependencies.ts';
import { imageGeometry, parseAugmentations, type Augmentation } from '../../runtime/augment.ts';
import { AUGMENTATIONS, columnClashes, columnLayouts, type ColumnSpec, CSV_LABEL_TYPES, DATASETS, datasetColumns, datasetLength, environmentColumns, ENVIRONMENT_LIMITS, ENVIRONMENTS, listedFeatureCount } from '../../runtime/catalog.ts';
import { batchRuns, describeRun, nearestFittingBatch, type SplitSize } from '../../runtime/batch-runs.ts';
import { sizeExpr } from '../codegen/size-expr.ts';
import { dimEquals, evaluate, freeVars, isConcrete, shapeToString } from '../shapes/dim.ts';
import { indexInputs, type IndexUse } from '../ir/index-inputs.ts';
import { paramsWithGradient } from '../autodiff/reaches.ts';
import { conditionHolds } from '../../runtime/sizes.ts';
import { splitSizes } from '../../runtime/data.ts';
import { MNIST_LAYOUTS } from '../../runtime/mnist.ts';
import type { AdaptDecl } from '../../runtime/program.ts';
import { adaptTargets } from './adapt.ts';

/** A setting's value as the user would write it, for messages. */
function printedValue(v: SettingValue | undefined): string {
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v) ?? String(v);
}
import { OPTIMIZER_DEFAULTS, OPTION_RANGES, optimizerLr, type OptimizerSpec } from './optimizers.ts';
import { SCHEDULE_DEFAULTS, type ScheduleSpec } from './schedules.ts';

/** The batch size of a train block that gives no `batch` (dlc train's, fit()'s and the report's). */
export const DEFAULT_BATCH = 32;

/** How frozen layers run while the others train: as in training (PyTorch's requires_grad = False), or as in evaluation (Keras). */
export const FREEZE_MODES = ['train', 'inference'] as const;

export type SettingValue = number | boolean | string | null | readonly SettingValue[] | { readonly call: string; readonly args: Readonly<Record<string, SettingValue>> };

/** Why a rename rule is not `"FILE -> MODEL"` with at most one `*` on each side, on both or neither; undefined when it is. */
export function renameRuleProblem(rule: string): string | undefined {
  const sides = rule.split('->').map((x) => x.trim());
  if (sides.length !== 2 || sides[0] === '' || sides[1] === '') return 'a rename is "FILE -> MODEL": the file\'s name, then the model\'s (e.g. "module.* -> *", "fc.weight -> fc.w")';
  const stars = sides.map((x) => x.split('*').length - 1);
  if (stars[0] > 1 || stars[1] > 1) return 'each side takes at most one `*`';
  if (stars[0] !== stars[1]) return 'a `*` on one side needs one on the other: it carries the part of the name between them';
  return undefined;
}

/** An objective written as an expression of the model's losses and metrics: `recon + 0.1 * kl`. */
export type ObjectiveExpr =
  | { readonly kind: 'quantity'; readonly name: string }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'neg'; readonly operand: ObjectiveExpr }
  | { readonly kind: 'binary'; readonly op: 'add' | 'sub' | 'mul' | 'div'; readonly left: ObjectiveExpr; readonly right: ObjectiveExpr };

export interface TrainStepPlan {
  readonly name: string;
  /** The loss the step minimizes: a loss of the model, or the name its objective expression gets in the step's losses. */
  readonly loss: string;
  /** The objective when it is an expression rather than one loss's name (its value is the step's loss `loss`). */
  readonly objective?: ObjectiveExpr;
  /** Parameter paths this step updates (after freezing). */
  readonly params: readonly string[];
  readonly optimizer: OptimizerSpec;
  readonly maximize: boolean;
  readonly span: A.Span;
  /** Where the step's optimizer is written (its own, else the block's `optimizer = ...`): the update kernels' source line. */
  readonly optimizerSpan: A.Span;
}

export interface ParamGroup {
  readonly params: readonly string[];
  readonly options: Readonly<Record<string, number | boolean>>;
  /** Where the group is written (its `param_group` word) and each of its options (`momentum = 0.9`): where their problems are reported. */
  readonly span: A.Span;
  readonly optionSpans: Readonly<Record<string, A.Span>>;
}

export interface TrainingPlan {
  readonly model: string;
  readonly steps: readonly TrainStepPlan[];
  readonly schedule?: ScheduleSpec;
  readonly baseLr: number;
  readonly clipGradNorm?: number;
  readonly clipGradValue?: number;
  readonly frozen: readonly string[];
  readonly groups: readonly ParamGroup[];
  /** The layers `adapt` names, with the input each reads: their statistics are set from the training data before training. */
  readonly adapt: readonly AdaptDecl[];
  /** Every other setting, evaluated (batch, epochs, data, early_stopping, ...), for the runtime. */
  readonly settings: Readonly<Record<string, SettingValue>>;
  /** Where each setting of the block is written (`clip_grad_norm`, `schedule`, ...): the source line of the kernels it becomes. */
  readonly settingSpans: Readonly<Record<string, A.Span>>;
}

const OPTIMIZERS = ['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'] as const;
const SCHEDULES = ['constant', 'step', 'exponential', 'cosine', 'linear', 'warmup'] as const;

/** `net.hidden.0`, `net.hidden[0]`, `net.*.b` as a dotted path pattern. */
export function pathOf(e: A.Expr): string | undefined {
  switch (e.kind) {
    case 'Ident':
      return e.name;
    case 'Member': {
      const base = pathOf(e.target);
      return base === undefined ? undefined : `${base}.${e.member.text}`;
    }
    case 'Index': {
      const base = pathOf(e.target);
      const i = e.items[0];
      return base !== undefined && e.items.length === 1 && i.kind === 'Number' ? `${base}.${i.text}` : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * Whether a parameter path lies under a pattern: `net.fc1` names everything under it, and `*` stands
 * for one or more path components, so `net.*.bn1.*` matches `net.stages.0.first.bn1.gamma`.
 */
export function matchesPath(path: string, pattern: string): boolean {
  const body = pattern
    .split('.')
    .map((part) => (part === '*' ? '[^.]+(?:\\.[^.]+)*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('\\.');
  return new RegExp(`^${body}(?:\\..+)?$`).test(path);
}

export function planTraining(train: A.TrainDecl, graph: Graph, options: { readonly checkData?: boolean; readonly checkBatch?: boolean } = {}): { plan?: TrainingPlan; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const report = (message: string, span: A.Span, help?: string) => diagnostics.push(diagnostic('E0206', message, span, help ? { help } : {}));
  const allPaths = graph.params.map((p) => p.path);

  const value = (e: A.Expr): SettingValue => {
    switch (e.kind) {
      case 'Number':
        return e.value;
      case 'Bool':
        return e.value;
      case 'String':
        return e.value;
      case 'None':
        return null;
      case 'Unary':
        if (e.op === '-' && e.operand.kind === 'Number') return -e.operand.value;
        break;
      case 'List':
      case 'Tuple':
        return e.items.map(value);
      case 'Ident':
      case 'Member':
        return pathOf(e) ?? null;
      case 'Call': {
        const callee = pathOf(e.callee);
        if (callee === undefined) break;
        const args: Record<string, SettingValue> = {};
        e.args.forEach((a, i) => {
          args[a.name?.text ?? `${i}`] = value(a.value);
        });
        return { call: callee, args };
      }
      default:
        break;
    }
    report('a training setting must be a literal, a path or a call with literal arguments', e.span);
    return null;
  };

  const numbers = (args: Readonly<Record<string, SettingValue>>, span: A.Span): Record<string, number | boolean> => {
    const out: Record<string, number | boolean> = {};
    for (const [k, v] of Object.entries(args)) {
      if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
      else report(`the option \`${k}\` must be a number or a bool`, span);
    }
    return out;
  };

  /** Unknown options and missing required ones (a null default), reported here rather than thrown later. */
  const checkOptions = (what: string, known: Readonly<Record<string, unknown>>, given: Readonly<Record<string, unknown>>, span: A.Span) => {
    for (const k of Object.keys(given)) {
      if (!(k in known)) report(`${what} has no option \`${k}\``, span, didYouMean(k, Object.keys(known)) ?? `its options are ${Object.keys(known).join(', ')}`);
    }
    for (const [k, v] of Object.entries(known)) {
      if (v === null && !(k in given)) report(`${what} needs the option \`${k}\``, span, k === 'total' ? 'give the number of training steps, e.g. total: 5000' : undefined);
    }
  };

  /** A call `dlc train` runs (a dataset, an environment, an augmentation) must name one it knows, with arguments it takes. */
  const checkCall = (what: string, catalog: Readonly<Record<string, readonly string[]>>, e: A.Expr) => {
    const call = e.kind === 'Call' ? e : undefined;
    const name = e.kind === 'String' ? e.value : pathOf(call ? call.callee : e);
    if (name === undefined) return;
    if (!Object.hasOwn(catalog, name)) {
      report(`\`${name}\` is not ${what} dlc train knows`, e.span, didYouMean(name, Object.keys(catalog)) ?? `it knows ${Object.keys(catalog).join(', ')}`);
      return;
    }
    const known = catalog[name];
    if (catalog === ENVIRONMENTS && call) checkEnvArgs(name, call);
    for (const a of call?.args ?? []) {
      // dlc train passes these calls' arguments by name only: a positional one was taken as argument `0`
      if (!a.name) {
        const first = known[0];
        report(`\`${name}\` takes its arguments by name`, a.value.span, known.length === 0 ? 'it takes none' : `e.g. \`${name}(${first}: ...)\`; its arguments are ${known.join(', ')}`);
        continue;
      }
      if (a.name && !known.includes(a.name.text)) report(`\`${name}\` has no argument \`${a.name.text}\``, a.name.span, didYouMean(a.name.text, known) ?? (known.length === 0 ? 'it takes none' : `its arguments are ${known.join(', ')}`));
      // a CSV's label type is one of a few words
      if (name === 'csv' && a.name?.text === 'label_type' && a.value.kind === 'String' && !(CSV_LABEL_TYPES as readonly string[]).includes(a.value.value)) {
        report(`\`label_type\` is one of ${CSV_LABEL_TYPES.map((t) => `"${t}"`).join(', ')}, not "${a.value.value}"`, a.value.span, didYouMean(a.value.value, CSV_LABEL_TYPES));
      }
      // a CSV's missing cells read as a number, or as NaN ("nan")
      if (name === 'csv' && a.name?.text === 'missing' && a.value.kind === 'String' && a.value.value.toLowerCase() !== 'nan') {
        report(`\`missing\` is a number (0.0, -1.0) or "nan", not "${a.value.value}"`, a.value.span, 'missing cells read as that number; "nan" keeps them NaN, for the model to fill with isnan');
      }
      // mnist's layout and scale are constants: checked here, not when dlc train has loaded the data
      if (name === 'mnist' && a.name?.text === 'layout') {
        const layout = value(a.value);
        if (typeof layout !== 'string' || !(MNIST_LAYOUTS as readonly string[]).includes(layout)) {
          report(`\`layout\` is one of ${MNIST_LAYOUTS.map((l) => `"${l}"`).join(', ')}, not ${printedValue(layout)}`, a.value.span, typeof layout === 'string' ? didYouMean(layout, MNIST_LAYOUTS) : undefined);
        }
      }
      if (name === 'mnist' && a.name?.text === 'scale') {
        const scale = value(a.value);
        if (!Array.isArray(scale) || scale.length !== 2 || !scale.every((x) => typeof x === 'number' && Number.isFinite(x))) {
          report(`\`scale\` is the range the pixels are scaled to, two numbers [lo, hi], not ${printedValue(scale)}`, a.value.span, 'e.g. scale: [0.0, 1.0] (the default) or scale: [-1.0, 1.0]');
        }
      }
    }
  };
  /**
   * An environment call's values, as compiler/cli/train-episodes.ts reads them: episodes and max_steps
   * positive integers, gamma and gae_lambda in [0, 1], solved_at a mean return an episode of max_steps
   * steps can reach.
   */
  const checkEnvArgs = (name: string, call: Extract<A.Expr, { kind: 'Call' }>) => {
    const args = new Map(call.args.filter((a) => a.name).map((a) => [a.name!.text, a]));
    const numberOf = (key: string, ok: (v: number) => boolean, what: string): number | undefined => {
      const a = args.get(key);
      if (!a) return undefined;
      const v = value(a.value);
      if (typeof v === 'number' && ok(v)) return v;
      report(`${name}(${key}: ...) must be ${what}, got ${JSON.stringify(v)}`, a.value.span);
      return undefined;
    };
    const positive = (v: number) => Number.isInteger(v) && v >= 1;
    const limits = ENVIRONMENT_LIMITS[name];
    numberOf('episodes', positive, 'a positive integer (episodes collected per update)');
    numberOf('gamma', (v) => v >= 0 && v <= 1, 'a discount in [0, 1]');
    numberOf('gae_lambda', (v) => v >= 0 && v <= 1, "GAE's lambda in [0, 1] (0: one-step TD advantages, 1: Monte-Carlo returns less the value)");
    const maxSteps = numberOf('max_steps', positive, 'a positive integer (the steps after which an episode is cut off)') ?? (args.has('max_steps') ? undefined : limits?.maxSteps);
    const solvedAt = numberOf('solved_at', Number.isFinite, 'a number (the mean episode return that stops training)');
    // every step's reward is at most rewardHigh: an episode of max_steps steps returns at most max_steps times it
    if (solvedAt !== undefined && maxSteps !== undefined && limits && solvedAt > maxSteps * limits.rewardHigh) {
      const a = args.get('solved_at')!;
      const best = maxSteps * limits.rewardHigh;
      const why = limits.rewardHigh > 0 ? `an episode ends after max_steps = ${maxSteps} steps, with a return of at most ${best}` : `every step's reward is at most ${limits.rewardHigh}, so an episode returns at most ${best}`;
      report(`${name}(solved_at: ${solvedAt}) can never be reached: ${why}`, a.value.span, limits.rewardHigh > 0 ? `lower solved_at to at most ${best}, or raise max_steps` : `lower solved_at to at most ${best}`);
    }
  };
  const checkCatalogCalls = (setting: string, e: A.Expr) => {
    if (setting === 'data' || setting === 'validation') checkCall('a dataset', DATASETS, e);
    else if (setting === 'env') checkCall('an environment', ENVIRONMENTS, e);
    else if (setting === 'augment') for (const item of e.kind === 'List' ? e.items : [e]) checkCall('an augmentation', AUGMENTATIONS, item);
  };

  /**
   * A dataset whose columns are known without reading it must give each input of the model: the
   * dtype, and one example's shape after the batch axis (a symbolic size binds to the data's; a flat
   * column of the same size also feeds a shaped input, as dlc train allows).
   */
  const checkDataFits = (v: SettingValue, span: A.Span, setting: string) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !('call' in v)) return;
    const bound = new Map<string, number>();
    if (setting === 'data') dataSizes = { sizes: bound, span, source: `\`${v.call}()\`` };
    const columns = datasetColumns(v.call, v.args);
    // a CSV whose feature columns are listed: its `features` column's size is known (the rest is the file's)
    const listed = columns ? undefined : listedFeatureCount(v.call, v.args);
    const features = graph.inputs.find((i) => i.name === 'features');
    if (listed !== undefined && features && features.value.type.shape.length >= 1) {
      const perExample = features.value.type.shape.slice(1);
      const clash = columnClashes(perExample.map(sizeExpr), [listed], bound);
      if (clash === 'rank' || clash.length > 0) {
        const declared = `${features.value.type.dtype}${shapeToString(features.value.type.shape)}`;
        diagnostics.push(diagnostic('E0207', `the CSV's ${listed} listed \`columns\` give \`features\` as f32[${listed}] per example, but the model's input is ${declared}: ${clash === 'rank' ? `one example is ${shapeToString(perExample)} after the batch axis` : clash.join('; ')}`, span));
      }
    }
    if (columns) checkColumns(v.call, columns, span, bound);
    // a CSV gives `features` (f32) and, with `label:`, `label`, whatever the file holds, and a column per categorical one
    if (v.call === 'csv') {
      const categorical = checkCategorical(v.args, categoricalSpan ?? span);
      // a list of label columns: a label of shape [k] per example, which the model's `label` must take
      const labels = v.args.label;
      const input = graph.inputs.find((i) => i.name === 'label');
      if (Array.isArray(labels)) {
        const t = input?.value.type;
        if (labels.length === 0 || !labels.every((x) => typeof x === 'string' || (typeof x === 'number' && Number.isInteger(x) && x >= 0))) {
          diagnostics.push(diagnostic('E0207', '`label` lists the target columns by name or 0-based index, and at least one', span, { help: 'for example `label: ["y1", "y2", "y3"]`' }));
        } else if (t && (t.shape.length !== 2 || (typeof t.shape[1] === 'number' && t.shape[1] !== labels.length) || v.args.label_type === 'class')) {
          const given = v.args.label_type === 'int' ? 'i32' : 'f32';
          diagnostics.push(
            diagnostic('E0207', `the CSV's ${labels.length} label columns give \`label\` as ${given}[B, ${labels.length}], but the model's input is ${t.dtype}${shapeToString(t.shape)}`, span, {
              secondary: [{ span: input!.span, message: 'the input' }],
              help: v.args.label_type === 'class' ? 'a class label is one column: label: "y"' : `declare \`input label: ${given}[B, ${labels.length}]\`, or list ${t.shape.length === 1 ? 'one column (label: "y")' : 'as many columns as it takes'}`,
            }),
          );
        }
      }
      const names = [...(v.args.label === undefined ? ['features'] : ['features', 'label']), ...categorical];
      for (const input of graph.inputs) {
        if (categorical.includes(input.name)) {
          const t = input.value.type;
          if (t.dtype !== 'i32' || t.shape.length !== 1) {
            diagnostics.push(
              diagnostic('E0207', `the categorical column \`${input.name}\` gives one i32 index per example (i32[B]), but the model's input is ${t.dtype}${shapeToString(t.shape)}`, categoricalSpan ?? span, {
                secondary: [{ span: input.span, message: 'the input' }],
                help: `declare \`input ${input.name}: i32[B]\` and read it with an Embedding(n + 1, d) or one_hot(${input.name}, n + 1), n the values of its vocabulary (index 0 is any value training did not see)`,
              }),
            );
          }
          continue;
        }
        if (names.includes(input.name)) continue;
        const declared = `${input.value.type.dtype}${shapeToString(input.value.type.shape)}`;
        diagnostics.push(diagnostic('E0207', `\`csv()\` has no column \`${input.name}\` for the model's input ${input.name}: ${declared}; it gives ${names.map((n) => `\`${n}\``).join(' and ')} (every other column of the file, as f32)`, span, {
          help: v.args.label === undefined && input.value.type.dtype === 'i32' ? `name the label column (\`csv(path: ..., label: "${input.name}")\`) and the input \`label\`` : 'a CSV feeds one `features` input (f32[B, n]) and one `label`: name the inputs so, and cast or slice the features in the model',
        }));
      }
    }
    // the model's size conditions on the sizes the data fixes (a text's window L against `L <= ctx + 1`)
    const source = listed !== undefined ? `the CSV's ${listed} listed \`columns\`` : `\`${v.call}()\``;
    for (const c of graph.constraints ?? []) {
      const names = [...freeVars(c.left), ...freeVars(c.right)];
      if (names.length === 0 || !names.every((n) => bound.has(n))) continue;
      const l = evaluate(c.left, bound);
      const r = evaluate(c.right, bound);
      if (conditionHolds(c.op, l, r)) continue;
      const fixed = [...new Set(names)].map((n) => `${n} = ${bound.get(n)}`).join(', ');
      diagnostics.push(
        diagnostic('E0304', `${source} ${listed !== undefined ? 'give' : 'gives'} examples with ${fixed}, which breaks the model's condition \`${c.text}\` (${l} ${c.op} ${r} is false)`, span, {
          secondary: [{ span: c.span, message: 'the condition' }],
          help: 'train with data that fits the condition (a text\'s `context:`), or change the model\'s sizes',
        }),
      );
    }
  };
  /**
   * A CSV's `categorical` columns (names), with what makes them impossible reported at `span`: a list of
   * other than strings, a column that is also the label or a listed numeric column, or one named as the
   * features or label columns are (E0207).
   */
  const checkCategorical = (args: Readonly<Record<string, SettingValue>>, span: A.Span): string[] => {
    const given = args.categorical;
    if (given === undefined) return [];
    const names = Array.isArray(given) ? given.filter((c): c is string => typeof c === 'string') : [];
    const fault = (message: string, help?: string) => diagnostics.push(diagnostic('E0207', message, span, help ? { help } : {}));
    if (!Array.isArray(given) || names.length !== given.length) fault('`categorical` is a list of the CSV\'s column names (strings)', 'for example `categorical = ["color", "city"]`');
    const numeric = Array.isArray(args.features) ? args.features : [];
    for (const name of names) {
      if (numeric.includes(name)) fault(`the column "${name}" is both numeric (listed in \`columns\`) and categorical`, 'a column is read one way: keep it in one of the lists');
      if (args.label === name) fault(`the column "${name}" is both the label and categorical`, 'a string label is read as class names already (`label_type: "class"`)');
      if (name === 'features' || name === 'label') fault(`a categorical column may not be named "${name}": the CSV's ${name} column has that name`, 'rename the column in the file');
    }
    return names;
  };
  /** Where a data block's `categorical = [...]` is written: its problems are shown there. */
  let categoricalSpan: A.Span | undefined;
  /** The sizes the train block's `data` fixes (a text's L, a listed CSV's features F), bound by checkDataFits. */
  let dataSizes: { sizes: Map<string, number>; span: A.Span; source: string } | undefined;

  /** A dataset's known columns against the model's inputs (dtype, per-example shape, class count), binding the sizes they fix in `bound`. */
  const checkColumns = (call: string, columns: Readonly<Record<string, ColumnSpec>>, span: A.Span, bound: Map<string, number>) => {
    const given = Object.keys(columns).map((c) => `\`${c}\``).join(', ');
    for (const input of graph.inputs) {
      const t = input.value.type;
      const column = columns[input.name];
      const declared = `${t.dtype}${shapeToString(t.shape)}`;
      if (!column) {
        diagnostics.push(diagnostic('E0207', `\`${call}()\` has no column \`${input.name}\` for the model's input ${input.name}: ${declared}; it gives ${given}`, span, { help: 'name the input as the data names its column, or train with data that has it' }));
        continue;
      }
      const shown = `${column.dtype}[${column.shape.join(', ')}]`;
      const mismatch = (why: string, help?: string) => diagnostics.push(diagnostic('E0207', `\`${call}()\` gives \`${input.name}\` as ${shown} per example, but the model's input is ${declared}: ${why}`, span, help ? { help } : {}));
      if (column.dtype !== t.dtype) {
        mismatch(`${column.dtype} data for a ${t.dtype} input`);
        continue;
      }
      const perExample = t.shape.slice(1);
      const before = new Map(bound);
      const clash = columnClashes(perExample.map(sizeExpr), column.shape, bound);
      // another layout of the same data that fits (mnist's image as [1, 28, 28] for a convolution)
      const fitsLayout = (shape: readonly number[]) => {
        const c = columnClashes(perExample.map(sizeExpr), shape, new Map(before));
        return c !== 'rank' && c.length === 0;
      };
      const fits = clash === 'rank' || clash.length > 0 ? columnLayouts(call, input.name).find((l) => l.shape.join() !== column.shape.join() && fitsLayout(l.shape)) : undefined;
      const help = fits ? `\`${call}(layout: "${fits.layout}")\` gives \`${input.name}\` as [${fits.shape.join(', ')}] per example` : undefined;
      if (clash === 'rank') mismatch(`one example is ${shapeToString(perExample)} after the batch axis`, help);
      else if (clash.length > 0) mismatch(clash.join('; '), help);
      // class labels that index fewer classes than the data has (mnist into a 5-way head)
      const classes = column.classes;
      if (classes === undefined) continue;
      const narrow = (indexUses ??= indexInputs(graph)).find((u) => u.input === input.name && isConcrete(u.bound) && u.bound < classes);
      if (narrow) {
        diagnostics.push(
          diagnostic('E0207', `\`${call}()\` has ${classes} classes, labels 0..${classes - 1}, but the model uses \`${input.name}\` ${narrow.op === 'one_hot' ? `as one_hot classes, of depth ${String(narrow.bound)}` : `to index axis ${narrow.axis} of ${narrow.type}, of size ${String(narrow.bound)}`}`, span, {
            secondary: [{ span: narrow.span, message: `indexed here: ${String(narrow.bound)} classes` }],
            help: `give the model ${classes} outputs where it has ${String(narrow.bound)}`,
          }),
        );
      }
    }
  };
  let indexUses: IndexUse[] | undefined;

  /**
   * The model's conditions on the batch size B (`where B % 2 == 0`) against every batch size training
   * will run: `batch` (32 by default), and where the data's size is known (iris, mnist), each split's last,
   * partial batch (a validation split of 15 examples is one batch of 15). Reported at the condition,
   * once per condition, with the nearest batch size that fits every split.
   */
  function checkBatchConditions(): void {
    const data = settings.data;
    if (data === null || typeof data !== 'object' || Array.isArray(data) || !('call' in data)) return;
    const batchSetting = settings.batch;
    if (batchSetting !== undefined && !(typeof batchSetting === 'number' && Number.isInteger(batchSetting) && batchSetting >= 1)) return;
    const batch = batchSetting ?? DEFAULT_BATCH;
    const known = dataSizes?.sizes ?? new Map<string, number>();
    const conditions = (graph.constraints ?? []).filter((c) => {
      const names = [...freeVars(c.left), ...freeVars(c.right)];
      return names.includes('B') && names.every((n) => n === 'B' || known.has(n));
    });
    if (conditions.length === 0) return;
    // the splits as dlc train draws them (runtime/data.ts splitSizes), where the data's size is known
    const total = datasetLength(data.call);
    const validation = settings.validation;
    const ownValidation = validation !== null && typeof validation === 'object' && !Array.isArray(validation) && 'call' in validation ? validation : undefined;
    let splits: SplitSize[];
    if (validation !== undefined) {
      splits = [{ split: 'training', ...(total !== undefined ? { examples: total } : {}) }];
      const held = ownValidation ? datasetLength(ownValidation.call) : undefined;
      if (held !== undefined) splits.push({ split: 'validation', examples: held });
    } else {
      const split = settings.split ?? [0.8, 0.1, 0.1];
      const fractions = Array.isArray(split) && split.length >= 2 && split.length <= 3 && split.every((f) => typeof f === 'number' && f >= 0) ? (split as number[]) : undefined;
      if (fractions === undefined || Math.abs(fractions.reduce((a, b) => a + b, 0) - 1) > 1e-6) return; // reported as the split's own error
      const names = ['training', 'validation', 'test'];
      splits = total === undefined ? [{ split: 'training' }] : splitSizes(total, fractions).map((examples, i) => ({ split: names[i], examples }));
    }
    const at = (size: number) => new Map([...known, ['B', size]]);
    const holds = (c: (typeof conditions)[number], size: number) => conditionHolds(c.op, evaluate(c.left, at(size)), evaluate(c.right, at(size)));
    const written = settingSpans.batch;
    for (const c of conditions) {
      const run = batchRuns(batch, splits).find((r) => !holds(c, r.size));
      if (!run) continue;
      const sizes = at(run.size);
      const shown = written ? `\`batch = ${batch}\`` : `the default batch of ${batch}`;
      const nearest = nearestFittingBatch(batch, splits, (size) => conditions.every((x) => holds(x, size)));
      const counts = splits.filter((x) => x.examples !== undefined).map((x) => `${x.split} ${x.examples}`).join(', ');
      diagnostics.push(
        diagnostic('E0304', `${run.last ? `with ${shown}, ${describeRun(run, batch)}, and B = ${run.size}` : `${shown} gives batches of B = ${batch}, which`} breaks the model's condition \`${c.text}\` (${evaluate(c.left, sizes)} ${c.op} ${evaluate(c.right, sizes)} is false)`, c.span, {
          secondary: [
            ...(written ? [{ span: written, message: 'the batch size' }] : []),
            ...(run.last && dataSizes ? [{ span: dataSizes.span, message: `${dataSizes.source}: ${counts} examples` }] : []),
          ],
          help: `${nearest !== undefined ? `\`batch = ${nearest}\` fits every batch${counts ? ` of the splits (${counts})` : ''}` : run.last ? 'no batch size fits every split: change `split` so that each split\'s size fits the condition' : 'choose a batch size that fits the condition'}${run.last ? '; every example is used, so a split\'s last batch holds what is left over (there is no drop_last)' : ''}`,
        }),
      );
    }
  }

  /**
   * A model trained from episodes reads the environment's step records and acts through its
   * `sampled_action` output (and, with `gae_lambda`, estimates the state's `value`).
   */
  const checkEnvFits = (v: SettingValue, span: A.Span) => {
    const call = typeof v === 'string' ? { call: v, args: {} } : v !== null && typeof v === 'object' && !Array.isArray(v) && 'call' in v ? v : undefined;
    const name = call?.call;
    const needs = call === undefined ? undefined : environmentColumns(call.call, call.args);
    if (!needs) return;
    const given = (names: readonly string[]) => names.map((n) => `\`${n}\``).join(', ').replace(/, ([^,]*)$/, ' and $1');
    const recorded = Object.keys(needs.inputs);
    const acting = Object.keys(needs.outputs);
    for (const [kind, specs] of [['input', needs.inputs], ['output', needs.outputs]] as const) {
      for (const [col, spec] of Object.entries(specs)) {
        const want = `${spec.dtype}[B${spec.shape.map((d) => `, ${d}`).join('')}]`;
        const have = kind === 'input' ? graph.inputs.find((i) => i.name === col)?.value.type : graph.outputs.get(col)?.type;
        const fits = have && have.dtype === spec.dtype && have.shape.length === spec.shape.length + 1 && spec.shape.every((d, i) => dimEquals(have.shape[i + 1], d));
        if (fits) continue;
        const found = have ? `; it is ${have.dtype}${shapeToString(have.shape)}` : '';
        const help =
          col === 'value' || col === 'advantages'
            ? `gae_lambda makes ${name}() an actor-critic: the model estimates each state's value in \`output value: f32[B]\` (from the observation alone; a loss fits it to \`returns\`) and weighs the policy's log-probabilities by \`input advantages: f32[B]\``
            : `a model trained from ${name} episodes reads ${given(recorded)}, and acts through the output${acting.length > 1 ? 's' : ''} ${given(acting)}${col === 'sampled_action' || col === 'action' ? `: ${name}'s action is ${spec.shape.length === 0 ? `one ${spec.dtype === 'i32' ? 'integer' : 'number'}` : `${spec.shape.reduce((a, b) => a * b, 1)} number${spec.shape.reduce((a, b) => a * b, 1) === 1 ? '' : 's'}`} per row` : ''}`;
        diagnostics.push(diagnostic('E0207', `\`${name}()\` needs the model to declare the ${kind} \`${col}\`: ${want}${found}`, span, { help }));
      }
    }
    // acting gives only the observation; a training step only what the environment records
    const beyond = (values: readonly Value[], allowed: readonly string[]) => inputsReaching(graph, values).filter((n) => !allowed.includes(n));
    for (const col of acting) {
      const out = graph.outputs.get(col);
      const extra = out ? beyond([out], needs.acting) : [];
      if (extra.length > 0) {
        diagnostics.push(diagnostic('E0207', `\`${name}()\` acts through \`${col}\` given ${given(needs.acting)} alone, but \`${col}\` depends on the input${extra.length > 1 ? 's' : ''} ${given(extra)}`, span, { help: `compute \`${col}\` from ${given(needs.acting)} only; other outputs may read other inputs (acting asks for ${given(acting)} alone)` }));
      }
    }
    const extra = beyond([...graph.losses.values(), ...graph.metrics.values()], recorded);
    if (extra.length > 0) {
      diagnostics.push(diagnostic('E0207', `\`${name}()\` episodes give ${given(recorded)}, but the model's losses and metrics also read the input${extra.length > 1 ? 's' : ''} ${given(extra)}`, span, { help: `a model trained from ${name} episodes learns from ${given(recorded)} alone; train it from your own loop (runtime/rollouts.ts, trainStep) to feed ${given(extra)}` }));
    }
  };

  const optimizerOf = (e: A.Expr): OptimizerSpec | undefined => {
    const v = value(e);
    const name = typeof v === 'object' && v !== null && 'call' in v ? v.call : typeof v === 'string' ? v : undefined;
    if (!name || !(OPTIMIZERS as readonly string[]).includes(name)) {
      report(`\`${name ?? '?'}\` is not an optimizer`, e.span, didYouMean(name ?? '', OPTIMIZERS) ?? `the optimizers are ${OPTIMIZERS.join(', ')}`);
      return undefined;
    }
    const args = typeof v === 'object' && v !== null && 'call' in v ? v.args : {};
    const options = numbers(args, e.span);
    // the step's learning rate may also come from the train block's optimizer, so `lr` is not required here
    checkOptions(`\`${name}\``, { ...OPTIMIZER_DEFAULTS[name as OptimizerSpec['kind']], lr: 0 }, options, e.span);
    // an option out of range (a negative lr, a beta outside [0, 1)) at the option itself
    const known = OPTIMIZER_DEFAULTS[name as OptimizerSpec['kind']];
    for (const a of e.kind === 'Call' ? e.args : []) {
      const key = a.name?.text;
      const given = key === undefined ? undefined : options[key];
      const range = key === undefined ? undefined : OPTION_RANGES[key];
      if (key === undefined || !(key in known) || typeof given !== 'number' || !range || range.ok(given)) continue;
      report(`\`${name}\` option \`${key}\` must be ${range.text}, not ${given}`, a.span);
    }
    const momentum = options.momentum ?? known.momentum;
    const dampening = options.dampening ?? known.dampening;
    const nesterov = e.kind === 'Call' ? e.args.find((a) => a.name?.text === 'nesterov') : undefined;
    if (name === 'sgd' && nesterov && options.nesterov === true && typeof momentum === 'number' && typeof dampening === 'number' && (momentum <= 0 || dampening !== 0)) {
      report('`sgd` nesterov momentum needs momentum > 0 and dampening 0', nesterov.span, `give momentum, e.g. sgd(lr: 0.1, momentum: 0.9, nesterov: true)`);
    }
    return { kind: name as OptimizerSpec['kind'], options };
  };

  const settings: Record<string, SettingValue> = {};
  const frozen: string[] = [];
  const groups: ParamGroup[] = [];
  let optimizer: OptimizerSpec | undefined;
  let schedule: ScheduleSpec | undefined;
  let adapt: AdaptDecl[] = [];
  const objectives: { stmt: A.ObjectiveStmt; name: string; optimizer?: OptimizerSpec; frozen?: readonly string[] }[] = [];

  const resolvePattern = (e: A.Expr): string[] => {
    const pattern = pathOf(e);
    if (pattern === undefined) {
      report('expected a parameter path such as `net.fc1` or `net.*.b`', e.span);
      return [];
    }
    const matched = allPaths.filter((p) => matchesPath(p, pattern));
    if (matched.length === 0) report(`\`${pattern}\` names no parameter of \`${graph.name}\``, e.span, pathSuggestion(pattern));
    return matched;
  };

  /**
   * The nearest path for one that names nothing: a layer (`trunk.conv1`) before a parameter of one
   * (`trunk.conv1.w`), and for a pattern, its last part as the model names it (`*.bias` → `*.b`).
   */
  const layerPaths = [...new Set(allPaths.flatMap((p) => p.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))))];
  const pathSuggestion = (pattern: string): string | undefined => {
    // a path through a tied instance (`seq.items.0`, `pair.1`, `res.f`): its parameters are the declaring layer's
    const parts0 = pattern.split('.');
    for (let i = parts0.length; i > 0; i--) {
      const via = parts0.slice(0, i).join('.');
      const to = graph.aliases?.get(via);
      if (to === undefined) continue;
      const rest = parts0.slice(i).join('.');
      return `\`${via}\` is the layer \`${to}\` used again (tied weights), whose parameters are named under \`${to}\`: write \`${rest ? `${to}.${rest}` : to}\``;
    }
    const aliased = [...(graph.aliases ?? [])].filter(([via]) => via.startsWith(`${pattern}.`));
    if (aliased.length > 0 && !pattern.includes('*')) {
      const targets = [...new Set(aliased.map(([, to]) => to))];
      return `\`${pattern}\` holds only tied layers, whose parameters are named under ${targets.map((t) => `\`${t}\``).join(', ')}: write \`${targets[0]}\``;
    }
    const depth = pattern.split('.').length;
    const near = didYouMean(pattern, layerPaths.filter((l) => l.split('.').length === depth)) ?? didYouMean(pattern, allPaths);
    if (near !== undefined || !pattern.includes('*')) return near;
    const parts = pattern.split('.');
    const last = parts.at(-1)!;
    const leaves = [...new Set(allPaths.map((p) => p.split('.').at(-1)!))];
    const alias: Record<string, string> = { bias: 'b', weight: 'w', kernel: 'w', scale: 'gamma', shift: 'beta' };
    const leaf = alias[last] !== undefined && leaves.includes(alias[last]) ? alias[last] : undefined;
    const hint = leaf ?? /did you mean `([^`]*)`/.exec(didYouMean(last, leaves) ?? '')?.[1];
    return hint === undefined ? `its parameters are named ${leaves.slice(0, 6).map((l) => `\`${l}\``).join(', ')}` : `did you mean \`${[...parts.slice(0, -1), hint].join('.')}\`?`;
  };
  const freezeSpans: A.Span[] = [];
  const groupSpans: A.Span[] = [];

  const settingSpans: Record<string, A.Span> = {};
  /** Settings written inside a `data { ... }` or `validation { ... }` block that mean a top-level one (`split`, `eval_every`). */
  const lifted: { name: string; key: string; value: SettingValue; span: A.Span }[] = [];

  /** What training logs: each loss and metric of the model, and `val_` before each on validation data. */
  const reported = [...graph.losses.keys(), ...graph.metrics.keys()];
  // a table metric (a confusion matrix) is no number to watch
  const tables = [...graph.metrics].filter(([, m]) => m.type.shape.length > 0).map(([name]) => name);
  const checkMonitor = (x: A.SettingStmt) => {
    const v = value(x.value);
    const candidates = [...reported, ...reported.map((r) => `val_${r}`)].filter((c) => !tables.includes(c.replace(/^val_/, '')));
    if (typeof v !== 'string') report('`monitor` names a loss or metric as a string, e.g. "val_loss"', x.value.span);
    else if (tables.includes(v.replace(/^val_/, ''))) report(`\`${v.replace(/^val_/, '')}\` is a table metric (a matrix of counts), not a number early stopping can watch`, x.value.span, `monitor a loss or a scalar metric: ${candidates.map((c) => `\`${c}\``).join(', ')}`);
    else if (!candidates.includes(v)) report(`\`${graph.name}\` reports no \`${v}\``, x.value.span, didYouMean(v, candidates) ?? `it reports ${candidates.map((c) => `\`${c}\``).join(', ')}`);
  };
  const checkMetricList = (x: A.SettingStmt) => {
    const v = value(x.value);
    const metrics = [...graph.metrics.keys()];
    const items = x.value.kind === 'List' ? x.value.items : [x.value];
    if (!Array.isArray(v)) report('`metrics` is a list of the model\'s metrics, e.g. `[accuracy]`', x.value.span);
    else
      v.forEach((name, i) => {
        if (typeof name !== 'string' || !metrics.includes(name)) {
          report(`\`${graph.name}\` has no metric ${typeof name === 'string' ? `\`${name}\`` : 'here'}`, items[i]?.span ?? x.value.span, didYouMean(String(name), metrics) ?? (metrics.length > 0 ? `its metrics are ${metrics.map((m) => `\`${m}\``).join(', ')}` : 'it declares no metric'));
        }
      });
  };
  const checkBool = (x: A.SettingStmt) => {
    if (typeof value(x.value) !== 'boolean') report(`\`${x.name.text}\` is true or false`, x.value.span);
  };
  const checkCount = (x: A.SettingStmt, min: number) => {
    const v = value(x.value);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) report(`\`${x.name.text}\` must be a whole number of at least ${min}`, x.value.span);
  };
  /** A setting that names a weights file (init_from, a checkpoint's path): a string that is not empty (anything else was ignored). */
  const checkPath = (x: A.SettingStmt, what: string, example: string) => {
    const v = value(x.value);
    const shown = what.startsWith('a ') ? what : `\`${what}\``;
    if (typeof v !== 'string') report(`${shown} is a path string, the safetensors file's (relative to this .dl file)`, x.value.span, `for example \`${example}\``);
    else if (v.trim() === '') report(`${shown} is empty: give the safetensors file's path`, x.value.span, `for example \`${example}\``);
  };
  /** The settings inside `early_stopping { ... }` and `checkpoint { ... }` that name what training logs, or count. */
  const checkBlockSettings = (s: A.SettingBlockStmt) => {
    for (const x of s.body.stmts) {
      if (x.kind !== 'Setting') continue;
      if (x.name.text === 'monitor' && (s.name.text === 'early_stopping' || s.name.text === 'checkpoint')) checkMonitor(x);
      else if (x.name.text === 'patience' && s.name.text === 'early_stopping') checkCount(x, 1);
      else if (x.name.text === 'restore_best' && s.name.text === 'early_stopping') checkBool(x);
      else if ((x.name.text === 'every' || x.name.text === 'keep') && s.name.text === 'checkpoint') checkCount(x, 1);
      else if (x.name.text === 'path' && s.name.text === 'checkpoint') checkPath(x, 'a checkpoint\'s `path`', 'path = "checkpoints/Model.safetensors"');
      else if (x.name.text === 'mode' && value(x.value) !== 'min' && value(x.value) !== 'max') report('`mode` is "min" or "max"', x.value.span);
    }
    if (s.name.text === 'init_from') initFromBlock(s);
  };
  /**
   * Early stopping's and a checkpoint's `mode` where the block leaves it out, from what the monitor is
   * (a loss falls; a metric as its definition says: graph.directions), written into the settings so
   * the runtime judges it so; a monitor whose direction cannot be known needs `mode` (never guessed from its name).
   */
  const resolveMonitorModes = () => {
    for (const key of ['early_stopping', 'checkpoint']) {
      const setting = settings[key];
      if (setting === null || typeof setting !== 'object' || Array.isArray(setting) || !('call' in setting) || setting.args.mode !== undefined) continue;
      const monitor = setting.args.monitor ?? (key === 'early_stopping' ? 'val_loss' : undefined);
      const name = typeof monitor === 'string' ? monitor.replace(/^val_/, '') : '';
      // a monitor that names nothing, or a table, is reported at the monitor already
      if (typeof monitor !== 'string' || !reported.includes(name) || tables.includes(name)) continue;
      const mode = graph.directions?.get(name);
      if (mode) settings[key] = { call: setting.call, args: { ...setting.args, mode } };
      else {
        const stmt = train.body.stmts.find((x): x is A.SettingBlockStmt | A.SettingStmt => (x.kind === 'SettingBlock' || x.kind === 'Setting') && x.name.text === key);
        const inner = stmt?.kind === 'SettingBlock' ? stmt.body.stmts.find((x): x is A.SettingStmt => x.kind === 'Setting' && x.name.text === 'monitor') : undefined;
        const arg = stmt?.kind === 'Setting' && stmt.value.kind === 'Call' ? stmt.value.args.find((a) => a.name?.text === 'monitor') : undefined;
        report(
          `${key} cannot tell whether \`${monitor}\` is better higher or lower: the metric \`${name}\` is not a call of a std.metrics score or error or of a std.loss function, and its name is no guide`,
          inner?.value.span ?? arg?.value.span ?? stmt?.name.span ?? train.model.span,
          `add \`mode = "min"\` (an error: lower is better) or \`mode = "max"\` (a score: higher is better) to ${key}`,
        );
      }
    }
  };
  /** `init_from { path = "..."; rename = ["FILE -> MODEL", ...]; transpose = ["fc.w", ...] }`: a path, rename rules, model paths. */
  const initFromBlock = (s: A.SettingBlockStmt) => {
    const example = 'init_from { path = "torch.safetensors"; rename = ["module.* -> *"]; transpose = ["fc.w"] }';
    let path = false;
    for (const x of s.body.stmts) {
      if (x.kind !== 'Setting') continue;
      const v = value(x.value);
      const strings = Array.isArray(v) && v.every((e) => typeof e === 'string') ? (v as string[]) : undefined;
      if (x.name.text === 'path') {
        path = true;
        checkPath(x, 'init_from', example);
      } else if (x.name.text === 'rename' || x.name.text === 'transpose') {
        if (strings === undefined) report(`init_from's \`${x.name.text}\` is a list of strings`, x.value.span, `for example \`${x.name.text === 'rename' ? 'rename = ["module.* -> *", "fc.weight -> fc.w"]' : 'transpose = ["fc.w", "*.w"]'}\``);
        else if (x.name.text === 'rename') {
          const items = x.value.kind === 'List' ? x.value.items : [];
          strings.forEach((rule, i) => {
            const why = renameRuleProblem(rule);
            if (why !== undefined) report(`${JSON.stringify(rule)} is not a rename: ${why}`, items[i]?.span ?? x.value.span);
          });
        }
      } else report(`init_from takes \`path\`, \`rename\` and \`transpose\`, not \`${x.name.text}\``, x.name.span, `for example \`${example}\``);
    }
    if (!path) report('an init_from block needs `path = "<file>.safetensors"`', s.name.span, `for example \`${example}\``);
  };

  /**
   * `data { source = mnist(); split = [...] }`, `data { path = "f.csv"; label = "y" }` and
   * `validation { source = ...; every = 2; split = 0.1; metrics = [...] }`, read into the settings
   * the runtime acts on: the dataset call, and `split`, `shuffle`, `seed`, `eval_every` and
   * `validation_metrics` beside it.
   */
  const dataBlock = (s: A.SettingBlockStmt) => {
    const inner = new Map(s.body.stmts.filter((x): x is A.SettingStmt => x.kind === 'Setting').map((x) => [x.name.text, x]));
    const source = inner.get('source');
    const path = inner.get('path');
    const lift = (key: string, as: string = key, convert: (v: SettingValue, span: A.Span) => SettingValue = (v) => v) => {
      const x = inner.get(key);
      if (!x) return;
      if (as === 'eval_every') checkCount(x, 1);
      if (as === 'validation_metrics') checkMetricList(x);
      if (as === 'stratify' || as === 'ordered_split') checkBool(x);
      lifted.push({ name: as, key, value: convert(value(x.value), x.value.span), span: x.span });
    };
    let dataset: SettingValue | undefined;
    if (source) {
      checkCatalogCalls(s.name.text, source.value);
      dataset = value(source.value);
    }
    if (s.name.text === 'data') {
      if (source && path) report('a `data` block takes `source` (a dataset) or `path` (a CSV file), not both', path.span);
      else if (path) {
        const args: Record<string, SettingValue> = { path: value(path.value) };
        for (const [key, as] of [['label', 'label'], ['columns', 'features'], ['categorical', 'categorical']] as const) {
          const x = inner.get(key);
          if (x) args[as] = value(x.value);
        }
        dataset = { call: 'csv', args };
        categoricalSpan = inner.get('categorical')?.value.span;
      } else if (!source) report('a `data` block needs `source = <dataset>` (e.g. `source = mnist()`) or `path = "<file>.csv"`', s.name.span);
      if (source) {
        for (const key of ['label', 'columns', 'categorical']) {
          const x = inner.get(key);
          if (x) report(`\`${key}\` describes a CSV file's columns: give it with \`path\`, or as an argument of the source`, x.span);
        }
      }
      lift('split');
      lift('stratify');
      lift('ordered_split');
      lift('shuffle');
      lift('seed');
    } else {
      lift('every', 'eval_every');
      lift('metrics', 'validation_metrics');
      lift('split', 'split', (v, span) => {
        if (typeof v === 'number' && v > 0 && v < 1) return [1 - v, v];
        report('`split` in a `validation` block is the fraction of `data` held out for validation, a number between 0 and 1', span, 'for train, validation and test fractions write `split = [0.8, 0.1, 0.1]` beside `data`');
        return null;
      });
    }
    if (dataset !== undefined) {
      settings[s.name.text] = dataset;
      if (options.checkData !== false) checkDataFits(dataset, (source ?? path ?? s).span, s.name.text);
    }
  };

  for (const s of train.body.stmts) {
    if (s.kind === 'Setting') settingSpans[s.name.text] = s.span;
    switch (s.kind) {
      case 'Setting':
        if (s.name.text === 'optimizer') optimizer = optimizerOf(s.value);
        else if (s.name.text === 'schedule') {
          const v = value(s.value);
          const name = typeof v === 'object' && v !== null && 'call' in v ? v.call : typeof v === 'string' ? v : undefined;
          if (!name || !(SCHEDULES as readonly string[]).includes(name)) {
            report(`\`${name ?? '?'}\` is not a schedule`, s.value.span, didYouMean(name ?? '', SCHEDULES) ?? `the schedules are ${SCHEDULES.join(', ')}`);
          } else {
            const args = typeof v === 'object' && v !== null && 'call' in v ? v.args : {};
            const options = Object.fromEntries(Object.entries(numbers(args, s.value.span)).map(([k, x]) => [k, Number(x)]));
            checkOptions(`the schedule \`${name}\``, SCHEDULE_DEFAULTS[name as ScheduleSpec['kind']], options, s.value.span);
            schedule = { kind: name as ScheduleSpec['kind'], options };
          }
        } else {
          // a setting given twice: the later one would win silently
          if (Object.hasOwn(settings, s.name.text)) report(`\`${s.name.text}\` is given twice`, s.name.span, 'keep one of them');
          settings[s.name.text] = value(s.value);
          if (s.name.text === 'shuffle' || s.name.text === 'stratify' || s.name.text === 'ordered_split') checkBool(s);
          if (s.name.text === 'freeze_mode' && !(FREEZE_MODES as readonly unknown[]).includes(value(s.value))) {
            report(`\`freeze_mode\` is ${FREEZE_MODES.map((m) => `"${m}"`).join(' or ')}`, s.value.span, '"inference" runs frozen layers as in evaluation: batch norm with its running statistics (not updated), no dropout');
          }
          checkCatalogCalls(s.name.text, s.value);
          if (s.name.text === 'metrics') checkMetricList(s);
          if (s.name.text === 'init_from') checkPath(s, 'init_from', 'init_from = "checkpoints/Pretrained.safetensors"');
          if (['steps', 'eval_every', 'log_every', 'epochs', 'batch', 'max_batch', 'seed'].includes(s.name.text)) checkCount(s, s.name.text === 'seed' ? 0 : 1);
          if ((s.name.text === 'data' || s.name.text === 'validation') && options.checkData !== false) checkDataFits(settings[s.name.text], s.value.span, s.name.text);
          if (s.name.text === 'env') checkEnvFits(settings.env, s.value.span);
          if (s.name.text === 'adapt') {
            const found = adaptTargets(s, graph);
            adapt = found.targets;
            diagnostics.push(...found.diagnostics);
          }
        }
        break;
      case 'SettingBlock': {
        if (s.name.text === 'data' || s.name.text === 'validation') {
          dataBlock(s);
          break;
        }
        checkBlockSettings(s);
        const block: Record<string, SettingValue> = {};
        for (const inner of s.body.stmts) {
          if (inner.kind === 'Setting') block[inner.name.text] = inner.name.text === 'params' ? null : value(inner.value);
        }
        if (s.name.text === 'param_group') {
          const paramsStmt = s.body.stmts.find((x): x is A.SettingStmt => x.kind === 'Setting' && x.name.text === 'params');
          if (!paramsStmt) report('a param_group needs `params = [...]`', s.name.span);
          else {
            const list = paramsStmt.value.kind === 'List' ? paramsStmt.value.items : [paramsStmt.value];
            const { params: _drop, ...rest } = block;
            void _drop;
            const params = list.flatMap(resolvePattern);
            // a parameter takes one group's options: in two, which would win would be a guess
            const twice = params.find((path) => groups.some((g) => g.params.includes(path)));
            if (twice !== undefined) report(`\`${twice}\` is in two param groups; each parameter takes the options of one`, paramsStmt.value.span, 'narrow the patterns so the groups do not overlap');
            const optionSpans = Object.fromEntries(s.body.stmts.flatMap((x) => (x.kind === 'Setting' && x.name.text !== 'params' ? [[x.name.text, x.span]] : [])));
            groups.push({ params, options: numbers(rest, s.span), span: s.name.span, optionSpans });
            groupSpans.push(s.name.span);
          }
        } else {
          const key = s.label ? `${s.name.text}.${s.label.text}` : s.name.text;
          if (Object.hasOwn(settings, key)) report(`\`${key}\` is given twice`, s.name.span, 'keep one of them');
          settings[key] = { call: s.name.text, args: block };
        }
        break;
      }
      case 'Freeze':
        freezeSpans.push(s.span);
        for (const t of s.targets) frozen.push(...resolvePattern(t));
        break;
      case 'Objective':
        objectives.push({ stmt: s, name: 'train' });
        break;
      case 'Step': {
        // a step's own optimizer (before or after its objective) and freeze; every other setting is the block's
        const mine: (typeof objectives)[number][] = [];
        let stepOptimizer: OptimizerSpec | undefined;
        const stepFrozen: string[] = [];
        for (const inner of s.body.stmts) {
          if (inner.kind === 'Objective') mine.push({ stmt: inner, name: s.name.text });
          else if (inner.kind === 'Setting' && inner.name.text === 'optimizer') stepOptimizer = optimizerOf(inner.value) ?? stepOptimizer;
          else if (inner.kind === 'Freeze') {
            freezeSpans.push(inner.span);
            for (const t of inner.targets) stepFrozen.push(...resolvePattern(t));
          } else if (inner.kind === 'Setting' || inner.kind === 'SettingBlock') {
            report(`\`${inner.name.text}\` applies to the whole train block, not to one step: a step takes its objective, its \`optimizer\` and \`freeze\``, inner.name.span, `set \`${inner.name.text}\` beside the steps, in the train block`);
          }
        }
        if (mine.length === 0) report(`the step \`${s.name.text}\` has no \`minimize\` or \`maximize\`, so it would train nothing`, s.name.span, `add \`minimize <loss> over <layers>\` to it, or remove it`);
        for (const o of mine) objectives.push({ ...o, ...(stepOptimizer ? { optimizer: stepOptimizer } : {}), frozen: stepFrozen });
        break;
      }
      default:
        break;
    }
  }

  // augmentations of a dataset whose columns are known: the column must be one of its images, read as the runtime will
  const augmentSpan = settingSpans.augment;
  const data = settings.data;
  if (augmentSpan && settings.augment !== undefined && options.checkData !== false && data !== null && typeof data === 'object' && !Array.isArray(data) && 'call' in data) {
    const columns = datasetColumns(data.call, data.args);
    if (columns) checkAugmentFits(settings.augment, `${data.call}()`, columns, augmentSpan, diagnostics);
  }

  for (const l of lifted) {
    if (Object.hasOwn(settings, l.name)) report(l.key === l.name ? `\`${l.name}\` is given twice` : `\`${l.key}\` here sets \`${l.name}\`, which the train block sets already`, l.span, 'keep one of them');
    else settings[l.name] = l.value;
  }

  if (options.checkData !== false && options.checkBatch !== false) checkBatchConditions();
  resolveMonitorModes();

  // a validation metric watched where the split leaves no validation set: found after the first epoch otherwise
  const split = settings.split;
  const noValidation = settings.validation === undefined && Array.isArray(split) && split.length >= 2 && split[1] === 0;
  if (noValidation) {
    for (const block of ['early_stopping', 'checkpoint']) {
      const stmt = train.body.stmts.find((x): x is A.SettingBlockStmt => x.kind === 'SettingBlock' && x.name.text === block);
      const monitor = stmt?.body.stmts.find((x): x is A.SettingStmt => x.kind === 'Setting' && x.name.text === 'monitor');
      const watched = monitor ? value(monitor.value) : block === 'early_stopping' && stmt ? 'val_loss' : undefined;
      if (typeof watched === 'string' && watched.startsWith('val_')) {
        report(`${block} watches \`${watched}\`, but \`split\` leaves no validation set`, monitor?.value.span ?? stmt!.name.span, 'give the validation set a fraction (split = [0.8, 0.2]), or watch a training value such as `loss`');
      }
    }
  }

  if (objectives.length === 0) {
    // no minimize: the model's only loss
    const losses = [...graph.losses.keys()];
    if (losses.length !== 1) {
      report(
        losses.length === 0 ? `\`${graph.name}\` declares no loss to minimize` : `\`${graph.name}\` has ${losses.length} losses; say which to minimize`,
        train.model.span,
        losses.length > 1 ? `add \`minimize ${losses[0]}\`, or one \`step\` per loss` : undefined,
      );
      return { diagnostics };
    }
  }
  const baseOptimizer = optimizer ?? { kind: 'adam' as const, options: {} };
  const frozenSet = new Set(frozen);
  // an objective that is an expression of losses and metrics: its terms checked, its value a loss of the step
  const quantities = [...graph.losses.keys(), ...graph.metrics.keys()];
  const objectiveOf = (e: A.Expr): ObjectiveExpr | undefined => {
    switch (e.kind) {
      case 'Ident':
        if (graph.losses.has(e.name) || graph.metrics.has(e.name)) return { kind: 'quantity', name: e.name };
        report(`\`${graph.name}\` has no loss or metric \`${e.name}\``, e.span, didYouMean(e.name, quantities));
        return undefined;
      case 'Number':
        return { kind: 'number', value: e.value };
      case 'Unary': {
        const operand = objectiveOf(e.operand);
        if (e.op === 'not') break;
        return operand && (e.op === '-' ? { kind: 'neg', operand } : operand);
      }
      case 'Binary': {
        const op = ({ '+': 'add', '-': 'sub', '*': 'mul', '/': 'div' } as const)[e.op as '+' | '-' | '*' | '/'];
        if (!op) break;
        const [left, right] = [objectiveOf(e.left), objectiveOf(e.right)];
        return left && right ? { kind: 'binary', op, left, right } : undefined;
      }
    }
    report(`an objective is a loss, or an expression of losses and metrics with numbers, + - * / and parentheses`, e.span, `write it as a loss in the model (\`loss total = ...\`) and minimize that`);
    return undefined;
  };
  const taken = new Set(quantities);
  const steps: TrainStepPlan[] = (objectives.length > 0 ? objectives : [undefined]).map((o) => {
    // a loss by name; a metric by name is an objective, as in an expression
    const byName = o?.stmt.loss.kind === 'Ident' && !graph.metrics.has(o.stmt.loss.name) ? o.stmt.loss.name : undefined;
    let lossName = o ? byName : [...graph.losses.keys()][0];
    let objective: ObjectiveExpr | undefined;
    if (o && lossName !== undefined && !graph.losses.has(lossName)) {
      report(`\`${graph.name}\` has no loss \`${lossName}\``, o.stmt.loss.span, didYouMean(lossName, graph.losses.keys()));
    } else if (o && lossName === undefined) {
      objective = objectiveOf(o.stmt.loss);
      // the objective's value, shown and logged as a loss of the step
      lossName = o.name === 'train' ? 'objective' : `${o.name}_objective`;
      while (taken.has(lossName)) lossName = `${lossName}_`;
      taken.add(lossName);
    }
    const over = o && o.stmt.over.length > 0 ? o.stmt.over.flatMap(resolvePattern) : allPaths;
    const stepOptimizer = o?.stmt.optimizer ? optimizerOf(o.stmt.optimizer) : o?.optimizer;
    return {
      name: o?.name ?? 'train',
      loss: lossName ?? '',
      ...(objective ? { objective } : {}),
      params: over.filter((p) => !frozenSet.has(p) && !(o?.frozen ?? []).includes(p)),
      optimizer: stepOptimizer ?? baseOptimizer,
      maximize: o?.stmt.direction === 'maximize',
      span: o?.stmt.span ?? train.span,
      optimizerSpan: o?.stmt.optimizer?.span ?? settingSpans.optimizer ?? o?.stmt.span ?? train.span,
    };
  });
  // parameters no step trains (each objective has its `over`) and no freeze names: they keep their initial values
  if (objectives.length > 0 && objectives.every((o) => o.stmt.over.length > 0)) {
    const trained = new Set(steps.flatMap((st) => st.params));
    const idle = allPaths.filter((p) => !trained.has(p) && !frozenSet.has(p) && !objectives.some((o) => o.frozen?.includes(p)));
    if (idle.length > 0) {
      const shown = idle.slice(0, 4).map((p) => `\`${p}\``).join(', ') + (idle.length > 4 ? ` and ${idle.length - 4} more` : '');
      diagnostics.push(diagnostic('W0206', `${shown} ${idle.length === 1 ? 'is' : 'are'} in no objective's \`over\`, so training leaves ${idle.length === 1 ? 'it' : 'them'} at ${idle.length === 1 ? 'its' : 'their'} initial value`, objectives[0].stmt.span, { help: 'add the layers to an `over` list, or `freeze` them to say so' }));
    }
  }
  // a group of frozen parameters: its options reach no update
  groups.forEach((g, i) => {
    if (g.params.length > 0 && g.params.every((p) => frozenSet.has(p))) {
      diagnostics.push(diagnostic('W0206', 'every parameter of this param_group is frozen: its options apply to no update', groupSpans[i], { help: 'remove the param_group, or unfreeze its parameters' }));
    }
  });
  // max_batch is the largest batch the program allocates for: a larger training batch could not run
  // `batch` and `max_batch` size B: a model whose batch axis has another name would ignore them
  const hasB = graph.inputs.some((i) => i.value.type.shape.some((d) => freeVars(d).includes('B')));
  for (const key of ['batch', 'max_batch'] as const) {
    if (settings[key] === undefined || hasB || graph.inputs.length === 0) continue;
    const first = graph.inputs[0];
    const lead = first.value.type.shape[0];
    const named = lead !== undefined && !isConcrete(lead) ? ` (\`${first.name}\` is ${first.value.type.dtype}${shapeToString(first.value.type.shape)})` : '';
    report(`\`${key}\` sets the batch size B, and no input of \`${graph.name}\` has a size B${named}`, settingSpans[key] ?? train.span, 'name the batch axis B in the inputs (`input x: f32[B, 4]`): dlc train, batchSize and max_batch size it by that name');
  }
  if (typeof settings.batch === 'number' && typeof settings.max_batch === 'number' && settings.batch > settings.max_batch) {
    report(`\`batch = ${settings.batch}\` is over \`max_batch = ${settings.max_batch}\`, the largest batch the model allocates buffers for`, settingSpans.batch ?? train.span, 'raise max_batch, or train with smaller batches');
  }
  const names = new Set<string>();
  for (const s of steps) {
    if (names.has(s.name)) report(`two objectives in the step \`${s.name}\`; give each its own \`step\``, s.span);
    names.add(s.name);
    if (s.params.length === 0) {
      // everything frozen: the freeze statements did it, so that is where it is shown
      if (freezeSpans.length > 0 && frozen.length > 0) report(`\`freeze\` leaves the step \`${s.name}\` no parameter to update: every parameter it trains is frozen`, freezeSpans.at(-1)!, 'freeze fewer layers, or evaluate the model instead of training it');
      else report(`the step \`${s.name}\` updates no parameter (all frozen or none matched)`, s.span);
    } else {
      // a loss the step's parameters reach only through argmax, comparisons, integer casts or stop_gradient trains nothing
      const quantities = s.objective ? objectiveQuantities(s.objective) : [s.loss];
      const values = quantities.flatMap((q) => {
        const v = graph.losses.get(q) ?? graph.metrics.get(q);
        return v ? [v.id] : [];
      });
      if (values.length > 0 && values.every((id) => paramsWithGradient(graph, s.params, id).length === 0)) {
        const shown = s.params.slice(0, 3).join(', ') + (s.params.length > 3 ? ', ...' : '');
        const reads = values.some((id) => paramsWithGradient(graph, s.params, id, { anyPath: true }).length > 0);
        const why = reads ? 'every path from them goes through an operation with no gradient (argmax, a comparison, an integer cast, floor, sign or stop_gradient)' : 'it does not read them at all';
        report(`\`${quantities.join('`, `')}\` has no gradient with respect to the parameters the step trains (${shown}): ${why}`, s.span, 'a training loss must be differentiable in the parameters: minimize cross_entropy(logits, label) rather than 1 - accuracy');
      }
    }
  }
  if (settings.freeze_mode === 'inference' && frozen.length === 0) {
    diagnostics.push(diagnostic('W0206', '`freeze_mode` acts on frozen layers, and this train block freezes none', settingSpans.freeze_mode ?? train.span, { help: 'add `freeze <layer>`, or remove freeze_mode' }));
  }
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
  const plan: TrainingPlan = {
      model: graph.name,
      steps,
      ...(schedule ? { schedule } : {}),
      baseLr: optimizerLr(baseOptimizer),
      ...(typeof settings.clip_grad_norm === 'number' ? { clipGradNorm: settings.clip_grad_norm } : {}),
      ...(typeof settings.clip_grad_value === 'number' ? { clipGradValue: settings.clip_grad_value } : {}),
      frozen,
      groups,
      adapt,
      settings,
      settingSpans,
  };
  // the split: two or three fractions of the data that add up to 1
  if (settings.split !== undefined) {
    const split = settings.split;
    const at = settingSpans.split ?? train.span;
    const fractions = Array.isArray(split) && split.every((f) => typeof f === 'number') ? (split as number[]) : undefined;
    const round = (x: number) => Number(x.toPrecision(6));
    if (!fractions || fractions.length < 2 || fractions.length > 3) report('`split` is a list of two or three fractions of the data: [train, validation] or [train, validation, test]', at, 'for example `split = [0.8, 0.1, 0.1]`');
    else if (fractions.some((f) => !(f >= 0 && f <= 1))) report(`split fractions are between 0 and 1, not [${fractions.join(', ')}]`, at);
    else if (Math.abs(fractions.reduce((a, b) => a + b, 0) - 1) > 1e-6) report(`the split fractions [${fractions.join(', ')}] add up to ${round(fractions.reduce((a, b) => a + b, 0))}, not 1`, at);
  }
  // values the optimizer, schedule or clipping refuse: at the setting, now rather than while building the step
  for (const p of settingProblems(plan)) report(p.message, p.span);
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
  return { plan, diagnostics };
}

/** The losses and metrics an objective expression reads. */
function objectiveQuantities(e: ObjectiveExpr): string[] {
  switch (e.kind) {
    case 'quantity':
      return [e.name];
    case 'number':
      return [];
    case 'neg':
      return objectiveQuantities(e.operand);
    case 'binary':
      return [...objectiveQuantities(e.left), ...objectiveQuantities(e.right)];
  }
}

/**
 * The train block's `augment` against the data's known columns: each augmentation's column must be in the
 * data and be an image (runtime/augment.ts reads [C, H, W], channels-last [H, W, C], [H, W] or a square [H * W]),
 * so a wrong column is a diagnostic here, not an error after the data has loaded.
 */
function checkAugmentFits(setting: SettingValue, source: string, columns: Readonly<Record<string, { readonly shape: readonly number[] }>>, span: A.Span, diagnostics: Diagnostic[]): void {
  let augmentations: Augmentation[];
  try {
    augmentations = parseAugmentations(setting);
  } catch (e) {
    // an unknown augmentation or argument is reported at its own span already (checkCatalogCalls)
    const inside = diagnostics.some((d) => d.span.file === span.file && d.span.start >= span.start && d.span.end <= span.end);
    if (!inside) diagnostics.push(diagnostic('E0206', (e as Error).message, span));
    return;
  }
  for (const a of augmentations) {
    const column = columns[a.column];
    if (!column) {
      diagnostics.push(diagnostic('E0207', `augment: ${a.kind}() works on the column \`${a.column}\`, which \`${source}\` does not give; it gives ${Object.keys(columns).map((c) => `\`${c}\``).join(', ')}`, span, { help: `name the image column: ${a.kind}(column: "...")` }));
      continue;
    }
    try {
      imageGeometry(column.shape, a.column, a.layout);
    } catch (e) {
      diagnostics.push(diagnostic('E0207', `${(e as Error).message}, as \`${source}\` gives it`, span));
    }
  }
}
