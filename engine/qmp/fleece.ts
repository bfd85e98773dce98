// Point-in-time NBD exports of a running VM's disks (QEMU 7.1+ fleecing):
//   1. a temporary qcow2 per disk, added as a block node (the fleece target);
//   2. one QMP transaction for all disks: the bitmap actions (bitmaps.ts) and
//      a blockdev-backup sync=none per disk, which puts a copy-before-write
//      filter above the disk: from that instant, a guest write first copies
//      the old data into the fleece target;
//   3. a snapshot-access node over each filter reads the disk as it was at
//      the instant, exported read-only over a private NBD unix socket with
//      the frozen (old) bitmap.
// teardown() undoes every step that was taken, in reverse, and is safe to
// call twice; cleanupLeftovers() removes what a killed run left, by the
// names only blockvault uses.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BlockvaultError } from '../core/errors.js';
import { QmpCommandError, type QmpClient } from './client.js';
import { freezeActions } from './bitmaps.js';
import type { VmDisk } from './vm-disks.js';

const run = promisify(execFile);
export const objectPrefix = 'bv-';

export interface FleeceDisk { disk: VmDisk; old: string | null; fresh: string; index: number }

function names(i: number) {
  return { fleece: `bv-fl-${i}`, filter: `bv-cbw-${i}`, snap: `bv-snap-${i}`, job: `bv-job-${i}`, exp: `bv-exp-${i}` };
}

export class FleeceSession {
  /** Milliseconds QEMU took to run the freeze transaction (the guest's I/O is held only inside it). */
  freezeMs = 0;
  frozen = false;
  private readonly undo: Array<{ what: string; run: () => Promise<void> }> = [];

  /**
   * `noteNbdServer(true)` runs before nbd-server-start, so a run killed right
   * after it leaves word for the next run to stop the server.
   */
  constructor(private readonly qmp: QmpClient, readonly disks: FleeceDisk[], readonly scratchDir: string, readonly socketPath: string,
    private readonly noteNbdServer: (started: boolean) => Promise<void> = async () => undefined) {}

  fleecePath(d: FleeceDisk): string {
    return join(this.scratchDir, `blockvault-fleece-${process.pid}-${d.index}.qcow2`);
  }

  /** Step 1: the fleecing images and their nodes (before any guest freeze: it takes a process per disk). */
  async prepare(): Promise<void> {
    for (const d of this.disks) {
      const n = names(d.index);
      const path = this.fleecePath(d);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(d.disk.sizeBytes)]).catch((err: Error & { stderr?: string }) => {
        throw new BlockvaultError('TARGET_IO', `cannot create the fleecing image ${path}: ${(err.stderr ?? err.message).trim()}`);
      });
      this.undo.push({ what: `remove ${path}`, run: () => rm(path, { force: true }) });
      await this.qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': n.fleece, discard: 'unmap', file: { driver: 'file', filename: path } });
      this.undo.push({ what: `blockdev-del ${n.fleece}`, run: () => this.quiet('blockdev-del', { 'node-name': n.fleece }) });
    }
  }

  /** Step 2: after it returns, every disk's export shows the same instant. */
  async freeze(): Promise<void> {
    const actions = this.disks.flatMap((d) => [
      ...freezeActions(d.disk, d.old, d.fresh),
      { type: 'blockdev-backup', data: { 'job-id': names(d.index).job, device: d.disk.node, target: names(d.index).fleece, sync: 'none', 'filter-node-name': names(d.index).filter, 'auto-dismiss': false } },
    ]);
    const started = process.hrtime.bigint();
    await this.qmp.execute('transaction', { actions });
    this.freezeMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.frozen = true;
    // Jobs go before the fleece nodes they write to (undo runs in reverse).
    for (const d of this.disks) this.undo.push({ what: `cancel job ${names(d.index).job}`, run: () => this.cancelJob(names(d.index).job) });
  }

  /** Step 3: one read-only export per disk, named after the disk, with the frozen bitmap. */
  async exportAll(): Promise<void> {
    for (const d of this.disks) {
      const n = names(d.index);
      await this.qmp.execute('blockdev-add', { driver: 'snapshot-access', 'node-name': n.snap, file: n.filter });
      this.undo.push({ what: `blockdev-del ${n.snap}`, run: () => this.quiet('blockdev-del', { 'node-name': n.snap }) });
    }
    await this.startNbdServer();
    for (const d of this.disks) {
      const n = names(d.index);
      await this.qmp.execute('block-export-add', {
        type: 'nbd', id: n.exp, 'node-name': n.snap, name: d.disk.name, writable: false,
        // The bitmap lives on the disk's node, not the snapshot node: named with its node (QEMU 7.1+).
        ...(d.old ? { bitmaps: [{ node: d.disk.node, name: d.old }] } : {}),
      });
      this.undo.push({ what: `block-export-del ${n.exp}`, run: () => this.deleteExport(n.exp) });
    }
  }

  private async startNbdServer(): Promise<void> {
    await rm(this.socketPath, { force: true });
    await this.noteNbdServer(true);
    await this.qmp.execute('nbd-server-start', { addr: { type: 'unix', data: { path: this.socketPath } } }).catch(async (err: unknown) => {
      await this.noteNbdServer(false);
      if (err instanceof QmpCommandError && /already running/i.test(err.desc)) {
        throw new BlockvaultError('HYPERVISOR', `${this.qmp.path}: the VM already runs an NBD server that blockvault did not start (another backup tool?): stop it with nbd-server-stop, or let that tool finish`);
      }
      throw err;
    });
    this.undo.push({ what: 'nbd-server-stop', run: async () => { await this.quiet('nbd-server-stop'); await rm(this.socketPath, { force: true }); await this.noteNbdServer(false); } });
  }

  private async deleteExport(id: string): Promise<void> {
    if (!this.qmp.closed) await deleteExport(this.qmp, id);
  }

  private async cancelJob(job: string): Promise<void> {
    if (!this.qmp.closed) await cancelJob(this.qmp, job, true);
  }

  /** A teardown step: "not found" means it is already undone; a gone QEMU means everything is. */
  private async quiet(command: string, args?: Record<string, unknown>): Promise<void> {
    if (this.qmp.closed) return;
    await this.qmp.execute(command, args, 10_000).catch((err: unknown) => {
      if (err instanceof QmpCommandError || this.qmp.closed) return;
      throw err;
    });
  }

  /** Undoes every step taken, newest first; returns the steps that failed (the rest still ran). */
  async teardown(): Promise<string[]> {
    const failed: string[] = [];
    while (this.undo.length) {
      const step = this.undo.pop()!;
      await step.run().catch((err: Error) => { failed.push(`${step.what}: ${err.message}`); });
    }
    return failed;
  }
}

