// Simulated power loss through the storage seam: the backup "dies" at the
// n-th mutating storage call, then every write not yet fsynced and every
// directory entry not yet made durable is dropped. For each crash point the
// repository must verify, keep its committed restore points, and take the
// next backup. (kill -9 cannot catch a missing fsync: the page cache survives.)
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository } from '../../engine/repo/repository.js';
import { runRestore } from '../../engine/restore/restore.js';
import { openTarget } from '../../engine/restore/target.js';
import { CrashError, FaultStorage } from '../../engine/storage/fault-storage.js';
import { FsStorage } from '../../engine/storage/fs-storage.js';
import { runVerify } from '../../engine/verify/verify.js';
import { backupFile, newRepo, sharedPool } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function check(root: string, expected: Map<string, string>, dir: string): Promise<number> {
  const repo = await Repository.open(root);
  try {
    const points = repo.points.list();
    const verdict = await runVerify(repo, points, sharedPool());
    expect(verdict.ok, JSON.stringify(verdict.points.flatMap((p) => p.problems))).toBe(true);
    for (const p of points) {
      const target = join(dir, 'check.out');
      await runRestore(repo, p, await openTarget(target, p.sizeBytes, true), sharedPool());
      expect(sha(target)).toBe(expected.get(p.id));
    }
    return points.length;
  } finally {
    await repo.close();
  }
}

describe('power loss at any point of a backup', () => {
  const dir = tempDir();
  const imageA = join(dir, 'a.raw');
  const imageB = join(dir, 'b.raw');

  it('leaves a consistent repository at every crash point', async () => {
    const fd = openSync(imageA, 'w');
    writeSync(fd, randomBytes(2 * 1024 * 1024), 0, 2 * 1024 * 1024, 0);
    writeSync(fd, Buffer.alloc(1), 0, 1, 6 * 1024 * 1024 - 1);
    closeSync(fd);
    copyFileSync(imageA, imageB);
    const fdB = openSync(imageB, 'r+');
    writeSync(fdB, randomBytes(3 * 1024 * 1024), 0, 3 * 1024 * 1024, 2 * 1024 * 1024 + 4096);
    closeSync(fdB);

    // How many mutating storage calls does the second backup make?
    const probe = await newRepo({ packBytesTarget: 1024 * 1024 });
    await backupFile(probe, 'vm', 'sda', imageA);
    const counting = new FaultStorage(new FsStorage(probe));
    await backupFile(probe, 'vm', 'sda', imageB, counting);
    const total = counting.mutationCount;
    expect(total).toBeGreaterThan(20);

    const crashPoints = new Set<number>();
    for (let n = 1; n <= total; n += Math.max(1, Math.floor(total / 12))) crashPoints.add(n);
    for (let n = Math.max(1, total - 12); n <= total + 1; n++) crashPoints.add(n); // the whole commit sequence, and just after it
    let committed = 0;
    for (const crashAt of crashPoints) {
      const root = await newRepo({ packBytesTarget: 1024 * 1024 });
      const a = await backupFile(root, 'vm', 'sda', imageA);
      const fault = new FaultStorage(new FsStorage(root));
      fault.crashAfter(crashAt);
      const expected = new Map([[a.id, sha(imageA)]]);
      try {
        const b = await backupFile(root, 'vm', 'sda', imageB, fault);
        expected.set(b.id, sha(imageB)); // crash point after the last mutation
      } catch (err) {
        expect(err, `crash at ${crashAt}`).toBeInstanceOf(CrashError);
      }
      await fault.powerLoss();
      const points = await check(root, new Map([...expected, ...(await pointIdsFor(root, imageB, expected))]), dir);
      if (points === 2) committed += 1;
      // The next backup works and is complete.
      const c = await backupFile(root, 'vm', 'sda', imageB);
      expected.set(c.id, sha(imageB));
      await check(root, new Map([...expected, ...(await pointIdsFor(root, imageB, expected))]), dir);
    }
    expect(committed).toBeGreaterThan(0); // the last crash points come after the commit
  });
});

/** A point committed right before the crash is image B. */
async function pointIdsFor(root: string, imageB: string, known: Map<string, string>): Promise<Map<string, string>> {
  const repo = await Repository.open(root);
  const ids = repo.points.list().map((p) => p.id).filter((id) => !known.has(id));
  await repo.close();
  return new Map(ids.map((id) => [id, sha(imageB)]));
}
