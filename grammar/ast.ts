// The abstract syntax tree of a .dl file: readonly plain data, a `kind` on every node, a source span on every node.

/** Half-open byte range [start, end) into the text of `file`. */
export interface Span {
  readonly file: string;
  readonly start: number;
  readonly end: number;
  /** For a graph node built inside the standard library: the user's call it ran under (profiles and reports name both). */
  readonly site?: Span;
}

/** Comments and blank lines kept on statement-like nodes so the formatter never loses them. */
export interface Trivia {
  /** Comment texts before the statement, in order; an empty string stands for a blank line between them. */
  readonly leading: readonly string[];
  readonly trailing: readonly string[];
  readonly blankBefore: boolean;
  /** The statement's bracketed lists written one item a line or with comments among their items (absent: none). */
  readonly lists?: readonly ListLayout[];
}

/** A bracketed list (arguments, list, tuple, hyperparameters) that `dlc fmt` keeps one item a line, comments beside their items. */
export interface ListLayout {
  /** Where the list's first item starts: it names the list. */
  readonly at: number;
  /** For each item, the comments on lines of their own before it. */
  readonly leading: readonly (readonly string[])[];
  /** For each item, the block comments just before it on its line, after the comma; absent when there are none. */
  readonly inline?: readonly (readonly string[])[];
  /** For each item, the comments after it on its line. */
  readonly trailing: readonly (readonly string[])[];
  /** The comments after the last item, before the closing bracket. */
  readonly end: readonly string[];
}

export interface Name {
  readonly kind: 'Name';
  readonly text: string;
  readonly span: Span;
}

// ---------------------------------------------------------------- expressions

export interface NumberLit { readonly kind: 'Number'; readonly text: string; readonly value: number; readonly isInt: boolean; readonly span: Span }
export interface StringLit { readonly kind: 'String'; readonly value: string; readonly span: Span }
export interface BoolLit { readonly kind: 'Bool'; readonly value: boolean; readonly span: Span }
export interface NoneLit { readonly kind: 'None'; readonly span: Span }
export interface Ident { readonly kind: 'Ident'; readonly name: string; readonly span: Span }
/** `...` inside a shape (a variadic prefix) or an index (all remaining axes). */
export interface EllipsisExpr { readonly kind: 'Ellipsis'; readonly span: Span }
export interface ListExpr { readonly kind: 'List'; readonly items: readonly Expr[]; readonly span: Span }
export interface TupleExpr { readonly kind: 'Tuple'; readonly items: readonly Expr[]; readonly span: Span }
export interface Comprehension {
  readonly kind: 'Comprehension';
  readonly element: Expr;
  readonly vars: readonly Name[];
  readonly iterable: Expr;
  readonly condition: Expr | null;
  readonly span: Span;
}
export type UnaryOp = '-' | '+' | 'not';
export interface Unary { readonly kind: 'Unary'; readonly op: UnaryOp; readonly operand: Expr; readonly span: Span }
export type BinaryOp =
  | 'or' | 'and'
  | '==' | '!=' | '<' | '<=' | '>' | '>='
  | '..'
  | '+' | '-'
  | '*' | '/' | '%' | '@'
  | '**';
