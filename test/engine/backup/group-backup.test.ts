// A group whose second disk fails in the middle of its read: nothing is
// committed for the group, the error names the disk, and a later group
// backup reuses what the first disk had stored.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runGroupBackup } from '../../../engine/backup/group-backup.js';
import { BlockvaultError } from '../../../engine/core/errors.js';
import { Repository } from '../../../engine/repo/repository.js';
import { openSource, type Source } from '../../../engine/source/source.js';
import { randomStream } from '../../../scripts/vm-disk.js';
import { newRepo, sharedPool } from '../../helpers/repo.js';
import { tempDir } from '../../helpers/temp.js';

const MiB = 1024 * 1024;

/** A disk whose reads fail with EIO past `failAt` bytes, like a dying device. */
function failingSource(sizeBytes: number, failAt: number): Source {
  const data = randomStream('failing')(sizeBytes);
  return {
    description: '/dev/failing', sizeBytes, dataExtents: null,
    async read(into, offset) {
      if (offset + into.length > failAt) throw new BlockvaultError('SOURCE_IO', `cannot read source /dev/failing at offset ${offset}: EIO`);
      into.set(data.subarray(offset, offset + into.length));
      return into.length;
    },
    async close() {},
  };
}

describe('group backup', () => {
  const dir = tempDir();

  it('fails whole when one disk fails mid-read, naming it; the next one reuses the first disk\'s data', async () => {
    const root = await newRepo({ packBytesTarget: MiB });
    const image = join(dir, 'a.raw');
    writeFileSync(image, randomStream('group-ok')(8 * MiB));
    const repo = await Repository.open(root, { writer: { what: 'test', lockWaitSeconds: 5 } });
    try {
      const a = await openSource(image);
      const err = await runGroupBackup(repo, 'vm', [
        { vm: 'vm', disk: 'sda', source: a, pool: sharedPool() },
        { vm: 'vm', disk: 'sdb', source: failingSource(16 * MiB, 9 * MiB), pool: sharedPool() },
      ]).then(() => null, (e: unknown) => e);
      await a.close();
      expect(err).toBeInstanceOf(BlockvaultError);
      expect((err as BlockvaultError).code).toBe('SOURCE_IO');
      expect((err as Error).message).toMatch(/^disk sdb: cannot read source \/dev\/failing at offset \d+: EIO; nothing was committed for vm/);
      expect(repo.points.list()).toEqual([]);
      expect(repo.index.allGroups()).toEqual([]);

      const again = await openSource(image);
      const ok = await runGroupBackup(repo, 'vm', [{ vm: 'vm', disk: 'sda', source: again, pool: sharedPool() }]);
      await again.close();
      expect(ok.disks[0].chunksKnown).toBe(128); // all of sda was stored by the failed group
      expect(repo.points.list().map((p) => p.group)).toEqual([ok.group]);
    } finally {
      await repo.close();
    }
  });
});
