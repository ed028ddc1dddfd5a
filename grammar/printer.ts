// The canonical printer behind `dlc fmt`: AST in, formatted .dl text out, comments kept, minimal parentheses, lines within 100 columns where the grammar lets a line break.
import type * as A from './ast.ts';
import { BINARY_PREC, operandPrec, Prec, precedence } from './precedence.ts';

const INDENT = '  ';
/** Lines longer than this are broken: bracketed lists (arguments, lists, tuples, hyperparameters, dimensions, indices, imports) one item a line, operator chains after each operator, if-expressions one branch a line. */
export const LINE_WIDTH = 100;

export interface PrintOptions {
  /** The line ending written throughout, comments included (`dlc fmt` keeps the file's own: endOfLineOf). */
  readonly endOfLine?: '\n' | '\r\n';
  /** Whether the text starts with a byte-order mark, U+FEFF (`dlc fmt` keeps the file's: `source.startsWith('\uFEFF')`). */
  readonly byteOrderMark?: boolean;
}

export function print(program: A.Program, options: PrintOptions = {}): string {
  const bom = options.byteOrderMark ? '\uFEFF' : '';
  if (program.body.stmts.length === 0 && program.body.endComments.length === 0) return bom;
  const text = `${render(statements(program.body), LINE_WIDTH)}\n`;
  // every \n here is a line break: strings print theirs as `\n`, and comments arrive with theirs as \n
  return bom + (options.endOfLine === '\r\n' ? text.replace(/\n/g, '\r\n') : text);
}

/** The line ending a source uses: that of its first line (`\r\n` for a Windows file), else `\n`. */
export function endOfLineOf(source: string): '\n' | '\r\n' {
  return /\r\n?|\n/.exec(source)?.[0] === '\r\n' ? '\r\n' : '\n';
}

/** An expression on one line (a block inside, as a scan's, still takes several), for messages. */
export function printExpr(e: A.Expr): string {
  return render(expr(e, Prec.Lambda, NO_LISTS), Infinity);
}

/** A type as written: `f32[B, d]`. */
export function printType(t: A.TypeExpr): string {
  return render(type(t, NO_LISTS), Infinity);
}

// ------------------------------------------------------------------ documents

/**
 * What the printer builds before it knows the width: text, and groups whose soft lines are all
 * spaces (or nothing) when the group fits on the line, else all line breaks (Wadler's "prettier
 * printer", as prettier does it). Hard lines always break; a suffix (a trailing comment) waits for
 * the next line break and does not count toward the width.
 */
type Doc = string | readonly Doc[] | Group | Indent | Line | IfBreak | Suffix;
interface Group { readonly kind: 'group'; readonly body: Doc; readonly broken: boolean; readonly block?: boolean }
interface Indent { readonly kind: 'indent'; readonly body: Doc }
interface Line { readonly kind: 'line'; readonly flat: string; readonly hard: boolean }
interface IfBreak { readonly kind: 'ifBreak'; readonly broken: Doc; readonly flat: Doc }
interface Suffix { readonly kind: 'suffix'; readonly body: Doc }

const softline: Line = { kind: 'line', flat: '', hard: false };
const line: Line = { kind: 'line', flat: ' ', hard: false };
const hardline: Line = { kind: 'line', flat: '', hard: true };
const group = (body: Doc, broken = false): Group => ({ kind: 'group', body, broken });
const indent = (body: Doc): Indent => ({ kind: 'indent', body });
const ifBreak = (broken: Doc, flat: Doc = ''): IfBreak => ({ kind: 'ifBreak', broken, flat });
const suffix = (body: Doc): Suffix => ({ kind: 'suffix', body });

type Mode = 'flat' | 'break';
type Command = readonly [indent: number, mode: Mode, doc: Doc];

/**
 * Lays `doc` out in `width` columns. An indent counts only in a broken group, so that a broken list
 * inside a list that stays on one line (`f(x, [` ... `])`) is indented from the line, not twice.
 */
