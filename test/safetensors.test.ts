// Tests for the safetensors codec: round trips, the spec's byte layout, strict rejection of bad files, and bounded allocation under fuzzing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeSafetensorsMetadata,
  safetensorsHeaderLength,
  decodeSafetensors,
  type DecodedSafetensors,
  encodeSafetensors,
  SAFETENSORS_MAX_HEADER_BYTES,
  SafetensorsError,
  type StoredTensor,
} from '../runtime/safetensors.ts';

const encoder = new TextEncoder();

/** A file from a header string and data bytes, laid out as the spec says (no padding unless the header has it). */
function fileFrom(header: string, data: Uint8Array | number[] = []): Uint8Array {
  const h = encoder.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function expectRejects(bytes: Uint8Array, message: string | RegExp): void {
  let error: unknown;
  try {
    decodeSafetensors(bytes);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(SafetensorsError);
  expect((error as Error).message).toMatch(message);
}

const TYPED_ARRAYS = ['ArrayBuffer', 'SharedArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint8ClampedArray', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'] as const;

/**
 * Decodes while counting the bytes of every buffer and typed array constructed with a length (the
 * decoder allocates only that way), by temporarily wrapping the global constructors.
 */
function decodeCountingAllocations(bytes: Uint8Array): { result?: DecodedSafetensors; error?: unknown; allocated: number } {
  const globals = globalThis as unknown as Record<string, unknown>;
  const saved = TYPED_ARRAYS.map((name) => globals[name]);
  let allocated = 0;
  for (const name of TYPED_ARRAYS) {
    const ctor = globals[name] as (new (...args: unknown[]) => object) & { BYTES_PER_ELEMENT?: number };
    globals[name] = new Proxy(ctor, {
      construct(target, args, newTarget) {
        if (typeof args[0] === 'number') allocated += args[0] * (ctor.BYTES_PER_ELEMENT ?? 1);
        return Reflect.construct(target, args, newTarget === globals[name] ? target : newTarget);
      },
    });
  }
  try {
    return { result: decodeSafetensors(bytes), allocated };
  } catch (error) {
    return { error, allocated };
  } finally {
    TYPED_ARRAYS.forEach((name, i) => (globals[name] = saved[i]));
  }
}

/** A decode of arbitrary bytes either succeeds with a self-consistent result or throws a SafetensorsError; never allocates more than the input. */
function checkDecodeContract(bytes: Uint8Array): void {
  const { result, error, allocated } = decodeCountingAllocations(bytes);
  expect(allocated).toBeLessThanOrEqual(bytes.length);
  if (error !== undefined) {
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as Error).message).toMatch(/^invalid safetensors file: \S/);
    return;
  }
  let total = 0;
  for (const [name, t] of result!.tensors) {
    expect(typeof name).toBe('string');
    const numel = t.shape.reduce((a, b) => a * b, 1);
    expect(t.data.length).toBe(numel);
    total += t.data.byteLength;
  }
  expect(total).toBeLessThanOrEqual(bytes.length);
  for (const v of Object.values(result!.metadata)) expect(typeof v).toBe('string');
  // A valid file survives re-encoding.
  const again = decodeSafetensors(encodeSafetensors(result!.tensors, result!.metadata));
  expect([...again.tensors.keys()].sort()).toEqual([...result!.tensors.keys()].sort());
}

const sample = (): Map<string, StoredTensor> =>
  new Map<string, StoredTensor>([
    ['layer.weight', { dtype: 'f32', shape: [2, 3], data: Float32Array.of(1, -2.5, 3e-8, Infinity, -0, 6) }],
    ['layer.bias', { dtype: 'f32', shape: [3], data: Float32Array.of(0.1, 0.2, 0.3) }],
    ['step', { dtype: 'i32', shape: [], data: Int32Array.of(-7) }],
    ['counts', { dtype: 'u32', shape: [4], data: Uint32Array.of(0, 1, 0xffffffff, 123456) }],
    ['mask', { dtype: 'bool', shape: [5], data: Uint8Array.of(1, 0, 0, 1, 1) }],
    ['empty', { dtype: 'f32', shape: [0], data: new Float32Array(0) }],
    ['empty2d', { dtype: 'i32', shape: [2, 0, 3], data: new Int32Array(0) }],
    ['empty_bool', { dtype: 'bool', shape: [0], data: new Uint8Array(0) }],
  ]);

describe('safetensors round trip', () => {
  it('round-trips every dtype, rank-0 and empty tensors, and metadata', () => {
    const tensors = sample();
    const metadata = { format: 'pt', 'dlc.step': '1200', unicode: 'ü → ✓', __proto__x: '1' };
    const decoded = decodeSafetensors(encodeSafetensors(tensors, metadata));
    expect(decoded.metadata).toEqual(metadata);
    expect(new Set(decoded.tensors.keys())).toEqual(new Set(tensors.keys()));
    for (const [name, t] of tensors) {
      const d = decoded.tensors.get(name)!;
      expect(d.dtype).toBe(t.dtype);
      expect(d.shape).toEqual(t.shape);
      expect(d.data.constructor).toBe(t.data.constructor);
      expect([...d.data].map((x) => Object.is(x, -0) ? '-0' : x)).toEqual([...t.data].map((x) => Object.is(x, -0) ? '-0' : x));
    }
  });

  it('round-trips random tensors (property)', () => {
    const tensor = fc.oneof(
      fc.array(fc.nat(4), { maxLength: 3 }).chain((shape) => {
        const n = shape.reduce((a, b) => a * b, 1);
        return fc.oneof(
          fc.array(fc.float({ noNaN: true }), { minLength: n, maxLength: n }).map((v): StoredTensor => ({ dtype: 'f32', shape, data: Float32Array.from(v) })),
          fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: n, maxLength: n }).map((v): StoredTensor => ({ dtype: 'i32', shape, data: Int32Array.from(v) })),
          fc.array(fc.nat({ max: 2 ** 32 - 1 }), { minLength: n, maxLength: n }).map((v): StoredTensor => ({ dtype: 'u32', shape, data: Uint32Array.from(v) })),
          fc.array(fc.boolean(), { minLength: n, maxLength: n }).map((v): StoredTensor => ({ dtype: 'bool', shape, data: Uint8Array.from(v, Number) })),
        );
      }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 0, maxLength: 8 }).filter((s) => s !== '__metadata__'), tensor, { maxKeys: 6 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), (record, metadata) => {
        const tensors = new Map(Object.entries(record));
        const bytes = encodeSafetensors(tensors, metadata);
        expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0);
        const decoded = decodeSafetensors(bytes);
        expect(decoded.metadata).toEqual(metadata);
        expect(decoded.tensors.size).toBe(tensors.size);
        for (const [name, t] of tensors) {
          const d = decoded.tensors.get(name)!;
          expect(d.shape).toEqual(t.shape);
          expect(Buffer.from(d.data.buffer, d.data.byteOffset, d.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true);
        }
      }),
    );
  });

  it('stores bool as BOOL bytes and accepts u32 0/1 bool data', () => {
    const bytes = encodeSafetensors(new Map([['m', { dtype: 'bool', shape: [3], data: Uint32Array.of(0, 1, 5) } satisfies StoredTensor]]));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)))));
    expect(header.m).toEqual({ dtype: 'BOOL', shape: [3], data_offsets: [0, 3] });
    expect([...bytes.subarray(bytes.length - 3)]).toEqual([0, 1, 1]);
    expect(decodeSafetensors(bytes).tensors.get('m')!.data).toEqual(Uint8Array.of(0, 1, 1));
  });

  it('rejects bad tensors when encoding', () => {
    expect(() => encodeSafetensors(new Map([['w', { dtype: 'f32', shape: [2, 2], data: new Float32Array(3) } satisfies StoredTensor]]))).toThrow(
      "tensor 'w' has shape [2, 2] (4 elements) but 3 elements of data",
    );
    expect(() => encodeSafetensors(new Map([['w', { dtype: 'f32', shape: [1], data: new Int32Array(1) } satisfies StoredTensor]]))).toThrow(
      "tensor 'w' (f32) must hold a Float32Array, got Int32Array",
    );
    expect(() => encodeSafetensors(new Map([['w', { dtype: 'f16' as 'f32', shape: [], data: new Float32Array(1) }]]))).toThrow(/unknown dtype 'f16'/);
    expect(() => encodeSafetensors(new Map([['__metadata__', { dtype: 'f32', shape: [], data: new Float32Array(1) } satisfies StoredTensor]]))).toThrow(/reserved/);
    expect(() => encodeSafetensors(new Map([['w', { dtype: 'f32', shape: [1.5], data: new Float32Array(1) } satisfies StoredTensor]]))).toThrow(/invalid shape/);
    expect(() => encodeSafetensors(new Map(), { n: 3 as unknown as string })).toThrow("safetensors metadata 'n' must be a string, got number");
  });
});

