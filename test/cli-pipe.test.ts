// The dlc command as a process whose reader goes away (`dlc graph big.dl | head -1`): it exits quietly, without a Node stack trace for EPIPE.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './cli-helpers.ts';

describe('a closed stdout', () => {
  it('ends dlc quietly: no EPIPE stack trace on stderr, exit 0', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/dlc.js'), 'graph', join(ROOT, 'examples/lstm_classifier.dl')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // read one chunk, then close the pipe as `head -1` does
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const shown = err.split('\n').filter((l) => l && !l.includes('artificially')).join('\n');
    expect(shown).not.toMatch(/EPIPE|node:events|at .*\(/);
    expect(code).toBe(0);
  }, 60_000);
});
