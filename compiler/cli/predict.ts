// `dlc predict`: a checkpoint's outputs for every example of a split of the model's data (split as training split it) or of all of it, as JSON lines or CSV, beside the targets the data holds.
import { loadCheckpoint } from './checkpoints.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import { writeFileAtomic } from '../../runtime/node/checkpoint-file.ts';
import { checkpointAndSplit, type EvaluateFlags } from './evaluate.ts';
import { checkpointMetadata, TrainError, type TrainIo, withModel } from './train.ts';
import { outputSubset } from '../../runtime/subset.ts';

export interface PredictFlags extends EvaluateFlags {
  /** Write here instead of standard output: CSV when it ends in `.csv`, JSON lines otherwise. */
  readonly out?: string;
  /** Comma-separated outputs to compute (default: all); only the inputs they read are needed. */
  readonly outputs?: string;
}

type Row = Record<string, number | number[] | string | null>;

/**
 * One row per example: `example` (its position in the data loaded: a CSV's data row, counted from 0
 * after the header), each target column the model reads only to train (where the data has it), then
 * each output, with the class's name beside a class output (scores per class, or a class index).
 */
export async function predictProgram(program: ModelProgram, file: string, flags: PredictFlags, io: TrainIo): Promise<Row[]> {
  if (program.outputs.length === 0) throw new TrainError(`${program.model} declares no output to predict`);
  const all = program.outputs.map((o) => o.name);
  const chosen = flags.outputs === undefined ? all : flags.outputs.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const unknown = chosen.filter((n) => !all.includes(n));
  if (unknown.length > 0 || chosen.length === 0) {
    throw new TrainError(`--outputs ${unknown.length > 0 ? `names ${unknown.map((n) => `\`${n}\``).join(', ')}, which ${program.model} does not output` : 'names no output'}; its outputs are ${all.map((n) => `\`${n}\``).join(', ')}`);
  }
  const outputs = program.outputs.filter((o) => chosen.includes(o.name));
  // the inputs the chosen outputs read (a VAE's decoded output from `z` needs no image): a file without the label column serves outputs that do not read it
  const read = new Set(Object.keys(outputSubset(program.graphs.predict, chosen).inputs));
  const { path, data, split, set, rows: at } = await checkpointAndSplit(program, file, flags, io, read);
  // the data's columns that predict does not read but training does (labels), one value per example
  const targets = program.inputs.filter((i) => !read.has(i.name) && set.hasColumn(i.name) && set.column(i.name).exampleSize === 1).map((i) => i.name);
  const classesOf = new Map(targets.flatMap((t) => (set.column(t).classes ? [[t, set.column(t).classes!] as const] : [])));
  // the class names of the label: from the data, else as the checkpoint recorded them (a file without labels)
  const recorded = classesOf.size === 0 ? recordedClasses(checkpointMetadata(path)) : undefined;
  const classNames = classesOf.size === 1 ? [...classesOf.values()][0] : recorded;
  const rows = await withModel(program, { seed: data.seed, batchSize: data.batchSize, sizes: data.sizes }, async (model) => {
    await loadCheckpoint(model, path, io.err);
    io.err(`predicting ${split === 'all' ? `all ${set.length} examples of the data, in order,` : `${set.length} ${split} examples`} with ${path} on ${model.adapterInfo}`);
    const out: Row[] = [];
    for (const batch of set.batches(data.batchSize)) {
      const feed = Object.fromEntries([...read].map((name) => [name, batch.columns[name]]));
      const got = await model.predict(feed, chosen.length < all.length ? { outputs: chosen } : {});
      for (let r = 0; r < batch.length; r++) {
        const row: Row = { example: at[out.length] };
        for (const t of targets) {
          row[t] = batch.columns[t][r];
          // a class label also by its name (a CSV's "cat"), as the data wrote it
          const names = classesOf.get(t);
          if (names) row[`${t}_name`] = names[row[t] as number] ?? null;
        }
        for (const o of outputs) {
          const values = got[o.name];
          const per = values.length / batch.length;
          const slice = Array.from(values.subarray(r * per, (r + 1) * per));
          row[o.name] = per === 1 && o.shape.length === 1 ? slice[0] : slice;
          // one score per class of the label: the likeliest class's name too
          if (classNames && per === classNames.length && o.shape.length === 2) row[`${o.name}_class`] = classNames[slice.indexOf(Math.max(...slice))];
          // a class index (argmax): its name
          else if (classNames && per === 1 && o.shape.length === 1 && o.dtype !== 'f32') row[`${o.name}_class`] = classNames[slice[0]] ?? null;
        }
        out.push(row);
      }
    }
    return out;
  });
  const text = flags.out?.endsWith('.csv') ? toCsv(rows) : rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  if (flags.out === undefined) io.out(text.trimEnd());
  else {
    await writeFileAtomic(flags.out, new TextEncoder().encode(text));
    io.err(`wrote ${rows.length} rows to ${flags.out}`);
  }
  return rows;
}

/** The class names a checkpoint recorded, where it recorded those of one input only (a CSV's label). */
function recordedClasses(metadata: Readonly<Record<string, string>>): readonly string[] | undefined {
  const lists = Object.entries(metadata).filter(([k]) => k.startsWith('dlc.classes.'));
  if (lists.length !== 1) return undefined;
  try {
    const v = JSON.parse(lists[0][1]) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Rows as CSV: an array becomes one column per element (`probs_0`, `probs_1`, ...). */
function toCsv(rows: readonly Row[]): string {
  const first = rows[0];
  const header = Object.entries(first).flatMap(([k, v]) => (Array.isArray(v) ? v.map((_, i) => `${k}_${i}`) : [k]));
  // a class name is quoted where it holds a comma, a quote or a line break
  const field = (v: number | string | null) => (typeof v === 'string' && /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v === null ? '' : String(v));
  const lines = rows.map((r) => Object.values(r).flatMap((v) => (Array.isArray(v) ? v : [v])).map(field).join(','));
  return `${header.join(',')}\n${lines.join('\n')}\n`;
}
