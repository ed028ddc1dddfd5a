// The VS Code extension's editor-neutral client (grammar/vscode/src): dlc check JSON to diagnostics, grouping by file, dlc resolution, runs with timeouts and stale-run kills, formatting edits, and the real dlc end to end.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DiagnosticStore, groupByFile, parseCheckOutput, toRecord, type DiagnosticRecord, type JsonDiagnostic } from '../grammar/vscode/src/diagnostics.mts';
import { checkBuffer, Debouncer, formatBuffer, LatestRuns, minimalEdit, resolveDlc, runDlc, type DlcCommand, type ResolveOptions } from '../grammar/vscode/src/dlc.mts';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const pos = (offset: number, line: number, column: number) => ({ offset, line, column });

/** The E0301 that `dlc check --json` prints for `output y = x @ w` with mismatched inner dimensions. */
const matmulError: JsonDiagnostic = {
  code: 'E0301',
  severity: 'error',
  message: 'matmul inner dimensions differ: f32[B, 3] @ f32[4, 5]',
  span: { file: '/ws/a.dl', start: pos(94, 5, 14), end: pos(95, 5, 15) },
  label: 'f32[B, 3]',
  secondary: [
    { message: 'f32[4, 5]', span: { file: '/ws/a.dl', start: pos(98, 5, 18), end: pos(99, 5, 19) } },
    { message: '`w` is declared here', span: { file: '/ws/a.dl', start: pos(60, 4, 9), end: pos(61, 4, 10) } },
  ],
};

describe('dlc check JSON to diagnostic records', () => {
  it('ranges are 0-based, the label and secondary labels are related places, help joins the message', () => {
    const r = toRecord({ ...matmulError, help: 'transpose one side' }, '/ws');
    expect(r).toEqual({
      file: '/ws/a.dl',
      range: { startLine: 4, startCharacter: 13, endLine: 4, endCharacter: 14 },
      severity: 'error',
      code: 'E0301',
      message: 'matmul inner dimensions differ: f32[B, 3] @ f32[4, 5]\nhelp: transpose one side',
      related: [
        { file: '/ws/a.dl', range: { startLine: 4, startCharacter: 13, endLine: 4, endCharacter: 14 }, message: 'f32[B, 3]' },
        { file: '/ws/a.dl', range: { startLine: 4, startCharacter: 17, endLine: 4, endCharacter: 18 }, message: 'f32[4, 5]' },
        { file: '/ws/a.dl', range: { startLine: 3, startCharacter: 8, endLine: 3, endCharacter: 9 }, message: '`w` is declared here' },
      ],
    });
  });

  it('a warning stays a warning; no label and no help add nothing; relative files (the stdlib) are taken from the working folder', () => {
    const r = toRecord({ code: 'W0001', severity: 'warning', message: 'unused', span: { file: 'stdlib/nn.dl', start: pos(0, 1, 1), end: pos(3, 1, 4) }, secondary: [] }, '/ws');
    expect(r).toMatchObject({ file: '/ws/stdlib/nn.dl', severity: 'warning', message: 'unused', related: [] });
  });

  it('a span dlc has no text for (line 0, column 0) stays at the top instead of going negative', () => {
    const r = toRecord({ ...matmulError, span: { file: '/ws/a.dl', start: pos(5, 0, 0), end: pos(9, 0, 0) } }, '/ws');
    expect(r.range).toEqual({ startLine: 0, startCharacter: 0, endLine: 0, endCharacter: 0 });
  });

  it('groups by file: a diagnostic in an imported file goes to that file, the buffer always gets an entry', () => {
    const inLib = toRecord({ code: 'E0201', severity: 'error', message: '`nope` is not available here', span: { file: '/ws/lib.dl', start: pos(30, 2, 20), end: pos(34, 2, 24) }, secondary: [] }, '/ws');
    const grouped = groupByFile([inLib], ['/ws/a.dl']);
    expect([...grouped.keys()]).toEqual(['/ws/a.dl', '/ws/lib.dl']);
    expect(grouped.get('/ws/a.dl')).toEqual([]);
    expect(grouped.get('/ws/lib.dl')).toEqual([inLib]);
  });

  it('exit 1 with a JSON list is a result; exit 0 with [] clears the buffer', () => {
    const errors = parseCheckOutput({ exitCode: 1, stdout: JSON.stringify([matmulError]), stderr: '' }, '/ws/a.dl', '/ws');
    expect(errors.kind).toBe('diagnostics');
    if (errors.kind !== 'diagnostics') return;
    expect(errors.byFile.get('/ws/a.dl')?.map((d) => d.code)).toEqual(['E0301']);
    const clean = parseCheckOutput({ exitCode: 0, stdout: '[]\n', stderr: '' }, '/ws/a.dl', '/ws');
    expect(clean.kind === 'diagnostics' && [...clean.byFile]).toEqual([['/ws/a.dl', []]]);
  });

  it('an internal error, a crash or output that is not diagnostics is a failure with dlc\'s words', () => {
    expect(parseCheckOutput({ exitCode: 2, stdout: '', stderr: 'internal compiler error: boom\n' }, '/ws/a.dl', '/ws')).toEqual({ kind: 'failed', message: 'internal compiler error: boom' });
    expect(parseCheckOutput({ exitCode: 1, stdout: '', stderr: "error: unknown option '--json'" }, '/ws/a.dl', '/ws')).toEqual({ kind: 'failed', message: "error: unknown option '--json'" });
    expect(parseCheckOutput({ exitCode: 0, stdout: '{"code":1}', stderr: '' }, '/ws/a.dl', '/ws').kind).toBe('failed');
    expect(parseCheckOutput({ exitCode: null, stdout: '', stderr: '' }, '/ws/a.dl', '/ws')).toEqual({ kind: 'failed', message: 'dlc exited with code null' });
  });
});

