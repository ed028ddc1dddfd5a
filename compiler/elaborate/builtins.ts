// The functions the language provides natively: tensor builtins that lower to primitives, and compile-time helpers.
import type * as A from '../../grammar/ast.ts';
import type { DType } from '../ir/types.ts';
import * as D from '../shapes/dim.ts';
import type { Elaborator } from './elaborate.ts';
import { describe, dimValue, Env, F16_UNSUPPORTED, POISON, type CtValue, type TensorV } from './values.ts';
import { typeToString } from './builder.ts';
import { shapeToString } from '../shapes/dim.ts';
import { BUILTIN_SIGNATURES, paramName, signatureText, type BuiltinSignature } from './builtin-signatures.ts';
import { didYouMean, foreignKeyword } from '../diagnostics/diagnostic.ts';
import { lowerEinsum } from './einsum.ts';

type Arg = { readonly value: CtValue; readonly span: A.Span; readonly nameSpan?: A.Span; readonly itemSpans?: readonly A.Span[] };

/**
 * A negative axis counted from the end, made non-negative when it is in range. An axis out of range is
 * passed on unchanged so that the op's rule reports it: normalising it blindly (-3 + 2 = -1) would let
 * the op normalise it a second time and silently pick another axis.
 */
function normAxis(axis: number, rank: number): number {
  return axis < 0 && axis >= -rank ? axis + rank : axis;
}

function hasPoison(v: CtValue): boolean {
  return v.kind === 'poison' || (v.kind === 'list' && v.items.some(hasPoison));
}

/** Initializers usable as `param w: ... = name` or `name(option: value)`. */
export const INITIALIZERS: Readonly<Record<string, true>> = {
  constant: true, normal: true, uniform: true, glorot_uniform: true, glorot_normal: true, he_uniform: true, he_normal: true,
};

const UNARY = ['neg', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'abs', 'sign', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'floor', 'ceil', 'logical_not', 'stop_gradient'];
const BINARY = ['maximum', 'minimum', 'pow'];

const COMPILE_TIME_MATH: Readonly<Record<string, (x: number) => number>> = {
  neg: (x) => -x, exp: Math.exp, log: Math.log, log1p: Math.log1p, expm1: Math.expm1, sqrt: Math.sqrt, rsqrt: (x) => 1 / Math.sqrt(x), abs: Math.abs, sign: Math.sign,
  sin: Math.sin, cos: Math.cos, tanh: Math.tanh, sigmoid: (x) => 1 / (1 + Math.exp(-x)), floor: Math.floor, ceil: Math.ceil,
};

export const BUILTIN_NAMES: readonly string[] = [
  ...UNARY, ...BINARY,
  'select', 'where', 'cast', 'sum', 'max', 'min', 'mean', 'argmax', 'matmul', 'reshape', 'transpose', 'broadcast_to', 'concat',
  'stack', 'pad', 'take', 'take_along_axis', 'one_hot', 'conv2d', 'conv_transpose2d', 'max_pool2d', 'avg_pool2d',
  'random_uniform', 'random_normal', 'zeros', 'ones', 'full', 'arange', 'shape', 'len', 'pair', 'range', 'int', 'float', 'zip', 'enumerate',
  'log2', 'log10', 'square', 'split', 'gather', 'permute', 'categorical', 'cumsum', 'zeros_like', 'ones_like', 'einsum',
  'tensor', 'isnan', 'isfinite',
];

