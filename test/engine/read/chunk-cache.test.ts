import { describe, expect, it } from 'vitest';
import { ChunkCache } from '../../../engine/read/chunk-cache.js';

const KiB = 1024;

describe('ChunkCache', () => {
  it('charges the whole batch buffer while any of its chunks is cached', () => {
    const cache = new ChunkCache(300 * KiB);
    const batchA = new Uint8Array(256 * KiB); // four 64 KiB chunks
    for (let i = 0; i < 4; i++) cache.put(`a${i}`, batchA.subarray(i * 64 * KiB, (i + 1) * 64 * KiB));
    expect(cache.get('a0')).toBeDefined();
    // a second batch does not fit beside the first: all of A's chunks go (LRU order), B stays
    const batchB = new Uint8Array(128 * KiB);
    cache.put('b0', batchB.subarray(0, 64 * KiB));
    cache.put('b1', batchB.subarray(64 * KiB));
    expect(['a0', 'a1', 'a2', 'a3'].map((k) => cache.get(k))).toEqual([undefined, undefined, undefined, undefined]);
    expect(cache.get('b0')).toBeDefined();
    expect(cache.get('b1')).toBeDefined();
  });

  it('evicts least recently used first', () => {
    const cache = new ChunkCache(3 * 64 * KiB);
    for (const k of ['x', 'y', 'z']) cache.put(k, new Uint8Array(64 * KiB));
    cache.get('x');
    cache.put('w', new Uint8Array(64 * KiB));
    expect(cache.get('y')).toBeUndefined();
    expect(cache.get('x')).toBeDefined();
    expect(cache.get('z')).toBeDefined();
  });

  it('shares one fetch per chunk while it is in flight', async () => {
    const cache = new ChunkCache(KiB * KiB);
    let resolve!: (b: Uint8Array) => void;
    const fetch = cache.track('k', new Promise<Uint8Array>((r) => (resolve = r)));
    expect(cache.pending('k')).toBe(fetch);
    resolve(new Uint8Array(4));
    await fetch;
    await new Promise((r) => setTimeout(r, 0));
    expect(cache.pending('k')).toBeUndefined();
  });
});
