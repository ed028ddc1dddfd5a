// Data-movement primitives: reshape, transpose, broadcast_to, slice, concat and pad.
import type { AttrValue, TensorType } from '../ir/types.ts';
import { type Dim, add, dimEquals, dimToString, evaluate, floorDiv, isConcrete, mul, shapeToString, sub } from '../shapes/dim.ts';
import { broadcastStrides, numel, strides, unravel, type Tensor } from '../interpret/tensor.ts';
import { registerOp, type ShapeError } from './registry.ts';
import { broadcastPlans, concatPlans, copyPlans, padPlans, slicePlans, transposePlans } from '../codegen/movement.ts';
import { attrDims, err, evalShape, normAxis, product, typeStr } from './util.ts';
import { builder, fill, op1, sliceAxis, unbroadcast, unsliceAxis } from './vjp-util.ts';

// ---- reshape --------------------------------------------------------------------------------------

/**
 * The target shape with its one -1 filled in. Equal factors (B against B) cancel first, so
 * [B, C, H, W] -> [B, -1] infers C*H*W even though B is symbolic; what remains on the target side
 * must be concrete for the division to be exact.
 */
function resolveReshape(x: TensorType, target: readonly Dim[]): Dim[] | ShapeError {
  const holes = target.filter((d) => d === -1).length;
  const shown = `${typeStr(x)} to ${shapeToString(target)}`;
  if (holes > 1) return err(`reshape can infer only one size: ${shown}`, 0);
  if (target.some((d) => isConcrete(d) && d < 0 && d !== -1)) return err(`reshape to a negative size: ${shown}`, 0);
  if (holes === 0) return [...target];
  const rest = [...x.shape];
  const known: Dim[] = [];
  for (const d of target) {
    if (d === -1) continue;
    const j = rest.findIndex((r) => dimEquals(r, d));
    if (j >= 0) rest.splice(j, 1);
    else known.push(d);
  }
  const num = product(rest);
  const den = product(known);
  if (!isConcrete(den)) return err(`reshape cannot infer the -1 size: ${shown}`, 0, undefined, 'write every size out');
  const q = floorDiv(num, den);
  if (den === 0 || !dimEquals(mul(q, den), num)) {
    return err(`reshape changes the number of elements: ${shown}`, 0, undefined, `${dimToString(product(x.shape))} elements do not split into ${shapeToString(target)}`);
  }
  return target.map((d) => (d === -1 ? q : d));
}

