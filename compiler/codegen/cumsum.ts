// Code generation for cumsum: one invocation per output element, summing its prefix (or suffix) along the axis.
//
// Each invocation reads up to n elements of its row, so a row of n costs n^2 / 2 loads in all: simple
// and exact in order (the sum runs from the row's start, as the interpreter's does), and fast enough
// for the sequence lengths cumsum meets in a model (positions, masks, ranks); a scan for long rows
// would be a later kernel.
import type { Node } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import type { KernelPlan } from './kernel.ts';
import { kernelStorageType } from './matmul.ts';
import { perElementPlan, stridesOf } from './per-element.ts';

export function cumsumPlans(node: Node): KernelPlan[] {
  const x = node.inputs[0].type;
  const rank = x.shape.length;
  const raw = node.attrs.axis as number;
  const axis = raw < 0 ? raw + rank : raw;
  const reverse = node.attrs.reverse === true;
  const ty = kernelStorageType(x.dtype);
  const words: [string, Dim][] = [['stride', stridesOf(x.shape)[axis]], ['n', x.shape[axis]]];
  const zero = ty === 'f32' ? '0.0' : ty === 'i32' ? '0i' : '0u';
  return [
    perElementPlan({
      op: node.op,
      what: `${reverse ? 'reversed ' : ''}running sum of ${x.dtype} along axis ${axis}`,
      shape: x.shape,
      index: false,
      inputs: [{ name: 'x', dtype: x.dtype, node: 0 }],
      outDtype: x.dtype,
      words,
      body: [
        'let j = (idx / stride) % n;',
        'let row = idx - j * stride;',
        `var acc = ${zero};`,
        reverse ? 'for (var k = n; k > j; k = k - 1u) { acc = acc + x[row + (k - 1u) * stride]; }' : 'for (var k = 0u; k <= j; k = k + 1u) { acc = acc + x[row + k * stride]; }',
      ],
      result: 'acc',
    }),
  ];
}
