// The canonical printer behind `dlc fmt`: AST in, formatted .dl text out, comments kept, minimal parentheses.
import type * as A from './ast.ts';
import { operandPrec, Prec, precedence } from './precedence.ts';

const INDENT = '  ';

export interface PrintOptions {
  /** The line ending written throughout, comments included (`dlc fmt` keeps the file's own: endOfLineOf). */
  readonly endOfLine?: '\n' | '\r\n';
}

export function print(program: A.Program, options: PrintOptions = {}): string {
  const out: string[] = [];
  printStatements(program.body, 0, out);
  const text = out.length === 0 ? '' : `${out.join('\n')}\n`;
  // every \n here is a line break: strings print theirs as `\n`, and comments arrive with theirs as \n
  return options.endOfLine === '\r\n' ? text.replace(/\n/g, '\r\n') : text;
}

/** The line ending a source uses: that of its first line (`\r\n` for a Windows file), else `\n`. */
export function endOfLineOf(source: string): '\n' | '\r\n' {
  return /\r\n?|\n/.exec(source)?.[0] === '\r\n' ? '\r\n' : '\n';
}

export function printExpr(e: A.Expr): string {
  return expr(e, Prec.Lambda, 0);
}

// ------------------------------------------------------------------ statements

function printStatements(block: A.Block, depth: number, out: string[]): void {
  const pad = INDENT.repeat(depth);
  block.stmts.forEach((s, i) => {
    if (i > 0 && s.trivia.blankBefore) out.push('');
    for (const c of s.trivia.leading) out.push(c === '' ? '' : pad + indentComment(c, pad));
    const lines = statement(s, depth).split('\n');
    if (s.trivia.trailing.length > 0) lines[lines.length - 1] += ` ${indentComment(s.trivia.trailing.join(' '), pad)}`;
    out.push(pad + lines[0], ...lines.slice(1));
  });
  for (const c of block.endComments) out.push(c === '' ? '' : pad + indentComment(c, pad));
}

/** A comment's further lines (a block comment's) indented by `pad`, as its first line is; trivia.ts took their old indentation off. */
function indentComment(text: string, pad: string): string {
  return text.replace(/\n(?=[^\n])/g, `\n${pad}`);
}

/** `{`, the statements one level deeper, `}`; an empty block prints as `{}`. */
function blockText(block: A.Block, depth: number): string {
  if (block.stmts.length === 0 && block.endComments.length === 0) return '{}';
  const inner: string[] = [];
  printStatements(block, depth + 1, inner);
  return `{\n${inner.join('\n')}\n${INDENT.repeat(depth)}}`;
}

