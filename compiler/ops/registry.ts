// The primitive registry: one entry per op carrying its shape rule, reference interpreter and (later) vjp and lowering.
import type { Attrs, DType, Node, TensorType, Value } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import type { KernelPlan } from '../codegen/kernel.ts';

/**
 * Why `infer` rejected its operands. `message` is in the project's diagnostic voice (lowercase, no
 * trailing period) and names the op and the shapes involved; `operand` is the argument the primary
 * label goes on and `otherOperand` the secondary one; `help` is present only for a concrete fix.
 */
export interface ShapeError {
  readonly message: string;
  readonly operand?: number;
  readonly otherOperand?: number;
  readonly help?: string;
}

export function isShapeError(r: readonly TensorType[] | ShapeError): r is ShapeError {
  return !Array.isArray(r);
}

/** What `interpret` may consult besides its operands: the bindings of symbolic sizes (B, T) for Dim attributes. */
export interface InterpretEnv {
  readonly sizes: ReadonlyMap<string, number>;
}

/**
 * Placeholder for the graph builder that autodiff hands to a `vjp` rule. A rule emits primitives through
 * `emit` (which runs `infer`) and returns one cotangent per input, or null where the input gets none.
 * Autodiff owns the real implementation and may widen this interface.
 */
export interface VjpContext {
  emit(op: string, inputs: readonly Value[], attrs?: Attrs): Value[];
}

/** A reverse-mode rule: given the primal inputs and outputs and the output cotangents, build input cotangents. */
export type VjpRule<A extends Attrs = Attrs> = (
  ctx: VjpContext,
  primals: { readonly inputs: readonly Value[]; readonly outputs: readonly Value[]; readonly attrs: A },
  cotangents: readonly (Value | null)[],
) => (Value | null)[];

/**
 * The lowering facet that codegen reads: either the fusion class plus the scalar WGSL expression of an
 * elementwise op, or (later) a whole-kernel emitter.
 *
 * Elementwise values live in registers as WGSL `f32`, `i32`, `u32` or `bool` (storage holds bool as
 * u32 0/1; codegen converts at the load and the store), so `expr` sees and returns those types.
 */
export interface LowerSpec {
  readonly kind: 'elementwise' | 'kernel';
  /**
   * For elementwise ops: WGSL for one element given its operand expressions (each evaluated once by
   * the caller, so an operand may appear several times), the result dtype and the operand dtypes.
   */
  readonly expr?: (args: readonly string[], attrs: Attrs, dtype: DType, inputDtypes: readonly DType[]) => string;
  /**
   * WGSL functions an expression may call, by function name; codegen emits those whose name the
   * generated expression mentions. A helper must not call another helper.
   */
  readonly helpers?: Readonly<Record<string, string>>;
  /**
   * For kind 'kernel': the node's dispatches (compiler/codegen/kernel.ts describes the binding
   * convention): usually one, several when one shader cannot do it within the limits (concat).
   */
  readonly kernel?: (node: Node) => readonly KernelPlan[];
}

/** 'fused': a kernel the fusion pass built from several primitives (fused_elementwise), after autodiff. */
export type OpFamily = 'elementwise' | 'reduction' | 'contraction' | 'movement' | 'gather' | 'random' | 'constant' | 'control' | 'fused';

export interface OpDef<A extends Attrs = Attrs> {
  readonly name: string;
  readonly family: OpFamily;
  /** Number of tensor inputs, or 'variadic' (concat: one or more; 'variadic0': none or more, a fused kernel of constants). */
  readonly arity: number | 'variadic' | 'variadic0';
  /** Which inputs a gradient flows to: per input, or all/none. */
  readonly differentiable: readonly boolean[] | 'all' | 'none';
  /** The attributes the op reads, with whether each is required (checked before `infer`). */
  readonly attrs: Readonly<Record<string, 'required' | 'optional'>>;
  /** Output dtypes and symbolic shapes, or why the operands do not fit. Pure. */
  infer(inputs: readonly TensorType[], attrs: A): TensorType[] | ShapeError;
  /** The float64 reference: concrete tensors in, concrete tensors out. */
  interpret(inputs: readonly Tensor[], attrs: A, env: InterpretEnv): Tensor[];
  vjp?: VjpRule<A>;
  lower?: LowerSpec;
}

const registry = new Map<string, OpDef>();

export function registerOp<A extends Attrs>(def: OpDef<A>): void {
  if (registry.has(def.name)) throw new Error(`op ${def.name} is registered twice`);
  registry.set(def.name, def as unknown as OpDef);
}

export function getOp(name: string): OpDef | undefined {
  return registry.get(name);
}

export function allOps(): OpDef[] {
  return [...registry.values()];
}

/**
 * `infer` with the generic checks every op shares: operand count and required/unknown attributes.
 * Passes call this rather than `def.infer` directly.
 */
export function inferOp(name: string, inputs: readonly TensorType[], attrs: Attrs = {}): TensorType[] | ShapeError {
  const def = registry.get(name);
  if (!def) return { message: `unknown primitive ${name}` };
  if (def.arity === 'variadic0' ? false : def.arity === 'variadic' ? inputs.length === 0 : inputs.length !== def.arity) {
    const want = def.arity === 'variadic' ? 'at least 1' : String(def.arity);
    return { message: `${name} takes ${want} operand${want === '1' ? '' : 's'}, found ${inputs.length}` };
  }
  for (const [key, need] of Object.entries(def.attrs)) {
    if (need === 'required' && attrs[key] === undefined) return { message: `${name} needs the attribute ${key}` };
  }
  for (const key of Object.keys(attrs)) {
    if (!(key in def.attrs)) return { message: `${name} has no attribute ${key}` };
  }
  return def.infer(inputs, attrs);
}
