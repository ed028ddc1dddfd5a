// Times every matmul kernel variant (the base 32x32 tiled kernel, split k and each wide tier) on one device, checked against float64 first.
//
//   tsx bench/matmul-sweep.ts [--sizes 1024,2048,4096] [--reps 5] [--no-models] [--out FILE]
//
// For each shape and variant: one dispatch is checked at 64 sampled outputs against a float64 dot product
// (relative to sum |a||b|, bound 1e-5), then `reps` command buffers of `batch` back-to-back dispatches are
// timed from submit to onSubmittedWorkDone; the median per dispatch gives GFLOP/s. The shapes are square
// products and the products inside the benchmark models (MLP 784-128-10 at batch 128 and 4096, the
// Transformer's projections), plain and with each operand transposed, so the runtime's tier thresholds
// (codegen/matmul-wide.ts minWorkgroups) can be set from measurements.
import { writeFileSync } from 'node:fs';
import type { Attrs, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { inferOp, isShapeError } from '../compiler/ops/index.ts';
import { evaluate } from '../compiler/shapes/dim.ts';
import { dispatchSize } from '../compiler/codegen/elementwise.ts';
import { lowerMatmul, matmulUniformDims, matmulUniforms } from '../compiler/codegen/matmul.ts';
import { lowerWideMatmul, SWEEP_TIERS, wideWorkgroups } from '../compiler/codegen/matmul-wide.ts';
import { lowerSplitMatmul } from '../compiler/codegen/matmul-split.ts';
import { ensureRuntimeDir, machineInfo } from './gpu.ts';
import { median, uniformData } from './timing.ts';

interface Shape {
  readonly label: string;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly attrs: Attrs;
}

interface Row {
  readonly shape: string;
  readonly variant: string;
  readonly workgroups: number;
  readonly ms: number;
  readonly gflops: number;
  readonly maxRelError: number;
}

function args(): { sizes: number[]; reps: number; out?: string; models: boolean } {
  const a = process.argv.slice(2);
  let sizes = [1024, 2048, 4096];
  let reps = 5;
  let out: string | undefined;
  let models = true;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--sizes') sizes = a[++i].split(',').map(Number);
    else if (a[i] === '--reps') reps = Number(a[++i]);
    else if (a[i] === '--out') out = a[++i];
    else if (a[i] === '--no-models') models = false;
    else throw new Error(`unknown argument ${a[i]}`);
  }
  return { sizes, reps, out, models };
}

let nextId = 1;
function matmulNode(s: Shape): Node {
  const sa = s.attrs.transpose_a ? [s.k, s.m] : [s.m, s.k];
  const sb = s.attrs.transpose_b ? [s.n, s.k] : [s.k, s.n];
  const types: TensorType[] = [{ dtype: 'f32', shape: sa }, { dtype: 'f32', shape: sb }];
  const r = inferOp('matmul', types, s.attrs);
  if (isShapeError(r)) throw new Error(r.message);
  const value = (type: TensorType): Value => ({ id: nextId++, type });
  return { op: 'matmul', inputs: types.map(value), attrs: s.attrs, outputs: r.map(value), span: { file: 'matmul-sweep', start: 0, end: 0 } };
}

async function openDevice(): Promise<{ device: GPUDevice; adapterInfo: string }> {
  ensureRuntimeDir();
  const webgpu = (await import('webgpu')) as unknown as { create(options: string[]): GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter');
  const l = adapter.limits;
  const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize } });
  (globalThis as { __keep?: unknown[] }).__keep = [gpu, adapter, device];
  const info = adapter.info;
  return { device, adapterInfo: [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(' / ') || 'unknown adapter' };
}

