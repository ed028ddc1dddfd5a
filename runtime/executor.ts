// Runs a program's graphs on one WebGPU device: buffers allocated once, a whole step in one command buffer, lazy readback.
//
// Parameter and state buffers belong to the model and are shared by every graph; several of them may
// be ranges of one arena buffer (see `ModelProgram.arenas`), and each is then bound as its range. Each graph owns its
// input and temporary buffers, sized for the largest sizes seen so far (or declared up front), so a
// steady stream of batches allocates nothing. A step is one compute pass (WebGPU orders the
// dispatches and makes each one's writes visible to the next; each kernel runs its GPU variant for the
// bound sizes where it has one, `chooseVariant`), then the copies of new parameter and state values
// (merged per arena), then copies of the step's scalars (losses, metrics) into a small mappable buffer
// or a ring on the GPU, all in one command buffer. Reading those scalars is lazy: the caller gets a
// handle and only a call to `values()` maps memory, so training never waits on the GPU unless asked to.
import { programGraphs, type BufferDecl, type CpuVariantDecl, type DType, type GraphProgram, type KernelDecl, type ModelProgram, type SizeExpr, type TensorDecl, type WideVariantDecl } from './program.ts';
import { conditionHolds, evalShape, evalSize, sizeNames } from './sizes.ts';
import { allocationBytes, allocations, type Allocation } from './memory.ts';
import { initialValues } from './init.ts';
import { ExpiredError, InputError, OutOfMemoryError, ShaderError, DlcRuntimeError } from './errors.ts';
import { StagingUploads, type UploadOptions } from './upload.ts';

export type TypedArray = Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer>;
/** What a caller may pass for one input: a typed array, or plain numbers. */
export type HostArray = Float32Array | Int32Array | Uint32Array | Float64Array | Uint8Array | readonly number[];

const STORAGE_USAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST
const UNIFORM_USAGE = 0x40 | 0x8; // UNIFORM | COPY_DST
const READBACK_USAGE = 0x1 | 0x8; // MAP_READ | COPY_DST
const COPY_USAGE = 0x4 | 0x8; // COPY_SRC | COPY_DST
const MAP_READ = 0x1;
const MAX_PER_DIM = 65535;
/** Scalars (losses, metrics) recorded per graph run. */
const SLOT_SCALARS = 64;
/** Unread step results kept before the oldest are dropped. */
const MAX_OUTSTANDING = 4096;
/** Mappable readback buffers kept for reuse. */
const READBACK_POOL = 4;
/** Readback buffers larger than this are freed after their read, not pooled (a one-off huge predict must not hold its staging). */
const READBACK_POOL_MAX_BYTES = 4 << 20;
/** Step-value readback buffers (256 bytes each) kept for reuse; more reads at once make buffers that are freed after. */
const STAGING_POOL = 32;

function byteLength(dtype: DType, numel: number): number {
  void dtype; // every dtype is stored as 4 bytes (bool as u32)
  return numel * 4;
}

/**
 * Whether a typed array's memory is an ordinary ArrayBuffer. One over a SharedArrayBuffer (a tensor from
 * a worker thread) must not reach `queue.writeBuffer`: Dawn's Node binding crashes the process on it.
 */
function onPlainBuffer(data: ArrayBufferView): boolean {
  return Object.prototype.toString.call(data.buffer) === '[object ArrayBuffer]';
}

/**
 * Host values in the array type a buffer of `dtype` holds, on an ordinary ArrayBuffer: an array of that
 * type is used as it is (no copy), anything else (another type, plain numbers, a view of a
 * SharedArrayBuffer) is copied.
 */
export function toStorageArray(dtype: DType, data: HostArray): TypedArray {
  switch (dtype) {
    case 'f32':
      return data instanceof Float32Array && onPlainBuffer(data) ? (data as Float32Array<ArrayBuffer>) : Float32Array.from(data as ArrayLike<number>);
    case 'i32':
      return data instanceof Int32Array && onPlainBuffer(data) ? (data as Int32Array<ArrayBuffer>) : Int32Array.from(data as ArrayLike<number>);
    case 'u32':
    case 'bool':
      return data instanceof Uint32Array && onPlainBuffer(data) ? (data as Uint32Array<ArrayBuffer>) : Uint32Array.from(data as ArrayLike<number>, (v) => (dtype === 'bool' ? (v ? 1 : 0) : v));
  }
}

function fromBytes(dtype: DType, bytes: ArrayBuffer): TypedArray {
  return dtype === 'f32' ? new Float32Array(bytes) : dtype === 'i32' ? new Int32Array(bytes) : new Uint32Array(bytes);
}

function describeShape(dtype: DType, shape: readonly SizeExpr[]): string {
  const show = (e: SizeExpr): string => (typeof e === 'number' || typeof e === 'string' ? String(e) : `(${JSON.stringify(e)})`);
  return `${dtype}[${shape.map(show).join(', ')}]`;
}

/** One of a graph's own buffers, in words: `input x`, `a tensor of f32[B, 16] (a memory slot shared by 2 tensors)`. */
function allocationWhat(g: GraphProgram, a: Allocation): string {
  const first = g.buffers[a.members[0]] as Extract<BufferDecl, { kind: 'input' | 'temp' }>;
  return first.kind === 'input' ? `input ${first.name}` : `a tensor of ${describeShape(first.dtype, first.shape)}${a.members.length > 1 ? ` (a memory slot shared by ${a.members.length} tensors)` : ''}`;
}

/** A range of a GPU buffer (bytes); without `size`, to the buffer's end. */
interface Bound {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size?: number;
}

/** The optimizer's state (moments, step counters): allocated on the first training call. */
function isOptimizerState(path: string): boolean {
  return path.startsWith('opt.');
}

/** Elements [offset, offset + numel) of a buffer (an arena) as a range. */
function rangeOf(buffer: GPUBuffer, offsetElements: number, numel: number): Bound {
  return { buffer, offset: offsetElements * 4, size: numel * 4 };
}

function bindingOf(b: Bound): GPUBufferBinding {
  return { buffer: b.buffer, offset: b.offset, ...(b.size !== undefined ? { size: b.size } : {}) };
}

interface GraphInstance {
  readonly program: GraphProgram;
  /** Per buffer of the program: the model's parameter, state or arena range, or the allocation (or range of one) it is bound to. */
  readonly buffers: (Bound | undefined)[];
  /** The graph's own buffers: one per input, per memory slot, per temporary without a slot. */
  readonly allocations: readonly Allocation[];
  readonly allocated: (GPUBuffer | undefined)[];
  readonly capacity: number[];
  readonly uniforms: GPUBuffer[];
  bindGroups: GPUBindGroup[];
  /** Per kernel at the prepared sizes: its grid and the shader it runs (a wide variant or its own), or null when empty. */
  grids: ({ readonly x: number; readonly y: number; readonly shader: number } | null)[];
  /** The sizes the buffers and uniforms were last prepared for; undefined before the first run. */
  sizesKey: string | undefined;
  /** The update copies at the prepared sizes, adjacent ranges merged (`mergeCopies`). */
  copies: readonly Copy[];
  /**
   * Whether the once kernels (`KernelDecl.once`: results that depend on the sizes alone) have run at
   * the prepared sizes, in a command buffer that was submitted; `prepare` clears it when sizes change.
   */
  onceDone: boolean;
}

/** One buffer-to-buffer copy, in bytes. */
export interface Copy {
  readonly src: GPUBuffer;
  readonly srcOffset: number;
  readonly dst: GPUBuffer;
  readonly dstOffset: number;
  readonly size: number;
}

/**
 * Merge copies between the same two buffers whose ranges follow each other at the same distance (the
 * parameters of one arena, updated from the same offsets of a temporary arena): one copy instead of one
 * per parameter. A gap between two ranges is copied too only when `free(dst, start, end)` says nothing in
 * the destination lives there (arena padding); otherwise the copies stay apart. Order does not matter:
 * no copy reads what another writes.
 */
export function mergeCopies(copies: readonly Copy[], free: (dst: GPUBuffer, start: number, end: number) => boolean): Copy[] {
  const ids = new Map<GPUBuffer, number>();
  const id = (b: GPUBuffer) => ids.get(b) ?? (ids.set(b, ids.size), ids.size - 1);
  for (const c of copies) [c.dst, c.src].forEach(id);
  const sorted = [...copies].filter((c) => c.size > 0).sort((a, b) => id(a.dst) - id(b.dst) || id(a.src) - id(b.src) || a.dstOffset - b.dstOffset);
  const out: Copy[] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    const end = last ? last.dstOffset + last.size : 0;
    if (last && last.dst === c.dst && last.src === c.src && c.dstOffset - last.dstOffset === c.srcOffset - last.srcOffset && c.dstOffset >= end && (c.dstOffset === end || free(c.dst, end, c.dstOffset))) {
      out[out.length - 1] = { ...last, size: c.dstOffset + c.size - last.dstOffset };
    } else out.push(c);
  }
  return out;
}

