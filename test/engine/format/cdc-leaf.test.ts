// Variable-length leaves (docs/FORMAT.md "Variable-length chunk maps"):
// round trips, and every way a damaged leaf is refused by name.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockvaultError } from '../../../engine/core/errors.js';
import { cdcLeafBytes, decodeCdcLeaf, encodeCdcLeaf, mapPageHeaderBytes } from '../../../engine/format/map-format.js';

const max = 262144;
const id = (k: number) => Buffer.alloc(32, k % 7 === 0 ? 0 : k);

function leafOf(lengths: number[], firstOffset = 0): Buffer {
  return encodeCdcLeaf({ firstOffset, lengths: Uint32Array.from(lengths), ids: Buffer.concat(lengths.map((_, k) => id(k))) });
}

/** The same bytes without the encoder's checks: what a damaged or hostile repository may hold. */
function rawLeaf(lengths: number[], firstOffset = 0): Buffer {
  const out = Buffer.alloc(mapPageHeaderBytes + lengths.length * 36);
  out.write('BVMP', 0, 'latin1');
  out[4] = 1;
  out[5] = 2;
  out.writeUInt32LE(lengths.length, 8);
  out.writeUInt32LE(firstOffset, 12);
  lengths.forEach((n, k) => out.writeUInt32LE(n, mapPageHeaderBytes + 4 * k));
  return out;
}

describe('variable-length leaves', () => {
  it('decode to what was encoded', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: max - 1 }), fc.boolean(), (lengths, first, firstLeaf) => {
      const index = firstLeaf ? 0 : 3;
      const firstOffset = firstLeaf ? 0 : first;
      const firstByte = index * cdcLeafBytes;
      const sizeBytes = firstByte + firstOffset + lengths.reduce((a, b) => a + b, 0); // the disk's last leaf
      const leaf = decodeCdcLeaf(leafOf(lengths, firstOffset), { index, firstByte, sizeBytes, chunkBytesMax: max }, 'leaf');
      expect([...leaf.lengths]).toEqual(lengths);
      expect(leaf.firstOffset).toBe(firstOffset);
      expect(leaf.ids.equals(Buffer.concat(lengths.map((_, k) => id(k))))).toBe(true);
    }), { numRuns: 50 });
  });

  const place = { index: 0, firstByte: 0, sizeBytes: 300000, chunkBytesMax: max };
  const refuses = (bytes: Buffer, p: typeof place, message: RegExp) => {
    expect(() => decodeCdcLeaf(bytes, p, 'restore point v/d@x: map page (level 0, page 0)')).toThrow(BlockvaultError);
    expect(() => decodeCdcLeaf(bytes, p, 'restore point v/d@x: map page (level 0, page 0)')).toThrow(message);
  };

  it('refuses a zero or oversized length, naming the chunk and its offset', () => {
    const zero = rawLeaf([100000, 100000, 100000]);
    zero.writeUInt32LE(0, mapPageHeaderBytes + 4);
    refuses(zero, place, /chunk 1 at offset 100000 has length 0/);
    const big = leafOf([100000, 100000, 100000]);
    big.writeUInt32LE(max + 1, mapPageHeaderBytes);
    refuses(big, place, /chunk 0 at offset 0 has length 262145/);
  });

  it('refuses chunks past the disk end, a last leaf that stops short, and a bad first offset', () => {
    refuses(leafOf([200000, 200000]), place, /end at offset 400000; the disk is 300000 bytes/);
    refuses(leafOf([100000, 100000]), place, /end at offset 200000; the disk is 300000 bytes/);
    refuses(leafOf([100000, 200000], 4096), place, /first chunk at offset 4096/);
    refuses(leafOf([100000]), { ...place, sizeBytes: 2 * cdcLeafBytes }, /must reach its end 67108864/);
  });

  it('refuses offsets out of order: a chunk that starts past the leaf', () => {
    const big = 4 * 1024 * 1024;
    const lengths = Array.from({ length: cdcLeafBytes / big + 1 }, () => big);
    refuses(rawLeaf(lengths), { ...place, sizeBytes: 3 * cdcLeafBytes, chunkBytesMax: big }, /chunk 16 starts at offset 67108864, past the leaf's end 67108864/);
  });

  it('refuses a truncated page, a wrong kind and a wrong count', () => {
    const leaf = leafOf([100000, 200000]);
    refuses(leaf.subarray(0, leaf.length - 1), place, /2 entries in 87 bytes/);
    const kind = Buffer.from(leaf);
    kind[5] = 0;
    refuses(kind, place, /kind 0, level 0; its place needs a variable-length leaf/);
  });
});
