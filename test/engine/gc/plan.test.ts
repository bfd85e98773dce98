// gc's plan (pure), property-tested: every pack lands in exactly one of drop,
// repack or keep; a pack with a live record is never dropped; a repacked
// pack is exactly one below the threshold; and the byte counts add up.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PackMarks } from '../../../engine/gc/mark.js';
import { planGc } from '../../../engine/gc/plan.js';

const pack = fc.record({ records: fc.integer({ min: 1, max: 200 }), live: fc.integer({ min: 0, max: 200 }), recordBytes: fc.integer({ min: 1, max: 65536 }) })
  .map(({ records, live, recordBytes }): PackMarks => {
    const liveRecords = Math.min(live, records);
    return { bits: new Uint8Array(Math.ceil(records / 8)), records, bytes: 32 + records * (64 + recordBytes) + 64 * records + 32, storedBytes: records * recordBytes, liveRecords, liveStoredBytes: liveRecords * recordBytes };
  });

describe('gc plan', () => {
  it('drops only packs with nothing live, repacks exactly those below the threshold, keeps the rest', () => {
    fc.assert(fc.property(fc.dictionary(fc.stringMatching(/^[0-9a-f]{32}$/), pack, { maxKeys: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (packs, below) => {
      const marks = new Map(Object.entries(packs));
      const plan = planGc(marks, { below });
      const drop = new Set(plan.drop);
      const repack = new Set(plan.repack);
      expect(drop.size + repack.size + plan.packsKept).toBe(marks.size);
      let dropped = 0;
      let copied = 0;
      let deadKept = 0;
      for (const [id, p] of marks) {
        expect(drop.has(id) && repack.has(id)).toBe(false);
        if (p.liveRecords > 0) expect(drop.has(id)).toBe(false);
        else expect(drop.has(id)).toBe(true);
        const share = p.liveStoredBytes / p.storedBytes;
        if (p.liveRecords > 0) expect(repack.has(id)).toBe(share < below);
        if (drop.has(id)) dropped += p.bytes;
        if (repack.has(id)) copied += p.liveStoredBytes;
        if (!drop.has(id) && !repack.has(id)) deadKept += p.storedBytes - p.liveStoredBytes;
      }
      expect(plan.bytesDropped).toBe(dropped);
      expect(plan.bytesToCopy).toBe(copied);
      expect(plan.bytesDeadKept).toBe(deadKept);
    }));
  });

  it('--max-unused repacks the emptiest packs first, until what stays is at most that share dead', () => {
    fc.assert(fc.property(fc.dictionary(fc.stringMatching(/^[0-9a-f]{32}$/), pack, { maxKeys: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (packs, maxUnused) => {
      const marks = new Map(Object.entries(packs));
      const plan = planGc(marks, { maxUnused });
      const staying = [...marks].filter(([id, p]) => p.liveRecords > 0 && !plan.repack.includes(id));
      const stayingBytes = staying.reduce((a, [, p]) => a + p.storedBytes, 0) + plan.bytesToCopy;
      // Either the goal is met, or every partly dead pack was repacked.
      const partlyDeadLeft = staying.filter(([, p]) => p.liveStoredBytes < p.storedBytes).length;
      expect(plan.bytesDeadKept <= maxUnused * stayingBytes + 1e-6 || partlyDeadLeft === 0).toBe(true);
      // Emptiest first: no pack that stays is less live than one repacked.
      const share = (p: { liveStoredBytes: number; storedBytes: number }) => p.liveStoredBytes / p.storedBytes;
      const repacked = plan.repack.map((id) => share(marks.get(id)!));
      for (const [, p] of staying) for (const r of repacked) expect(share(p)).toBeGreaterThanOrEqual(r);
    }));
  });

  it('with --repack-below 0% repacks nothing', () => {
    const marks = new Map<string, PackMarks>([['a'.repeat(32), { bits: new Uint8Array(1), records: 4, bytes: 1000, storedBytes: 400, liveRecords: 1, liveStoredBytes: 1 }]]);
    expect(planGc(marks, { below: 0 })).toMatchObject({ drop: [], repack: [], packsKept: 1 });
  });
});