async function main(): Promise<void> {
  const opts = args();
  const { device, adapterInfo } = await openDevice();
  console.log(`adapter: ${adapterInfo}`);
  const shapes: Shape[] = [];
  for (const s of opts.sizes) shapes.push({ label: `${s}^3`, m: s, k: s, n: s, attrs: {} });
  const big = Math.max(...opts.sizes);
  shapes.push({ label: `${big}^3 A^T`, m: big, k: big, n: big, attrs: { transpose_a: true } });
  shapes.push({ label: `${big}^3 B^T`, m: big, k: big, n: big, attrs: { transpose_b: true } });
  // the products inside the benchmark models
  if (opts.models) {
  shapes.push({ label: 'mlp 4096x784 @ 784x128', m: 4096, k: 784, n: 128, attrs: {} });
  shapes.push({ label: 'mlp dW 784x4096^T @ 4096x128', m: 784, k: 4096, n: 128, attrs: { transpose_a: true } });
  shapes.push({ label: 'mlp 128x784 @ 784x128', m: 128, k: 784, n: 128, attrs: {} });
  shapes.push({ label: 'gpt 4096x256 @ 256x768', m: 4096, k: 256, n: 768, attrs: {} });
  shapes.push({ label: 'gpt 4096x256 @ 256x1024', m: 4096, k: 256, n: 1024, attrs: {} });
  shapes.push({ label: 'gpt 4096x1024 @ 1024x256', m: 4096, k: 1024, n: 256, attrs: {} });
  }

  const rows: Row[] = [];
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  for (const s of shapes) {
    const node = matmulNode(s);
    const base = lowerMatmul(node);
    const u = matmulUniforms(base, new Map());
    const [ia, ib] = u.inShapes.map((sh, i) => uniformData(sh.reduce((x, y) => x * y, 1), 100 + i).map((v) => v * 2 - 1));
    const bufA = device.createBuffer({ size: ia.byteLength, usage: storage });
    const bufB = device.createBuffer({ size: ib.byteLength, usage: storage });
    const outBytes = s.m * s.n * 4;
    const bufO = device.createBuffer({ size: outBytes, usage: storage });
    const uni = device.createBuffer({ size: u.data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(bufA, 0, ia);
    device.queue.writeBuffer(bufB, 0, ib);
    device.queue.writeBuffer(uni, 0, u.data);
    const readback = device.createBuffer({ size: outBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const flops = 2 * s.m * s.n * s.k;
    const variants = [{ name: 'base32', wgsl: base.wgsl, groups: u.workgroups }, { name: 'split', wgsl: lowerSplitMatmul(node), groups: u.workgroups }, ...SWEEP_TIERS.map((t) => ({ name: t.name, wgsl: lowerWideMatmul(node, t), groups: evaluate(wideWorkgroups(t, matmulUniformDims(base)), new Map()) }))];
    for (const v of variants) {
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code: v.wgsl });
      const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [uni, bufA, bufB, bufO].map((buffer, binding) => ({ binding, resource: { buffer } })) });
      const [x, y] = dispatchSize(v.groups, 1);
      const encode = (count: number) => {
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        for (let i = 0; i < count; i++) pass.dispatchWorkgroups(x, y);
        pass.end();
        return enc;
      };
      // poison, one dispatch, read back, check 64 sampled outputs against float64
      device.queue.writeBuffer(bufO, 0, new Float32Array(s.m * s.n).fill(Number.NaN));
      const enc = encode(1);
      enc.copyBufferToBuffer(bufO, 0, readback, 0, outBytes);
      device.queue.submit([enc.finish()]);
      const err = await device.popErrorScope();
      if (err) throw new Error(`${s.label} ${v.name}: ${err.message}`);
      await readback.mapAsync(GPUMapMode.READ);
      const got = new Float32Array(readback.getMappedRange().slice(0));
      readback.unmap();
      let worst = 0;
      for (let q = 0; q < 64; q++) {
        const i = (q * 7919) % s.m;
        const j = (q * 104729 + 13) % s.n;
        let sum = 0;
        let mag = 0;
        for (let t = 0; t < s.k; t++) {
          const av = ia[s.attrs.transpose_a ? t * s.m + i : i * s.k + t];
          const bv = ib[s.attrs.transpose_b ? j * s.k + t : t * s.n + j];
          sum += av * bv;
          mag += Math.abs(av * bv);
        }
        const e = Math.abs(got[i * s.n + j] - sum) / Math.max(mag, 1e-30);
        worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
      }
      // time: enough dispatches per submit for ~20 ms of work (estimated from one timed submit)
      const t0 = performance.now();
      device.queue.submit([encode(1).finish()]);
      await device.queue.onSubmittedWorkDone();
      const one = Math.max(performance.now() - t0, 0.01);
      const batch = Math.max(1, Math.min(200, Math.round(20 / one)));
      device.queue.submit([encode(batch).finish()]);
      await device.queue.onSubmittedWorkDone();
      const samples: number[] = [];
      for (let r = 0; r < opts.reps; r++) {
        const t1 = performance.now();
        device.queue.submit([encode(batch).finish()]);
        await device.queue.onSubmittedWorkDone();
        samples.push((performance.now() - t1) / batch);
      }
      const ms = median(samples);
      const row = { shape: s.label, variant: v.name, workgroups: v.groups, ms: Math.round(ms * 10000) / 10000, gflops: Math.round(flops / ms / 1e6), maxRelError: worst };
      rows.push(row);
      console.log(`${row.shape.padEnd(30)} ${row.variant.padEnd(18)} wg ${String(row.workgroups).padStart(6)}  ${row.ms.toFixed(4).padStart(9)} ms  ${String(row.gflops).padStart(7)} GFLOP/s  err ${worst.toExponential(1)}${worst > 1e-5 ? '  WRONG' : ''}`);
    }
    for (const b of [bufA, bufB, bufO, uni, readback]) b.destroy();
  }
  if (opts.out) writeFileSync(opts.out, JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(adapterInfo), rows }, null, 2));
  // the best variant per shape
  console.log('\nbest per shape:');
  for (const s of shapes) {
    const mine = rows.filter((r) => r.shape === s.label && r.maxRelError <= 1e-5);
    const best = mine.reduce((x, y) => (y.gflops > x.gflops ? y : x), mine[0]);
    const b32 = mine.find((r) => r.variant === 'base32');
    if (best) console.log(`${s.label.padEnd(30)} ${best.variant.padEnd(18)} ${best.gflops} GFLOP/s (base32 ${b32?.gflops ?? '-'})`);
  }
  device.destroy();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
