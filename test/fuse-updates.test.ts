// Optimizer updates over arenas (compiler/optimize/fuse-updates.ts, fused_foreach): which parameters are grouped,
// that the arenas are laid out as the runtime binds them, that the update dispatches drop, and that
// training steps give bit-identical parameters and optimizer state with and without it, in the float64
// interpreter and on WebGPU (Dawn on lavapipe), including a saved and reloaded training state.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { compileTraining, type CompiledTraining } from '../compiler/frontend/train.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { checkPlan } from '../compiler/codegen/memory.ts';
import { FUSED_FOREACH_OP } from '../compiler/ops/fused-foreach.ts';
import { inferOp, isShapeError } from '../compiler/ops/registry.ts';
import { fuse } from '../compiler/optimize/fuse.ts';
import { DEFAULT_ARENA_ALIGNMENT, fuseUpdates } from '../compiler/optimize/fuse-updates.ts';
import { Model } from '../runtime/model.ts';
import type { GraphProgram, KernelDecl, ModelProgram } from '../runtime/program.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { evalShape } from '../runtime/sizes.ts';
import { argsOf, EXAMPLE_CASES, type ExampleCase } from './helpers.ts';

const SEED = 5;
const ALIGN = DEFAULT_ARENA_ALIGNMENT / 4;

function caseOf(model: string): ExampleCase {
  return EXAMPLE_CASES.find((c) => c.model === model)!;
}

function training(c: ExampleCase): CompiledTraining {
  const file = `examples/${c.file}.dl`;
  const t = compileTraining(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) });
  return t.trainings.find((x) => x.forward.name === c.model)!;
}

function programs(c: ExampleCase): { on: ModelProgram; off: ModelProgram } {
  const file = `examples/${c.file}.dl`;
  const text = readFileSync(file, 'utf8');
  const compile = (fuseUpdates: boolean) => {
    const r = compileSource(text, file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]), fuseUpdates });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    return r.programs.find((p) => p.model === c.model)!;
  };
  return { on: compile(true), off: compile(false) };
}

/** The step graphs after elementwise and epilogue fusion, the input the update pass takes. */
function fusedSteps(t: CompiledTraining): Graph[] {
  return t.steps.map((g) => fuse(g));
}

/**
 * How many parameters a fused_foreach kernel of a lowered graph updates, read from the program alone:
 * the member views of the temporary arena its first output is a range of, inside that range, or, for an
 * output written in place, the parameters or state in the range of the model's arena.
 */
function membersOf(program: ModelProgram, g: GraphProgram, k: KernelDecl): number {
  const span = g.buffers[k.outputs[0]];
  if (span.kind === 'arena') {
    return [...program.params, ...program.state].filter((d) => d.arena?.arena === span.arena && d.arena.offset >= span.offset && d.arena.offset < span.offset + span.size).length;
  }
  if (span.kind !== 'temp' || !span.view) throw new Error('a fused_foreach output is not an arena range');
  const { buffer, offset } = span.view;
  const end = offset + (span.shape[0] as number);
  const spans = new Set(g.kernels.filter((x) => x.op === FUSED_FOREACH_OP).flatMap((x) => [...x.inputs, ...x.outputs]));
  return g.buffers.filter((b, i) => !spans.has(i) && b.kind === 'temp' && b.view?.buffer === buffer && b.view.offset >= offset && b.view.offset < end).length;
}

