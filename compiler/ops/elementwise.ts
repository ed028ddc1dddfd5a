// Elementwise primitives: unary math, binary arithmetic and comparisons with numpy broadcasting, select and cast.
import type { Attrs, DType, TensorType, Value } from '../ir/types.ts';
import { broadcastShapes } from '../shapes/unify.ts';
import { mapBroadcast } from '../interpret/tensor.ts';
import { type LowerSpec, registerOp, type ShapeError } from './registry.ts';
import { DTYPE_NAMES, err, isFloatType, isIntType, isNumeric, typeStr } from './util.ts';
import { builder, unbroadcast } from './vjp-util.ts';

type Builder = ReturnType<typeof builder>;

type DTypeClass = 'float' | 'numeric' | 'signed' | 'bool' | 'any';

function inClass(d: DType, c: DTypeClass): boolean {
  switch (c) {
    case 'float':
      return isFloatType(d);
    case 'numeric':
      return isNumeric(d);
    case 'signed':
      return d !== 'bool' && d !== 'u32';
    case 'bool':
      return d === 'bool';
    case 'any':
      return true;
  }
}

const CLASS_WORDS: Record<DTypeClass, string> = {
  float: 'a float tensor (f32 or f16)',
  numeric: 'a numeric tensor',
  signed: 'a float or i32 tensor',
  bool: 'a bool tensor',
  any: 'a tensor',
};

/**
 * erf to about 1e-15: the Maclaurin series below 3 (terms peak near e^9, so about 4 of 16 digits
 * cancel), and the continued fraction for erfc above, where the series would cancel badly.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated from the tail.
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

// ---- lowering to WGSL -----------------------------------------------------------------------------
//
// Each elementwise op lowers to one scalar WGSL expression over register values (`f32`, `i32`, `u32`,
// `bool`; see LowerSpec). Where WGSL leaves a case indeterminate and the interpreter defines it (NaN
// in max/min/sign/tanh, negative bases in pow, float-to-int saturation, overflow in tanh and sigmoid), a
// helper function pins the interpreter's answer. i32/u32 +, -, *, negation and abs wrap natively;
// integer `/` and `%` follow WGSL (x / 0 = x, x % 0 = 0, truncation toward zero), as the interpreter does.

/** The WGSL type of a register value of this dtype. */
function wgslType(d: DType): string {
  return d === 'bool' ? 'bool' : d;
}

/** A typed WGSL literal: `f32(1)`, `i32(-1)`, `u32(0)`. */
function lit(d: DType, v: number): string {
  return `${wgslType(d)}(${v})`;
}

/** erf's Maclaurin coefficients (2/sqrt(pi) * (-1)^n / (n! (2n+1))), n = 0..10, for |x| < 1. */
const ERF_SERIES: number[] = (() => {
  const c: number[] = [];
  let fact = 1;
  for (let n = 0; n <= 10; n++) {
    if (n > 0) fact *= n;
    c.push(((n % 2 === 0 ? 1 : -1) / (fact * (2 * n + 1))) * (2 / Math.sqrt(Math.PI)));
  }
  return c;
})();

const f32lit = (v: number): string => {
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
};

/**
 * erf in f32. Below |x| = 1 the Maclaurin series to x^21 (truncation error under 1.3e-9); from 1 on,
 * Abramowitz-Stegun 7.1.26 (absolute error at most 1.5e-7, which is under 1.8e-7 relative there since
 * erf(1) = 0.84). With f32 rounding and WGSL's exp, the measured error against the f64 reference on
 * lavapipe is 2.1e-7 absolute at most (2.5e-7 relative) over [-6, 6]; the GPU test allows 5e-7
 * absolute plus 1e-6 relative.
 */
