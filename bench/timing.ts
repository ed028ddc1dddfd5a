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
 * `warmup` untimed runs, then `reps` timed ones. Each run is one step from the host's first call to the
 * GPU's completion: `run` must return only once the device has finished the work it submitted (it awaits
 * `queue.onSubmittedWorkDone()` or a readback), so every sample is submit-to-completion.
 */
export async function timeSteps(warmup: number, reps: number, run: () => Promise<void>): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await run();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
  }
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { medianMs: round(median(samples)), minMs: round(Math.min(...samples)), maxMs: round(Math.max(...samples)), samplesMs: samples.map(round) };
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
