// Helpers for tests that drive the CLI in process and write files inside the repository (so generated code can import runtime/).
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../compiler/cli/main.ts';

export const ROOT = join(import.meta.dirname, '..');

/** Run `dlc ...args` in process, capturing stdout and stderr. */
export async function dlc(...args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(['node', 'dlc', ...args], { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { status, out, err };
}

/** A fresh directory under test/.tmp (git-ignored), named `<prefix>-XXXXXX`. */
export function repoTempDir(prefix: string): string {
  mkdirSync(join(ROOT, 'test/.tmp'), { recursive: true });
  return mkdtempSync(join(ROOT, `test/.tmp/${prefix}-`));
}
