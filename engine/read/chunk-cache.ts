// A byte-bounded LRU of decompressed chunks, keyed by chunk id: shared by
// every restore point a process reads (they share chunks too), with at most
// one fetch in flight per chunk.

export class ChunkCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private bytes = 0;

  constructor(readonly bytesMax: number) {}

  get(key: string): Buffer | undefined {
    const value = this.entries.get(key);
    if (value) {
      this.entries.delete(key); // most recently used goes last
      this.entries.set(key, value);
    }
    return value;
  }

  put(key: string, value: Buffer): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, value);
    this.bytes += value.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.bytesMax) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }

  pending(key: string): Promise<Buffer> | undefined {
    return this.inflight.get(key);
  }

  track(key: string, fetch: Promise<Buffer>): Promise<Buffer> {
    this.inflight.set(key, fetch);
    void fetch.catch(() => undefined).finally(() => this.inflight.delete(key));
    return fetch;
  }

}
