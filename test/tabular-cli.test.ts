// dlc train/evaluate/predict on CSV files as a tabular-data user meets them: columns by name, whole new files, restore_best's weights, --data's CSV format, stratified and ordered splits.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc } from './cli-helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { decodeSafetensorsMetadata } from '../runtime/safetensors.ts';

const MODEL = `model M {
  input features: f32[B, 3]
  input label: i32[B]
  layer fc = Dense(3, 2)
  let logits = fc(features)
  output probs = softmax(logits)
  output cls = argmax(logits, axis: -1)
  loss = cross_entropy(logits, label)
  metric acc = accuracy(logits, label)
  metric f1s = f1(logits, label)
}
`;

/** 60 rows a,b,c,y on very different scales, y from a and b: a model fed the columns in another order scores otherwise. */
function rows(n = 60): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const a = ((i * 37) % 17) / 4 - 2;
    const b = ((i * 11) % 13) * 3 - 18;
    const c = ((i * 7) % 5) / 10;
    return [a, b, c, a + b / 10 > 0 ? 1 : 0];
  });
}

function csv(header: string | undefined, data: readonly (readonly (number | string)[])[], sep = ','): string {
  return `${header === undefined ? '' : `${header}\n`}${data.map((r) => r.join(sep)).join('\n')}\n`;
}

/** A folder with m.dl (its train block as given) and the files. */
function project(train: string, files: Readonly<Record<string, string>>, model = MODEL): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dlc-tabular-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const file = join(dir, 'm.dl');
  writeFileSync(file, `${model}train M {\n${train}\n  optimizer = adam(lr: 0.05)\n  batch = 8\n}\n`);
  return { dir, file };
}

const lastLine = (text: string) => text.trim().split('\n').at(-1);
const jsonLines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('CSV columns by name', () => {
  it("reads a new file's columns by the header names training recorded, in any order, and refuses a file that lacks one", { timeout: 120_000 }, async () => {
    const data = rows();
    const { dir, file } = project('  data = csv(path: "d.csv", label: "y")\n  epochs = 2', {
      'd.csv': csv('a,b,c,y', data),
      'r.csv': csv('c,y,b,a', data.map(([a, b, c, y]) => [c, y, b, a])),
      'short.csv': csv('c,y,a', data.map(([a, , c, y]) => [c, y, a])),
      'nohdr.csv': csv(undefined, data),
    });
    const trained = await dlc('train', file, '--no-progress');
    expect(trained.status, trained.err).toBe(EXIT_OK);
    const metadata = decodeSafetensorsMetadata(readFileSync(join(dir, 'checkpoints/M.safetensors')));
    expect([metadata['dlc.names.features'], metadata['dlc.names.label']]).toEqual(['["a","b","c"]', '["y"]']);
    const same = await dlc('evaluate', file, '--data', `csv:${join(dir, 'd.csv')}:y`);
    const reordered = await dlc('evaluate', file, '--data', `csv:${join(dir, 'r.csv')}:y`);
    expect(same.status, same.err).toBe(EXIT_OK);
    expect(reordered.status, reordered.err).toBe(EXIT_OK);
    // the same examples, each column in its place: the same numbers
    expect(reordered.out).toBe(same.out);
    const short = await dlc('evaluate', file, '--data', `csv:${join(dir, 'short.csv')}:y`);
    expect([short.status, lastLine(short.err)]).toEqual([EXIT_USER_ERROR, `error: cannot load the data: ${join(dir, 'short.csv')}: no column 'b', of the feature columns the checkpoint was trained on ('a', 'b', 'c'; columns: 'c', 'y', 'a')`]);
    // a file without a header: by position, its label by its index
    const positional = await dlc('evaluate', file, '--data', `csv:${join(dir, 'nohdr.csv')}:3`, '--header', 'false');
    expect(positional.status, positional.err).toBe(EXIT_OK);
    expect(positional.out).toBe(same.out);
  });
});

