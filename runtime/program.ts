// The compiled model as data: what `dlc compile` embeds in a generated module and the runtime executes without the compiler.

/**
 * A size known at run time: a number, a symbolic size name (`B`), or an operation on sizes.
 * `['floor', a, b]` is floor division and `['mod', a, b]` floored modulo; `['^', a, n]` a power.
 */
export type SizeExpr = number | string | readonly ['+' | '*' | 'floor' | 'mod' | '^', ...SizeExpr[]];

/** Element types a buffer holds; bool is stored as u32 0/1. */
export type DType = 'f32' | 'i32' | 'u32' | 'bool';

export interface TensorDecl {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly SizeExpr[];
}

/** An integer input's use as indices: every value must lie in [0, bound), which the runtime checks for each batch. */
export interface IndexDecl {
  readonly bound: SizeExpr;
  /** What it indexes, for messages: "the rows of `tok.weight`", "axis 1 of `logits`". */
  readonly what: string;
  readonly source?: SourceSpan;
  /** A value set aside before indexing (cross_entropy's ignore_index), allowed besides [0, bound). */
  readonly ignore?: number;
}

/** A model input; `indices` when the model uses its values as indices (a label, a token). */
export interface InputDecl extends TensorDecl {
  readonly indices?: readonly IndexDecl[];
}

/** Where a tensor came from in the .dl file, for messages. */
export interface SourceSpan {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** For a kernel of the standard library's code: the user's call it ran under. */
  readonly caller?: { readonly file: string; readonly line: number; readonly col: number };
}

/** How a parameter or state buffer starts (see runtime/init.ts); `stream` makes each draw independent. */
export interface InitDecl {
  readonly kind: string;
  readonly options: Readonly<Record<string, number>>;
  readonly stream: number;
}

export interface ParamDecl {
  readonly path: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly init: InitDecl;
  /** Updated by some training step (false when frozen or never optimized). */
  readonly trainable: boolean;
  /** Where the parameter lives when it shares a buffer with others (see `ModelProgram.arenas`); else it has its own. */
  readonly arena?: ArenaRef;
}

export interface StateDecl {
  readonly path: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly init: InitDecl;
  /** Where the state buffer lives when it shares a buffer with others (see `ModelProgram.arenas`). */
  readonly arena?: ArenaRef;
}

/**
 * A model-level buffer that holds several parameters (or several state buffers) as ranges, so one
 * kernel can update them all (multi-tensor apply: compiler/optimize/fuse-updates.ts). Every range starts
 * at a multiple of the storage offset alignment the program was compiled for (`arenaAlignment`).
 */
export interface ArenaDecl {
  readonly kind: 'param' | 'state';
  readonly dtype: DType;
  /** Elements (4 bytes each). */
  readonly size: number;
}

/** A range of a model arena: it starts at element `offset` of `ModelProgram.arenas[arena]`. */
export interface ArenaRef {
  readonly arena: number;
  readonly offset: number;
}

/**
 * A buffer one graph uses: a model-level parameter or state buffer (by path), elements
 * [offset, offset + size) of a model arena (what a multi-tensor kernel binds), an input, or a temporary.
 * A temporary may name a memory `slot` (see `GraphProgram.slots`): temporaries of one slot are never
 * live at the same time and share one GPU buffer, sized for the largest of them at the bound sizes.
 * Without a slot a temporary has a buffer of its own. A temporary with a `view` has no buffer of its
 * own either: it is the elements from `view.offset` on of temporary `view.buffer` (a temporary arena:
 * gradients and new optimizer values that one multi-tensor kernel reads or writes together); views
 * have concrete shapes, offsets aligned like the model arenas', and never a slot.
 */
export type BufferDecl =
  | { readonly kind: 'param'; readonly path: string }
  | { readonly kind: 'state'; readonly path: string }
  | { readonly kind: 'arena'; readonly arena: number; readonly offset: number; readonly size: number }
  | { readonly kind: 'input'; readonly name: string; readonly dtype: DType; readonly shape: readonly SizeExpr[] }
  | { readonly kind: 'temp'; readonly dtype: DType; readonly shape: readonly SizeExpr[]; readonly name?: string; readonly slot?: number; readonly view?: TempView };

/** Where a temporary view lives: from element `offset` of temporary `buffer` (an index into `GraphProgram.buffers`). */
export interface TempView {
  readonly buffer: number;
  readonly offset: number;
}

