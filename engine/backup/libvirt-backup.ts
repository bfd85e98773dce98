// `backup --vm web01 --libvirt web01 [--connect URI]`: libvirt's pull-mode
// backup (docs/FORMAT.md "VM backups over libvirt"): libvirt freezes every
// disk at one instant, fleeces into scratch files and exports them over NBD
// with the checkpoint bitmap; blockvault reads them as for --qmp and
// commits one VM restore point holding the domain XML. The order:
//   lock -> abort a dead run's job -> settle checkpoints -> [domfsfreeze] ->
//   backup-begin (new checkpoint) -> [domfsthaw] -> back up -> commit ->
//   domjobabort -> delete the old checkpoint (or, failed: the new one).
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { killPoint, pausePoint } from '../core/test-hooks.js';
import type { Consistency } from '../format/group-format.js';
import { deleteCheckpoint, newCheckpointName, settleCheckpoints } from '../libvirt/checkpoints.js';
import { checkRunning, checkSelected, domainDisks, domainShape, domainXml, firmwarePaths, type DomainDisk } from '../libvirt/domain.js';
import { readFirmware } from '../libvirt/firmware.js';
import { backupJobSocket, endBackupJob, workDirName } from '../libvirt/jobs.js';
import { Virsh } from '../libvirt/virsh.js';
import { VmLock } from '../qmp/vm-lock.js';
import { backUpWatched, checkScratch, parentMark, requireVmFormat, type RunningVmOptions } from './export-backup.js';
import type { QmpBackupResult } from './qmp-backup.js';

export interface LibvirtBackupOptions extends RunningVmOptions {
  domain: string;
  uri: string;
  disks?: string[];
  scratchDir: string;
  quiesce: boolean;
}

export const freezeAgentMs = 10_000;

/** The uid/gid libvirt's QEMU runs as (it creates the scratch files and the socket), if that user exists. */
async function qemuOwner(): Promise<{ uid: number; gid: number } | null> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const m = /^libvirt-qemu:[^:]*:(\d+):(\d+):/m.exec(passwd);
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : null;
}

function backupXml(disks: DomainDisk[], old: string | null, dir: string): string {
  const lines = disks.map((d) => `    <disk name='${d.name}' backup='yes' type='file' exportname='${d.name}'><scratch file='${join(dir, `scratch-${d.name}.qcow2`)}'/></disk>`);
  return `<domainbackup mode='pull'>\n${old ? `  <incremental>${old}</incremental>\n` : ''}  <server transport='unix' socket='${join(dir, 'nbd.sock')}'/>\n  <disks>\n${lines.join('\n')}\n  </disks>\n</domainbackup>\n`;
}

function checkpointXml(name: string, disks: DomainDisk[], all: DomainDisk[]): string {
  const lines = all.map((d) => `<disk name='${d.name}' checkpoint='${disks.includes(d) ? 'bitmap' : 'no'}'/>`);
  return `<domaincheckpoint><name>${name}</name><disks>${lines.join('')}</disks></domaincheckpoint>\n`;
}

/** A backup job on the domain: one an earlier blockvault run left (its socket is in our work directory) is ended; anyone else's is refused. */
async function clearJob(virsh: Virsh, domain: string, work: string): Promise<boolean> {
  const socket = await backupJobSocket(virsh, domain);
  if (socket === null) return false;
  if (!socket.includes(`/${basename(work)}/`)) { // any --scratch: the directory name carries the key
    throw new BlockvaultError('HYPERVISOR', `domain ${domain} already runs a backup job that blockvault did not start (its NBD socket: ${socket || 'unknown'}; another backup tool?); let it finish, or end it with virsh domjobabort ${domain}`);
  }
  await endBackupJob(virsh, domain);
  return true;
}

export async function runLibvirtBackup(o: LibvirtBackupOptions): Promise<QmpBackupResult> {
  requireVmFormat(o.repo);
  const virsh = new Virsh(o.uri);
  const lock = await VmLock.forLibvirt(o.uri, o.domain, o.vm);
  const work = join(o.scratchDir, workDirName(lock.key));
  try {
    await checkRunning(virsh, o.domain);
    const cleanedUp: string[] = [];
    if (await clearJob(virsh, o.domain, work)) cleanedUp.push('backup job');
    await rm(work, { recursive: true, force: true });
    const xml = await domainXml(virsh, o.domain);
    const listed = domainDisks(xml);
    const disks = checkSelected(listed.disks, listed.skipped, o.disks, o.domain);
    if (listed.skipped.length && !o.disks) o.onNote(`blockvault: ${o.vm}: skipping ${listed.skipped.join(', ')}`);
    const sizes = await Promise.all(disks.map(async (d) => Number((/Capacity:\s+(\d+)/.exec(await virsh.run(['domblkinfo', o.domain, d.name])) ?? [])[1] ?? 0)));
    await checkScratch(o.scratchDir, sizes.reduce((a, b) => a + b, 0));
    const parents = await Promise.all(disks.map((d) => parentMark(o.repo, o.vm, d.name, 'libvirt', 'checkpoint')));
    // One incremental base for all disks (libvirt's <incremental> is per backup): the parents must agree.
    const expected = parents.every((p) => p !== null && p === parents[0]) ? parents[0] : null;
    const settled = await settleCheckpoints(virsh, o.domain, expected);
    cleanedUp.push(...settled.removed.map((c) => `checkpoint ${c}`));
    if (cleanedUp.length) o.onNote(`blockvault: put ${o.vm} in order first: removed ${cleanedUp.join(', ')}`);
    await lock.clearStale();
    const problem = settled.problem ?? (expected === null && parents.some((p) => p !== null) ? 'the disks\' parents were taken at different checkpoints' : undefined);
    return await backUpBegun(o, virsh, lock, work, { xml, disks, all: listed.disks, old: settled.old, problem, cleanedUp });
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
    await lock.release();
  }
}

