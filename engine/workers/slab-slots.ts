// A shared slab cut into equal slots, registered once with a worker pool:
// workers fill or read a slot in place, so the bytes are never transferred
// between threads (a transferred buffer counts as new external memory on
// every arrival, and V8 answered ~1.8 GB of them with a full GC every
// ~64 MB). Pages are only touched as slots fill: small batches cost little.
import { assert } from '../core/errors.js';
import { nativeApi } from '../core/native.js';
import type { SlabRef } from './messages.js';
import type { WorkerPool } from './pool.js';

/** Slot starts are aligned to this in memory when the native addon can tell (O_DIRECT writes from a slot). */
export const slotAlignBytes = 4096;

export class SlabSlots {
  readonly slab: SharedArrayBuffer;
  /** Where slot 0 starts in the slab: memory-aligned to slotAlignBytes where possible. */
  private readonly base: number;
  private readonly id: Promise<number>;
  private readonly free: number[];

  constructor(private readonly pool: WorkerPool, readonly slotBytes: number, readonly count: number) {
    this.slab = new SharedArrayBuffer(slotBytes * count + slotAlignBytes);
    const off = nativeApi()?.misalignment(new Uint8Array(this.slab, 0, 1), slotAlignBytes) ?? 0;
    this.base = (slotAlignBytes - off) % slotAlignBytes;
    this.id = pool.shareSlab(this.slab);
    this.id.catch(() => undefined); // surfaced by ref()
    this.free = Array.from({ length: count }, (_, i) => count - 1 - i);
  }

  /** A free slot. Callers bound how many they hold below `count`: running out is a bug. */
  take(): number {
    const slot = this.free.pop();
    assert(slot !== undefined, `all ${this.count} slab slots are in use`);
    return slot;
  }

  give(slot: number): void {
    assert(slot >= 0 && slot < this.count && !this.free.includes(slot), `slab slot ${slot} given back twice`);
    this.free.push(slot);
  }

  view(slot: number, offset = 0, bytes = this.slotBytes - offset): Uint8Array {
    assert(offset + bytes <= this.slotBytes, `${bytes} bytes at ${offset} overrun a ${this.slotBytes}-byte slot`);
    return new Uint8Array(this.slab, this.offsetOf(slot, offset), bytes);
  }

  /** Byte `offset` of `slot` as an offset in the slab (what requests with absolute offsets take). */
  offsetOf(slot: number, offset = 0): number {
    return this.base + slot * this.slotBytes + offset;
  }

  /** Which slot a view from view() lies in. */
  slotOf(view: Uint8Array): number {
    assert(view.buffer === this.slab && view.byteOffset >= this.base, 'not a view of this slab');
    return Math.floor((view.byteOffset - this.base) / this.slotBytes);
  }

  /** The slot (at `offset` in it) as workers name it. */
  async ref(slot: number, offset = 0): Promise<SlabRef> {
    return { slab: await this.id, offset: this.offsetOf(slot, offset) };
  }

  /**
   * Lets the workers forget the slab once the caller's work is done: a pool
   * outlives one backup or restore (a group backup, the tests), and each
   * slab kept registered would keep its memory.
   */
  async release(): Promise<void> {
    await this.pool.unshareSlab(await this.id).catch(() => undefined); // a pool closed already holds nothing
  }

  /** The slab's id with the pool (for requests that take absolute offsets). */
  slabId(): Promise<number> {
    return this.id;
  }
}
