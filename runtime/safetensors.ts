// The safetensors checkpoint format (encode and a strict, allocation-bounded decode) for f32/i32/u32/bool tensors; other files' F16/BF16/F64/I64/U64 tensors converted on request.
//
// Layout (https://github.com/huggingface/safetensors): an unsigned 64-bit little-endian header length N,
// then N bytes of UTF-8 JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { key: value } }`
// (possibly padded with trailing spaces), then the data section. Offsets are relative to the data
// section; tensors are stored row-major, little-endian, contiguously, covering the section with no gaps.
// Bool tensors are stored as the standard `BOOL` dtype, one byte (0 or 1) per element.
import { InputError, WeightsError } from './errors.ts';
import { brand } from './brand.ts';

/** The tensor element types a checkpoint holds (the runtime's DType). */
export type TensorDType = 'f32' | 'i32' | 'u32' | 'bool';

/** Tensor data: f32 Float32Array, i32 Int32Array, u32 Uint32Array; bool Uint8Array (or Uint32Array when encoding). */
export type TensorArray = Float32Array | Int32Array | Uint32Array | Uint8Array;

export interface StoredTensor {
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  /** Row-major elements; its length must be the product of `shape`. */
  readonly data: TensorArray;
}

export interface DecodedSafetensors {
  /** In data-section order. Each tensor's data is a fresh copy (never a view of the input bytes). */
  readonly tensors: Map<string, StoredTensor>;
  readonly metadata: Record<string, string>;
  /** With `convert`: the tensors read from another dtype (PyTorch's F16 weights, I64 counters), by name: the file's dtype. */
  readonly converted?: ReadonlyMap<string, string>;
  /** With `convert`: the tensors no runtime dtype holds (F8, complex, 64-bit integers out of 32-bit range), left out of `tensors`. */
  readonly skipped?: readonly SkippedTensor[];
}

/** A tensor `decodeSafetensors({ convert: true })` could not give as a runtime dtype, and why. */
export interface SkippedTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly why: string;
}

export interface DecodeOptions {
  /**
   * Read the format's other common dtypes as the runtime's: F16, BF16 and F64 as f32, I64 as i32 and
   * U64 as u32 when every value fits; report the rest in `skipped` instead of refusing the file. The
   * copies then take at most twice the data section (F16 to f32). Default false: only F32, I32, U32
   * and BOOL are read, anything else is an error.
   */
  readonly convert?: boolean;
}

/** Headers longer than this are rejected as absurd (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

const FILE_DTYPE: Readonly<Record<TensorDType, string>> = { f32: 'F32', i32: 'I32', u32: 'U32', bool: 'BOOL' };
const FROM_FILE_DTYPE: ReadonlyMap<string, TensorDType> = new Map([
  ['F32', 'f32'],
  ['I32', 'i32'],
  ['U32', 'u32'],
  ['BOOL', 'bool'],
]);
/** Dtypes of the format this runtime does not hold, with their bytes per element (undefined: packed below a byte), for a clearer message than "unknown". */
const OTHER_FILE_DTYPES: ReadonlyMap<string, number | undefined> = new Map([
  ['F64', 8], ['F16', 2], ['BF16', 2], ['I64', 8], ['U64', 8], ['I16', 2], ['U16', 2], ['I8', 1], ['U8', 1],
  ['F8_E4M3', 1], ['F8_E5M2', 1], ['F8_E8M0', 1], ['F6_E2M3', undefined], ['F6_E3M2', undefined], ['F4', undefined], ['C64', 8],
]);
/** What `convert` reads the format's other dtypes as. */
const CONVERTED_TO: Readonly<Record<string, TensorDType>> = { F16: 'f32', BF16: 'f32', F64: 'f32', I64: 'i32', U64: 'u32' };
const ITEM_SIZE: Readonly<Record<TensorDType, number>> = { f32: 4, i32: 4, u32: 4, bool: 1 };

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Serializes tensors (a Map, or a plain object of name to tensor) and optional string metadata.
 * Tensors are laid out by alignment (4-byte types first) then name, and the header is padded with
 * spaces so the data section starts 8-byte aligned, as the reference writer does.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, StoredTensor> | Readonly<Record<string, StoredTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Readonly<Record<string, StoredTensor>>);
  const checked = entries.map(([name, t]) => checkTensor(name, t));
  checked.sort((a, b) => ITEM_SIZE[b.tensor.dtype] - ITEM_SIZE[a.tensor.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const parts: string[] = [];
  if (metadata !== undefined) {
    const fields = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new InputError(`safetensors metadata '${k}' must be a string, got ${typeof v}`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }
  let offset = 0;
  for (const { name, tensor, byteLength } of checked) {
    parts.push(`${JSON.stringify(name)}:{"dtype":"${FILE_DTYPE[tensor.dtype]}","shape":[${tensor.shape.join(',')}],"data_offsets":[${offset},${offset + byteLength}]}`);
    offset += byteLength;
  }
  const headerText = `{${parts.join(',')}}`;
  const headerUtf8 = new TextEncoder().encode(headerText);
  const headerLength = Math.ceil(headerUtf8.length / 8) * 8;
  if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) throw new InputError(`the safetensors header would be ${headerLength} bytes, over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`);

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true);
  view.setUint32(4, 0, true);
  out.set(headerUtf8, 8);
  out.fill(0x20, 8 + headerUtf8.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { tensor, byteLength } of checked) {
    writeTensorBytes(tensor, out, at, view);
    at += byteLength;
  }
  return out;
}