interface Begun { xml: string; disks: DomainDisk[]; all: DomainDisk[]; old: string | null; problem?: string; cleanedUp: string[] }

async function quiesce(o: LibvirtBackupOptions, virsh: Virsh): Promise<boolean> {
  if (!o.quiesce) return false;
  try {
    await virsh.run(['domfsfreeze', o.domain], freezeAgentMs);
    return true;
  } catch (err) {
    if (!(err instanceof BlockvaultError)) throw err;
    await virsh.run(['domfsthaw', o.domain], freezeAgentMs).catch(() => undefined);
    // libvirt 9 misses an agent that connects while a backup job holds the domain, and then says "not connected" until the agent reconnects.
    const hint = /not connected/.test(err.message) ? ' (if qemu-ga runs in the guest: libvirt loses an agent that starts while a backup job runs; restarting qemu-ga in the guest reconnects it)' : '';
    o.onNote(`blockvault: the guest agent did not freeze the filesystems (${err.message})${hint}; thawed, and the restore point is crash-consistent`);
    return false;
  }
}

async function backUpBegun(o: LibvirtBackupOptions, virsh: Virsh, lock: VmLock, work: string, b: Begun): Promise<QmpBackupResult> {
  await mkdir(work, { recursive: true, mode: 0o750 });
  const owner = await qemuOwner();
  if (owner) await chown(work, owner.uid, owner.gid);
  // Checkpoints are qcow2 bitmaps: with a raw disk in the set every backup is a full read (that dedups).
  const fresh = b.disks.every((d) => d.format === 'qcow2') ? newCheckpointName() : null;
  if (!fresh) o.onNote(`blockvault: ${o.vm}: a raw disk cannot hold a libvirt checkpoint (${b.disks.filter((d) => d.format !== 'qcow2').map((d) => d.name).join(', ')}): this and every later backup read in full`);
  await writeFile(join(work, 'backup.xml'), backupXml(b.disks, b.old, work));
  if (fresh) await writeFile(join(work, 'checkpoint.xml'), checkpointXml(fresh, b.disks, b.all));
  await lock.noteNbdServer(true); // a backup job is about to exist: a successor must abort it
  let begun = false;
  let committed = false;
  try {
    const quiesceStarted = process.hrtime.bigint();
    const frozen = await quiesce(o, virsh);
    const consistency: Consistency = frozen ? 'application' : 'crash';
    const started = process.hrtime.bigint();
    let freezeMs = 0;
    try {
      await virsh.run(['backup-begin', o.domain, join(work, 'backup.xml'), ...(fresh ? [join(work, 'checkpoint.xml')] : [])], virshBeginMs);
      freezeMs = Number(process.hrtime.bigint() - started) / 1e6;
    } finally {
      if (frozen) await virsh.run(['domfsthaw', o.domain], freezeAgentMs).catch(() => undefined);
    }
    begun = true;
    const quiescedMs = frozen ? Number(process.hrtime.bigint() - quiesceStarted) / 1e6 : null;
    killPoint('libvirt-begun');
    await pausePoint('libvirt-begun');
    const shape = domainShape(b.xml);
    const firmware = await readFirmware(firmwarePaths(b.xml), o.domain);
    if (firmware.missing.length) o.onNote(`blockvault: ${o.vm}: the domain names firmware state that is not there (${firmware.missing.join(', ')}); kept without it`);
    const result = await backUpWatched(o, o.scratchDir, b.disks.map((d) => ({
      disk: d.name, address: { transport: 'unix', socket: join(work, 'nbd.sock'), exportName: d.name }, bitmap: b.old ? `backup-${d.name}` : null, problem: b.problem,
      sourceInfo: { kind: 'libvirt', uri: o.uri, domain: o.domain, checkpoint: fresh, format: d.format, freezeMs },
    })), { machine: { kind: 'libvirt', domainXml: b.xml, ...shape, disks: b.disks.map((d) => ({ name: d.name, bus: d.bus, format: d.format, source: d.source })), firmware: firmware.files }, consistency });
    committed = true;
    return { ...result, consistency, freezeMs, quiescedMs, bitmaps: fresh ? Object.fromEntries(b.disks.map((d) => [d.name, fresh])) : {}, cleanedUp: b.cleanedUp };
  } finally {
    if (begun) await endBackupJob(virsh, o.domain).catch((err: Error) => o.onNote(`blockvault: ending the backup job failed (${err.message}); the next run ends it`));
    await lock.noteNbdServer(false).catch(() => undefined);
    if (begun) await settleAfter(o, virsh, committed ? b.old : fresh);
  }
}

const virshBeginMs = 120_000;

/** After a commit the old checkpoint goes; after a failure the new one (libvirt folds its changes back into the old). */
async function settleAfter(o: LibvirtBackupOptions, virsh: Virsh, drop: string | null): Promise<void> {
  if (!drop) return;
  await deleteCheckpoint(virsh, o.domain, drop).catch((err: Error) => o.onNote(`blockvault: deleting checkpoint ${drop} failed (${err.message}); the next run settles it`));
}
