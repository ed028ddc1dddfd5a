// Gather and scatter primitives: take (embeddings), take_along_axis (class-indexed losses), scatter_add (with its sorted form) and one_hot.
import type { Attrs, DType, TensorType } from '../ir/types.ts';
import { type Dim, dimEquals, isConcrete, shapeToString } from '../shapes/dim.ts';
import { numel, wrap, type Tensor } from '../interpret/tensor.ts';
import { registerOp, type InterpretEnv, type ShapeError } from './registry.ts';
import { indexOrderPlans, oneHotPlans, scatterAddPlans, sortedScatterAddPlans, takeAlongAxisPlans, takePlans } from '../codegen/gather.ts';
import { DTYPE_NAMES, err, evalShape, isIntType, isNumeric, normAxis, product, typeStr } from './util.ts';
import { builder, constant, op1 } from './vjp-util.ts';

/**
 * Out-of-range indices are clamped to [0, n - 1] in take, take_along_axis and scatter_add alike, so
 * scatter_add stays the exact transpose of take and a GPU kernel never reads out of bounds.
 * Negative indices are not counted from the end: they clamp to 0.
 */
function clampIndex(i: number, n: number): number {
  return Math.min(n - 1, Math.max(0, i));
}

/**
 * An indexed axis of size 0 has nothing to read: a table of 0 rows, logits over 0 classes. Rejected
 * when the types are checked, since neither the forward read nor the gradient's scatter has a row to use.
 */
function emptyAxisError(op: string, table: TensorType, axis: number, help: string): ShapeError | undefined {
  const n = table.shape[axis];
  return isConcrete(n) && n === 0 ? err(`${op} indexes axis ${axis} of ${typeStr(table)}, which has size 0: there is nothing to take`, 0, undefined, help) : undefined;
}

// ---- take -----------------------------------------------------------------------------------------

registerOp({
  name: 'take',
  family: 'gather',
  arity: 2,
  differentiable: [true, false],
  attrs: { axis: 'required' },
  lower: { kind: 'kernel', kernel: takePlans },
  infer([table, idx], attrs) {
    const axis = typeof attrs.axis === 'number' ? normAxis(attrs.axis, table.shape.length) : null;
    if (axis === null) return err(`take axis ${String(attrs.axis)} is out of range for ${typeStr(table)}`, 0);
    if (!isIntType(idx.dtype)) return err(`take needs integer indices, found ${typeStr(idx)}`, 1, 0, 'cast the indices to i32');
    const empty = emptyAxisError('take', table, axis, 'the table needs at least one row (a vocabulary size of 1 or more)');
    if (empty) return empty;
    return [{ dtype: table.dtype, shape: [...table.shape.slice(0, axis), ...idx.shape, ...table.shape.slice(axis + 1)] }];
  },
  interpret([table, idx], attrs) {
    const axis = normAxis(attrs.axis as number, table.shape.length)!;
    const outer = numel(table.shape.slice(0, axis));
    const n = table.shape[axis];
    const inner = numel(table.shape.slice(axis + 1));
    const k = idx.data.length;
    const out = new Float64Array(outer * k * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < k; j++) {
        const row = clampIndex(idx.data[j], n);
        out.set(table.data.subarray((o * n + row) * inner, (o * n + row + 1) * inner), (o * k + j) * inner);
      }
    }
    return [{ dtype: table.dtype, shape: [...table.shape.slice(0, axis), ...idx.shape, ...table.shape.slice(axis + 1)], data: out }];
  },
  // The table's cotangent adds each gathered row's cotangent at its (clamped) index: scatter_add is take's transpose.
  vjp(ctx, { inputs: [table, idx], attrs }, [ct]) {
    if (!ct) return [null, null];
    const axis = normAxis(attrs.axis as number, table.type.shape.length)!;
    return [op1(ctx, 'scatter_add', [ct, idx], { axis, size: table.type.shape[axis] }), null];
  },
});

// ---- scatter_add ----------------------------------------------------------------------------------

/** The interpreters' view of a scatter: rows n on `axis`, the indices' rank r and count k, and the sizes around them. */
function scatterSizes(upd: Tensor, idx: Tensor, attrs: Attrs, env: InterpretEnv) {
  const axis = attrs.axis as number;
  const [n] = evalShape([attrs.size as Dim], env);
  const r = idx.shape.length;
  const outer = numel(upd.shape.slice(0, axis));
  const inner = numel(upd.shape.slice(axis + r));
  const k = idx.data.length;
  return { axis, n, r, outer, inner, k };
}