/** Calls builtin `name`; `indexItems` and `env` are only for tensor indexing (`x[:, 0]`). */
export function callBuiltin(
  el: Elaborator,
  name: string,
  positional: readonly Arg[],
  named: ReadonlyMap<string, Arg>,
  span: A.Span,
  indexItems?: readonly A.IndexItem[],
  env?: Env,
): CtValue {
  checkArguments(el, name, BUILTIN_SIGNATURES[name], positional, named);
  const all = [...positional.map((a) => a.value), ...[...named.values()].map((a) => a.value)];
  // a poisoned argument, also inside a list (`concat([bad, y])`, `reshape(x, [bad.shape[0]])`), was reported already
  if (all.some(hasPoison)) return POISON;
  const arg = (i: number, key: string): Arg | undefined => positional[i] ?? named.get(key);
  const usage = name in BUILTIN_SIGNATURES ? { help: `its parameters: ${signatureText(name)}` } : {};
  const need = (i: number, key: string): Arg => {
    const a = arg(i, key);
    if (!a) return el.fail('E0303', `\`${name}\` needs the argument \`${key}\``, span, usage);
    return a;
  };
  const tensor = (i: number, key: string): { tensor: TensorV; span: A.Span } => {
    const a = need(i, key);
    if (a.value.kind === 'tensor') return { tensor: a.value, span: a.span };
    return { tensor: el.asTensor(a.value, null, a.span), span: a.span };
  };
  const intArg = (i: number, key: string, dflt?: number): number => {
    const a = arg(i, key);
    if (!a) {
      if (dflt === undefined) return el.fail('E0303', `\`${name}\` needs the argument \`${key}\``, span, usage);
      return dflt;
    }
    return el.ctInt(a.value, a.span);
  };
  const ints = (a: Arg): number[] => (a.value.kind === 'list' ? a.value.items.map((x) => el.ctInt(x, a.span)) : [el.ctInt(a.value, a.span)]);
  const pair = (i: number, key: string, dflt: number): number[] => {
    const a = arg(i, key);
    if (!a) return [dflt, dflt];
    const v = ints(a);
    return v.length === 1 ? [v[0], v[0]] : v;
  };
  const dims = (a: Arg): D.Dim[] => {
    if (a.value.kind !== 'list') return el.fail('E0307', `expected a list of sizes, found ${describe(a.value)}`, a.span);
    return a.value.items.map((x) => {
      if (x.kind === 'int') return x.value;
      if (x.kind === 'dim') return x.value;
      if (x.kind === 'poison') return el.ctInt(x, a.span); // reported where it arose: ends quietly
      return el.fail('E0307', `a size must be an integer, found ${describe(x)}`, a.span);
    });
  };
  /** The shape of a new tensor (zeros, full, random_*): sizes of at least 0 (reshape's -1 is its own rule). */
  const newShape = (a: Arg): D.Dim[] => {
    const shape = dims(a);
    const bad = shape.find((d) => D.isConcrete(d) && d < 0);
    if (bad !== undefined) el.fail('E0305', `\`${name}\` got the negative size ${bad} in [${shape.map(D.dimToString).join(', ')}]`, a.span, { help: 'a size is 0 or more' });
    return shape;
  };
  const emit = (op: string, operands: { tensor: TensorV; span: A.Span }[], attrs: Record<string, unknown> = {}) => el.emit1(op, operands, attrs, span);
  const axesOf = (x: TensorV, a: Arg | undefined): number[] => {
    const rank = x.value.type.shape.length;
    if (!a || a.value.kind === 'none') return Array.from({ length: rank }, (_, i) => i);
    return ints(a).map((k) => axisIn(k, x, a.span));
  };
  /** An axis of `x` (negative from the end), or E0301 at the argument naming this builtin and the axes there are. */
  const axisIn = (k: number, x: TensorV, at: A.Span): number => axisOfRank(k, x.value.type.shape.length, typeToString(x.value.type), at);
  const axisOfRank = (k: number, rank: number, what: string, at: A.Span): number => {
    if (k >= rank || k < -rank) {
      const axes = rank === 0 ? 'it has no axes' : `its axes are ${-rank}..${rank - 1}`;
      el.fail('E0301', `\`${name}\` axis ${k} is out of range for ${what} (rank ${rank}: ${axes})`, at);
    }
    return normAxis(k, rank);
  };
  const axisSpan = (i: number): A.Span => arg(i, 'axis')?.span ?? span;
  const keepdims = (): boolean => {
    const a = named.get('keepdims') ?? positional[2];
    return a ? a.value.kind === 'bool' && a.value.value : false;
  };

  if (UNARY.includes(name)) {
    const x = need(0, 'x');
    const f = COMPILE_TIME_MATH[name];
    // sqrt(head_dim) and friends on plain numbers are folded here
    if (f && (x.value.kind === 'int' || x.value.kind === 'float')) return { kind: 'float', value: f(x.value.value) };
    return emit(name, [tensor(0, 'x')]);
  }
  if (BINARY.includes(name)) {
    const a = need(0, 'a');
    const b = need(1, 'b');
    const like = a.value.kind === 'tensor' ? a.value : b.value.kind === 'tensor' ? b.value : null;
    return emit(name, [
      { tensor: el.asTensor(a.value, like, a.span), span: a.span },
      { tensor: el.asTensor(b.value, like, b.span), span: b.span },
    ]);
  }

  switch (name) {
    case 'log2':
    case 'log10': {
      const x = tensor(0, 'x');
      const ln = emit('log', [x]) as TensorV;
      const k = el.asTensor({ kind: 'float', value: 1 / Math.log(name === 'log2' ? 2 : 10) }, x.tensor, span);
      return emit('mul', [{ tensor: ln, span }, { tensor: k, span }]);
    }
    case 'square': {
      const x = tensor(0, 'x');
      return emit('mul', [x, x]);
    }
    case 'split': {
      // split(x, n, axis): n equal parts along axis, as a list
      const x = tensor(0, 'x');
      const n = intArg(1, 'parts');
      const shape = x.tensor.value.type.shape;
      const rawAxis = intArg(2, 'axis', -1);
      const axis = axisIn(rawAxis, x.tensor, axisSpan(2));
      const size = shape[axis];
      if (!D.isConcrete(size) || n <= 0 || size % n !== 0) {
        return el.fail('E0301', `split cannot cut an axis of size ${D.dimToString(size)} into ${n} equal parts`, x.span);
      }
      const part = size / n;
      const items = Array.from({ length: n }, (_, i) =>
        emit('slice', [x], {
          starts: shape.map((_, a) => (a === axis ? i * part : 0)),
          stops: shape.map((_, a) => (a === axis ? (i + 1) * part : null)),
          steps: shape.map(() => 1),
        }),
      );
      return { kind: 'list', items };
    }
    case 'gather': {
      const x = tensor(0, 'x');
      const indices = tensor(1, 'indices');
      const axis = axisIn(intArg(2, 'axis', -1), x.tensor, axisSpan(2));
      // take_along_axis's rule, reported under the name the user called
      const [xt, it] = [x.tensor.value.type, indices.tensor.value.type];
      if (it.shape.length !== xt.shape.length) {
        const help = it.shape.length + 1 === xt.shape.length ? `add the axis: reshape the indices to ${shapeToString([...it.shape.slice(0, axis), 1, ...it.shape.slice(axis)])}${axis === it.shape.length ? ' (`indices[..., None]`)' : ''}` : undefined;
        el.fail('E0301', `\`gather\` needs indices of the same rank as the array: ${typeToString(xt)} and ${typeToString(it)}`, indices.span, {
          label: typeToString(it),
          secondary: [{ span: x.span, message: typeToString(xt) }],
          ...(help ? { help } : {}),
        });
      }
      return emit('take_along_axis', [x, indices], { axis });
    }
    case 'permute':
      return emit('transpose', [tensor(0, 'x')], { perm: ints(need(1, 'perm')) });
    case 'categorical': {
      // one sample per row by the Gumbel-max trick: argmax(logits - log(-log(u)))
      const logits = tensor(0, 'logits');
      const shape = logits.tensor.value.type.shape;
      const { key, stream } = el.builder.randomKey(span);
      const u = emit('random_uniform', [{ tensor: key, span }], { shape, dtype: 'f32', stream }) as TensorV;
      const tiny = el.asTensor({ kind: 'float', value: 1e-20 }, logits.tensor, span);
      const safe = emit('maximum', [{ tensor: u, span }, { tensor: tiny, span }]) as TensorV;
      const l1 = emit('log', [{ tensor: safe, span }]) as TensorV;
      const n1 = emit('neg', [{ tensor: l1, span }]) as TensorV;
      const l2 = emit('log', [{ tensor: n1, span }]) as TensorV;
      const noisy = emit('sub', [logits, { tensor: l2, span }]) as TensorV;
      if ((noisy as CtValue).kind !== 'tensor') return POISON;
      return emit('argmax', [{ tensor: noisy, span }], { axis: shape.length - 1 });
    }
    case 'select':
    case 'where': {
      const c = tensor(0, 'cond');
      const a = need(1, 'a');
      const b = need(2, 'b');
      const like = a.value.kind === 'tensor' ? a.value : b.value.kind === 'tensor' ? b.value : null;
      return emit('select', [c, { tensor: el.asTensor(a.value, like, a.span), span: a.span }, { tensor: el.asTensor(b.value, like, b.span), span: b.span }]);
    }
    case 'tensor': {
      // a list of numbers (rows nested) as a constant tensor; a tensor or a number passes through
      const v = need(0, 'values');
      const d = arg(1, 'dtype');
      if (d && d.value.kind !== 'dtype') return el.fail('E0307', `tensor needs a dtype (f32, i32, ...), found ${describe(d.value)}`, d.span);
      const dtype = d?.value.kind === 'dtype' ? d.value.value : undefined;
      if (dtype === 'f16') return el.fail('E0402', F16_UNSUPPORTED, d!.span, { help: 'use f32' });
      if (v.value.kind === 'list') return el.listTensor(v.value, null, v.span, dtype);
      const t = tensor(0, 'values');
      return dtype && dtype !== t.tensor.value.type.dtype ? emit('cast', [t], { dtype }) : t.tensor;
    }
    case 'isnan':
    case 'isfinite': {
      // NaN is the one value unequal to itself; x - x is NaN for NaN and ±inf, 0 otherwise (`ne` lowers
      // to !(a == b), so a backend's NaN ordering does not matter)
      const x = tensor(0, 'x');
      if (x.tensor.value.type.dtype !== 'f32') return el.fail('E0307', `\`${name}\` takes a float tensor, found ${typeToString(x.tensor.value.type)}`, x.span);
      if (name === 'isnan') return emit('ne', [x, x]);
      const diff = emit('sub', [x, x]) as TensorV;
      return emit('eq', [{ tensor: diff, span }, { tensor: el.asTensor({ kind: 'float', value: 0 }, diff, span), span }]);
    }
    case 'cast': {
      const d = need(1, 'dtype');
      if (d.value.kind !== 'dtype') return el.fail('E0307', `cast needs a dtype (f32, i32, ...), found ${describe(d.value)}`, d.span);
      if (d.value.value === 'f16') return el.fail('E0402', F16_UNSUPPORTED, d.span, { help: 'use f32' });
      return emit('cast', [tensor(0, 'x')], { dtype: d.value.value });
    }
    case 'sum':
    case 'max':
    case 'min':
    case 'mean': {
      const first = need(0, 'x');
      if (first.value.kind !== 'tensor') return compileTimeReduce(el, name, positional, span);
      const x = first.value;
      const axes = axesOf(x, arg(1, 'axis'));
      const kd = keepdims();
      if (name === 'min') {
        const neg = emit('neg', [{ tensor: x, span: first.span }]) as TensorV;
        const m = emit('reduce_max', [{ tensor: neg, span: first.span }], { axes, keepdims: kd }) as TensorV;
        return emit('neg', [{ tensor: m, span }]);
      }
      const reduced = emit(name === 'max' ? 'reduce_max' : 'reduce_sum', [{ tensor: x, span: first.span }], { axes, keepdims: kd });
      if (name !== 'mean' || reduced.kind !== 'tensor') return reduced;
      const count = axes.reduce<D.Dim>((acc, a) => D.mul(acc, x.value.type.shape[a]), 1);
      const n = emit('full', [], { shape: [], value: count, dtype: x.value.type.dtype }) as TensorV;
      return emit('div', [{ tensor: reduced, span }, { tensor: n, span }]);
    }
    case 'argmax': {
      const x = tensor(0, 'x');
      const axis = intArg(1, 'axis', -1);
      return emit('argmax', [x], { axis: axisIn(axis, x.tensor, axisSpan(1)) });
    }
    case 'cumsum': {
      const x = tensor(0, 'x');
      const axis = intArg(1, 'axis', -1);
      const r = arg(2, 'reverse');
      if (r && r.value.kind !== 'bool') return el.fail('E0305', `\`reverse\` must be true or false, found ${describe(r.value)}`, r.span);
      return emit('cumsum', [x], { axis: axisIn(axis, x.tensor, axisSpan(1)), reverse: r?.value.kind === 'bool' && r.value.value });
    }
    case 'matmul':
      return emit('matmul', [tensor(0, 'a'), tensor(1, 'b')]);
    case 'einsum': {
      const spec = need(0, 'subscripts');
      if (spec.value.kind !== 'string') return el.fail('E0303', `einsum's first argument is its subscripts as a string ("bij,bjk->bik"), found ${describe(spec.value)}`, spec.span);
      const operands = positional.slice(1).map((_, i) => tensor(i + 1, `operand ${i + 1}`));
      return lowerEinsum(spec.value.value, spec.span, operands, { emit: (op, ops, attrs) => el.emit1(op, ops, attrs, span), fail: (code, message, at, extra) => el.fail(code, message, at, extra) }, span);
    }
    case 'reshape':
      return emit('reshape', [tensor(0, 'x')], { shape: dims(need(1, 'shape')) });
    case 'transpose': {
      const x = tensor(0, 'x');
      const rank = x.tensor.value.type.shape.length;
      const p = arg(1, 'perm');
      // without a permutation: swap the last two axes (a rank-0 or rank-1 tensor is its own transpose)
      if (!p && rank < 2) return x.tensor;
      const perm = p ? ints(p) : Array.from({ length: rank }, (_, i) => (i === rank - 2 ? rank - 1 : i === rank - 1 ? rank - 2 : i));
      return emit('transpose', [x], { perm });
    }
    case 'broadcast_to':
      return emit('broadcast_to', [tensor(0, 'x')], { shape: dims(need(1, 'shape')) });
    case 'concat':
    case 'stack': {
      const list = need(0, 'xs');
      if (list.value.kind !== 'list') return el.fail('E0307', `\`${name}\` takes a list of tensors, found ${describe(list.value)}`, list.span);
      const items = list.value.items.map((v) => (v.kind === 'tensor' ? v : el.asTensor(v, null, list.span)));
      if (items.length === 0) return el.fail('E0305', `\`${name}\` needs at least one tensor`, list.span);
      const rank = items[0].value.type.shape.length + (name === 'stack' ? 1 : 0);
      const rawAxis = intArg(1, 'axis', 0);
      // stack needs one shape: say so in the user's shapes (not in the concat of [.., 1, ..] slices it becomes)
      const odd = name === 'stack' ? items.findIndex((t) => !(t.value.type.shape.length === items[0].value.type.shape.length && t.value.type.shape.every((d, k) => D.dimEquals(d, items[0].value.type.shape[k]))) || t.value.type.dtype !== items[0].value.type.dtype) : -1;
      if (odd > 0) {
        const at = (i: number) => (list.itemSpans?.length === items.length ? list.itemSpans[i] : list.span);
        const shown = (i: number) => typeToString(items[i].value.type);
        return el.fail('E0301', `stack takes tensors of one type: item ${odd} is ${shown(odd)}, item 0 ${shown(0)}`, at(odd), {
          label: shown(odd),
          secondary: at(0) === at(odd) ? [] : [{ span: at(0), message: shown(0) }],
        });
      }
      const axis = axisOfRank(rawAxis, rank, name === 'stack' ? `the stack of ${items.length} ${typeToString(items[0].value.type)}` : typeToString(items[0].value.type), axisSpan(1));
      const parts =
        name === 'stack'
          ? items.map((t) => {
              const shape = [...t.value.type.shape];
              shape.splice(axis, 0, 1);
              return emit('reshape', [{ tensor: t, span: list.span }], { shape }) as TensorV;
            })
          : items;
      if (parts.some((p) => (p as CtValue).kind === 'poison')) return POISON;
      // each operand at its own item when the list is written out (`concat([a, b])`), else at the list
      const itemSpan = (i: number) => (list.itemSpans?.length === parts.length ? list.itemSpans[i] : list.span);
      return emit('concat', parts.map((t, i) => ({ tensor: t, span: itemSpan(i) })), { axis });
    }
    case 'pad': {
      const x = tensor(0, 'x');
      const before = ints(need(1, 'before'));
      const after = ints(need(2, 'after'));
      const v = arg(3, 'value');
      return emit('pad', [x], { before, after, value: v ? el.ctNumber(v.value, v.span) : 0 });
    }
    case 'take': {
      const table = tensor(0, 'table');
      const indices = tensor(1, 'indices');
      const axis = intArg(2, 'axis', 0);
      const taken = emit('take', [table, indices], { axis });
      if (taken.kind === 'tensor') countedIndices(el, table.tensor, indices.tensor, axis, span);
      return taken;
    }
    case 'take_along_axis': {
      const x = tensor(0, 'x');
      const axis = intArg(2, 'axis', -1);
      return emit('take_along_axis', [x, tensor(1, 'indices')], { axis: axisIn(axis, x.tensor, axisSpan(2)) });
    }
    case 'one_hot':
      return emit('one_hot', [tensor(0, 'indices')], { depth: intArg(1, 'depth'), dtype: 'f32' });
    case 'conv2d':
      return emit('conv2d', [tensor(0, 'x'), tensor(1, 'w')], {
        stride: pair(2, 'stride', 1), padding: pair(3, 'padding', 0), dilation: pair(4, 'dilation', 1), groups: intArg(5, 'groups', 1),
      });
    case 'conv_transpose2d':
      return emit('conv_transpose2d', [tensor(0, 'x'), tensor(1, 'w')], {
        stride: pair(2, 'stride', 1), padding: pair(3, 'padding', 0), dilation: pair(4, 'dilation', 1), output_padding: pair(5, 'output_padding', 0), groups: intArg(6, 'groups', 1),
      });
    case 'max_pool2d':
    case 'avg_pool2d': {
      const kernel = pair(1, 'kernel', 2);
      const strideArg = arg(2, 'stride');
      const ceilArg = arg(4, 'ceil_mode');
      const countArg = name === 'avg_pool2d' ? arg(5, 'count_include_pad') : undefined;
      for (const [a, key] of [[ceilArg, 'ceil_mode'], [countArg, 'count_include_pad']] as const) {
        if (a && a.value.kind !== 'bool') return el.fail('E0305', `\`${key}\` must be true or false, found ${describe(a.value)}`, a.span);
      }
      const ceil = ceilArg?.value.kind === 'bool' && ceilArg.value.value;
      const countPad = countArg?.value.kind === 'bool' && countArg.value.value;
      return emit(name, [tensor(0, 'x')], {
        kernel, stride: strideArg ? pair(2, 'stride', 1) : kernel, padding: pair(3, 'padding', 0),
        ...(ceil ? { ceil_mode: true } : {}), ...(countPad ? { count_include_pad: true } : {}),
      });
    }
    case 'random_uniform':
    case 'random_normal': {
      const shape = newShape(need(0, 'shape'));
      const { key, stream } = el.builder.randomKey(span);
      return emit(name, [{ tensor: key, span }], { shape, dtype: 'f32', stream });
    }
    case 'zeros':
    case 'ones':
    case 'full': {
      const shape = newShape(need(0, 'shape'));
      const value = name === 'full' ? el.ctNumber(need(1, 'value').value, need(1, 'value').span) : name === 'ones' ? 1 : 0;
      const d = arg(name === 'full' ? 2 : 1, 'dtype');
      const dtype: DType = d?.value.kind === 'dtype' ? d.value.value : 'f32';
      return emit('full', [], { shape, value, dtype });
    }
    case 'zeros_like':
    case 'ones_like': {
      // a tensor of x's shape and dtype
      const x = tensor(0, 'x').tensor.value.type;
      return emit('full', [], { shape: x.shape, value: name === 'ones_like' ? 1 : 0, dtype: x.dtype });
    }
    case 'arange': {
      const n = need(0, 'n');
      const size = n.value.kind === 'dim' ? n.value.value : el.ctInt(n.value, n.span);
      if (D.isConcrete(size) && size < 0) el.fail('E0305', `\`arange\` got the negative size ${size}`, n.span, { help: 'arange(n) counts 0, 1, ..., n - 1 for n of 0 or more' });
      return emit('iota', [], { shape: [size], axis: 0, dtype: 'i32' });
    }
    case 'shape': {
      const x = need(0, 'x');
      if (x.value.kind !== 'tensor') return el.fail('E0307', `shape() takes a tensor, found ${describe(x.value)}`, x.span);
      return { kind: 'list', items: x.value.value.type.shape.map(dimValue) };
    }
    case 'len': {
      const x = need(0, 'x');
      if (x.value.kind === 'list') return { kind: 'int', value: x.value.items.length };
      if (x.value.kind === 'string') return { kind: 'int', value: x.value.value.length };
      return el.fail('E0307', `len() takes a list, found ${describe(x.value)}`, x.span);
    }
    case 'pair': {
      // a size per spatial axis: `3` is [3, 3], `[1, 7]` stays (a layer's kernel, stride or padding)
      const x = need(0, 'x');
      if (x.value.kind === 'int') return { kind: 'list', items: [x.value, x.value] };
      if (x.value.kind === 'list' && x.value.items.length === 2 && x.value.items.every((v) => v.kind === 'int')) return x.value;
      return el.fail('E0305', `expected a whole number or a list of two ([height, width]), found ${describe(x.value)}`, x.span);
    }
    case 'range': {
      const a = intArg(0, 'start');
      const b = arg(1, 'stop') ? intArg(1, 'stop') : undefined;
      const [lo, hi] = b === undefined ? [0, a] : [a, b];
      return { kind: 'list', items: Array.from({ length: Math.max(0, hi - lo) }, (_, i) => ({ kind: 'int', value: lo + i }) as CtValue) };
    }
    case 'int':
    case 'float': {
      const x = need(0, 'x');
      // a symbolic size (B, T) is known when the graph runs: a scalar tensor, e.g. `sum(x) / float(B)`
      if (x.value.kind === 'dim') return el.builder.constant(x.value.value, name === 'int' ? 'i32' : 'f32', span);
      const v = el.ctNumber(x.value, x.span);
      return name === 'int' ? { kind: 'int', value: Math.trunc(v) } : { kind: 'float', value: v };
    }
    case 'zip': {
      const lists = positional.map((a) => el.iterate(a.value, a.span));
      const n = Math.min(...lists.map((l) => l.length));
      return { kind: 'list', items: Array.from({ length: n }, (_, i) => ({ kind: 'list', items: lists.map((l) => l[i]) }) as CtValue) };
    }
    case 'enumerate': {
      const items = el.iterate(need(0, 'xs').value, need(0, 'xs').span);
      return { kind: 'list', items: items.map((v, i) => ({ kind: 'list', items: [{ kind: 'int', value: i }, v] }) as CtValue) };
    }
    case 'select_axis': {
      // one step of a scan: x[..., t, ...] along `axis`, that axis removed
      const x = tensor(0, 'x');
      const axis = intArg(1, 'axis');
      const index = intArg(2, 'index');
      const shape = x.tensor.value.type.shape;
      const sliced = emit('slice', [x], {
        starts: shape.map((_, i) => (i === axis ? index : 0)),
        stops: shape.map((_, i) => (i === axis ? index + 1 : null)),
        steps: shape.map(() => 1),
      });
      if (sliced.kind !== 'tensor') return sliced;
      return emit('reshape', [{ tensor: sliced, span }], { shape: shape.filter((_, i) => i !== axis) });
    }
    case '\u0000index':
      return indexTensor(el, tensor(0, 'x'), indexItems ?? [], env!, span);
    default:
      return el.fail('E0900', `the builtin \`${name}\` has no implementation`, span);
  }
}

