// Acquiring a WebGPU device in a browser (navigator.gpu) or in Node (Dawn through the `webgpu` package), with typed failures.
import { DeviceLostError, NoAdapterError, NoWebGPUError } from './errors.ts';

export interface DeviceOptions {
  /** Use this device instead of acquiring one (the caller keeps ownership). */
  readonly device?: GPUDevice;
  readonly powerPreference?: GPUPowerPreference;
  /** Limits the model needs beyond WebGPU's defaults; requested only if the adapter offers them. */
  readonly requiredLimits?: Readonly<Record<string, number>>;
}

export interface AcquiredDevice {
  readonly device: GPUDevice;
  /** A short description of the adapter (vendor, architecture, description), for logs and benchmarks. */
  readonly adapterInfo: string;
  /** Resolves (never rejects) when the device is lost, with why. */
  readonly lost: Promise<string>;
  /** The device's one watch, shared by every model on it: `reason` is set once the device is lost. */
  readonly watch: DeviceWatch;
  /** True when dlc created the device and so should destroy it on dispose. */
  readonly owned: boolean;
  /** A software adapter running on the CPU (lavapipe, SwiftShader): kernels pick their CPU variants. */
  readonly cpu: boolean;
}

/** Whether adapter info describes a CPU implementation of WebGPU. */
export function isCpuAdapter(info: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean } | undefined): boolean {
  if (!info) return false;
  if (info.isFallbackAdapter) return true;
  return /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''}`);
}

/**
 * Whether a device is lost, and why: one per device, however many models are created on it. A
 * `device.lost.then(...)` per model would add a reaction to a promise that never settles while the
 * device lives, so a service creating and disposing models on one device would keep each reaction.
 */
export interface DeviceWatch {
  /** Why the device was lost; undefined while it lives. */
  reason: string | undefined;
  /** Resolves (never rejects) when the device is lost, with why. */
  readonly lost: Promise<string>;
}

const watches = new WeakMap<GPUDevice, DeviceWatch>();

/** The device's watch, made on first use (`onLost` runs once, when the first watch sees the loss). */
export function watchDevice(device: GPUDevice, onLost?: () => void): DeviceWatch {
  let watch = watches.get(device);
  if (!watch) {
    const w: { reason: string | undefined; lost?: Promise<string> } = { reason: undefined };
    w.lost = device.lost.then((i) => {
      onLost?.();
      return (w.reason = i.message || String(i.reason));
    });
    watch = w as DeviceWatch;
    watches.set(device, watch);
  }
  return watch;
}

/** Dawn crashes if its instance or adapter is garbage collected while a device lives: hold them. */
const keepAlive: unknown[] = [];

/** How many Dawn objects are held for live devices (tests: disposing every model lets them go). */
export function heldDawnObjects(): number {
  return keepAlive.length;
}

/**
 * Imports a module only at run time, by a specifier no bundler can see: a function parameter, which esbuild
 * cannot fold into a constant (as it folds `'node:' + 'os'`) and Vite and webpack cannot resolve. Pages never
 * reach it (they have navigator.gpu, or get NoWebGPUError first), so their bundles hold no Node built-ins.
 */
function importAtRunTime(specifier: string): Promise<unknown> {
  return import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);
}

/** The Node process, when running under Node (not a page's `process` shim, which has no `versions.node`). */
function nodeProcess(): { env: Record<string, string | undefined>; pid: number } | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; pid?: number; versions?: { node?: string } } }).process;
  if (typeof proc?.versions?.node !== 'string' || !proc.env || typeof proc.pid !== 'number') return undefined;
  return proc as { env: Record<string, string | undefined>; pid: number };
}

const NO_NAVIGATOR_GPU = 'WebGPU is not available: this browser has no navigator.gpu (try a recent Chrome or Edge, or enable WebGPU)';

async function nodeGPU(): Promise<GPU> {
  const proc = nodeProcess();
  if (!proc) throw new NoWebGPUError(NO_NAVIGATOR_GPU);
  let mod: { create(options: string[]): GPU; globals: Record<string, unknown> };
  try {
    if (!proc.env.XDG_RUNTIME_DIR) {
      // Dawn's Vulkan loader wants a runtime directory; give it a private one.
      const os = (await importAtRunTime('node:os')) as { tmpdir(): string };
      const fs = (await importAtRunTime('node:fs')) as { mkdirSync(path: string, options: { recursive: boolean; mode: number }): unknown };
      const dir = `${os.tmpdir()}/dlc-xdg-${proc.pid}`;
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      proc.env.XDG_RUNTIME_DIR = dir;
    }
    mod = (await importAtRunTime('webgpu')) as typeof mod;
  } catch (e) {
    throw new NoWebGPUError(`WebGPU is not available: the \`webgpu\` package could not be loaded (${(e as Error).message}); install it with \`npm install webgpu\``);
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  keepAlive.push(gpu);
  return gpu;
}

