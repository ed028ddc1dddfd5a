// Symbolic sizes as the runtime's size expressions: a Dim's normal form written out as a small JSON tree.
import type { SizeExpr } from '../../runtime/program.ts';
import { type Atom, type Dim, type Poly, writtenTerms } from '../shapes/dim.ts';

function atomExpr(a: Atom): SizeExpr {
  switch (a.kind) {
    case 'var':
      return a.step ? ['floor', a.name, a.step] : a.name;
    case 'lit':
      return a.value;
    case 'floor':
      return ['floor', polyExpr(a.num), polyExpr(a.den)];
    case 'mod':
      return ['mod', polyExpr(a.num), polyExpr(a.den)];
  }
}

function polyExpr(p: Poly): SizeExpr {
  // a declared multiple's `2*(H / 2)` is written `H`, so an input's shape names H for the runtime to bind
  const terms = writtenTerms(p).map((t): SizeExpr => {
    const factors = t.factors.map((f): SizeExpr => (f.exp === 1 ? atomExpr(f.atom) : ['^', atomExpr(f.atom), f.exp]));
    const all = t.coef === 1 && factors.length > 0 ? factors : [t.coef, ...factors];
    return all.length === 1 ? all[0] : ['*', ...all];
  });
  if (terms.length === 0) return 0;
  return terms.length === 1 ? terms[0] : ['+', ...terms];
}

/** The size expression of a Dim (a plain number stays a number). */
export function sizeExpr(d: Dim): SizeExpr {
  return typeof d === 'number' ? d : polyExpr(d.terms);
}
