// Integration: backup, restore, dedup, paged maps and index rebuild on
// temporary repositories with the real LMDB, real worker threads and files.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository } from '../../../engine/repo/repository.js';
import { runRestore } from '../../../engine/restore/restore.js';
import { openTarget } from '../../../engine/restore/target.js';
import { runVerify } from '../../../engine/verify/verify.js';
import { repoStats } from '../../../engine/verify/stats.js';
import { backupFile, newRepo, sharedPool } from '../../helpers/repo.js';
import { tempDir } from '../../helpers/temp.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A sparse image: scattered random and repetitive regions, mostly holes, odd size. */
function makeImage(path: string, sizeBytes: number, seed: number): void {
  const fd = openSync(path, 'w');
  writeSync(fd, Buffer.alloc(1), 0, 1, sizeBytes - 1);
  for (let i = 0; i < 12; i++) {
    const at = ((seed * 7919 + i * 104729) * 4099) % (sizeBytes - 200_000);
    writeSync(fd, i % 3 === 0 ? Buffer.alloc(150_000, i) : randomBytes(150_000), 0, 150_000, at);
  }
  closeSync(fd);
}

async function restoreTo(root: string, spec: string, path: string) {
  const repo = await Repository.open(root);
  try {
    const entry = repo.points.resolve(spec);
    return await runRestore(repo, entry, await openTarget(path, entry.sizeBytes, true), sharedPool());
  } finally {
    await repo.close();
  }
}

describe('repository', () => {
  const dir = tempDir();

  it('restores byte for byte, and an unchanged second backup stores nothing', async () => {
    const root = await newRepo();
    const image = join(dir, 'a.raw');
    makeImage(image, 20 * 1024 * 1024 + 12345, 1);
    const first = await backupFile(root, 'vm1', 'sda', image);
    expect(first.chunksNew).toBeGreaterThan(0);
    expect(first.bytesRead).toBeLessThan(4 * 1024 * 1024); // holes were not read
    const second = await backupFile(root, 'vm1', 'sda', image);
    expect(second.chunksNew).toBe(0);
    expect(second.bytesStored).toBe(0);
    expect(second.mapKind).toBe('paged');
    expect(second.mapPagesNew).toBe(0);
    expect(second.parent).toBe(first.id);
    await restoreTo(root, `vm1/sda@${first.id.slice(0, 6)}`, join(dir, 'a.out'));
    expect(sha(join(dir, 'a.out'))).toBe(sha(image));
  });

  it('dedups across VMs: a clone stores nothing new', async () => {
    const root = await newRepo();
    const image = join(dir, 'b.raw');
    makeImage(image, 8 * 1024 * 1024, 2);
    await backupFile(root, 'base', 'sda', image);
    const clone = await backupFile(root, 'clone', 'vda', image);
    expect(clone.chunksNew).toBe(0);
    const repo = await Repository.open(root);
    const stats = await repoStats(repo);
    await repo.close();
    expect(stats.points).toBe(2);
    expect(stats.dedupRatio).toBeCloseTo(2, 1);
  });

  it('keeps every point of a long run of changes restorable, each standing alone (no delta chains)', async () => {
    const root = await newRepo();
    const image = join(dir, 'c.raw');
    makeImage(image, 4 * 1024 * 1024, 3);
    const digests: Array<[string, string]> = [];
    for (let day = 0; day < 20; day++) {
      const fd = openSync(image, 'r+');
      writeSync(fd, randomBytes(3000), 0, 3000, (day * 200_003) % (4 * 1024 * 1024 - 3000));
      closeSync(fd);
      const r = await backupFile(root, 'vm', 'sda', image);
      digests.push([r.id, sha(image)]);
      if (day > 0) expect(r.chunksNew).toBeLessThanOrEqual(2);
    }
    const repo = await Repository.open(root);
    const headers = await Promise.all(digests.map(async ([id]) => (await repo.points.open(repo.index.point(id)!)).header));
    await repo.close();
    expect(headers.map((h) => [h.base, h.chainDepth])).toEqual(headers.map(() => [null, 0]));
    for (const [id, digest] of digests) {
      await restoreTo(root, `vm/sda@${id}`, join(dir, 'c.out'));
      expect(sha(join(dir, 'c.out'))).toBe(digest);
    }
  });

  it('drops from its catalog a restore point whose file another process removed (forget)', async () => {
    const root = await newRepo();
    const image = join(dir, 'f.raw');
    makeImage(image, 2 * 1024 * 1024, 6);
    const first = await backupFile(root, 'vm', 'sda', image);
    await backupFile(root, 'vm', 'sdb', image);
    const repo = await Repository.open(root);
    try {
      expect(repo.points.list()).toHaveLength(2);
      await repo.storage.delete(repo.index.point(first.id)!.path);
      await repo.reconcile();
      expect(repo.points.list().map((p) => p.disk)).toEqual(['sdb']);
    } finally {
      await repo.close();
    }
  });

  it('rebuilds a lost index from packs and restore points alone', async () => {
    const root = await newRepo();
    const image = join(dir, 'd.raw');
    makeImage(image, 6 * 1024 * 1024, 4);
    const r = await backupFile(root, 'vm', 'sda', image);
    let repo = await Repository.open(root);
    const before = await repoStats(repo);
    await repo.close();
    rmSync(join(root, 'index'), { recursive: true, force: true });
    repo = await Repository.open(root);
    expect(await repoStats(repo)).toEqual(before);
    const verdict = await runVerify(repo, repo.points.list(), sharedPool());
    await repo.close();
    expect(verdict.ok).toBe(true);
    await restoreTo(root, `vm/sda@${r.id}`, join(dir, 'd.out'));
    expect(sha(join(dir, 'd.out'))).toBe(sha(image));
  });

  it('works at every allowed chunk size, with a short last chunk', async () => {
    const image = join(dir, 'e.raw');
    makeImage(image, 9 * 1024 * 1024 + 777, 5);
    for (const chunkBytes of [64 * 1024, 256 * 1024, 4 * 1024 * 1024]) {
      const root = await newRepo({ chunkBytes, packBytesTarget: 2 * 1024 * 1024 });
      const r = await backupFile(root, 'vm', 'sda', image);
      expect(r.chunksTotal).toBe(Math.ceil((9 * 1024 * 1024 + 777) / chunkBytes));
      await restoreTo(root, 'vm/sda@latest', join(dir, 'e.out'));
      expect(sha(join(dir, 'e.out'))).toBe(sha(image));
    }
  });

  it('backs up an all-zero and an empty disk', async () => {
    const root = await newRepo();
    const zero = join(dir, 'zero.raw');
    writeFileSync(zero, Buffer.alloc(3 * 65536 + 10));
    const r = await backupFile(root, 'vm', 'zero', zero);
    expect(r.chunksZero).toBe(4);
    expect(r.bytesStored).toBe(0);
    const empty = join(dir, 'empty.raw');
    writeFileSync(empty, '');
    await expect(backupFile(root, 'vm', 'empty', empty)).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/empty\.raw is empty \(0 bytes\): nothing was committed/) });
    expect((await backupFile(root, 'vm', 'empty', empty, undefined, { allowEmpty: true })).chunksTotal).toBe(0);
    await restoreTo(root, 'vm/zero@latest', join(dir, 'zero.out'));
    expect(readFileSync(join(dir, 'zero.out'))).toEqual(readFileSync(zero));
    await restoreTo(root, 'vm/empty@latest', join(dir, 'empty.out'));
    expect(readFileSync(join(dir, 'empty.out')).length).toBe(0);
  });
});
