// Shape matching: a unifier that solves for symbolic sizes (forward's B, T, ...) and numpy-style broadcasting.
import { type Dim, add, dimEquals, floorDiv, freeVars, isConcrete, mod, mul, sub, substitute, sym } from './dim.ts';

/**
 * Makes sizes equal by binding unbound variables listed in `solvable`. Bindings are kept fully
 * resolved (no bound name occurs in any binding's value). A failed `unify` binds nothing.
 */
export class DimUnifier {
  private readonly solvable: ReadonlySet<string>;
  private readonly bound = new Map<string, Dim>();

  constructor(solvable: Iterable<string>) {
    this.solvable = new Set(solvable);
  }

  /**
   * Makes a and b equal by binding unbound variables listed in `solvable` (e.g. a forward's B, T when
   * matched against argument shapes). Returns false if they cannot be shown equal. Binds a lone
   * variable to the other side (unless it occurs there); also solves a linear equation
   * `c*K + r == 0` in the single unbound solvable variable K when c is a constant and c divides r
   * symbolically (2*K + 1 == 7 -> K = 3; a negative constant solution is rejected, sizes being
   * non-negative); otherwise compares normal forms after substitution.
   */
  unify(a: Dim, b: Dim): boolean {
    const ra = this.resolve(a);
    const rb = this.resolve(b);
    if (dimEquals(ra, rb)) return true;
    const lone = (x: Dim, other: Dim): boolean => {
      if (isConcrete(x)) return false;
      const vs = freeVars(x);
      if (vs.length !== 1 || !this.isOpen(vs[0]) || !dimEquals(x, sym(vs[0]))) return false;
      if (freeVars(other).includes(vs[0])) return false;
      if (isConcrete(other) && other < 0) return false;
      this.bind(vs[0], other);
      return true;
    };
    if (lone(ra, rb) || lone(rb, ra)) return true;
    const diff = sub(ra, rb);
    if (isConcrete(diff)) return false;
    const open = freeVars(diff).filter((v) => this.isOpen(v));
    if (open.length !== 1) return false;
    const v = open[0];
    const solved = solveLinear(diff, v);
    if (solved === null) return false;
    if (isConcrete(solved) && solved < 0) return false;
    this.bind(v, solved);
    return dimEquals(this.resolve(a), this.resolve(b));
  }

  /** Applies the bindings so far. */
  resolve(d: Dim): Dim {
    return this.bound.size === 0 ? d : substitute(d, this.bound);
  }

  bindings(): ReadonlyMap<string, Dim> {
    return new Map(this.bound);
  }

  private isOpen(name: string): boolean {
    return this.solvable.has(name) && !this.bound.has(name);
  }

  private bind(name: string, value: Dim): void {
    const one = new Map<string, Dim>([[name, value]]);
    for (const [k, v] of this.bound) this.bound.set(k, substitute(v, one));
    this.bound.set(name, value);
  }
}

/**
 * Solves diff == 0 for v when diff = c*v + r with a constant c != 0, v not occurring in r, and c
 * dividing r exactly; null otherwise.
 */
function solveLinear(diff: Dim, v: string): Dim | null {
  const probe = (x: number): Dim => substitute(diff, new Map([[v, x]]));
  const r = probe(0);
  const c = sub(probe(1), r);
  if (!isConcrete(c) || c === 0 || !Number.isSafeInteger(c)) return null;
  // diff must be exactly c*v + r (v only linear, nowhere inside floor/mod terms)
  if (!dimEquals(diff, add(mul(c, sym(v)), r))) return null;
  const negR = sub(0, r);
  const rem = mod(negR, c);
  if (rem !== 0) return null;
  return floorDiv(negR, c);
}

/**
 * Numpy broadcasting, aligned from the right: equal sizes stay, a size 1 stretches to the other, a
 * missing axis counts as 1. Symbolic sizes must be dimEquals or one side the concrete 1. On a
 * mismatch, the error names the axis index in each operand.
 */
export function broadcastShapes(
  a: readonly Dim[],
  b: readonly Dim[],
): { shape: Dim[] } | { error: { axisA: number; axisB: number } } {
  const n = Math.max(a.length, b.length);
  const shape: Dim[] = new Array<Dim>(n);
  for (let i = 1; i <= n; i++) {
    const ia = a.length - i;
    const ib = b.length - i;
    const da = ia >= 0 ? a[ia] : 1;
    const db = ib >= 0 ? b[ib] : 1;
    let d: Dim;
    if (dimEquals(da, db) || db === 1) d = da;
    else if (da === 1) d = db;
    else return { error: { axisA: ia, axisB: ib } };
    shape[n - i] = d;
  }
  return { shape };
}