function checkTensor(name: string, t: StoredTensor): { name: string; tensor: StoredTensor; byteLength: number } {
  if (typeof name !== 'string') throw new InputError('safetensors tensor names must be strings');
  if (name === METADATA_KEY) throw new InputError(`'${METADATA_KEY}' is reserved and cannot name a tensor`);
  if (t === null || typeof t !== 'object') throw new InputError(`tensor '${name}' must be an object { dtype, shape, data }`);
  if (!Object.hasOwn(FILE_DTYPE, t.dtype)) throw new InputError(`tensor '${name}' has unknown dtype '${String(t.dtype)}' (known: ${Object.keys(FILE_DTYPE).join(', ')})`);
  if (!Array.isArray(t.shape)) throw new InputError(`tensor '${name}' needs a shape array`);
  let numel = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new InputError(`tensor '${name}' has an invalid shape [${t.shape.join(', ')}]: dimensions must be non-negative integers`);
    numel *= d;
  }
  const expected = { f32: [Float32Array], i32: [Int32Array], u32: [Uint32Array], bool: [Uint8Array, Uint32Array] }[t.dtype];
  if (!expected.some((ctor) => t.data instanceof ctor)) {
    throw new InputError(`tensor '${name}' (${t.dtype}) must hold a ${expected.map((c) => c.name).join(' or ')}, got ${describeValue(t.data)}`);
  }
  if (t.data.length !== numel) throw new InputError(`tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} elements of data`);
  return { name, tensor: t, byteLength: numel * ITEM_SIZE[t.dtype] };
}

function describeValue(v: unknown): string {
  if (v === null || typeof v !== 'object') return String(v);
  return (v as object).constructor?.name ?? 'an object';
}

function writeTensorBytes(t: StoredTensor, out: Uint8Array, at: number, view: DataView): void {
  const data = t.data;
  if (t.dtype === 'bool') {
    for (let i = 0; i < data.length; i++) out[at + i] = data[i] !== 0 ? 1 : 0;
  } else if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
  } else if (t.dtype === 'f32') {
    for (let i = 0; i < data.length; i++) view.setFloat32(at + 4 * i, data[i], true);
  } else {
    for (let i = 0; i < data.length; i++) view.setUint32(at + 4 * i, data[i] >>> 0, true);
  }
}

/** A decoding failure: the message says what is wrong with the file (a WeightsError, code `weights`). */
export class SafetensorsError extends WeightsError {
  constructor(message: string) {
    super(`invalid safetensors file: ${message}`);
    this.name = 'SafetensorsError';
  }
}

brand(SafetensorsError, 'SafetensorsError');

interface Entry {
  readonly name: string;
  /** The runtime dtype it is read as; undefined for a dtype the runtime does not hold. */
  readonly dtype: TensorDType | undefined;
  /** The file's dtype (F32, F16, ...). */
  readonly fileDtype: string;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

/** The header length in a file's first 8 bytes, refused when absurd (more than SAFETENSORS_MAX_HEADER_BYTES). */
export function safetensorsHeaderLength(bytes: Uint8Array): number {
  return headerLengthOf(bytes, (message: string): never => {
    throw new SafetensorsError(message);
  });
}

/**
 * A file's metadata (`__metadata__`) from its first 8 + header-length bytes, checked as
 * decodeSafetensors checks it: commands that only need what a checkpoint records need not read its
 * tensors.
 */
export function decodeSafetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  const fail = (message: string): never => {
    throw new SafetensorsError(message);
  };
  const { header } = readHeader(bytes, fail);
  return METADATA_KEY in header ? checkMetadata(header[METADATA_KEY], fail) : {};
}

/** Each tensor's shape as the header gives it, its data not read (for a file already known to be valid: diagnostics). */
export function decodeSafetensorsShapes(bytes: Uint8Array): Map<string, readonly number[]> {
  const { header } = readHeader(bytes, (message: string): never => {
    throw new SafetensorsError(message);
  });
  const shapes = new Map<string, readonly number[]>();
  for (const [name, v] of Object.entries(header)) {
    const shape = name === METADATA_KEY ? undefined : (v as { shape?: unknown }).shape;
    if (Array.isArray(shape) && shape.every((d) => typeof d === 'number')) shapes.set(name, shape as number[]);
  }
  return shapes;
}

