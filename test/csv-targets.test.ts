// CSV targets for forecasting: a list of label columns as a label [B, k] (direct multi-step forecasts), missing float targets read as NaN with `missing:`, the E0207 for a model whose label does not take them, and dlc train / dlc predict on a file of the feature columns alone.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { EXIT_OK } from '../compiler/cli/main.ts';
import { parseCsv } from '../runtime/csv.ts';
import { dlc } from './cli-helpers.ts';

const TEXT = 'x0,x1,y1,y2,y3\n1,2,3,4,5\n6,7,8,9,10\n';

describe('a list of label columns', () => {
  it('gives a label of shape [k], named by the header, and leaves those columns out of the features', () => {
    const d = parseCsv(TEXT, { label: ['y1', 'y2', 'y3'], labelType: 'float' });
    const label = d.column('label');
    expect(label.shape).toEqual([3]);
    expect(label.dtype).toBe('f32');
    expect(Array.from(label.data)).toEqual([3, 4, 5, 8, 9, 10]);
    expect(label.names).toEqual(['y1', 'y2', 'y3']);
    expect(d.column('features').names).toEqual(['x0', 'x1']);
    // by position, in the order listed, and as i32 with label_type "int"
    const ints = parseCsv(TEXT, { label: [4, 2], labelType: 'int' });
    expect(ints.column('label').dtype).toBe('i32');
    expect(Array.from(ints.column('label').data)).toEqual([5, 3, 10, 8]);
    expect(ints.column('features').names).toEqual(['x0', 'x1', 'y2']);
    // the default label type reads a list as f32: forecasts of whole numbers stay numbers
    expect(parseCsv(TEXT, { label: ['y1', 'y2'] }).column('label').dtype).toBe('f32');
  });

  it('refuses what it cannot read, naming the column', () => {
    expect(() => parseCsv(TEXT, { label: ['y1', 'y9'] })).toThrow("no column 'y9' for the label");
    expect(() => parseCsv(TEXT, { label: ['y1', 'y1'] })).toThrow('a label column is listed more than once');
    expect(() => parseCsv(TEXT, { label: [] })).toThrow('label: [] names no column');
    expect(() => parseCsv(TEXT, { label: ['y1', 'y2'], labelType: 'class' })).toThrow('a class label (label_type: "class") is one column');
    expect(() => parseCsv(TEXT, { label: ['y1', 'x0'], features: ['x0', 'x1'] })).toThrow("column 1 'x0' is both the label and a feature");
  });

  it('where the label may be absent (predicting), a file with none of its columns is features alone', () => {
    const d = parseCsv('x0,x1\n1,2\n', { label: ['y1', 'y2'], labelOptional: true });
    expect(d.hasColumn('label')).toBe(false);
    expect(Array.from(d.column('features').data)).toEqual([1, 2]);
    // some of them there and some not: a mistake, not a file without labels
    expect(() => parseCsv('x0,y1\n1,2\n', { label: ['y1', 'y2'], labelOptional: true })).toThrow("no column 'y2' for the label");
  });
});

describe('missing targets', () => {
  const gaps = 'x,y1,y2\n1,2,\n3,NaN,4\n5,6,7\n';

  it('read as `missing` in float labels (NaN for a masked loss); without it, the message says how', () => {
    const d = parseCsv(gaps, { label: ['y1', 'y2'], missing: NaN });
    expect(Array.from(d.column('label').data)).toEqual([2, NaN, NaN, 4, 6, 7]);
    const one = parseCsv(gaps, { label: 'y2', labelType: 'float', missing: NaN });
    expect(Array.from(one.column('label').data)).toEqual([NaN, 4, 7]);
    expect(() => parseCsv(gaps, { label: ['y1', 'y2'] })).toThrow(/row 1 \(line 2\), column 3 'y2': the label is empty: a missing target\? give missing: "nan"/);
    expect(() => parseCsv(gaps, { label: 'y2', labelType: 'float', features: ['x'] })).toThrow(/the label is empty: a missing target\? with label_type: "float", missing: "nan"/);
  });

  it('never fill a class or integer label', () => {
    expect(() => parseCsv(gaps, { label: 'y2', missing: 0 })).toThrow(/row 1 \(line 2\), column 3 'y2': the label is empty/);
    expect(() => parseCsv(gaps, { label: 'y2', labelType: 'int', missing: 0 })).toThrow(/the label is empty/);
  });
});

