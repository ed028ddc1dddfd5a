// Memory planning: the temporaries of a lowered graph share GPU buffers ("slots") when their lifetimes do not overlap.
//
// A temporary is live from the first dispatch that touches it (the first that writes it, for any
// temporary the graph computes) to the last dispatch that reads it; a graph output or the source of an
// update stays live to the end, because outputs are read back after the graph and the update copies run
// after every dispatch. A multi-dispatch node (concat writes one output in several dispatches) keeps
// its output live across all of them, since every dispatch that writes it is a use. Live ranges are
// inclusive dispatch indices, so a dispatch's inputs and outputs are always live together and so never
// share a slot; that rule (WebGPU forbids a writable binding to alias another binding of the same
// dispatch) is also checked pair by pair, apart from the ranges, so it holds whatever the ranges say.
//
// Inputs, parameters and state are never planned. A temporary that no dispatch writes keeps a buffer of
// its own (its contents are the zeros WebGPU creates it with, which a shared buffer would not keep).
// A view (a range of a temporary arena, see compiler/optimize/fuse-updates.ts) is planned as its arena:
// every use of a view is a use of the arena, which is one temporary to the planner.
//
// Sizes are symbolic (the batch B), so a slot has no size of its own: the runtime sizes its buffer for
// the largest member at the bound sizes (runtime/memory.ts), which is right for every B. The sizes
// only guide the assignment: temporaries are placed largest first (at `sizes`, every unknown size at
// `defaultSize`) into the first slot where they conflict with no member, the greedy-by-size heuristic
// of TFLite's arena planner, so a slot's first member is usually its largest. (A linear scan in start
// order with best fit was measured too: 10-50% more memory on the examples.) A slot's ranges are kept
// sorted, so each test is a binary search: the LSTM example's 31,000-buffer training graph plans in
// under a second.
import type { BufferDecl, GraphProgram, ModelProgram, SizeExpr } from '../../runtime/program.ts';
import { evalSize, sizeNames } from '../../runtime/sizes.ts';
import { viewBase } from '../../runtime/memory.ts';
import { onceTemps } from './once.ts';

export { viewBase, allocations, bufferBytes, formatBytes, memoryReport, type GraphMemory, type MemoryReport } from '../../runtime/memory.ts';

/** Inclusive dispatch indices; `end === kernels.length` means live to the end of the graph (read back or copied). */
export interface LiveRange {
  readonly start: number;
  readonly end: number;
}

export interface PlanOptions {
  /** Sizes to weigh the temporaries at (e.g. the train block's batch); others take `defaultSize`. */
  readonly sizes?: ReadonlyMap<string, number>;
  /** Default 32. */
  readonly defaultSize?: number;
}

/** Buffers the graph keeps to the end: outputs (losses, metrics) and update sources. */
function keptToEnd(g: GraphProgram): Set<number> {
  return new Set([...Object.values(g.outputs), ...g.updates.map((u) => u.source)].map((b) => viewBase(g, b)));
}

/**
 * The live range of every temporary some dispatch touches or the graph keeps to the end. A temporary
 * that is neither has no range (it is dead, and can go in any slot).
 */
export function liveRanges(g: GraphProgram): Map<number, LiveRange> {
  const end = g.kernels.length;
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  g.kernels.forEach((k, n) => {
    for (const b of [...k.inputs, ...k.outputs].map((x) => viewBase(g, x))) {
      if (g.buffers[b]?.kind !== 'temp') continue;
      if (!first.has(b)) first.set(b, n);
      last.set(b, n);
    }
  });
  for (const b of keptToEnd(g)) {
    if (g.buffers[b]?.kind !== 'temp') continue;
    if (!first.has(b)) first.set(b, 0);
    last.set(b, end);
  }
  return new Map([...first].map(([b, s]) => [b, { start: s, end: last.get(b)! }]));
}

/** Temporaries written by some dispatch. */
function writtenTemps(g: GraphProgram): Set<number> {
  const out = new Set<number>();
  for (const k of g.kernels) for (const b of k.outputs.map((x) => viewBase(g, x))) if (g.buffers[b]?.kind === 'temp') out.add(b);
  return out;
}

