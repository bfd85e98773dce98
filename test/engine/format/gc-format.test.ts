// The pending-gc codec: round trip, and every kind of damage refused by name.
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests } from '../../../engine/core/digest.js';
import { decodePendingGc, encodePendingGc, type PendingGc } from '../../../engine/format/gc-format.js';

const g: PendingGc = { id: 'mx4w5w5l-b336b277fe9d', started: '2026-12-01T02:00:00.000Z', marked: ['0123456789abcdef0123456789abcdef'], condemned: ['000102030405060708090a0b0c0d0e0f'] };

describe('pending-gc format', () => {
  beforeAll(initDigests);

  it('round-trips', () => {
    expect(decodePendingGc(encodePendingGc(g), 'gc/x.gc')).toEqual(g);
  });

  it('refuses a flipped bit, a truncated object, another magic and bad fields, naming the object', () => {
    const bytes = encodePendingGc(g);
    const flipped = Buffer.from(bytes);
    flipped[20] ^= 1;
    expect(() => decodePendingGc(flipped, 'gc/x.gc')).toThrow(/gc\/x\.gc: pending-gc checksum mismatch/);
    expect(() => decodePendingGc(bytes.subarray(0, bytes.length - 3), 'gc/x.gc')).toThrow(/gc\/x\.gc: pending-gc length out of range/);
    const other = Buffer.from(bytes);
    other[7] = 9;
    expect(() => decodePendingGc(other, 'gc/x.gc')).toThrow(/gc\/x\.gc/);
    expect(() => encodePendingGc({ ...g, condemned: ['not a pack id'] })).toThrow(/pending-gc fields out of range/);
  });
});