const ERF_WGSL = `fn dlc_erf(x: f32) -> f32 {
  let a = abs(x);
  if (a < 1.0) {
    let z = x * x;
    return x * ${ERF_SERIES.slice(0, -1).map((c) => `(${f32lit(c)} + z * `).join('')}${f32lit(ERF_SERIES[ERF_SERIES.length - 1])}${')'.repeat(ERF_SERIES.length - 1)};
  }
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  let y = 1.0 - p * exp(-a * a);
  return select(y, -y, x < 0.0);
}`;

/** c0 + z * (c1 + z * (c2 + ...)) in WGSL, for a local `z`. */
function horner(coefficients: readonly number[]): string {
  const [last, ...rest] = [...coefficients].reverse();
  return rest.reduce((inner, c) => `(${f32lit(c)} + z * ${inner})`, f32lit(last));
}

/** tanh(x) = x * sum c_k x^(2k): 1, -1/3, 2/15, -17/315, ... (the Bernoulli-number series), to x^15. */
const TANH_SERIES = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075, -929569 / 638512875];
/** atanh(s) = s * sum s^(2k) / (2k + 1), to s^15. */
const ATANH_SERIES = Array.from({ length: 8 }, (_, k) => 1 / (2 * k + 1));
/** expm1(x) = x * sum x^k / (k + 1)!, to x^10. */
const EXPM1_SERIES = Array.from({ length: 10 }, (_, k) => {
  let f = 1;
  for (let n = 2; n <= k + 1; n++) f *= n;
  return 1 / f;
});

const UNARY_HELPERS: Record<string, string> = {
  dlc_erf: ERF_WGSL,
  // exp only ever sees -|x|, so neither branch overflows (the interpreter's formula, branch-free).
  dlc_sigmoid: `fn dlc_sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}`,
  // Below |x| = 0.5, tanh's odd Taylor polynomial to x^15 (truncation under 1e-8 relative): WGSL only
  // asks tanh to be as accurate as (e^x - e^-x) / (e^x + e^-x), which has an absolute error and so loses
  // its relative accuracy near 0 (lavapipe's tanh(1e-7) is 1.19e-7). Above, the builtin: tanh(10) rounds
  // to 1 in f32, so clamping is exact and keeps backends that expand tanh through exp from overflowing.
  // NaN returns first (read from the bits, as in dlc_sign_f32): WGSL's clamp of NaN is indeterminate
  // (lavapipe gives -10, so tanh(NaN) was -1 and a diverged activation looked valid).
  dlc_tanh: `fn dlc_tanh(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  if (abs(x) < 0.5) {
    let z = x * x;
    return x * ${horner(TANH_SERIES)};
  }
  return tanh(clamp(x, -10.0, 10.0));
}`,
  // log(1 + x) = 2 atanh(s) with s = x / (2 + x), an odd series in s (|s| <= 1/3 on [-0.5, 1], truncated
  // at s^15: under 2e-9 relative). Outside that range 1 + x is below 0.5 or above 2, where WGSL's log has
  // its ulp bound (near 1 it only has an absolute one, 2^-21).
  dlc_log1p: `fn dlc_log1p(x: f32) -> f32 {
  if (x >= -0.5 && x <= 1.0) {
    let s = x / (2.0 + x);
    let z = s * s;
    return 2.0 * s * ${horner(ATANH_SERIES)};
  }
  return log(1.0 + x);
}`,
  // exp(x) - 1 cancels near 0: below |x| = 0.5 the Taylor series to x^10 (truncation under 1e-9 relative);
  // above, exp(x) - 1 loses at most exp's few ulps against a result of magnitude 0.39 or more.
  dlc_expm1: `fn dlc_expm1(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    let z = x;
    return x * ${horner(EXPM1_SERIES)};
  }
  return exp(x) - 1.0;
}`,
  // WGSL's sign is indeterminate for NaN; the interpreter keeps NaN. NaN tests read the bits: backends
  // may fold \`x != x\` to false.
  dlc_sign_f32: `fn dlc_sign_f32(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  return sign(x);
}`,
};