/**
 * One dispatch. Binding 0 is the uniform buffer (`uniforms`, u32 words evaluated once the sizes are
 * bound), then the inputs (read-only storage), then the outputs (read-write storage). The shader
 * numbers its workgroups linearly (`wid.y * nwg.x + wid.x`); the runtime folds `workgroups` into two
 * grid dimensions when it exceeds the per-dimension limit.
 */
export interface KernelDecl {
  readonly op: string;
  /** Index into `ModelProgram.shaders`. */
  readonly shader: number;
  /** A variant for CPU adapters with the same bindings, uniforms and workgroups (index into `shaders`). */
  readonly cpuShader?: number;
  /**
   * Variants for CPU adapters with their own workgroup counts (the matmul's rows kernels, per-thread
   * reductions), in order of preference: the first whose `requires`, if any, is positive at the bound
   * sizes and whose `minSubgroupSize`, if any, the device's subgroups reach is used instead of `cpuShader`.
   */
  readonly cpuVariants?: readonly CpuVariantDecl[];
  /** A variant for devices with the `subgroups` feature (reductions), used where `shader` would be (index into `shaders`). */
  readonly subgroupShader?: number;
  /**
   * Variants for GPU adapters (wide matmul tiers, conv2d's reduction for few outputs), in order of
   * preference: the same bindings and uniforms, their own workgroup count; the first whose count at the
   * bound sizes reaches `minWorkgroups` (where the kernel's own count is at most `maxBaseWorkgroups`) is used.
   */
  readonly wide?: readonly WideVariantDecl[];
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  readonly uniforms: readonly SizeExpr[];
  readonly workgroups: SizeExpr;
  readonly source?: SourceSpan;
  /**
   * The kernel's results depend on nothing but the sizes (compiler/codegen/once.ts): the runtime
   * dispatches it when it prepares the graph for new sizes, and skips it at later runs.
   */
  readonly once?: boolean;
}

export interface CpuVariantDecl {
  readonly name: string;
  /** Index into `ModelProgram.shaders`. */
  readonly shader: number;
  readonly workgroups: SizeExpr;
  readonly requires?: SizeExpr;
  /** The shader uses subgroup operations: it needs the `subgroups` feature with subgroups of at least this many lanes. */
  readonly minSubgroupSize?: number;
}

export interface WideVariantDecl {
  readonly name: string;
  /** Index into `ModelProgram.shaders`. */
  readonly shader: number;
  readonly workgroups: SizeExpr;
  readonly minWorkgroups: number;
  /** Used only where the kernel's own grid has at most this many workgroups. */
  readonly maxBaseWorkgroups?: number;
}

export interface ConstraintDecl {
  readonly op: '==' | '!=' | '<' | '<=' | '>' | '>=';
  readonly left: SizeExpr;
  readonly right: SizeExpr;
  readonly text: string;
}

/** One executable graph: predict, evaluate, or one training step. */
export interface GraphProgram {
  readonly name: string;
  readonly buffers: readonly BufferDecl[];
  readonly kernels: readonly KernelDecl[];
  /** Input name to buffer index. */
  readonly inputs: Readonly<Record<string, number>>;
  /** Output, loss and metric names to buffer index (every buffer here can be read back). */
  readonly outputs: Readonly<Record<string, number>>;
  /** After the kernels: copy each source buffer into its target (new parameter and state values). */
  readonly updates: readonly { readonly target: number; readonly source: number }[];
  readonly constraints: readonly ConstraintDecl[];
  /**
   * The number of memory slots the compiler's memory plan (compiler/codegen/memory.ts) assigned the
   * temporaries to (`BufferDecl.slot` in 0..slots-1). Absent in programs compiled without a plan.
   */
  readonly slots?: number;
  /**
   * The inputs each result depends on in the graph before fusion (compiler/ir/input-dependencies.ts):
   * every output, loss and metric by name, and the parameter and state updates. A fused kernel may
   * read an input that none of the results asked for depends on; runtime/subset.ts gives it an
   * unwritten buffer instead of asking for the input. Absent: every input a kernel reads is needed.
   */
  readonly dependencies?: { readonly outputs: Readonly<Record<string, readonly string[]>>; readonly updates: readonly string[] };
}

export type SettingValue = number | boolean | string | null | readonly SettingValue[] | { readonly call: string; readonly args: Readonly<Record<string, SettingValue>> };

/** A layer the train block adapts (`adapt = [norm]`): the per-feature mean and variance of its input go into its two state buffers before training (runtime/adapt.ts). */
export interface AdaptDecl {
  readonly layer: string;
  /** The model input the layer is applied to. */
  readonly input: string;
  /** The state buffers set: `<layer>.mean` and `<layer>.variance`, f32 [d] with d the input's last axis. */
  readonly mean: string;
  readonly variance: string;
}

