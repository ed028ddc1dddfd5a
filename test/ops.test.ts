// Every primitive in the registry: shape-rule tables, interpreter results against hand or naive values, integer wrap, random streams.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Attrs, TensorType } from '../compiler/ir/types.ts';
import { add, floorDiv, mul, sub, sym } from '../compiler/shapes/dim.ts';
import { allOps, getOp } from '../compiler/ops/index.ts';
import { encodeRowBody } from '../compiler/ops/fused-reduce.ts';
import { philox4x32 } from '../compiler/ops/random.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { bool, f32, i32, infer, inferErr, inferOk, run, run1, sameType, seeded, ty, u32 } from '../compiler/ops/testing.ts';
import { encodeFusedBody } from '../compiler/ops/fused.ts';
import { isShapeError } from '../compiler/ops/registry.ts';

const B = sym('B');
const T = sym('T');

// ---- coverage bookkeeping: filled while tests are collected, checked by the last test ----------------
const shapeCovered = new Set<string>();
const interpCovered = new Set<string>();

/** A shape case: operand types (text), attrs, and either the output types or the error expected. */
interface ShapeCase {
  in: string[];
  attrs?: Attrs;
  out?: (string | TensorType)[];
  error?: { message: string | RegExp; help?: string | RegExp; operand?: number; otherOperand?: number };
}

function shapeTable(op: string, cases: ShapeCase[]): void {
  shapeCovered.add(op);
  describe(`${op} shape rule`, () => {
    it.each(cases.map((c, i) => [i, c] as const))(`case %i`, (_i, c) => {
      const r = infer(op, c.in, c.attrs ?? {});
      if (c.error) {
        expect(isShapeError(r), `${op}(${c.in.join(', ')}) should fail`).toBe(true);
        if (!isShapeError(r)) return;
        if (typeof c.error.message === 'string') expect(r.message).toBe(c.error.message);
        else expect(r.message).toMatch(c.error.message);
        // The project's voice: lowercase start, no trailing period, names the op.
        expect(r.message).toMatch(/^[a-z]/);
        expect(r.message).not.toMatch(/\.$/);
        expect(r.message).toContain(op);
        if (c.error.help !== undefined) {
          if (typeof c.error.help === 'string') expect(r.help).toBe(c.error.help);
          else expect(r.help).toMatch(c.error.help);
        }
        if (c.error.operand !== undefined) expect(r.operand).toBe(c.error.operand);
        if (c.error.otherOperand !== undefined) expect(r.otherOperand).toBe(c.error.otherOperand);
      } else {
        expect(isShapeError(r), isShapeError(r) ? r.message : '').toBe(false);
        if (isShapeError(r)) return;
        const want = (c.out ?? []).map((o) => (typeof o === 'string' ? ty(o) : o));
        expect(r.length).toBe(want.length);
        r.forEach((t, i) => expect(sameType(t, want[i]), `got ${t.dtype}${JSON.stringify(t.shape)}`).toBe(true));
      }
    });
  });
}

function interpTest(ops: string | string[], name: string, fn: () => void): void {
  for (const op of [ops].flat()) interpCovered.add(op);
  it(name, fn);
}