registerOp({
  name: 'reshape',
  family: 'movement',
  arity: 1,
  differentiable: 'all',
  attrs: { shape: 'required' },
  lower: { kind: 'kernel', kernel: copyPlans },
  infer([x], attrs) {
    const target = resolveReshape(x, attrDims(attrs, 'shape'));
    if (!Array.isArray(target)) return target;
    if (!dimEquals(product(x.shape), product(target))) {
      return err(`reshape changes the number of elements: ${typeStr(x)} to ${shapeToString(target)}`, 0, undefined, `the input has ${dimToString(product(x.shape))} elements, the target ${dimToString(product(target))}`);
    }
    return [{ dtype: x.dtype, shape: target }];
  },
  interpret([x], attrs, env) {
    const raw = attrDims(attrs, 'shape');
    const known = raw.filter((d) => d !== -1);
    const conc = evalShape(known, env);
    const fill = numel(x.shape) / numel(conc);
    let k = 0;
    const shape = raw.map((d) => (d === -1 ? fill : conc[k++]));
    if (numel(shape) !== x.data.length) throw new Error(`reshape of [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
    return [{ dtype: x.dtype, shape, data: x.data.slice() }];
  },
  vjp(ctx, { inputs: [x] }, [ct]) {
    return [ct ? builder(ctx).reshape(ct, x.type.shape) : null];
  },
});

// ---- transpose ------------------------------------------------------------------------------------

function permute(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]);
  const inStr = strides(x.shape);
  const src = perm.map((p) => inStr[p]);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    let o = 0;
    for (let a = 0; a < idx.length; a++) o += idx[a] * src[a];
    out[i] = x.data[o];
  }
  return { dtype: x.dtype, shape, data: out };
}

registerOp({
  name: 'transpose',
  family: 'movement',
  arity: 1,
  differentiable: 'all',
  // in_place (after fusion, optimize/concat-in-place.ts): the operand's producer stores it transposed
  // straight into the result's buffer, so the transpose itself dispatches nothing
  attrs: { perm: 'required', in_place: 'optional' },
  lower: { kind: 'kernel', kernel: transposePlans },
  infer([x], attrs) {
    const perm = attrs.perm;
    const r = x.shape.length;
    const ok = Array.isArray(perm) && perm.length === r && [...perm].sort((p, q) => Number(p) - Number(q)).every((p, i) => p === i);
    if (!ok) return err(`transpose perm [${Array.isArray(perm) ? perm.join(', ') : ''}] is not a permutation of the ${r} axes of ${typeStr(x)}`, 0);
    return [{ dtype: x.dtype, shape: (perm as number[]).map((p) => x.shape[p]) }];
  },
  interpret([x], attrs) {
    return [permute(x, attrs.perm as number[])];
  },
  vjp(ctx, { attrs }, [ct]) {
    if (!ct) return [null];
    const perm = attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [builder(ctx).transpose(ct, inverse)];
  },
});

// ---- broadcast_to ---------------------------------------------------------------------------------

registerOp({
  name: 'broadcast_to',
  family: 'movement',
  arity: 1,
  differentiable: 'all',
  attrs: { shape: 'required' },
  lower: { kind: 'kernel', kernel: broadcastPlans },
  infer([x], attrs) {
    const target = attrDims(attrs, 'shape');
    const lead = target.length - x.shape.length;
    const bad = lead < 0 || x.shape.some((d, i) => !dimEquals(d, 1) && !dimEquals(d, target[lead + i]));
    if (bad) return err(`broadcast_to cannot broadcast ${typeStr(x)} to ${shapeToString(target)}`, 0);
    return [{ dtype: x.dtype, shape: [...target] }];
  },
  interpret([x], attrs, env) {
    const shape = evalShape(attrDims(attrs, 'shape'), env);
    const str = broadcastStrides(x.shape, shape);
    const out = new Float64Array(numel(shape));
    for (let i = 0; i < out.length; i++) {
      const idx = unravel(i, shape);
      let o = 0;
      for (let a = 0; a < idx.length; a++) o += idx[a] * str[a];
      out[i] = x.data[o];
    }
    return [{ dtype: x.dtype, shape, data: out }];
  },
  vjp(ctx, { inputs: [x] }, [ct]) {
    return [ct ? unbroadcast(ctx, ct, x.type) : null];
  },
});

// ---- slice ----------------------------------------------------------------------------------------

/**
 * Python slicing per axis with positive steps. `starts`/`stops` are integers, negative counting from
 * the end, and a stop of null means "to the end". On a concrete axis bounds are clamped to [0, n] as in
 * Python; on a symbolic axis they are taken as given (the result size is an expression of the size).
 */
export function sliceBounds(n: Dim, start: Dim, stop: Dim | null, step: number): { start: Dim; size: Dim } {
  if (!isConcrete(start) || (stop !== null && !isConcrete(stop))) {
    // a symbolic bound (`pos[:L - 1]`) is a size counted from the start, taken as given
    const s0: Dim = isConcrete(start) && start < 0 ? add(n, start) : start;
    const s1: Dim = stop === null ? n : isConcrete(stop) && stop < 0 ? add(n, stop) : stop;
    const len = sub(s1, s0);
    return { start: s0, size: step === 1 ? len : floorDiv(add(len, step - 1), step) };
  }
  if (isConcrete(n)) {
    const s0 = Math.min(n, Math.max(0, start < 0 ? start + n : start));
    const s1 = stop === null ? n : Math.min(n, Math.max(0, stop < 0 ? stop + n : stop));
    return { start: s0, size: Math.max(0, Math.ceil((s1 - s0) / step)) };
  }
  const s0: Dim = start < 0 ? add(n, start) : start;
  const s1: Dim = stop === null ? n : stop < 0 ? add(n, stop) : stop;
  const len = sub(s1, s0);
  return { start: s0, size: step === 1 ? len : floorDiv(add(len, step - 1), step) };
}

registerOp({
  name: 'slice',
  family: 'movement',
  arity: 1,
  differentiable: 'all',
  attrs: { starts: 'required', stops: 'required', steps: 'optional' },
  lower: { kind: 'kernel', kernel: slicePlans },
  infer([x], attrs) {
    const r = x.shape.length;
    const starts = attrs.starts;
    const stops = attrs.stops;
    const steps = attrs.steps ?? x.shape.map(() => 1);
    if (!Array.isArray(starts) || !Array.isArray(stops) || !Array.isArray(steps) || starts.length !== r || stops.length !== r || steps.length !== r) {
      return err(`slice needs starts, stops and steps for each of the ${r} axes of ${typeStr(x)}`, 0);
    }
    if (!steps.every((s) => typeof s === 'number' && Number.isInteger(s) && s > 0)) return err(`slice steps must be positive integers`, 0);
    const shape = x.shape.map((n, i) => sliceBounds(n, starts[i] as Dim, stops[i] as Dim | null, steps[i] as number).size);
    return [{ dtype: x.dtype, shape }];
  },
  interpret([x], attrs, env) {
    const bound = (d: AttrValue) => (d === null ? null : typeof d === 'number' ? d : evaluate(d as Dim, env.sizes));
    const starts = (attrs.starts as AttrValue[]).map((d) => bound(d) as number);
    const stops = (attrs.stops as AttrValue[]).map(bound);
    const steps = (attrs.steps as number[] | undefined) ?? x.shape.map(() => 1);
    const b = x.shape.map((n, i) => sliceBounds(n, starts[i], stops[i], steps[i]) as { start: number; size: number });
    const shape = b.map((v) => v.size);
    const inStr = strides(x.shape);
    const out = new Float64Array(numel(shape));
    for (let i = 0; i < out.length; i++) {
      const idx = unravel(i, shape);
      let o = 0;
      for (let a = 0; a < idx.length; a++) o += (b[a].start + idx[a] * steps[a]) * inStr[a];
      out[i] = x.data[o];
    }
    return [{ dtype: x.dtype, shape, data: out }];
  },
  /**
   * Each axis is put back in place with zeros around it (and between the taken elements for a step
   * above 1); symbolic bounds pad with `full` blocks of symbolic size, see unsliceAxis.
   */
  vjp(ctx, { inputs: [x], attrs }, [ct]) {
    if (!ct) return [null];
    const starts = attrs.starts as Dim[];
    const stops = attrs.stops as (Dim | null)[];
    const steps = (attrs.steps as number[] | undefined) ?? x.type.shape.map(() => 1);
    if (ct.type.shape.some((d) => dimEquals(d, 0))) return [fill(ctx, x.type.shape, 0, x.type.dtype)];
    let v = ct;
    x.type.shape.forEach((n, i) => {
      const { start } = sliceBounds(n, starts[i], stops[i], steps[i]);
      v = unsliceAxis(ctx, v, i, n, start, steps[i]);
    });
    return [v];
  },
});

// ---- concat ---------------------------------------------------------------------------------------

registerOp({
  name: 'concat',
  family: 'movement',
  arity: 'variadic',
  differentiable: 'all',
  // in_place (after fusion, optimize/concat-in-place.ts): every operand's producer stores it straight
  // into its slab of the result's buffer, so the concat itself dispatches nothing
  attrs: { axis: 'required', in_place: 'optional' },
  lower: { kind: 'kernel', kernel: concatPlans },
  infer(xs, attrs) {
    const first = xs[0];
    const axis = typeof attrs.axis === 'number' ? normAxis(attrs.axis, first.shape.length) : null;
    if (axis === null) return err(`concat axis ${String(attrs.axis)} is out of range for ${typeStr(first)}`, 0);
    let size: Dim = 0;
    for (let i = 0; i < xs.length; i++) {
      const t = xs[i];
      if (t.dtype !== first.dtype) return err(`concat operands have different dtypes: ${typeStr(first)} and ${typeStr(t)}`, i, 0);
      const same = t.shape.length === first.shape.length && t.shape.every((d, j) => j === axis || dimEquals(d, first.shape[j]));
      if (!same) return err(`concat shapes differ off axis ${axis}: ${typeStr(first)} and ${typeStr(t)}`, i, 0);
      size = add(size, t.shape[axis]);
    }
    return [{ dtype: first.dtype, shape: first.shape.map((d, j) => (j === axis ? size : d)) }];
  },
  interpret(xs, attrs) {
    const axis = normAxis(attrs.axis as number, xs[0].shape.length)!;
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((s, t) => s + t.shape[axis], 0);
    const outer = numel(shape.slice(0, axis));
    const inner = numel(shape.slice(axis + 1));
    const out = new Float64Array(numel(shape));
    let o = 0;
    for (let p = 0; p < outer; p++) {
      for (const t of xs) {
        const chunk = t.shape[axis] * inner;
        out.set(t.data.subarray(p * chunk, (p + 1) * chunk), o);
        o += chunk;
      }
    }
    return [{ dtype: xs[0].dtype, shape, data: out }];
  },
  vjp(ctx, { inputs: xs, attrs }, [ct]) {
    if (!ct) return xs.map(() => null);
    if (xs.length === 1) return [ct];
    const axis = normAxis(attrs.axis as number, ct.type.shape.length)!;
    let offset: Dim = 0;
    return xs.map((x) => {
      const end = add(offset, x.type.shape[axis]);
      const part = sliceAxis(ctx, ct, axis, offset, end);
      offset = end;
      return part;
    });
  },
});

// ---- pad ------------------------------------------------------------------------------------------

registerOp({
  name: 'pad',
  family: 'movement',
  arity: 1,
  // The pad value is an attribute, so only the operand gets a gradient.
  differentiable: 'all',
  attrs: { before: 'required', after: 'required', value: 'optional' },
  lower: { kind: 'kernel', kernel: padPlans },
  infer([x], attrs) {
    const r = x.shape.length;
    const ok = (v: unknown) => Array.isArray(v) && v.length === r && v.every((p) => typeof p === 'number' && Number.isInteger(p) && p >= 0);
    if (!ok(attrs.before) || !ok(attrs.after)) return err(`pad needs before and after: ${r} non-negative integers for ${typeStr(x)}`, 0);
    const before = attrs.before as number[];
    const after = attrs.after as number[];
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => add(add(d, before[i]), after[i])) }];
  },
  interpret([x], attrs) {
    const before = attrs.before as number[];
    const after = attrs.after as number[];
    const value = typeof attrs.value === 'number' ? attrs.value : 0;
    const shape = x.shape.map((d, i) => d + before[i] + after[i]);
    const outStr = strides(shape);
    const out = new Float64Array(numel(shape)).fill(value);
    for (let i = 0; i < x.data.length; i++) {
      const idx = unravel(i, x.shape);
      let o = 0;
      for (let a = 0; a < idx.length; a++) o += (idx[a] + before[a]) * outStr[a];
      out[o] = x.data[i];
    }
    return [{ dtype: x.dtype, shape, data: out }];
  },
  vjp(ctx, { attrs }, [ct]) {
    if (!ct) return [null];
    const before = attrs.before as number[];
    const after = attrs.after as number[];
    // a negative stop counts from the end, so this works on symbolic sizes too
    return [op1(ctx, 'slice', [ct], { starts: before, stops: after.map((a) => (a > 0 ? -a : null)) })];
  },
});

