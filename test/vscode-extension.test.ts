// The bundled VS Code extension (grammar/vscode/src/extension.mts) driven through a stand-in `vscode` module: diagnostics published per file on open, change and close, formatting edits, the dlc-explain link, and the one-time not-found message.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

type Listener = (e: unknown) => void;

class Uri {
  constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}
  get fsPath(): string {
    return this.path;
  }
  static file(path: string): Uri {
    return new Uri('file', path);
  }
  static from(parts: { scheme: string; path: string }): Uri {
    return new Uri(parts.scheme, parts.path);
  }
  toString(): string {
    return `${this.scheme}://${this.path}`;
  }
}

class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    this.start = typeof a === 'number' ? new Position(a, b as number) : a;
    this.end = typeof a === 'number' ? new Position(c!, d!) : (b as Position);
  }
}

class Doc {
  isClosed = false;
  isDirty = false;
  readonly languageId = 'dl';
  constructor(
    readonly uri: Uri,
    public text: string,
  ) {}
  getText(): string {
    return this.text;
  }
  positionAt(offset: number): Position {
    const before = this.text.slice(0, offset).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
}

/** The parts of the VS Code API the extension uses, recording what it does. */
function fakeVscode(folder: string) {
  const listeners: Record<string, Listener[]> = {};
  const on = (name: string) => (l: Listener) => {
    (listeners[name] ??= []).push(l);
    return { dispose() {} };
  };
  const state = {
    published: new Map<string, { range: Range; message: string; severity: number; code: { value: string; target: Uri }; relatedInformation: { location: { uri: Uri; range: Range }; message: string }[] }[]>(),
    warnings: [] as string[],
    setting: '' as string,
    formatter: undefined as undefined | { provideDocumentFormattingEdits: (doc: Doc, options: unknown, token: unknown) => Promise<{ range: Range; newText: string }[]> },
    contentProviders: new Map<string, { provideTextDocumentContent: (uri: Uri) => Promise<string> }>(),
    documents: [] as Doc[],
    fire(name: string, e: unknown) {
      for (const l of listeners[name] ?? []) l(e);
    },
  };
  const vscode = {
    Uri,
    Position,
    Range,
    Diagnostic: class {
      source?: string;
      code?: unknown;
      relatedInformation?: unknown[];
      constructor(
        readonly range: Range,
        readonly message: string,
        readonly severity: number,
      ) {}
    },
    DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
    DiagnosticRelatedInformation: class {
      constructor(
        readonly location: unknown,
        readonly message: string,
      ) {}
    },
    Location: class {
      constructor(
        readonly uri: Uri,
        readonly range: Range,
      ) {}
    },
    TextEdit: { replace: (range: Range, newText: string) => ({ range, newText }) },
    languages: {
      createDiagnosticCollection: () => ({
        set: (uri: Uri, diagnostics: never[]) => state.published.set(uri.toString(), diagnostics),
        delete: (uri: Uri) => state.published.delete(uri.toString()),
        dispose() {},
      }),
      registerDocumentFormattingEditProvider: (_selector: unknown, provider: typeof state.formatter) => {
        state.formatter = provider;
        return { dispose() {} };
      },
    },
    window: {
      createOutputChannel: () => ({ appendLine() {}, dispose() {} }),
      showWarningMessage: (message: string) => {
        state.warnings.push(message);
        return Promise.resolve(undefined);
      },
      showErrorMessage: () => Promise.resolve(undefined),
      setStatusBarMessage: () => ({ dispose() {} }),
      activeTextEditor: undefined,
    },
    commands: { executeCommand: () => Promise.resolve() },
    workspace: {
      get textDocuments() {
        return state.documents;
      },
      workspaceFolders: [{ uri: Uri.file(folder) }],
      getWorkspaceFolder: (uri: Uri) => (uri.scheme === 'file' && uri.path.startsWith(`${folder}/`) ? { uri: Uri.file(folder) } : undefined),
      getConfiguration: () => ({ get: (key: string) => (key === 'path' ? state.setting : undefined) }),
      isTrusted: true,
      onDidOpenTextDocument: on('open'),
      onDidChangeTextDocument: on('change'),
      onDidSaveTextDocument: on('save'),
      onDidCloseTextDocument: on('close'),
      onDidChangeConfiguration: on('configuration'),
      onDidGrantWorkspaceTrust: on('trust'),
      registerTextDocumentContentProvider: (scheme: string, provider: { provideTextDocumentContent: (uri: Uri) => Promise<string> }) => {
        state.contentProviders.set(scheme, provider);
        return { dispose() {} };
      },
    },
  };
  return { vscode, state };
}

describe('the bundled extension with a stand-in vscode', () => {
  let tmp: string;
  let ws: string;
  let extension: { activate: (context: { subscriptions: { dispose(): void }[] }) => void };
  let fake: ReturnType<typeof fakeVscode>;
  const context = { subscriptions: [] as { dispose(): void }[] };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dlc-vscode-ext-'));
    ws = join(tmp, 'ws');
    mkdirSync(ws);
    writeFileSync(join(ws, 'lib.dl'), 'layer Blk {\n  forward(x) = x + nope\n}\n');
    // the bundle as package.mjs builds it, requiring `vscode` from a folder that hands out the stand-in
    await build({ entryPoints: [join(root, 'grammar', 'vscode', 'src', 'extension.mts')], outfile: join(tmp, 'out', 'extension.js'), bundle: true, platform: 'node', format: 'cjs', target: 'node16', external: ['vscode'], logLevel: 'silent' });
    mkdirSync(join(tmp, 'node_modules', 'vscode'), { recursive: true });
    writeFileSync(join(tmp, 'node_modules', 'vscode', 'index.js'), 'module.exports = globalThis.__dlcFakeVscode;\n');
    fake = fakeVscode(ws);
    (globalThis as Record<string, unknown>).__dlcFakeVscode = fake.vscode;
    extension = createRequire(join(tmp, 'out', 'extension.js'))(join(tmp, 'out', 'extension.js'));
    fake.state.setting = join(root, 'bin', 'dlc.js');
    extension.activate(context);
  });

