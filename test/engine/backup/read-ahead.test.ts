import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planBatches, readAhead, type Batch, type HoleRun } from '../../../engine/backup/batches.js';

type Planned = { firstChunk: number; chunkLengths: number[]; delayMs: number; fail: boolean };

/** Reads that finish in random order after random delays; counts how many are in flight at once. */
function reader() {
  const state = { inflight: 0, most: 0, started: [] as number[] };
  const read = async (p: Planned): Promise<Batch> => {
    state.inflight += 1;
    state.most = Math.max(state.most, state.inflight);
    state.started.push(p.firstChunk);
    await new Promise((r) => setTimeout(r, p.delayMs));
    state.inflight -= 1;
    if (p.fail) throw new Error(`read of ${p.firstChunk} failed`);
    return { firstChunk: p.firstChunk, chunkLengths: p.chunkLengths, readChunks: [], data: new Uint8Array(0), bytesRead: 0, last: false };
  };
  return { state, read };
}

describe('readAhead', () => {
  it('yields in plan order, keeps at most readsMax reads and about bytesMax bytes in flight, holes included', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ hole: fc.boolean(), chunks: fc.integer({ min: 1, max: 4 }), delayMs: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 8 }),
      async (items, readsMax, bytesChunks) => {
        const plan: Array<Planned | HoleRun> = items.map((it, i) => (it.hole
          ? { hole: true as const, firstChunk: i, chunks: it.chunks, bytes: it.chunks * 10 }
          : { firstChunk: i, chunkLengths: Array(it.chunks).fill(10), delayMs: it.delayMs, fail: false }));
        const { state, read } = reader();
        const seen: number[] = [];
        for await (const b of readAhead(plan, read, readsMax, bytesChunks * 10)) seen.push(b.firstChunk);
        expect(seen).toEqual(items.map((_, i) => i));
        expect(state.most).toBeLessThanOrEqual(readsMax);
        // Reads start in plan order, each only once.
        expect(state.started).toEqual(plan.filter((p) => !('hole' in p)).map((p) => p.firstChunk));
      }), { numRuns: 60 });
  });

  it('overlaps reads when allowed, and reads one at a time when not', async () => {
    const plan: Planned[] = Array.from({ length: 12 }, (_, i) => ({ firstChunk: i, chunkLengths: [10], delayMs: 2, fail: false }));
    const wide = reader();
    for await (const _ of readAhead(plan, wide.read, 8, 1e9)) void _;
    expect(wide.state.most).toBe(8);
    const narrow = reader();
    for await (const _ of readAhead(plan, narrow.read, 1, 1e9)) void _;
    expect(narrow.state.most).toBe(1);
  });

  it('surfaces a failed read at its turn, after the batches before it', async () => {
    const plan: Planned[] = Array.from({ length: 6 }, (_, i) => ({ firstChunk: i, chunkLengths: [10], delayMs: 6 - i, fail: i === 3 }));
    const { read } = reader();
    const seen: number[] = [];
    await expect(async () => { for await (const b of readAhead(plan, read, 4, 1e9)) seen.push(b.firstChunk); }).rejects.toThrow(/read of 3 failed/);
    expect(seen).toEqual([0, 1, 2]);
  });
});

describe('planBatches', () => {
  it('covers every chunk of the ranges once, in order, skipping long holes without reading them', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 8 }), (size, batchChunks) => {
      const chunkBytes = 64;
      const extents: Array<[number, number]> = [[0, Math.min(size, 100)], [Math.min(size, 3000), size]];
      let next = 0;
      for (const b of planBatches(size, chunkBytes, batchChunks, extents)) {
        expect(b.firstChunk).toBe(next);
        next += 'hole' in b ? b.chunks : b.chunkLengths.length;
      }
      expect(next).toBe(Math.ceil(size / chunkBytes));
    }));
  });
});
