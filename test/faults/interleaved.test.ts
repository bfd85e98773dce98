// Two sessions interleaved at chosen points through the fault store's pauses:
// session B dedups against a pack that session A sealed, and A then dies
// before it wrote the index object naming that pack or any restore point.
// B's restore point must still restore, from any cache or none.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { runBackup } from '../../engine/backup/backup.js';
import { Repository } from '../../engine/repo/repository.js';
import { runRestore } from '../../engine/restore/restore.js';
import { openTarget } from '../../engine/restore/target.js';
import { openSource } from '../../engine/source/source.js';
import { CrashError, FaultStorage } from '../../engine/storage/fault-storage.js';
import { FsObjectStore } from '../../engine/storage/fs-storage.js';
import { runVerify } from '../../engine/verify/verify.js';
import { backupFile, newRepo, sharedPool } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;

describe('interleaved sessions', () => {
  const dir = tempDir();

  it('a point that dedups against a dead session\'s sealed pack restores, from any cache or none', async () => {
    const root = await newRepo({ packBytesTarget: MiB });
    // Every chunk of A is also in B, so whichever pack A seals first holds chunks B will meet.
    const shared = randomStream('interleaved-shared')(8 * MiB);
    const imageA = join(dir, 'a.raw');
    const imageB = join(dir, 'b.raw');
    writeFileSync(imageA, shared);
    writeFileSync(imageB, Buffer.concat([shared, randomStream('interleaved-b')(2 * MiB)]));

    // Session A: paused once its first pack is committed (sealed and indexed in the shared cache), before anything else.
    const storeA = new FaultStorage(new FsObjectStore(root));
    const paused = storeA.pauseAt({ op: 'writer', nth: 2 }); // opening its second pack
    const repoA = await Repository.open(root, { storage: storeA, writer: { what: 'session A', lockWaitSeconds: 5 } });
    const sourceA = await openSource(imageA);
    const runA = runBackup(repoA, { vm: 'a', disk: 'sda', source: sourceA, pool: sharedPool() }).then(() => null, (e: unknown) => e);
    await paused.reached;

    // Session B runs whole meanwhile, and finds A's sealed chunks in the index.
    const b = await backupFile(root, 'b', 'sda', imageB);
    expect(b.chunksKnown).toBeGreaterThan(0);

    // A dies where it stands: no index object, no restore point.
    storeA.crashAfter(storeA.mutationCount + 1);
    paused.release();
    expect(await runA).toBeInstanceOf(CrashError);
    await sourceA.close();
    await repoA.close().catch(() => undefined);

    for (const cache of ['kept', 'dropped']) {
      if (cache === 'dropped') rmSync(join(root, 'index'), { recursive: true });
      const repo = await Repository.open(root);
      try {
        const entry = repo.points.resolve('b/sda@latest');
        expect((await runVerify(repo, [entry], sharedPool())).ok, cache).toBe(true);
        const out = join(dir, `b-${cache}.raw`);
        await runRestore(repo, entry, await openTarget(out, entry.sizeBytes, true), sharedPool());
        expect(sha256File(out), cache).toBe(sha256File(imageB));
      } finally {
        await repo.close();
      }
    }
  });
});
