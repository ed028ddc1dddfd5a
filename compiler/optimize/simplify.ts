// Algebraic simplification: a table of local patterns (x * 1, transpose of a transpose, ...) and their rewrites.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, Graph, Node, Value } from '../ir/types.ts';
import { wrap } from '../interpret/tensor.ts';
import { isIntType } from '../ops/util.ts';
import { reduceAxes } from '../ops/reduce.ts';
import { Substitution, sameType, withNodes } from './rewrite.ts';

/** What a rule turns a node into: an existing value, or a new node that takes over the node's output. */
export type Rewrite = { readonly value: Value } | { readonly op: string; readonly inputs: readonly Value[]; readonly attrs: Attrs };

interface Match {
  /** The node that defines `v`, when a node does (not an input, param or state buffer). */
  producer(v: Value): Node | undefined;
  /** The number every element of `v` holds, when `v` comes from a `full` with a known value. */
  constant(v: Value): number | undefined;
}

export interface Rule {
  readonly name: string;
  readonly op: string;
  rewrite(n: Node, m: Match): Rewrite | null;
}

const [X, Y] = [0, 1];
const is = (m: Match, v: Value, c: number) => m.constant(v) === c;

/**
 * The rewrite table. A rule only proposes; `simplify` applies a proposal only if the result has exactly
 * the node's output type, so `x * 1` where the 1 broadcasts `x` to a larger shape is left alone.
 *
 * `x * 0 -> 0` is applied to integers only, as XLA's algebraic simplifier does: for floats `x * 0` is
 * NaN when x is NaN or infinite and -0 when x is negative, and a training step that has gone NaN must
 * still show it. (`x + 0 -> x` can turn a +0 result into -0 when x is -0; XLA accepts that, and so do we.)
 */
export const RULES: readonly Rule[] = [
  { name: 'x * 1 -> x', op: 'mul', rewrite: (n, m) => (is(m, n.inputs[Y], 1) ? { value: n.inputs[X] } : null) },
  { name: '1 * x -> x', op: 'mul', rewrite: (n, m) => (is(m, n.inputs[X], 1) ? { value: n.inputs[Y] } : null) },
  {
    name: 'x * 0 -> 0 (integers)',
    op: 'mul',
    rewrite: (n, m) => {
      const t = n.outputs[0].type;
      if (!isIntType(t.dtype) || !(is(m, n.inputs[X], 0) || is(m, n.inputs[Y], 0))) return null;
      return { op: 'full', inputs: [], attrs: { shape: [...t.shape], value: 0, dtype: t.dtype } };
    },
  },
  { name: 'x + 0 -> x', op: 'add', rewrite: (n, m) => (is(m, n.inputs[Y], 0) ? { value: n.inputs[X] } : null) },
  { name: '0 + x -> x', op: 'add', rewrite: (n, m) => (is(m, n.inputs[X], 0) ? { value: n.inputs[Y] } : null) },
  { name: 'x - 0 -> x', op: 'sub', rewrite: (n, m) => (is(m, n.inputs[Y], 0) ? { value: n.inputs[X] } : null) },
  { name: 'x / 1 -> x', op: 'div', rewrite: (n, m) => (is(m, n.inputs[Y], 1) ? { value: n.inputs[X] } : null) },
  // WGSL's pow is exp2(b * log2(a)), a few ulp off even where the power is exact (100 ** 2 was 9999.998):
  // a square is one correctly rounded product, as torch computes it (mse's and BatchNorm's `** 2`)
  { name: 'x ** 1 -> x', op: 'pow', rewrite: (n, m) => (is(m, n.inputs[Y], 1) ? { value: n.inputs[X] } : null) },
  { name: 'x ** 2 -> x * x', op: 'pow', rewrite: (n, m) => (is(m, n.inputs[Y], 2) ? { op: 'mul', inputs: [n.inputs[X], n.inputs[X]], attrs: {} } : null) },
  {
    name: 'neg(neg(x)) -> x',
    op: 'neg',
    rewrite: (n, m) => {
      const inner = m.producer(n.inputs[X]);
      return inner?.op === 'neg' ? { value: inner.inputs[X] } : null;
    },
  },
  // optimize runs on graphs whose gradients are already built (autodiff comes first), where
  // stop_gradient is the identity; removing it lets fusion see through it (softmax's shift by the max)
  { name: 'stop_gradient(x) -> x', op: 'stop_gradient', rewrite: (n) => ({ value: n.inputs[X] }) },
  { name: 'cast(x: t, t) -> x', op: 'cast', rewrite: (n) => (n.attrs.dtype === n.inputs[X].type.dtype ? { value: n.inputs[X] } : null) },
  {
    name: 'transpose(transpose(x, p), q) -> transpose(x, p . q), or x',
    op: 'transpose',
    rewrite: (n, m) => {
      const inner = m.producer(n.inputs[X]);
      if (inner?.op !== 'transpose') return null;
      // output axis i is the inner result's axis q[i], which is x's axis p[q[i]]
      const p = inner.attrs.perm as readonly number[];
      const perm = (n.attrs.perm as readonly number[]).map((qi) => p[qi]);
      return perm.every((a, i) => a === i) ? { value: inner.inputs[X] } : { op: 'transpose', inputs: inner.inputs, attrs: { perm } };
    },
  },
  { name: 'transpose(x, identity) -> x', op: 'transpose', rewrite: (n) => ((n.attrs.perm as readonly number[]).every((a, i) => a === i) ? { value: n.inputs[X] } : null) },
  { name: 'reshape(x: s, s) -> x', op: 'reshape', rewrite: (n) => ({ value: n.inputs[X] }) },
  {
    name: 'reshape(reshape(x)) -> reshape(x)',
    op: 'reshape',
    rewrite: (n, m) => {
      const inner = m.producer(n.inputs[X]);
      // the outer node's resolved shape, not its attribute: a -1 there was resolved against the inner shape
      return inner?.op === 'reshape' ? { op: 'reshape', inputs: inner.inputs, attrs: { shape: [...n.outputs[0].type.shape] } } : null;
    },
  },
  { name: 'broadcast_to(x: s, s) -> x', op: 'broadcast_to', rewrite: (n) => ({ value: n.inputs[X] }) },
  // a slice from 0 by steps of 1 that keeps the shape keeps every element in place (b[None, :, None,
  // None] slices a bias whole before reshaping it), so it is no kernel of its own
  {
    name: 'slice(x: s, from 0 by 1) -> x when the result is s',
    op: 'slice',
    rewrite: (n) => {
      const starts = n.attrs.starts as readonly unknown[];
      const steps = (n.attrs.steps ?? starts.map(() => 1)) as readonly unknown[];
      return starts.every((a) => a === 0) && steps.every((a) => a === 1) ? { value: n.inputs[X] } : null;
    },
  },
  // a sum or max over axes of size 1 moves no value (the one element of each slot is the result, NaN
  // included): a reshape, which the memory plan aliases, instead of a reduction kernel
  ...(['reduce_sum', 'reduce_max'] as const).map(
    (op): Rule => ({ name: `${op}(x, axes of size 1) -> reshape(x)`, op, rewrite: (n) => reduceOfOnes(n) }),
  ),
];

