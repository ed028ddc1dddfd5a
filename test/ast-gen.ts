// A generator of random, well-formed, canonically laid out ASTs for the print/parse round-trip property.
import type * as A from '../grammar/ast.ts';
import { HARD_KEYWORDS, SOFT_KEYWORDS } from '../grammar/lexer.ts';

// ------------------------------------------------------------------ a seeded source of choices

/** mulberry32: a tiny deterministic PRNG, so one fast-check integer fixes a whole program. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1][0];
  }
  many<T>(lo: number, hi: number, make: () => T): T[] {
    return Array.from({ length: this.int(lo, hi) }, make);
  }
}

// ------------------------------------------------------------------ the generator

const S: A.Span = { file: '', start: 0, end: 0 };
const KEYWORDS = new Set<string>([...HARD_KEYWORDS, ...SOFT_KEYWORDS]);
const COMMON_NAMES = ['x', 'y', 'h', 'w', 'b', 'n', 'B', 'T', 'd_model', 'Dense', 'relu', 'f32', 'i32', 'int', 'float', 'bool', '_', '_t0'];
const BINARY_OPS: readonly A.BinaryOp[] = ['or', 'and', '==', '!=', '<', '<=', '>', '>=', '..', '+', '-', '*', '/', '%', '@', '**'];
const UNARY_OPS: readonly A.UnaryOp[] = ['-', '+', 'not'];
const STRING_CHARS = ['a', 'Z', ' ', '"', '\\', '\n', '\r', '\t', '\0', '/', '*', '{', '}', 'é', '→', '😀', '\u0001', '#', "'"];
const COMMENT_CHARS = ['a', 'b', ' ', '/', '*', '-', '>', '{', '}', '"', 'é', '✓', '(', ')'];

class Generator {
  constructor(private readonly r: Rng, private readonly size: number) {}

  // ---------------------------------------------------------------- names

  /** An identifier that is no keyword at all: safe where it starts a statement or is declared. */
  word(): string {
    if (this.r.chance(0.6)) return this.r.pick(COMMON_NAMES);
    for (;;) {
      const first = this.r.pick([...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_']);
      const rest = this.r.many(0, 6, () => this.r.pick([...'abcdefghijklmnopqrstuvwxyz0123456789_'])).join('');
      const w = first + rest;
      if (!KEYWORDS.has(w)) return w;
    }
  }

  name(text = this.word()): A.Name {
    return { kind: 'Name', text, span: S };
  }

  /** Where any identifier may stand, soft keywords included (`input`, `step`, `in`). */
  identifierName(): A.Name {
    return this.name(this.r.chance(0.15) ? this.r.pick(SOFT_KEYWORDS) : this.word());
  }

  /** Keyword-argument and member names may be any word, hard keywords included (`train: true`, `a.use`). */
  anyWord(): A.Name {
    const k = this.r.int(0, 9);
    if (k === 0) return this.name(this.r.pick(HARD_KEYWORDS));
    if (k === 1) return this.name(this.r.pick(SOFT_KEYWORDS));
    return this.name();
  }

  // ---------------------------------------------------------------- comments and trivia

  lineComment(): string {
    return `//${this.r.many(0, 12, () => this.r.pick(COMMENT_CHARS)).join('')}`.trimEnd();
  }

  blockComment(multiline: boolean): string {
    const lines = this.r.many(1, multiline ? 3 : 1, () => this.r.many(0, 10, () => this.r.pick(COMMENT_CHARS)).join('').trimEnd());
    // a `*/` inside would end the comment early
    return `/*${lines.join('\n').replaceAll('*/', '* /')}*/`;
  }

  trivia(first: boolean): A.Trivia {
    const leading: string[] = [];
    if (this.r.chance(0.2)) {
      for (let i = this.r.int(1, 3); i > 0; i--) {
        leading.push(this.r.chance(0.7) ? this.lineComment() : this.blockComment(true));
        if (this.r.chance(0.2)) leading.push('');
      }
    }
    const trailing: string[] = [];
    if (this.r.chance(0.15)) {
      for (let i = this.r.int(0, 2); i > 0; i--) trailing.push(this.blockComment(false));
      if (trailing.length === 0 || this.r.chance(0.5)) trailing.push(this.lineComment());
    }
    return { leading, trailing, blankBefore: !first && this.r.chance(0.2) };
  }

  endComments(): string[] {
    return this.r.chance(0.1) ? this.r.many(1, 2, () => (this.r.chance(0.7) ? this.lineComment() : this.blockComment(true))) : [];
  }

  // ---------------------------------------------------------------- expressions

  number(): A.NumberLit {
    const text = this.r.pick([
      () => String(this.r.int(0, 9)),
      () => String(this.r.int(0, 2147483647)),
      () => `${this.r.int(0, 99)}.${this.r.int(0, 99)}`,
      () => `${this.r.int(1, 9)}e${this.r.pick(['', '-', '+'])}${this.r.int(0, 12)}`,
      () => `${this.r.int(0, 9)}.${this.r.int(0, 9)}E${this.r.int(0, 3)}`,
    ])();
    return { kind: 'Number', text, value: Number(text), isInt: /^\d+$/.test(text), span: S };
  }

  string(): A.StringLit {
    return { kind: 'String', value: this.r.many(0, 8, () => this.r.pick(STRING_CHARS)).join(''), span: S };
  }

  leaf(): A.Expr {
    switch (this.r.weighted({ ident: 6, number: 3, string: 1, bool: 1, none: 1 })) {
      case 'ident':
        return { kind: 'Ident', name: this.identifierName().text, span: S };
      case 'number':
        return this.number();
      case 'string':
        return this.string();
      case 'bool':
        return { kind: 'Bool', value: this.r.chance(0.5), span: S };
      case 'none':
        return { kind: 'None', span: S };
    }
  }

  expr(depth: number): A.Expr {
    if (depth <= 0 || this.r.chance(0.25)) return this.leaf();
    const d = depth - 1;
    switch (
      this.r.weighted({
        binary: 8, unary: 4, call: 3, member: 3, index: 2, list: 1, tuple: 1, comprehension: 1, lambda: 1, scan: 0.4, ifExpr: 1,
      })
    ) {
      case 'binary':
        return { kind: 'Binary', op: this.r.pick(BINARY_OPS), left: this.expr(d), right: this.expr(d), span: S };
      case 'unary':
        return { kind: 'Unary', op: this.r.pick(UNARY_OPS), operand: this.expr(d), span: S };
      case 'call':
        return { kind: 'Call', callee: this.expr(d), args: this.args(d), span: S };
      case 'member': {
        const member = this.r.pick([() => this.anyWord(), () => this.name(String(this.r.int(0, 12))), () => this.name('*')])();
        return { kind: 'Member', target: this.expr(d), member, span: S };
      }
      case 'index': {
        const items: A.IndexItem[] = this.r.many(0, 3, () => this.indexItem(d));
        if (this.r.chance(0.3)) items.splice(this.r.int(0, items.length), 0, { kind: 'Ellipsis', span: S });
        return { kind: 'Index', target: this.expr(d), items, span: S };
      }
      case 'list':
        return { kind: 'List', items: this.r.many(0, 3, () => this.expr(d)), span: S };
      case 'tuple':
        return { kind: 'Tuple', items: this.r.many(0, 3, () => this.expr(d)), span: S };
      case 'comprehension':
        return {
          kind: 'Comprehension',
          element: this.expr(d),
          vars: this.r.many(1, 2, () => this.name()),
          iterable: this.expr(d),
          condition: this.r.chance(0.4) ? this.expr(d) : null,
          span: S,
        };
      case 'lambda':
        return { kind: 'Lambda', params: this.r.many(0, 2, () => this.hyperParam(d)), body: this.expr(d), span: S };
      case 'scan':
        return {
          kind: 'Scan',
          reverse: this.r.chance(0.3),
          variables: this.r.many(1, 2, () => this.name()),
          source: this.expr(d),
          axis: this.r.chance(0.4) ? this.expr(d) : null,
          carry: this.r.many(0, 2, () => ({ kind: 'Carry', name: this.name(), init: this.expr(d), span: S })),
          body: this.block('body', 1, d),
          span: S,
        };
      case 'ifExpr':
        return { kind: 'IfExpr', condition: this.expr(d), then: this.expr(d), else: this.expr(d), span: S };
    }
  }

  args(depth: number): A.Arg[] {
    return this.r.many(0, 3, () => ({ kind: 'Arg', name: this.r.chance(0.4) ? this.anyWord() : null, value: this.expr(depth), span: S }));
  }

  indexItem(depth: number): A.IndexItem {
    if (this.r.chance(0.6)) return this.expr(depth);
    const part = () => (this.r.chance(0.5) ? this.expr(depth) : null);
    return { kind: 'Slice', start: part(), stop: part(), step: part(), span: S };
  }

  type(depth: number): A.TypeExpr {
    const name = this.name(this.r.chance(0.1) ? 'fn' : this.r.pick(['f32', 'i32', 'int', 'float', 'bool', 'string', this.word()]));
    if (this.r.chance(0.3)) return { kind: 'Type', name, dims: null, span: S };
    const dims: A.Expr[] = this.r.many(0, 3, () => this.expr(Math.min(depth, 2)));
    if (this.r.chance(0.3)) dims.splice(this.r.int(0, dims.length), 0, { kind: 'Ellipsis', span: S });
    return { kind: 'Type', name, dims, span: S };
  }

  hyperParam(depth: number): A.HyperParam {
    return {
      kind: 'HyperParam',
      name: this.identifierName(),
      type: this.r.chance(0.6) ? this.type(depth) : null,
      default: this.r.chance(0.3) ? this.expr(depth) : null,
      span: S,
    };
  }

  returns(depth: number): A.TypeExpr[] {
    return this.r.chance(0.5) ? [] : this.r.many(1, 3, () => this.type(depth));
  }

  // ---------------------------------------------------------------- statements

  block(context: 'body' | 'train', nesting: number, depth: number): A.Block {
    const count = nesting > 3 ? 0 : this.r.int(0, Math.min(5, 1 + this.size));
    const stmts = Array.from({ length: count }, (_, i) =>
      context === 'train' ? this.trainStatement(i === 0, nesting, depth) : this.statement(i === 0, nesting, depth),
    );
    return { kind: 'Block', stmts, endComments: this.endComments(), span: S };
  }

  statement(first: boolean, nesting: number, depth: number): A.Stmt {
    const base = { span: S, trivia: this.trivia(first) };
    const e = () => this.expr(depth);
    const n = nesting + 1;
    switch (
      this.r.weighted({
        param: 2, state: 1, input: 1, output: 1, subLayer: 2, let: 3, assign: 2, loss: 1, metric: 1, where: 1,
        forward: 1, return: 1, yield: 1, for: 1, if: 1,
      })
    ) {
      case 'param':
      case 'state':
        return {
          kind: this.r.chance(0.5) ? 'Param' : 'State',
          name: this.name(),
          type: this.type(depth),
          init: this.r.chance(0.6) ? e() : null,
          guard: this.r.chance(0.3) ? e() : null,
          ...base,
        };
      case 'input':
        return { kind: 'Input', name: this.name(), type: this.type(depth), ...base };
      case 'output':
        return { kind: 'Output', name: this.name(), type: this.r.chance(0.5) ? this.type(depth) : null, value: e(), ...base };
      case 'subLayer':
        return { kind: 'SubLayer', name: this.name(), value: e(), guard: this.r.chance(0.3) ? e() : null, ...base };
      case 'let':
        return this.letStmt(base, depth);
      case 'assign':
        return { kind: 'Assign', targets: this.r.many(1, 3, () => this.name()), value: e(), ...base };
      case 'loss':
        return { kind: 'Loss', name: this.r.chance(0.5) ? this.name() : null, value: e(), ...base };
      case 'metric':
        return { kind: 'Metric', name: this.name(), value: e(), ...base };
      case 'where':
        return { kind: 'Where', conditions: this.r.many(1, 3, e), ...base };
      case 'forward':
        return {
          kind: 'Forward',
          params: this.r.many(0, 3, () => this.hyperParam(depth)),
          returns: this.returns(depth),
          body: this.r.chance(0.5) ? this.block('body', n, depth) : e(),
          ...base,
        };
      case 'return':
        return { kind: 'Return', values: this.r.many(1, 3, e), ...base };
      case 'yield':
        return { kind: 'Yield', values: this.r.many(1, 2, e), ...base };
      case 'for':
        return { kind: 'For', vars: this.r.many(1, 2, () => this.name()), iterable: e(), body: this.block('body', n, depth), ...base };
      case 'if':
        return this.ifStmt(base, n, depth);
    }
  }

  ifStmt(base: { span: A.Span; trivia: A.Trivia }, nesting: number, depth: number): A.IfStmt {
    let otherwise: A.Block | null = null;
    const k = this.r.int(0, 2);
    if (k === 1) otherwise = this.block('body', nesting, depth);
    if (k === 2 && nesting <= 3) {
      // `else if`: a block holding one `if` and nothing else
      const nested = this.ifStmt({ span: S, trivia: { leading: [], trailing: [], blankBefore: false } }, nesting + 1, depth);
      otherwise = { kind: 'Block', stmts: [nested], endComments: [], span: S };
    }
    return { kind: 'If', condition: this.expr(depth), then: this.block('body', nesting, depth), else: otherwise, ...base };
  }

  letStmt(base: { span: A.Span; trivia: A.Trivia }, depth: number): A.LetStmt {
    return {
      kind: 'Let',
      targets: this.r.many(1, 3, () => this.identifierName()),
      type: this.r.chance(0.3) ? this.type(depth) : null,
      value: this.expr(depth),
      ...base,
    };
  }

  trainStatement(first: boolean, nesting: number, depth: number): A.Stmt {
    const base = { span: S, trivia: this.trivia(first) };
    const e = () => this.expr(depth);
    switch (this.r.weighted({ setting: 5, settingBlock: 1, freeze: 1, step: 1, objective: 1 })) {
      case 'setting':
        return { kind: 'Setting', name: this.name(), value: e(), ...base };
      case 'settingBlock':
        return { kind: 'SettingBlock', name: this.name(), label: this.r.chance(0.5) ? this.name() : null, body: this.block('train', nesting + 1, depth), ...base };
      case 'freeze':
        return { kind: 'Freeze', targets: this.r.many(1, 3, e), ...base };
      case 'step':
        return { kind: 'Step', name: this.name(), body: this.block('train', nesting + 1, depth), ...base };
      case 'objective':
        return {
          kind: 'Objective',
          direction: this.r.chance(0.5) ? 'minimize' : 'maximize',
          loss: e(),
          over: this.r.chance(0.5) ? this.r.many(1, 2, e) : [],
          optimizer: this.r.chance(0.5) ? e() : null,
          ...base,
        };
    }
  }

  declaration(first: boolean, depth: number): A.Stmt {
    const base = { span: S, trivia: this.trivia(first) };
    switch (this.r.weighted({ use: 2, layer: 3, model: 2, fn: 2, train: 2, let: 2 })) {
      case 'use': {
        const source: readonly A.Name[] | A.StringLit = this.r.chance(0.2) ? this.string() : this.r.many(1, 3, () => this.name());
        const k = this.r.int(0, 2);
        const imports: A.ImportList =
          k === 0
            ? null
            : k === 1
              ? { kind: 'ImportAll', span: S }
              : this.r.many(0, 3, () => ({ kind: 'ImportItem', name: this.name(), alias: this.r.chance(0.3) ? this.name() : null, span: S }));
        return { kind: 'Use', source, imports, alias: this.r.chance(0.2) ? this.name() : null, ...base };
      }
      case 'layer':
      case 'model':
        return {
          kind: this.r.chance(0.5) ? 'Layer' : 'Model',
          name: this.name(),
          params: this.r.many(0, 3, () => this.hyperParam(depth)),
          body: this.block('body', 1, depth),
          ...base,
        };
      case 'fn':
        return {
          kind: 'Fn',
          name: this.name(),
          params: this.r.many(0, 3, () => this.hyperParam(depth)),
          returns: this.returns(depth),
          body: this.r.chance(0.5) ? this.block('body', 1, depth) : this.expr(depth),
          ...base,
        };
      case 'train':
        return {
          kind: 'Train',
          model: this.name(),
          args: this.r.chance(0.5) ? this.args(depth) : null,
          body: this.block('train', 1, depth),
          ...base,
        };
      case 'let':
        return this.letStmt(base, depth);
    }
  }

  program(): A.Program {
    const depth = 1 + Math.min(4, this.size);
    const stmts = this.r.many(0, 2 + this.size, () => this.declaration(false, depth)).map((s, i, all): A.Stmt => {
      // the printer separates top-level declarations by a blank line, except within runs of `use` or of `let`
      const previous = all[i - 1];
      const forced = previous !== undefined && !((previous.kind === 'Use' && s.kind === 'Use') || (previous.kind === 'Let' && s.kind === 'Let'));
      return { ...s, trivia: { ...s.trivia, blankBefore: i > 0 && (forced || s.trivia.blankBefore) } } as A.Stmt;
    });
    return { kind: 'Program', file: 'gen.dl', body: { kind: 'Block', stmts, endComments: this.endComments(), span: S }, span: S };
  }
}

export function generateProgram(seed: number, size: number): A.Program {
  return new Generator(new Rng(seed), size).program();
}