export interface Binary { readonly kind: 'Binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr; readonly span: Span }
export interface Arg { readonly kind: 'Arg'; readonly name: Name | null; readonly value: Expr; readonly span: Span }
export interface Call { readonly kind: 'Call'; readonly callee: Expr; readonly args: readonly Arg[]; readonly span: Span }
export interface Slice { readonly kind: 'Slice'; readonly start: Expr | null; readonly stop: Expr | null; readonly step: Expr | null; readonly span: Span }
export type IndexItem = Expr | Slice;
export interface Index { readonly kind: 'Index'; readonly target: Expr; readonly items: readonly IndexItem[]; readonly span: Span }
/** `a.b`, `net.hidden.0` (a numeric member selects a list element), `net.*` (every member, in parameter paths). */
export interface Member { readonly kind: 'Member'; readonly target: Expr; readonly member: Name; readonly span: Span }
export interface Lambda { readonly kind: 'Lambda'; readonly params: readonly HyperParam[]; readonly body: Expr; readonly span: Span }
export interface CarryBinding { readonly kind: 'Carry'; readonly name: Name; readonly init: Expr; readonly span: Span }
/**
 * A recurrence over one axis of `source`: the body runs once per slice with `variables[0]` bound to it,
 * carried values are updated by assignment, and the values it `yield`s are stacked along the same axis.
 * After the scan the carried names hold their final values. With several variables (`scan x_t, m_t in
 * (x, m)`) the source is a tuple of as many tensors, sliced together, variable i bound to item i's slice.
 */
export interface Scan {
  readonly kind: 'Scan';
  readonly reverse: boolean;
  readonly variables: readonly Name[];
  readonly source: Expr;
  readonly axis: Expr | null;
  readonly carry: readonly CarryBinding[];
  readonly body: Block;
  readonly span: Span;
}
/** A compile-time conditional value: `if c { a } else { b }`. */
export interface IfExpr { readonly kind: 'IfExpr'; readonly condition: Expr; readonly then: Expr; readonly else: Expr; readonly span: Span }
/** Stands where the parser recovered from a syntax error; later stages skip it silently. */
export interface ErrorExpr { readonly kind: 'ErrorExpr'; readonly span: Span }

export type Expr =
  | NumberLit | StringLit | BoolLit | NoneLit | Ident | EllipsisExpr | ListExpr | TupleExpr | Comprehension
  | Unary | Binary | Call | Index | Member | Lambda | Scan | IfExpr | ErrorExpr;

// ---------------------------------------------------------------- types

/** `f32[B, 784]`, `f32[..., in]`, `f32[]` (a scalar), `int`, `int[]` (a list), `fn`. */
export interface TypeExpr { readonly kind: 'Type'; readonly name: Name; readonly dims: readonly Expr[] | null; readonly span: Span }

/** A hyperparameter, function parameter or forward argument: `name: type = default`. */
export interface HyperParam {
  readonly kind: 'HyperParam';
  readonly name: Name;
  readonly type: TypeExpr | null;
  readonly default: Expr | null;
  readonly span: Span;
}

// ---------------------------------------------------------------- statements

export interface Block { readonly kind: 'Block'; readonly stmts: readonly Stmt[]; readonly endComments: readonly string[]; readonly span: Span }

interface StmtBase { readonly span: Span; readonly trivia: Trivia }

export interface ParamStmt extends StmtBase { readonly kind: 'Param'; readonly name: Name; readonly type: TypeExpr; readonly init: Expr | null; readonly guard: Expr | null }
export interface StateStmt extends StmtBase { readonly kind: 'State'; readonly name: Name; readonly type: TypeExpr; readonly init: Expr | null; readonly guard: Expr | null }
export interface InputStmt extends StmtBase { readonly kind: 'Input'; readonly name: Name; readonly type: TypeExpr }
export interface OutputStmt extends StmtBase { readonly kind: 'Output'; readonly name: Name; readonly type: TypeExpr | null; readonly value: Expr }
export interface SubLayerStmt extends StmtBase { readonly kind: 'SubLayer'; readonly name: Name; readonly value: Expr; readonly guard: Expr | null }
export interface LetStmt extends StmtBase { readonly kind: 'Let'; readonly targets: readonly Name[]; readonly type: TypeExpr | null; readonly value: Expr }
export interface AssignStmt extends StmtBase { readonly kind: 'Assign'; readonly targets: readonly Name[]; readonly value: Expr }
export interface LossStmt extends StmtBase { readonly kind: 'Loss'; readonly name: Name | null; readonly value: Expr }
export interface MetricStmt extends StmtBase { readonly kind: 'Metric'; readonly name: Name; readonly value: Expr }
export interface WhereStmt extends StmtBase { readonly kind: 'Where'; readonly conditions: readonly Expr[] }
export interface ForwardStmt extends StmtBase {
  readonly kind: 'Forward';
  readonly params: readonly HyperParam[];
  readonly returns: readonly TypeExpr[];
  readonly body: Block | Expr;
}
export interface ReturnStmt extends StmtBase { readonly kind: 'Return'; readonly values: readonly Expr[] }
export interface YieldStmt extends StmtBase { readonly kind: 'Yield'; readonly values: readonly Expr[] }
export interface ForStmt extends StmtBase { readonly kind: 'For'; readonly vars: readonly Name[]; readonly iterable: Expr; readonly body: Block }
export interface IfStmt extends StmtBase { readonly kind: 'If'; readonly condition: Expr; readonly then: Block; readonly else: Block | null }

// train-block statements
export interface SettingStmt extends StmtBase { readonly kind: 'Setting'; readonly name: Name; readonly value: Expr }
export interface SettingBlockStmt extends StmtBase { readonly kind: 'SettingBlock'; readonly name: Name; readonly label: Name | null; readonly body: Block }
export interface FreezeStmt extends StmtBase { readonly kind: 'Freeze'; readonly targets: readonly Expr[] }
export interface StepStmt extends StmtBase { readonly kind: 'Step'; readonly name: Name; readonly body: Block }
export interface ObjectiveStmt extends StmtBase {
  readonly kind: 'Objective';
  readonly direction: 'minimize' | 'maximize';
  readonly loss: Expr;
  readonly over: readonly Expr[];
  readonly optimizer: Expr | null;
}

// top-level declarations
export type ImportList = { readonly kind: 'ImportAll'; readonly span: Span } | readonly ImportItem[] | null;
export interface ImportItem { readonly kind: 'ImportItem'; readonly name: Name; readonly alias: Name | null; readonly span: Span }
export interface UseDecl extends StmtBase {
  readonly kind: 'Use';
  /** `std.nn` as its dotted parts, or a relative file path as a string literal. */
  readonly source: readonly Name[] | StringLit;
  readonly imports: ImportList;
  readonly alias: Name | null;
}
export interface LayerDecl extends StmtBase { readonly kind: 'Layer'; readonly name: Name; readonly params: readonly HyperParam[]; readonly body: Block }
export interface ModelDecl extends StmtBase { readonly kind: 'Model'; readonly name: Name; readonly params: readonly HyperParam[]; readonly body: Block }
export interface FnDecl extends StmtBase {
  readonly kind: 'Fn';
  readonly name: Name;
  readonly params: readonly HyperParam[];
  readonly returns: readonly TypeExpr[];
  readonly body: Block | Expr;
}
export interface TrainDecl extends StmtBase { readonly kind: 'Train'; readonly model: Name; readonly args: readonly Arg[] | null; readonly body: Block }

export type Stmt =
  | ParamStmt | StateStmt | InputStmt | OutputStmt | SubLayerStmt | LetStmt | AssignStmt | LossStmt | MetricStmt
  | WhereStmt | ForwardStmt | ReturnStmt | YieldStmt | ForStmt | IfStmt
  | SettingStmt | SettingBlockStmt | FreezeStmt | StepStmt | ObjectiveStmt
  | UseDecl | LayerDecl | ModelDecl | FnDecl | TrainDecl;

export type Decl = UseDecl | LayerDecl | ModelDecl | FnDecl | TrainDecl | LetStmt;

export interface Program { readonly kind: 'Program'; readonly file: string; readonly body: Block; readonly span: Span }

export type Node = Program | Block | Stmt | Expr | TypeExpr | HyperParam | Arg | Slice | Name | CarryBinding | ImportItem;

export const NO_TRIVIA: Trivia = { leading: [], trailing: [], blankBefore: false };
