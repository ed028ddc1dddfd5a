// Dense float64 tensors for the reference interpreter: construction, strides, index math and dtype wrapping.
import type { DType } from '../ir/types.ts';

/**
 * A row-major tensor. Every dtype is stored as float64: floats keep full f64 precision (this is a
 * reference, so f32 and f16 results are not rounded), i32 and u32 hold exact 32-bit integers and
 * bool holds 0 or 1.
 */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides in elements: the last axis has stride 1. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** The flat offset of a multi-index under the given strides. */
export function offsetOf(index: readonly number[], str: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < index.length; i++) o += index[i] * str[i];
  return o;
}

/** The multi-index of a flat row-major offset. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i];
    idx[i] = d === 0 ? 0 : flat % d;
    flat = d === 0 ? 0 : Math.floor(flat / d);
  }
  return idx;
}

/** Round a mathematical result to what the dtype can hold: 32-bit wrap for integers, 0/1 for bool. */
export function wrap(dtype: DType, x: number): number {
  switch (dtype) {
    case 'i32':
      return x | 0;
    case 'u32':
      return x >>> 0;
    case 'bool':
      return x !== 0 && !Number.isNaN(x) ? 1 : 0;
    default:
      return x;
  }
}

/** A tensor from nested or flat numbers; values are wrapped to the dtype. */
export function tensor(dtype: DType, shape: readonly number[], values: ArrayLike<number> | number): Tensor {
  const n = numel(shape);
  const data = new Float64Array(n);
  if (typeof values === 'number') data.fill(wrap(dtype, values));
  else {
    if (values.length !== n) throw new Error(`tensor of shape [${shape.join(', ')}] needs ${n} values, got ${values.length}`);
    for (let i = 0; i < n; i++) data[i] = wrap(dtype, values[i]);
  }
  return { dtype, shape: [...shape], data };
}

export function scalar(dtype: DType, value: number): Tensor {
  return tensor(dtype, [], value);
}

export function zeros(dtype: DType, shape: readonly number[]): Tensor {
  return { dtype, shape: [...shape], data: new Float64Array(numel(shape)) };
}

/** The element at a multi-index. */
export function at(t: Tensor, ...index: number[]): number {
  return t.data[offsetOf(index, strides(t.shape))];
}

/**
 * Strides that read `shape` as if broadcast to `outShape` (numpy rules, right-aligned): a size-1 or
 * missing axis gets stride 0.
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = strides(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const lead = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[lead + i] = shape[i] === 1 ? 0 : own[i];
  return out;
}

/** The shape that numpy broadcasting gives for concrete shapes; throws when they do not broadcast. */
export function broadcastConcrete(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      if (s[i] === 1) continue;
      if (out[j] !== 1 && out[j] !== s[i]) throw new Error(`shapes [${shapes.map((x) => x.join(', ')).join('] and [')}] do not broadcast`);
      out[j] = s[i];
    }
  }
  return out;
}

/**
 * Apply `fn` elementwise over inputs broadcast to a common shape. An odometer walks the output so that
 * each input offset is updated incrementally rather than recomputed from a multi-index.
 */
export function mapBroadcast(dtype: DType, inputs: readonly Tensor[], fn: (...xs: number[]) => number): Tensor {
  const outShape = broadcastConcrete(...inputs.map((t) => t.shape));
  const n = numel(outShape);
  const out = new Float64Array(n);
  const rank = outShape.length;
  const strs = inputs.map((t) => broadcastStrides(t.shape, outShape));
  const offs = new Array<number>(inputs.length).fill(0);
  const idx = new Array<number>(rank).fill(0);
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) args[k] = inputs[k].data[offs[k]];
    out[i] = wrap(dtype, fn(...args));
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]++;
      for (let k = 0; k < inputs.length; k++) offs[k] += strs[k][ax];
      if (idx[ax] < outShape[ax]) break;
      for (let k = 0; k < inputs.length; k++) offs[k] -= strs[k][ax] * outShape[ax];
      idx[ax] = 0;
    }
  }
  return { dtype, shape: outShape, data: out };
}

export function shapeString(t: Tensor): string {
  return `${t.dtype}[${t.shape.join(', ')}]`;
}
