// A minimal test executor for generated kernels on Dawn: one shared device, pipelines cached by WGSL, batched single-kernel launches.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DType, Graph, Node, Value } from '../compiler/ir/types.ts';
import { type CpuVariantPlan, type KernelPlan, lowerNode } from '../compiler/codegen/kernel.ts';
import { type Dim, dimToString, evaluate } from '../compiler/shapes/dim.ts';
import type { Tensor } from '../compiler/interpret/tensor.ts';
import { dispatchSize, elementwiseUniforms, type ElementwiseKernel } from '../compiler/codegen/elementwise.ts';
import { inPlaceNodeOf } from '../compiler/optimize/concat-in-place.ts';

let devicePromise: Promise<GPUDevice> | undefined;
/** Held for the life of the process: if Dawn's instance or adapter is garbage collected, the device crashes. */
const keepAlive: unknown[] = [];

/** The one WebGPU device the GPU tests share (Dawn through the `webgpu` package; lavapipe in CI). */
export function getDevice(): Promise<GPUDevice> {
  devicePromise ??= (async () => {
    if (!process.env.XDG_RUNTIME_DIR) {
      const dir = join(tmpdir(), `dlc-xdg-${process.pid}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      process.env.XDG_RUNTIME_DIR = dir;
    }
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter: is Mesa 25 lavapipe (bookworm-backports) installed?');
    // subgroups where the adapter has them (lavapipe does), so the reductions' subgroup variants run
    const device = await adapter.requestDevice(adapter.features.has('subgroups') ? { requiredFeatures: ['subgroups' as GPUFeatureName] } : {});
    keepAlive.push(gpu, adapter, device);
    return device;
  })();
  return devicePromise;
}

export interface CompiledShader {
  readonly module: GPUShaderModule;
  readonly pipeline: GPUComputePipeline;
  /** Compiler messages (errors and warnings), as `type line:col message`. */
  readonly messages: string[];
}

const shaders = new WeakMap<GPUDevice, Map<string, Promise<CompiledShader>>>();

/** Compile a shader once per device and WGSL text; collects getCompilationInfo messages. */
export function compile(device: GPUDevice, wgsl: string): Promise<CompiledShader> {
  let cache = shaders.get(device);
  if (!cache) shaders.set(device, (cache = new Map()));
  let entry = cache.get(wgsl);
  if (!entry) {
    entry = (async () => {
      // Push, create and pop without an await in between, so concurrent compiles never share a scope.
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code: wgsl });
      const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const popped = device.popErrorScope();
      const info = await module.getCompilationInfo();
      const messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
      const error = await popped;
      if (error) throw new Error(`${error.message}\n${messages.join('\n')}\n${wgsl}`);
      return { module, pipeline, messages };
    })();
    cache.set(wgsl, entry);
  }
  return entry;
}

/** A tensor's elements as the bytes its storage buffer holds (bool as u32 0/1). */
export function toStorage(t: Tensor): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> {
  switch (t.dtype) {
    case 'f32':
      return Float32Array.from(t.data);
    case 'i32':
      return Int32Array.from(t.data);
    case 'u32':
    case 'bool':
      return Uint32Array.from(t.data);
    case 'f16':
      throw new Error('f16 buffers are not supported yet');
  }
}

function fromStorage(dtype: DType, shape: number[], bytes: ArrayBuffer): Tensor {
  const view = dtype === 'f32' ? new Float32Array(bytes) : dtype === 'i32' ? new Int32Array(bytes) : new Uint32Array(bytes);
  return { dtype, shape, data: Float64Array.from(view) };
}

/** One kernel launch, ready to encode: its shader, uniform words, inputs and the output it writes. */
export interface Launch {
  readonly op: string;
  readonly wgsl: string;
  readonly inputs: readonly Tensor[];
  /** The input shapes the kernel was specialised to by the sizes; the inputs must have them. */
  readonly inShapes: readonly (readonly number[])[];
  readonly uniform: Uint32Array<ArrayBuffer>;
  readonly outShape: number[];
  readonly outDtype: DType;
  /** The workgroup grid, or null when there is nothing to compute (an empty output). */
  readonly dispatch: readonly [number, number] | null;
}

/**
 * Run a batch of single-kernel launches: one command buffer, distinct output buffers (no buffer is
 * ever bound as both input and output), all readbacks mapped together. Returns one output per launch.
 */
export async function runLaunches(device: GPUDevice, launches: readonly Launch[]): Promise<Tensor[]> {
  const compiled = await Promise.all(launches.map((l) => compile(device, l.wgsl)));
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const created: GPUBuffer[] = [];
  const buffer = (size: number, usage: number): GPUBuffer => {
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage });
    created.push(b);
    return b;
  };
  const encoder = device.createCommandEncoder();
  device.pushErrorScope('validation');
  const readbacks: { buf: GPUBuffer; bytes: number; dtype: DType; shape: number[] }[] = [];
  launches.forEach((l, n) => {
    l.inputs.forEach((t, i) => {
      const want = l.inShapes[i];
      if (t.shape.length !== want.length || t.shape.some((d, a) => d !== want[a])) {
        throw new Error(`${l.op}: input ${i} has shape [${t.shape.join(', ')}], the kernel expects [${want.join(', ')}]`);
      }
    });
    const bytes = l.outShape.reduce((a, b) => a * b, 1) * 4;
    const out = buffer(bytes, storage);
    const readback = buffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    readbacks.push({ buf: readback, bytes, dtype: l.outDtype, shape: l.outShape });
    if (bytes === 0 || l.dispatch === null) return;
    const uniform = buffer(l.uniform.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(uniform, 0, l.uniform);
    const ins = l.inputs.map((t) => {
      const host = toStorage(t);
      const b = buffer(host.byteLength, storage);
      if (host.byteLength > 0) device.queue.writeBuffer(b, 0, host);
      return b;
    });
    if (ins.includes(out)) throw new Error('a buffer is bound as both input and output');
    const { pipeline } = compiled[n];
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [uniform, ...ins, out].map((b, binding) => ({ binding, resource: { buffer: b } })),
    });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(l.dispatch[0], l.dispatch[1]);
    pass.end();
    encoder.copyBufferToBuffer(out, 0, readback, 0, Math.max(4, bytes));
  });
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`WebGPU validation error: ${error.message}`);
  const results = await Promise.all(
    readbacks.map(async ({ buf, bytes, dtype, shape }) => {
      await buf.mapAsync(GPUMapMode.READ);
      const copy = buf.getMappedRange(0, Math.max(4, bytes)).slice(0, bytes);
      buf.unmap();
      return fromStorage(dtype, shape, copy);
    }),
  );
  for (const b of created) b.destroy();
  return results;
}

export interface ElementwiseRun {
  readonly kernel: ElementwiseKernel;
  readonly inputs: readonly Tensor[];
  readonly sizes: ReadonlyMap<string, number>;
  /** Override the per-dimension workgroup limit (tests fold the grid with a small one). */
  readonly maxWorkgroupsPerDim?: number;
}

/** Run a batch of single elementwise nodes; returns one output per run. */
export function runElementwise(device: GPUDevice, runs: readonly ElementwiseRun[]): Promise<Tensor[]> {
  return runLaunches(
    device,
    runs.map((r) => {
      const { data, numel, outShape, inShapes } = elementwiseUniforms(r.kernel, r.sizes);
      return {
        op: r.kernel.op,
        wgsl: r.kernel.wgsl,
        inputs: r.inputs,
        inShapes,
        uniform: data,
        outShape,
        outDtype: r.kernel.output.dtype,
        dispatch: numel === 0 ? null : dispatchSize(numel, r.kernel.workgroupSize, r.maxWorkgroupsPerDim),
      };
    }),
  );
}

/**
 * Run one node through its registry lowering (`lowerNode`: every dispatch it needs, in order) on the
 * GPU and read back all its outputs. The symbolic sizes in the node's types and attributes are bound
 * by `sizes`; the inputs must have the bound shapes.
 */
/** 'cpu': as the runtime on a CPU adapter with subgroups of 8+ lanes (lavapipe); 'cpu-plain': one without subgroups (SwiftShader). */
type Variant = 'gpu' | 'subgroup' | 'cpu' | 'cpu-plain';
const isCpu = (v: Variant | undefined): boolean => v === 'cpu' || v === 'cpu-plain';

/** A plan's shader in `variant` where it has one (CPU: `cpuWgsl`), not counting a CPU variant with its own grid. */
function ownShader(p: KernelPlan, variant: Variant | undefined): string {
  if (isCpu(variant) && p.cpuWgsl !== undefined) return p.cpuWgsl;
  return variant === 'subgroup' && p.subgroupWgsl !== undefined ? p.subgroupWgsl : p.wgsl;
}

/** The CPU variants with their own grids a plan may run in `variant` (those using subgroups only in 'cpu'), less those an earlier one shadows (as the runtime). */
export function cpuVariantsOf(p: KernelPlan, variant: Variant | undefined): readonly CpuVariantPlan[] {
  if (!isCpu(variant)) return [];
  const usable = (p.cpuVariants ?? []).filter((v) => v.minSubgroupSize === undefined || variant === 'cpu');
  const seen: (Dim | undefined)[] = [];
  return usable.filter((v) => {
    const shadowed = seen.some((r) => r === undefined || (v.requires !== undefined && dimToString(r) === dimToString(v.requires)));
    seen.push(v.requires);
    return !shadowed;
  });
}

/** A plan's shader and workgroup count in `variant` at bound sizes, as the runtime picks: on CPU, the first of its CPU variants with their own grids whose `requires` is positive. */
function variantOf(p: KernelPlan, variant: Variant | undefined, sizes: ReadonlyMap<string, number>): { wgsl: string; workgroups: Dim } {
  const cpu = cpuVariantsOf(p, variant).find((v) => v.requires === undefined || evaluate(v.requires, sizes) > 0);
  if (cpu) return { wgsl: cpu.wgsl, workgroups: cpu.workgroups };
  return { wgsl: ownShader(p, variant), workgroups: p.workgroups };
}

export async function runNode(device: GPUDevice, node: Node, inputs: readonly Tensor[], sizes: ReadonlyMap<string, number> = new Map(), options: { variant?: Variant } = {}): Promise<Tensor[]> {
  const bind = (d: Dim): number => {
    const v = evaluate(d, sizes);
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${node.op}: size ${v} is not a u32`);
    return v;
  };
  const plans = lowerNode(node).map((p) => ({ ...p, ...variantOf(p, options.variant, sizes) }));
  const compiled = await Promise.all(plans.map((p) => compile(device, p.wgsl)));
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const created: GPUBuffer[] = [];
  const buffer = (bytes: number, usage: number): GPUBuffer => {
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage });
    created.push(b);
    return b;
  };
  const inBufs = inputs.map((t, i) => {
    const want = node.inputs[i].type.shape.map(bind);
    if (t.shape.length !== want.length || t.shape.some((d, a) => d !== want[a])) throw new Error(`${node.op}: input ${i} has shape [${t.shape}], expected [${want}]`);
    const host = toStorage(t);
    const b = buffer(host.byteLength, storage);
    if (host.byteLength > 0) device.queue.writeBuffer(b, 0, host);
    return b;
  });
  const outShapes = node.outputs.map((v) => v.type.shape.map(bind));
  const outBufs = outShapes.map((s) => buffer(s.reduce((a, b) => a * b, 1) * 4, storage));
  const encoder = device.createCommandEncoder();
  device.pushErrorScope('validation');
  plans.forEach((plan, n) => {
    const groups = bind(plan.workgroups);
    if (groups === 0) return;
    const uniform = buffer(plan.uniforms.length * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(uniform, 0, Uint32Array.from(plan.uniforms.map(bind)));
    const ins = (plan.inputs ?? inputs.map((_, i) => i)).map((i) => inBufs[i]);
    const outs = (plan.outputs ?? outBufs.map((_, i) => i)).map((i) => outBufs[i]);
    const { pipeline } = compiled[n];
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [uniform, ...ins, ...outs].map((b, binding) => ({ binding, resource: { buffer: b } })),
    });
    const [x, y] = dispatchSize(groups, 1);
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    pass.end();
  });
  const readbacks = outBufs.map((b, i) => {
    const bytes = outShapes[i].reduce((a, c) => a * c, 1) * 4;
    const rb = buffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    encoder.copyBufferToBuffer(b, 0, rb, 0, Math.max(4, bytes));
    return { rb, bytes };
  });
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`${node.op}: WebGPU validation error: ${error.message}`);
  const results = await Promise.all(
    readbacks.map(async ({ rb, bytes }, i) => {
      await rb.mapAsync(GPUMapMode.READ);
      const copy = rb.getMappedRange(0, Math.max(4, bytes)).slice(0, bytes);
      rb.unmap();
      return fromStorage(node.outputs[i].type.dtype, outShapes[i], copy);
    }),
  );
  for (const b of created) b.destroy();
  return results;
}

