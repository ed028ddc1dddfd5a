// Bundles the harness (and the matmul sweep) into dist/bench/run.mjs (sweep.mjs) for a bare GPU machine (no npm there): one file with the
// compiler, the runtime and TF.js; only `webgpu` (restored by ../shared/gpu/enter.sh) stays external.
// dist/bench/ is two folders deep, so the compiler's `../../stdlib/` still finds stdlib/ beside it.
import { build } from 'esbuild';

await build({
  entryPoints: { run: 'bench/run.ts', sweep: 'bench/matmul-sweep.ts', check: 'bench/gpu-check.ts' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['webgpu'],
  outdir: 'dist/bench',
  outExtension: { '.js': '.mjs' },
  // TF.js's CommonJS bundles call require() for Node built-ins
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
console.log('wrote dist/bench/run.mjs, sweep.mjs and check.mjs');
