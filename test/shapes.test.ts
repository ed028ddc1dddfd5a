// Symbolic sizes: normalization tables, printing, evaluation, random-expression properties, unification and broadcasting.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Dim, add, dimEquals, dimToString, evaluate, floorDiv, freeVars, isConcrete, isDim, knownNonNegative, mod, mul, shapeToString, sub, substitute, sym,
} from '../compiler/shapes/dim.ts';
import { DimUnifier, broadcastShapes } from '../compiler/shapes/unify.ts';

const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : 777_2024;
const RUNS = process.env.DLC_RUNS !== undefined ? Number(process.env.DLC_RUNS) : 1500;

const B = sym('B');
const T = sym('T');
const H = sym('H');
const W = sym('W');
const env = (o: Record<string, number>) => new Map(Object.entries(o));

// ------------------------------------------------------------------ a tiny parser for printed sizes (.dl precedence)

function parseDim(text: string): Dim {
  const toks = text.match(/\d+(\.\d+)?|[A-Za-z_]\w*|\*\*|[-+*/%()]/g) ?? [];
  expect(toks.join('')).toBe(text.replace(/\s+/g, ''));
  let i = 0;
  const peek = () => toks[i];
  const next = () => toks[i++];
  const addLevel = (): Dim => {
    let x = mulLevel();
    while (peek() === '+' || peek() === '-') x = next() === '+' ? add(x, mulLevel()) : sub(x, mulLevel());
    return x;
  };
  const mulLevel = (): Dim => {
    let x = unary();
    while (peek() === '*' || peek() === '/' || peek() === '%') {
      const op = next();
      const y = unary();
      x = op === '*' ? mul(x, y) : op === '/' ? floorDiv(x, y) : mod(x, y);
    }
    return x;
  };
  const unary = (): Dim => (peek() === '-' ? (next(), sub(0, unary())) : power());
  const power = (): Dim => {
    const base = primary();
    if (peek() !== '**') return base;
    next();
    const e = unary();
    let x: Dim = 1;
    for (let k = 0; k < (e as number); k++) x = mul(x, base);
    return x;
  };
  const primary = (): Dim => {
    const t = next();
    if (t === '(') {
      const x = addLevel();
      expect(next()).toBe(')');
      return x;
    }
    return /^\d/.test(t) ? Number(t) : sym(t);
  };
  const out = addLevel();
  expect(i).toBe(toks.length);
  return out;
}

// ------------------------------------------------------------------ normalization tables

