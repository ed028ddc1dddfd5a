// The token set of the .dl language: hard keywords, soft (contextual) keywords, operators and literals.
import { createToken, Lexer, type TokenType } from 'chevrotain';

/** Any word, keyword or not: keyword-argument names and member names may be any word (`dropout(x, train: true)`). */
export const AnyWord = createToken({ name: 'AnyWord', pattern: Lexer.NA });
export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [AnyWord] });

/**
 * Hard keywords are reserved everywhere. Soft keywords only mean something where a
 * statement or clause starts, so users may still name a hyperparameter `in`, `input`
 * or `state`, and a schedule `step(...)`: they are lexed as keywords that also belong
 * to the Identifier category.
 */
export const HARD_KEYWORDS = [
  'use', 'layer', 'model', 'train', 'fn', 'param', 'let', 'forward', 'return', 'for', 'if', 'else',
  'scan', 'yield', 'true', 'false', 'None', 'and', 'or', 'not',
] as const;

export const SOFT_KEYWORDS = [
  'in', 'as', 'input', 'output', 'state', 'loss', 'metric', 'step', 'minimize', 'maximize', 'over',
  'with', 'freeze', 'carry', 'along', 'reverse', 'where',
] as const;

/** Type names are identifiers to the parser; the checker gives them meaning. Editors still colour them. */
export const BUILTIN_TYPES = ['f16', 'f32', 'i32', 'u32', 'bool', 'int', 'float', 'string'] as const;

export type HardKeyword = (typeof HARD_KEYWORDS)[number];
export type SoftKeyword = (typeof SOFT_KEYWORDS)[number];

function keywordToken(word: string, soft: boolean): TokenType {
  const name = word === 'None' ? 'NoneKw' : word[0].toUpperCase() + word.slice(1) + 'Kw';
  return createToken({
    name,
    pattern: new RegExp(`${word}(?![A-Za-z0-9_])`),
    categories: soft ? [Identifier, AnyWord] : [AnyWord],
  });
}

export const Kw = Object.fromEntries([
  ...HARD_KEYWORDS.map((w) => [w, keywordToken(w, false)]),
  ...SOFT_KEYWORDS.map((w) => [w, keywordToken(w, true)]),
]) as Record<HardKeyword | SoftKeyword, TokenType>;

// (U+FEFF: the byte-order mark some editors put at the start of a UTF-8 file)
export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n\f\v\uFEFF]+/, group: Lexer.SKIPPED, line_breaks: true });
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n\r]*/, group: 'comments' });
export const BlockComment = createToken({ name: 'BlockComment', pattern: /\/\*[^*]*\*+(?:[^/*][^*]*\*+)*\//, group: 'comments', line_breaks: true });
/** An unterminated block comment is its own token so the parser can report it precisely. */
export const UnterminatedComment = createToken({ name: 'UnterminatedComment', pattern: /\/\*[\s\S]*/, line_breaks: true });

export const Float = createToken({ name: 'Float', pattern: /(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)/ });
export const Integer = createToken({ name: 'Integer', pattern: /\d+/, longer_alt: Float });
export const StringLit = createToken({ name: "StringLit", pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*"/ });
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"(?:[^"\\\n\r]|\\.)*/ });

export const Arrow = createToken({ name: 'Arrow', pattern: /->/ });
export const FatArrow = createToken({ name: 'FatArrow', pattern: /=>/ });
export const Ellipsis = createToken({ name: 'Ellipsis', pattern: /\.\.\./ });
export const DotDot = createToken({ name: 'DotDot', pattern: /\.\./ });
export const Dot = createToken({ name: 'Dot', pattern: /\./ });
export const StarStar = createToken({ name: 'StarStar', pattern: /\*\*/ });
export const EqEq = createToken({ name: 'EqEq', pattern: /==/ });
export const NotEq = createToken({ name: 'NotEq', pattern: /!=/ });
export const LtEq = createToken({ name: 'LtEq', pattern: /<=/ });
export const GtEq = createToken({ name: 'GtEq', pattern: />=/ });
export const Lt = createToken({ name: 'Lt', pattern: /</ });
export const Gt = createToken({ name: 'Gt', pattern: />/ });
export const Eq = createToken({ name: 'Eq', pattern: /=/ });
export const Plus = createToken({ name: 'Plus', pattern: /\+/ });
export const Minus = createToken({ name: 'Minus', pattern: /-/ });
export const Star = createToken({ name: 'Star', pattern: /\*/ });
export const Slash = createToken({ name: 'Slash', pattern: /\// });
export const Percent = createToken({ name: 'Percent', pattern: /%/ });
export const At = createToken({ name: 'At', pattern: /@/ });
export const LParen = createToken({ name: 'LParen', pattern: /\(/ });
export const RParen = createToken({ name: 'RParen', pattern: /\)/ });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
export const RBracket = createToken({ name: 'RBracket', pattern: /]/ });
export const LBrace = createToken({ name: 'LBrace', pattern: /\{/ });
export const RBrace = createToken({ name: 'RBrace', pattern: /}/ });
export const Comma = createToken({ name: 'Comma', pattern: /,/ });
export const Colon = createToken({ name: 'Colon', pattern: /:/ });
export const Semicolon = createToken({ name: 'Semicolon', pattern: /;/ });

/** Order matters: comments before `/`, longer operators before their prefixes, keywords before identifiers. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  Float,
  Integer,
  StringLit,
  UnterminatedString,
  Arrow,
  FatArrow,
  Ellipsis,
  DotDot,
  Dot,
  StarStar,
  EqEq,
  NotEq,
  LtEq,
  GtEq,
  Lt,
  Gt,
  Eq,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  At,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Colon,
  Semicolon,
  // longest first, so `input` is never read as `in` followed by `put`
  ...Object.entries(Kw)
    .sort(([a], [b]) => b.length - a.length)
    .map(([, token]) => token),
  Identifier,
  AnyWord,
];

export const dlLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false, recoveryEnabled: true });

/** Words an editor must colour as keywords: every hard and soft keyword the lexer knows. */
export const ALL_KEYWORDS: readonly string[] = [...HARD_KEYWORDS, ...SOFT_KEYWORDS];