describe('which parameters share an update kernel', () => {
  it('MnistMlp: the AdamW step of every parameter in one run, the biases\' first moments in another; aligned arenas', () => {
    const t = training(caseOf('MnistMlp'));
    const r = fuseUpdates(fusedSteps(t));
    const all = t.forward.params.map((p) => p.path).sort();
    const biases = all.filter((p) => p.endsWith('.b'));
    // the weights' first moments ride in their gradients' matmul epilogues; the biases' have a kernel each
    expect(r.runs.filter((run) => [...run.params].sort().join() === all.join()).length).toBeGreaterThanOrEqual(1);
    expect(r.runs.some((run) => [...run.params].sort().join() === biases.join())).toBe(true);
    for (const run of r.runs) expect(run.params.every((p) => all.includes(p))).toBe(true);
    // the parameters and both Adam moments live in arenas, at aligned offsets in one order
    const params = r.arenas.filter((a) => a.kind === 'param');
    expect(params.length).toBe(1);
    expect([...params[0].members.map((m) => m.key)].sort()).toEqual(all);
    const stateKeys = r.arenas.filter((a) => a.kind === 'state').flatMap((a) => a.members.map((m) => m.key));
    expect(stateKeys.some((k) => k.endsWith('.v'))).toBe(true);
    // every moment is in a state arena: the weights' first moments, computed in matmul epilogues and only
    // read by the runs, in a companion arena laid out as the temporary arena of their new values (the
    // biases' ranges of it empty)
    const moments = t.forward.params.flatMap((p) => [`opt.train.${p.path}.m`, `opt.train.${p.path}.v`]);
    expect(moments.filter((k) => !stateKeys.includes(k))).toEqual([]);
    const companions = r.arenas.filter((a) => a.kind === 'state' && a.members.every((m) => m.key.endsWith('.w.m')));
    expect(companions.length).toBe(1);
    const ranges = (a: { members: readonly { offset: number; size: number }[] }) => a.members.map((m) => `${m.offset}+${m.size}`);
    const temp = r.temps.flat().find((a) => a.size === companions[0].size && ranges(companions[0]).every((x) => ranges(a).includes(x)));
    expect(temp).toBeDefined();
    expect(companions[0].members.length).toBeLessThan(temp!.members.length);
    for (const a of [...r.arenas, ...r.temps.flat()]) {
      let end = 0;
      for (const m of a.members) {
        expect(m.offset % ALIGN, 'aligned').toBe(0);
        expect(m.offset, 'no overlap').toBeGreaterThanOrEqual(end);
        end = m.offset + m.size;
      }
      expect(a.size).toBeGreaterThanOrEqual(end);
    }
  });

  it('in place: the AdamW runs write every parameter and second moment over its old value; a malformed in_place is refused', () => {
    const t = training(caseOf('MnistMlp'));
    const r = fuseUpdates(fusedSteps(t));
    const g = r.steps[0];
    const pairs = g.nodes.filter((n) => n.op === FUSED_FOREACH_OP).flatMap((n) => ((n.attrs.in_place ?? []) as [number, number][]).map(([o, j]) => ({ n, o, j })));
    const newValue = new Map<number, string>([...g.params, ...g.state].flatMap((x) => (x.update ? [[x.update.id, x.path] as [number, string]] : [])));
    const written = new Set<string>();
    for (const { n, o, j } of pairs) {
      const members = (n.attrs.offsets as number[]).length;
      for (let m = 0; m < members; m++) {
        const path = newValue.get(n.outputs[o * members + m].id)!;
        expect(path).toBeDefined();
        // the input it is written over is that parameter's or state's old value; -1: the run does not read
        // it (AdamW's parameters, decayed by another run first)
        const old = [...g.params, ...g.state].find((x) => x.path === path)!;
        const shared = n.attrs.shared as boolean[];
        const at = shared.slice(0, j).reduce((a, sh) => a + (sh ? 1 : members), 0) + m;
        if (j >= 0) expect(n.inputs[at].id).toBe(old.value.id);
        else expect(n.inputs.some((v) => v.id === old.value.id)).toBe(false);
        written.add(path);
      }
    }
    for (const p of t.forward.params) {
      expect(written.has(p.path), p.path).toBe(true);
      expect(written.has(`opt.train.${p.path}.v`), `${p.path}.v`).toBe(true);
    }
    // no temporary arena holds a value written in place
    const temps = new Set(r.temps.flat().flatMap((a) => a.members.map((m) => m.key)));
    for (const { n, o } of pairs) expect(temps.has(n.outputs[o * (n.attrs.offsets as number[]).length].id)).toBe(false);
    const { n: node, j } = pairs.find((x) => x.j >= 0)!;
    for (const bad of [[[0, 99]], [[0, j], [1, j]], [[0, -1], [0, -1]], 'x']) {
      expect(isShapeError(inferOp(FUSED_FOREACH_OP, node.inputs.map((v) => v.type), { ...node.attrs, in_place: bad as never }))).toBe(true);
    }
  });

  it('CharGPT: one fused_foreach per group of identical bodies; embeddings, matrices, gains and biases all join', () => {
    const t = training(caseOf('CharGPT'));
    const steps = fusedSteps(t);
    const r = fuseUpdates(steps);
    const updated = new Set(r.runs.flatMap((x) => x.params));
    // every trained parameter (all of CharGPT's are at least 2 elements) is updated by some run
    expect([...updated].sort()).toEqual(t.steps[0].params.filter((p) => p.update).map((p) => p.path).sort());
    const foreach = r.steps[0].nodes.filter((n) => n.op === FUSED_FOREACH_OP);
    expect(foreach.length).toBe(r.runs.length);
    const members = r.runs.reduce((a, x) => a + x.params.length, 0);
    // the step loses one node per member beyond the first of each run
    expect(steps[0].nodes.length - r.steps[0].nodes.length).toBe(members - r.runs.length);
    expect(r.runs.length).toBeLessThanOrEqual(4);
    expect(members).toBeGreaterThanOrEqual(2 * updated.size);
  });

  it('a parameter updated by two steps, or alone in its class, keeps its own kernels', () => {
    const t = training(caseOf('MnistMlp'));
    const [g] = fusedSteps(t);
    // the same step twice: every parameter is updated by two steps
    expect(fuseUpdates([g, g]).runs).toEqual([]);
    // only one trainable parameter: no class has two members
    const one = { ...g, params: g.params.map((p, i) => (i === 0 ? p : { ...p, update: undefined })) };
    expect(fuseUpdates([one]).runs).toEqual([]);
    // GAN: each step's own parameters, in separate arenas
    const gan = fuseUpdates(fusedSteps(training(caseOf('Gan'))));
    const byStep = new Map<number, Set<string>>();
    for (const run of gan.runs) for (const p of run.params) byStep.set(run.step, (byStep.get(run.step) ?? new Set()).add(p));
    expect(byStep.size).toBe(2);
    const [d, gen] = [...byStep.values()];
    expect([...d].some((p) => gen.has(p))).toBe(false);
  });
});

