// Timing and data helpers shared by both sides of every benchmark.
import { seededRandom } from '../compiler/interpret/feeds.ts';

export interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly samplesMs: readonly number[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Time several runs' steps in alternating blocks: `warmup` untimed steps of each, then `ROUNDS` rounds in
 * which each run in turn takes one untimed step (it absorbs what the other side left behind: garbage
 * to collect, buffers to free) and then its share of the `reps` timed steps. Each sample is one step
 * from the host's first call to the GPU's completion: a run must return only once the device has
 * finished its work (it awaits `queue.onSubmittedWorkDone()` or a readback). A change in the device's
 * speed during the benchmark (clocks, a neighbour on a shared GPU: seen once on an H200) then falls on
 * every side alike, while no timed step follows the other library's directly. A run that throws is
 * dropped from later rounds and its result is the error.
 */
export async function timeInterleaved(warmup: number, reps: number, runs: readonly (() => Promise<void>)[]): Promise<(Timing | Error)[]> {
  const ROUNDS = Math.min(5, reps);
  const samples: number[][] = runs.map(() => []);
  const failed: (Error | undefined)[] = runs.map(() => undefined);
  const attempt = async (i: number, timed: boolean) => {
    if (failed[i]) return;
    try {
      const t0 = performance.now();
      await runs[i]();
      if (timed) samples[i].push(performance.now() - t0);
    } catch (e) {
      failed[i] = e instanceof Error ? e : new Error(String(e));
    }
  };
  for (let i = 0; i < runs.length; i++) for (let w = 0; w < warmup; w++) await attempt(i, false);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < runs.length; i++) {
      await attempt(i, false);
      const share = Math.floor(reps / ROUNDS) + (r < reps % ROUNDS ? 1 : 0);
      for (let k = 0; k < share; k++) await attempt(i, true);
    }
  }
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return samples.map((xs, i) => failed[i] ?? { medianMs: round(median(xs)), minMs: round(Math.min(...xs)), maxMs: round(Math.max(...xs)), samplesMs: xs.map(round) });
}

/** A small seeded generator (the interpreter's mulberry32): both libraries get the very same data. */
export const rng = seededRandom;

export function uniformData(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r();
  return out;
}

export function intData(n: number, below: number, seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * below);
  return out;
}
