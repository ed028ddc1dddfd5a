// parse(): source text in, an AST with comments attached and all syntax diagnostics out; never throws.
import { tokenMatcher, type IRecognitionException, type IToken } from 'chevrotain';
import type { Program, Span, Stmt } from './ast.ts';
import { buildAst, tokenEnd } from './cst-to-ast.ts';
import { attachTrivia } from './trivia.ts';
import * as T from './lexer.ts';
import { repairLexErrors } from './lex-errors.ts';
import { BINARY_OPERATORS, dlParser } from './parser.ts';
import { diagnostic, suggest, type Diagnostic } from '../compiler/diagnostics/diagnostic.ts';

/** Deeper nesting than this is rejected before parsing, so a recursive-descent parser never exhausts the stack. */
export const MAX_NESTING = 200;

/**
 * Long left-associative chains (`a + b + ...`, `a.b.c...`) nest the AST without nesting the text;
 * deeper trees than this are rejected, so the recursive passes after the parser (trivia, printer,
 * checker) never exhaust the stack either. 200 brackets nest the tree at most about 600 deep.
 */
export const MAX_AST_DEPTH = 1000;

export interface ParseResult {
  readonly program: Program;
  readonly diagnostics: readonly Diagnostic[];
}

const DECLARATION_KEYWORDS = ['use', 'layer', 'model', 'train', 'fn', 'let'];
const STATEMENT_KEYWORDS = [
  'param', 'state', 'input', 'output', 'layer', 'let', 'loss', 'metric', 'where', 'forward', 'return', 'yield', 'for', 'if',
];
const TRAIN_KEYWORDS = ['step', 'minimize', 'maximize', 'freeze'];

export function parse(source: string, file = '<input>'): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const span = (start: number, end: number): Span => ({ file, start, end });

  const lexed = T.dlLexer.tokenize(source);
  const repaired = repairLexErrors(source, file, lexed.tokens, (lexed.groups.comments ?? []) as IToken[], lexed.errors);
  diagnostics.push(...repaired.diagnostics);
  const tokens: IToken[] = [];
  for (const t of repaired.tokens) {
    if (tokenMatcher(t, T.UnterminatedString)) {
      diagnostics.push(diagnostic('E0002', 'unterminated string literal', span(t.startOffset, tokenEnd(t)), {
        help: 'close the string with `"` on the same line',
      }));
    } else if (tokenMatcher(t, T.UnterminatedComment)) {
      diagnostics.push(diagnostic('E0003', 'unterminated block comment', span(t.startOffset, t.startOffset + 2), {
        help: 'close the comment with `*/`',
      }));
    } else {
      tokens.push(t);
    }
  }
  const comments = repaired.comments;

  const decls: Stmt[] = [];
  for (let chunk of splitDeclarations(tokens)) {
    const tooDeep = findExcessiveNesting(chunk);
    if (tooDeep) {
      diagnostics.push(diagnostic('E0012', `nesting deeper than ${MAX_NESTING} levels`, span(tooDeep.startOffset, tokenEnd(tooDeep)), {
        help: 'split the expression into several `let` bindings',
      }));
      continue;
    }
    const nested = withoutUnsupportedStatements(chunk, file);
    diagnostics.push(...nested.diagnostics);
    chunk = nested.tokens;
    dlParser.input = chunk;
    dlParser.misplacedBrackets = [];
    let cst;
    try {
      cst = dlParser.program();
    } catch (e) {
      // Chevrotain recovers from recognition errors itself; anything else is our bug, reported, never thrown.
      const first = chunk[0];
      diagnostics.push(diagnostic('E0900', `the parser failed: ${(e as Error).message}`, span(first.startOffset, tokenEnd(first))));
      continue;
    }
    // a documented limitation (§12) is one error with its rewrite; the parser's recovery errors up to its end are dropped
    let quietUntil = -1;
    for (const error of dlParser.errors) {
      if (error.token.startOffset < quietUntil) continue;
      const limitation = syntaxLimitation(error.token, file, chunk);
      if (limitation) {
        diagnostics.push(limitation.diagnostic);
        quietUntil = limitation.until;
      } else {
        diagnostics.push(syntaxDiagnostic(error, file, chunk));
      }
    }
    for (const { bracket, target } of dlParser.misplacedBrackets) diagnostics.push(misplacedBracket(bracket, target, file));
    const { program, problems } = buildAst(cst, file, source.length);
    for (const decl of program.body.stmts) {
      const deep = findTooDeep(decl);
      if (deep) {
        // a long chain `a + b + c + ...` nests too: each operator holds the chain before it
        diagnostics.push(diagnostic('E0012', `expression nested deeper than ${MAX_AST_DEPTH} levels (a chain of operators such as \`a + b + c + ...\` nests one level per operator)`, deep, {
          help: 'split the expression into several `let` bindings, or sum a list: `sum(stack([...]), axis: 0)`',
        }));
      } else {
        decls.push(decl);
      }
    }
    for (const p of problems) diagnostics.push(diagnostic(p.code, p.message, p.span));
  }

  const whole = span(0, source.length);
  const program: Program = attachTrivia(
    { kind: 'Program', file, body: { kind: 'Block', stmts: decls, endComments: [], span: whole }, span: whole },
    comments,
    source,
  );
  diagnostics.sort((a, b) => a.span.start - b.span.start);
  return { program, diagnostics: dedupe(diagnostics) };
}