/** A call's arguments against a builtin's or initializer's parameters: no unknown keyword, no extra positional value, none given twice. */
export function checkArguments(el: Elaborator, name: string, signature: BuiltinSignature | undefined, positional: readonly Arg[], named: ReadonlyMap<string, Arg>): void {
  if (!signature) return; // internal helpers (indexing, scan slices)
  const names = signature.params.map(paramName);
  const usage = { help: `its parameters: ${signatureText(name)}` };
  if (!signature.variadic && positional.length > names.length) {
    el.fail('E0303', `\`${name}\` takes ${names.length} argument${names.length === 1 ? '' : 's'}, but ${positional.length} were given`, positional[names.length].span, usage);
  }
  for (const [key, a] of named) {
    const at = names.indexOf(key);
    if (at < 0) {
      const hint = foreignKeyword(key, names) ?? didYouMean(key, names);
      el.fail('E0303', `\`${name}\` has no parameter \`${key}\``, a.nameSpan ?? a.span, { help: hint ? `${hint} ${usage.help}` : usage.help });
    }
    if (at < positional.length) el.fail('E0303', `the argument \`${key}\` of \`${name}\` is given twice, by position and by name`, a.nameSpan ?? a.span, usage);
  }
}

/**
 * Indices counted by `arange(n)` (through reshapes, broadcasts and `[None, :]`: positions, `wpe(arange(L - 1))`)
 * reach n - 1, so the table needs n rows along `axis`: a table too short is E0301, and a symbolic n
 * carries the condition `rows >= n` (a take clamps an index past the end to the last row, which
 * would give every later position the last row's embedding without a word).
 */
