// A compiler bug while lowering one model: E0900 at that model's declaration, exit code 2, and `--model` compiles another model of the file regardless.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { EXIT_INTERNAL_ERROR, EXIT_OK, main } from '../compiler/cli/main.ts';

// lowering fails for the model named Broken, as a compiler bug would (a thrown error, not a diagnostic)
vi.mock('../compiler/codegen/program.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../compiler/codegen/program.ts')>();
  return {
    ...real,
    lowerModel: (m: Parameters<typeof real.lowerModel>[0], options: Parameters<typeof real.lowerModel>[1]) => {
      if (m.forward.name === 'Broken') throw new Error('fusion made a cycle between groups (a compiler bug)');
      return real.lowerModel(m, options);
    },
  };
});

const SOURCE = `use std.nn.{Dense}

model Good {
  input x: f32[B, 4]
  input label: i32[B]
  layer head = Dense(4, 2)
  loss = cross_entropy(head(x), label)
}

model Broken {
  input x: f32[B, 4]
  input label: i32[B]
  layer head = Dense(4, 2)
  loss = cross_entropy(head(x), label)
}
`;

async function run(...args: string[]): Promise<{ status: number; err: string }> {
  let err = '';
  const status = await main(['node', 'dlc', ...args], { out: () => {}, err: (t) => (err += `${t}\n`) });
  return { status, err };
}

describe('an internal error while lowering a model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlc-internal-'));
  const file = join(dir, 'two.dl');
  writeFileSync(file, SOURCE);

  it('is E0900 at the model that failed, named, and exits with 2 (a dlc bug, not the user\'s)', async () => {
    const r = await run('compile', file, '-o', join(dir, 'out'));
    expect(r.status).toBe(EXIT_INTERNAL_ERROR);
    expect(r.err).toContain('error[E0900]: internal error while compiling model `Broken`: fusion made a cycle');
    // the span is the model's name on line 10, not the file's first line
    expect(r.err).toMatch(/two\.dl:10:7/);
  });

  it('does not stop --model from compiling another model of the file', async () => {
    const r = await run('compile', file, '--model', 'Good', '-o', join(dir, 'out'));
    expect(r.err).not.toContain('E0900');
    expect(r.err).toContain('good.ts');
    expect(r.status).toBe(EXIT_OK);
  });
});
