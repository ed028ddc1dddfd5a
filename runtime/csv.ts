// CSV text to a Dataset (features f32 [n], optional label, categorical columns as i32 indices) via csv-parse's browser-safe sync parser; errors name row and column.
import { InputError } from './errors.ts';
import { parse } from 'csv-parse/browser/esm/sync';
import { type ColumnInput, Dataset } from './data.ts';
import { CSV_LABEL_TYPES, type CsvLabelType } from './catalog.ts';

/** A CSV column by header name, or by 0-based position. */
export type CsvColumnRef = string | number;

export { CSV_LABEL_TYPES, type CsvLabelType } from './catalog.ts';

export interface CsvSpec {
  /** The label column; without one the dataset has only the features column. */
  readonly label?: CsvColumnRef;
  /** Feature columns, in order; default: every column except the label and the categorical ones. */
  readonly features?: readonly CsvColumnRef[];
  /**
   * Columns of strings (a color, a city), by header name: each becomes a dataset column of that name,
   * i32 per example, whose `vocabulary` is the column's distinct values sorted by code unit: value k
   * of it reads as k + 1, and an empty cell as 0 (OOV_INDEX, also the index of values a vocabulary
   * fitted on a training split does not hold: runtime/vocabulary.ts).
   */
  readonly categorical?: readonly string[];
  /** Whether the first row names the columns (default true). Without a header, refer to columns by position. */
  readonly header?: boolean;
  readonly labelType?: CsvLabelType;
  /**
   * Class names in index order, for `class` labels. Default: the distinct label strings sorted by
   * code unit, so the mapping does not depend on row order.
   */
  readonly classes?: readonly string[];
  /** Field delimiter (default ','). */
  readonly delimiter?: string;
  /**
   * The value a missing feature cell reads as (an empty field, or one of MISSING_MARKERS: NaN, NA,
   * N/A, null, ?, ...); NaN keeps it missing, for the model to fill (`select(isnan(x), ...)`). Without
   * it such a cell is an error. Labels are never filled: an empty label stays an error.
   */
  readonly missing?: number;
  /** Name of the dataset's features column (default 'features'). */
  readonly featuresColumn?: string;
  /** Name of the dataset's label column (default 'label'). */
  readonly labelColumn?: string;
  /** Where the text came from (a file path), prefixed to error messages. */
  readonly source?: string;
  /** Load a file without the label column as features alone, rather than refusing it (for predicting). */
  readonly labelOptional?: boolean;
  /** Where `features` came from, said when the file lacks one of them (e.g. "the columns the checkpoint was trained on"). */
  readonly featuresFrom?: string;
  /** How the user sets `header` or `delimiter`, for the hints of errors (default: `header: false`, as a csv() argument). */
  readonly optionHint?: (option: 'header' | 'delimiter', value: string) => string;
}

