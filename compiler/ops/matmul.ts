// The contraction primitive: batched matmul [..., m, k] @ [..., k, n] with numpy-broadcast batch dimensions.
import { broadcastShapes } from '../shapes/unify.ts';
import { dimEquals, dimToString, shapeToString } from '../shapes/dim.ts';
import { broadcastConcrete, broadcastStrides, numel, unravel, type Tensor } from '../interpret/tensor.ts';
import { registerOp } from './registry.ts';
import { matmulPlans, matmulTransposes } from '../codegen/matmul.ts';
import { err, isFloatType, product, typeStr } from './util.ts';
import { builder, op1, unbroadcast } from './vjp-util.ts';
import type { Attrs, Value } from '../ir/types.ts';
import type { VjpContext } from './registry.ts';

/**
 * Both operands need rank 2 or more: unlike numpy, a 1-D operand is not promoted to a row or column
 * (the stdlib reshapes explicitly), so the result rank is always max(rank) and gradients stay simple.
 *
 * `transpose_a` / `transpose_b` (optional booleans, false when absent): the operand is stored with its
 * last two axes swapped (A as [..., k, m], B as [..., n, k]) and read as its transpose. The language never
 * writes them; the fusion pass folds a transpose of the last two axes into the matmul it feeds
 * (optimize/fuse.ts), so the transpose's copy and dispatch disappear.
 */