describe('DiagnosticStore: what several open buffers report, merged per file', () => {
  const record = (file: string, code: string): DiagnosticRecord => ({ file, code, severity: 'error', message: code, range: { startLine: 1, startCharacter: 2, endLine: 1, endCharacter: 5 }, related: [] });

  it('a file imported by two buffers shows each diagnostic once; closing one buffer keeps the other\'s', () => {
    const store = new DiagnosticStore();
    const lib = record('/ws/lib.dl', 'E0201');
    expect(store.set('a', groupByFile([lib, record('/ws/a.dl', 'E0301')], ['/ws/a.dl'])).sort()).toEqual(['/ws/a.dl', '/ws/lib.dl']);
    store.set('b', groupByFile([lib], ['/ws/b.dl']));
    expect(store.get('/ws/lib.dl')).toEqual([lib]);
    expect(store.delete('a').sort()).toEqual(['/ws/a.dl', '/ws/lib.dl']);
    expect(store.get('/ws/a.dl')).toEqual([]);
    expect(store.get('/ws/lib.dl')).toEqual([lib]);
    expect(store.delete('b').sort()).toEqual(['/ws/b.dl', '/ws/lib.dl']);
    expect(store.get('/ws/lib.dl')).toEqual([]);
  });

  it('a file with unsaved edits shows only its own buffer\'s diagnostics (the others read it from disk) until it is saved or closed', () => {
    const store = new DiagnosticStore();
    const fromDisk = record('/ws/lib.dl', 'E0201');
    const fromBuffer = { ...record('/ws/lib.dl', 'E0201'), range: { startLine: 2, startCharacter: 2, endLine: 2, endCharacter: 5 } };
    store.set('main', groupByFile([fromDisk], ['/ws/main.dl']), '/ws/main.dl');
    store.set('lib', groupByFile([fromBuffer], ['/ws/lib.dl']), '/ws/lib.dl');
    expect(store.get('/ws/lib.dl')).toEqual([fromDisk, fromBuffer]);
    expect(store.setUnsaved('/ws/lib.dl', true)).toEqual(['/ws/lib.dl']);
    expect(store.setUnsaved('/ws/lib.dl', true)).toEqual([]);
    expect(store.get('/ws/lib.dl')).toEqual([fromBuffer]);
    // main.dl's own diagnostics are not affected by lib.dl's state
    expect(store.get('/ws/main.dl')).toEqual([]);
    expect(store.setUnsaved('/ws/lib.dl', false)).toEqual(['/ws/lib.dl']);
    expect(store.get('/ws/lib.dl')).toEqual([fromDisk, fromBuffer]);
  });

  it('a new report names the files the old one had, so fixed files are cleared', () => {
    const store = new DiagnosticStore();
    store.set('a', groupByFile([record('/ws/lib.dl', 'E0201')], ['/ws/a.dl']));
    expect(store.set('a', groupByFile([], ['/ws/a.dl'])).sort()).toEqual(['/ws/a.dl', '/ws/lib.dl']);
    expect(store.get('/ws/lib.dl')).toEqual([]);
  });
});

