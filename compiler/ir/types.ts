// The IR's data: dtypes, tensor types with concrete or symbolic sizes, values, equations (nodes) and graphs.
import type { Span } from '../../grammar/ast.ts';
import type { Dim } from '../shapes/dim.ts';

export type DType = 'f32' | 'f16' | 'i32' | 'u32' | 'bool';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'i32', 'u32', 'bool'];

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f16';
}

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/** An SSA value: defined once, by a graph input, a parameter, a state buffer or one node's output. */
export interface Value {
  readonly id: number;
  readonly type: TensorType;
  /** The user's name for it, when it has one (a `let`, an input, a parameter path). */
  readonly name?: string;
}

/** Attribute values: numbers, sizes (possibly symbolic), strings, booleans and lists of them. */
export type AttrValue = number | string | boolean | Dim | null | readonly AttrValue[];
export type Attrs = Readonly<Record<string, AttrValue>>;

/** One equation: `outputs = op[attrs](inputs)`, carrying the .dl span it came from. */
export interface Node {
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly attrs: Attrs;
  readonly outputs: readonly Value[];
  readonly span: Span;
}

/** How a parameter or state buffer starts: an initializer name and its options. */
export interface InitSpec {
  readonly kind: string;
  readonly options: Readonly<Record<string, number>>;
}

export interface ParamInfo {
  /** The path users see and checkpoints use: `net.hidden.0.w`. */
  readonly path: string;
  readonly value: Value;
  readonly init: InitSpec;
  readonly span: Span;
  /** In a training graph: the parameter's value after the optimizer step. */
  readonly update?: Value;
}

export interface StateInfo {
  readonly path: string;
  readonly value: Value;
  readonly init: InitSpec;
  readonly span: Span;
  /** The value the state holds after a step (running statistics), when the graph updates it. */
  readonly update?: Value;
}

export interface InputInfo {
  readonly name: string;
  readonly value: Value;
  readonly span: Span;
}

/** One call of a layer instance, for summaries and diagrams: which values went in and came out. */
export interface LayerCall {
  readonly path: string;
  readonly layer: string;
  /** 0 for layers the model calls itself, 1 for layers those call, and so on. */
  readonly depth: number;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly span: Span;
}

/** A `where` over sizes only known at run time (`L <= ctx + 1`), checked when the sizes are bound. */
export interface SizeConstraint {
  readonly op: '==' | '!=' | '<' | '<=' | '>' | '>=';
  readonly left: Dim;
  readonly right: Dim;
  readonly text: string;
  readonly span: Span;
}

export interface Graph {
  readonly name: string;
  readonly inputs: readonly InputInfo[];
  readonly params: readonly ParamInfo[];
  readonly state: readonly StateInfo[];
  readonly nodes: readonly Node[];
  readonly outputs: ReadonlyMap<string, Value>;
  readonly losses: ReadonlyMap<string, Value>;
  readonly metrics: ReadonlyMap<string, Value>;
  /**
   * Whether a lower ('min') or higher ('max') value is better, for the losses (always 'min') and the
   * metrics whose definition says so (a std.metrics or std.loss call; compiler/elaborate/metric-direction.ts).
   */
  readonly directions?: ReadonlyMap<string, 'min' | 'max'>;
  readonly layerCalls: readonly LayerCall[];
  readonly constraints: readonly SizeConstraint[];
  /**
   * Paths that reach a tied layer instance again (`seq.items.0`, `pair.1`, `res.f`), each to the path
   * its parameters are saved under (`shared`): for the diagnostics of train statements that name them.
   */
  readonly aliases?: ReadonlyMap<string, string>;
}
