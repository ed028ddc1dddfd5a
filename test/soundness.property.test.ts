// Soundness of the shape checker against the reference interpreter, over generated well-formed programs:
// a program that checks cleanly verifies, and runs in the interpreter with B = 2 or 3 producing exactly
// the shapes its types promise; a program that is rejected gets registered codes, in-bounds spans and no
// internal error. Seeded: the seed is printed, DLC_SEED replays it (DLC_RUNS sets the number of programs).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCode } from '../compiler/diagnostics/codes.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { stdlibModules } from '../compiler/frontend/stdlib.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { DType, Graph, TensorType } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { evaluate } from '../compiler/shapes/dim.ts';

const SEED = process.env.DLC_SEED !== undefined ? Number(process.env.DLC_SEED) : Date.now() % 2 ** 31;
const RUNS = process.env.DLC_RUNS !== undefined ? Number(process.env.DLC_RUNS) : 2_000;
const FILE = 'gen.dl';

// ---- the generator's own model of shapes: a size is b * B + c ------------------------------------

interface Size {
  readonly b: number;
  readonly c: number;
}
const conc = (c: number): Size => ({ b: 0, c });
const SYM_B: Size = { b: 1, c: 0 };
const eqSize = (x: Size, y: Size) => x.b === y.b && x.c === y.c;
const isOne = (x: Size) => x.b === 0 && x.c === 1;
const sizeText = (x: Size): string => (x.b === 0 ? String(x.c) : `${x.b === 1 ? '' : `${x.b} * `}B${x.c > 0 ? ` + ${x.c}` : x.c < 0 ? ` - ${-x.c}` : ''}`);

interface Var {
  readonly name: string;
  readonly dtype: 'f32' | 'i32';
  readonly shape: readonly Size[];
}

/** What the generator expects the checker to say: accept, reject, or too hard to predict. */
type Verdict = 'accept' | 'reject' | 'unknown';

interface Program {
  readonly text: string;
  readonly predicted: Verdict;
  /** How many steps the generator expects to be errors: with poison, a bound on the diagnostics. */
  readonly mistakes: number;
}

function broadcast(a: readonly Size[], b: readonly Size[]): Size[] | null {
  const n = Math.max(a.length, b.length);
  const out: Size[] = [];
  for (let i = 1; i <= n; i++) {
    const x = a[a.length - i] ?? conc(1);
    const y = b[b.length - i] ?? conc(1);
    if (eqSize(x, y) || isOne(y)) out.unshift(x);
    else if (isOne(x)) out.unshift(y);
    else return null;
  }
  return out;
}

type Gen = <T>(arb: (...args: never[]) => fc.Arbitrary<T>, ...args: unknown[]) => T;

