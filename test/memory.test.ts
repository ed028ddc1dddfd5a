// Memory planning: the planner on hand-built graphs, a property test over random graphs (a simulation of
// the buffers' contents with and without the plan), peak-memory reports and early out-of-memory errors,
// and every example on WebGPU giving bit-identical results with and without the plan.
import { markOnceKernels } from '../compiler/codegen/once.ts';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocations, checkPlan, liveRanges, memoryReport, planMemory } from '../compiler/codegen/memory.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { OutOfMemoryError } from '../runtime/errors.ts';
import { allocationBytes } from '../runtime/memory.ts';
import { sizeText } from '../runtime/sizes.ts';
import { Model } from '../runtime/model.ts';
import type { BufferDecl, GraphProgram, KernelDecl, ModelProgram, SizeExpr } from '../runtime/program.ts';
import { getDevice } from './gpu-helpers.ts';
import { argsOf, EXAMPLE_CASES, type ExampleCase, type Batch, randomBatch } from './helpers.ts';

// ---------------------------------------------------------------------------------------------------
// hand-built graphs

const temp = (...shape: SizeExpr[]): BufferDecl => ({ kind: 'temp', dtype: 'f32', shape });
const kernel = (inputs: number[], outputs: number[], op = 'k'): KernelDecl => ({ op, shader: 0, inputs, outputs, uniforms: [], workgroups: 1 });

function graph(buffers: BufferDecl[], kernels: KernelDecl[], extra: Partial<GraphProgram> = {}): GraphProgram {
  const inputs: Record<string, number> = {};
  buffers.forEach((b, i) => {
    if (b.kind === 'input') inputs[b.name] = i;
  });
  return { name: 'g', buffers, kernels, inputs, outputs: {}, updates: [], constraints: [], ...extra };
}

const X: BufferDecl = { kind: 'input', name: 'x', dtype: 'f32', shape: ['B', 4] };
const W: BufferDecl = { kind: 'param', path: 'w' };

function slotOf(g: GraphProgram, i: number): number | undefined {
  const b = g.buffers[i];
  return b.kind === 'temp' ? b.slot : undefined;
}

