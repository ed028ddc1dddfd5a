// The VS Code side of the dlc extension: live diagnostics from `dlc check --json -` and formatting through `dlc fmt -`; the logic lives in diagnostics.mts and dlc.mts.
import { basename, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { absoluteFile, DiagnosticStore, type DiagnosticRecord, type Range } from './diagnostics.mts';
import { checkBuffer, Debouncer, formatBuffer, LatestRuns, minimalEdit, resolveDlc, runDlc, workingDirectory, type DlcCommand } from './dlc.mts';

const LANGUAGE = 'dl';
/** Typing pauses this long before the buffer is checked. */
const DEBOUNCE_MS = 300;
/** dlc starts through tsx: the first run of a session can take a few seconds. */
const TIMEOUT_MS = 30_000;
/** Diagnostic codes link to a read-only document holding `dlc explain <code>`. */
const EXPLAIN_SCHEME = 'dlc-explain';

export function activate(context: vscode.ExtensionContext): void {
  const collection = vscode.languages.createDiagnosticCollection('dlc');
  const output = vscode.window.createOutputChannel('dlc');
  const store = new DiagnosticStore();
  const runs = new LatestRuns();
  const debouncer = new Debouncer(DEBOUNCE_MS);
  let toldNotFound = false;

  const isDl = (doc: vscode.TextDocument) => doc.languageId === LANGUAGE && (doc.uri.scheme === 'file' || doc.uri.scheme === 'untitled');
  const folderOf = (doc: vscode.TextDocument) => vscode.workspace.getWorkspaceFolder(doc.uri)?.uri.fsPath;
  /** The file name dlc is told the buffer has: its path, or for an untitled buffer a name in the workspace so its imports resolve there. */
  const bufferFile = (doc: vscode.TextDocument) => {
    if (doc.uri.scheme === 'file') return doc.uri.fsPath;
    const folder = folderOf(doc) ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const name = `${basename(doc.uri.path) || 'untitled'}.dl`;
    return folder !== undefined ? join(folder, name) : resolve(name);
  };
  const cwdOf = (doc: vscode.TextDocument) => workingDirectory(bufferFile(doc), folderOf(doc) ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath);
  const ownerOf = (doc: vscode.TextDocument) => doc.uri.toString();

  function findDlc(doc: vscode.TextDocument | undefined): DlcCommand | undefined {
    const folder = doc ? folderOf(doc) : undefined;
    const folders = [...(folder !== undefined ? [folder] : []), ...(vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath).filter((f) => f !== folder)];
    const resolved = resolveDlc({
      setting: vscode.workspace.getConfiguration('dlc', doc?.uri).get<string>('path'),
      workspaceFolders: folders,
      trusted: vscode.workspace.isTrusted,
      env: process.env,
      platform: process.platform,
    });
    if (resolved.kind === 'found') return resolved.dlc;
    tellNotFound(resolved.message);
    return undefined;
  }

  function tellNotFound(message: string): void {
    output.appendLine(message);
    if (toldNotFound) return;
    toldNotFound = true;
    void vscode.window.showWarningMessage(`${message} Diagnostics and formatting of .dl files need it.`, 'Open Settings').then((choice) => {
      if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'dlc.path');
    });
  }

  /** The URI a file of dlc's output is shown under: an open buffer's own (untitled ones too), else the file's. */
  function uriOf(file: string): vscode.Uri {
    for (const doc of vscode.workspace.textDocuments) if (isDl(doc) && absoluteFile(bufferFile(doc), cwdOf(doc)) === file) return doc.uri;
    return vscode.Uri.file(file);
  }

  const toRange = (r: Range) => new vscode.Range(r.startLine, r.startCharacter, r.endLine, r.endCharacter);
  const SEVERITY = { error: vscode.DiagnosticSeverity.Error, warning: vscode.DiagnosticSeverity.Warning, information: vscode.DiagnosticSeverity.Information } as const;

  function toDiagnostic(r: DiagnosticRecord): vscode.Diagnostic {
    const d = new vscode.Diagnostic(toRange(r.range), r.message, SEVERITY[r.severity]);
    d.source = 'dlc';
    d.code = { value: r.code, target: vscode.Uri.from({ scheme: EXPLAIN_SCHEME, path: r.code }) };
    d.relatedInformation = r.related.map((l) => new vscode.DiagnosticRelatedInformation(new vscode.Location(uriOf(l.file), toRange(l.range)), l.message));
    return d;
  }

  function publish(files: readonly string[]): void {
    for (const file of files) {
      const records = store.get(file);
      const uri = uriOf(file);
      if (records.length === 0) collection.delete(uri);
      else collection.set(uri, records.map(toDiagnostic));
    }
  }

  async function check(doc: vscode.TextDocument): Promise<void> {
    if (!isDl(doc) || doc.isClosed) return;
    const dlc = findDlc(doc);
    if (!dlc) return;
    const owner = ownerOf(doc);
    const signal = runs.start(owner);
    const result = await checkBuffer(dlc, { file: bufferFile(doc), text: doc.getText() }, { cwd: cwdOf(doc), timeoutMs: TIMEOUT_MS, signal });
    runs.finish(owner, signal);
    if (signal.aborted || doc.isClosed) return;
    switch (result.kind) {
      case 'diagnostics':
        publish(store.set(owner, result.byFile, result.file));
        break;
      case 'not-found':
        tellNotFound(result.message);
        break;
      case 'failed':
        output.appendLine(`dlc check ${bufferFile(doc)}: ${result.message}`);
        break;
      case 'cancelled':
        break;
    }
  }

  function forget(doc: vscode.TextDocument): void {
    const owner = ownerOf(doc);
    debouncer.cancel(owner);
    runs.cancel(owner);
    // closed, its unsaved edits are gone: the other buffers' checks read what is on disk again
    publish([...store.delete(owner), ...store.setUnsaved(absoluteFile(bufferFile(doc), cwdOf(doc)), false)]);
  }

  /** Tells the store whether `doc` has unsaved edits, so that other buffers' diagnostics for it (from the disk's text) are hidden while it does. */
  const trackUnsaved = (doc: vscode.TextDocument) => publish(store.setUnsaved(absoluteFile(bufferFile(doc), cwdOf(doc)), doc.isDirty === true));

  const checkAllOpen = (except?: vscode.TextDocument) => {
    for (const doc of vscode.workspace.textDocuments) if (isDl(doc) && doc !== except) debouncer.schedule(ownerOf(doc), () => void check(doc));
  };

  context.subscriptions.push(
    collection,
    output,
    { dispose: () => (debouncer.dispose(), runs.cancelAll()) },
    vscode.workspace.onDidOpenTextDocument((doc) => void check(doc)),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (!isDl(e.document)) return;
      trackUnsaved(e.document);
      if (e.contentChanges.length > 0) debouncer.schedule(ownerOf(e.document), () => void check(e.document));
    }),
    vscode.workspace.onDidSaveTextDocument((doc) => {
      if (!isDl(doc)) return;
      trackUnsaved(doc);
      debouncer.cancel(ownerOf(doc));
      void check(doc);
      // the other open buffers may import this file, which dlc reads from disk
      checkAllOpen(doc);
    }),
    vscode.workspace.onDidCloseTextDocument((doc) => {
      if (isDl(doc) || store.owners().includes(ownerOf(doc))) forget(doc);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('dlc')) return;
      toldNotFound = false;
      checkAllOpen();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      toldNotFound = false;
      checkAllOpen();
    }),
    vscode.languages.registerDocumentFormattingEditProvider(LANGUAGE, {
      async provideDocumentFormattingEdits(doc, _options, token) {
        const dlc = findDlc(doc);
        if (!dlc) return [];
        const controller = new AbortController();
        const cancelled = token.onCancellationRequested(() => controller.abort());
        const text = doc.getText();
        const result = await formatBuffer(dlc, { file: bufferFile(doc), text }, { cwd: cwdOf(doc), timeoutMs: TIMEOUT_MS, signal: controller.signal });
        cancelled.dispose();
        switch (result.kind) {
          case 'formatted': {
            const edit = minimalEdit(text, result.text);
            return edit ? [vscode.TextEdit.replace(new vscode.Range(doc.positionAt(edit.start), doc.positionAt(edit.end)), edit.text)] : [];
          }
          case 'syntax-errors':
            void vscode.window.setStatusBarMessage('dlc fmt: not formatted, the file has syntax errors', 5000);
            return [];
          case 'not-found':
            tellNotFound(result.message);
            return [];
          case 'failed':
            output.appendLine(`dlc fmt ${bufferFile(doc)}: ${result.message}`);
            void vscode.window.showErrorMessage(`dlc fmt failed: ${result.message.split('\n')[0]}`);
            return [];
          case 'cancelled':
            return [];
        }
      },
    }),
    vscode.workspace.registerTextDocumentContentProvider(EXPLAIN_SCHEME, {
      async provideTextDocumentContent(uri) {
        const code = uri.path.replace(/^\//, '');
        const dlc = findDlc(vscode.window.activeTextEditor?.document);
        if (!dlc) return `dlc was not found, so \`dlc explain ${code}\` cannot be shown.`;
        const run = await runDlc(dlc, ['explain', code], '', { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd(), timeoutMs: TIMEOUT_MS });
        return run.kind === 'exited' ? run.stdout || run.stderr : `dlc explain ${code} failed (${run.kind}).`;
      },
    }),
  );

  for (const doc of vscode.workspace.textDocuments) void check(doc);
}

export function deactivate(): void {}