/**
 * Cuts the token stream into top-level declarations, so that garbage between declarations or a
 * missing `}` costs one diagnostic and the rest of the file is still parsed. A declaration starts
 * at a declaration keyword at brace depth 0, or at one in the first column, which also resets the depth.
 */
function splitDeclarations(tokens: readonly IToken[]): IToken[][] {
  const chunks: IToken[][] = [];
  let current: IToken[] = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (startsDeclaration(tokens, i) && (depth === 0 || t.startColumn === 1)) {
      if (current.length > 0) chunks.push(current);
      current = [];
      depth = 0;
    }
    if (tokenMatcher(t, T.LBrace)) depth++;
    else if (tokenMatcher(t, T.RBrace)) depth = Math.max(0, depth - 1);
    current.push(t);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function startsDeclaration(tokens: readonly IToken[], i: number): boolean {
  const t = tokens[i];
  const next = tokens[i + 1];
  // a keyword used as a member name (`a.use`) or a keyword-argument name (`f(use: 1)`) starts nothing
  const previous = tokens[i - 1];
  if ((previous !== undefined && tokenMatcher(previous, T.Dot)) || (next !== undefined && tokenMatcher(next, T.Colon))) return false;
  if (tokenMatcher(t, T.Kw.use) || tokenMatcher(t, T.Kw.model) || tokenMatcher(t, T.Kw.train) || tokenMatcher(t, T.Kw.fn)) {
    return next !== undefined && tokenMatcher(next, T.Identifier) || tokenMatcher(t, T.Kw.use);
  }
  if (tokenMatcher(t, T.Kw.layer)) {
    // `layer Name(` or `layer Name {` declares; `layer name = ...` inside a body instantiates
    const after = tokens[i + 2];
    return next !== undefined && tokenMatcher(next, T.Identifier) && after !== undefined && !tokenMatcher(after, T.Eq);
  }
  return false;
}

/** The first token at which brackets plus recursion-inducing prefix operators nest deeper than MAX_NESTING. */
function findExcessiveNesting(tokens: readonly IToken[]): IToken | undefined {
  const chains: number[] = [];
  let outer = 0;
  let chain = 0;
  let previous: IToken | undefined;
  for (const t of tokens) {
    const type = t.tokenType;
    if (type === T.LParen || type === T.LBracket || type === T.LBrace) {
      chains.push(chain);
      outer += chain + 1;
      chain = 0;
    } else if (type === T.RParen || type === T.RBracket || type === T.RBrace) {
      const restored = chains.pop() ?? 0;
      outer = Math.max(0, outer - restored - 1);
      chain = restored;
    } else if (type === T.Comma || type === T.Semicolon) {
      chain = 0;
    } else if (
      type === T.StarStar || type === T.FatArrow || tokenMatcher(t, T.Kw.not) || tokenMatcher(t, T.Kw.scan) ||
      ((type === T.Minus || type === T.Plus) && !endsOperand(previous))
    ) {
      chain++;
    }
    if (outer + chain > MAX_NESTING) return t;
    previous = t;
  }
  return undefined;
}

/** The span of the first node deeper than MAX_AST_DEPTH, found without recursion. */
function findTooDeep(root: Stmt): Span | undefined {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth]);
    } else if (value !== null && typeof value === 'object' && 'kind' in value) {
      if (depth > MAX_AST_DEPTH) return (value as unknown as { span: Span }).span;
      for (const [key, child] of Object.entries(value)) {
        if (key !== 'span' && key !== 'trivia') stack.push([child, depth + 1]);
      }
    }
  }
  return undefined;
}