function programArbitrary(): fc.Arbitrary<Program> {
  return fc.gen().map((g0) => {
    const g = g0 as unknown as Gen;
    const int = (min: number, max: number): number => g(fc.integer as never, { min, max });
    const chance = (p: number): boolean => int(0, 999) < p * 1000;
    const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];

    let verdict: Verdict = 'accept';
    let mistakes = 0;
    const fail = () => {
      mistakes++;
      if (verdict === 'accept') verdict = 'reject';
    };
    const unsure = () => {
      verdict = 'unknown';
    };

    const decls: string[] = [];
    const members: string[] = [];
    const lets: string[] = [];
    const vars: Var[] = [];
    let fresh = 0;

    // inputs: 1-3, rank 1-3, B leading (sometimes elsewhere), mostly f32
    const nInputs = int(1, 3);
    for (let i = 0; i < nInputs; i++) {
      const rank = int(1, 3);
      const shape: Size[] = [];
      for (let k = 0; k < rank; k++) shape.push(k === 0 ? (chance(0.6) ? SYM_B : conc(int(1, 4))) : chance(0.08) ? SYM_B : conc(int(1, 4)));
      const dtype = chance(0.85) ? 'f32' : 'i32';
      const name = `in${i}`;
      decls.push(`  input ${name}: ${dtype}[${shape.map(sizeText).join(', ')}]`);
      vars.push({ name, dtype, shape });
    }

    const bind = (expr: string, v: Omit<Var, 'name'>): void => {
      const name = `v${fresh++}`;
      lets.push(`  let ${name} = ${expr}`);
      vars.push({ name, ...v });
    };
    const literal = (dtype: 'f32' | 'i32'): { text: string; dtype: 'f32' | 'i32' } => {
      // mostly the operand's own kind of number; a float literal with an i32 tensor is an f32 scalar
      const float = dtype === 'f32' ? !chance(0.1) : chance(0.15);
      return float ? { text: pick(['0.5', '2.0', '1.5', '3.0']), dtype: 'f32' } : { text: pick(['1', '2', '3']), dtype };
    };
    const someVar = (): Var => (chance(0.6) ? vars[vars.length - 1] : pick(vars));
    const lastSize = (v: Var): Size | undefined => v.shape[v.shape.length - 1];
    const concreteSize = (s: Size | undefined): number | undefined => (s && s.b === 0 ? s.c : undefined);
    const hasEmpty = (v: Var) => v.shape.some((s) => s.b === 0 && s.c === 0);

    // Half the programs are careful: a step the generator predicts to be an error is taken back and
    // drawn again, so that long chains still check cleanly; the other half keep their mistakes.
    const careful = chance(0.5);
    const steps = int(3, 12);
    for (let step = 0, tries = 0; step < steps; step++) {
      const mark: { verdict: Verdict; mistakes: number; lets: number; members: number; vars: number } = { verdict, mistakes, lets: lets.length, members: members.length, vars: vars.length };
      const x = someVar();
      const rank = x.shape.length;
      if (hasEmpty(x)) unsure();
      switch (int(0, 13)) {
        case 0:
        case 1: {
          // elementwise binary with broadcasting, against another variable or a number
          const op = pick(['+', '-', '*', '/', 'maximum']);
          if (chance(0.3)) {
            const lit = literal(x.dtype);
            if (lit.dtype !== x.dtype) fail();
            const text = op === 'maximum' ? `maximum(${x.name}, ${lit.text})` : chance(0.5) ? `${x.name} ${op} ${lit.text}` : `${lit.text} ${op} ${x.name}`;
            bind(text, x);
            break;
          }
          // sometimes a size-1 or missing axis on purpose
          let y = pick(vars);
          if (chance(0.3) && rank >= 1) {
            const k = int(0, rank - 1);
            y = { ...x, shape: x.shape.map((s, i) => (i === k ? conc(1) : s)) };
            const name = `v${fresh++}`;
            lets.push(`  let ${name} = ${chance(0.5) ? 'sum' : 'mean'}(${x.name}, axis: ${k}, keepdims: true)`);
            vars.push({ ...y, name });
            y = vars[vars.length - 1];
          }
          const shape = broadcast(x.shape, y.shape);
          if (!shape || x.dtype !== y.dtype) fail();
          bind(op === 'maximum' ? `maximum(${x.name}, ${y.name})` : `${x.name} ${op} ${y.name}`, { dtype: x.dtype, shape: shape ?? x.shape });
          break;
        }
        case 2: {
          // unary math and activations
          const f = pick(['exp', 'tanh', 'relu', 'neg', 'softmax', 'sigmoid']);
          if (x.dtype !== 'f32' && f !== 'neg') fail();
          if (f === 'softmax' && rank === 0) fail();
          const text = f === 'neg' ? `-${x.name}` : f === 'softmax' ? `softmax(${x.name}, axis: -1)` : `${f}(${x.name})`;
          bind(text, x);
          break;
        }
        case 3:
        case 4: {
          // matmul with a parameter: the inner size fits most of the time
          const k = lastSize(x);
          const inner = concreteSize(k) !== undefined && chance(0.8) ? concreteSize(k)! : int(1, 5);
          const out = int(1, 5);
          const w = `w${fresh++}`;
          members.push(`  param ${w}: f32[${inner}, ${out}] = glorot_uniform`);
          if (x.dtype !== 'f32' || rank < 2 || !k || !eqSize(k, conc(inner))) fail();
          bind(`${x.name} @ ${w}`, { dtype: 'f32', shape: [...x.shape.slice(0, -1), conc(out)] });
          break;
        }
        case 5: {
          // matmul of two variables
          const y = pick(vars);
          const ok = x.dtype === 'f32' && y.dtype === 'f32' && rank >= 2 && y.shape.length >= 2 && eqSize(x.shape[rank - 1], y.shape[y.shape.length - 2]);
          const batch = ok ? broadcast(x.shape.slice(0, -2), y.shape.slice(0, -2)) : null;
          if (!ok || !batch) fail();
          bind(`${x.name} @ ${y.name}`, { dtype: 'f32', shape: batch ? [...batch, x.shape[rank - 2], y.shape[y.shape.length - 1]] : x.shape });
          break;
        }
        case 6: {
          // sum / mean / max over one axis (sometimes out of range), with or without keepdims
          const f = pick(['sum', 'mean', 'max']);
          const axis = int(-rank - 1, rank);
          const kd = chance(0.4);
          const a = axis < 0 ? axis + rank : axis;
          if (a < 0 || a >= rank) fail();
          const shape = a < 0 || a >= rank ? x.shape : kd ? x.shape.map((s, i) => (i === a ? conc(1) : s)) : x.shape.filter((_, i) => i !== a);
          bind(`${f}(${x.name}, axis: ${axis}${kd ? ', keepdims: true' : ''})`, { dtype: x.dtype, shape });
          if (f === 'max' && a >= 0 && a < rank && eqSize(x.shape[a], conc(0))) unsure();
          break;
        }
        case 7: {
          // reshape: flatten behind B, flatten everything concrete, or a wrong element count
          const bAxes = x.shape.filter((s) => s.b !== 0);
          const allConcrete = bAxes.length === 0;
          const count = x.shape.reduce((p, s) => (s.b === 0 ? p * s.c : p), 1);
          if (bAxes.length === 1 && eqSize(bAxes[0], SYM_B) && chance(0.8)) {
            bind(`reshape(${x.name}, [B, -1])`, { dtype: x.dtype, shape: [SYM_B, conc(count)] });
          } else if (allConcrete && chance(0.8)) {
            const wrong = chance(0.2);
            const n = wrong ? count + 1 : count;
            if (wrong) fail();
            bind(`reshape(${x.name}, [${n}])`, { dtype: x.dtype, shape: [conc(n)] });
          } else if (allConcrete) {
            bind(`reshape(${x.name}, [1, -1])`, { dtype: x.dtype, shape: [conc(1), conc(count)] });
            if (count === 0) unsure();
          } else {
            unsure();
            bind(`reshape(${x.name}, [B, -1])`, { dtype: x.dtype, shape: [SYM_B, conc(1)] });
          }
          break;
        }
        case 8: {
          // transpose: the last two axes, or an explicit permutation (sometimes not one)
          if (chance(0.6)) {
            // a rank-0 or rank-1 tensor is its own transpose
            bind(`transpose(${x.name})`, { dtype: x.dtype, shape: rank < 2 ? x.shape : [...x.shape.slice(0, -2), x.shape[rank - 1], x.shape[rank - 2]] });
          } else {
            const perm = Array.from({ length: rank }, (_, i) => i).reverse();
            if (chance(0.15)) perm.push(rank);
            if (perm.length !== rank) fail();
            bind(`transpose(${x.name}, [${perm.join(', ')}])`, { dtype: x.dtype, shape: perm.length !== rank ? x.shape : perm.map((p) => x.shape[p]) });
          }
          break;
        }
        case 9: {
          // indexing: x[:, 0], x[..., None], x[0], x[1:], x[:, -1]
          const form = int(0, 4);
          if (form === 0) {
            if (rank < 2) fail();
            bind(`${x.name}[:, 0]`, { dtype: x.dtype, shape: rank < 2 ? x.shape : x.shape.filter((_, i) => i !== 1) });
            if (rank >= 2 && eqSize(x.shape[1], conc(0))) unsure();
          } else if (form === 1) {
            bind(`${x.name}[..., None]`, { dtype: x.dtype, shape: [...x.shape, conc(1)] });
          } else if (form === 2) {
            if (rank < 1) fail();
            bind(`${x.name}[0]`, { dtype: x.dtype, shape: x.shape.slice(1) });
            if (rank >= 1 && eqSize(x.shape[0], conc(0))) unsure();
          } else if (form === 3) {
            if (rank < 1) fail();
            const n = x.shape[0];
            const shape = rank < 1 ? x.shape : [n.b === 0 ? conc(Math.max(0, n.c - 1)) : { b: n.b, c: n.c - 1 }, ...x.shape.slice(1)];
            bind(`${x.name}[1:]`, { dtype: x.dtype, shape });
          } else {
            if (rank < 2) fail();
            bind(`${x.name}[:, -1]`, { dtype: x.dtype, shape: rank < 2 ? x.shape : x.shape.filter((_, i) => i !== 1) });
            if (rank >= 2 && eqSize(x.shape[1], conc(0))) unsure();
          }
          break;
        }
        case 10: {
          // concat along an axis: with itself (fits), or with another variable
          const y = chance(0.5) ? x : pick(vars);
          const axis = rank === 0 ? 0 : int(-rank, rank - 1);
          const a = axis < 0 ? axis + rank : axis;
          const ok = rank >= 1 && y.dtype === x.dtype && y.shape.length === rank && x.shape.every((s, i) => i === a || eqSize(s, y.shape[i]));
          if (!ok) fail();
          const shape = ok ? x.shape.map((s, i) => (i === a ? { b: s.b + y.shape[i].b, c: s.c + y.shape[i].c } : s)) : x.shape;
          bind(`concat([${x.name}, ${y.name}], axis: ${axis})`, { dtype: x.dtype, shape });
          break;
        }
        case 11:
        case 12: {
          // a Dense layer over the last axis
          const k = lastSize(x);
          const inner = concreteSize(k) !== undefined && chance(0.85) ? concreteSize(k)! : int(1, 5);
          const out = int(1, 5);
          const d = `d${fresh++}`;
          members.push(`  layer ${d} = Dense(${inner}, ${out}${chance(0.2) ? ', bias: false' : ''})`);
          // Dense's forward takes f32[..., in], but its x @ w needs rank 2 (a known limitation)
          if (x.dtype !== 'f32' || rank < 2 || !k || !eqSize(k, conc(inner))) fail();
          bind(`${d}(${x.name})`, { dtype: 'f32', shape: rank < 1 ? [conc(out)] : [...x.shape.slice(0, -1), conc(out)] });
          break;
        }
        case 13: {
          // relu of a Dense-like affine map written out, with a broadcast bias
          const b = `b${fresh++}`;
          const k = lastSize(x);
          const n = concreteSize(k) ?? 1;
          const bias = chance(0.85) ? n : n + 1;
          members.push(`  param ${b}: f32[${bias}] = zeros`);
          const shape = broadcast(x.shape, [conc(bias)]);
          if (x.dtype !== 'f32' || !shape) fail();
          bind(`relu(${x.name} + ${b})`, { dtype: 'f32', shape: shape ?? x.shape });
          break;
        }
      }
      if (careful && (verdict as Verdict) === 'reject' && mark.verdict === 'accept' && tries++ < 20) {
        verdict = mark.verdict;
        mistakes = mark.mistakes;
        lets.length = mark.lets;
        members.length = mark.members;
        vars.length = mark.vars;
        step--;
      }
    }

    const last = vars[vars.length - 1];
    const floats = vars.filter((v) => v.dtype === 'f32' && v.name.startsWith('v'));
    const lossOf = floats.length > 0 && chance(0.9) ? floats[floats.length - 1] : last;
    if (lossOf.dtype !== 'f32') fail();
    if (hasEmpty(last) || hasEmpty(lossOf)) unsure();
    const text = ['model G {', ...decls, ...members, ...lets, `  output out = ${last.name}`, `  loss = mean(${lossOf.name})`, '}', ''].join('\n');
    return { text, predicted: verdict, mistakes };
  });
}