function statement(s: A.Stmt, d: number): string {
  const e = (x: A.Expr) => expr(x, Prec.Lambda, d);
  const cond = (x: A.Expr) => expr(x, Prec.Or, d);
  const guard = (g: A.Expr | null) => (g ? ` if ${cond(g)}` : '');
  const list = (xs: readonly A.Expr[]) => xs.map(e).join(', ');
  switch (s.kind) {
    case 'Param':
    case 'State':
      return `${s.kind === 'Param' ? 'param' : 'state'} ${s.name.text}: ${type(s.type, d)}${s.init ? ` = ${guardedValue(s.init, d)}` : ''}${guard(s.guard)}`;
    case 'Input':
      return `input ${s.name.text}: ${type(s.type, d)}`;
    case 'Output':
      return `output ${s.name.text}${s.type ? `: ${type(s.type, d)}` : ''} = ${e(s.value)}`;
    case 'SubLayer':
      return `layer ${s.name.text} = ${s.guard ? guardedValue(s.value, d) : e(s.value)}${guard(s.guard)}`;
    case 'Let':
      return `let ${names(s.targets)}${s.type ? `: ${type(s.type, d)}` : ''} = ${e(s.value)}`;
    case 'Assign':
      return `${names(s.targets)} = ${e(s.value)}`;
    case 'Loss':
      return `loss${s.name ? ` ${s.name.text}` : ''} = ${e(s.value)}`;
    case 'Metric':
      return `metric ${s.name.text} = ${e(s.value)}`;
    case 'Where':
      return `where ${list(s.conditions)}`;
    case 'Forward':
      return `forward(${params(s.params, d)})${returns(s.returns, d)}${bodyText(s.body, d)}`;
    case 'Return':
      return `return ${list(s.values)}`;
    case 'Yield':
      return `yield ${list(s.values)}`;
    case 'For':
      return `for ${names(s.vars)} in ${cond(s.iterable)} ${blockText(s.body, d)}`;
    case 'If':
      return ifText(s, d);
    case 'Setting':
      return `${s.name.text} = ${e(s.value)}`;
    case 'SettingBlock':
      return `${s.name.text}${s.label ? ` ${s.label.text}` : ''} ${blockText(s.body, d)}`;
    case 'Freeze':
      return `freeze ${list(s.targets)}`;
    case 'Step':
      return `step ${s.name.text} ${blockText(s.body, d)}`;
    case 'Objective': {
      const over = s.over.length > 0 ? ` over ${s.over.map(cond).join(', ')}` : '';
      const withOpt = s.optimizer ? ` with ${e(s.optimizer)}` : '';
      return `${s.direction} ${s.over.length > 0 || s.optimizer ? cond(s.loss) : e(s.loss)}${over}${withOpt}`;
    }
    case 'Use':
      return useText(s);
    case 'Layer':
    case 'Model':
      return `${s.kind === 'Layer' ? 'layer' : 'model'} ${s.name.text}${s.params.length > 0 ? `(${params(s.params, d)})` : ''} ${blockText(s.body, d)}`;
    case 'Fn':
      return `fn ${s.name.text}(${params(s.params, d)})${returns(s.returns, d)}${bodyText(s.body, d)}`;
    case 'Train':
      return `train ${s.model.text}${s.args ? `(${args(s.args, d)})` : ''} ${blockText(s.body, d)}`;
  }
}

/** A value followed by ` if guard` must not itself end in something that would swallow the `if`. */
function guardedValue(x: A.Expr, d: number): string {
  return expr(x, Prec.Or, d);
}

function ifText(s: A.IfStmt, d: number): string {
  let text = `if ${expr(s.condition, Prec.Or, d)} ${blockText(s.then, d)}`;
  if (s.else) {
    const only = s.else.stmts.length === 1 && s.else.endComments.length === 0 ? s.else.stmts[0] : undefined;
    if (only && only.kind === 'If' && only.trivia.leading.length === 0 && only.trivia.trailing.length === 0) {
      text += ` else ${ifText(only, d)}`;
    } else {
      text += ` else ${blockText(s.else, d)}`;
    }
  }
  return text;
}

function useText(s: A.UseDecl): string {
  const source = Array.isArray(s.source) ? s.source.map((n) => n.text).join('.') : stringText((s.source as A.StringLit).value);
  let imports = '';
  if (s.imports !== null) {
    if ('kind' in s.imports) imports = '.*';
    else {
      const items = s.imports as readonly A.ImportItem[];
      imports = `.{${items.map((i) => (i.alias ? `${i.name.text} as ${i.alias.text}` : i.name.text)).join(', ')}}`;
    }
  }
  return `use ${source}${imports}${s.alias ? ` as ${s.alias.text}` : ''}`;
}

function bodyText(b: A.Block | A.Expr, d: number): string {
  return b.kind === 'Block' ? ` ${blockText(b, d)}` : ` = ${expr(b, Prec.Lambda, d)}`;
}

function returns(types: readonly A.TypeExpr[], d: number): string {
  if (types.length === 0) return '';
  if (types.length === 1) return ` -> ${type(types[0], d)}`;
  return ` -> (${types.map((t) => type(t, d)).join(', ')})`;
}

function names(ns: readonly A.Name[]): string {
  return ns.map((n) => n.text).join(', ');
}

function params(ps: readonly A.HyperParam[], d: number): string {
  return ps
    .map((p) => `${p.name.text}${p.type ? `: ${type(p.type, d)}` : ''}${p.default ? ` = ${expr(p.default, Prec.Lambda, d)}` : ''}`)
    .join(', ');
}