function endsOperand(t: IToken | undefined): boolean {
  if (!t) return false;
  const type = t.tokenType;
  return (
    tokenMatcher(t, T.Identifier) || type === T.Integer || type === T.Float || type === T.StringLit ||
    type === T.RParen || type === T.RBracket || type === T.RBrace ||
    tokenMatcher(t, T.Kw.true) || tokenMatcher(t, T.Kw.false) || tokenMatcher(t, T.Kw.None)
  );
}


function syntaxDiagnostic(error: IRecognitionException, file: string, chunk: readonly IToken[]): Diagnostic {
  const found = error.token;
  const at = spanOfToken(found, file, chunk);
  const previous = (error as IRecognitionException & { previousToken?: IToken }).previousToken;
  const rule = error.context?.ruleStack?.at(-1) ?? '';

  // A word in keyword position that is close to a keyword: `laye Dense(...)`, `parm w: ...`.
  const misspelled = misspelledKeyword(found, previous, rule);
  if (misspelled) {
    return diagnostic('E0011', `unknown keyword \`${misspelled.token.image}\``, spanOfToken(misspelled.token, file, chunk), {
      help: `did you mean \`${misspelled.keyword}\`?`,
    });
  }
  // `y += 1.0`: a compound assignment from Python or JavaScript
  const i = chunk.indexOf(found);
  const op = chunk[i + 1];
  const eq = chunk[i + 2];
  if (i >= 0 && tokenMatcher(found, T.Identifier) && op && eq && [T.Plus, T.Minus, T.Star, T.Slash].includes(op.tokenType) && eq.tokenType === T.Eq && eq.startOffset === tokenEnd(op)) {
    return diagnostic('E0010', `dlc has no \`${op.image}=\``, { file, start: found.startOffset, end: tokenEnd(eq) }, { help: `write \`${found.image} = ${found.image} ${op.image} ...\`` });
  }
  // `if a > b { 1 } else { 2 } + 3`: the if-expression ended the statement (it is not an operand)
  if (i > 0 && chunk[i - 1].tokenType === T.RBrace && BINARY_OPERATORS.some((type) => tokenMatcher(found, type)) && endsIfExpression(chunk, i - 1)) {
    return diagnostic('E0010', `an if-expression cannot be the operand of \`${found.image}\``, at, {
      help: `wrap it in parentheses: \`(if c { a } else { b }) ${found.image} ...\``,
    });
  }
  // `let z = if c { 1 }`: an if-expression gives a value either way
  if (error.message.startsWith('expected `else`,')) {
    return diagnostic('E0010', error.message, at, { help: 'an `if` used as a value needs an `else`: `if c { a } else { b }`' });
  }
  return diagnostic('E0010', error.message, at);
}

/**
 * The syntax §12 documents as unsupported, told by the tokens around where the parser stopped: a
 * second `for` in a comprehension, an assignment to `a.b` or `a[i]`, a `layer Name(...) { }`
 * declared inside another declaration. Returns the diagnostic and the offset up to which the
 * parser's recovery errors are its echoes.
 */
function syntaxLimitation(found: IToken, file: string, chunk: readonly IToken[]): { diagnostic: Diagnostic; until: number } | undefined {
  const i = chunk.indexOf(found);
  if (i < 0) return undefined;
  const tokenSpan = (t: IToken): Span => ({ file, start: t.startOffset, end: tokenEnd(t) });
  // `[f(i, j) for i in 0..n for j in 0..m]`
  if (tokenMatcher(found, T.Kw.for) && insideComprehension(chunk, i)) {
    const close = matchingClose(chunk, openingBracket(chunk, i));
    return {
      diagnostic: diagnostic('E0013', 'a comprehension has one `for` clause', tokenSpan(found), {
        help: 'nest the lists, `[[f(i, j) for j in 0..m] for i in 0..n]`, or run one index over both: `[f(k / m, k % m) for k in 0..n * m]` (§12)',
      }),
      until: close !== undefined ? tokenEnd(chunk[close]) : Infinity,
    };
  }
  return undefined;
}

/**
 * Statements §12 documents as unsupported, a `layer Name(...) { ... }` declared inside a model or
 * layer and an assignment to `a.b` or `a[i]`, are one E0013 each, and their tokens are taken out,
 * so the declaration around them parses and its own errors are still found.
 */
