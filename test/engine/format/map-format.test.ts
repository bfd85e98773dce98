import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, sha256, xxh64 } from '../../../engine/core/digest.js';
import { applyLeafPatch, decodeMapPage, encodeLeafPatch, encodeMapPage, levelEntries, mapPageEntries, mapShape, pageChunkRange, pageEntryCount } from '../../../engine/format/map-format.js';
import { decodePoint, encodePoint, type PointHeader } from '../../../engine/format/point-format.js';

beforeAll(initDigests);

function pagedHeader(chunksTotal: number, root: Buffer): PointHeader {
  return {
    id: 'ab'.repeat(16), vm: 'web01', disk: 'sda', time: '2026-12-01T01:00:00.000Z', sizeBytes: Math.max(0, chunksTotal * 65536 - 17),
    chunkBytes: 65536, chunksTotal, parent: null, base: null, chainDepth: 0, mapSha256: sha256(root).toString('hex'), source: {}, stats: {},
  };
}

/** The file with its trailing XXH64 recomputed: a damaged file that still passes the checksum (what a bug could write). */
function resealed(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  out.writeBigUInt64LE(xxh64(out.subarray(0, out.length - 8)), out.length - 8);
  return out;
}

describe('paged map shape', () => {
  it('has the fewest levels that fit the root in one page, and pages cover every chunk once', () => {
    fc.assert(fc.property(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })), (chunks) => {
      const { height, rootEntries } = mapShape(chunks);
      expect(rootEntries).toBeLessThanOrEqual(mapPageEntries);
      expect(rootEntries).toBe(levelEntries(chunks, height));
      if (height > 0) expect(levelEntries(chunks, height - 1)).toBeGreaterThan(mapPageEntries);
      for (let level = 0; level < height; level++) {
        const pages = levelEntries(chunks, level + 1);
        expect(pageChunkRange(chunks, level, pages - 1)[1]).toBe(chunks);
        expect(pageEntryCount(chunks, level, pages - 1)).toBe(levelEntries(chunks, level) - (pages - 1) * mapPageEntries);
      }
    }));
    expect(mapShape(32 * 1024 * 1024)).toEqual({ chunks: 32 * 1024 * 1024, height: 2, rootEntries: 32 }); // 2 TiB at 64 KiB
  });
});

describe('map pages', () => {
  it('round-trip, and are refused where the tree needs another level or count', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: mapPageEntries }), fc.integer({ min: 0, max: 3 }), (count, level) => {
      const entries = Buffer.alloc(count * 32, 7);
      const page = encodeMapPage(level, entries);
      expect(decodeMapPage(page, { level, count }, 'p')).toEqual({ kind: 'entries', entries });
      expect(() => decodeMapPage(page, { level: (level + 1) % 4, count }, 'p')).toThrow(/p: page says kind \d, level \d/);
      expect(() => decodeMapPage(page, { level, count: count + 1 }, 'p')).toThrow(/entries; its place in the map needs/);
      expect(() => decodeMapPage(page.subarray(0, page.length - 1), { level, count }, 'p')).toThrow(/p: \d+ bytes, expected/);
    }));
  });
});

describe('leaf patches', () => {
  it('round-trip onto their base, and refuse entries out of order, past the leaf, or a size that does not add up', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: mapPageEntries }), fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 256 }), (count, picks) => {
      const indexes = [...new Set(picks.map((p) => p % count))].sort((a, b) => a - b).slice(0, 256);
      const base = Buffer.alloc(count * 32, 3);
      const ids = Buffer.concat(indexes.map((i) => sha256(Buffer.from([i & 255, i >> 8]))));
      const page = encodeLeafPatch(count, sha256(base), indexes, ids);
      const decoded = decodeMapPage(page, { level: 0, count }, 'p');
      if (decoded.kind !== 'patch') throw new Error('kind');
      expect(decoded.baseId.equals(sha256(base))).toBe(true);
      const leaf = applyLeafPatch(base, decoded.patches, 'p');
      indexes.forEach((i, k) => expect(leaf.subarray(i * 32, i * 32 + 32).equals(ids.subarray(k * 32, k * 32 + 32))).toBe(true));
      expect(() => decodeMapPage(page.subarray(0, page.length - 1), { level: 0, count }, 'p')).toThrow(/p: leaf patch of \d+ entries in \d+ bytes/);
    }), { numRuns: 50 });
    const entry = (index: number) => Buffer.concat([Buffer.from(Uint32Array.of(index).buffer), Buffer.alloc(32, 1)]);
    expect(() => applyLeafPatch(Buffer.alloc(4 * 32), Buffer.concat([entry(2), entry(1)]), 'q')).toThrow(/q: leaf patch entry 1 out of order or range/);
    expect(() => applyLeafPatch(Buffer.alloc(4 * 32), entry(4), 'q')).toThrow(/out of order or range/);
  });
});

describe('paged restore points', () => {
  it('round-trip their root', () => {
    for (const chunks of [0, 1, 1024, 1025, 3 * 1024 * 1024 + 5]) {
      const { height, rootEntries } = mapShape(chunks);
      const root = Buffer.concat(Array.from({ length: rootEntries }, (_, i) => (i % 2 ? Buffer.alloc(32) : sha256(Buffer.from([i])))));
      const decoded = decodePoint(encodePoint(pagedHeader(chunks, root), { kind: 'paged', height, root }), 't');
      expect(decoded.body).toEqual({ kind: 'paged', height, root });
    }
  });

  it('refuse a root of the wrong height or length, and a map claiming more chunks than the disk has', () => {
    const root = Buffer.alloc(2 * 32, 1);
    const good = encodePoint(pagedHeader(1025, root), { kind: 'paged', height: 1, root });
    const tall = Buffer.from(good);
    tall.writeUInt8(2, 13);
    expect(() => decodePoint(resealed(tall), 'x.point')).toThrow(/x.point: map root has height 2 and 2 entries; 1025 chunks need height 1 and 2/);
    // One more root entry than the disk has pages: the entry count and the file size agree, the header does not.
    const header = pagedHeader(1025, root);
    const long = encodePoint({ ...header, chunksTotal: 2049, sizeBytes: 2049 * 65536 }, { kind: 'paged', height: 1, root: Buffer.alloc(3 * 32, 1) });
    const text = JSON.stringify({ ...header, chunksTotal: 2049, sizeBytes: 2049 * 65536 });
    const at = long.indexOf(Buffer.from(text));
    const lying = Buffer.from(long);
    Buffer.from(JSON.stringify({ ...header, chunksTotal: 2049 }).padEnd(text.length)).copy(lying, at);
    expect(() => decodePoint(resealed(lying), 'y.point')).toThrow(/y.point: the map claims 2049 chunks; a disk of 67174383 bytes at 65536-byte chunks has 1025/);
  });
});