function countedIndices(el: Elaborator, table: TensorV, indices: TensorV, axis: number, span: A.Span): void {
  const producerOf = (x: { id: number }) => el.builder.nodes.find((n) => n.outputs.some((o) => o.id === x.id));
  /** The integer a scalar `full` holds, if `x` is one. */
  const integer = (x: { id: number; type: { shape: readonly unknown[] } }): number | undefined => {
    const p = producerOf(x);
    return p?.op === 'full' && typeof p.attrs.value === 'number' && Number.isInteger(p.attrs.value) && x.type.shape.length === 0 ? p.attrs.value : undefined;
  };
  let v = indices.value;
  let offset = 0; // arange(L) + 1: RoBERTa-style positions start at an offset
  for (;;) {
    const producer = producerOf(v);
    if (!producer) return;
    if (producer.op === 'add') {
      const constant = producer.inputs.findIndex((x) => integer(x) !== undefined);
      if (constant < 0) return;
      offset += integer(producer.inputs[constant])!;
      v = producer.inputs[1 - constant];
      continue;
    }
    const whole = producer.op === 'slice' && (producer.attrs.starts as unknown[]).every((x) => x === 0) && (producer.attrs.stops as unknown[]).every((x) => x === null) && (producer.attrs.steps as unknown[]).every((x) => x === 1);
    if (producer.op === 'reshape' || producer.op === 'broadcast_to' || whole) {
      v = producer.inputs[0];
      continue;
    }
    if (producer.op !== 'iota') return;
    const counted = D.add(v.type.shape[typeof producer.attrs.axis === 'number' ? producer.attrs.axis : 0], offset);
    const rank = table.value.type.shape.length;
    const rows = table.value.type.shape[axis < 0 ? axis + rank : axis];
    if (rows === undefined) return;
    const room = D.sub(rows, counted);
    if (D.knownNonNegative(room)) return;
    if (D.isConcrete(room)) {
      if (room < 0) el.fail('E0301', `the indices count ${offset} to ${D.dimToString(D.sub(counted, 1))}, past the end of a table of ${D.dimToString(rows)} along axis ${axis}`, span, { help: 'give the table as many rows as the indices count (a position table as long as the longest sequence)' });
      return;
    }
    el.builder.requireAtLeast(rows, counted, el.userSpan(span));
    return;
  }
}

