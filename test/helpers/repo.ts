import { join } from 'node:path';
import { afterAll } from 'vitest';
import { initDigests } from '../../engine/core/digest.js';
import { runBackup, type BackupResult } from '../../engine/backup/backup.js';
import { initRepository, Repository, type InitOptions } from '../../engine/repo/repository.js';
import { openSource } from '../../engine/source/source.js';
import type { ObjectStore } from '../../engine/storage/storage.js';
import { WorkerPool } from '../../engine/workers/pool.js';
import { tempDir } from './temp.js';

let pool: WorkerPool | null = null;
export function sharedPool(): WorkerPool {
  if (!pool) {
    pool = new WorkerPool(2);
    afterAll(async () => { await pool?.close(); pool = null; });
  }
  return pool;
}

export async function newRepo(options: InitOptions = { packBytesTarget: 1024 * 1024 }): Promise<string> {
  await initDigests();
  const root = join(tempDir('bv-repo-'), 'repo');
  await initRepository(root, options);
  return root;
}

export async function backupFile(root: string, vm: string, disk: string, path: string, storage?: ObjectStore, options: { allowEmpty?: boolean } = {}): Promise<BackupResult> {
  const repo = await Repository.open(root, { storage, writer: { what: 'test', lockWaitSeconds: 5 } });
  const source = await openSource(path);
  try {
    return await runBackup(repo, { vm, disk, source, pool: sharedPool(), ...options });
  } finally {
    await source.close();
    await repo.close();
  }
}
