// The common last step of a running-VM backup (QMP or libvirt): every disk
// read from its point-in-time NBD export (an increment over the frozen
// bitmap when there is one, else a full read, and why), committed as one
// VM restore point with the machine description.
import type { ChunkerSpec } from '../chunking/chunker.js';
import { planBackup } from '../cbt/plan.js';
import type { Consistency, GroupMachine } from '../format/group-format.js';
import { NbdSource } from '../nbd/nbd-source.js';
import type { NbdAddress } from '../nbd/uri.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import type { BackupProgress } from './backup.js';
import { runGroupBackup, type GroupResult } from './group-backup.js';

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