describe('safetensors byte layout', () => {
  it('decodes a file constructed byte by byte from the spec', () => {
    // Header: two F32 tensors, one I32 scalar, metadata; unpadded (the spec does not require padding).
    const header = '{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"},"a":{"dtype":"I32","shape":[],"data_offsets":[8,12]}}';
    const headerBytes = [...header].map((c) => c.charCodeAt(0));
    const n = headerBytes.length;
    const file = [
      n & 0xff, (n >> 8) & 0xff, 0, 0, 0, 0, 0, 0, // u64 little-endian header length
      ...headerBytes,
      0x00, 0x00, 0xc0, 0x3f, // 1.5f
      0x00, 0x00, 0x20, 0xc1, // -10f
      0xfe, 0xff, 0xff, 0xff, // -2 (i32)
    ];
    const decoded = decodeSafetensors(Uint8Array.from(file));
    expect(decoded.metadata).toEqual({ k: 'v' });
    expect(decoded.tensors.get('b')).toEqual({ dtype: 'f32', shape: [2], data: Float32Array.of(1.5, -10) });
    expect(decoded.tensors.get('a')).toEqual({ dtype: 'i32', shape: [], data: Int32Array.of(-2) });
    // The same file with the header padded by spaces to an 8-byte boundary, and at an odd offset in a larger buffer.
    const padded = header + ' '.repeat((8 - ((8 + n) % 8)) % 8 || 8);
    const data = Uint8Array.from(file.slice(8 + n));
    const paddedFile = fileFrom(padded, data);
    const big = new Uint8Array(paddedFile.length + 3);
    big.set(paddedFile, 3);
    expect(decodeSafetensors(big.subarray(3)).tensors.get('b')!.data).toEqual(Float32Array.of(1.5, -10));
  });

  it('writes the layout the spec describes', () => {
    const bytes = encodeSafetensors(new Map<string, StoredTensor>([
      ['z', { dtype: 'bool', shape: [1], data: Uint8Array.of(1) }],
      ['a', { dtype: 'u32', shape: [1], data: Uint32Array.of(0x01020304) }],
    ]), { note: 'x' });
    const view = new DataView(bytes.buffer);
    const n = Number(view.getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text).toBe('{"__metadata__":{"note":"x"},"a":{"dtype":"U32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"BOOL","shape":[1],"data_offsets":[4,5]}}'.padEnd(n, ' '));
    expect([...bytes.subarray(8 + n)]).toEqual([0x04, 0x03, 0x02, 0x01, 0x01]);
  });
});

