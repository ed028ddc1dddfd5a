// Keras' Normalization.adapt(): the per-feature mean and variance of a layer's input over a dataset, in float64, for the layers a train block adapts (`adapt = [norm]`).
import type { Column, Dataset } from './data.ts';
import { InputError } from './errors.ts';
import type { AdaptDecl } from './program.ts';

/** Which of the train block's adapted layers `Model.adapt` sets (default: every one `adapt` names). */
export interface AdaptOptions {
  readonly layers?: readonly string[];
}

/** What adapting one layer set: its state buffers' new values, over how many values of each feature. */
export interface AdaptReport {
  readonly layer: string;
  readonly input: string;
  /** The values of each feature the statistics are over: examples times the positions of the other axes. */
  readonly count: number;
  readonly mean: Float32Array<ArrayBuffer>;
  readonly variance: Float32Array<ArrayBuffer>;
}

/**
 * The mean and population variance (dividing by the count, as Keras' adapt) of each of `features`
 * features of a column, the feature being the last axis: element i of an example is feature i % features.
 * Float64, two passes (no cancellation for a feature with a large mean). A NaN or infinite value is an
 * InputError: the statistics would be NaN.
 */
export function featureStatistics(column: Column, features: number, what: string): { count: number; mean: Float64Array; variance: Float64Array } {
  const { data, exampleSize } = column;
  if (features < 1 || exampleSize % features !== 0) throw new InputError(`${what}: the column \`${column.name}\` holds ${exampleSize} values per example, not a whole number of rows of ${features} features`);
  const rows = data.length / features;
  if (rows === 0) throw new InputError(`${what}: the data has no example to take statistics over`);
  const mean = new Float64Array(features);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) {
      throw new InputError(`${what}: the column \`${column.name}\` holds ${v} in example ${Math.floor(i / exampleSize)} (counted from 0): fill missing values before adapting (a CSV's missing: 0.0)`);
    }
    mean[i % features] += v;
  }
  for (let f = 0; f < features; f++) mean[f] /= rows;
  const variance = new Float64Array(features);
  for (let i = 0; i < data.length; i++) {
    const d = data[i] - mean[i % features];
    variance[i % features] += d * d;
  }
  for (let f = 0; f < features; f++) variance[f] /= rows;
  return { count: rows, mean, variance };
}

/** The new state of each adapted layer over `data` (the layers `options.layers` names, else every one), checked before anything is set. */
export function adaptStatistics(model: string, targets: readonly AdaptDecl[], stateShape: (path: string) => readonly number[], data: Dataset, options: AdaptOptions = {}): AdaptReport[] {
  if (targets.length === 0) throw new InputError(`adapt(): the train block of ${model} adapts no layer; name its Normalization layers in \`adapt = [...]\``);
  const chosen = options.layers ?? targets.map((t) => t.layer);
  if (!Array.isArray(chosen)) throw new InputError('adapt(): `layers` is a list of layer names');
  return chosen.map((layer) => {
    const target = targets.find((t) => t.layer === layer);
    if (!target) throw new InputError(`adapt(): \`${String(layer)}\` is not a layer the train block adapts (${targets.map((t) => `\`${t.layer}\``).join(', ')})`);
    if (!data.hasColumn(target.input)) throw new InputError(`adapt(): the data has no column \`${target.input}\`, the input \`${layer}\` is applied to (columns: ${data.columnNames.map((c) => `\`${c}\``).join(', ')})`);
    const column = data.column(target.input);
    if (column.dtype !== 'f32') throw new InputError(`adapt(): the column \`${target.input}\` holds ${column.dtype} values; \`${layer}\` normalises f32 features`);
    const features = stateShape(target.mean)[0];
    const { count, mean, variance } = featureStatistics(column, features, `adapt() of \`${layer}\``);
    return { layer, input: target.input, count, mean: Float32Array.from(mean), variance: Float32Array.from(variance) };
  });
}