interface NodeInfo { 'node-name': string }
interface JobInfo { id: string; status: string }
interface ExportInfo { id: string }

/** QMP errors (the object is already gone) are fine in teardown; anything else is not. */
function quietly(qmp: QmpClient, command: string, args?: Record<string, unknown>): Promise<unknown> {
  return qmp.execute(command, args, 10_000).catch((err: unknown) => { if (!(err instanceof QmpCommandError) && !qmp.closed) throw err; });
}

/** Deletes an export and waits (bounded) until QEMU says it is gone. */
async function deleteExport(qmp: QmpClient, id: string): Promise<void> {
  await quietly(qmp, 'block-export-del', { id, mode: 'hard' });
  await qmp.waitEvent((e) => e.event === 'BLOCK_EXPORT_DELETED' && e.data?.id === id, `BLOCK_EXPORT_DELETED for ${id}`, 10_000).catch(() => undefined);
}

/** Cancels a backup job (which removes its copy-before-write filter), waits (bounded) for it to conclude, and dismisses it. */
async function cancelJob(qmp: QmpClient, job: string, running: boolean): Promise<void> {
  if (running) {
    await quietly(qmp, 'block-job-cancel', { device: job, force: true });
    await qmp.waitEvent((e) => e.event === 'JOB_STATUS_CHANGE' && e.data?.id === job && e.data?.status === 'concluded', `job ${job} to conclude`, 30_000).catch(() => undefined);
  }
  await quietly(qmp, 'job-dismiss', { id: job });
}

/** Removes the exports, jobs and nodes a killed blockvault left on this VM (only blockvault names them bv-...). */
export async function cleanupLeftovers(qmp: QmpClient, stopNbdServer: boolean): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await qmp.execute<ExportInfo[]>('query-block-exports')) {
    if (!e.id.startsWith(objectPrefix)) continue;
    await deleteExport(qmp, e.id);
    removed.push(`export ${e.id}`);
  }
  if (stopNbdServer) { await quietly(qmp, 'nbd-server-stop'); removed.push('NBD server'); }
  const nodes = async () => (await qmp.execute<NodeInfo[]>('query-named-block-nodes', { flat: true })).map((n) => n['node-name']);
  for (const n of await nodes()) if (n.startsWith('bv-snap-')) { await quietly(qmp, 'blockdev-del', { 'node-name': n }); removed.push(`node ${n}`); }
  for (const j of await qmp.execute<JobInfo[]>('query-jobs')) {
    if (!j.id.startsWith(objectPrefix)) continue;
    await cancelJob(qmp, j.id, j.status !== 'concluded');
    removed.push(`job ${j.id}`);
  }
  for (const n of await nodes()) if (n.startsWith('bv-fl-')) { await quietly(qmp, 'blockdev-del', { 'node-name': n }); removed.push(`node ${n}`); }
  return removed;
}
