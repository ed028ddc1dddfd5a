// Elementwise primitives: unary math, binary arithmetic and comparisons with numpy broadcasting, select and cast.
import type { Attrs, DType, TensorType, Value } from '../ir/types.ts';
import { broadcastShapes } from '../shapes/unify.ts';
import { mapBroadcast } from '../interpret/tensor.ts';
import { registerOp, type ShapeError } from './registry.ts';
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
    fn: (a, b) => Math.pow(a, b),
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
  { name: 'mod', accepts: 'numeric', result: 'same', fn: remainder, differentiable: false },
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
        return err(`${b.name} operands have different dtypes: ${typeStr(x)} and ${typeStr(y)}`, 1, 0, `cast one side: cast(x, dtype: ${x.dtype})`);
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
});

export const UNARY_OPS: readonly string[] = UNARY.map((u) => u.name);
export const BINARY_OPS: readonly string[] = BINARY.map((b) => b.name);