describe('normalization', () => {
  const conv = (h: Dim, k: number, s: number, p: number) => add(floorDiv(sub(add(h, mul(2, p)), k), s), 1);

  const equal: [string, Dim, Dim][] = [
    ['B*T == T*B', mul(B, T), mul(T, B)],
    ['(H + 2*1 - 3) / 1 + 1 == H', conv(H, 3, 1, 1), H],
    ['(2*B) / 2 == B', floorDiv(mul(2, B), 2), B],
    ['(B*T) / T == B', floorDiv(mul(B, T), T), B],
    ['(B*T) / B == T', floorDiv(mul(T, B), B), T],
    ['(B + 1) - 1 == B', sub(add(B, 1), 1), B],
    ['B*(T + 1) == B*T + B', mul(B, add(T, 1)), add(mul(B, T), B)],
    ['(B + T) + H == B + (T + H)', add(add(B, T), H), add(B, add(T, H))],
    ['(B*T)*H == B*(T*H)', mul(mul(B, T), H), mul(B, mul(T, H))],
    ['(4*B + 6) / 2 == 2*B + 3', floorDiv(add(mul(4, B), 6), 2), add(mul(2, B), 3)],
    ['(H / 2) / 2 == H / 4', floorDiv(floorDiv(H, 2), 2), floorDiv(H, 4)],
    ['(H / 2 + 1) / 2 == (H + 2) / 4', floorDiv(add(floorDiv(H, 2), 1), 2), floorDiv(add(H, 2), 4)],
    ['(H + 2) / 2 == H / 2 + 1', floorDiv(add(H, 2), 2), add(floorDiv(H, 2), 1)],
    ['(2*H + 2) / 4 == (H + 1) / 2', floorDiv(add(mul(2, H), 2), 4), floorDiv(add(H, 1), 2)],
    ['(B*T + B) / (T + 1) == B', floorDiv(add(mul(B, T), B), add(T, 1)), B],
    ['(2*B) / (2*T) == B / T', floorDiv(mul(2, B), mul(2, T)), floorDiv(B, T)],
    ['H*W / W == H', floorDiv(mul(H, W), W), H],
    ['B / -2 == -B / 2', floorDiv(B, -2), floorDiv(sub(0, B), 2)],
    ['(2*B) % 2 == 0', mod(mul(2, B), 2), 0],
    ['(B*T) % T == 0', mod(mul(B, T), T), 0],
    ['(2*B + 3) % 2 == 1', mod(add(mul(2, B), 3), 2), 1],
    ['(B + 4) % 2 == B % 2', mod(add(B, 4), 2), mod(B, 2)],
    ['(B % 4) % 2 == B % 2', mod(mod(B, 4), 2), mod(B, 2)],
    ['(2*B) % 4 == 2*(B % 2)', mod(mul(2, B), 4), mul(2, mod(B, 2))],
    ['(B*T + 3) % T == 3 % T', mod(add(mul(B, T), 3), T), mod(3, T)],
    ['B - B == 0', sub(B, B), 0],
    ['B*0 == 0', mul(B, 0), 0],
    ['B / 1 == B', floorDiv(B, 1), B],
    ['B % 1 == 0', mod(B, 1), 0],
    ['(B + 2.5) - B == 2.5', sub(add(B, 2.5), B), 2.5],
    ['512 / 8 == 64', floorDiv(512, 8), 64],
    ['(B + 1)**2 == B*B + 2*B + 1', mul(add(B, 1), add(B, 1)), add(add(mul(B, B), mul(2, B)), 1)],
  ];
  it.each(equal)('%s', (_, a, b) => {
    expect(dimEquals(a, b)).toBe(true);
    expect(a).toEqual(b); // structural equality is the same as dimEquals
  });

  const different: [string, Dim, Dim][] = [
    ['B/2*2 != B', mul(floorDiv(B, 2), 2), B],
    ['B != T', B, T],
    ['B + 1 != B', add(B, 1), B],
    ['B / 2 != B % 2', floorDiv(B, 2), mod(B, 2)],
    ['(B*T) / 2 != B*(T / 2)', floorDiv(mul(B, T), 2), mul(B, floorDiv(T, 2))],
    ['H / 2 != H / 3', floorDiv(H, 2), floorDiv(H, 3)],
    ['B*T != B + T', mul(B, T), add(B, T)],
    ['B**2 != 2*B', mul(B, B), mul(2, B)],
    ['B / T != T / B', floorDiv(B, T), floorDiv(T, B)],
    ['3 != 4', 3, 4],
  ];
  it.each(different)('%s', (_, a, b) => {
    expect(dimEquals(a, b)).toBe(false);
  });

  it('folds anything constant to a plain number', () => {
    expect(add(sub(B, B), 3)).toBe(3);
    expect(mul(floorDiv(mul(B, T), mul(T, B)), 5)).toBe(5);
    expect(floorDiv(7, 2)).toBe(3);
    expect(floorDiv(-7, 2)).toBe(-4);
    expect(mod(-7, 2)).toBe(1);
    expect(mod(7, -2)).toBe(-1);
    expect(isConcrete(mod(mul(6, H), 3))).toBe(true);
    expect(isConcrete(B)).toBe(false);
  });

  it('conv output sizes with concrete numbers match the numeric formula', () => {
    for (const h of [1, 5, 7, 28, 32, 224]) for (const k of [1, 3, 5]) for (const s of [1, 2, 3]) for (const p of [0, 1, 2]) {
      expect(conv(h, k, s, p)).toBe(Math.floor((h + 2 * p - k) / s) + 1);
      // the same with H symbolic, then bound
      expect(substitute(conv(H, k, s, p), new Map([['H', h]]))).toBe(Math.floor((h + 2 * p - k) / s) + 1);
      expect(evaluate(conv(H, k, s, p), env({ H: h }))).toBe(Math.floor((h + 2 * p - k) / s) + 1);
    }
  });

  it('never throws on division or modulo by zero', () => {
    const z = floorDiv(B, 0);
    expect(isConcrete(z)).toBe(false);
    expect(evaluate(z, env({ B: 4 }))).toBeNaN();
    expect(dimToString(z)).toBe('B / 0');
    expect(evaluate(floorDiv(5, 0), env({}))).toBeNaN();
    expect(evaluate(mod(5, 0), env({}))).toBeNaN();
    expect(dimToString(mod(add(B, 1), sub(T, T)))).toBe('(B + 1) % 0');
    expect(evaluate(floorDiv(B, sub(T, 2)), env({ B: 4, T: 2 }))).toBeNaN();
    expect(() => floorDiv(mul(B, 1e300), mul(1e300, 1e300))).not.toThrow();
    expect(() => mod(add(B, NaN), Infinity)).not.toThrow();
  });
});

