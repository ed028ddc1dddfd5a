// The training progress the page exposes as `window.dlcTraining` (read by test/browser.test.ts).

export interface TrainingProgress {
  status: string;
  /** The adapter the model runs on, in words (set once the model is created). */
  adapter: string;
  /** The training loss of every step so far. */
  losses: number[];
  step: number;
  stepsPerSecond: number;
  /** Training and validation loss and metrics after each epoch (`val_accuracy`, ...). */
  epochs: Record<string, number>[];
  /** Seconds spent loading the digits, creating the model (shader compilation) and training (validation included). */
  seconds: { load?: number; create?: number; train?: number };
  done: boolean;
  /** Why training failed (no WebGPU, no adapter, ...); also shown on the page. */
  error?: string;
}

declare global {
  interface Window {
    dlcTraining: TrainingProgress;
  }
}