/** Why a scatter's `size` (its rows) cannot be, when it is a known number that is not a positive integer. */
function sizeError(op: string, size: Dim): ShapeError | undefined {
  return isConcrete(size) && !(Number.isInteger(size) && size > 0) ? err(`${op} size must be a positive integer, found ${size}`) : undefined;
}

function inferScatterAdd([upd, idx]: readonly TensorType[], attrs: Attrs, op = 'scatter_add'): TensorType[] | ShapeError {
  if (!isIntType(idx.dtype)) return err(`${op} needs integer indices, found ${typeStr(idx)}`, 1, 0, 'cast the indices to i32');
  if (!isNumeric(upd.dtype)) return err(`${op} needs numeric updates, found ${typeStr(upd)}`, 0);
  const axis = typeof attrs.axis === 'number' && attrs.axis >= 0 ? attrs.axis : -1;
  const r = idx.shape.length;
  const fits = axis >= 0 && axis + r <= upd.shape.length && idx.shape.every((d, i) => dimEquals(d, upd.shape[axis + i]));
  if (!fits) {
    return err(`${op} indices do not match the updates at axis ${String(attrs.axis)}: ${typeStr(upd)} and ${typeStr(idx)}`, 0, 1);
  }
  const size = attrs.size as Dim;
  const bad = sizeError(op, size);
  if (bad) return bad;
  return [{ dtype: upd.dtype, shape: [...upd.shape.slice(0, axis), size, ...upd.shape.slice(axis + r)] }];
}

/**
 * The transpose of take: `updates` has take's output shape (prefix + idx.shape + suffix) and the result
 * has the table's shape (prefix + [size] + suffix), each update row added at its (clamped) index.
 */
registerOp({
  name: 'scatter_add',
  family: 'gather',
  arity: 2,
  differentiable: [true, false],
  attrs: { axis: 'required', size: 'required' },
  lower: { kind: 'kernel', kernel: scatterAddPlans },
  infer: (inputs, attrs) => inferScatterAdd(inputs, attrs),
  interpret([upd, idx], attrs, env) {
    const { axis, n, r, outer, inner, k } = scatterSizes(upd, idx, attrs, env);
    const out = new Float64Array(outer * n * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < k; j++) {
        const row = clampIndex(idx.data[j], n);
        for (let i = 0; i < inner; i++) out[(o * n + row) * inner + i] += upd.data[(o * k + j) * inner + i];
      }
    }
    for (let i = 0; i < out.length; i++) out[i] = wrap(upd.dtype, out[i]);
    return [{ dtype: upd.dtype, shape: [...upd.shape.slice(0, axis), n, ...upd.shape.slice(axis + r)], data: out }];
  },
  vjp(ctx, { inputs: [, idx], attrs }, [ct]) {
    return [ct ? op1(ctx, 'take', [ct, idx], { axis: attrs.axis as number }) : null, null];
  },
});

// ---- index_order and sorted_scatter_add ----------------------------------------------------------
// scatter_add in two steps that cost k x k + k x inner instead of rows x k x inner (optimize/scatters.ts
// makes them from a scatter_add; codegen/gather.ts has the kernels).

/**
 * The stable order of the indices clamped to [0, size): out[p] is the flat position j of the index that
 * comes p-th when they are sorted by clamped value, ties in position order. A permutation of 0..k-1.
 */
registerOp({
  name: 'index_order',
  family: 'gather',
  arity: 1,
  differentiable: 'none',
  attrs: { size: 'required' },
  lower: { kind: 'kernel', kernel: indexOrderPlans },
  infer([idx], attrs) {
    if (!isIntType(idx.dtype)) return err(`index_order needs integer indices, found ${typeStr(idx)}`, 0, undefined, 'cast the indices to i32');
    const bad = sizeError('index_order', attrs.size as Dim);
    if (bad) return bad;
    return [{ dtype: 'i32', shape: [product(idx.shape)] }];
  },
  interpret([idx], attrs, env) {
    const [n] = evalShape([attrs.size as Dim], env);
    const keys = Array.from(idx.data, (v) => clampIndex(v, n));
    // Array.prototype.sort is stable: equal keys keep their positions' order
    const order = keys.map((_, j) => j).sort((a, b) => keys[a] - keys[b]);
    return [{ dtype: 'i32', shape: [order.length], data: Float64Array.from(order) }];
  },
});

