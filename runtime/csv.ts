// CSV text to a Dataset (features f32 [n], optional label, categorical columns as i32 indices) via csv-parse's browser-safe sync parser; errors name row and column.
import { InputError } from './errors.ts';
import { parse } from 'csv-parse/browser/esm/sync';
import { type ColumnInput, Dataset } from './data.ts';
import { CSV_LABEL_TYPES, type CsvLabelType } from './catalog.ts';

/** A CSV column by header name, or by 0-based position. */
export type CsvColumnRef = string | number;

export { CSV_LABEL_TYPES, type CsvLabelType } from './catalog.ts';

export interface CsvSpec {
  /**
   * The label column; without one the dataset has only the features column. A list of columns gives a
   * label of shape [k] per example (f32, or i32 with labelType 'int'): several targets, such as the
   * horizons of a direct multi-step forecast.
   */
  readonly label?: CsvColumnRef | readonly CsvColumnRef[];
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
   * it such a cell is an error. It fills float labels too (labelType 'float', or a list of label
   * columns read as f32), so NaN marks a target for a masked loss; a class or integer label is never
   * filled (a missing class is no class), so an empty one stays an error.
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

  // one label column, or a list of them (several targets per example)
  const multiLabel = Array.isArray(spec.label);
  const labelRefs: readonly CsvColumnRef[] = spec.label === undefined ? [] : Array.isArray(spec.label) ? spec.label : [spec.label as CsvColumnRef];
  if (multiLabel && labelRefs.length === 0) fail('label: [] names no column: give one column name, or a list of the target columns');
  // a label the file does not have (none of its columns), where it may lack one
  const inFile = (ref: CsvColumnRef) => (typeof ref === 'number' ? ref < width : hasHeader && names.includes(ref));
  const labelMissing = spec.labelOptional === true && labelRefs.length > 0 && !labelRefs.some(inFile);
  const labelIndices = labelMissing ? [] : labelRefs.map((ref) => resolve(ref, 'label'));
  if (new Set(labelIndices).size !== labelIndices.length) fail('a label column is listed more than once');
  const isLabel = (c: number) => labelIndices.includes(c);
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
    spec.features === undefined ? names.map((_, i) => i).filter((i) => !isLabel(i) && !categoricalIndices.includes(i)) : spec.features.map((ref) => resolve(ref, 'feature'));
  for (const c of labelIndices) if (featureIndices.includes(c)) fail(`${describe(c)} is both the label and a feature`);
  if (new Set(featureIndices).size !== featureIndices.length) fail('a feature column is listed more than once');
  for (const c of categoricalIndices) {
    if (isLabel(c)) fail(`${describe(c)} is both the label and a categorical column`);
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

  const labelName = spec.labelColumn ?? 'label';
  if (labelIndices.length > 0 && labelName === (spec.featuresColumn ?? 'features')) fail(`the features and label columns are both named '${labelName}'`);
  /** A float label cell: a number, or a missing one (empty, NaN, NA, ...) read as `missing` where it is given. */
  const floatLabel = (v: string, at: () => string): number => {
    if (!MISSING_MARKERS.has(v)) return parseNumber(v, at, fail);
    if (missing === undefined) fail(`${at()}: ${v === '' ? 'the label is empty' : `label '${v}' is not a number`}: a missing target? give missing: "nan" to read it as NaN (and leave it out of the loss with isnan), or fix the data`);
    return missing as number;
  };
  if (multiLabel && labelIndices.length > 0) {
    // several targets per example: numbers, f32 (or i32 with label_type "int"), shape [k]
    if (labelType === 'class') fail(`label: [...] lists ${labelIndices.length} columns, read as numbers; a class label (label_type: "class") is one column`);
    const k = labelIndices.length;
    const int = labelType === 'int';
    const data = int ? new Int32Array(rows.length * k) : new Float32Array(rows.length * k);
    rows.forEach((r, i) => {
      labelIndices.forEach((c, j) => {
        const v = r.record[c].trim();
        const at = () => `row ${i + 1} (line ${r.info.lines}), ${describe(c)}`;
        if (!int) data[i * k + j] = floatLabel(v, at);
        else if (!INTEGER.test(v) && !(NUMBER.test(v) && Number.isInteger(Number(v)))) fail(`${at()}: label '${v}' is not a whole number (label_type: "int")`);
        else data[i * k + j] = Number(v);
      });
    });
    columns[labelName] = { data, shape: [k], ...(hasHeader ? { names: labelIndices.map((c) => names[c]) } : {}) };
  } else if (labelIndices.length > 0) {
    const labelIndex = labelIndices[0];
    const labelNames = hasHeader ? { names: [names[labelIndex]] } : {};
    const at = (i: number): string => `row ${i + 1} (line ${rows[i].info.lines}), ${describe(labelIndex)}`;
    const values = rows.map((r) => r.record[labelIndex].trim());
    // an empty label is a hole in the data, never a class of its own; a float one may be filled by `missing`
    const fills = labelType === 'float' && missing !== undefined;
    values.forEach((v, i) => {
      if (v === '' && !fills) fail(`${at(i)}: the label is empty${labelType === 'float' || labelType === 'auto' ? ': a missing target? with label_type: "float", missing: "nan" reads it as NaN (leave it out of the loss with isnan)' : ''}`);
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
      const data = Float32Array.from(values, (v, i) => floatLabel(v, () => at(i)));
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
