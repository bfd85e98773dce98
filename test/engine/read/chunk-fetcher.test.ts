// What each level of checking catches when chunks are fetched from a real
// repository: damage on disk always, a chunk stored under the wrong id only
// with the SHA-256 content check (restore and verify; the mount opts in).
import { describe, expect, it } from 'vitest';
import { sha256, xxh64 } from '../../../engine/core/digest.js';
import { codecRaw } from '../../../engine/format/pack-format.js';
import { ChunkFetcher } from '../../../engine/read/chunk-fetcher.js';
import { PackWriter } from '../../../engine/repo/pack-writer.js';
import { Repository } from '../../../engine/repo/repository.js';
import { newRepo, sharedPool } from '../../helpers/repo.js';

describe('ChunkFetcher', async () => {
  const root = await newRepo();
  const good = Buffer.alloc(4096, 1);
  const claimed = Buffer.alloc(4096, 2);
  const stored = Buffer.alloc(4096, 3);
  {
    // A writer bug: `stored` filed under the id of `claimed`, every stored checksum consistent.
    const repo = await Repository.open(root, { writer: { what: 'test', lockWaitSeconds: 5 } });
    const writer = new PackWriter(repo.storage, repo.index, 1024 * 1024);
    const raw = (id: Buffer, payload: Buffer) => ({ id, codec: codecRaw, rawBytes: payload.length, storedBytes: payload.length, storedXxh64: xxh64(payload), payload });
    await writer.append([raw(sha256(good), good), raw(sha256(claimed), stored)]);
    await writer.seal();
    await repo.close();
  }

  async function fetch(checkContent: boolean) {
    const repo = await Repository.open(root);
    try {
      return await new ChunkFetcher(repo, sharedPool(), checkContent).fetch([sha256(good), sha256(claimed)]);
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
