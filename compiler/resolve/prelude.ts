// The names every .dl file sees without importing them, and the modules of the standard library.
import type * as A from '../../grammar/ast.ts';
import { BUILTIN_NAMES, INITIALIZERS } from '../elaborate/builtins.ts';

/** Standard-library modules and what each exports; `use std.nn.{Dense}` is checked against this table. */
export const STD_MODULES: Readonly<Record<string, readonly string[]>> = {
  'std.nn': [
    'dropout', 'bernoulli',
    'Dense', 'Conv1d', 'Conv2d', 'ConvTranspose2d', 'MaxPool2d', 'AvgPool2d', 'Flatten', 'Dropout', 'BatchNorm', 'LayerNorm',
    'RMSNorm', 'GroupNorm', 'Normalization', 'Upsample', 'Embedding', 'RNN', 'RNNCell', 'LSTM', 'LSTMCell', 'GRU', 'GRUCell', 'MultiHeadAttention', 'TransformerBlock',
    'Residual', 'Sequential',
  ],
  'std.act': ['relu', 'leaky_relu', 'gelu', 'silu', 'sigmoid', 'tanh', 'softmax', 'log_softmax', 'logsumexp', 'softplus', 'elu'],
  'std.loss': ['mse', 'l1', 'huber', 'cross_entropy', 'binary_cross_entropy', 'nll', 'kl_normal'],
  'std.math': ['var', 'std', 'normalize', 'cosine_similarity', 'tril', 'triu', 'top_k', 'clip'],
  'std.metrics': ['accuracy', 'top_k_accuracy', 'precision', 'recall', 'f1', 'binary_accuracy', 'binary_precision', 'binary_recall', 'binary_f1', 'auc', 'confusion_matrix', 'binary_confusion_matrix', 'mae', 'rmse', 'mape', 'r2', 'max_error'],
  'std.init': [
    'zeros', 'ones', 'constant', 'normal', 'uniform', 'glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal',
  ],
  'std.optim': [
    'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', 'constant', 'step', 'exponential', 'cosine', 'linear', 'warmup',
  ],
  'std.data': ['mnist', 'iris', 'csv', 'synthetic'],
};

/** Builtins of the language itself (implemented by the elaborator), initializers, dtypes and the mode flag. */
const CORE = [...BUILTIN_NAMES, ...Object.keys(INITIALIZERS), 'f16', 'f32', 'i32', 'u32', 'bool', 'training'];

/** Everything visible in every file: the core plus every standard-library export. */
export const PRELUDE: ReadonlySet<string> = new Set([...CORE, ...Object.values(STD_MODULES).flat()]);

/** Settings a `train` block accepts, and the keys of its setting blocks. */
export const TRAIN_SETTINGS: Readonly<Record<string, readonly string[] | null>> = {
  optimizer: null,
  schedule: null,
  batch: null,
  max_batch: null,
  epochs: null,
  steps: null,
  clip_grad_norm: null,
  clip_grad_value: null,
  data: ['source', 'split', 'shuffle', 'seed', 'path', 'columns', 'categorical', 'label', 'stratify', 'ordered_split'],
  env: null,
  split: null,
  stratify: null,
  ordered_split: null,
  shuffle: null,
  seed: null,
  validation: ['source', 'every', 'split', 'metrics'],
  early_stopping: ['monitor', 'patience', 'mode', 'min_delta', 'restore_best'],
  checkpoint: ['path', 'every', 'keep', 'monitor', 'mode'],
  init_from: null,
  param_group: ['params', 'lr', 'weight_decay', 'momentum', 'beta1', 'beta2', 'eps'],
  metrics: null,
  log_every: null,
  eval_every: null,
  augment: null,
  freeze_mode: null,
  adapt: null,
};

/** Names other frameworks give train settings, with where dlc takes them: the help line of E0204. */
export const SETTING_ALIASES: Readonly<Record<string, string>> = {
  batch_size: 'dlc calls it `batch`',
  num_epochs: 'dlc calls it `epochs`',
  n_epochs: 'dlc calls it `epochs`',
  max_epochs: 'dlc calls it `epochs`',
  max_steps: 'dlc calls it `steps`',
  num_steps: 'dlc calls it `steps`',
  lr: 'the learning rate is the optimizer\'s: `optimizer = adam(lr: 1e-3)`',
  learning_rate: 'the learning rate is the optimizer\'s: `optimizer = adam(lr: 1e-3)`',
  momentum: 'momentum is the optimizer\'s: `optimizer = sgd(lr: 0.1, momentum: 0.9)`',
  weight_decay: 'weight decay is the optimizer\'s: `optimizer = adamw(lr: 1e-3, weight_decay: 0.01)`',
  lr_schedule: 'dlc calls it `schedule`',
  scheduler: 'dlc calls it `schedule`',
  validation_split: 'hold out a fraction with `split = [0.9, 0.1]`',
  patience: 'patience belongs to `early_stopping { monitor = "val_loss"; patience = 5 }`',
  grad_clip: 'dlc calls it `clip_grad_norm` (or `clip_grad_value`)',
  max_grad_norm: 'dlc calls it `clip_grad_norm`',
  dataset: 'dlc calls it `data`',
};

/** The names a local file exports to `use "./file.dl".{...}`: its layers, models, functions and top-level constants. */
export function fileExports(program: A.Program): string[] {
  return program.body.stmts.flatMap((s) => (s.kind === 'Layer' || s.kind === 'Model' || s.kind === 'Fn' ? [s.name.text] : s.kind === 'Let' ? s.targets.map((t) => t.text) : []));
}
