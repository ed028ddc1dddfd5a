// Symbolic tensor sizes: a canonical polynomial normal form with floor-division and modulo atoms.
//
// Normal form. A symbolic size is a polynomial: a sum of terms `coef * monomial`, with non-zero integer
// coefficients, where a monomial is a product of atoms raised to positive integer exponents. Atoms are
//   - `var`:   a symbolic name (B, T, H, ...); a name the model declares a multiple of a number k
//              (`where H % 2 == 0`) is the atom `H / k` with coefficient k, so `2*(H / 2)` is H;
//   - `floor`: an opaque `floor(num / den)` whose arguments are themselves normal-form polynomials;
//   - `mod`:   an opaque `num % den` (floored modulo, sign of `den`), arguments normalized;
//   - `lit`:   a non-integer or non-finite number that met a symbolic one (never produced by sane
//              input; it keeps the module total without inexact coefficient arithmetic).
// Factors inside a monomial are sorted by atom order, terms by graded-lexicographic order (highest
// degree first, constant last), so two normal forms are equal exactly when their structures are
// deeply equal (and `dimEquals` compares a cached canonical key). Anything that normalizes to a
// constant is returned as a plain `number`.
//
// Simplifications (all sound for integer-valued variables):
//   - constant folding, commutativity, associativity, distribution, like-term collection;
//   - floor(P / c) for a constant c: P = c*Q + R with 0 <= coef(R) < c gives Q + floor(R / c), the
//     gcd of R's coefficients and c is cancelled, and floor((floor(X / D) + S) / c) becomes
//     floor((X + D*S) / (D*c)); a negative c flips signs so denominators are positive;
//   - P % c: coefficients are reduced into [0, c), a nested `X % a` with c | a becomes X, and a common
//     gcd g is pulled out (g*X % g*d == g*(X % d));
//   - symbolic divisors: common integer content and common monomial factors are cancelled, then a
//     graded-lex polynomial division P = Q*R + S yields R + floor(S / Q) (exact when S = 0) and
//     P % Q == S % Q. These assume a symbolic divisor is non-zero (a zero size divisor is an error
//     the checker reports; with it (B*T) / T is simply B).
// Division or modulo by the constant 0 never throws: it yields an opaque `floor(P / 0)` / `P % 0`
// atom that prints as `P / 0` and evaluates to NaN.
// Coefficients are JS numbers; simplifications that would need coefficients beyond 2^53 are skipped
// (the term stays opaque), so equality stays sound.

// ------------------------------------------------------------------ types

export type Atom =
  | { readonly kind: 'var'; readonly name: string; readonly step?: number }
  | { readonly kind: 'lit'; readonly value: number }
  | { readonly kind: 'floor'; readonly num: Poly; readonly den: Poly }
  | { readonly kind: 'mod'; readonly num: Poly; readonly den: Poly };

/** One factor `atom ** exp` of a monomial; exp >= 1. */
export interface Factor { readonly atom: Atom; readonly exp: number }
/** `coef * factors...`; an empty factor list is the constant term. */
export interface Term { readonly coef: number; readonly factors: readonly Factor[] }
/** A normalized polynomial: canonically sorted terms with non-zero coefficients; [] is zero. */
export type Poly = readonly Term[];

export interface SymDim { readonly kind: 'sym'; readonly terms: Poly }
export type Dim = number | SymDim;

// ------------------------------------------------------------------ canonical keys and ordering

const keyCache = new WeakMap<object, string>();

function atomKey(a: Atom): string {
  const cached = keyCache.get(a);
  if (cached !== undefined) return cached;
  let k: string;
  switch (a.kind) {
    case 'var': k = `v${JSON.stringify(a.name)}${a.step ? `/${a.step}` : ''}`; break;
    case 'lit': k = `l${Object.is(a.value, -0) ? '0' : String(a.value)}`; break;
    case 'floor': k = `f(${polyKey(a.num)};${polyKey(a.den)})`; break;
    case 'mod': k = `m(${polyKey(a.num)};${polyKey(a.den)})`; break;
  }
  keyCache.set(a, k);
  return k;
}

