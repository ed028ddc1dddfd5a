// Horizontal fusion of optimizer updates: the per-parameter update kernels with one body become one fused_foreach over arenas.
//
// After elementwise fusion a training step updates each parameter with its own fused_elementwise
// kernels (Adam: the first moment, then the second moment and the parameter; a weight's first moment
// often rides in its gradient's matmul epilogue). WebGPU binds at most 8 storage buffers per kernel, so
// one kernel cannot take dozens of parameters one binding each; instead, as in PyTorch's foreach/fused
// optimizers and Apex's flat buffers, the tensors one kernel would update together live as ranges of a
// few shared buffers (arenas), at the same offsets in each, and the kernel runs once over the span:
//
//   - A candidate is a fused_elementwise node (or an elementwise primitive, as a body of one op) that belongs to exactly one parameter P (it reads P or P's
//     optimizer state `opt.<step>.P.<slot>`, or computes their new values, and nothing of another
//     parameter's), whose every input is a scalar or has P's shape and whose every output has P's shape.
//     P must be a trainable f32-or-integer parameter of at least 2 elements updated by this step only.
//   - Candidates with the same body, the same shared scalars (by value), and own tensors of the same dtypes
//     and kinds (parameter, state, temporary) position by position form a class.
//     The parameters of all classes get one order (by the set of classes each belongs to, so nested
//     classes such as "Adam's second moment and step for every parameter" and "the first moment for the
//     biases" are contiguous); each class is cut into runs of consecutive parameters, and each run of two
//     or more becomes one fused_foreach node.
//   - Each operand position of a run (own inputs and outputs) is an arena: its values for the run's
//     members, merged with every other position that shares a value (the first moment's new value is an
//     output of one run and an input of another). An arena holds parameters, or state buffers, or
//     temporaries, all of one dtype; it packs its members in the order above, each at a multiple of
//     `alignment` bytes (WebGPU's minStorageBufferOffsetAlignment), so a run's members sit at the same
//     relative offsets in every arena it binds. Parameter and state arenas are the model's (the
//     program's `arenas`), temporary arenas the step graph's (gradients, new moments, new values).
//   - A run is dropped when its values would give one value two places, or a member two values, or mix
//     kinds or dtypes in an arena, or make some kernel bind one temporary arena as an output and as an
//     input (WebGPU forbids a buffer to be writable and read-only in one dispatch; two writable bindings
//     of one buffer need only be disjoint ranges, which an arena's members are), or make a cycle.
//
// The result computes exactly what the input does (fused_foreach interprets each member with
// fused_elementwise's interpreter). Every other kernel keeps binding each tensor as its own range.
import '../ops/index.ts';
import { asFusedElementwise, drawsRandom, FUSED_OP } from '../ops/fused.ts';
import { FUSED_FOREACH_OP } from '../ops/fused-foreach.ts';
import type { Attrs, DType, Graph, Node, StateInfo, Value } from '../ir/types.ts';
import { dimEquals, isConcrete } from '../shapes/dim.ts';

/** WebGPU's default minStorageBufferOffsetAlignment, in bytes. */
export const DEFAULT_ARENA_ALIGNMENT = 256;

/** A tensor's place in an arena: `key` is a parameter or state path (model arenas) or a value id (temporary arenas). */
export interface ArenaMember<K> {
  readonly key: K;
  /** Elements (4 bytes each) from the arena's start, a multiple of the alignment. */
  readonly offset: number;
  readonly size: number;
}

export interface ModelArena {
  readonly kind: 'param' | 'state';
  readonly dtype: DType;
  /** Elements. */
  readonly size: number;
  readonly members: readonly ArenaMember<string>[];
}

export interface TempArena {
  readonly dtype: DType;
  readonly size: number;
  readonly members: readonly ArenaMember<number>[];
}

/** One fused_foreach node: the parameters it updates, in arena order. */
export interface UpdateRun {
  readonly step: number;
  readonly params: readonly string[];
}

export interface UpdateFusion {
  readonly steps: readonly Graph[];
  /** The model's parameter and state arenas over all steps. */
  readonly arenas: readonly ModelArena[];
  /** Per step, its temporary arenas. */
  readonly temps: readonly (readonly TempArena[])[];
  readonly runs: readonly UpdateRun[];
  readonly alignment: number;
}

