// gc's record table against a Map: random chunk ids (some shared by several
// packs, some with the same first word to force long probes), every lookup
// agrees, and a duplicate replaces the first copy exactly when keep says so.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecordTable } from '../../../engine/gc/record-table.js';

describe('record table', () => {
  it('finds what was put, probing past ids that share their first word', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 50 }), fc.boolean(), (n, dupes, keepFirst) => {
      const ids = Array.from({ length: n }, (_, k) => {
        const id = randomBytes(32);
        if (k % 7 === 0) id.writeUInt32LE(12345, 0); // same slot: a chain of probes
        return id;
      });
      const table = new RecordTable(n + dupes);
      const want = new Map<string, [number, number, number, number]>();
      ids.forEach((id, k) => {
        table.put(id, k, k * 2, k * 3, k * 5, () => true);
        want.set(id.toString('hex'), [k, k * 2, k * 3, k * 5]);
      });
      for (let d = 0; d < dupes; d++) {
        const id = ids[d % n];
        table.put(id, 1000 + d, d, d, d, () => keepFirst);
        if (!keepFirst) want.set(id.toString('hex'), [1000 + d, d, d, d]);
      }
      expect(table.size).toBe(n);
      for (const id of ids) {
        const slot = table.find(id);
        expect(slot).toBeGreaterThanOrEqual(0);
        expect([table.packOf(slot), table.ordinalOf(slot), table.storedBytesOf(slot), table.offsetOf(slot)]).toEqual(want.get(id.toString('hex')));
      }
      expect(table.find(randomBytes(32))).toBe(-1);
    }));
  });
});
