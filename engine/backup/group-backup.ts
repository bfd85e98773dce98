// A VM restore point of several disks, backed up in parallel in one session
// and committed all or nothing: every disk is read, stored, sealed and
// indexed first; only then are their restore points written (each naming
// the group), and the group object last (docs/FORMAT.md "Group objects").
import { randomBytes } from 'node:crypto';
import { BlockvaultError } from '../core/errors.js';
import { backupTime, killPoint } from '../core/test-hooks.js';
import { writeGroup } from '../repo/group-store.js';
import type { Consistency, GroupMachine } from '../format/group-format.js';
import type { Repository } from '../repo/repository.js';
import { prepareBackup, type BackupOptions, type BackupResult } from './backup.js';

export interface GroupResult { group: string; vm: string; time: string; seconds: number; disks: BackupResult[] }

/** Backs up every disk of `options` (each a full BackupOptions of the same vm) as one VM restore point. */
export async function runGroupBackup(repo: Repository, vm: string, disks: BackupOptions[], vmInfo?: { machine: GroupMachine; consistency: Consistency }): Promise<GroupResult> {
  const started = process.hrtime.bigint();
  const time = backupTime().toISOString();
  const names = disks.map((d) => d.disk);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated) throw new BlockvaultError('USAGE', `disk ${repeated} is given twice`);
  const settled = await Promise.allSettled(disks.map((d) => prepareBackup(repo, d)));
  const failed = settled.findIndex((s) => s.status === 'rejected');
  if (failed >= 0) {
    const err = (settled[failed] as PromiseRejectedResult).reason;
    if (!(err instanceof BlockvaultError)) throw err;
    throw new BlockvaultError(err.code, `disk ${disks[failed].disk}: ${err.message}; nothing was committed for ${vm} (the other disks' data stays, unreferenced, for a later backup to reuse)`, { cause: err });
  }
  const prepared = settled.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof prepareBackup>>>).value);
  const group = randomBytes(16).toString('hex');
  for (const p of prepared) {
    p.header.group = group;
    await repo.points.write(p.header, p.body, repo.sessionId);
    killPoint('group-point-written');
  }
  const header = { id: group, vm, time, disks: prepared.map((p) => ({ disk: p.header.disk, point: p.header.id })), ...vmInfo };
  await writeGroup(repo.storage, repo.index, header, repo.sessionId);
  return { group, vm, time, seconds: Number(process.hrtime.bigint() - started) / 1e9, disks: prepared.map((p) => p.result) };
}
