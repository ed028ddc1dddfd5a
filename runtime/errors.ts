// The runtime's typed errors: each failure a caller can act on has its own class and a message that says what to do.
import { brand, isBranded } from './brand.ts';

export type RuntimeErrorCode =
  | 'no-webgpu'
  | 'no-adapter'
  | 'device-lost'
  | 'out-of-memory'
  | 'validation'
  | 'shader'
  | 'input'
  | 'weights'
  | 'disposed'
  | 'busy'
  | 'expired';

/**
 * Every runtime error. `instanceof` works across two copies of the runtime (tsx loading a generated module
 * as CommonJS, a bundle mixing `dlc/runtime` and `dlc/runtime/js`): each class is branded by name.
 */
export class DlcRuntimeError extends Error {
  readonly code: RuntimeErrorCode;

  constructor(code: RuntimeErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'DlcRuntimeError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(this, value);
  }
}

/** No WebGPU at all (no `navigator.gpu`, and the `webgpu` package could not be loaded). */
export class NoWebGPUError extends DlcRuntimeError {
  constructor(message: string) {
    super('no-webgpu', message);
    this.name = 'NoWebGPUError';
  }
}

export class NoAdapterError extends DlcRuntimeError {
  constructor(message: string) {
    super('no-adapter', message);
    this.name = 'NoAdapterError';
  }
}

export class DeviceLostError extends DlcRuntimeError {
  constructor(message: string) {
    super('device-lost', message);
    this.name = 'DeviceLostError';
  }
}

export class OutOfMemoryError extends DlcRuntimeError {
  constructor(message: string) {
    super('out-of-memory', message);
    this.name = 'OutOfMemoryError';
  }
}

/** WebGPU rejected a call: a bug in dlc, reported with what was being done. */
export class GPUValidationError extends DlcRuntimeError {
  constructor(message: string) {
    super('validation', message);
    this.name = 'GPUValidationError';
  }
}

/** A generated shader failed to compile: an internal error naming the op and its .dl line. */
export class ShaderError extends DlcRuntimeError {
  constructor(message: string) {
    super('shader', message);
    this.name = 'ShaderError';
  }
}

/**
 * A call that does not fit the model: a batch or input that does not match its declared inputs, an
 * unknown size, step, output or parameter, a bad option, or a training call on a model without a train block.
 */
export class InputError extends DlcRuntimeError {
  constructor(message: string) {
    super('input', message);
    this.name = 'InputError';
  }
}

/** A weights or checkpoint file is unreadable or does not fit the model. */
export class WeightsError extends DlcRuntimeError {
  constructor(message: string) {
    super('weights', message);
    this.name = 'WeightsError';
  }
}

/** The model was disposed (`dispose()`), before the call or before its result was read. */
export class DisposedError extends DlcRuntimeError {
  constructor(message: string) {
    super('disposed', message);
    this.name = 'DisposedError';
  }
}

/** The model is already doing something that may not overlap (a second `fit()` while one runs). */
export class BusyError extends DlcRuntimeError {
  constructor(message: string) {
    super('busy', message);
    this.name = 'BusyError';
  }
}

/** A step's values (`values()`) read after more than 4096 later steps were left unread: they were dropped. */
export class ExpiredError extends DlcRuntimeError {
  constructor(message: string) {
    super('expired', message);
    this.name = 'ExpiredError';
  }
}

for (const [cls, name] of [
  [DlcRuntimeError, 'DlcRuntimeError'],
  [NoWebGPUError, 'NoWebGPUError'],
  [NoAdapterError, 'NoAdapterError'],
  [DeviceLostError, 'DeviceLostError'],
  [OutOfMemoryError, 'OutOfMemoryError'],
  [GPUValidationError, 'GPUValidationError'],
  [ShaderError, 'ShaderError'],
  [InputError, 'InputError'],
  [WeightsError, 'WeightsError'],
  [DisposedError, 'DisposedError'],
  [BusyError, 'BusyError'],
  [ExpiredError, 'ExpiredError'],
] as const) {
  brand(cls, name);
}