// ------------------------------------------------------------------ printing, queries

describe('printing and queries', () => {
  const printed: [Dim, string][] = [
    [B, 'B'],
    [mul(T, B), 'B*T'],
    [add(mul(2, B), 1), '2*B + 1'],
    [add(floorDiv(add(H, 1), 2), 1), '(H + 1) / 2 + 1'],
    [add(floorDiv(sub(add(H, 2), 3), 2), 1), '(H + 1) / 2'],
    [floorDiv(H, mul(2, T)), 'H / (2*T)'],
    [floorDiv(mul(H, W), 3), 'H*W / 3'],
    [mul(floorDiv(B, 2), 2), '2*(B / 2)'],
    [mod(B, 2), 'B % 2'],
    [sub(0, floorDiv(B, 2)), '-(B / 2)'],
    [floorDiv(floorDiv(B, T), H), '(B / T) / H'],
    [mul(-3, mul(B, T)), '-3*B*T'],
    [mul(B, B), 'B**2'],
    [sub(1, B), '1 - B'],
    [sub(0, B), '-B'],
    [sub(sub(0, B), 1), '-B - 1'],
    [add(mul(H, W), sub(H, 1)), 'H*W + H - 1'],
    [1024, '1024'],
  ];
  it.each(printed)('prints %j', (d, text) => {
    expect(dimToString(d)).toBe(text);
    expect(dimEquals(parseDim(text), d)).toBe(true);
  });

  it('shapes and helpers', () => {
    expect(shapeToString([B, 784])).toBe('[B, 784]');
    expect(shapeToString([])).toBe('[]');
    expect(freeVars(add(mul(T, floorDiv(H, W)), B))).toEqual(['B', 'H', 'T', 'W']);
    expect(freeVars(7)).toEqual([]);
    expect(isDim(3)).toBe(true);
    expect(isDim(floorDiv(H, 2))).toBe(true);
    expect(isDim(JSON.parse(JSON.stringify(mul(B, T))))).toBe(true);
    expect(isDim('B')).toBe(false);
    expect(isDim({ kind: 'sym' })).toBe(false);
    expect(isDim(null)).toBe(false);
    expect(dimEquals(JSON.parse(JSON.stringify(add(B, floorDiv(T, 2)))) as Dim, add(floorDiv(T, 2), B))).toBe(true);
  });

  it('knows the sign of sums of sizes with coefficients of one sign (a kernel may hold them in a u32), and no other', () => {
    expect([0, 7, mul(4, B), add(mul(B, T), 3), mul(B, B)].map(knownNonNegative)).toEqual([true, true, true, true, true]);
    expect([-1, sub(0, mul(4, B)), sub(B, 1), floorDiv(B, 2), mod(B, 3)].map(knownNonNegative)).toEqual([false, false, false, false, false]);
    expect(knownNonNegative(sub(0, sub(0, mul(4, B))))).toBe(true);
  });

  it('substitutes and renormalizes', () => {
    const d = floorDiv(add(mul(B, T), T), T);
    expect(d).toEqual(add(B, 1));
    expect(substitute(floorDiv(H, 2), new Map([['H', mul(2, W)]]))).toEqual(W);
    expect(substitute(mul(B, T), new Map<string, Dim>([['B', 4], ['T', 8]]))).toBe(32);
    expect(substitute(mod(H, W), new Map([['W', 1]]))).toBe(0);
    expect(substitute(B, new Map())).toBe(B);
  });

  it('evaluates like direct arithmetic', () => {
    const e = add(floorDiv(sub(add(H, 2), 5), 2), 1);
    for (let h = 0; h < 40; h++) expect(evaluate(e, env({ H: h }))).toBe(Math.floor((h - 3) / 2) + 1);
    expect(evaluate(mul(B, T), env({ B: 3, T: 5 }))).toBe(15);
    expect(evaluate(mod(sub(B, 10), 4), env({ B: 1 }))).toBe(3);
    expect(evaluate(floorDiv(B, T), env({ B: 7, T: 2 }))).toBe(3);
    expect(evaluate(B, env({}))).toBeNaN();
  });
});

