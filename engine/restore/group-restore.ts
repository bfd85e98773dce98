// Restoring a VM restore point of several disks: each disk into
// <dir>/<disk>.raw, one after another; if any fails, the disks this run
// wrote are removed again, so the directory holds all of them or none.
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import type { GroupEntry } from '../repo/chunk-index.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import { runRestore, type RestoreResult } from './restore.js';
import { openTarget } from './target.js';

export interface GroupRestoreResult { group: string; vm: string; dir: string; disks: Array<RestoreResult & { disk: string; target: string }> }

export async function runGroupRestore(repo: Repository, group: GroupEntry, dir: string, pool: WorkerPool,
  options: { force: boolean; durable: boolean; signal?: AbortSignal }): Promise<GroupRestoreResult> {
  const st = await stat(dir).catch(() => null);
  if (st && !st.isDirectory()) throw new BlockvaultError('BAD_INPUT', `target ${dir} exists and is not a directory: a VM restore point is restored into a directory, one <disk>.raw per disk`);
  await mkdir(dir, { recursive: true }).catch((err) => { throw new BlockvaultError('TARGET_IO', `cannot create ${dir}: ${(err as Error).message}`); });
  const entries = group.disks.map((d) => {
    const entry = repo.index.point(d.point);
    if (!entry) throw new BlockvaultError('CHUNK_MISSING', `VM restore point ${group.vm}@${group.id}: its disk ${d.disk} (restore point ${d.point}) is missing`);
    return entry;
  });
  const done: GroupRestoreResult['disks'] = [];
  try {
    for (const entry of entries) {
      const target = join(dir, `${entry.disk}.raw`);
      const result = await runRestore(repo, entry, await openTarget(target, entry.sizeBytes, options.force, options.durable), pool, undefined, options.signal);
      done.push({ ...result, disk: entry.disk, target });
    }
  } catch (err) {
    for (const d of done) await rm(d.target, { force: true });
    throw err instanceof BlockvaultError && done.length > 0
      ? new BlockvaultError(err.code, `${err.message}; the ${done.length} disk(s) already restored were removed again`, { cause: err })
      : err;
  }
  return { group: group.id, vm: group.vm, dir, disks: done };
}
