// Which integer inputs a graph uses as indices (take, take_along_axis, one_hot's classes), through ops that keep their values, and the size of the axis each indexes: the runtime checks a batch's values against it.
import { normAxis, typeStr } from '../ops/util.ts';
import { graphUses } from './uses.ts';
import type { Span } from '../../grammar/ast.ts';
import type { Dim } from '../shapes/dim.ts';
import type { Graph } from './types.ts';

/** One use of an input as indices: its values must lie in [0, bound). */
export interface IndexUse {
  readonly input: string;
  readonly bound: Dim;
  readonly op: 'take' | 'take_along_axis' | 'one_hot';
  /** The user's name of the indexed value (a parameter path such as `tok.weight`), when it has one. */
  readonly of?: string;
  /** The indexed value's type, `f32[B, 10]` (one_hot: its result's). */
  readonly type: string;
  readonly axis: number;
  readonly span: Span;
  /** A value the model sets aside before indexing (cross_entropy's ignore_index): allowed besides [0, bound). */
  readonly ignore?: number;
}

/** Ops whose result holds only values of their operands (movement, casts between integer types): indices stay indices. */
const KEEPS_VALUES = new Set(['reshape', 'transpose', 'broadcast_to', 'slice', 'concat', 'stop_gradient']);
const INT_TYPES = new Set(['i32', 'u32']);

/** Every use of an integer input as indices, once per (input, op node). Pure. */
export function indexInputs(g: Graph): IndexUse[] {
  const { consumers, producer } = graphUses(g);
  const producerOf = (id: number) => {
    const at = producer.get(id);
    return at === undefined ? undefined : g.nodes[at];
  };
  /** The integer a scalar `full` holds, if `v` is one. */
  const constant = (v: { id: number }): number | undefined => {
    const n = producerOf(v.id);
    return n?.op === 'full' && typeof n.attrs.value === 'number' && Number.isInteger(n.attrs.value) ? n.attrs.value : undefined;
  };
  const names = new Map(g.params.map((p) => [p.value.id, p.path]));
  const uses: IndexUse[] = [];
  for (const input of g.inputs) {
    if (!INT_TYPES.has(input.value.type.dtype)) continue;
    const seen = new Set<number>([input.value.id]);
    const frontier = [input.value.id];
    const ignoreOf = new Map<number, number>();
    while (frontier.length > 0) {
      const id = frontier.pop()!;
      const ignore = ignoreOf.get(id);
      for (const k of consumers.get(id) ?? []) {
        const node = g.nodes[k];
        // select(labels != k, labels, c): labels equal to k are set aside (ignore_index), the rest still index
        if (node.op === 'select' && node.inputs[1].id === id && constant(node.inputs[2]) !== undefined) {
          const cond = producerOf(node.inputs[0].id);
          const other = cond?.op === 'ne' ? cond.inputs.find((v) => v.id !== id) : undefined;
          const k2 = other && cond!.inputs.some((v) => v.id === id) ? constant(other) : undefined;
          if (k2 !== undefined && !seen.has(node.outputs[0].id)) {
            seen.add(node.outputs[0].id);
            ignoreOf.set(node.outputs[0].id, k2);
            frontier.push(node.outputs[0].id);
          }
          continue;
        }
        if ((node.op === 'take' || node.op === 'take_along_axis') && node.inputs[1].id === id) {
          const table = node.inputs[0];
          const axis = normAxis(node.attrs.axis as number, table.type.shape.length);
          if (axis === null) continue;
          const of = names.get(table.id) ?? table.name;
          uses.push({ input: input.name, bound: table.type.shape[axis], op: node.op, axis, type: typeStr(table.type), span: node.span, ...(of !== undefined ? { of } : {}), ...(ignore !== undefined ? { ignore } : {}) });
          continue;
        }
        // one_hot(labels, depth): a label past depth would give a row of zeros, a silently wrong target
        if (node.op === 'one_hot' && node.inputs[0].id === id) {
          const out = node.outputs[0].type;
          uses.push({ input: input.name, bound: node.attrs.depth as Dim, op: 'one_hot', axis: out.shape.length - 1, type: typeStr(out), span: node.span, ...(ignore !== undefined ? { ignore } : {}) });
          continue;
        }
        const keeps = KEEPS_VALUES.has(node.op) || (node.op === 'cast' && INT_TYPES.has(node.outputs[0].type.dtype));
        if (!keeps) continue;
        for (const out of node.outputs) {
          if (seen.has(out.id)) continue;
          seen.add(out.id);
          if (ignore !== undefined) ignoreOf.set(out.id, ignore);
          frontier.push(out.id);
        }
      }
    }
  }
  return uses;
}
