// Reverse-mode differentiation at compile time: appends the backward pass of a scalar to a graph, using each op's vjp rule.
import '../ops/index.ts';
import { getOp } from '../ops/registry.ts';
import type { GraphEditor } from '../ir/editor.ts';
import { isFloat, type Node, type Value } from '../ir/types.ts';
import { dimEquals } from '../shapes/dim.ts';
import { typeText } from '../ir/print.ts';
import { sumCotangents } from './sum-cotangents.ts';

/**
 * Appends d(loss)/d(v) for every v in `wrt` to the editor's graph and returns them by value id.
 * Cotangents of values that fan out are summed; stop_gradient and non-differentiable inputs stop
 * the flow; a value the loss does not depend on gets exact zeros. Only nodes on a path from `wrt`
 * to `loss` are differentiated, so a GAN's generator step never builds the discriminator's gradients.
 */
export function addGradients(editor: GraphEditor, loss: Value, wrt: readonly Value[]): Map<number, Value> {
  if (loss.type.shape.length !== 0 || !isFloat(loss.type.dtype)) {
    throw new Error(`internal: can only differentiate a float scalar, not ${typeText(loss.type)}`);
  }
  const nodes = editor.nodes.slice();
  const producer = new Map<number, Node>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o.id, n);

  // values that depend on some wrt (forward reachability)
  const fromWrt = new Set(wrt.map((v) => v.id));
  for (const n of nodes) {
    if (n.op === 'stop_gradient') continue;
    if (n.inputs.some((v) => fromWrt.has(v.id))) for (const o of n.outputs) fromWrt.add(o.id);
  }
  // nodes the loss depends on (backward reachability)
  const toLoss = new Set<Node>();
  const stack = [loss];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v.id)) continue;
    seen.add(v.id);
    const n = producer.get(v.id);
    if (n && !toLoss.has(n)) {
      toLoss.add(n);
      stack.push(...n.inputs);
    }
  }

  // producers of the values the vjps emit too, indexed as they appear
  let indexed = nodes.length;
  const producerOf = (v: Value): Node | undefined => {
    for (; indexed < editor.nodes.length; indexed++) for (const o of editor.nodes[indexed].outputs) producer.set(o.id, editor.nodes[indexed]);
    return producer.get(v.id);
  };
  const cotangent = new Map<number, Value>();
  const accumulate = (v: Value, ct: Value, n: Node) => {
    if (ct.type.dtype !== v.type.dtype || ct.type.shape.length !== v.type.shape.length || !ct.type.shape.every((d, i) => dimEquals(d, v.type.shape[i]))) {
      throw new Error(`internal: the vjp of ${n.op} gave ${typeText(ct.type)} for an input of type ${typeText(v.type)}`);
    }
    const prev = cotangent.get(v.id);
    cotangent.set(v.id, prev ? sumCotangents(editor, producerOf, prev, ct) : ct);
  };
  cotangent.set(loss.id, editor.scalar(1, loss.type.dtype));

  const ctx = { emit: (op: string, inputs: readonly Value[], attrs = {}) => editor.emit(op, inputs, attrs) };
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (!toLoss.has(n) || !n.outputs.some((o) => fromWrt.has(o.id))) continue;
    const cts = n.outputs.map((o) => cotangent.get(o.id) ?? null);
    if (cts.every((c) => c === null) || n.op === 'stop_gradient') continue;
    const def = getOp(n.op)!;
    if (def.differentiable === 'none') continue;
    if (!def.vjp) throw new Error(`internal: the op ${n.op} has no vjp rule`);
    editor.at(n.span);
    const grads = def.vjp(ctx, { inputs: n.inputs, outputs: n.outputs, attrs: n.attrs }, cts);
    n.inputs.forEach((input, i) => {
      const g = grads[i];
      const differentiable = def.differentiable === 'all' || (Array.isArray(def.differentiable) && def.differentiable[i]);
      if (!g || !differentiable || !fromWrt.has(input.id) || !isFloat(input.type.dtype)) return;
      accumulate(input, g, n);
    });
  }

  const result = new Map<number, Value>();
  for (const v of wrt) {
    const g = cotangent.get(v.id);
    result.set(v.id, g ?? editor.op('full', [], { shape: v.type.shape, value: 0, dtype: v.type.dtype }));
  }
  return result;
}