/** For each temporary, the buffers some dispatch binds together with it while one of them is written. */
function boundTogether(g: GraphProgram): Map<number, Set<number>> {
  const out = new Map<number, Set<number>>();
  const pair = (a: number, b: number) => {
    if (a === b) return;
    for (const [x, y] of [[a, b], [b, a]]) {
      let s = out.get(x);
      if (!s) out.set(x, (s = new Set()));
      s.add(y);
    }
  };
  for (const k of g.kernels) for (const o of k.outputs) for (const x of [...k.inputs, ...k.outputs]) pair(viewBase(g, o), viewBase(g, x));
  return out;
}

function weigh(shape: readonly SizeExpr[], sizes: ReadonlyMap<string, number>): number {
  let n = 1;
  for (const d of shape) {
    const v = evalSize(d, sizes);
    n *= Number.isFinite(v) && v > 0 ? v : 0;
  }
  return n;
}

/** Whether a slot's live ranges (disjoint, sorted by start) overlap `r`. */
function overlaps(ranges: readonly LiveRange[], r: LiveRange): boolean {
  // the last range starting at or before r.end is the only one that can reach into r
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].start <= r.end) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && ranges[lo - 1].end >= r.start;
}

/**
 * The graph with its temporaries assigned to memory slots (`BufferDecl.slot`, `GraphProgram.slots`).
 * Pure: the result is a new program; an existing plan is replaced.
 */
export function planMemory(g: GraphProgram, options: PlanOptions = {}): GraphProgram {
  const ranges = liveRanges(g);
  const written = writtenTemps(g);
  const together = boundTogether(g);
  const names = new Set<string>();
  for (const b of g.buffers) if (b.kind === 'temp') for (const d of b.shape) sizeNames(d, names);
  const sizes = new Map(options.sizes ?? []);
  for (const n of names) if (!sizes.has(n)) sizes.set(n, options.defaultSize ?? 32);

  const temps: { at: number; bytes: number; range?: LiveRange }[] = [];
  g.buffers.forEach((b, at) => {
    if (b.kind === 'temp' && !b.view) temps.push({ at, bytes: weigh(b.shape, sizes), range: ranges.get(at) });
  });
  // largest first; among equals, the earlier first, so the plan is deterministic
  temps.sort((a, b) => b.bytes - a.bytes || (a.range?.start ?? -1) - (b.range?.start ?? -1) || a.at - b.at);
  const slots: { members: number[]; ranges: LiveRange[]; shared: boolean }[] = [];
  const slotOf = new Map<number, number>();
  const kept = onceTemps(g);
  for (const t of temps) {
    // a temporary no dispatch writes keeps its own buffer, and so does one a once kernel touches (its
    // value must last from the run that computed it to every later one); one nothing touches fits anywhere
    const shared = (written.has(t.at) || !t.range) && !kept.has(t.at);
    const blocked = new Set<number>();
    for (const p of together.get(t.at) ?? []) if (slotOf.has(p)) blocked.add(slotOf.get(p)!);
    let s = -1;
    if (shared) {
      for (let i = 0; i < slots.length; i++) {
        if (!slots[i].shared || blocked.has(i) || (t.range && overlaps(slots[i].ranges, t.range))) continue;
        s = i;
        break;
      }
    }
    if (s < 0) {
      s = slots.length;
      slots.push({ members: [], ranges: [], shared });
    }
    const slot = slots[s];
    slot.members.push(t.at);
    if (t.range) {
      const r = t.range;
      let at = slot.ranges.length;
      while (at > 0 && slot.ranges[at - 1].start > r.start) at--;
      slot.ranges.splice(at, 0, r);
    }
    slotOf.set(t.at, s);
  }
  // number the slots by their first member's position in the graph, so a plan reads in program order
  const firstAt = slots.map((slot) => Math.min(...slot.members));
  const renumber = new Map([...slots.keys()].sort((a, b) => firstAt[a] - firstAt[b]).map((old, fresh) => [old, fresh]));
  const buffers: BufferDecl[] = g.buffers.map((b, at) => {
    if (b.kind !== 'temp' || b.view) return b;
    const { slot: _old, ...rest } = b;
    void _old;
    return { ...rest, slot: renumber.get(slotOf.get(at)!)! };
  });
  return { ...g, buffers, slots: slots.length };
}