// ------------------------------------------------------------------ random expression trees

type E =
  | { readonly k: 'var'; readonly n: string }
  | { readonly k: 'num'; readonly v: number }
  | { readonly k: 'add' | 'sub' | 'mul' | 'div' | 'mod'; readonly a: E; readonly b: E };

const VARS = ['a', 'b', 'c'];
const leaf: fc.Arbitrary<E> = fc.oneof(
  fc.constantFrom(...VARS).map((n): E => ({ k: 'var', n })),
  fc.integer({ min: 0, max: 7 }).map((v): E => ({ k: 'num', v })),
);
/** Divisors: a positive constant or a variable (bound to a positive value), or with `any`, any subexpression. */
function exprArb(anyDivisor: boolean): fc.Arbitrary<E> {
  const divisor: fc.Arbitrary<E> = fc.oneof(
    fc.integer({ min: 1, max: 6 }).map((v): E => ({ k: 'num', v })),
    fc.constantFrom(...VARS).map((n): E => ({ k: 'var', n })),
  );
  return fc.letrec<{ e: E }>((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.record({ k: fc.constantFrom('add' as const, 'sub' as const, 'mul' as const), a: tie('e'), b: tie('e') }),
      fc.record({ k: fc.constantFrom('div' as const, 'mod' as const), a: tie('e'), b: anyDivisor ? tie('e') : divisor }),
    ),
  })).e;
}

function build(e: E): Dim {
  switch (e.k) {
    case 'var': return sym(e.n);
    case 'num': return e.v;
    case 'add': return add(build(e.a), build(e.b));
    case 'sub': return sub(build(e.a), build(e.b));
    case 'mul': return mul(build(e.a), build(e.b));
    case 'div': return floorDiv(build(e.a), build(e.b));
    case 'mod': return mod(build(e.a), build(e.b));
  }
}

function direct(e: E, bind: Record<string, number>): number {
  switch (e.k) {
    case 'var': return bind[e.n];
    case 'num': return e.v;
    case 'add': return direct(e.a, bind) + direct(e.b, bind);
    case 'sub': return direct(e.a, bind) - direct(e.b, bind);
    case 'mul': return direct(e.a, bind) * direct(e.b, bind);
    case 'div': {
      const d = direct(e.b, bind);
      return d === 0 ? NaN : Math.floor(direct(e.a, bind) / d);
    }
    case 'mod': {
      const n = direct(e.a, bind);
      const d = direct(e.b, bind);
      return d === 0 ? NaN : n - d * Math.floor(n / d);
    }
  }
}

function size(e: E): number {
  return e.k === 'var' || e.k === 'num' ? 1 : 1 + size(e.a) + size(e.b);
}

/** An algebraically rearranged copy: commuted, reassociated, distributed, subtraction as -1*x, identities. */
function rearrange(e: E, rng: () => number): E {
  if (e.k === 'var' || e.k === 'num') {
    const r = rng();
    if (r < 0.1) return { k: 'add', a: { k: 'num', v: 0 }, b: e };
    if (r < 0.2) return { k: 'mul', a: e, b: { k: 'num', v: 1 } };
    return e;
  }
  let a = rearrange(e.a, rng);
  let b = rearrange(e.b, rng);
  const r = rng();
  switch (e.k) {
    case 'add':
    case 'mul':
      if (r < 0.5) [a, b] = [b, a];
      if (b.k === e.k && rng() < 0.5) return { k: e.k, a: { k: e.k, a, b: b.a }, b: b.b }; // a∘(x∘y) -> (a∘x)∘y
      if (e.k === 'mul' && b.k === 'add' && rng() < 0.3) return { k: 'add', a: { k: 'mul', a, b: b.a }, b: { k: 'mul', a, b: b.b } };
      return { k: e.k, a, b };
    case 'sub':
      if (r < 0.4) return { k: 'add', a: { k: 'mul', a: { k: 'sub', a: { k: 'num', v: 0 }, b: { k: 'num', v: 1 } }, b }, b: a }; // b*(0 - 1) + a
      return { k: 'sub', a, b };
    default:
      return { k: e.k, a, b };
  }
}