/** WGSL for a unary op at dtype d, or undefined when the op does not take that dtype. */
const UNARY_WGSL: Record<string, (x: string, d: DType) => string> = {
  neg: (x) => `(-${x})`,
  exp: (x) => `exp(${x})`,
  log: (x) => `log(${x})`,
  sqrt: (x) => `sqrt(${x})`,
  rsqrt: (x) => `inverseSqrt(${x})`,
  abs: (x) => `abs(${x})`,
  sign: (x, d) => (d === 'f32' ? `dlc_sign_f32(${x})` : `select(select(${lit(d, 0)}, ${lit(d, -1)}, ${x} < ${lit(d, 0)}), ${lit(d, 1)}, ${x} > ${lit(d, 0)})`),
  sin: (x) => `sin(${x})`,
  cos: (x) => `cos(${x})`,
  tanh: (x) => `dlc_tanh(${x})`,
  log1p: (x) => `dlc_log1p(${x})`,
  expm1: (x) => `dlc_expm1(${x})`,
  sigmoid: (x) => `dlc_sigmoid(${x})`,
  erf: (x) => `dlc_erf(${x})`,
  floor: (x) => `floor(${x})`,
  ceil: (x) => `ceil(${x})`,
  logical_not: (x) => `(!${x})`,
};

function unaryLower(name: string): LowerSpec {
  const f = UNARY_WGSL[name];
  if (!f) throw new Error(`unary op ${name} has no WGSL lowering`);
  return { kind: 'elementwise', expr: ([x], _attrs, d) => f(x, d), helpers: UNARY_HELPERS };
}

const BINARY_HELPERS: Record<string, string> = {
  // WGSL's pow is exp2(b * log2(a)): indeterminate for a <= 0, infinities and NaN. dlc_pow pins C's
  // (IEEE 754) pow, as the interpreter's ieeePow and torch.pow: x^0 = 1^y = 1 (NaN included), otherwise
  // NaN in, NaN out; +-0 and +-inf give 0 or inf by the signs, keeping the base's sign for an odd
  // integer exponent (pow(-0, -1) = -inf, pow(-inf, 3) = -inf, pow(-inf, 0.5) = inf); (-1)^+-inf = 1;
  // a negative base has a real power only at an integer exponent. Exponents of 2^24 and more are even.
  dlc_pow: `fn dlc_pow(a: f32, b: f32) -> f32 {
  // Infinity and NaN are not constant expressions in WGSL: build them from a runtime variable.
  var inf_bits = 0x7f800000u;
  let inf = bitcast<f32>(inf_bits);
  if (b == 0.0 || a == 1.0) { return 1.0; }
  // a square is one correctly rounded product (exp2(2 * log2(a)) is a few ulp off: 100^2 was 9999.998)
  if (b == 2.0) { return a * a; }
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u || (bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) {
    return bitcast<f32>(inf_bits | 0x400000u);
  }
  let odd = abs(b) < 16777216.0 && floor(b) == b && fract(b * 0.5) != 0.0;
  let negative = (bitcast<u32>(a) & 0x80000000u) != 0u;
  if (a == 0.0 || abs(a) == inf) {
    let magnitude = select(0.0, inf, (a == 0.0) == (b < 0.0));
    return select(magnitude, -magnitude, negative && odd);
  }
  if (a == -1.0 && abs(b) == inf) { return 1.0; }
  let m = pow(abs(a), b);
  if (!negative) { return m; }
  if (floor(b) != b) { return bitcast<f32>(inf_bits | 0x400000u); }
  return select(m, -m, odd);
}`,
  // NaN-propagating like jnp.maximum / Math.max: WGSL's max and min need not be.
  dlc_max_f32: `fn dlc_max_f32(a: f32, b: f32) -> f32 {
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  return max(a, b);
}`,
  dlc_min_f32: `fn dlc_min_f32(a: f32, b: f32) -> f32 {
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  return min(a, b);
}`,
};