function render(doc: Doc, width: number): string {
  const out: string[] = [];
  let column = 0;
  let pending: Command[] = [];
  const stack: Command[] = [[0, 'break', doc]];
  while (stack.length > 0) {
    const [level, mode, d] = stack.pop()!;
    if (typeof d === 'string') {
      out.push(d);
      column += d.length;
    } else if (Array.isArray(d)) {
      for (let i = d.length - 1; i >= 0; i--) stack.push([level, mode, d[i]]);
    } else {
      const node = d as Exclude<Doc, string | readonly Doc[]>;
      switch (node.kind) {
        case 'indent':
          stack.push([mode === 'break' ? level + 1 : level, mode, node.body]);
          break;
        case 'group': {
          const flat = !node.broken && (mode === 'flat' || fits([level, 'flat', node.body], stack, width - column));
          stack.push([level, flat ? 'flat' : 'break', node.body]);
          break;
        }
        case 'ifBreak':
          stack.push([level, mode, mode === 'break' ? node.broken : node.flat]);
          break;
        case 'suffix':
          pending.push([level, mode, node.body]);
          break;
        case 'line':
          if (mode === 'flat' && !node.hard) {
            out.push(node.flat);
            column += node.flat.length;
          } else if (pending.length > 0) {
            // the trailing comments go before the break
            stack.push([level, mode, node]);
            for (let i = pending.length - 1; i >= 0; i--) stack.push(pending[i]);
            pending = [];
          } else {
            if (out.length > 0) out[out.length - 1] = out[out.length - 1].replace(/[ \t]+$/, '');
            const pad = INDENT.repeat(level);
            out.push('\n', pad);
            column = pad.length;
          }
          break;
      }
    }
    if (stack.length === 0 && pending.length > 0) {
      stack.push(...pending.reverse());
      pending = [];
    }
  }
  return out.join('').replace(/[ \t]+$/gm, '');
}

/** Whether `next` printed flat, then the rest up to its first possible line break, takes at most `room` columns. */
function fits(next: Command, rest: readonly Command[], room: number): boolean {
  const todo: Command[] = [next];
  let restIndex = rest.length;
  while (room >= 0) {
    if (todo.length === 0) {
      if (restIndex === 0) return true;
      todo.push(rest[--restIndex]);
      continue;
    }
    const [level, mode, d] = todo.pop()!;
    if (typeof d === 'string') room -= d.length;
    else if (Array.isArray(d)) for (let i = d.length - 1; i >= 0; i--) todo.push([level, mode, d[i]]);
    else {
      const node = d as Exclude<Doc, string | readonly Doc[]>;
      switch (node.kind) {
        case 'indent':
          todo.push([level, mode, node.body]);
          break;
        case 'group':
          todo.push([level, node.broken ? 'break' : mode, node.body]);
          break;
        case 'ifBreak':
          todo.push([level, mode, mode === 'break' ? node.broken : node.flat]);
          break;
        case 'suffix':
          break;
        case 'line':
          if (mode === 'break' || node.hard) return true;
          room -= node.flat.length;
          break;
      }
    }
  }
  return false;
}

/** A comment as lines: a block comment's further lines take the indentation of the line it starts on. */
function comment(text: string): Doc {
  const lines = text.split('\n');
  return lines.flatMap((l, i) => (i === 0 ? [l] : [hardline, l]));
}

// ------------------------------------------------------------------ bracketed lists

/** The list layouts of the statement being printed, by where their first item starts. */
type Lists = ReadonlyMap<number, A.ListLayout>;
const NO_LISTS: Lists = new Map();

/**
 * `open item, item close`, or when it does not fit (or was written one item a line, or has comments
 * among its items) each item on a line of its own, one level in, each followed by a comma.
 */
