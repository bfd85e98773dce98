import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkRanges, parseExtents } from '../../../engine/cbt/extents-file.js';

const disk = 1 << 30;

describe('changed-extents files', () => {
  it('accepts the QueryChangedDiskAreas shapes', () => {
    const list = [{ start: 0, length: 4096 }, { start: 65536, length: 10 }];
    expect(parseExtents(JSON.stringify(list), 'c.json', disk).extents).toEqual(list);
    expect(parseExtents(JSON.stringify({ startOffset: 0, changedArea: list }), 'c.json', disk).extents).toEqual(list);
    expect(parseExtents('[]', 'c.json', disk).extents).toEqual([]);
  });

  it('refuses bad lists, naming the file and the entry', () => {
    const cases: Array<[string, RegExp]> = [
      ['{not json', /c.json: not valid JSON/],
      ['{"x": 1}', /expected an array/],
      ['[{"start": -1, "length": 5}]', /extent 0 must have integer "start" >= 0/],
      ['[{"start": 0, "length": 0}]', /extent 0 must have/],
      ['[{"start": 1.5, "length": 2}]', /extent 0 must have/],
      ['[{"start": 100, "length": 10}, {"start": 50, "length": 10}]', /extent 1 \(start 50\) overlaps or precedes extent 0/],
      ['[{"start": 0, "length": 100}, {"start": 99, "length": 10}]', /extent 1 \(start 99\) overlaps/],
      [`[{"start": ${disk - 5}, "length": 10}]`, /extent 0 .* runs past the end of the disk/],
    ];
    for (const [text, message] of cases) expect(() => parseExtents(text, 'c.json', disk), text).toThrow(message);
  });

  it('rounds extents out to exactly the chunks they touch', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(2000), fc.integer({ min: 1, max: 3000 })), { maxLength: 20 }), (raw) => {
      const extents: Array<{ start: number; length: number }> = [];
      let at = 0;
      for (const [gap, length] of raw) {
        extents.push({ start: at + gap, length });
        at += gap + length;
      }
      const ranges = chunkRanges(extents, 512);
      const touched = new Set<number>();
      for (const e of extents) for (let b = e.start; b < e.start + e.length; b++) touched.add(Math.floor(b / 512));
      const covered = new Set<number>();
      for (const [f, e] of ranges) for (let c = f; c < e; c++) covered.add(c);
      expect(covered).toEqual(touched);
      ranges.forEach((r, i) => i > 0 && expect(r[0]).toBeGreaterThan(ranges[i - 1][1]));
    }));
  });
});