function withoutUnsupportedStatements(chunk: IToken[], file: string): { tokens: IToken[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  let tokens = chunk;
  for (let k = 1; k < tokens.length; k++) {
    const eq = tokenMatcher(tokens[k], T.Identifier) && startsStatement(tokens, k) ? assignmentAfterTarget(tokens, k) : undefined;
    if (eq === undefined || !nestedInBraces(tokens, k)) continue;
    const indexed = tokens[k + 1].tokenType === T.LBracket;
    diagnostics.push(diagnostic('E0013', `only a plain name can be assigned, not ${indexed ? 'an element' : 'a member'}`, { file, start: tokens[k].startOffset, end: tokenEnd(tokens[eq - 1]) }, {
      help: indexed
        ? 'tensors are values, not storage: build the new tensor (`select(mask, v, x)`, `concat`, `one_hot`) and bind it to a name (§12)'
        : `bind the value to a name of its own: \`let ${tokens[k].image}_${tokens[k + 2].image} = ...\` (§12)`,
    }));
    // the statement ends at a line break outside brackets, or at the body's `}`
    let last = eq;
    for (let depth = 0; last + 1 < tokens.length; last++) {
      const next = tokens[last + 1];
      if (depth === 0 && (next.startLine! > tokens[last].endLine! || next.tokenType === T.RBrace || next.tokenType === T.Semicolon)) break;
      if (OPENERS.includes(next.tokenType)) depth++;
      else if (CLOSERS.includes(next.tokenType)) depth--;
    }
    tokens = [...tokens.slice(0, k), ...tokens.slice(last + 1)];
    k--;
  }
  for (let k = 1; k + 2 < tokens.length; k++) {
    const [keyword, name, after] = [tokens[k], tokens[k + 1], tokens[k + 2]];
    if (!tokenMatcher(keyword, T.Kw.layer) || !tokenMatcher(name, T.Identifier) || (after.tokenType !== T.LParen && after.tokenType !== T.LBrace)) continue;
    // `x.layer carry (...) {`: a member named `layer` (a scan's source), not a declaration
    if (tokens[k - 1].tokenType === T.Dot) continue;
    if (!nestedInBraces(tokens, k)) continue;
    let body = k + 2;
    if (after.tokenType === T.LParen) {
      const params = matchingClose(tokens, body);
      body = params === undefined ? tokens.length : params + 1;
    }
    // `layer Name(...) =`? a malformed instantiation, which the parser reports as it is
    if (tokens[body]?.tokenType !== T.LBrace) continue;
    const end = matchingClose(tokens, body) ?? tokens.length - 1;
    diagnostics.push(diagnostic('E0013', `a layer declaration (\`layer ${name.image}\`) must be at the top level of the file`, { file, start: keyword.startOffset, end: tokenEnd(name) }, {
      help: `move \`layer ${name.image}${after.tokenType === T.LParen ? '(...)' : ''} { ... }\` out to the top level, and instantiate it here: \`layer ${name.image.toLowerCase()} = ${name.image}(...)\` (§12)`,
    }));
    tokens = [...tokens.slice(0, k), ...tokens.slice(end + 1)];
    k--;
  }
  return { tokens, diagnostics };
}

const OPENERS = [T.LParen, T.LBracket, T.LBrace];
const CLOSERS = [T.RParen, T.RBracket, T.RBrace];

/** The index of the bracket that encloses token `i` (undefined at the top). */
function openingBracket(chunk: readonly IToken[], i: number): number | undefined {
  let depth = 0;
  for (let j = i - 1; j >= 0; j--) {
    const type = chunk[j].tokenType;
    if (CLOSERS.includes(type)) depth++;
    else if (OPENERS.includes(type) && depth-- === 0) return j;
  }
  return undefined;
}

/** The index of the bracket that closes the one opened at `open`. */
function matchingClose(chunk: readonly IToken[], open: number | undefined): number | undefined {
  if (open === undefined) return undefined;
  let depth = 0;
  for (let j = open; j < chunk.length; j++) {
    const type = chunk[j].tokenType;
    if (OPENERS.includes(type)) depth++;
    else if (CLOSERS.includes(type) && --depth === 0) return j;
  }
  return undefined;
}

/** Whether `for` at `i` is a second clause: its enclosing `[` holds an earlier `for` at its own depth. */
function insideComprehension(chunk: readonly IToken[], i: number): boolean {
  const open = openingBracket(chunk, i);
  if (open === undefined || chunk[open].tokenType !== T.LBracket) return false;
  let depth = 0;
  for (let j = open + 1; j < i; j++) {
    const type = chunk[j].tokenType;
    if (OPENERS.includes(type)) depth++;
    else if (CLOSERS.includes(type)) depth--;
    else if (depth === 0 && tokenMatcher(chunk[j], T.Kw.for)) return true;
  }
  return false;
}

/** Whether token `i` is the first of its line (statements start lines, or follow `{` or `;`). */
function startsStatement(chunk: readonly IToken[], i: number): boolean {
  const previous = chunk[i - 1];
  return !previous || previous.endLine! < chunk[i].startLine! || previous.tokenType === T.LBrace || previous.tokenType === T.Semicolon;
}

/** The index of the `=` after a member/index target `a.b` or `a[i]...` starting at `i`, on the same line. */
function assignmentAfterTarget(chunk: readonly IToken[], i: number): number | undefined {
  let j = i + 1;
  let selected = false;
  while (j < chunk.length && chunk[j].startLine === chunk[i].startLine) {
    const type = chunk[j].tokenType;
    if (type === T.Dot && chunk[j + 1] && tokenMatcher(chunk[j + 1], T.Identifier)) {
      j += 2;
    } else if (type === T.LBracket) {
      const close = matchingClose(chunk, j);
      if (close === undefined) return undefined;
      j = close + 1;
    } else {
      break;
    }
    selected = true;
  }
  return selected && chunk[j]?.tokenType === T.Eq ? j : undefined;
}

/** Whether token `i` lies inside braces (a declaration's body). */
function nestedInBraces(chunk: readonly IToken[], i: number): boolean {
  let depth = 0;
  for (let j = 0; j < i; j++) {
    const type = chunk[j].tokenType;
    if (type === T.LBrace) depth++;
    else if (type === T.RBrace) depth = Math.max(0, depth - 1);
  }
  return depth > 0;
}

/** `relu` then `(x)` on the next line: the call was parsed as meant, and this says where its `(` must go. */
function misplacedBracket(bracket: IToken, target: IToken, file: string): Diagnostic {
  const what = tokenMatcher(bracket, T.LParen) ? 'a call' : 'an index';
  return diagnostic('E0010', `${what}'s \`${bracket.image}\` must be on the line where \`${target.image}\` ends`, { file, start: bracket.startOffset, end: tokenEnd(bracket) }, {
    help: `move the \`${bracket.image}\` up onto the line where \`${target.image}\` ends: a line that starts with \`${bracket.image}\` does not continue the line before (§9)`,
  });
}

/** Whether the `}` at `close` ends the `else { ... }` of an if-expression. */
function endsIfExpression(chunk: readonly IToken[], close: number): boolean {
  let depth = 0;
  for (let j = close; j >= 0; j--) {
    const type = chunk[j].tokenType;
    if (type === T.RBrace) depth++;
    else if (type === T.LBrace && --depth === 0) return j > 0 && tokenMatcher(chunk[j - 1], T.Kw.else);
  }
  return false;
}

/** Other languages' words for a declaration or statement, and this language's (Python, JavaScript, Rust). */
const FOREIGN_DECLARATIONS: Readonly<Record<string, string>> = { import: 'use', from: 'use', require: 'use', def: 'fn', function: 'fn', class: 'layer', struct: 'layer' };
const FOREIGN_STATEMENTS: Readonly<Record<string, string>> = { var: 'let', const: 'let', def: 'fn', while: 'for' };

function misspelledKeyword(
  found: IToken,
  previous: IToken | undefined,
  rule: string,
): { token: IToken; keyword: string } | undefined {
  const candidates = (t: IToken | undefined, words: string[]) => {
    if (!t || !tokenMatcher(t, T.Identifier) || t.isInsertedInRecovery) return undefined;
    const keyword = suggest(t.image, words);
    return keyword ? { token: t, keyword } : undefined;
  };
  const foreign = (t: IToken, words: Readonly<Record<string, string>>) =>
    tokenMatcher(t, T.Identifier) && !t.isInsertedInRecovery && Object.hasOwn(words, t.image) ? { token: t, keyword: words[t.image] } : undefined;
  if (rule === 'program') return foreign(found, FOREIGN_DECLARATIONS) ?? candidates(found, DECLARATION_KEYWORDS);
  if (rule === 'statement' || rule === 'block') return foreign(found, FOREIGN_STATEMENTS) ?? candidates(found, STATEMENT_KEYWORDS);
  if (rule === 'assignStmt') return candidates(previous, STATEMENT_KEYWORDS);
  if (rule === 'setting' || rule === 'trainStatement') return candidates(previous, TRAIN_KEYWORDS) ?? candidates(found, TRAIN_KEYWORDS);
  return undefined;
}

function spanOfToken(t: IToken, file: string, chunk: readonly IToken[]): Span {
  if (Number.isNaN(t.startOffset) || t.startOffset === undefined) {
    // End of input: point just past the last real token.
    const last = chunk.at(-1);
    const end = last ? tokenEnd(last) : 0;
    return { file, start: end, end };
  }
  return { file, start: t.startOffset, end: tokenEnd(t) };
}

function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.code}:${d.span.start}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
