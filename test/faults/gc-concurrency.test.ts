// gc beside running backups, interleaved at chosen points through the fault
// store's pauses. Every backup here reuses chunks of a forgotten point,
// which gc's mark finds dead: the backups must keep them all the same.
//  - gc paused between its mark and its condemning the packs, while four
//    backups run whole (they dedup against the dead chunks);
//  - four backups paused between their last dedup hit and their point's
//    commit while gc runs (gc must wait for them), plus one started after
//    the packs were condemned (it must store its own copies);
// then every point restores and check --read-data finds nothing wrong.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { runBackup, type BackupResult } from '../../engine/backup/backup.js';
import { runCheck } from '../../engine/check/check.js';
import { runGc, type GcResult } from '../../engine/gc/gc.js';
import { Repository } from '../../engine/repo/repository.js';
import { runRestore } from '../../engine/restore/restore.js';
import { openTarget } from '../../engine/restore/target.js';
import { forgetUnits, resolveUnits } from '../../engine/retention/forget.js';
import { openSource } from '../../engine/source/source.js';
import { FaultStorage, type Pause } from '../../engine/storage/fault-storage.js';
import { FsObjectStore } from '../../engine/storage/fs-storage.js';
import { backupFile, newRepo, sharedPool } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;

interface World { root: string; images: string[]; oldChunks: number }

/** A repository holding one forgotten point "old"; images 0..n-1 each share its first 4 MiB and add 1 MiB of their own. */
async function world(dir: string, name: string, writers: number): Promise<World> {
  const root = await newRepo({ packBytesTarget: MiB });
  const old = randomStream(`${name}-old`)(8 * MiB);
  writeFileSync(join(dir, `${name}-old.raw`), old);
  const images = Array.from({ length: writers }, (_, k) => {
    const path = join(dir, `${name}-${k}.raw`);
    writeFileSync(path, Buffer.concat([old.subarray(0, 4 * MiB), randomStream(`${name}-${k}`)(MiB)]));
    return path;
  });
  await backupFile(root, 'old', 'sda', join(dir, `${name}-old.raw`));
  const repo = await Repository.open(root, { writer: { what: 'forget', kind: 'forget', lockWaitSeconds: 5 } });
  try {
    await forgetUnits(repo, resolveUnits(repo, ['old/sda@latest']));
  } finally {
    await repo.close();
  }
  return { root, images, oldChunks: 8 * MiB / 65536 };
}

async function gcWith(root: string, store: FaultStorage, onWait?: () => void): Promise<GcResult> {
  const repo = await Repository.open(root, { storage: store, writer: { what: 'gc', kind: 'gc', lockWaitSeconds: 5 } });
  try {
    let told = false; // the wait reports progress on every poll: tell once
    return await runGc(repo, { repack: { below: 0.5 }, sessionWaitSeconds: 60, onProgress: (phase) => { if (phase === 'wait' && !told) { told = true; onWait?.(); } } });
  } finally {
    await repo.close();
  }
}

/** A backup through its own fault store, paused before its restore point is put (after every dedup lookup and pack). */
async function pausedBackup(root: string, vm: string, image: string): Promise<{ paused: Pause; done: Promise<BackupResult> }> {
  const store = new FaultStorage(new FsObjectStore(root));
  const paused = store.pauseAt({ op: 'put', keyIncludes: 'points/' });
  const repo = await Repository.open(root, { storage: store, writer: { what: `backup ${vm}`, lockWaitSeconds: 5 } });
  const source = await openSource(image);
  const done = runBackup(repo, { vm, disk: 'sda', source, pool: sharedPool() }).finally(async () => {
    await source.close();
    await repo.close();
  });
  return { paused, done };
}

async function expectAllRestore(root: string, dir: string, images: Map<string, string>): Promise<void> {
  const repo = await Repository.open(root);
  try {
    expect(repo.points.list().map((p) => p.vm).sort()).toEqual([...images.keys()].sort());
    for (const entry of repo.points.list()) {
      const out = join(dir, `restored-${entry.vm}.raw`);
      await runRestore(repo, entry, await openTarget(out, entry.sizeBytes, true), sharedPool());
      expect(sha256File(out), entry.vm).toBe(sha256File(images.get(entry.vm)!));
    }
    const check = await runCheck(repo, sharedPool(), { readData: 'all' });
    expect(check.problems).toEqual([]);
    expect(check.ok).toBe(true);
  } finally {
    await repo.close();
  }
}

describe('gc beside backups', () => {
  const dir = tempDir();

  it('paused between its mark and its sweep while four backups run whole: keeps what they reused', async () => {
    const w = await world(dir, 'a', 4);
    const gcStore = new FaultStorage(new FsObjectStore(w.root));
    const condemning = gcStore.pauseAt({ op: 'put', keyIncludes: 'gc/' });
    const gc = gcWith(w.root, gcStore);
    await condemning.reached; // marked (the old point is forgotten: its chunks look dead), not yet condemned
    const results = await Promise.all(w.images.map((image, k) => backupFile(w.root, `vm${k}`, 'sda', image)));
    for (const r of results) expect(r.chunksKnown).toBeGreaterThanOrEqual(64); // the shared 4 MiB, found in the index
    condemning.release();
    const done = await gc;
    expect(done.packsRescued).toBeGreaterThan(0); // the packs of the shared 4 MiB
    expect(done.packsDeleted).toBeGreaterThan(0); // the old point's own last 4 MiB
    await expectAllRestore(w.root, dir, new Map(w.images.map((image, k) => [`vm${k}`, image])));
  });

  it('four backups paused between their dedup hits and their commit: gc waits for them; one started later stores its own copies', async () => {
    const w = await world(dir, 'b', 5);
    const paused = await Promise.all(w.images.slice(0, 4).map((image, k) => pausedBackup(w.root, `vm${k}`, image)));
    await Promise.all(paused.map((p) => p.paused.reached)); // each has looked up every chunk and sealed its packs
    let late: Promise<BackupResult> | null = null;
    const gc = gcWith(w.root, new FaultStorage(new FsObjectStore(w.root)), () => {
      // The packs are condemned now, and gc is waiting for the four: a backup starting now must not dedup against them.
      late = backupFile(w.root, 'vm4', 'sda', w.images[4]);
      void late.then(() => paused.forEach((p) => p.paused.release()));
    });
    const results = await Promise.all(paused.map((p) => p.done));
    for (const r of results) expect(r.chunksKnown).toBeGreaterThanOrEqual(64);
    const done = await gc;
    expect(late).not.toBeNull();
    const lateResult = await late!;
    expect(lateResult.chunksKnown).toBe(0);
    expect(lateResult.chunksNew).toBe(80);
    expect(done.waitedForSessions).toBe(4);
    // The old point's packs go (the late backup's copies now serve every point) or are rescued: either way every point restores.
    expect(done.packsDeleted + done.packsRescued).toBeGreaterThan(0);
    await expectAllRestore(w.root, dir, new Map(w.images.map((image, k) => [`vm${k}`, image])));
  });
});