describe('the memory planner', () => {
  it('lets a chain of temporaries alternate between two slots', () => {
    // x -> t1 -> t2 -> t3 -> t4 (output)
    const g = planMemory(graph([X, temp('B', 4), temp('B', 4), temp('B', 4), temp('B', 4)], [kernel([0], [1]), kernel([1], [2]), kernel([2], [3]), kernel([3], [4])], { outputs: { y: 4 } }));
    expect(checkPlan(g)).toEqual([]);
    expect(g.slots).toBe(2);
    expect(slotOf(g, 1)).toBe(slotOf(g, 3));
    expect(slotOf(g, 2)).toBe(slotOf(g, 4));
    expect(slotOf(g, 1)).not.toBe(slotOf(g, 2));
    expect(g.buffers[0]).toEqual(X); // inputs are never planned
    expect(liveRanges(g)).toEqual(new Map([[1, { start: 0, end: 1 }], [2, { start: 1, end: 2 }], [3, { start: 2, end: 3 }], [4, { start: 3, end: 4 }]]));
  });

  it('keeps temporaries with overlapping live ranges apart and shares disjoint ones', () => {
    // t1 and t2 are both read by kernel 2 (overlap); t3 is written after t1's last read (disjoint from t1)
    const g = planMemory(graph([X, temp(8), temp(8), temp(8), temp(8)], [kernel([0], [1]), kernel([0], [2]), kernel([1, 2], [3]), kernel([3], [4])], { outputs: { y: 4 } }));
    expect(checkPlan(g)).toEqual([]);
    expect(slotOf(g, 1)).not.toBe(slotOf(g, 2));
    expect(slotOf(g, 3)).not.toBe(slotOf(g, 1)); // kernel 2 reads t1 and writes t3
    expect(slotOf(g, 3)).not.toBe(slotOf(g, 2));
    expect([slotOf(g, 1), slotOf(g, 2)]).toContain(slotOf(g, 4)); // t4 reuses t1's or t2's slot
    expect(g.slots).toBe(3);
  });

  it('keeps graph outputs live to the end', () => {
    // t1 is an output (a loss) read by nothing after kernel 0; t2, t3 must not overwrite it
    const g = planMemory(graph([X, temp(1), temp(8), temp(8)], [kernel([0], [1]), kernel([0], [2]), kernel([2], [3])], { outputs: { loss: 1, y: 3 } }));
    expect(checkPlan(g)).toEqual([]);
    expect(liveRanges(g).get(1)).toEqual({ start: 0, end: 3 });
    expect(new Set([slotOf(g, 1), slotOf(g, 2), slotOf(g, 3)]).size).toBe(3);
  });

  it('keeps update sources live to the end (the copies run after every dispatch)', () => {
    // t1 = new w, copied into w after the graph; t2 and t3 come later
    const g = planMemory(graph([W, X, temp(4, 4), temp('B', 4), temp('B', 4)], [kernel([0, 1], [2]), kernel([1, 0], [3]), kernel([3], [4])], { updates: [{ target: 0, source: 2 }], outputs: { y: 4 } }));
    expect(checkPlan(g)).toEqual([]);
    expect(liveRanges(g).get(2)).toEqual({ start: 0, end: 3 });
    expect(slotOf(g, 2)).not.toBe(slotOf(g, 3));
    expect(slotOf(g, 2)).not.toBe(slotOf(g, 4));
    expect(g.buffers[0]).toEqual(W);
  });

  it('never binds one slot as a dispatch\'s input and output, even when the input dies there', () => {
    const g = planMemory(graph([X, temp(16), temp(16), temp(16)], [kernel([0], [1]), kernel([1], [2]), kernel([2], [3])], { outputs: { y: 3 } }));
    expect(checkPlan(g)).toEqual([]);
    for (const k of g.kernels) for (const o of k.outputs) for (const i of k.inputs) expect(slotOf(g, o)).not.toBe(slotOf(g, i));
    // and a dispatch with two outputs keeps them apart
    const two = planMemory(graph([X, temp(16), temp(16), temp(16)], [kernel([0], [1]), kernel([1], [2, 3])], { outputs: { a: 2, b: 3 } }));
    expect(checkPlan(two)).toEqual([]);
    expect(slotOf(two, 2)).not.toBe(slotOf(two, 3));
  });

  it('keeps a multi-dispatch output (concat) live from its first write across the dispatches between', () => {
    // out = concat(a, x): kernel 1 writes out's first part, kernel 3 its second; y lives between them
    const buffers = [X, temp(8), temp(16), temp(8), temp(8), temp(16)];
    const kernels = [kernel([0], [1]), kernel([1], [2], 'concat'), kernel([0], [3]), kernel([3], [4]), kernel([4], [2], 'concat'), kernel([2], [5])];
    const g = planMemory(graph(buffers, kernels, { outputs: { y: 5 } }));
    expect(checkPlan(g)).toEqual([]);
    expect(liveRanges(g).get(2)).toEqual({ start: 1, end: 5 });
    for (const t of [3, 4]) expect(slotOf(g, t), `temporary ${t}`).not.toBe(slotOf(g, 2));
    expect(slotOf(g, 1)).not.toBe(slotOf(g, 2));
  });

  it('gives a temporary no dispatch writes a buffer of its own (it holds zeros)', () => {
    const g = planMemory(graph([X, temp(8), temp(8), temp(8)], [kernel([0, 1], [2]), kernel([2], [3])], { outputs: { y: 3 } }));
    expect(checkPlan(g)).toEqual([]);
    const members = allocations(g).find((a) => a.members.includes(1))!;
    expect(members.members).toEqual([1]);
  });

  it('sizes a slot for its largest member at every batch size', () => {
    // t1 = [16] and t2 = [B, 4] never overlap, so they share one slot: 64 bytes up to B = 4, then 16 * B
    const g = planMemory(graph([X, temp(16), temp('B', 4), temp(1)], [kernel([0], [1]), kernel([1], [3]), kernel([3], [2])], { outputs: { y: 2 } }));
    expect(checkPlan(g)).toEqual([]);
    expect(slotOf(g, 1)).toBe(slotOf(g, 2));
    const slot = allocations(g).find((a) => a.kind === 'slot' && a.members.includes(1))!;
    for (const B of [0, 1, 2, 4, 5, 100]) expect(allocationBytes(g, slot, new Map([['B', B]]))).toBe(Math.max(64, 16 * B, 4));
  });

  it('replaces an existing plan and leaves unplanned programs running as before', () => {
    const g = graph([X, temp(8), temp(8)], [kernel([0], [1]), kernel([1], [2])], { outputs: { y: 2 } });
    expect(allocations(g).filter((a) => a.kind !== 'input').map((a) => a.kind)).toEqual(['temp', 'temp']);
    const once = planMemory(g);
    expect(planMemory(once)).toEqual(once);
    expect(allocations(once, false).filter((a) => a.kind !== 'input').length).toBe(2);
  });

  it('checkPlan reports a broken plan', () => {
    const g = graph([X, { ...temp(8), slot: 0 } as BufferDecl, { ...temp(8), slot: 0 } as BufferDecl], [kernel([0], [1]), kernel([1], [2])], { outputs: { y: 2 }, slots: 1 });
    const problems = checkPlan(g);
    expect(problems.some((p) => p.includes('binds slot 0 as output 2 and also as 1'))).toBe(true);
    expect(problems.some((p) => p.includes('share slot 0 while both live'))).toBe(true);
  });

  it('checkPlan lets one dispatch write two disjoint views of an arena, but not overlapping ones, nor read the arena it writes', () => {
    // buffer 1: an arena of 512 elements; 2 and 3 are views of it at 0 and 256 (a layer norm's two gradients)
    const view = (offset: number, n: number): BufferDecl => ({ kind: 'temp', dtype: 'f32', shape: [n], view: { buffer: 1, offset } });
    const sound = planMemory(graph([X, temp(512), view(0, 64), view(256, 64), temp(1)], [kernel([0], [2, 3]), kernel([1], [4])], { outputs: { y: 4 } }));
    expect(checkPlan(sound)).toEqual([]);
    const overlapping = planMemory(graph([X, temp(512), view(0, 64), view(32, 64), temp(1)], [kernel([0], [2, 3]), kernel([1], [4])], { outputs: { y: 4 } }));
    expect(checkPlan(overlapping).some((p) => /binds slot \d+ as output 2 and also as 3/.test(p))).toBe(true);
    const readsIt = planMemory(graph([X, temp(512), view(0, 64), view(256, 64), temp(1)], [kernel([0], [2]), kernel([2], [3]), kernel([1], [4])], { outputs: { y: 4 } }));
    expect(checkPlan(readsIt).some((p) => /binds slot \d+ as output 3 and also as 2/.test(p))).toBe(true);
  });

  it('once kernels: those that read only what once kernels write; their temporaries keep buffers of their own', () => {
    // 1 = iota(), 2 = f(1), 3 = g(x, 2) reads an input, 4 = h(2), 5 = full() that a per-step kernel then rewrites
    const g = graph(
      [X, temp(8), temp(8), temp('B', 4), temp(8), temp(8)],
      [kernel([], [1], 'iota'), kernel([1], [2], 'ge'), kernel([0, 2], [3], 'select'), kernel([2], [4], 'neg'), kernel([], [5], 'full'), kernel([0], [5], 'copy')],
      { outputs: { y: 3, z: 4, w: 5 } },
    );
    const marked = markOnceKernels(g);
    expect(marked.kernels.map((k) => Boolean(k.once))).toEqual([true, true, false, true, false, false]);
    const planned = planMemory(marked);
    expect(checkPlan(planned)).toEqual([]);
    for (const b of [1, 2, 4]) expect(planned.buffers.filter((x, i) => i !== b && x.kind === 'temp' && slotOf(planned, i) === slotOf(planned, b))).toEqual([]);
    // a plan that shares a once kernel's temporary is reported
    const broken = { ...planned, buffers: planned.buffers.map((b, i) => (i === 1 || i === 3 ? ({ ...b, slot: 0 } as BufferDecl) : b)) };
    expect(checkPlan(broken).some((p) => p.includes('of a once kernel shares slot 0'))).toBe(true);
  });

  it('reports planned and unplanned peak memory', () => {
    const g = planMemory(graph([W, X, temp('B', 4), temp('B', 4), temp('B', 4), temp(1)], [kernel([1, 0], [2]), kernel([2], [3]), kernel([3], [4]), kernel([4], [5])], { outputs: { loss: 5 } }));
    const program: ModelProgram = {
      format: 'dlc-program', version: 1, model: 'M', file: 'm.dl', sizes: ['B'], inputs: [], outputs: [], losses: ['loss'], metrics: [],
      params: [{ path: 'w', dtype: 'f32', shape: [4, 4], init: { kind: 'zeros', options: {}, stream: 0 }, trainable: true }],
      state: [{ path: 's', dtype: 'f32', shape: [3], init: { kind: 'zeros', options: {}, stream: 0 } }],
      shaders: [''],
      graphs: { predict: g, evaluate: g, steps: [] },
    };
    const r = memoryReport(program, { B: 10 });
    expect(r.params).toBe(64);
    expect(r.state).toBe(12);
    expect(r.graphs[0]).toEqual({ name: 'g', inputs: 160, temps: 2 * 160, unplannedTemps: 3 * 160 + 4, tempCount: 4, tempBuffers: 2 });
    expect(r.total).toBe(64 + 12 + 2 * (160 + 320)); // the scalar loss reuses t3's slot
    expect(r.unplannedTotal).toBe(64 + 12 + 2 * (160 + 484));
    expect(r.largestBuffer).toBe(160);
  });
});