// ---- running a checked program ----------------------------------------------------------------------

/** A small deterministic pseudo-random stream, so the feeds do not depend on the generator's state. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function concreteShape(t: TensorType, sizes: ReadonlyMap<string, number>): number[] {
  return t.shape.map((d) => evaluate(d, sizes));
}

function randomTensor(dtype: DType, shape: number[], rand: () => number): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const values = Array.from({ length: n }, () => (dtype === 'f32' || dtype === 'f16' ? rand() * 4 - 2 : Math.floor(rand() * 4)));
  return tensor(dtype, shape, values);
}

function run(graph: Graph, b: number, seed: number): void {
  const sizes = new Map([['B', b]]);
  const rand = lcg(seed);
  const inputs = new Map(graph.inputs.map((i) => [i.name, randomTensor(i.value.type.dtype, concreteShape(i.value.type, sizes), rand)]));
  const params = new Map(graph.params.map((p) => [p.path, randomTensor(p.value.type.dtype, concreteShape(p.value.type, sizes), rand)]));
  const state = new Map(graph.state.map((s) => [s.path, tensor(s.value.type.dtype, concreteShape(s.value.type, sizes), 0)]));
  const result = interpretGraph(graph, { inputs, params, state }, { sizes });
  for (const [kind, declared, produced] of [
    ['output', graph.outputs, result.outputs],
    ['loss', graph.losses, result.losses],
  ] as const) {
    for (const [name, value] of declared) {
      const t = produced.get(name);
      if (!t) throw new Error(`${kind} ${name} was not produced`);
      const want = concreteShape(value.type, sizes);
      if (t.dtype !== value.type.dtype || t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        throw new Error(`${kind} ${name}: produced ${t.dtype}[${t.shape.join(', ')}], its type is ${value.type.dtype}[${want.join(', ')}] under B = ${b}`);
      }
      if (kind === 'loss' && t.shape.length !== 0) throw new Error(`loss ${name} is not a scalar`);
    }
  }
}

function holds(op: string, l: number, r: number): boolean {
  return { '==': l === r, '!=': l !== r, '<': l < r, '<=': l <= r, '>': l > r, '>=': l >= r }[op] ?? false;
}

// ---- the property ---------------------------------------------------------------------------------------

describe('soundness of shape checking against the interpreter', () => {
  it(`generated programs: accepted ones verify and run with their declared shapes, rejected ones have clean diagnostics (seed ${SEED})`, () => {
    console.log(`soundness.property: seed ${SEED} (replay with DLC_SEED=${SEED}), ${RUNS} programs`);
    const counts = { constrained: 0, accepted: 0, rejected: 0, predictedAccept: 0, predictedReject: 0, unpredictable: 0, disagreements: 0, diagnostics: 0 };
    const codes = new Map<string, number>();
    const disagreements: string[] = [];
    const stdlib = stdlibModules().sources;
    const inBounds = (s: { file: string; start: number; end: number }, text: string) => {
      const len = s.file === FILE ? text.length : stdlib.get(s.file)?.length;
      return len !== undefined && Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start <= s.end && s.end <= len;
    };
    let programIndex = 0;

    fc.assert(
      fc.property(programArbitrary(), ({ text, predicted, mistakes }) => {
        programIndex++;
        const result = checkSource(text, FILE);
        // warnings (W0301: a generated broadcast may pair the batch with itself) are not mistakes
        const errors = result.diagnostics.filter((d) => d.severity === 'error');
        const accepted = errors.length === 0;
        if (predicted === 'unknown') counts.unpredictable++;
        else {
          if (predicted === 'accept') counts.predictedAccept++;
          else counts.predictedReject++;
          if ((predicted === 'accept') !== accepted) {
            counts.disagreements++;
            if (disagreements.length < 5) disagreements.push(`predicted ${predicted}, got ${errors.map((d) => `${d.code} ${d.message}`).join('; ') || 'no errors'}:\n${text}`);
          }
        }
        if (accepted) {
          counts.accepted++;
          const graph = result.graphs.get('G');
          if (!graph) throw new Error(`no graph for an accepted program:\n${text}`);
          const problems = verifyGraph(graph);
          if (problems.length > 0) throw new Error(`verifyGraph: ${problems.join('; ')}\n${text}`);
          for (const b of [2, 3]) {
            // a program may require more of B than 2 or 3 (`x[1:][1:][0]` needs B >= 3): the interpreter must say so
            const sizes = new Map([['B', b]]);
            const unmet = graph.constraints.filter((c) => !holds(c.op, evaluate(c.left, sizes), evaluate(c.right, sizes)));
            try {
              run(graph, b, programIndex * 7 + b);
            } catch (e) {
              if (unmet.length > 0 && /^constraint/.test((e as Error).message)) {
                counts.constrained++;
                continue;
              }
              throw new Error(`interpreting with B = ${b}: ${(e as Error).message}\n${text}`);
            }
            if (unmet.length > 0) throw new Error(`the interpreter ran with B = ${b} though \`${unmet[0].text}\` does not hold\n${text}`);
          }
          return;
        }
        counts.rejected++;
        // no cascades: each diagnostic has its own root cause among the steps the generator got wrong
        if (predicted === 'reject' && errors.length > mistakes) {
          throw new Error(`${errors.length} errors for ${mistakes} mistakes: ${errors.map((d) => `${d.code} ${d.message}`).join('; ')}\n${text}`);
        }
        for (const d of result.diagnostics) {
          counts.diagnostics++;
          codes.set(d.code, (codes.get(d.code) ?? 0) + 1);
          if (!isCode(d.code)) throw new Error(`unregistered code ${d.code}\n${text}`);
          if (d.code === 'E0900') throw new Error(`internal error: ${d.message}\n${text}`);
          if (d.span.file !== FILE) throw new Error(`${d.code} ${d.message}: primary span in ${d.span.file}, not the user's file\n${text}`);
          if (!inBounds(d.span, text) || !d.secondary.every((l) => inBounds(l.span, text))) {
            throw new Error(`${d.code} ${d.message}: a span out of bounds\n${text}`);
          }
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );

    const total = counts.accepted + counts.rejected;
    console.log(
      `soundness.property: ${total} programs, ${counts.accepted} accepted (${((100 * counts.accepted) / total).toFixed(1)}%), ` +
        `${counts.rejected} rejected (${((100 * counts.rejected) / total).toFixed(1)}%), ${counts.diagnostics} diagnostics ` +
        `[${[...codes].sort().map(([c, n]) => `${c}: ${n}`).join(', ')}]; the generator predicted ${counts.predictedAccept} accept / ` +
        `${counts.predictedReject} reject / ${counts.unpredictable} unsure, ${counts.disagreements} disagreements; ` +
        `${counts.constrained} runs stopped by a size constraint`,
    );
    for (const d of disagreements) console.log(`soundness.property: disagreement: ${d}`);
    expect(counts.accepted / total).toBeGreaterThanOrEqual(0.2);
    // the generator's own shape model agrees with the checker wherever it dares to predict
    expect(disagreements, 'the checker and the generator disagree').toEqual([]);
    expect(counts.rejected / total).toBeGreaterThanOrEqual(0.2);
  });
});
