// The names `dlc train` understands in a train block's calls, with each call's arguments: datasets (`data`, `validation`), environments (`env`) and augmentations (`augment`); shared by the compiler's checks and the loaders; browser-safe.

/** Datasets by name, with their arguments (runtime/node/datasets.ts loads them). */
export const DATASETS: Readonly<Record<string, readonly string[]>> = {
  mnist: ['layout', 'scale'],
  iris: [],
  csv: ['path', 'label', 'features', 'header', 'label_type', 'classes', 'delimiter'],
  cifar10: ['dir', 'part'],
  uci_har: ['dir', 'part'],
  tiny_shakespeare: ['path', 'context'],
  text: ['path', 'context'],
};

/** Environments by name, with their arguments (compiler/cli/train-episodes.ts runs them). */
export const ENVIRONMENTS: Readonly<Record<string, readonly string[]>> = {
  cartpole: ['episodes', 'gamma', 'max_steps', 'solved_at'],
};

/** Augmentations of training batches by name, with their arguments (runtime/augment.ts applies them). */
export const AUGMENTATIONS: Readonly<Record<'random_shift' | 'horizontal_flip', readonly string[]>> = {
  random_shift: ['pixels', 'column'],
  horizontal_flip: ['column'],
};
