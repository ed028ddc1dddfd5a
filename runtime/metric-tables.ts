// Metrics with a shape (a confusion matrix, f32[C, C]): their values as nested arrays, and a printout of one as a table.

/** A table metric's value: nested arrays, one level per axis (a confusion matrix's rows are the true classes). */
export type MetricTable = number[] | MetricTable[];

/** A metric's value over a data set: a number, or a table (`ModelProgram.tables`). */
export type MetricValue = number | MetricTable;

/** Row-major data of the given shape as nested arrays. */
export function nestedArray(data: ArrayLike<number>, shape: readonly number[]): MetricTable {
  const at = (offset: number, axis: number): MetricTable => {
    const n = shape[axis];
    if (axis === shape.length - 1) return Array.from({ length: n }, (_, i) => Number(data[offset + i]));
    const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, i) => at(offset + i * stride, axis + 1)) as MetricTable;
  };
  return at(0, 0);
}

/** The number as a table shows it: counts as whole numbers, anything else with 4 decimals. */
const cell = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(4));

/**
 * A table metric as text: its name, then a vector as one row under its indices, or a matrix as a grid
 * whose rows and columns are labelled by index (`labels` names them: a data set's classes); a table of
 * more axes as JSON.
 */
export function formatMetricTable(name: string, table: MetricTable, labels?: readonly string[]): string {
  const rows: number[][] | undefined = table.every((r) => typeof r === 'number') ? [table as number[]] : table.every((r) => Array.isArray(r) && r.every((v) => typeof v === 'number')) ? (table as number[][]) : undefined;
  if (!rows) return `${name}\n${JSON.stringify(table)}`;
  const vector = table.every((r) => typeof r === 'number');
  const columns = rows[0]?.length ?? 0;
  const label = (i: number) => labels?.[i] ?? String(i);
  // a matrix's first column names its rows; a vector has one row, unnamed
  const header = [...(vector ? [] : ['']), ...Array.from({ length: columns }, (_, j) => label(j))];
  const body = rows.map((r, i) => [...(vector ? [] : [label(i)]), ...r.map(cell)]);
  const widths = header.map((_, j) => Math.max(...[header, ...body].map((line) => line[j].length)));
  const line = (cells: readonly string[]) => cells.map((c, j) => (j === 0 && !vector ? c.padEnd(widths[0]) : c.padStart(widths[j]))).join('  ').trimEnd();
  return [name, ...[header, ...body].map((cells) => `  ${line(cells)}`)].join('\n');
}