describe('resolveDlc', () => {
  const base = (files: string[], extra: Partial<ResolveOptions> = {}): ResolveOptions => ({
    workspaceFolders: ['/ws'],
    trusted: true,
    env: { PATH: '/usr/local/bin:/usr/bin', HOME: '/home/me' },
    platform: 'linux',
    isFile: (p) => files.includes(p),
    ...extra,
  });

  it('the dlc.path setting comes first: absolute, ~/, relative to the workspace folder, or a name on PATH', () => {
    const all = ['/opt/dlc/bin/dlc', '/home/me/bin/dlc', '/ws/tools/dlc', '/usr/bin/dlc-dev', '/ws/node_modules/.bin/dlc', '/usr/bin/dlc'];
    expect(resolveDlc(base(all, { setting: '/opt/dlc/bin/dlc' }))).toEqual({ kind: 'found', dlc: { command: '/opt/dlc/bin/dlc', prefixArgs: [], shell: false, source: 'setting' } });
    expect(resolveDlc(base(all, { setting: '~/bin/dlc' }))).toMatchObject({ dlc: { command: '/home/me/bin/dlc' } });
    expect(resolveDlc(base(all, { setting: 'tools/dlc' }))).toMatchObject({ dlc: { command: '/ws/tools/dlc' } });
    expect(resolveDlc(base(all, { setting: 'dlc-dev' }))).toMatchObject({ dlc: { command: '/usr/bin/dlc-dev', source: 'setting' } });
  });

  it('a dlc.path that names nothing is reported as such, not replaced by another dlc', () => {
    const r = resolveDlc(base(['/usr/bin/dlc'], { setting: '/nope/dlc' }));
    expect(r).toEqual({ kind: 'not-found', message: 'dlc.path is `/nope/dlc`, but there is no such file (/nope/dlc)' });
  });

  it('a .js file (a dlc checkout\'s bin/dlc.js) runs under node', () => {
    expect(resolveDlc(base(['/src/dlc/bin/dlc.js'], { setting: '/src/dlc/bin/dlc.js' }))).toMatchObject({ dlc: { command: 'node', prefixArgs: ['/src/dlc/bin/dlc.js'] } });
  });

  it('without the setting: the workspace\'s node_modules/.bin/dlc, then dlc on PATH', () => {
    expect(resolveDlc(base(['/ws/node_modules/.bin/dlc', '/usr/bin/dlc']))).toMatchObject({ dlc: { command: '/ws/node_modules/.bin/dlc', source: 'workspace' } });
    expect(resolveDlc(base(['/usr/bin/dlc']))).toMatchObject({ dlc: { command: '/usr/bin/dlc', source: 'path' } });
  });

  it('an untrusted workspace\'s node_modules/.bin/dlc is never run', () => {
    expect(resolveDlc(base(['/ws/node_modules/.bin/dlc', '/usr/bin/dlc'], { trusted: false }))).toMatchObject({ dlc: { command: '/usr/bin/dlc', source: 'path' } });
    const none = resolveDlc(base(['/ws/node_modules/.bin/dlc'], { trusted: false }));
    expect(none.kind).toBe('not-found');
    expect(none.kind === 'not-found' && none.message).toContain('untrusted');
  });

  it('nothing found: a message saying where it looked and what to do', () => {
    const r = resolveDlc(base([]));
    expect(r).toEqual({ kind: 'not-found', message: 'dlc was not found: the workspace has no node_modules/.bin/dlc and there is no `dlc` on PATH. Install dlc in the workspace or on PATH, or set `dlc.path` to it.' });
  });

  it('on Windows the .cmd launcher is found through PATHEXT and runs through the shell', () => {
    const seen: string[] = [];
    const r = resolveDlc({
      workspaceFolders: ['/ws'],
      trusted: true,
      env: { Path: 'C:\\tools;C:\\node', PATHEXT: '.EXE;.CMD' },
      platform: 'win32',
      isFile: (p) => {
        seen.push(p);
        return p.endsWith('dlc.cmd') && p.startsWith('C:\\node');
      },
    });
    expect(r).toMatchObject({ dlc: { shell: true, source: 'path' } });
    expect(r.kind === 'found' && r.dlc.command).toMatch(/C:\\node.dlc\.cmd$/);
    expect(seen.some((p) => p.endsWith(join('node_modules', '.bin', 'dlc.cmd')))).toBe(true);
  });
});

