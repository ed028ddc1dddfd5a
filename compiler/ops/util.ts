// Helpers shared by the op families: type printing, dtype classes, axis normalisation, Dim products and attribute reads.
import type { AttrValue, Attrs, DType, TensorType } from '../ir/types.ts';
import { type Dim, dimEquals, evaluate, isConcrete, mul, shapeToString } from '../shapes/dim.ts';
import type { ShapeError, InterpretEnv } from './registry.ts';

/** `f32[B, 784]`: how shapes appear in messages. */
export function typeStr(t: TensorType): string {
  return `${t.dtype}${shapeToString(t.shape)}`;
}

export const isFloatType = (d: DType): boolean => d === 'f32' || d === 'f16';
export const isIntType = (d: DType): boolean => d === 'i32' || d === 'u32';
export const isNumeric = (d: DType): boolean => d !== 'bool';

export function err(message: string, operand?: number, otherOperand?: number, help?: string): ShapeError {
  const e: { message: string; operand?: number; otherOperand?: number; help?: string } = { message };
  if (operand !== undefined) e.operand = operand;
  if (otherOperand !== undefined) e.otherOperand = otherOperand;
  if (help !== undefined) e.help = help;
  return e;
}

export function product(shape: readonly Dim[]): Dim {
  let p: Dim = 1;
  for (const d of shape) p = mul(p, d);
  return p;
}

export function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]));
}

/** A Python-style axis (negative counts from the end) made non-negative, or null when out of range. */
export function normAxis(axis: number, rank: number): number | null {
  if (!Number.isInteger(axis)) return null;
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : null;
}

export function attrNum(attrs: Attrs, key: string, fallback?: number): number {
  const v = attrs[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number') throw new Error(`attribute ${key} must be a number`);
  return v;
}

export function attrBool(attrs: Attrs, key: string, fallback: boolean): boolean {
  const v = attrs[key];
  return typeof v === 'boolean' ? v : fallback;
}

export function attrNums(attrs: Attrs, key: string, fallback?: readonly number[]): number[] {
  const v = attrs[key];
  if (v === undefined && fallback !== undefined) return [...fallback];
  if (!Array.isArray(v) || !v.every((x: AttrValue) => typeof x === 'number')) throw new Error(`attribute ${key} must be a list of numbers`);
  return v as number[];
}

/** A list of sizes, each a number or a SymDim. */
export function attrDims(attrs: Attrs, key: string): Dim[] {
  const v = attrs[key];
  if (!Array.isArray(v)) throw new Error(`attribute ${key} must be a list of sizes`);
  return v as Dim[];
}

export function attrDType(attrs: Attrs, key: string, fallback: DType): DType {
  const v = attrs[key];
  return typeof v === 'string' ? (v as DType) : fallback;
}

/** Check that an attribute is present with the right form; a ShapeError otherwise. */
export function checkAttrList(op: string, attrs: Attrs, key: string, len: number, opts: { min?: number } = {}): ShapeError | null {
  const v = attrs[key];
  if (!Array.isArray(v) || v.length !== len || !v.every((x: AttrValue) => typeof x === 'number' && Number.isInteger(x) && x >= (opts.min ?? -Infinity))) {
    const bound = opts.min === undefined ? 'integers' : opts.min === 0 ? 'non-negative integers' : `integers of at least ${opts.min}`;
    return err(`${op} attribute ${key} must be ${len} ${bound}`);
  }
  return null;
}

export function evalShape(shape: readonly Dim[], env: InterpretEnv): number[] {
  return shape.map((d) => (isConcrete(d) ? d : evaluate(d, env.sizes as Map<string, number>)));
}

export const DTYPE_NAMES: readonly DType[] = ['f32', 'f16', 'i32', 'u32', 'bool'];
