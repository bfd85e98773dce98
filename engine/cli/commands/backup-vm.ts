// `backup --vm web01 --qmp /run/qemu/web01.qmp [--disks vda,vdb]` or
// `--libvirt web01 [--connect URI]`: a running VM's disks, frozen at one
// instant, as one VM restore point with its configuration
// (engine/backup/qmp-backup.ts, libvirt-backup.ts).
import { tmpdir } from 'node:os';
import { runQmpBackup } from '../../backup/qmp-backup.js';
import { runLibvirtBackup } from '../../backup/libvirt-backup.js';
import type { BackupProgress } from '../../backup/backup.js';
import { backupChunker } from '../../chunking/chunker.js';
import { BlockvaultError } from '../../core/errors.js';
import { humanBytes, humanSeconds, plural } from '../../core/human.js';
import { checkName } from '../../core/names.js';
import { configChunker } from '../../format/config-format.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool, workersFor } from '../../workers/pool.js';
import { interruptSignal, note, printJson, say } from '../command.js';
import { progressLine } from '../progress.js';

export interface VmArgs {
  root: string;
  vm: string;
  /** One of the two: a QEMU's QMP socket, or a libvirt domain. */
  qmpPath?: string;
  domain?: string;
  values: Record<string, unknown>;
  lockWaitSeconds: number;
  cbtCheckPercent: number;
  cbtFallback: 'refuse' | 'full';
}

function diskList(values: Record<string, unknown>): string[] | undefined {
  const raw = values.disks as string | undefined;
  if (raw === undefined) return undefined;
  const names = raw.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new BlockvaultError('USAGE', `--disks ${JSON.stringify(raw)}: a comma-separated list of disk names, e.g. vda,vdb`);
  for (const n of names) checkName('disk', n);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated) throw new BlockvaultError('USAGE', `--disks: ${repeated} is given twice`);
  return names;
}

/** One line for the whole VM: each disk's share, and the total. */
function vmProgress(vm: string, json: boolean): { line: ReturnType<typeof progressLine>; update: (disk: string, p: BackupProgress) => void } {
  const line = progressLine(vm, !json && Boolean(process.stderr.isTTY));
  const disks = new Map<string, BackupProgress>();
  return { line, update: (disk, p) => {
    disks.set(disk, p);
    let done = 0;
    let total = 0;
    for (const q of disks.values()) { done += q.bytesDone; total += q.bytesTotal ?? 0; }
    const each = [...disks].map(([d, q]) => `${d} ${q.bytesTotal ? Math.floor((100 * q.bytesDone) / q.bytesTotal) : 0}%`).join(' · ');
    line.update(done, total || null, each);
  } };
}

export async function backupVm(a: VmArgs): Promise<number> {
  const how = a.domain ? '--libvirt' : '--qmp';
  for (const bad of ['changed', 'bitmap', 'parent', 'format']) {
    if (a.values[bad] !== undefined) throw new BlockvaultError('USAGE', `--${bad} does not go with ${how}: blockvault finds the disks, their formats and their change tracking itself`);
  }
  const only = a.domain ? ['guest-agent'] : ['connect', 'quiesce'];
  for (const bad of only) if (a.values[bad] !== undefined) throw new BlockvaultError('USAGE', `--${bad} does not go with ${how}${bad === 'guest-agent' ? ' (use --quiesce: libvirt talks to the agent)' : bad === 'quiesce' ? ' (use --guest-agent SOCKET)' : ''}`);
  const disks = diskList(a.values);
  const pool = new WorkerPool(workersFor(null));
  let repo: Repository | null = null;
  const json = a.values.json === true;
  const progress = vmProgress(a.vm, json);
  try {
    repo = await Repository.open(a.root, { writer: { what: `backup ${a.vm} over ${a.domain ? 'libvirt' : 'QMP'}`, lockWaitSeconds: a.lockWaitSeconds, onWait: (who) => note(`blockvault: waiting for ${who} to finish (it runs alone)`) } });
    const common = {
      repo, vm: a.vm, disks, scratchDir: (a.values.scratch as string | undefined) ?? tmpdir(),
      chunker: backupChunker(configChunker(repo.config), a.values.chunker as string | undefined), pool, signal: interruptSignal(),
      cbtCheckPercent: a.cbtCheckPercent, cbtFallback: a.cbtFallback, onNote: (line: string) => { if (!json) note(line); }, onProgress: progress.update,
    };
    const result = a.domain
      ? await runLibvirtBackup({ ...common, domain: a.domain, uri: (a.values.connect as string | undefined) ?? 'qemu:///system', quiesce: a.values.quiesce === true })
      : await runQmpBackup({ ...common, qmpPath: a.qmpPath!, agentPath: a.values['guest-agent'] as string | undefined });
    progress.line.done();
    if (json) printJson(result);
    else {
      say(`VM restore point ${a.vm}@${result.group.slice(0, 8)} (${result.group}): ${plural(result.disks.length, 'disk')} in ${humanSeconds(result.seconds)}, ${result.consistency}-consistent, ${a.domain ? 'backup-begin took' : 'I/O held'} ${result.freezeMs.toFixed(1)} ms for the freeze${result.quiescedMs === null ? '' : `, filesystems frozen ${result.quiescedMs.toFixed(0)} ms`}`);
      for (const d of result.disks) say(`  ${d.disk}: ${a.vm}/${d.disk}@${d.id.slice(0, 8)}, ${d.mode}, disk ${humanBytes(d.bytesTotal)}, read ${humanBytes(d.bytesRead)}, new ${humanBytes(d.bytesNew)}, stored ${humanBytes(d.bytesStored)}`);
    }
    return 0;
  } finally {
    progress.line.done();
    await pool.close();
    await repo?.close();
  }
}
