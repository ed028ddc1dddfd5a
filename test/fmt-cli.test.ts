// `dlc fmt` as a command: --write keeps symlinks, modes and hard links; CRLF files; stdin; exit codes; several files.
import { chmodSync, linkSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_FMT_FAILED, EXIT_OK, EXIT_USER_ERROR, main } from '../compiler/cli/main.ts';

async function run(args: string[], stdin?: string): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(['node', 'dlc', 'fmt', ...args], {
    out: (t) => (out += t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => (err += `${t}\n`),
    readStdin: () => stdin,
  });
  return { status, out, err };
}

const UGLY = 'let  a = 1\n';
const CLEAN = 'let a = 1\n';

describe('dlc fmt --write', () => {
  it('formats the file a symlink points to, keeps its mode, and keeps hard links together', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-fmt-'));
    const real = join(dir, 'real.dl');
    const link = join(dir, 'link.dl');
    writeFileSync(real, UGLY);
    chmodSync(real, 0o600);
    symlinkSync('real.dl', link);
    const h1 = join(dir, 'h1.dl');
    const h2 = join(dir, 'h2.dl');
    writeFileSync(h1, UGLY);
    linkSync(h1, h2);
    const priv = join(dir, 'private.dl');
    writeFileSync(priv, UGLY);
    chmodSync(priv, 0o640);
    const inode = statSync(h1).ino;

    expect((await run(['--write', link, h1, priv])).status).toBe(EXIT_OK);

    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe(CLEAN);
    expect(statSync(real).mode & 0o777).toBe(0o600);
    expect(readFileSync(h2, 'utf8')).toBe(CLEAN);
    expect(statSync(h1).ino).toBe(inode);
    expect(statSync(h2).nlink).toBe(2);
    expect(readFileSync(priv, 'utf8')).toBe(CLEAN);
    expect(statSync(priv).mode & 0o777).toBe(0o640);
  });
});

describe('dlc fmt on CRLF files', () => {
  const crlf = 'model M {\r\n  input x: f32[B, 4]   \r\n  /* multi\r\n     line   \r\n     comment */\r\n  output y = relu(x) // trailing   \r\n}\r\n';

  it('keeps the file\'s CRLF throughout, comments included, and --check accepts the result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-fmt-'));
    const file = join(dir, 'crlf.dl');
    writeFileSync(file, crlf);
    expect((await run(['--write', file])).status).toBe(EXIT_OK);
    const text = readFileSync(file, 'utf8');
    expect(text).toBe('model M {\r\n  input x: f32[B, 4]\r\n  /* multi\r\n     line\r\n     comment */\r\n  output y = relu(x) // trailing\r\n}\r\n');
    expect((await run(['--check', file])).status).toBe(EXIT_OK);
  });

  it('--check rejects a file that mixes CRLF and LF (LF code, CRLF inside a comment)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-fmt-'));
    const file = join(dir, 'mixed.dl');
    writeFileSync(file, 'model M {\n  input x: f32[B, 4]\n  /* multi\r\n     line\r\n     comment */\n  output y = relu(x)\n}\n');
    const r = await run(['--check', file]);
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`not formatted: ${file}`);
  });
});

describe('dlc fmt with standard input, exit codes and several files', () => {
  it('`-` formats standard input to standard output, named by --stdin-filepath in diagnostics', async () => {
    const ok = await run(['-'], 'model   M{input x:f32[B,3]\noutput y=relu( x )}\n');
    expect(ok.status).toBe(EXIT_OK);
    expect(ok.out).toBe('model M {\n  input x: f32[B, 3]\n  output y = relu(x)\n}\n');
    const bad = await run(['-', '--stdin-filepath', 'src/net.dl'], 'model M { let = }\n');
    expect(bad.status).toBe(EXIT_FMT_FAILED);
    expect(bad.err).toContain('--> src/net.dl:1:');
    expect(bad.out).toBe('');
    expect((await run(['--check', '-'], CLEAN)).status).toBe(EXIT_OK);
    expect((await run(['--check', '-'], UGLY)).status).toBe(EXIT_USER_ERROR);
    expect((await run(['--write', '-'], UGLY)).status).toBe(EXIT_FMT_FAILED);
  });

  it('--check exits 1 for a file not formatted and 3 for a file with syntax errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-fmt-'));
    const ugly = join(dir, 'ugly.dl');
    const broken = join(dir, 'broken.dl');
    writeFileSync(ugly, UGLY);
    writeFileSync(broken, 'model M { let = }\n');
    expect((await run(['--check', ugly])).status).toBe(EXIT_USER_ERROR);
    const r = await run(['--check', broken]);
    expect(r.status).toBe(EXIT_FMT_FAILED);
    expect(r.err).toContain('it has syntax errors');
    expect((await run(['--check', ugly, broken])).status).toBe(EXIT_FMT_FAILED);
    expect((await run(['--check', join(dir, 'missing.dl')])).status).toBe(EXIT_FMT_FAILED);
  });

  it('refuses several files without --write or --check, rather than printing them back to back', async () => {
    const r = await run(['examples/gan.dl', 'examples/lenet.dl']);
    expect(r.status).toBe(EXIT_FMT_FAILED);
    expect(r.out).toBe('');
    expect(r.err).toContain('prints one file');
  });
});