describe('the fused step computes exactly what the unfused one does (float64 interpreter)', () => {
  for (const model of ['MnistMlp', 'CharGPT', 'Gan', 'Cifar10ResNet']) {
    it(model, () => {
      const c = caseOf(model);
      const steps = fusedSteps(training(c));
      const r = fuseUpdates(steps);
      steps.forEach((g, s) => {
        const after = r.steps[s];
        expect(verifyGraph(after)).toEqual([]);
        const feeds = randomFeeds(g, new Map(Object.entries(c.sizes)), seededRandom(SEED), { intRange: c.intRange ?? {} });
        const want = interpretGraph(g, feeds);
        const got = interpretGraph(after, feeds);
        for (const p of g.params) if (p.update) expect(Array.from(got.values.get(p.update.id)!.data), p.path).toEqual(Array.from(want.values.get(p.update.id)!.data));
        for (const [k, v] of want.state) expect(Array.from(got.state.get(k)!.data), k).toEqual(Array.from(v.data));
        for (const [k, v] of want.losses) expect(got.losses.get(k)!.data[0], k).toBe(v.data[0]);
      });
    });
  }
});

describe('dispatches per training step', () => {
  it('drop by one per parameter beyond the first of each run; arenas are in the program and the plans are sound', () => {
    const lines: string[] = [];
    for (const model of ['MnistMlp', 'CharGPT']) {
      const c = caseOf(model);
      const { on, off } = programs(c);
      const step = on.graphs.steps[0];
      const foreach = step.kernels.filter((k) => k.op === FUSED_FOREACH_OP);
      const members = foreach.map((k) => membersOf(on, step, k));
      expect(foreach.length).toBeGreaterThan(0);
      expect(members.every((n) => n >= 2)).toBe(true);
      const before = off.graphs.steps[0].kernels.length;
      const after = step.kernels.length;
      expect(before - after, model).toBe(members.reduce((a, n) => a + n - 1, 0));
      expect(on.arenas?.length).toBeGreaterThan(0);
      expect(off.arenas).toBeUndefined();
      // every arena member's range is inside its arena; parameter names and shapes are unchanged
      expect(on.params.map((p) => [p.path, p.shape])).toEqual(off.params.map((p) => [p.path, p.shape]));
      for (const d of [...on.params, ...on.state]) {
        if (!d.arena) continue;
        expect(d.arena.offset % ALIGN).toBe(0);
        expect(d.arena.offset + d.shape.reduce((a, b) => a * b, 1)).toBeLessThanOrEqual(on.arenas![d.arena.arena].size);
      }
      for (const g of [on.graphs.predict, on.graphs.evaluate, ...on.graphs.steps]) expect(checkPlan(g), g.name).toEqual([]);
      lines.push(`${model}: ${before} -> ${after} dispatches per step (${foreach.length} fused_foreach kernels instead of ${members.reduce((a, n) => a + n, 0)})`);
    }
    console.log(lines.join('\n'));
  });
});