// ---------------------------------------------------------------------------------------------------
// random graphs

const SHAPES: readonly (readonly SizeExpr[])[] = [[], [1], [4], [7, 3], ['B'], ['B', 3], [['*', 'B', 'B']], [['+', 'B', 5], 2], [['floor', 'B', 2]]];

interface Recipe {
  params: number;
  inputs: number;
  /** Temporaries read but never written (their contents stay zero), and ones nothing touches. */
  unwritten: number;
  dead: number;
  kernels: { picks: number[]; outputs: number; shapes: number[]; continues: boolean }[];
  outputs: number[];
  updates: number[];
}

const recipe: fc.Arbitrary<Recipe> = fc.record({
  params: fc.integer({ min: 0, max: 3 }),
  inputs: fc.integer({ min: 1, max: 3 }),
  unwritten: fc.integer({ min: 0, max: 1 }),
  dead: fc.integer({ min: 0, max: 1 }),
  kernels: fc.array(
    fc.record({ picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), outputs: fc.integer({ min: 1, max: 2 }), shapes: fc.array(fc.nat({ max: SHAPES.length - 1 }), { minLength: 2, maxLength: 2 }), continues: fc.boolean() }),
    { minLength: 1, maxLength: 30 },
  ),
  outputs: fc.array(fc.nat(), { minLength: 0, maxLength: 3 }),
  updates: fc.array(fc.nat(), { minLength: 0, maxLength: 3 }),
});