describe('dlc predict and evaluate --split all', () => {
  it('score every row of a new file in file order, `example` being the data row, without a label column when the outputs do not read it', { timeout: 120_000 }, async () => {
    const data = rows();
    const fresh = data.slice(10, 17);
    const { dir, file } = project('  data = csv(path: "d.csv", label: "y")\n  epochs = 1', {
      'd.csv': csv('a,b,c,y', data),
      'new.csv': csv('b,a,c', fresh.map(([a, b, c]) => [b, a, c])),
      'new_y.csv': csv('a,b,c,y', fresh),
    });
    expect((await dlc('train', file, '--no-progress')).status).toBe(EXIT_OK);
    const whole = await dlc('predict', file, '--split', 'all', '--data', `csv:${join(dir, 'd.csv')}:y`);
    expect(whole.status, whole.err).toBe(EXIT_OK);
    const all = jsonLines(whole.out);
    expect(all.map((r) => r.example)).toEqual(data.map((_, i) => i));
    expect(all.map((r) => r.label)).toEqual(data.map((r) => r[3]));
    // a file without the label: only the outputs
    const unlabelled = await dlc('predict', file, '--split', 'all', '--data', `csv:${join(dir, 'new.csv')}`);
    expect(unlabelled.status, unlabelled.err).toBe(EXIT_OK);
    expect(unlabelled.err).not.toContain('held-out examples may include training ones');
    expect(unlabelled.err).toContain('predicting all 7 examples of the data, in order');
    const got = jsonLines(unlabelled.out);
    expect(got.map((r) => r.example)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(got.map((r) => r.probs)).toEqual(all.slice(10, 17).map((r) => r.probs));
    expect(got.every((r) => !('label' in r))).toBe(true);
    // a class index gets its class name too (the labels are numbers here: the index as text is not made up)
    expect(got.map((r) => r.cls)).toEqual(all.slice(10, 17).map((r) => r.cls));
    // a split's `example` is the file's row too
    const test = jsonLines((await dlc('predict', file, '--split', 'test')).out);
    expect(test.length).toBe(6);
    for (const r of test) expect(r.probs).toEqual(all[r.example as number].probs);
    const evaluated = await dlc('evaluate', file, '--split', 'all', '--data', `csv:${join(dir, 'new_y.csv')}:y`);
    expect(evaluated.status, evaluated.err).toBe(EXIT_OK);
    expect(evaluated.out).toMatch(/^all {2}loss \d/);
    expect(evaluated.err).toContain('on all 7 examples of the data, in order');
    const limited = await dlc('evaluate', file, '--split', 'all', '--limit', '3');
    expect([limited.status, lastLine(limited.err)]).toEqual([EXIT_USER_ERROR, 'error: --limit chooses a random subset to split; --split all takes every example of the data, in order']);
  });

  it('names the class of a class-index output, from the data or, without labels, from the checkpoint', { timeout: 120_000 }, async () => {
    const data = rows().map(([a, b, c, y]) => [a, b, c, y === 1 ? 'yes' : 'no']);
    const { dir, file } = project('  data = csv(path: "d.csv", label: "y")\n  epochs = 1', { 'd.csv': csv('a,b,c,y', data), 'new.csv': csv('a,b,c', data.slice(0, 5).map((r) => r.slice(0, 3))) });
    expect((await dlc('train', file, '--no-progress')).status).toBe(EXIT_OK);
    for (const path of ['d.csv', 'new.csv']) {
      const got = jsonLines((await dlc('predict', file, '--split', 'all', '--data', `csv:${join(dir, path)}:y`)).out);
      for (const r of got) expect(r.cls_class).toBe(['no', 'yes'][r.cls as number]);
      for (const r of got) expect(r.probs_class).toBe(r.cls_class);
    }
  });
});

describe('restore_best and the checkpoint evaluate and predict run', () => {
  it("evaluate and predict run the weights early stopping restored (train's test numbers), say so, and --resume goes on from the last epoch", { timeout: 180_000 }, async () => {
    // (seeded) val_loss rises in epoch 2: early stopping restores epoch 1
    const { dir, file } = project('  data = csv(path: "d.csv", label: "y")\n  epochs = 2\n  early_stopping { monitor = "val_loss"; patience = 1; restore_best = true }', { 'd.csv': csv('a,b,c,y', rows()) });
    const trained = await dlc('train', file, '--no-progress');
    expect(trained.status, trained.err).toBe(EXIT_OK);
    expect(trained.out).toContain('restored the weights of epoch 1');
    // which way early stopping judges its monitor, said before training
    expect(trained.err).toContain('early stopping watches val_loss, mode min (lower is better), patience 1');
    const best = join(dir, 'checkpoints/M.best.safetensors');
    const last = join(dir, 'checkpoints/M.safetensors');
    const evaluated = await dlc('evaluate', file);
    expect(evaluated.status, evaluated.err).toBe(EXIT_OK);
    expect(evaluated.out.trim()).toBe(lastLine(trained.out));
    expect(evaluated.err).toContain(`note: using the weights of epoch 1 that early stopping restored (best val_loss; the numbers dlc train reported), ${best}; the last epoch's are in ${last}`);
    expect(evaluated.err).toContain(`evaluating ${best} (after epoch 1)`);
    const explicit = await dlc('evaluate', file, '--checkpoint', last);
    expect(explicit.out.trim()).not.toBe(lastLine(trained.out));
    expect(explicit.err).toContain(`its weights are in ${best}, and this runs ${last} as --checkpoint says`);
    expect((await dlc('predict', file)).err).toContain(`with ${best}`);
    const resumed = await dlc('train', file, '--no-progress', '--resume', '--epochs', '3', '--no-early-stopping');
    expect(resumed.status, resumed.err).toBe(EXIT_OK);
    expect(resumed.err).toContain('2 epochs done');
    // a run that restored nothing leaves no note
    expect((await dlc('evaluate', file)).err).not.toContain('early stopping restored');
  });
});

describe("--data csv: keeps the train block's CSV format", () => {
  it("a headerless or ';' block keeps its header and delimiter for --data, --header and --delimiter set them, and the hints name the flags", { timeout: 120_000 }, async () => {
    const data = rows();
    const { dir, file } = project('  data = csv(path: "d.csv", label: 3, header: false, delimiter: ";")\n  epochs = 1', {
      'd.csv': csv(undefined, data, ';'),
      'other.csv': csv(undefined, data.slice(0, 20), ';'),
      'comma.csv': csv(undefined, data.slice(0, 20)),
      'named.csv': csv('a,b,c,y', data.slice(0, 20)),
    });
    expect((await dlc('train', file, '--no-progress')).status).toBe(EXIT_OK);
    const other = await dlc('evaluate', file, '--split', 'all', '--data', `csv:${join(dir, 'other.csv')}:3`);
    expect(other.status, other.err).toBe(EXIT_OK);
    const comma = await dlc('evaluate', file, '--split', 'all', '--data', `csv:${join(dir, 'comma.csv')}:3`, '--delimiter', ',');
    expect(comma.out).toBe(other.out);
    const named = await dlc('evaluate', file, '--split', 'all', '--data', `csv:${join(dir, 'named.csv')}:y`, '--header', 'true', '--delimiter', ',');
    expect(named.out).toBe(other.out);
    // the hint is a flag the user can give
    const { dir: dir2, file: file2 } = project('  data = csv(path: "d.csv", label: "y")\n  epochs = 1', { 'd.csv': csv('a,b,c,y', data), 'nohdr.csv': csv(undefined, data), 'semi.csv': csv('a;b;c;y', data, ';') });
    expect((await dlc('train', file2, '--no-progress')).status).toBe(EXIT_OK);
    const nohdr = await dlc('evaluate', file2, '--split', 'all', '--data', `csv:${join(dir2, 'nohdr.csv')}:3`);
    expect(lastLine(nohdr.err)).toMatch(/holds only numbers: it looks like data, not a header; give --header false \(or --header true if those are its column names\)$/);
    const semi = await dlc('evaluate', file2, '--split', 'all', '--data', `csv:${join(dir2, 'semi.csv')}:y`);
    expect(lastLine(semi.err)).toContain('is the delimiter ";"? (--delimiter ";")');
    const misplaced = await dlc('evaluate', file2, '--header', 'false');
    expect(lastLine(misplaced.err)).toBe("error: --header describes the CSV file of --data csv:<file>; the train block's csv() sets its own");
  });
});

describe('stratified and ordered splits', () => {
  it('stratify = true holds out every class; ordered_split = true holds out the end of the file; a held-out split without a class is a warning', { timeout: 120_000 }, async () => {
    // 100 rows, the 5 positives first
    const data = rows(100).map(([a, b, c], i) => [a, b, c, i < 5 ? 1 : 0]);
    const files = { 'd.csv': csv('a,b,c,y', data) };
    const ordered = project('  data = csv(path: "d.csv", label: "y")\n  split = [0.6, 0.2, 0.2]\n  ordered_split = true\n  epochs = 1', files);
    const run = await dlc('train', ordered.file, '--no-progress');
    expect(run.status, run.err).toBe(EXIT_OK);
    expect(run.err).toContain('warning: the validation split has no example of class 1 of the label (of its 20 examples): its metrics there are over no such example (a stratified split (`stratify = true`) holds out each class in proportion)');
    expect(run.err).toContain('warning: the test split has no example of class 1');
    const test = jsonLines((await dlc('predict', ordered.file, '--split', 'test')).out);
    expect(test.map((r) => r.example)).toEqual(Array.from({ length: 20 }, (_, i) => 80 + i));
    // --limit with ordered_split takes the first rows in order (a random subset would train on rows after the test rows)
    const limited = await dlc('train', ordered.file, '--no-progress', '--limit', '50', '--checkpoint', join(ordered.dir, 'limited.safetensors'));
    expect(limited.status, limited.err).toBe(EXIT_OK);
    const tail = jsonLines((await dlc('predict', ordered.file, '--split', 'test', '--checkpoint', join(ordered.dir, 'limited.safetensors'))).out);
    expect(tail.map((r) => r.example)).toEqual(Array.from({ length: 10 }, (_, i) => 40 + i));
    const head = jsonLines((await dlc('predict', ordered.file, '--split', 'train', '--checkpoint', join(ordered.dir, 'limited.safetensors'))).out);
    expect(head.map((r) => r.example)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const stratified = project('  data = csv(path: "d.csv", label: "y")\n  split = [0.6, 0.2, 0.2]\n  stratify = true\n  epochs = 1', files);
    const fair = await dlc('train', stratified.file, '--no-progress');
    expect(fair.status, fair.err).toBe(EXIT_OK);
    expect(fair.err).not.toContain('has no example of class');
    expect(fair.err).toContain('60 train, 20 validation, 20 test examples');
    for (const split of ['validation', 'test']) {
      const got = jsonLines((await dlc('predict', stratified.file, '--split', split)).out);
      expect(got.filter((r) => r.label === 1).length, split).toBe(1);
    }
    const bad = project('  data = csv(path: "d.csv", label: "y")\n  stratify = 1\n  epochs = 1', files);
    const checked = await dlc('check', bad.file);
    expect([checked.status, checked.err]).toEqual([EXIT_USER_ERROR, expect.stringContaining('`stratify` is true or false')]);
  });
});

describe('the final validation line', () => {
  it("shows the metrics `validation { metrics }` lists, as the epochs' val_ logs do", { timeout: 60_000 }, async () => {
    const { file } = project('  data = csv(path: "d.csv", label: "y")\n  validation { split = 0.2; metrics = [acc] }\n  epochs = 1', { 'd.csv': csv('a,b,c,y', rows()) });
    const run = await dlc('train', file, '--no-progress');
    expect(run.status, run.err).toBe(EXIT_OK);
    expect(run.out).toMatch(/^epoch 1\/1 {2}loss \S+ {2}acc \S+ {2}f1s \S+ {2}val_loss \S+ {2}val_acc \S+ {2}\(/m);
    expect(lastLine(run.out)).toMatch(/^validation {2}loss \S+ {2}acc \S+$/);
  });
});

describe("errors in the train block's data", () => {
  it('are E0207 in a code frame at the data setting, and a feature-width mismatch lists the columns taken', { timeout: 60_000 }, async () => {
    const data = rows(20);
    const { file } = project('  data = csv(path: "p.csv", label: "y")\n  epochs = 1', { 'p.csv': csv(',a,b,c,y', data.map((r, i) => [i, ...r])) });
    const wide = await dlc('train', file, '--no-progress');
    expect(wide.status).toBe(EXIT_USER_ERROR);
    expect(wide.err).toContain("error[E0207]: the data's `features` is [4] per example, but M reads f32[B, 3]: [3] per example (check the model's hyperparameters against the data); it was taken from the columns '' (unnamed: an index column?), 'a', 'b', 'c': list those the model reads with csv(..., features: [...])");
    expect(wide.err).toContain('> 13 |   data = csv(path: "p.csv", label: "y")');
    const { file: missing, dir } = project('  data = csv(path: "none.csv", label: "y")\n  epochs = 1', {});
    const absent = await dlc('train', missing, '--no-progress');
    expect(absent.err).toContain(`error[E0207]: cannot load the data: CSV file not found: ${join(dir, 'none.csv')}`);
    expect(absent.err).toContain('= help: fix the file or this setting; --data <dataset> reads other data without editing it');
    // --data's file is no setting of the block: one line
    const flagged = await dlc('train', missing, '--no-progress', '--data', `csv:${join(dir, 'none.csv')}:y`);
    expect(lastLine(flagged.err)).toBe(`error: cannot load the data: CSV file not found: ${join(dir, 'none.csv')}`);
  });
});
