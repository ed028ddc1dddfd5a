// The names every .dl file sees without importing them, and the modules of the standard library.

/** Standard-library modules and what each exports; `use std.nn.{Dense}` is checked against this table. */
export const STD_MODULES: Readonly<Record<string, readonly string[]>> = {
  'std.nn': [
    'Dense', 'Conv2d', 'ConvTranspose2d', 'MaxPool2d', 'AvgPool2d', 'Flatten', 'Dropout', 'BatchNorm', 'LayerNorm',
    'Embedding', 'RNN', 'RNNCell', 'LSTM', 'LSTMCell', 'GRU', 'GRUCell', 'MultiHeadAttention', 'TransformerBlock',
    'Residual', 'Sequential',
  ],
  'std.act': ['relu', 'leaky_relu', 'gelu', 'silu', 'sigmoid', 'tanh', 'softmax', 'log_softmax', 'softplus', 'elu'],
  'std.loss': ['mse', 'l1', 'cross_entropy', 'binary_cross_entropy', 'nll'],
  'std.metrics': ['accuracy', 'precision', 'recall', 'f1'],
  'std.init': [
    'zeros', 'ones', 'constant', 'normal', 'uniform', 'glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal',
  ],
  'std.optim': [
    'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', 'constant', 'step', 'exponential', 'cosine', 'linear', 'warmup',
  ],
  'std.data': ['mnist', 'iris', 'csv', 'synthetic'],
};

/** Primitives and compile-time helpers of the language itself. */
const CORE = [
  // elementwise math
  'exp', 'log', 'log2', 'log10', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'abs', 'sign', 'sin', 'cos', 'erf', 'floor', 'ceil', 'round',
  'pow', 'clamp', 'minimum', 'maximum', 'select', 'where', 'cast', 'square', 'reciprocal', 'isnan',
  // reductions
  'sum', 'mean', 'max', 'min', 'prod', 'logsumexp', 'argmax', 'argmin', 'variance', 'std', 'norm',
  // shape and data movement
  'reshape', 'transpose', 'permute', 'broadcast_to', 'expand', 'squeeze', 'unsqueeze', 'flatten', 'slice', 'concat',
  'stack', 'split', 'pad', 'gather', 'take', 'scatter_add', 'one_hot', 'triu', 'tril', 'causal_mask', 'eye',
  'arange', 'full', 'zeros_like', 'ones_like',
  // contractions and windows
  'matmul', 'conv2d', 'conv_transpose2d', 'max_pool2d', 'avg_pool2d',
  // randomness and gradients
  'dropout', 'random_normal', 'random_uniform', 'random_bernoulli', 'categorical', 'stop_gradient',
  // normalisation as functions
  'layer_norm', 'batch_norm',
  // compile-time helpers
  'len', 'range', 'enumerate', 'zip', 'shape', 'int', 'float', 'bool', 'str', 'reversed', 'any', 'all',
  // dtypes as values: cast(x, i32)
  'f16', 'f32', 'i32', 'u32',
];

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
  data: ['source', 'split', 'shuffle', 'seed', 'inputs', 'path', 'columns', 'label'],
  split: null,
  shuffle: null,
  seed: null,
  validation: ['every', 'split', 'metrics'],
  early_stopping: ['monitor', 'patience', 'mode', 'min_delta', 'restore_best'],
  checkpoint: ['path', 'every', 'keep', 'monitor', 'mode'],
  init_from: null,
  param_group: ['params', 'lr', 'weight_decay', 'momentum', 'beta1', 'beta2', 'eps'],
  metrics: null,
  log_every: null,
  eval_every: null,
};
