// Where compiling spends its time: each stage's milliseconds, recorded only while a caller asks (bench/compile-time.ts).

/** Milliseconds per stage, in the order the stages first ran. A stage timed inside another counts only in the inner one. */
export type StageTimes = Map<string, number>;

interface Recording {
  readonly times: StageTimes;
  readonly clock: () => number;
  /** The innermost stage running, and when it last started or resumed counting. */
  stage: string | undefined;
  since: number;
}

let recording: Recording | undefined;

function charge(r: Recording, now: number): void {
  if (r.stage !== undefined) r.times.set(r.stage, (r.times.get(r.stage) ?? 0) + now - r.since);
  r.since = now;
}

/** `fn`'s result; while `recordStageTimes` records, its time (less the stages it times inside) is added to `stage`. */
export function timeStage<T>(stage: string, fn: () => T): T {
  const r = recording;
  if (!r) return fn();
  charge(r, r.clock());
  const outer = r.stage;
  r.stage = stage;
  try {
    return fn();
  } finally {
    charge(r, r.clock());
    r.stage = outer;
  }
}

/**
 * Runs `fn` recording the stages it times; time outside every stage is not counted. `clock` is in
 * milliseconds: wall time by default, or the process's CPU time on a loaded machine.
 */
export function recordStageTimes<T>(fn: () => T, clock: () => number = () => performance.now()): { result: T; times: StageTimes } {
  const outer = recording;
  const r: Recording = { times: new Map(), clock, stage: undefined, since: clock() };
  recording = r;
  try {
    return { result: fn(), times: r.times };
  } finally {
    recording = outer;
  }
}