const MODEL = `model Direct {
  input features: f32[B, 3]
  input label: f32[B, 2]
  layer fc = Dense(3, 2)
  let pred = fc(features)
  output forecast = pred
  loss = mse(pred, label)
  metric mae = mae(pred, label)
}
`;

describe('training a direct multi-step forecaster from a CSV', () => {
  it('is E0207 at the data when the model\'s label does not take the listed columns', () => {
    const source = MODEL.replace('f32[B, 2]', 'f32[B]').replace('mse(pred, label)', 'mse(pred[:, 0], label)').replace('mae(pred, label)', 'mae(pred[:, 0], label)') + 'train Direct {\n  optimizer = adam(lr: 0.01)\n  data = csv(path: "d.csv", label: ["y1", "y2"])\n}\n';
    const errors = compileSource(source, 'm.dl').diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((e) => `${e.code} ${e.message}`)).toEqual(["E0207 the CSV's 2 label columns give `label` as f32[B, 2], but the model's input is f32[B]"]);
    expect(source.slice(errors[0].span.start, errors[0].span.end)).toMatch(/^csv\(path/);
  });

  it('dlc train reads the targets, and dlc predict forecasts from a file of the feature columns alone', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-targets-'));
    const rows = Array.from({ length: 40 }, (_, i) => {
      const [a, b, c] = [Math.sin(i), Math.cos(i / 2), (i % 5) / 5];
      return [a, b, c, a + b, b - c];
    });
    writeFileSync(join(dir, 'd.csv'), `a,b,c,y1,y2\n${rows.map((r) => r.join(',')).join('\n')}\n`);
    // the future: its columns in another order, and no targets
    writeFileSync(join(dir, 'future.csv'), `c,a,b\n${rows.slice(0, 3).map((r) => [r[2], r[0], r[1]].join(',')).join('\n')}\n`);
    const file = join(dir, 'm.dl');
    writeFileSync(file, `${MODEL}\ntrain Direct {\n  optimizer = adam(lr: 0.05)\n  data = csv(path: "d.csv", label: ["y1", "y2"])\n  split = [0.8, 0.2]\n  ordered_split = true\n  batch = 8\n  epochs = 3\n}\n`);
    const trained = await dlc('train', file, '--no-progress');
    expect(trained.status, trained.err).toBe(EXIT_OK);
    expect(trained.out).toMatch(/validation {2}loss \d/);
    const all = await dlc('predict', file, '--split', 'all', '--out', join(dir, 'all.csv'));
    expect(all.status, all.err).toBe(EXIT_OK);
    const future = await dlc('predict', file, '--split', 'all', '--data', `csv:${join(dir, 'future.csv')}`, '--outputs', 'forecast', '--out', join(dir, 'future-pred.csv'));
    expect(future.status, future.err).toBe(EXIT_OK);
    const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n');
    const predicted = lines(join(dir, 'future-pred.csv'));
    expect(predicted[0]).toBe('example,forecast_0,forecast_1');
    // the same rows' forecasts as from the training file: columns matched by name
    const forecastOf = (line: string) => line.split(',').slice(0, 3).join(',');
    const fromAll = lines(join(dir, 'all.csv'));
    const at = fromAll[0].split(',').indexOf('forecast_0');
    for (let i = 1; i <= 3; i++) expect(predicted[i]).toBe(forecastOf([i - 1, ...fromAll[i].split(',').slice(at, at + 2)].join(',')));
  });
});
