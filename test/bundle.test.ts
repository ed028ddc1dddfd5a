// A page's bundle: esbuild (browser platform, its defaults) bundles a generated module with no Node built-ins and no csv-parse, and the bundled runtime reports a missing WebGPU with typed errors in a page-like context.
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { dlc, repoTempDir, ROOT } from './cli-helpers.ts';
import { EXIT_OK } from '../compiler/cli/main.ts';

/** Bundles `entry` (a file in `dir`) for the browser as esbuild does by default; returns the code and which inputs went in. */
async function bundle(dir: string, entry: string, format: 'esm' | 'iife'): Promise<{ code: string; inputs: string[] }> {
  const result = await build({ entryPoints: [join(dir, entry)], bundle: true, platform: 'browser', format, write: false, metafile: true, logLevel: 'silent', outfile: join(dir, 'out.js') });
  const meta = result.metafile as Metafile;
  const inputs = Object.entries(Object.values(meta.outputs)[0]!.inputs)
    .filter(([, v]) => v.bytesInOutput > 0)
    .map(([k]) => k);
  return { code: result.outputFiles[0]!.text, inputs };
}

describe('bundling a page with esbuild', () => {
  let dir: string;
  let runtime: string;

  beforeAll(async () => {
    dir = repoTempDir('bundle');
    runtime = relative(dir, join(ROOT, 'runtime/index.ts'));
    const r = await dlc('compile', 'examples/mnist_mlp.dl', '-o', dir, '--args', 'hidden: 16', '--runtime', runtime);
    expect(r.status, r.err).toBe(EXIT_OK);
  }, 120_000);

  it('a page that predicts bundles for the browser platform with no Node built-ins and no csv-parse', async () => {
    writeFileSync(
      join(dir, 'page.ts'),
      `import { create } from './mnist_mlp.ts';\nconst model = await create({ batchSize: 1 });\nconsole.log((await model.predict({ image: new Float32Array(784) })).probs);\n`,
    );
    const { code, inputs } = await bundle(dir, 'page.ts', 'esm');
    expect(inputs.some((i) => i.endsWith('runtime/model.ts'))).toBe(true);
    expect(inputs.filter((i) => i.startsWith('node:') || i.includes('csv-parse'))).toEqual([]);
    expect(code).not.toMatch(/from\s*["']node:/);
  }, 60_000);

  /** Runs the bundled `acquireDevice()` in a fresh context with the given globals; returns what it threw. */
  async function acquireIn(globals: Record<string, unknown>): Promise<{ name: string; code?: string; message: string }> {
    writeFileSync(
      join(dir, 'acquire.ts'),
      `import { acquireDevice } from '${runtime.replaceAll('\\', '/')}';\n` +
        `(globalThis as any).outcome = acquireDevice().then(() => ({ name: 'none', message: 'acquired' }), (e: any) => ({ name: e.name, code: e.code, message: String(e.message) }));\n`,
    );
    const { code } = await bundle(dir, 'acquire.ts', 'iife');
    const context: Record<string, unknown> = { ...globals, console };
    runInNewContext(code, context);
    return (await context.outcome) as { name: string; code?: string; message: string };
  }

  it('a page with a `process` shim but no navigator.gpu gets NoWebGPUError, not a failed import of node:os', async () => {
    const shim = { env: { NODE_ENV: 'production' }, pid: 1, browser: true };
    const withShim = await acquireIn({ process: shim, navigator: {} });
    expect(withShim).toMatchObject({ name: 'NoWebGPUError', code: 'no-webgpu' });
    expect(withShim.message).toContain('navigator.gpu');
    const without = await acquireIn({ navigator: {} });
    expect(without).toMatchObject({ name: 'NoWebGPUError', code: 'no-webgpu' });
  }, 60_000);

  it('a browser that offers no adapter gets browser advice, not how to install Mesa', async () => {
    const outcome = await acquireIn({ navigator: { gpu: { requestAdapter: () => Promise.resolve(null) } } });
    expect(outcome).toMatchObject({ name: 'NoAdapterError', code: 'no-adapter' });
    expect(outcome.message).toContain('chrome://gpu');
    expect(outcome.message).not.toMatch(/Mesa|Debian|lavapipe/);
  }, 60_000);
});