function bracketed(open: string, items: readonly { readonly span: A.Span }[], docs: readonly Doc[], close: string, lists: Lists, how: { alwaysComma?: boolean; keepOne?: boolean; noTrailingComma?: boolean; unrecorded?: boolean } = {}): Doc {
  if (items.length === 0) return `${open}${close}`;
  const layout = lists.get(items[0].span.start);
  // `forward(x: f32[B, n]) -> ...`: one hyperparameter on a line of its own would only move the long part
  if (how.keepOne && items.length === 1 && layout === undefined) return [open, docs[0], close];
  const alwaysComma = how.alwaysComma ?? false;
  const body: Doc[] = [];
  docs.forEach((doc, i) => {
    const last = i === docs.length - 1;
    body.push(i === 0 ? softline : line);
    for (const c of layout?.leading[i] ?? []) body.push(comment(c), hardline);
    for (const c of layout?.inline?.[i] ?? []) body.push(comment(c), ' ');
    body.push(doc, last ? (how.noTrailingComma ? '' : ifBreak(',', alwaysComma ? ',' : '')) : ',');
    const trailing = layout?.trailing[i] ?? [];
    if (trailing.length > 0) body.push(suffix([' ', comment(trailing.join(' '))]));
  });
  for (const c of layout?.end ?? []) body.push(hardline, comment(c));
  // a list whose layout is not recorded (dimensions, indices) breaks by the width alone, or when a list inside it is broken
  return how.unrecorded ? groupAround([open, indent(body), softline, close]) : group([open, indent(body), softline, close], layout !== undefined);
}

// ------------------------------------------------------------------ statements

function statements(block: A.Block): Doc {
  const out: Doc[] = [];
  const next = () => {
    if (out.length > 0) out.push(hardline);
  };
  block.stmts.forEach((s, i) => {
    if (i > 0 && s.trivia.blankBefore) next();
    for (const c of s.trivia.leading) {
      next();
      if (c !== '') out.push(comment(c));
    }
    next();
    const lists: Lists = new Map((s.trivia.lists ?? []).map((l) => [l.at, l]));
    out.push(statement(s, lists));
    if (s.trivia.trailing.length > 0) out.push(suffix([' ', comment(s.trivia.trailing.join(' '))]));
  });
  for (const c of block.endComments) {
    next();
    if (c !== '') out.push(comment(c));
  }
  return out;
}

/** `{`, the statements one level deeper, `}`; an empty block prints as `{}`. */
function blockDoc(block: A.Block): Doc {
  if (block.stmts.length === 0 && block.endComments.length === 0) return '{}';
  return ['{', indentAlways([hardline, statements(block)]), hardline, '}'];
}

/** An indent that counts whatever the mode around it: a block's statements are always one level in. */
function indentAlways(body: Doc): Doc {
  return { kind: 'group', body: indent(body), broken: true, block: true };
}

/**
 * A group that `dlc fmt` does not record as broken (a comprehension, `return a, b`, an operator chain, an if-expression): it breaks when a list
 * inside it is broken, as it did when that list broke for the width, so that printing again changes nothing.
 */
function groupAround(body: Doc): Group {
  return group(body, holdsBroken(body));
}

function holdsBroken(doc: Doc): boolean {
  if (typeof doc === 'string') return false;
  if (Array.isArray(doc)) return doc.some(holdsBroken);
  const node = doc as Exclude<Doc, string | readonly Doc[]>;
  switch (node.kind) {
    case 'group':
      return node.block ? false : node.broken || holdsBroken(node.body);
    case 'ifBreak':
      return holdsBroken(node.broken) || holdsBroken(node.flat);
    case 'line':
      return false;
    default:
      return holdsBroken(node.body);
  }
}