const node: DlcCommand = { command: process.execPath, prefixArgs: [], shell: false, source: 'path' };
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('runDlc', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'dlc-vscode-run-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('hands the buffer over on stdin and returns stdout, stderr and the exit code', async () => {
    const r = await runDlc(node, ['-e', 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{process.stdout.write(s.toUpperCase());process.stderr.write("e");process.exit(3)})'], 'héllo 🙂', { cwd: tmp, timeoutMs: 20_000 });
    expect(r).toEqual({ kind: 'exited', exitCode: 3, stdout: 'HÉLLO 🙂', stderr: 'e' });
  });

  it('a run past its timeout is killed', async () => {
    const pidFile = join(tmp, 'slow.pid');
    const r = await runDlc(node, ['-e', `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => {}, 60000)`], '', { cwd: tmp, timeoutMs: 1500 });
    expect(r).toEqual({ kind: 'timed-out', timeoutMs: 1500 });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await vi.waitFor(() => expect(alive(pid)).toBe(false), { timeout: 5000 });
  });

  it('a newer run for the same buffer kills the stale one; another buffer\'s run is untouched', async () => {
    const runs = new LatestRuns();
    const pidFile = join(tmp, 'stale.pid');
    const stale = runDlc(node, ['-e', `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => {}, 60000)`], '', { cwd: tmp, timeoutMs: 30_000, signal: runs.start('a.dl') });
    await vi.waitFor(() => expect(readFileSync(pidFile, 'utf8')).not.toBe(''), { timeout: 10_000 });
    const other = runs.start('b.dl');
    const fresh = runDlc(node, ['-e', 'process.stdout.write("fresh")'], '', { cwd: tmp, timeoutMs: 20_000, signal: runs.start('a.dl') });
    expect(await stale).toEqual({ kind: 'cancelled' });
    expect(await fresh).toMatchObject({ kind: 'exited', exitCode: 0, stdout: 'fresh' });
    await vi.waitFor(() => expect(alive(Number(readFileSync(pidFile, 'utf8')))).toBe(false), { timeout: 5000 });
    expect(other.aborted).toBe(false);
    runs.cancel('b.dl');
    expect(other.aborted).toBe(true);
  });

  it('a command that does not exist is not-found, not a crash', async () => {
    const r = await runDlc({ command: join(tmp, 'no-such-dlc'), prefixArgs: [], shell: false, source: 'setting' }, ['check'], '', { cwd: tmp, timeoutMs: 5000 });
    expect(r.kind).toBe('not-found');
  });
});