function mulberry(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bindingArb = fc.record({ a: fc.integer({ min: 0, max: 12 }), b: fc.integer({ min: 0, max: 12 }), c: fc.integer({ min: 0, max: 12 }) });

describe('random expressions', () => {
  console.log(`shapes: fast-check seed ${SEED} (replay with DLC_SEED=${SEED}), ${RUNS} runs`);
  const small = (e: E) => size(e) <= 40;

  it('normalization preserves the value (divisors: positive constants and positive variables)', () => {
    fc.assert(
      fc.property(exprArb(false).filter(small), fc.array(bindingArb, { minLength: 1, maxLength: 4 }), (e, binds) => {
        const d = build(e);
        for (const raw of binds) {
          // variables are non-negative; ones used as divisors are positive
          const bind: Record<string, number> = {};
          for (const v of VARS) bind[v] = usesAsDivisor(e, v) ? raw[v as 'a'] || 1 : raw[v as 'a'];
          expect(evaluate(d, new Map(Object.entries(bind))) + 0).toBe(direct(e, bind) + 0);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('normalization preserves the value (any divisor; zero divisors skipped)', () => {
    fc.assert(
      fc.property(exprArb(true).filter(small), bindingArb, (e, bind) => {
        const want = direct(e, bind);
        fc.pre(!Number.isNaN(want));
        expect(evaluate(build(e), new Map(Object.entries(bind))) + 0).toBe(want + 0);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('rearranged copies normalize identically', () => {
    fc.assert(
      fc.property(exprArb(false).filter(small), fc.integer(), (e, seed) => {
        const e2 = rearrange(e, mulberry(seed));
        const d = build(e);
        const d2 = build(e2);
        expect(dimEquals(d, d2)).toBe(true);
        expect(d2).toEqual(d);
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });

  it('printed sizes parse back (with .dl precedence) to the same normal form', () => {
    fc.assert(
      fc.property(exprArb(true).filter(small), (e) => {
        const d = build(e);
        const text = dimToString(d);
        if (text.includes('NaN') || text.includes('Infinity')) return;
        expect(dimEquals(parseDim(text), d)).toBe(true);
        expect(dimToString(d)).toBe(text); // deterministic
      }),
      { seed: SEED + 3, numRuns: RUNS },
    );
  });

  it('substitution agrees with evaluation', () => {
    fc.assert(
      fc.property(exprArb(false).filter(small), bindingArb, (e, raw) => {
        const bind = { a: raw.a || 1, b: raw.b || 1, c: raw.c || 1 };
        const d = build(e);
        const partial = substitute(d, new Map<string, Dim>([['a', bind.a], ['b', add(sym('c'), bind.b - bind.c)]]));
        expect(evaluate(partial, env({ c: bind.c }))).toBe(evaluate(d, env(bind)));
        expect(substitute(d, new Map<string, Dim>(Object.entries(bind)))).toBe(evaluate(d, env(bind)));
      }),
      { seed: SEED + 4, numRuns: RUNS },
    );
  });
});

function usesAsDivisor(e: E, v: string): boolean {
  if (e.k === 'var' || e.k === 'num') return false;
  if ((e.k === 'div' || e.k === 'mod') && e.b.k === 'var' && e.b.n === v) return true;
  return usesAsDivisor(e.a, v) || usesAsDivisor(e.b, v);
}

// ------------------------------------------------------------------ unification and broadcasting

describe('DimUnifier', () => {
  it('binds a lone solvable variable', () => {
    const u = new DimUnifier(['B', 'T']);
    expect(u.unify(B, 32)).toBe(true);
    expect(u.unify(mul(B, T), 320)).toBe(true); // T is now linear: 32*T == 320
    expect(u.bindings()).toEqual(new Map([['B', 32], ['T', 10]]));
    expect(u.resolve(add(B, T))).toBe(42);
    expect(u.unify(B, 32)).toBe(true);
    expect(u.unify(B, 33)).toBe(false);
  });

  it('binds to symbolic sizes and keeps bindings resolved', () => {
    const u = new DimUnifier(['B', 'T']);
    expect(u.unify(sym('N'), B)).toBe(true); // N is rigid, B binds to it
    expect(u.resolve(B)).toEqual(sym('N'));
    expect(u.unify(T, mul(sym('N'), 4))).toBe(true);
    expect(u.resolve(mul(B, T))).toEqual(mul(4, mul(sym('N'), sym('N'))));
    const v = new DimUnifier(['B', 'T']);
    expect(v.unify(B, T)).toBe(true);
    expect(v.unify(T, 5)).toBe(true);
    expect(v.resolve(B)).toBe(5);
    expect(v.bindings().get('B')).toBe(5);
  });

  it('solves linear equations with integer solutions', () => {
    const K = sym('K');
    const u = new DimUnifier(['K']);
    expect(u.unify(add(mul(2, K), 1), 7)).toBe(true);
    expect(u.resolve(K)).toBe(3);
    expect(new DimUnifier(['K']).unify(add(mul(2, K), 1), 8)).toBe(false); // no integer solution
    expect(new DimUnifier(['K']).unify(add(K, 9), 7)).toBe(false); // negative size
    const w = new DimUnifier(['K']);
    expect(w.unify(mul(2, K), mul(2, H))).toBe(true);
    expect(w.resolve(K)).toEqual(H);
    const x = new DimUnifier(['K']);
    expect(x.unify(sub(mul(3, K), H), mul(2, H))).toBe(true); // 3K - H == 2H -> K = H
    expect(x.resolve(K)).toEqual(H);
    expect(new DimUnifier(['K']).unify(mul(2, K), H)).toBe(false); // K = H / 2 is not exact
  });

  it('rejects what cannot be equal and binds nothing on failure', () => {
    const u = new DimUnifier(['B']);
    expect(u.unify(T, 3)).toBe(false); // T is not solvable
    expect(u.unify(B, add(B, 1))).toBe(false);
    expect(u.unify(mul(B, B), 4)).toBe(false); // not linear
    expect(u.unify(add(B, T), add(T, 2))).toBe(true);
    expect(u.resolve(B)).toBe(2);
    expect(new DimUnifier(['B', 'T']).unify(add(B, T), 5)).toBe(false); // two unknowns
    const v = new DimUnifier([]);
    expect(v.unify(mul(B, T), mul(T, B))).toBe(true);
    expect(v.unify(B, T)).toBe(false);
    expect(v.bindings().size).toBe(0);
    expect(new DimUnifier(['B']).unify(B, -1)).toBe(false);
  });
});

describe('broadcastShapes', () => {
  it('follows numpy rules from the right', () => {
    expect(broadcastShapes([B, 1, 5], [4, 5])).toEqual({ shape: [B, 4, 5] });
    expect(broadcastShapes([3], [2, 1])).toEqual({ shape: [2, 3] });
    expect(broadcastShapes([], [B, T])).toEqual({ shape: [B, T] });
    expect(broadcastShapes([1, 1], [1])).toEqual({ shape: [1, 1] });
    expect(broadcastShapes([B, T, 1], [T, H])).toEqual({ shape: [B, T, H] });
    expect(broadcastShapes([mul(B, T), 8], [mul(T, B), 1])).toEqual({ shape: [mul(B, T), 8] });
  });

  it('reports the mismatched axes', () => {
    expect(broadcastShapes([B, 3], [4])).toEqual({ error: { axisA: 1, axisB: 0 } });
    expect(broadcastShapes([2, B, 3], [T, 3])).toEqual({ error: { axisA: 1, axisB: 0 } });
    expect(broadcastShapes([B], [add(B, 1)])).toEqual({ error: { axisA: 0, axisB: 0 } });
    expect(broadcastShapes([5, 2], [3, 4, 2])).toEqual({ error: { axisA: 0, axisB: 1 } });
  });
});
