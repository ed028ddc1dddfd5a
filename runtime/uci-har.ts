// The UCI HAR smartphone-sensor recordings (its "Inertial Signals" text files) as a Dataset: `x` f32 [128, 9] (time, channel), `label` i32; browser-safe.
import { InputError } from './errors.ts';
import { Dataset } from './data.ts';

/** Activity labels 1-6 of the distribution (activity_labels.txt) as classes 0-5. */
export const UCI_HAR_CLASSES: readonly string[] = ['walking', 'walking_upstairs', 'walking_downstairs', 'sitting', 'standing', 'laying'];

/** The nine channels in the order of `x`'s last axis; each is a file `<channel>_<part>.txt` of 128 readings per row. */
export const UCI_HAR_CHANNELS: readonly string[] = [
  'total_acc_x', 'total_acc_y', 'total_acc_z',
  'body_acc_x', 'body_acc_y', 'body_acc_z',
  'body_gyro_x', 'body_gyro_y', 'body_gyro_z',
];

export const UCI_HAR_STEPS = 128;

function rowsOf(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
}

/**
 * The dataset from the text of the nine channel files (in UCI_HAR_CHANNELS order) and of the label
 * file (`y_<part>.txt`, one activity 1-6 per row). Each row of a channel file is one example's 128
 * readings, whitespace-separated. `names` name the files in messages (channels, then labels).
 */
export function uciHarFromText(channels: readonly string[], labels: string, names: readonly string[] = []): Dataset {
  if (channels.length !== UCI_HAR_CHANNELS.length) throw new InputError(`UCI HAR needs ${UCI_HAR_CHANNELS.length} channel files (${UCI_HAR_CHANNELS.join(', ')}), got ${channels.length}`);
  const name = (i: number) => names[i] ?? (i < UCI_HAR_CHANNELS.length ? UCI_HAR_CHANNELS[i] : 'labels');
  const y = rowsOf(labels);
  const n = y.length;
  const C = UCI_HAR_CHANNELS.length;
  const x = new Float32Array(n * UCI_HAR_STEPS * C);
  const label = new Int32Array(n);
  y.forEach((row, i) => {
    const activity = Number(row);
    if (!Number.isInteger(activity) || activity < 1 || activity > UCI_HAR_CLASSES.length) throw new InputError(`${name(C)}, line ${i + 1}: \`${row}\` is not an activity 1-${UCI_HAR_CLASSES.length}`);
    label[i] = activity - 1;
  });
  channels.forEach((text, c) => {
    const rows = rowsOf(text);
    if (rows.length !== n) throw new InputError(`${name(c)} has ${rows.length} rows but ${name(C)} has ${n} labels`);
    rows.forEach((row, i) => {
      const values = row.split(/\s+/);
      if (values.length !== UCI_HAR_STEPS) throw new InputError(`${name(c)}, line ${i + 1}: ${values.length} readings, not ${UCI_HAR_STEPS}`);
      for (let t = 0; t < UCI_HAR_STEPS; t++) {
        const v = Number(values[t]);
        if (!Number.isFinite(v)) throw new InputError(`${name(c)}, line ${i + 1}: reading ${t + 1} \`${values[t]}\` is not a number`);
        x[(i * UCI_HAR_STEPS + t) * C + c] = v;
      }
    });
  });
  return new Dataset({ x: { data: x, shape: [UCI_HAR_STEPS, C] }, label: { data: label, shape: [], classes: UCI_HAR_CLASSES } }, n);
}