function args(as: readonly A.Arg[], d: number): string {
  return as.map((a) => `${a.name ? `${a.name.text}: ` : ''}${expr(a.value, Prec.Lambda, d)}`).join(', ');
}

/** A type as written: `f32[B, d]`. */
export function printType(t: A.TypeExpr): string {
  return type(t, 0);
}

function type(t: A.TypeExpr, d: number): string {
  return t.dims === null ? t.name.text : `${t.name.text}[${t.dims.map((x) => expr(x, Prec.Lambda, d)).join(', ')}]`;
}

// ------------------------------------------------------------------ expressions

function expr(e: A.Expr, min: Prec, d: number): string {
  const text = exprText(e, d);
  return precedence(e) < min ? `(${text})` : text;
}

function exprText(e: A.Expr, d: number): string {
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
      return `[${e.items.map((x) => expr(x, Prec.Lambda, d)).join(', ')}]`;
    case 'Tuple':
      if (e.items.length === 1) return `(${expr(e.items[0], Prec.Lambda, d)},)`;
      return `(${e.items.map((x) => expr(x, Prec.Lambda, d)).join(', ')})`;
    case 'Comprehension': {
      const condition = e.condition ? ` if ${expr(e.condition, Prec.Or, d)}` : '';
      return `[${expr(e.element, Prec.Lambda, d)} for ${names(e.vars)} in ${expr(e.iterable, Prec.Or, d)}${condition}]`;
    }
    case 'Unary':
      if (e.op === 'not') return `not ${expr(e.operand, Prec.Not, d)}`;
      return `${e.op}${expr(e.operand, Prec.Unary, d)}`;
    case 'Binary': {
      const left = expr(e.left, operandPrec(e.op, 'left'), d);
      const right = expr(e.right, operandPrec(e.op, 'right'), d);
      return e.op === '..' ? `${left}..${right}` : `${left} ${e.op} ${right}`;
    }
    case 'Call':
      return `${expr(e.callee, Prec.Postfix, d)}(${args(e.args, d)})`;
    case 'Index':
      return `${expr(e.target, Prec.Postfix, d)}[${e.items.map((i) => indexItem(i, d)).join(', ')}]`;
    case 'Member': {
      // `(1).2` must keep its parentheses: `1.2` would lex as one float
      const target = e.target.kind === 'Number' && /^\d/.test(e.member.text) ? `(${exprText(e.target, d)})` : expr(e.target, Prec.Postfix, d);
      return `${target}.${e.member.text}`;
    }
    case 'IfExpr':
      return `if ${expr(e.condition, Prec.Or, d)} { ${expr(e.then, Prec.Lambda, d)} } else ${
        e.else.kind === 'IfExpr' ? exprText(e.else, d) : `{ ${expr(e.else, Prec.Lambda, d)} }`
      }`;
    case 'Lambda':
      return `fn(${params(e.params, d)}) => ${expr(e.body, Prec.Lambda, d)}`;
    case 'Scan': {
      const axis = e.axis ? ` along ${expr(e.axis, Prec.Or, d)}` : '';
      const carry = e.carry.length > 0 ? ` carry (${e.carry.map((c) => `${c.name.text} = ${expr(c.init, Prec.Lambda, d)}`).join(', ')})` : '';
      return `scan ${e.reverse ? 'reverse ' : ''}${e.variables.map((v) => v.text).join(', ')} in ${expr(e.source, Prec.Or, d)}${axis}${carry} ${blockText(e.body, d)}`;
    }
  }
}

function indexItem(i: A.IndexItem, d: number): string {
  if (i.kind !== 'Slice') return expr(i, Prec.Lambda, d);
  const part = (x: A.Expr | null) => (x ? expr(x, Prec.Lambda, d) : '');
  return `${part(i.start)}:${part(i.stop)}${i.step ? `:${part(i.step)}` : ''}`;
}

function stringText(value: string): string {
  const escaped = value.replace(/[\\"\n\r\t\0]/g, (ch) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0' })[ch]!);
  return `"${escaped}"`;
}
