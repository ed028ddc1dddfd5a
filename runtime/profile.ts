// Kernel-by-kernel timing of a model's graphs (Model.profile): where a step's time goes, by kernel, by op and by .dl line.
import type { SourceSpan } from './program.ts';

/** One kernel of a profiled graph: its place in the graph, what it computes, where it came from, its median time. */
export interface KernelTime {
  /** The graph: 'predict', 'evaluate', or a training step's name. */
  readonly graph: string;
  /** Its index among the graph's kernels (dispatch order). */
  readonly index: number;
  readonly op: string;
  /** The .dl line the kernel's ops came from (the first op's), when known. */
  readonly source?: SourceSpan;
  /** Median over the repetitions, less the round trip of an empty submit; 0 for a kernel with no work at these sizes. */
  readonly ms: number;
  /** The time is below the profile's resolution (`Profile.resolutionMs`): noise, not a measurement. */
  readonly belowResolution?: true;
}

/** Kernels that share an op, or a .dl line: how many, and their summed time. */
export interface TimeShare {
  readonly key: string;
  readonly kernels: number;
  readonly ms: number;
  /** Of the profile's total kernel time, 0 to 1. */
  readonly share: number;
}

export interface Profile {
  readonly adapter: string;
  /** The sizes the graphs ran at (from the batch). */
  readonly sizes: Readonly<Record<string, number>>;
  readonly reps: number;
  /** Every kernel of every profiled graph, in dispatch order. */
  readonly kernels: readonly KernelTime[];
  /** The sum of the kernels' times: the step's GPU work without launch and submit overheads. */
  readonly totalMs: number;
  /** The median time of submitting an empty command buffer and awaiting it, subtracted from each kernel. */
  readonly roundTripMs: number;
  /**
   * How much that round trip varies (its slowest less its fastest): a kernel time below it cannot be
   * told from noise. On a busy CPU adapter it is often larger than most kernels.
   */
  readonly resolutionMs: number;
  /** How many kernels took less than the resolution (their times, and the shares they make, are noise). */
  readonly belowResolution: number;
  /** Kernel time by op, largest first. */
  readonly byOp: readonly TimeShare[];
  /** Kernel time by .dl line (`file:line`), largest first. */
  readonly bySource: readonly TimeShare[];
}

/** A profile from the kernels' times: totals and the shares by op and by source line. */
export function summarizeProfile(given: Omit<Profile, 'totalMs' | 'byOp' | 'bySource' | 'belowResolution'>): Profile {
  const kernels = given.kernels.map((k): KernelTime => {
    const { belowResolution: _, ...rest } = k;
    return k.ms < given.resolutionMs ? { ...rest, belowResolution: true } : rest;
  });
  const base = { ...given, kernels };
  const totalMs = base.kernels.reduce((a, k) => a + k.ms, 0);
  const shares = (keyOf: (k: KernelTime) => string): TimeShare[] => {
    const acc = new Map<string, { kernels: number; ms: number }>();
    for (const k of base.kernels) {
      const key = keyOf(k);
      const e = acc.get(key) ?? { kernels: 0, ms: 0 };
      acc.set(key, { kernels: e.kernels + 1, ms: e.ms + k.ms });
    }
    return [...acc]
      .map(([key, e]) => ({ key, ...e, share: totalMs > 0 ? e.ms / totalMs : 0 }))
      .sort((a, b) => b.ms - a.ms || a.key.localeCompare(b.key));
  };
  return {
    ...base,
    totalMs,
    belowResolution: kernels.filter((k) => k.belowResolution).length,
    byOp: shares((k) => k.op),
    bySource: shares((k) => (k.source ? `${k.source.file}:${k.source.line}` : '(generated)')),
  };
}

/** The `top` slowest kernels of a profile, slowest first. */
export function slowestKernels(p: Profile, top: number): KernelTime[] {
  return [...p.kernels].sort((a, b) => b.ms - a.ms).slice(0, top);
}

/** Where a kernel came from, as `file:line:col`, with the user's call for standard-library code. */
export function sourceText(span: SourceSpan): string {
  const at = `${span.file}:${span.line}:${span.col}`;
  return span.caller ? `${at} (called at ${span.caller.file}:${span.caller.line}:${span.caller.col})` : at;
}

/** A plain-text table of a profile: the slowest kernels, then the time by op. */
export function formatProfile(p: Profile, top = 10): string {
  const ms = (x: number) => x.toFixed(3);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const where = (k: KernelTime) => (k.source ? sourceText(k.source) : '(generated)');
  const slowest = slowestKernels(p, top);
  const noise = p.belowResolution === 0 ? [] : [
    p.belowResolution === p.kernels.length
      ? `warning: every kernel took less than the resolution of ${ms(p.resolutionMs)} ms (how much the empty submit varies), so these times and shares are noise, not measurements; profile a larger batch, or more reps on a quieter machine`
      : `warning: ${p.belowResolution} of ${p.kernels.length} kernels took less than the resolution of ${ms(p.resolutionMs)} ms (how much the empty submit varies): their times (marked ~) are noise, not measurements; profile a larger batch, or more reps on a quieter machine`,
  ];
  const lines = [
    `${p.kernels.length} kernels, ${ms(p.totalMs)} ms of kernel time (median of ${p.reps}; empty submit ${ms(p.roundTripMs)} ms, varying by ${ms(p.resolutionMs)} ms) on ${p.adapter}`,
    ...noise,
    '',
    `slowest ${slowest.length} kernels:`,
    ...slowest.map((k) => `  ${`${k.belowResolution ? '~' : ''}${ms(k.ms)}`.padStart(9)} ms  ${pct(p.totalMs > 0 ? k.ms / p.totalMs : 0).padStart(6)}  ${k.graph}#${k.index} ${k.op}  ${where(k)}`),
    '',
    'by op:',
    ...p.byOp.map((s) => `  ${ms(s.ms).padStart(9)} ms  ${pct(s.share).padStart(6)}  ${String(s.kernels).padStart(4)} x ${s.key}`),
  ];
  return lines.join('\n');
}
