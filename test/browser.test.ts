// The web example end to end: compile mnist_mlp.dl, build the page with Vite, serve it, and train a few steps in
// headless Chromium on WebGPU (SwiftShader without a GPU); the loss must fall. Chromium is required (CI installs it).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, WEB_DIR } from '../examples/web/gen.ts';
import type { TrainingProgress } from '../examples/web/src/progress.ts';

const CHROMIUM = process.env.DLC_CHROMIUM ?? '/usr/bin/chromium';
/** WebGPU in headless Chromium; without a GPU it runs on SwiftShader (Vulkan on the CPU). */
const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const ROOT = resolve(WEB_DIR, '../..');
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.bin': 'application/octet-stream', '.svg': 'image/svg+xml' };

/** A static file server for the built page on a random port. */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (path.endsWith('/')) path += 'index.html';
    const file = resolve(dir, `.${path}`);
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

/** `tsc --noEmit -p examples/web` (the page against the generated module), run beside the browser test. */
function typecheckPage(): Promise<{ code: number | null; output: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(WEB_DIR, 'tsconfig.json')], { cwd: ROOT });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => ok({ code, output }));
    child.on('error', (e) => ok({ code: -1, output: e.message }));
  });
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('examples/web in headless Chromium', () => {
  let outDir: string;
  let server: Server | undefined;
  let browser: Browser | undefined;
  let typecheck: Promise<{ code: number | null; output: string }>;

  beforeAll(async () => {
    await generate();
    typecheck = typecheckPage();
    mkdirSync(join(ROOT, 'test/.tmp'), { recursive: true });
    outDir = mkdtempSync(join(ROOT, 'test/.tmp/web-'));
    await build({ configFile: join(WEB_DIR, 'vite.config.ts'), root: WEB_DIR, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    server = await serve(outDir);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it('trains the MNIST MLP on WebGPU and the loss falls', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not installed at ${CHROMIUM}: the browser test needs it (sudo apt-get install chromium, see .ci/install-system.sh; or set DLC_CHROMIUM to a Chromium binary)`);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`page error: ${e.message}`));
    const { port } = server!.address() as AddressInfo;
    await page.goto(`http://127.0.0.1:${port}/?steps=40&batch=32&val=256&staging=1024`);
    try {
      await page.waitForFunction(() => window.dlcTraining?.done === true, null, { timeout: 150_000, polling: 500 });
    } catch (e) {
      const state = await page.evaluate(() => window.dlcTraining).catch(() => undefined);
      throw new Error(`training did not finish: ${(e as Error).message}\nstate: ${JSON.stringify(state)}\n${logs.join('\n')}`);
    }
    const result = (await page.evaluate(() => window.dlcTraining)) as TrainingProgress;
    const summary = `adapter ${result.adapter}; ${result.step} steps, ${result.stepsPerSecond.toFixed(2)} steps/s; seconds ${JSON.stringify(result.seconds)}; validation ${JSON.stringify(result.epochs.at(-1))}`;
    console.log(`browser training: ${summary}`);

    expect(result.error, `the page reported an error\n${logs.join('\n')}`).toBeUndefined();
    expect(result.adapter, 'no WebGPU adapter').toMatch(/\S/);
    expect(result.losses).toHaveLength(40);
    expect(result.losses.every(Number.isFinite)).toBe(true);
    const first = mean(result.losses.slice(0, 5));
    const last = mean(result.losses.slice(-5));
    expect(last, `the loss did not fall: first 5 steps ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`).toBeLessThan(first - 0.1);
    expect(result.epochs).toHaveLength(1);
    expect(result.epochs[0].val_accuracy).toBeGreaterThan(0.15);
    expect(await page.locator('#error').isHidden()).toBe(true);
  }, 170_000);

  it('the page typechecks against the generated module', async () => {
    const { code, output } = await typecheck;
    expect(output.trim(), 'tsc -p examples/web').toBe('');
    expect(code).toBe(0);
  });
});