function monoKey(fs: readonly Factor[]): string {
  return fs.map((f) => (f.exp === 1 ? atomKey(f.atom) : `${atomKey(f.atom)}^${f.exp}`)).join('*');
}

function polyKey(p: Poly): string {
  const cached = keyCache.get(p);
  if (cached !== undefined) return cached;
  const k = p.map((t) => `${t.coef}:${monoKey(t.factors)}`).join('+');
  keyCache.set(p, k);
  return k;
}

const RANK = { var: 0, lit: 1, floor: 2, mod: 3 } as const;

function compareStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareAtoms(a: Atom, b: Atom): number {
  if (a.kind !== b.kind) return RANK[a.kind] - RANK[b.kind];
  if (a.kind === 'var' && b.kind === 'var') return compareStr(a.name, b.name) || (a.step ?? 1) - (b.step ?? 1);
  return compareStr(atomKey(a), atomKey(b));
}

function degree(fs: readonly Factor[]): number {
  let d = 0;
  for (const f of fs) d += f.exp;
  return d;
}

/** Graded-lex monomial order: > 0 when `a` comes first (is greater). */
function compareMono(a: readonly Factor[], b: readonly Factor[]): number {
  const da = degree(a);
  const db = degree(b);
  if (da !== db) return da - db;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareAtoms(a[i].atom, b[i].atom);
    if (c !== 0) return c < 0 ? 1 : -1; // a has an earlier atom that b lacks here
    if (a[i].exp !== b[i].exp) return a[i].exp - b[i].exp;
  }
  return a.length - b.length;
}

// ------------------------------------------------------------------ polynomial arithmetic

const ZERO: Poly = [];

function constPoly(c: number): Poly {
  return c === 0 ? ZERO : [{ coef: c, factors: [] }];
}

function atomPoly(a: Atom): Poly {
  return [{ coef: 1, factors: [{ atom: a, exp: 1 }] }];
}

/** Collects like terms, drops zero coefficients and sorts canonically. */
function build(terms: Iterable<Term>): Poly {
  const byKey = new Map<string, Term>();
  for (const t of terms) {
    const k = monoKey(t.factors);
    const prev = byKey.get(k);
    byKey.set(k, prev ? { coef: prev.coef + t.coef, factors: prev.factors } : t);
  }
  const out: Term[] = [];
  for (const t of byKey.values()) if (t.coef !== 0) out.push(t.coef === 0 ? { coef: 0, factors: t.factors } : t);
  out.sort((x, y) => compareMono(y.factors, x.factors));
  return out;
}

function addP(p: Poly, q: Poly): Poly {
  if (p.length === 0) return q;
  if (q.length === 0) return p;
  return build([...p, ...q]);
}

function scaleP(p: Poly, c: number): Poly {
  if (c === 0) return ZERO;
  if (c === 1) return p;
  return build(p.map((t) => ({ coef: t.coef * c, factors: t.factors })));
}

function negP(p: Poly): Poly {
  return scaleP(p, -1);
}

function subP(p: Poly, q: Poly): Poly {
  return addP(p, negP(q));
}

function mulMono(a: readonly Factor[], b: readonly Factor[]): Factor[] {
  const out: Factor[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length) out.push(a[i++]);
    else if (i >= a.length) out.push(b[j++]);
    else {
      const c = compareAtoms(a[i].atom, b[j].atom);
      if (c < 0) out.push(a[i++]);
      else if (c > 0) out.push(b[j++]);
      else out.push({ atom: a[i].atom, exp: a[i++].exp + b[j++].exp });
    }
  }
  return out;
}

function mulP(p: Poly, q: Poly): Poly {
  if (p.length === 0 || q.length === 0) return ZERO;
  const out: Term[] = [];
  for (const s of p) for (const t of q) out.push({ coef: s.coef * t.coef, factors: mulMono(s.factors, t.factors) });
  return build(out);
}

/** a / b for monomials, or null when b does not divide a. */
function divMono(a: readonly Factor[], b: readonly Factor[]): Factor[] | null {
  const out: Factor[] = [];
  let i = 0;
  for (const f of b) {
    while (i < a.length && compareAtoms(a[i].atom, f.atom) < 0) out.push(a[i++]);
    if (i >= a.length || compareAtoms(a[i].atom, f.atom) !== 0 || a[i].exp < f.exp) return null;
    if (a[i].exp > f.exp) out.push({ atom: a[i].atom, exp: a[i].exp - f.exp });
    i++;
  }
  while (i < a.length) out.push(a[i++]);
  return out;
}