describe('Debouncer', () => {
  it('runs a key\'s action once, 300 ms after the last change; keys are independent', () => {
    vi.useFakeTimers();
    try {
      const calls: string[] = [];
      const debouncer = new Debouncer(300);
      debouncer.schedule('a', () => calls.push('a1'));
      vi.advanceTimersByTime(200);
      debouncer.schedule('a', () => calls.push('a2'));
      debouncer.schedule('b', () => calls.push('b'));
      vi.advanceTimersByTime(299);
      expect(calls).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(calls).toEqual(['a2', 'b']);
      debouncer.schedule('a', () => calls.push('a3'));
      debouncer.cancel('a');
      vi.advanceTimersByTime(1000);
      expect(calls).toEqual(['a2', 'b']);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('minimalEdit', () => {
  const apply = (before: string, edit: ReturnType<typeof minimalEdit>) => (edit ? before.slice(0, edit.start) + edit.text + before.slice(edit.end) : before);

  it('replaces only what changed', () => {
    expect(minimalEdit('a  =  1\nb = 2\n', 'a = 1\nb = 2\n')).toEqual({ start: 2, end: 5, text: '=' });
    expect(minimalEdit('same', 'same')).toBeUndefined();
  });

  it('never splits a CRLF or a surrogate pair', () => {
    const crlf = minimalEdit('x\r\n', 'x\r\r\n');
    expect(crlf).toBeDefined();
    expect('x\r\n'[crlf!.start - 1]).not.toBe('\r');
    const emoji = minimalEdit('a\u{1F600}', 'a\u{1F601}');
    expect(emoji).toEqual({ start: 1, end: 3, text: '\u{1F601}' });
  });

  it('applied to the old text, gives the new text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', '\r', '\u{1F600}', '\u{1F601}') }), fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', '\r', '\u{1F600}', '\u{1F601}') }), (before, after) => {
        expect(apply(before, minimalEdit(before, after))).toBe(after);
      }),
    );
  });
});