/**
 * The scalars of one graph run, read on demand: copied to a mappable buffer of the pool in the run's own
 * command buffer (`staging`), or, when the pool is empty (a caller that does not read its steps'
 * values), to slot `seq % MAX_OUTSTANDING` of a ring on the GPU, copied out when read (`ring`).
 */
export interface ScalarRecord {
  staging: GPUBuffer | undefined;
  readonly ring?: number;
  readonly names: readonly string[];
  readonly dtypes: readonly DType[];
  state: 'pending' | 'reading' | 'read' | 'expired';
  values?: Record<string, number>;
}

export interface StepHandle {
  /** The losses and metrics of this step, read from the GPU on first call. */
  values(): Promise<Record<string, number>>;
}

export class Executor {
  private readonly params = new Map<string, Bound>();
  private readonly state = new Map<string, Bound>();
  /** The shared parameter and state buffers by arena index (a hole for an arena of optimizer state not allocated yet). */
  private readonly arenas: (GPUBuffer | undefined)[] = [];
  /** The optimizer's state paths, and the arenas holding only them, not allocated until the first training call. */
  private readonly deferredState = new Set<string>();
  private readonly deferredArenas = new Set<number>();
  /** Values written to deferred state before it was allocated (a loaded checkpoint's moments). */
  private readonly pendingState = new Map<string, TypedArray>();
  /** The seed of the initial values, for the deferred state. */
  private seed = 0;
  private readonly pipelines: GPUComputePipeline[] = [];
  /** Shaders being compiled (`compileShaders`), so two callers wait on one compilation. */
  private readonly compiling = new Map<number, Promise<void>>();
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  private readonly graphs = new Map<string, GraphInstance>();
  /**
   * Per graph, the last sizes `bindSizes` bound, under the input lengths, given sizes and hints that gave
   * them (kept apart from the graph's instance, so binding sizes allocates nothing).
   */
  private readonly lastBound = new Map<string, { readonly key: string; readonly extra: readonly TensorDecl[] | undefined; readonly sizes: ReadonlyMap<string, number> }>();
  /** Graphs whose once kernels the command buffer being built encodes (`submit` marks them done once it is submitted). */
  private readonly encodedOnce: GraphInstance[] = [];
  private readonly stagingPool: GPUBuffer[] = [];
  /** Mappable buffers of earlier reads (predict outputs, weights), reused by later reads of about their size. */
  private readonly readbackPool: GPUBuffer[] = [];
  private destroyed = false;
  private readonly outstanding: ScalarRecord[] = [];
  /** Step values of records without a staging buffer, MAX_OUTSTANDING slots (`recordScalars`). */
  private scalarRing: GPUBuffer | undefined;
  /** Records made so far (a record's ring slot is its number modulo MAX_OUTSTANDING). */
  private recorded = 0;
  /** Every buffer `createBuffer` made that is not destroyed yet (`release` destroys one and forgets it). */
  private readonly owned = new Set<GPUBuffer>();
  /** Large inputs (a batch of images) go through mapped staging buffers kept from step to step. */
  readonly uploads: StagingUploads;
  /** The error scopes of this executor's own work not yet popped (`scoped`). */
  private readonly scopes = new Set<Promise<void>>();
  /**
   * The first error WebGPU reported for this executor's own work (from the error scopes around it, so
   * never another user's of a shared device): every later call fails with it.
   */
  reported: { readonly kind: 'validation' | 'out-of-memory'; readonly message: string; readonly what: string } | undefined;

  readonly device: GPUDevice;
  readonly program: ModelProgram;
  /** Use the kernels' CPU variants (for lavapipe, SwiftShader). */
  readonly cpuKernels: boolean;
  /** Bind temporaries to their memory slots' shared buffers (false: one buffer per temporary). */
  readonly planMemory: boolean;
  /** Use the kernels' subgroup variants (the device has the `subgroups` feature). */
  readonly subgroups: boolean;
  /** The device's smallest subgroup (0 without subgroups or where the device does not say): CPU variants needing more are skipped. */
  readonly subgroupMinSize: number;
  /** GPU variants (wide matmul tiers, split k, conv reduce): 'auto' (by grid size, GPU kernels only), 'off', or one variant's name used wherever it exists (tests). */
  readonly wide: string;

  private constructor(device: GPUDevice, program: ModelProgram, cpuKernels: boolean, planMemory: boolean, subgroups: boolean, subgroupMinSize: number, wide: string, uploads: Partial<UploadOptions> | false) {
    this.device = device;
    this.program = program;
    this.cpuKernels = cpuKernels;
    this.planMemory = planMemory;
    this.subgroups = subgroups;
    this.subgroupMinSize = subgroupMinSize;
    this.wide = wide;
    this.uploads = new StagingUploads(device, uploads);
  }

  /**
   * Record work on a new command encoder and submit it; the staging buffers its input writes used
   * are mapped again afterwards (also when `build` throws and nothing is submitted).
   */
  submit<T>(build: (encoder: GPUCommandEncoder) => T): T {
    return this.scoped('a submit', () => {
      this.encodedOnce.length = 0;
      try {
        const encoder = this.device.createCommandEncoder();
        const result = build(encoder);
        this.device.queue.submit([encoder.finish()]);
        // the once kernels these graphs encoded have run (or will, in queue order) before any later run
        for (const inst of this.encodedOnce) inst.onceDone = true;
        return result;
      } finally {
        this.encodedOnce.length = 0;
        this.uploads.submitted();
      }
    });
  }

  /**
   * Run `work`, synchronous device calls of this executor's own, inside validation and out-of-memory
   * error scopes, so that what WebGPU reports for it is attributed to this model (`reported`), and
   * what other code on a shared device gets wrong is not. Nothing awaits between the push and the
   * pops, so no other code's calls land in these scopes.
   */
  scoped<T>(what: string, work: () => T): T {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    try {
      return work();
    } finally {
      const oom = this.device.popErrorScope();
      const invalid = this.device.popErrorScope();
      const settled: Promise<void> = Promise.all([oom, invalid])
        .then(
          ([o, v]) => {
            if (o) this.reported ??= { kind: 'out-of-memory', message: o.message, what };
            else if (v) this.reported ??= { kind: 'validation', message: v.message, what };
          },
          () => undefined, // a lost device: its loss is reported instead
        )
        .finally(() => this.scopes.delete(settled));
      this.scopes.add(settled);
    }
  }

  /** Once the error scopes of the work so far are popped, `reported` says whether WebGPU refused any of it. */
  async settled(): Promise<void> {
    await Promise.all([...this.scopes]);
  }

  private shaderOf(k: KernelDecl): number {
    if (this.cpuKernels && k.cpuShader !== undefined) return k.cpuShader;
    return this.subgroups && k.subgroupShader !== undefined ? k.subgroupShader : k.shader;
  }

  /** The GPU variants this executor may run for a kernel (none on CPU kernels or with 'off'). */
  private wideOf(k: KernelDecl): readonly WideVariantDecl[] {
    if (this.cpuKernels || this.wide === 'off' || !k.wide) return [];
    return this.wide === 'auto' ? k.wide : k.wide.filter((w) => w.name === this.wide);
  }

  /**
   * The CPU variants with their own grids this executor may run for a kernel, in order of preference
   * (CPU kernels only; those needing subgroups where the device's are large enough), without those an
   * earlier one always shadows (the same `requires`, or after one with none), so they are not compiled.
   */
  private cpuVariantsOf(k: KernelDecl): readonly CpuVariantDecl[] {
    if (!this.cpuKernels || !k.cpuVariants) return [];
    const usable = k.cpuVariants.filter((v) => v.minSubgroupSize === undefined || (this.subgroups && this.subgroupMinSize >= v.minSubgroupSize));
    const seen = new Set<string>();
    const kept: CpuVariantDecl[] = [];
    for (const v of usable) {
      const key = JSON.stringify(v.requires ?? null);
      if (seen.has(key) || seen.has('null')) continue;
      seen.add(key);
      kept.push(v);
    }
    return kept;
  }