function isConstP(p: Poly): boolean {
  return p.length === 0 || (p.length === 1 && p[0].factors.length === 0);
}

function constOf(p: Poly): number {
  return p.length === 0 ? 0 : p[0].coef;
}

function allSafe(p: Poly): boolean {
  return p.every((t) => Number.isSafeInteger(t.coef));
}

/** The greatest common divisor of |a| and |b| (0 when both are 0). */
export function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Floor division of safe integers, exact even where a / b rounds. */
function floorInt(a: number, b: number): number {
  let q = Math.floor(a / b);
  const r = a - b * q;
  if (b > 0 ? r < 0 : r > 0) q -= 1;
  else if (b > 0 ? r >= b : r <= b) q += 1;
  return q;
}

/** Integer content (positive gcd of coefficients) and the common monomial factor of the polynomials. */
function commonFactor(ps: readonly Poly[]): { g: number; mono: Factor[] } {
  let g = 0;
  let mono: Factor[] | null = null;
  for (const p of ps) {
    for (const t of p) {
      g = gcd(g, t.coef);
      if (mono === null) mono = [...t.factors];
      else mono = mono.flatMap((f) => {
        const other = t.factors.find((h) => compareAtoms(h.atom, f.atom) === 0);
        return other ? [{ atom: f.atom, exp: Math.min(f.exp, other.exp) }] : [];
      });
    }
  }
  return { g: g === 0 ? 1 : g, mono: mono ?? [] };
}

/** Divides every term by coefficient g and monomial m (which must divide them all). */
function cancel(p: Poly, g: number, m: readonly Factor[]): Poly {
  if (g === 1 && m.length === 0) return p;
  return build(p.map((t) => ({ coef: t.coef / g, factors: divMono(t.factors, m) ?? t.factors })));
}

/** Graded-lex division of p by a non-constant q: p = q*quot + rem, or null if unsafe. */
function divide(p: Poly, q: Poly): { quot: Poly; rem: Poly } | null {
  const lead = q[0];
  let rest = p;
  const quot: Term[] = [];
  const rem: Term[] = [];
  for (let steps = 0; rest.length > 0; steps++) {
    if (steps > 10_000) return null;
    const t = rest[0];
    const m = t.coef % lead.coef === 0 ? divMono(t.factors, lead.factors) : null;
    if (m === null) {
      rem.push(t);
      rest = rest.slice(1);
      continue;
    }
    const qt: Term = { coef: t.coef / lead.coef, factors: m };
    quot.push(qt);
    const next = subP(rest, mulP([qt], q));
    if (!allSafe(next) || (next.length > 0 && compareMono(next[0].factors, t.factors) >= 0)) return null;
    rest = next;
  }
  return { quot: build(quot), rem: build(rem) };
}

// ------------------------------------------------------------------ conversion between Dim and Poly

function toPoly(d: Dim): Poly {
  if (typeof d === 'number') {
    if (Number.isInteger(d)) return constPoly(d);
    return atomPoly({ kind: 'lit', value: d });
  }
  return d.terms;
}

function hasVar(p: Poly): boolean {
  return p.some((t) => t.factors.some((f) => atomHasVar(f.atom)));
}

function atomHasVar(a: Atom): boolean {
  if (a.kind === 'var') return true;
  if (a.kind === 'lit') return false;
  return hasVar(a.num) || hasVar(a.den);
}

function fromPoly(p: Poly): Dim {
  if (isConstP(p)) return constOf(p);
  if (!hasVar(p)) {
    const v = evalPoly(p, new Map());
    if (!Number.isNaN(v)) return v + 0;
  }
  return { kind: 'sym', terms: p };
}

// ------------------------------------------------------------------ floor division and modulo

function opaque(kind: 'floor' | 'mod', num: Poly, den: Poly): Poly {
  return atomPoly({ kind, num, den });
}

