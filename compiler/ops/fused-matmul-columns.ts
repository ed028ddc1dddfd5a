// fused_matmul_columns: column blocks of one matmul product and an elementwise body over them, one kernel (an LSTM's four gates from h @ W_h, then its cell).
//
// Inputs: a [..., m, k] and b [k, n] (the matmul's operands; b a matrix, neither transposed), then the
// body's inputs. Attributes: `columns`, the offsets o_0 .. o_{G-1} of G column blocks of the product
// and `width`, their width w (each o_g + w <= n, all known numbers); `ops` and `outputs`, a body in
// fused_elementwise's encoding (ops/fused.ts) whose registers are the blocks (register g is the
// [..., m, w] tensor whose element [.., i, j] is (a @ b)[.., i, o_g + j]), then the body's inputs
// (registers G.., node inputs 2..), then the sub-results; `views` (on the body's inputs only) and
// `out_views` as fused_elementwise's. The kernel iterates over a block's shape [..., m, w]: every output
// has it, every register broadcasts to it, and a random draw is exactly it.
//
// The pass that builds these (optimize/matmul-columns.ts) merges a matmul, or a fused_matmul, into the
// one fused_elementwise that reads its product only through such blocks, so the product never goes to
// memory and the two dispatches are one. The lowering (codegen/fused-columns.ts) is fused_elementwise's
// kernel with the blocks computed in front of the body, one fma per k in increasing k, as every matmul
// kernel accumulates, so the bits are the two kernels'.
import type { Attrs, TensorType } from '../ir/types.ts';
import { strides, type Tensor } from '../interpret/tensor.ts';
import { isConcrete } from '../shapes/dim.ts';
import { columnsPlans } from '../codegen/fused-columns.ts';
import { decodeFusedBody, decodeInputViews, type FusedBody, fusedRegisterTypes, misfitRegister, viewedInputs, viewedInputTypes, withOutputViews } from './fused.ts';
import { gather } from './strided-copy.ts';
import { getOp, inferOp, isShapeError, registerOp, type ShapeError } from './registry.ts';
import { err, sameShape, typeStr } from './util.ts';

export const FUSED_COLUMNS_OP = 'fused_matmul_columns';

/** The blocks' column offsets and width, or a message saying what is malformed. */
export function decodeColumns(attrs: Attrs): { offsets: number[]; width: number } | string {
  const { columns, width } = attrs;
  if (!Array.isArray(columns) || columns.length === 0 || !columns.every((o) => typeof o === 'number' && Number.isInteger(o) && o >= 0)) {
    return `${FUSED_COLUMNS_OP} needs columns, a non-empty list of column offsets`;
  }
  if (typeof width !== 'number' || !Number.isInteger(width) || width < 1) return `${FUSED_COLUMNS_OP} needs a positive integer width`;
  return { offsets: columns as number[], width };
}

/** A block's type, the body and every register's type, or why the node does not type-check. */
export function columnsTypes(inputs: readonly TensorType[], attrs: Attrs): { block: TensorType; body: FusedBody; regs: TensorType[]; blocks: number } | ShapeError {
  if (inputs.length < 2) return err(`${FUSED_COLUMNS_OP} needs the two matmul operands`);
  const body = decodeFusedBody(attrs);
  if (typeof body === 'string') return err(body.replace('fused_elementwise', FUSED_COLUMNS_OP));
  const cols = decodeColumns(attrs);
  if (typeof cols === 'string') return err(cols);
  const [a, b] = inputs;
  if (b.shape.length !== 2) return err(`${FUSED_COLUMNS_OP} reads a matrix b [k, n], found ${typeStr(b)}`);
  const mm = inferOp('matmul', [a, b], {});
  if (isShapeError(mm)) return { ...mm, message: `${FUSED_COLUMNS_OP}: ${mm.message}` };
  if (mm[0].dtype !== 'f32') return err(`${FUSED_COLUMNS_OP} is f32 only, found ${typeStr(mm[0])}`);
  const n = b.shape[1];
  if (!isConcrete(n)) return err(`${FUSED_COLUMNS_OP} needs the product's columns n known, found ${typeStr(b)}`);
  const over = cols.offsets.find((o) => o + cols.width > n);
  if (over !== undefined) return err(`${FUSED_COLUMNS_OP}: the block at column ${over} of width ${cols.width} passes the product's ${n} columns`);
  const views = decodeInputViews(attrs, inputs.length, FUSED_COLUMNS_OP);
  if (typeof views === 'string') return err(views);
  if (views.some((v) => v.input < 2)) return err(`${FUSED_COLUMNS_OP} reads only its body's inputs through views`);
  const viewed = viewedInputTypes(inputs, attrs, FUSED_COLUMNS_OP) as TensorType[];
  const block: TensorType = { dtype: 'f32', shape: [...mm[0].shape.slice(0, -1), cols.width] };
  const regs = fusedRegisterTypes([...cols.offsets.map(() => block), ...viewed.slice(2)], body);
  if (isShapeError(regs)) return { ...regs, message: regs.message.replace('fused_elementwise', FUSED_COLUMNS_OP) };
  return { block, body, regs, blocks: cols.offsets.length };
}

