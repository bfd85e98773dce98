// `backup --vm web01 --qmp SOCKET`: every writable disk of a running QEMU,
// frozen at one instant, read through point-in-time NBD exports (only what
// the frozen dirty bitmap names, when the parent's bitmap is intact), and
// committed as one VM restore point with the machine description. The order
// (docs/FORMAT.md "VM backups over QMP"):
//   lock the VM -> clean a killed run's leftovers -> settle bitmaps ->
//   [agent freeze] -> freeze transaction -> [thaw] -> export -> back up ->
//   commit the VM restore point -> tear down -> drop the old bitmaps.
// Any failure after the freeze tears down and merges the new bitmaps back.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { isAlive } from '../core/process-alive.js';
import { killPoint, pausePoint } from '../core/test-hooks.js';
import type { Consistency } from '../format/group-format.js';
import { commitBitmaps, newBitmapName, rollbackBitmaps, settleBitmaps } from '../qmp/bitmaps.js';
import { QmpClient } from '../qmp/client.js';
import { cleanupLeftovers, FleeceSession, type FleeceDisk } from '../qmp/fleece.js';
import { GuestAgent } from '../qmp/guest-agent.js';
import { describeMachine } from '../qmp/machine.js';
import { listDisks, selectDisks } from '../qmp/vm-disks.js';
import { VmLock } from '../qmp/vm-lock.js';
import type { GroupResult } from './group-backup.js';
import { backUpWatched, checkScratch, parentMark, requireVmFormat, type RunningVmOptions } from './export-backup.js';

/** snapshot-access (point-in-time reads of a copy-before-write filter) came with QEMU 7.1. */
export const qemuVersionMin = { major: 7, minor: 1 };
export interface QmpBackupOptions extends RunningVmOptions {
  qmpPath: string;
  disks?: string[];
  scratchDir: string;
  agentPath?: string;
}

export interface QmpBackupResult extends GroupResult {
  consistency: Consistency;
  freezeMs: number;
  /** With a guest agent: how long the guest's filesystems stayed frozen, freeze call to thaw answer (an upper bound); else null. */
  quiescedMs: number | null;
  reasons: Record<string, string>;
  /** Per disk: the dirty bitmap that now records changes for the next increment. */
  bitmaps: Record<string, string>;
  cleanedUp: string[];
}

/** Connects and checks QEMU can do what a backup needs. */
export async function connectQemu(qmpPath: string): Promise<QmpClient> {
  const qmp = await QmpClient.connect(qmpPath);
  const v = qmp.version;
  if (!qmp.atLeast(qemuVersionMin.major, qemuVersionMin.minor)) {
    qmp.close();
    throw new BlockvaultError('HYPERVISOR', `${qmpPath}: QEMU ${v.major}.${v.minor}.${v.micro} is too old: a running-VM backup needs the snapshot-access block driver and block-export-add with bitmaps from other nodes (QEMU ${qemuVersionMin.major}.${qemuVersionMin.minor} or newer)`);
  }
  const status = await qmp.execute<{ status: string }>('query-status');
  if (/migrate|internal-error/.test(status.status)) {
    qmp.close();
    throw new BlockvaultError('HYPERVISOR', `${qmpPath}: the VM is in state ${status.status}; back it up once it is running again`);
  }
  return qmp;
}

/** Fleecing images a killed run left in the scratch directory. */
async function removeStaleFleeces(dir: string): Promise<string[]> {
  const gone: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^blockvault-fleece-(\d+)-\d+\.qcow2$/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await rm(join(dir, name), { force: true });
    gone.push(`file ${name}`);
  }
  return gone;
}

