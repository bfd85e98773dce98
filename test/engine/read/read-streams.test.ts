import { describe, expect, it } from 'vitest';
import { ReadStreams, streamSlackBytes, streamsMax } from '../../../engine/read/read-streams.js';

const chunk = 64 * 1024;
const req = 128 * 1024; // what the kernel asks FUSE for
const streams = () => new ReadStreams(chunk, 1 << 20, 256, 32);

/** Total chunks prefetched over a run of reads. */
function prefetched(s: ReadStreams, offsets: number[]): number {
  return offsets.reduce((n, o) => { const r = s.onRead(o, o + req); return n + Math.max(0, r.last - r.first + 1); }, 0);
}

describe('ReadStreams', () => {
  it('prefetches ahead of a sequential reader in large strides', () => {
    const s = streams();
    const ranges = Array.from({ length: 400 }, (_, i) => s.onRead(i * req, (i + 1) * req)).filter((r) => r.first <= r.last);
    expect(ranges.length).toBeGreaterThan(10);
    expect(ranges.slice(8).every((r) => r.last - r.first + 1 >= 32)).toBe(true); // full-size batches once the window is open
    // never prefetches a chunk twice, never more than the window ahead
    for (let i = 1; i < ranges.length; i++) expect(ranges[i].first).toBe(ranges[i - 1].last + 1);
    expect(ranges[ranges.length - 1].last).toBeLessThanOrEqual((400 * req) / chunk + 256);
  });

  it('prefetches a stride at the first read from the start of the disk, and nothing at a first read elsewhere', () => {
    expect(streams().onRead(0, req)).toEqual({ first: 2, last: 33 });
    expect(streams().onRead(5 * req, 6 * req)).toEqual({ first: 1, last: 0 });
    const tiny = new ReadStreams(chunk, 10, 256, 32);
    expect(tiny.onRead(0, req)).toEqual({ first: 2, last: 9 });
  });

  it('keeps streaming when FUSE threads deliver requests out of order', () => {
    const inOrder = Array.from({ length: 256 }, (_, i) => i * req);
    const shuffled = [...inOrder];
    for (let i = 0; i + 3 < shuffled.length; i += 4) [shuffled[i], shuffled[i + 2]] = [shuffled[i + 2], shuffled[i]];
    expect(prefetched(streams(), shuffled)).toBeGreaterThanOrEqual(prefetched(streams(), inOrder) - 64);
  });

  it('follows interleaved readers as separate streams', () => {
    const s = streams();
    const far = 1 << 30;
    const offsets = Array.from({ length: 200 }, (_, i) => [i * req, far + i * req]).flat();
    expect(prefetched(s, offsets)).toBeGreaterThan(2 * 150 * 2); // both streams run ahead of their reads
  });

  it('does not prefetch for random reads', () => {
    const s = streams();
    let seed = 7;
    const offsets = Array.from({ length: 500 }, () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return Math.floor(seed / 2 ** 31 * 2 ** 16) * (1 << 20); });
    expect(prefetched(s, offsets)).toBeLessThan(20);
  });

  it('forgets the least recently used stream beyond streamsMax', () => {
    const s = streams();
    const gap = 4 * streamSlackBytes;
    for (let k = 0; k <= streamsMax; k++) s.onRead(k * gap, k * gap + req); // stream 0 is evicted by the last one
    expect(s.onRead(req, 2 * req)).toEqual({ first: 1, last: 0 }); // starts over: no prefetch
    expect(s.onRead(streamsMax * gap + req, streamsMax * gap + 2 * req).last).toBeGreaterThan(0); // the newest continues
  });

  it('stops at the end of the disk', () => {
    const s = new ReadStreams(chunk, 100, 256, 32);
    let last = 0;
    for (let o = 0; o < 100 * chunk; o += req) last = Math.max(last, s.onRead(o, Math.min(o + req, 100 * chunk)).last);
    expect(last).toBe(99);
  });
});