const BINARY_WGSL: Record<string, (a: string, b: string, d: DType) => string> = {
  add: (a, b) => `(${a} + ${b})`,
  sub: (a, b) => `(${a} - ${b})`,
  mul: (a, b) => `(${a} * ${b})`,
  div: (a, b) => `(${a} / ${b})`,
  pow: (a, b) => `dlc_pow(${a}, ${b})`,
  maximum: (a, b, d) => (d === 'f32' ? `dlc_max_f32(${a}, ${b})` : `max(${a}, ${b})`),
  minimum: (a, b, d) => (d === 'f32' ? `dlc_min_f32(${a}, ${b})` : `min(${a}, ${b})`),
  // Truncated remainder for every dtype (f32: a - b * trunc(a / b)).
  mod: (a, b) => `(${a} % ${b})`,
  eq: (a, b) => `(${a} == ${b})`,
  // !(a == b) rather than a != b: true when either is NaN, whichever ordering the backend compares with.
  ne: (a, b) => `(!(${a} == ${b}))`,
  lt: (a, b) => `(${a} < ${b})`,
  le: (a, b) => `(${a} <= ${b})`,
  gt: (a, b) => `(${a} > ${b})`,
  ge: (a, b) => `(${a} >= ${b})`,
  logical_and: (a, b) => `(${a} && ${b})`,
  logical_or: (a, b) => `(${a} || ${b})`,
};

function binaryLower(name: string): LowerSpec {
  const f = BINARY_WGSL[name];
  if (!f) throw new Error(`binary op ${name} has no WGSL lowering`);
  // The operand dtype, not the result's: comparisons return bool.
  return { kind: 'elementwise', expr: ([a, b], _attrs, _d, ins) => f(a, b, ins[0]), helpers: BINARY_HELPERS };
}

const SELECT_LOWER: LowerSpec = { kind: 'elementwise', expr: ([c, a, b]) => `select(${b}, ${a}, ${c})` };

const CAST_HELPERS: Record<string, string> = {
  // Truncate toward zero, saturate, NaN to 0 (castValue); WGSL leaves out-of-range conversions to the backend.
  dlc_f32_to_i32: `fn dlc_f32_to_i32(x: f32) -> i32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return 0; }
  if (x >= 2147483648.0) { return 2147483647; }
  if (x <= -2147483648.0) { return -2147483647 - 1; }
  return i32(x);
}`,
  dlc_f32_to_u32: `fn dlc_f32_to_u32(x: f32) -> u32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u || x <= 0.0) { return 0u; }
  if (x >= 4294967296.0) { return 4294967295u; }
  return u32(x);
}`,
};

/** WGSL for castValue(x, from, to) on register values. */
export function castWgsl(x: string, from: DType, to: DType): string {
  if (from === to) return x;
  // Float to bool reads the bits, so NaN is true (a backend may compare NaN != 0 as false) and -0 false.
  if (to === 'bool') return isFloatType(from) ? `((bitcast<u32>(f32(${x})) & 0x7fffffffu) != 0u)` : `(${x} != ${lit(from, 0)})`;
  if (from === 'bool') return `select(${lit(to, 0)}, ${lit(to, 1)}, ${x})`;
  if (isFloatType(to)) return `${wgslType(to)}(${x})`;
  if (isFloatType(from)) {
    if (from !== 'f32') return `dlc_f32_to_${to}(f32(${x}))`;
    return `dlc_f32_to_${to}(${x})`;
  }
  // i32 <-> u32 reinterpret the 32 bits.
  return `bitcast<${to}>(${x})`;
}

const CAST_LOWER: LowerSpec = {
  kind: 'elementwise',
  expr: ([x], attrs, _d, ins) => castWgsl(x, ins[0], attrs.dtype as DType),
  helpers: CAST_HELPERS,
};

// ---- unary ----------------------------------------------------------------------------------------

interface UnarySpec {
  name: string;
  accepts: DTypeClass;
  fn: (x: number, dtype: DType) => number;
  differentiable?: boolean;
  /** The input cotangent from the input x, the output y and the output cotangent ct. */
  grad?: (g: Builder, x: Value, y: Value, ct: Value) => Value;
}

