// sum_squares: the sum of the squares of every element of several f32 tensors (gradient clipping's global norm), one kernel.
import { numel } from '../interpret/tensor.ts';
import { registerOp } from './registry.ts';
import { sumSquaresPlans, SUM_SQUARES_MAX_OPERANDS } from '../codegen/sum-squares.ts';
import { err, typeStr } from './util.ts';
import { builder } from './vjp-util.ts';

/**
 * Σ over the operands of Σ x², an f32 scalar: the squared global norm that clipping by norm needs, over
 * up to 7 gradients in one dispatch instead of a square, a reduction and an add per gradient (one
 * kernel binds at most 8 storage buffers: the operands and the result). Not a reduction over axes, so
 * no fusion pass takes it apart; the interpreter sums in float64, operand by operand.
 */
registerOp({
  name: 'sum_squares',
  family: 'reduction',
  arity: 'variadic',
  differentiable: 'all',
  attrs: {},
  infer(inputs) {
    if (inputs.length > SUM_SQUARES_MAX_OPERANDS) {
      return err(`sum_squares takes at most ${SUM_SQUARES_MAX_OPERANDS} operands (one kernel binds at most 8 storage buffers), found ${inputs.length}`);
    }
    const bad = inputs.findIndex((t) => t.dtype !== 'f32');
    if (bad >= 0) return err(`sum_squares needs f32 tensors, found ${typeStr(inputs[bad])}`, bad, undefined, 'cast to f32 first');
    return [{ dtype: 'f32', shape: [] }];
  },
  interpret(inputs) {
    let total = 0;
    for (const x of inputs) for (let i = 0; i < numel(x.shape); i++) total += x.data[i] * x.data[i];
    return [{ dtype: 'f32', shape: [], data: Float64Array.of(total) }];
  },
  lower: { kind: 'kernel', kernel: sumSquaresPlans },
  vjp(ctx, { inputs }, [ct]) {
    if (!ct) return inputs.map(() => null);
    // d/dx Σ x² = 2 x, scaled by the cotangent
    const g = builder(ctx);
    const twice = g.mul(ct, 2);
    return inputs.map((x) => g.mul(x, twice));
  },
});
