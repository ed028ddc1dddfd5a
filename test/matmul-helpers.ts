// Shared by the matmul kernel tests: symbolic shape specs, matmul nodes through the registry's shape rule, seeded operands, f32 bits.
import type { Attrs, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { inferOp, isShapeError } from '../compiler/ops/index.ts';
import { type Dim, sym } from '../compiler/shapes/dim.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';

/** A shape with symbolic sizes by name: [12, 'B']. */
export type Spec = readonly (number | string)[];
export const dims = (s: Spec): Dim[] => s.map((d) => (typeof d === 'number' ? d : sym(d)));
export const bind = (s: Spec, sizes: ReadonlyMap<string, number>): number[] => s.map((d) => (typeof d === 'number' ? d : sizes.get(d)!));

let nextId = 1;
export const value = (type: TensorType): Value => ({ id: nextId++, type });
export const SPAN = { file: 'matmul-test', start: 0, end: 0 };

/** A node of `op` over `inputs`, its outputs typed by the registry's shape rule. */
export function opNode(op: string, inputs: readonly Value[], attrs: Attrs): Node {
  const r = inferOp(op, inputs.map((v) => v.type), attrs);
  if (isShapeError(r)) throw new Error(r.message);
  return { op, inputs, attrs, outputs: r.map(value), span: SPAN };
}

/** An f32 matmul node of operands shaped `sa` and `sb` (as stored, with `transpose_a` / `transpose_b`). */
export const matmulNode = (sa: Spec, sb: Spec, attrs: Attrs = {}): Node => opNode('matmul', [value({ dtype: 'f32', shape: dims(sa) }), value({ dtype: 'f32', shape: dims(sb) })], attrs);

/** Seeded f32 values uniform in [-1, 1). */
export function random(shape: readonly number[], seed: number): Tensor {
  const r = seededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor('f32', shape, Array.from({ length: n }, () => Math.fround(r() * 2 - 1)));
}

/** A tensor's values as f32 bit patterns (NaN payloads and signed zeros compared exactly). */
export const bits = (t: Tensor): number[] => Array.from(new Uint32Array(Float32Array.from(t.data).buffer));