function headerLengthOf(bytes: Uint8Array, fail: (message: string) => never): number {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array of file bytes');
  if (bytes.length < 8) fail(`the file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > SAFETENSORS_MAX_HEADER_BYTES) {
    fail(`the header length ${view.getBigUint64(0, true)} is absurd (the limit is ${SAFETENSORS_MAX_HEADER_BYTES} bytes)`);
  }
  return low;
}

/** The header object and its length, every check of its framing, encoding and keys made. */
function readHeader(bytes: Uint8Array, fail: (message: string) => never): { header: Record<string, unknown>; headerLength: number } {
  const headerLength = headerLengthOf(bytes, fail);
  if (headerLength > bytes.length - 8) fail(`the header length ${headerLength} exceeds the ${bytes.length - 8} bytes after the length field (truncated file?)`);
  if (headerLength < 2) fail(`the header length ${headerLength} is too short for a JSON object`);
  if (bytes[8] !== 0x7b) fail(`the header must start with '{' (byte 0x7b), found byte 0x${bytes[8].toString(16).padStart(2, '0')}`);

  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header must be a JSON object');
  const duplicate = findDuplicateKey(headerText);
  if (duplicate !== undefined) {
    fail(duplicate.depth === 1 ? `the header names '${duplicate.key}' more than once` : `the header repeats the field '${duplicate.key}' inside an entry`);
  }

  return { header: header as Record<string, unknown>, headerLength };
}

/**
 * Parses and validates a safetensors file. Everything is checked before any tensor storage is
 * allocated, so the decoder allocates at most the data section's size in copies; any malformed,
 * truncated or hostile input throws a SafetensorsError saying what is wrong.
 */
export function decodeSafetensors(bytes: Uint8Array, options: DecodeOptions = {}): DecodedSafetensors {
  const fail = (message: string): never => {
    throw new SafetensorsError(message);
  };
  const { header, headerLength } = readHeader(bytes, fail);
  const dataStart = 8 + headerLength;
  const dataSize = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = checkMetadata(value, fail);
      continue;
    }
    entries.push(checkEntry(name, value, dataSize, fail, options.convert ?? false));
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin < expected) fail(`tensor '${e.name}' (bytes ${e.begin}..${e.end}) overlaps the previous tensor, which ends at ${expected}`);
    if (e.begin > expected) fail(`there is a gap in the data section: bytes ${expected}..${e.begin} belong to no tensor (before '${e.name}')`);
    expected = e.end;
  }
  if (expected !== dataSize) {
    fail(`the data section has ${dataSize} bytes but the tensors cover ${expected}${expected > dataSize ? '' : ` (${dataSize - expected} trailing bytes belong to no tensor)`}`);
  }

  const tensors = new Map<string, StoredTensor>();
  const converted = new Map<string, string>();
  const skipped: SkippedTensor[] = [];
  for (const e of entries) {
    const src = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    if (e.dtype === undefined || FROM_FILE_DTYPE.get(e.fileDtype) === undefined) {
      const read = e.dtype === undefined ? undefined : convertTensor(e.fileDtype, src);
      if (typeof read === 'object') {
        tensors.set(e.name, { dtype: e.dtype!, shape: e.shape, data: read });
        converted.set(e.name, e.fileDtype);
      } else skipped.push({ name: e.name, dtype: e.fileDtype, shape: e.shape, why: read ?? `no dtype of this runtime holds ${e.fileDtype}` });
      continue;
    }
    const numel = (e.end - e.begin) / ITEM_SIZE[e.dtype];
    let data: TensorArray;
    switch (e.dtype) {
      case 'bool': {
        const out = new Uint8Array(numel);
        out.set(src);
        const bad = out.findIndex((b) => b > 1);
        if (bad >= 0) fail(`BOOL tensor '${e.name}' has byte ${out[bad]} at element ${bad}; BOOL bytes must be 0 or 1`);
        data = out;
        break;
      }
      case 'f32':
        data = readWords(new Float32Array(numel), src);
        break;
      case 'i32':
        data = readWords(new Int32Array(numel), src);
        break;
      case 'u32':
        data = readWords(new Uint32Array(numel), src);
        break;
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return options.convert ? { tensors, metadata, converted, skipped } : { tensors, metadata };
}

/** F16, BF16, F64 as f32; I64 as i32 and U64 as u32 when every value fits (else why not). */
function convertTensor(fileDtype: string, src: Uint8Array): Float32Array | Int32Array | Uint32Array | string {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (fileDtype) {
    case 'F16': {
      const out = new Float32Array(src.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(src.byteLength / 2);
      const word = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < out.length; i++) {
        word.setUint32(0, view.getUint16(2 * i, true) << 16);
        out[i] = word.getFloat32(0);
      }
      return out;
    }
    case 'F64': {
      const out = new Float32Array(src.byteLength / 8);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(src.byteLength / 8);
      for (let i = 0; i < out.length; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v < -2147483648n || v > 2147483647n) return `its value ${v} at element ${i} does not fit in i32`;
        out[i] = Number(v);
      }
      return out;
    }
    case 'U64': {
      const out = new Uint32Array(src.byteLength / 8);
      for (let i = 0; i < out.length; i++) {
        const v = view.getBigUint64(8 * i, true);
        if (v > 4294967295n) return `its value ${v} at element ${i} does not fit in u32`;
        out[i] = Number(v);
      }
      return out;
    }
    default:
      return `no dtype of this runtime holds ${fileDtype}`;
  }
}

/** An IEEE half-precision number's bits as a number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Copies little-endian 4-byte words from `src` into `out` (whose byte length equals src's). */
function readWords<T extends Float32Array | Int32Array | Uint32Array>(out: T, src: Uint8Array): T {
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  bytes.set(src);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < bytes.length; i += 4) {
      const a = bytes[i];
      const b = bytes[i + 1];
      bytes[i] = bytes[i + 3];
      bytes[i + 1] = bytes[i + 2];
      bytes[i + 2] = b;
      bytes[i + 3] = a;
    }
  }
  return out;
}

function checkMetadata(value: unknown, fail: (message: string) => never): Record<string, string> {
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return fail(`'${METADATA_KEY}' must be an object of strings`);
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries) if (typeof v !== 'string') fail(`metadata '${k}' must be a string, got ${JSON.stringify(v)}`);
  return Object.fromEntries(entries) as Record<string, string>;
}

function checkEntry(name: string, value: unknown, dataSize: number, fail: (message: string) => never, convert: boolean): Entry {
  const what = `tensor '${name}'`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(`${what} must be an object { dtype, shape, data_offsets }`);
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') fail(`${what} has an unknown field '${key}'`);
  }
  if (typeof v.dtype !== 'string') return fail(`${what} needs a string dtype`);
  const fileDtype = v.dtype;
  const dtype = FROM_FILE_DTYPE.get(v.dtype) ?? (convert ? CONVERTED_TO[v.dtype] : undefined);
  if (dtype === undefined && !(convert && OTHER_FILE_DTYPES.has(v.dtype))) {
    const supported = [...FROM_FILE_DTYPE.keys()].join(', ');
    return fail(
      OTHER_FILE_DTYPES.has(v.dtype)
        ? `${what} has dtype ${v.dtype}, which this runtime does not load (supported: ${supported}; loading weights converts F16, BF16, F64, I64 and U64)`
        : `${what} has unknown dtype ${JSON.stringify(v.dtype)} (supported: ${supported})`,
    );
  }
  if (!Array.isArray(v.shape)) return fail(`${what} needs a shape array`);
  const shape = v.shape as unknown[];
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) fail(`${what} has an invalid shape ${JSON.stringify(shape)}: dimensions must be non-negative integers`);
  }
  const offsets = v.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2) return fail(`${what} needs data_offsets [begin, end]`);
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
    return fail(`${what} has invalid data_offsets ${JSON.stringify(offsets)}: need integers 0 <= begin <= end`);
  }
  if (end > dataSize) fail(`${what} has data_offsets [${begin}, ${end}] beyond the ${dataSize}-byte data section (truncated file?)`);
  // Numel with early exit: every dim is >= 1 unless one is 0, so the running product never shrinks.
  const dims = shape as number[];
  let numel = dims.includes(0) ? 0 : 1;
  for (const d of dims) {
    if (numel === 0 || numel > dataSize) break;
    numel *= d;
  }
  const itemSize = FROM_FILE_DTYPE.has(fileDtype) ? ITEM_SIZE[dtype!] : OTHER_FILE_DTYPES.get(fileDtype);
  // a dtype packed below a byte (F4, F6) is skipped whole: its offsets are checked, its size is not
  if (itemSize !== undefined && (numel > dataSize || numel * itemSize !== end - begin)) {
    fail(`${what} has shape ${JSON.stringify(shape)} of ${v.dtype} (${numel > dataSize ? 'more bytes than the file holds' : `${numel * itemSize} bytes`}) but data_offsets [${begin}, ${end}] span ${end - begin} bytes`);
  }
  return { name, dtype, fileDtype, shape: dims.slice(), begin, end };
}

/** The first key repeated within one JSON object of `text` (already known to be valid JSON), with its nesting depth. */
function findDuplicateKey(text: string): { key: string; depth: number } | undefined {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return { key, depth: stack.length };
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}