/** A graph to run on the GPU, with its feeds by input name and the symbolic sizes they bind. */
export interface GraphJob {
  readonly graph: Graph;
  readonly feeds: ReadonlyMap<string, Tensor>;
  readonly sizes?: ReadonlyMap<string, number>;
}

/**
 * Run many graphs on the GPU in one command buffer: every node through its registry lowering (the
 * plans' GPU shaders, or with `variant: 'cpu'` / `'subgroup'` their CPU / subgroup variants where they have one), one buffer per
 * value; returns each graph's outputs as raw 32-bit words by name.
 */
export async function runGraphs(device: GPUDevice, jobs: readonly GraphJob[], options: { variant?: Variant; wide?: string } = {}): Promise<Map<string, Uint32Array>[]> {
  // `wide`: the GPU variant of that name (plan.wide) where a plan has one, with its own workgroup count
  const wideOf = (p: KernelPlan) => (options.wide !== undefined ? p.wide?.find((w) => w.name === options.wide) : undefined);
  // the shader and grid a plan runs at the current job's sizes
  const chosen = (p: KernelPlan) => wideOf(p) ?? variantOf(p, options.variant, sizes);
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const created: GPUBuffer[] = [];
  const buffer = (bytes: number, usage: number) => {
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage });
    created.push(b);
    return b;
  };
  let sizes: ReadonlyMap<string, number> = new Map();
  const bind = (d: Dim) => evaluate(d, sizes);
  const plansOf = jobs.map((j) => j.graph.nodes.map((n) => lowerNode(n)));
  const pipelines = new Map<string, GPUComputePipeline>();
  const t0 = performance.now();
  // every shader a plan may run, whatever the sizes (its CPU variant's `requires` is only known per job)
  const candidates = (p: KernelPlan) => [wideOf(p)?.wgsl ?? ownShader(p, options.variant), ...(wideOf(p) ? [] : cpuVariantsOf(p, options.variant).map((v) => v.wgsl))];
  const unique = [...new Set(plansOf.flat(2).flatMap(candidates))];
  const compiledAll = await Promise.all(unique.map((w) => compile(device, w)));
  unique.forEach((w, i) => pipelines.set(w, compiledAll[i].pipeline));
  const t1 = performance.now();
  const encoder = device.createCommandEncoder();
  device.pushErrorScope('validation');
  const readbacks: { job: number; name: string; buf: GPUBuffer; bytes: number }[] = [];
  jobs.forEach((job, j) => {
    sizes = job.sizes ?? new Map();
    const bufs = new Map<number, GPUBuffer>();
    for (const i of job.graph.inputs) {
      const host = toStorage(job.feeds.get(i.name)!);
      const b = buffer(host.byteLength, storage);
      device.queue.writeBuffer(b, 0, host);
      bufs.set(i.value.id, b);
    }
    const pass = encoder.beginComputePass();
    // an in-place concat's operands are slabs of its result's buffer (as codegen/program.ts lowers them)
    const slabOf = inPlaceNodeOf(job.graph.nodes);
    const bufferFor = (o: Value) => buffer(o.type.shape.map(bind).reduce((a, c) => a * c, 1) * 4, storage);
    job.graph.nodes.forEach((node, k) => {
      for (const o of node.outputs) {
        const whole = slabOf.get(o.id)?.outputs[0];
        if (whole && !bufs.has(whole.id)) bufs.set(whole.id, bufferFor(whole));
        if (!bufs.has(o.id)) bufs.set(o.id, whole ? bufs.get(whole.id)! : bufferFor(o));
      }
      for (const plan of plansOf[j][k]) {
        const uniform = buffer(plan.uniforms.length * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
        device.queue.writeBuffer(uniform, 0, Uint32Array.from(plan.uniforms.map(bind)));
        const ins = (plan.inputs ?? node.inputs.map((_, i) => i)).map((i) => bufs.get(node.inputs[i].id)!);
        const outs = (plan.outputs ?? node.outputs.map((_, i) => i)).map((i) => bufs.get(node.outputs[i].id)!);
        const run = chosen(plan);
        const pipeline = pipelines.get(run.wgsl)!;
        const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [uniform, ...ins, ...outs].map((b, binding) => ({ binding, resource: { buffer: b } })) });
        const groups = bind(run.workgroups);
        if (groups === 0) continue;
        const [x, y] = dispatchSize(groups, 1);
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(x, y);
      }
    });
    pass.end();
    for (const [name, v] of job.graph.outputs) {
      const bytes = v.type.shape.map(bind).reduce((a, c) => a * c, 1) * 4;
      if (bytes === 0) {
        readbacks.push({ job: j, name, buf: buffer(4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST), bytes });
        continue;
      }
      const rb = buffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      encoder.copyBufferToBuffer(bufs.get(v.id)!, 0, rb, 0, Math.max(4, bytes));
      readbacks.push({ job: j, name, buf: rb, bytes });
    }
  });
  const t2 = performance.now();
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`WebGPU validation error: ${error.message}`);
  const t3 = performance.now();
  if (process.env.DLC_GPU_VERBOSE) console.log(`runGraphs: ${unique.length} shaders ${(t1 - t0).toFixed(0)} ms, encode ${(t2 - t1).toFixed(0)} ms, submit ${(t3 - t2).toFixed(0)} ms`);
  const results = jobs.map(() => new Map<string, Uint32Array>());
  const t4 = performance.now();
  await Promise.all(
    readbacks.map(async (r) => {
      await r.buf.mapAsync(GPUMapMode.READ);
      results[r.job].set(r.name, new Uint32Array(r.buf.getMappedRange(0, Math.max(4, r.bytes)).slice(0, r.bytes)));
      r.buf.unmap();
    }),
  );
  for (const b of created) b.destroy();
  if (process.env.DLC_GPU_VERBOSE) console.log(`runGraphs: read back in ${(performance.now() - t4).toFixed(0)} ms`);
  return results;
}