/** The parameter a state path `opt.<step>.<param path>.<slot>` belongs to. */
function optimizerStateOwner(path: string): string | undefined {
  return /^opt\.[^.]+\.(.+)\.[^.]+$/.exec(path)?.[1];
}

const ALIASING = new Set(['reshape', 'stop_gradient']);
const numelOf = (v: Value): number | undefined => (v.type.shape.every(isConcrete) ? (v.type.shape as number[]).reduce((a, b) => a * b, 1) : undefined);
const sameShape = (a: Value, b: Value) => a.type.shape.length === b.type.shape.length && a.type.shape.every((d, i) => dimEquals(d, b.type.shape[i]));

/** A node's body in fused_elementwise's encoding: its own, or a lone elementwise primitive's. */
function bodyOf(n: Node): Attrs | undefined {
  // a body that reads its inputs through views is not elementwise in them; one that draws random
  // numbers draws at its own elements' indices, not at an arena's
  if (n.op === FUSED_OP) return n.attrs.views === undefined && !drawsRandom(n.attrs) ? { ops: n.attrs.ops, outputs: n.attrs.outputs } : undefined;
  return n.inputs.length > 3 ? undefined : asFusedElementwise(n)?.attrs;
}

interface Candidate {
  readonly node: number;
  readonly body: Attrs;
  readonly param: string;
  readonly shared: readonly boolean[];
}

interface Run {
  readonly body: Attrs;
  readonly nodes: readonly number[];
  readonly params: readonly string[];
  readonly shared: readonly boolean[];
}

/** Where a value's storage is: a parameter or state buffer (by path) or a node's output (by the id of the value that owns the buffer). */
type Place = { readonly kind: 'param' | 'state'; readonly key: string } | { readonly kind: 'temp'; readonly key: number };

interface ArenaDraft {
  readonly kind: 'param' | 'state' | 'temp';
  readonly dtype: DType;
  /** Member parameter -> the place's key. */
  readonly byParam: Map<string, string | number>;
  readonly runs: Set<number>;
}

/** Updates of all steps fused (see the file comment); `alignment` in bytes (default 256). Pure. */
export function fuseUpdates(steps: readonly Graph[], options: { readonly alignment?: number } = {}): UpdateFusion {
  const alignment = options.alignment ?? DEFAULT_ARENA_ALIGNMENT;
  if (!Number.isInteger(alignment / 4) || alignment < 4) throw new Error(`arena alignment ${alignment} is not a multiple of 4 bytes`);
  const updatedBy = new Map<string, number>();
  for (const g of steps) for (const p of g.params) if (p.update) updatedBy.set(p.path, (updatedBy.get(p.path) ?? 0) + 1);
  const out: Graph[] = [];
  const arenas: ModelArena[] = [];
  const temps: TempArena[][] = [];
  const runs: UpdateRun[] = [];
  steps.forEach((g, s) => {
    const r = fuseStep(g, alignment / 4, (path) => updatedBy.get(path) === 1);
    out.push(r.graph);
    arenas.push(...r.arenas);
    temps.push(r.temps);
    runs.push(...r.runs.map((params) => ({ step: s, params })));
  });
  return { steps: out, arenas, temps, runs, alignment };
}

