// Builds grammar/vscode/dlc-language.vsix offline with @vscode/vsce (no dependencies, no network).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVSIX } from '@vscode/vsce';

const here = dirname(fileURLToPath(import.meta.url));
// `--out <file>` writes elsewhere (the tests use a temporary folder).
const outFlag = process.argv.indexOf('--out');
const packagePath = outFlag >= 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(here, 'dlc-language.vsix');

// The grammar must match the lexer's keyword lists before it is shipped.
const check = spawnSync(process.execPath, [join(here, 'build-grammar.mjs'), '--check'], { stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);

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