/** A graph from a recipe: kernels read earlier buffers; a "continuing" kernel writes the previous kernel's output again (like concat). */
function build(r: Recipe): GraphProgram {
  const buffers: BufferDecl[] = [];
  for (let i = 0; i < r.params; i++) buffers.push({ kind: 'param', path: `p${i}` });
  buffers.push({ kind: 'state', path: 's' });
  for (let i = 0; i < r.inputs; i++) buffers.push({ kind: 'input', name: `x${i}`, dtype: 'f32', shape: ['B', 2] });
  const readable = buffers.map((_, i) => i);
  for (let i = 0; i < r.unwritten; i++) readable.push(buffers.push(temp(5)) - 1);
  for (let i = 0; i < r.dead; i++) buffers.push(temp(9));
  const kernels: KernelDecl[] = [];
  const temps: number[] = [];
  for (const k of r.kernels) {
    const inputs = [...new Set(k.picks.map((p) => readable[p % readable.length]))];
    const prev = kernels.at(-1);
    let outputs: number[];
    if (k.continues && prev && prev.outputs.length === 1 && !inputs.includes(prev.outputs[0])) outputs = [...prev.outputs];
    else outputs = Array.from({ length: k.outputs }, (_, j) => buffers.push(temp(...SHAPES[k.shapes[j]])) - 1);
    kernels.push(kernel(inputs, outputs));
    for (const o of outputs) if (!readable.includes(o)) readable.push(o) && temps.push(o);
  }
  const outputs: Record<string, number> = {};
  r.outputs.forEach((p, i) => (outputs[`out${i}`] = readable[p % readable.length]));
  const updates = r.params > 0 && temps.length > 0 ? r.updates.map((p, i) => ({ target: i % r.params, source: temps[p % temps.length] })) : [];
  return graph(buffers, kernels, { outputs, updates });
}

