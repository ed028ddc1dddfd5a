// The runtime's typed errors: each failure a caller can act on has its own class and a message that says what to do.

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

export class DlcRuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DlcRuntimeError';
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

/** A batch or input does not match the model's declared inputs. */
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
