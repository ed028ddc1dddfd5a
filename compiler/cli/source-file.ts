// Reads a .dl file's bytes as UTF-8 text, reporting bytes that are not UTF-8 (E0006) instead of silently replacing them.
import { readFileSync } from 'node:fs';
import { diagnostic, type Diagnostic } from '../diagnostics/diagnostic.ts';

/** A source as read: its text, and the E0006 error when its bytes are not UTF-8 (the text then has U+FFFD for them, and must not be written back). */
export interface SourceRead {
  readonly text: string;
  readonly notUtf8?: Diagnostic;
}

/** The file's text; undefined when it cannot be read at all (missing, a folder, not permitted). */
export function readSourceFile(file: string): SourceRead | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  return decodeSource(bytes, file);
}

/** `bytes` as text (a byte-order mark kept, as U+FEFF); E0006 at the first byte that does not belong to a UTF-8 character. */
export function decodeSource(bytes: Uint8Array, file: string): SourceRead {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const bad = firstInvalidByte(bytes);
  if (bad === -1) return { text };
  // the bytes before `bad` are valid UTF-8, so they decode to the same characters in `text`
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bad).toString('utf8').length;
  const hex = `0x${bytes[bad].toString(16).toUpperCase().padStart(2, '0')}`;
  const line = (text.slice(0, at).match(/\r\n|\r|\n/g)?.length ?? 0) + 1;
  const notUtf8 = diagnostic('E0006', `\`${file}\` is not UTF-8: byte ${hex} at byte offset ${bad} (line ${line}) does not belong to a UTF-8 character`, { file, start: at, end: at + 1 }, {
    label: 'here (shown as U+FFFD)',
    help: 'save the file as UTF-8 (dlc reads .dl files as UTF-8 only; `dlc fmt` does not rewrite a file it could not read exactly)',
  });
  return { text, notUtf8 };
}

/**
 * The offset of the first byte that does not start or continue a well-formed UTF-8 character (no overlong
 * forms, no surrogates, nothing above U+10FFFF, no cut-off character at the end); -1 when all are.
 */
export function firstInvalidByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    // the number of continuation bytes, and the range the first of them must be in (Unicode Table 3-7)
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) more = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      more = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      more = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= more; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += more + 1;
  }
  return -1;
}
