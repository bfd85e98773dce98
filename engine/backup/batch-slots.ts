// The memory a backup's batches live in (see SlabSlots): raw batches in
// input slots (read ahead, so there are more of them), the compressed
// chunks made from a batch in an output slot held only while it is being
// compressed and appended. A batch is read into its slot, hashed and
// compressed by a worker in place, appended to its pack from there, and the
// slots are handed back: no batch buffer is allocated, copied or
// transferred after start-up.
import { assert } from '../core/errors.js';
import type { SlabRef } from '../workers/messages.js';
import type { WorkerPool } from '../workers/pool.js';
import { SlabSlots } from '../workers/slab-slots.js';

export class BatchSlots {
  private readonly input: SlabSlots;
  private readonly output: SlabSlots;

  constructor(pool: WorkerPool, slotBytes: number, inputs: number, outputs: number) {
    this.input = new SlabSlots(pool, slotBytes, inputs);
    this.output = new SlabSlots(pool, slotBytes, outputs);
  }

  async release(): Promise<void> {
    await Promise.all([this.input.release(), this.output.release()]);
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

  /** Where a batch's view (from take(), or a part of it) starts, as workers name it. */
  inputRef(view: Uint8Array): Promise<SlabRef> {
    const slot = this.input.slotOf(view);
    return this.input.ref(slot, view.byteOffset - this.input.offsetOf(slot));
  }

  /** A whole input slot's view (a content-defined batch lays its carried-over chunk in front of what it read). */
  takeWhole(): Uint8Array {
    return this.input.view(this.input.take());
  }

  takeOutput(): number {
    return this.output.take();
  }

  giveOutput(slot: number): void {
    this.output.give(slot);
  }

  outputRef(slot: number): Promise<SlabRef> {
    return this.output.ref(slot);
  }

  outputView(slot: number, offset: number, bytes: number): Uint8Array {
    return this.output.view(slot, offset, bytes);
  }
}