function reduceOfOnes(n: Node): Rewrite | null {
  const x = n.inputs[X];
  const axes = reduceAxes(n.op, x.type, n.attrs);
  if (!Array.isArray(axes) || !axes.every((a) => x.type.shape[a] === 1)) return null;
  return { op: 'reshape', inputs: [x], attrs: { shape: [...n.outputs[0].type.shape] } };
}

const BY_OP = new Map<string, Rule[]>();
for (const r of RULES) BY_OP.set(r.op, [...(BY_OP.get(r.op) ?? []), r]);

/** Rewrites are tried per node until none applies, so `reshape(reshape(x, s), shape of x)` ends at x. */
const MAX_REWRITES_PER_NODE = 8;

export function simplify(g: Graph): Graph {
  const s = new Substitution();
  const defs = new Map<number, Node>();
  const match: Match = {
    producer: (v) => defs.get(v.id),
    constant: (v) => {
      const n = defs.get(v.id);
      const value = n?.op === 'full' ? n.attrs.value : undefined;
      return typeof value === 'number' || typeof value === 'boolean' ? wrap(v.type.dtype, Number(value)) : undefined;
    },
  };
  const nodes: Node[] = [];
  let changed = false;
  for (const original of g.nodes) {
    let n = s.node(original);
    let replaced: Value | null = null;
    for (let round = 0; round < MAX_REWRITES_PER_NODE && !replaced; round++) {
      const next = (BY_OP.get(n.op) ?? []).map((r) => apply(r, n, match)).find((r) => r !== null);
      if (!next) break;
      if ('value' in next) replaced = next.value;
      else n = next;
    }
    if (replaced) {
      s.set(n.outputs[0], replaced);
      changed = true;
      continue;
    }
    if (n !== original) changed = true;
    for (const o of n.outputs) defs.set(o.id, n);
    nodes.push(n);
  }
  return changed ? withNodes(g, nodes, s) : g;
}

/** The rule's proposal as a value or a node, if it keeps the output type exactly; null otherwise. */
function apply(rule: Rule, n: Node, m: Match): { value: Value } | Node | null {
  if (n.outputs.length !== 1) return null;
  const out = n.outputs[0];
  const r = rule.rewrite(n, m);
  if (!r) return null;
  if ('value' in r) return sameType(r.value.type, out.type) ? { value: r.value } : null;
  const inferred = inferOp(r.op, r.inputs.map((v) => v.type), r.attrs);
  if (isShapeError(inferred) || inferred.length !== 1 || !sameType(inferred[0], out.type)) return null;
  return { op: r.op, inputs: r.inputs, attrs: r.attrs, outputs: n.outputs, span: n.span };
}
