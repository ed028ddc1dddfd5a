// A small graph builder for the fusion tests: inputs, nodes through the registry's shape rules, outputs.
import type { Attrs, Graph, InputInfo, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { inferOp, isShapeError } from '../compiler/ops/index.ts';
import type { Dim } from '../compiler/shapes/dim.ts';

/** The span every built node and input has. */
export const SPAN = { file: 'test.dl', start: 0, end: 0 };

let nextId = 0;

/** A fresh value of the given type (ids are unique within the process). */
export function newValue(type: TensorType): Value {
  return { id: nextId++, type };
}

export class GraphBuilder {
  readonly inputs: InputInfo[] = [];
  readonly nodes: Node[] = [];
  input(name: string, type: TensorType): Value {
    const value = newValue(type);
    this.inputs.push({ name, value, span: SPAN });
    return value;
  }
  /** A node of `op` (its shape rule must accept the operands); its first output. */
  op(op: string, inputs: readonly Value[], attrs: Attrs = {}): Value {
    const types = inferOp(op, inputs.map((v) => v.type), attrs);
    if (isShapeError(types)) throw new Error(`${op}: ${types.message}`);
    const outputs = types.map(newValue);
    this.nodes.push({ op, inputs, attrs, outputs, span: SPAN });
    return outputs[0];
  }
  graph(outputs: Record<string, Value>): Graph {
    return { name: 'g', inputs: this.inputs, params: [], state: [], nodes: this.nodes, outputs: new Map(Object.entries(outputs)), losses: new Map(), metrics: new Map(), layerCalls: [], constraints: [] };
  }
}

export const f32t = (...shape: Dim[]): TensorType => ({ dtype: 'f32', shape });

/** A scalar f32 constant node. */
export const scalar = (b: GraphBuilder, value: number): Value => b.op('full', [], { shape: [], value, dtype: 'f32' });
