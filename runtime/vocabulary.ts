// String lookup for categorical columns (Keras' StringLookup): a vocabulary fitted on the training split, sorted, index 0 for every value outside it.
import { type ColumnInput, Dataset, described } from './data.ts';
import { InputError } from './errors.ts';

/** The index of a value the vocabulary does not hold (seen only outside the training split, or in a later file), and of a missing (empty) cell. */
export const OOV_INDEX = 0;

/** A vocabulary per categorical column, by column name: index k + 1 is `vocabulary[k]`. */
export type Vocabularies = Readonly<Record<string, readonly string[]>>;

/**
 * The vocabulary of each categorical column of `train` (a column with a `vocabulary`): the values
 * its examples hold, sorted by code unit, so the indices do not depend on the order of the rows.
 */
export function fitVocabularies(train: Dataset): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of train.columns()) {
    if (!c.vocabulary) continue;
    const seen = new Set<number>();
    for (const k of c.data) if (k !== OOV_INDEX) seen.add(k);
    out[c.name] = [...seen].map((k) => c.vocabulary![k - 1]).sort();
  }
  return out;
}

/**
 * `data` with each categorical column that `vocabularies` names re-indexed by that vocabulary: a value
 * it holds reads as its position + 1, any other value (and a missing cell) as OOV_INDEX. Every other
 * column is kept as it is. A vocabulary for a column `data` lacks, or that is not categorical, is an error.
 */
export function withVocabularies(data: Dataset, vocabularies: Vocabularies): Dataset {
  const columns: Record<string, ColumnInput> = {};
  for (const c of data.columns()) columns[c.name] = { data: c.data, ...described(c) };
  for (const [name, vocabulary] of Object.entries(vocabularies)) {
    const c = data.hasColumn(name) ? data.column(name) : undefined;
    if (!c?.vocabulary) throw new InputError(`the data has no categorical column '${name}' for its vocabulary (columns: ${data.columnNames.map((n) => `'${n}'`).join(', ')})`);
    if (new Set(vocabulary).size !== vocabulary.length) throw new InputError(`the vocabulary of '${name}' holds a value more than once`);
    const index = new Map(vocabulary.map((v, k) => [v, k + 1]));
    // the column's own index of each value, to the vocabulary's
    const remap = Int32Array.from([OOV_INDEX, ...c.vocabulary.map((v) => index.get(v) ?? OOV_INDEX)]);
    columns[name] = { data: Int32Array.from(c.data, (k) => remap[k]), shape: c.shape, ...(c.names ? { names: c.names } : {}), vocabulary };
  }
  return new Dataset(columns, data.length);
}
