// Name resolution and statement placement: unknown names (with "did you mean"), duplicates, imports, train settings.
import type * as A from '../../grammar/ast.ts';
import { DiagnosticBag, diagnostic, didYouMean, foreignName, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { DTYPES } from '../ir/types.ts';
import { printExpr } from '../../grammar/printer.ts';
import { fileExports, PRELUDE, SETTING_ALIASES, STD_MODULES, TRAIN_SETTINGS } from './prelude.ts';

/** A local module as parsed: its program and its syntax errors (reported once, by the checker). */
export interface LoadedModule {
  readonly program: A.Program;
  readonly diagnostics: readonly Diagnostic[];
}

/** Loads a local module named by `use "./x.dl"` relative to the importing file; undefined when it does not exist. */
export type ModuleLoader = (importer: string, path: string) => LoadedModule | undefined;

type Context = 'file' | 'layer' | 'model' | 'body' | 'scan' | 'train';

const ALLOWED: Record<Context, ReadonlySet<A.Stmt['kind']>> = {
  file: new Set(['Use', 'Layer', 'Model', 'Train', 'Fn', 'Let']),
  layer: new Set(['Param', 'State', 'SubLayer', 'Let', 'Where', 'For', 'If', 'Forward']),
  model: new Set(['Input', 'Output', 'Param', 'State', 'SubLayer', 'Let', 'Assign', 'Loss', 'Metric', 'Where', 'For', 'If']),
  body: new Set(['Let', 'Assign', 'Where', 'For', 'If', 'Return']),
  scan: new Set(['Let', 'Assign', 'Where', 'For', 'If', 'Yield']),
  train: new Set(['Setting', 'SettingBlock', 'Freeze', 'Objective', 'Step']),
};

const CONTEXT_NAMES: Record<Context, string> = {
  file: 'at the top level of a file',
  layer: 'in a layer',
  model: 'in a model',
  body: 'in a forward or fn body',
  scan: 'in a scan body',
  train: 'in a train block',
};

const STATEMENT_WORDS: Partial<Record<A.Stmt['kind'], string>> = {
  Param: 'param', State: 'state', Input: 'input', Output: 'output', SubLayer: 'layer', Let: 'let', Assign: 'an assignment',
  Loss: 'loss', Metric: 'metric', Where: 'where', Forward: 'forward', Return: 'return', Yield: 'yield', For: 'for',
  If: 'if', Setting: 'a setting', SettingBlock: 'a setting block', Freeze: 'freeze', Objective: 'minimize',
  Step: 'step', Use: 'use', Layer: 'layer', Model: 'model', Fn: 'fn', Train: 'train',
};

class Scope {
  private readonly names = new Map<string, A.Span | null>();
  constructor(readonly parent: Scope | null) {}

  define(name: string, span: A.Span | null): void {
    this.names.set(name, span);
  }
  has(name: string): boolean {
    return this.names.has(name) || (this.parent?.has(name) ?? false);
  }
  ownSpan(name: string): A.Span | null | undefined {
    return this.names.get(name);
  }
  /** The scope that defines `name` (the innermost one), or null. */
  ownerOf(name: string): Scope | null {
    return this.names.has(name) ? this : (this.parent?.ownerOf(name) ?? null);
  }
  *all(): Iterable<string> {
    yield* this.names.keys();
    if (this.parent) yield* this.parent.all();
  }
}

/** A capitalised name in a shape that is not otherwise bound declares a symbolic size (B, T, H). */
function isSymbolicSizeName(name: string): boolean {
  return /^[A-Z]/.test(name);
}

/** Compile-time types a parameter may have (elaborate.ts's HYPER_TYPES); with `[]` they are lists. */
const HYPER_TYPES = ['int', 'float', 'bool', 'string', 'fn'];

export function resolveNames(program: A.Program, loadModule?: ModuleLoader): Diagnostic[] {
  const out: Diagnostic[] = [];
  const reported = new Set<string>();
  const prelude = new Scope(null);
  for (const n of PRELUDE) prelude.define(n, null);
  const fileScope = new Scope(prelude);
  const models = new Map<string, A.ModelDecl>();
  /** Models another file declares, by the name this file imports them under, with that file's path. */
  const importedModels = new Map<string, { readonly name: string; readonly file: string }>();
  const trained = new Map<string, A.Span>();
  /** Inside a tensor type's dims (typeExpr), where a model's name is a size of that name. */
  let inShape = 0;

  /** `call`: the name is called, as a function (lowercase) is: no layer type (`Mlp`) is suggested for it. */
  const unknown = (name: string, span: A.Span, scope: Scope, what = 'name', call = false) => {
    const key = `${name}@${span.start}`;
    // past the cap nobody sees the diagnostic: skip the costly suggestion search
    if (reported.has(key) || name === '' || out.length >= DiagnosticBag.LIMIT) return;
    reported.add(key);
    if (name === '*') {
      out.push(diagnostic('E0201', '`*` is not a value here', span, { help: 'a `*` alone stands only for path segments in a train block (`params = [*.b]`, `freeze net.*.bn`)' }));
      return;
    }
    // a lowercase name in a shape: meant as a symbolic size, which starts with a capital letter
    const candidates = call && /^[a-z_]/.test(name) ? [...scope.all()].filter((n) => !/^[A-Z]/.test(n)) : scope.all();
    const close = foreignName(name, scope.all()) ?? didYouMean(name, candidates);
    const inType = inShape > 0 && /^[a-z]/.test(name) && close === undefined;
    const help = inType ? `a size in a shape is a number, a hyperparameter, or a symbolic size, which starts with a capital letter (\`${name[0].toUpperCase()}${name.slice(1)}\`)` : close;
    out.push(diagnostic('E0201', `unknown ${what} \`${name}\``, span, help ? { help } : {}));
  };

  const defineUnique = (scope: Scope, n: A.Name, what: string) => {
    if (n.text === '') return;
    const previous = scope.ownSpan(n.text);
    if (previous) {
      out.push(
        diagnostic('E0202', `${what} \`${n.text}\` is defined twice`, n.span, {
          secondary: [{ span: previous, message: 'first defined here' }],
        }),
      );
      return;
    }
    scope.define(n.text, n.span);
  };

  // ------------------------------------------------------------ the file's own declarations, hoisted

  for (const d of program.body.stmts) {
    switch (d.kind) {
      case 'Layer':
      case 'Fn':
        defineUnique(fileScope, d.name, d.kind === 'Layer' ? 'layer' : 'fn');
        break;
      case 'Model':
        defineUnique(fileScope, d.name, 'model');
        models.set(d.name.text, d);
        break;
      case 'Let':
        for (const t of d.targets) defineUnique(fileScope, t, 'constant');
        break;
      case 'Use':
        useDecl(d);
        break;
      default:
        break;
    }
  }

  function useDecl(d: A.UseDecl): void {
    let exports: readonly string[] | undefined;
    let moduleName: string;
    if (Array.isArray(d.source)) {
      const parts = d.source as readonly A.Name[];
      if (parts.length === 0 || parts.some((p) => p.text === '')) return; // a recovered `use`: the parser reported it
      moduleName = parts.map((p) => p.text).join('.');
      exports = STD_MODULES[moduleName];
      if (!exports) {
        const span = { ...parts[0].span, end: parts.at(-1)!.span.end };
        const help = didYouMean(moduleName, Object.keys(STD_MODULES));
        out.push(diagnostic('E0203', `there is no module \`${moduleName}\``, span, help ? { help } : {}));
        return;
      }
    } else {
      const source = d.source as A.StringLit;
      moduleName = source.value;
      const loaded = loadModule?.(program.file, source.value);
      if (!loaded) {
        out.push(diagnostic('E0203', `cannot find the file \`${source.value}\``, source.span, {
          help: 'local imports are paths relative to the importing file, such as "./blocks.dl"',
        }));
        return;
      }
      exports = fileExports(loaded.program);
      const declared = new Set(loaded.program.body.stmts.flatMap((s) => (s.kind === 'Model' ? [s.name.text] : [])));
      if (d.imports !== null && 'kind' in d.imports) for (const m of declared) importedModels.set(m, { name: m, file: source.value });
      else if (d.imports !== null) for (const item of d.imports as readonly A.ImportItem[]) if (declared.has(item.name.text)) importedModels.set((item.alias ?? item.name).text, { name: item.name.text, file: source.value });
    }
    if (d.imports === null) {
      if (d.alias) defineUnique(fileScope, d.alias, 'import');
      else if (Array.isArray(d.source)) {
        const last = (d.source as readonly A.Name[]).at(-1)!;
        defineUnique(fileScope, last, 'import');
      }
      return;
    }
    if ('kind' in d.imports) {
      for (const e of exports) if (!fileScope.ownSpan(e)) fileScope.define(e, d.imports.span);
      return;
    }
    for (const item of d.imports as readonly A.ImportItem[]) {
      // a name the parser never read (it reported the syntax error)
      if (item.name.text === '') continue;
      if (!exports.includes(item.name.text)) {
        const help = didYouMean(item.name.text, exports);
        out.push(diagnostic('E0203', `\`${moduleName}\` has no \`${item.name.text}\``, item.name.span, help ? { help } : {}));
      }
      defineUnique(fileScope, item.alias ?? item.name, 'import');
    }
  }

  // ------------------------------------------------------------ declarations

  for (const d of program.body.stmts) {
    placement(d, 'file');
    switch (d.kind) {
      case 'Layer':
      case 'Model':
        layerOrModel(d);
        break;
      case 'Fn': {
        const scope = new Scope(fileScope);
        hyperParams(d.params, scope, d.returns);
        for (const r of d.returns) typeExpr(r, scope);
        signatureDtypes(d.params, d.returns);
        body(d.body, scope, 'body');
        break;
      }
      case 'Let':
        expr(d.value, fileScope);
        break;
      case 'Train':
        train(d);
        break;
      default:
        break;
    }
  }

  function placement(s: A.Stmt, context: Context): boolean {
    if (ALLOWED[context].has(s.kind)) return true;
    const word = STATEMENT_WORDS[s.kind] ?? s.kind;
    const hint: Partial<Record<A.Stmt['kind'], string>> = {
      Input: 'a layer takes its inputs as arguments of `forward(...)`',
      Return: '`return` ends a forward or fn body',
      Yield: '`yield` gives one step of a `scan`',
      Loss: 'losses are declared in a model',
      Forward: 'a model is a dataflow of statements; only a layer has `forward`',
    };
    const help = hint[s.kind];
    out.push(diagnostic('E0013', `${word} is not allowed ${CONTEXT_NAMES[context]}`, keywordSpan(s), help ? { help } : {}));
    return false;
  }

  function layerOrModel(d: A.LayerDecl | A.ModelDecl): void {
    const scope = new Scope(fileScope);
    hyperParams(d.params, scope);
    // Members are declarative and visible throughout the body; lets and assignments are sequential.
    const types: (A.TypeExpr | null)[] = [];
    collectMembers(d.body, scope, types);
    // one forward per layer: a second one would be ignored
    const forwards = d.body.stmts.filter((s) => s.kind === 'Forward');
    for (const extra of forwards.slice(1)) {
      const word = (s: A.Stmt): A.Span => ({ ...s.span, end: s.span.start + 'forward'.length });
      out.push(diagnostic('E0202', `the layer \`${d.name.text}\` declares \`forward\` twice; a layer has one`, word(extra), { secondary: [{ span: word(forwards[0]), message: 'first declared here' }] }));
    }
    declareSymbolicSizes(types, scope);
    statements(d.body, scope, d.kind === 'Layer' ? 'layer' : 'model');
  }

  function collectMembers(block: A.Block, scope: Scope, types: (A.TypeExpr | null)[], loop: A.ForStmt | null = null): void {
    for (const s of block.stmts) {
      if (loop) declaredInLoop(s, loop);
      switch (s.kind) {
        case 'Param':
          defineUnique(scope, s.name, 'parameter');
          types.push(s.type);
          break;
        case 'State':
          defineUnique(scope, s.name, 'state');
          types.push(s.type);
          break;
        case 'Input':
          defineUnique(scope, s.name, 'input');
          types.push(s.type);
          break;
        case 'SubLayer':
          defineUnique(scope, s.name, 'sublayer');
          break;
        case 'Forward':
          types.push(...s.params.map((p) => p.type), ...s.returns);
          break;
        case 'Output':
          types.push(s.type);
          break;
        case 'Let':
          types.push(s.type);
          break;
        case 'If':
          collectMembers(s.then, scope, types, loop);
          if (s.else) collectMembers(s.else, scope, types, loop);
          break;
        case 'For':
          collectMembers(s.body, scope, types, s);
          break;
        default:
          break;
      }
    }
  }

  /**
   * A member declared in a static `for` would be declared again by every iteration under one name (two
   * layers with one parameter path, silently tied when loaded): a list declared before the loop is the way.
   */
  function declaredInLoop(s: A.Stmt, loop: A.ForStmt): void {
    const kinds: Partial<Record<A.Stmt['kind'], string>> = { Param: 'parameter', State: 'state', Input: 'input', SubLayer: 'layer', Output: 'output', Loss: 'loss', Metric: 'metric' };
    const what = kinds[s.kind];
    if (!what) return;
    const name = 'name' in s && s.name ? s.name : null;
    const shown = name?.text ?? 'loss';
    const span = name?.span ?? keywordSpan(s);
    const v = loop.vars.map((x) => x.text).join(', ');
    const over = `for ${v} in ${printExpr(loop.iterable)}`;
    const help =
      s.kind === 'SubLayer'
        ? `declare one layer per iteration as a list before the loop, \`layer ${shown}s = [${printExpr(s.value)} ${over}]\`, and call \`${shown}s[${loop.vars[0]?.text ?? 'i'}](...)\` inside it`
        : s.kind === 'Param' || s.kind === 'State'
          ? `declare it once before the loop with the loop's length as a leading axis, and index it inside`
          : `declare it once after the loop, from a value the loop builds`;
    out.push(diagnostic('E0202', `the ${what} \`${shown}\` is declared inside a \`for\` loop: every iteration would declare it again under the same name`, span, {
      help,
      secondary: [{ span: keywordSpan(loop), message: 'the loop' }],
    }));
  }

  /** `val_x` is the validation value of `x` in every log and history: a loss or metric of that name would be shown in its place. */
  function reservedValidationName(name: A.Name, what: string): void {
    if (!name.text.startsWith('val_')) return;
    const bare = name.text.slice('val_'.length);
    out.push(diagnostic('E0202', `the ${what} \`${name.text}\` takes a name reserved for validation: \`val_${bare || '...'}\` is the validation value of \`${bare || '...'}\` in the epoch lines, the history and early stopping`, name.span, {
      help: 'names that start with `val_` are the validation values of the others: rename it',
    }));
  }

  function declareSymbolicSizes(types: readonly (A.TypeExpr | null)[], scope: Scope): void {
    for (const t of types) {
      if (!t?.dims) continue;
      for (const dim of t.dims) {
        visitIdents(dim, (id) => {
          if (!scope.has(id.name) && isSymbolicSizeName(id.name)) scope.define(id.name, id.span);
        });
      }
    }
  }

  /**
   * Defines parameters in order (a default may use the parameters before it: `ff: int = 4 * d`),
   * then declares the symbolic sizes their shapes introduce, then resolves those shapes.
   */
  function hyperParams(params: readonly A.HyperParam[], scope: Scope, extraTypes: readonly (A.TypeExpr | null)[] = []): void {
    for (const p of params) {
      if (p.default) expr(p.default, scope);
      defineUnique(scope, p.name, 'parameter');
    }
    declareSymbolicSizes([...params.map((p) => p.type), ...extraTypes], scope);
    for (const p of params) if (p.type) typeExpr(p.type, scope);
  }

  /**
   * The dtypes a layer's or function's signature writes, checked where they are written, whether or not
   * anything calls it: a parameter or result typed with a shape is a tensor (`f32[B, n]`) or a list of
   * a compile-time type (`int[]`).
   */
  function signatureDtypes(params: readonly A.HyperParam[], returns: readonly A.TypeExpr[]): void {
    const shaped = [...returns, ...params.flatMap((p) => (p.type ? [p.type] : []))];
    const tensors = shaped.filter((t) => t.dims != null && !HYPER_TYPES.includes(t.name.text));
    for (const t of tensors) {
      if ((DTYPES as readonly string[]).includes(t.name.text)) continue;
      out.push(diagnostic('E0307', `\`${t.name.text}\` is not a tensor dtype (f32, f16, i32, u32 or bool)`, t.name.span));
    }
  }

  function typeExpr(t: A.TypeExpr, scope: Scope): void {
    if (!t.dims) return;
    // a model's name in a shape is a size of that name (models are not values the elaborator sees)
    inShape++;
    try {
      for (const dim of t.dims) expr(dim, scope);
    } finally {
      inShape--;
    }
  }

  function body(b: A.Block | A.Expr, scope: Scope, context: Context): void {
    if (b.kind === 'Block') statements(b, new Scope(scope), context);
    else expr(b, scope);
  }

  function statements(block: A.Block, scope: Scope, context: Context): void {
    for (const s of block.stmts) {
      if (!placement(s, context)) continue;
      statement(s, scope, context);
    }
  }

  function statement(s: A.Stmt, scope: Scope, context: Context): void {
    switch (s.kind) {
      case 'Param':
      case 'State':
        typeExpr(s.type, scope);
        if (s.init) expr(s.init, scope);
        if (s.guard) expr(s.guard, scope);
        break;
      case 'Input':
        typeExpr(s.type, scope);
        break;
      case 'SubLayer':
        expr(s.value, scope);
        if (s.guard) expr(s.guard, scope);
        break;
      case 'Output':
        if (s.type) typeExpr(s.type, scope);
        expr(s.value, scope);
        defineUnique(scope, s.name, 'output');
        break;
      case 'Let':
        if (s.type) typeExpr(s.type, scope);
        expr(s.value, scope);
        for (const t of s.targets) scope.define(t.text, t.span);
        break;
      case 'Assign':
        expr(s.value, scope);
        for (const t of s.targets) {
          if (!scope.has(t.text)) {
            out.push(diagnostic('E0201', `cannot assign to \`${t.text}\`: it is not declared`, t.span, {
              help: `declare it first with \`let ${t.text} = ...\``,
            }));
            scope.define(t.text, t.span);
          }
        }
        break;
      case 'Loss':
        expr(s.value, scope);
        if (s.name) defineUnique(scope, s.name, 'loss');
        if (s.name) reservedValidationName(s.name, 'loss');
        break;
      case 'Metric':
        expr(s.value, scope);
        defineUnique(scope, s.name, 'metric');
        reservedValidationName(s.name, 'metric');
        break;
      case 'Where':
        for (const c of s.conditions) expr(c, scope);
        break;
      case 'Forward': {
        const fwd = new Scope(scope);
        hyperParams(s.params, fwd, s.returns);
        for (const r of s.returns) typeExpr(r, fwd);
        signatureDtypes(s.params, s.returns);
        body(s.body, fwd, 'body');
        break;
      }
      case 'Return':
      case 'Yield':
        for (const v of s.values) expr(v, scope);
        break;
      case 'For': {
        expr(s.iterable, scope);
        const inner = new Scope(scope);
        for (const v of s.vars) inner.define(v.text, v.span);
        statementsInPlace(s.body, inner, context);
        break;
      }
      case 'If':
        expr(s.condition, scope);
        statementsInPlace(s.then, new Scope(scope), context);
        if (s.else) statementsInPlace(s.else, new Scope(scope), context);
        break;
      default:
        break;
    }
  }

  /** Static `for` and `if` bodies keep their enclosing context (a `param` inside a layer's `if` is fine). */
  function statementsInPlace(block: A.Block, scope: Scope, context: Context): void {
    for (const s of block.stmts) {
      if (!placement(s, context)) continue;
      if (context === 'layer' || context === 'model') {
        // members were hoisted already: only their expressions are resolved here
        if (s.kind === 'Let') {
          expr(s.value, scope);
          for (const t of s.targets) scope.define(t.text, t.span);
          continue;
        }
      }
      statement(s, scope, context);
    }
  }

  // ------------------------------------------------------------ expressions

  function expr(e: A.Expr, scope: Scope): void {
    switch (e.kind) {
      case 'Ident':
        if (!scope.has(e.name)) unknown(e.name, e.span, scope);
        else if (inShape === 0 && models.has(e.name) && scope.ownerOf(e.name) === fileScope) {
          // a model is trained and shipped, not built inside another model
          out.push(diagnostic('E0201', `\`${e.name}\` is a model, and a model is not a value inside another`, e.span, { help: `to use it as a building block, declare it \`layer ${e.name}(...) { ... forward(...) }\`` }));
        } else if (inShape === 0 && importedModels.has(e.name) && scope.ownerOf(e.name) === fileScope) {
          const from = importedModels.get(e.name)!;
          out.push(diagnostic('E0201', `\`${e.name}\` is a model (imported from "${from.file}"), and a model is not a value inside another`, e.span, {
            help: `to use it as a building block, declare it in ${from.file} as \`layer ${from.name}(...) { ... forward(...) }\` and import that`,
          }));
        }
        break;
      case 'List':
      case 'Tuple':
        for (const x of e.items) expr(x, scope);
        break;
      case 'Comprehension': {
        expr(e.iterable, scope);
        const inner = new Scope(scope);
        for (const v of e.vars) inner.define(v.text, v.span);
        expr(e.element, inner);
        if (e.condition) expr(e.condition, inner);
        break;
      }
      case 'Unary':
        expr(e.operand, scope);
        break;
      case 'Binary':
        expr(e.left, scope);
        expr(e.right, scope);
        break;
      case 'Call':
        if (e.callee.kind === 'Ident' && !scope.has(e.callee.name)) unknown(e.callee.name, e.callee.span, scope, 'name', true);
        else expr(e.callee, scope);
        for (const a of e.args) expr(a.value, scope);
        break;
      case 'Index':
        expr(e.target, scope);
        for (const i of e.items) {
          if (i.kind === 'Slice') {
            for (const part of [i.start, i.stop, i.step]) if (part) expr(part, scope);
          } else expr(i, scope);
        }
        break;
      case 'Member':
        expr(e.target, scope);
        break;
      case 'Lambda': {
        const inner = new Scope(scope);
        hyperParams(e.params, inner);
        expr(e.body, inner);
        break;
      }
      case 'Scan': {
        expr(e.source, scope);
        if (e.axis) expr(e.axis, scope);
        for (const c of e.carry) expr(c.init, scope);
        const inner = new Scope(scope);
        // one name for two sequences (or a sequence and a carry): the later binding would hide the other silently
        for (const v of e.variables) defineUnique(inner, v, 'the scan variable');
        for (const c of e.carry) defineUnique(inner, c.name, 'the scan carry');
        statements(e.body, inner, 'scan');
        // after the scan, the carried names hold their final values
        for (const c of e.carry) scope.define(c.name.text, c.name.span);
        break;
      }
      case 'IfExpr':
        expr(e.condition, scope);
        expr(e.then, scope);
        expr(e.else, scope);
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------ train blocks

  function train(d: A.TrainDecl): void {
    const model = models.get(d.model.text);
    const earlier = trained.get(d.model.text);
    if (earlier) out.push(diagnostic('E0202', `\`${d.model.text}\` has two train blocks; a model has one`, d.model.span, { secondary: [{ span: earlier, message: 'the first train block' }] }));
    else trained.set(d.model.text, d.model.span);
    if (!model) {
      if (!fileScope.has(d.model.text) || PRELUDE.has(d.model.text)) {
        const help = didYouMean(d.model.text, models.keys());
        out.push(diagnostic('E0205', `there is no model \`${d.model.text}\` to train`, d.model.span, help ? { help } : {}));
      }
    }
    if (d.args) for (const a of d.args) expr(a.value, fileScope);
    const members = new Set<string>();
    const losses = new Set<string>();
    const metrics = new Set<string>();
    if (model) {
      for (const p of model.params) members.add(p.name.text);
      collectModelNames(model.body, members, losses, metrics);
    }
    trainBlock(d.body, model ? { members, losses, metrics } : undefined, TRAIN_SETTINGS);
  }

  function collectModelNames(block: A.Block, members: Set<string>, losses: Set<string>, metrics: Set<string>): void {
    for (const s of block.stmts) {
      if (s.kind === 'Param' || s.kind === 'State' || s.kind === 'SubLayer' || s.kind === 'Input' || s.kind === 'Output' || s.kind === 'Metric') {
        members.add(s.name.text);
        if (s.kind === 'Metric') metrics.add(s.name.text);
      } else if (s.kind === 'Let') for (const t of s.targets) members.add(t.text);
      else if (s.kind === 'Loss') losses.add(s.name?.text ?? 'loss');
      else if (s.kind === 'If') {
        collectModelNames(s.then, members, losses, metrics);
        if (s.else) collectModelNames(s.else, members, losses, metrics);
      } else if (s.kind === 'For') collectModelNames(s.body, members, losses, metrics);
    }
  }

  function trainBlock(
    block: A.Block,
    model: { members: Set<string>; losses: Set<string>; metrics: Set<string> } | undefined,
    settings: Readonly<Record<string, readonly string[] | null>> | readonly string[] | null,
  ): void {
    for (const s of block.stmts) {
      if (!placement(s, 'train')) continue;
      switch (s.kind) {
        case 'Setting':
        case 'SettingBlock': {
          const known = settings === null ? null : Array.isArray(settings) ? settings : Object.keys(settings);
          if (known && !known.includes(s.name.text)) {
            const alias = settings === TRAIN_SETTINGS && Object.hasOwn(SETTING_ALIASES, s.name.text) ? SETTING_ALIASES[s.name.text] : undefined;
            const help = alias ?? didYouMean(s.name.text, known);
            out.push(diagnostic('E0204', `unknown setting \`${s.name.text}\``, s.name.span, help ? { help } : {}));
          }
          if (s.kind === 'SettingBlock') {
            const sub = settings && !Array.isArray(settings) ? (settings as Record<string, readonly string[] | null>)[s.name.text] : null;
            trainBlock(s.body, model, sub ?? null);
          }
          break;
        }
        case 'Step':
          trainBlock(s.body, model, TRAIN_SETTINGS);
          break;
        case 'Objective':
          // a metric may be an objective, as in an expression (`maximize m`, a WGAN critic's score): the
          // training plan refuses one with no gradient (an accuracy) with the reason
          if (model && s.loss.kind === 'Ident' && !model.losses.has(s.loss.name) && !model.metrics.has(s.loss.name)) {
            const help = didYouMean(s.loss.name, model.losses);
            out.push(diagnostic('E0201', `the model declares no loss \`${s.loss.name}\``, s.loss.span, help ? { help } : {}));
          }
          if (model) for (const o of s.over) memberPath(o, model.members);
          break;
        case 'Freeze':
          if (model) for (const t of s.targets) memberPath(t, model.members);
          break;
        default:
          break;
      }
    }
  }

  /** `over D`, `freeze encoder.conv1`: the first name of the path must be a member of the model. */
  function memberPath(e: A.Expr, members: Set<string>): void {
    let base: A.Expr = e;
    while (base.kind === 'Member' || base.kind === 'Index') base = base.target;
    if (base.kind === 'List' || base.kind === 'Tuple') {
      for (const item of base.items) memberPath(item, members);
      return;
    }
    // `*.b`: a leading wildcard matches under every member
    if (base.kind === 'Ident' && base.name !== '*' && !members.has(base.name)) {
      const help = didYouMean(base.name, members);
      out.push(diagnostic('E0201', `the model has no member \`${base.name}\``, base.span, help ? { help } : {}));
    }
  }

  return out;
}

function visitIdents(e: A.Expr, visit: (id: A.Ident) => void): void {
  switch (e.kind) {
    case 'Ident':
      visit(e);
      break;
    case 'Binary':
      visitIdents(e.left, visit);
      visitIdents(e.right, visit);
      break;
    case 'Unary':
      visitIdents(e.operand, visit);
      break;
    default:
      break;
  }
}

/** The span of the keyword that starts a statement, for placement errors. */
function keywordSpan(s: A.Stmt): A.Span {
  const word = STATEMENT_WORDS[s.kind];
  const length = word && /^[a-z]+$/.test(word) ? word.length : 1;
  return { file: s.span.file, start: s.span.start, end: Math.min(s.span.end, s.span.start + length) };
}
