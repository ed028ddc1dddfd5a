// The host's share of a training step: how long `trainStep` takes to return (inputs written, dispatches encoded, submitted) against the whole step, for the MLP 784-128-10.
//
//   XDG_RUNTIME_DIR=/tmp/xdg npx tsx bench/host-probe.mts [batch] [steps]
//
// A step that is host-bound (the MLP at batch 128 on a fast GPU) is faster only if this is. Each step
// waits for the GPU before the next, so the host part is timed with the device idle.
import { compileModel, dlcTrainer } from './dlc-side.ts';
import { openSharedGpu } from './gpu.ts';

const batch = Number(process.argv[2] ?? 128);
const steps = Number(process.argv[3] ?? 200);
const gpu = await openSharedGpu();
const program = compileModel('bench/models/mlp.dl', 'Mlp', 'hidden: 128');
const image = new Float32Array(batch * 784).map((_, i) => ((i * 2654435761) >>> 0) / 2 ** 32);
const label = new Int32Array(batch).map((_, i) => i % 10);
const run = await dlcTrainer(program, gpu.device, gpu.cpu, { image, label }, { B: batch });
for (let i = 0; i < 5; i++) await run.step();
const host: number[] = [];
const total: number[] = [];
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  run.model.trainStep({ image, label });
  const t1 = performance.now();
  await gpu.device.queue.onSubmittedWorkDone();
  host.push(t1 - t0);
  total.push(performance.now() - t0);
}
const quartiles = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return [0.25, 0.5, 0.75].map((q) => s[Math.floor(q * (s.length - 1))].toFixed(3)).join(' / ');
};
console.log(`${gpu.adapterInfo}; MLP 784-128-10, batch ${batch}, ${steps} steps; ms, quartiles`);
console.log(`trainStep returns: ${quartiles(host)}`);
console.log(`whole step:        ${quartiles(total)}`);
run.model.dispose();
process.exit(0);
