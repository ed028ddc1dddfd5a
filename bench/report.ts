// The results file's shape, and its Markdown table in docs/benchmarks.md (one section per machine, between markers).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Timing } from './timing.ts';

export interface SideResult extends Partial<Timing> {
  /** Set when this side failed; the other side's numbers are still reported. */
  readonly error?: string;
  /** For matmuls: 2 n^3 / median. */
  readonly gflops?: number;
  /** dlc: kernels in the step graph(s). TF.js: kernels tf.profile saw in one step (some run on the CPU or are no-ops). */
  readonly dispatchesPerStep?: number;
  readonly peakBytes?: number;
  readonly peakBytesMethod?: string;
  readonly unplannedBytes?: number;
  /** TF.js: bytes its buffer manager holds on the GPU after the step (pooled buffers included). */
  readonly gpuBytesAllocated?: number;
  /** dlc with `--profile`: each kernel timed alone (Model.profile), the time by op and the slowest kernels. */
  readonly profile?: ProfileSummary;
}

export interface ProfileSummary {
  /** The sum of the kernels' times (each alone, less an empty submit's round trip). */
  readonly kernelMs: number;
  readonly roundTripMs: number;
  readonly byOp: readonly { readonly op: string; readonly kernels: number; readonly ms: number; readonly share: number }[];
  readonly slowest: readonly { readonly graph: string; readonly index: number; readonly op: string; readonly source?: string; readonly ms: number }[];
}

export interface BenchResult {
  readonly name: string;
  readonly group: 'matmul' | 'mlp' | 'lenet' | 'transformer' | 'lstm';
  readonly config: Readonly<Record<string, number | string>>;
  readonly dlc: SideResult;
  readonly tfjs: SideResult;
  /** TF.js median / dlc median: above 1, dlc is faster. */
  readonly speedup?: number;
  readonly notes?: string;
}

export interface BenchFile {
  readonly format: 'dlc-bench';
  readonly version: 1;
  readonly date: string;
  readonly mode: string;
  readonly warmup: number;
  readonly reps: number;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly versions: Readonly<Record<string, string>>;
  readonly timing: string;
  /** dlc's kernel variants when forced (`--kernels gpu|cpu`); absent: the adapter's choice. */
  readonly kernels?: 'gpu' | 'cpu';
  readonly results: readonly BenchResult[];
}

const mib = (b: number | undefined) => (b === undefined ? '–' : b < 2 ** 20 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);
const ms = (x: number | undefined) => (x === undefined ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1));

export function markdownTable(file: BenchFile): string {
  const lines = [
    `Machine: ${file.machine.cpu} (${file.machine.cores} cores), ${file.machine.os}, Node ${file.machine.node}; adapter: ${file.machine.adapter}. Mode \`${file.mode}\`, ${file.warmup} warmup + ${file.reps} timed steps, median; ${file.date}; TF.js ${file.versions.tfjs}.`,
    '',
    '| benchmark | dlc ms | TF.js ms | speedup (TF.js / dlc) | dlc GFLOP/s | TF.js GFLOP/s | dlc dispatches / step | TF.js kernels / step | dlc peak memory | TF.js peak memory |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of file.results) {
    const cell = (s: SideResult, f: (s: SideResult) => string) => (s.error ? 'failed' : f(s));
    lines.push(
      `| ${r.name} | ${cell(r.dlc, (s) => ms(s.medianMs))} | ${cell(r.tfjs, (s) => ms(s.medianMs))} | ${r.speedup === undefined ? '–' : `${r.speedup.toFixed(2)}x`} | ${r.dlc.gflops?.toFixed(1) ?? '–'} | ${r.tfjs.gflops?.toFixed(1) ?? '–'} | ${r.dlc.dispatchesPerStep ?? '–'} | ${r.tfjs.dispatchesPerStep ?? '–'} | ${mib(r.dlc.peakBytes)} | ${mib(r.tfjs.peakBytes)} |`,
    );
  }
  const failures = file.results.flatMap((r) => [r.dlc.error ? `- ${r.name}, dlc: ${r.dlc.error}` : '', r.tfjs.error ? `- ${r.name}, TF.js: ${r.tfjs.error}` : ''].filter((s) => s));
  if (failures.length > 0) lines.push('', 'Failures:', '', ...failures);
  return lines.join('\n');
}

export const DOC_END = '<!-- bench:end -->';

/** Replace (or add, before DOC_END) this machine's section of the doc. */
export function updateDoc(path: string, slug: string, title: string, file: BenchFile, resultsPath: string): void {
  if (!existsSync(path)) throw new Error(`${path} does not exist`);
  const doc = readFileSync(path, 'utf8');
  const start = `<!-- bench:${slug}:start -->`;
  const end = `<!-- bench:${slug}:end -->`;
  const body = `${start}\n### ${title}\n\n${markdownTable(file)}\n\nRaw samples: \`${resultsPath}\`.\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  let out: string;
  if (i >= 0 && j > i) out = doc.slice(0, i) + body + doc.slice(j + end.length);
  else {
    const k = doc.indexOf(DOC_END);
    if (k < 0) throw new Error(`${path} has no ${DOC_END} marker`);
    out = `${doc.slice(0, k)}${body}\n\n${doc.slice(k)}`;
  }
  writeFileSync(path, out);
}
