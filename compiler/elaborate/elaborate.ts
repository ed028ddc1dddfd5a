// Elaboration: runs the compile-time part of a program (layers, loops, ifs, fns, scans) and emits one typed graph per model.
import type * as A from '../../grammar/ast.ts';
import { printExpr, printType } from '../../grammar/printer.ts';
import { diagnostic, foreignKeyword, type Diagnostic, type Label } from '../diagnostics/diagnostic.ts';
import { INITIALIZER_SIGNATURES, paramName, signatureText } from './builtin-signatures.ts';
import type { DType, Graph, TensorType, Value } from '../ir/types.ts';
import { DTYPES } from '../ir/types.ts';
import * as D from '../shapes/dim.ts';
import { DimUnifier } from '../shapes/unify.ts';
import { callBuiltin, checkArguments, BUILTIN_NAMES, INITIALIZERS } from './builtins.ts';
import { GraphBuilder, typeToString, type Operand } from './builder.ts';
import { describe, dimValue, Env, F16_UNSUPPORTED, NONE, POISON, type CtValue, type LayerV, type TensorV } from './values.ts';
import { fileExports, STD_MODULES } from '../resolve/prelude.ts';
import { metricDirection } from './metric-direction.ts';

export interface ElaborateOptions {
  /** Parsed standard-library and imported modules whose declarations are visible to the program. */
  readonly modules?: readonly A.Program[];
  /**
   * Where each file's local imports lead: importer file -> (the path as written in its `use` -> the
   * imported module's file). Each such module is a scope of its own, seen only through `use`.
   */
  readonly imports?: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Build the training variant (dropout active, batch statistics) or the evaluation variant. */
  readonly training?: boolean;
  /** Hyperparameters for a model, overriding its defaults (from a train block or the caller). */
  readonly modelArgs?: ReadonlyMap<string, readonly A.Arg[]>;
  /**
   * Per model, the layers (by path) that run as in evaluation inside the training variant: frozen
   * layers under `freeze_mode = "inference"` (batch norm with its running statistics, no dropout).
   */
  readonly inferenceLayers?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface ElaborateResult {
  readonly graphs: ReadonlyMap<string, Graph>;
  readonly diagnostics: readonly Diagnostic[];
}

/** Thrown to unwind a body once an error has been reported inside it; caught at the model. */
class Abort extends Error {}

const MAX_CALL_DEPTH = 200;
/** The most items a compile-time range (`0..n`) may have: loops and comprehensions over it are unrolled. */
const MAX_RANGE = 1_000_000;
/** The most values a list written as a tensor may hold (each is one node until the optimizer folds them). */
const MAX_LIST_TENSOR = 10_000;

export function elaborate(program: A.Program, options: ElaborateOptions = {}): ElaborateResult {
  const diagnostics: Diagnostic[] = [];
  const graphs = new Map<string, Graph>();
  const root = new Env(null);
  for (const name of BUILTIN_NAMES) root.define(name, { kind: 'builtin', name });
  for (const name of Object.keys(INITIALIZERS)) root.define(name, { kind: 'init', spec: { kind: name, options: {} } });
  for (const d of DTYPES) root.define(d, { kind: 'dtype', value: d });
  // The library lives in its own scope: a user's `fn softplus` does not replace the one stdlib losses call.
  const libraryEnv = root.child();
  const local = new Set([...(options.imports?.values() ?? [])].flatMap((m) => [...m.values()]));
  const modules = options.modules ?? [];
  for (const m of modules) if (!local.has(m.file)) declare(m, libraryEnv);
  // each local file and the program: a scope of their own declarations and of what they import, so two
  // files' helpers of one name stay apart and `use ... as ...` renames
  const files = [...modules.filter((m) => local.has(m.file) && m.file !== program.file), program];
  const scopes = new Map(files.map((f) => [f.file, { env: libraryEnv.child(), exports: fileExports(f) }]));
  for (const f of files) declare(f, scopes.get(f.file)!.env, false);
  // imported files' constants before their importers'
  for (const f of [...files].reverse()) {
    importInto(f, scopes.get(f.file)!.env, (path) => scopes.get(options.imports?.get(f.file)?.get(path) ?? ''), libraryEnv);
    declareConstants(f, scopes.get(f.file)!.env, (d) => diagnostics.push(d));
  }
  const brokenConstants = diagnostics.length > 0;
  const fileEnv = scopes.get(program.file)!.env;
  for (const decl of program.body.stmts) {
    if (decl.kind !== 'Model') continue;
    const e = new Elaborator(decl.name.text, options.training ?? true, (d) => diagnostics.push(d), options.inferenceLayers?.get(decl.name.text));
    e.errorsBefore = brokenConstants;
    const graph = e.model(decl, fileEnv, options.modelArgs?.get(decl.name.text) ?? []);
    if (graph) graphs.set(decl.name.text, graph);
  }
  return { graphs, diagnostics };
}

/** A file's layers and functions in `env`, then (unless `constants` is false) its top-level constants. */
function declare(program: A.Program, env: Env, constants = true): void {
  for (const d of program.body.stmts) {
    if (d.kind === 'Layer') env.define(d.name.text, { kind: 'layerCtor', decl: d, env });
    else if (d.kind === 'Fn') {
      env.define(d.name.text, { kind: 'closure', name: d.name.text, params: d.params, body: d.body, returns: d.returns, env, span: d.span });
    }
  }
  if (constants) declareConstants(program, env);
}

/**
 * The names a file's `use` declarations bring into its scope: the items of a local file as the file
 * declares them (under their `as` names), renamed library items, and a module named whole
 * (`use std.nn as nn`, then `nn.Dense`). Library names are in every file's scope already.
 */
function importInto(program: A.Program, env: Env, localModule: (path: string) => { env: Env; exports: readonly string[] } | undefined, libraryEnv: Env): void {
  for (const d of program.body.stmts) {
    if (d.kind !== 'Use') continue;
    const std = Array.isArray(d.source);
    const name = std ? (d.source as readonly A.Name[]).map((p) => p.text).join('.') : (d.source as A.StringLit).value;
    const source = std ? (STD_MODULES[name] ? { env: libraryEnv, exports: STD_MODULES[name] } : undefined) : localModule(name);
    if (!source) continue; // name resolution reported it
    const value = (item: string) => (source.exports.includes(item) ? source.env.lookup(item) : undefined);
    if (d.imports === null) {
      const as = d.alias?.text ?? (std ? (d.source as readonly A.Name[]).at(-1)!.text : undefined);
      if (as !== undefined) env.define(as, { kind: 'module', name, env: source.env, exports: source.exports });
    } else if ('kind' in d.imports) {
      for (const item of source.exports) {
        const v = value(item);
        if (v) env.define(item, v);
      }
    } else {
      for (const item of d.imports as readonly A.ImportItem[]) {
        const v = value(item.name.text);
        if (v) env.define((item.alias ?? item.name).text, v);
      }
    }
  }
}

/**
 * A file's top-level constants, in order (they may use its declarations and imports). A constant that
 * cannot be evaluated is reported through `report` (a user's file), used or not, and stands for an
 * error already reported (a model that uses it adds nothing).
 */
function declareConstants(program: A.Program, env: Env, report: (d: Diagnostic) => void = () => {}): void {
  const scratch = new Elaborator('<constants>', false, report);
  for (const d of program.body.stmts) {
    if (d.kind !== 'Let') continue;
    try {
      scratch.letStmt(d, env);
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
      for (const t of d.targets) env.define(t.text, POISON);
    }
  }
}

export class Elaborator {
  readonly builder: GraphBuilder;
  private depth = 0;
  /** Layers a `layer` statement has named (namedLayers): their names are final. */
  private readonly registered = new Set<LayerV>();
  /** The layers and functions being built or called, innermost last (for the cycle E0308 names). */
  private readonly nesting: string[] = [];
  private tempLayers = 0;
  /** Set when errors were reported before this model (a broken constant): an abort on a value built from one needs no diagnostic of its own. */
  errorsBefore = false;
  /** The yields of the scan step being unrolled: their values, each value's span and the statement's. */
  private yields: { values: CtValue[]; spans: A.Span[]; span: A.Span }[] | null = null;

  constructor(
    name: string,
    readonly training: boolean,
    private readonly reportRaw: (d: Diagnostic) => void,
    private readonly inferenceLayers: ReadonlySet<string> = new Set(),
  ) {
    this.builder = new GraphBuilder(name, (d) => this.report(d));
    this.builder.siteOf = () => this.userCalls.at(-1);
  }

  /** Call sites in the user's own files, innermost last: errors inside the stdlib are shown at the user's call. */
  private readonly userCalls: A.Span[] = [];

  private reported = 0;

  /** Where a user sees `span`: itself in the user's files, the user's call when it is inside the stdlib. */
  userSpan(span: A.Span): A.Span {
    const site = this.userCalls.at(-1);
    return site && isLibrary(span.file) ? site : span;
  }

  private report(d: Diagnostic): void {
    if (this.silent) return;
    this.reported++;
    const site = this.userCalls.at(-1);
    if (site && isLibrary(d.span.file)) {
      this.reportRaw({
        ...d,
        span: site,
        label: d.label,
        secondary: [{ span: d.span, message: 'inside the standard library, here' }, ...d.secondary.filter((l) => !isLibrary(l.span.file))],
      });
      return;
    }
    this.reportRaw(this.withLayerCall(d));
  }

  /** The user's own layers whose forward is running, innermost last, with the span of each call. */
  private readonly userLayerCalls: { layer: LayerV; call: A.Span; built?: boolean }[] = [];

  /**
   * An error inside a user's layer that is called more than once names the instance that failed and
   * its hyperparameters, at the call (`in blocks.2 = Block(8, 8, stride: 2), called here`).
   */
  private withLayerCall(d: Diagnostic): Diagnostic {
    const frame = this.userLayerCalls.at(-1);
    if (!frame) return d;
    const decl = frame.layer.decl.span;
    if (d.span.file !== decl.file || d.span.start < decl.start || d.span.end > decl.end) return d;
    if (d.span.file === frame.call.file && d.span.start === frame.call.start) return d;
    const shown = (v: CtValue | undefined): string | undefined =>
      v === undefined ? undefined
      : v.kind === 'int' || v.kind === 'float' || v.kind === 'bool' ? String(v.value)
      : v.kind === 'string' ? JSON.stringify(v.value)
      : v.kind === 'dim' ? D.dimToString(v.value)
      : undefined;
    const args = frame.layer.decl.params.flatMap((p) => {
      const v = shown(frame.layer.members.get(p.name.text));
      return v === undefined ? [] : [`${p.name.text}: ${v}`];
    });
    const call = `${frame.layer.decl.name.text}(${args.join(', ')})`;
    // while a layer is being built its statement has not named it yet: the call is what the user wrote
    const message = frame.built ? `in ${call}, built here` : `in \`${frame.layer.path}\` = ${call}, called here`;
    return { ...d, secondary: [...d.secondary, { span: frame.call, message }] };
  }

  /** The value of `e` if it has one here, reporting nothing (undefined where evaluating it fails). */
  private valueIfAny(e: A.Expr, env: Env): CtValue | undefined {
    return this.quietly(() => {
      try {
        return this.expr(e, env);
      } catch (err) {
        if (err instanceof Abort) return undefined;
        throw err;
      }
    });
  }

  /** Runs f with diagnostics discarded (for best-effort display of declared types). */
  private quietly<T>(f: () => T): T {
    const saved = this.silent;
    this.silent = true;
    try {
      return f();
    } finally {
      this.silent = saved;
    }
  }
  private silent = false;

  private atCall<T>(span: A.Span, f: () => T): T {
    if (isLibrary(span.file)) return f();
    this.userCalls.push(span);
    try {
      return f();
    } finally {
      this.userCalls.pop();
    }
  }

