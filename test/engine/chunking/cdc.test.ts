import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { alignedCdcChunks, AlignedCdcScanner, alignBytes, blockHash } from '../../../engine/chunking/aligned-cdc.js';
import { fastCdcChunks, FastCdcScanner, type CdcBounds } from '../../../engine/chunking/fastcdc.js';
import { gearTable, spreadMask } from '../../../engine/chunking/gear.js';
import { BlockvaultError } from '../../../engine/core/errors.js';

/** Deterministic pseudo-random bytes, with repeats (real data repeats): AES-free, a hash chain. */
function bytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < length; at += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, at, 0, Math.min(32, length - at));
  }
  return out;
}

const cuts = (lengths: number[]) => { let at = 0; return lengths.map((n) => (at += n)); };
const small: CdcBounds = { minBytes: 512, avgBytes: 2048, maxBytes: 8192 };
const aligned: CdcBounds = { minBytes: 16384, avgBytes: 65536, maxBytes: 262144 };

describe('gear table and masks', () => {
  it('are fixed: a change would move every cut point of every CDC repository', () => {
    // Golden values: splitmix32 from seed 0x62763031 (docs/FORMAT.md will carry them with the CDC point kind).
    expect(gearTable[0].toString(16)).toBe('9d9fb5d8');
    expect(gearTable[255].toString(16)).toBe('e6ba529a');
    expect(createHash('sha256').update(Buffer.from(gearTable.buffer)).digest('hex').slice(0, 16)).toBe('dc4db4a3ec2b8cbf');
    expect(spreadMask(4).toString(16)).toBe('aa000000');
    expect(spreadMask(18).toString(16)).toBe('faaaaaaa');
    expect(() => spreadMask(0)).toThrow(BlockvaultError);
  });
});

describe('FastCDC', () => {
  it('cuts a stream fed in any pieces exactly like one buffer, within the bounds', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 60000 }), fc.array(fc.integer({ min: 1, max: 9000 }), { maxLength: 20 }), fc.string(), (length, pieces, seed) => {
      const data = bytes(seed, length);
      const whole = fastCdcChunks(data, small);
      const scanner = new FastCdcScanner(small);
      const streamed: number[] = [];
      let at = 0;
      for (const p of pieces) { streamed.push(...scanner.push(data.subarray(at, at + p))); at = Math.min(length, at + p); }
      streamed.push(...scanner.push(data.subarray(at)));
      const last = scanner.finish();
      if (last > 0) streamed.push(last);
      expect(streamed).toEqual(whole);
      expect(whole.reduce((a, b) => a + b, 0)).toBe(length);
      whole.slice(0, -1).forEach((n) => { expect(n).toBeGreaterThanOrEqual(small.minBytes); expect(n).toBeLessThanOrEqual(small.maxBytes); });
    }), { numRuns: 60 });
  });

  it('finds the same cuts after an insertion in front (a shifted stream dedups)', () => {
    const data = bytes('shift', 400_000);
    const base = new Set(cuts(fastCdcChunks(data, small)));
    for (const shift of [1, 512, 4095]) {
      const moved = cuts(fastCdcChunks(Buffer.concat([bytes(`front${shift}`, shift), data]), small)).map((c) => c - shift);
      const shared = moved.filter((c) => base.has(c)).length;
      expect(shared / base.size).toBeGreaterThan(0.9);
    }
  });

  it('averages near its average size on random data', () => {
    const lengths = fastCdcChunks(bytes('avg', 2_000_000), small);
    const mean = 2_000_000 / lengths.length;
    expect(mean).toBeGreaterThan(small.avgBytes * 0.7);
    expect(mean).toBeLessThan(small.avgBytes * 1.6);
  });

  it('refuses bounds that contradict each other, by value', () => {
    expect(() => new FastCdcScanner({ minBytes: 4096, avgBytes: 3000, maxBytes: 8192 })).toThrow(/average chunk size 3000/);
    expect(() => new FastCdcScanner({ minBytes: 8192, avgBytes: 4096, maxBytes: 16384 })).toThrow(/min 8192, average 4096/);
    expect(() => new FastCdcScanner({ minBytes: 512, avgBytes: 4096, maxBytes: 8 * 1024 * 1024 })).toThrow(/max 8388608/);
  });
});