export interface TrainingDecl {
  /**
   * The train block's steps in order: each one's name, the loss it minimizes (or its objective's name),
   * the parameters it updates and, where its objective is an expression, the losses and metrics it reads.
   */
  readonly steps: readonly { readonly name: string; readonly loss: string; readonly params: readonly string[]; readonly maximize: boolean; readonly terms?: readonly string[] }[];
  /** The layers `adapt` names (absent when it names none). */
  readonly adapt?: readonly AdaptDecl[];
  /** The train block's remaining settings (data, batch, epochs, split, early_stopping, checkpoint, ...). */
  readonly settings: Readonly<Record<string, SettingValue>>;
}

export interface ModelProgram {
  readonly format: 'dlc-program';
  readonly version: 1;
  readonly model: string;
  readonly file: string;
  /** Symbolic sizes bound at run time from the inputs' lengths (usually just the batch B). */
  readonly sizes: readonly string[];
  readonly inputs: readonly InputDecl[];
  /** Declared outputs (`output probs = ...`). */
  readonly outputs: readonly TensorDecl[];
  readonly losses: readonly string[];
  readonly metrics: readonly string[];
  /**
   * The metrics that are tables (confusion_matrix's [C, C]), by name, with their shapes; the others are
   * scalars. A table is a sum over the examples, reported over a data set only (`evaluateSet`), from `graphs.totals`.
   */
  readonly tables?: Readonly<Record<string, readonly number[]>>;
  /** The losses and metrics that are means over the examples: over a data set, their batch values averaged by length (compiler/train/metric-totals.ts). */
  readonly means?: readonly string[];
  /**
   * Whether a lower ('min') or higher ('max') value is better, by loss or metric name: every loss, and
   * the metrics whose definition says (a std.metrics score rises, an error or loss falls). Early
   * stopping and a checkpoint's monitor take their default `mode` from it; a name absent needs one.
   */
  readonly directions?: Readonly<Record<string, 'min' | 'max'>>;
  readonly params: readonly ParamDecl[];
  readonly state: readonly StateDecl[];
  /** Buffers shared by several parameters or state buffers (`ParamDecl.arena`); absent when none are. */
  readonly arenas?: readonly ArenaDecl[];
  /** The storage offset alignment in bytes every arena range was placed for (absent without arenas). */
  readonly arenaAlignment?: number;
  readonly shaders: readonly string[];
  readonly graphs: {
    /** Evaluation mode, declared outputs only. */
    readonly predict: GraphProgram;
    /** Evaluation mode, outputs, losses and metrics. */
    readonly evaluate: GraphProgram;
    /** One per training step, in order (a GAN has two). */
    readonly steps: readonly GraphProgram[];
    /**
     * Losses and metrics over a whole data set from the evaluate graph's totals (its outputs `#total<k>`,
     * sums over the batch, added up over batches): this graph's inputs are those totals, its outputs the
     * quantities (precision, recall, F1, means). Absent when no loss or metric is such a function.
     */
    readonly totals?: GraphProgram;
    /**
     * By training step name: the graph finishing that step's totals (its outputs `#total<k>`, added up
     * over a training epoch) into the losses and metrics that are functions of them, as `totals` does
     * for a data set. Absent for a step without such quantities.
     */
    readonly stepTotals?: Readonly<Record<string, GraphProgram>>;
  };
  readonly training?: TrainingDecl;
}

/**
 * The step whose forward pass a reported training value comes from, when every step computes it: a
 * step's own loss or objective from that step, a term of a step's objective expression from the first
 * step that minimizes it (so an objective and its terms agree), undefined for anything else (then the
 * first step that computes it: the forward pass before any update on the batch, as with one step).
 */
export function reportingStep(training: TrainingDecl | undefined, name: string): string | undefined {
  const steps = training?.steps ?? [];
  return (steps.find((s) => s.loss === name) ?? steps.find((s) => s.terms?.includes(name)))?.name;
}

/** Every graph of a program: predict, evaluate, the training steps, and the totals' finishing graphs where there are some. */
export function programGraphs(program: ModelProgram): GraphProgram[] {
  const { predict, evaluate, steps, totals, stepTotals } = program.graphs;
  return [predict, evaluate, ...steps, ...(totals ? [totals] : []), ...Object.values(stepTotals ?? {})];
}