/** The first term that is exactly `1 * atom` with an atom of the given kind and a positive constant denominator. */
function findNested(p: Poly, kind: 'floor' | 'mod', test: (den: number) => boolean): { index: number; num: Poly; den: number } | null {
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t.factors.length !== 1 || t.factors[0].exp !== 1) continue;
    const a = t.factors[0].atom;
    if (a.kind !== kind || !isConstP(a.den)) continue;
    const den = constOf(a.den);
    if (den > 0 && test(den) && (kind === 'mod' || t.coef === 1)) return { index: i, num: a.num, den };
  }
  return null;
}

function floorConst(p: Poly, c: number): Poly {
  if (c < 0) return floorConst(negP(p), -c);
  if (c === 1) return p;
  const quot: Term[] = [];
  const rem: Term[] = [];
  for (const t of p) {
    const q = floorInt(t.coef, c);
    if (q !== 0) quot.push({ coef: q, factors: t.factors });
    const r = t.coef - q * c;
    if (r !== 0) rem.push({ coef: r, factors: t.factors });
  }
  const Q = build(quot);
  const R = build(rem);
  if (R.length === 0) return Q;
  if (isConstP(R)) return addP(Q, constPoly(floorInt(constOf(R), c)));
  // cancel the common content first: floor(g*X / (g*d)) == floor(X / d)
  const { g } = commonFactor([R, constPoly(c)]);
  const R1 = cancel(R, g, []);
  const c1 = c / g;
  // floor((floor(X / D) + S) / c) == floor((X + D*S) / (D*c)), D any non-zero divisor
  const i = R1.findIndex((t) => t.coef === 1 && t.factors.length === 1 && t.factors[0].exp === 1 && t.factors[0].atom.kind === 'floor' && t.factors[0].atom.den.length > 0);
  if (i >= 0) {
    const inner = R1[i].factors[0].atom as { readonly num: Poly; readonly den: Poly };
    const X = addP(inner.num, mulP(inner.den, R1.filter((_, j) => j !== i)));
    const D = scaleP(inner.den, c1);
    if (allSafe(X) && allSafe(D)) return addP(Q, floorP(X, D));
  }
  return addP(Q, opaque('floor', R1, constPoly(c1)));
}

function modConst(p: Poly, c: number): Poly {
  if (c < 0) return negP(modConst(negP(p), -c));
  if (c === 1) return ZERO;
  let R = build(p.map((t) => ({ coef: t.coef - floorInt(t.coef, c) * c, factors: t.factors })));
  // (X % a + S) % c == (X + S) % c when c divides a
  const nested = findNested(R, 'mod', (a) => a % c === 0);
  if (nested) {
    const coef = R[nested.index].coef;
    R = addP(R.filter((_, i) => i !== nested.index), scaleP(nested.num, coef));
    if (allSafe(R)) return modConst(R, c);
    return opaque('mod', p, constPoly(c));
  }
  if (R.length === 0) return ZERO;
  if (isConstP(R)) return constPoly(constOf(R));
  const { g } = commonFactor([R, constPoly(c)]);
  return g === 1 ? opaque('mod', R, constPoly(c)) : scaleP(modConst(cancel(R, g, []), c / g), g);
}

function floorP(p: Poly, q: Poly): Poly {
  if (q.length === 0 || !allSafe(p) || !allSafe(q)) return opaque('floor', p, q);
  if (p.length === 0) return ZERO;
  if (isConstP(q)) return floorConst(p, constOf(q));
  if (q[0].coef < 0) return floorP(negP(p), negP(q));
  const { g, mono } = commonFactor([p, q]);
  const P = cancel(p, g, mono);
  const Q = cancel(q, g, mono);
  if (isConstP(Q)) return floorConst(P, constOf(Q));
  const d = divide(P, Q);
  if (d === null) return opaque('floor', P, Q);
  if (d.rem.length === 0) return d.quot;
  const c2 = commonFactor([d.rem, Q]);
  const R2 = cancel(d.rem, c2.g, c2.mono);
  const Q2 = cancel(Q, c2.g, c2.mono);
  const rest = isConstP(Q2) ? floorConst(R2, constOf(Q2)) : opaque('floor', R2, Q2);
  return addP(d.quot, rest);
}

