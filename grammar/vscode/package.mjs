// Builds grammar/vscode/dlc-language.vsix offline: bundles the client (src/) with esbuild into out/extension.js, then packs with @vscode/vsce (no dependencies, no network).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVSIX } from '@vscode/vsce';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
// `--out <file>` writes elsewhere (the tests use a temporary folder).
const outFlag = process.argv.indexOf('--out');
const packagePath = outFlag >= 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(here, 'dlc-language.vsix');

// The grammar must match the lexer's keyword lists before it is shipped.
const check = spawnSync(process.execPath, [join(here, 'build-grammar.mjs'), '--check'], { stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);

// One CommonJS file for VS Code's extension host (Node 16 in VS Code 1.80, the oldest engines.vscode allows); `vscode` is the host's.
await build({
  entryPoints: [join(here, 'src', 'extension.mts')],
  outfile: join(here, 'out', 'extension.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node16',
  external: ['vscode'],
  logLevel: 'warning',
});

await createVSIX({
  cwd: here,
  packagePath,
  dependencies: false,
  allowMissingRepository: true,
  allowStarActivation: false,
  skipLicense: false,
});

if (!existsSync(packagePath)) {
  console.error(`vsce did not write ${packagePath}`);
  process.exit(1);
}