/** One Dawn instance per process, made on first use: each model's device comes from its adapters (a new instance per model was never freed). */
let nodeInstance: Promise<GPU> | undefined;
function sharedNodeGPU(): Promise<GPU> {
  nodeInstance ??= nodeGPU().catch((e: unknown) => {
    nodeInstance = undefined; // not installed, say: a later call may try again
    throw e;
  });
  return nodeInstance;
}

export async function acquireDevice(options: DeviceOptions = {}): Promise<AcquiredDevice> {
  if (options.device) {
    const device = options.device;
    const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const adapterInfo = [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(' / ') || 'caller-provided device';
    const watch = watchDevice(device);
    return { device, adapterInfo, lost: watch.lost, watch, owned: false, cpu: isCpuAdapter(info) };
  }
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const inBrowser = nav?.gpu !== undefined;
  const gpu = nav?.gpu ?? (await sharedNodeGPU());
  const adapter = await gpu.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : {});
  if (!adapter) {
    throw new NoAdapterError(
      inBrowser
        ? 'no WebGPU adapter was found: this browser has WebGPU but offered no adapter (it may be turned off or blocklisted for this GPU; Chrome and Edge show why at chrome://gpu)'
        : 'no WebGPU adapter was found: on Linux without a GPU install Mesa 25 lavapipe (Debian bookworm-backports: mesa-vulkan-drivers)',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const [k, v] of Object.entries(options.requiredLimits ?? {})) {
    const offered = (adapter.limits as unknown as Record<string, number>)[k];
    if (offered === undefined || offered < v) throw new NoAdapterError(`the model needs the limit ${k} = ${v}, but this adapter offers ${offered ?? 'none'}`);
    requiredLimits[k] = v;
  }
  // subgroups where the adapter has them: the reductions' subgroup variants combine with subgroupAdd
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('subgroups') ? ['subgroups' as GPUFeatureName] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  keepAlive.push(adapter, device);
  const info = adapter.info;
  const adapterInfo = [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(' / ') || 'unknown adapter';
  // a destroyed (disposed) or lost device lets its adapter go too
  const watch = watchDevice(device, () => {
    for (const held of [adapter, device]) {
      const at = keepAlive.indexOf(held);
      if (at >= 0) keepAlive.splice(at, 1);
    }
  });
  return { device, adapterInfo, lost: watch.lost, watch, owned: true, cpu: isCpuAdapter(info) };
}

/**
 * The error for a lost device. `creating`: `create()` was given (or acquired) a device already lost, so the
 * advice is a new device, not "create the model again" on the same one.
 */
export function lostError(why: string, creating = false): DeviceLostError {
  if (creating) {
    return new DeviceLostError(
      `the GPU device was lost (${why}) before the model could be created on it; create it on a new device: leave out \`device\` so create() acquires one, or pass a device from acquireDevice()`,
    );
  }
  return new DeviceLostError(
    `the GPU device was lost (${why}); create the model again to continue, on a new device if you passed one (acquireDevice() gives one); saved checkpoints are intact`,
  );
}