function modP(p: Poly, q: Poly): Poly {
  if (q.length === 0 || !allSafe(p) || !allSafe(q)) return opaque('mod', p, q);
  if (p.length === 0) return ZERO;
  if (isConstP(q)) return modConst(p, constOf(q));
  if (q[0].coef < 0) return negP(modP(negP(p), negP(q)));
  // (g*m*X) % (g*m*Y) == g*m*(X % Y)
  const { g, mono } = commonFactor([p, q]);
  const outer: Poly = [{ coef: g, factors: mono }];
  const P = cancel(p, g, mono);
  const Q = cancel(q, g, mono);
  if (isConstP(Q)) return mulP(outer, modConst(P, constOf(Q)));
  const d = divide(P, Q);
  if (d === null) return mulP(outer, opaque('mod', P, Q));
  if (d.rem.length === 0) return ZERO;
  const c2 = commonFactor([d.rem, Q]);
  const outer2 = mulP(outer, [{ coef: c2.g, factors: c2.mono }]);
  const R2 = cancel(d.rem, c2.g, c2.mono);
  const Q2 = cancel(Q, c2.g, c2.mono);
  return mulP(outer2, isConstP(Q2) ? modConst(R2, constOf(Q2)) : opaque('mod', R2, Q2));
}

// ------------------------------------------------------------------ public construction

export function sym(name: string): Dim {
  return { kind: 'sym', terms: atomPoly({ kind: 'var', name: String(name) }) };
}

/**
 * The size `name`, known to be a multiple of `step` (the model says `where H % 2 == 0`): `step` times
 * the atom `name / step`, so that `2*(H / 2)` and `(H / 2)*2` are H itself. A step below 2 is `sym`.
 */
export function symMultipleOf(name: string, step: number): Dim {
  if (!Number.isSafeInteger(step) || step < 2) return sym(name);
  return { kind: 'sym', terms: [{ coef: step, factors: [{ atom: { kind: 'var', name: String(name), step }, exp: 1 }] }] };
}

/** The name when `d` is exactly one size (`H`, plain or a declared multiple), else undefined. */
export function sizeName(d: Dim): string | undefined {
  if (typeof d === 'number' || d.terms.length !== 1) return undefined;
  const t = d.terms[0];
  if (t.factors.length !== 1 || t.factors[0].exp !== 1) return undefined;
  const a = t.factors[0].atom;
  return a.kind === 'var' && t.coef === (a.step ?? 1) ? a.name : undefined;
}

export function add(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b + 0; // + 0 turns -0 into 0
  return fromPoly(addP(toPoly(a), toPoly(b)));
}

export function sub(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a - b + 0; // + 0 turns -0 into 0
  return fromPoly(subP(toPoly(a), toPoly(b)));
}

export function mul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b + 0; // + 0 turns -0 into 0
  return fromPoly(mulP(toPoly(a), toPoly(b)));
}

/** Numeric floor division; NaN for a zero divisor. */
function floorNum(a: number, b: number): number {
  if (b === 0) return NaN;
  if (Number.isSafeInteger(a) && Number.isSafeInteger(b)) return floorInt(a, b);
  return Math.floor(a / b);
}

function modNum(a: number, b: number): number {
  if (b === 0) return NaN;
  if (Number.isSafeInteger(a) && Number.isSafeInteger(b)) return a - b * floorInt(a, b);
  return a - b * Math.floor(a / b);
}

/** Floor division. Exact when b divides a symbolically; a zero divisor gives an opaque term (evaluates to NaN). */
export function floorDiv(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number' && b !== 0) return floorNum(a, b) + 0;
  return fromPoly(floorP(toPoly(a), toPoly(b)));
}

/** Floored modulo (result has the divisor's sign); 0 when provably divisible; zero divisor as in floorDiv. */
export function mod(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number' && b !== 0) return modNum(a, b) + 0;
  return fromPoly(modP(toPoly(a), toPoly(b)));
}

// ------------------------------------------------------------------ queries

export function isConcrete(d: Dim): d is number {
  return typeof d === 'number';
}