function fuseStep(g: Graph, align: number, updatedHereOnly: (path: string) => boolean): { graph: Graph; arenas: ModelArena[]; temps: TempArena[]; runs: string[][] } {
  const nodes = g.nodes;
  const producer = new Map<number, number>();
  nodes.forEach((n, k) => n.outputs.forEach((v) => producer.set(v.id, k)));
  const params = new Map(g.params.map((p) => [p.path, p]));
  const paramAt = new Map(g.params.map((p) => [p.value.id, p.path]));
  const stateAt = new Map(g.state.map((x) => [x.value.id, x.path]));
  const inputIds = new Set(g.inputs.map((i) => i.value.id));

  // the parameter each value belongs to: the parameter, its optimizer state, and their new values
  const owner = new Map<number, string>();
  for (const p of g.params) {
    owner.set(p.value.id, p.path);
    if (p.update) owner.set(p.update.id, p.path);
  }
  for (const x of g.state) {
    const path = optimizerStateOwner(x.path);
    if (path === undefined || !params.has(path)) continue;
    owner.set(x.value.id, path);
    if (x.update) owner.set(x.update.id, path);
  }
  const eligible = (path: string): boolean => {
    const p = params.get(path)!;
    const size = numelOf(p.value);
    return !!p.update && p.value.type.dtype !== 'f16' && size !== undefined && size >= 2 && updatedHereOnly(path);
  };

  // where a value's storage is: through reshapes to the buffer it aliases
  const placeOf = (v: Value): Place | undefined => {
    let at = v;
    for (let p = producer.get(at.id); p !== undefined && ALIASING.has(nodes[p].op); p = producer.get(at.id)) at = nodes[p].inputs[0];
    if (paramAt.has(at.id)) return { kind: 'param', key: paramAt.get(at.id)! };
    if (stateAt.has(at.id)) return { kind: 'state', key: stateAt.get(at.id)! };
    if (inputIds.has(at.id) || !producer.has(at.id)) return undefined;
    return { kind: 'temp', key: at.id };
  };

  // ---- candidates and their classes ----------------------------------------------------------------
  const classes = new Map<string, Candidate[]>();
  nodes.forEach((n, k) => {
    const body = bodyOf(n);
    if (!body || [...n.inputs, ...n.outputs].some((v) => v.type.dtype === 'f16')) return;
    const owners = new Set([...n.inputs, ...n.outputs].flatMap((v) => (owner.has(v.id) ? [owner.get(v.id)!] : [])));
    if (owners.size !== 1) return;
    const [path] = owners;
    if (!eligible(path)) return;
    const p = params.get(path)!.value;
    const shared = n.inputs.map((v) => numelOf(v) === 1);
    if (!n.outputs.every((v) => sameShape(v, p)) || !n.inputs.every((v, j) => shared[j] || sameShape(v, p))) return;
    // shared scalars by value; own tensors by dtype and by where they live (a parameter, state, a temporary)
    const own = (v: Value) => `${v.type.dtype}:${placeOf(v)?.kind}`;
    const signature = JSON.stringify([body.ops, body.outputs, n.inputs.map((v, j) => (shared[j] ? v.id : own(v))), n.outputs.map(own)]);
    const list = classes.get(signature) ?? [];
    if (!list.some((c) => c.param === path)) list.push({ node: k, body, param: path, shared });
    classes.set(signature, list);
  });
  const kept = [...classes.values()].filter((c) => c.length >= 2);
  if (kept.length === 0) return { graph: g, arenas: [], temps: [], runs: [] };

  // ---- one order of the parameters, each class cut into runs of consecutive parameters -------------
  const memberOf = new Map<string, number[]>();
  kept.forEach((c, i) => c.forEach((m) => memberOf.set(m.param, [...(memberOf.get(m.param) ?? []), i])));
  const paramIndex = new Map(g.params.map((p, i) => [p.path, i]));
  const key = (path: string) => memberOf.get(path)!.map((i) => String(i).padStart(6, '0')).join(',');
  const order = [...memberOf.keys()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : paramIndex.get(a)! - paramIndex.get(b)!));
  const position = new Map(order.map((p, i) => [p, i]));
  let candidates: Run[] = [];
  for (const c of kept) {
    const sorted = [...c].sort((a, b) => position.get(a.param)! - position.get(b.param)!);
    let run: Candidate[] = [];
    const flush = () => {
      if (run.length >= 2) candidates.push({ body: run[0].body, nodes: run.map((m) => m.node), params: run.map((m) => m.param), shared: run[0].shared });
      run = [];
    };
    for (const m of sorted) {
      if (run.length > 0 && position.get(m.param) !== position.get(run[run.length - 1].param)! + 1) flush();
      run.push(m);
    }
    flush();
  }

  /** Each run's own operand positions as (values per member), inputs then outputs. */
  const positions = (r: Run): Value[][] => {
    const first = nodes[r.nodes[0]];
    const ins = first.inputs.flatMap((_, j) => (r.shared[j] ? [] : [r.nodes.map((k) => nodes[k].inputs[j])]));
    const outs = first.outputs.map((_, o) => r.nodes.map((k) => nodes[k].outputs[o]));
    return [...ins, ...outs];
  };

  /** The arenas of a set of runs, or the runs to drop because an arena would be inconsistent. */
  const draftArenas = (rs: readonly Run[]): { arenas: ArenaDraft[]; arenaOf: Map<string, number> } | { drop: Set<number> } => {
    // union-find over (run, position): positions sharing a place are one arena
    const slots: { run: number; values: Value[] }[] = [];
    rs.forEach((r, ri) => positions(r).forEach((values) => slots.push({ run: ri, values })));
    const parent = slots.map((_, i) => i);
    const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
    const slotOfPlace = new Map<string, number>();
    const places = slots.map((sl) => sl.values.map(placeOf));
    for (const [i, ps] of places.entries()) {
      for (const p of ps) {
        if (!p) return { drop: new Set([slots[i].run]) };
        const id = `${p.kind}:${p.key}`;
        const other = slotOfPlace.get(id);
        if (other === undefined) slotOfPlace.set(id, i);
        else parent[find(i)] = find(other);
      }
    }
    const drafts = new Map<number, ArenaDraft>();
    const arenaOf = new Map<string, number>();
    for (const [i, sl] of slots.entries()) {
      const root = find(i);
      const first = places[i][0]!;
      const a: ArenaDraft = drafts.get(root) ?? { kind: first.kind, dtype: sl.values[0].type.dtype, byParam: new Map(), runs: new Set() };
      drafts.set(root, a);
      a.runs.add(sl.run);
      const bad = () => ({ drop: new Set(a.runs) });
      for (const [m, path] of rs[sl.run].params.entries()) {
        const p = places[i][m]!;
        if (p.kind !== a.kind || sl.values[m].type.dtype !== a.dtype) return bad();
        const had = a.byParam.get(path);
        if (had !== undefined && had !== p.key) return bad();
        a.byParam.set(path, p.key);
      }
    }
    const list = [...drafts.values()];
    for (const [ai, a] of list.entries()) {
      const keys = new Set(a.byParam.values());
      if (keys.size !== a.byParam.size) return { drop: new Set(a.runs) }; // one place for two members
      for (const k of keys) arenaOf.set(`${a.kind}:${k}`, ai);
    }
    // no kernel may bind a temporary arena as an output and as an input (it may write several of its
    // members: writable bindings of one buffer need only be disjoint, and members are)
    const merged = new Map<number, number>();
    rs.forEach((r, ri) => r.nodes.forEach((k) => merged.set(k, ri)));
    const arenaOfValue = (v: Value): number | undefined => {
      const p = placeOf(v);
      return p && p.kind === 'temp' ? arenaOf.get(`temp:${p.key}`) : undefined;
    };
    for (const [k, n] of nodes.entries()) {
      if (merged.has(k) || ALIASING.has(n.op)) continue;
      const reads = n.inputs.map(arenaOfValue).filter((a) => a !== undefined);
      const writes = n.outputs.map(arenaOfValue).filter((a) => a !== undefined);
      const clash = writes.find((a) => reads.includes(a));
      if (clash !== undefined) return { drop: new Set(list[clash].runs) };
    }
    for (const [ri, r] of rs.entries()) {
      const ps = positions(r).map((values) => arenaOfValue(values[0]));
      const nOut = nodes[r.nodes[0]].outputs.length;
      const outs = ps.slice(ps.length - nOut);
      if (outs.some((a, i) => a !== undefined && ps.indexOf(a) !== ps.length - nOut + i)) return { drop: new Set([ri]) };
    }
    return { arenas: list, arenaOf };
  };

  const settle = (rs: Run[]): { runs: Run[]; arenas: ArenaDraft[] } => {
    for (;;) {
      const d = draftArenas(rs);
      if ('drop' in d) {
        rs = rs.filter((_, i) => !d.drop.has(i));
        continue;
      }
      return { runs: rs, arenas: d.arenas };
    }
  };
  candidates = settle(candidates).runs;
  // a run that would make a cycle between kernels is left unfused (checked one run at a time, in order)
  let accepted: Run[] = [];
  for (const r of candidates) if (topoOrder(g, [...accepted, r]) !== undefined) accepted = [...accepted, r];
  const { runs: final, arenas: settled } = settle(accepted);
  if (final.length === 0) return { graph: g, arenas: [], temps: [], runs: [] };

  // ---- in place: an output position of a run whose members are the new values of the tensors at one
  // of its own input positions (parameters, optimizer states), whose temporary arena is this position's
  // alone, and whose old values nothing after the run reads, is written over the input: the kernel
  // binds the input's arena range read and write, and the step neither keeps the temporary arena nor
  // copies it back
  const ordered = topoOrder(g, final)!;
  const keyOf = (v: Value): string | undefined => {
    const p = placeOf(v);
    return p && `${p.kind}:${p.key}`;
  };
  const newValueOf = new Map<number, string>();
  for (const p of g.params) if (p.update) newValueOf.set(p.update.id, `param:${p.path}`);
  for (const x of g.state) if (x.update) newValueOf.set(x.update.id, `state:${x.path}`);
  const inPlace = final.map((): [number, number][] => []);
  const dropped = new Set<ArenaDraft>();
  final.forEach((r, ri) => {
    const read = new Set<string>(); // places read after the run, or by the graph's results
    for (const u of ordered.slice(ordered.indexOf(-1 - ri) + 1)) {
      for (const v of u < 0 ? final[-1 - u].nodes.flatMap((k) => nodes[k].inputs) : nodes[u].inputs) read.add(keyOf(v) ?? '');
    }
    // the graph's results, and the step's update copies, read after every kernel
    for (const v of [...g.outputs.values(), ...g.losses.values(), ...g.metrics.values(), ...[...g.params, ...g.state].flatMap((x) => (x.update ? [x.update] : []))]) read.add(keyOf(v) ?? '');
    const first = nodes[r.nodes[0]];
    first.outputs.forEach((_, o) => {
      const outs = r.nodes.map((k) => nodes[k].outputs[o]);
      const olds = outs.map((v) => newValueOf.get(v.id));
      if (olds.some((x) => x === undefined || read.has(x))) return;
      const reads = (i: number) => !r.shared[i] && r.nodes.every((k, m) => keyOf(nodes[k].inputs[i]) === olds[m]);
      const j = first.inputs.findIndex((_, i) => reads(i));
      // read at one position only: a second, read-only binding would overlap the written one
      if (first.inputs.some((_, i) => i !== j && keyOf(first.inputs[i]) === olds[0])) return;
      const arenaOf = (v: Value): ArenaDraft | undefined => {
        const p = placeOf(v);
        return p && settled.find((a) => a.kind === p.kind && a.byParam.get(r.params[0]) === p.key);
      };
      const temp = arenaOf(outs[0]);
      if (!temp || temp.kind !== 'temp' || temp.runs.size !== 1 || (j >= 0 && inPlace[ri].some(([, i]) => i === j))) return;
      if (j < 0) {
        // new values of tensors the run does not read (AdamW's parameters after the decay run): their arena
        // must hold exactly this run's members, in this order, and no input of the run may be in it
        const home = settled.find((a) => a.kind !== 'temp' && `${a.kind}:${a.byParam.get(r.params[0])}` === olds[0]);
        if (!home || home.byParam.size !== r.params.length || !r.params.every((p, m) => `${home.kind}:${home.byParam.get(p)}` === olds[m])) return;
        if (first.inputs.some((v, i) => !r.shared[i] && arenaOf(v) === home)) return;
      }
      inPlace[ri].push([o, j]);
      dropped.add(temp);
    });
  });
  const drafts = settled.filter((a) => !dropped.has(a));

  // ---- layouts: each arena packs its members in the parameter order, aligned --------------------------
  const sizeOf = (path: string) => numelOf(params.get(path)!.value)!;
  const layout = (a: ArenaDraft) => {
    const members: ArenaMember<string | number>[] = [];
    let at = 0;
    for (const path of order) {
      if (!a.byParam.has(path)) continue;
      members.push({ key: a.byParam.get(path)!, offset: at, size: sizeOf(path) });
      at += Math.ceil(sizeOf(path) / align) * align;
    }
    return { members, size: at };
  };
  const modelArenas: ModelArena[] = [];
  const tempArenas: TempArena[] = [];
  for (const a of drafts) {
    const { members, size } = layout(a);
    if (a.kind === 'temp') tempArenas.push({ dtype: a.dtype, size, members: members as ArenaMember<number>[] });
    else modelArenas.push({ kind: a.kind, dtype: a.dtype, size, members: members as ArenaMember<string>[] });
  }

  // ---- companion state arenas: a temporary arena whose members are mostly new values of optimizer
  // states outside the arenas (Adam's first moments of the weights, computed in the gradients' matmul
  // epilogues, which the runs read but do not update) gets a state arena of the same layout holding
  // those states (the other members' ranges stay empty: at most a tenth of it), so that the step's
  // copies of the new values are one copy (the runtime merges copies between ranges at the same
  // distance, empty ranges between them included) instead of one per parameter
  const inArena = new Set(modelArenas.flatMap((a) => a.members.map((m) => m.key)));
  const stateOfTemp = new Map<number, StateInfo>();
  for (const x of g.state) {
    const p = x.update && placeOf(x.update);
    if (p?.kind === 'temp' && optimizerStateOwner(x.path) !== undefined && !inArena.has(x.path)) stateOfTemp.set(p.key, x);
  }
  for (const t of tempArenas) {
    const members = t.members.flatMap((m) => {
      const x = stateOfTemp.get(m.key);
      return x && x.value.type.dtype === t.dtype && numelOf(x.value) === m.size ? [{ key: x.path, offset: m.offset, size: m.size }] : [];
    });
    const covered = members.reduce((a, m) => a + m.size, 0);
    if (members.length >= 2 && covered >= 0.9 * t.members.reduce((a, m) => a + m.size, 0)) modelArenas.push({ kind: 'state', dtype: t.dtype, size: t.size, members });
  }

  // ---- the fused nodes ---------------------------------------------------------------------------------
  const fusedNodes = final.map((r, ri): Node => {
    const first = nodes[r.nodes[0]];
    const offsets: number[] = [];
    let at = 0;
    for (const path of r.params) {
      offsets.push(at);
      at += Math.ceil(sizeOf(path) / align) * align;
    }
    return {
      op: FUSED_FOREACH_OP,
      inputs: first.inputs.flatMap((v, j) => (r.shared[j] ? [v] : r.nodes.map((k) => nodes[k].inputs[j]))),
      attrs: { ...r.body, shared: [...r.shared], offsets, ...(inPlace[ri].length > 0 ? { in_place: inPlace[ri] } : {}) },
      outputs: first.outputs.flatMap((_, o) => r.nodes.map((k) => nodes[k].outputs[o])),
      span: first.span,
    };
  });
  const graph: Graph = { ...g, nodes: ordered.map((u) => (u < 0 ? fusedNodes[-1 - u] : nodes[u])) };
  return { graph, arenas: modelArenas, temps: tempArenas, runs: final.map((r) => [...r.params]) };
}