  /**
   * The shader and workgroup count of kernel `k` at bound sizes: on CPU adapters the first of its CPU
   * variants with their own grids whose `requires` holds; else the first GPU variant whose grid
   * conditions hold; else its own.
   */
  private chooseVariant(k: KernelDecl, sizes: ReadonlyMap<string, number>): { shader: number; groups: number } {
    const cpu = this.cpuVariantsOf(k).find((v) => v.requires === undefined || evalSize(v.requires, sizes) > 0);
    if (cpu) return { shader: cpu.shader, groups: evalSize(cpu.workgroups, sizes) };
    const base = evalSize(k.workgroups, sizes);
    for (const w of this.wideOf(k)) {
      const groups = evalSize(w.workgroups, sizes);
      if (this.wide !== 'auto' || (groups >= w.minWorkgroups && base <= (w.maxBaseWorkgroups ?? Infinity))) return { shader: w.shader, groups };
    }
    return { shader: this.shaderOf(k), groups: base };
  }

  /** Compile every shader, allocate and initialize the parameters and state (Philox, keyed by `seed`). */
  static async create(device: GPUDevice, program: ModelProgram, seed: number, options: { cpuKernels?: boolean; planMemory?: boolean; subgroups?: boolean; wide?: string; uploads?: Partial<UploadOptions> | false | undefined } = {}): Promise<Executor> {
    const subgroups = (options.subgroups ?? true) && device.features.has('subgroups');
    const subgroupMinSize = subgroups ? ((device as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo?.subgroupMinSize ?? 0) : 0;
    const ex = new Executor(device, program, options.cpuKernels ?? false, options.planMemory ?? true, subgroups, subgroupMinSize, options.wide ?? 'auto', options.uploads ?? {});
    ex.checkAlignment();
    // the optimizer's state (and the arenas holding only it) waits for the first training call
    for (const d of program.state) if (isOptimizerState(d.path)) ex.deferredState.add(d.path);
    for (const [i, a] of (program.arenas ?? []).entries()) {
      const members = [...program.params, ...program.state].filter((d) => d.arena?.arena === i);
      if (a.kind === 'state' && members.length > 0 && members.every((d) => ex.deferredState.has(d.path))) ex.deferredArenas.add(i);
    }
    for (const d of program.state) if (d.arena && !ex.deferredArenas.has(d.arena.arena)) ex.deferredState.delete(d.path);
    device.pushErrorScope('out-of-memory');
    ex.allocateModelBuffers((i) => !ex.deferredArenas.has(i), (path) => !ex.deferredState.has(path));
    const oom = await device.popErrorScope();
    if (oom) throw new OutOfMemoryError(`the GPU ran out of memory allocating the parameters of ${program.model}: ${oom.message}`);
    ex.initialize(seed);
    // the inference graphs now; the train steps' on the first training call (or prepareGraphs)
    const { predict, evaluate, totals } = program.graphs;
    await ex.compileShaders([predict, evaluate, ...(totals ? [totals] : [])]);
    return ex;
  }

  /** Every arena range starts at a multiple of this device's minStorageBufferOffsetAlignment, or the program cannot bind it. */
  private checkAlignment(): void {
    const need = this.device.limits.minStorageBufferOffsetAlignment;
    const offsets = [...this.program.params, ...this.program.state].flatMap((d) => (d.arena ? [d.arena.offset] : []));
    for (const g of programGraphs(this.program)) {
      for (const b of g.buffers) if (b.kind === 'arena' || (b.kind === 'temp' && b.view)) offsets.push(b.kind === 'arena' ? b.offset : b.view!.offset);
    }
    if (offsets.some((o) => (o * 4) % need !== 0)) {
      throw new DlcRuntimeError('validation', `${this.program.model} keeps parameters in shared buffers at offsets aligned to ${this.program.arenaAlignment ?? '?'} bytes, but this device binds storage only at multiples of ${need} bytes`);
    }
  }

  private createBuffer(bytes: number, usage: number, what: string): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (usage & 0x80 && size > max) throw new OutOfMemoryError(`${what} needs ${size} bytes, over this device's storage binding limit of ${max} bytes`);
    const b = this.device.createBuffer({ size, usage });
    this.owned.add(b);
    return b;
  }

  /** Destroy a buffer `createBuffer` made and forget it: a model that trims or grows for years must not keep what it freed. */
  private release(b: GPUBuffer | undefined): void {
    if (!b) return;
    b.destroy();
    this.owned.delete(b);
  }

  /** Allocate the arenas and the parameter and state buffers that `arena` and `path` select (and are not allocated yet). */
  private allocateModelBuffers(arena: (i: number) => boolean, path: (p: string) => boolean): void {
    for (const [i, a] of (this.program.arenas ?? []).entries()) {
      if (arena(i) && !this.arenas[i]) this.arenas[i] = this.createBuffer(byteLength(a.dtype, a.size), STORAGE_USAGE, `arena ${i} of the ${a.kind === 'param' ? 'parameters' : 'state'}`);
    }
    for (const [map, decls, what] of [[this.params, this.program.params, 'parameter'], [this.state, this.program.state, 'state']] as const) {
      for (const d of decls) {
        if (!path(d.path) || map.has(d.path)) continue;
        const numel = d.shape.reduce((a, b) => a * b, 1);
        if (d.arena) map.set(d.path, rangeOf(this.arenas[d.arena.arena]!, d.arena.offset, numel));
        else map.set(d.path, { buffer: this.createBuffer(byteLength(d.dtype, numel), STORAGE_USAGE, `${what} ${d.path}`), offset: 0 });
      }
    }
  }

  /**
   * Allocate the optimizer's state on the first training call (a model that only predicts never holds
   * it): its initial values for the current seed, then what `writeModelBuffer` set meanwhile (a loaded checkpoint's).
   */
  private allocateOptimizerState(): void {
    if (this.deferredState.size === 0) return;
    this.scoped("allocating the optimizer's state", () => {
      const deferred = this.program.state.filter((d) => this.deferredState.has(d.path));
      this.allocateModelBuffers((i) => this.deferredArenas.has(i), (p) => this.deferredState.has(p));
      this.deferredState.clear();
      this.deferredArenas.clear();
      for (const d of deferred) {
        const b = this.state.get(d.path)!;
        this.device.queue.writeBuffer(b.buffer, b.offset, this.pendingState.get(d.path) ?? toStorageArray(d.dtype, initialValues(d.init, d.shape, this.seed, d.init.stream)));
      }
      this.pendingState.clear();
    });
  }

  /** Every parameter and state buffer at its initial value (`rng.key` starts at the seed). */
  initialize(seed: number): void {
    this.scoped('initializing the weights', () => this.initializeNow(seed));
  }

  private initializeNow(seed: number): void {
    this.seed = seed;
    this.pendingState.clear();
    for (const p of this.program.params) {
      const b = this.params.get(p.path)!;
      this.device.queue.writeBuffer(b.buffer, b.offset, toStorageArray(p.dtype, initialValues(p.init, p.shape, seed, p.init.stream)));
    }
    for (const s of this.program.state) {
      const b = this.state.get(s.path);
      if (!b) continue; // the optimizer's, not allocated yet: it starts from this seed when it is
      const values = s.path === 'rng.key' ? Float64Array.of(seed >>> 0) : initialValues(s.init, s.shape, seed, s.init.stream);
      this.device.queue.writeBuffer(b.buffer, b.offset, toStorageArray(s.dtype, values));
    }
  }