function compileTimeReduce(el: Elaborator, name: string, args: readonly Arg[], span: A.Span): CtValue {
  const values = args.length === 1 && args[0].value.kind === 'list' ? args[0].value.items : args.map((a) => a.value);
  const nums = values.map((v) => el.ctNumber(v, span));
  if (nums.length === 0) return el.fail('E0303', `\`${name}\` needs at least one value`, span);
  const allInt = values.every((v) => v.kind === 'int');
  const result =
    name === 'max' ? Math.max(...nums) : name === 'min' ? Math.min(...nums) : name === 'sum' ? nums.reduce((a, b) => a + b, 0) : nums.reduce((a, b) => a + b, 0) / nums.length;
  return { kind: allInt && name !== 'mean' ? 'int' : 'float', value: result };
}

/**
 * `x[:, 0]`, `x[..., None]`, `h[:-1]`, `x[::2]`: one slice over every axis, then one reshape that
 * drops the integer-indexed axes and inserts the `None` ones.
 */
function indexTensor(el: Elaborator, x: { tensor: TensorV; span: A.Span }, items: readonly A.IndexItem[], env: Env, span: A.Span): CtValue {
  const shape = x.tensor.value.type.shape;
  const rank = shape.length;
  const consumes = items.filter((i) => i.kind !== 'Ellipsis' && i.kind !== 'None').length;
  if (consumes > rank) return el.fail('E0301', `${consumes} indices for a tensor of rank ${rank}`, span);
  const starts: D.Dim[] = [];
  const stops: (D.Dim | null)[] = [];
  const steps: number[] = [];
  const out: D.Dim[] = [];
  let axis = 0;
  // On a symbolic axis the shape rule takes a bound as given (`x[1:]` is B - 1, `x[0]` needs B >= 1): what
  // that assumes of the size is carried in the graph and checked when the sizes are bound.
  // (a size the bound can never fit, `x[:, :T + 1]`, is an error now; a fixed axis sliced by a size,
  // `pos[:L - 1]` of a table of 4, carries `4 >= L - 1`: the slice would read past the table)
  const needs = (n: D.Dim, at: D.Dim, where: A.Span, what: () => string, failure?: () => string) => {
    if (D.isConcrete(at) && at <= 0) return;
    const room = D.sub(n, at);
    if (D.isConcrete(room)) {
      if (room >= 0) return;
      el.fail('E0301', failure ? failure() : `${what()} runs past the end of an axis of size ${D.dimToString(n)}`, where, { help: 'a slice or an index must stay inside the axis (slices do not clamp)' });
    }
    if (D.knownNonNegative(room)) return; // `x[:, 2:]` of an axis L + 5: holds for every L
    el.builder.requireAtLeast(n, at, el.userSpan(where));
  };
  /** A bound or index that depends on the sizes (`T - 3`) must not be negative once they are bound. */
  const notNegative = (b: D.Dim, where: A.Span, failure: () => string) => {
    if (D.isConcrete(b)) {
      if (b < 0) el.fail('E0301', failure(), where, { help: 'a slice or an index must stay inside the axis (slices do not clamp)' });
      return;
    }
    if (D.knownNonNegative(b)) return;
    el.builder.requireAtLeast(b, 0, el.userSpan(where));
  };
  // a bound or index counts from the end when it is negative: -2, or a size negated (`x[:, -T:]`, `x[:, -T]`)
  const fromEnd = (b: D.Dim) => (D.isConcrete(b) ? b < 0 : !D.knownNonNegative(b) && D.knownNonNegative(D.sub(0, b)));
  const full = () => {
    starts.push(0);
    stops.push(null);
    steps.push(1);
    out.push(shape[axis]);
    axis++;
  };
  for (const item of items) {
    if (item.kind === 'Ellipsis') {
      // `...` covers every axis the other indices do not
      for (let k = 0; k < rank - consumes; k++) full();
      continue;
    }
    if (item.kind === 'None') {
      out.push(1);
      continue;
    }
    if (item.kind === 'Slice') {
      const bound = (e: A.Expr | null): D.Dim | null => {
        if (!e) return null;
        const b = el.expr(e, env);
        return b.kind === 'dim' ? b.value : el.ctInt(b, e.span);
      };
      const start = bound(item.start) ?? 0;
      const stop = bound(item.stop);
      const n = shape[axis];
      const text = `${item.start ? D.dimToString(start) : ''}:${item.stop ? D.dimToString(stop!) : ''}`;
      const sliceText = () => `the slice \`${text}\``;
      for (const b of [start, stop]) {
        if (b === null) continue;
        needs(n, fromEnd(b) ? D.sub(0, b) : b, item.span, sliceText);
        // a bound written from the start must not be negative when the sizes are bound (`T - 3:`)
        if (!fromEnd(b) && !D.isConcrete(b)) notNegative(b, item.span, () => `${sliceText()} starts before the axis`);
      }
      const step = item.step ? el.ctInt(el.expr(item.step, env), item.step.span) : 1;
      if (step <= 0) return el.fail('E0305', 'a slice needs a positive step', item.span);
      // a symbolic bound from the end is given to the op as its position (a number from the end stays as written)
      const position = (b: D.Dim) => (fromEnd(b) ? D.add(n, b) : b);
      starts.push(D.isConcrete(start) ? start : position(start));
      stops.push(stop === null || D.isConcrete(stop) ? stop : position(stop));
      steps.push(step);
      const s0 = position(start);
      const s1 = stop === null ? n : position(stop);
      const len = D.sub(s1, s0);
      const endsFirst = () => `the slice \`${text}\` ends before it starts on an axis of size ${D.dimToString(n)}`;
      if (D.isConcrete(len) && len < 0) return el.fail('E0301', endsFirst(), item.span);
      // a length that depends on the sizes (`2:L - 1`) carries that it is not negative
      needs(s1, s0, item.span, sliceText, endsFirst);
      out.push(step === 1 ? len : D.floorDiv(D.add(len, step - 1), step));
      axis++;
      continue;
    }
    const index = el.expr(item, env);
    if (index.kind === 'tensor') {
      const gather = axis === 0 ? 'take(x, indices)' : `take(x, indices, axis: ${axis})`;
      return el.fail('E0305', 'an index must be an integer known at compile time, not a tensor', item.span, { help: `to gather by a tensor of indices, use ${gather} (or take_along_axis for one index per row)` });
    }
    const n = shape[axis];
    if (index.kind === 'dim') {
      // an index that is a size (`x[:, T - 1]`, the last step): the condition that it is inside the axis
      const written = index.value;
      const what = () => `the index ${D.dimToString(written)}`;
      // symbolic (a concrete size is an int): negated, it counts from the end (`x[:, -T]`, the first element)
      const at = fromEnd(written) ? D.add(n, written) : written;
      needs(n, D.add(at, 1), item.span, what);
      notNegative(at, item.span, () => `${what()} is before the start of an axis of size ${D.dimToString(n)}`);
      starts.push(at);
      stops.push(D.add(at, 1));
      steps.push(1);
      axis++;
      continue;
    }
    const i = el.ctInt(index, item.span);
    if (D.isConcrete(n) && (i >= n || i < -n)) return el.fail('E0301', `index ${i} is out of range for an axis of size ${n}`, item.span);
    needs(n, i < 0 ? -i : i + 1, item.span, () => `the index ${i}`);
    starts.push(i);
    stops.push(i === -1 ? null : i + 1);
    steps.push(1);
    axis++;
  }
  while (axis < rank) full();
  const sliced = el.emit1('slice', [x], { starts, stops, steps }, span);
  if (sliced.kind !== 'tensor') return sliced;
  if (out.length === shape.length && out.every((d, i) => D.dimEquals(d, (sliced as TensorV).value.type.shape[i]))) return sliced;
  return el.emit1('reshape', [{ tensor: sliced, span }], { shape: out }, span);
}