describe('safetensors metadata from the header alone', () => {
  it('reads what decodeSafetensors reads from the first 8 + header-length bytes, with the same checks', () => {
    const bytes = encodeSafetensors(new Map([['w', { dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) } satisfies StoredTensor]]), { 'dlc.epoch': '3' });
    const head = bytes.subarray(0, 8 + safetensorsHeaderLength(bytes.subarray(0, 8)));
    expect(decodeSafetensorsMetadata(head)).toEqual(decodeSafetensors(bytes).metadata);
    expect(decodeSafetensorsMetadata(head)).toEqual({ 'dlc.epoch': '3' });
    expect(() => decodeSafetensorsMetadata(head.subarray(0, head.length - 1))).toThrow(/truncated file/);
  });
});

describe('safetensors rejects bad files with clear errors', () => {
  const f32 = (offsets: [number, number], shape = '[1]') => `{"dtype":"F32","shape":${shape},"data_offsets":[${offsets}]}`;
  const cases: [string, Uint8Array, string | RegExp][] = [
    ['short file', new Uint8Array(5), 'the file is 5 bytes, too short for the 8-byte header length'],
    ['header larger than file', fileFrom('{}').map((b, i) => (i === 0 ? 200 : b)), /header length 200 exceeds the 2 bytes after the length field/],
    ['absurd header length', Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 0x7b), /header length 72057594037927936 is absurd/],
    ['header over the limit', (() => { const b = fileFrom('{}'); new DataView(b.buffer).setUint32(0, SAFETENSORS_MAX_HEADER_BYTES + 1, true); return b; })(), /is absurd/],
    ['not JSON', fileFrom('{"a":'), /the header is not valid JSON/],
    ['not an object', fileFrom('[1]'), /must start with '\{'/],
    ['bad UTF-8', fileFrom('{"\u0000"}').map((b, i) => (i === 10 ? 0xff : b)), 'the header is not valid UTF-8'],
    ['entry not an object', fileFrom('{"a":3}'), "tensor 'a' must be an object { dtype, shape, data_offsets }"],
    ['unknown dtype', fileFrom('{"a":{"dtype":"Q7","shape":[],"data_offsets":[0,0]}}'), /tensor 'a' has unknown dtype "Q7" \(supported: F32, I32, U32, BOOL\)/],
    ['unsupported dtype', fileFrom('{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', [0, 0]), /dtype F16, which this runtime does not load/],
    ['unknown field', fileFrom('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}}', [0, 0, 0, 0]), "tensor 'a' has an unknown field 'x'"],
    ['negative dim', fileFrom(`{"a":${f32([0, 4], '[-1]')}}`, [0, 0, 0, 0]), /invalid shape \[-1\]/],
    ['fractional dim', fileFrom(`{"a":${f32([0, 4], '[1.5]')}}`, [0, 0, 0, 0]), /invalid shape \[1.5\]/],
    ['shape/offset mismatch', fileFrom(`{"a":${f32([0, 8], '[1]')}}`, new Uint8Array(8)), /shape \[1\] of F32 \(4 bytes\) but data_offsets \[0, 8\] span 8 bytes/],
    ['huge shape', fileFrom(`{"a":${f32([0, 4], '[65536,65536,65536,65536]')}}`, new Uint8Array(4)), /more bytes than the file holds/],
    ['offsets out of range', fileFrom(`{"a":${f32([0, 4])}}`, [0, 0]), /data_offsets \[0, 4\] beyond the 2-byte data section \(truncated file\?\)/],
    ['reversed offsets', fileFrom(`{"a":${f32([4, 0])}}`, new Uint8Array(4)), /invalid data_offsets \[4,0\]/],
    ['overlap', fileFrom(`{"a":${f32([0, 4])},"b":${f32([2, 6])}}`, new Uint8Array(6)), /tensor 'b' \(bytes 2..6\) overlaps the previous tensor, which ends at 4/],
    ['gap', fileFrom(`{"a":${f32([0, 4])},"b":${f32([8, 12])}}`, new Uint8Array(12)), /a gap in the data section: bytes 4..8 belong to no tensor/],
    ['trailing bytes', fileFrom(`{"a":${f32([0, 4])}}`, new Uint8Array(6)), /the data section has 6 bytes but the tensors cover 4 \(2 trailing bytes/],
    ['duplicate tensor', fileFrom(`{"a":${f32([0, 4])},"a":${f32([0, 4])}}`, new Uint8Array(4)), "the header names 'a' more than once"],
    ['duplicate field', fileFrom('{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4)), "repeats the field 'dtype'"],
    ['bad metadata', fileFrom('{"__metadata__":{"k":1}}'), 'metadata \'k\' must be a string, got 1'],
    ['bad bool byte', fileFrom('{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}', [1, 7]), "BOOL tensor 'm' has byte 7 at element 1; BOOL bytes must be 0 or 1"],
    ['bad offsets type', fileFrom('{"a":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}}', new Uint8Array(4)), "tensor 'a' needs data_offsets [begin, end]"],
  ];
  it.each(cases)('%s', (_, bytes, message) => {
    expectRejects(bytes, message);
    checkDecodeContract(bytes);
  });

  it('accepts an empty file and a null metadata entry', () => {
    expect(decodeSafetensors(fileFrom('{}')).tensors.size).toBe(0);
    expect(decodeSafetensors(fileFrom('{"__metadata__":null}  ')).metadata).toEqual({});
    expect(decodeSafetensors(encodeSafetensors(new Map())).tensors.size).toBe(0);
  });
});

describe('safetensors fuzzing', () => {
  const valid = encodeSafetensors(sample(), { step: '3' });

  it('random bytes: a valid result or a SafetensorsError, within the input size', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => checkDecodeContract(bytes)), { numRuns: 500 });
  });

  it('random bytes behind a plausible header length', () => {
    fc.assert(
      fc.property(fc.nat({ max: 300 }), fc.uint8Array({ maxLength: 300 }), (n, rest) => {
        const bytes = new Uint8Array(8 + rest.length);
        new DataView(bytes.buffer).setUint32(0, n, true);
        bytes.set(rest, 8);
        if (rest.length > 0) bytes[8] = 0x7b;
        checkDecodeContract(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('every truncation of a valid file is rejected', () => {
    for (let length = 0; length < valid.length; length++) {
      const { error, allocated } = decodeCountingAllocations(valid.subarray(0, length));
      expect(error).toBeInstanceOf(SafetensorsError);
      expect(allocated).toBeLessThanOrEqual(length);
    }
  });

  it('mutated valid files (byte flips, insertions, deletions)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const bytes = [...valid];
          for (const [at, value, kind] of edits) {
            const i = Math.min(at, bytes.length - 1);
            if (kind === 'set') bytes[i] = value;
            else if (kind === 'insert') bytes.splice(i, 0, value);
            else bytes.splice(i, 1);
          }
          checkDecodeContract(Uint8Array.from(bytes));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('structurally plausible hostile headers', () => {
    const dim = fc.oneof(fc.nat({ max: 6 }), fc.constantFrom(-1, 1.5, 2 ** 31, 2 ** 53, 1e300, '3', null));
    const offset = fc.oneof(fc.nat({ max: 64 }), fc.constantFrom(-4, 2 ** 53, 0.5, 1e20));
    const entry = fc.record({
      dtype: fc.constantFrom('F32', 'I32', 'U32', 'BOOL', 'F16', 'U8', 'x', 5),
      shape: fc.oneof(fc.array(dim, { maxLength: 4 }), fc.constant('[]')),
      data_offsets: fc.oneof(fc.tuple(offset, offset), fc.array(offset, { maxLength: 3 })),
    });
    const header = fc.dictionary(fc.oneof(fc.constantFrom('a', 'b', '__metadata__'), fc.string({ maxLength: 3 })), fc.oneof(entry, fc.jsonValue()), { maxKeys: 4 });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 7 }), (h, data, pad) => {
        checkDecodeContract(fileFrom(JSON.stringify(h) + ' '.repeat(pad), data));
      }),
      { numRuns: 2000 },
    );
  });

  it('the allocation counter sees the decoder allocate', () => {
    const { result, allocated } = decodeCountingAllocations(valid);
    expect(result).toBeDefined();
    expect(allocated).toBeGreaterThan(0);
    expect(allocated).toBeLessThanOrEqual(valid.length);
  });
});

describe("safetensors from other writers: convert reads F16, BF16, F64, I64 and U64 as the runtime's dtypes", () => {
  /** A file of tensors given as a dtype, a shape and their raw little-endian bytes. */
  function rawFile(tensors: [string, string, number[], Uint8Array][]): Uint8Array {
    let at = 0;
    const entries = tensors.map(([name, dtype, shape, bytes]) => {
      const e = `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${at},${at + bytes.length}]}`;
      at += bytes.length;
      return e;
    });
    const data = new Uint8Array(at);
    let o = 0;
    for (const [, , , bytes] of tensors) {
      data.set(bytes, o);
      o += bytes.length;
    }
    return fileFrom(`{${entries.join(',')}}`, data);
  }
  const le = (n: number, write: (v: DataView, i: number) => void) => {
    const v = new DataView(new ArrayBuffer(n));
    write(v, 0);
    return new Uint8Array(v.buffer);
  };
  const f16 = le(6, (v) => [0x3c00, 0xc000, 0x3555].forEach((h, i) => v.setUint16(2 * i, h, true))); // 1, -2, ~1/3
  const bf16 = le(4, (v) => [0x3f80, 0xc040].forEach((h, i) => v.setUint16(2 * i, h, true))); // 1, -3
  const f64 = le(16, (v) => [0.25, -1e10].forEach((x, i) => v.setFloat64(8 * i, x, true)));
  const i64 = le(16, (v) => [7n, -5n].forEach((x, i) => v.setBigInt64(8 * i, x, true)));
  const big = le(8, (v) => v.setBigInt64(0, 1n << 40n, true));
  const file = rawFile([
    ['h', 'F16', [3], f16],
    ['b', 'BF16', [2], bf16],
    ['d', 'F64', [2], f64],
    ['n', 'I64', [2], i64],
    ['big', 'I64', [], big],
    ['q', 'F8_E4M3', [2], Uint8Array.of(1, 2)],
  ]);

  it('converts what fits and reports what does not, without refusing the file', () => {
    const { tensors, converted, skipped } = decodeSafetensors(file, { convert: true });
    expect(tensors.get('h')).toMatchObject({ dtype: 'f32', shape: [3] });
    expect(Array.from(tensors.get('h')!.data)).toEqual([1, -2, Math.fround(0.333251953125)]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([1, -3]);
    expect(Array.from(tensors.get('d')!.data)).toEqual([0.25, Math.fround(-1e10)]);
    expect(tensors.get('n')).toMatchObject({ dtype: 'i32', shape: [2] });
    expect(Array.from(tensors.get('n')!.data)).toEqual([7, -5]);
    expect(converted).toEqual(new Map([['h', 'F16'], ['b', 'BF16'], ['d', 'F64'], ['n', 'I64']]));
    expect(skipped).toEqual([
      { name: 'big', dtype: 'I64', shape: [], why: 'its value 1099511627776 at element 0 does not fit in i32' },
      { name: 'q', dtype: 'F8_E4M3', shape: [2], why: 'no dtype of this runtime holds F8_E4M3' },
    ]);
  });

  it('without convert, the file is refused as before, and a converted file still has its offsets checked', () => {
    expectRejects(file, /tensor '.*' has dtype (F16|BF16|F64|I64|F8_E4M3), which this runtime does not load/);
    const short = rawFile([['h', 'F16', [4], f16]]);
    expect(() => decodeSafetensors(short, { convert: true })).toThrow(/shape \[4\] of F16 \(8 bytes\) but data_offsets \[0, 6\] span 6 bytes/);
  });
});
