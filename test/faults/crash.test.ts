// Faults at every storage operation of a backup, through the object seam:
// the backup "dies" at the n-th mutating call (every put not yet returned is
// lost whole), or that call fails with ENOSPC or EIO. For each, the
// repository must verify, keep its committed restore points, take the next
// backup, and leave no temporary objects once the next session has run.
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChunkerSpec } from '../../engine/chunking/chunker.js';
import { BlockvaultError } from '../../engine/core/errors.js';
import { Repository } from '../../engine/repo/repository.js';
import { runRestore } from '../../engine/restore/restore.js';
import { openTarget } from '../../engine/restore/target.js';
import { CrashError, FaultStorage, type Op } from '../../engine/storage/fault-storage.js';
import { FsObjectStore } from '../../engine/storage/fs-storage.js';
import { runVerify } from '../../engine/verify/verify.js';
import { backupFile, newRepo, sharedPool } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

/** The simulated crash happened in this process: make its lock objects name a dead pid, as a real crash would leave them. */
function markHoldersDead(root: string): void {
  const dead = spawnSync('true').pid!;
  for (const name of readdirSync(join(root, 'locks'))) {
    const path = join(root, 'locks', name);
    const record = JSON.parse(readFileSync(path, 'utf8')) as { pid: number };
    if (record.pid === process.pid) writeFileSync(path, JSON.stringify({ ...record, pid: dead }));
  }
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Verifies the repository and restores every point: each must be one of the images. */
async function check(root: string, images: string[], dir: string): Promise<number> {
  const repo = await Repository.open(root);
  try {
    const points = repo.points.list();
    const verdict = await runVerify(repo, points, sharedPool());
    expect(verdict.ok, JSON.stringify(verdict.points.flatMap((p) => p.problems))).toBe(true);
    const allowed = new Set(images.map(sha));
    for (const p of points) {
      const target = join(dir, 'check.out');
      await runRestore(repo, p, await openTarget(target, p.sizeBytes, true), sharedPool());
      expect(allowed.has(sha(target)), p.id).toBe(true);
    }
    return points.length;
  } finally {
    await repo.close();
  }
}

describe('faults at every storage operation of a backup', () => {
  const dir = tempDir();
  const imageA = join(dir, 'a.raw');
  const imageB = join(dir, 'b.raw');
  const fd = openSync(imageA, 'w');
  writeSync(fd, randomBytes(2 * 1024 * 1024), 0, 2 * 1024 * 1024, 0);
  writeSync(fd, Buffer.alloc(1), 0, 1, 6 * 1024 * 1024 - 1);
  closeSync(fd);
  copyFileSync(imageA, imageB);
  const fdB = openSync(imageB, 'r+');
  writeSync(fdB, randomBytes(3 * 1024 * 1024), 0, 3 * 1024 * 1024, 2 * 1024 * 1024 + 4096);
  closeSync(fdB);

  const cdc: ChunkerSpec = { kind: 'aligned-cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 };
  const options = (chunker: 'fixed' | 'aligned-cdc') => ({ packBytesTarget: 1024 * 1024, ...(chunker === 'fixed' ? {} : { chunker: cdc }) });

  /** The operations the second backup makes, in order (a probe run). */
  async function probeOps(chunker: 'fixed' | 'aligned-cdc'): Promise<number> {
    const probe = await newRepo(options(chunker));
    await backupFile(probe, 'vm', 'sda', imageA);
    const counting = new FaultStorage(new FsObjectStore(probe));
    await backupFile(probe, 'vm', 'sda', imageB, counting);
    return counting.mutationCount;
  }

  it.each([['fixed'], ['aligned-cdc']] as const)('a crash after each mutating call leaves a consistent repository (%s chunks)', async (chunker) => {
    const total = await probeOps(chunker);
    expect(total).toBeGreaterThan(10);
    let committed = 0;
    for (let crashAt = 1; crashAt <= total + 1; crashAt++) {
      const root = await newRepo(options(chunker));
      await backupFile(root, 'vm', 'sda', imageA);
      const fault = new FaultStorage(new FsObjectStore(root));
      fault.crashAfter(crashAt);
      const err = await backupFile(root, 'vm', 'sda', imageB, fault).then(() => null, (e: unknown) => e);
      if (err) expect(err, `crash at ${crashAt}`).toBeInstanceOf(CrashError);
      if (err) markHoldersDead(root); // what kill -9 leaves: lock objects naming a pid that is gone
      if ((await check(root, [imageA, imageB], dir)) === 2) committed += 1;
      await backupFile(root, 'vm', 'sda', imageB); // the next session works, and cleans up after the dead one
      expect(await check(root, [imageA, imageB], dir)).toBeGreaterThanOrEqual(2);
      expect(readdirSync(join(root, 'tmp')), `crash at ${crashAt}`).toEqual([]);
      expect(readdirSync(join(root, 'locks')), `crash at ${crashAt}`).toEqual([]);
    }
    expect(committed).toBeGreaterThan(0); // the last crash points come after the commit
  });

  for (const [op, errno] of [['put', 'ENOSPC'], ['write', 'ENOSPC'], ['commit', 'EIO'], ['putIfAbsent', 'EIO']] as Array<[Op, string]>) {
    it(`${errno} at each ${op} fails the backup cleanly`, async () => {
      for (let nth = 1; nth <= 6; nth++) {
        const root = await newRepo({ packBytesTarget: 1024 * 1024 });
        await backupFile(root, 'vm', 'sda', imageA);
        const fault = new FaultStorage(new FsObjectStore(root));
        fault.failWith({ op, nth, errno });
        const err = await backupFile(root, 'vm', 'sda', imageB, fault).then(() => null, (e: unknown) => e);
        if (err) expect(err, `${op} #${nth}`).toBeInstanceOf(BlockvaultError);
        expect(readdirSync(join(root, 'tmp')), `${op} #${nth}`).toEqual([]); // the failed session removed its staging
        expect(await check(root, [imageA, imageB], dir)).toBe(err ? 1 : 2);
      }
    });
  }

  it('EIO on a pack read fails the restore with a clear error and leaves no partial file', async () => {
    const root = await newRepo({ packBytesTarget: 1024 * 1024 });
    await backupFile(root, 'vm', 'sda', imageB);
    const fault = new FaultStorage(new FsObjectStore(root));
    fault.failWith({ op: 'read', keyIncludes: 'packs/', nth: 2, errno: 'EIO' });
    const repo = await Repository.open(root, { storage: fault });
    try {
      const target = join(dir, 'eio.out');
      const err = await runRestore(repo, repo.points.list()[0], await openTarget(target, 6 * 1024 * 1024, true), sharedPool()).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(BlockvaultError);
      expect((err as Error).message).toMatch(/packs\/.*EIO|EIO.*packs\//);
      expect(readdirSync(dir).filter((n) => n.includes('eio.out'))).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});