  private layout(inputs: number, outputs: number): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    const key = `${inputs}/${outputs}`;
    let l = this.layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: 4, buffer: { type: 'uniform' } }];
      for (let i = 0; i < inputs; i++) entries.push({ binding: 1 + i, visibility: 4, buffer: { type: 'read-only-storage' } });
      for (let i = 0; i < outputs; i++) entries.push({ binding: 1 + inputs + i, visibility: 4, buffer: { type: 'storage' } });
      const group = this.device.createBindGroupLayout({ entries });
      l = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.layouts.set(key, l);
    }
    return l;
  }

  /** Which op (and .dl line) each shader of these graphs serves, and its binding counts: every variant of every kernel. */
  private shaderUsers(graphs: readonly GraphProgram[]): Map<number, { op: string; where: string; inputs: number; outputs: number }> {
    const users = new Map<number, { op: string; where: string; inputs: number; outputs: number }>();
    for (const g of graphs) {
      for (const k of g.kernels) {
        for (const shader of [this.shaderOf(k), ...this.wideOf(k).map((w) => w.shader), ...this.cpuVariantsOf(k).map((v) => v.shader)]) {
          if (!users.has(shader)) users.set(shader, { op: k.op, where: k.source ? `${k.source.file}:${k.source.line}:${k.source.col}` : 'an unknown line', inputs: k.inputs.length, outputs: k.outputs.length });
        }
      }
    }
    return users;
  }

  /**
   * Compile the pipelines of these graphs' shaders that are not compiled yet (each shader once, however
   * many graphs use it). `create` compiles the inference graphs'; the train steps' compile on the first
   * training call, so a page that only predicts never builds them (`prepareGraphs` builds them ahead).
   */
  private async compileShaders(graphs: readonly GraphProgram[]): Promise<void> {
    const users = this.shaderUsers(graphs);
    await Promise.all(
      [...users].map(([i, user]) => {
        if (this.pipelines[i]) return undefined;
        let compiling = this.compiling.get(i);
        if (!compiling) {
          compiling = this.compileShader(i, user).finally(() => this.compiling.delete(i));
          this.compiling.set(i, compiling);
        }
        return compiling;
      }),
    );
  }

  private async compileShader(i: number, user: { op: string; where: string; inputs: number; outputs: number }): Promise<void> {
    const code = this.program.shaders[i];
    // push, create and pop with nothing awaited between: shaders compiled at once (and other code on
    // a shared device) never share a scope; the pipeline reports its own failure as a rejection
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code });
    const popped = this.device.popErrorScope();
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    let pipeline: GPUComputePipeline | undefined;
    if (errors.length === 0) {
      pipeline = await this.device.createComputePipelineAsync({ layout: this.layout(user.inputs, user.outputs).pipeline, compute: { module, entryPoint: 'main' } }).catch((e: unknown) => {
        throw new ShaderError(`internal error: the WGSL for ${user.op} (from ${user.where}) does not form a pipeline: ${(e as Error).message}`);
      });
    }
    const scope = await popped;
    if (errors.length > 0 || scope || !pipeline) {
      const msg = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ') || scope?.message;
      throw new ShaderError(`internal error: the WGSL for ${user.op} (from ${user.where}) does not compile: ${msg}`);
    }
    this.pipelines[i] ??= pipeline;
  }

  /** Compile these graphs' pipelines now rather than at their first dispatch (a train step's, before fit's first step). */
  prepareGraphs(graphs: readonly GraphProgram[]): Promise<void> {
    return this.compileShaders(graphs);
  }

  /**
   * The pipeline of shader `i`, compiled here and now when no earlier call compiled it (the first train
   * step of a model that was only created): encoding is synchronous, so this uses WebGPU's synchronous
   * createComputePipeline, whose failure the submit's error scope reports as a GPUValidationError.
   */
  private pipelineOf(i: number, k: KernelDecl): GPUComputePipeline {
    let pipeline = this.pipelines[i];
    if (!pipeline) {
      const module = this.device.createShaderModule({ code: this.program.shaders[i] });
      pipeline = this.device.createComputePipeline({ layout: this.layout(k.inputs.length, k.outputs.length).pipeline, compute: { module, entryPoint: 'main' } });
      this.pipelines[i] = pipeline;
    }
    return pipeline;
  }

  private instance(g: GraphProgram): GraphInstance {
    let inst = this.graphs.get(g.name);
    if (!inst) {
      if (g.buffers.some((b) => (b.kind === 'state' && this.deferredState.has(b.path)) || (b.kind === 'arena' && this.deferredArenas.has(b.arena)))) this.allocateOptimizerState();
      const allocs = allocations(g, this.planMemory);
      inst = {
        program: g,
        buffers: g.buffers.map((b) => (b.kind === 'param' ? this.params.get(b.path) : b.kind === 'state' ? this.state.get(b.path) : b.kind === 'arena' ? rangeOf(this.arenas[b.arena]!, b.offset, b.size) : undefined)),
        allocations: allocs,
        allocated: allocs.map(() => undefined),
        capacity: allocs.map(() => -1),
        uniforms: g.kernels.map((k) => this.createBuffer(k.uniforms.length * 4, UNIFORM_USAGE, `the uniforms of ${k.op}`)),
        bindGroups: [],
        grids: [],
        sizesKey: undefined,
        copies: [],
        onceDone: false,
      };
      this.graphs.set(g.name, inst);
    }
    return inst;
  }

  /**
   * The symbolic sizes a batch implies: each input's length over the product of its known sizes
   * binds the one unknown name in its shape. `extra` are inputs of the model that this graph does not
   * read but the caller gave (predict of a generator reads no input, yet the batch tells B). When an
   * input has several unknown sizes (tokens: [B, L]), or a size no input has, the `hints` (sizes given
   * when the model was created) supply all but the leading unknown. Then every input length is
   * checked against its shape.
   */
  bindSizes(
    g: GraphProgram,
    inputs: Readonly<Record<string, HostArray>>,
    given: ReadonlyMap<string, number> = new Map(),
    options: { readonly extra?: readonly TensorDecl[]; readonly hints?: ReadonlyMap<string, number>; readonly origins?: ReadonlyMap<string, string> } = {},
  ): Map<string, number> {
    // a training loop binds the same lengths step after step: the sizes are a function of the input
    // lengths, the given sizes and the hints, so the last binding is reused when those are the same
    const hintKey = options.hints ? [...options.hints].join(';') : '';
    const key = `${[...given].join(';')}|${Object.keys(inputs).map((k) => `${k}:${inputs[k].length}`).join(';')}|${hintKey}`;
    const last = this.lastBound.get(g.name);
    if (last && last.key === key && last.extra === options.extra) return new Map(last.sizes);
    const sizes = this.bindSizesAfresh(g, inputs, given, options);
    this.lastBound.set(g.name, { key, extra: options.extra, sizes: new Map(sizes) });
    return sizes;
  }

  private bindSizesAfresh(
    g: GraphProgram,
    inputs: Readonly<Record<string, HostArray>>,
    given: ReadonlyMap<string, number>,
    options: { readonly extra?: readonly TensorDecl[]; readonly hints?: ReadonlyMap<string, number>; readonly origins?: ReadonlyMap<string, string> },
  ): Map<string, number> {
    const sizes = new Map(given);
    // where a size not read from the lengths came from, for messages: `L = 8 from create({ sizes })`
    const from = new Map<string, string>();
    for (const name of given.keys()) from.set(name, options.origins?.get(name) ?? 'the sizes given');
    const fromHint = (name: string) => from.set(name, options.origins?.get(name) ?? 'the sizes given at creation');
    const whence = (shape: readonly SizeExpr[]): string => {
      const names = new Set<string>();
      for (const e of shape) sizeNames(e, names);
      const told = [...names].filter((n) => from.has(n) && sizes.has(n)).map((n) => `${n} = ${sizes.get(n)} from ${from.get(n)}`);
      return told.length ? `; ${told.join(', ')}` : '';
    };
    const decls = g.buffers.filter((b): b is Extract<BufferDecl, { kind: 'input' }> => b.kind === 'input');
    for (const d of decls) {
      if (!(d.name in inputs)) {
        const known = Object.keys(inputs);
        throw new InputError(`the batch has no input \`${d.name}\` (${describeShape(d.dtype, d.shape)})${known.length ? `; it has ${known.map((k) => `\`${k}\``).join(', ')}` : ''}`);
      }
    }
    const binders: readonly { name: string; dtype: DType; shape: readonly SizeExpr[] }[] = [...decls, ...(options.extra ?? []).filter((d) => d.name in inputs && !decls.some((x) => x.name === d.name))];
    const unknownsOf = (shape: readonly SizeExpr[]) => [...new Set(shape.filter((e): e is string => typeof e === 'string' && !sizes.has(e)))];
    const propagate = () => {
      for (let round = 0; round < binders.length; round++) {
        for (const d of binders) {
          const unknown = unknownsOf(d.shape);
          if (unknown.length !== 1) continue;
          const rest = d.shape.filter((e) => e !== unknown[0]);
          let known: number;
          try {
            known = evalShape(rest, sizes).reduce((a, b) => a * b, 1);
          } catch {
            continue;
          }
          const len = inputs[d.name].length;
          if (known === 0 || len % known !== 0) {
            throw new InputError(`input \`${d.name}\` has ${len} values, which is not a whole number of ${describeShape(d.dtype, rest)} items (declared ${describeShape(d.dtype, d.shape)}${whence(rest)})`);
          }
          sizes.set(unknown[0], len / known);
        }
      }
    };
    propagate();
    const hints = options.hints ?? new Map<string, number>();
    for (const d of binders) {
      const unknown = unknownsOf(d.shape);
      if (unknown.length < 2) continue;
      for (const name of unknown.slice(1)) {
        if (hints.has(name)) {
          sizes.set(name, hints.get(name)!);
          fromHint(name);
        }
      }
      propagate();
    }
    // sizes the kernels and temporaries need that no input tells
    const needed = new Set<string>();
    for (const b of g.buffers) if (b.kind === 'input' || b.kind === 'temp') for (const e of b.shape) sizeNames(e, needed);
    for (const k of g.kernels) for (const e of [...k.uniforms, k.workgroups]) sizeNames(e, needed);
    for (const name of needed) {
      if (sizes.has(name)) continue;
      const hint = hints.get(name);
      if (hint === undefined) throw new InputError(`cannot tell the size ${name} from the inputs given; pass an input that has it, or give it with the call or when creating the model (\`{ sizes: { ${name}: ... } }\`)`);
      sizes.set(name, hint);
      fromHint(name);
    }
    for (const d of decls) {
      let want: number;
      try {
        want = evalShape(d.shape, sizes).reduce((a, b) => a * b, 1);
      } catch (e) {
        throw new InputError(`cannot tell the sizes of input \`${d.name}\` (${describeShape(d.dtype, d.shape)}): ${(e as Error).message}`);
      }
      const len = inputs[d.name].length;
      if (len !== want) {
        const bound = [...sizes].map(([k, v]) => `${k} = ${v}`).join(', ');
        throw new InputError(`input \`${d.name}\` has ${len} values, but ${describeShape(d.dtype, d.shape)}${bound ? ` with ${bound}` : ''} needs ${want}${whence(d.shape)}`);
      }
    }
    for (const c of g.constraints) {
      const l = evalSize(c.left, sizes);
      const r = evalSize(c.right, sizes);
      if (!conditionHolds(c.op, l, r)) {
        // the sizes the condition reads, as this batch gives them: `H % 2 == 0` with H = 5
        const names = [...sizeNames(c.left), ...sizeNames(c.right)].filter((n, i, all) => all.indexOf(n) === i && sizes.has(n));
        const given = names.length > 0 ? ` with ${names.map((n) => `${n} = ${sizes.get(n)}`).join(', ')}` : '';
        throw new InputError(`the batch breaks the model's condition \`${c.text}\`${given} (${l} ${c.op} ${r} is false)`);
      }
    }
    return sizes;
  }

  /** Size every input and temporary buffer for `sizes` (growing, never shrinking) and write the uniforms. */
  private prepare(inst: GraphInstance, sizes: ReadonlyMap<string, number>): void {
    const key = [...sizes].sort().map(([k, v]) => `${k}=${v}`).join(',');
    if (key === inst.sizesKey) return;
    inst.onceDone = false;
    try {
      this.prepareSizes(inst, sizes, key);
    } catch (e) {
      // half-prepared (a buffer freed and its successor refused, uniforms written for sizes that failed):
      // the next run at any sizes prepares everything again
      inst.sizesKey = undefined;
      inst.bindGroups = [];
      throw e;
    }
  }

  private prepareSizes(inst: GraphInstance, sizes: ReadonlyMap<string, number>, key: string): void {
    const g = inst.program;
    let grew = inst.bindGroups.length === 0;
    inst.allocations.forEach((a, n) => {
      let bytes: number;
      try {
        bytes = allocationBytes(g, a, sizes);
      } catch (e) {
        throw new InputError((e as Error).message);
      }
      if (bytes > inst.capacity[n]) {
        this.release(inst.allocated[n]);
        inst.allocated[n] = undefined;
        inst.capacity[n] = -1;
        const buffer = this.createBuffer(bytes, STORAGE_USAGE, allocationWhat(g, a));
        inst.allocated[n] = buffer;
        for (const i of a.members) inst.buffers[i] = { buffer, offset: 0 };
        inst.capacity[n] = bytes;
        grew = true;
      }
    });
    if (grew) {
      // a view is a range of its arena's buffer (its concrete shape gives the range)
      g.buffers.forEach((b, i) => {
        if (b.kind === 'temp' && b.view) inst.buffers[i] = rangeOf(inst.buffers[b.view.buffer]!.buffer, b.view.offset, evalShape(b.shape, sizes).reduce((x, y) => x * y, 1));
      });
      inst.bindGroups = g.kernels.map((k, n) =>
        this.device.createBindGroup({
          layout: this.layout(k.inputs.length, k.outputs.length).group,
          entries: [{ buffer: inst.uniforms[n], offset: 0 }, ...k.inputs.map((i) => inst.buffers[i]!), ...k.outputs.map((i) => inst.buffers[i]!)].map((b, binding) => ({ binding, resource: bindingOf(b) })),
        }),
      );
    }
    inst.grids = g.kernels.map((k, n) => {
      const words = k.uniforms.map((u) => evalSize(u, sizes));
      for (const w of words) {
        if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) throw new InputError(`these sizes (${key}) give ${k.op} a size of ${w}, outside the u32 range the kernels index with`);
      }
      this.device.queue.writeBuffer(inst.uniforms[n], 0, Uint32Array.from(words));
      const { shader, groups } = this.chooseVariant(k, sizes);
      if (groups === 0) return null;
      if (groups <= MAX_PER_DIM) return { x: groups, y: 1, shader };
      const y = Math.ceil(groups / MAX_PER_DIM);
      if (y > MAX_PER_DIM) throw new InputError(`${k.op} needs ${groups} workgroups, more than one dispatch can have`);
      return { x: Math.ceil(groups / y), y, shader };
    });
    inst.copies = mergeCopies(
      g.updates.map((u) => {
        // the target's bytes: a parameter or state buffer (or range of an arena) is sized exactly
        const target = inst.buffers[u.target]!;
        const source = inst.buffers[u.source]!;
        return { src: source.buffer, srcOffset: source.offset, dst: target.buffer, dstOffset: target.offset, size: target.size ?? target.buffer.size - target.offset };
      }),
      (dst, start, end) => this.isPadding(dst, start, end),
    );
    inst.sizesKey = key;
  }

  /** Bytes [start, end) of an arena hold no parameter or state (alignment padding). */
  private isPadding(buffer: GPUBuffer, start: number, end: number): boolean {
    const arena = this.arenas.indexOf(buffer);
    if (arena < 0) return false;
    return [...this.program.params, ...this.program.state].every((d) => {
      if (!d.arena || d.arena.arena !== arena) return true;
      const from = d.arena.offset * 4;
      const to = from + byteLength(d.dtype, d.shape.reduce((a, b) => a * b, 1));
      return to <= start || from >= end;
    });
  }

  /**
   * The first of a graph's own buffers that would not fit this device's per-buffer limits at these sizes
   * (the smaller of maxBufferSize and maxStorageBufferBindingSize), found without allocating anything:
   * callers refuse such a run before it frees or makes a buffer. Sizes that give no buffer size are an InputError.
   */
  oversized(g: GraphProgram, sizes: ReadonlyMap<string, number>): { readonly what: string; readonly bytes: number; readonly limit: number; readonly limitName: string } | undefined {
    const { maxBufferSize, maxStorageBufferBindingSize } = this.device.limits;
    const [limit, limitName] = maxBufferSize < maxStorageBufferBindingSize ? [maxBufferSize, 'maxBufferSize'] : [maxStorageBufferBindingSize, 'maxStorageBufferBindingSize'];
    for (const a of allocations(g, this.planMemory)) {
      let bytes: number;
      try {
        bytes = allocationBytes(g, a, sizes);
      } catch (e) {
        throw new InputError((e as Error).message);
      }
      if (bytes > limit) return { what: allocationWhat(g, a), bytes, limit, limitName };
    }
    return undefined;
  }

  /** Allocate a graph's buffers for these sizes now (so the first step does not). */
  reserve(g: GraphProgram, sizes: ReadonlyMap<string, number>): void {
    this.scoped(`allocating the buffers of ${g.name}`, () => this.prepare(this.instance(g), sizes));
  }

  /**
   * Free every buffer whose size depends on the sizes of a run: each graph's inputs and temporaries,
   * the upload staging buffers and the pooled readback buffers. The next run of a graph allocates for
   * its own sizes. Work already submitted still runs (WebGPU frees a destroyed buffer once it is done).
   */
  trim(): void {
    for (const inst of this.graphs.values()) {
      inst.allocated.forEach((b, n) => {
        this.release(b);
        inst.allocated[n] = undefined;
        inst.capacity[n] = -1;
      });
      inst.bindGroups = [];
      inst.sizesKey = undefined;
      inst.onceDone = false;
    }
    for (const b of this.readbackPool.splice(0)) b.destroy();
    this.uploads.trim();
  }

  /** GPU bytes held for the sizes of runs so far (inputs, temporaries, upload staging, pooled readback buffers): what `trim` frees. */
  get sizedBytes(): number {
    let bytes = this.uploads.bytes;
    for (const inst of this.graphs.values()) for (const b of inst.allocated) bytes += b?.size ?? 0;
    for (const b of this.readbackPool) bytes += b.size;
    return bytes;
  }

  /**
   * Every GPU byte the executor holds now: parameters, state and arenas (the optimizer's once allocated),
   * each graph's inputs, temporaries and uniforms, the ring of step values, the readback buffers kept
   * for reuse or held by unread steps, and the upload staging. Not the readback buffers of reads in
   * flight, which are freed or pooled when the read ends.
   */
  get bytesHeld(): number {
    if (this.destroyed) return 0;
    let bytes = this.uploads.bytes;
    for (const b of this.owned) bytes += b.size;
    for (const b of [...this.readbackPool, ...this.stagingPool]) bytes += b.size;
    for (const r of this.outstanding) if (r.state === 'pending' && r.staging) bytes += r.staging.size;
    return bytes;
  }

  /**
   * Write the inputs and encode the graph's dispatches and updates into `encoder`, which the caller
   * submits through `submit` (large inputs are copied from staging buffers by `encoder` itself).
   */
  encode(encoder: GPUCommandEncoder, g: GraphProgram, inputs: Readonly<Record<string, HostArray>>, sizes: ReadonlyMap<string, number>): void {
    const inst = this.writeInputs(g, inputs, sizes, encoder);
    // once kernels run in the first command buffer submitted at these sizes (see `submit`)
    const skipOnce = inst.onceDone;
    if (!skipOnce) this.encodedOnce.push(inst);
    if (g.kernels.length > 0) {
      const pass = encoder.beginComputePass();
      g.kernels.forEach((k, n) => {
        if (!(skipOnce && k.once)) this.dispatch(pass, inst, n);
      });
      pass.end();
    }
    for (const c of inst.copies) encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
  }

  /**
   * Size the graph's buffers for `sizes` and write its inputs: queued writes, or for large inputs,
   * copies on `encoder` from staging buffers (see upload.ts).
   */
  private writeInputs(g: GraphProgram, inputs: Readonly<Record<string, HostArray>>, sizes: ReadonlyMap<string, number>, encoder?: GPUCommandEncoder): GraphInstance {
    const inst = this.instance(g);
    this.prepare(inst, sizes);
    for (const [name, at] of Object.entries(g.inputs)) {
      const b = g.buffers[at] as Extract<BufferDecl, { kind: 'input' }>;
      const data = toStorageArray(b.dtype, inputs[name]);
      if (data.byteLength > 0) this.uploads.write(encoder, inst.buffers[at]!.buffer, inst.buffers[at]!.offset, data);
    }
    return inst;
  }

  /** Encode kernel `n` of a prepared graph (nothing when its grid is empty at these sizes). */
  private dispatch(pass: GPUComputePassEncoder, inst: GraphInstance, n: number): void {
    const grid = inst.grids[n];
    if (!grid) return;
    pass.setPipeline(this.pipelineOf(grid.shader, inst.program.kernels[n]));
    pass.setBindGroup(0, inst.bindGroups[n]);
    pass.dispatchWorkgroups(grid.x, grid.y);
  }

  /**
   * Time every kernel of a graph on its own, without changing the model: the inputs are written and
   * the kernels run once in order (so each reads the values a real run gives it), then each kernel is
   * submitted alone `reps` times, timed on the host from submit to `onSubmittedWorkDone`, less the
   * median time of an empty submit (the fixed cost of a round trip); how much that round trip varies
   * (its slowest less its fastest of at least 5 submits) is the resolution, below which a kernel's time
   * cannot be told from noise. Parameters and state are copied
   * first and put back after (kernels that update in place write them). Parameter and state updates are
   * copies the graph makes after its kernels, and they are not made, so parameters, optimizer state
   * and the step count stay as they were. Medians per kernel, in milliseconds; a kernel with an empty
   * grid at these sizes is timed as 0.
   */
  async profile(g: GraphProgram, inputs: Readonly<Record<string, HostArray>>, sizes: ReadonlyMap<string, number>, reps: number): Promise<{ kernelMs: number[]; roundTripMs: number; resolutionMs: number }> {
    const inst = this.writeInputs(g, inputs, sizes);
    // kernels that update in place (fused_foreach) write parameters and state: keep a copy to put back
    const model = [...new Set([...this.arenas.filter((b) => b !== undefined), ...[...this.params.values(), ...this.state.values()].map((b) => b.buffer)])];
    const saved = model.map((b) => this.createBuffer(b.size, COPY_USAGE, 'a copy of the model while profiling'));
    const copyAll = (from: readonly GPUBuffer[], to: readonly GPUBuffer[]) =>
      this.scoped('profiling', () => {
        const encoder = this.device.createCommandEncoder();
        from.forEach((b, i) => encoder.copyBufferToBuffer(b, 0, to[i], 0, b.size));
        this.device.queue.submit([encoder.finish()]);
      });
    copyAll(model, saved);
    try {
      return await this.profileKernels(g, inst, reps);
    } finally {
      copyAll(saved, model);
      await this.device.queue.onSubmittedWorkDone();
      saved.forEach((b) => this.release(b));
    }
  }

  private async profileKernels(g: GraphProgram, inst: GraphInstance, reps: number): Promise<{ kernelMs: number[]; roundTripMs: number; resolutionMs: number }> {
    const run = async (kernels: readonly number[]): Promise<number> => {
      const encoder = this.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      for (const n of kernels) this.dispatch(pass, inst, n);
      pass.end();
      const commands = encoder.finish();
      const t0 = performance.now();
      this.scoped('profiling', () => this.device.queue.submit([commands]));
      await this.device.queue.onSubmittedWorkDone();
      const ms = performance.now() - t0;
      void [encoder, pass, commands]; // held until the work is done
      return ms;
    };
    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    const samplesOf = async (kernels: readonly number[], count: number): Promise<number[]> => {
      const samples: number[] = [];
      for (let r = 0; r < count; r++) samples.push(await run(kernels));
      return samples;
    };
    await run(g.kernels.map((_, n) => n));
    const empty = await samplesOf([], Math.max(reps, 5));
    const roundTripMs = median(empty);
    const resolutionMs = Math.max(...empty) - Math.min(...empty);
    const kernelMs: number[] = [];
    for (let n = 0; n < g.kernels.length; n++) kernelMs.push(inst.grids[n] ? Math.max(0, median(await samplesOf([n], reps)) - roundTripMs) : 0);
    return { kernelMs, roundTripMs, resolutionMs };
  }

  /** The scalar outputs (losses, metrics) a graph can report; not the evaluate graph's totals (`#total<k>`, see ModelProgram.graphs.totals). */
  scalarNames(g: GraphProgram): string[] {
    return Object.keys(g.outputs).filter((name) => {
      if (name.startsWith('#')) return false;
      const b = g.buffers[g.outputs[name]];
      if (b.kind === 'param' || b.kind === 'state' || b.kind === 'arena') return false;
      return b.shape.length === 0 || b.shape.every((d) => d === 1);
    }).slice(0, SLOT_SCALARS);
  }

  /**
   * Copy the named scalars, in the same command buffer as the step, into a small mappable buffer from
   * the pool, so that reading them later waits for that step only, not for work queued after it. When
   * the pool is empty (the caller has not read earlier steps' values, or not yet), they go to the next
   * slot of a ring buffer on the GPU instead: no buffer is created per step, and a later read copies
   * the slot out (waiting for the work queued by then). Either way a record more than MAX_OUTSTANDING
   * steps old that was never read expires.
   */
  recordScalars(encoder: GPUCommandEncoder, g: GraphProgram, names: readonly string[]): ScalarRecord {
    const inst = this.instance(g);
    const seq = this.recorded++;
    const staging = this.stagingPool.pop();
    this.scalarRing ??= this.createBuffer(MAX_OUTSTANDING * SLOT_SCALARS * 4, COPY_USAGE, 'the ring of step values');
    const [target, base] = staging ? [staging, 0] : [this.scalarRing, (seq % MAX_OUTSTANDING) * SLOT_SCALARS * 4];
    names.forEach((name, i) => encoder.copyBufferToBuffer(inst.buffers[g.outputs[name]]!.buffer, inst.buffers[g.outputs[name]]!.offset, target, base + 4 * i, 4));
    const dtypes = names.map((n) => {
      const b = g.buffers[g.outputs[n]];
      return b.kind === 'param' || b.kind === 'state' || b.kind === 'arena' ? 'f32' : b.dtype;
    });
    const record: ScalarRecord = staging ? { staging, names, dtypes, state: 'pending' } : { staging: undefined, ring: seq, names, dtypes, state: 'pending' };
    if (staging) this.outstanding.push(record);
    // a caller that never reads its steps' values must not hold staging buffers without bound
    while (this.outstanding.length > MAX_OUTSTANDING) {
      const old = this.outstanding.shift()!;
      if (old.state === 'pending') {
        old.state = 'expired';
        old.staging?.destroy();
      }
    }
    return record;
  }

  /** Read recorded scalars as name/value records (each waits only for its own step). */
  async readScalars(records: readonly ScalarRecord[]): Promise<Record<string, number>[]> {
    return Promise.all(
      records.map(async (r) => {
        // a ring slot is rewritten MAX_OUTSTANDING steps later: past that, the values are gone
        if (r.ring !== undefined && r.state === 'pending' && this.recorded - r.ring > MAX_OUTSTANDING) r.state = 'expired';
        if (r.state === 'expired') throw new ExpiredError(`the values of a step were dropped: more than ${MAX_OUTSTANDING} steps were left unread; read them sooner`);
        if (r.state === 'read') return r.values!;
        r.state = 'reading';
        if (r.ring !== undefined) {
          const ring = r.ring;
          r.staging = this.scoped('reading step values', () => {
            const staging = this.stagingPool.pop() ?? this.device.createBuffer({ size: SLOT_SCALARS * 4, usage: READBACK_USAGE });
            const encoder = this.device.createCommandEncoder();
            encoder.copyBufferToBuffer(this.scalarRing!, (ring % MAX_OUTSTANDING) * SLOT_SCALARS * 4, staging, 0, SLOT_SCALARS * 4);
            this.device.queue.submit([encoder.finish()]);
            return staging;
          });
        }
        const staging = r.staging!;
        await this.scoped('reading step values', () => staging.mapAsync(MAP_READ));
        const bytes = staging.getMappedRange().slice(0);
        staging.unmap();
        const f = new Float32Array(bytes);
        const u = new Uint32Array(bytes);
        const n = new Int32Array(bytes);
        r.values = Object.fromEntries(r.names.map((name, j) => [name, r.dtypes[j] === 'f32' ? f[j] : r.dtypes[j] === 'i32' ? n[j] : u[j]]));
        r.state = 'read';
        const at = this.outstanding.indexOf(r);
        if (at >= 0) this.outstanding.splice(at, 1);
        // a burst of reads at once (1000 steps' values awaited together) must not keep a buffer each
        if (this.stagingPool.length < STAGING_POOL && !this.destroyed) this.stagingPool.push(staging);
        else staging.destroy();
        r.staging = undefined;
        return r.values;
      }),
    );
  }

  /** Copy buffers (their first `dtype`/`shape` worth of bytes) to the host in one staging buffer and one map. */
  private async download(items: readonly { bound: Bound; dtype: DType; shape: readonly number[] }[]): Promise<TypedArray[]> {
    const read = this.scoped('reading the weights', () => {
      const encoder = this.device.createCommandEncoder();
      const r = this.encodeDownload(encoder, items);
      this.device.queue.submit([encoder.finish()]);
      return r;
    });
    return read();
  }

  /**
   * Record copies of `items` into a mappable buffer (reused from a small pool) on `encoder`; the
   * returned function, called once the encoder is submitted, maps it and returns the values.
   */
  private encodeDownload(encoder: GPUCommandEncoder, items: readonly { bound: Bound; dtype: DType; shape: readonly number[] }[]): () => Promise<TypedArray[]> {
    const sizes = items.map((x) => byteLength(x.dtype, x.shape.reduce((a, b) => a * b, 1)));
    const total = Math.max(4, sizes.reduce((a, b) => a + Math.max(4, b), 0));
    const pooled = this.readbackPool.findIndex((b) => b.size >= total && b.size <= 2 * total + 256);
    const staging = pooled >= 0 ? this.readbackPool.splice(pooled, 1)[0] : this.device.createBuffer({ size: total, usage: READBACK_USAGE });
    let offset = 0;
    const offsets = items.map((x, i) => {
      const at = offset;
      if (sizes[i] > 0) encoder.copyBufferToBuffer(x.bound.buffer, x.bound.offset, staging, at, sizes[i]);
      offset += Math.max(4, sizes[i]);
      return at;
    });
    return async () => {
      let bytes: ArrayBuffer;
      try {
        await this.scoped('reading results', () => staging.mapAsync(MAP_READ, 0, total));
        bytes = staging.getMappedRange(0, total).slice(0);
        staging.unmap();
      } catch (e) {
        staging.destroy();
        throw e;
      }
      if (this.readbackPool.length < READBACK_POOL && staging.size <= READBACK_POOL_MAX_BYTES && !this.destroyed) this.readbackPool.push(staging);
      else staging.destroy();
      return items.map((x, i) => fromBytes(x.dtype, bytes.slice(offsets[i], offsets[i] + sizes[i])));
    };
  }

  /**
   * Copies of a graph's outputs recorded on `encoder` (submitted by the caller, with the graph's own
   * work: one submit for a predict), or on an encoder of their own submitted now when it is null; the
   * returned function reads them once submitted.
   */
  encodeRead(encoder: GPUCommandEncoder | null, g: GraphProgram, names: readonly string[], sizes: ReadonlyMap<string, number>): () => Promise<Record<string, { data: TypedArray; shape: number[] }>> {
    const inst = this.instance(g);
    const items = names.map((name) => ({ name, bound: inst.buffers[g.outputs[name]]!, ...this.declOf(g.buffers[g.outputs[name]], sizes) }));
    const read = encoder
      ? this.encodeDownload(encoder, items)
      : this.scoped('reading results', () => {
          const own = this.device.createCommandEncoder();
          const r = this.encodeDownload(own, items);
          this.device.queue.submit([own.finish()]);
          return r;
        });
    return async () => {
      const data = await read();
      return Object.fromEntries(items.map((x, i) => [x.name, { data: data[i], shape: x.shape }]));
    };
  }

  private declOf(decl: BufferDecl, sizes: ReadonlyMap<string, number>): { dtype: DType; shape: number[] } {
    if (decl.kind === 'param') {
      const p = this.program.params.find((x) => x.path === decl.path)!;
      return { dtype: p.dtype, shape: [...p.shape] };
    }
    if (decl.kind === 'state') {
      const s = this.program.state.find((x) => x.path === decl.path)!;
      return { dtype: s.dtype, shape: [...s.shape] };
    }
    if (decl.kind === 'arena') return { dtype: this.program.arenas![decl.arena].dtype, shape: [decl.size] };
    return { dtype: decl.dtype, shape: evalShape(decl.shape, sizes) };
  }

  /** Every parameter and state buffer's contents (or those of `paths`), by path, read in one copy and one map. */
  async readModelBuffers(paths?: readonly string[]): Promise<Map<string, { dtype: DType; shape: number[]; data: TypedArray; kind: 'param' | 'state' }>> {
    const wanted = paths ? new Set(paths) : undefined;
    const all = [
      ...this.program.params.map((p) => ({ ...p, kind: 'param' as const, bound: this.params.get(p.path)! })),
      ...this.program.state.filter((s) => !this.deferredState.has(s.path)).map((s) => ({ ...s, kind: 'state' as const, bound: this.state.get(s.path)! })),
    ].filter((x) => !wanted || wanted.has(x.path));
    // the optimizer's state before the first training call: what was written to it, else its initial values
    const deferred = this.program.state
      .filter((s) => this.deferredState.has(s.path) && (!wanted || wanted.has(s.path)))
      .map((s): [string, { dtype: DType; shape: number[]; data: TypedArray; kind: 'param' | 'state' }] => [s.path, { dtype: s.dtype, shape: [...s.shape], kind: 'state', data: (this.pendingState.get(s.path) ?? toStorageArray(s.dtype, initialValues(s.init, s.shape, this.seed, s.init.stream))).slice() }]);
    const data = await this.download(all);
    const byPath = new Map<string, { dtype: DType; shape: number[]; data: TypedArray; kind: 'param' | 'state' }>([...all.map((x, i): [string, { dtype: DType; shape: number[]; data: TypedArray; kind: 'param' | 'state' }] => [x.path, { dtype: x.dtype, shape: [...x.shape], kind: x.kind, data: data[i] }]), ...deferred]);
    // in the program's order, as before
    const order = [...this.program.params, ...this.program.state].map((d) => d.path);
    return new Map(order.filter((p) => byPath.has(p)).map((p) => [p, byPath.get(p)!]));
  }

  /** Overwrite one parameter or state buffer. */
  writeModelBuffer(path: string, data: TypedArray): void {
    this.writeModelBuffers([[path, data]], `writing ${path}`);
  }

  /**
   * Overwrite parameter and state buffers, all inside one pair of error scopes (a weights file of
   * hundreds of tensors is one scope to settle, not one per tensor).
   */
  writeModelBuffers(writes: readonly (readonly [path: string, data: TypedArray])[], what: string): void {
    for (const [path] of writes) {
      if (!this.deferredState.has(path) && !this.params.has(path) && !this.state.has(path)) throw new InputError(`the model has no parameter or state \`${path}\``);
    }
    this.scoped(what, () => {
      for (const [path, data] of writes) {
        if (this.deferredState.has(path)) {
          this.pendingState.set(path, data.slice());
          continue;
        }
        const b = (this.params.get(path) ?? this.state.get(path))!;
        this.device.queue.writeBuffer(b.buffer, b.offset, data);
      }
    });
  }

  /**
   * Copy parameter or state buffers of another executor on the same device into this one's, on the
   * GPU, in one submit (ordered after the work both have submitted so far). Shapes are the caller's to check.
   */
  copyModelBuffersFrom(other: Executor, pairs: readonly { readonly from: string; readonly to: string }[]): void {
    this.scoped('copying parameters', () => {
      const encoder = this.device.createCommandEncoder();
      for (const { from, to } of pairs) {
        const src = other.params.get(from) ?? other.state.get(from);
        const dst = this.params.get(to) ?? this.state.get(to);
        if (!src || !dst) throw new InputError(`no parameter \`${!src ? from : to}\` to copy`);
        const decl = [...this.program.params, ...this.program.state].find((d) => d.path === to)!;
        const bytes = byteLength(decl.dtype, decl.shape.reduce((x, y) => x * y, 1));
        if (bytes > 0) encoder.copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, bytes);
      }
      this.device.queue.submit([encoder.finish()]);
    });
  }

  /** evaluateSet's per-batch random keys: the scratch words (saved key, batch index, folded key) and the kernel that folds them. */
  private keyFold: { words: GPUBuffer; pipeline: GPUComputePipeline } | undefined;

  /** Whether the model has a random key (`rng.key`) that its graphs' random ops draw from. */
  get hasRandomKey(): boolean {
    return this.state.has('rng.key');
  }

  /**
   * Give one batch of an evaluation its own random key: batch 0 keeps the model's key (so one batch
   * evaluates as `evaluate` does), batch `index` > 0 draws from a hash of that key and the index. The
   * key is saved at batch 0 and the folded key written over `rng.key` in `encoder`, in queue order;
   * `restoreRandomKey` puts the saved key back. Nothing is read to the host, so other calls submitted
   * before and after see the key they would have seen without the evaluation.
   */
  encodeRandomKeyFold(encoder: GPUCommandEncoder, index: number): void {
    const key = this.state.get('rng.key');
    if (!key) return;
    this.keyFold ??= {
      words: this.createBuffer(16, STORAGE_USAGE, 'the evaluation key'),
      pipeline: this.device.createComputePipeline({
        layout: 'auto',
        compute: {
          entryPoint: 'main',
          module: this.device.createShaderModule({
            code: `// evaluateSet: batch k[1]'s key from the saved key k[0], a murmur3 finalizer of key + index * golden ratio.
@group(0) @binding(0) var<storage, read_write> k: array<u32, 4>;
@compute @workgroup_size(1)
fn main() {
  var h = k[0] + k[1] * 0x9e3779b9u;
  h = h ^ (h >> 16u);
  h = h * 0x85ebca6bu;
  h = h ^ (h >> 13u);
  h = h * 0xc2b2ae35u;
  h = h ^ (h >> 16u);
  k[2] = h;
}`,
          }),
        },
      }),
    };
    const { words, pipeline } = this.keyFold;
    if (index === 0) {
      encoder.copyBufferToBuffer(key.buffer, key.offset, words, 0, 4);
      return;
    }
    // written on the queue before this encoder's submit, after every earlier one
    this.device.queue.writeBuffer(words, 4, Uint32Array.of(index >>> 0));
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: words } }] }));
    pass.dispatchWorkgroups(1);
    pass.end();
    encoder.copyBufferToBuffer(words, 8, key.buffer, key.offset, 4);
  }

  /** Put back the key `encodeRandomKeyFold` saved at batch 0 (its own submit, in queue order). */
  restoreRandomKey(): void {
    const key = this.state.get('rng.key');
    if (!key || !this.keyFold) return;
    const words = this.keyFold.words;
    this.scoped('restoring the random key', () => {
      const encoder = this.device.createCommandEncoder();
      encoder.copyBufferToBuffer(words, 0, key.buffer, key.offset, 4);
      this.device.queue.submit([encoder.finish()]);
    });
  }

  private lerpPipeline: GPUComputePipeline | undefined;

  /**
   * `to = tau * from + (1 - tau) * to` for each pair of f32 parameters, on the GPU and in queue order
   * with every other call (Polyak averaging of a target network), on one device with `other`.
   */
  lerpModelBuffersFrom(other: Executor, pairs: readonly { readonly from: string; readonly to: string }[], tau: number): void {
    this.scoped('averaging parameters', () => {
      this.lerpPipeline ??= this.device.createComputePipeline({
        layout: 'auto',
        compute: {
          entryPoint: 'main',
          module: this.device.createShaderModule({
            code: `// copyParametersFrom with tau: to = tau * from + (1 - tau) * to, a grid-stride loop.
struct P { n: u32, stride: u32, tau: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  for (var i = g.x; i < p.n; i = i + p.stride) {
    dst[i] = p.tau * src[i] + (1.0 - p.tau) * dst[i];
  }
}`,
          }),
        },
      });
      const encoder = this.device.createCommandEncoder();
      const temps: GPUBuffer[] = [];
      const jobs: { src: { buffer: GPUBuffer; offset: number }; dst: { buffer: GPUBuffer; offset: number }; n: number }[] = [];
      for (const { from, to } of pairs) {
        let src: { buffer: GPUBuffer; offset: number } | undefined = other.params.get(from) ?? other.state.get(from);
        const dst = this.params.get(to) ?? this.state.get(to);
        if (!src || !dst) throw new InputError(`no parameter \`${!src ? from : to}\` to average`);
        const decl = [...this.program.params, ...this.program.state].find((d) => d.path === to)!;
        const n = decl.shape.reduce((x, y) => x * y, 1);
        if (n === 0) continue;
        if (src.buffer === dst.buffer) {
          // one arena holds both (a model averaged from itself): read a copy, as a dispatch may not read and write one buffer
          const temp = this.device.createBuffer({ size: byteLength('f32', n), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
          encoder.copyBufferToBuffer(src.buffer, src.offset, temp, 0, byteLength('f32', n));
          temps.push(temp);
          src = { buffer: temp, offset: 0 };
        }
        jobs.push({ src, dst, n });
      }
      const pass = encoder.beginComputePass();
      const uniforms: GPUBuffer[] = [];
      for (const { src, dst, n } of jobs) {
        const groups = Math.min(Math.ceil(n / 256), 256);
        const uniform = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        const words = new ArrayBuffer(16);
        new Uint32Array(words, 0, 2).set([n, groups * 256]);
        new Float32Array(words, 8, 1)[0] = tau;
        this.device.queue.writeBuffer(uniform, 0, words);
        uniforms.push(uniform);
        const bytes = byteLength('f32', n);
        pass.setPipeline(this.lerpPipeline);
        pass.setBindGroup(0, this.device.createBindGroup({
          layout: this.lerpPipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: uniform } },
            { binding: 1, resource: { buffer: src.buffer, offset: src.offset, size: bytes } },
            { binding: 2, resource: { buffer: dst.buffer, offset: dst.offset, size: bytes } },
          ],
        }));
        pass.dispatchWorkgroups(groups);
      }
      pass.end();
      this.device.queue.submit([encoder.finish()]);
      // the submitted work keeps what it reads; the uniforms and copies go once it has run
      for (const u of [...uniforms, ...temps]) u.destroy();
    });
  }

  destroy(): void {
    this.destroyed = true;
    this.uploads.destroy();
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    for (const b of this.stagingPool.splice(0)) b.destroy();
    for (const b of this.readbackPool.splice(0)) b.destroy();
    for (const r of this.outstanding) if (r.state === 'pending') r.staging?.destroy();
    for (const inst of this.graphs.values()) for (const b of inst.allocated) b?.destroy();
    this.graphs.clear();
  }
}
