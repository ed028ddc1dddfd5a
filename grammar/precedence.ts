// Operator precedence and associativity, shared by the AST builder (parsing) and the printer (parenthesizing).
import type { BinaryOp, Expr } from './ast.ts';

/** Binding strength of each expression form, weakest first. */
export const enum Prec {
  Lambda = 0,
  Or = 1,
  And = 2,
  Not = 3,
  Compare = 4,
  Range = 5,
  Add = 6,
  Mul = 7,
  Unary = 8,
  Power = 9,
  Postfix = 10,
  Primary = 11,
}

export const BINARY_PREC: Record<BinaryOp, Prec> = {
  or: Prec.Or, and: Prec.And,
  '==': Prec.Compare, '!=': Prec.Compare, '<': Prec.Compare, '<=': Prec.Compare, '>': Prec.Compare, '>=': Prec.Compare,
  '..': Prec.Range,
  '+': Prec.Add, '-': Prec.Add,
  '*': Prec.Mul, '/': Prec.Mul, '%': Prec.Mul, '@': Prec.Mul,
  '**': Prec.Power,
};

/**
 * The weakest slot each operand of a binary operator accepts: left-associative operators take their
 * own level on the left and one stronger on the right; `**` is right-associative and takes a unary
 * minus on its right (2 ** -1); `..` does not chain.
 */
export function operandPrec(op: BinaryOp, side: 'left' | 'right'): Prec {
  if (op === '**') return side === 'left' ? Prec.Postfix : Prec.Unary;
  if (op === '..') return Prec.Add;
  const p = BINARY_PREC[op];
  return side === 'left' ? p : ((p + 1) as Prec);
}

export function precedence(e: Expr): Prec {
  switch (e.kind) {
    case 'Lambda':
    case 'Scan':
    case 'IfExpr':
      return Prec.Lambda;
    case 'Binary':
      return BINARY_PREC[e.op];
    case 'Unary':
      return e.op === 'not' ? Prec.Not : Prec.Unary;
    case 'Call':
    case 'Index':
    case 'Member':
      return Prec.Postfix;
    default:
      return Prec.Primary;
  }
}