describe('aligned CDC', () => {
  /** A disk-like image: `files` laid at block offsets, zeros between. */
  function disk(files: Buffer[], gapsBlocks: number[]): Buffer {
    const parts: Buffer[] = [];
    files.forEach((f, i) => { parts.push(Buffer.alloc(gapsBlocks[i] * alignBytes), f); });
    return Buffer.concat(parts);
  }

  it('cuts only between 4 KiB blocks, streamed in any block pieces like one buffer, within the bounds', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 4095 }), fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 12 }), (blocks, tail, pieces) => {
      const data = bytes(`a${blocks}`, blocks * alignBytes + tail);
      const whole = alignedCdcChunks(data, aligned);
      expect(whole.reduce((a, b) => a + b, 0)).toBe(data.length);
      whole.slice(0, -1).forEach((n) => { expect(n % alignBytes).toBe(0); expect(n).toBeGreaterThanOrEqual(aligned.minBytes); expect(n).toBeLessThanOrEqual(aligned.maxBytes); });
      const scanner = new AlignedCdcScanner(aligned);
      const streamed: number[] = [];
      let at = 0;
      for (const p of pieces) { const end = Math.min(blocks * alignBytes, at + p * alignBytes); streamed.push(...scanner.push(data.subarray(at, end))); at = end; }
      streamed.push(...scanner.push(data.subarray(at)));
      const last = scanner.finish();
      if (last > 0) streamed.push(last);
      expect(streamed).toEqual(whole);
    }), { numRuns: 40 });
  });

  it('gives the same chunks for the same files at other block offsets', () => {
    const files = [bytes('f1', 700_000), bytes('f2', 1_300_000), bytes('f3', 450_000)].map((f) => f.subarray(0, f.length - (f.length % alignBytes)));
    const chunkSet = (img: Buffer) => {
      const set = new Set<string>();
      let at = 0;
      for (const n of alignedCdcChunks(img, aligned)) { set.add(createHash('sha256').update(img.subarray(at, at + n)).digest('hex')); at += n; }
      return set;
    };
    const a = chunkSet(disk(files, [3, 50, 7]));
    const b = chunkSet(disk([files[1], files[0], files[2]], [129, 1, 33])); // reordered, other offsets
    const shared = [...b].filter((h) => a.has(h)).length;
    expect(shared / b.size).toBeGreaterThan(0.75);
  });

  it('hashes a block as docs/FORMAT.md says (golden value)', () => {
    const block = Uint8Array.from({ length: alignBytes }, (_, i) => i % 251);
    expect(blockHash(new Uint32Array(block.buffer), 0).toString(16)).toBe('7e423daa');
  });

  it('cuts unread zero blocks (a hole) exactly as it cuts the zeros read', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 100 }), (before, zeros, after) => {
      const head = bytes(`h${before}`, before * alignBytes);
      const tail = bytes(`t${after}`, after * alignBytes);
      const read = alignedCdcChunks(Buffer.concat([head, Buffer.alloc(zeros * alignBytes), tail]), aligned);
      const s = new AlignedCdcScanner(aligned);
      const skipped = [...s.push(head), ...s.pushZeroBlocks(zeros), ...s.push(tail)];
      const last = s.finish();
      expect(last > 0 ? [...skipped, last] : skipped).toEqual(read);
    }), { numRuns: 40 });
  });

  it('never cuts inside a run of zero blocks before the maximum', () => {
    const lengths = alignedCdcChunks(Buffer.alloc(2 * 1024 * 1024), aligned);
    expect(lengths.every((n) => n === aligned.maxBytes)).toBe(true);
  });

  it('refuses unaligned or contradicting bounds, and bytes after a partial block', () => {
    expect(() => new AlignedCdcScanner({ minBytes: 10000, avgBytes: 65536, maxBytes: 262144 })).toThrow(/multiples of 4096/);
    expect(() => new AlignedCdcScanner({ minBytes: 131072, avgBytes: 65536, maxBytes: 262144 })).toThrow(/min 131072, average 65536/);
    const s = new AlignedCdcScanner(aligned);
    s.push(Buffer.alloc(5000, 1));
    expect(() => s.push(Buffer.alloc(4096, 1))).toThrow(/after a partial block/);
  });
});