/**
 * True when `d` is at least 0 under every binding of its sizes (which are never negative): a number at
 * least 0, or a polynomial whose every term has a positive coefficient over sizes alone (no floor or
 * mod). A kernel may then hold it in a u32 (a stride of B * 128).
 */
export function knownNonNegative(d: Dim): boolean {
  if (typeof d === 'number') return d >= 0;
  return d.terms.every((t) => t.coef > 0 && t.factors.every((f) => f.atom.kind === 'var'));
}

/** True iff the normal forms are identical (so a and b agree under every binding). */
export function dimEquals(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  return a === b || polyKey(a.terms) === polyKey(b.terms);
}

/** A string that two sizes share exactly when dimEquals holds (a symbolic size never equals a number: normal forms fold constants). */
export function dimKey(d: Dim): string {
  return typeof d === 'number' ? String(d) : `sym(${polyKey(d.terms)})`;
}

function evalPoly(p: Poly, env: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const t of p) {
    let v = t.coef;
    for (const f of t.factors) {
      const x = evalAtom(f.atom, env);
      for (let i = 0; i < f.exp; i++) v *= x;
    }
    sum += v;
  }
  return sum;
}

function evalAtom(a: Atom, env: ReadonlyMap<string, number>): number {
  switch (a.kind) {
    case 'var': {
      const v = env.get(a.name);
      return typeof v === 'number' ? (a.step ? v / a.step : v) : NaN;
    }
    case 'lit':
      return a.value;
    case 'floor':
      return floorNum(evalPoly(a.num, env), evalPoly(a.den, env));
    case 'mod':
      return modNum(evalPoly(a.num, env), evalPoly(a.den, env));
  }
}

/** The value under a binding of the names; NaN if a name is unbound or a divisor is 0. */
export function evaluate(d: Dim, env: ReadonlyMap<string, number>): number {
  return typeof d === 'number' ? d : evalPoly(d.terms, env);
}

function collectVars(p: Poly, out: Set<string>): void {
  for (const t of p) for (const f of t.factors) {
    const a = f.atom;
    if (a.kind === 'var') out.add(a.name);
    else if (a.kind === 'floor' || a.kind === 'mod') {
      collectVars(a.num, out);
      collectVars(a.den, out);
    }
  }
}

/** The symbolic names in d, sorted. */
export function freeVars(d: Dim): string[] {
  if (typeof d === 'number') return [];
  const out = new Set<string>();
  collectVars(d.terms, out);
  return [...out].sort(compareStr);
}

function substPoly(p: Poly, env: ReadonlyMap<string, Dim>): Dim {
  let sum: Dim = 0;
  for (const t of p) {
    let v: Dim = t.coef;
    for (const f of t.factors) {
      const x = substAtom(f.atom, env);
      for (let i = 0; i < f.exp; i++) v = mul(v, x);
    }
    sum = add(sum, v);
  }
  return sum;
}

function substAtom(a: Atom, env: ReadonlyMap<string, Dim>): Dim {
  switch (a.kind) {
    case 'var': {
      const v = env.get(a.name);
      if (v === undefined) return { kind: 'sym', terms: atomPoly(a) };
      return a.step ? floorDiv(v, a.step) : v;
    }
    case 'lit':
      return a.value;
    case 'floor':
      return floorDiv(substPoly(a.num, env), substPoly(a.den, env));
    case 'mod':
      return mod(substPoly(a.num, env), substPoly(a.den, env));
  }
}

/** Replaces names by sizes and renormalizes. */
export function substitute(d: Dim, env: ReadonlyMap<string, Dim>): Dim {
  if (typeof d === 'number' || env.size === 0) return d;
  return substPoly(d.terms, env);
}

/** The sizes `d` divides by a number (`H / 2` in `2*(H / 2) + 1`): each name with its divisor, once. */
export function divisionsOfSizes(d: Dim): { name: string; by: number }[] {
  const out = new Map<string, { name: string; by: number }>();
  const visit = (p: Poly): void => {
    for (const t of p) for (const f of t.factors) {
      const a = f.atom;
      if (a.kind !== 'floor' && a.kind !== 'mod') continue;
      const name = sizeName({ kind: 'sym', terms: a.num });
      if (a.kind === 'floor' && name !== undefined && isConstP(a.den) && constOf(a.den) >= 2) out.set(`${name}/${constOf(a.den)}`, { name, by: constOf(a.den) });
      visit(a.num);
      visit(a.den);
    }
  };
  if (typeof d !== 'number') visit(d.terms);
  return [...out.values()];
}

