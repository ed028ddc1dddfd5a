// fused_conv2d and fused_conv_transpose2d: a convolution followed by an elementwise epilogue (bias, batch norm, activation, residual), one kernel.
//
// Inputs: x and w (the convolution's operands, as conv2d or conv_transpose2d takes them), then the
// epilogue's inputs. Attributes: the convolution's own (stride, padding, dilation, groups, and
// output_padding for the transposed one), then `ops` and `outputs`, a body in fused_elementwise's
// encoding (ops/fused.ts) whose registers are the convolution result (register 0), the epilogue inputs
// (registers 1..e, node inputs 2..e+1), then the sub-results. Every output has the convolution result's
// shape [N, O, OH, OW], the kernel's iteration shape; every epilogue input and sub-result broadcasts to
// it (a bias [1, O, 1, 1], batch-norm statistics, a residual [N, O, OH, OW]). An output may be register 0
// itself: the convolution result, stored as well when something outside the epilogue also reads it.
//
// The fusion pass builds these after autodiff (optimize/fuse.ts); the lowering (codegen/fused-conv.ts)
// is the convolution's per-element loop with the body applied to the sum before the store.
import './conv.ts';
import type { Attrs, AttrValue, TensorType } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { dimEquals } from '../shapes/dim.ts';
import { fusedConvPlans } from '../codegen/fused-conv.ts';
import { decodeFusedBody, type FusedBody, fusedRegisterTypes, misfitRegister } from './fused.ts';
import { getOp, inferOp, isShapeError, registerOp, type ShapeError } from './registry.ts';
import { err, typeStr } from './util.ts';

/** The fused op of each convolution that can anchor an epilogue. */
export const FUSED_CONV_OPS = { conv2d: 'fused_conv2d', conv_transpose2d: 'fused_conv_transpose2d' } as const;

export type ConvAnchor = keyof typeof FUSED_CONV_OPS;

/** The convolution a fused convolution op computes first, or undefined for any other op. */
export function convAnchorOf(op: string): ConvAnchor | undefined {
  return (Object.keys(FUSED_CONV_OPS) as ConvAnchor[]).find((k) => FUSED_CONV_OPS[k] === op);
}

/** A fused convolution's attributes split into the convolution's and the body's. */
export function splitFusedConvAttrs(attrs: Attrs): { conv: Attrs; body: FusedBody } | string {
  const body = decodeFusedBody(attrs);
  if (typeof body === 'string') return body;
  const conv: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(attrs)) if (k !== 'ops' && k !== 'outputs') conv[k] = v;
  return { conv, body };
}

/** The convolution result's type and every register's type, or why the node does not type-check. */
function fusedConvTypes(anchor: ConvAnchor, inputs: readonly TensorType[], attrs: Attrs): { conv: TensorType; body: FusedBody; regs: TensorType[] } | ShapeError {
  const name = FUSED_CONV_OPS[anchor];
  if (inputs.length < 2) return err(`${name} needs the two ${anchor} operands`);
  const split = splitFusedConvAttrs(attrs);
  if (typeof split === 'string') return err(split.replace('fused_elementwise', name));
  const out = inferOp(anchor, inputs.slice(0, 2), split.conv);
  if (isShapeError(out)) return { ...out, message: `${name}: ${out.message}` };
  if (out[0].dtype !== 'f32') return err(`${name} is f32 only, found ${typeStr(out[0])}`);
  const regs = fusedRegisterTypes([out[0], ...inputs.slice(2)], split.body);
  if (isShapeError(regs)) return { ...regs, message: regs.message.replace('fused_elementwise', name) };
  return { conv: out[0], body: split.body, regs };
}

for (const anchor of Object.keys(FUSED_CONV_OPS) as ConvAnchor[]) {
  const name = FUSED_CONV_OPS[anchor];
  registerOp({
    name,
    family: 'fused',
    arity: 'variadic',
    // fusion runs after autodiff: no gradient flows through a fused node
    differentiable: 'none',
    attrs: { ...getOp(anchor)!.attrs, ops: 'required', outputs: 'required' },
    lower: { kind: 'kernel', kernel: fusedConvPlans },
    infer(inputs, attrs) {
      const t = fusedConvTypes(anchor, inputs, attrs);
      if (!('regs' in t)) return t;
      const { conv, body, regs } = t;
      const bad = body.outputs.find((r) => !Number.isInteger(r) || r < 0 || r >= regs.length || (r > 0 && r < inputs.length - 1));
      if (bad !== undefined) return err(`${name} output register ${bad} is neither the ${anchor} result nor a sub-op result`);
      const outs = body.outputs.map((r) => regs[r]);
      const mismatch = outs.find((o) => o.shape.length !== conv.shape.length || !o.shape.every((d, a) => dimEquals(d, conv.shape[a])));
      if (mismatch) return err(`${name} output ${typeStr(mismatch)} does not have the ${anchor} result's shape ${typeStr(conv)}`);
      const wide = misfitRegister(regs, body, inputs.length - 1, conv.shape);
      if (wide >= 0) return err(`${name} register ${wide} of type ${typeStr(regs[wide])} does not fit the ${anchor} result ${typeStr(conv)} (a register broadcasts to it, a random draw is exactly it)`);
      return outs.map((o) => ({ dtype: o.dtype, shape: o.shape }));
    },
    interpret(inputs, attrs, env) {
      const split = splitFusedConvAttrs(attrs);
      if (typeof split === 'string') throw new Error(split);
      // the convolution's interpreter, then each sub-op through its own: what the unfused graph computes
      const out = getOp(anchor)!.interpret(inputs.slice(0, 2), split.conv, env)[0];
      const regs: Tensor[] = [out, ...inputs.slice(2)];
      for (const s of split.body.ops) regs.push(getOp(s.op)!.interpret(s.args.map((k) => regs[k]), s.attrs, env)[0]);
      return split.body.outputs.map((r) => regs[r]);
    },
  });
}
