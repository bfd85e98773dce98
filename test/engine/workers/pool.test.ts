import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { initDigests, sha256, xxh64 } from '../../../engine/core/digest.js';
import { codecRaw, codecZstd } from '../../../engine/format/pack-format.js';
import { WorkerPool, workersFor } from '../../../engine/workers/pool.js';

describe('workersFor', () => {
  it('starts one worker per 32 MiB of planned reading, at least one, at most one per core, all for a stream', () => {
    expect(workersFor(0, 8)).toBe(1);
    expect(workersFor(20e6, 8)).toBe(1);
    expect(workersFor(32 * 1024 * 1024 + 1, 8)).toBe(2);
    expect(workersFor(10 * 1024 ** 3, 8)).toBe(8);
    expect(workersFor(null, 8)).toBe(8);
    expect(workersFor(null, 0)).toBe(1);
  });
});

describe('WorkerPool slabs', () => {
  it('hashes and compresses in place in shared slabs, also on a worker started after the slab was shared', async () => {
    await initDigests();
    const pool = new WorkerPool(1);
    try {
      const input = new SharedArrayBuffer(3 * 4096);
      const output = new SharedArrayBuffer(3 * 4096);
      const [inId, outId] = [await pool.shareSlab(input), await pool.shareSlab(output)];
      pool.grow(2); // the new worker must learn both slabs before it takes a request
      const chunks = [randomBytes(4096), Buffer.alloc(4096), Buffer.alloc(4096, 7)];
      new Uint8Array(input).set(Buffer.concat(chunks));
      const replies = await Promise.all([0, 1, 2, 3].map(() => pool.slabHash({ input: { slab: inId, offset: 0 }, chunkLengths: [4096, 4096, 4096], compress: { level: 1, output: { slab: outId, offset: 0 } } })));
      for (const reply of replies) {
        const ids = Buffer.from(reply.ids);
        expect(ids.subarray(0, 32)).toEqual(sha256(chunks[0]));
        expect(ids.subarray(32, 64)).toEqual(Buffer.alloc(32));
        expect(ids.subarray(64, 96)).toEqual(sha256(chunks[2]));
        // Two non-zero chunks compressed: the random one stored raw, the constant one by zstd.
        expect(reply.compressed!.codecs).toEqual([codecRaw, codecZstd]);
        expect(reply.compressed!.storedBytes[0]).toBe(4096);
        expect(Buffer.from(output, 0, 4096)).toEqual(chunks[0]);
      }
      const only = await pool.slabCompress({ input: { slab: inId, offset: 0 }, ranges: [8192, 4096], level: 1, output: { slab: outId, offset: 4096 } });
      expect(only.codecs).toEqual([codecZstd]);
      expect(only.storedXxh64[0]).toBe(xxh64(new Uint8Array(output, 4096, only.storedBytes[0])));
      // Forgotten by every worker once unshared: a pool outlives each backup and must not keep its slabs.
      await pool.unshareSlab(inId);
      await expect(pool.slabHash({ input: { slab: inId, offset: 0 }, chunkLengths: [4096], compress: null })).rejects.toThrow(/never registered/);
    } finally {
      await pool.close();
    }
  });
});
