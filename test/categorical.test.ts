// Categorical CSV columns: string values to i32 indices by a vocabulary fitted on the training split (0 for values outside it), recorded in checkpoints and reused by evaluate and predict; compile-time and load-time diagnostics.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc } from './cli-helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { parseCsv } from '../runtime/csv.ts';
import { Dataset } from '../runtime/data.ts';
import { decodeSafetensorsMetadata } from '../runtime/safetensors.ts';
import { fitVocabularies, OOV_INDEX, withVocabularies } from '../runtime/vocabulary.ts';

const MODEL = `use std.nn.{Dense, Embedding}

model M {
  input features: f32[B, 2]
  input color: i32[B]
  input label: i32[B]
  layer emb = Embedding(8, 3)
  layer fc = Dense(5, 2)
  let logits = fc(concat([features, emb(color)], axis: -1))
  output probs = softmax(logits)
  output color_index = color + 0
  loss = cross_entropy(logits, label)
}
`;

const COLORS = ['red', 'green', 'blue', 'teal', 'amber'];

/** Rows a,color,b,y: the color cycles through COLORS, 'violet' only in the last 4 rows (ordered_split holds them out). */
function rows(n = 40): (string | number)[][] {
  return Array.from({ length: n }, (_, i) => [((i * 7) % 11) / 5 - 1, i >= n - 4 ? 'violet' : COLORS[i % COLORS.length], ((i * 3) % 7) / 3, i % 2]);
}

function csv(header: string, data: readonly (readonly (number | string)[])[]): string {
  return `${header}\n${data.map((r) => r.join(',')).join('\n')}\n`;
}

function project(train: string, files: Readonly<Record<string, string>>, model = MODEL): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dlc-categorical-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const file = join(dir, 'm.dl');
  writeFileSync(file, `${model}\ntrain M {\n${train}\n  optimizer = adam(lr: 0.05)\n  batch = 8\n}\n`);
  return { dir, file };
}