/** Every graph of a model planned. */
export function planModelMemory(program: ModelProgram, options: PlanOptions = {}): ModelProgram {
  const { predict, evaluate, steps, totals, stepTotals } = program.graphs;
  return {
    ...program,
    graphs: {
      predict: planMemory(predict, options),
      evaluate: planMemory(evaluate, options),
      steps: steps.map((g) => planMemory(g, options)),
      ...(totals ? { totals: planMemory(totals, options) } : {}),
      ...(stepTotals ? { stepTotals: Object.fromEntries(Object.entries(stepTotals).map(([k, g]) => [k, planMemory(g, options)])) } : {}),
    },
  };
}

/**
 * What is wrong with a graph's plan, in words (empty when it is sound): only temporaries other than views
 * have slots, every such temporary has one in range, no two temporaries of one slot are live at once, a
 * temporary no dispatch writes, or a once kernel touches, is alone in its slot, and no dispatch binds one
 * slot (or one buffer, or two views of one arena) as an output and as any other binding, save disjoint
 * views of one arena as outputs.
 */
export function checkPlan(g: GraphProgram): string[] {
  const problems: string[] = [];
  const count = g.slots ?? 0;
  g.buffers.forEach((b, i) => {
    if (b.kind !== 'temp' || b.view) {
      if ('slot' in b) problems.push(`buffer ${i} (${b.kind === 'temp' ? 'a view' : (b as BufferDecl).kind}) has a slot`);
    } else if (g.slots !== undefined && (b.slot === undefined || !Number.isInteger(b.slot) || b.slot < 0 || b.slot >= count)) {
      problems.push(`temporary ${i} has slot ${b.slot}, not one of the ${count} slots`);
    }
  });
  const slotOf = (at: number): string => {
    const i = viewBase(g, at);
    const b = g.buffers[i];
    return b?.kind === 'temp' && b.slot !== undefined ? `slot ${b.slot}` : `buffer ${i}`;
  };
  // two views of one arena that do not overlap may both be outputs (WebGPU needs writable bindings of
  // one buffer to be disjoint)
  const disjointViews = (a: number, b: number): boolean => {
    const [x, y] = [g.buffers[a], g.buffers[b]];
    if (x?.kind !== 'temp' || y?.kind !== 'temp' || !x.view || !y.view || x.view.buffer !== y.view.buffer) return false;
    const size = (d: typeof x) => (d.shape.every((e) => typeof e === 'number') ? (d.shape as number[]).reduce((p, q) => p * q, 1) : Infinity);
    return x.view.offset + size(x) <= y.view.offset || y.view.offset + size(y) <= x.view.offset;
  };
  g.kernels.forEach((k, n) => {
    for (const o of k.outputs) {
      const others = [...k.inputs, ...k.outputs.filter((x) => x !== o && !disjointViews(x, o))];
      for (const x of others) if (slotOf(x) === slotOf(o)) problems.push(`dispatch ${n} (${k.op}) binds ${slotOf(o)} as output ${o} and also as ${x}`);
    }
  });
  const ranges = liveRanges(g);
  const written = writtenTemps(g);
  const bySlot = new Map<number, number[]>();
  g.buffers.forEach((b, i) => {
    if (b.kind === 'temp' && !b.view && b.slot !== undefined) bySlot.set(b.slot, [...(bySlot.get(b.slot) ?? []), i]);
  });
  const kept = onceTemps(g);
  for (const [slot, members] of bySlot) {
    for (const m of members) {
      if (members.length > 1 && !written.has(m) && ranges.has(m)) problems.push(`temporary ${m} is never written but shares slot ${slot}`);
      if (members.length > 1 && kept.has(m)) problems.push(`temporary ${m} of a once kernel shares slot ${slot}`);
    }
    for (let a = 0; a < members.length; a++) {
      for (let b = a + 1; b < members.length; b++) {
        const ra = ranges.get(members[a]);
        const rb = ranges.get(members[b]);
        if (ra && rb && ra.start <= rb.end && rb.start <= ra.end) {
          problems.push(`temporaries ${members[a]} [${ra.start}, ${ra.end}] and ${members[b]} [${rb.start}, ${rb.end}] share slot ${slot} while both live`);
        }
      }
    }
  }
  return problems;
}
