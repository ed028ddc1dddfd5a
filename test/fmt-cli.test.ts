// `dlc fmt` as a command: --write keeps symlinks, modes and hard links; CRLF and byte-order marks; files not UTF-8; stdin; exit codes; several files.
import { chmodSync, linkSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_FMT_FAILED, EXIT_OK, EXIT_USER_ERROR, main } from '../compiler/cli/main.ts';
import { firstInvalidByte } from '../compiler/cli/source-file.ts';
import { dlc } from './cli-helpers.ts';

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

describe('dlc fmt on a file with a UTF-8 byte-order mark', () => {
  it('keeps the mark, as it keeps CRLF, so --check accepts what --write wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-fmt-'));
    const file = join(dir, 'bom.dl');
    writeFileSync(file, Buffer.from('\uFEFFmodel M() {\r\n  input x: f32[B,4]\r\n  output o = x\r\n}\r\n', 'utf8'));
    const printed = await run([file]);
    expect(printed.out).toBe('\uFEFFmodel M {\r\n  input x: f32[B, 4]\r\n  output o = x\r\n}\r\n');
    expect((await run(['--write', file])).status).toBe(EXIT_OK);
    expect(readFileSync(file).subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect((await run(['--check', file])).status).toBe(EXIT_OK);
  });
});

describe('a .dl file that is not UTF-8 (E0006)', () => {
  // `// café` saved as Latin-1: the é is the single byte 0xE9
  const latin1 = Buffer.concat([Buffer.from('model M {\n  input x: f32[B,4] // caf'), Buffer.from([0xe9]), Buffer.from(' latin-1\n  output o = x\n}\n')]);

  it('fmt --write and --check refuse it (exit 3) and leave its bytes as they are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-fmt-'));
    const file = join(dir, 'latin1.dl');
    writeFileSync(file, latin1);
    const written = await run(['--write', file]);
    expect(written.status).toBe(EXIT_FMT_FAILED);
    expect(written.err).toContain('error[E0006]');
    expect(written.err).toContain('byte 0xE9 at byte offset 36 (line 2)');
    expect(written.err).toContain(`--> ${file}:2:27`);
    expect(readFileSync(file)).toEqual(latin1);
    expect((await run(['--check', file])).status).toBe(EXIT_FMT_FAILED);
    expect((await run([file])).out).toBe('');
  });

  it('on standard input (the real process\'s bytes), check and fmt report it too', () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'dlc.js');
    const runBin = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { input: latin1, encoding: 'utf8' });
    const formatted = runBin(['fmt', '-', '--stdin-filepath', 'net.dl']);
    expect(formatted.status).toBe(EXIT_FMT_FAILED);
    expect(formatted.stdout).toBe('');
    expect(formatted.stderr).toContain('error[E0006]: `net.dl` is not UTF-8: byte 0xE9 at byte offset 36 (line 2)');
    const checked = runBin(['check', '-']);
    expect(checked.status).toBe(EXIT_USER_ERROR);
    expect(checked.stderr).toContain('error[E0006]');
  });

  it('check and compile report it with its line, for the file itself and for an imported file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-utf8-'));
    const file = join(dir, 'latin1.dl');
    writeFileSync(file, latin1);
    const checked = await dlc('check', '--json', file);
    expect(checked.status).toBe(EXIT_USER_ERROR);
    const [d] = JSON.parse(checked.out) as { code: string; span: { start: { line: number; column: number } } }[];
    expect(d.code).toBe('E0006');
    expect(d.span.start).toMatchObject({ line: 2, column: 27 });
    const compiled = await dlc('compile', file, '-o', join(dir, 'out.ts'));
    expect(compiled.status).toBe(EXIT_USER_ERROR);
    expect(compiled.err).toContain('error[E0006]');
    const blocks = join(dir, 'blocks.dl');
    writeFileSync(blocks, Buffer.concat([Buffer.from('// '), Buffer.from([0xff]), Buffer.from('\nlayer Id {\n  forward(x) = x\n}\n')]));
    const main = join(dir, 'main.dl');
    writeFileSync(main, 'use "./blocks.dl".{Id}\n\nmodel M {\n  input x: f32[B, 4]\n  layer i = Id()\n  output o = i(x)\n}\n');
    const imported = await dlc('check', main);
    expect(imported.status).toBe(EXIT_USER_ERROR);
    expect(imported.err).toContain(`error[E0006]: \`${blocks}\` is not UTF-8: byte 0xFF at byte offset 3 (line 1)`);
  });
});

describe('firstInvalidByte', () => {
  it('agrees with a fatal TextDecoder on random and near-UTF-8 bytes', () => {
    const fatal = new TextDecoder('utf-8', { fatal: true });
    const valid = (b: Uint8Array): boolean => {
      try {
        fatal.decode(b);
        return true;
      } catch {
        return false;
      }
    };
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
    const pieces = ['a', 'é', '€', '😀', '\uFFFD'].map((s) => [...Buffer.from(s)]);
    for (let trial = 0; trial < 5000; trial++) {
      const bytes: number[] = [];
      const n = 1 + Math.floor(rand() * 8);
      for (let k = 0; k < n; k++) {
        if (rand() < 0.6) bytes.push(...pieces[Math.floor(rand() * pieces.length)]);
        else bytes.push([0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, Math.floor(rand() * 256)][Math.floor(rand() * 12)]);
      }
      const b = Uint8Array.from(bytes);
      const bad = firstInvalidByte(b);
      expect(bad === -1, `${Buffer.from(b).toString('hex')}`).toBe(valid(b));
      // the bytes before the reported one are valid, and the one reported does not start a valid character
      if (bad >= 0) {
        expect(valid(b.subarray(0, bad))).toBe(true);
        expect(firstInvalidByte(b.subarray(bad))).toBe(0);
      }
    }
  });
});