/** Whether `d` divides by the constant 0 somewhere (`H % 0`, `T / 0`): no binding gives it a value. */
export function dividesByZero(d: Dim): boolean {
  const visit = (p: Poly): boolean => p.some((t) => t.factors.some((f) => {
    const a = f.atom;
    if (a.kind !== 'floor' && a.kind !== 'mod') return false;
    return (isConstP(a.den) && constOf(a.den) === 0) || visit(a.num) || visit(a.den);
  }));
  return typeof d !== 'number' && visit(d.terms);
}

// ------------------------------------------------------------------ printing

/** Printed text and how tightly it binds: 'atom' (name, number, power), 'unary' (-x), 'mul', 'add'. */
interface Printed { readonly text: string; readonly prec: 0 | 1 | 2 | 3 }
const ADD = 0;
const MUL = 1;
const UNARY = 2;
const ATOM = 3;

function numText(n: number): string {
  return Object.is(n, -0) ? '0' : String(n);
}

/**
 * The terms as written: a multiple `k*(H / k)` of a declared multiple's atom is `H` (and `2*k*(H / k)` is
 * `2*H`); where the coefficient is no multiple of the step the atom stays, printed `H / k`.
 */
export function writtenTerms(p: Poly): Poly {
  return p.map((t) => {
    if (!t.factors.some((f) => f.atom.kind === 'var' && f.atom.step)) return t;
    let coef = t.coef;
    const factors = t.factors.map((f) => {
      if (f.atom.kind !== 'var' || !f.atom.step) return f;
      const whole = f.atom.step ** f.exp;
      if (coef % whole !== 0) return f;
      coef /= whole;
      return { atom: { kind: 'var', name: f.atom.name } as Atom, exp: f.exp };
    });
    return { coef, factors };
  });
}

function atomText(a: Atom): Printed {
  switch (a.kind) {
    case 'var':
      return a.step ? { text: `${a.name} / ${a.step}`, prec: MUL } : { text: a.name, prec: ATOM };
    case 'lit':
      return { text: numText(a.value), prec: a.value < 0 ? UNARY : ATOM };
    case 'floor':
    case 'mod': {
      // (H / 2) / 2 of a declared multiple of 2 is H / 4
      const inner = a.kind === 'floor' && a.num.length === 1 && a.num[0].coef === 1 && a.num[0].factors.length === 1 ? a.num[0].factors[0] : undefined;
      if (inner && inner.exp === 1 && inner.atom.kind === 'var' && inner.atom.step && isConstP(a.den) && constOf(a.den) > 0) {
        return { text: `${inner.atom.name} / ${inner.atom.step * constOf(a.den)}`, prec: MUL };
      }
      const num = polyText(a.num);
      const den = polyText(a.den);
      const op = a.kind === 'floor' ? '/' : '%';
      // left operand at the `*` level, right operand one stronger, as the .dl printer parenthesizes;
      // a lone nested `/` or `%` on the left is parenthesized too, for readability
      const left = num.prec >= MUL && !isLoneDivision(a.num) ? num.text : `(${num.text})`;
      const right = den.prec >= UNARY ? den.text : `(${den.text})`;
      return { text: `${left} ${op} ${right}`, prec: MUL };
    }
  }
}

function factorText(f: Factor, alone: boolean): string {
  const a = atomText(f.atom);
  if (f.exp === 1) return alone || a.prec >= UNARY ? a.text : `(${a.text})`;
  return `${a.prec === ATOM ? a.text : `(${a.text})`}**${f.exp}`;
}

/** Whether p is a single `±floor` or `±mod` atom (coefficient ±1, exponent 1). */
function isLoneDivision(p: Poly): boolean {
  if (p.length !== 1) return false;
  const t = p[0];
  const a = t.factors[0]?.atom;
  return Math.abs(t.coef) === 1 && t.factors.length === 1 && t.factors[0].exp === 1 && (a.kind === 'floor' || a.kind === 'mod' || (a.kind === 'var' && !!a.step));
}

