// fused_matmul: a matmul followed by an elementwise epilogue (bias add, activation, residual add, scaling), one kernel.
//
// Inputs: a [..., m, k] and b [..., k, n] (the matmul's operands), then the epilogue's inputs. Attributes:
// `ops` and `outputs`, a body in fused_elementwise's encoding (ops/fused.ts) whose registers are the
// matmul result (register 0), the epilogue inputs (registers 1..e, node inputs 2..e+1), then the
// sub-results. Every output has the matmul result's shape, the kernel's iteration shape; every epilogue
// input and sub-result broadcasts to it. An output may be register 0 itself: the matmul result, stored
// as well when something outside the epilogue also reads it. `transpose_a` / `transpose_b` (optional) are
// the matmul's own (ops/matmul.ts): an operand stored with its last two axes swapped, a transpose the
// fusion pass folded into the operand's loads. `views` and `out_views` (optional, ops/fused.ts): epilogue
// inputs read through strided views, and outputs stored into an in-place concat's slab.
//
// The fusion pass builds these after autodiff (optimize/fuse.ts); the lowering (codegen/fused-matmul.ts)
// is the matmul kernel of either variant with the body applied to each element at store time.
import type { Attrs, TensorType } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { dimEquals } from '../shapes/dim.ts';
import { fusedMatmulPlans } from '../codegen/fused-matmul.ts';
import { matmulTransposes } from '../codegen/matmul.ts';
import { transposeAttrs } from './matmul.ts';
import { decodeFusedBody, misfitRegister, decodeInputViews, type FusedBody, fusedRegisterTypes, viewedInputs, viewedInputTypes, withOutputViews } from './fused.ts';
import { getOp, inferOp, isShapeError, registerOp, type ShapeError } from './registry.ts';
import { err, typeStr } from './util.ts';

export const FUSED_MATMUL_OP = 'fused_matmul';

/** The attributes of the matmul inside a fused_matmul: its transposes. */
export function matmulAttrsOf(attrs: Attrs): Attrs {
  const t = matmulTransposes(attrs);
  return transposeAttrs(t.a, t.b);
}

/** The matmul result's type and every register's type, or why the node does not type-check. */
export function fusedMatmulTypes(inputs: readonly TensorType[], attrs: Attrs): { mm: TensorType; body: FusedBody; regs: TensorType[] } | ShapeError {
  if (inputs.length < 2) return err(`${FUSED_MATMUL_OP} needs the two matmul operands`);
  const body = decodeFusedBody(attrs);
  if (typeof body === 'string') return err(body.replace('fused_elementwise', FUSED_MATMUL_OP));
  for (const key of ['transpose_a', 'transpose_b']) {
    if (attrs[key] !== undefined && typeof attrs[key] !== 'boolean') return err(`${FUSED_MATMUL_OP}'s ${key} must be a boolean, found ${JSON.stringify(attrs[key])}`);
  }
  const mm = inferOp('matmul', inputs.slice(0, 2), matmulAttrsOf(attrs));
  if (isShapeError(mm)) return { ...mm, message: `${FUSED_MATMUL_OP}: ${mm.message}` };
  if (mm[0].dtype !== 'f32') return err(`${FUSED_MATMUL_OP} is f32 only, found ${typeStr(mm[0])}`);
  // an epilogue input may be read through a view (ops/fused.ts), the matmul's operands may not
  const views = decodeInputViews(attrs, inputs.length, FUSED_MATMUL_OP);
  if (typeof views === 'string') return err(views);
  if (views.some((v) => v.input < 2)) return err(`${FUSED_MATMUL_OP} reads only its epilogue inputs through views`);
  const viewed = viewedInputTypes(inputs, attrs, FUSED_MATMUL_OP) as TensorType[];
  const regs = fusedRegisterTypes([mm[0], ...viewed.slice(2)], body);
  if (isShapeError(regs)) return { ...regs, message: regs.message.replace('fused_elementwise', FUSED_MATMUL_OP) };
  return { mm: mm[0], body, regs };
}

/** fused_matmul's result types (its shape rule, before any out_views). */
function inferFusedMatmul(inputs: readonly TensorType[], attrs: Attrs): TensorType[] | ShapeError {
  const t = fusedMatmulTypes(inputs, attrs);
  if (!('regs' in t)) return t;
  const { mm, body, regs } = t;
  const bad = body.outputs.find((r) => !Number.isInteger(r) || r < 0 || r >= regs.length || (r > 0 && r < inputs.length - 1));
  if (bad !== undefined) return err(`${FUSED_MATMUL_OP} output register ${bad} is neither the matmul result nor a sub-op result`);
  const outs = body.outputs.map((r) => regs[r]);
  const mismatch = outs.find((o) => o.shape.length !== mm.shape.length || !o.shape.every((d, a) => dimEquals(d, mm.shape[a])));
  if (mismatch) return err(`${FUSED_MATMUL_OP} output ${typeStr(mismatch)} does not have the matmul result's shape ${typeStr(mm)}`);
  const wide = misfitRegister(regs, body, inputs.length - 1, mm.shape);
  if (wide >= 0) return err(`${FUSED_MATMUL_OP} register ${wide} of type ${typeStr(regs[wide])} does not fit the matmul result ${typeStr(mm)} (a register broadcasts to it, a random draw is exactly it)`);
  return outs.map((o) => ({ dtype: o.dtype, shape: o.shape }));
}

registerOp({
  name: FUSED_MATMUL_OP,
  family: 'fused',
  arity: 'variadic',
  // fusion runs after autodiff: no gradient flows through a fused node
  differentiable: 'none',
  attrs: { ops: 'required', outputs: 'required', transpose_a: 'optional', transpose_b: 'optional', views: 'optional', out_views: 'optional' },
  lower: { kind: 'kernel', kernel: fusedMatmulPlans },
  infer: (inputs, attrs) => withOutputViews(inferFusedMatmul(inputs, attrs), attrs, FUSED_MATMUL_OP),
  interpret(inputs, attrs, env) {
    const body = decodeFusedBody(attrs);
    if (typeof body === 'string') throw new Error(body);
    // the matmul's interpreter, then each sub-op through its own: what the unfused graph computes
    const mm = getOp('matmul')!.interpret(inputs.slice(0, 2), matmulAttrsOf(attrs), env)[0];
    const regs: Tensor[] = [mm, ...viewedInputs(inputs, attrs, env, FUSED_MATMUL_OP).slice(2)];
    for (const s of body.ops) regs.push(getOp(s.op)!.interpret(s.args.map((k) => regs[k]), s.attrs, env)[0]);
    return body.outputs.map((r) => regs[r]);
  },
});
