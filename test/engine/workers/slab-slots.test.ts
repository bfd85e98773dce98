import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../engine/core/errors.js';
import { nativeApi } from '../../../engine/core/native.js';
import { WorkerPool } from '../../../engine/workers/pool.js';
import { SlabSlots } from '../../../engine/workers/slab-slots.js';

describe('SlabSlots', () => {
  it('hands out each slot once, finds a view\'s slot, and treats misuse as a bug', async () => {
    const pool = new WorkerPool(1);
    try {
      const slots = new SlabSlots(pool, 4096, 3);
      const taken = [slots.take(), slots.take(), slots.take()];
      expect(new Set(taken).size).toBe(3);
      expect(() => slots.take()).toThrow(AssertionError); // callers bound what they hold: running out is a bug
      const view = slots.view(taken[1], 100, 50);
      expect(view.byteOffset).toBe(slots.offsetOf(taken[1], 100));
      expect(nativeApi()!.misalignment(slots.view(taken[2]), 4096)).toBe(0); // O_DIRECT can write straight from a slot
      expect(slots.slotOf(view)).toBe(taken[1]);
      expect(() => slots.view(0, 4000, 200)).toThrow(AssertionError);
      expect(() => slots.slotOf(new Uint8Array(10))).toThrow(AssertionError);
      slots.give(taken[1]);
      expect(() => slots.give(taken[1])).toThrow(AssertionError);
      expect(slots.take()).toBe(taken[1]);
      expect(await slots.ref(2, 8)).toEqual({ slab: await slots.slabId(), offset: slots.offsetOf(2, 8) });
      expect(slots.offsetOf(2, 8) - slots.offsetOf(0)).toBe(2 * 4096 + 8);
    } finally {
      await pool.close();
    }
  });
});
