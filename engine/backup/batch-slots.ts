// The memory a backup's batches live in: a raw batch and the compressed
// chunks made from it share a slot index in two slabs (see SlabSlots). A
// batch is read into its slot, hashed and compressed there by a worker,
// appended to its pack from there, and the slot is handed back: no batch
// buffer is allocated, copied or transferred after start-up.
import { assert } from '../core/errors.js';
import type { SlabRef } from '../workers/messages.js';
import type { WorkerPool } from '../workers/pool.js';
import { SlabSlots } from '../workers/slab-slots.js';

export class BatchSlots {
  private readonly input: SlabSlots;
  private readonly output: SlabSlots;

  constructor(pool: WorkerPool, slotBytes: number, count: number) {
    this.input = new SlabSlots(pool, slotBytes, count);
    this.output = new SlabSlots(pool, slotBytes, count);
  }

  /** A free slot's input view of `bytes`. */
  take(bytes: number): Uint8Array {
    assert(bytes <= this.input.slotBytes, `a batch of ${bytes} bytes does not fit a ${this.input.slotBytes}-byte slot`);
    return this.input.view(this.input.take(), 0, bytes);
  }

  slotOf(view: Uint8Array): number {
    return this.input.slotOf(view);
  }

  give(slot: number): void {
    this.input.give(slot);
  }

  /** The slot's input and output regions, as workers name them. */
  async refs(slot: number): Promise<{ input: SlabRef; output: SlabRef }> {
    return { input: await this.input.ref(slot), output: await this.output.ref(slot) };
  }

  outputView(slot: number, offset: number, bytes: number): Uint8Array {
    return this.output.view(slot, offset, bytes);
  }
}
