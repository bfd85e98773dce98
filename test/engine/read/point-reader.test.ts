// The random-access reader on a real repository: every read pattern returns
// the bytes backed up, however small the cache (slots reused while others
// are in flight, chunks delivered uncached when no slot is free).
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChunkCache } from '../../../engine/read/chunk-cache.js';
import { PointReader } from '../../../engine/read/point-reader.js';
import { Repository } from '../../../engine/repo/repository.js';
import { backupFile, newRepo, sharedPool } from '../../helpers/repo.js';
import { tempDir } from '../../helpers/temp.js';

const MiB = 1024 * 1024;

describe('PointReader', async () => {
  const dir = tempDir();
  const image = join(dir, 'disk.raw');
  const sizeBytes = 24 * MiB + 12_345; // a short last chunk
  const fd = openSync(image, 'w');
  writeSync(fd, Buffer.alloc(1), 0, 1, sizeBytes - 1);
  for (let at = 0; at < sizeBytes - MiB; at += 3 * MiB) writeSync(fd, randomBytes(2 * MiB), 0, 2 * MiB, at); // data, holes between
  writeSync(fd, Buffer.alloc(MiB, 7), 0, MiB, 20 * MiB); // repeated chunks
  closeSync(fd);
  const original = readFileSync(image);
  const root = await newRepo();
  await backupFile(root, 'vm', 'sda', image);

  async function withReader(cacheBytes: number, use: (r: PointReader) => Promise<void>): Promise<void> {
    const repo = await Repository.open(root);
    try {
      const entry = repo.points.list()[0];
      const reader = new PointReader(repo, sharedPool(), await repo.points.open(entry), new ChunkCache(cacheBytes, repo.config.chunkBytes), 'test');
      await use(reader);
    } finally {
      await repo.close();
    }
  }

  for (const [label, cacheBytes] of [['a roomy cache', 64 * MiB], ['a 4-slot cache', 4 * 64 * 1024], ['no cache', 0]] as const) {
    it(`returns the backed-up bytes for concurrent sequential and random reads, with ${label}`, async () => {
      await withReader(cacheBytes, async (reader) => {
        const sequential = async () => {
          for (let at = 0; at < sizeBytes; at += 128 * 1024) {
            const got = await reader.readAt(at, 128 * 1024);
            expect(got.equals(original.subarray(at, at + 128 * 1024))).toBe(true);
          }
        };
        const random = async (seed: number) => {
          for (let i = 0; i < 150; i++) {
            seed = (seed * 1103515245 + 12345) % 2 ** 31;
            const at = seed % sizeBytes;
            const length = 1 + (seed % 300_000);
            const got = await reader.readAt(at, length);
            expect(got.equals(original.subarray(at, at + length))).toBe(true);
          }
        };
        // requests from several "FUSE threads" at once, as the mount sees them
        await Promise.all([sequential(), random(1), random(2), random(3)]);
      });
    });
  }
});
