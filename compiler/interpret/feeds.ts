// Seeded random feeds for a graph (inputs, parameters, state) at given sizes: for gradcheck, tests and tools.
import type { Graph, InitSpec } from '../ir/types.ts';
import { evaluate, freeVars } from '../shapes/dim.ts';
import type { Feeds } from './interpret.ts';
import { tensor, type Tensor } from './tensor.ts';

/** mulberry32: small, fast and seedable, so a failure can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sizes for every symbolic name in the graph's inputs: the given ones, else 2 for B and 3 for the rest. */
export function defaultSizes(g: Graph, given: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const sizes = new Map(given);
  for (const i of g.inputs) for (const d of i.value.type.shape) for (const v of freeVars(d)) if (!sizes.has(v)) sizes.set(v, v === 'B' ? 2 : 3);
  return sizes;
}

export interface FeedOptions {
  /** Exclusive upper bound of integer inputs by name (class labels, token ids); default 2. */
  readonly intRange?: Readonly<Record<string, number>>;
  /** Scale of parameter values (uniform in [-scale, scale]). */
  readonly paramScale?: number;
}

/**
 * The float inputs the graph casts to an integer dtype (`cast(features, i32)`, token ids read from a
 * CSV): drawn from (-1, 1) they would all truncate to 0, so they are drawn as whole numbers as integer
 * inputs are.
 */
export function wholeNumberInputs(g: Graph): Set<string> {
  const found = new Set<string>();
  for (const i of g.inputs) {
    if (i.value.type.dtype !== 'f32' && i.value.type.dtype !== 'f16') continue;
    const casts = g.nodes.some((n) => n.op === 'cast' && n.inputs[0]?.id === i.value.id && ['i32', 'u32'].includes(String(n.attrs.dtype)));
    if (casts) found.add(i.name);
  }
  return found;
}

export function randomFeeds(g: Graph, sizes: ReadonlyMap<string, number>, random: () => number, options: FeedOptions = {}): Feeds {
  const concrete = (shape: Graph['inputs'][number]['value']['type']['shape']) =>
    shape.map((d) => {
      const n = evaluate(d, sizes);
      if (!Number.isFinite(n)) throw new Error(`no size given for ${freeVars(d).join(', ')}`);
      return n;
    });
  const fill = (dtype: string, shape: number[], make: () => number): Tensor =>
    tensor(dtype as 'f32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, make));
  const whole = wholeNumberInputs(g);
  const floatOrInt = (dtype: string, hi: number, scale: number, wholeNumbers = false) => () =>
    (dtype === 'f32' || dtype === 'f16') && !wholeNumbers ? (random() * 2 - 1) * scale : Math.floor(random() * hi);
  const initValue = (init: InitSpec) => (init.kind === 'ones' ? 1 : init.kind === 'constant' ? (init.options.value ?? 0) : 0);
  return {
    inputs: new Map(g.inputs.map((i) => [i.name, fill(i.value.type.dtype, concrete(i.value.type.shape), floatOrInt(i.value.type.dtype, options.intRange?.[i.name] ?? 2, 1, whole.has(i.name)))])),
    params: new Map(g.params.map((p) => [p.path, fill(p.value.type.dtype, concrete(p.value.type.shape), floatOrInt(p.value.type.dtype, 2, options.paramScale ?? 0.3))])),
    state: new Map(
      g.state.map((s) => [
        s.path,
        s.path === 'rng.key' ? tensor('u32', [], [Math.floor(random() * 2 ** 32)]) : fill(s.value.type.dtype, concrete(s.value.type.shape), () => initValue(s.init)),
      ]),
    ),
  };
}
