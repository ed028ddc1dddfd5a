// The project root, found from this file (bench/) or from a bundle of the harness (dist/bench/run.mjs).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  if (process.env.DLC_BENCH_ROOT) return process.env.DLC_BENCH_ROOT;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'stdlib')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the project root (a folder with stdlib/ and package.json); set DLC_BENCH_ROOT');
    dir = up;
  }
}

export const root = findRoot();