const UNARY: UnarySpec[] = [
  {
    name: 'neg',
    accepts: 'signed',
    fn: (x) => -x,
    grad: (g, _x, _y, ct) => g.neg(ct),
  },
  {
    name: 'exp',
    accepts: 'float',
    fn: Math.exp,
    grad: (g, _x, y, ct) => g.mul(ct, y),
  },
  {
    name: 'log',
    accepts: 'float',
    fn: Math.log,
    grad: (g, x, _y, ct) => g.div(ct, x),
  },
  // Accurate near 0, where log(1 + x) and exp(x) - 1 would cancel (the WGSL helpers above).
  {
    name: 'log1p',
    accepts: 'float',
    fn: Math.log1p,
    grad: (g, x, _y, ct) => g.div(ct, g.add(x, 1)),
  },
  {
    name: 'expm1',
    accepts: 'float',
    fn: Math.expm1,
    grad: (g, _x, y, ct) => g.mul(ct, g.add(y, 1)),
  },
  {
    name: 'sqrt',
    accepts: 'float',
    fn: Math.sqrt,
    grad: (g, _x, y, ct) => g.div(ct, g.mul(y, 2)),
  },
  {
    name: 'rsqrt',
    accepts: 'float',
    fn: (x) => 1 / Math.sqrt(x),
    // d/dx x^(-1/2) = -x^(-3/2) / 2 = -y^3 / 2
    grad: (g, _x, y, ct) => g.mul(ct, g.mul(g.mul(y, g.mul(y, y)), -0.5)),
  },
  // abs of i32 -2^31 wraps to itself, as in WGSL.
  {
    name: 'abs',
    accepts: 'numeric',
    fn: Math.abs,
    // sign(0) = 0: the subgradient at the kink is 0
    grad: (g, x, _y, ct) => g.mul(ct, g.sign(x)),
  },
  { name: 'sign', accepts: 'signed', fn: (x) => (Number.isNaN(x) ? NaN : x > 0 ? 1 : x < 0 ? -1 : 0), differentiable: false },
  {
    name: 'sin',
    accepts: 'float',
    fn: Math.sin,
    grad: (g, x, _y, ct) => g.mul(ct, g.cos(x)),
  },
  {
    name: 'cos',
    accepts: 'float',
    fn: Math.cos,
    grad: (g, x, _y, ct) => g.neg(g.mul(ct, g.sin(x))),
  },
  {
    name: 'tanh',
    accepts: 'float',
    fn: Math.tanh,
    grad: (g, _x, y, ct) => g.mul(ct, g.sub(1, g.mul(y, y))),
  },
  // Written so that neither branch overflows: exp only ever sees a non-positive argument.
  {
    name: 'sigmoid',
    accepts: 'float',
    fn: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
    grad: (g, _x, y, ct) => g.mul(ct, g.mul(y, g.sub(1, y))),
  },
  {
    name: 'erf',
    accepts: 'float',
    fn: erf,
    grad: (g, x, _y, ct) => g.mul(ct, g.mul(g.exp(g.neg(g.mul(x, x))), 2 / Math.sqrt(Math.PI))),
  },
  { name: 'floor', accepts: 'float', fn: Math.floor, differentiable: false },
  { name: 'ceil', accepts: 'float', fn: Math.ceil, differentiable: false },
  { name: 'logical_not', accepts: 'bool', fn: (x) => (x ? 0 : 1), differentiable: false },
];

