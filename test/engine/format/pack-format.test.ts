import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, sha256, xxh64 } from '../../../engine/core/digest.js';
import { BlockvaultError } from '../../../engine/core/errors.js';
import {
  codecRaw, codecZstd, decodeFooter, decodePackHeader, decodeRecordHeader, decodeTrailerEntries, encodePackHeader,
  encodeRecordHeader, encodeTrailer, packFooterBytes, type PackRecord,
} from '../../../engine/format/pack-format.js';

beforeAll(initDigests);

const recordArb = fc.record({
  seed: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  offset: fc.integer({ min: 32, max: 2 ** 40 }),
  rawBytes: fc.integer({ min: 1, max: 4 * 1024 * 1024 }),
  zstd: fc.boolean(),
  storedShare: fc.double({ min: 0.01, max: 1, noNaN: true }),
}).map(({ seed, offset, rawBytes, zstd, storedShare }): PackRecord => ({
  id: sha256(seed), offset, rawBytes,
  storedBytes: zstd ? Math.max(1, Math.floor(rawBytes * storedShare)) : rawBytes,
  codec: zstd ? codecZstd : codecRaw,
  storedXxh64: xxh64(seed),
}));

describe('pack format', () => {
  it('round-trips record headers', () => {
    fc.assert(fc.property(recordArb, (r) => {
      const decoded = decodeRecordHeader(encodeRecordHeader(r), r.offset, 'test');
      expect(decoded).toEqual(r);
    }));
  });

  it('round-trips trailers and finds them from the footer', () => {
    fc.assert(fc.property(fc.array(recordArb, { maxLength: 40 }), (records) => {
      const trailer = encodeTrailer(records);
      const packBytes = 2 ** 41 + trailer.length;
      const footer = decodeFooter(trailer.subarray(trailer.length - packFooterBytes), packBytes, 'test');
      expect(footer.count).toBe(records.length);
      expect(footer.trailerBytes).toBe(trailer.length);
      expect(decodeTrailerEntries(trailer, footer.count, footer.entriesXxh64, packBytes, 'test')).toEqual(records);
    }), { numRuns: 50 });
  });

  it('detects any single flipped bit in a record header', () => {
    fc.assert(fc.property(recordArb, fc.integer({ min: 0, max: 64 * 8 - 1 }), (r, bit) => {
      const bytes = encodeRecordHeader(r);
      bytes[bit >> 3] ^= 1 << (bit & 7);
      expect(() => decodeRecordHeader(bytes, r.offset, 'test')).toThrow(BlockvaultError);
    }));
  });

  it('detects a flipped bit in the trailer entries', () => {
    const records = [0, 1, 2].map((i) => ({ id: sha256(Buffer.from([i])), offset: 32 + i * 100, rawBytes: 10, storedBytes: 10, codec: codecRaw, storedXxh64: 1n } as PackRecord));
    const trailer = encodeTrailer(records);
    trailer[70] ^= 4;
    const footer = decodeFooter(trailer.subarray(trailer.length - packFooterBytes), 1e6, 'test');
    expect(() => decodeTrailerEntries(trailer, footer.count, footer.entriesXxh64, 1e6, 'test')).toThrow(/checksum mismatch/);
  });

  it('refuses a footer whose count would need a huge allocation', () => {
    const footer = encodeTrailer([]);
    footer.writeUInt32LE(2 ** 31, 0);
    expect(() => decodeFooter(footer, 1e9, 'test')).toThrow(/out of range/);
  });

  it('refuses a pack of another format version', () => {
    const header = encodePackHeader(Buffer.alloc(16, 7), 0);
    expect(decodePackHeader(header, 't').packId).toEqual(Buffer.alloc(16, 7));
    header[7] = 2;
    expect(() => decodePackHeader(header, 'p.pack')).toThrow(/p.pack: bad magic/);
  });
});
