// The Chevrotain grammar of the .dl language: tokens in, a concrete syntax tree out, with error recovery.
import { CstParser, EOF, tokenMatcher, type IToken, type TokenType } from 'chevrotain';
import * as T from './lexer.ts';

const { Kw } = T;

class DlParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, nodeLocationTracking: 'full', maxLookahead: 4 });
    this.performSelfAnalysis();
  }

  private is(offset: number, type: TokenType): boolean {
    return tokenMatcher(this.LA(offset), type);
  }

  /** A call or index must start on the line where its target ends: `a\n(b)` is two things, not a call. */
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
        { ALT: () => this.SUBRULE(this.whereStmt) },
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
    this.OPTION2(() => {
      this.CONSUME(Kw.if);
      this.SUBRULE2(this.expression, { LABEL: 'guard' });
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
    this.OPTION(() => {
      this.CONSUME(Kw.if);
      this.SUBRULE2(this.expression, { LABEL: 'guard' });
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
        { GATE: () => this.is(2, T.LBrace), ALT: () => this.SUBRULE(this.settingBlock) },
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

  private settingBlock = this.RULE('settingBlock', () => {
    this.CONSUME(T.Identifier);
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
      { ALT: () => this.SUBRULE(this.orExpr) },
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
      GATE: () => this.is(2, T.Identifier) && this.is(3, Kw.in),
      DEF: () => this.CONSUME(Kw.reverse),
    });
    this.CONSUME(T.Identifier);
    this.CONSUME(Kw.in);
    this.SUBRULE(this.orExpr, { LABEL: 'source' });
    this.OPTION2(() => {
      this.CONSUME(Kw.along);
      this.SUBRULE2(this.orExpr, { LABEL: 'axis' });
    });
    this.OPTION3(() => {
      this.CONSUME(Kw.carry);
      this.CONSUME(T.LParen);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.carryBinding) });
      this.CONSUME(T.RParen);
    });
    this.SUBRULE(this.block);
  });

  private carryBinding = this.RULE('carryBinding', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Eq);
    this.SUBRULE(this.expression);
  });

  private orExpr = this.RULE('orExpr', () => {
    this.SUBRULE(this.andExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.CONSUME(Kw.or, { LABEL: 'op' });
      this.SUBRULE2(this.andExpr, { LABEL: 'operand' });
    });
  });

  private andExpr = this.RULE('andExpr', () => {
    this.SUBRULE(this.notExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.CONSUME(Kw.and, { LABEL: 'op' });
      this.SUBRULE2(this.notExpr, { LABEL: 'operand' });
    });
  });

  private notExpr = this.RULE('notExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(Kw.not);
          this.SUBRULE(this.notExpr);
        },
      },
      { ALT: () => this.SUBRULE(this.comparison) },
    ]);
  });

  private comparison = this.RULE('comparison', () => {
    this.SUBRULE(this.rangeExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.EqEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.NotEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.LtEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.GtEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Lt, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Gt, { LABEL: 'op' }) },
      ]);
      this.SUBRULE2(this.rangeExpr, { LABEL: 'operand' });
    });
  });

  private rangeExpr = this.RULE('rangeExpr', () => {
    this.SUBRULE(this.additive, { LABEL: 'operand' });
    this.OPTION(() => {
      this.CONSUME(T.DotDot, { LABEL: 'op' });
      this.SUBRULE2(this.additive, { LABEL: 'operand' });
    });
  });

  private additive = this.RULE('additive', () => {
    this.SUBRULE(this.multiplicative, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Plus, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Minus, { LABEL: 'op' }) },
      ]);
      this.SUBRULE2(this.multiplicative, { LABEL: 'operand' });
    });
  });

  private multiplicative = this.RULE('multiplicative', () => {
    this.SUBRULE(this.unary, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Star, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Slash, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Percent, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.At, { LABEL: 'op' }) },
      ]);
      this.SUBRULE2(this.unary, { LABEL: 'operand' });
    });
  });

  private unary = this.RULE('unary', () => {
    this.OR([
      {
        ALT: () => {
          this.OR2([
            { ALT: () => this.CONSUME(T.Minus, { LABEL: 'op' }) },
            { ALT: () => this.CONSUME(T.Plus, { LABEL: 'op' }) },
          ]);
          this.SUBRULE(this.unary);
        },
      },
      { ALT: () => this.SUBRULE(this.power) },
    ]);
  });

  /** `**` is right-associative and binds tighter than a unary minus on its left: -x ** 2 == -(x ** 2). */
  private power = this.RULE('power', () => {
    this.SUBRULE(this.postfix);
    this.OPTION(() => {
      this.CONSUME(T.StarStar);
      this.SUBRULE(this.unary);
    });
  });

  private postfix = this.RULE('postfix', () => {
    this.SUBRULE(this.primary);
    this.MANY(() => {
      this.OR([
        { GATE: () => this.onSameLine(), ALT: () => this.SUBRULE(this.callSuffix) },
        { GATE: () => this.onSameLine(), ALT: () => this.SUBRULE(this.indexSuffix) },
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
        this.CONSUME(T.Identifier);
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
      { ALT: () => this.CONSUME(T.Identifier) },
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
              this.OPTION2(() => this.SUBRULE2(this.expression, { LABEL: 'rest' }));
            });
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
    this.SUBRULE(this.orExpr, { LABEL: 'iterable' });
    this.OPTION(() => {
      this.CONSUME(Kw.if);
      this.SUBRULE2(this.orExpr, { LABEL: 'condition' });
    });
  });
}

/** One parser instance: Chevrotain's grammar analysis is costly, so it runs once per process. */
export const dlParser = new DlParser();

export function isEof(token: IToken): boolean {
  return tokenMatcher(token, EOF);
}
