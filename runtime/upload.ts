// Large input uploads through a pool of persistently mapped staging buffers, copied on the GPU in the step's own command buffer.
//
// `queue.writeBuffer` of more than 4 MiB makes Dawn create, map and free a staging buffer of that
// size on every call (its ring buffers take smaller writes), and each fresh one is new host memory
// that the first write faults in page by page. A training loop uploads a batch of the same size every
// step, so the pool keeps the staging buffers instead: a buffer is written while mapped, unmapped,
// copied into the input buffer by the command buffer that uses it, and mapped again (`mapAsync`) once
// that command buffer is submitted, ready when the GPU has finished with it. Writes that are small,
// or find no mapped buffer of about their size (the GPU is still behind), fall back to `writeBuffer`,
// so the pool never waits and never changes what a step computes.
const MAP_WRITE_USAGE = 0x2 | 0x4; // MAP_WRITE | COPY_SRC
const MAP_WRITE = 0x2;

export interface UploadOptions {
  /** Writes smaller than this go through `queue.writeBuffer` (Dawn's ring buffers serve them well). */
  readonly minBytes: number;
  /** Staging buffers kept at most (mapped, or in flight). */
  readonly maxBuffers: number;
}

const DEFAULT_UPLOADS: UploadOptions = { minBytes: 1 << 20, maxBuffers: 6 };
/**
 * A mapped buffer no write has taken for this many submits is freed: a training loop takes its few
 * buffers in turn, while one huge predict's staging buffer would otherwise stay mapped (host and GPU
 * memory) for as long as the model lives.
 */
export const IDLE_SUBMITS = 16;

export class StagingUploads {
  /** Mapped, ready to be written. */
  private readonly ready: GPUBuffer[] = [];
  /** Written and unmapped: copied by the command buffer being encoded, mapped again after its submit. */
  private written: GPUBuffer[] = [];
  /** Every buffer the pool holds, in any state, with the submit count when a write last took it. */
  private readonly all = new Map<GPUBuffer, number>();
  /** Submits so far (`submitted` calls). */
  private submits = 0;
  private closed = false;
  /** Writes served from the pool, and those that fell back to `writeBuffer` (for tests and profiles). */
  readonly counts = { staged: 0, direct: 0 };

  private readonly options: UploadOptions;
  private readonly device: GPUDevice;

  /** `false`: no pool, every write through `writeBuffer`; else options over the defaults. */
  constructor(device: GPUDevice, options: Partial<UploadOptions> | false = {}) {
    this.device = device;
    this.options = options === false ? { ...DEFAULT_UPLOADS, maxBuffers: 0 } : { ...DEFAULT_UPLOADS, ...options };
  }

  /**
   * Write `data` into `dst` at `offset`: through a mapped staging buffer and a copy recorded on
   * `encoder` when the write is large and one is ready (or may be made), else with `queue.writeBuffer`
   * (which lands before the whole command buffer runs; the copy runs where it is recorded, before the
   * dispatches recorded after it).
   */
  write(encoder: GPUCommandEncoder | undefined, dst: GPUBuffer, offset: number, data: ArrayBufferView<ArrayBuffer>): void {
    const bytes = data.byteLength;
    const staging = encoder && !this.closed && bytes >= this.options.minBytes && bytes % 4 === 0 && offset % 4 === 0 ? this.take(bytes) : undefined;
    if (!encoder || !staging) {
      this.counts.direct++;
      this.device.queue.writeBuffer(dst, offset, data);
      return;
    }
    new Uint8Array(staging.getMappedRange(0, bytes)).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
    staging.unmap();
    encoder.copyBufferToBuffer(staging, 0, dst, offset, bytes);
    this.written.push(staging);
    this.counts.staged++;
  }

  /**
   * After the submit of the command buffer the writes were recorded in (or after it was dropped):
   * map its staging buffers again. Each is ready for another write once the GPU has run that
   * command buffer.
   */
  submitted(): void {
    const used = this.written;
    this.written = [];
    this.submits++;
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const b = this.ready[i];
      if (this.submits - (this.all.get(b) ?? 0) > IDLE_SUBMITS) {
        this.ready.splice(i, 1);
        this.drop(b);
      }
    }
    for (const b of used) {
      b.mapAsync(MAP_WRITE).then(
        () => {
          if (this.closed || !this.all.has(b)) b.destroy();
          else this.ready.push(b);
        },
        () => this.drop(b),
      );
    }
  }

  /** Destroy every staging buffer; later writes go through `writeBuffer`. */
  destroy(): void {
    this.closed = true;
    this.trim();
  }

  /** Destroy every staging buffer (those being mapped again too); later writes make new ones. */
  trim(): void {
    for (const b of this.all.keys()) b.destroy();
    this.all.clear();
    this.ready.length = 0;
    this.written = [];
  }

  /** The bytes of the staging buffers held. */
  get bytes(): number {
    let n = 0;
    for (const b of this.all.keys()) n += b.size;
    return n;
  }

  /** A mapped buffer of at least `bytes` (at most twice that), made when the pool has room. */
  private take(bytes: number): GPUBuffer | undefined {
    let best = -1;
    this.ready.forEach((b, i) => {
      if (b.size >= bytes && b.size <= 2 * bytes && (best < 0 || b.size < this.ready[best].size)) best = i;
    });
    if (best >= 0) {
      const b = this.ready.splice(best, 1)[0];
      this.all.set(b, this.submits);
      return b;
    }
    // a mapped buffer of another size gives way to one of this size
    if (this.all.size >= this.options.maxBuffers && this.ready.length > 0) this.drop(this.ready.shift()!);
    if (this.all.size >= this.options.maxBuffers) return undefined;
    const b = this.device.createBuffer({ size: bytes, usage: MAP_WRITE_USAGE, mappedAtCreation: true, label: 'dlc upload staging' });
    this.all.set(b, this.submits);
    return b;
  }

  private drop(b: GPUBuffer): void {
    b.destroy();
    this.all.delete(b);
  }
}
