// A byte-bounded LRU of decompressed chunks, keyed by chunk id: shared by
// every restore point a process reads (they share chunks too), with at most
// one fetch in flight per chunk. Chunks are views into the buffers their
// batch was decoded into (no copy, no per-chunk allocation); a buffer is
// charged in full while any of its chunks is cached, so the bound is on
// memory actually held.

export class ChunkCache {
  private readonly entries = new Map<string, Uint8Array>();
  private readonly inflight = new Map<string, Promise<Uint8Array>>();
  /** Cached views per underlying buffer. */
  private readonly holders = new Map<ArrayBufferLike, number>();
  private bytes = 0;

  constructor(readonly bytesMax: number) {}

  get(key: string): Uint8Array | undefined {
    const value = this.entries.get(key);
    if (value) {
      this.entries.delete(key); // most recently used goes last
      this.entries.set(key, value);
    }
    return value;
  }

  put(key: string, value: Uint8Array): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, value);
    const views = this.holders.get(value.buffer) ?? 0;
    if (views === 0) this.bytes += value.buffer.byteLength;
    this.holders.set(value.buffer, views + 1);
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.bytesMax || this.entries.size === 1) break;
      this.entries.delete(k);
      this.release(v);
    }
  }

  private release(value: Uint8Array): void {
    const views = this.holders.get(value.buffer)! - 1;
    if (views > 0) {
      this.holders.set(value.buffer, views);
      return;
    }
    this.holders.delete(value.buffer);
    this.bytes -= value.buffer.byteLength;
  }

  pending(key: string): Promise<Uint8Array> | undefined {
    return this.inflight.get(key);
  }

  track(key: string, fetch: Promise<Uint8Array>): Promise<Uint8Array> {
    this.inflight.set(key, fetch);
    void fetch.catch(() => undefined).finally(() => this.inflight.delete(key));
    return fetch;
  }
}
