// Constant folding: a small node computed only from uniform constants is evaluated now and becomes a `full`.
import '../ops/index.ts';
import { getOp } from '../ops/registry.ts';
import type { AttrValue, Graph, Node } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { isConcrete } from '../shapes/dim.ts';

/** Folded results larger than this stay as they are: the point is scalars and splats, not baking tensors. */
export const FOLD_LIMIT = 1024;

function concreteAttr(a: AttrValue): boolean {
  if (Array.isArray(a)) return a.every(concreteAttr);
  return typeof a !== 'object' || a === null;
}

/** The tensor a `full` node makes, when its shape and value are known now. */
function constantOf(n: Node): Tensor | null {
  if (n.op !== 'full' || typeof n.attrs.value === 'object') return null;
  if (!n.outputs[0].type.shape.every(isConcrete)) return null;
  return getOp('full')!.interpret([], n.attrs, { sizes: new Map() })[0];
}

/** The single value all elements share (NaN included, 0 and -0 kept apart), or null. */
function uniform(t: Tensor): number | null {
  if (t.data.length === 0) return null;
  const v = t.data[0];
  for (let i = 1; i < t.data.length; i++) if (!Object.is(t.data[i], v)) return null;
  return v;
}

/**
 * Folds in one forward sweep, so a folded node feeds the next (`exp(full(0)) * full(2)` becomes one
 * `full`). The folded value is the f64 reference result; the output keeps its id, type and span.
 * Random ops are left alone (their draws are the device's to make), and so are nodes with symbolic
 * attributes, which need run-time sizes.
 */
export function fold(g: Graph): Graph {
  const constants = new Map<number, Tensor>();
  let changed = false;
  const nodes = g.nodes.map((n) => {
    const c = constantOf(n);
    if (c) {
      if (c.data.length <= FOLD_LIMIT) constants.set(n.outputs[0].id, c);
      return n;
    }
    const def = getOp(n.op);
    const out = n.outputs[0];
    if (!def || def.family === 'random' || n.outputs.length !== 1 || n.inputs.length === 0) return n;
    if (!n.inputs.every((v) => constants.has(v.id)) || !Object.values(n.attrs).every(concreteAttr)) return n;
    const shape = out.type.shape;
    if (!shape.every(isConcrete) || shape.reduce((a, b) => a * b, 1) > FOLD_LIMIT) return n;
    let result: Tensor;
    try {
      result = def.interpret(n.inputs.map((v) => constants.get(v.id)!), n.attrs, { sizes: new Map() })[0];
    } catch {
      return n;
    }
    const value = uniform(result);
    if (value === null || result.dtype !== out.type.dtype) return n;
    changed = true;
    const folded: Node = { op: 'full', inputs: [], attrs: { shape: [...shape], value, dtype: out.type.dtype }, outputs: n.outputs, span: n.span };
    constants.set(out.id, result);
    return folded;
  });
  return changed ? { ...g, nodes } : g;
}
