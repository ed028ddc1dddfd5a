// A graph's GPU allocations (one per input, one per memory slot, one per unplanned temporary) and a program's peak memory at given sizes.
//
// The executor allocates exactly what `allocations` lists and sizes each allocation as `allocationBytes`
// says, so `memoryReport` is the memory the executor holds once every graph has run at those sizes
// (not counting the uniform buffers, a few words per dispatch, nor the small readback buffers).
import { programGraphs, type BufferDecl, type GraphProgram, type ModelProgram } from './program.ts';
import { evalShape, sizeText } from './sizes.ts';

/** One GPU buffer a graph owns: an input, a memory slot shared by several temporaries, or one temporary. */
export interface Allocation {
  readonly kind: 'input' | 'slot' | 'temp';
  /** Indices into `GraphProgram.buffers` bound to this allocation. */
  readonly members: readonly number[];
}

/** The bytes a buffer of `numel` 4-byte elements takes (WebGPU buffers are at least 4 bytes, in 4-byte steps). */
export function bufferBytes(numel: number): number {
  return Math.max(4, numel * 4);
}

/** The buffer that holds buffer `i`: the temporary arena a view lies in, else `i` itself. */
export function viewBase(g: GraphProgram, i: number): number {
  const b = g.buffers[i];
  return b?.kind === 'temp' && b.view ? b.view.buffer : i;
}

/**
 * The buffers a graph owns besides the model's parameters and state: each input, each slot of the
 * memory plan (when `planned` and the program has one), and each temporary without a slot. A view
 * (a range of a temporary arena) is no allocation: its arena is.
 */
export function allocations(g: GraphProgram, planned = true): Allocation[] {
  const out: Allocation[] = [];
  const slotAt = new Map<number, number>();
  g.buffers.forEach((b, i) => {
    if (b.kind === 'input') out.push({ kind: 'input', members: [i] });
    else if (b.kind === 'temp' && !b.view) {
      if (planned && b.slot !== undefined) {
        const at = slotAt.get(b.slot);
        if (at === undefined) {
          slotAt.set(b.slot, out.length);
          out.push({ kind: 'slot', members: [i] });
        } else (out[at].members as number[]).push(i);
      } else out.push({ kind: 'temp', members: [i] });
    }
  });
  return out;
}

/** The bytes of the parameters and state, as the executor allocates them (own buffers and arenas). */
export function modelBytes(program: ModelProgram): number {
  const own = [...program.params, ...program.state].filter((x) => !x.arena);
  return own.reduce((a, x) => a + bufferBytes(x.shape.reduce((p, q) => p * q, 1)), 0) + (program.arenas ?? []).reduce((a, x) => a + bufferBytes(x.size), 0);
}

/** The element count of an input or temporary at these sizes (an error names the tensor when it is not a size). */
export function bufferNumel(b: Extract<BufferDecl, { kind: 'input' | 'temp' }>, sizes: ReadonlyMap<string, number>): number {
  const numel = evalShape(b.shape, sizes).reduce((x, y) => x * y, 1);
  if (!Number.isInteger(numel) || numel < 0) throw new RangeError(`these sizes give ${b.kind === 'input' ? `input ${b.name}` : 'a tensor'} ${numel} elements`);
  return numel;
}

/** The bytes of one allocation at these sizes: the largest of its members. */
export function allocationBytes(g: GraphProgram, a: Allocation, sizes: ReadonlyMap<string, number>): number {
  let bytes = 4;
  for (const i of a.members) bytes = Math.max(bytes, bufferBytes(bufferNumel(g.buffers[i] as Extract<BufferDecl, { kind: 'input' | 'temp' }>, sizes)));
  return bytes;
}

export interface GraphMemory {
  readonly name: string;
  readonly inputs: number;
  /** The temporaries' bytes with the memory plan: one buffer per slot (and per temporary without one). */
  readonly temps: number;
  /** The temporaries' bytes with one buffer each. */
  readonly unplannedTemps: number;
  readonly tempCount: number;
  /** GPU buffers for the temporaries with the plan. */
  readonly tempBuffers: number;
}

