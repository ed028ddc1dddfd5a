// The Chevrotain grammar of the .dl language: tokens in, a concrete syntax tree out, with error recovery.
import {
  CstParser, EOF, getLookaheadPaths, NoViableAltException, tokenMatcher,
  type IParserErrorMessageProvider, type IToken, type LookaheadSequence, type TokenType,
} from 'chevrotain';
import * as T from './lexer.ts';

const { Kw } = T;

/** Every binary operator token; their precedence lives in cst-to-ast.ts and printer.ts. */
export const BINARY_OPERATORS: TokenType[] = [
  Kw.or, Kw.and, T.EqEq, T.NotEq, T.LtEq, T.GtEq, T.Lt, T.Gt, T.DotDot, T.Plus, T.Minus, T.Star, T.Slash, T.Percent, T.At, T.StarStar,
];

const PUNCTUATION: Record<string, string> = {
  Arrow: '->', FatArrow: '=>', Ellipsis: '...', DotDot: '..', Dot: '.', StarStar: '**', EqEq: '==', NotEq: '!=',
  LtEq: '<=', GtEq: '>=', Lt: '<', Gt: '>', Eq: '=', Plus: '+', Minus: '-', Star: '*', Slash: '/', Percent: '%',
  At: '@', LParen: '(', RParen: ')', LBracket: '[', RBracket: ']', LBrace: '{', RBrace: '}', Comma: ',', Colon: ':',
  Semicolon: ';',
};

/** How a token kind reads in a message: `)` for punctuation, `layer` for keywords, words for the rest. */
export function describeTokenType(type: TokenType): string {
  if (type === EOF) return 'the end of the file';
  if (type === T.Identifier) return 'a name';
  if (type === T.Integer) return 'an integer';
  if (type === T.Float) return 'a number';
  if (type === T.StringLit) return 'a string';
  const p = PUNCTUATION[type.name];
  if (p) return `\`${p}\``;
  // a keyword as it is spelled (`else`, `in`), not its token's name (`ElseKw`)
  if (type.name.endsWith('Kw')) {
    const word = type.name.slice(0, -2);
    return `\`${type.name === 'NoneKw' ? 'None' : word[0].toLowerCase() + word.slice(1)}\``;
  }
  if (type === T.AnyWord) return 'a name';
  return type.name;
}

function describeFound(token: IToken): string {
  if (token.tokenType === EOF) return 'the end of the file';
  return `\`${token.image}\``;
}

const RULE_DESCRIPTIONS: Record<string, string> = {
  program: 'a declaration (`use`, `layer`, `model`, `train`, `fn` or `let`)',
  statement: 'a statement',
  trainStatement: 'a train setting (`name = value`), `step`, `minimize` or `freeze`',
  expression: 'an expression',
  primary: 'an expression',
  typeExpr: 'a type',
  indexItem: 'an index or a slice',
  memberSuffix: 'a member name',
  body: '`=` or `{`',
  returnsClause: 'a type',
  dim: 'a size',
};

function oneOf(options: string[]): string {
  const unique = [...new Set(options)];
  if (unique.length <= 1) return unique[0] ?? 'something else';
  return `${unique.slice(0, -1).join(', ')} or ${unique.at(-1)}`;
}

