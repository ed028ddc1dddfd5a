// Powers of a constant by the step counter, accurate in f32: b^t and 1 − b^t from ln b computed in float64.
//
// WGSL's pow(b, t) is exp2(t · log2(b)), and log2 near 1 is only accurate to an absolute 2^-21: for
// b = 0.999 that is a relative error of 3e-4 in the exponent. 1 − pow(0.999, t), Adam's bias correction,
// also cancels (1e-4 relative at t = 1), and 0.999 itself rounds in f32 (1.3e-5 relative in 1 − b).
// Here ln b is folded in float64, so only exp's few ulps and one rounding of ln b remain; 1 − b^t is
// −expm1(t · ln b), with expm1 as its Taylor series where exp(x) − 1 would cancel.
import type { GraphEditor } from '../ir/editor.ts';
import type { DType, Value } from '../ir/types.ts';

/** b^t for a constant b and a scalar t (float): exp(t · ln b), or pow where ln b is not finite (b ≤ 0). */
export function constPow(editor: GraphEditor, base: number, t: Value, dtype: DType = 'f32'): Value {
  const ln = Math.log(base);
  if (!Number.isFinite(ln)) return editor.op('pow', [editor.scalar(base, dtype), t], {});
  if (ln === 0) return editor.scalar(1, dtype);
  return editor.op('exp', [editor.op('mul', [t, editor.scalar(ln, dtype)], {})], {});
}

/**
 * Below this |x|, expm1(x) is its Taylor series (8 terms: truncated at a relative 3e-14, so the f64
 * interpreter keeps its digits too); above, exp(x) − 1 has |x| ≥ 0.1 to lose digits to, 2e-6 at most in f32.
 */
const SERIES_BELOW = 0.1;
const SERIES_TERMS = 8;

/** 1 − b^t for a constant 0 ≤ b < 1 (Adam's bias corrections) and a scalar t ≥ 0 (float). */
export function oneMinusConstPow(editor: GraphEditor, base: number, t: Value, dtype: DType = 'f32'): Value {
  const op = (name: string, inputs: readonly Value[]) => editor.op(name, inputs, {});
  const c = (v: number) => editor.scalar(v, dtype);
  if (base === 0) return c(1);
  const ln = Math.log1p(base - 1);
  if (!Number.isFinite(ln)) return op('sub', [c(1), op('pow', [c(base), t])]);
  const x = op('mul', [t, c(ln)]);
  // expm1(x) = x · (1 + x/2 · (1 + x/3 · (1 + ...))), Horner from the last term
  let series = c(1);
  for (let n = SERIES_TERMS; n >= 2; n--) series = op('add', [c(1), op('mul', [op('mul', [x, c(1 / n)]), series])]);
  const expm1 = op('select', [op('lt', [op('abs', [x]), c(SERIES_BELOW)]), op('mul', [x, series]), op('sub', [op('exp', [x]), c(1)])]);
  return op('neg', [expm1]);
}