  /** Reports a diagnostic and unwinds to the model (the value in progress cannot be built). */
  fail(code: Diagnostic['code'], message: string, span: A.Span, extra: { help?: string; label?: string; secondary?: readonly Label[] } = {}): never {
    this.report(diagnostic(code, message, span, extra));
    throw new Abort();
  }

  // ------------------------------------------------------------ models

  model(decl: A.ModelDecl, fileEnv: Env, args: readonly A.Arg[]): Graph | undefined {
    const env = fileEnv.child();
    env.define('training', { kind: 'bool', value: this.training });
    try {
      this.bindHyperParams(decl.params, args, env, fileEnv, decl.name.span);
      this.declareMultiples(decl.body, env);
      this.modelStatements(decl.body, env);
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
      if (process.env.DLC_DEBUG) console.error(e.stack);
      if (this.reported === 0 && !this.errorsBefore) {
        // an abort is always preceded by its diagnostic; if not, that is our bug, and it must not pass silently
        this.reportRaw(diagnostic('E0900', `elaboration of \`${decl.name.text}\` stopped without a diagnostic`, decl.name.span));
      }
      return undefined;
    }
    return this.builder.finish();
  }

  // ------------------------------------------------------------ statements

  /**
   * A model's top-level statements. Its `where` may stand anywhere among them: one that names a size
   * no input has bound yet (`where H % 2 == 0` above `input x: f32[B, 1, H, W]`) is checked once the
   * statements that bind its names have run.
   */
  private modelStatements(body: A.Block, env: Env): void {
    const ctx = { layerPath: '', layer: null };
    let waiting: A.WhereStmt[] = [];
    const unbound = (w: A.WhereStmt) => {
      let missing = false;
      for (const c of w.conditions) visitIdents(c, (n) => {
        if (env.lookup(n) === undefined) missing = true;
      });
      return missing;
    };
    for (const s of body.stmts) {
      if (s.kind === 'Where' && unbound(s)) {
        waiting.push(s);
        continue;
      }
      this.statement(s, env, ctx);
      const ready = waiting.filter((w) => !unbound(w));
      waiting = waiting.filter((w) => unbound(w));
      for (const w of ready) this.statement(w, env, ctx);
    }
    for (const w of waiting) this.statement(w, env, ctx);
  }