export interface MemoryReport {
  readonly model: string;
  readonly sizes: Readonly<Record<string, number>>;
  readonly params: number;
  readonly state: number;
  readonly graphs: readonly GraphMemory[];
  /** Parameters, state, and every graph's inputs and planned temporaries: what the executor holds. */
  readonly total: number;
  /** The same without the memory plan. */
  readonly unplannedTotal: number;
  /** The largest single buffer (with the plan): it must fit the device's maxBufferSize and maxStorageBufferBindingSize. */
  readonly largestBuffer: number;
  /** What the largest buffer is, in words. */
  readonly largestWhat: string;
}


/**
 * The peak GPU memory of a program at `sizes` (every symbolic size must be bound): parameters and state
 * once per model, then each graph's inputs and temporaries (graphs do not share buffers), with and
 * without the memory plan.
 */
export function memoryReport(program: ModelProgram, sizes: ReadonlyMap<string, number> | Readonly<Record<string, number>>): MemoryReport {
  const bound = sizes instanceof Map ? (sizes as ReadonlyMap<string, number>) : new Map(Object.entries(sizes as Record<string, number>));
  let largestBuffer = 0;
  let largestWhat = 'nothing';
  const see = (bytes: number, what: () => string) => {
    if (bytes > largestBuffer) {
      largestBuffer = bytes;
      largestWhat = what();
    }
  };
  let params = 0;
  for (const p of program.params) {
    if (p.arena) continue;
    const bytes = bufferBytes(p.shape.reduce((a, b) => a * b, 1));
    params += bytes;
    see(bytes, () => `parameter ${p.path}`);
  }
  let state = 0;
  for (const s of program.state) {
    if (s.arena) continue;
    const bytes = bufferBytes(s.shape.reduce((a, b) => a * b, 1));
    state += bytes;
    see(bytes, () => `state ${s.path}`);
  }
  for (const [i, a] of (program.arenas ?? []).entries()) {
    const bytes = bufferBytes(a.size);
    if (a.kind === 'param') params += bytes;
    else state += bytes;
    see(bytes, () => `arena ${i} (${a.kind === 'param' ? 'parameters' : 'state'})`);
  }
  const graphs: GraphMemory[] = [];
  for (const g of programGraphs(program)) {
    let inputs = 0;
    let temps = 0;
    let unplannedTemps = 0;
    let tempCount = 0;
    let tempBuffers = 0;
    for (const a of allocations(g, true)) {
      const bytes = allocationBytes(g, a, bound);
      const first = g.buffers[a.members[0]] as Extract<BufferDecl, { kind: 'input' | 'temp' }>;
      see(bytes, () =>
        a.kind === 'input'
          ? `input ${(first as { name: string }).name} of ${g.name}`
          : `a ${a.kind === 'slot' ? `memory slot of ${a.members.length} tensors` : 'tensor'} of ${g.name} (${first.dtype}[${first.shape.map(sizeText).join(', ')}]${a.members.length > 1 ? ' and others' : ''})`,
      );
      if (a.kind === 'input') {
        inputs += bytes;
        continue;
      }
      temps += bytes;
      tempBuffers++;
      for (const i of a.members) {
        unplannedTemps += bufferBytes(bufferNumel(g.buffers[i] as Extract<BufferDecl, { kind: 'temp' }>, bound));
        tempCount++;
      }
    }
    graphs.push({ name: g.name, inputs, temps, unplannedTemps, tempCount, tempBuffers });
  }
  const perGraph = (f: (x: GraphMemory) => number) => graphs.reduce((a, x) => a + x.inputs + f(x), 0);
  return {
    model: program.model,
    sizes: Object.fromEntries(bound),
    params,
    state,
    graphs,
    total: params + state + perGraph((x) => x.temps),
    unplannedTotal: params + state + perGraph((x) => x.unplannedTemps),
    largestBuffer,
    largestWhat,
  };
}

/** Bytes in words: `1,234,567 bytes (1.2 MiB)`. */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let unit = '';
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${bytes.toLocaleString('en-US')} bytes${unit ? ` (${v.toFixed(1)} ${unit})` : ''}`;
}
