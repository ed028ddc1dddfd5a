// Compile-time values of the elaborator: numbers, lists, tensors (graph values), layers, functions, initializers.
import type * as A from '../../grammar/ast.ts';
import type { DType, InitSpec, Value } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';

/** A tensor in the graph under construction, with the span that defined it (for secondary labels). */
export interface TensorV {
  readonly kind: 'tensor';
  readonly value: Value;
  readonly origin: A.Span;
  /** Set when the value is a parameter or state member: where it was declared and its path. */
  readonly member?: { readonly path: string; readonly state: boolean };
}

/** A value that stands for an error already reported; everything computed from it is silent (no cascades). */
export interface PoisonV {
  readonly kind: 'poison';
}

export interface LayerV {
  readonly kind: 'layer';
  readonly decl: A.LayerDecl;
  /** Its parameter path prefix (`net.hidden.0`); final once the statement that builds it has named it. */
  path: string;
  /** Hyperparameters, parameters, state, sublayers and lets of this instance. */
  readonly members: Map<string, CtValue>;
  readonly env: Env;
}

export interface ClosureV {
  readonly kind: 'closure';
  readonly name: string;
  readonly params: readonly A.HyperParam[];
  readonly body: A.Block | A.Expr;
  readonly returns: readonly A.TypeExpr[];
  readonly env: Env;
  readonly span: A.Span;
}

export interface BuiltinV {
  readonly kind: 'builtin';
  readonly name: string;
  /** Keyword arguments fixed by a partial application such as `leaky_relu(alpha: 0.2)` used as `act`. */
  readonly bound?: ReadonlyMap<string, CtValue>;
}

export interface LayerCtorV {
  readonly kind: 'layerCtor';
  readonly decl: A.LayerDecl;
  readonly env: Env;
}

export interface InitV {
  readonly kind: 'init';
  readonly spec: InitSpec;
}

export type CtValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'dim'; readonly value: Dim }
  | { readonly kind: 'dtype'; readonly value: DType }
  /** A list; `tuple` when it holds several results (`yield h, c`, `return a, b`), to unpack rather than index. */
  | { readonly kind: 'list'; readonly items: readonly CtValue[]; readonly tuple?: boolean }
  | TensorV
  | PoisonV
  | LayerV
  | ClosureV
  | BuiltinV
  | LayerCtorV
  | InitV
  /** A module named whole (`use std.nn as nn`): its exports are its members. */
  | { readonly kind: 'module'; readonly name: string; readonly env: Env; readonly exports: readonly string[] };

/** Lexical environment: a chain of mutable frames (reassignment updates the frame that binds the name). */
export class Env {
  private readonly vars = new Map<string, CtValue>();
  /** Names declared by `state` in this frame: assigning to one of them updates the buffer. */
  private readonly stateNames = new Set<string>();
  constructor(readonly parent: Env | null) {}

  defineState(name: string, value: CtValue): void {
    this.vars.set(name, value);
    this.stateNames.add(name);
  }

  /** Whether `name`, as seen from here, is a state declaration (not a let that happens to hold one). */
  isState(name: string): boolean {
    if (this.vars.has(name)) return this.stateNames.has(name);
    return this.parent?.isState(name) ?? false;
  }

  define(name: string, value: CtValue): void {
    this.vars.set(name, value);
  }

  lookup(name: string): CtValue | undefined {
    return this.vars.get(name) ?? this.parent?.lookup(name);
  }

  /** Names a statement here leaves unbound on purpose, each with why (a `param ... if bias` whose guard is false, a metric). */
  private readonly absent = new Map<string, { readonly message: string; readonly help?: string }>();

  /** Records why `name` has no value here, for the error at a use. */
  markAbsent(name: string, why: { readonly message: string; readonly help?: string }): void {
    if (!this.vars.has(name)) this.absent.set(name, why);
  }

  /** Why `name` has no value as seen from here, if a statement said (the nearest frame that mentions it). */
  whyAbsent(name: string): { readonly message: string; readonly help?: string } | undefined {
    if (this.vars.has(name)) return undefined;
    return this.absent.get(name) ?? this.parent?.whyAbsent(name);
  }

  /** Rebinds `name` in the nearest frame that has it; returns false if none does. */
  assign(name: string, value: CtValue): boolean {
    if (this.vars.has(name)) {
      this.vars.set(name, value);
      return true;
    }
    return this.parent?.assign(name, value) ?? false;
  }

  child(): Env {
    return new Env(this);
  }
}

export const POISON: PoisonV = { kind: 'poison' };
export const NONE: CtValue = { kind: 'none' };

/** A size as a value: a plain int when it is concrete. */
export function dimValue(d: Dim): CtValue {
  return typeof d === 'number' ? { kind: 'int', value: d } : { kind: 'dim', value: d };
}

export function describe(v: CtValue): string {
  switch (v.kind) {
    case 'tensor':
      return 'a tensor';
    case 'list':
      return v.tuple ? `a tuple of ${v.items.length} values` : 'a list';
    case 'layer':
      return `a ${v.decl.name.text} layer`;
    case 'closure':
    case 'builtin':
      return 'a function';
    case 'layerCtor':
      return `the layer ${v.decl.name.text}`;
    case 'init':
      return 'an initializer';
    case 'module':
      return `the module ${v.name}`;
    case 'dim':
      return 'a size';
    case 'none':
      return 'None';
    default:
      return `${v.kind === 'int' ? 'an' : 'a'} ${v.kind}`;
  }
}

/** f16 values need WebGPU's shader-f16 feature (Chromium's SwiftShader lacks it), and nothing lowers them yet. */
export const F16_UNSUPPORTED = "f16 tensors are not supported yet: they need WebGPU's shader-f16 feature, and dlc does not lower them";
