// One Dawn adapter and device for both libraries: dlc gets it through CreateOptions.device, TF.js through a
// `webgpu` backend built on it (WebGPUBackend's constructor takes a device), so both run on the same queue.
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { isCpuAdapter } from '../runtime/device.ts';

export type Tf = typeof import('@tensorflow/tfjs-core');

export interface SharedGpu {
  readonly device: GPUDevice;
  /** The adapter in words (vendor / architecture / description), as dlc's runtime writes it. */
  readonly adapterInfo: string;
  /** A software adapter (lavapipe, SwiftShader): dlc runs its CPU kernel variants there. */
  readonly cpu: boolean;
  readonly tf: Tf;
  /** The TF.js WebGPU backend on `device` (submitQueue, memory). */
  readonly backend: TfWebGPUBackend;
}

/** What the harness uses of TF.js's WebGPUBackend (typed here so the package's .d.ts are not needed). */
export interface TfWebGPUBackend {
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  memory(): { numBytesInGPU: number; numBytesAllocatedInGPU: number };
}

/** Dawn's Vulkan loader needs XDG_RUNTIME_DIR: a private folder of this process where it is unset. */
export function ensureRuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR) return;
  const dir = `${os.tmpdir()}/dlc-bench-xdg-${process.pid}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

/** Dawn aborts if its instance or adapter is collected while the device lives. */
const keepAlive: unknown[] = [];

export async function openSharedGpu(): Promise<SharedGpu> {
  ensureRuntimeDir();
  const webgpu = (await import('webgpu')) as unknown as { create(options: string[]): GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  keepAlive.push(gpu);
  // TF.js's backend checks navigator.gpu when it is constructed; Node 20 has no navigator.
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator === undefined) g.navigator = { gpu };
  else if (g.navigator.gpu === undefined) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });

  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter: install Mesa lavapipe (mesa-vulkan-drivers) or run on a GPU machine');
  keepAlive.push(adapter);
  // the limits TF.js's own factory requests (it sizes workgroups and buffers from them); dlc needs no more
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
  };
  // subgroups where the adapter has them: dlc's reductions use them, and TF.js may
  const requiredFeatures = (['subgroups'] as const).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  keepAlive.push(device);
  const info = adapter.info;
  const adapterInfo = [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(' / ') || 'unknown adapter';

  // tfjs-core's Node bundle registers no gradients; the umbrella package's bundle does (and the CPU and
  // WebGL backends, which stay unused)
  await import('@tensorflow/tfjs');
  const tf = (await import('@tensorflow/tfjs-core')) as Tf;
  const backendModule = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { WebGPUBackend: new (device: GPUDevice, info?: GPUAdapterInfo) => TfWebGPUBackend };
  const backend = new backendModule.WebGPUBackend(device, info);
  // importing the package registered a 'webgpu' factory that would create its own device: replace it
  // (the kernels are registered under the name 'webgpu', so the backend must keep that name)
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => backend as unknown as ReturnType<Parameters<Tf['registerBackend']>[1]> & object, 10);
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend on the shared device');
  if ((tf.backend() as unknown) !== backend) throw new Error('TF.js is not using the backend on the shared device');
  return { device, adapterInfo, cpu: isCpuAdapter(info), tf, backend };
}

/** The machine, for the results file. */
export function machineInfo(adapterInfo: string): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} (${os.platform()}-${os.arch()})`,
    node: process.version,
    adapter: adapterInfo,
  };
}