/**
 * Run a graph on symbolic contents: every write records (writer, dispatch) in the storage it lands in,
 * and every read must see exactly what it sees with one buffer per temporary. Returns the differences.
 */
function simulate(g: GraphProgram): string[] {
  type Content = { owner: number; writes: number[] } | 'zero';
  const planned = new Map<string, Content>();
  const unplanned = new Map<string, Content>();
  const storage = (i: number, plan: boolean) => {
    const b = g.buffers[i];
    return plan && b.kind === 'temp' && b.slot !== undefined ? `slot ${b.slot}` : `buffer ${i}`;
  };
  const read = (m: Map<string, Content>, key: string): Content => m.get(key) ?? 'zero';
  const write = (m: Map<string, Content>, key: string, owner: number, n: number) => {
    const c = read(m, key);
    m.set(key, c !== 'zero' && c.owner === owner ? { owner, writes: [...c.writes, n] } : { owner, writes: [n] });
  };
  const problems: string[] = [];
  const compare = (i: number, what: string) => {
    const a = JSON.stringify(read(planned, storage(i, true)));
    const b = JSON.stringify(read(unplanned, storage(i, false)));
    if (a !== b) problems.push(`${what} reads buffer ${i} as ${a}, unplanned ${b}`);
  };
  g.kernels.forEach((k, n) => {
    const bound = [...k.inputs, ...k.outputs].map((i) => storage(i, true));
    for (const o of k.outputs) if (bound.filter((s) => s === storage(o, true)).length > 1) problems.push(`dispatch ${n} binds ${storage(o, true)} as an output and again`);
    for (const i of k.inputs) compare(i, `dispatch ${n}`);
    for (const o of k.outputs) {
      write(planned, storage(o, true), o, n);
      write(unplanned, storage(o, false), o, n);
    }
  });
  for (const [name, i] of Object.entries(g.outputs)) compare(i, `output ${name}`);
  for (const u of g.updates) compare(u.source, `the update of ${u.target}`);
  return problems;
}

describe('the memory planner on random graphs', () => {
  it('keeps every value intact, never aliases a dispatch\'s bindings, and never needs more memory', () => {
    fc.assert(
      fc.property(recipe, fc.integer({ min: 0, max: 40 }), (r, B) => {
        const g = build(r);
        const p = planMemory(g, { sizes: new Map([['B', 8]]) });
        expect(checkPlan(p)).toEqual([]);
        expect(simulate(p)).toEqual([]);
        // the plan changes only the slots
        expect(p.kernels).toEqual(g.kernels);
        expect(p.buffers.map((b) => (b.kind === 'temp' ? { ...b, slot: undefined } : b))).toEqual(g.buffers.map((b) => (b.kind === 'temp' ? { ...b, slot: undefined } : b)));
        // every slot holds each member at every size, and never takes more than the members apart
        const sizes = new Map([['B', B]]);
        let planned = 0;
        let unplanned = 0;
        for (const a of allocations(p)) {
          if (a.kind === 'input') continue;
          const bytes = allocationBytes(p, a, sizes);
          planned += bytes;
          for (const m of a.members) {
            const own = allocationBytes(p, { kind: 'temp', members: [m] }, sizes);
            expect(bytes).toBeGreaterThanOrEqual(own);
            unplanned += own;
          }
        }
        expect(planned).toBeLessThanOrEqual(unplanned);
      }),
      { numRuns: 300 },
    );
  });

  it('the simulation catches a plan that shares a live slot', () => {
    // sanity check of the checker itself: force every temporary into slot 0
    const g = build({ params: 0, inputs: 1, unwritten: 0, dead: 0, kernels: [{ picks: [0], outputs: 1, shapes: [2, 2], continues: false }, { picks: [0], outputs: 1, shapes: [2, 2], continues: false }, { picks: [2, 3], outputs: 1, shapes: [2, 2], continues: false }], outputs: [4], updates: [] });
    const broken: GraphProgram = { ...g, buffers: g.buffers.map((b) => (b.kind === 'temp' ? { ...b, slot: 0 } : b)), slots: 1 };
    expect(simulate(broken).length).toBeGreaterThan(0);
    expect(simulate(planMemory(g))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// the examples

function compileCase(c: ExampleCase, args = c.args): ModelProgram {
  const file = `examples/${c.file}.dl`;
  const r = compileSource(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, args)]]) });
  const p = r.programs.find((x) => x.model === c.model);
  if (!p) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return p;
}