function statement(s: A.Stmt, L: Lists): Doc {
  const e = (x: A.Expr) => expr(x, Prec.Lambda, L);
  const cond = (x: A.Expr) => expr(x, Prec.Or, L);
  const guard = (g: A.Expr | null): Doc => (g ? [' if ', cond(g)] : '');
  // `return a, b` and `where c, d`: when too long, one item a line after the first, one level in
  const list = (xs: readonly A.Expr[]): Doc => (xs.length < 2 ? join(xs.map(e), ', ') : groupAround([e(xs[0]), indent(xs.slice(1).map((x) => [',', line, e(x)]))]));
  switch (s.kind) {
    case 'Param':
    case 'State':
      return [s.kind === 'Param' ? 'param ' : 'state ', s.name.text, ': ', type(s.type, L), s.init ? [' = ', expr(s.init, Prec.Or, L)] : '', guard(s.guard)];
    case 'Input':
      return ['input ', s.name.text, ': ', type(s.type, L)];
    case 'Output':
      return ['output ', s.name.text, s.type ? [': ', type(s.type, L)] : '', ' = ', e(s.value)];
    case 'SubLayer':
      // a value followed by ` if guard` must not itself end in something that would swallow the `if`
      return ['layer ', s.name.text, ' = ', s.guard ? expr(s.value, Prec.Or, L) : e(s.value), guard(s.guard)];
    case 'Let':
      return ['let ', names(s.targets), s.type ? [': ', type(s.type, L)] : '', ' = ', e(s.value)];
    case 'Assign':
      return [names(s.targets), ' = ', e(s.value)];
    case 'Loss':
      return ['loss', s.name ? ` ${s.name.text}` : '', ' = ', e(s.value)];
    case 'Metric':
      return ['metric ', s.name.text, ' = ', e(s.value)];
    case 'Where':
      return ['where ', list(s.conditions)];
    case 'Forward':
      return ['forward', params(s.params, L), returns(s.returns, L), body(s.body, L)];
    case 'Return':
      return ['return ', list(s.values)];
    case 'Yield':
      return ['yield ', list(s.values)];
    case 'For':
      return ['for ', names(s.vars), ' in ', cond(s.iterable), ' ', blockDoc(s.body)];
    case 'If':
      return ifDoc(s, L);
    case 'Setting':
      return [s.name.text, ' = ', e(s.value)];
    case 'SettingBlock':
      return [s.name.text, s.label ? ` ${s.label.text}` : '', ' ', blockDoc(s.body)];
    case 'Freeze':
      return ['freeze ', list(s.targets)];
    case 'Step':
      return ['step ', s.name.text, ' ', blockDoc(s.body)];
    case 'Objective': {
      const over: Doc = s.over.length > 0 ? [' over ', join(s.over.map(cond), ', ')] : '';
      const withOpt: Doc = s.optimizer ? [' with ', e(s.optimizer)] : '';
      return [s.direction, ' ', s.over.length > 0 || s.optimizer ? cond(s.loss) : e(s.loss), over, withOpt];
    }
    case 'Use':
      return useDoc(s, L);
    case 'Layer':
    case 'Model':
      return [s.kind === 'Layer' ? 'layer ' : 'model ', s.name.text, s.params.length > 0 ? params(s.params, L) : '', ' ', blockDoc(s.body)];
    case 'Fn':
      return ['fn ', s.name.text, params(s.params, L), returns(s.returns, L), body(s.body, L)];
    case 'Train':
      return ['train ', s.model.text, s.args ? args(s.args, L) : '', ' ', blockDoc(s.body)];
  }
}

function ifDoc(s: A.IfStmt, L: Lists): Doc {
  const out: Doc[] = ['if ', expr(s.condition, Prec.Or, L), ' ', blockDoc(s.then)];
  if (s.else) {
    const only = s.else.stmts.length === 1 && s.else.endComments.length === 0 ? s.else.stmts[0] : undefined;
    if (only && only.kind === 'If' && only.trivia.leading.length === 0 && only.trivia.trailing.length === 0) {
      const lists: Lists = new Map((only.trivia.lists ?? []).map((l) => [l.at, l]));
      out.push(' else ', ifDoc(only, lists));
    } else {
      out.push(' else ', blockDoc(s.else));
    }
  }
  return out;
}

