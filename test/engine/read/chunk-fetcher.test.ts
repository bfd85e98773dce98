// Fetching chunks from a real repository. What each level of checking
// catches: damage on disk always, a chunk stored under the wrong id only with
// the SHA-256 content check (restore and verify; the mount opts in). And the
// mount's fetches leaving pack bytes out of the page cache (checked with fincore).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, xxh64 } from '../../../engine/core/digest.js';
import { codecRaw } from '../../../engine/format/pack-format.js';
import { ChunkFetcher } from '../../../engine/read/chunk-fetcher.js';
import { PackWriter } from '../../../engine/repo/pack-writer.js';
import { Repository } from '../../../engine/repo/repository.js';
import { residentBytes } from '../../helpers/page-cache.js';
import { newRepo, sharedPool } from '../../helpers/repo.js';

describe('ChunkFetcher', async () => {
  const root = await newRepo();
  const good = Buffer.alloc(4096, 1);
  const claimed = Buffer.alloc(4096, 2);
  const stored = Buffer.alloc(4096, 3);
  {
    // A writer bug: `stored` filed under the id of `claimed`, every stored checksum consistent.
    const repo = await Repository.open(root, { writer: { what: 'test', lockWaitSeconds: 5 } });
    const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 1024 * 1024);
    const raw = (id: Buffer, payload: Buffer) => ({ id, codec: codecRaw, rawBytes: payload.length, storedBytes: payload.length, storedXxh64: xxh64(payload), payload });
    await writer.append([raw(sha256(good), good), raw(sha256(claimed), stored)]);
    await writer.seal();
    await repo.close();
  }

  async function fetch(checkContent: boolean) {
    const repo = await Repository.open(root);
    try {
      return await new ChunkFetcher(repo, sharedPool(), { checkContent }).fetch([sha256(good), sha256(claimed)]);
    } finally {
      await repo.close();
    }
  }

  it('with the content check, reports the chunk whose bytes do not hash to its id', async () => {
    const result = await fetch(true);
    expect(result.output.subarray(0, 4096).equals(good)).toBe(true);
    expect([...result.problems.keys()]).toEqual([1]);
    expect(result.problems.get(1)).toMatchObject({ code: 'CHECKSUM_MISMATCH', reason: 'decoded bytes do not match the chunk id (SHA-256)' });
  });

  it('without it, trusts stored bytes that pass their checksums', async () => {
    const result = await fetch(false);
    expect(result.problems.size).toBe(0);
    expect(result.output.equals(Buffer.concat([good, stored]))).toBe(true);
  });
});

describe('ChunkFetcher with dropPackCache (the mount)', async () => {
  const root = await newRepo({ packBytesTarget: 64 * 1024 * 1024 });
  const chunks = Array.from({ length: 32 }, () => randomBytes(64 * 1024));
  {
    const repo = await Repository.open(root, { writer: { what: 'test', lockWaitSeconds: 5 } });
    const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 64 * 1024 * 1024);
    await writer.append(chunks.map((c) => ({ id: sha256(c), codec: codecRaw, rawBytes: c.length, storedBytes: c.length, storedXxh64: xxh64(c), payload: c })));
    await writer.seal(); // fsynced: its pages are clean, so they can be dropped
    await repo.close();
  }
  const pack = (dir: string): string => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) return pack(p);
      if (e.name.endsWith('.pack')) return p;
    }
    throw new Error('no pack');
  };

  for (const dropPackCache of [false, true]) {
    it(dropPackCache ? 'lets the pack bytes it read leave the page cache' : 'without it, leaves them cached', async () => {
      const path = pack(join(root, 'packs'));
      readFileSync(path); // all of the pack in the page cache
      expect(residentBytes(path)).toBeGreaterThan(2 * 1024 * 1024);
      const repo = await Repository.open(root);
      try {
        const result = await new ChunkFetcher(repo, sharedPool(), { dropPackCache }).fetch(chunks.map((c) => sha256(c)));
        expect(result.output.equals(Buffer.concat(chunks))).toBe(true);
      } finally {
        await repo.close();
      }
      if (dropPackCache) expect(residentBytes(path)).toBeLessThan(64 * 1024); // at most the pages holding the header and trailer
      else expect(residentBytes(path)).toBeGreaterThan(2 * 1024 * 1024);
    });
  }
});