export async function runQmpBackup(o: QmpBackupOptions): Promise<QmpBackupResult> {
  requireVmFormat(o.repo);
  // The lock first: a QMP socket serves one client at a time, so a second run would only see silence.
  const lock = await VmLock.forQmp(o.qmpPath, o.vm);
  let qmp: QmpClient | null = null;
  try {
    qmp = await connectQemu(o.qmpPath);
    const cleanedUp = [...await cleanupLeftovers(qmp, lock.stale?.nbdServer ?? false), ...await removeStaleFleeces(o.scratchDir)];
    if (cleanedUp.length) o.onNote(`blockvault: removed what an earlier, killed run left on ${o.vm}: ${cleanedUp.join(', ')}`);
    await lock.clearStale();
    const listed = await listDisks(qmp);
    const disks = selectDisks(listed.disks, listed.skipped, o.disks, o.vm);
    if (listed.skipped.length && !o.disks) o.onNote(`blockvault: ${o.vm}: skipping ${listed.skipped.join(', ')}`);
    await checkScratch(o.scratchDir, disks.reduce((a, d) => a + d.sizeBytes, 0));
    const fleece: FleeceDisk[] = [];
    const problems = new Map<string, string>();
    for (const [index, disk] of disks.entries()) {
      const settled = await settleBitmaps(qmp, disk, await parentMark(o.repo, o.vm, disk.name, 'qmp', 'qmpBitmap'));
      if (settled.problem) problems.set(disk.name, settled.problem);
      fleece.push({ disk, old: settled.old, fresh: newBitmapName(), index });
    }
    const machine = await describeMachine(qmp, disks);
    return await backUpFrozen(o, qmp, lock, fleece, problems, machine, cleanedUp);
  } finally {
    qmp?.close();
    await lock.release();
  }
}

/** Quiesces (when an agent answers), freezes all disks in one transaction, thaws at once. */
async function freezeAll(o: QmpBackupOptions, session: FleeceSession): Promise<{ consistency: Consistency; quiescedMs: number | null }> {
  let agent: GuestAgent | null = null;
  let consistency: Consistency = 'crash';
  await session.prepare(); // the fleecing images first: the guest stays frozen only for the transaction
  if (o.agentPath) {
    const opened = await GuestAgent.open(o.agentPath);
    if (!opened.agent) o.onNote(`blockvault: ${opened.problem}; the restore point is crash-consistent`);
    agent = opened.agent;
  }
  const started = process.hrtime.bigint();
  try {
    if (agent) {
      const frozen = await agent.freeze();
      if (frozen.ok) consistency = 'application';
      else o.onNote(`blockvault: the guest agent did not freeze the filesystems (${frozen.why}); thawed, and the restore point is crash-consistent`);
    }
    await session.freeze();
  } finally {
    if (consistency === 'application') await agent!.thaw();
    agent?.close();
  }
  return { consistency, quiescedMs: consistency === 'application' ? Number(process.hrtime.bigint() - started) / 1e6 : null };
}

async function backUpFrozen(o: QmpBackupOptions, qmp: QmpClient, lock: VmLock, fleece: FleeceDisk[], problems: Map<string, string>,
  machine: Awaited<ReturnType<typeof describeMachine>>, cleanedUp: string[]): Promise<QmpBackupResult> {
  const session = new FleeceSession(qmp, fleece, o.scratchDir, lock.socketPath, (started) => lock.noteNbdServer(started));
  let committed = false;
  try {
    const { consistency, quiescedMs } = await freezeAll(o, session);
    await session.exportAll();
    killPoint('qmp-exported');
    await pausePoint('qmp-exported');
    const result = await backUpWatched(o, o.scratchDir, fleece.map((f) => ({
      disk: f.disk.name, address: { transport: 'unix', socket: lock.socketPath, exportName: f.disk.name }, bitmap: f.old, problem: problems.get(f.disk.name),
      sourceInfo: { kind: 'qmp', qmp: o.qmpPath, node: f.disk.node, format: f.disk.format, qmpBitmap: f.fresh, freezeMs: session.freezeMs },
    })), { machine: { ...machine }, consistency });
    committed = true;
    killPoint('qmp-committed');
    return { ...result, consistency, freezeMs: session.freezeMs, quiescedMs, bitmaps: Object.fromEntries(fleece.map((f) => [f.disk.name, f.fresh])), cleanedUp };
  } finally {
    const failed = await session.teardown();
    if (failed.length) o.onNote(`blockvault: could not undo on the VM: ${failed.join('; ')} (the next run cleans up)`);
    if (session.frozen) await settleAfter(o, qmp, fleece, committed);
  }
}

/** Drops the old bitmaps after a commit, or merges the new ones back after a failure; a gone VM is left to the next run. */
async function settleAfter(o: QmpBackupOptions, qmp: QmpClient, fleece: FleeceDisk[], committed: boolean): Promise<void> {
  if (qmp.closed) return;
  try {
    if (committed) await commitBitmaps(qmp, fleece);
    else await rollbackBitmaps(qmp, fleece);
  } catch (err) {
    if (!(err instanceof BlockvaultError)) throw err;
    o.onNote(`blockvault: ${committed ? 'dropping the old' : 'merging back the new'} dirty bitmaps failed (${err.message}); the next run settles them`);
  }
}