  private statements(block: A.Block, env: Env, ctx: { layerPath: string; layer: LayerV | null }): CtValue | undefined {
    for (const s of block.stmts) {
      const r = this.statement(s, env, ctx);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  /** Runs one statement; returns the value of a `return`, if it ran one. */
  private statement(s: A.Stmt, env: Env, ctx: { layerPath: string; layer: LayerV | null }): CtValue | undefined {
    const path = (name: string) => (ctx.layerPath ? `${ctx.layerPath}.${name}` : name);
    switch (s.kind) {
      case 'Input': {
        const type = this.typeOf(s.type, env, true);
        const t = this.builder.input(s.name.text, type, s.name.span);
        env.define(s.name.text, t);
        return undefined;
      }
      case 'Param':
      case 'State': {
        if (s.guard && !this.ctBool(s.guard, env)) {
          env.markAbsent(s.name.text, guardedOut(s.kind === 'Param' ? 'param' : 'state', s.name.text, s.guard));
          return undefined;
        }
        const type = this.typeOf(s.type, env, false);
        const unknown = type.shape.filter((d) => !D.isConcrete(d));
        if (unknown.length > 0) {
          const what = s.kind === 'Param' ? 'parameter' : 'state';
          this.fail('E0402', `the ${what} \`${s.name.text}\` is ${typeToString(type)}, with ${unknown.map(D.dimToString).join(', ')} known only when running; ${what === 'parameter' ? 'parameters' : 'state'} need sizes known when compiling`, s.type.span, {
            help: 'size it with hyperparameters or numbers (`param w: f32[hidden, 16]`); a size that changes per batch belongs to an input',
          });
        }
        const init = this.initializer(s.init, s.kind === 'Param' ? 'glorot_uniform' : 'zeros', env);
        const rows = type.shape[0];
        if (init.options.zero_row !== undefined && !(typeof rows === 'number' && init.options.zero_row < rows)) {
          this.fail('E0303', `\`zero_row: ${init.options.zero_row}\` is past the first axis of ${typeToString(type)}`, s.init?.span ?? s.name.span, { help: `a row of the first axis: 0 .. ${typeof rows === 'number' ? rows - 1 : 'its size - 1'}` });
        }
        const t =
          s.kind === 'Param'
            ? this.builder.param(path(s.name.text), type, init, s.name.span)
            : this.builder.stateBuffer(path(s.name.text), type, init, s.name.span);
        if (s.kind === 'State') env.defineState(s.name.text, t);
        else env.define(s.name.text, t);
        ctx.layer?.members.set(s.name.text, t);
        return undefined;
      }
      case 'SubLayer': {
        if (s.guard && !this.ctBool(s.guard, env)) {
          env.markAbsent(s.name.text, guardedOut('layer', s.name.text, s.guard));
          return undefined;
        }
        const named = this.namedLayers(path(s.name.text), () => this.expr(s.value, env), true);
        env.define(s.name.text, named);
        ctx.layer?.members.set(s.name.text, named);
        return undefined;
      }
      case 'Let':
        if (s.targets.length === 1) this.namedLayers(path(s.targets[0].text), () => (this.letStmt(s, env), env.lookup(s.targets[0].text)!));
        else this.letStmt(s, env);
        if (ctx.layer && s.targets.length === 1) ctx.layer.members.set(s.targets[0].text, env.lookup(s.targets[0].text)!);
        return undefined;
      case 'Assign': {
        const value = this.expr(s.value, env);
        const values = this.destructure(value, s.targets.length, s.value.span);
        s.targets.forEach((t, i) => {
          const previous = env.lookup(t.text);
          if (previous?.kind === 'tensor' && previous.member?.state && env.isState(t.text)) {
            this.updateState(previous, values[i], t.span);
            return;
          }
          if (!env.assign(t.text, values[i])) env.define(t.text, values[i]);
        });
        return undefined;
      }
      case 'Output': {
        const value = this.tensorOrPoison(this.expr(s.value, env), s.value.span, 'an output');
        if (value && s.type) this.checkDeclared(value, this.typeOf(s.type, env, false), s.value.span, `output \`${s.name.text}\``);
        if (value) this.builder.outputs.set(s.name.text, value.value);
        env.define(s.name.text, value ?? POISON);
        return undefined;
      }
      case 'Loss':
      case 'Metric': {
        const name = s.kind === 'Loss' ? (s.name?.text ?? 'loss') : s.name.text;
        const value = this.tensorOrPoison(this.expr(s.value, env), s.value.span, `a ${s.kind.toLowerCase()}`);
        if (value) {
          const t = value.value.type;
          // a metric may be a table of counts with a fixed shape (confusion_matrix's [C, C]); whether it
          // is a function of sums over the batch, as such a metric must be, is checked on the whole graph
          const table = s.kind === 'Metric' && t.shape.length > 0 && t.dtype === 'f32' && t.shape.every((d) => typeof d === 'number');
          if ((t.shape.length !== 0 && !table) || (s.kind === 'Loss' && t.dtype !== 'f32')) {
            this.report(
              diagnostic('E0302', `a ${s.kind.toLowerCase()} must be a scalar${s.kind === 'Loss' ? ' f32' : ' (or an f32 table of a fixed shape)'}, found ${typeToString(t)}`, s.value.span, {
                label: typeToString(t),
                help:
                  t.shape.length === 0
                    ? `cast it: cast(..., f32)`
                    : `reduce it, for example with mean(...)${s.kind === 'Loss' && t.dtype !== 'f32' ? `, of an f32 value (cast(..., f32))` : ''}${s.kind === 'Metric' ? '; a metric with a shape must be f32 with a fixed shape (no size such as B), a sum over the examples (confusion_matrix)' : ''}`,
              }),
            );
          } else {
            (s.kind === 'Loss' ? this.builder.losses : this.builder.metrics).set(name, value.value);
            // whether early stopping minimizes or maximizes it: a loss falls; a metric as its definition says
            const direction = s.kind === 'Loss' ? 'min' : metricDirection(s.value, env);
            if (direction) this.builder.directions.set(name, direction);
          }
        }
        // a named loss is bound, as name resolution promises (`loss total = recon + 0.1 * kl` after
        // `loss recon = ...`); metric names are not: `metric accuracy = accuracy(...)` must leave the
        // function visible
        if (s.kind === 'Loss' && s.name) env.define(name, value ?? POISON);
        if (s.kind === 'Metric') {
          env.markAbsent(name, {
            message: `\`${name}\` names a metric, and a metric does not bind its name`,
            help: `to use the value, bind it with \`let ${name} = ${exprText(s.value)}\` and report it with \`metric ${name} = ${name}\``,
          });
        }
        return undefined;
      }
      case 'Where': {
        // a string among the conditions is the help shown when one of them fails (`where C <= 2 or
        // average == "macro", "pass average: ..."`)
        const help = s.conditions.find((c): c is A.StringLit => c.kind === 'String')?.value;
        for (const c of s.conditions) if (c.kind !== 'String') this.constraint(c, env, help);
        return undefined;
      }
      case 'Forward':
        return undefined; // layers record their forward when instantiated
      case 'Return': {
        const values = s.values.map((v) => this.expr(v, env));
        return values.length === 1 ? values[0] : { kind: 'list', items: values, tuple: true };
      }
      case 'Yield': {
        if (!this.yields) this.fail('E0305', '`yield` outside a scan', s.span);
        this.yields.push({ values: s.values.map((v) => this.expr(v, env)), spans: s.values.map((v) => v.span), span: s.span });
        return undefined;
      }
      case 'For': {
        const items = this.iterate(this.expr(s.iterable, env), s.iterable.span);
        for (const item of items) {
          const inner = env.child();
          const parts = s.vars.length === 1 ? [item] : this.destructure(item, s.vars.length, s.iterable.span);
          s.vars.forEach((v, i) => inner.define(v.text, parts[i]));
          const r = this.forBody(s.body, inner, env, ctx);
          if (r !== undefined) return r;
        }
        return undefined;
      }
      case 'If': {
        const cond = this.ctBool(s.condition, env);
        if (cond) return this.forBody(s.then, env.child(), env, ctx);
        if (s.else) return this.forBody(s.else, env.child(), env, ctx);
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /**
   * Bodies of static `for` and `if` run in a child scope for their own lets, but members they declare
   * (params, sublayers, inputs) belong to the enclosing layer or model.
   */
  private forBody(block: A.Block, inner: Env, outer: Env, ctx: { layerPath: string; layer: LayerV | null }): CtValue | undefined {
    for (const s of block.stmts) {
      const isMember = s.kind === 'Param' || s.kind === 'State' || s.kind === 'SubLayer' || s.kind === 'Input' || s.kind === 'Output';
      const r = this.statement(s, isMember ? proxyEnv(inner, outer) : inner, ctx);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  letStmt(s: A.LetStmt, env: Env): void {
    const value = this.expr(s.value, env);
    if (s.type && value.kind === 'tensor') this.checkDeclared(value, this.typeOf(s.type, env, false), s.value.span, `\`${s.targets[0].text}\``);
    const values = this.destructure(value, s.targets.length, s.value.span);
    s.targets.forEach((t, i) => env.define(t.text, values[i]));
  }

  /**
   * A state buffer reads as its latest update in this graph: a layer with state called twice in one
   * step (a siamese encoder's BatchNorm) chains its updates in call order, as PyTorch's in-place ones do.
   */
  private currentState(v: CtValue): CtValue {
    if (v.kind !== 'tensor' || !v.member?.state) return v;
    const current = this.builder.stateValue(v.value);
    return current === v.value ? v : { ...v, value: current };
  }

  private updateState(state: TensorV, value: CtValue, span: A.Span): void {
    if (value.kind === 'poison') return;
    if (value.kind !== 'tensor') this.fail('E0307', `state \`${state.member!.path}\` can only be updated with a tensor`, span);
    if (!sameType(value.value.type, state.value.type)) {
      this.fail('E0302', `the update of state \`${state.member!.path}\` is ${typeToString(value.value.type)}, but it is declared ${typeToString(state.value.type)}`, span);
    }
    this.builder.setStateUpdate(state.value, value.value);
  }

  /**
   * Sizes the model's own `where` says are multiples (`where H % 2 == 0`, `where W % patch == 0`): read
   * before its inputs declare them, so that H is built as a multiple of 2 and `2*(H / 2)` (a pooled then
   * upsampled axis) is H itself. The condition is still checked whenever the sizes are bound.
   */
  private readonly multiples = new Map<string, number>();

  private declareMultiples(body: A.Block, env: Env): void {
    for (const s of body.stmts) {
      if (s.kind !== 'Where') continue;
      for (const c of s.conditions.flatMap(conjuncts)) {
        const fact = this.multipleFact(c, env, (name) => env.lookup(name) === undefined && /^[A-Z]/.test(name));
        if (fact) this.multiples.set(fact.name, lcm(this.multiples.get(fact.name) ?? 1, fact.step));
      }
    }
  }

  /** `N % k == 0` (or `0 == N % k`) for a size name N that `isSize` accepts and a whole k >= 2, else undefined. */
  private multipleFact(c: A.Expr, env: Env, isSize: (name: string) => boolean): { name: string; step: number } | undefined {
    if (c.kind !== 'Binary' || c.op !== '==') return undefined;
    const isZero = (e: A.Expr) => e.kind === 'Number' && e.value === 0;
    const rem = isZero(c.right) ? c.left : isZero(c.left) ? c.right : undefined;
    if (rem?.kind !== 'Binary' || rem.op !== '%' || rem.left.kind !== 'Ident' || !isSize(rem.left.name)) return undefined;
    const k = this.valueIfAny(rem.right, env);
    return k?.kind === 'int' && Number.isSafeInteger(k.value) && k.value >= 2 ? { name: rem.left.name, step: k.value } : undefined;
  }

  /** A constraint over sizes known only at run time is carried in the graph and checked when they are bound. */
  private constraint(c: A.Expr, env: Env, help?: string): void {
    if (c.kind === 'Binary' && c.op === 'and') {
      this.constraint(c.left, env, help);
      this.constraint(c.right, env, help);
      return;
    }
    let symbolic = false;
    visitIdents(c, (n) => {
      if (env.lookup(n)?.kind === 'dim') symbolic = true;
    });
    if (symbolic) {
      // a declared multiple is `k*(H / k)`, for which `H % k` is 0: the condition is carried as written
      const fact = this.depth === 0 ? this.multipleFact(c, env, (name) => this.multiples.has(name)) : undefined;
      if (fact) {
        this.builder.constraints.push({ op: '==', left: D.mod(D.sym(fact.name), fact.step), right: 0, text: exprText(c), span: c.span });
        return;
      }
      if (c.kind === 'Binary' && ['==', '!=', '<', '<=', '>', '>='].includes(c.op)) {
        const side = (e: A.Expr): D.Dim | undefined => {
          const v = this.expr(e, env);
          return v.kind === 'int' ? v.value : v.kind === 'dim' ? v.value : undefined;
        };
        const left = side(c.left);
        const right = side(c.right);
        if (left !== undefined && right !== undefined) {
          if (D.dividesByZero(left) || D.dividesByZero(right)) {
            this.fail('E0304', `the condition \`${printExpr(c)}\` divides a size by 0, so no batch could meet it${describeBindings(c, env)}`, c.span);
          }
          this.builder.constraints.push({ op: c.op as '==', left, right, text: exprText(c), span: c.span });
          return;
        }
      }
      // anything else would be carried as nothing, and never checked
      this.fail('E0304', `a condition on sizes is a comparison of whole numbers (==, !=, <, <=, >, >=), several joined with \`and\` or commas; \`${printExpr(c)}\` is not one`, c.span, {
        help: c.kind === 'Binary' && c.op === '%' ? `say what the remainder must be: \`where ${printExpr(c)} == 0\`` : 'write each condition as one comparison',
      });
    }
    const v = this.expr(c, env);
    if (v.kind === 'bool' && !v.value) {
      this.fail('E0304', `constraint \`${printExpr(c)}\` is false${describeBindings(c, env)}`, c.span, help === undefined ? {} : { help });
    }
  }

  // ------------------------------------------------------------ types and initializers

  /** Evaluates a tensor type; a capitalised unknown name in a shape becomes a symbolic size (and is bound in env). */
  typeOf(t: A.TypeExpr, env: Env, declareSymbols: boolean): TensorType {
    const dtype = t.name.text as DType;
    if (!DTYPES.includes(dtype)) this.fail('E0307', `\`${t.name.text}\` is not a tensor dtype (f32, f16, i32, u32 or bool)`, t.name.span);
    if (dtype === 'f16') this.fail('E0402', F16_UNSUPPORTED, t.name.span, { help: 'use f32' });
    if (t.dims === null) this.fail('E0307', `a tensor type needs a shape: \`${t.name.text}[...]\` (\`${t.name.text}[]\` for a scalar)`, t.span);
    const shape: D.Dim[] = [];
    for (const d of t.dims) {
      if (d.kind === 'Ellipsis') this.fail('E0014', '`...` is only allowed in forward argument and return types', d.span);
      shape.push(this.dimOf(d, env, declareSymbols));
    }
    return { dtype, shape };
  }

  private dimOf(d: A.Expr, env: Env, declareSymbols: boolean): D.Dim {
    if (d.kind === 'Ident' && env.lookup(d.name) === undefined && /^[A-Z]/.test(d.name)) {
      const step = declareSymbols && this.depth === 0 ? this.multiples.get(d.name) : undefined;
      const s = step ? D.symMultipleOf(d.name, step) : D.sym(d.name);
      if (declareSymbols) env.define(d.name, { kind: 'dim', value: s });
      return s;
    }
    const v = this.expr(d, env);
    if (v.kind === 'int') {
      if (v.value < 0) this.fail('E0305', `a size cannot be negative: \`${exprText(d)}\` is ${v.value}`, d.span);
      if (!Number.isSafeInteger(v.value)) this.fail('E0305', `a size must be a whole number below 2^53: \`${printExpr(d)}\` is ${v.value}`, d.span);
      return v.value;
    }
    if (v.kind === 'dim') return v.value;
    if (v.kind === 'poison') throw new Abort(); // reported where it arose
    // `f32[B, 4]` where a layer or function is called B: the name is taken, so it is no new size
    const taken = d.kind === 'Ident' && /^[A-Z]/.test(d.name);
    return this.fail('E0307', `a size must be an integer, found ${describe(v)}`, d.span, taken ? { help: `\`${d.name}\` here names ${describe(v)}, not a new size: rename one of them` } : {});
  }

  private initializer(e: A.Expr | null, fallback: string, env: Env): { kind: string; options: Record<string, number> } {
    if (!e) return { kind: fallback, options: {} };
    const v = this.expr(e, env);
    if (v.kind === 'init') return { kind: v.spec.kind, options: { ...v.spec.options } };
    // `zeros` and `ones` are also tensor builtins (zeros([B, n])); as an initializer they name the constant fill
    if (v.kind === 'builtin' && (v.name === 'zeros' || v.name === 'ones') && !v.bound) return { kind: v.name, options: {} };
    if (v.kind === 'int' || v.kind === 'float') return { kind: 'constant', options: { value: v.value } };
    return this.fail('E0307', `a parameter is initialized by an initializer (zeros, glorot_uniform, normal(std: 0.02), ...), found ${describe(v)}`, e.span);
  }

  /** An initializer call's options by name: positional values in the signature's order, every name checked. */
  private initOptions(kind: string, positional: readonly ArgValue[], named: ReadonlyMap<string, ArgValue>, span: A.Span): Record<string, number> {
    const signature = INITIALIZER_SIGNATURES[kind] ?? { params: [] };
    // `zero_row: i`, which every initializer takes by name: row i (along the first axis) starts at zero (Embedding's padding row)
    const zeroRow = named.get('zero_row');
    const own = new Map([...named].filter(([key]) => key !== 'zero_row'));
    checkArguments(this, kind, signature, positional, own);
    const names = signature.params.map(paramName);
    const usage = { help: `its parameters: ${signatureText(kind)}, and zero_row: i by name` };
    const options: Record<string, number> = {};
    positional.forEach((a, i) => (options[names[i]] = this.ctNumber(a.value, a.span)));
    for (const [key, a] of own) options[key] = this.ctNumber(a.value, a.span);
    if (zeroRow) {
      const row = this.ctNumber(zeroRow.value, zeroRow.span);
      if (!Number.isInteger(row) || row < 0) this.fail('E0303', `\`zero_row\` is the index of a row, a whole number of 0 or more, not ${row}`, zeroRow.span, usage);
      options.zero_row = row;
    }
    if (kind === 'constant' && !('value' in options)) this.fail('E0303', '`constant` needs the argument `value`', span, usage);
    if (kind === 'normal' && (options.std ?? 1) < 0) this.fail('E0303', `\`normal\` needs std >= 0, not ${options.std}`, named.get('std')?.span ?? positional[1]?.span ?? span, usage);
    if (kind === 'uniform' && (options.low ?? 0) > (options.high ?? 1)) this.fail('E0303', `\`uniform\` needs low <= high, not ${options.low ?? 0} > ${options.high ?? 1}`, span, usage);
    return options;
  }

  private checkDeclared(value: TensorV, declared: TensorType, span: A.Span, what: string): void {
    if (!sameType(value.value.type, declared)) {
      this.report(
        diagnostic('E0302', `${what} is ${typeToString(value.value.type)}, but its declared type is ${typeToString(declared)}`, span, {
          label: typeToString(value.value.type),
        }),
      );
    }
  }

  // ------------------------------------------------------------ expressions

  expr(e: A.Expr, env: Env): CtValue {
    switch (e.kind) {
      case 'Number':
        return e.isInt ? { kind: 'int', value: e.value } : { kind: 'float', value: e.value };
      case 'String':
        return { kind: 'string', value: e.value };
      case 'Bool':
        return { kind: 'bool', value: e.value };
      case 'None':
        return NONE;
      case 'Ident': {
        const v = env.lookup(e.name);
        if (v) return this.currentState(v);
        const why = env.whyAbsent(e.name);
        if (why) this.fail('E0201', why.message, e.span, why.help ? { help: why.help } : {});
        if (/^[A-Z]/.test(e.name)) {
          // name resolution takes an unknown capital name for a size, which an input or a signature binds
          this.fail('E0201', `the size \`${e.name}\` is not bound here: no input or signature before this point declares it`, e.span, {
            help: `a size gets its value from a type such as \`input x: f32[B, ${e.name}]\`; use it after that declaration`,
          });
        }
        // name resolution accepted it, so the prelude promises a name the elaborator does not provide
        this.report(diagnostic('E0201', `\`${e.name}\` is not available here`, e.span));
        return POISON;
      }
      case 'List':
      case 'Tuple':
        return { kind: 'list', items: e.items.map((x) => this.expr(x, env)) };
      case 'Comprehension': {
        const out: CtValue[] = [];
        for (const item of this.iterate(this.expr(e.iterable, env), e.iterable.span)) {
          const inner = env.child();
          const parts = e.vars.length === 1 ? [item] : this.destructure(item, e.vars.length, e.iterable.span);
          e.vars.forEach((v, i) => inner.define(v.text, parts[i]));
          if (e.condition && !this.ctBool(e.condition, inner)) continue;
          out.push(this.expr(e.element, inner));
        }
        return { kind: 'list', items: out };
      }
      case 'Unary':
        return this.unary(e, env);
      case 'Binary':
        return this.binary(e, env);
      case 'Call':
        return this.call(e, env);
      case 'Index':
        return this.index(e, env);
      case 'Member':
        return this.member(e, env);
      case 'Lambda':
        return { kind: 'closure', name: '<lambda>', params: e.params, body: e.body, returns: [], env, span: e.span };
      case 'IfExpr':
        return this.ctBool(e.condition, env) ? this.expr(e.then, env) : this.expr(e.else, env);
      case 'Scan':
        return this.scan(e, env);
      case 'Ellipsis':
        return this.fail('E0014', '`...` is only allowed in shapes and indices', e.span);
      case 'ErrorExpr':
        return POISON;
    }
  }

  ctBool(e: A.Expr, env: Env): boolean {
    const v = this.expr(e, env);
    if (v.kind === 'bool') return v.value;
    if (v.kind === 'poison') throw new Abort();
    if (v.kind === 'tensor') {
      return this.fail('E0305', 'a condition here must be known at compile time, but it is a tensor', e.span, {
        help: 'choose between tensors elementwise with select(cond, a, b)',
      });
    }
    return this.fail('E0307', `a condition must be a bool, found ${describe(v)}`, e.span);
  }

  private unary(e: A.Unary, env: Env): CtValue {
    const v = this.expr(e.operand, env);
    if (v.kind === 'poison') return v;
    if (e.op === 'not') {
      if (v.kind === 'bool') return { kind: 'bool', value: !v.value };
      if (v.kind === 'tensor') return this.emit1('logical_not', [{ tensor: v, span: e.operand.span }], {}, e.span);
    } else {
      const sign = e.op === '-' ? -1 : 1;
      if (v.kind === 'int' || v.kind === 'float') return { kind: v.kind, value: sign * v.value };
      if (v.kind === 'dim') return { kind: 'dim', value: sign === 1 ? v.value : D.sub(0, v.value) };
      if (v.kind === 'tensor') return sign === 1 ? v : this.emit1('neg', [{ tensor: v, span: e.operand.span }], {}, e.span);
    }
    return this.fail('E0307', `\`${e.op}\` cannot apply to ${describe(v)}`, e.operand.span);
  }

  private binary(e: A.Binary, env: Env): CtValue {
    if (e.op === 'and' || e.op === 'or') {
      const l = this.expr(e.left, env);
      if (l.kind === 'bool') {
        if (e.op === 'and' && !l.value) return l;
        if (e.op === 'or' && l.value) return l;
        return this.expr(e.right, env);
      }
      const r = this.expr(e.right, env);
      if (l.kind !== 'tensor' && l.kind !== 'poison') return this.fail('E0307', `\`${e.op}\` needs bools or bool tensors, found ${describe(l)}`, e.left.span);
      return this.tensorBinary(e.op === 'and' ? 'logical_and' : 'logical_or', l, r, e);
    }
    const l = this.expr(e.left, env);
    const r = this.expr(e.right, env);
    return this.binaryValues(e.op, l, r, e);
  }

  binaryValues(op: A.BinaryOp, l: CtValue, r: CtValue, e: { span: A.Span; left: { span: A.Span }; right: { span: A.Span } }): CtValue {
    if (l.kind === 'poison' || r.kind === 'poison') return POISON;
    if (op === '..') {
      const a = this.ctInt(l, e.left.span);
      const b = this.ctInt(r, e.right.span);
      if (b - a > MAX_RANGE) this.fail('E0309', `the range ${a}..${b} has ${(b - a).toLocaleString('en-US')} items, more than the ${MAX_RANGE.toLocaleString('en-US')} a compile-time range may have`, e.span);
      return { kind: 'list', items: Array.from({ length: Math.max(0, b - a) }, (_, i) => ({ kind: 'int', value: a + i }) as CtValue) };
    }
    // `x == None` asks whether an optional argument was given (a tensor is never None)
    if ((op === '==' || op === '!=') && (l.kind === 'none' || r.kind === 'none')) {
      const eq = l.kind === r.kind;
      return { kind: 'bool', value: op === '==' ? eq : !eq };
    }
    if (l.kind === 'tensor' || r.kind === 'tensor') {
      const prim = TENSOR_BINARY[op];
      if (!prim) return this.fail('E0307', `\`${op}\` does not apply to tensors`, e.span);
      return this.tensorBinary(prim, l, r, e);
    }
    if (l.kind === 'list' && r.kind === 'list' && op === '+') return { kind: 'list', items: [...l.items, ...r.items] };
    if ((l.kind === 'int' || l.kind === 'dim') && (r.kind === 'int' || r.kind === 'dim') && (l.kind === 'dim' || r.kind === 'dim')) {
      return this.dimBinary(op, l.value as D.Dim, r.value as D.Dim, e);
    }
    if (isNumber(l) && isNumber(r)) return this.numberBinary(op, l, r, e);
    // a float with a symbolic size (`1.0 / B`): the size as an f32 scalar, known when the graph runs
    const prim = TENSOR_BINARY[op];
    if (prim && ((l.kind === 'float' && r.kind === 'dim') || (l.kind === 'dim' && r.kind === 'float'))) {
      const f32 = (v: CtValue, span: A.Span): CtValue => (v.kind === 'dim' ? this.builder.constant(v.value, 'f32', span) : v);
      return this.tensorBinary(prim, f32(l, e.left.span), f32(r, e.right.span), e);
    }
    if ((op === '==' || op === '!=') && l.kind === r.kind && (l.kind === 'string' || l.kind === 'bool')) {
      const eq = l.value === (r as typeof l).value;
      return { kind: 'bool', value: op === '==' ? eq : !eq };
    }
    // lists compare item by item (shapes: `where shape(labels) == shape(logits)[:-1]`); sizes as `==` does
    if ((op === '==' || op === '!=') && l.kind === 'list' && r.kind === 'list') {
      const eq = l.items.length === r.items.length && l.items.every((a, i) => {
        const v = this.binaryValues('==', a, r.items[i], e);
        return v.kind === 'bool' && v.value;
      });
      return { kind: 'bool', value: op === '==' ? eq : !eq };
    }
    return this.fail('E0307', `\`${op}\` cannot combine ${describe(l)} and ${describe(r)}`, e.span);
  }

  private numberBinary(op: A.BinaryOp, l: CtValue & { value: number }, r: CtValue & { value: number }, e: { span: A.Span }): CtValue {
    const bothInt = l.kind === 'int' && r.kind === 'int';
    const a = l.value;
    const b = r.value;
    const num = (value: number, asInt = bothInt): CtValue => ({ kind: asInt ? 'int' : 'float', value });
    switch (op) {
      case '+':
        return num(a + b);
      case '-':
        return num(a - b);
      case '*':
        return num(a * b);
      case '/':
        if (b === 0) return this.fail('E0305', 'division by zero', e.span);
        // sizes divide with floor, like the shapes they describe; any float makes it a true division
        return bothInt ? num(Math.floor(a / b)) : num(a / b);
      case '%':
        if (b === 0) return this.fail('E0305', 'modulo by zero', e.span);
        return num(a - b * Math.floor(a / b));
      case '**':
        return num(a ** b, bothInt && b >= 0);
      case '==':
        return { kind: 'bool', value: a === b };
      case '!=':
        return { kind: 'bool', value: a !== b };
      case '<':
        return { kind: 'bool', value: a < b };
      case '<=':
        return { kind: 'bool', value: a <= b };
      case '>':
        return { kind: 'bool', value: a > b };
      case '>=':
        return { kind: 'bool', value: a >= b };
      default:
        return this.fail('E0307', `\`${op}\` does not apply to numbers`, e.span);
    }
  }

  private dimBinary(op: A.BinaryOp, a: D.Dim, b: D.Dim, e: { span: A.Span }): CtValue {
    const dim = (value: D.Dim): CtValue => (typeof value === 'number' ? { kind: 'int', value } : { kind: 'dim', value });
    switch (op) {
      case '+':
        return dim(D.add(a, b));
      case '-':
        return dim(D.sub(a, b));
      case '*':
        return dim(D.mul(a, b));
      case '/':
        return dim(D.floorDiv(a, b));
      case '%':
        return dim(D.mod(a, b));
      case '==':
        return { kind: 'bool', value: D.dimEquals(a, b) };
      case '!=':
        if (D.dimEquals(a, b)) return { kind: 'bool', value: false };
        break;
      default:
        break;
    }
    return this.fail('E0305', `\`${D.dimToString(a)} ${op} ${D.dimToString(b)}\` depends on sizes only known when the model runs`, e.span);
  }

  /** Elementwise ops between tensors and numbers; a number becomes a scalar of the tensor's dtype. */
  private tensorBinary(prim: string, l: CtValue, r: CtValue, e: { span: A.Span; left: { span: A.Span }; right: { span: A.Span } }): CtValue {
    if (l.kind === 'poison' || r.kind === 'poison') return POISON;
    if (l.kind !== 'tensor' && r.kind !== 'tensor') return this.fail('E0307', `this operation needs a tensor, found ${describe(l)} and ${describe(r)}`, e.span);
    const other = l.kind === 'tensor' ? l : (r as TensorV);
    const lt = this.asTensor(l, other, e.left.span);
    const rt = this.asTensor(r, other, e.right.span);
    return this.emit1(prim, [{ tensor: lt, span: e.left.span }, { tensor: rt, span: e.right.span }], {}, e.span);
  }

  asTensor(v: CtValue, like: TensorV | null, span: A.Span): TensorV {
    if (v.kind === 'tensor') return v;
    if (v.kind === 'int' || v.kind === 'float' || v.kind === 'bool') {
      const dtype: DType = like && !(v.kind === 'float' && !isFloatType(like)) ? like.value.type.dtype : v.kind === 'float' ? 'f32' : v.kind === 'bool' ? 'bool' : 'i32';
      return this.builder.constant(v.kind === 'bool' ? Number(v.value) : v.value, dtype, span);
    }
    // a size in arithmetic (`sum(x) / B`): the size, known when the graph runs, as a scalar of the other operand's dtype
    if (v.kind === 'dim') return this.builder.constant(v.value, like && like.value.type.dtype !== 'bool' ? like.value.type.dtype : 'i32', span);
    // a list of numbers (nested: rows of one length) is a constant tensor (`features - [0.0, 100.0]`)
    if (v.kind === 'list' && !v.tuple) return this.listTensor(v, like, span);
    const help = v.kind === 'none' ? { help: 'an optional tensor argument that was not given is None: test `mask != None` before using it' } : {};
    return this.fail('E0307', `expected a tensor or a number, found ${describe(v)}`, span, help);
  }

  /**
   * A list of numbers as a constant tensor: nested lists are its axes (`[[1, 2], [3, 4]]` is [2, 2]), each
   * value one `full` of shape [1], concatenated and reshaped. Its dtype is `dtype` when given, else f32
   * if any value is a float (or the other operand is f32), i32 for integers, bool for bools.
   */
  listTensor(v: CtValue & { kind: 'list' }, like: TensorV | null, span: A.Span, dtype?: DType): TensorV {
    const listHelp = {
      help: 'a list written where a tensor is expected must hold numbers (or rows of numbers of one length): `[0.0, 100.0]`, `[[1, 0], [0, 1]]`; `tensor(values, dtype: f32)` says the dtype',
    };
    const shape: number[] = [];
    const flat: { kind: 'int' | 'float' | 'bool'; value: number }[] = [];
    const walk = (x: CtValue, depth: number): void => {
      if (x.kind === 'poison') throw new Abort();
      if (x.kind === 'list' && !x.tuple) {
        if (x.items.length === 0) this.fail('E0305', 'an empty list has no values to make a tensor of', span, listHelp);
        if (depth === shape.length) {
          if (flat.length > 0) this.fail('E0301', 'the rows of this list nest to different depths: a tensor needs rows of one shape', span, listHelp);
          shape.push(x.items.length);
        } else if (depth > shape.length || shape[depth] !== x.items.length) {
          this.fail('E0301', `the rows of this list have different lengths (${shape[depth] ?? 'a number'} and ${x.items.length}): a tensor needs rows of one shape`, span, listHelp);
        }
        for (const item of x.items) walk(item, depth + 1);
        return;
      }
      if (x.kind !== 'int' && x.kind !== 'float' && x.kind !== 'bool') this.fail('E0307', `expected a tensor or a number, found a list holding ${describe(x)}`, span, listHelp);
      if (depth !== shape.length) this.fail('E0301', 'the rows of this list nest to different depths: a tensor needs rows of one shape', span, listHelp);
      flat.push({ kind: x.kind, value: Number(x.value) });
    };
    walk(v, 0);
    if (flat.length > MAX_LIST_TENSOR) this.fail('E0309', `a list of ${flat.length.toLocaleString('en-US')} values is more than the ${MAX_LIST_TENSOR.toLocaleString('en-US')} a constant tensor may have`, span, { help: 'feed large tables as an input, or a state buffer loaded from a checkpoint' });
    const kinds = new Set(flat.map((x) => x.kind));
    if (kinds.has('bool') && kinds.size > 1) this.fail('E0307', 'a list mixes bools and numbers: a tensor has one dtype', span, listHelp);
    const type: DType = dtype ?? (kinds.has('bool') ? 'bool' : kinds.has('float') || (like && like.value.type.dtype === 'f32') ? 'f32' : like && like.value.type.dtype !== 'bool' ? like.value.type.dtype : 'i32');
    const parts = flat.map((x) => this.builder.emit('full', [], { shape: [1], value: x.value, dtype: type }, span)[0] as TensorV);
    const joined = parts.length === 1 ? parts[0] : (this.builder.emit('concat', parts.map((t) => ({ tensor: t, span })), { axis: 0 }, span)[0] as TensorV);
    return shape.length === 1 ? joined : (this.builder.emit('reshape', [{ tensor: joined, span }], { shape }, span)[0] as TensorV);
  }

  emit1(op: string, operands: readonly Operand[], attrs: Record<string, unknown>, span: A.Span): CtValue {
    if (operands.some((o) => (o.tensor as CtValue).kind === 'poison')) return POISON;
    return this.builder.emit(op, operands, attrs as never, span)[0];
  }

  private call(e: A.Call, env: Env): CtValue {
    const callee = this.expr(e.callee, env);
    if (callee.kind === 'poison') return POISON;
    const positional: ArgValue[] = [];
    const named = new Map<string, ArgValue>();
    for (const a of e.args) {
      const value = this.expr(a.value, env);
      const items = a.value.kind === 'List' ? { itemSpans: a.value.items.map((x) => x.span) } : {};
      if (a.name) {
        if (named.has(a.name.text)) this.fail('E0303', `the argument \`${a.name.text}\` is given twice`, a.name.span);
        named.set(a.name.text, { value, span: a.value.span, nameSpan: a.name.span, ...items });
      } else positional.push({ value, span: a.value.span, ...items });
    }
    return this.apply(callee, positional, named, e.span, e.callee.span);
  }

  apply(
    callee: CtValue,
    positional: readonly ArgValue[],
    named: ReadonlyMap<string, ArgValue>,
    span: A.Span,
    calleeSpan: A.Span,
  ): CtValue {
    switch (callee.kind) {
      case 'builtin': {
        const allNamed = new Map(named);
        for (const [k, v] of callee.bound ?? []) if (!allNamed.has(k)) allNamed.set(k, { value: v, span });
        if (positional.length === 0 && allNamed.size > 0 && !BUILTINS_WITHOUT_TENSOR.has(callee.name)) {
          // `leaky_relu(alpha: 0.2)` used as a function value: a partial application
          return { kind: 'builtin', name: callee.name, bound: new Map([...allNamed].map(([k, v]) => [k, v.value])) };
        }
        return callBuiltin(this, callee.name, positional, allNamed, span);
      }
      case 'init':
        return { kind: 'init', spec: { kind: callee.spec.kind, options: this.initOptions(callee.spec.kind, positional, named, span) } };
      case 'closure':
        return this.atCall(span, () => this.callClosure(callee, positional, named, span));
      case 'layerCtor':
        return this.atCall(span, () => this.instantiate(callee, positional, named, span));
      case 'layer':
        return this.atCall(span, () => this.callLayer(callee, positional, named, span));
      default:
        return this.fail('E0307', `${describe(callee)} cannot be called`, calleeSpan);
    }
  }

  private bindArgs(
    params: readonly A.HyperParam[],
    positional: readonly ArgValue[],
    named: ReadonlyMap<string, ArgValue>,
    what: string,
  ): Map<string, ArgValue | undefined> {
    if (positional.length > params.length) {
      this.fail('E0303', `${what} takes ${params.length} argument${params.length === 1 ? '' : 's'}, but ${positional.length} were given`, positional[params.length].span);
    }
    const bound = new Map<string, ArgValue | undefined>();
    params.forEach((p, i) => bound.set(p.name.text, positional[i]));
    for (const [k, v] of named) {
      if (!params.some((p) => p.name.text === k)) {
        const names = params.map((p) => p.name.text);
        const at = v.nameSpan ?? v.span;
        const hint = foreignKeyword(k, names);
        this.fail('E0303', `${what} has no parameter \`${k}\``, at, names.length ? { help: `${hint ? `${hint} ` : ''}its parameters are ${names.join(', ')}` } : {});
      }
      if (bound.get(k)) this.fail('E0303', `the argument \`${k}\` is given twice`, v.span);
      bound.set(k, v);
    }
    return bound;
  }

  private bindHyperParams(params: readonly A.HyperParam[], args: readonly A.Arg[], env: Env, argEnv: Env, span: A.Span): void {
    const positional = args.filter((a) => !a.name).map((a) => ({ value: this.expr(a.value, argEnv), span: a.value.span }));
    const named = new Map<string, ArgValue>();
    for (const a of args.filter((b) => b.name)) {
      // `train M(h: 1, h: 2)`: not the last one silently, as in any call
      if (named.has(a.name!.text)) this.fail('E0303', `the argument \`${a.name!.text}\` is given twice`, a.span);
      named.set(a.name!.text, { value: this.expr(a.value, argEnv), span: a.value.span });
    }
    this.bindInto(params, positional, named, env, span, 'the model');
  }

  private bindInto(
    params: readonly A.HyperParam[],
    positional: readonly ArgValue[],
    named: ReadonlyMap<string, ArgValue>,
    env: Env,
    span: A.Span,
    what: string,
  ): void {
    const bound = this.bindArgs(params, positional, named, what);
    for (const p of params) {
      const given = bound.get(p.name.text);
      let value: CtValue;
      if (given) value = given.value;
      else if (p.default) value = this.expr(p.default, env);
      else return this.fail('E0303', `${what} needs the argument \`${p.name.text}\``, span);
      // a default of the wrong kind is the declaration's mistake: shown at the default
      if (p.type && value.kind !== 'tensor' && value.kind !== 'poison') value = this.checkHyper(p, value, given?.span ?? p.default?.span ?? span);
      // ... also when an argument overrides it, so a model checks the same whichever train block or --args it gets
      if (given && p.type && p.default) this.checkOverriddenDefault(p, p.default, env);
      env.define(p.name.text, value);
    }
  }

  /**
   * A default that an argument replaces is still checked against its declared kind (`k: int = "s"`).
   * One that cannot be evaluated here (it reads a hyperparameter bound after it) is left alone.
   */
  private checkOverriddenDefault(p: A.HyperParam, fallback: A.Expr, env: Env): void {
    const value = this.valueIfAny(fallback, env);
    if (value && value.kind !== 'tensor' && value.kind !== 'poison') this.checkHyper(p, value, fallback.span);
  }

  private checkHyper(p: A.HyperParam, v: CtValue, span: A.Span): CtValue {
    const t = p.type!;
    const base = t.name.text;
    const ok = (kinds: string[]) => kinds.includes(v.kind);
    if (t.dims !== null && !isTensorParam(t)) {
      if (v.kind !== 'list') this.fail('E0303', `\`${p.name.text}\` is declared ${base}[], found ${describe(v)}`, span);
      return v;
    }
    const valid =
      base === 'int' ? ok(['int', 'dim'])
      : base === 'float' ? ok(['int', 'float'])
      : base === 'bool' ? ok(['bool'])
      : base === 'string' ? ok(['string'])
      : base === 'fn' ? ok(['builtin', 'closure', 'layerCtor', 'layer'])
      : true;
    if (!valid) this.fail('E0303', `\`${p.name.text}\` is declared ${base}, found ${describe(v)}`, span);
    if (base === 'float' && v.kind === 'int') return { kind: 'float', value: v.value };
    return v;
  }

  private callClosure(
    c: Extract<CtValue, { kind: 'closure' }>,
    positional: readonly ArgValue[],
    named: ReadonlyMap<string, ArgValue>,
    span: A.Span,
  ): CtValue {
    if (this.depth >= MAX_CALL_DEPTH) this.fail('E0308', `calls nest deeper than ${MAX_CALL_DEPTH} levels${this.cycleText()}`, span);
    this.depth++;
    this.nesting.push(c.name);
    try {
      const env = c.env.child();
      env.define('training', { kind: 'bool', value: this.trainingHere() });
      const tensorParams = c.params.filter((p) => isTensorParam(p.type));
      const bound = this.bindArgs(c.params, positional, named, c.name === '<lambda>' ? 'the function' : `\`${c.name}\``);
      const unifier = this.unifierFor(tensorParams, c.returns, env);
      for (const p of c.params) {
        const given = bound.get(p.name.text);
        let value: CtValue;
        if (given) value = given.value;
        else if (p.default) value = this.expr(p.default, env);
        else return this.fail('E0303', `\`${c.name}\` needs the argument \`${p.name.text}\``, span);
        // an optional tensor (`mask: f32[B, T] = None`) may be None: the body tests `mask == None`
        if (tensorParams.includes(p) && value.kind === 'none' && p.default?.kind === 'None') env.define(p.name.text, value);
        else if (tensorParams.includes(p)) this.matchTensorArg(p, value, given?.span ?? span, unifier, env, c.name);
        else if (p.type && value.kind !== 'tensor' && value.kind !== 'poison') value = this.checkHyper(p, value, given?.span ?? p.default?.span ?? span);
        env.define(p.name.text, value);
      }
      this.bindSolved(unifier, env);
      const result = c.body.kind === 'Block' ? (this.statements(c.body, env, { layerPath: '', layer: null }) ?? NONE) : this.expr(c.body, env);
      return this.checkReturns(result, c.returns, env, span, unifier);
    } finally {
      this.depth--;
      this.nesting.pop();
    }
  }

  /** At E0308: the cycle the innermost calls repeat (`: Encoder → Decoder → Encoder → ...`), when they repeat one. */
  private cycleText(): string {
    const last = this.nesting.at(-1);
    if (last === undefined) return '';
    const before = this.nesting.lastIndexOf(last, this.nesting.length - 2);
    if (before < 0) return '';
    const cycle = this.nesting.slice(before);
    return `: ${cycle.map((n) => `\`${n}\``).join(' → ')} → ... (${cycle.length === 2 ? `\`${last}\` uses itself` : 'each uses the next'}, with no end)`;
  }

  // ------------------------------------------------------------ layers

  private layerPrefix = '';
  private layerCount = 0;
  private layerDepth = 0;

  /**
   * Evaluates a value whose layers are named `path` (one layer) or `path.0`, `path.1` (a list of them):
   * layers are built before they are named, under a temporary path that is renamed afterwards.
   */
  /**
   * Layers get the name of the statement that binds them (`layer blocks = [...]`: blocks.0, blocks.1);
   * a layer a `layer` statement named already keeps that name when another binds it again (`layer
   * alias = tok`, a head given `tok` to tie weights), as PyTorch keeps a module's first registration;
   * a `let` names a layer only until a `layer` statement does.
   */
  private namedLayers(path: string, f: () => CtValue, registers = false): CtValue {
    const savedPrefix = this.layerPrefix;
    const savedCount = this.layerCount;
    const own = `\u0000tmp${this.tempLayers++}`;
    this.layerPrefix = own;
    this.layerCount = 0;
    let value: CtValue;
    try {
      value = f();
    } finally {
      this.layerPrefix = savedPrefix;
      this.layerCount = savedCount;
    }
    const renames = new Map<string, string>();
    const rename = (v: CtValue, to: string): void => {
      if (v.kind === 'layer') {
        // a layer listed twice keeps its first name, and one a layer statement named keeps that
        if (renames.has(v.path) || this.registered.has(v)) {
          if (registers) this.builder.modelAliases.push({ path: to, layer: v });
          return;
        }
        renames.set(v.path, to);
        if (registers) this.registered.add(v);
      } else if (v.kind === 'list') v.items.forEach((item, i) => rename(item, `${to}.${i}`));
    };
    rename(value, path);
    // layers built here but not bound by it (`let y = Dense(10, 3)(x)`): their class and a count
    for (const l of this.builder.layers) {
      if (l.path.startsWith(`${own}#`) && !l.path.includes('.') && !renames.has(l.path) && !this.registered.has(l)) renames.set(l.path, this.unboundLayerName(l.decl.name.text));
    }
    this.builder.renamePrefixes(renames);
    return value;
  }

  /** Names of layers no statement binds, per prefix and class: `Dense_0`, `m.Dense_1` (a layer built in m's forward). */
  private readonly unboundCounts = new Map<string, number>();

  private unboundLayerName(cls: string): string {
    const owner = this.forwardOwners.at(-1);
    const base = owner ? `${owner.path}.${cls}_` : `${cls}_`;
    const n = this.unboundCounts.get(base) ?? 0;
    this.unboundCounts.set(base, n + 1);
    return `${base}${n}`;
  }

  /** How many forwards of layers that run as in evaluation (`inferenceLayers`) are running. */
  private inferenceDepth = 0;

  /** `training` where the elaborator is: false inside a frozen layer that runs as in evaluation. */
  private trainingHere(): boolean {
    return this.training && this.inferenceDepth === 0;
  }

  /** The layers whose forward is running, innermost last: a layer built inside a forward is named under its owner. */
  private readonly forwardOwners: LayerV[] = [];

  private instantiate(
    ctor: Extract<CtValue, { kind: 'layerCtor' }>,
    positional: readonly ArgValue[],
    named: ReadonlyMap<string, ArgValue>,
    span: A.Span,
  ): LayerV {
    if (this.depth >= MAX_CALL_DEPTH) this.fail('E0308', `layers nest deeper than ${MAX_CALL_DEPTH} levels${this.cycleText()}`, span);
    const path = this.layerPrefix ? `${this.layerPrefix}#${this.layerCount++}` : this.unboundLayerName(ctor.decl.name.text);
    const env = ctor.env.child();
    env.define('training', { kind: 'bool', value: this.trainingHere() });
    const layer: LayerV = { kind: 'layer', decl: ctor.decl, path, members: new Map(), env };
    this.builder.layers.push(layer);
    this.depth++;
    this.nesting.push(ctor.decl.name.text);
    const savedPrefix = this.layerPrefix;
    const savedCount = this.layerCount;
    // an error in a user's layer body (a `where` that fails) names the call that built this instance
    const userLayer = !isLibrary(ctor.decl.span.file);
    if (userLayer) this.userLayerCalls.push({ layer, call: span, built: true });
    try {
      this.bindInto(ctor.decl.params, positional, named, env, span, `\`${ctor.decl.name.text}\``);
      for (const p of ctor.decl.params) layer.members.set(p.name.text, env.lookup(p.name.text)!);
      this.statements(ctor.decl.body, env, { layerPath: path, layer });
    } finally {
      if (userLayer) this.userLayerCalls.pop();
      this.layerPrefix = savedPrefix;
      this.layerCount = savedCount;
      this.depth--;
      this.nesting.pop();
    }
    return layer;
  }

  private callLayer(
    layer: LayerV,
    positional: readonly ArgValue[],
    named: ReadonlyMap<string, ArgValue>,
    span: A.Span,
  ): CtValue {
    const forward = layer.decl.body.stmts.find((s): s is A.ForwardStmt => s.kind === 'Forward');
    if (!forward) return this.fail('E0307', `the layer \`${layer.decl.name.text}\` has no forward, so it cannot be called`, span);
    this.layerDepth++;
    this.forwardOwners.push(layer);
    // a layer built in the forward belongs to this layer, whatever statement the call is in
    const savedPrefix = this.layerPrefix;
    this.layerPrefix = '';
    const inference = this.inferenceLayers.has(layer.path);
    if (inference) this.inferenceDepth++;
    const userLayer = !isLibrary(layer.decl.span.file);
    if (userLayer) this.userLayerCalls.push({ layer, call: span });
    let result: CtValue;
    try {
      result = this.callClosure(
        { kind: 'closure', name: layer.decl.name.text, params: forward.params, body: forward.body, returns: forward.returns, env: layer.env, span: forward.span },
        positional,
        named,
        span,
      );
    } finally {
      if (userLayer) this.userLayerCalls.pop();
      if (inference) this.inferenceDepth--;
      this.layerDepth--;
      this.forwardOwners.pop();
      this.layerPrefix = savedPrefix;
    }
    const tensors = (vs: readonly CtValue[]): Value[] => vs.flatMap((v) => (v.kind === 'tensor' ? [v.value] : v.kind === 'list' ? tensors(v.items) : []));
    this.builder.layerCalls.push({
      layer,
      depth: this.layerDepth,
      inputs: tensors([...positional.map((a) => a.value), ...[...named.values()].map((a) => a.value)]),
      outputs: tensors([result]),
      span,
    });
    return result;
  }

  // ------------------------------------------------------------ tensor arguments and returns

  /**
   * The unifier of one call's signature. Its size variables are the capital names that are no
   * hyperparameter, each renamed apart (`signatureVar`): a layer's `L` is its own, bound from the
   * argument, even where the caller has a symbolic size `L` of its own (a GPT's tokens[:, :-1] is
   * [B, L - 1], which a block's forward(x: f32[B, L, d]) takes as its L).
   */
  private unifierFor(params: readonly A.HyperParam[], returns: readonly A.TypeExpr[], env: Env): SignatureUnifier {
    const names = new Set<string>();
    const collect = (t: A.TypeExpr | null) => {
      for (const d of t?.dims ?? []) visitIdents(d, (n) => {
        if (isSizeVariable(n, env)) names.add(n);
      });
    };
    for (const p of params) collect(p.type);
    for (const r of returns) collect(r);
    return Object.assign(new DimUnifier([...names].map(signatureVar)), { names });
  }

  /** Matches an argument's type against `f32[..., B, n]`, binding the forward's symbolic sizes. */
  private matchTensorArg(p: A.HyperParam, value: CtValue, span: A.Span, unifier: DimUnifier, env: Env, owner: string): void {
    if (value.kind === 'poison') throw new Abort();
    if (value.kind !== 'tensor') {
      const help = value.kind === 'list' && !value.tuple ? { help: `a list of numbers becomes a constant tensor with \`tensor(...)\`: \`tensor(values, dtype: ${p.type!.name.text})\`` } : {};
      this.fail('E0303', `\`${p.name.text}\` must be a tensor, found ${describe(value)}`, span, help);
    }
    const t = p.type!;
    const actual = value.value.type;
    const who = owner === '<lambda>' ? 'the function' : `\`${owner}\``;
    if (t.name.text !== actual.dtype) {
      this.fail('E0302', `${who} takes ${printType(t)} for \`${p.name.text}\`, but the argument is ${typeToString(actual)}`, span, { label: typeToString(actual) });
    }
    const dims = t.dims!;
    const ellipsis = dims.findIndex((d) => d.kind === 'Ellipsis');
    const fixed = ellipsis < 0 ? dims : dims.filter((d) => d.kind !== 'Ellipsis');
    const rankOk = ellipsis < 0 ? actual.shape.length === dims.length : actual.shape.length >= fixed.length;
    // the declared type with this call's hyperparameters filled in: f32[..., 748], not f32[..., in]
    // (a size variable as solved so far, in the caller's sizes; one not yet solved by its own name)
    const shown = (d: A.Expr): string => {
      if (d.kind === 'Ellipsis') return '...';
      try {
        const v = this.quietly(() => this.declaredDim(d, env, unifier));
        return D.dimToString(v).replaceAll(SIGNATURE_MARK, '');
      } catch {
        // not evaluable on its own: show it as written
      }
      return exprText(d);
    };
    const declaredText = `${t.name.text}[${dims.map(shown).join(', ')}]`;
    const declaredHere: Label[] = [{ span: t.span, message: `declared ${declaredText}` }];
    // a multi-axis input where one size is expected, whose sizes multiply to it: it wants flattening
    const flattenHelp = (): { help?: string } => {
      const last = fixed.at(-1);
      if (!last || actual.shape.length < 3) return {};
      const expected = this.quietly(() => this.declaredDim(last, env, unifier));
      const tail = actual.shape.slice(1).reduce<D.Dim>((a, b) => D.mul(a, b), 1);
      return D.dimEquals(tail, expected) ? { help: `flatten the input first: reshape it to [${D.dimToString(actual.shape[0])}, ${D.dimToString(expected)}]` } : {};
    };
    if (!rankOk) {
      this.fail('E0302', `${who} takes ${declaredText} for \`${p.name.text}\`, but the argument is ${typeToString(actual)}`, span, {
        label: typeToString(actual),
        secondary: declaredHere,
        ...flattenHelp(),
      });
    }
    const prefix = ellipsis < 0 ? 0 : actual.shape.length - fixed.length;
    if (ellipsis >= 0) env.define(`\u0000ellipsis`, { kind: 'list', items: actual.shape.slice(ellipsis, ellipsis + prefix).map(dimValue) });
    let k = 0;
    for (let i = 0; i < dims.length; i++) {
      const d = dims[i];
      if (d.kind === 'Ellipsis') {
        k += prefix;
        continue;
      }
      const expected = this.declaredDim(d, env, unifier);
      if (!unifier.unify(expected, actual.shape[k])) {
        this.fail('E0302', `${who} takes ${declaredText} for \`${p.name.text}\`, but the argument is ${typeToString(actual)}`, span, {
          label: typeToString(actual),
          secondary: declaredHere,
          ...flattenHelp(),
        });
      }
      k++;
    }
  }

  /**
   * A size in a forward's signature: a capital name that is no hyperparameter stays a variable for the
   * unifier to solve, even where the caller has a symbolic size of that name (a layer's `L` binds from
   * its argument, whatever the model calls its own `L`).
   */
  private declaredDim(d: A.Expr, env: Env, unifier: DimUnifier): D.Dim {
    const scoped = env.child();
    visitIdents(d, (n) => {
      if (isSizeVariable(n, env)) scoped.define(n, dimValue(unifier.resolve(D.sym(signatureVar(n)))));
    });
    const v = this.expr(d, scoped);
    if (v.kind === 'int') return v.value;
    if (v.kind === 'dim') return v.value;
    if (v.kind === 'poison') throw new Abort(); // reported where it arose
    return this.fail('E0307', `a size must be an integer, found ${describe(v)}`, d.span);
  }

  /** Every size variable of the signature becomes visible in the body: solved, or standing for itself (its own name). */
  private bindSolved(unifier: SignatureUnifier, env: Env): void {
    for (const name of unifier.names) {
      const v = D.sym(signatureVar(name));
      if (D.freeVars(unifier.resolve(v)).includes(signatureVar(name))) unifier.unify(v, D.sym(name));
      env.define(name, dimValue(unifier.resolve(v)));
    }
  }

  /** Checks a body's result against its `->` types; returns it (an int promised as a float becomes a float). */
  private checkReturns(result: CtValue, returns: readonly A.TypeExpr[], env: Env, span: A.Span, unifier: DimUnifier): CtValue {
    if (returns.length === 0 || result.kind === 'poison') return result;
    if (result.kind === 'none') {
      const promised = returns.map((r) => printType(r)).join(', ');
      this.fail('E0302', `the body ends without \`return\`, but promises ${promised}`, returns[0].span, { help: 'end it with `return <value>` (or write `= <expression>` after the signature)' });
    }
    const values = returns.length === 1 ? [result] : result.kind === 'list' ? result.items : [result];
    if (values.length !== returns.length) {
      this.fail('E0302', `expected ${returns.length} return values, found ${values.length}`, span);
    }
    const checked = values.map((v, i) => {
      const r = returns[i];
      if (v.kind === 'poison') return v;
      // a compile-time result: `-> int`, `-> float`, `-> bool`, `-> string`, `-> fn`, `-> int[]`
      if (!isTensorParam(r)) return this.checkCompileTimeReturn(v, r, span);
      if (v.kind !== 'tensor') this.fail('E0302', `the result should be a tensor (declared ${printType(r)}), found ${describe(v)}`, span, { secondary: [{ span: r.span, message: `declared ${printType(r)}` }] });
      // `-> f32[...]` promises only the dtype (a reduction may change the rank)
      if (r.dims?.length === 1 && r.dims[0].kind === 'Ellipsis') {
        if (v.value.type.dtype !== r.name.text) {
          this.report(diagnostic('E0302', `the result is ${typeToString(v.value.type)}, but the declared return dtype is ${r.name.text}`, span));
          throw new Abort();
        }
        return v;
      }
      const dims: D.Dim[] = [];
      for (const d of r.dims ?? []) {
        if (d.kind === 'Ellipsis') {
          const prefix = env.lookup('\u0000ellipsis');
          if (prefix?.kind === 'list') for (const item of prefix.items) dims.push(item.kind === 'dim' ? item.value : (item as { value: number }).value);
          continue;
        }
        dims.push(unifier.resolve(this.declaredDim(d, env, unifier)));
      }
      const declared: TensorType = { dtype: r.name.text as DType, shape: dims };
      if (!sameType(v.value.type, declared)) {
        this.report(
          diagnostic('E0302', `the result is ${typeToString(v.value.type)}, but the declared return type is ${typeToString(declared)}`, span, {
            label: typeToString(v.value.type),
            secondary: [{ span: r.span, message: `declared ${typeToString(declared)}` }],
          }),
        );
        throw new Abort();
      }
      return v;
    });
    if (returns.length === 1) return checked[0];
    return result.kind === 'list' ? { ...result, items: checked } : result;
  }

  /** A compile-time result against `-> int`, `float`, `bool`, `string`, `fn` or a list type (`int[]`). */
  private checkCompileTimeReturn(v: CtValue, r: A.TypeExpr, span: A.Span): CtValue {
    const base = r.name.text;
    const declared = printType(r);
    const valid =
      r.dims !== null ? v.kind === 'list'
      : base === 'int' ? v.kind === 'int' || v.kind === 'dim'
      : base === 'float' ? v.kind === 'int' || v.kind === 'float'
      : base === 'bool' ? v.kind === 'bool'
      : base === 'string' ? v.kind === 'string'
      : base === 'fn' ? ['builtin', 'closure', 'layerCtor', 'layer'].includes(v.kind)
      : true;
    if (!valid) {
      this.fail('E0302', `the result is ${describe(v)}, but the declared return type is ${declared}`, span, {
        secondary: [{ span: r.span, message: `declared ${declared}` }],
      });
    }
    if (base === 'float' && r.dims === null && v.kind === 'int') return { kind: 'float', value: v.value };
    return v;
  }

  // ------------------------------------------------------------ indexing and members

  private index(e: A.Index, env: Env): CtValue {
    const target = this.expr(e.target, env);
    if (target.kind === 'poison') return POISON;
    if (target.kind === 'list') {
      if (target.tuple && e.items.length !== 1) {
        const names = target.items.map((_, i) => String.fromCharCode(97 + (i % 26))).join(', ');
        this.fail('E0307', `\`${exprText(e.target)}\` is ${describe(target)} (from a \`yield\` or \`return\` of several values), not a tensor`, e.target.span, {
          help: `unpack it first: \`let ${names} = ...\`, then index one of them`,
        });
      }
      if (e.items.length !== 1) this.fail('E0305', 'a list takes one index', e.span);
      const item = e.items[0];
      if (item.kind === 'Slice') {
        const n = target.items.length;
        const norm = (x: A.Expr | null, dflt: number) => {
          if (!x) return dflt;
          const v = this.ctInt(this.expr(x, env), x.span);
          return Math.max(0, Math.min(n, v < 0 ? v + n : v));
        };
        const step = item.step ? this.ctInt(this.expr(item.step, env), item.step.span) : 1;
        if (step <= 0) this.fail('E0305', 'a list slice needs a positive step', item.span);
        const out: CtValue[] = [];
        for (let i = norm(item.start, 0); i < norm(item.stop, n); i += step) out.push(target.items[i]);
        return { kind: 'list', items: out };
      }
      const i = this.ctInt(this.expr(item, env), item.span);
      const j = i < 0 ? i + target.items.length : i;
      if (j < 0 || j >= target.items.length) this.fail('E0305', `index ${i} is out of range for a list of ${target.items.length}`, item.span);
      return target.items[j];
    }
    if (target.kind === 'tensor') return callBuiltin(this, '\u0000index', [{ value: target, span: e.target.span }], new Map(), e.span, e.items, env);
    return this.fail('E0307', `${describe(target)} cannot be indexed`, e.target.span);
  }

  private member(e: A.Member, env: Env): CtValue {
    const target = this.expr(e.target, env);
    if (target.kind === 'poison') return POISON;
    const name = e.member.text;
    if (target.kind === 'layer') {
      const m = target.members.get(name);
      if (m) return this.currentState(m);
      const names = [...target.members.keys()];
      return this.fail('E0201', `the layer \`${target.decl.name.text}\` has no member \`${name}\``, e.member.span, names.length ? { help: `its members are ${names.join(', ')}` } : {});
    }
    if (target.kind === 'list' && /^\d+$/.test(name)) {
      const i = Number(name);
      if (i >= target.items.length) this.fail('E0305', `index ${i} is out of range for a list of ${target.items.length}`, e.member.span);
      return target.items[i];
    }
    if (target.kind === 'tensor' && name === 'shape') return { kind: 'list', items: target.value.type.shape.map(dimValue) };
    if (target.kind === 'module') {
      const v = target.exports.includes(name) ? target.env.lookup(name) : undefined;
      if (v) return v;
      return this.fail('E0201', `the module \`${target.name}\` has no \`${name}\``, e.member.span);
    }
    const torch: Record<string, string> = {
      T: 'transpose(x) swaps the last two axes', view: 'reshape(x, [...]) gives another shape', reshape: 'reshape(x, [...]) is a function',
      size: 'shape(x) lists the sizes', unsqueeze: 'x[:, None] inserts an axis', squeeze: 'reshape(x, [...]) drops size-1 axes',
      permute: 'permute(x, [...]) is a function', transpose: 'transpose(x, perm) is a function', sum: 'sum(x, axis: ...) is a function', mean: 'mean(x, axis: ...) is a function',
    };
    const hint = target.kind === 'tensor' && name in torch ? { help: `tensor methods are functions in dlc: ${torch[name]}` } : {};
    return this.fail('E0307', `${describe(target)} has no member \`${name}\``, e.member.span, hint);
  }

  // ------------------------------------------------------------ scan

  /** Unrolls a recurrence over a concrete-length axis; the yields are stacked along that axis. */
  private scan(e: A.Scan, env: Env): CtValue {
    const sources = this.scanSources(e, env);
    if (!sources) return POISON;
    const first = sources[0];
    const length = first.type.shape[first.axis] as number; // concrete: scanSources checked it
    if (length === 0) this.fail('E0305', `scan over axis ${first.axis} of ${typeToString(first.type)}, which has no steps: it would yield nothing`, e.source.span);
    for (const c of e.carry) env.define(c.name.text, this.expr(c.init, env));
    // a carry keeps its type from step to step (as lax.scan's does): the first step that changes it is the error
    const carryTypes: (TensorType | undefined)[] = e.carry.map((c) => {
      const v = env.lookup(c.name.text);
      return v?.kind === 'tensor' ? v.value.type : undefined;
    });
    const savedYields = this.yields;
    const steps: CtValue[][] = [];
    // the scan's first line (`scan xt in x along 1`), where a body that yields too little or too much is shown
    const head = { ...e.span, end: (e.axis ?? e.source).span.end };
    let yielded: { spans: A.Span[]; span: A.Span } | undefined;
    try {
      const order = Array.from({ length }, (_, i) => (e.reverse ? length - 1 - i : i));
      for (const t of order) {
        this.yields = [];
        const inner = env.child();
        e.variables.forEach((v, k) => {
          const { value, axis } = sources[k];
          const slice = callBuiltin(this, 'select_axis', [{ value, span: e.source.span }], new Map([['index', { value: { kind: 'int', value: t }, span: e.span }], ['axis', { value: { kind: 'int', value: axis }, span: e.span }]]), e.span);
          inner.define(v.text, slice);
        });
        this.statements(e.body, inner, { layerPath: '', layer: null });
        if (this.yields.length !== 1) {
          const times = this.yields.length === 0 ? 'did not yield' : `yielded ${this.yields.length} times`;
          this.fail('E0013', `a scan body must yield exactly once per step; at step ${t} it ${times}`, head, {
            secondary: this.yields.map((y) => ({ span: y.span, message: 'yields here' })),
            help: 'end the body with `yield` and the value of the step (`yield h`, or a tuple `yield h, c`); the yields are stacked along the scanned axis',
          });
        }
        e.carry.forEach((c, k) => {
          const was = carryTypes[k];
          const now = env.lookup(c.name.text);
          // a carry started from a number (`h = 0.0`) takes the type of its first step, and keeps it
          if (!was) {
            if (now?.kind === 'tensor') carryTypes[k] = now.value.type;
            return;
          }
          if (now?.kind !== 'tensor' || typeToString(now.value.type) === typeToString(was)) return;
          this.fail('E0302', `the carry \`${c.name.text}\` starts as ${typeToString(was)}, but the scan body makes it ${typeToString(now.value.type)}`, c.span, {
            label: `starts as ${typeToString(was)}`,
            help: 'a carry keeps one type from step to step: start it with the shape the body gives it',
          });
        });
        const [step] = this.yields;
        // each step's yields are stacked: a yield whose type changes from step to step cannot be
        const earlier = steps.find((x) => x !== undefined);
        const firstStep = order[0];
        if (earlier && earlier.length !== step.values.length) {
          this.fail('E0302', `the scan yields ${earlier.length} values at step ${firstStep} but ${step.values.length} at step ${t}`, step.span, {
            help: 'yield the same number of values at every step',
          });
        }
        step.values.forEach((v, k) => {
          const was = earlier?.[k];
          if (v.kind !== 'tensor' || was?.kind !== 'tensor' || typeToString(v.value.type) === typeToString(was.value.type)) return;
          const which = step.values.length > 1 ? `value ${k} of ` : '';
          this.fail('E0302', `the scan's yields are stacked, but ${which}its yield is ${typeToString(was.value.type)} at step ${firstStep} and ${typeToString(v.value.type)} at step ${t}`, step.spans[k], {
            label: typeToString(v.value.type),
            help: 'yield the same shape at every step: pad or slice it to one size',
          });
        });
        yielded = step;
        steps[t] = step.values;
      }
    } finally {
      this.yields = savedYields;
    }
    const axis = first.axis;
    const outputs = steps[0].map((_, k) => {
      const at = yielded?.spans[k] ?? e.span;
      return callBuiltin(this, 'stack', [{ value: { kind: 'list', items: steps.map((s) => s[k]) }, span: at }], new Map([['axis', { value: { kind: 'int', value: axis }, span: at }]]), at);
    });
    return outputs.length === 1 ? outputs[0] : { kind: 'list', items: outputs, tuple: true };
  }

  /**
   * The sequences a scan slices, each with its scanned axis: one tensor for one variable, a tuple of as
   * many tensors for several (`scan x_t, m_t in (x, m) along 1`), all of one concrete length along the
   * axis. Undefined when the source is poisoned by an earlier error.
   */
  private scanSources(e: A.Scan, env: Env): { value: CtValue; type: TensorType; axis: number }[] | undefined {
    const source = this.expr(e.source, env);
    if (source.kind === 'poison') return undefined;
    const names = e.variables.map((v) => `\`${v.text}\``).join(', ');
    const several = e.variables.length > 1;
    if (!several && source.kind !== 'tensor') {
      return this.fail('E0307', `scan runs over a tensor, found ${describe(source)}`, e.source.span, source.kind === 'list' ? { help: `to scan several sequences together, name one variable for each: \`scan ${e.variables[0].text}, m_t in (x, m)\`` } : undefined);
    }
    const items = several ? (source.kind === 'list' ? source.items : [source]) : [source];
    if (items.length !== e.variables.length) {
      return this.fail('E0303', `scan names ${e.variables.length} variables (${names}), so it runs over a tuple of ${e.variables.length} tensors, found ${describe(source)}${source.kind === 'list' ? ` of ${items.length}` : ''}`, e.source.span, {
        help: `give one sequence for each variable: \`scan ${e.variables.map((v) => v.text).join(', ')} in (${e.variables.map((_, i) => `s${i}`).join(', ')})\``,
      });
    }
    if (items.some((v) => v.kind === 'poison')) return undefined;
    const rawAxis = e.axis ? this.ctInt(this.expr(e.axis, env), e.axis.span) : 0;
    const out = items.map((value, k) => {
      if (value.kind !== 'tensor') return this.fail('E0307', `scan runs over tensors, found ${describe(value)} for \`${e.variables[k].text}\``, e.source.span);
      const type = value.value.type;
      const rank = type.shape.length;
      const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
      if (axis < 0 || axis >= rank) {
        this.fail('E0301', `scan axis ${rawAxis} is out of range for ${typeToString(type)} (rank ${rank}: its axes are ${-rank}..${rank - 1})`, e.axis?.span ?? e.span);
      }
      if (!D.isConcrete(type.shape[axis])) {
        this.fail('E0306', `scan needs the length of axis ${axis} of ${typeToString(type)} when compiling`, e.source.span, {
          help: 'give the sequence length as a hyperparameter in the input type, e.g. f32[B, steps, features]',
        });
      }
      return { value, type, axis };
    });
    const steps = (i: number) => out[i].type.shape[out[i].axis];
    const other = out.findIndex((_, i) => steps(i) !== steps(0));
    if (other > 0) {
      this.fail('E0301', `the sequences of a scan must have one length: \`${e.variables[0].text}\` runs over ${steps(0)} steps of ${typeToString(out[0].type)}, \`${e.variables[other].text}\` over ${steps(other)} of ${typeToString(out[other].type)} (axis ${rawAxis})`, e.source.span);
    }
    return out;
  }

  // ------------------------------------------------------------ small helpers

  iterate(v: CtValue, span: A.Span): readonly CtValue[] {
    if (v.kind === 'list') return v.items;
    if (v.kind === 'poison') throw new Abort();
    if (v.kind === 'tensor') return this.fail('E0305', 'a loop must run over a list known at compile time, not a tensor', span);
    return this.fail('E0307', `cannot loop over ${describe(v)}`, span);
  }

  destructure(v: CtValue, count: number, span: A.Span): CtValue[] {
    if (count === 1) return [v];
    if (v.kind === 'poison') return Array.from({ length: count }, () => POISON);
    if (v.kind !== 'list' || v.items.length !== count) {
      return this.fail('E0303', `expected ${count} values to unpack, found ${v.kind === 'list' ? v.items.length : describe(v)}`, span);
    }
    return [...v.items];
  }

  ctInt(v: CtValue, span: A.Span): number {
    if (v.kind === 'int') return v.value;
    if (v.kind === 'dim' && D.isConcrete(v.value)) return v.value;
    if (v.kind === 'poison') throw new Abort();
    return this.fail('E0305', `expected an integer known at compile time, found ${describe(v)}`, span);
  }

  ctNumber(v: CtValue, span: A.Span): number {
    if (v.kind === 'int' || v.kind === 'float') return v.value;
    if (v.kind === 'poison') throw new Abort();
    return this.fail('E0305', `expected a number, found ${describe(v)}`, span);
  }

  tensorOrPoison(v: CtValue, span: A.Span, what: string): TensorV | undefined {
    if (v.kind === 'tensor') return v;
    if (v.kind === 'poison') return undefined;
    if (v.kind === 'int' || v.kind === 'float') return this.asTensor(v, null, span);
    this.report(diagnostic('E0307', `${what} must be a tensor, found ${describe(v)}`, span));
    return undefined;
  }
}

/** An argument at a call: its value, where it was written, and for a keyword argument where the keyword is. */
export interface ArgValue {
  readonly value: CtValue;
  readonly span: A.Span;
  readonly nameSpan?: A.Span;
  /** A list written out (`[a, b]`): each item's span, for diagnostics that name one item. */
  readonly itemSpans?: readonly A.Span[];
}

type SignatureUnifier = DimUnifier & { readonly names: ReadonlySet<string> };

/** Compile-time types a parameter may have; with `[]` they are lists (`int[]`), except `bool[T, T]`, a bool tensor. */
const HYPER_TYPES = ['int', 'float', 'bool', 'string', 'fn'];

/** Whether a parameter's declared type is a tensor's: `f32[B, n]`, `i32[...]`, `bool[T, T]` (but `bool[]` is a list of bools). */
/** Why a guarded member (`param b: f32[out] = zeros if bias`) has no value when its guard is false. */
function guardedOut(what: string, name: string, guard: A.Expr): { message: string; help: string } {
  const cond = exprText(guard);
  return {
    message: `\`${name}\` is declared only \`if ${cond}\` (\`${what} ${name} ... if ${cond}\`), and that is false here`,
    help: `use it under the same condition, e.g. \`if ${cond} { ... ${name} ... } else { ... }\``,
  };
}

function isTensorParam(t: A.TypeExpr | null | undefined): boolean {
  if (!t || t.dims == null) return false;
  return !HYPER_TYPES.includes(t.name.text) || (t.name.text === 'bool' && t.dims.length > 0);
}

const TENSOR_BINARY: Partial<Record<A.BinaryOp, string>> = {
  '+': 'add', '-': 'sub', '*': 'mul', '/': 'div', '%': 'mod', '**': 'pow', '@': 'matmul',
  '==': 'eq', '!=': 'ne', '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge',
};

/** Builtins that take no tensor, so keyword-only calls are real calls, not partial applications. */
const BUILTINS_WITHOUT_TENSOR = new Set(['zeros', 'ones', 'full', 'random_uniform', 'random_normal', 'arange', 'range', 'len', 'min', 'max']);

function isLibrary(file: string): boolean {
  return file.startsWith('stdlib/');
}

function isNumber(v: CtValue): v is CtValue & { kind: 'int' | 'float'; value: number } {
  return v.kind === 'int' || v.kind === 'float';
}

function isFloatType(t: TensorV): boolean {
  return t.value.type.dtype === 'f32' || t.value.type.dtype === 'f16';
}

function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => D.dimEquals(d, b.shape[i]));
}


/** A capital name in a signature that is a size to solve: unbound, or a symbolic size of the caller's (never a hyperparameter). */
function isSizeVariable(name: string, env: Env): boolean {
  if (!/^[A-Z]/.test(name)) return false;
  const outer = env.lookup(name);
  return outer === undefined || outer.kind === 'dim';
}

/** The unifier's name for a signature's size variable, apart from any symbolic size of the same name outside the call. */
function signatureVar(name: string): string {
  return `${name}${SIGNATURE_MARK}`;
}
const SIGNATURE_MARK = '\u2032';

function visitIdents(e: A.Expr, f: (name: string) => void): void {
  if (e.kind === 'Ident') f(e.name);
  else if (e.kind === 'Binary') {
    visitIdents(e.left, f);
    visitIdents(e.right, f);
  } else if (e.kind === 'Unary') visitIdents(e.operand, f);
}

/** An env whose definitions go to `outer` but whose lookups see `inner` first (members declared in static loops). */
function proxyEnv(inner: Env, outer: Env): Env {
  const proxy = Object.create(inner) as Env;
  proxy.define = (name: string, value: CtValue) => outer.define(name, value);
  return proxy;
}

function exprText(e: A.Expr): string {
  switch (e.kind) {
    case 'Ident':
      return e.name;
    case 'Number':
      return e.text;
    case 'Binary':
      return `${exprText(e.left)} ${e.op} ${exprText(e.right)}`;
    case 'Unary':
      return `${e.op === 'not' ? 'not ' : e.op}${exprText(e.operand)}`;
    case 'Ellipsis':
      return '...';
    case 'Call':
      return `${exprText(e.callee)}(...)`;
    case 'Index':
      return `${exprText(e.target)}[...]`;
    case 'Member':
      return `${exprText(e.target)}.${e.member.text}`;
    default:
      return '...';
  }
}

function describeBindings(c: A.Expr, env: Env): string {
  const names = new Set<string>();
  // the names read anywhere in the constraint, call arguments and indexed values included (shape(labels))
  const visit = (e: A.Expr): void => {
    if (e.kind === 'Ident') names.add(e.name);
    else if (e.kind === 'Binary') [e.left, e.right].forEach(visit);
    else if (e.kind === 'Unary') visit(e.operand);
    else if (e.kind === 'Call') e.args.forEach((a) => visit(a.value));
    else if (e.kind === 'Index' || e.kind === 'Member') visit(e.target);
    else if (e.kind === 'List' || e.kind === 'Tuple') e.items.forEach(visit);
    else if (e.kind === 'Comprehension') [e.element, e.iterable, ...(e.condition ? [e.condition] : [])].forEach(visit);
  };
  visit(c);
  const parts = [...names].flatMap((n) => {
    const v = env.lookup(n);
    if (v?.kind === 'tensor') return [`${n}: ${typeToString(v.value.type)}`];
    return v && (v.kind === 'int' || v.kind === 'float' || v.kind === 'bool') ? [`${n} = ${v.value}`] : [];
  });
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** The conditions `a and b` joins, each on its own. */
function conjuncts(c: A.Expr): A.Expr[] {
  return c.kind === 'Binary' && c.op === 'and' ? [...conjuncts(c.left), ...conjuncts(c.right)] : [c];
}

function lcm(a: number, b: number): number {
  return (a / D.gcd(a, b)) * b;
}
