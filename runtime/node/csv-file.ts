// Node loader for CSV files: reads the file (UTF-8) and parses it with runtime/csv.ts.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.ts';
import { type CsvSpec, parseCsv } from '../csv.ts';
import type { Dataset } from '../data.ts';

function readError(path: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code;
  return new InputError(code === 'ENOENT' ? `CSV file not found: ${path}` : `cannot read CSV file ${path}: ${(e as Error).message}`);
}

/** The dataset in the CSV file at `path`; error messages start with the path. */
export async function loadCsvFile(path: string, spec: CsvSpec = {}): Promise<Dataset> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw readError(path, e);
  }
  return parseCsv(text, { ...spec, source: spec.source ?? path });
}

/** The synchronous `loadCsvFile`. */
export function loadCsvFileSync(path: string, spec: CsvSpec = {}): Dataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw readError(path, e);
  }
  return parseCsv(text, { ...spec, source: spec.source ?? path });
}
