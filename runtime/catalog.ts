// The names `dlc train` understands in a train block's calls, with each call's arguments: datasets (`data`, `validation`), environments (`env`) and augmentations (`augment`), and how a dataset's column fits a model's input; shared by the compiler's checks and the loaders; browser-safe.
import type { SizeExpr } from './program.ts';

/** Datasets by name, with their arguments (runtime/node/datasets.ts loads them). */
export const DATASETS: Readonly<Record<string, readonly string[]>> = {
  mnist: ['layout', 'scale'],
  iris: [],
  csv: ['path', 'label', 'features', 'categorical', 'header', 'label_type', 'classes', 'delimiter', 'missing'],
  cifar10: ['dir', 'part'],
  uci_har: ['dir', 'part'],
  tiny_shakespeare: ['path', 'context'],
  text: ['path', 'context'],
};

/** Environments by name, with their arguments (compiler/cli/train-episodes.ts runs them). */
export const ENVIRONMENTS: Readonly<Record<string, readonly string[]>> = {
  cartpole: ['episodes', 'gamma', 'gae_lambda', 'max_steps', 'solved_at'],
  pendulum: ['episodes', 'gamma', 'gae_lambda', 'max_steps', 'solved_at'],
};

/**
 * What an environment's episodes are, beyond the columns: the default step limit (`max_steps`) and
 * the most one step's reward can be, so that a `solved_at` no episode can reach is caught.
 */
export const ENVIRONMENT_LIMITS: Readonly<Record<string, { readonly maxSteps: number; readonly rewardHigh: number }>> = {
  cartpole: { maxSteps: 500, rewardHigh: 1 },
  // the reward is -(theta^2 + 0.1 thetadot^2 + 0.001 u^2): 0 upright at rest, with no torque
  pendulum: { maxSteps: 200, rewardHigh: 0 },
};

/** Augmentations of training batches by name, with their arguments (runtime/augment.ts applies them). */
export const AUGMENTATIONS: Readonly<Record<'random_shift' | 'horizontal_flip', readonly string[]>> = {
  random_shift: ['pixels', 'column', 'layout'],
  horizontal_flip: ['column', 'layout'],
};

/** One column a dataset gives: its element type and the shape of one example. */
export interface ColumnSpec {
  readonly dtype: 'f32' | 'i32';
  readonly shape: readonly number[];
  /** For class labels: how many classes there are (the values are 0 .. classes - 1). */
  readonly classes?: number;
}

const MNIST_SHAPES: Readonly<Record<string, readonly number[]>> = { flat: [784], nchw: [1, 28, 28], nhwc: [28, 28, 1], hw: [28, 28] };

/**
 * The columns a dataset call gives, known without reading it (undefined where they depend on the file,
 * as a CSV's do, or the arguments are not understood): the loaders build exactly these.
 */
export function datasetColumns(name: string, args: Readonly<Record<string, unknown>>): Readonly<Record<string, ColumnSpec>> | undefined {
  const label = (classes: number): ColumnSpec => ({ dtype: 'i32', shape: [], classes });
  switch (name) {
    case 'mnist': {
      const layout = args.layout ?? 'flat';
      const shape = typeof layout === 'string' ? MNIST_SHAPES[layout] : undefined;
      return shape ? { image: { dtype: 'f32', shape }, label: label(10) } : undefined;
    }
    case 'iris':
      return { features: { dtype: 'f32', shape: [4] }, label: label(3) };
    case 'cifar10':
      return { image: { dtype: 'f32', shape: [3, 32, 32] }, label: label(10) };
    case 'uci_har':
      return { x: { dtype: 'f32', shape: [128, 9] }, label: label(6) };
    case 'tiny_shakespeare':
    case 'text':
      return typeof args.context === 'number' && Number.isInteger(args.context) ? { tokens: { dtype: 'i32', shape: [args.context] } } : undefined;
    default:
      return undefined;
  }
}

/** The layouts a dataset's column can take (`mnist(layout: ...)`'s image), with the shape of one example in each. */
export function columnLayouts(name: string, column: string): readonly { readonly layout: string; readonly shape: readonly number[] }[] {
  return name === 'mnist' && column === 'image' ? Object.entries(MNIST_SHAPES).map(([layout, shape]) => ({ layout, shape })) : [];
}