for (const u of UNARY) {
  registerOp({
    name: u.name,
    family: 'elementwise',
    arity: 1,
    differentiable: u.differentiable === false ? 'none' : 'all',
    attrs: {},
    infer([x]) {
      if (!inClass(x.dtype, u.accepts)) return err(`${u.name} needs ${CLASS_WORDS[u.accepts]}, found ${typeStr(x)}`, 0);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    interpret([x]) {
      return [mapBroadcast(x.dtype, [x], (v) => u.fn(v, x.dtype))];
    },
    ...(u.grad ? { vjp: (ctx, { inputs: [x], outputs: [y] }, [ct]) => [ct ? u.grad!(builder(ctx), x, y, ct) : null] } : {}),
    lower: unaryLower(u.name),
  });
}

// ---- binary ---------------------------------------------------------------------------------------

/** i32/u32 division truncates toward zero like WGSL; a zero divisor gives the dividend (WGSL's rule). */
function intDiv(a: number, b: number): number {
  return b === 0 ? a : Math.trunc(a / b);
}

/** Truncated remainder (sign of the dividend) for every dtype, matching WGSL's `%`; integer x % 0 is 0. */
function remainder(a: number, b: number, dtype: DType): number {
  if (isIntType(dtype)) return b === 0 ? 0 : a % b;
  return a % b;
}

interface BinarySpec {
  name: string;
  accepts: DTypeClass;
  /** Result dtype: the operands' own, or bool for comparisons. */
  result: 'same' | 'bool';
  fn: (a: number, b: number, dtype: DType) => number;
  differentiable?: boolean;
  /** Cotangents for a and b at the broadcast output shape; the vjp then unbroadcasts them to each operand. */
  grad?: (g: Builder, a: Value, b: Value, y: Value, ct: Value) => [Value, Value];
}

/**
 * maximum/minimum route the cotangent to the operand that won; on a tie (a == b) each operand gets
 * half, the average of the two one-sided derivatives and a valid subgradient.
 */
function routeGrad(win: 'gt' | 'lt') {
  return (g: Builder, a: Value, b: Value, _y: Value, ct: Value): [Value, Value] => {
    const wa = g.select(g[win](a, b), 1, g.select(g.eq(a, b), g.scalar(0.5, a), 0));
    const ga = g.mul(ct, wa);
    return [ga, g.sub(ct, ga)];
  };
}

/**
 * C's (IEEE 754) pow, which torch.pow follows: Math.pow but for 1^y = 1 and (-1)^+-inf = 1 (NaN in
 * JavaScript), so also pow(1, NaN) = 1.
 */
export function ieeePow(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return Math.pow(a, b);
}

const BINARY: BinarySpec[] = [
  { name: 'add', accepts: 'numeric', result: 'same', fn: (a, b) => a + b, grad: (_g, _a, _b, _y, ct) => [ct, ct] },
  { name: 'sub', accepts: 'numeric', result: 'same', fn: (a, b) => a - b, grad: (g, _a, _b, _y, ct) => [ct, g.neg(ct)] },
  // Integer products must wrap like 32-bit hardware: a float64 product loses the low bits past 2^53.
  { name: 'mul', accepts: 'numeric', result: 'same', fn: (a, b, d) => (isIntType(d) ? Math.imul(a, b) : a * b), grad: (g, a, b, _y, ct) => [g.mul(ct, b), g.mul(ct, a)] },
  { name: 'div', accepts: 'numeric', result: 'same', fn: (a, b, d) => (isIntType(d) ? intDiv(a, b) : a / b), grad: (g, _a, b, y, ct) => [g.div(ct, b), g.neg(g.div(g.mul(ct, y), b))] },
  {
    name: 'pow',
    accepts: 'float',
    result: 'same',
    fn: ieeePow,
    /*
     * d/da = b a^(b-1); d/db = y log(a) only where a > 0, else 0: a negative base has a real power only
     * at integer b, where the power is not differentiable in b, and 0^b is constant for b > 0. The log
     * reads a guarded base so no NaN or infinity is ever computed.
     */
    grad: (g, a, b, y, ct) => {
      const pos = g.gt(a, 0);
      return [g.mul(ct, g.mul(b, g.pow(a, g.sub(b, 1)))), g.mul(ct, g.select(pos, g.mul(y, g.log(g.select(pos, a, 1))), 0))];
    },
  },
  // NaN-propagating, like jnp.maximum (WGSL's max is not guaranteed to be; lowering must check).
  { name: 'maximum', accepts: 'numeric', result: 'same', fn: (a, b) => Math.max(a, b), grad: routeGrad('gt') },
  { name: 'minimum', accepts: 'numeric', result: 'same', fn: (a, b) => Math.min(a, b), grad: routeGrad('lt') },
  /*
   * The remainder truncates, like C's fmod and WGSL's %: y = a - b trunc(a / b). Away from its jumps,
   * d/da = 1 and d/db = -trunc(a / b) = -(a - y) / b, as torch.fmod's gradient (it had none: a loss
   * through `%` silently left every parameter before it at gradient 0).
   */
  { name: 'mod', accepts: 'numeric', result: 'same', fn: remainder, grad: (g, a, b, y, ct) => [ct, g.neg(g.div(g.mul(ct, g.sub(a, y)), b))] },
  { name: 'eq', accepts: 'any', result: 'bool', fn: (a, b) => (a === b ? 1 : 0), differentiable: false },
  { name: 'ne', accepts: 'any', result: 'bool', fn: (a, b) => (a !== b ? 1 : 0), differentiable: false },
  { name: 'lt', accepts: 'numeric', result: 'bool', fn: (a, b) => (a < b ? 1 : 0), differentiable: false },
  { name: 'le', accepts: 'numeric', result: 'bool', fn: (a, b) => (a <= b ? 1 : 0), differentiable: false },
  { name: 'gt', accepts: 'numeric', result: 'bool', fn: (a, b) => (a > b ? 1 : 0), differentiable: false },
  { name: 'ge', accepts: 'numeric', result: 'bool', fn: (a, b) => (a >= b ? 1 : 0), differentiable: false },
  { name: 'logical_and', accepts: 'bool', result: 'bool', fn: (a, b) => (a && b ? 1 : 0), differentiable: false },
  { name: 'logical_or', accepts: 'bool', result: 'bool', fn: (a, b) => (a || b ? 1 : 0), differentiable: false },
];

/** Broadcast operand shapes pairwise, reporting the first pair that clashes by operand index. */
export function broadcastOperands(op: string, types: readonly TensorType[]): TensorType['shape'] | ShapeError {
  let shape = types[0].shape;
  for (let i = 1; i < types.length; i++) {
    const r = broadcastShapes(shape, types[i].shape);
    if ('error' in r) {
      // Blame the earlier operand that clashes with this one on its own (the running shape mixes them).
      const other = types.findIndex((t, j) => j < i && 'error' in broadcastShapes(t.shape, types[i].shape));
      const j = other < 0 ? 0 : other;
      return err(`${op} shapes do not broadcast: ${typeStr(types[j])} and ${typeStr(types[i])}`, j, i);
    }
    shape = r.shape;
  }
  return shape;
}

for (const b of BINARY) {
  registerOp({
    name: b.name,
    family: 'elementwise',
    arity: 2,
    differentiable: b.differentiable === false ? 'none' : 'all',
    attrs: {},
    infer([x, y]) {
      if (!inClass(x.dtype, b.accepts)) return err(`${b.name} needs ${CLASS_WORDS[b.accepts]}, found ${typeStr(x)}`, 0);
      if (x.dtype !== y.dtype) {
        // the operand to cast (underlined): an integer or bool one towards the float one, else the right one
        const floats = (t: TensorType) => t.dtype === 'f32' || t.dtype === 'f16';
        const [cast, to] = floats(x) && !floats(y) ? [1, 0] : floats(y) && !floats(x) ? [0, 1] : [1, 0];
        const target = [x, y][to].dtype;
        return err(`${b.name} operands have different dtypes: ${typeStr(x)} and ${typeStr(y)}`, cast, to, `cast the underlined ${[x, y][cast].dtype} operand: cast(..., ${target})`);
      }
      const shape = broadcastOperands(b.name, [x, y]);
      if (!Array.isArray(shape)) return shape as ShapeError;
      return [{ dtype: b.result === 'bool' ? 'bool' : x.dtype, shape }];
    },
    interpret([x, y]) {
      const dtype: DType = b.result === 'bool' ? 'bool' : x.dtype;
      return [mapBroadcast(dtype, [x, y], (p, q) => b.fn(p, q, x.dtype))];
    },
    ...(b.grad
      ? {
          vjp: (ctx, { inputs: [x, y], outputs: [out] }, [ct]) => {
            if (!ct) return [null, null];
            const [gx, gy] = b.grad!(builder(ctx), x, y, out, ct);
            return [unbroadcast(ctx, gx, x.type), unbroadcast(ctx, gy, y.type)];
          },
        }
      : {}),
    lower: binaryLower(b.name),
  });
}

// ---- select ---------------------------------------------------------------------------------------

registerOp({
  name: 'select',
  family: 'elementwise',
  arity: 3,
  differentiable: [false, true, true],
  attrs: {},
  infer([c, a, b]) {
    if (c.dtype !== 'bool') return err(`select needs a bool condition, found ${typeStr(c)}`, 0, undefined, 'compare first, e.g. gt(x, 0)');
    if (a.dtype !== b.dtype) return err(`select branches have different dtypes: ${typeStr(a)} and ${typeStr(b)}`, 2, 1);
    const shape = broadcastOperands('select', [c, a, b]);
    if (!Array.isArray(shape)) return shape as ShapeError;
    return [{ dtype: a.dtype, shape }];
  },
  interpret([c, a, b]) {
    return [mapBroadcast(a.dtype, [c, a, b], (p, q, r) => (p ? q : r))];
  },
  vjp(ctx, { inputs: [c, a, b] }, [ct]) {
    if (!ct) return [null, null, null];
    const g = builder(ctx);
    return [null, unbroadcast(ctx, g.select(c, ct, 0), a.type), unbroadcast(ctx, g.select(c, 0, ct), b.type)];
  },
  lower: SELECT_LOWER,
});

// ---- cast -----------------------------------------------------------------------------------------

/**
 * Conversion rules (WGSL's where it has them): float to integer truncates toward zero and saturates at
 * the integer range, NaN becoming 0; i32 <-> u32 reinterprets the 32 bits; anything to bool is `x != 0`
 * (so NaN is true); bool to anything is 0 or 1. Float to f32/f16 is not rounded here (f64 reference).
 */
export function castValue(x: number, from: DType, to: DType): number {
  if (to === 'bool') return x !== 0 ? 1 : 0;
  if (isFloatType(to)) return x;
  if (isFloatType(from)) {
    if (Number.isNaN(x)) return 0;
    const t = Math.trunc(x);
    return to === 'i32' ? Math.min(2147483647, Math.max(-2147483648, t)) : Math.min(4294967295, Math.max(0, t));
  }
  return to === 'i32' ? x | 0 : x >>> 0;
}

registerOp<Attrs>({
  name: 'cast',
  family: 'elementwise',
  arity: 1,
  // Only float-to-float casts carry a gradient; autodiff checks the dtypes.
  differentiable: 'all',
  attrs: { dtype: 'required' },
  infer([x], attrs) {
    const to = attrs.dtype;
    if (typeof to !== 'string' || !DTYPE_NAMES.includes(to as DType)) return err(`cast needs a dtype attribute (one of ${DTYPE_NAMES.join(', ')})`);
    return [{ dtype: to as DType, shape: x.shape }];
  },
  interpret([x], attrs) {
    const to = attrs.dtype as DType;
    return [mapBroadcast(to, [x], (v) => castValue(v, x.dtype, to))];
  },
  vjp(ctx, { inputs: [x] }, [ct]) {
    if (!ct || !isFloatType(x.type.dtype) || !isFloatType(ct.type.dtype)) return [null];
    return [builder(ctx).cast(ct, x.type.dtype)];
  },
  lower: CAST_LOWER,
});

export const UNARY_OPS: readonly string[] = UNARY.map((u) => u.name);
export const BINARY_OPS: readonly string[] = BINARY.map((b) => b.name);
