// The parameters of each builtin, in positional order with their defaults: calls are checked against them
// (a misspelled keyword such as `strid:` is E0303, not silently the default) and docs/language.md lists them.

/** A builtin's parameters (`name` or `name = default`), and whether more positional values may follow (`max(1, 2, 3)`). */
export interface BuiltinSignature {
  readonly params: readonly string[];
  readonly variadic?: true;
}

const UNARY_NAMES = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'floor', 'ceil', 'logical_not', 'stop_gradient', 'log1p', 'expm1', 'log2', 'log10', 'square'];
const REDUCTION: BuiltinSignature = { params: ['x', 'axis = all axes', 'keepdims = false'], variadic: true };
const MAX_POOL: BuiltinSignature = { params: ['x', 'kernel = 2', 'stride = kernel', 'padding = 0', 'ceil_mode = false'] };
const AVG_POOL: BuiltinSignature = { params: ['x', 'kernel = 2', 'stride = kernel', 'padding = 0', 'ceil_mode = false', 'count_include_pad = false'] };
const RANDOM: BuiltinSignature = { params: ['shape'] };

export const BUILTIN_SIGNATURES: Readonly<Record<string, BuiltinSignature>> = {
  ...Object.fromEntries(UNARY_NAMES.map((n) => [n, { params: ['x'] }])),
  maximum: { params: ['a', 'b'] },
  minimum: { params: ['a', 'b'] },
  pow: { params: ['a', 'b'] },
  select: { params: ['cond', 'a', 'b'] },
  where: { params: ['cond', 'a', 'b'] },
  cast: { params: ['x', 'dtype'] },
  tensor: { params: ['values', 'dtype = from the values'] },
  isnan: { params: ['x'] },
  isfinite: { params: ['x'] },
  sum: REDUCTION,
  max: REDUCTION,
  min: REDUCTION,
  mean: REDUCTION,
  argmax: { params: ['x', 'axis = -1'] },
  cumsum: { params: ['x', 'axis = -1', 'reverse = false'] },
  zeros_like: { params: ['x'] },
  ones_like: { params: ['x'] },
  matmul: { params: ['a', 'b'] },
  einsum: { params: ['subscripts', 'a', 'b'], variadic: true },
  reshape: { params: ['x', 'shape'] },
  transpose: { params: ['x', 'perm = the last two axes swapped'] },
  permute: { params: ['x', 'perm'] },
  broadcast_to: { params: ['x', 'shape'] },
  concat: { params: ['xs', 'axis = 0'] },
  stack: { params: ['xs', 'axis = 0'] },
  split: { params: ['x', 'parts', 'axis = -1'] },
  pad: { params: ['x', 'before', 'after', 'value = 0'] },
  take: { params: ['table', 'indices', 'axis = 0'] },
  take_along_axis: { params: ['x', 'indices', 'axis = -1'] },
  gather: { params: ['x', 'indices', 'axis = -1'] },
  one_hot: { params: ['indices', 'depth'] },
  conv2d: { params: ['x', 'w', 'stride = 1', 'padding = 0', 'dilation = 1', 'groups = 1'] },
  conv_transpose2d: { params: ['x', 'w', 'stride = 1', 'padding = 0', 'dilation = 1', 'output_padding = 0', 'groups = 1'] },
  max_pool2d: MAX_POOL,
  avg_pool2d: AVG_POOL,
  random_uniform: RANDOM,
  random_normal: RANDOM,
  categorical: { params: ['logits'] },
  zeros: { params: ['shape', 'dtype = f32'] },
  ones: { params: ['shape', 'dtype = f32'] },
  full: { params: ['shape', 'value', 'dtype = f32'] },
  arange: { params: ['n'] },
  shape: { params: ['x'] },
  len: { params: ['x'] },
  pair: { params: ['x'] },
  range: { params: ['start', 'stop'] },
  int: { params: ['x'] },
  float: { params: ['x'] },
  zip: { params: [], variadic: true },
  enumerate: { params: ['xs'] },
};

/** The initializers' parameters (`param w: f32[n] = normal(0.0, 0.02)`, as torch.nn.init orders them). */
export const INITIALIZER_SIGNATURES: Readonly<Record<string, BuiltinSignature>> = {
  constant: { params: ['value'] },
  normal: { params: ['mean = 0', 'std = 1'] },
  uniform: { params: ['low = 0', 'high = 1'] },
  glorot_uniform: { params: [] },
  glorot_normal: { params: [] },
  he_uniform: { params: [] },
  he_normal: { params: [] },
};

/** A parameter's name without its default. */
export function paramName(param: string): string {
  return param.split(' = ')[0];
}

/** `conv2d(x, w, stride = 1, ...)`. */
export function signatureText(name: string): string {
  const s = BUILTIN_SIGNATURES[name] ?? INITIALIZER_SIGNATURES[name];
  return s ? `${name}(${[...s.params, ...(s.variadic ? ['...'] : [])].join(', ')})` : name;
}
