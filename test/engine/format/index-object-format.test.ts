import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, sha256 } from '../../../engine/core/digest.js';
import { decodeIndexObject, encodeIndexObject, type IndexedPack } from '../../../engine/format/index-object-format.js';

beforeAll(async () => { await initDigests(); });

/** Packs whose records sit back to back after a 32-byte pack header, as a writer lays them out. */
const packsArb = fc.array(fc.record({
  seed: fc.nat(),
  sizes: fc.array(fc.integer({ min: 1, max: 4 * 1024 * 1024 }), { maxLength: 20 }),
  codec: fc.constantFrom(0 as const, 1 as const),
}), { maxLength: 12 }).map((packs): IndexedPack[] => packs.map((p, i) => {
  let offset = 32;
  const records = p.sizes.map((size, k) => {
    const r = { id: sha256(Buffer.from(`${p.seed}-${i}-${k}`)), offset, rawBytes: size, storedBytes: size, codec: 0 as const, storedXxh64: BigInt(p.seed + k) };
    offset += 64 + size;
    return r;
  });
  return { packId: sha256(Buffer.from(`pack-${p.seed}-${i}`)).toString('hex', 0, 16), packBytes: offset + records.length * 64 + 32, records };
}));

describe('index object format', () => {
  it('round-trips any set of packs', () => {
    fc.assert(fc.property(packsArb, (packs) => {
      expect(decodeIndexObject(encodeIndexObject(packs), 'x')).toEqual(packs);
    }), { numRuns: 100 });
  });

  it('refuses any truncation and any flipped bit by name', () => {
    const packs = fc.sample(packsArb.filter((p) => p.length > 0 && p[0].records.length > 0), 1)[0];
    const bytes = encodeIndexObject(packs);
    fc.assert(fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (cut, bit) => {
      expect(() => decodeIndexObject(bytes.subarray(0, cut), 'idx/x.idx')).toThrow(/idx\/x\.idx: .*(truncated|checksum|magic)/);
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      expect(() => decodeIndexObject(flipped, 'idx/x.idx')).toThrow(/idx\/x\.idx/);
    }), { numRuns: 200 });
  });

  it('refuses entries that point outside their pack, even with a good checksum', () => {
    const packs: IndexedPack[] = [{ packId: '00'.repeat(16), packBytes: 190, records: [{ id: sha256(Buffer.from('a')), offset: 32, rawBytes: 100, storedBytes: 100, codec: 0, storedXxh64: 1n }] }];
    expect(() => decodeIndexObject(encodeIndexObject(packs), 'x')).toThrow(/points outside the pack|footer out of range/);
  });
});
