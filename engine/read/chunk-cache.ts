// A bounded cache of decoded chunks for the random-access reader: one
// SharedArrayBuffer slab of chunk-sized slots, shared by every restore point
// a process reads (they share chunks too). Workers decode straight into the
// slots, so a cold read allocates nothing per chunk: with a fresh buffer per
// batch, V8's GC threads spent as much CPU as the main thread on a cold
// sequential read. LRU over slots; a slot being filled is never evicted, and
// there is at most one fetch in flight per chunk.
//
// Bytes never outlive a synchronous section: readers copy out of a cached
// slot at once (peek), and readers waiting for a chunk in flight are handed
// it (land) before its slot can be reused.
import { AssertionError } from '../core/errors.js';
import type { WorkerPool } from '../workers/pool.js';

/** Receives a chunk in flight once it lands (bytes valid during the call only), or the reason it failed. */
export type ChunkSink = (bytes: Uint8Array | null, err: Error | null) => void;

export class ChunkCache {
  private readonly slab: SharedArrayBuffer;
  private readonly bytes: Uint8Array;
  private readonly free: number[] = [];
  /** Cached chunks by key, least recently used first. */
  private readonly cached = new Map<string, { slot: number; length: number }>();
  /** Chunks in flight: their slot (-1: none was free, delivered uncached) and waiting readers. */
  private readonly filling = new Map<string, { slot: number; sinks: ChunkSink[] }>();
  private readonly slabIds = new WeakMap<WorkerPool, Promise<number>>();

  constructor(bytesMax: number, readonly slotBytes: number) {
    const slots = Math.max(0, Math.floor(bytesMax / slotBytes));
    this.slab = new SharedArrayBuffer(slots * slotBytes);
    this.bytes = new Uint8Array(this.slab);
    for (let s = slots - 1; s >= 0; s--) this.free.push(s);
  }

  /** The slab's id with `pool`'s workers, registered on first use. */
  slabId(pool: WorkerPool): Promise<number> {
    let id = this.slabIds.get(pool);
    if (!id) {
      id = pool.shareSlab(this.slab);
      this.slabIds.set(pool, id);
    }
    return id;
  }

  has(key: string): boolean {
    return this.cached.has(key);
  }

  /** A cached chunk's bytes (now most recently used); valid until the cache next changes, so copy them at once. */
  peek(key: string): Uint8Array | undefined {
    const entry = this.cached.get(key);
    if (!entry) return undefined;
    this.cached.delete(key);
    this.cached.set(key, entry);
    return this.bytes.subarray(entry.slot * this.slotBytes, entry.slot * this.slotBytes + entry.length);
  }

  isFilling(key: string): boolean {
    return this.filling.has(key);
  }

  /** Calls `sink` when the chunk in flight lands or fails. */
  wait(key: string, sink: ChunkSink): void {
    const entry = this.filling.get(key);
    if (!entry) throw new AssertionError(`wait for chunk ${key} that is not in flight`);
    entry.sinks.push(sink);
  }

  /**
   * Marks a chunk as in flight and reserves a slot for it, evicting the least
   * recently used chunk if need be. Returns the slot's byte offset in the
   * slab, or -1 when every slot is being filled (the chunk is then fetched
   * into a buffer of its own and delivered uncached).
   */
  begin(key: string): number {
    if (this.filling.has(key) || this.cached.has(key)) throw new AssertionError(`chunk ${key} is already cached or in flight`);
    let slot = this.free.pop();
    if (slot === undefined) {
      const oldest = this.cached.keys().next();
      if (!oldest.done) {
        slot = this.cached.get(oldest.value)!.slot;
        this.cached.delete(oldest.value);
      }
    }
    this.filling.set(key, { slot: slot ?? -1, sinks: [] });
    return slot === undefined ? -1 : slot * this.slotBytes;
  }

  /** The chunk in flight has `length` bytes in its slot (or in `own` when it had none): hand it to its readers, then cache it. */
  land(key: string, length: number, own?: Uint8Array): void {
    const entry = this.take(key);
    const bytes = entry.slot >= 0 ? this.bytes.subarray(entry.slot * this.slotBytes, entry.slot * this.slotBytes + length) : own;
    if (!bytes || bytes.length !== length) throw new AssertionError(`chunk ${key} landed without its ${length} bytes`);
    if (entry.slot >= 0) this.cached.set(key, { slot: entry.slot, length });
    for (const sink of entry.sinks) sink(bytes, null);
  }

  fail(key: string, err: Error): void {
    const entry = this.take(key);
    if (entry.slot >= 0) this.free.push(entry.slot);
    for (const sink of entry.sinks) sink(null, err);
  }

  private take(key: string): { slot: number; sinks: ChunkSink[] } {
    const entry = this.filling.get(key);
    if (!entry) throw new AssertionError(`chunk ${key} is not in flight`);
    this.filling.delete(key);
    return entry;
  }
}