/**
 * scatter_add(updates, indices) given order = index_order(indices, size): each row adds the updates of
 * its run of the sorted indices, found by binary search, in position order (scatter_add's sum, term for
 * term). Defined for any order: its entries clamp to [0, k) and the searches run as written, which is
 * what the kernel does; only index_order's order makes it scatter_add.
 */
registerOp({
  name: 'sorted_scatter_add',
  family: 'gather',
  arity: 3,
  differentiable: [true, false, false],
  attrs: { axis: 'required', size: 'required' },
  lower: { kind: 'kernel', kernel: sortedScatterAddPlans },
  infer([upd, idx, order], attrs) {
    const base = inferScatterAdd([upd, idx], attrs, 'sorted_scatter_add');
    if (!Array.isArray(base)) return base;
    if (order.dtype !== 'i32' || order.shape.length !== 1 || !dimEquals(order.shape[0], product(idx.shape))) {
      return err(`sorted_scatter_add needs the indices' order as ${typeStr({ dtype: 'i32', shape: [product(idx.shape)] })}, found ${typeStr(order)}`, 2, 1);
    }
    return base;
  },
  interpret([upd, idx, order], attrs, env) {
    const { axis, n, r, outer, inner, k } = scatterSizes(upd, idx, attrs, env);
    const at = (i: number) => clampIndex(order.data[i], k);
    const key = (i: number) => clampIndex(idx.data[at(i)], n);
    const out = new Float64Array(outer * n * inner);
    // the kernel's search, as written: the first position from `lo` on whose key is not below `bound`
    const lowerBound = (lo: number, bound: number) => {
      let hi = k;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (key(mid) < bound) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    for (let row = 0; row < n; row++) {
      const start = lowerBound(0, row);
      const end = lowerBound(start, row + 1);
      for (let o = 0; o < outer; o++) {
        for (let i = start; i < end; i++) {
          for (let s = 0; s < inner; s++) out[(o * n + row) * inner + s] += upd.data[(o * k + at(i)) * inner + s];
        }
      }
    }
    for (let i = 0; i < out.length; i++) out[i] = wrap(upd.dtype, out[i]);
    return [{ dtype: upd.dtype, shape: [...upd.shape.slice(0, axis), n, ...upd.shape.slice(axis + r)], data: out }];
  },
  // as scatter_add's, for the order index_order gives (the only one the compiler makes)
  vjp(ctx, { inputs: [, idx], attrs }, [ct]) {
    return [ct ? op1(ctx, 'take', [ct, idx], { axis: attrs.axis as number }) : null, null, null];
  },
});

// ---- take_along_axis ------------------------------------------------------------------------------

/** numpy's take_along_axis without broadcasting: indices match the array on every other axis. */
registerOp({
  name: 'take_along_axis',
  family: 'gather',
  arity: 2,
  differentiable: [true, false],
  attrs: { axis: 'required' },
  lower: { kind: 'kernel', kernel: takeAlongAxisPlans },
  infer([arr, idx], attrs) {
    const axis = typeof attrs.axis === 'number' ? normAxis(attrs.axis, arr.shape.length) : null;
    if (axis === null) return err(`take_along_axis axis ${String(attrs.axis)} is out of range for ${typeStr(arr)}`, 0);
    if (!isIntType(idx.dtype)) return err(`take_along_axis needs integer indices, found ${typeStr(idx)}`, 1, 0, 'cast the indices to i32');
    const empty = emptyAxisError('take_along_axis', arr, axis, 'the indexed axis (the classes, for a loss) needs a size of 1 or more');
    if (empty) return empty;
    if (idx.shape.length !== arr.shape.length) {
      const help = idx.shape.length + 1 === arr.shape.length ? `add the axis: reshape the indices to ${shapeToString([...idx.shape.slice(0, axis), 1, ...idx.shape.slice(axis)])}` : undefined;
      return err(`take_along_axis needs indices of the same rank as the array: ${typeStr(arr)} and ${typeStr(idx)}`, 1, 0, help);
    }
    if (!idx.shape.every((d, i) => i === axis || dimEquals(d, arr.shape[i]))) {
      return err(`take_along_axis indices differ from the array off axis ${axis}: ${typeStr(arr)} and ${typeStr(idx)}`, 1, 0);
    }
    return [{ dtype: arr.dtype, shape: idx.shape }];
  },
  interpret([arr, idx], attrs) {
    const axis = normAxis(attrs.axis as number, arr.shape.length)!;
    const outer = numel(arr.shape.slice(0, axis));
    const n = arr.shape[axis];
    const k = idx.shape[axis];
    const inner = numel(arr.shape.slice(axis + 1));
    const out = new Float64Array(idx.data.length);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < k; j++) {
        for (let i = 0; i < inner; i++) {
          const p = (o * k + j) * inner + i;
          out[p] = arr.data[(o * n + clampIndex(idx.data[p], n)) * inner + i];
        }
      }
    }
    return [{ dtype: arr.dtype, shape: [...idx.shape], data: out }];
  },
  /**
   * Each output's cotangent goes to the array position it read: one_hot of the clamped indices along a
   * new last axis, weighted by the cotangent, summed over the indexed axis and moved back in place.
   * Elementwise plus a reduction, so it is exact and needs no atomics; it costs numel(idx) * n.
   */
  vjp(ctx, { inputs: [arr, idx], attrs }, [ct]) {
    if (!ct) return [null, null];
    const g = builder(ctx);
    const r = arr.type.shape.length;
    const axis = normAxis(attrs.axis as number, r)!;
    const n = arr.type.shape[axis];
    const perm = Array.from({ length: r }, (_, i) => (i < axis ? i : i === axis ? r - 1 : i - 1));
    const k = idx.type.shape[axis];
    // one_hot clamps the indices as the forward read did
    const oneHot = (ids: typeof idx, dtype: DType) => op1(ctx, 'one_hot', [ids], { depth: n, dtype, clamp: true });
    if (isConcrete(k) && k === 1) {
      // one index per position (class labels): nothing to sum over, so the cotangent selected by the
      // one-hot rows is the gradient, elementwise after the one_hot (the loss's row kernel takes it; the
      // same bool rows as optimize/gathers.ts's forward select, so one one_hot serves both)
      const rows = idx.type.shape.filter((_, i) => i !== axis);
      const zero = constant(ctx, 0, arr.type.dtype);
      return [g.transpose(op1(ctx, 'select', [oneHot(g.reshape(idx, rows), 'bool'), g.reshape(ct, [...rows, 1]), zero]), perm), null];
    }
    const hot = oneHot(idx, arr.type.dtype);
    const weighted = g.mul(hot, g.reshape(ct, [...ct.type.shape, 1]));
    const summed = g.sum(weighted, [axis]);
    return [g.transpose(summed, perm), null];
  },
});