  afterAll(() => {
    for (const s of context.subscriptions) s.dispose();
    delete (globalThis as Record<string, unknown>).__dlcFakeVscode;
    rmSync(tmp, { recursive: true, force: true });
  });

  it('opening a buffer publishes its errors, and its import\'s under the imported file', { timeout: 60_000 }, async () => {
    const doc = new Doc(Uri.file(join(ws, 'model.dl')), 'use "./lib.dl".{Blk}\n\nmodel M {\n  input x: f32[B, 3]\n  param w: f32[4, 5] = zeros\n  layer b = Blk()\n  output y = b(x)\n  output z = x @ w\n}\n');
    fake.state.documents.push(doc);
    fake.state.fire('open', doc);
    const model = `file://${join(ws, 'model.dl')}`;
    const lib = `file://${join(ws, 'lib.dl')}`;
    await vi.waitFor(() => expect([...fake.state.published.keys()].sort()).toEqual([lib, model]), { timeout: 50_000, interval: 100 });
    const [matmul] = fake.state.published.get(model)!;
    expect(matmul).toMatchObject({ severity: 0, range: { start: { line: 7, character: 13 }, end: { line: 7, character: 14 } } });
    expect(matmul.message).toMatch(/^matmul inner dimensions differ/);
    expect(matmul.code.value).toBe('E0301');
    expect(matmul.code.target.toString()).toBe('dlc-explain://E0301');
    expect(matmul.relatedInformation.map((r) => [r.location.uri.toString(), r.location.range.start.line, r.message])).toContainEqual([model, 4, '`w` is declared here']);
    const [nope] = fake.state.published.get(lib)!;
    expect(nope).toMatchObject({ range: { start: { line: 1, character: 19 } } });
    expect(nope.code.value).toBe('E0201');
  });