/**
 * How many examples a dataset call gives, where that is known without reading it: iris's 150 and the
 * offline MNIST package's 10,000 digits (runtime/node/mnist.ts); undefined for the others (files).
 */
export function datasetLength(name: string): number | undefined {
  return name === 'iris' ? 150 : name === 'mnist' ? 10_000 : undefined;
}

/**
 * How many values one example of a CSV's `features` column holds, where the call lists its feature
 * columns (`features: [...]`, a data block's `columns = [...]`): known without reading the file.
 */
export function listedFeatureCount(name: string, args: Readonly<Record<string, unknown>>): number | undefined {
  return name === 'csv' && Array.isArray(args.features) && args.features.length > 0 ? args.features.length : undefined;
}

/**
 * What a model trained from episodes of an environment must declare: the inputs a training step
 * reads (one row per step of an episode) and the outputs acting reads, per example; and which of those
 * inputs acting gives (`acting`: predict is called with those alone, asking for the outputs only).
 * With `gae_lambda` (actor-critic), acting also reads the state value `value` and training also gets
 * the `advantages`. CartPole's action is one integer; Pendulum's one number, its torque.
 */
export function environmentColumns(name: string, args: Readonly<Record<string, unknown>> = {}): { readonly inputs: Readonly<Record<string, ColumnSpec>>; readonly outputs: Readonly<Record<string, ColumnSpec>>; readonly acting: readonly string[] } | undefined {
  const spaces: Readonly<Record<string, { observation: number; action: ColumnSpec }>> = {
    cartpole: { observation: 4, action: { dtype: 'i32', shape: [] } },
    pendulum: { observation: 3, action: { dtype: 'f32', shape: [1] } },
  };
  const space = Object.hasOwn(spaces, name) ? spaces[name] : undefined;
  if (!space) return undefined;
  const scalar: ColumnSpec = { dtype: 'f32', shape: [] };
  const gae = args.gae_lambda !== undefined;
  return {
    inputs: { observation: { dtype: 'f32', shape: [space.observation] }, action: space.action, returns: scalar, ...(gae ? { advantages: scalar } : {}) },
    outputs: { sampled_action: space.action, ...(gae ? { value: scalar } : {}) },
    acting: ['observation'],
  };
}

/**
 * How one example of a column (`column`, its shape) fails to fit the shape an input declares after its
 * batch axis: each concrete axis must equal the column's, and each size name takes one value, bound in
 * `bound` (shared by the inputs of one model); other size expressions are not checked. A column of
 * another rank fits only as the flat elements of a wholly concrete shape ([784] into [1, 28, 28]);
 * otherwise the answer is 'rank'. An empty list: it fits.
 */
export function columnClashes(perExample: readonly SizeExpr[], column: readonly number[], bound: Map<string, number>): 'rank' | string[] {
  if (perExample.length !== column.length) {
    const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
    return perExample.every((d) => typeof d === 'number') && count(perExample as number[]) === count(column) ? [] : 'rank';
  }
  return perExample.flatMap((d, i): string[] => {
    const n = column[i];
    if (typeof d === 'number') return d === n ? [] : [`axis ${i + 1} is ${d}, the data's ${n}`];
    if (typeof d !== 'string') return [];
    const seen = bound.get(d);
    if (seen !== undefined && seen !== n) return [`${d} would be both ${seen} and ${n}`];
    bound.set(d, n);
    return [];
  });
}

/**
 * How a CSV's label column is read: `class` maps strings to class indices (i32), `int` parses integers
 * (i32), `float` parses numbers (f32, for regression), `auto` (default) is `int` when every label is
 * a whole number (2 or 2.0), `class` when none is a number, and an error for a mix (runtime/csv.ts).
 */
export type CsvLabelType = 'auto' | 'class' | 'int' | 'float';

export const CSV_LABEL_TYPES: readonly CsvLabelType[] = ['auto', 'class', 'int', 'float'];