/** `use source.{a, b as c} as alias`; an import list is a bracketed list without a trailing comma (the grammar has none there). */
function useDoc(s: A.UseDecl, L: Lists): Doc {
  const source = Array.isArray(s.source) ? s.source.map((n) => n.text).join('.') : stringText((s.source as A.StringLit).value);
  let imports: Doc = '';
  if (s.imports !== null) {
    if ('kind' in s.imports) imports = '.*';
    else {
      const items = s.imports as readonly A.ImportItem[];
      const docs = items.map((i) => (i.alias ? `${i.name.text} as ${i.alias.text}` : i.name.text));
      imports = ['.', bracketed('{', items, docs, '}', L, { noTrailingComma: true })];
    }
  }
  return ['use ', source, imports, s.alias ? ` as ${s.alias.text}` : ''];
}

function body(b: A.Block | A.Expr, L: Lists): Doc {
  return b.kind === 'Block' ? [' ', blockDoc(b)] : [' = ', expr(b, Prec.Lambda, L)];
}

function returns(types: readonly A.TypeExpr[], L: Lists): Doc {
  if (types.length === 0) return '';
  if (types.length === 1) return [' -> ', type(types[0], L)];
  return [' -> (', join(types.map((t) => type(t, L)), ', '), ')'];
}

function names(ns: readonly A.Name[]): string {
  return ns.map((n) => n.text).join(', ');
}

function join(docs: readonly Doc[], separator: string): Doc {
  return docs.flatMap((d, i) => (i === 0 ? [d] : [separator, d]));
}

/** `(name: type = default, ...)`. */
function params(ps: readonly A.HyperParam[], L: Lists): Doc {
  const docs = ps.map((p): Doc => [p.name.text, p.type ? [': ', type(p.type, L)] : '', p.default ? [' = ', expr(p.default, Prec.Lambda, L)] : '']);
  return bracketed('(', ps, docs, ')', L, { keepOne: true });
}

/** `(value, name: value, ...)`. */
function args(as: readonly A.Arg[], L: Lists): Doc {
  const docs = as.map((a): Doc => [a.name ? `${a.name.text}: ` : '', expr(a.value, Prec.Lambda, L)]);
  return bracketed('(', as, docs, ')', L);
}

/** `f32[B, d]`; long dimensions break one a line (no trailing comma: the grammar has none there). */
function type(t: A.TypeExpr, L: Lists): Doc {
  if (t.dims === null) return t.name.text;
  return [t.name.text, bracketed('[', t.dims, t.dims.map((x) => expr(x, Prec.Lambda, L)), ']', L, { noTrailingComma: true, unrecorded: true })];
}

// ------------------------------------------------------------------ expressions

function expr(e: A.Expr, min: Prec, L: Lists): Doc {
  const doc = exprDoc(e, L);
  return precedence(e) < min ? ['(', doc, ')'] : doc;
}