/** Messages in the project's voice: "expected X, found Y", lowercase, no trailing period. */
export const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    return `expected ${describeTokenType(expected)}, found ${describeFound(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `expected the end of the declaration, found ${describeFound(firstRedundant)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const described = RULE_DESCRIPTIONS[ruleName];
    const firsts = expectedPathsPerAlt.flatMap((alt) => alt.map((path) => path[0]).filter(Boolean)).map(describeTokenType);
    return `expected ${described ?? oneOf(firsts)}, found ${describeFound(actual[0])}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, ruleName }) {
    const described = RULE_DESCRIPTIONS[ruleName];
    const firsts = expectedIterationPaths.map((path) => path[0]).filter(Boolean).map(describeTokenType);
    return `expected ${described ?? oneOf(firsts)}, found ${describeFound(actual[0])}`;
  },
};

const MAX_LOOKAHEAD = 4;

/** Chevrotain internals that the cached `raiseNoAltException` below needs; they are not in its typings. */
interface ParserInternals {
  getCurrRuleFullName(): string;
  SAVE_ERROR(error: Error): Error;
}

class DlParser extends CstParser {
  private readonly altPaths = new Map<string, LookaheadSequence[]>();

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, nodeLocationTracking: 'onlyOffset', maxLookahead: MAX_LOOKAHEAD, errorMessageProvider: errorMessages });
    this.performSelfAnalysis();
  }

  /**
   * Replaces Chevrotain's own, which recomputes an alternation's lookahead paths on every syntax error
   * only to word the message ("consider caching", says its source): on this grammar that cost about
   * 100 ms per error. The paths depend on the rule and the occurrence alone, so they are cached.
   */
  raiseNoAltException(occurrence: number, errMsgTypes: string | undefined): never {
    const internals = this as unknown as ParserInternals;
    const ruleName = internals.getCurrRuleFullName();
    const key = `${ruleName}:${occurrence}`;
    let paths = this.altPaths.get(key);
    if (!paths) {
      paths = getLookaheadPaths({ occurrence, rule: this.getGAstProductions()[ruleName], prodType: 'Alternation', maxLookahead: MAX_LOOKAHEAD });
      this.altPaths.set(key, paths);
    }
    const actual: IToken[] = [];
    for (let i = 1; i <= MAX_LOOKAHEAD; i++) actual.push(this.LA(i));
    const message = errorMessages.buildNoViableAltMessage({
      expectedPathsPerAlt: paths,
      actual,
      previous: this.LA(0),
      customUserDescription: errMsgTypes,
      ruleName,
    });
    throw internals.SAVE_ERROR(new NoViableAltException(message, this.LA(1), this.LA(0)));
  }

  private is(offset: number, type: TokenType): boolean {
    return tokenMatcher(this.LA(offset), type);
  }

  /**
   * Calls and indexes whose `(` or `[` starts a line after the line where their target ends (`relu` then
   * `(x)` on the next line), each with the target's last token; parse() turns them into E0010 errors.
   * The caller clears it before each parse.
   */
  public misplacedBrackets: { bracket: IToken; target: IToken }[] = [];

  private noteMisplacedBracket(): void {
    if (!this.onSameLine()) this.misplacedBrackets.push({ bracket: this.LA(1), target: this.LA(0) });
  }

  /** A guard must start on the line where its declaration ends: `param ...` then `if` on the next line is two statements. */
  private onSameLine(): boolean {
    const prev = this.LA(0);
    const next = this.LA(1);
    return prev.endLine === undefined || next.startLine === prev.endLine;
  }

  // ------------------------------------------------------------ declarations

  public program = this.RULE('program', () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.useDecl) },
        { ALT: () => this.SUBRULE(this.layerDecl) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
        { ALT: () => this.SUBRULE(this.fnDecl) },
        { ALT: () => this.SUBRULE(this.trainDecl) },
        { ALT: () => this.SUBRULE(this.letStmt) },
        { ALT: () => this.CONSUME(T.Semicolon) },
      ]);
    });
  });

  private useDecl = this.RULE('useDecl', () => {
    this.CONSUME(Kw.use);
    this.OR([
      { ALT: () => this.CONSUME(T.StringLit) },
      {
        ALT: () => {
          this.CONSUME(T.Identifier, { LABEL: 'path' });
          this.MANY({
            GATE: () => this.is(2, T.Identifier),
            DEF: () => {
              this.CONSUME(T.Dot);
              this.CONSUME2(T.Identifier, { LABEL: 'path' });
            },
          });
        },
      },
    ]);
    this.OPTION(() => {
      this.CONSUME2(T.Dot, { LABEL: 'importDot' });
      this.OR2([
        { ALT: () => this.CONSUME(T.Star) },
        {
          ALT: () => {
            this.CONSUME(T.LBrace);
            this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.importItem) });
            this.CONSUME(T.RBrace);
          },
        },
      ]);
    });
    this.OPTION2(() => {
      this.CONSUME(Kw.as);
      this.CONSUME3(T.Identifier, { LABEL: 'alias' });
    });
  });

  private importItem = this.RULE('importItem', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(Kw.as);
      this.CONSUME2(T.Identifier, { LABEL: 'alias' });
    });
  });

  private layerDecl = this.RULE('layerDecl', () => {
    this.CONSUME(Kw.layer);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.paramList));
    this.SUBRULE(this.block);
  });

  private modelDecl = this.RULE('modelDecl', () => {
    this.CONSUME(Kw.model);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.paramList));
    this.SUBRULE(this.block);
  });

  private fnDecl = this.RULE('fnDecl', () => {
    this.CONSUME(Kw.fn);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.paramList);
    this.OPTION(() => this.SUBRULE(this.returnsClause));
    this.SUBRULE(this.body);
  });

  private trainDecl = this.RULE('trainDecl', () => {
    this.CONSUME(Kw.train);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.argList));
    this.SUBRULE(this.trainBlock);
  });

  private paramList = this.RULE('paramList', () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.hyperParam);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.hyperParam);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailing' }));
    });
    this.CONSUME(T.RParen);
  });

  private hyperParam = this.RULE('hyperParam', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Eq);
      this.SUBRULE(this.expression);
    });
  });

  private returnsClause = this.RULE('returnsClause', () => {
    this.CONSUME(T.Arrow);
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.typeExpr) });
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.SUBRULE2(this.typeExpr) },
    ]);
  });

  /** A body is a block, or `= expression` for one-liners (fn and forward). */
  private body = this.RULE('body', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Eq);
          this.SUBRULE(this.expression);
        },
      },
      { ALT: () => this.SUBRULE(this.block) },
    ]);
  });

  private typeExpr = this.RULE('typeExpr', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.CONSUME(Kw.fn) }]);
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.dim) });
      this.CONSUME(T.RBracket);
    });
  });

  private dim = this.RULE('dim', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Ellipsis) }, { ALT: () => this.SUBRULE(this.expression) }]);
  });

  // ------------------------------------------------------------ statements

  private block = this.RULE('block', () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.OR([{ ALT: () => this.SUBRULE(this.statement) }, { ALT: () => this.CONSUME(T.Semicolon) }]);
    });
    this.CONSUME(T.RBrace);
  });

  private statement = this.RULE('statement', () => {
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        { ALT: () => this.SUBRULE(this.paramStmt) },
        { GATE: () => this.is(2, T.Identifier), ALT: () => this.SUBRULE(this.stateStmt) },
        { GATE: () => this.is(2, T.Identifier), ALT: () => this.SUBRULE(this.inputStmt) },
        { GATE: () => this.is(2, T.Identifier), ALT: () => this.SUBRULE(this.outputStmt) },
        { ALT: () => this.SUBRULE(this.subLayerStmt) },
        { ALT: () => this.SUBRULE(this.letStmt) },
        {
          GATE: () => this.is(2, T.Eq) || (this.is(2, T.Identifier) && this.is(3, T.Eq)),
          ALT: () => this.SUBRULE(this.lossStmt),
        },
        { GATE: () => this.is(2, T.Identifier), ALT: () => this.SUBRULE(this.metricStmt) },
        { GATE: () => !this.is(2, T.Eq) && !this.is(2, T.Comma), ALT: () => this.SUBRULE(this.whereStmt) },
        { ALT: () => this.SUBRULE(this.forwardStmt) },
        { ALT: () => this.SUBRULE(this.returnStmt) },
        { ALT: () => this.SUBRULE(this.yieldStmt) },
        { ALT: () => this.SUBRULE(this.forStmt) },
        { ALT: () => this.SUBRULE(this.ifStmt) },
        { ALT: () => this.SUBRULE(this.assignStmt) },
      ],
    });
  });

  private paramStmt = this.RULE('paramStmt', () => {
    this.CONSUME(Kw.param);
    this.SUBRULE(this.declaredTensor);
  });

  private stateStmt = this.RULE('stateStmt', () => {
    this.CONSUME(Kw.state);
    this.SUBRULE(this.declaredTensor);
  });

  /** The shared tail of `param` and `state`: `name: type = init if guard`. */
  private declaredTensor = this.RULE('declaredTensor', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
    this.OPTION(() => {
      this.CONSUME(T.Eq);
      this.SUBRULE(this.expression, { LABEL: 'init' });
    });
    this.OPTION2({
      GATE: () => this.onSameLine(),
      DEF: () => {
        this.CONSUME(Kw.if);
        this.SUBRULE2(this.expression, { LABEL: 'guard' });
      },
    });
  });

  private inputStmt = this.RULE('inputStmt', () => {
    this.CONSUME(Kw.input);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
  });

  private outputStmt = this.RULE('outputStmt', () => {
    this.CONSUME(Kw.output);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  private subLayerStmt = this.RULE('subLayerStmt', () => {
    this.CONSUME(Kw.layer);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression, { LABEL: 'value' });
    // A guard shares the line of its declaration; an `if` on the next line is a statement of its own.
    this.OPTION({
      GATE: () => this.onSameLine(),
      DEF: () => {
        this.CONSUME(Kw.if);
        this.SUBRULE2(this.expression, { LABEL: 'guard' });
      },
    });
  });

  public letStmt = this.RULE('letStmt', () => {
    this.CONSUME(Kw.let);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  private assignStmt = this.RULE('assignStmt', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  private lossStmt = this.RULE('lossStmt', () => {
    this.CONSUME(Kw.loss);
    this.OPTION(() => this.CONSUME(T.Identifier));
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  private metricStmt = this.RULE('metricStmt', () => {
    this.CONSUME(Kw.metric);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  private whereStmt = this.RULE('whereStmt', () => {
    this.CONSUME(Kw.where);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression) });
  });

  private forwardStmt = this.RULE('forwardStmt', () => {
    this.CONSUME(Kw.forward);
    this.SUBRULE(this.paramList);
    this.OPTION(() => this.SUBRULE(this.returnsClause));
    this.SUBRULE(this.body);
  });

  private returnStmt = this.RULE('returnStmt', () => {
    this.CONSUME(Kw.return);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression) });
  });

  private yieldStmt = this.RULE('yieldStmt', () => {
    this.CONSUME(Kw.yield);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression) });
  });

  private forStmt = this.RULE('forStmt', () => {
    this.CONSUME(Kw.for);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(Kw.in);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.block);
  });

  private ifStmt = this.RULE('ifStmt', () => {
    this.CONSUME(Kw.if);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.block, { LABEL: 'then' });
    this.OPTION(() => {
      this.CONSUME(Kw.else);
      this.OR([
        { ALT: () => this.SUBRULE(this.ifStmt, { LABEL: 'elseIf' }) },
        { ALT: () => this.SUBRULE2(this.block, { LABEL: 'else' }) },
      ]);
    });
  });

  // ------------------------------------------------------------ train blocks

  private trainBlock = this.RULE('trainBlock', () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.OR([{ ALT: () => this.SUBRULE(this.trainStatement) }, { ALT: () => this.CONSUME(T.Semicolon) }]);
    });
    this.CONSUME(T.RBrace);
  });

  private trainStatement = this.RULE('trainStatement', () => {
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        { GATE: () => this.is(2, T.Identifier) && this.is(3, T.LBrace), ALT: () => this.SUBRULE(this.stepStmt) },
        { GATE: () => !this.is(2, T.Eq) && !this.is(2, T.LBrace), ALT: () => this.SUBRULE(this.objectiveStmt) },
        { GATE: () => !this.is(2, T.Eq) && !this.is(2, T.LBrace), ALT: () => this.SUBRULE(this.freezeStmt) },
        {
          GATE: () => this.is(2, T.LBrace) || (this.is(2, T.Identifier) && this.is(3, T.LBrace)),
          ALT: () => this.SUBRULE(this.settingBlock),
        },
        { ALT: () => this.SUBRULE(this.setting) },
      ],
    });
  });

  private stepStmt = this.RULE('stepStmt', () => {
    this.CONSUME(Kw.step);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.trainBlock);
  });

  private objectiveStmt = this.RULE('objectiveStmt', () => {
    this.OR([{ ALT: () => this.CONSUME(Kw.minimize) }, { ALT: () => this.CONSUME(Kw.maximize) }]);
    this.SUBRULE(this.expression, { LABEL: 'loss' });
    this.OPTION(() => {
      this.CONSUME(Kw.over);
      this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE2(this.expression, { LABEL: 'over' }) });
    });
    this.OPTION2(() => {
      this.CONSUME(Kw.with);
      this.SUBRULE3(this.expression, { LABEL: 'optimizer' });
    });
  });

  private freezeStmt = this.RULE('freezeStmt', () => {
    this.CONSUME(Kw.freeze);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression) });
  });

  /** `early_stopping { ... }`, or with a label: `param_group no_decay { ... }`. */
  private settingBlock = this.RULE('settingBlock', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.CONSUME2(T.Identifier, { LABEL: 'label' }));
    this.SUBRULE(this.trainBlock);
  });

  private setting = this.RULE('setting', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  // ------------------------------------------------------------ expressions

  public expression = this.RULE('expression', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.lambdaExpr) },
      { ALT: () => this.SUBRULE(this.scanExpr) },
      { ALT: () => this.SUBRULE(this.ifExpr) },
      { ALT: () => this.SUBRULE(this.binaryExpr) },
    ]);
  });

  private lambdaExpr = this.RULE('lambdaExpr', () => {
    this.CONSUME(Kw.fn);
    this.SUBRULE(this.paramList);
    this.CONSUME(T.FatArrow);
    this.SUBRULE(this.expression);
  });

  private scanExpr = this.RULE('scanExpr', () => {
    this.CONSUME(Kw.scan);
    this.OPTION({
      GATE: () => this.is(2, T.Identifier) && (this.is(3, Kw.in) || this.is(3, T.Comma)),
      DEF: () => this.CONSUME(Kw.reverse),
    });
    // one variable per sequence: `scan x_t, m_t in (x, m)`
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(Kw.in);
    this.SUBRULE(this.binaryExpr, { LABEL: 'source' });
    this.OPTION2(() => {
      this.CONSUME(Kw.along);
      this.SUBRULE2(this.binaryExpr, { LABEL: 'axis' });
    });
    this.OPTION3(() => {
      this.CONSUME(Kw.carry);
      this.CONSUME(T.LParen);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.carryBinding) });
      this.CONSUME(T.RParen);
    });
    this.SUBRULE(this.block);
  });

  /** A compile-time choice between two values: `if c { a } else { b }`; `else` is required. */
  private ifExpr = this.RULE('ifExpr', () => {
    this.CONSUME(Kw.if);
    this.SUBRULE(this.binaryExpr, { LABEL: 'condition' });
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.expression, { LABEL: 'then' });
    this.CONSUME(T.RBrace);
    this.CONSUME(Kw.else);
    this.OR([
      { ALT: () => this.SUBRULE(this.ifExpr, { LABEL: 'elseIf' }) },
      {
        ALT: () => {
          this.CONSUME2(T.LBrace);
          this.SUBRULE2(this.expression, { LABEL: 'else' });
          this.CONSUME2(T.RBrace);
        },
      },
    ]);
  });

  private carryBinding = this.RULE('carryBinding', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  /**
   * Binary operators are parsed flat, operand (operator operand)*, and given their precedence and
   * associativity in cst-to-ast.ts: a 12-level rule chain per operand made large files slow and deep.
   */
  private binaryExpr = this.RULE('binaryExpr', () => {
    this.SUBRULE(this.prefixExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR(
        BINARY_OPERATORS.map((type) => ({ ALT: () => this.CONSUME(type, { LABEL: 'op' }) })),
      );
      this.SUBRULE2(this.prefixExpr, { LABEL: 'operand' });
    });
  });

  /** Prefix operators are a loop, not recursion, so `- - - x` costs no stack. */
  private prefixExpr = this.RULE('prefixExpr', () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Minus, { LABEL: 'prefix' }) },
        { ALT: () => this.CONSUME(T.Plus, { LABEL: 'prefix' }) },
        { ALT: () => this.CONSUME(Kw.not, { LABEL: 'prefix' }) },
      ]);
    });
    this.SUBRULE(this.postfix);
  });

  private postfix = this.RULE('postfix', () => {
    this.SUBRULE(this.primary);
    // No expression is ever followed by `(` or `[` (no statement or clause starts with one), so a call or
    // index that starts on the next line can only be a misplaced one: it is parsed as the call or index it
    // was meant to be, and noted, so that parse() reports one targeted error instead of a cascade.
    this.MANY(() => {
      this.OR([
        {
          ALT: () => {
            this.ACTION(() => this.noteMisplacedBracket());
            this.SUBRULE(this.callSuffix);
          },
        },
        {
          ALT: () => {
            this.ACTION(() => this.noteMisplacedBracket());
            this.SUBRULE(this.indexSuffix);
          },
        },
        { ALT: () => this.SUBRULE(this.memberSuffix) },
      ]);
    });
  });

  private callSuffix = this.RULE('callSuffix', () => {
    this.SUBRULE(this.argList);
  });

  private argList = this.RULE('argList', () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.arg);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailing' }));
    });
    this.CONSUME(T.RParen);
  });

  private arg = this.RULE('arg', () => {
    this.OPTION({
      GATE: () => this.is(2, T.Colon),
      DEF: () => {
        this.CONSUME(T.AnyWord);
        this.CONSUME(T.Colon);
      },
    });
    this.SUBRULE(this.expression);
  });

  private indexSuffix = this.RULE('indexSuffix', () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.indexItem);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.indexItem);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailing' }));
    });
    this.CONSUME(T.RBracket);
  });

  private indexItem = this.RULE('indexItem', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Ellipsis) },
      {
        ALT: () => {
          this.SUBRULE(this.expression, { LABEL: 'start' });
          this.OPTION(() => this.SUBRULE(this.sliceTail));
        },
      },
      { ALT: () => this.SUBRULE2(this.sliceTail) },
    ]);
  });

  /** The part of a slice from its first colon: `:stop`, `:stop:step`, `::step`, `:`. */
  private sliceTail = this.RULE('sliceTail', () => {
    this.CONSUME(T.Colon);
    this.OPTION(() => this.SUBRULE(this.expression, { LABEL: 'stop' }));
    this.OPTION2(() => {
      this.CONSUME2(T.Colon, { LABEL: 'colon2' });
      this.OPTION3(() => this.SUBRULE2(this.expression, { LABEL: 'step' }));
    });
  });

  private memberSuffix = this.RULE('memberSuffix', () => {
    this.CONSUME(T.Dot);
    this.OR([
      { ALT: () => this.CONSUME(T.AnyWord) },
      { ALT: () => this.CONSUME(T.Integer) },
      { ALT: () => this.CONSUME(T.Float) },
      { ALT: () => this.CONSUME(T.Star) },
    ]);
  });

  private primary = this.RULE('primary', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Float) },
      { ALT: () => this.CONSUME(T.Integer) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(Kw.true) },
      { ALT: () => this.CONSUME(Kw.false) },
      { ALT: () => this.CONSUME(Kw.None) },
      { ALT: () => this.CONSUME(T.Identifier) },
      // a path pattern's leading wildcard (`params = [*.b]`); anywhere else it is an unknown name
      { ALT: () => this.CONSUME(T.Star) },
      { ALT: () => this.SUBRULE(this.parenExpr) },
      { ALT: () => this.SUBRULE(this.listExpr) },
    ]);
  });

  private parenExpr = this.RULE('parenExpr', () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.expression);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.expression);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailing' }));
    });
    this.CONSUME(T.RParen);
  });

  private listExpr = this.RULE('listExpr', () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expression, { LABEL: 'first' });
      this.OR([
        { ALT: () => this.SUBRULE(this.comprehensionTail) },
        {
          ALT: () => {
            this.MANY(() => {
              this.CONSUME(T.Comma);
              this.SUBRULE2(this.expression, { LABEL: 'rest' });
            });
            this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: 'trailing' }));
          },
        },
      ]);
    });
    this.CONSUME(T.RBracket);
  });

  private comprehensionTail = this.RULE('comprehensionTail', () => {
    this.CONSUME(Kw.for);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(Kw.in);
    this.SUBRULE(this.binaryExpr, { LABEL: 'iterable' });
    this.OPTION(() => {
      this.CONSUME(Kw.if);
      this.SUBRULE2(this.binaryExpr, { LABEL: 'condition' });
    });
  });
}

/** One parser instance: Chevrotain's grammar analysis is costly, so it runs once per process. */
export const dlParser = new DlParser();

export function isEof(token: IToken): boolean {
  return tokenMatcher(token, EOF);
}
