// A text as a character-level language-modelling Dataset: `tokens` i32 [context], windows that overlap by one character, the vocabulary as the column's classes; browser-safe.
import { InputError } from './errors.ts';
import { Dataset } from './data.ts';

/** The distinct characters of `text` (code points), sorted: token k is `vocabulary[k]`. */
export function vocabularyOf(text: string): string[] {
  return [...new Set(text)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Windows of `context` characters, each starting `context - 1` after the previous, so a model that
 * reads a row's first context - 1 characters and predicts its last context - 1 (each shifted by one)
 * sees every character of the text as a target once. The last partial window is dropped.
 */
export function textWindows(text: string, context: number, vocabulary: readonly string[] = vocabularyOf(text)): Dataset {
  if (!Number.isInteger(context) || context < 2) throw new InputError(`a text dataset's context must be an integer of at least 2, got ${context}`);
  const index = new Map(vocabulary.map((ch, k) => [ch, k]));
  const chars = [...text];
  const ids = new Int32Array(chars.length);
  chars.forEach((ch, i) => {
    const k = index.get(ch);
    if (k === undefined) throw new InputError(`character ${JSON.stringify(ch)} at ${i} is not in the vocabulary`);
    ids[i] = k;
  });
  const stride = context - 1;
  const rows = chars.length < context ? 0 : Math.floor((chars.length - 1) / stride);
  if (rows === 0) throw new InputError(`the text has ${chars.length} characters, fewer than one window of ${context}`);
  const tokens = new Int32Array(rows * context);
  for (let r = 0; r < rows; r++) tokens.set(ids.subarray(r * stride, r * stride + context), r * context);
  return new Dataset({ tokens: { data: tokens, shape: [context], classes: vocabulary } }, rows);
}