  it('an imported file open with unsaved edits shows its own check\'s diagnostics, not the importer\'s from the saved text; closed, the importer\'s again', { timeout: 60_000 }, async () => {
    const lib = `file://${join(ws, 'lib.dl')}`;
    const libDoc = new Doc(Uri.file(join(ws, 'lib.dl')), '// a new first line\nlayer Blk {\n  forward(x) = x + nope\n}\n');
    libDoc.isDirty = true;
    fake.state.documents.push(libDoc);
    fake.state.fire('change', { document: libDoc, contentChanges: [{}] });
    // model.dl's check put `nope` on line 1 (the saved text); the buffer has it on line 2
    await vi.waitFor(() => expect(fake.state.published.get(lib)?.map((d) => d.range.start.line)).toEqual([2]), { timeout: 50_000, interval: 100 });
    libDoc.isClosed = true;
    fake.state.documents.splice(fake.state.documents.indexOf(libDoc), 1);
    fake.state.fire('close', libDoc);
    expect(fake.state.published.get(lib)?.map((d) => d.range.start.line)).toEqual([1]);
  });

  it('typing a fix clears the buffer\'s and the no longer imported file\'s diagnostics after the pause', { timeout: 60_000 }, async () => {
    const doc = fake.state.documents[0];
    doc.text = 'model M {\n  input x: f32[B, 3]\n  output y = x * 2\n}\n';
    fake.state.fire('change', { document: doc, contentChanges: [{}] });
    await vi.waitFor(() => expect([...fake.state.published.keys()]).toEqual([]), { timeout: 50_000, interval: 100 });
  });

  it('formatting replaces only what dlc fmt changes', { timeout: 60_000 }, async () => {
    const doc = fake.state.documents[0];
    doc.text = 'model M {\n  input x: f32[B, 3]\n  output y=x*2\n}\n';
    const edits = await fake.state.formatter!.provideDocumentFormattingEdits(doc, {}, { onCancellationRequested: () => ({ dispose() {} }) });
    expect(edits).toEqual([{ range: new Range(2, 10, 2, 13), newText: ' = x * ' }]);
  });

  it('a code\'s link shows dlc explain', { timeout: 60_000 }, async () => {
    const text = await fake.state.contentProviders.get('dlc-explain')!.provideTextDocumentContent(Uri.from({ scheme: 'dlc-explain', path: 'E0301' }));
    expect(text).toMatch(/^E0301: /);
  });

  it('closing a buffer clears what it reported', { timeout: 60_000 }, async () => {
    const doc = fake.state.documents[0];
    doc.text = 'model M {\n  output y = nope\n}\n';
    fake.state.fire('save', doc);
    const model = `file://${join(ws, 'model.dl')}`;
    await vi.waitFor(() => expect(fake.state.published.has(model)).toBe(true), { timeout: 50_000, interval: 100 });
    doc.isClosed = true;
    fake.state.documents.splice(0, 1);
    fake.state.fire('close', doc);
    expect([...fake.state.published.keys()]).toEqual([]);
  });

  it('without dlc: one message, however many buffers are checked', { timeout: 60_000 }, async () => {
    fake.state.setting = join(tmp, 'no-such-dlc');
    fake.state.fire('configuration', { affectsConfiguration: (s: string) => s === 'dlc' });
    for (const name of ['a.dl', 'b.dl']) {
      const doc = new Doc(Uri.file(join(ws, name)), 'model M {}\n');
      fake.state.documents.push(doc);
      fake.state.fire('open', doc);
    }
    expect(fake.state.warnings).toHaveLength(1);
    expect(fake.state.warnings[0]).toContain('dlc.path');
    expect(fake.state.published.size).toBe(0);
  });
});
