import { describe, expect, it } from 'vitest';
import { ChunkCache } from '../../../engine/read/chunk-cache.js';

const slot = 64 * 1024;

function landFilled(cache: ChunkCache, key: string, fill: number): void {
  const at = cache.begin(key);
  expect(at).toBeGreaterThanOrEqual(0);
  // stands in for a worker decoding into the slab
  (cache as unknown as { bytes: Uint8Array }).bytes.fill(fill, at, at + slot);
  cache.land(key, slot);
}

describe('ChunkCache', () => {
  it('evicts the least recently used chunk when a slot is needed', () => {
    const cache = new ChunkCache(3 * slot, slot);
    landFilled(cache, 'a', 1);
    landFilled(cache, 'b', 2);
    landFilled(cache, 'c', 3);
    expect(cache.peek('a')![0]).toBe(1); // a is now the most recently used
    landFilled(cache, 'd', 4);
    expect(cache.has('b')).toBe(false);
    expect([cache.peek('a')![0], cache.peek('c')![0], cache.peek('d')![0]]).toEqual([1, 3, 4]);
  });

  it('hands a chunk to its waiters when it lands, and its failure too', () => {
    const cache = new ChunkCache(2 * slot, slot);
    const got: Array<number | string> = [];
    cache.begin('x');
    cache.wait('x', (bytes) => got.push(bytes!.length));
    cache.wait('x', (bytes) => got.push(bytes!.length));
    expect(cache.isFilling('x')).toBe(true);
    cache.land('x', 1000);
    cache.begin('y');
    cache.wait('y', (_bytes, err) => got.push(err!.message));
    cache.fail('y', new Error('damaged'));
    expect(got).toEqual([1000, 1000, 'damaged']);
    expect(cache.has('x')).toBe(true);
    expect(cache.has('y')).toBe(false);
    expect(cache.begin('z')).toBeGreaterThanOrEqual(0); // y's slot came back
  });

  it('never evicts a slot being filled; with none free, a chunk is delivered uncached', () => {
    const cache = new ChunkCache(2 * slot, slot);
    expect(cache.begin('p')).toBeGreaterThanOrEqual(0);
    expect(cache.begin('q')).toBeGreaterThanOrEqual(0);
    expect(cache.begin('r')).toBe(-1);
    let seen = 0;
    cache.wait('r', (bytes) => (seen = bytes![0]));
    cache.land('r', 3, Uint8Array.of(9, 9, 9));
    expect(seen).toBe(9);
    expect(cache.has('r')).toBe(false);
  });

  it('refuses a second fetch of a chunk in flight (a bug, not an operating error)', () => {
    const cache = new ChunkCache(2 * slot, slot);
    cache.begin('k');
    expect(() => cache.begin('k')).toThrow(/already cached or in flight/);
    expect(() => cache.wait('nope', () => undefined)).toThrow(/not in flight/);
  });
});
