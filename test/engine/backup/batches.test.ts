import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readBatches } from '../../../engine/backup/batches.js';
import type { Source } from '../../../engine/source/source.js';

function memorySource(bytes: Uint8Array, extents: Array<[number, number]> | null, stream = false): Source & { reads: number } {
  const src = {
    description: 'memory', sizeBytes: stream ? null : bytes.length, dataExtents: extents, reads: 0,
    async read(into: Uint8Array, offset: number) {
      src.reads += 1;
      const n = Math.min(into.length, bytes.length - offset);
      into.set(bytes.subarray(offset, offset + n));
      return Math.max(0, n);
    },
    async close() {},
  };
  return src;
}

async function reassemble(source: Source, chunkBytes: number, batchChunks: number, size: number) {
  const out = new Uint8Array(size);
  let chunks = 0;
  for await (const b of readBatches(source, chunkBytes, batchChunks)) {
    expect(b.firstChunk).toBe(chunks);
    if ('hole' in b) {
      chunks += b.chunks;
      continue;
    }
    let at = 0;
    for (const c of b.readChunks) {
      const length = b.chunkLengths[c];
      out.set(b.data.subarray(at, at + length), (b.firstChunk + c) * chunkBytes);
      at += length;
    }
    chunks += b.chunkLengths.length;
  }
  return { out, chunks };
}

describe('readBatches', () => {
  it('covers every byte of the source in fixed, disk-aligned chunks (file or stream)', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), async (size, batchChunks, stream) => {
      const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 255);
      const { out, chunks } = await reassemble(memorySource(bytes, null, stream), 256, batchChunks, size);
      expect(chunks).toBe(Math.ceil(size / 256));
      expect(out).toEqual(bytes);
    }), { numRuns: 60 });
  });

  it('does not read chunks that lie entirely in holes', async () => {
    const size = 64 * 1024;
    const bytes = new Uint8Array(size);
    bytes.fill(9, 5000, 6000);
    bytes.fill(7, 40000, 40010);
    const source = memorySource(bytes, [[5000, 6000], [40000, 40010]]);
    const { out } = await reassemble(source, 1024, 16, size);
    expect(out).toEqual(bytes);
    let read = 0;
    const holes: Array<[number, number]> = [];
    for await (const b of readBatches(memorySource(bytes, [[5000, 6000], [40000, 40010]]), 1024, 16)) {
      if ('hole' in b) holes.push([b.firstChunk, b.chunks]);
      else read += b.bytesRead;
    }
    expect(read).toBe(3 * 1024); // chunks 4, 5 and 39 only
    // A hole of a batch or more passes as one run, not batch by batch: chunks 16-38 (chunks 55-63 are less than a batch).
    expect(holes).toEqual([[16, 23]]);
  });

  it('names the offset when the source shrinks under it', async () => {
    const source = memorySource(new Uint8Array(3000), null);
    (source as { sizeBytes: number }).sizeBytes = 5000;
    await expect(async () => { for await (const _ of readBatches(source, 1024, 2)) void _; }).rejects.toThrow(/ended at offset 3000, but was 5000 bytes/);
  });
});
