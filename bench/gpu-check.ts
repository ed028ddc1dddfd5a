// A correctness check for a real GPU: every example trains a few steps with the GPU kernels (wide matmul tiers and conv reductions where they apply) and with the CPU variants, on the same device; the losses must agree.
//
//   tsx bench/gpu-check.ts [--small] [--out FILE]   (--small: the test sizes only)     (bundled as dist/bench/check.mjs for a lent GPU machine)
//
// CI checks every kernel against the float64 interpreter on lavapipe; this runs the kernels a discrete
// GPU picks (bench/gpu-run.sh), at the test sizes and at sizes large enough for the wide tiers, against
// the blocked CPU variants (other code, the same arithmetic up to summation order). Each model trains 3
// steps from one seed on one batch in both modes; the largest relative difference of the losses and
// metrics must stay under 1e-3, and which GPU variants ran is reported.
import { readFileSync, writeFileSync } from 'node:fs';
import { compileSource } from '../compiler/frontend/compile.ts';
import { Model } from '../runtime/model.ts';
import { argsOf, EXAMPLE_CASES, type ExampleCase, randomBatch } from '../test/helpers.ts';
import { seededRandom } from '../compiler/interpret/feeds.ts';
import { openSharedGpu } from './gpu.ts';

/** The examples at the test sizes, and some at sizes where the wide matmul tiers and conv reductions run. */
const CASES: readonly ExampleCase[] = [
  ...EXAMPLE_CASES,
  { file: 'mnist_mlp', model: 'MnistMlp', args: 'hidden: 512', sizes: { B: 1024 }, intRange: { label: 10 } },
  { file: 'lenet', model: 'LeNet', args: '', sizes: { B: 64 }, intRange: { label: 10 } },
  { file: 'char_transformer', model: 'CharGPT', args: 'vocab: 65, ctx: 128, d: 256, heads: 8, depth: 2', sizes: { B: 16, L: 128 }, intRange: { tokens: 65 } },
];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : undefined;
  const cases = argv.includes('--small') ? EXAMPLE_CASES : CASES;
  const gpu = await openSharedGpu();
  console.log(`adapter: ${gpu.adapterInfo}${gpu.cpu ? ' (a CPU adapter: the GPU variants are checked by the tests already)' : ''}`);
  const rows: { model: string; args: string; sizes: Record<string, number>; variants: string[]; maxRelDiff: number; ok: boolean }[] = [];
  for (const c of cases) {
    const file = `examples/${c.file}.dl`;
    const compiled = compileSource(readFileSync(file, 'utf8'), file, undefined, { modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) });
    const program = compiled.programs.find((p) => p.model === c.model);
    if (!program) throw new Error(`${file}: no program for ${c.model}: ${compiled.diagnostics.map((d) => d.message).join('; ')}`);
    const batch = randomBatch(program, c.sizes, seededRandom(7), c.intRange);
    const run = async (kernels: 'gpu' | 'cpu') => {
      const model = await Model.create(program, { device: gpu.device, kernels, seed: 3, batchSize: c.sizes.B, sizes: c.sizes });
      const values: number[] = [];
      for (let i = 0; i < 3; i++) values.push(...Object.values(await model.trainStep(batch).values()));
      // which GPU variants the step ran
      const ex = model as unknown as { executor: { graphs: Map<string, { grids: ({ shader: number } | null)[] }> } };
      const used = new Set<string>();
      for (const g of program.graphs.steps) {
        const grids = ex.executor.graphs.get(g.name)?.grids ?? [];
        g.kernels.forEach((k, n) => {
          const w = [...(k.wide ?? []), ...(k.cpuVariants ?? [])].find((v) => v.shader === grids[n]?.shader);
          if (w) used.add(`${k.op}:${w.name}`);
        });
      }
      model.dispose();
      return { values, used };
    };
    const a = await run('gpu');
    const b = await run('cpu');
    let worst = 0;
    a.values.forEach((v, i) => {
      const d = Math.abs(v - b.values[i]) / Math.max(Math.abs(b.values[i]), 1e-6);
      worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
    });
    const ok = worst < 1e-3 && a.values.length > 0;
    rows.push({ model: c.model, args: c.args, sizes: c.sizes, variants: [...a.used], maxRelDiff: worst, ok });
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.model.padEnd(20)} ${JSON.stringify(c.sizes).padEnd(18)} losses/metrics over 3 steps, max rel diff GPU vs CPU variants ${worst.toExponential(1)}; GPU variants: ${[...a.used].join(', ') || 'none'}`);
  }
  if (out) writeFileSync(out, JSON.stringify({ adapter: gpu.adapterInfo, rows }, null, 2));
  const failed = rows.filter((r) => !r.ok).length;
  console.log(`${rows.length - failed} of ${rows.length} models agree`);
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