describe('the real dlc through the client (no VS Code)', () => {
  let ws: string;
  const dlc = (): DlcCommand => {
    const r = resolveDlc({ setting: join(root, 'bin', 'dlc.js'), workspaceFolders: [ws], trusted: true, env: process.env, platform: process.platform });
    if (r.kind !== 'found') throw new Error(r.message);
    return r.dlc;
  };
  beforeAll(() => {
    ws = mkdtempSync(join(tmpdir(), 'dlc-vscode-ws-'));
    mkdirSync(join(ws, 'blocks'));
    writeFileSync(join(ws, 'blocks', 'lib.dl'), 'layer Blk {\n  forward(x) = x + nope\n}\n');
  });
  afterAll(() => rmSync(ws, { recursive: true, force: true }));

  it('dlc check --json - on an unsaved buffer: its errors and its import\'s, each under its own file, as the extension publishes them', { timeout: 60_000 }, async () => {
    // the buffer is not on disk: dlc reads it from stdin and resolves its import from its path
    const file = join(ws, 'model.dl');
    const text = 'use "./blocks/lib.dl".{Blk}\n\nmodel M {\n  input x: f32[B, 3]\n  param w: f32[4, 5] = zeros\n  layer b = Blk()\n  output y = b(x)\n  output z = x @ w\n}\n';
    const result = await checkBuffer(dlc(), { file, text }, { cwd: ws, timeoutMs: 50_000 });
    expect(result.kind, JSON.stringify(result)).toBe('diagnostics');
    if (result.kind !== 'diagnostics') return;
    expect([...result.byFile.keys()].sort()).toEqual([join(ws, 'blocks', 'lib.dl'), file].sort());
    const [inBuffer] = result.byFile.get(file)!;
    expect(result.byFile.get(file)).toHaveLength(1);
    const line7 = text.split('\n')[7];
    expect(inBuffer).toMatchObject({ file, code: 'E0301', severity: 'error', range: { startLine: 7, startCharacter: line7.indexOf('x @'), endLine: 7, endCharacter: line7.indexOf('x @') + 1 } });
    expect(inBuffer.message).toMatch(/^matmul inner dimensions differ/);
    // the primary span's label (the left operand's type) and the right operand's, as related places
    expect(inBuffer.related.map((r) => [r.range.startCharacter, r.message])).toEqual(expect.arrayContaining([[line7.indexOf('x @'), 'f32[B, 3]'], [line7.indexOf('w', line7.indexOf('@')), 'f32[4, 5]']]));
    expect(inBuffer.related.map((r) => [r.file, r.range.startLine, r.message])).toContainEqual([file, 4, '`w` is declared here']);
    const [inLib] = result.byFile.get(join(ws, 'blocks', 'lib.dl'))!;
    expect(inLib).toMatchObject({ code: 'E0201', range: { startLine: 1, startCharacter: 19, endLine: 1, endCharacter: 23 } });
    expect(inLib.message).toContain('`nope`');
    // the import's error points back at where the buffer uses the layer
    expect(inLib.related).toContainEqual({ file, range: { startLine: 6, startCharacter: 13, endLine: 6, endCharacter: 17 }, message: 'in `b` = Blk(), called here' });
  });

  it('an imported file open with unsaved edits shows its own check\'s diagnostic, not the importer\'s from the saved text', { timeout: 90_000 }, async () => {
    const blocks = join(ws, 'edited.dl');
    const saved = 'layer Blk {\n  param w: f32[4, 4] = zeros\n  forward(x: f32[B, 4]) -> f32[B, 4] = x @ w + oops\n}\n';
    writeFileSync(blocks, saved);
    const main = join(ws, 'uses-edited.dl');
    const mainText = 'use "./edited.dl".{Blk}\n\nmodel M {\n  input x: f32[B, 4]\n  layer b = Blk()\n  output y = b(x)\n}\n';
    // the edited buffer: one comment line inserted at the top, not saved
    const edited = `// a new first line\n${saved}`;
    const fromMain = await checkBuffer(dlc(), { file: main, text: mainText }, { cwd: ws, timeoutMs: 80_000 });
    const fromBlocks = await checkBuffer(dlc(), { file: blocks, text: edited }, { cwd: ws, timeoutMs: 80_000 });
    if (fromMain.kind !== 'diagnostics' || fromBlocks.kind !== 'diagnostics') throw new Error(JSON.stringify([fromMain, fromBlocks]));
    const store = new DiagnosticStore();
    store.set('main', fromMain.byFile, fromMain.file);
    store.set('blocks', fromBlocks.byFile, fromBlocks.file);
    const lines = () => store.get(blocks).map((r) => [r.code, r.range.startLine]);
    // main.dl's check read the saved text: `oops` on line 3 (index 2); the buffer has it on line 4
    expect(fromMain.byFile.get(blocks)?.map((r) => r.range.startLine)).toEqual([2]);
    expect(lines()).toContainEqual(['E0201', 2]);
    store.setUnsaved(blocks, true);
    expect(lines()).toEqual([['E0201', 3]]);
  });

  it('a clean buffer clears its diagnostics', { timeout: 60_000 }, async () => {
    const file = join(ws, 'clean.dl');
    const result = await checkBuffer(dlc(), { file, text: 'model M {\n  input x: f32[B, 3]\n  output y = x * 2\n}\n' }, { cwd: ws, timeoutMs: 50_000 });
    expect(result.kind === 'diagnostics' && [...result.byFile]).toEqual([[file, []]]);
  });

  it('dlc fmt - formats the buffer as the printer does, and leaves a buffer with syntax errors alone', { timeout: 60_000 }, async () => {
    const file = join(ws, 'fmt.dl');
    const messy = 'model   M{\n input x:f32[B,3]\n    output y=x*2\n}';
    const formatted = await formatBuffer(dlc(), { file, text: messy }, { cwd: ws, timeoutMs: 50_000 });
    expect(formatted).toEqual({ kind: 'formatted', text: print(parse(messy, file).program) });
    const broken = await formatBuffer(dlc(), { file, text: 'model M {\n  output y = (\n}\n' }, { cwd: ws, timeoutMs: 50_000 });
    expect(broken.kind).toBe('syntax-errors');
    expect(broken.kind === 'syntax-errors' && broken.message).toContain('syntax errors');
  });
});