describe('the examples\' plans', () => {
  it('are sound, and need less memory than one buffer per temporary', () => {
    for (const c of EXAMPLE_CASES) {
      const p = compileCase(c);
      for (const g of [p.graphs.predict, p.graphs.evaluate, ...p.graphs.steps]) {
        expect(checkPlan(g), `${c.model} ${g.name}`).toEqual([]);
        expect(simulate(g), `${c.model} ${g.name}`).toEqual([]);
      }
      for (const B of [1, 7, 64]) {
        const r = memoryReport(p, { ...c.sizes, B });
        expect(r.total, `${c.model} at B = ${B}`).toBeLessThan(r.unplannedTotal);
      }
    }
  });
});

describe('out of memory before allocating', () => {
  /** A device that has limits but fails any allocation: Model.create must refuse before asking for a buffer. */
  function fakeDevice(limits: Partial<GPUSupportedLimits>): GPUDevice {
    const fail = () => {
      throw new Error('allocated');
    };
    return { limits: { maxBufferSize: 268435456, maxStorageBufferBindingSize: 134217728, ...limits }, lost: new Promise(() => {}), createBuffer: fail, pushErrorScope: fail, queue: {} } as unknown as GPUDevice;
  }
  const mlp = () => compileCase(EXAMPLE_CASES[0]);

  it('names the model, the bytes it needs and the budget', async () => {
    const p = mlp();
    const need = memoryReport(p, { B: 64 }).total;
    const err = await Model.create(p, { device: fakeDevice({}), batchSize: 64, memoryBudget: need - 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfMemoryError);
    const message = (err as Error).message;
    expect(message).toContain('MnistMlp');
    expect(message).toContain(`needs ${need.toLocaleString('en-US')} bytes`);
    expect(message).toContain('B = 64');
    expect(message).toMatch(/memory budget [\d,]+ bytes/);
    expect(message).toContain('maxStorageBufferBindingSize');
    // without the plan the same budget is further off, and the message says what the plan would need
    const unplanned = await Model.create(p, { device: fakeDevice({}), batchSize: 64, memoryBudget: need - 1, memoryPlan: false }).catch((e: unknown) => e);
    expect((unplanned as Error).message).toContain(`needs ${memoryReport(p, { B: 64 }).unplannedTotal.toLocaleString('en-US')} bytes`);
    expect((unplanned as Error).message).toContain(`${need.toLocaleString('en-US')} bytes (`);
  });

  it('names the largest buffer when it is over the device\'s buffer limits', async () => {
    const err = await Model.create(mlp(), { device: fakeDevice({ maxStorageBufferBindingSize: 1 << 20 }), batchSize: 4096 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as Error).message).toMatch(/MnistMlp needs [\d,]+ bytes .* at B = 4096, and its largest buffer \(input image of predict\) takes 12,845,056 bytes .*over this device's limits \(maxBufferSize 268,435,456 bytes \(256\.0 MiB\), maxStorageBufferBindingSize 1,048,576 bytes/);
  });

  it('reports the plan it allocates for on the model', { timeout: 60_000 }, async () => {
    const p = mlp();
    const device = await getDevice();
    const model = await Model.create(p, { device, batchSize: 16 });
    try {
      expect(model.memory).toEqual(memoryReport(p, { B: 16 }));
    } finally {
      model.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// on WebGPU

const bits = (a: ArrayLike<number> | ArrayBufferView): Uint8Array => (ArrayBuffer.isView(a) ? new Uint8Array(a.buffer, a.byteOffset, a.byteLength) : new Uint8Array(Float32Array.from(a).buffer));

/** One training step, evaluate and predict on a batch, then the same on a larger batch (the slots grow); everything as bytes. */
async function runCase(program: ModelProgram, c: ExampleCase, memoryPlan: boolean): Promise<{ results: Map<string, Uint8Array>; memory: ReturnType<typeof memoryReport> | undefined }> {
  const device = await getDevice();
  const model = await Model.create(program, { device, seed: 5, sizes: c.sizes, batchSize: c.sizes.B, memoryPlan });
  const results = new Map<string, Uint8Array>();
  try {
    for (const [n, B] of [c.sizes.B, c.sizes.B + 3].entries()) {
      const batch = randomBatch(program, { ...c.sizes, B }, seededRandom(11 + n), c.intRange);
      if (program.graphs.steps.length > 0) {
        const values = await model.trainStep(batch).values();
        for (const [k, v] of Object.entries(values)) results.set(`${n} step ${k}`, bits(Float32Array.of(v)));
      }
      const evaluated = await model.evaluate(batch);
      for (const [k, v] of Object.entries(evaluated)) results.set(`${n} evaluate ${k}`, bits(Float32Array.of(v as number)));
      const predicted = await model.predict(batch);
      for (const [k, v] of Object.entries(predicted)) results.set(`${n} predict ${k}`, bits(v as Float32Array));
    }
    results.set('weights', await model.saveWeights());
    return { results, memory: model.memory };
  } finally {
    model.dispose();
  }
}

describe('every example gives bit-identical results with and without the memory plan on WebGPU', () => {
  const lines: string[] = [];
  for (const c of EXAMPLE_CASES) {
    it(`${c.file}: ${c.model}`, { timeout: 300_000 }, async () => {
      const program = compileCase(c);
      const planned = await runCase(program, c, true);
      const unplanned = await runCase(program, c, false);
      expect([...planned.results.keys()]).toEqual([...unplanned.results.keys()]);
      for (const [k, v] of planned.results) {
        const u = unplanned.results.get(k)!;
        const off = v.findIndex((x, i) => x !== u[i]);
        expect(v.length === u.length && off < 0, `${c.model} ${k}: byte ${off} differs`).toBe(true);
      }
      const m = planned.memory!;
      expect(m).toEqual(memoryReport(program, c.sizes));
      expect(m.total).toBeLessThan(m.unplannedTotal);
      const line = `${c.model} at ${JSON.stringify(c.sizes)}: ${m.total.toLocaleString('en-US')} bytes planned, ${m.unplannedTotal.toLocaleString('en-US')} unplanned (${((100 * m.total) / m.unplannedTotal).toFixed(1)}%; parameters and state ${(m.params + m.state).toLocaleString('en-US')})`;
      lines.push(line);
      console.log(line);
    });
  }
});

describe('sizes in memory reports', () => {
  it('are written as a person writes them, not as the program\'s JSON', () => {
    expect(sizeText(['*', 256, 'B'])).toBe('256 * B');
    expect(sizeText(['+', 'L', -1])).toBe('L - 1');
    expect(sizeText(['+', 'T', ['*', -2, 'K']])).toBe('T - 2 * K');
    expect(sizeText(['+', 'T', ['*', -1, 'K']])).toBe('T - K');
    expect(sizeText(['*', ['+', 'B', 1], 4])).toBe('(B + 1) * 4');
    expect(sizeText(['floor', 'H', 2])).toBe('floor(H / 2)');
    expect(sizeText(['mod', 'T', 4])).toBe('T % 4');
    // the largest buffer: a tensor of 64 * B rows, twice the input
    const r = compileSource('model M {\n  input x: f32[B, 64, 48]\n  let r = reshape(x, [64 * B, 48])\n  output y = concat([r, r * 2.0], axis: 1)\n}\n', 'm.dl');
    const what = memoryReport(r.programs[0], { B: 4 }).largestWhat;
    expect(what).toMatch(/f32\[(64 \* B|B \* 64), 96\]/);
  });
});
