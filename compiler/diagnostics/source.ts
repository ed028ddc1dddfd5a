// Source files by name, and offset-to-line/column conversion for rendering diagnostics.

export interface Position {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, in UTF-16 code units; a byte-order mark at the start of the file is not counted (editors do not show it). */
  readonly column: number;
}

export class SourceText {
  private readonly lineStarts: number[];

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 10 || (ch === 13 && text.charCodeAt(i + 1) !== 10)) this.lineStarts.push(i + 1);
    }
  }

  position(offset: number): Position {
    const clamped = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= clamped) lo = mid;
      else hi = mid - 1;
    }
    const bom = lo === 0 && clamped > 0 && this.text.charCodeAt(0) === 0xfeff ? 1 : 0;
    return { line: lo + 1, column: clamped - this.lineStarts[lo] + 1 - bom };
  }
}