/**
 * The graph's nodes in a topological order with each run's nodes as one unit (-1 - run index), each unit
 * as early as the original order allows; undefined when the runs make a cycle.
 */
function topoOrder(g: Graph, runs: readonly Run[]): number[] | undefined {
  const nodes = g.nodes;
  const unitOf = nodes.map((_, k) => k);
  runs.forEach((r, i) => r.nodes.forEach((k) => (unitOf[k] = -1 - i)));
  const producer = new Map<number, number>();
  nodes.forEach((n, k) => n.outputs.forEach((v) => producer.set(v.id, k)));
  const deps = new Map<number, Set<number>>();
  const keyOf = new Map<number, number>();
  nodes.forEach((n, k) => {
    const u = unitOf[k];
    if (!keyOf.has(u)) keyOf.set(u, k);
    const d = deps.get(u) ?? new Set<number>();
    deps.set(u, d);
    for (const v of n.inputs) {
      const p = producer.get(v.id);
      if (p !== undefined && unitOf[p] !== u) d.add(unitOf[p]);
    }
  });
  const waiting = new Map<number, number>();
  const dependents = new Map<number, number[]>();
  for (const [u, d] of deps) {
    waiting.set(u, d.size);
    for (const x of d) {
      const list = dependents.get(x);
      if (list) list.push(u);
      else dependents.set(x, [u]);
    }
  }
  // a binary heap of units by their first node's index
  const heap: number[] = [];
  const less = (a: number, b: number) => keyOf.get(a)! < keyOf.get(b)!;
  const push = (u: number) => {
    heap.push(u);
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!less(heap[i], heap[p])) break;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l], heap[m])) m = l;
        if (r < heap.length && less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  for (const [u, w] of waiting) if (w === 0) push(u);
  const order: number[] = [];
  while (heap.length > 0) {
    const u = pop();
    order.push(u);
    for (const t of dependents.get(u) ?? []) {
      const w = waiting.get(t)! - 1;
      waiting.set(t, w);
      if (w === 0) push(t);
    }
  }
  return order.length === deps.size ? order : undefined;
}
