// Extends a graph with new nodes, state buffers and results: the building block of autodiff, optimizers and passes.
import type { Span } from '../../grammar/ast.ts';
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, DType, Graph, InitSpec, Node, ParamInfo, StateInfo, TensorType, Value } from './types.ts';

const NOWHERE: Span = { file: '<generated>', start: 0, end: 0 };

/** The smallest value id above every id the graph defines (inputs, params, state, node outputs): where new values start. */
export function firstFreeId(g: Graph): number {
  let max = -1;
  const see = (v: Value) => {
    if (v.id > max) max = v.id;
  };
  g.inputs.forEach((i) => see(i.value));
  g.params.forEach((p) => see(p.value));
  g.state.forEach((s) => see(s.value));
  g.nodes.forEach((n) => n.outputs.forEach(see));
  return max + 1;
}

/**
 * Appends to a copy of a graph. `emit` runs the op's shape rule, so a pass that builds an ill-typed
 * node fails at once with the op and the types (an internal error, never a user diagnostic).
 */
export class GraphEditor {
  private nextId: number;
  readonly nodes: Node[];
  readonly state: StateInfo[];
  readonly params: ParamInfo[];
  readonly outputs: Map<string, Value>;
  readonly losses: Map<string, Value>;
  readonly metrics: Map<string, Value>;
  /** New value for a state buffer after the step (by path), on top of the graph's own updates. */
  readonly stateUpdates = new Map<string, Value>();
  /** New value for a parameter after the step (by path). */
  readonly paramUpdates = new Map<string, Value>();

  constructor(
    readonly base: Graph,
    private span: Span = NOWHERE,
  ) {
    this.nextId = firstFreeId(base);
    this.nodes = [...base.nodes];
    this.state = [...base.state];
    this.params = [...base.params];
    this.outputs = new Map(base.outputs);
    this.losses = new Map(base.losses);
    this.metrics = new Map(base.metrics);
  }

  /** Sets the span recorded on nodes emitted from now on (the .dl construct they implement). */
  at(span: Span): this {
    this.span = span;
    return this;
  }

  newValue(type: TensorType, name?: string): Value {
    return { id: this.nextId++, type, ...(name !== undefined ? { name } : {}) };
  }

  emit(op: string, inputs: readonly Value[], attrs: Attrs = {}, outputs?: number): Value[] {
    const inferred = inferOp(op, inputs.map((v) => v.type), attrs);
    if (isShapeError(inferred)) {
      throw new Error(`internal: ${op}(${inputs.map((v) => `%${v.id}`).join(', ')}) is ill-typed: ${inferred.message}`);
    }
    if (outputs !== undefined && inferred.length !== outputs) throw new Error(`internal: ${op} gives ${inferred.length} outputs, not ${outputs}`);
    const values = inferred.map((t) => this.newValue(t));
    this.nodes.push({ op, inputs, attrs, outputs: values, span: this.span });
    return values;
  }

  /** The one-output form of `emit`. */
  op(op: string, inputs: readonly Value[], attrs: Attrs = {}): Value {
    return this.emit(op, inputs, attrs, 1)[0];
  }

  scalar(value: number, dtype: DType = 'f32'): Value {
    return this.op('full', [], { shape: [], value, dtype });
  }

  addState(path: string, type: TensorType, init: InitSpec): Value {
    if (this.state.some((s) => s.path === path)) throw new Error(`internal: state ${path} exists already`);
    const value = this.newValue(type, path);
    this.state.push({ path, value, init, span: this.span });
    return value;
  }

  finish(name = this.base.name): Graph {
    const state = this.state.map((s) => {
      const update = this.stateUpdates.get(s.path);
      return update ? { ...s, update } : s;
    });
    const params = this.params.map((p) => {
      const update = this.paramUpdates.get(p.path);
      return update ? { ...p, update } : p;
    });
    return {
      ...this.base,
      name,
      nodes: this.nodes,
      params,
      state,
      outputs: this.outputs,
      losses: this.losses,
      metrics: this.metrics,
    };
  }
}
