// sum_squares: 64 partial sums of the squares of every element of several f32 tensors (gradient clipping's global norm), one kernel.
import { numel } from '../interpret/tensor.ts';
import { registerOp } from './registry.ts';
import { sumSquaresPlans, SUM_SQUARES_BLOCK, SUM_SQUARES_MAX_OPERANDS, SUM_SQUARES_PARTS } from '../codegen/sum-squares.ts';
import { err, typeStr } from './util.ts';

/**
 * Partial sums of x² over every element of the operands, f32[64]: the squared global norm that clipping
 * by norm needs is their sum. Up to 7 gradients in one dispatch instead of a square, a reduction and an
 * add per gradient (one kernel binds at most 8 storage buffers: the operands and the result). Element e
 * of each operand goes to partial floor(e / 256) mod 64: the kernel's 64 workgroups take 256-element
 * blocks round robin, so a large model's gradients spread over the device. Not a reduction over axes,
 * so no fusion pass takes it apart; the interpreter sums in float64.
 */
registerOp({
  name: 'sum_squares',
  family: 'reduction',
  arity: 'variadic',
  // built by the optimizer after autodiff (clipping), never differentiated; the language does not expose it
  differentiable: 'none',
  attrs: {},
  infer(inputs) {
    if (inputs.length > SUM_SQUARES_MAX_OPERANDS) {
      return err(`sum_squares takes at most ${SUM_SQUARES_MAX_OPERANDS} operands (one kernel binds at most 8 storage buffers), found ${inputs.length}`);
    }
    const bad = inputs.findIndex((t) => t.dtype !== 'f32');
    if (bad >= 0) return err(`sum_squares needs f32 tensors, found ${typeStr(inputs[bad])}`, bad, undefined, 'cast to f32 first');
    return [{ dtype: 'f32', shape: [SUM_SQUARES_PARTS] }];
  },
  interpret(inputs) {
    const parts = new Float64Array(SUM_SQUARES_PARTS);
    for (const x of inputs) for (let i = 0; i < numel(x.shape); i++) parts[Math.floor(i / SUM_SQUARES_BLOCK) % SUM_SQUARES_PARTS] += x.data[i] * x.data[i];
    return [{ dtype: 'f32', shape: [SUM_SQUARES_PARTS], data: parts }];
  },
  lower: { kind: 'kernel', kernel: sumSquaresPlans },
});