// ---- one_hot --------------------------------------------------------------------------------------

/**
 * A new last axis of size `depth`; an index outside [0, depth) gives an all-zero row (as in JAX), or
 * with `clamp` the row of the nearest index (take_along_axis's gradient: its read clamps).
 */
registerOp({
  name: 'one_hot',
  family: 'gather',
  arity: 1,
  differentiable: 'none',
  attrs: { depth: 'required', dtype: 'optional', clamp: 'optional' },
  lower: { kind: 'kernel', kernel: oneHotPlans },
  infer([idx], attrs) {
    if (!isIntType(idx.dtype)) return err(`one_hot needs integer indices, found ${typeStr(idx)}`, 0, undefined, 'cast the indices to i32');
    const depth = attrs.depth as Dim;
    if (isConcrete(depth) && !(Number.isInteger(depth) && depth > 0)) return err(`one_hot depth must be a positive integer, found ${depth}`, 0);
    const dtype = (attrs.dtype ?? 'f32') as DType;
    if (!DTYPE_NAMES.includes(dtype)) return err(`one_hot dtype must be one of ${DTYPE_NAMES.join(', ')}`, 0);
    return [{ dtype, shape: [...idx.shape, depth] }];
  },
  interpret([idx], attrs, env) {
    const [depth] = evalShape([attrs.depth as Dim], env);
    const dtype = (attrs.dtype ?? 'f32') as DType;
    const out = new Float64Array(idx.data.length * depth);
    idx.data.forEach((v, i) => {
      const at = attrs.clamp === true ? clampIndex(v, depth) : v;
      if (at >= 0 && at < depth) out[i * depth + at] = 1;
    });
    return [{ dtype, shape: [...idx.shape, depth], data: out }];
  },
});

