// Helpers for op and interpreter tests: a tiny type parser (`f32[B, 784]`), tensor builders and one-op runs checked against the shape rule.
import type { AttrValue, Attrs, DType, TensorType } from '../ir/types.ts';
import { type Dim, dimEquals, evaluate, sym } from '../shapes/dim.ts';
import { getOp, inferOp, isShapeError, type ShapeError } from './index.ts';
import { tensor, type Tensor } from '../interpret/tensor.ts';

/** `f32[B, 784]` -> a TensorType; identifiers become symbolic sizes. */
export function ty(text: string): TensorType {
  const m = /^(\w+)\[(.*)\]$/.exec(text.trim());
  if (!m) throw new Error(`bad type ${text}`);
  const dims: Dim[] = m[2].trim() === '' ? [] : m[2].split(',').map((s) => (/^-?\d+$/.test(s.trim()) ? Number(s) : sym(s.trim())));
  return { dtype: m[1] as DType, shape: dims };
}

export function infer(op: string, inputs: readonly string[], attrs: Attrs = {}): TensorType[] | ShapeError {
  return inferOp(op, inputs.map(ty), attrs);
}

export function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => dimEquals(d, b.shape[i]));
}

export function inferOk(op: string, inputs: readonly string[], attrs: Attrs = {}): TensorType[] {
  const r = infer(op, inputs, attrs);
  if (isShapeError(r)) throw new Error(`${op}: unexpected shape error: ${r.message}`);
  return r;
}

export function inferErr(op: string, inputs: readonly string[], attrs: Attrs = {}): ShapeError {
  const r = infer(op, inputs, attrs);
  if (!isShapeError(r)) throw new Error(`${op}: expected a shape error`);
  return r;
}

/** Run one op's interpreter, after checking that its shape rule accepts the concrete operand types. */
export function run(op: string, inputs: readonly Tensor[], attrs: Attrs = {}, sizes: ReadonlyMap<string, number> = new Map()): Tensor[] {
  const def = getOp(op);
  if (!def) throw new Error(`no op ${op}`);
  const types = inputs.map((t) => ({ dtype: t.dtype, shape: t.shape }));
  // The shape rule sees concrete operands, so symbolic sizes in the attributes are evaluated first.
  const concrete = (v: AttrValue): AttrValue => (Array.isArray(v) ? v.map(concrete) : v !== null && typeof v === 'object' ? evaluate(v as Dim, sizes as Map<string, number>) : v);
  const inferred = inferOp(op, types, Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, concrete(v)])));
  if (isShapeError(inferred)) throw new Error(`${op}: ${inferred.message}`);
  const out = def.interpret(inputs, attrs, { sizes });
  out.forEach((t, i) => {
    const want = inferred[i];
    if (want.dtype !== t.dtype || want.shape.length !== t.shape.length || want.shape.some((d, j) => typeof d === 'number' && d !== t.shape[j])) {
      throw new Error(`${op}: interpreter shape [${t.shape.join(', ')}] disagrees with the shape rule`);
    }
  });
  return out;
}

export function run1(op: string, inputs: readonly Tensor[], attrs: Attrs = {}, sizes?: ReadonlyMap<string, number>): Tensor {
  return run(op, inputs, attrs, sizes)[0];
}

export const f32 = (shape: number[], v: ArrayLike<number> | number) => tensor('f32', shape, v);
export const i32 = (shape: number[], v: ArrayLike<number> | number) => tensor('i32', shape, v);
export const u32 = (shape: number[], v: ArrayLike<number> | number) => tensor('u32', shape, v);
export const bool = (shape: number[], v: ArrayLike<number> | number) => tensor('bool', shape, v);

/** Deterministic values for a shape (a small LCG), so tests need no fixtures. */
export function seeded(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v.push((s / 2 ** 32) * 2 - 1);
  }
  return f32(shape, v);
}