function exprDoc(e: A.Expr, L: Lists): Doc {
  switch (e.kind) {
    case 'Number':
      return e.text;
    case 'String':
      return stringText(e.value);
    case 'Bool':
      return e.value ? 'true' : 'false';
    case 'None':
      return 'None';
    case 'Ident':
      return e.name;
    case 'Ellipsis':
      return '...';
    case 'ErrorExpr':
      return '<error>';
    case 'List':
      return bracketed('[', e.items, e.items.map((x) => expr(x, Prec.Lambda, L)), ']', L);
    case 'Tuple':
      // `(a,)` is a tuple of one; `(a)` would be a parenthesised `a`
      return bracketed('(', e.items, e.items.map((x) => expr(x, Prec.Lambda, L)), ')', L, { alwaysComma: e.items.length === 1 });
    case 'Comprehension': {
      const condition: Doc = e.condition ? [' if ', expr(e.condition, Prec.Or, L)] : '';
      return groupAround(['[', indent([softline, expr(e.element, Prec.Lambda, L), ' for ', names(e.vars), ' in ', expr(e.iterable, Prec.Or, L), condition]), softline, ']']);
    }
    case 'Unary':
      if (e.op === 'not') return ['not ', expr(e.operand, Prec.Not, L)];
      // `- -a`, not `--a` (which reads as a decrement)
      return [e.op, e.operand.kind === 'Unary' && e.operand.op !== 'not' ? ' ' : '', expr(e.operand, Prec.Unary, L)];
    case 'Binary': {
      if (e.op === '..') return [expr(e.left, operandPrec(e.op, 'left'), L), '..', expr(e.right, operandPrec(e.op, 'right'), L)];
      // `a + b - c`: a chain of operators of one precedence, which breaks after each operator when too long
      const rest: Doc[] = [];
      let first: A.Expr = e;
      while (first.kind === 'Binary' && first.op !== '..' && first.op !== '**' && BINARY_PREC[first.op] === BINARY_PREC[e.op]) {
        rest.unshift([' ', first.op, line, expr(first.right, operandPrec(first.op, 'right'), L)]);
        first = first.left;
      }
      if (rest.length === 0) return [expr(e.left, operandPrec(e.op, 'left'), L), ` ${e.op} `, expr(e.right, operandPrec(e.op, 'right'), L)];
      return groupAround([expr(first, operandPrec(e.op, 'left'), L), indent(rest)]);
    }
    case 'Call':
      return [expr(e.callee, Prec.Postfix, L), args(e.args, L)];
    case 'Index':
      return [expr(e.target, Prec.Postfix, L), bracketed('[', e.items, e.items.map((i) => indexItem(i, L)), ']', L, { noTrailingComma: true, unrecorded: true })];
    case 'Member': {
      // `(1).2` must keep its parentheses: `1.2` would lex as one float
      const target = e.target.kind === 'Number' && /^\d/.test(e.member.text) ? ['(', exprDoc(e.target, L), ')'] : expr(e.target, Prec.Postfix, L);
      return [target, '.', e.member.text];
    }
    case 'IfExpr':
      // `if c { a } else { b }`, or when too long each branch on a line of its own, `else if` chains included
      return groupAround(ifExprParts(e, L));
    case 'Lambda':
      return ['fn', params(e.params, L), ' => ', expr(e.body, Prec.Lambda, L)];
    case 'Scan': {
      const axis: Doc = e.axis ? [' along ', expr(e.axis, Prec.Or, L)] : '';
      const carry: Doc = e.carry.length > 0 ? [' carry (', join(e.carry.map((c) => [c.name.text, ' = ', expr(c.init, Prec.Lambda, L)]), ', '), ')'] : '';
      return ['scan ', e.reverse ? 'reverse ' : '', e.variables.map((v) => v.text).join(', '), ' in ', expr(e.source, Prec.Or, L), axis, carry, ' ', blockDoc(e.body)];
    }
  }
}

function ifExprParts(e: A.IfExpr, L: Lists): Doc {
  const branch = (x: A.Expr): Doc => ['{', indent([line, expr(x, Prec.Lambda, L)]), line, '}'];
  return ['if ', expr(e.condition, Prec.Or, L), ' ', branch(e.then), ' else ', e.else.kind === 'IfExpr' ? ifExprParts(e.else, L) : branch(e.else)];
}

function indexItem(i: A.IndexItem, L: Lists): Doc {
  if (i.kind !== 'Slice') return expr(i, Prec.Lambda, L);
  const part = (x: A.Expr | null): Doc => (x ? expr(x, Prec.Lambda, L) : '');
  return [part(i.start), ':', part(i.stop), i.step ? [':', part(i.step)] : ''];
}

function stringText(value: string): string {
  const escaped = value.replace(/[\\"\n\r\t\0]/g, (ch) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0' })[ch]!);
  return `"${escaped}"`;
}