/** The term with |coef|, and whether it printed as a product. */
function magnitudeText(t: Term): Printed {
  const c = Math.abs(t.coef);
  if (t.factors.length === 0) return { text: numText(c), prec: ATOM };
  const alone = c === 1 && t.factors.length === 1;
  const parts = t.factors.map((f) => factorText(f, alone));
  if (c !== 1) parts.unshift(numText(c));
  if (parts.length === 1) {
    const f = t.factors[0];
    const a = atomText(f.atom);
    return { text: parts[0], prec: f.exp > 1 ? ATOM : a.prec };
  }
  return { text: parts.join('*'), prec: MUL };
}

function polyText(written: Poly): Printed {
  if (written.length === 0) return { text: '0', prec: ATOM };
  const p = writtenTerms(written);
  // start with a positive term where there is one: "1 - B" rather than "-B + 1"
  let terms = [...p];
  if (terms[0].coef < 0) {
    const i = terms.findIndex((t) => t.coef > 0);
    if (i > 0) terms = [terms[i], ...terms.slice(0, i), ...terms.slice(i + 1)];
  }
  let text = '';
  terms.forEach((t, i) => {
    const m = magnitudeText(t);
    const neg = t.coef < 0;
    // -x*y == -(x*y), but -x / y is (-x) / y: only a lone `/` or `%` needs parentheses after a minus
    if (i === 0) text = neg ? `-${isLoneDivision([t]) ? `(${m.text})` : m.text}` : m.text;
    else text += neg ? ` - ${m.text}` : ` + ${m.text}`;
  });
  if (terms.length > 1) return { text, prec: ADD };
  const m = magnitudeText(terms[0]);
  return { text, prec: terms[0].coef < 0 ? (m.prec === MUL ? MUL : UNARY) : m.prec };
}

/** Readable, deterministic .dl-like text: "B", "B*T", "(H + 1) / 2 + 1", "2*B + 1". */
export function dimToString(d: Dim): string {
  return typeof d === 'number' ? numText(d) : polyText(d.terms).text;
}

/** "[B, 784]" */
export function shapeToString(shape: readonly Dim[]): string {
  return `[${shape.map(dimToString).join(', ')}]`;
}

// ------------------------------------------------------------------ validation

function isPolyValue(x: unknown, depth: number): boolean {
  if (!Array.isArray(x) || depth > 100) return false;
  return x.every((t: unknown) => {
    if (typeof t !== 'object' || t === null) return false;
    const term = t as { coef?: unknown; factors?: unknown };
    if (typeof term.coef !== 'number' || !Array.isArray(term.factors)) return false;
    return term.factors.every((f: unknown) => {
      if (typeof f !== 'object' || f === null) return false;
      const fac = f as { atom?: unknown; exp?: unknown };
      return typeof fac.exp === 'number' && Number.isInteger(fac.exp) && fac.exp >= 1 && isAtomValue(fac.atom, depth);
    });
  });
}

function isAtomValue(x: unknown, depth: number): boolean {
  if (typeof x !== 'object' || x === null) return false;
  const a = x as { kind?: unknown; name?: unknown; step?: unknown; value?: unknown; num?: unknown; den?: unknown };
  switch (a.kind) {
    case 'var': return typeof a.name === 'string' && (a.step === undefined || (Number.isSafeInteger(a.step) && (a.step as number) >= 2));
    case 'lit': return typeof a.value === 'number';
    case 'floor':
    case 'mod': return isPolyValue(a.num, depth + 1) && isPolyValue(a.den, depth + 1);
    default: return false;
  }
}

/** A number, or a structurally well-formed SymDim. */
export function isDim(x: unknown): x is Dim {
  if (typeof x === 'number') return true;
  if (typeof x !== 'object' || x === null) return false;
  const s = x as { kind?: unknown; terms?: unknown };
  return s.kind === 'sym' && isPolyValue(s.terms, 0) && (s.terms as unknown[]).length > 0;
}
