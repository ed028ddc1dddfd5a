// Evaluating the program's size expressions once the symbolic sizes (the batch) are bound.
import type { SizeExpr } from './program.ts';

/** The value of a size expression; throws naming the size when one is unbound. */
export function evalSize(e: SizeExpr, sizes: ReadonlyMap<string, number>): number {
  if (typeof e === 'number') return e;
  if (typeof e === 'string') {
    const v = sizes.get(e);
    if (v === undefined) throw new Error(`the size ${e} is not bound`);
    return v;
  }
  const [op, ...args] = e;
  const vals = args.map((a) => evalSize(a, sizes));
  switch (op) {
    case '+':
      return vals.reduce((a, b) => a + b, 0);
    case '*':
      return vals.reduce((a, b) => a * b, 1);
    case '^':
      return vals[0] ** vals[1];
    case 'floor':
      return vals[1] === 0 ? NaN : Math.floor(vals[0] / vals[1]);
    case 'mod':
      return vals[1] === 0 ? NaN : vals[0] - vals[1] * Math.floor(vals[0] / vals[1]);
  }
}

/**
 * A size expression as a person writes it: `256 * B`, `L - 1` (a negative term subtracted),
 * `floor(H / 2)`, `T % 4`, `2^n`; the program's JSON form (`["*",256,"B"]`) is not for reading.
 */
export function sizeText(e: SizeExpr): string {
  if (typeof e === 'number' || typeof e === 'string') return String(e);
  const [op, ...args] = e as readonly [string, ...SizeExpr[]];
  // a term of a sum or product shown with parentheses where it binds more loosely
  const inner = (a: SizeExpr, within: '+' | '*') => (Array.isArray(a) && a[0] === '+' && within === '*' ? `(${sizeText(a)})` : sizeText(a));
  switch (op) {
    case '+':
      return args
        .map((a, i) => {
          const negative = typeof a === 'number' ? a < 0 : Array.isArray(a) && a[0] === '*' && typeof a[1] === 'number' && a[1] < 0;
          if (i === 0 || !negative) return `${i === 0 ? '' : ' + '}${inner(a, '+')}`;
          const magnitude: SizeExpr = typeof a === 'number' ? -a : (['*', -(a[1] as number), ...(a as readonly SizeExpr[]).slice(2)] as unknown as SizeExpr);
          return ` - ${sizeText(Array.isArray(magnitude) && magnitude[1] === 1 && magnitude.length === 3 ? magnitude[2] : magnitude)}`;
        })
        .join('');
    case '*':
      return args.map((a) => inner(a, '*')).join(' * ');
    case 'floor':
      return `floor(${sizeText(args[0])} / ${sizeText(args[1])})`;
    case 'mod':
      return `${inner(args[0], '*')} % ${inner(args[1], '*')}`;
    default:
      return `${inner(args[0], '*')}^${inner(args[1], '*')}`;
  }
}

export function evalShape(shape: readonly SizeExpr[], sizes: ReadonlyMap<string, number>): number[] {
  return shape.map((d) => evalSize(d, sizes));
}

/** The names a size expression mentions. */
export function sizeNames(e: SizeExpr, out: Set<string> = new Set()): Set<string> {
  if (typeof e === 'string') out.add(e);
  else if (Array.isArray(e)) for (const a of e.slice(1) as SizeExpr[]) sizeNames(a, out);
  return out;
}

/** Whether `l op r` holds for a size condition's comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`). */
export function conditionHolds(op: string, l: number, r: number): boolean {
  switch (op) {
    case '==':
      return l === r;
    case '!=':
      return l !== r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
    default:
      return false;
  }
}

/**
 * The first of the graphs' size conditions (`L <= ctx + 1`, `4 >= L - 1`) that `sizes` break, as
 * text, among those whose sizes are all given; undefined when none is.
 */
export function brokenCondition(graphs: readonly { readonly constraints: readonly { readonly op: string; readonly left: SizeExpr; readonly right: SizeExpr; readonly text: string }[] }[], sizes: ReadonlyMap<string, number>): string | undefined {
  for (const g of graphs) {
    for (const c of g.constraints) {
      let l: number;
      let r: number;
      try {
        l = evalSize(c.left, sizes);
        r = evalSize(c.right, sizes);
      } catch {
        continue; // a size not given yet: the first call checks it
      }
      if (!conditionHolds(c.op, l, r)) return `\`${c.text}\` (${l} ${c.op} ${r} is false)`;
    }
  }
  return undefined;
}

/**
 * `sizes` with the sizes named in `free` raised until `broken` (the first broken condition's text, or
 * undefined) finds none: each by at most 63 from its value, the smallest total raise first, within
 * 20,000 tries; so a default H = 1 against `where H % 4 == 0` becomes 4. Where no such sizes are
 * found: `sizes` as they were, and the condition they break.
 */
export function fittingSizes(sizes: ReadonlyMap<string, number>, free: readonly string[], broken: (sizes: ReadonlyMap<string, number>) => string | undefined): { sizes: Map<string, number>; broken?: string } {
  const first = broken(sizes);
  if (first === undefined || free.length === 0) return { sizes: new Map(sizes), ...(first !== undefined ? { broken: first } : {}) };
  const most = 63;
  let tries = 0;
  // every way to raise the free sizes by `total` in all, each by at most `most`
  const raises = function* (k: number, total: number): Generator<number[]> {
    if (k === 1) {
      if (total <= most) yield [total];
      return;
    }
    for (let r = 0; r <= Math.min(total, most); r++) for (const rest of raises(k - 1, total - r)) yield [r, ...rest];
  };
  for (let total = 1; total <= most * free.length; total++) {
    for (const raise of raises(free.length, total)) {
      if (++tries > 20_000) return { sizes: new Map(sizes), broken: first };
      const trial = new Map(sizes);
      free.forEach((name, i) => trial.set(name, (sizes.get(name) ?? 1) + raise[i]));
      if (broken(trial) === undefined) return { sizes: trial };
    }
  }
  return { sizes: new Map(sizes), broken: first };
}
