import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, sha256 } from '../../../engine/core/digest.js';
import { applyDelta, decodePoint, diffMaps, encodePoint, type PointHeader } from '../../../engine/format/point-format.js';

function header(map: Buffer, extra: Partial<PointHeader> = {}): PointHeader {
  const chunksTotal = map.length / 32;
  return {
    id: 'ab'.repeat(16), vm: 'web01', disk: 'sda', time: '2026-11-22T01:00:00.000Z',
    sizeBytes: chunksTotal * 65536, chunkBytes: 65536, chunksTotal, parent: null, base: null, chainDepth: 0,
    mapSha256: sha256(map).toString('hex'), source: { path: 'x' }, stats: { bytesNew: 1 }, ...extra,
  };
}

const mapArb = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 200 })
  .map((xs) => Buffer.concat(xs.map((x) => (x === 0 ? Buffer.alloc(32) : sha256(Buffer.from([x]))))));

beforeAll(initDigests);

describe('restore point format', () => {
  it('round-trips full maps', () => {
    fc.assert(fc.property(mapArb, (map) => {
      const decoded = decodePoint(encodePoint(header(map), { kind: 'full', map }), 't');
      expect(decoded.body).toEqual({ kind: 'full', map });
      expect(decoded.header).toEqual(header(map));
    }));
  });

  it('a delta applied to its base gives back the new map', () => {
    fc.assert(fc.property(mapArb, fc.array(fc.nat(), { maxLength: 30 }), (base, touched) => {
      const map = Buffer.from(base);
      for (const t of touched) sha256(Buffer.from(String(t))).copy(map, (t % (map.length / 32)) * 32);
      const delta = diffMaps(base, map);
      const bytes = encodePoint(header(map, { base: 'cd'.repeat(16), chainDepth: 1 }), { kind: 'delta', ...delta });
      const decoded = decodePoint(bytes, 't');
      if (decoded.body.kind !== 'delta') throw new Error('kind');
      expect(applyDelta(Buffer.from(base), decoded.body, 't')).toEqual(map);
      expect(decoded.body.count).toBeLessThanOrEqual(new Set(touched.map((t) => t % (map.length / 32))).size);
    }));
  });

  it('refuses delta entries out of order or past the end of the map', () => {
    const base = Buffer.alloc(4 * 32);
    const entry = (index: number) => Buffer.concat([Buffer.from(Uint32Array.of(index).buffer), Buffer.alloc(32, 1)]);
    expect(() => applyDelta(base, { count: 2, entries: Buffer.concat([entry(2), entry(1)]) }, 'p.point')).toThrow(/p.point: delta entry 1 out of order/);
    expect(() => applyDelta(base, { count: 1, entries: entry(4) }, 'p.point')).toThrow(/out of order or range/);
  });

  it('detects a flipped bit anywhere in the file', () => {
    const map = Buffer.concat([sha256(Buffer.from('a')), Buffer.alloc(32)]);
    const bytes = encodePoint(header(map), { kind: 'full', map });
    fc.assert(fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
      const copy = Buffer.from(bytes);
      copy[bit >> 3] ^= 1 << (bit & 7);
      expect(() => decodePoint(copy, 'p.point')).toThrow(/p.point/);
    }));
  });

  it('a delta of 2% random changes costs under 10% of the full map', () => {
    const chunks = 16384;
    const base = Buffer.concat(Array.from({ length: chunks }, (_, i) => sha256(Buffer.from(`c${i}`))));
    const map = Buffer.from(base);
    for (let i = 0; i < chunks * 0.02; i++) sha256(Buffer.from(`n${i}`)).copy(map, ((i * 7919) % chunks) * 32);
    const full = encodePoint(header(map), { kind: 'full', map }).length;
    const delta = encodePoint(header(map, { base: 'cd'.repeat(16), chainDepth: 1 }), { kind: 'delta', ...diffMaps(base, map) }).length;
    expect(delta / full).toBeLessThan(0.1);
  });
});
