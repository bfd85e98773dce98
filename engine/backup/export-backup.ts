// The common last step of a running-VM backup (QMP or libvirt): every disk
// read from its point-in-time NBD export (an increment over the frozen
// bitmap when there is one, else a full read, and why), committed as one
// VM restore point with the machine description.
import { statfs } from 'node:fs/promises';
import type { ChunkerSpec } from '../chunking/chunker.js';
import { BlockvaultError } from '../core/errors.js';
import { humanBytes } from '../core/human.js';
import { planBackup } from '../cbt/plan.js';
import type { Consistency, GroupMachine } from '../format/group-format.js';
import { NbdSource } from '../nbd/nbd-source.js';
import type { NbdAddress } from '../nbd/uri.js';
import { watchScratch } from '../qmp/scratch-watch.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import type { BackupProgress } from './backup.js';
import { runGroupBackup, type GroupResult } from './group-backup.js';

/** Free scratch space needed up front: a tenth of the disks (the guest's writes during the backup land there), at least 256 MiB, at most the disks' size. */
export function fleeceReserveBytes(diskBytes: number): number {
  return Math.min(diskBytes, Math.max(256 * 1024 * 1024, Math.ceil(diskBytes / 10)));
}

/** Refuses, before anything changes on the VM, a scratch directory without room for fleecing disks of `diskBytes`. */
export async function checkScratch(dir: string, diskBytes: number): Promise<void> {
  const st = await statfs(dir).catch((err: Error) => { throw new BlockvaultError('BAD_INPUT', `--scratch ${dir}: ${err.message}`); });
  const free = st.bavail * st.bsize;
  const need = fleeceReserveBytes(diskBytes);
  if (free < need) {
    throw new BlockvaultError('NO_SPACE', `--scratch ${dir} has ${humanBytes(free)} free; fleecing these disks needs at least ${humanBytes(need)} there (the old data of every block the guest writes during the backup is kept in it). Nothing was changed on the VM.`);
  }
}

/** Running-VM points keep the machine description (group objects v2): repository format 6. */
export function requireVmFormat(repo: Repository): void {
  if (repo.config.formatVersion >= 6) return;
  throw new BlockvaultError('FORMAT_VERSION', `a running-VM backup keeps the VM's machine description, which needs repository format version 6; ${repo.root} is version ${repo.config.formatVersion}: run blockvault upgrade -r ${repo.root} first (a blockvault that reads formats only up to 5 then refuses the repository)`);
}

/** What the disk's newest restore point recorded as `field` of its source, if a backup of `kind` took it (its bitmap or checkpoint). */
export async function parentMark(repo: Repository, vm: string, disk: string, kind: 'qmp' | 'libvirt', field: string): Promise<string | null> {
  const entry = repo.points.list(vm, disk)[0];
  if (!entry) return null;
  const { header } = await repo.points.open(entry);
  const mark = header.source?.kind === kind ? header.source[field] : undefined;
  return typeof mark === 'string' ? mark : null;
}

export interface RunningVmOptions {
  repo: Repository;
  vm: string;
  chunker: ChunkerSpec;
  pool: WorkerPool;
  signal?: AbortSignal;
  cbtCheckPercent?: number;
  cbtFallback?: 'refuse' | 'full';
  onNote: (line: string) => void;
  onProgress?: (disk: string, p: BackupProgress) => void;
}

export interface ExportedDisk {
  disk: string;
  address: NbdAddress;
  /** The NBD meta-context bitmap name holding the changes since the parent; null: full read because of `problem`. */
  bitmap: string | null;
  problem?: string;
  sourceInfo: Record<string, unknown>;
}

export async function backUpExports(o: RunningVmOptions, exported: ExportedDisk[], vmInfo: { machine: GroupMachine; consistency: Consistency }): Promise<GroupResult & { reasons: Record<string, string> }> {
  const sources: NbdSource[] = [];
  try {
    const reasons: Record<string, string> = {};
    const disks = [];
    for (const e of exported) {
      const source = await NbdSource.open(e.address, e.bitmap ?? undefined);
      sources.push(source);
      const decision = e.bitmap
        ? await planBackup({ repo: o.repo, vm: o.vm, disk: e.disk, source, chunker: o.chunker, bitmap: { name: e.bitmap, source }, cbtCheckPercent: o.cbtCheckPercent, cbtFallback: o.cbtFallback })
        : { plan: undefined, reason: `${e.problem}: full read`, basis: { tracking: 'bitmap', parent: null } };
      reasons[e.disk] = decision.reason;
      o.onNote(`blockvault: ${o.vm}/${e.disk}: ${decision.plan ? 'incremental' : 'full'} backup: ${decision.reason}`);
      disks.push({
        vm: o.vm, disk: e.disk, source, chunker: o.chunker, plan: decision.plan, reason: decision.reason, pool: o.pool, signal: o.signal, allowEmpty: true,
        onProgress: o.onProgress ? (p: BackupProgress) => o.onProgress!(e.disk, p) : undefined,
        sourceInfo: { ...e.sourceInfo, consistency: vmInfo.consistency, ...decision.basis },
      });
    }
    return { ...await runGroupBackup(o.repo, o.vm, disks, vmInfo), reasons };
  } finally {
    for (const s of sources) await s.close().catch(() => undefined);
  }
}

/**
 * backUpExports with the scratch directory watched (from the freeze on, the
 * guest's writes fill the fleecing images there): below scratchFreeBytesMin
 * free the reads stop, so the caller's teardown removes the copy-before-write
 * filter before a full image makes QEMU fail the guest's writes.
 */
export async function backUpWatched(o: RunningVmOptions, scratchDir: string, exported: ExportedDisk[], vmInfo: { machine: GroupMachine; consistency: Consistency }): Promise<GroupResult & { reasons: Record<string, string> }> {
  const watch = watchScratch(scratchDir, o.signal);
  try {
    return await backUpExports({ ...o, signal: watch.signal }, exported, vmInfo);
  } catch (err) {
    const left = watch.fired();
    if (left === null) throw err;
    throw new BlockvaultError('NO_SPACE', `--scratch ${scratchDir} fell to ${humanBytes(left)} free while the guest wrote during the backup: stopped before the fleecing images could fill it (then QEMU would fail the guest's writes); nothing was committed, and the next backup still has every change. Give --scratch a directory with more room`, { cause: err });
  } finally {
    watch.stop();
  }
}