// ---- on WebGPU ------------------------------------------------------------------------------------

let live: Model[] = [];
afterEach(() => {
  for (const m of live) m.dispose();
  live = [];
});

function batchOf(program: ModelProgram, c: ExampleCase, random: () => number): Record<string, Float32Array | Int32Array> {
  const bound = new Map(Object.entries(c.sizes));
  const out: Record<string, Float32Array | Int32Array> = {};
  for (const i of program.inputs) {
    const n = evalShape(i.shape, bound).reduce((a, b) => a * b, 1);
    out[i.name] = i.dtype === 'f32' ? Float32Array.from({ length: n }, () => random() * 2 - 1) : Int32Array.from({ length: n }, () => Math.floor(random() * (c.intRange?.[i.name] ?? 2)));
  }
  return out;
}

async function trained(program: ModelProgram, c: ExampleCase, steps: number): Promise<{ model: Model; weights: Uint8Array; losses: number[] }> {
  const model = await Model.create(program, { seed: SEED, sizes: c.sizes });
  live.push(model);
  const random = seededRandom(SEED);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const v = await model.trainStep(batchOf(program, c, random)).values();
    losses.push(...program.losses.map((l) => v[l]));
  }
  return { model, weights: await model.saveWeights(), losses };
}

function tensorsOf(bytes: Uint8Array): Map<string, number[]> {
  return new Map([...decodeSafetensors(bytes).tensors].map(([k, t]) => [k, Array.from(t.data as ArrayLike<number>)]));
}

describe('on WebGPU: bit-identical training with and without the update arenas', () => {
  for (const model of ['MnistMlp', 'CharGPT', 'Gan']) {
    it(`${model}: 3 steps, then a saved state reloaded and reset`, async () => {
      const c = caseOf(model);
      const { on, off } = programs(c);
      const a = await trained(on, c, 3);
      const b = await trained(off, c, 3);
      expect(a.losses).toEqual(b.losses);
      const wa = tensorsOf(a.weights);
      const wb = tensorsOf(b.weights);
      expect([...wa.keys()].sort()).toEqual([...wb.keys()].sort());
      for (const [k, v] of wb) expect(wa.get(k), k).toEqual(v);
      // the arena model's state round-trips: load the unfused model's state into it, step both once more
      await a.model.loadWeights(b.weights);
      expect(tensorsOf(await a.model.saveWeights())).toEqual(wb);
      const batch = batchOf(on, c, seededRandom(SEED + 1));
      const la = await a.model.trainStep(batch).values();
      const lb = await b.model.trainStep(batch).values();
      expect(la).toEqual(lb);
      expect(tensorsOf(await a.model.saveWeights())).toEqual(tensorsOf(await b.model.saveWeights()));
      // reset writes every arena range back to the initial values
      a.model.reset(SEED);
      b.model.reset(SEED);
      expect(tensorsOf(await a.model.saveWeights())).toEqual(tensorsOf(await b.model.saveWeights()));
    });
  }
});
