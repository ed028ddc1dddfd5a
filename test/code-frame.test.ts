// Code frames: carets by display width (wide characters, tabs), no byte-order mark, long lines cut around the span; plain ASCII as @babel/code-frame draws it.
import { codeFrameColumns } from '@babel/code-frame';
import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { codeFrame, MAX_FRAME_WIDTH } from '../compiler/diagnostics/code-frame.ts';
import { renderDiagnostic } from '../compiler/diagnostics/render.ts';
import { SourceText } from '../compiler/diagnostics/source.ts';
import { checkSource } from '../compiler/frontend/check.ts';

/** `dlc check`'s first diagnostic on `text`, rendered. */
function rendered(text: string): string {
  const d = checkSource(text, 'f.dl').diagnostics[0];
  const source = new SourceText('f.dl', text);
  return renderDiagnostic(d, () => source);
}

/** The caret line's carets as [display column, count], the gutter (`    | `) removed. */
function carets(frame: string): [number, number] {
  const line = frame.split('\n').find((l) => /^\s+\| .*\^/.test(l))!;
  const body = line.slice(line.indexOf('|') + 2);
  const at = body.indexOf('^');
  return [stringWidth(body.slice(0, at)), /\^+/.exec(body)![0].length];
}

/** The marked source line of a frame, the gutter removed. */
function markedLine(frame: string): string {
  const line = frame.split('\n').find((l) => l.startsWith('>'))!;
  return line.slice(line.indexOf('|') + 2);
}

describe('code frames', () => {
  it('draw plain ASCII lines as @babel/code-frame does', () => {
    const text = 'model M {\n  input x: f32[B, 4]\n\toutput y = x + zz\n}\n\nlet q = )\n';
    for (const [line, column, endColumn, message] of [[3, 17, 19, 'here'], [1, 1, 6, undefined], [6, 9, 10, undefined], [5, 1, 1, undefined]] as const) {
      const start = { line, column };
      const end = { line, column: endColumn };
      expect(codeFrame(text, start, end, message)).toBe(
        codeFrameColumns(text, { start, end }, { highlightCode: false, linesAbove: 1, linesBelow: 0, ...(message ? { message } : {}) }),
      );
    }
  });

  it('put carets under wide characters by display width', () => {
    const frame = rendered('model M {\n  input x: f32[B, 4]\n  output y = x /* 重み付きの和 */ + zz\n}\n');
    const line = markedLine(frame);
    expect(carets(frame)).toEqual([stringWidth(line.slice(0, line.indexOf('zz'))), 2]);
    // a wide character inside the span counts twice too
    const wide = rendered('let 日本 = 2\n');
    expect(carets(wide)).toEqual([4, 4]);
  });

  it('neither count nor print a byte-order mark', () => {
    const text = '\uFEFFlet y = zz\n';
    const frame = rendered(text);
    expect(frame).toContain('--> f.dl:1:9');
    expect(frame).not.toContain('\uFEFF');
    expect(carets(frame)).toEqual([8, 2]);
    // the JSON columns match too: they are what an editor shows
    expect(new SourceText('f.dl', text).position(text.indexOf('zz'))).toEqual({ line: 1, column: 9 });
  });

  it('cut long lines around the span, with an ellipsis on each side that was cut', () => {
    const long = `model M {\n  input x: f32[B, 4]\n  output y = ${'x + '.repeat(150)}zz + ${'x + '.repeat(150)}x\n}\n`;
    const frame = rendered(long);
    const line = markedLine(frame);
    expect(line.startsWith('...') && line.endsWith('...')).toBe(true);
    for (const l of frame.split('\n')) expect(stringWidth(l)).toBeLessThanOrEqual(MAX_FRAME_WIDTH + 20);
    expect(carets(frame)).toEqual([stringWidth(line.slice(0, line.indexOf('zz'))), 2]);
    // at the end of a long line: cut on the left only
    const end = rendered(`model M {\n  input x: f32[B, 4]\n  output y = ${'x + '.repeat(150)}zz\n}\n`);
    expect(markedLine(end).startsWith('...') && markedLine(end).endsWith('zz')).toBe(true);
    expect(carets(end)).toEqual([stringWidth(markedLine(end).slice(0, markedLine(end).indexOf('zz'))), 2]);
  });
});