function close(t: Tensor, want: readonly number[], tol = 1e-12): void {
  expect(t.data.length).toBe(want.length);
  want.forEach((w, i) => {
    if (Number.isNaN(w)) expect(t.data[i]).toBeNaN();
    else if (!Number.isFinite(w)) expect(t.data[i]).toBe(w);
    else expect(Math.abs(t.data[i] - w), `element ${i}: ${t.data[i]} vs ${w}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(w)));
  });
}

const exact = (t: Tensor, shape: number[], want: readonly number[]) => {
  expect(t.shape).toEqual(shape);
  expect([...t.data]).toEqual(want);
};

// =====================================================================================================
describe('elementwise', () => {
  const floatUnary = ['exp', 'log', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'floor', 'ceil'];
  for (const op of floatUnary) {
    shapeTable(op, [
      { in: ['f32[B, 3]'], out: ['f32[B, 3]'] },
      { in: ['f16[]'], out: ['f16[]'] },
      { in: ['i32[4]'], error: { message: `${op} needs a float tensor (f32 or f16), found i32[4]`, operand: 0 } },
    ]);
  }
  for (const op of ['neg', 'abs', 'sign']) {
    shapeTable(op, [
      { in: ['f32[B, T]'], out: ['f32[B, T]'] },
      { in: ['i32[2, 1]'], out: ['i32[2, 1]'] },
      { in: ['bool[3]'], error: { message: new RegExp(`^${op} needs a .* tensor, found bool\\[3\\]$`) } },
    ]);
  }
  shapeTable('logical_not', [
    { in: ['bool[B]'], out: ['bool[B]'] },
    { in: ['f32[B]'], error: { message: 'logical_not needs a bool tensor, found f32[B]' } },
  ]);

  const arith = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'mod'];
  for (const op of [...arith, 'pow']) {
    shapeTable(op, [
      { in: ['f32[B, 1]', 'f32[3]'], out: ['f32[B, 3]'] },
      { in: ['f32[B, T, 4]', 'f32[B, 1, 4]'], out: ['f32[B, T, 4]'] },
      { in: ['f32[]', 'f32[2, 3]'], out: ['f32[2, 3]'] },
      { in: ['f32[B, 3]', 'f32[4]'], error: { message: `${op} shapes do not broadcast: f32[B, 3] and f32[4]`, operand: 0, otherOperand: 1 } },
      { in: ['f32[3]', 'i32[3]'], error: { message: `${op} operands have different dtypes: f32[3] and i32[3]`, help: 'cast the underlined i32 operand: cast(..., f32)', operand: 1, otherOperand: 0 } },
      ...(op === 'pow' ? [{ in: ['i32[3]', 'i32[3]'], error: { message: 'pow needs a float tensor (f32 or f16), found i32[3]' } }] : [{ in: ['i32[B]', 'i32[1]'], out: ['i32[B]'] }]),
      { in: ['bool[3]', 'bool[3]'], error: { message: new RegExp(`^${op} needs a (numeric|float) tensor`) } },
    ]);
  }
  for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge']) {
    shapeTable(op, [
      { in: ['f32[B, 1]', 'f32[1, 5]'], out: ['bool[B, 5]'] },
      { in: ['i32[B]', 'i32[]'], out: ['bool[B]'] },
      { in: ['i32[B]', 'f32[B]'], error: { message: `${op} operands have different dtypes: i32[B] and f32[B]` } },
      { in: ['f32[2]', 'f32[3]'], error: { message: `${op} shapes do not broadcast: f32[2] and f32[3]` } },
    ]);
  }
  for (const op of ['logical_and', 'logical_or']) {
    shapeTable(op, [
      { in: ['bool[B, 1]', 'bool[4]'], out: ['bool[B, 4]'] },
      { in: ['f32[2]', 'f32[2]'], error: { message: `${op} needs a bool tensor, found f32[2]` } },
    ]);
  }
  shapeTable('select', [
    { in: ['bool[B, 1]', 'f32[B, 3]', 'f32[]'], out: ['f32[B, 3]'] },
    { in: ['bool[]', 'i32[2]', 'i32[2]'], out: ['i32[2]'] },
    { in: ['f32[B]', 'f32[B]', 'f32[B]'], error: { message: 'select needs a bool condition, found f32[B]', help: 'compare first, e.g. gt(x, 0)', operand: 0 } },
    { in: ['bool[B]', 'f32[B]', 'i32[B]'], error: { message: 'select branches have different dtypes: f32[B] and i32[B]', operand: 2, otherOperand: 1 } },
    { in: ['bool[2]', 'f32[3]', 'f32[3]'], error: { message: 'select shapes do not broadcast: bool[2] and f32[3]', operand: 0, otherOperand: 1 } },
  ]);
  shapeTable('cast', [
    { in: ['f32[B, 3]'], attrs: { dtype: 'i32' }, out: ['i32[B, 3]'] },
    { in: ['bool[2]'], attrs: { dtype: 'f16' }, out: ['f16[2]'] },
    { in: ['f32[2]'], attrs: { dtype: 'f64' }, error: { message: 'cast needs a dtype attribute (one of f32, f16, i32, u32, bool)' } },
    { in: ['f32[2]'], error: { message: 'cast needs the attribute dtype' } },
  ]);

  const x = f32([5], [-2, -0.5, 0, 0.5, 2]);
  const unary: Record<string, [Tensor, number[]]> = {
    neg: [x, [2, 0.5, -0, -0.5, -2]],
    abs: [x, [2, 0.5, 0, 0.5, 2]],
    sign: [x, [-1, -1, 0, 1, 1]],
    floor: [x, [-2, -1, 0, 0, 2]],
    ceil: [x, [-2, -0, 0, 1, 2]],
    exp: [f32([3], [0, 1, -1]), [1, Math.E, 1 / Math.E]],
    log: [f32([4], [1, Math.E, 0, -1]), [0, 1, -Infinity, NaN]],
    log1p: [f32([5], [0, -0.5, 1, -1, -2]), [0, -Math.LN2, Math.LN2, -Infinity, NaN]],
    expm1: [f32([4], [0, 1, -1, -Infinity]), [0, Math.E - 1, 1 / Math.E - 1, -1]],
    sqrt: [f32([3], [4, 2, 0]), [2, Math.SQRT2, 0]],
    rsqrt: [f32([3], [4, 0.25, 0]), [0.5, 2, Infinity]],
    sin: [f32([3], [0, Math.PI / 2, Math.PI / 6]), [0, 1, 0.5]],
    cos: [f32([3], [0, Math.PI, Math.PI / 3]), [1, -1, 0.5]],
    tanh: [f32([3], [0, 1, -1000]), [0, 0.7615941559557649, -1]],
    sigmoid: [f32([5], [0, 2, -2, 1000, -1000]), [0.5, 0.8807970779778823, 0.11920292202211755, 1, 0]],
    // erf from published tables (Abramowitz & Stegun 7.1), to 16 digits.
    erf: [f32([7], [0, 0.5, 1, -1, 2, 3.5, 7]), [0, 0.5204998778130465, 0.8427007929497149, -0.8427007929497149, 0.9953222650189527, 0.9999992569016276, 1]],
    logical_not: [bool([3], [1, 0, 1]), [0, 1, 0]],
  };
  for (const [op, [input, want]] of Object.entries(unary)) {
    interpTest(op, `${op} interprets`, () => {
      const r = run1(op, [input]);
      expect(r.shape).toEqual(input.shape);
      close(r, want, 1e-14);
    });
  }
  interpTest([], 'neg, abs and sign on i32 wrap like 32-bit hardware', () => {
    exact(run1('neg', [i32([2], [-2147483648, 5])]), [2], [-2147483648, -5]);
    exact(run1('abs', [i32([2], [-2147483648, -5])]), [2], [-2147483648, 5]);
    exact(run1('sign', [i32([3], [-7, 0, 9])]), [3], [-1, 0, 1]);
  });

  // a is [2, 1], b is [3]: every result is [2, 3] and written out by hand.
  const a = f32([2, 1], [6, -3]);
  const b = f32([3], [2, 4, -1.5]);
  const binary: Record<string, number[]> = {
    add: [8, 10, 4.5, -1, 1, -4.5],
    sub: [4, 2, 7.5, -5, -7, -1.5],
    mul: [12, 24, -9, -6, -12, 4.5],
    div: [3, 1.5, -4, -1.5, -0.75, 2],
    pow: [36, 1296, 6 ** -1.5, 9, 81, NaN],
    maximum: [6, 6, 6, 2, 4, -1.5],
    minimum: [2, 4, -1.5, -3, -3, -3],
    // Truncated remainder, the sign of the dividend (WGSL's %).
    mod: [0, 2, 0, -1, -3, -0],
    eq: [0, 0, 0, 0, 0, 0],
    ne: [1, 1, 1, 1, 1, 1],
    lt: [0, 0, 0, 1, 1, 1],
    le: [0, 0, 0, 1, 1, 1],
    gt: [1, 1, 1, 0, 0, 0],
    ge: [1, 1, 1, 0, 0, 0],
  };
  for (const [op, want] of Object.entries(binary)) {
    interpTest(op, `${op} interprets with broadcasting`, () => {
      const r = run1(op, [a, b]);
      expect(r.shape).toEqual([2, 3]);
      expect(r.dtype).toBe(['eq', 'ne', 'lt', 'le', 'gt', 'ge'].includes(op) ? 'bool' : 'f32');
      close(r, want, 1e-14);
    });
  }
  interpTest(['eq', 'le', 'ge'], 'comparisons on equal values', () => {
    const p = f32([3], [1, 2, 3]);
    const q = f32([3], [1, 5, 0]);
    exact(run1('eq', [p, q]), [3], [1, 0, 0]);
    exact(run1('le', [p, q]), [3], [1, 1, 0]);
    exact(run1('ge', [p, q]), [3], [1, 0, 1]);
    exact(run1('eq', [bool([2], [1, 0]), bool([2], [1, 1])]), [2], [1, 0]);
  });
  interpTest(['logical_and', 'logical_or'], 'logical ops truth tables', () => {
    const p = bool([4], [0, 0, 1, 1]);
    const q = bool([4], [0, 1, 0, 1]);
    exact(run1('logical_and', [p, q]), [4], [0, 0, 0, 1]);
    exact(run1('logical_or', [p, q]), [4], [0, 1, 1, 1]);
  });
  interpTest([], 'i32 and u32 arithmetic wraps like 32-bit hardware', () => {
    const max = i32([1], [2147483647]);
    exact(run1('add', [max, i32([1], [1])]), [1], [-2147483648]);
    exact(run1('sub', [i32([1], [-2147483648]), i32([1], [1])]), [1], [2147483647]);
    exact(run1('mul', [i32([1], [65536]), i32([1], [65536])]), [1], [0]);
    // Past 2^53 a float64 product loses low bits; the exact answer comes from BigInt.
    const p = 123456789;
    const q = 987654321;
    exact(run1('mul', [i32([1], [p]), i32([1], [q])]), [1], [Number(BigInt.asIntN(32, BigInt(p) * BigInt(q)))]);
    exact(run1('mul', [u32([1], [4294967295]), u32([1], [4294967295])]), [1], [1]);
    exact(run1('add', [u32([1], [4294967295]), u32([1], [1])]), [1], [0]);
    exact(run1('sub', [u32([1], [0]), u32([1], [1])]), [1], [4294967295]);
    exact(run1('mul', [u32([1], [3000000000]), u32([1], [3])]), [1], [Number(BigInt.asUintN(32, 9000000000n))]);
  });
  interpTest([], 'integer div truncates toward zero and mod takes the dividend sign, as in WGSL', () => {
    const p = i32([6], [7, -7, 7, -7, 5, -2147483648]);
    const q = i32([6], [2, 2, -2, -2, 0, -1]);
    exact(run1('div', [p, q]), [6], [3, -3, -3, 3, 5, -2147483648]);
    expect([...run1('mod', [p, q]).data].map((v) => v + 0)).toEqual([1, -1, 1, -1, 0, 0]);
    exact(run1('div', [u32([2], [7, 4294967295]), u32([2], [2, 2])]), [2], [3, 2147483647]);
  });

  interpTest('select', 'select picks by a broadcast condition', () => {
    const r = run1('select', [bool([2, 1], [1, 0]), f32([2, 2], [1, 2, 3, 4]), f32([], [-9])]);
    exact(r, [2, 2], [1, 2, -9, -9]);
  });
  interpTest('cast', 'cast follows the documented conversion rules', () => {
    const x = f32([7], [1.9, -1.9, NaN, 3e9, -3e9, 0, 0.5]);
    exact(run1('cast', [x], { dtype: 'i32' }), [7], [1, -1, 0, 2147483647, -2147483648, 0, 0]);
    exact(run1('cast', [x], { dtype: 'u32' }), [7], [1, 0, 0, 3000000000, 0, 0, 0]);
    exact(run1('cast', [x], { dtype: 'bool' }), [7], [1, 1, 1, 1, 1, 0, 1]);
    exact(run1('cast', [i32([2], [-1, 5])], { dtype: 'u32' }), [2], [4294967295, 5]);
    exact(run1('cast', [u32([1], [4294967295])], { dtype: 'i32' }), [1], [-1]);
    exact(run1('cast', [bool([2], [1, 0])], { dtype: 'f32' }), [2], [1, 0]);
    // The reference keeps f64: a cast to f32 does not round.
    expect(run1('cast', [tensor('f16', [1], [0.1])], { dtype: 'f32' }).data[0]).toBe(0.1);
  });
});

// =====================================================================================================
describe('matmul', () => {
  shapeTable('matmul', [
    { in: ['f32[B, 784]', 'f32[784, 10]'], out: ['f32[B, 10]'] },
    { in: ['f32[2, 3]', 'f32[3, 4]'], out: ['f32[2, 4]'] },
    { in: ['f32[B, T, 64]', 'f32[64, 64]'], out: ['f32[B, T, 64]'] },
    { in: ['f32[B, 8, T, 16]', 'f32[B, 8, 16, T]'], out: ['f32[B, 8, T, T]'] },
    { in: ['f32[1, 5, 3]', 'f32[4, 3, 2]'], out: ['f32[4, 5, 2]'] },
    {
      in: ['f32[B, 784]', 'f32[748, 10]'],
      error: { message: 'matmul inner dimensions differ: f32[B, 784] @ f32[748, 10]', operand: 0, otherOperand: 1 },
    },
    {
      in: ['f32[B, 784]', 'f32[10, 784]'],
      error: { message: 'matmul inner dimensions differ: f32[B, 784] @ f32[10, 784]', help: 'transpose the weight: its shape is [10, 784]', operand: 0, otherOperand: 1 },
    },
    {
      in: ['f32[B, 1, 28, 28]', 'f32[784, 10]'],
      error: { message: 'matmul inner dimensions differ: f32[B, 1, 28, 28] @ f32[784, 10]', help: 'flatten the input first: reshape it to [B, 784]' },
    },
    { in: ['f32[2, 3, 4]', 'f32[5, 4, 2]'], error: { message: 'matmul batch dimensions do not broadcast: f32[2, 3, 4] @ f32[5, 4, 2]' } },
    { in: ['i32[2, 3]', 'i32[3, 4]'], error: { message: 'matmul needs float operands, found i32[2, 3] @ i32[3, 4]', help: 'cast the integers to f32 first', operand: 0 } },
    { in: ['f32[2, 3]', 'f16[3, 4]'], error: { message: 'matmul operands have different dtypes: f32[2, 3] @ f16[3, 4]', operand: 1, otherOperand: 0 } },
    { in: ['f32[784]', 'f32[784, 10]'], error: { message: 'matmul needs operands of rank 2 or more: f32[784] @ f32[784, 10]', help: 'make it a row: reshape to [1, 784]', operand: 0 } },
    // transposed operands: A stored [..., k, m], B stored [..., n, k]
    { in: ['f32[784, B]', 'f32[784, 10]'], attrs: { transpose_a: true }, out: ['f32[B, 10]'] },
    { in: ['f32[B, 784]', 'f32[10, 784]'], attrs: { transpose_b: true }, out: ['f32[B, 10]'] },
    { in: ['f32[2, 1, 4, 3]', 'f32[3, 2, 4]'], attrs: { transpose_a: true, transpose_b: true }, out: ['f32[2, 3, 3, 2]'] },
    { in: ['f32[B, 784]', 'f32[784, 10]'], attrs: { transpose_a: false }, out: ['f32[B, 10]'] },
    {
      in: ['f32[B, 784]', 'f32[784, 10]'],
      attrs: { transpose_b: true },
      error: { message: 'matmul inner dimensions differ: f32[B, 784] @ f32[784, 10]', help: 'with transpose_b the inner dimensions are 784 and 10', operand: 0, otherOperand: 1 },
    },
    { in: ['f32[2, 3]', 'f32[3, 4]'], attrs: { transpose_a: 1 }, error: { message: "matmul's transpose_a must be a boolean, found 1" } },
  ]);
  interpTest('matmul', 'transpose_a and transpose_b read the operands transposed: the same numbers as explicit transposes', () => {
    const a = seeded([2, 1, 4, 3], 3);
    const b = seeded([3, 5, 4], 4);
    const t = (x: Tensor) => run1('transpose', [x], { perm: x.shape.map((_, i) => (i === x.shape.length - 2 ? i + 1 : i === x.shape.length - 1 ? i - 1 : i)) });
    const want = run1('matmul', [t(a), t(b)]);
    expect(run1('matmul', [a, b], { transpose_a: true, transpose_b: true })).toEqual(want);
    expect(run1('matmul', [a, t(b)], { transpose_a: true })).toEqual(want);
    expect(run1('matmul', [t(a), b], { transpose_b: true })).toEqual(want);
  });
  interpTest('matmul', 'matmul of small matrices by hand', () => {
    const r = run1('matmul', [f32([2, 3], [1, 2, 3, 4, 5, 6]), f32([3, 2], [7, 8, 9, 10, 11, 12])]);
    exact(r, [2, 2], [58, 64, 139, 154]);
  });
  interpTest('matmul', 'batched matmul broadcasts the batch against a naive loop', () => {
    const a = seeded([2, 1, 3, 4], 1);
    const b = seeded([3, 4, 5], 2);
    const r = run1('matmul', [a, b]);
    expect(r.shape).toEqual([2, 3, 3, 5]);
    for (let p = 0; p < 2; p++)
      for (let q = 0; q < 3; q++)
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 5; j++) {
            let s = 0;
            for (let k = 0; k < 4; k++) s += a.data[p * 12 + i * 4 + k] * b.data[q * 20 + k * 5 + j];
            expect(r.data[((p * 3 + q) * 3 + i) * 5 + j]).toBeCloseTo(s, 12);
          }
  });
});

// =====================================================================================================
describe('reductions', () => {
  for (const op of ['reduce_sum', 'reduce_max']) {
    shapeTable(op, [
      { in: ['f32[B, T, 4]'], attrs: { axes: [1] }, out: ['f32[B, 4]'] },
      { in: ['f32[B, T, 4]'], attrs: { axes: [-1, 0], keepdims: true }, out: ['f32[1, T, 1]'] },
      { in: ['i32[3, 4]'], attrs: { axes: [0, 1] }, out: ['i32[]'] },
      { in: ['f32[3]'], attrs: { axes: [] }, out: ['f32[3]'] },
      { in: ['f32[3, 4]'], attrs: { axes: [2] }, error: { message: `${op} axis 2 is out of range for f32[3, 4]`, operand: 0 } },
      { in: ['f32[3, 4]'], attrs: { axes: [1, -1] }, error: { message: `${op} axis -1 is repeated` } },
      { in: ['bool[3]'], attrs: { axes: [0] }, error: { message: `${op} needs a numeric tensor, found bool[3]` } },
      { in: ['f32[3]'], error: { message: `${op} needs the attribute axes` } },
    ]);
  }
  shapeTable('argmax', [
    { in: ['f32[B, 10]'], attrs: { axis: -1 }, out: ['i32[B]'] },
    { in: ['f32[B, T, 5]'], attrs: { axis: 1 }, out: ['i32[B, 5]'] },
    { in: ['f32[B, 10]'], attrs: { axis: 2 }, error: { message: 'argmax axis 2 is out of range for f32[B, 10]' } },
  ]);
  const x = f32([2, 3], [1, 5, 2, 7, -1, 7]);
  interpTest('reduce_sum', 'reduce_sum over axes, with and without keepdims', () => {
    exact(run1('reduce_sum', [x], { axes: [1] }), [2], [8, 13]);
    exact(run1('reduce_sum', [x], { axes: [0], keepdims: true }), [1, 3], [8, 4, 9]);
    exact(run1('reduce_sum', [x], { axes: [0, 1] }), [], [21]);
    exact(run1('reduce_sum', [i32([2], [2147483647, 1])], { axes: [0] }), [], [-2147483648]);
  });
  interpTest('reduce_max', 'reduce_max over axes', () => {
    exact(run1('reduce_max', [x], { axes: [1] }), [2], [5, 7]);
    exact(run1('reduce_max', [x], { axes: [-2], keepdims: true }), [1, 3], [7, 5, 7]);
    const y = seeded([3, 4, 5], 3);
    const r = run1('reduce_max', [y], { axes: [0, 2] });
    for (let j = 0; j < 4; j++) {
      let m = -Infinity;
      for (let i = 0; i < 3; i++) for (let k = 0; k < 5; k++) m = Math.max(m, y.data[i * 20 + j * 5 + k]);
      expect(r.data[j]).toBe(m);
    }
  });
  interpTest('argmax', 'argmax takes the first of equal maxima', () => {
    exact(run1('argmax', [x], { axis: 1 }), [2], [1, 0]);
    exact(run1('argmax', [x], { axis: 0 }), [3], [1, 0, 1]);
  });
  interpTest('argmax', "argmax points at the first NaN, as torch.argmax (max is NaN there too); 0 for a row of -inf", () => {
    exact(run1('argmax', [f32([3, 4], [1, NaN, 3, NaN, NaN, 1, 2, 3, -Infinity, -Infinity, -Infinity, -Infinity])], { axis: 1 }), [3], [1, 0, 0]);
  });
  shapeTable('cumsum', [
    { in: ['f32[B, 10]'], attrs: { axis: -1 }, out: ['f32[B, 10]'] },
    { in: ['i32[B, T, 5]'], attrs: { axis: 1, reverse: true }, out: ['i32[B, T, 5]'] },
    { in: ['f32[B, 10]'], attrs: { axis: 2 }, error: { message: 'cumsum axis 2 is out of range for f32[B, 10]' } },
    { in: ['bool[4]'], attrs: { axis: 0 }, error: { message: 'cumsum needs a numeric tensor, found bool[4]' } },
  ]);
  interpTest('cumsum', 'cumsum sums each prefix along the axis, or each suffix when reversed; integers wrap', () => {
    exact(run1('cumsum', [x], { axis: 1 }), [2, 3], [1, 6, 8, 7, 6, 13]);
    exact(run1('cumsum', [x], { axis: 0 }), [2, 3], [1, 5, 2, 8, 4, 9]);
    exact(run1('cumsum', [x], { axis: -1, reverse: true }), [2, 3], [8, 7, 2, 13, 6, 7]);
    exact(run1('cumsum', [i32([3], [2147483647, 1, 1])], { axis: 0 }), [3], [2147483647, -2147483648, -2147483647]);
  });
});

// =====================================================================================================
describe('movement', () => {
  shapeTable('reshape', [
    { in: ['f32[2, 3]'], attrs: { shape: [3, 2] }, out: ['f32[3, 2]'] },
    { in: ['f32[2, 3, 4]'], attrs: { shape: [-1, 4] }, out: ['f32[6, 4]'] },
    { in: ['f32[B, 1, 28, 28]'], attrs: { shape: [B, -1] }, out: ['f32[B, 784]'] },
    { in: ['f32[B, T, 64]'], attrs: { shape: [-1, 64] }, out: [{ dtype: 'f32', shape: [mul(B, T), 64] }] },
    { in: ['f32[B, T, 64]'], attrs: { shape: [B, T, 8, 8] }, out: ['f32[B, T, 8, 8]'] },
    { in: ['f32[2, 3]'], attrs: { shape: [4, 2] }, error: { message: 'reshape changes the number of elements: f32[2, 3] to [4, 2]', help: 'the input has 6 elements, the target 8', operand: 0 } },
    { in: ['f32[2, 3]'], attrs: { shape: [-1, -1] }, error: { message: 'reshape can infer only one size: f32[2, 3] to [-1, -1]' } },
    { in: ['f32[2, 3]'], attrs: { shape: [-1, 4] }, error: { message: 'reshape changes the number of elements: f32[2, 3] to [-1, 4]' } },
    { in: ['f32[B, 3]'], attrs: { shape: [T, 3] }, error: { message: 'reshape changes the number of elements: f32[B, 3] to [T, 3]' } },
    { in: ['f32[B, 6]'], attrs: { shape: [T, -1] }, error: { message: 'reshape cannot infer the -1 size: f32[B, 6] to [T, -1]', help: 'write every size out' } },
  ]);
  shapeTable('transpose', [
    { in: ['f32[B, T, 4]'], attrs: { perm: [0, 2, 1] }, out: ['f32[B, 4, T]'] },
    { in: ['f32[2, 3]'], attrs: { perm: [1, 1] }, error: { message: 'transpose perm [1, 1] is not a permutation of the 2 axes of f32[2, 3]' } },
    { in: ['f32[2, 3]'], attrs: { perm: [1, 0, 2] }, error: { message: 'transpose perm [1, 0, 2] is not a permutation of the 2 axes of f32[2, 3]' } },
  ]);
  shapeTable('broadcast_to', [
    { in: ['f32[3]'], attrs: { shape: [B, 3] }, out: ['f32[B, 3]'] },
    { in: ['f32[1, 1]'], attrs: { shape: [B, T] }, out: ['f32[B, T]'] },
    { in: ['f32[B, 1]'], attrs: { shape: [B, 5] }, out: ['f32[B, 5]'] },
    { in: ['f32[2]'], attrs: { shape: [B, 3] }, error: { message: 'broadcast_to cannot broadcast f32[2] to [B, 3]' } },
    { in: ['f32[2, 3]'], attrs: { shape: [3] }, error: { message: 'broadcast_to cannot broadcast f32[2, 3] to [3]' } },
  ]);
  shapeTable('slice', [
    { in: ['f32[10, 4]'], attrs: { starts: [2, 0], stops: [8, null], steps: [2, 1] }, out: ['f32[3, 4]'] },
    { in: ['f32[10]'], attrs: { starts: [-3], stops: [null], steps: [1] }, out: ['f32[3]'] },
    { in: ['f32[10]'], attrs: { starts: [5], stops: [100] }, out: ['f32[5]'] },
    { in: ['f32[10]'], attrs: { starts: [8], stops: [2] }, out: ['f32[0]'] },
    { in: ['f32[B, T]'], attrs: { starts: [0, 1], stops: [null, null], steps: [1, 1] }, out: [{ dtype: 'f32', shape: [B, sub(T, 1)] }] },
    { in: ['f32[T]'], attrs: { starts: [0], stops: [-1], steps: [1] }, out: [{ dtype: 'f32', shape: [sub(T, 1)] }] },
    { in: ['f32[T]'], attrs: { starts: [0], stops: [null], steps: [2] }, out: [{ dtype: 'f32', shape: [floorDiv(add(T, 1), 2)] }] },
    { in: ['f32[10]'], attrs: { starts: [0], stops: [5], steps: [-1] }, error: { message: 'slice steps must be positive integers' } },
    { in: ['f32[10, 4]'], attrs: { starts: [0], stops: [5] }, error: { message: 'slice needs starts, stops and steps for each of the 2 axes of f32[10, 4]' } },
  ]);
  shapeTable('concat', [
    { in: ['f32[B, 3]', 'f32[B, 5]'], attrs: { axis: 1 }, out: ['f32[B, 8]'] },
    { in: ['f32[B, 3]', 'f32[T, 3]'], attrs: { axis: 0 }, out: [{ dtype: 'f32', shape: [add(B, T), 3] }] },
    { in: ['f32[2]'], attrs: { axis: 0 }, out: ['f32[2]'] },
    { in: ['f32[B, 3]', 'f32[B, 5]', 'f32[4, 5]'], attrs: { axis: 1 }, error: { message: 'concat shapes differ off axis 1: f32[B, 3] and f32[4, 5]', operand: 2, otherOperand: 0 } },
    { in: ['f32[3]', 'i32[3]'], attrs: { axis: 0 }, error: { message: 'concat operands have different dtypes: f32[3] and i32[3]' } },
    { in: ['f32[3]'], attrs: { axis: 1 }, error: { message: 'concat axis 1 is out of range for f32[3]' } },
    { in: [], attrs: { axis: 0 }, error: { message: 'concat takes at least 1 operands, found 0' } },
  ]);
  shapeTable('pad', [
    { in: ['f32[B, 3, 4]'], attrs: { before: [0, 1, 2], after: [0, 1, 0], value: 0 }, out: [{ dtype: 'f32', shape: [B, 5, 6] }] },
    { in: ['f32[T]'], attrs: { before: [2], after: [1] }, out: [{ dtype: 'f32', shape: [add(T, 3)] }] },
    { in: ['f32[3]'], attrs: { before: [-1], after: [0] }, error: { message: 'pad needs before and after: 1 non-negative integers for f32[3]' } },
  ]);

  const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  interpTest('reshape', 'reshape keeps row-major order and fills a symbolic size', () => {
    exact(run1('reshape', [x], { shape: [3, -1] }), [3, 2], [1, 2, 3, 4, 5, 6]);
    exact(run1('reshape', [x], { shape: [B, 3] }, new Map([['B', 2]])), [2, 3], [1, 2, 3, 4, 5, 6]);
  });
  interpTest('transpose', 'transpose by hand and a 3-D permutation', () => {
    exact(run1('transpose', [x], { perm: [1, 0] }), [3, 2], [1, 4, 2, 5, 3, 6]);
    const y = seeded([2, 3, 4], 5);
    const r = run1('transpose', [y], { perm: [2, 0, 1] });
    expect(r.shape).toEqual([4, 2, 3]);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expect(r.data[k * 6 + i * 3 + j]).toBe(y.data[i * 12 + j * 4 + k]);
  });
  interpTest('broadcast_to', 'broadcast_to repeats size-1 and missing axes', () => {
    exact(run1('broadcast_to', [f32([2, 1], [1, 2])], { shape: [2, 3] }), [2, 3], [1, 1, 1, 2, 2, 2]);
    exact(run1('broadcast_to', [f32([2], [1, 2])], { shape: [B, 2] }, new Map([['B', 2]])), [2, 2], [1, 2, 1, 2]);
  });
  interpTest('slice', 'slice with steps, negative starts and open stops', () => {
    const v = f32([10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    exact(run1('slice', [v], { starts: [1], stops: [8], steps: [3] }), [3], [1, 4, 7]);
    exact(run1('slice', [v], { starts: [-3], stops: [null], steps: [1] }), [3], [7, 8, 9]);
    exact(run1('slice', [v], { starts: [8], stops: [2], steps: [1] }), [0], []);
    exact(run1('slice', [x], { starts: [1, 0], stops: [2, 3], steps: [1, 2] }), [1, 2], [4, 6]);
  });
  interpTest('concat', 'concat along inner and outer axes', () => {
    exact(run1('concat', [x, f32([2, 1], [9, 8])], { axis: 1 }), [2, 4], [1, 2, 3, 9, 4, 5, 6, 8]);
    exact(run1('concat', [x, f32([1, 3], [7, 8, 9]), x], { axis: 0 }), [5, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6]);
  });
  interpTest('pad', 'pad with a value before and after', () => {
    exact(run1('pad', [x], { before: [1, 0], after: [0, 1], value: -1 }), [3, 4], [-1, -1, -1, -1, 1, 2, 3, -1, 4, 5, 6, -1]);
  });
});

// =====================================================================================================
describe('gather and scatter', () => {
  shapeTable('take', [
    { in: ['f32[1000, 64]', 'i32[B, T]'], attrs: { axis: 0 }, out: ['f32[B, T, 64]'] },
    { in: ['f32[4, 5, 6]', 'i32[2]'], attrs: { axis: 1 }, out: ['f32[4, 2, 6]'] },
    { in: ['f32[4, 5]', 'i32[]'], attrs: { axis: -1 }, out: ['f32[4]'] },
    { in: ['f32[1000, 64]', 'f32[B, T]'], attrs: { axis: 0 }, error: { message: 'take needs integer indices, found f32[B, T]', help: 'cast the indices to i32', operand: 1, otherOperand: 0 } },
    { in: ['f32[1000, 64]', 'i32[B]'], attrs: { axis: 2 }, error: { message: 'take axis 2 is out of range for f32[1000, 64]' } },
  ]);
  shapeTable('take_along_axis', [
    { in: ['f32[B, 10]', 'i32[B, 1]'], attrs: { axis: 1 }, out: ['f32[B, 1]'] },
    { in: ['f32[B, T, 10]', 'u32[B, T, 3]'], attrs: { axis: -1 }, out: ['f32[B, T, 3]'] },
    { in: ['f32[B, 10]', 'i32[B]'], attrs: { axis: 1 }, error: { message: 'take_along_axis needs indices of the same rank as the array: f32[B, 10] and i32[B]', help: 'add the axis: reshape the indices to [B, 1]' } },
    { in: ['f32[B, 10]', 'i32[T, 1]'], attrs: { axis: 1 }, error: { message: 'take_along_axis indices differ from the array off axis 1: f32[B, 10] and i32[T, 1]' } },
    { in: ['f32[B, 10]', 'f32[B, 1]'], attrs: { axis: 1 }, error: { message: 'take_along_axis needs integer indices, found f32[B, 1]' } },
  ]);
  shapeTable('scatter_add', [
    { in: ['f32[B, T, 64]', 'i32[B, T]'], attrs: { axis: 0, size: 1000 }, out: ['f32[1000, 64]'] },
    { in: ['f32[4, 2, 6]', 'i32[2]'], attrs: { axis: 1, size: 5 }, out: ['f32[4, 5, 6]'] },
    { in: ['f32[B, 64]', 'i32[T]'], attrs: { axis: 0, size: 1000 }, error: { message: 'scatter_add indices do not match the updates at axis 0: f32[B, 64] and i32[T]', operand: 0, otherOperand: 1 } },
    { in: ['f32[B, 64]', 'f32[B]'], attrs: { axis: 0, size: 1000 }, error: { message: 'scatter_add needs integer indices, found f32[B]' } },
  ]);
  shapeTable('index_order', [
    { in: ['i32[B]'], attrs: { size: 1000 }, out: ['i32[B]'] },
    { in: ['i32[2, 3]'], attrs: { size: 1000 }, out: ['i32[6]'] },
    { in: ['u32[5]'], attrs: { size: 3 }, out: ['i32[5]'] },
    { in: ['f32[B]'], attrs: { size: 3 }, error: { message: 'index_order needs integer indices, found f32[B]' } },
    { in: ['i32[B]'], attrs: { size: 0 }, error: { message: 'index_order size must be a positive integer, found 0' } },
  ]);
  shapeTable('sorted_scatter_add', [
    { in: ['f32[B, 64]', 'i32[B]', 'i32[B]'], attrs: { axis: 0, size: 1000 }, out: ['f32[1000, 64]'] },
    { in: ['f32[2, 3, 64]', 'i32[2, 3]', 'i32[6]'], attrs: { axis: 0, size: 1000 }, out: ['f32[1000, 64]'] },
    { in: ['f32[4, 2, 6]', 'i32[2]', 'i32[2]'], attrs: { axis: 1, size: 5 }, out: ['f32[4, 5, 6]'] },
    { in: ['f32[4, 2, 6]', 'i32[2]', 'i32[3]'], attrs: { axis: 1, size: 5 }, error: { message: "sorted_scatter_add needs the indices' order as i32[2], found i32[3]", operand: 2, otherOperand: 1 } },
    { in: ['f32[B, 64]', 'f32[B]', 'i32[B]'], attrs: { axis: 0, size: 1000 }, error: { message: 'sorted_scatter_add needs integer indices, found f32[B]' } },
  ]);
  shapeTable('one_hot', [
    { in: ['i32[B]'], attrs: { depth: 10 }, out: ['f32[B, 10]'] },
    { in: ['u32[B, T]'], attrs: { depth: 5, dtype: 'i32' }, out: ['i32[B, T, 5]'] },
    { in: ['f32[B]'], attrs: { depth: 10 }, error: { message: 'one_hot needs integer indices, found f32[B]' } },
    { in: ['i32[B]'], attrs: { depth: 0 }, error: { message: 'one_hot depth must be a positive integer, found 0' } },
  ]);
  const table = f32([4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
  interpTest('take', 'take rows (embeddings), clamping out-of-range indices', () => {
    exact(run1('take', [table, i32([2, 2], [3, 0, 1, 1])], { axis: 0 }), [2, 2, 2], [30, 31, 0, 1, 10, 11, 10, 11]);
    exact(run1('take', [table, i32([3], [1, 0, 1])], { axis: 1 }), [4, 3], [1, 0, 1, 11, 10, 11, 21, 20, 21, 31, 30, 31]);
    exact(run1('take', [table, i32([2], [-5, 99])], { axis: 0 }), [2, 2], [0, 1, 30, 31]);
  });
  interpTest('take_along_axis', 'take_along_axis picks the labelled class per row', () => {
    const logits = f32([3, 4], [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);
    exact(run1('take_along_axis', [logits, i32([3, 1], [2, 0, 3])], { axis: 1 }), [3, 1], [2, 10, 23]);
    exact(run1('take_along_axis', [logits, i32([1, 4], [2, 0, 1, 2])], { axis: 0 }), [1, 4], [20, 1, 12, 23]);
  });
  interpTest('scatter_add', 'scatter_add accumulates repeated indices and is the transpose of take', () => {
    const idx = i32([3], [2, 0, 2]);
    exact(run1('scatter_add', [f32([3, 2], [1, 2, 3, 4, 5, 6]), idx], { axis: 0, size: 4 }), [4, 2], [3, 4, 0, 0, 6, 8, 0, 0]);
    // <take(x), y> == <x, scatter_add(y)> for random x, y: the defining property of a transpose.
    const x = seeded([5, 3], 7);
    const y = seeded([2, 2, 3], 8);
    const ix = i32([2, 2], [4, 0, 4, 2]);
    const tx = run1('take', [x, ix], { axis: 0 });
    const sy = run1('scatter_add', [y, ix], { axis: 0, size: 5 });
    const dot = (p: Tensor, q: Tensor) => p.data.reduce((s, v, i) => s + v * q.data[i], 0);
    expect(dot(tx, y)).toBeCloseTo(dot(x, sy), 12);
  });
  interpTest('index_order', 'index_order sorts clamped indices stably: ties keep their positions', () => {
    exact(run1('index_order', [i32([6], [2, 0, 2, -3, 9, 0])], { size: 4 }), [6], [1, 3, 5, 0, 2, 4]);
    exact(run1('index_order', [i32([2, 2], [1, 1, 1, 1])], { size: 2 }), [4], [0, 1, 2, 3]);
  });
  interpTest('sorted_scatter_add', 'sorted_scatter_add with index_order is scatter_add exactly, on any axis', () => {
    for (const [upd, ix, axis, size] of [
      [seeded([6, 3], 21), i32([6], [2, 0, 2, -3, 9, 0]), 0, 4],
      [seeded([2, 3, 2, 4], 22), i32([3, 2], [1, 1, 0, 4, 1, 7]), 1, 5],
      [seeded([3, 5], 23), i32([5], [0, 0, 0, 0, 0]), 1, 2],
    ] as const) {
      const order = run1('index_order', [ix], { size });
      const want = run1('scatter_add', [upd, ix], { axis, size });
      exact(run1('sorted_scatter_add', [upd, ix, order], { axis, size }), [...want.shape], [...want.data]);
    }
  });
  interpTest('sorted_scatter_add', 'sorted_scatter_add with an order that is not the sorted one: clamped reads, the searches as written', () => {
    // the keys in this order are idx[1] = 0, idx[0] = 2, idx[2] = 1 (order[2] = 7 clamps to 2): not sorted
    const upd = f32([3, 1], [1, 10, 100]);
    // row 0: [0, 1); row 1: the first key >= 1 is at 1 (the 2), the last <= 1 search goes on from there to 3; row 2 the same
    exact(run1('sorted_scatter_add', [upd, i32([3], [2, 0, 1]), i32([3], [1, 0, 7])], { axis: 0, size: 3 }), [3, 1], [10, 101, 101]);
  });
  interpTest('one_hot', 'one_hot rows, with out-of-range indices all zero', () => {
    exact(run1('one_hot', [i32([3], [0, 2, 5])], { depth: 3 }), [3, 3], [1, 0, 0, 0, 0, 1, 0, 0, 0]);
  });
  interpTest('one_hot', 'one_hot rows with clamp: an out-of-range index gives the nearest row', () => {
    exact(run1('one_hot', [i32([4], [0, -1, 5, 1])], { depth: 3, clamp: true }), [4, 3], [1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0]);
  });
});

// =====================================================================================================
// Independent naive references: explicit zero-padded copies, no shared index helpers with the registry.
function naiveConv2d(x: Tensor, w: Tensor, s: number[], p: number[], d: number[], groups: number): { shape: number[]; data: number[] } {
  const [N, C, H, W] = x.shape;
  const [O, CG, KH, KW] = w.shape;
  const Hp = H + 2 * p[0];
  const Wp = W + 2 * p[1];
  const padded = (n: number, c: number, h: number, ww: number) => {
    const ih = h - p[0];
    const iw = ww - p[1];
    return ih < 0 || ih >= H || iw < 0 || iw >= W ? 0 : x.data[n * C * H * W + c * H * W + ih * W + iw];
  };
  const HO = Math.floor((Hp - d[0] * (KH - 1) - 1) / s[0]) + 1;
  const WO = Math.floor((Wp - d[1] * (KW - 1) - 1) / s[1]) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < HO; i++)
        for (let j = 0; j < WO; j++) {
          let acc = 0;
          const g = Math.floor(o / (O / groups));
          for (let c = 0; c < CG; c++)
            for (let a = 0; a < KH; a++)
              for (let b = 0; b < KW; b++) acc += padded(n, g * CG + c, i * s[0] + a * d[0], j * s[1] + b * d[1]) * w.data[o * CG * KH * KW + c * KH * KW + a * KW + b];
          out.push(acc);
        }
  return { shape: [N, O, HO, WO], data: out };
}

describe('convolution and pooling', () => {
  shapeTable('conv2d', [
    { in: ['f32[B, 3, 32, 32]', 'f32[16, 3, 3, 3]'], attrs: { padding: [1, 1] }, out: ['f32[B, 16, 32, 32]'] },
    { in: ['f32[B, 3, 32, 32]', 'f32[16, 3, 5, 5]'], attrs: { stride: [2, 2] }, out: ['f32[B, 16, 14, 14]'] },
    { in: ['f32[B, 4, 9, 9]', 'f32[8, 2, 3, 3]'], attrs: { dilation: [2, 2], groups: 2 }, out: ['f32[B, 8, 5, 5]'] },
    {
      in: ['f32[B, 3, H, W]', 'f32[16, 3, 3, 3]'],
      attrs: { stride: [2, 2], padding: [1, 1] },
      out: [{ dtype: 'f32', shape: [B, 16, add(floorDiv(sub(sym('H'), 1), 2), 1), add(floorDiv(sub(sym('W'), 1), 2), 1)] }],
    },
    { in: ['f32[B, 3, 32, 32]', 'f32[16, 4, 3, 3]'], error: { message: 'conv2d input channels differ from the weights: f32[B, 3, 32, 32] and f32[16, 4, 3, 3]', operand: 0, otherOperand: 1 } },
    { in: ['f32[B, 3, 32, 32]', 'f32[3, 16, 3, 3]'], error: { message: 'conv2d input channels differ from the weights: f32[B, 3, 32, 32] and f32[3, 16, 3, 3]', help: 'the weights look like IOHW: conv2d takes OIHW [out, in, kh, kw]' } },
    { in: ['f32[3, 32, 32]', 'f32[16, 3, 3, 3]'], error: { message: 'conv2d needs an NCHW input of rank 4, found f32[3, 32, 32]', help: 'add a batch axis: reshape to [1, C, H, W]' } },
    // the input (the user's expression) leads, with the sizes compared: padding and dilation included
    { in: ['f32[B, 3, 2, 2]', 'f32[16, 3, 3, 3]'], error: { message: 'conv2d kernel 3 × 3 is larger than the padded input 2 × 2: f32[B, 3, 2, 2] and f32[16, 3, 3, 3]', operand: 0, otherOperand: 1 } },
    { in: ['f32[B, 3, 4, 9]', 'f32[16, 3, 3, 3]'], attrs: { padding: [0, 1], dilation: [2, 1] }, error: { message: 'conv2d kernel 3 (dilated: 5) × 3 is larger than the padded input 4 × 11 (padding 1): f32[B, 3, 4, 9] and f32[16, 3, 3, 3]' } },
    // with groups, the product the weights need
    { in: ['f32[B, 6, 8, 8]', 'f32[8, 2, 3, 3]'], attrs: { groups: 4 }, error: { message: 'conv2d input channels differ from the weights (with groups 4, weights of 2 input channels per group take 8 input channels, and the input has 6): f32[B, 6, 8, 8] and f32[8, 2, 3, 3]', operand: 0, otherOperand: 1 } },
    { in: ['f32[B, 4, 8, 8]', 'f32[6, 1, 3, 3]'], attrs: { groups: 4 }, error: { message: 'conv2d output channels 6 are not divisible by groups 4' } },
    { in: ['i32[B, 3, 8, 8]', 'i32[6, 3, 3, 3]'], error: { message: 'conv2d needs float operands of one dtype: i32[B, 3, 8, 8] and i32[6, 3, 3, 3]' } },
  ]);
  shapeTable('conv_transpose2d', [
    { in: ['f32[B, 16, 7, 7]', 'f32[16, 8, 4, 4]'], attrs: { stride: [2, 2], padding: [1, 1] }, out: ['f32[B, 8, 14, 14]'] },
    { in: ['f32[B, 16, 7, 7]', 'f32[16, 8, 3, 3]'], attrs: { stride: [2, 2], padding: [1, 1], output_padding: [1, 1] }, out: ['f32[B, 8, 14, 14]'] },
    { in: ['f32[B, 4, 5, 5]', 'f32[4, 3, 3, 3]'], attrs: { groups: 2, dilation: [2, 2] }, out: ['f32[B, 6, 9, 9]'] },
    { in: ['f32[B, 16, 7, 7]', 'f32[8, 16, 4, 4]'], error: { message: 'conv_transpose2d input channels differ from the weights: f32[B, 16, 7, 7] and f32[8, 16, 4, 4]', help: 'conv_transpose2d takes IOHW weights [in, out, kh, kw]' } },
    { in: ['f32[B, 16, 7, 7]', 'f32[16, 8, 3, 3]'], attrs: { output_padding: [1, 1] }, error: { message: 'conv_transpose2d output_padding must be smaller than the stride or the dilation' } },
  ]);
  for (const op of ['max_pool2d', 'avg_pool2d']) {
    shapeTable(op, [
      { in: ['f32[B, 16, 32, 32]'], attrs: { kernel: [2, 2] }, out: ['f32[B, 16, 16, 16]'] },
      { in: ['f32[B, 16, 7, 7]'], attrs: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, out: ['f32[B, 16, 4, 4]'] },
      { in: ['f32[B, 16, 7]'], attrs: { kernel: [2, 2] }, error: { message: `${op} needs an NCHW input of rank 4, found f32[B, 16, 7]` } },
      { in: ['f32[B, 16, 7, 7]'], attrs: { kernel: [2, 2], padding: [2, 2] }, error: { message: `${op} padding must be at most half the kernel` } },
      { in: ['f32[B, 1, 1, 1]'], attrs: { kernel: [2, 2] }, error: { message: `${op} kernel is larger than the padded input: f32[B, 1, 1, 1] with kernel [2, 2]` } },
      // ceil_mode (PyTorch's): a last, partial window; none that would start past the input and its left padding
      { in: ['f32[B, 16, 6, 5]'], attrs: { kernel: [3, 2], stride: [2, 2], padding: [1, 0], ceil_mode: true }, out: ['f32[B, 16, 4, 3]'] },
      { in: ['f32[B, 1, 5, 5]'], attrs: { kernel: [2, 2], stride: [3, 3], padding: [1, 1], ceil_mode: true }, out: ['f32[B, 1, 2, 2]'] },
      { in: ['f32[B, 1, H, 4]'], attrs: { kernel: [2, 2], ceil_mode: true }, error: { message: `${op} with ceil_mode needs concrete spatial sizes, found f32[B, 1, H, 4]` } },
    ]);
  }

  interpTest('conv2d', 'conv2d matches a naive loop over stride, padding, dilation and groups', () => {
    const configs = [
      { x: [2, 3, 6, 7], w: [4, 3, 3, 3], s: [1, 1], p: [0, 0], d: [1, 1], g: 1 },
      { x: [1, 2, 7, 7], w: [3, 2, 3, 2], s: [2, 1], p: [1, 2], d: [1, 1], g: 1 },
      { x: [1, 4, 9, 8], w: [6, 2, 3, 3], s: [1, 2], p: [2, 1], d: [2, 1], g: 2 },
    ];
    configs.forEach((c, i) => {
      const x = seeded(c.x, 10 + i);
      const w = seeded(c.w, 20 + i);
      const r = run1('conv2d', [x, w], { stride: c.s, padding: c.p, dilation: c.d, groups: c.g });
      const want = naiveConv2d(x, w, c.s, c.p, c.d, c.g);
      expect(r.shape).toEqual(want.shape);
      close(r, want.data, 1e-12);
    });
  });
  interpTest('conv2d', 'conv2d by hand: a 2x2 kernel on a 3x3 image', () => {
    const r = run1('conv2d', [f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]), f32([1, 1, 2, 2], [1, 0, 0, -1])]);
    exact(r, [1, 1, 2, 2], [-4, -4, -4, -4]);
  });
  interpTest('conv_transpose2d', 'conv_transpose2d is the adjoint of conv2d: <conv(x), y> == <x, convT(y)>', () => {
    const cases = [
      { x: [2, 3, 7, 6], w: [4, 3, 3, 3], s: [2, 2], p: [1, 0], d: [1, 1], g: 1 },
      { x: [1, 4, 9, 9], w: [6, 2, 3, 2], s: [1, 2], p: [2, 1], d: [2, 1], g: 2 },
    ];
    cases.forEach((c, i) => {
      const x = seeded(c.x, 30 + i);
      const w = seeded(c.w, 40 + i);
      const cx = run1('conv2d', [x, w], { stride: c.s, padding: c.p, dilation: c.d, groups: c.g });
      const y = seeded([...cx.shape], 50 + i);
      // conv2d weights OIHW with groups read as IOHW for the transpose: [O, C/g] -> per group [O/g, C/g] swapped.
      const [O, CG, KH, KW] = c.w;
      const G = c.g;
      const OG = O / G;
      const wt = new Array<number>(w.data.length);
      for (let g = 0; g < G; g++)
        for (let o = 0; o < OG; o++)
          for (let ci = 0; ci < CG; ci++)
            for (let k = 0; k < KH * KW; k++) wt[((g * OG + o) * CG + ci) * KH * KW + k] = w.data[((g * OG + o) * CG + ci) * KH * KW + k];
      // IOHW for convT with C_in = O: element [o, ci] = conv weight [o, ci]; the layouts coincide.
      const wT = tensor('f32', [O, CG, KH, KW], wt);
      const outPad = [0, 1].map((a) => (c.x[2 + a] + 2 * c.p[a] - c.d[a] * ((a ? KW : KH) - 1) - 1) % c.s[a]);
      const ty2 = run1('conv_transpose2d', [y, wT], { stride: c.s, padding: c.p, dilation: c.d, groups: G, output_padding: outPad });
      expect(ty2.shape).toEqual(c.x);
      const dot = (p: ArrayLike<number>, q: ArrayLike<number>) => Array.from(p).reduce((s, v, k) => s + v * q[k], 0);
      expect(dot(cx.data, y.data)).toBeCloseTo(dot(x.data, ty2.data), 10);
    });
  });
  interpTest('conv_transpose2d', 'conv_transpose2d by hand: stride 2 spreads each pixel', () => {
    const r = run1('conv_transpose2d', [f32([1, 1, 2, 2], [1, 2, 3, 4]), f32([1, 1, 2, 2], [1, 1, 1, 1])], { stride: [2, 2] });
    exact(r, [1, 1, 4, 4], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });
  const img = f32([1, 1, 4, 4], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, -16]);
  interpTest('max_pool2d', 'max_pool2d by hand, padding never wins', () => {
    exact(run1('max_pool2d', [img], { kernel: [2, 2] }), [1, 1, 2, 2], [6, 8, 14, 15]);
    exact(run1('max_pool2d', [f32([1, 1, 2, 2], [-1, -2, -3, -4])], { kernel: [2, 2], stride: [1, 1], padding: [1, 1] }), [1, 1, 3, 3], [-1, -1, -2, -1, -1, -2, -3, -3, -4]);
  });
  interpTest('avg_pool2d', 'avg_pool2d by hand, excluding padding from the count', () => {
    exact(run1('avg_pool2d', [img], { kernel: [2, 2] }), [1, 1, 2, 2], [3.5, 5.5, 11.5, 5.5]);
    // count_include_pad = false: the corner window sees one real pixel and divides by 1.
    exact(run1('avg_pool2d', [f32([1, 1, 2, 2], [1, 2, 3, 4])], { kernel: [2, 2], stride: [1, 1], padding: [1, 1] }), [1, 1, 3, 3], [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
  });
  interpTest(['max_pool2d', 'avg_pool2d'], "ceil_mode and count_include_pad by hand, PyTorch's values", () => {
    // torch.nn.MaxPool2d(2, stride=2, ceil_mode=True)(torch.arange(25.).reshape(1, 1, 5, 5))
    const grid = f32([1, 1, 5, 5], Array.from({ length: 25 }, (_, i) => i));
    exact(run1('max_pool2d', [grid], { kernel: [2, 2], ceil_mode: true }), [1, 1, 3, 3], [6, 8, 9, 16, 18, 19, 21, 23, 24]);
    // torch.nn.AvgPool2d(3, stride=2, padding=1)(torch.ones(1, 1, 4, 4)): count_include_pad=True divides by 9 everywhere
    const ones = f32([1, 1, 4, 4], Array(16).fill(1));
    exact(run1('avg_pool2d', [ones], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], count_include_pad: true }), [1, 1, 2, 2], [4 / 9, 6 / 9, 6 / 9, 1]);
    exact(run1('avg_pool2d', [ones], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }), [1, 1, 2, 2], [1, 1, 1, 1]);
    // the part of a ceil-mode window past the (padded) input is never counted, even with count_include_pad
    const nine = f32([1, 1, 3, 3], Array.from({ length: 9 }, (_, i) => i));
    exact(run1('avg_pool2d', [nine], { kernel: [2, 2], ceil_mode: true, count_include_pad: true }), [1, 1, 2, 2], [2, 3.5, 6.5, 8]);
  });
  interpTest(['max_pool2d', 'avg_pool2d'], "ceil_mode and count_include_pad match PyTorch's pooling loop (aten's index arithmetic, written out)", () => {
    const x = seeded([2, 2, 7, 6], 61);
    for (const [kernel, stride, padding] of [[[3, 2], [2, 2], [1, 1]], [[2, 2], [3, 2], [1, 0]], [[3, 3], [2, 3], [1, 1]], [[2, 3], [1, 2], [0, 1]]]) {
      for (const ceil of [false, true]) {
        // aten/src/ATen/native/Pool.h pooling_output_shape
        const extent = (n: number, a: number) => {
          let o = Math.floor((n + 2 * padding[a] - kernel[a] + (ceil ? stride[a] - 1 : 0)) / stride[a]) + 1;
          if (ceil && (o - 1) * stride[a] >= n + padding[a]) o--;
          return o;
        };
        const [HO, WO] = [extent(7, 0), extent(6, 1)];
        for (const [op, countPad] of [['max_pool2d', false], ['avg_pool2d', false], ['avg_pool2d', true]] as const) {
          const r = run1(op, [x], { kernel, stride, padding, ...(ceil ? { ceil_mode: true } : {}), ...(countPad ? { count_include_pad: true } : {}) });
          expect(r.shape).toEqual([2, 2, HO, WO]);
          const want: number[] = [];
          for (let nc = 0; nc < 4; nc++)
            for (let i = 0; i < HO; i++)
              for (let j = 0; j < WO; j++) {
                // aten's AvgPool2d kernel: hend clipped to the padded input gives pool_size, then to the input
                let [hs, ws] = [i * stride[0] - padding[0], j * stride[1] - padding[1]];
                let [he, we] = [Math.min(hs + kernel[0], 7 + padding[0]), Math.min(ws + kernel[1], 6 + padding[1])];
                const poolSize = (he - hs) * (we - ws);
                [hs, ws, he, we] = [Math.max(hs, 0), Math.max(ws, 0), Math.min(he, 7), Math.min(we, 6)];
                const vals: number[] = [];
                for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) vals.push(x.data[nc * 42 + h * 6 + w]);
                const sum = vals.reduce((t, v) => t + v, 0);
                want.push(op === 'max_pool2d' ? Math.max(...vals) : sum / (countPad ? poolSize : (he - hs) * (we - ws)));
              }
          close(r, want, 1e-14);
        }
      }
    }
  });
  interpTest(['max_pool2d', 'avg_pool2d'], 'pools match a naive loop with stride and padding', () => {
    const x = seeded([2, 3, 7, 6], 60);
    for (const op of ['max_pool2d', 'avg_pool2d']) {
      const r = run1(op, [x], { kernel: [3, 2], stride: [2, 2], padding: [1, 1] });
      const HO = Math.floor((7 + 2 - 3) / 2) + 1;
      const WO = Math.floor((6 + 2 - 2) / 2) + 1;
      expect(r.shape).toEqual([2, 3, HO, WO]);
      const want: number[] = [];
      for (let nc = 0; nc < 6; nc++)
        for (let i = 0; i < HO; i++)
          for (let j = 0; j < WO; j++) {
            const vals: number[] = [];
            for (let a = 0; a < 3; a++)
              for (let b = 0; b < 2; b++) {
                const h = i * 2 - 1 + a;
                const w = j * 2 - 1 + b;
                if (h >= 0 && h < 7 && w >= 0 && w < 6) vals.push(x.data[nc * 42 + h * 6 + w]);
              }
            want.push(op === 'max_pool2d' ? Math.max(...vals) : vals.reduce((s, v) => s + v, 0) / vals.length);
          }
      close(r, want, 1e-14);
    }
  });
});

// =====================================================================================================
describe('random', () => {
  for (const op of ['random_uniform', 'random_normal']) {
    shapeTable(op, [
      { in: ['u32[]'], attrs: { shape: [B, 4], stream: 3 }, out: ['f32[B, 4]'] },
      { in: ['u32[]'], attrs: { shape: [2], dtype: 'f16' }, out: ['f16[2]'] },
      { in: ['i32[]'], attrs: { shape: [2] }, error: { message: `${op} needs a u32 scalar key, found i32[]`, operand: 0 } },
      { in: ['u32[2]'], attrs: { shape: [2] }, error: { message: `${op} needs a u32 scalar key, found u32[2]` } },
      { in: ['u32[]'], attrs: { shape: [2], dtype: 'i32' }, error: { message: `${op} makes floats, not i32` } },
      { in: ['u32[]'], attrs: { shape: [2], stream: -1 }, error: { message: `${op} stream must be a u32` } },
    ]);
  }
  it('philox4x32-10 matches the Random123 known-answer vectors', () => {
    const hex = (v: number[]) => v.map((x) => x.toString(16).padStart(8, '0')).join(' ');
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toBe('6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toBe('408f276d 41c83b0e a20bc7c6 6d5451fd');
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toBe('d16cfe09 94fdcceb 5001e420 24126ea1');
  });
  const N = 100_000;
  const key = u32([], [42]);
  interpTest('random_uniform', 'random_uniform: deterministic, streams differ, mean 1/2 in [0, 1)', () => {
    const a = run1('random_uniform', [key], { shape: [N], stream: 0 });
    const b = run1('random_uniform', [key], { shape: [N], stream: 0 });
    const c = run1('random_uniform', [key], { shape: [N], stream: 1 });
    const d = run1('random_uniform', [u32([], [43])], { shape: [N], stream: 0 });
    expect(a.data).toEqual(b.data);
    let same = 0;
    let sameKey = 0;
    let sum = 0;
    let sq = 0;
    let bad = 0;
    for (let i = 0; i < N; i++) {
      const v = a.data[i];
      // In [0, 1) at 24-bit resolution: every value is a multiple of 2^-24.
      if (!(v >= 0 && v < 1) || !Number.isInteger(v * 2 ** 24)) bad++;
      if (v === c.data[i]) same++;
      if (v === d.data[i]) sameKey++;
      sum += v;
      sq += (v - 0.5) ** 2;
    }
    expect(bad).toBe(0);
    expect(same).toBeLessThan(10);
    expect(sameKey).toBeLessThan(10);
    expect(Math.abs(sum / N - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sq / N - 1 / 12)).toBeLessThan(0.002);
    // The element at a flat index does not depend on the shape around it.
    const small = run1('random_uniform', [key], { shape: [2, 3], stream: 0 });
    expect([...small.data]).toEqual([...a.data.subarray(0, 6)]);
  });
  interpTest('random_normal', 'random_normal: deterministic, streams differ, mean 0 and std 1', () => {
    const a = run1('random_normal', [key], { shape: [N], stream: 7 });
    const b = run1('random_normal', [key], { shape: [N], stream: 7 });
    const c = run1('random_normal', [key], { shape: [N], stream: 8 });
    expect(a.data).toEqual(b.data);
    let sum = 0;
    let sq = 0;
    let within1 = 0;
    let same = 0;
    let bad = 0;
    for (let i = 0; i < N; i++) {
      const v = a.data[i];
      if (!Number.isFinite(v)) bad++;
      sum += v;
      sq += v * v;
      if (Math.abs(v) < 1) within1++;
      if (v === c.data[i]) same++;
    }
    const mean = sum / N;
    expect(bad).toBe(0);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(Math.sqrt(sq / N - mean * mean) - 1)).toBeLessThan(0.02);
    expect(Math.abs(within1 / N - 0.6827)).toBeLessThan(0.01);
    expect(same).toBeLessThan(10);
  });
  interpTest('random_uniform', 'random shapes with symbolic sizes evaluate under the bindings', () => {
    const r = run1('random_uniform', [key], { shape: [B, 3] }, new Map([['B', 4]]));
    expect(r.shape).toEqual([4, 3]);
  });
});

// =====================================================================================================
describe('constants and markers', () => {
  shapeTable('full', [
    { in: [], attrs: { shape: [B, 3], value: 0.5 }, out: ['f32[B, 3]'] },
    { in: [], attrs: { shape: [], value: 7, dtype: 'i32' }, out: ['i32[]'] },
    { in: [], attrs: { shape: [2], value: 1, dtype: 'f64' }, error: { message: 'full dtype must be one of f32, f16, i32, u32, bool' } },
    { in: ['f32[2]'], attrs: { shape: [2], value: 1 }, error: { message: 'full takes 0 operands, found 1' } },
  ]);
  shapeTable('iota', [
    { in: [], attrs: { shape: [B, T], axis: 1 }, out: ['i32[B, T]'] },
    { in: [], attrs: { shape: [4], dtype: 'f32' }, out: ['f32[4]'] },
    { in: [], attrs: { shape: [4], axis: 1 }, error: { message: 'iota axis 1 is out of range for a rank-1 shape' } },
    { in: [], attrs: { shape: [4], dtype: 'bool' }, error: { message: 'iota dtype must be numeric (f32, f16, i32 or u32)' } },
  ]);
  shapeTable('sum_squares', [
    { in: ['f32[B, T]', 'f32[3]', 'f32[]'], out: ['f32[64]'] },
    { in: ['f32[2]'], out: ['f32[64]'] },
    { in: ['f32[2]', 'i32[2]'], error: { message: 'sum_squares needs f32 tensors, found i32[2]', operand: 1 } },
    { in: Array.from({ length: 8 }, () => 'f32[2]'), error: { message: 'sum_squares takes at most 7 operands (one kernel binds at most 8 storage buffers), found 8' } },
    { in: [], error: { message: 'sum_squares takes at least 1 operands, found 0' } },
  ]);
  interpTest('sum_squares', 'sum_squares adds the squares of element e of every operand into partial floor(e / 256) mod 64', () => {
    const want = new Array(64).fill(0);
    want[0] = 9 + 16 + 4 + 0.25 + 1;
    exact(run1('sum_squares', [f32([2], [3, -4]), f32([], [2]), f32([2, 1], [0.5, -1])]), [64], want);
    const long = f32([256 * 65 + 3], Array.from({ length: 256 * 65 + 3 }, (_, i) => (i % 256 === 0 ? 1 : 0)));
    const parts = run1('sum_squares', [long]);
    expect(parts.shape).toEqual([64]);
    // blocks 0 and 64 (and the 3 elements of block 65, whose first is 1) land in partials 0 and 1
    expect([...parts.data.slice(0, 3)]).toEqual([2, 2, 1]);
    expect(parts.data.reduce((a, b) => a + b, 0)).toBe(66);
  });
  shapeTable('stop_gradient', [
    { in: ['f32[B, T]'], out: ['f32[B, T]'] },
    { in: ['f32[B]', 'f32[B]'], error: { message: 'stop_gradient takes 1 operand, found 2' } },
  ]);
  interpTest('full', 'full fills and wraps to the dtype', () => {
    exact(run1('full', [], { shape: [B, 2], value: 1.5 }, new Map([['B', 2]])), [2, 2], [1.5, 1.5, 1.5, 1.5]);
    exact(run1('full', [], { shape: [1], value: -1, dtype: 'u32' }), [1], [4294967295]);
  });
  interpTest('iota', 'iota counts along its axis', () => {
    exact(run1('iota', [], { shape: [2, 3], axis: 1 }), [2, 3], [0, 1, 2, 0, 1, 2]);
    exact(run1('iota', [], { shape: [2, 3], axis: 0, dtype: 'f32' }), [2, 3], [0, 0, 0, 1, 1, 1]);
  });
  interpTest('stop_gradient', 'stop_gradient is the identity in value', () => {
    exact(run1('stop_gradient', [f32([2], [3, -4])]), [2], [3, -4]);
  });
});

// =====================================================================================================
describe('shape rules agree with the interpreter', () => {
  const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : 20261123;
  it('for random broadcasting, reductions and transposes', () => {
    console.log(`ops: fast-check seed ${SEED} (replay with DLC_SEED=${SEED})`);
    const dims = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
    fc.assert(
      fc.property(dims, fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 1000 }), (shape, mask, seed) => {
        // The second operand drops leading axes and sets some to 1, so the pair always broadcasts.
        const other = shape.slice(seed % (shape.length + 1)).map((d, i) => (mask[i] ? 1 : d));
        const a = seeded(shape, seed);
        const b = seeded(other, seed + 1);
        // run1 throws if the interpreter's shape differs from the shape rule's.
        const sum = run1('add', [a, b]);
        const viaSub = run1('sub', [sum, b]);
        close(viaSub, Array.from(run1('broadcast_to', [a], { shape: sum.shape }).data), 1e-12);
        const axes = shape.map((_, i) => i).filter((i) => mask[i % 4]);
        run1('reduce_sum', [sum], { axes, keepdims: seed % 2 === 0 });
        const perm = shape.map((_, i) => i).reverse();
        const t = run1('transpose', [a], { perm });
        const back = run1('transpose', [t], { perm });
        expect(back.data).toEqual(a.data);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

// =====================================================================================================
describe('fused_elementwise', () => {
  // relu(x + b) * 2 with x + b also returned: registers 0 x, 1 b, 2 the constant 0, 3 x + b, 4 max, 5 the constant 2, 6 the product
  const body: Attrs = encodeFusedBody({
    ops: [
      { op: 'full', args: [], attrs: { shape: [], value: 0 } },
      { op: 'add', args: [0, 1], attrs: {} },
      { op: 'maximum', args: [3, 2], attrs: {} },
      { op: 'full', args: [], attrs: { shape: [], value: 2 } },
      { op: 'mul', args: [4, 5], attrs: {} },
    ],
    outputs: [6, 3],
  });
  const cmp: Attrs = encodeFusedBody({ ops: [{ op: 'gt', args: [0, 1], attrs: {} }, { op: 'cast', args: [2], attrs: { dtype: 'i32' } }], outputs: [3, 2] });
  shapeTable('fused_elementwise', [
    { in: ['f32[B, 3]', 'f32[3]'], attrs: body, out: ['f32[B, 3]', 'f32[B, 3]'] },
    { in: ['f32[2, 1]', 'f32[3]'], attrs: cmp, out: ['i32[2, 3]', 'bool[2, 3]'] },
    { in: ['f32[B, 3]', 'i32[3]'], attrs: body, error: { message: 'fused_elementwise sub-op 1: add operands have different dtypes: f32[B, 3] and i32[3]' } },
    { in: ['f32[B, 3]', 'f32[3]'], attrs: encodeFusedBody({ ops: [{ op: 'matmul', args: [0, 1], attrs: {} }], outputs: [2] }), error: { message: 'fused_elementwise sub-op 0 is matmul, which is not elementwise' } },
    { in: ['f32[B, 3]', 'f32[3]'], attrs: encodeFusedBody({ ops: [{ op: 'exp', args: [5], attrs: {} }], outputs: [2] }), error: { message: 'fused_elementwise sub-op 0 (exp) refers to register 5, which is not defined before it' } },
    { in: ['f32[B, 3]', 'f32[3]'], attrs: encodeFusedBody({ ops: [{ op: 'exp', args: [1], attrs: {} }, { op: 'add', args: [0, 1], attrs: {} }], outputs: [3, 2] }), error: { message: 'fused_elementwise outputs have different shapes: f32[B, 3] and f32[3]' } },
    { in: ['f32[B, 3]'], attrs: { ops: [], outputs: [] }, error: { message: /^fused_elementwise needs a non-empty outputs list/ } },
    { in: ['f32[B, 3]'], attrs: encodeFusedBody({ ops: [{ op: 'exp', args: [0], attrs: {} }], outputs: [0] }), error: { message: 'fused_elementwise output register 0 is not a sub-op result' } },
  ]);
  interpTest('fused_elementwise', 'fused_elementwise runs its body through the sub-ops\' interpreters', () => {
    const x = f32([2, 3], [-1, 0.5, 2, -3, 1, 0]);
    const b = f32([3], [0.25, -1, 1]);
    const [y, s] = run('fused_elementwise', [x, b], body);
    exact(s, [2, 3], [-0.75, -0.5, 3, -2.75, 0, 1]);
    exact(y, [2, 3], [0, 0, 6, 0, 0, 2]);
    const [c, g] = run('fused_elementwise', [f32([2, 1], [0, 5]), f32([3], [-1, 1, 6])], cmp);
    exact(c, [2, 3], [1, 0, 0, 1, 1, 0]);
    expect(g.dtype).toBe('bool');
  });
});

// =====================================================================================================
/** An epilogue body: relu(r0 + r1), with r0 (the matmul's or convolution's result) also returned; registers 2 the constant 0, 3 the sum, 4 the max. */
const RELU_OF_SUM_BODY: Attrs = encodeFusedBody({
  ops: [
    { op: 'full', args: [], attrs: { shape: [], value: 0 } },
    { op: 'add', args: [0, 1], attrs: {} },
    { op: 'maximum', args: [3, 2], attrs: {} },
  ],
  outputs: [4, 0],
});

// =====================================================================================================
describe('fused_matmul', () => {
  // relu(a @ b + bias), with a @ b also returned: registers 0 a @ b, 1 bias, 2 the constant 0, 3 the sum, 4 the max
  const body = RELU_OF_SUM_BODY;
  shapeTable('fused_matmul', [
    { in: ['f32[B, 4]', 'f32[4, 3]', 'f32[3]'], attrs: body, out: ['f32[B, 3]', 'f32[B, 3]'] },
    { in: ['f32[2, B, 4]', 'f32[4, 3]', 'f32[1, 3]'], attrs: body, out: ['f32[2, B, 3]', 'f32[2, B, 3]'] },
    { in: ['f32[B, 4]', 'f32[5, 3]', 'f32[3]'], attrs: body, error: { message: /matmul/ } },
    { in: ['i32[B, 4]', 'i32[4, 3]', 'i32[3]'], attrs: body, error: { message: /fused_matmul is f32 only|matmul/ } },
    { in: ['f32[B, 4]', 'f32[4, 3]', 'f32[B, 5]'], attrs: body, error: { message: /./ } },
    // the matmul's transposed operands
    { in: ['f32[4, B]', 'f32[3, 4]', 'f32[3]'], attrs: { ...body, transpose_a: true, transpose_b: true }, out: ['f32[B, 3]', 'f32[B, 3]'] },
    { in: ['f32[B, 4]', 'f32[4, 3]', 'f32[3]'], attrs: { ...body, transpose_b: true }, error: { message: /fused_matmul: matmul inner dimensions differ/ } },
    { in: ['f32[B, 4]', 'f32[4, 3]', 'f32[3]'], attrs: { ...body, transpose_b: 'yes' }, error: { message: "fused_matmul's transpose_b must be a boolean, found \"yes\"" } },
  ]);
  interpTest('fused_matmul', 'fused_matmul reads its transposed operands as the matmul does', () => {
    const a = f32([2, 2], [1, 3, 2, 4]); // [[1, 2], [3, 4]] stored transposed
    const b = f32([2, 2], [1, 0, 0, -1]);
    const bias = f32([2], [0.5, 1]);
    const [y, mm] = run('fused_matmul', [a, b, bias], { ...body, transpose_a: true });
    exact(mm, [2, 2], [1, -2, 3, -4]);
    exact(y, [2, 2], [1.5, 0, 3.5, 0]);
  });
  interpTest('fused_matmul', "fused_matmul runs the matmul, then its body through the sub-ops' interpreters", () => {
    const a = f32([2, 2], [1, 2, 3, 4]);
    const b = f32([2, 2], [1, 0, 0, -1]);
    const bias = f32([2], [0.5, 1]);
    const [y, mm] = run('fused_matmul', [a, b, bias], body);
    exact(mm, [2, 2], [1, -2, 3, -4]);
    exact(y, [2, 2], [1.5, 0, 3.5, 0]);
  });
});

// =====================================================================================================
describe('fused_matmul_columns', () => {
  // sigmoid(block 0) * block 1 of a @ b: registers 0 and 1 the blocks, 2 the sigmoid, 3 the product
  const body = { ops: [['sigmoid', [0], []], ['mul', [2, 1], []]], outputs: [3] };
  const gates = { columns: [0, 2], width: 2, ...body };
  shapeTable('fused_matmul_columns', [
    { in: ['f32[B, 3]', 'f32[3, 4]'], attrs: gates, out: ['f32[B, 2]'] },
    { in: ['f32[2, B, 3]', 'f32[3, 5]'], attrs: { ...gates, columns: [3, 1] }, out: ['f32[2, B, 2]'] },
    // a block stored as it is, and a body input of the block's shape
    { in: ['f32[B, 3]', 'f32[3, 4]', 'f32[B, 2]'], attrs: { columns: [2], width: 2, ops: [['add', [0, 1], []]], outputs: [2, 0] }, out: ['f32[B, 2]', 'f32[B, 2]'] },
    { in: ['f32[B, 3]', 'f32[3, 4]'], attrs: { ...gates, columns: [] }, error: { message: 'fused_matmul_columns needs columns, a non-empty list of column offsets' } },
    { in: ['f32[B, 3]', 'f32[3, 4]'], attrs: { ...gates, width: 0 }, error: { message: 'fused_matmul_columns needs a positive integer width' } },
    { in: ['f32[B, 3]', 'f32[3, 4]'], attrs: { ...gates, columns: [0, 3] }, error: { message: "fused_matmul_columns: the block at column 3 of width 2 passes the product's 4 columns" } },
    { in: ['f32[B, 3]', 'f32[2, 3, 4]'], attrs: gates, error: { message: 'fused_matmul_columns reads a matrix b [k, n], found f32[2, 3, 4]' } },
    { in: ['f32[B, 3]', 'f32[5, 4]'], attrs: gates, error: { message: /fused_matmul_columns: matmul/ } },
    { in: ['f32[B, 3]', 'f32[3, B]'], attrs: gates, error: { message: /needs the product's columns n known/ } },
    { in: ['f32[B, 3]', 'f32[3, 4]', 'f32[B, 3]'], attrs: { columns: [0], width: 2, ops: [['add', [0, 1], []]], outputs: [2] }, error: { message: /./ } },
    { in: ['f32[B, 3]', 'f32[3, 4]', 'f32[B, 2]'], attrs: { columns: [0], width: 2, ops: [], outputs: [1] }, error: { message: 'fused_matmul_columns output register 1 is neither a block nor a sub-op result' } },
  ]);
  interpTest('fused_matmul_columns', 'fused_matmul_columns gathers each block from the product, then runs its body', () => {
    const a = f32([2, 2], [1, 2, 3, 4]);
    const b = f32([2, 4], [1, 0, 2, 0, 0, 1, 0, -1]); // a @ b = [[1, 2, 2, -2], [3, 4, 6, -4]]
    const [y] = run('fused_matmul_columns', [a, b], { columns: [2, 1], width: 2, ops: [['mul', [0, 1], []]], outputs: [2] });
    // block 0 = columns 2..3, block 1 = columns 1..2
    exact(y, [2, 2], [2 * 2, -2 * 2, 6 * 4, -4 * 6]);
  });
});

// =====================================================================================================
describe('fused_reduce', () => {
  // softmax over the last axis: registers 0 x, 1 max, 2 x - max, 3 exp, 4 sum, 5 the quotient
  const softmax: Attrs = encodeRowBody(
    [
      { op: 'reduce_max', args: [0], attrs: { axes: [-1], keepdims: true } },
      { op: 'sub', args: [0, 1], attrs: {} },
      { op: 'exp', args: [2], attrs: {} },
      { op: 'reduce_sum', args: [3], attrs: { axes: [-1], keepdims: true } },
      { op: 'div', args: [3, 4], attrs: {} },
    ],
    [5, 4],
    [1],
  );
  shapeTable('fused_reduce', [
    { in: ['f32[B, 10]'], attrs: softmax, out: ['f32[B, 10]', 'f32[B, 1]'] },
    { in: ['f32[B, 1]'], attrs: softmax, error: { message: /needs a reduction over axes that are not all of size 1/ } },
    { in: ['i32[B, 10]'], attrs: softmax, error: { message: /fused_reduce unit 2: exp needs a float/ } },
    { in: ['f32[B, 10]'], attrs: { ...softmax, axes: [0] }, error: { message: /fused_reduce axes \[0\] are not its reductions' axes \[1\]/ } },
    // a row value without its size-1 axis cannot broadcast back along the rows
    {
      in: ['f32[4, 4]'],
      attrs: encodeRowBody([{ op: 'reduce_sum', args: [0], attrs: { axes: [1] } }, { op: 'sub', args: [0, 1], attrs: {} }], [2], [1]),
      error: { message: /reads register 1 of type f32\[4\], which does not broadcast along the rows/ },
    },
    { in: ['f32[B, 10]'], attrs: encodeRowBody([{ op: 'matmul', args: [0, 0], attrs: {} }], [1], [1]), error: { message: /./ } },
  ]);
  interpTest('fused_reduce', "fused_reduce runs each unit through its own interpreter", () => {
    const [y, s] = run('fused_reduce', [f32([2, 2], [0, -Infinity, 1, 1])], softmax);
    exact(s, [2, 1], [1, 2]);
    exact(y, [2, 2], [1, 0, 0.5, 0.5]);
  });
});

// =====================================================================================================
describe('fused_foreach', () => {
  // p - s * m per member: registers 0 p, 1 s (shared), 2 m, 3 s * m, 4 the difference
  const body = (shared: boolean[], offsets: number[]): Attrs => ({
    ...encodeFusedBody({ ops: [{ op: 'mul', args: [1, 2], attrs: {} }, { op: 'sub', args: [0, 3], attrs: {} }], outputs: [4] }),
    shared,
    offsets,
  });
  shapeTable('fused_foreach', [
    // members p0 f32[2, 3] and p1 f32[4]: inputs p0, p1, s, m0, m1
    { in: ['f32[2, 3]', 'f32[4]', 'f32[]', 'f32[2, 3]', 'f32[4]'], attrs: body([false, true, false], [0, 64]), out: ['f32[2, 3]', 'f32[4]'] },
    { in: ['f32[2, 3]', 'f32[4]', 'f32[]', 'f32[2, 3]', 'f32[4]'], attrs: body([false, true, false], [0, 3]), error: { message: "fused_foreach member 0 (6 elements at 0) does not fit before the next member's offset 3" } },
    { in: ['f32[2, 3]', 'f32[4]', 'f32[]', 'f32[2, 3]'], attrs: body([false, true, false], [0, 64]), error: { message: 'fused_foreach of 2 members over 3 body inputs takes 5 operands, found 4' } },
    { in: ['f32[2, 3]', 'f32[4]', 'f32[3]', 'f32[2, 3]', 'f32[4]'], attrs: body([false, true, false], [0, 64]), error: { message: 'fused_foreach: a shared input must be a scalar' } },
    { in: ['f32[2, 3]', 'f32[4]', 'f32[]', 'f32[3]', 'f32[4]'], attrs: body([false, true, false], [0, 64]), error: { message: /^fused_foreach member 0: every own input and output must have one shape/ } },
    { in: ['f32[B, 3]', 'f32[]', 'f32[B, 3]'], attrs: body([false, true, false], [0]), error: { message: /^fused_foreach member 0 has the symbolic shape/ } },
    { in: ['f32[2, 3]', 'f32[]', 'f32[2, 3]'], attrs: { ...body([false, true, false], [0]), offsets: [] }, error: { message: 'fused_foreach needs an offsets list of element offsets' } },
  ]);
  interpTest('fused_foreach', "fused_foreach runs the body for each member through fused_elementwise's interpreter", () => {
    const [y0, y1] = run('fused_foreach', [f32([2], [1, 2]), f32([3], [3, 4, 5]), f32([], [0.5]), f32([2], [2, -2]), f32([3], [0, 4, 1])], body([false, true, false], [0, 64]));
    exact(y0, [2], [0, 3]);
    exact(y1, [3], [3, 2, 4.5]);
  });
});

// =====================================================================================================
describe('strided_copy', () => {
  shapeTable('strided_copy', [
    { in: ['f32[B, 6]'], attrs: { shape: [3, B], offset: 1, strides: [2, 6] }, out: ['f32[3, B]'] },
    { in: ['i32[4]'], attrs: { shape: [2, 4], offset: 0, strides: [0, 1] }, out: ['i32[2, 4]'] },
    { in: ['f32[4]'], attrs: { shape: [2, 2], offset: 0, strides: [2] }, error: { message: 'strided_copy needs a shape, an offset and one stride per axis, all sizes' } },
  ]);
  interpTest('strided_copy', 'strided_copy gathers offset + Σ i_a * strides[a], sizes bound at run time', () => {
    const x = f32([2, 6], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    exact(run1('strided_copy', [x], { shape: [3, B], offset: 1, strides: [2, 6] }, new Map([['B', 2]])), [3, 2], [1, 7, 3, 9, 5, 11]);
    exact(run1('strided_copy', [f32([3], [4, 5, 6])], { shape: [2, 3], offset: 0, strides: [0, 1] }), [2, 3], [4, 5, 6, 4, 5, 6]);
  });
});

// =====================================================================================================
describe('strided_copies', () => {
  shapeTable('strided_copies', [
    { in: ['f32[B, 6]'], attrs: { ranks: [2, 1], shapes: [3, B, B], offsets: [1, 0], strides: [2, 6, 6] }, out: ['f32[3, B]', 'f32[B]'] },
    { in: ['i32[4]'], attrs: { ranks: [0, 2], shapes: [2, 2], offsets: [3, 0], strides: [1, 2] }, out: ['i32[]', 'i32[2, 2]'] },
    { in: ['f32[4]'], attrs: { ranks: [2], shapes: [2, 2], offsets: [0], strides: [2] }, error: { message: 'strided_copies needs, per result, its rank, shape, offset and one stride per axis, all sizes' } },
    { in: ['f32[4]'], attrs: { ranks: [], shapes: [], offsets: [], strides: [] }, error: { message: /strided_copies needs, per result/ } },
  ]);
  interpTest('strided_copies', 'strided_copies makes each result as strided_copy would, sizes bound at run time', () => {
    const x = f32([2, 6], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const [a, c] = run('strided_copies', [x], { ranks: [2, 1], shapes: [3, B, B], offsets: [1, 0], strides: [2, 6, 6] }, new Map([['B', 2]]));
    exact(a, [3, 2], [1, 7, 3, 9, 5, 11]);
    exact(c, [2], [0, 6]);
  });
});

// =====================================================================================================
describe('strided_concat', () => {
  shapeTable('strided_concat', [
    // two [B, 2] operands read through views: a column-major [2, B] and a row-major [B, 2]
    { in: ['f32[2, B]', 'f32[B, 2]'], attrs: { shape: [B, 4], axis: 1, sizes: [2, 2], offsets: [0, 0], strides: [1, B, 2, 1] }, out: ['f32[B, 4]'] },
    // a finer index space than the result: [3, 4] walked as [3, 2, 2]
    { in: ['f32[2, 3]', 'f32[3, 2]'], attrs: { shape: [3, 2, 2], axis: 1, sizes: [1, 1], offsets: [0, 0], strides: [1, 0, 3, 2, 0, 1], out: [3, 4] }, out: ['f32[3, 4]'] },
    { in: ['f32[2, 3]', 'f32[3, 2]'], attrs: { shape: [3, 2, 2], axis: 1, sizes: [1, 1], offsets: [0, 0], strides: [1, 0, 3, 2, 0, 1], out: [3, 5] }, error: { message: /does not hold the 12 elements/ } },
    { in: ['f32[2, B]', 'f32[B, 2]'], attrs: { shape: [B, 4], axis: 1, sizes: [2, 1], offsets: [0, 0], strides: [1, B, 2, 1] }, error: { message: /span 3 along axis 1, not the output's 4/ } },
    { in: ['f32[2, B]', 'f32[B, 2]'], attrs: { shape: [B, 4], axis: 1, sizes: [2, 2], offsets: [0], strides: [1, B, 2, 1] }, error: { message: /per operand, its extent along the axis, an offset and one stride per axis/ } },
    { in: ['f32[2, B]', 'i32[B, 2]'], attrs: { shape: [B, 4], axis: 1, sizes: [2, 2], offsets: [0, 0], strides: [1, B, 2, 1] }, error: { message: /different dtypes: f32 and i32/ } },
    { in: ['f32[4]'], attrs: { shape: [4], axis: 1, sizes: [4], offsets: [0], strides: [1] }, error: { message: /an output shape and an axis of it/ } },
  ]);
  interpTest('strided_concat', 'strided_concat reads each operand through its view, the axis counted from its range, sizes bound at run time', () => {
    const a = f32([2, 3], [0, 1, 2, 3, 4, 5]); // read transposed: rows [0, 3], [1, 4], [2, 5]
    const c = f32([3, 2], [10, 11, 12, 13, 14, 15]);
    exact(run1('strided_concat', [a, c], { shape: [B, 4], axis: 1, sizes: [2, 2], offsets: [0, 0], strides: [1, 3, 2, 1] }, new Map([['B', 3]])), [3, 4], [0, 3, 10, 11, 1, 4, 12, 13, 2, 5, 14, 15]);
    // the same walked as [3, 2, 2] and returned as [3, 4]; an offset skips the first row of c
    exact(run1('strided_concat', [a, c], { shape: [2, 2, 2], axis: 1, sizes: [1, 1], offsets: [0, 2], strides: [1, 0, 3, 2, 0, 1], out: [2, 4] }), [2, 4], [0, 3, 12, 13, 1, 4, 14, 15]);
  });
});

// =====================================================================================================
describe('fused_conv2d and fused_conv_transpose2d', () => {
  // relu(conv + bias), with the convolution also returned: registers 0 the convolution, 1 bias, 2 the constant 0, 3 the sum, 4 the max
  const body = RELU_OF_SUM_BODY;
  shapeTable('fused_conv2d', [
    { in: ['f32[B, 2, 5, 5]', 'f32[3, 2, 3, 3]', 'f32[1, 3, 1, 1]'], attrs: body, out: ['f32[B, 3, 3, 3]', 'f32[B, 3, 3, 3]'] },
    { in: ['f32[B, 2, 5, 5]', 'f32[3, 2, 3, 3]', 'f32[3, 1, 1]'], attrs: { ...body, stride: [2, 2], padding: [1, 1] }, out: ['f32[B, 3, 3, 3]', 'f32[B, 3, 3, 3]'] },
    { in: ['f32[B, 2, 5, 5]', 'f32[3, 4, 3, 3]', 'f32[1, 3, 1, 1]'], attrs: body, error: { message: /fused_conv2d: conv2d input channels/ } },
    { in: ['f32[B, 2, 5, 5]', 'f32[3, 2, 3, 3]', 'f32[1, 4, 1, 1]'], attrs: body, error: { message: /./ } },
    { in: ['f32[B, 2, 5, 5]', 'f32[3, 2, 3, 3]', 'f32[1, 3, 1, 1]'], attrs: { ...body, axis: 0 }, error: { message: /fused_conv2d has no attribute axis/ } },
  ]);
  shapeTable('fused_conv_transpose2d', [
    { in: ['f32[B, 2, 3, 3]', 'f32[2, 3, 2, 2]', 'f32[1, 3, 1, 1]'], attrs: { ...body, stride: [2, 2] }, out: ['f32[B, 3, 6, 6]', 'f32[B, 3, 6, 6]'] },
    { in: ['f32[B, 2, 3, 3]', 'f32[3, 3, 2, 2]', 'f32[1, 3, 1, 1]'], attrs: body, error: { message: /fused_conv_transpose2d: conv_transpose2d input channels/ } },
  ]);
  interpTest(['fused_conv2d', 'fused_conv_transpose2d'], "a fused convolution runs the convolution, then its body through the sub-ops' interpreters", () => {
    // a 1x1 convolution with weights [1, -1] per output channel: x0 - x1, then + bias, then ReLU
    const x = f32([1, 2, 1, 2], [1, 2, 5, 1]);
    const w = f32([1, 2, 1, 1], [1, -1]);
    const bias = f32([1, 1, 1, 1], [0.5]);
    const [y, conv] = run('fused_conv2d', [x, w, bias], body);
    exact(conv, [1, 1, 1, 2], [-4, 1]);
    exact(y, [1, 1, 1, 2], [0, 1.5]);
    // the transposed convolution of one pixel by a 2x2 kernel, stride 2: the kernel times the pixel
    const [yt, ct] = run('fused_conv_transpose2d', [f32([1, 1, 1, 1], [-2]), f32([1, 1, 2, 2], [1, -1, 2, 0]), bias], { ...body, stride: [2, 2] });
    exact(ct, [1, 1, 2, 2], [-2, 2, -4, 0]);
    exact(yt, [1, 1, 2, 2], [0, 2.5, 0, 0.5]);
  });
});

// =====================================================================================================
describe('registry', () => {
  it('has unique names, valid families and arities, and differentiable lists of the right length', () => {
    const ops = allOps();
    expect(new Set(ops.map((o) => o.name)).size).toBe(ops.length);
    for (const o of ops) {
      expect(['elementwise', 'reduction', 'contraction', 'movement', 'gather', 'random', 'constant', 'control', 'fused']).toContain(o.family);
      if (Array.isArray(o.differentiable)) expect(o.differentiable.length).toBe(o.arity);
      expect(getOp(o.name)).toBe(o);
    }
  });
  it('rejects unknown attributes and unknown ops', () => {
    expect(inferErr('add', ['f32[2]', 'f32[2]'], { axis: 0 }).message).toBe('add has no attribute axis');
    expect(isShapeError(infer('frobnicate', ['f32[2]']))).toBe(true);
    expect(inferOk('exp', ['f32[2]'])[0].dtype).toBe('f32');
  });
  // Runs last: by now every shapeTable/interpTest above has registered the ops it covers.
  it('every registered op has a shape-rule test and an interpreter test', () => {
    const names = allOps().map((o) => o.name).sort();
    expect(names.filter((n) => !shapeCovered.has(n)), 'ops without a shape-rule table').toEqual([]);
    expect(names.filter((n) => !interpCovered.has(n)), 'ops without an interpreter test').toEqual([]);
    expect([...shapeCovered].filter((n) => !getOp(n)), 'tested names that are not ops').toEqual([]);
  });
});
