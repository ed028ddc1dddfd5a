// The one place where Chevrotain's concrete syntax tree becomes the readonly AST (tolerating recovered, partial nodes).
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { NO_TRIVIA } from './ast.ts';
import { BINARY_PREC, operandPrec, Prec } from './precedence.ts';

/** Problems found while building the AST that the grammar alone cannot express (bad escapes, huge integers). */
export interface BuildProblem {
  readonly code: 'E0004' | 'E0005' | 'E0014';
  readonly message: string;
  readonly span: A.Span;
}

type Children = Record<string, CstElement[] | undefined>;

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}

/** One past the token's last character (Chevrotain's endOffset is inclusive). */
export function tokenEnd(t: IToken): number {
  return (t.endOffset ?? t.startOffset) + 1;
}

function startOf(e: CstElement): number {
  return isToken(e) ? e.startOffset : (e.location?.startOffset ?? Number.NaN);
}

export function buildAst(cst: CstNode, file: string, sourceLength: number): { program: A.Program; problems: BuildProblem[] } {
  const problems: BuildProblem[] = [];

  // ---------------------------------------------------------------- helpers

  const spanOfToken = (t: IToken): A.Span => ({ file, start: t.startOffset, end: tokenEnd(t) });
  const spanOfNode = (n: CstNode): A.Span => {
    const loc = n.location;
    if (!loc || Number.isNaN(loc.startOffset)) return { file, start: 0, end: 0 };
    const end = loc.endOffset === undefined || Number.isNaN(loc.endOffset) ? loc.startOffset : loc.endOffset + 1;
    return { file, start: loc.startOffset, end: Math.max(loc.startOffset, end) };
  };
  const join = (a: A.Span, b: A.Span): A.Span => ({ file, start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) });

  const tokens = (c: Children, key: string): IToken[] => (c[key] ?? []).filter(isToken);
  const nodes = (c: Children, key: string): CstNode[] => (c[key] ?? []).filter((e): e is CstNode => !isToken(e));
  const token = (c: Children, key: string): IToken | undefined => tokens(c, key)[0];
  const node = (c: Children, key: string): CstNode | undefined => nodes(c, key)[0];

  const missingName = (at: A.Span): A.Name => ({ kind: 'Name', text: '', span: { file, start: at.end, end: at.end } });
  const name = (t: IToken | undefined, fallback: A.Span): A.Name =>
    t && !t.isInsertedInRecovery && t.image !== undefined && t.image !== ''
      ? { kind: 'Name', text: t.image, span: spanOfToken(t) }
      : missingName(fallback);
  const errorExpr = (at: A.Span): A.ErrorExpr => ({ kind: 'ErrorExpr', span: at });
  const exprOr = (n: CstNode | undefined, at: A.Span): A.Expr => (n ? expression(n) : errorExpr(at));

  // ---------------------------------------------------------------- declarations

  function program(n: CstNode): A.Program {
    const c = n.children;
    const stmts: A.Stmt[] = [];
    for (const e of ordered(c, ['useDecl', 'layerDecl', 'modelDecl', 'fnDecl', 'trainDecl', 'letStmt'])) {
      const d = declaration(e as CstNode);
      if (d) stmts.push(d);
    }
    const span = { file, start: 0, end: sourceLength };
    return { kind: 'Program', file, body: { kind: 'Block', stmts, endComments: [], span }, span };
  }

  function ordered(c: Children, keys: string[]): CstElement[] {
    return keys.flatMap((k) => c[k] ?? []).sort((a, b) => startOf(a) - startOf(b));
  }

  function declaration(n: CstNode): A.Stmt | undefined {
    switch (n.name) {
      case 'useDecl':
        return useDecl(n);
      case 'layerDecl':
      case 'modelDecl': {
        const span = spanOfNode(n);
        const c = n.children;
        const pl = node(c, 'paramList');
        return {
          kind: n.name === 'layerDecl' ? 'Layer' : 'Model',
          name: name(token(c, 'Identifier'), span),
          params: pl ? paramList(pl) : [],
          body: block(node(c, 'block'), span),
          span,
          trivia: NO_TRIVIA,
        };
      }
      case 'fnDecl': {
        const span = spanOfNode(n);
        const c = n.children;
        const pl = node(c, 'paramList');
        return {
          kind: 'Fn',
          name: name(token(c, 'Identifier'), span),
          params: pl ? paramList(pl) : [],
          returns: returnsClause(node(c, 'returnsClause')),
          body: body(node(c, 'body'), span),
          span,
          trivia: NO_TRIVIA,
        };
      }
      case 'trainDecl': {
        const span = spanOfNode(n);
        const c = n.children;
        const al = node(c, 'argList');
        return {
          kind: 'Train',
          model: name(token(c, 'Identifier'), span),
          args: al ? argList(al) : null,
          body: trainBlock(node(c, 'trainBlock'), span),
          span,
          trivia: NO_TRIVIA,
        };
      }
      case 'letStmt':
        return statement(n);
      default:
        return undefined;
    }
  }

  function useDecl(n: CstNode): A.UseDecl {
    const c = n.children;
    const span = spanOfNode(n);
    const str = token(c, 'StringLit');
    const source: readonly A.Name[] | A.StringLit = str
      ? stringLit(str)
      : tokens(c, 'path').map((t) => name(t, span));
    let imports: A.ImportList = null;
    if (token(c, 'importDot')) {
      const star = token(c, 'Star');
      imports = star
        ? { kind: 'ImportAll', span: spanOfToken(star) }
        : nodes(c, 'importItem').map((item) => {
            const ic = item.children;
            const s = spanOfNode(item);
            const alias = token(ic, 'alias');
            return { kind: 'ImportItem', name: name(token(ic, 'name'), s), alias: alias ? name(alias, s) : null, span: s };
          });
    }
    const alias = token(c, 'alias');
    return { kind: 'Use', source, imports, alias: alias ? name(alias, span) : null, span, trivia: NO_TRIVIA };
  }

  function paramList(n: CstNode): A.HyperParam[] {
    return nodes(n.children, 'hyperParam').map(hyperParam);
  }

  function hyperParam(n: CstNode): A.HyperParam {
    const c = n.children;
    const span = spanOfNode(n);
    const t = node(c, 'typeExpr');
    const d = node(c, 'expression');
    return {
      kind: 'HyperParam',
      name: name(token(c, 'Identifier'), span),
      type: t ? typeExpr(t) : null,
      default: d ? expression(d) : null,
      span,
    };
  }

  function returnsClause(n: CstNode | undefined): A.TypeExpr[] {
    return n ? nodes(n.children, 'typeExpr').map(typeExpr) : [];
  }

  function body(n: CstNode | undefined, at: A.Span): A.Block | A.Expr {
    if (!n) return emptyBlock(at);
    const b = node(n.children, 'block');
    if (b) return block(b, at);
    return exprOr(node(n.children, 'expression'), spanOfNode(n));
  }

  function typeExpr(n: CstNode): A.TypeExpr {
    const c = n.children;
    const span = spanOfNode(n);
    const nameToken = token(c, 'Identifier') ?? token(c, 'FnKw');
    const dims = token(c, 'LBracket') ? nodes(c, 'dim').map((d) => dim(d)) : null;
    if (dims) checkEllipses(dims, 'a shape');
    return { kind: 'Type', name: name(nameToken, span), dims, span };
  }

  function dim(n: CstNode): A.Expr {
    const e = token(n.children, 'Ellipsis');
    if (e) return { kind: 'Ellipsis', span: spanOfToken(e) };
    return exprOr(node(n.children, 'expression'), spanOfNode(n));
  }

  function checkEllipses(items: readonly (A.Expr | A.Slice)[], where: string): void {
    const ellipses = items.filter((d) => d.kind === 'Ellipsis');
    for (const extra of ellipses.slice(1)) {
      problems.push({ code: 'E0014', message: `\`...\` may appear only once in ${where}`, span: extra.span });
    }
  }

  // ---------------------------------------------------------------- statements

  function emptyBlock(at: A.Span): A.Block {
    return { kind: 'Block', stmts: [], endComments: [], span: { file, start: at.end, end: at.end } };
  }

  function block(n: CstNode | undefined, at: A.Span): A.Block {
    if (!n) return emptyBlock(at);
    const stmts = nodes(n.children, 'statement').map(statementWrapper).filter((s): s is A.Stmt => s !== undefined);
    return { kind: 'Block', stmts, endComments: [], span: spanOfNode(n) };
  }

  function trainBlock(n: CstNode | undefined, at: A.Span): A.Block {
    if (!n) return emptyBlock(at);
    const stmts = nodes(n.children, 'trainStatement').map(trainStatement).filter((s): s is A.Stmt => s !== undefined);
    return { kind: 'Block', stmts, endComments: [], span: spanOfNode(n) };
  }

  function statementWrapper(n: CstNode): A.Stmt | undefined {
    const inner = Object.values(n.children).flat()[0];
    return inner && !isToken(inner) ? statement(inner) : undefined;
  }

  function exprList(c: Children, key: string, at: A.Span): A.Expr[] {
    const list = nodes(c, key).map(expression);
    return list.length > 0 ? list : [errorExpr(at)];
  }

  function statement(n: CstNode): A.Stmt | undefined {
    const c = n.children;
    const span = spanOfNode(n);
    const base = { span, trivia: NO_TRIVIA };
    switch (n.name) {
      case 'paramStmt':
      case 'stateStmt': {
        const d = node(c, 'declaredTensor');
        const dc = d?.children ?? {};
        const t = node(dc, 'typeExpr');
        const init = node(dc, 'init');
        const guard = node(dc, 'guard');
        return {
          kind: n.name === 'paramStmt' ? 'Param' : 'State',
          name: name(token(dc, 'Identifier'), span),
          type: t ? typeExpr(t) : missingType(span),
          init: init ? expression(init) : null,
          guard: guard ? expression(guard) : null,
          ...base,
        };
      }
      case 'inputStmt': {
        const t = node(c, 'typeExpr');
        return { kind: 'Input', name: name(token(c, 'Identifier'), span), type: t ? typeExpr(t) : missingType(span), ...base };
      }
      case 'outputStmt': {
        const t = node(c, 'typeExpr');
        return {
          kind: 'Output',
          name: name(token(c, 'Identifier'), span),
          type: t ? typeExpr(t) : null,
          value: exprOr(node(c, 'expression'), span),
          ...base,
        };
      }
      case 'subLayerStmt': {
        const guard = node(c, 'guard');
        return {
          kind: 'SubLayer',
          name: name(token(c, 'Identifier'), span),
          value: exprOr(node(c, 'value'), span),
          guard: guard ? expression(guard) : null,
          ...base,
        };
      }
      case 'letStmt': {
        const t = node(c, 'typeExpr');
        return {
          kind: 'Let',
          targets: namesOf(c, span),
          type: t ? typeExpr(t) : null,
          value: exprOr(node(c, 'expression'), span),
          ...base,
        };
      }
      case 'assignStmt':
        return { kind: 'Assign', targets: namesOf(c, span), value: exprOr(node(c, 'expression'), span), ...base };
      case 'lossStmt': {
        const id = token(c, 'Identifier');
        return { kind: 'Loss', name: id ? name(id, span) : null, value: exprOr(node(c, 'expression'), span), ...base };
      }
      case 'metricStmt':
        return { kind: 'Metric', name: name(token(c, 'Identifier'), span), value: exprOr(node(c, 'expression'), span), ...base };
      case 'whereStmt':
        return { kind: 'Where', conditions: exprList(c, 'expression', span), ...base };
      case 'forwardStmt': {
        const pl = node(c, 'paramList');
        return {
          kind: 'Forward',
          params: pl ? paramList(pl) : [],
          returns: returnsClause(node(c, 'returnsClause')),
          body: body(node(c, 'body'), span),
          ...base,
        };
      }
      case 'returnStmt':
        return { kind: 'Return', values: exprList(c, 'expression', span), ...base };
      case 'yieldStmt':
        return { kind: 'Yield', values: exprList(c, 'expression', span), ...base };
      case 'forStmt':
        return {
          kind: 'For',
          vars: namesOf(c, span),
          iterable: exprOr(node(c, 'expression'), span),
          body: block(node(c, 'block'), span),
          ...base,
        };
      case 'ifStmt': {
        const elseIf = node(c, 'elseIf');
        const elseBlock = node(c, 'else');
        let otherwise: A.Block | null = null;
        if (elseIf) {
          const nested = statement(elseIf)!;
          otherwise = { kind: 'Block', stmts: [nested], endComments: [], span: nested.span };
        } else if (elseBlock) {
          otherwise = block(elseBlock, span);
        }
        return {
          kind: 'If',
          condition: exprOr(node(c, 'expression'), span),
          then: block(node(c, 'then'), span),
          else: otherwise,
          ...base,
        };
      }
      default:
        return undefined;
    }
  }

  function namesOf(c: Children, at: A.Span): A.Name[] {
    const list = tokens(c, 'Identifier').map((t) => name(t, at));
    return list.length > 0 ? list : [missingName(at)];
  }

  function missingType(at: A.Span): A.TypeExpr {
    return { kind: 'Type', name: missingName(at), dims: null, span: { file, start: at.end, end: at.end } };
  }

  function trainStatement(n: CstNode): A.Stmt | undefined {
    const inner = Object.values(n.children).flat()[0];
    if (!inner || isToken(inner)) return undefined;
    const c = inner.children;
    const span = spanOfNode(inner);
    const base = { span, trivia: NO_TRIVIA };
    switch (inner.name) {
      case 'stepStmt':
        return { kind: 'Step', name: name(token(c, 'Identifier'), span), body: trainBlock(node(c, 'trainBlock'), span), ...base };
      case 'objectiveStmt': {
        const opt = node(c, 'optimizer');
        return {
          kind: 'Objective',
          direction: token(c, 'MaximizeKw') ? 'maximize' : 'minimize',
          loss: exprOr(node(c, 'loss'), span),
          over: nodes(c, 'over').map(expression),
          optimizer: opt ? expression(opt) : null,
          ...base,
        };
      }
      case 'freezeStmt':
        return { kind: 'Freeze', targets: exprList(c, 'expression', span), ...base };
      case 'settingBlock': {
        const label = token(c, 'label');
        return {
          kind: 'SettingBlock',
          name: name(token(c, 'Identifier'), span),
          label: label ? name(label, span) : null,
          body: trainBlock(node(c, 'trainBlock'), span),
          ...base,
        };
      }
      case 'setting':
        return { kind: 'Setting', name: name(token(c, 'Identifier'), span), value: exprOr(node(c, 'expression'), span), ...base };
      default:
        return undefined;
    }
  }

  // ---------------------------------------------------------------- expressions

  function expression(n: CstNode): A.Expr {
    const c = n.children;
    const span = spanOfNode(n);
    switch (n.name) {
      case 'expression': {
        const inner = node(c, 'lambdaExpr') ?? node(c, 'scanExpr') ?? node(c, 'ifExpr') ?? node(c, 'binaryExpr');
        return inner ? expression(inner) : errorExpr(span);
      }
      case 'lambdaExpr': {
        const pl = node(c, 'paramList');
        return { kind: 'Lambda', params: pl ? paramList(pl) : [], body: exprOr(node(c, 'expression'), span), span };
      }
      case 'scanExpr': {
        const axis = node(c, 'axis');
        return {
          kind: 'Scan',
          reverse: token(c, 'ReverseKw') !== undefined,
          variables: tokens(c, 'Identifier').map((t) => name(t, span)),
          source: exprOr(node(c, 'source'), span),
          axis: axis ? expression(axis) : null,
          carry: nodes(c, 'carryBinding').map((b) => {
            const s = spanOfNode(b);
            return {
              kind: 'Carry',
              name: name(token(b.children, 'Identifier'), s),
              init: exprOr(node(b.children, 'expression'), s),
              span: s,
            };
          }),
          body: block(node(c, 'block'), span),
          span,
        };
      }
      case 'binaryExpr':
        return binaryExpr(c, span);
      case 'ifExpr': {
        const elseIf = node(c, 'elseIf');
        return {
          kind: 'IfExpr',
          condition: exprOr(node(c, 'condition'), span),
          then: exprOr(node(c, 'then'), span),
          else: elseIf ? expression(elseIf) : exprOr(node(c, 'else'), span),
          span,
        };
      }
      case 'postfix':
        return postfix(n);
      case 'primary':
        return primary(n);
      default:
        return errorExpr(span);
    }
  }

  /**
   * Precedence climbing over the flat `operand (op operand)*` list the grammar produces. A prefix
   * operator's operand extends over every binary operator at least as strong as the prefix itself,
   * so -x ** 2 is -(x ** 2) and `not a == b` is not (a == b).
   */
  function binaryExpr(c: Children, span: A.Span): A.Expr {
    const operands = nodes(c, 'operand');
    const ops = tokens(c, 'op').sort((a, b) => a.startOffset - b.startOffset);
    // operands[i] is followed by ops[i]; `i` is the index of the next operator to look at.
    let i = 0;
    const absorb = (start: A.Expr, min: Prec): A.Expr => {
      let left = start;
      while (i < ops.length) {
        const op = ops[i].image as A.BinaryOp;
        if (BINARY_PREC[op] < min) break;
        i++;
        const right = absorb(readOperand(), operandPrec(op, 'right'));
        left = { kind: 'Binary', op, left, right, span: join(left.span, right.span) };
      }
      return left;
    };
    const readOperand = (): A.Expr => {
      const n = operands[i];
      if (!n) {
        const after = ops[i - 1];
        return errorExpr(after ? { file, start: tokenEnd(after), end: tokenEnd(after) } : span);
      }
      const prefixes = tokens(n.children, 'prefix').sort((a, b) => a.startOffset - b.startOffset);
      let x = exprOr(node(n.children, 'postfix'), spanOfNode(n));
      for (let j = prefixes.length - 1; j >= 0; j--) {
        const op = prefixes[j].image as A.UnaryOp;
        const operand = absorb(x, op === 'not' ? Prec.Not : Prec.Unary);
        x = { kind: 'Unary', op, operand, span: join(spanOfToken(prefixes[j]), operand.span) };
      }
      return x;
    };
    if (operands.length === 0) return errorExpr(span);
    return absorb(readOperand(), Prec.Lambda);
  }

  function postfix(n: CstNode): A.Expr {
    const c = n.children;
    let acc = exprOr(node(c, 'primary'), spanOfNode(n));
    const suffixes = ordered(c, ['callSuffix', 'indexSuffix', 'memberSuffix']) as CstNode[];
    for (const s of suffixes) {
      const sc = s.children;
      const span = join(acc.span, spanOfNode(s));
      if (s.name === 'callSuffix') {
        const al = node(sc, 'argList');
        acc = { kind: 'Call', callee: acc, args: al ? argList(al) : [], span };
      } else if (s.name === 'indexSuffix') {
        const items = nodes(sc, 'indexItem').map(indexItem);
        checkEllipses(items, 'an index');
        acc = { kind: 'Index', target: acc, items, span };
      } else {
        const t = token(sc, 'AnyWord') ?? token(sc, 'Integer') ?? token(sc, 'Star') ?? token(sc, 'Float');
        if (t && t.tokenType.name === 'Float' && /^\d+\.\d+$/.test(t.image)) {
          // `net.blocks.0.1` lexes its tail as the float `0.1`: split it back into two members.
          const [a, b] = t.image.split('.');
          const first: A.Name = { kind: 'Name', text: a, span: { file, start: t.startOffset, end: t.startOffset + a.length } };
          const second: A.Name = { kind: 'Name', text: b, span: { file, start: tokenEnd(t) - b.length, end: tokenEnd(t) } };
          acc = { kind: 'Member', target: acc, member: first, span: join(acc.span, first.span) };
          acc = { kind: 'Member', target: acc, member: second, span };
        } else {
          acc = { kind: 'Member', target: acc, member: name(t, span), span };
        }
      }
    }
    return acc;
  }

  function argList(n: CstNode): A.Arg[] {
    return nodes(n.children, 'arg').map((a) => {
      const ac = a.children;
      const span = spanOfNode(a);
      const id = token(ac, 'AnyWord');
      return { kind: 'Arg', name: id ? name(id, span) : null, value: exprOr(node(ac, 'expression'), span), span };
    });
  }

  function indexItem(n: CstNode): A.IndexItem {
    const c = n.children;
    const span = spanOfNode(n);
    const e = token(c, 'Ellipsis');
    if (e) return { kind: 'Ellipsis', span: spanOfToken(e) };
    const start = node(c, 'start');
    const tail = node(c, 'sliceTail');
    if (!tail) return exprOr(start, span);
    const tc = tail.children;
    const stop = node(tc, 'stop');
    const step = node(tc, 'step');
    return {
      kind: 'Slice',
      start: start ? expression(start) : null,
      stop: stop ? expression(stop) : null,
      step: step ? expression(step) : null,
      span,
    };
  }

  function primary(n: CstNode): A.Expr {
    const c = n.children;
    const span = spanOfNode(n);
    const t = Object.values(c).flat()[0];
    if (!t) return errorExpr(span);
    if (!isToken(t)) {
      return t.name === 'parenExpr' ? parenExpr(t) : listExpr(t);
    }
    if (t.isInsertedInRecovery) return errorExpr(span);
    switch (t.tokenType.name) {
      case 'Float':
      case 'Integer':
        return numberLit(t);
      case 'StringLit':
        return stringLit(t);
      case 'TrueKw':
        return { kind: 'Bool', value: true, span };
      case 'FalseKw':
        return { kind: 'Bool', value: false, span };
      case 'NoneKw':
        return { kind: 'None', span };
      default:
        return { kind: 'Ident', name: t.image, span };
    }
  }

  function numberLit(t: IToken): A.NumberLit {
    const span = spanOfToken(t);
    const isInt = t.tokenType.name === 'Integer';
    const value = Number(t.image);
    if (isInt ? value > 2147483647 : !Number.isFinite(value)) {
      problems.push({
        code: 'E0005',
        message: isInt ? `integer literal \`${t.image}\` does not fit in 32 bits` : `float literal \`${t.image}\` is not finite`,
        span,
      });
    }
    return { kind: 'Number', text: t.image, value, isInt, span };
  }

  function stringLit(t: IToken): A.StringLit {
    const span = spanOfToken(t);
    const raw = t.image.slice(1, -1);
    let value = '';
    for (let i = 0; i < raw.length; i++) {
      const ch = raw[i];
      if (ch !== '\\') {
        value += ch;
        continue;
      }
      const next = raw[i + 1];
      const escapes: Record<string, string> = { '\\': '\\', '"': '"', n: '\n', r: '\r', t: '\t', '0': '\0' };
      if (next !== undefined && Object.hasOwn(escapes, next)) {
        value += escapes[next];
      } else {
        const at = t.startOffset + 1 + i;
        problems.push({ code: 'E0004', message: `invalid escape \`\\${next ?? ''}\` in string`, span: { file, start: at, end: at + 2 } });
        value += next ?? '';
      }
      i++;
    }
    return { kind: 'String', value, span };
  }

  function parenExpr(n: CstNode): A.Expr {
    const c = n.children;
    const span = spanOfNode(n);
    const items = nodes(c, 'expression').map(expression);
    const commas = tokens(c, 'Comma').length + tokens(c, 'trailing').length;
    if (items.length === 1 && commas === 0) return items[0];
    return { kind: 'Tuple', items, span };
  }

  function listExpr(n: CstNode): A.Expr {
    const c = n.children;
    const span = spanOfNode(n);
    const first = node(c, 'first');
    const tail = node(c, 'comprehensionTail');
    if (first && tail) {
      const tc = tail.children;
      const cond = node(tc, 'condition');
      return {
        kind: 'Comprehension',
        element: expression(first),
        vars: namesOf(tc, span),
        iterable: exprOr(node(tc, 'iterable'), span),
        condition: cond ? expression(cond) : null,
        span,
      };
    }
    const items = first ? [expression(first), ...nodes(c, 'rest').map(expression)] : [];
    return { kind: 'List', items, span };
  }

  return { program: program(cst), problems };
}