interface ParsedRecord {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

/**
 * Parses CSV text into a Dataset. Rows are data rows numbered from 1 (the header is not a row);
 * messages also give the file line. Columns in messages are numbered from 1 with their header name.
 * Fields are trimmed; empty lines are skipped; a UTF-8 byte order mark is ignored.
 */
export function parseCsv(text: string, spec: CsvSpec = {}): Dataset {
  const where = spec.source === undefined ? 'CSV' : `${spec.source}`;
  const fail = (message: string): never => {
    throw new InputError(`${where}: ${message}`);
  };
  const hint = spec.optionHint ?? ((option: string, value: string) => `${option}: ${value}`);
  if (typeof text !== 'string') fail('expected CSV text');
  const delimiter = spec.delimiter ?? ',';
  if (typeof delimiter !== 'string' || delimiter.length === 0 || /["\r\n]/.test(delimiter)) fail(`invalid delimiter ${JSON.stringify(delimiter)}`);
  const labelType = spec.labelType ?? 'auto';
  if (!CSV_LABEL_TYPES.includes(labelType)) fail(`unknown label type '${String(labelType)}' (known: ${CSV_LABEL_TYPES.join(', ')})`);

  let records: ParsedRecord[];
  try {
    records = parse(text, { bom: true, delimiter, info: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as unknown as ParsedRecord[];
  } catch (e) {
    return fail(`CSV syntax error: ${(e as Error).message}`);
  }

  const hasHeader = spec.header ?? true;
  let names: string[];
  let rows: ParsedRecord[];
  if (hasHeader) {
    if (records.length === 0) return fail('the CSV is empty (expected a header row)');
    names = records[0].record;
    rows = records.slice(1);
    // a first row of numbers only is data, not names: without `header: false` it would be dropped unseen
    if (spec.header === undefined && names.length > 0 && names.every((n) => NUMBER.test(n.trim()))) {
      fail(`the first row (${names.join(',')}) holds only numbers: it looks like data, not a header; give ${hint('header', 'false')} (or ${hint('header', 'true')} if those are its column names)`);
    }
  } else {
    if (records.length === 0) return fail('the CSV has no rows');
    names = records[0].record.map((_, i) => `column ${i + 1}`);
    rows = records;
  }
  const width = names.length;
  const describe = (c: number): string => (hasHeader ? `column ${c + 1} '${names[c]}'` : `column ${c + 1}`);

  // one column whose name holds another separator: the file is split with the wrong delimiter
  const delimiterHint = (): string => {
    const other = hasHeader && names.length === 1 ? [',', ';', '\t', '|'].find((d) => names[0].includes(d)) : undefined;
    return other ? `; the header reads as one column: is the delimiter ${JSON.stringify(other)}? (${hint('delimiter', JSON.stringify(other))})` : '';
  };
  const resolve = (ref: CsvColumnRef, role: string): number => {
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref < 0 || ref >= width) fail(`${role} column index ${ref} is out of range (the CSV has ${width} columns, numbered from 0)`);
      return ref;
    }
    if (typeof ref !== 'string') return fail(`${role} column must be a name or a 0-based index, got ${String(ref)}`);
    if (!hasHeader) return fail(`${role} column '${ref}' is a name but the CSV has no header; use a 0-based index`);
    const at = names.indexOf(ref);
    if (at < 0) fail(`no column '${ref}' for the ${role} (columns: ${names.map((n) => `'${n}'`).join(', ')})${delimiterHint()}`);
    if (names.indexOf(ref, at + 1) >= 0) fail(`the header names column '${ref}' more than once`);
    return at;
  };

  // a label the file does not have, where it may lack one
  const labelMissing = spec.labelOptional === true && spec.label !== undefined && (typeof spec.label === 'number' ? spec.label >= width : !hasHeader || !names.includes(spec.label));
  const labelIndex = spec.label === undefined || labelMissing ? undefined : resolve(spec.label, 'label');
  // every listed feature name the header lacks, at once
  const absent = hasHeader ? (spec.features ?? []).filter((ref): ref is string => typeof ref === 'string' && !names.includes(ref)) : [];
  if (absent.length > 0 && spec.featuresFrom !== undefined) {
    fail(`no column${absent.length > 1 ? 's' : ''} ${absent.map((n) => `'${n}'`).join(', ')}, of ${spec.featuresFrom} (${spec.features!.map((n) => `'${n}'`).join(', ')}; columns: ${names.map((n) => `'${n}'`).join(', ')})${delimiterHint()}`);
  }
  const categorical = spec.categorical ?? [];
  if (!Array.isArray(categorical) || !categorical.every((c) => typeof c === 'string')) fail('categorical must be a list of column names');
  if (categorical.length > 0 && !hasHeader) fail(`categorical columns are named by the header, and the CSV has none (${hint('header', 'false')} is given): give the file a header row`);
  const categoricalIndices = categorical.map((ref) => resolve(ref, 'categorical'));
  if (new Set(categoricalIndices).size !== categoricalIndices.length) fail('a categorical column is listed more than once');
  const featureIndices =
    spec.features === undefined ? names.map((_, i) => i).filter((i) => i !== labelIndex && !categoricalIndices.includes(i)) : spec.features.map((ref) => resolve(ref, 'feature'));
  if (labelIndex !== undefined && featureIndices.includes(labelIndex)) fail(`${describe(labelIndex)} is both the label and a feature`);
  if (new Set(featureIndices).size !== featureIndices.length) fail('a feature column is listed more than once');
  for (const c of categoricalIndices) {
    if (c === labelIndex) fail(`${describe(c)} is both the label and a categorical column`);
    if (featureIndices.includes(c)) fail(`${describe(c)} is both a numeric feature and a categorical column: list it in one of them`);
  }

  rows.forEach((r, i) => {
    if (r.record.length !== width) {
      fail(`row ${i + 1} (line ${r.info.lines}) has ${r.record.length} fields but ${hasHeader ? 'the header has' : 'the first row has'} ${width}`);
    }
  });

  const missing = spec.missing;
  if (missing !== undefined && (typeof missing !== 'number' || Math.abs(missing) > F32_MAX)) fail(`missing must be a number (an f32) or NaN, got ${String(missing)}`);
  const nf = featureIndices.length;
  const features = new Float32Array(rows.length * nf);
  rows.forEach((r, i) => {
    for (let k = 0; k < nf; k++) {
      const c = featureIndices[k];
      const field = r.record[c];
      const where = () => `row ${i + 1} (line ${r.info.lines}), ${describe(c)}`;
      if (MISSING_MARKERS.has(field)) {
        if (missing === undefined) fail(`${where()}: ${field === '' ? 'the cell is empty' : `'${field}' is not a number`}: a missing value? give missing: 0.0 to read missing cells as 0 (or missing: "nan" to keep them NaN and fill them in the model with isnan)`);
        features[i * nf + k] = missing as number;
      } else features[i * nf + k] = parseNumber(field, where, fail);
    }
  });
  // the header's names of the columns taken, so a later file can be read by name
  const featureNames = hasHeader ? { names: featureIndices.map((c) => names[c]) } : {};
  const columns: Record<string, ColumnInput> = { [spec.featuresColumn ?? 'features']: { data: features, shape: [nf], ...featureNames } };
  for (const c of categoricalIndices) {
    const name = names[c];
    if (Object.hasOwn(columns, name) || name === (spec.labelColumn ?? 'label')) fail(`the categorical ${describe(c)} would be a dataset column of the name the ${name === (spec.labelColumn ?? 'label') ? 'label' : 'features'} take: rename it in the header`);
    const values = rows.map((r) => r.record[c]);
    // every value the file holds, sorted as class names are; an empty cell is missing (index 0)
    const vocabulary = [...new Set(values.filter((v) => v !== ''))].sort();
    const index = new Map(vocabulary.map((v, k) => [v, k + 1]));
    columns[name] = { data: Int32Array.from(values, (v) => index.get(v) ?? 0), shape: [], vocabulary };
  }

  if (labelIndex !== undefined) {
    const labelName = spec.labelColumn ?? 'label';
    const labelNames = hasHeader ? { names: [names[labelIndex]] } : {};
    if (labelName === (spec.featuresColumn ?? 'features')) fail(`the features and label columns are both named '${labelName}'`);
    const at = (i: number): string => `row ${i + 1} (line ${rows[i].info.lines}), ${describe(labelIndex)}`;
    const values = rows.map((r) => r.record[labelIndex].trim());
    // an empty label is a hole in the data, never a class of its own
    values.forEach((v, i) => {
      if (v === '') fail(`${at(i)}: the label is empty`);
    });
    // auto: whole numbers (as a spreadsheet or pandas writes them too: 2.0) are class indices; only
    // labels that are not numbers at all are class names
    const whole = (v: string) => INTEGER.test(v) || (NUMBER.test(v) && Number.isInteger(Number(v)));
    const kind = labelType === 'auto' ? (values.every(whole) ? 'int' : values.every((v) => !NUMBER.test(v)) ? 'class' : 'mixed') : labelType;
    if (kind === 'mixed') {
      const odd = values.findIndex((v) => NUMBER.test(v) && !Number.isInteger(Number(v)));
      const name = values.findIndex((v) => !NUMBER.test(v));
      fail(
        odd >= 0 && values.every((v) => NUMBER.test(v))
          ? `${at(odd)}: label '${values[odd]}' is not a whole number (give label_type: "float" for a regression target)`
          : `the labels mix numbers and names (${at(name)} is '${values[name]}'); give label_type: "class" with classes: [...], or fix the data`,
      );
    }
    if (kind === 'float') {
      const data = Float32Array.from(values, (v, i) => parseNumber(v, () => at(i), fail));
      columns[labelName] = { data, shape: [], ...labelNames };
    } else if (kind === 'int') {
      const data = Int32Array.from(values, (v, i) => {
        const x = Number(v);
        if (!NUMBER.test(v) || !Number.isInteger(x) || x < -0x8000_0000 || x > 0x7fff_ffff) fail(`${at(i)}: label '${v}' is not a 32-bit integer`);
        return x;
      });
      columns[labelName] = { data, shape: [], ...labelNames };
    } else {
      const classes = spec.classes === undefined ? [...new Set(values)].sort() : [...spec.classes];
      if (new Set(classes).size !== classes.length) fail('the class list names a class more than once');
      const index = new Map(classes.map((c, k) => [c, k]));
      const data = Int32Array.from(values, (v, i) => {
        const k = index.get(v);
        if (k === undefined) fail(`${at(i)}: label '${v}' is not one of the classes (${classes.map((c) => `'${c}'`).join(', ')})`);
        return k as number;
      });
      columns[labelName] = { data, shape: [], classes, ...labelNames };
    }
  }
  return new Dataset(columns, rows.length);
}

/** The cells `missing:` fills (trimmed, as read): empty, and the markers pandas and spreadsheets write for a missing value. */
export const MISSING_MARKERS: ReadonlySet<string> = new Set(['', 'NaN', 'nan', 'NAN', '-NaN', '-nan', 'NA', 'na', 'N/A', 'n/a', '#N/A', '<NA>', 'NULL', 'null', 'None', 'none', '?']);

const INTEGER = /^[+-]?\d+$/;
const F32_MAX = 3.4028234663852886e38;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(field: string, where: () => string, fail: (message: string) => never): number {
  if (!NUMBER.test(field)) return fail(`${where()}: '${field}' is not a number`);
  const x = Number(field);
  // features and float labels are stored as f32: a larger value would be Infinity
  if (!Number.isFinite(x) || Math.abs(x) > F32_MAX) return fail(`${where()}: '${field}' is out of range for f32 (at most ${F32_MAX.toPrecision(8)} in size)`);
  return x;
}