registerOp({
  name: 'matmul',
  family: 'contraction',
  arity: 2,
  differentiable: 'all',
  attrs: { transpose_a: 'optional', transpose_b: 'optional' },
  infer([a, b], attrs) {
    for (const key of ['transpose_a', 'transpose_b']) {
      if (attrs[key] !== undefined && typeof attrs[key] !== 'boolean') return err(`matmul's ${key} must be a boolean, found ${JSON.stringify(attrs[key])}`);
    }
    const t = matmulTransposes(attrs);
    const pair = `${typeStr(a)} @ ${typeStr(b)}`;
    if (!isFloatType(a.dtype)) return err(`matmul needs float operands, found ${pair}`, 0, undefined, 'cast the integers to f32 first');
    if (!isFloatType(b.dtype)) return err(`matmul needs float operands, found ${pair}`, 1, undefined, 'cast the integers to f32 first');
    if (a.dtype !== b.dtype) return err(`matmul operands have different dtypes: ${pair}`, 1, 0);
    if (a.shape.length < 2) {
      return err(`matmul needs operands of rank 2 or more: ${pair}`, 0, 1, a.shape.length === 1 ? `make it a row: reshape to [1, ${dimToString(a.shape[0])}]` : undefined);
    }
    if (b.shape.length < 2) {
      return err(`matmul needs operands of rank 2 or more: ${pair}`, 1, 0, b.shape.length === 1 ? `make it a column: reshape to [${dimToString(b.shape[0])}, 1]` : undefined);
    }
    const k1 = a.shape[a.shape.length - (t.a ? 2 : 1)];
    const k2 = b.shape[b.shape.length - (t.b ? 1 : 2)];
    if (!dimEquals(k1, k2)) {
      let help: string | undefined;
      if (t.a || t.b) help = `with ${[t.a ? 'transpose_a' : '', t.b ? 'transpose_b' : ''].filter((x) => x).join(' and ')} the inner dimensions are ${dimToString(k1)} and ${dimToString(k2)}`;
      else if (b.shape.length === 2 && dimEquals(k1, b.shape[1])) help = `transpose the weight: its shape is ${shapeToString(b.shape)}`;
      else if (a.shape.length > 2 && b.shape.length === 2 && dimEquals(product(a.shape.slice(1)), k2)) {
        help = `flatten the input first: reshape it to ${shapeToString([a.shape[0], k2])}`;
      }
      return err(`matmul inner dimensions differ: ${pair}`, 0, 1, help);
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    if ('error' in batch) return err(`matmul batch dimensions do not broadcast: ${pair}`, 0, 1);
    return [{ dtype: a.dtype, shape: [...batch.shape, a.shape[a.shape.length - (t.a ? 1 : 2)], b.shape[b.shape.length - (t.b ? 2 : 1)]] }];
  },
  interpret([a, b], attrs) {
    const t = matmulTransposes(attrs);
    return [matmulRef(a, b, t.a, t.b)];
  },
  lower: { kind: 'kernel', kernel: matmulPlans },
  // With A' = op(A), B' = op(B) (each maybe transposed): dA' = ct @ B'^T and dB' = A'^T @ ct at the broadcast
  // batch shape, transposed back for a transposed operand, then summed over the batch axes each operand was
  // broadcast along. The plain matmul's rule emits explicit transposes (fusion folds them again).
  vjp(ctx, { inputs: [a, b], attrs }, [ct]) {
    if (!ct) return [null, null];
    const t = matmulTransposes(attrs);
    let da: Value;
    let db: Value;
    if (!t.a && !t.b) {
      da = op1(ctx, 'matmul', [ct, swapLast(ctx, b)]);
      db = flatWeightGradient(ctx, a, b, ct, t.b) ?? op1(ctx, 'matmul', [swapLast(ctx, a), ct]);
    } else {
      // dA = ct @ B'^T, or (transposed A) B' @ ct^T; dB = A'^T @ ct, or (transposed B) ct^T @ A'
      da = t.a ? op1(ctx, 'matmul', [b, ct], transposeAttrs(t.b, true)) : op1(ctx, 'matmul', [ct, b], transposeAttrs(false, !t.b));
      db =
        (t.a ? undefined : flatWeightGradient(ctx, a, b, ct, t.b)) ??
        (t.b ? op1(ctx, 'matmul', [ct, a], transposeAttrs(true, t.a)) : op1(ctx, 'matmul', [a, ct], transposeAttrs(!t.a, false)));
    }
    return [unbroadcast(ctx, da, a.type), unbroadcast(ctx, db, b.type)];
  },
});

/**
 * The gradient of an unbatched B (a weight [k, n], or [n, k] when `tb`) against a batched, untransposed A
 * ([..., m, k], e.g. a Dense layer over [B, T, d]): the sum over the batch of A_i^T @ ct_i is one matmul of
 * the rows of every batch matrix, A as [N * m, k] read transposed against ct as [N * m, n] (reshapes of
 * contiguous tensors, no copies). That is one dispatch with k = N * m instead of a batched matmul whose
 * [..., k, n] product is summed by a second kernel, and no [..., k, n] temporary. Undefined where the
 * rule does not apply (B batched, or A unbatched).
 */
function flatWeightGradient(ctx: VjpContext, a: Value, b: Value, ct: Value, tb: boolean): Value | undefined {
  const ra = a.type.shape.length;
  if (b.type.shape.length !== 2 || ra <= 2 || ct.type.shape.length !== ra) return undefined;
  const rows = product(a.type.shape.slice(0, ra - 1));
  const [k, n] = [a.type.shape[ra - 1], ct.type.shape[ra - 1]];
  const g = builder(ctx);
  const af = g.reshape(a, [rows, k]);
  const cf = g.reshape(ct, [rows, n]);
  // dB = A^T @ ct ([k, n]); stored transposed, dB^T = ct^T @ A ([n, k])
  return tb ? op1(ctx, 'matmul', [cf, af], transposeAttrs(true, false)) : op1(ctx, 'matmul', [af, cf], transposeAttrs(true, false));
}

/** A matmul's attributes for the given transposes: only the true ones, so a plain matmul has none. */
export function transposeAttrs(a: boolean, b: boolean): Attrs {
  return { ...(a ? { transpose_a: true } : {}), ...(b ? { transpose_b: true } : {}) };
}

function swapLast(ctx: VjpContext, v: Value): Value {
  const r = v.type.shape.length;
  const perm = Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
  return op1(ctx, 'transpose', [v], { perm });
}

function matmulRef(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Tensor {
  const m = a.shape[a.shape.length - (ta ? 1 : 2)];
  const k = a.shape[a.shape.length - (ta ? 2 : 1)];
  const n = b.shape[b.shape.length - (tb ? 2 : 1)];
  // element strides of A's rows and k, of B's k and columns, as stored
  const [ai, ap] = ta ? [1, m] : [k, 1];
  const [bp, bj] = tb ? [1, k] : [n, 1];
  const batch = broadcastConcrete(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const aStr = broadcastStrides(a.shape.slice(0, -2), batch);
  const bStr = broadcastStrides(b.shape.slice(0, -2), batch);
  const nb = numel(batch);
  const out = new Float64Array(nb * m * n);
  for (let bi = 0; bi < nb; bi++) {
    const idx = unravel(bi, batch);
    let ao = 0;
    let bo = 0;
    for (let i = 0; i < idx.length; i++) {
      ao += idx[i] * aStr[i];
      bo += idx[i] * bStr[i];
    }
    ao *= m * k;
    bo *= k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[ao + i * ai + p * ap] * b.data[bo + p * bp + j * bj];
        out[bi * m * n + i * n + j] = s;
      }
    }
  }
  return { dtype: a.dtype, shape: [...batch, m, n], data: out };
}