/** The result types (the shape rule, before any out_views). */
function inferColumns(inputs: readonly TensorType[], attrs: Attrs): TensorType[] | ShapeError {
  const t = columnsTypes(inputs, attrs);
  if (!('regs' in t)) return t;
  const { block, body, regs, blocks } = t;
  const loaded = blocks + inputs.length - 2;
  const bad = body.outputs.find((r) => !Number.isInteger(r) || r < 0 || r >= regs.length || (r >= blocks && r < loaded));
  if (bad !== undefined) return err(`${FUSED_COLUMNS_OP} output register ${bad} is neither a block nor a sub-op result`);
  const outs = body.outputs.map((r) => regs[r]);
  const mismatch = outs.find((o) => !sameShape(o.shape, block.shape));
  if (mismatch) return err(`${FUSED_COLUMNS_OP} output ${typeStr(mismatch)} does not have a block's shape ${typeStr(block)}`);
  const wide = misfitRegister(regs, body, loaded, block.shape);
  if (wide >= 0) return err(`${FUSED_COLUMNS_OP} register ${wide} of type ${typeStr(regs[wide])} does not fit a block ${typeStr(block)} (a register broadcasts to it, a random draw is exactly it)`);
  return outs.map((o) => ({ dtype: o.dtype, shape: o.shape }));
}

registerOp({
  name: FUSED_COLUMNS_OP,
  family: 'fused',
  arity: 'variadic',
  // fusion runs after autodiff: no gradient flows through a fused node
  differentiable: 'none',
  attrs: { columns: 'required', width: 'required', ops: 'required', outputs: 'required', views: 'optional', out_views: 'optional' },
  lower: { kind: 'kernel', kernel: columnsPlans },
  infer: (inputs, attrs) => withOutputViews(inferColumns(inputs, attrs), attrs, FUSED_COLUMNS_OP),
  interpret(inputs, attrs, env) {
    const body = decodeFusedBody(attrs);
    const cols = decodeColumns(attrs);
    if (typeof body === 'string') throw new Error(body);
    if (typeof cols === 'string') throw new Error(cols);
    // the matmul's interpreter, each block gathered from its product, then each sub-op through its own
    const mm: Tensor = getOp('matmul')!.interpret(inputs.slice(0, 2), {}, env)[0];
    const shape = [...mm.shape.slice(0, -1), cols.width];
    const blocks = cols.offsets.map((o) => gather(FUSED_COLUMNS_OP, mm, shape, o, strides(mm.shape)));
    const regs: Tensor[] = [...blocks, ...viewedInputs(inputs, attrs, env, FUSED_COLUMNS_OP).slice(2)];
    for (const s of body.ops) regs.push(getOp(s.op)!.interpret(s.args.map((k) => regs[k]), s.attrs, env)[0]);
    return body.outputs.map((r) => regs[r]);
  },
});