const jsonLines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('parseCsv categorical columns and vocabularies', () => {
  it('reads a categorical column as i32 indices into its sorted values (0 for an empty cell), apart from the features', () => {
    const data = parseCsv('a,color,b,y\n1,red,2,0\n3,blue,4,1\n5,,6,0\n7,red,8,1\n', { label: 'y', categorical: ['color'] });
    expect(data.columnNames).toEqual(['features', 'color', 'label']);
    expect(data.column('features').names).toEqual(['a', 'b']);
    expect(Array.from(data.column('features').data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const color = data.column('color');
    expect([color.dtype, color.shape, color.vocabulary]).toEqual(['i32', [], ['blue', 'red']]);
    expect(Array.from(color.data)).toEqual([2, 1, OOV_INDEX, 2]);
  });

  it('fits a vocabulary on one split and maps every other value to 0, by value, whatever the column was indexed by', () => {
    const data = parseCsv('color\nred\nblue\ngreen\nred\nviolet\n', { categorical: ['color'], features: [] });
    const train = data.subset([0, 1, 3]);
    const vocabularies = fitVocabularies(train);
    expect(vocabularies).toEqual({ color: ['blue', 'red'] });
    const held = withVocabularies(data.subset([2, 4, 0, 1]), vocabularies);
    expect(Array.from(held.column('color').data)).toEqual([0, 0, 2, 1]);
    expect(held.column('color').vocabulary).toEqual(['blue', 'red']);
    // a file read later, whose own indices differ: the same strings, the same indices
    const later = parseCsv('color\nred\nazure\nblue\n', { categorical: ['color'], features: [] });
    expect(Array.from(withVocabularies(later, vocabularies).column('color').data)).toEqual([2, 0, 1]);
    expect(() => withVocabularies(later, { shade: ['x'] })).toThrow("the data has no categorical column 'shade' for its vocabulary (columns: 'features', 'color')");
    expect(() => new Dataset({ color: { data: new Int32Array([3]), shape: [], vocabulary: ['a', 'b'] } })).toThrow("column 'color' holds 3 at example 0, outside its vocabulary's indices 0..2");
  });

  it('refuses a categorical column the header lacks, one that is also the label or a listed feature, and a file without a header', () => {
    const text = 'a,color,y\n1,red,0\n';
    expect(() => parseCsv(text, { label: 'y', categorical: ['colour'] })).toThrow("CSV: no column 'colour' for the categorical (columns: 'a', 'color', 'y')");
    expect(() => parseCsv(text, { label: 'y', categorical: ['y'] })).toThrow("CSV: column 3 'y' is both the label and a categorical column");
    expect(() => parseCsv(text, { label: 'y', features: ['a', 'color'], categorical: ['color'] })).toThrow("CSV: column 2 'color' is both a numeric feature and a categorical column: list it in one of them");
    expect(() => parseCsv('1,red,0\n', { header: false, label: 2, categorical: ['color'] })).toThrow('categorical columns are named by the header, and the CSV has none');
  });
});

describe('categorical columns in dlc check (E0207)', () => {
  const check = (data: string, model = MODEL) => {
    const source = `${model}\ntrain M {\n  ${data}\n}\n`;
    return checkSource(source, 'm.dl').diagnostics.map((d) => [d.code, d.message, source.slice(d.span.start, d.span.end)]);
  };
  it('accepts a categorical column feeding an i32 input, and reports one also numeric, also the label, or read by an input of another type', () => {
    expect(check('data { path = "d.csv"; label = "y"; categorical = ["color"] }')).toEqual([]);
    expect(check('data = csv(path: "d.csv", label: "y", categorical: ["color"])')).toEqual([]);
    expect(check('data { path = "d.csv"; label = "y"; columns = ["a", "color"]; categorical = ["color"] }')).toEqual([
      ['E0207', 'the column "color" is both numeric (listed in `columns`) and categorical', '["color"]'],
    ]);
    expect(check('data { path = "d.csv"; label = "color"; categorical = ["color"] }')[0]).toEqual(['E0207', 'the column "color" is both the label and categorical', '["color"]']);
    const float = MODEL.replace('input color: i32[B]', 'input color: f32[B]').replace('emb(color)', 'reshape(color, [-1, 1]) * ones([1, 3])');
    const wrong = check('data { path = "d.csv"; label = "y"; categorical = ["color"] }', float);
    expect(wrong.map((d) => d.slice(0, 2))).toEqual([['E0207', "the categorical column `color` gives one i32 index per example (i32[B]), but the model's input is f32[B]"]]);
    // without `categorical`, the model's `color` has no column
    expect(check('data { path = "d.csv"; label = "y" }')[0][1]).toMatch(/^`csv\(\)` has no column `color`/);
  });
});

describe('categorical columns in dlc train, evaluate and predict', () => {
  it('indexes by the training split vocabulary (a value seen only in held-out rows is 0), records it, and predict reuses it on a reordered new file', { timeout: 180_000 }, async () => {
    const data = rows();
    const fresh = [
      ['blue', 0.5, 0.2],
      ['violet', 0.1, 0.3],
      ['red', -0.4, 1.0],
      ['', 0.0, 0.0],
      ['magenta', 0.3, 0.6],
    ];
    const { dir, file } = project('  data { path = "d.csv"; label = "y"; categorical = ["color"] }\n  split = [0.9, 0.1]\n  ordered_split = true\n  epochs = 2', {
      'd.csv': csv('a,color,b,y', data),
      'new.csv': csv('color,a,b', fresh),
    });
    const trained = await dlc('train', file, '--no-progress');
    expect(trained.status, trained.err).toBe(EXIT_OK);
    const metadata = decodeSafetensorsMetadata(readFileSync(join(dir, 'checkpoints/M.safetensors')));
    // the training split (the first 36 rows) never holds 'violet'
    const vocabulary = ['amber', 'blue', 'green', 'red', 'teal'];
    expect(JSON.parse(metadata['dlc.vocabulary.color'])).toEqual(vocabulary);
    expect(JSON.parse(metadata['dlc.names.features'])).toEqual(['a', 'b']);
    const whole = jsonLines((await dlc('predict', file, '--split', 'all', '--outputs', 'color_index')).out);
    expect(whole.map((r) => r.color_index)).toEqual(data.map((r) => vocabulary.indexOf(r[1] as string) + 1));
    expect(whole.slice(-4).map((r) => r.color_index)).toEqual([0, 0, 0, 0]);
    const predicted = await dlc('predict', file, '--split', 'all', '--data', `csv:${join(dir, 'new.csv')}`, '--outputs', 'color_index');
    expect(predicted.status, predicted.err).toBe(EXIT_OK);
    expect(jsonLines(predicted.out).map((r) => r.color_index)).toEqual([2, 0, 4, 0, 0]);
  });

  it('reports a categorical column the file lacks at the data setting, and a vocabulary larger than the Embedding', { timeout: 120_000 }, async () => {
    const missing = project('  data { path = "d.csv"; label = "y"; categorical = ["color"] }', { 'd.csv': csv('a,colour,b,y', rows()) });
    const run = await dlc('train', missing.file, '--no-progress');
    expect(run.status).toBe(EXIT_USER_ERROR);
    expect(run.err).toContain('E0207');
    expect(run.err).toContain("no column 'color' for the categorical (columns: 'a', 'colour', 'b', 'y')");
    expect(run.err).toContain('data { path = "d.csv"; label = "y"; categorical = ["color"] }');
    const small = project('  data { path = "d.csv"; label = "y"; categorical = ["color"] }', { 'd.csv': csv('a,color,b,y', rows()) }, MODEL.replace('Embedding(8, 3)', 'Embedding(5, 3)'));
    const tooSmall = await dlc('train', small.file, '--no-progress');
    expect(tooSmall.status).toBe(EXIT_USER_ERROR);
    const line = tooSmall.err.trim().split('\n').at(-1)!.replace(/stdlib\/nn\.dl:\d+:\d+/, 'stdlib/nn.dl:LINE');
    expect(line).toBe(
      `error: the categorical column \`color\` has 6 values in its vocabulary (indices 1..6, and 0 for a value training did not see), but the model uses it to index the rows of \`emb.weight\`, of size 5 (${small.file}:9:37, in stdlib/nn.dl:LINE): it needs 7 (an Embedding(7, d), one_hot(color, 7))`,
    );
  });
});
