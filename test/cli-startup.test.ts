// The CLI's startup: `dlc check` loads neither ts-morph nor TypeScript nor WebGPU (only the commands that emit a module or run one do), and `dlc --version` answers before the compiler loads.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoTempDir, ROOT } from './cli-helpers.ts';

/** Runs `dlc ...args` in a fresh node (through tsx, as bin/dlc.js does) and lists the heavy packages it loaded. */
function heavyModulesLoaded(...args: string[]): { status: number; loaded: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    import { register } from 'tsx/esm/api';
    register();
    const { main } = await import(${JSON.stringify(join(ROOT, 'compiler/cli/main.ts'))});
    const status = await main(['node', 'dlc', ...${JSON.stringify(args)}], { out: () => {}, err: () => {} });
    const loaded = Object.keys(createRequire(import.meta.url).cache).flatMap((k) => /node_modules\\/(ts-morph|typescript|webgpu)\\//.exec(k)?.[1] ?? []);
    console.log(JSON.stringify({ status, loaded: [...new Set(loaded)].sort() }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { status: number; loaded: string[] };
}

describe('dlc startup', () => {
  it('check and fmt load no module emitter and no runtime; compile does', () => {
    expect(heavyModulesLoaded('check', 'examples/mnist_mlp.dl')).toEqual({ status: 0, loaded: [] });
    expect(heavyModulesLoaded('fmt', '--check', 'examples/mnist_mlp.dl')).toEqual({ status: 0, loaded: [] });
    const dir = repoTempDir('startup');
    // the control: the search sees ts-morph where a command does load it
    expect(heavyModulesLoaded('compile', 'examples/mnist_mlp.dl', '--args', 'hidden: 8', '-o', dir)).toEqual({ status: 0, loaded: ['ts-morph'] });
  }, 120_000);

  it('bin/dlc.js --version prints the package version (without loading the compiler)', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) expect(execFileSync(process.execPath, [join(ROOT, 'bin/dlc.js'), flag], { encoding: 'utf8' })).toBe(`${version}\n`);
  }, 60_000);
});
