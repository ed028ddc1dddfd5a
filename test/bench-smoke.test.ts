// The benchmark harness in its tiny mode (one step, tiny sizes): it runs both libraries and writes valid JSON. Speed is not checked.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchFile } from '../bench/report.ts';
import { markdownTable } from '../bench/report.ts';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'dlc-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench harness', () => {
  it('runs every benchmark once in --tiny mode and writes a results file', { timeout: 90_000 }, async () => {
    const out = join(dir, 'tiny.json');
    // its own process: TF.js sets globals (navigator) and owns a backend registry
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), 'bench/run.ts', '--tiny', '--no-doc', '--out', out], { cwd: root, timeout: 80_000, maxBuffer: 16 << 20 });
    expect(stdout).toContain('wrote');
    const file = JSON.parse(readFileSync(out, 'utf8')) as BenchFile;
    expect(file.format).toBe('dlc-bench');
    expect(file.mode).toBe('tiny');
    expect(file.reps).toBe(1);
    expect(typeof file.machine.adapter).toBe('string');
    expect(file.machine.node).toBe(process.version);
    expect(file.results.map((r) => r.group)).toEqual(['matmul', 'mlp', 'lenet', 'transformer', 'lstm', 'lstm']);
    for (const r of file.results) {
      expect(r.dlc.error, `${r.name}: dlc`).toBeUndefined();
      expect(r.tfjs.error, `${r.name}: TF.js`).toBeUndefined();
      for (const side of [r.dlc, r.tfjs]) {
        expect(side.medianMs).toBeGreaterThan(0);
        expect(side.samplesMs).toHaveLength(1);
        expect(side.dispatchesPerStep).toBeGreaterThan(0);
        expect(side.peakBytes).toBeGreaterThan(0);
      }
      expect(r.speedup).toBeGreaterThan(0);
    }
    expect(file.results[0].dlc.gflops).toBeGreaterThan(0);
    const table = markdownTable(file);
    expect(table.split('\n').filter((l) => l.startsWith('| ')).length).toBe(2 + file.results.length);
  });
});
