// One blockvault at a time per VM: a lock file per QMP socket in the run
// directory ($BLOCKVAULT_RUN_DIR, default /run/blockvault as root, else
// <tmpdir>/blockvault-<uid>). It names its holder's pid, so a second run is
// refused by name while the first lives, and a run after a killed one knows
// it must clean up (and whether the dead run had started QEMU's NBD server).
import { createHash } from 'node:crypto';
import { link, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { isAlive } from '../core/process-alive.js';

/** `qmp`: what the VM is to the user ("QMP /run/x.qmp", "libvirt qemu:///system domain web01"). */
export interface VmLockInfo { pid: number; vm: string; qmp: string; since: string; nbdServer: boolean }

export function runDir(): string {
  if (process.env.BLOCKVAULT_RUN_DIR) return process.env.BLOCKVAULT_RUN_DIR;
  return process.getuid?.() === 0 ? '/run/blockvault' : join(tmpdir(), `blockvault-${process.getuid?.() ?? 'user'}`);
}

export class VmLock {
  private constructor(readonly path: string, readonly info: VmLockInfo, readonly stale: VmLockInfo | null, readonly key: string) {}

  /** Takes the lock for the VM behind the QMP socket `qmpPath`. */
  static async forQmp(qmpPath: string, vm: string): Promise<VmLock> {
    const real = await realpath(qmpPath).catch(() => qmpPath);
    return VmLock.acquire(real, `QMP ${real}`, vm);
  }

  /** Takes the lock for a libvirt domain. */
  static async forLibvirt(uri: string, domain: string, vm: string): Promise<VmLock> {
    return VmLock.acquire(`libvirt:${uri}/${domain}`, `libvirt ${uri} domain ${domain}`, vm);
  }

  /** `target` names the VM uniquely on this host; `stale` is what a dead holder left (cleanup is due). */
  private static async acquire(target: string, label: string, vm: string): Promise<VmLock> {
    const key = createHash('sha256').update(target).digest('hex').slice(0, 16);
    const dir = runDir();
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: Error) => { throw new BlockvaultError('BAD_INPUT', `cannot create the run directory ${dir}: ${err.message}`); });
    const path = join(dir, `vm-${key}.lock`);
    const info: VmLockInfo = { pid: process.pid, vm, qmp: label, since: new Date().toISOString(), nbdServer: false };
    const mine = `${path}.${process.pid}`;
    await writeFile(mine, JSON.stringify(info));
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await link(mine, path); // atomic: fails if a holder exists
          return new VmLock(path, info, await readStale(dir, key), key);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = await readLock(path);
        if (holder && isAlive(holder.pid) && holder.pid !== process.pid) {
          throw new BlockvaultError('VM_BUSY', `VM ${holder.vm} (${holder.qmp}) is being backed up by blockvault pid ${holder.pid} since ${holder.since}: one backup per VM at a time`);
        }
        // Dead holder: keep what it said (for cleanup), then take over.
        if (holder) await writeFile(join(dir, `vm-${key}.stale`), JSON.stringify(holder));
        await rm(path, { force: true });
      }
      throw new BlockvaultError('VM_BUSY', `VM ${vm}: could not take the lock ${path} (other runs keep racing for it)`);
    } finally {
      await rm(mine, { force: true });
    }
  }

  /** Records that this run started QEMU's NBD server (a successor stops it if this run dies). */
  async noteNbdServer(started: boolean): Promise<void> {
    this.info.nbdServer = started;
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(this.info));
    await rename(tmp, this.path);
  }

  /** The NBD socket this run's exports listen on. */
  get socketPath(): string {
    return join(runDir(), `nbd-${this.key}.sock`);
  }

  /** Cleanup of a dead holder's leftovers is done. */
  async clearStale(): Promise<void> {
    await rm(join(runDir(), `vm-${this.key}.stale`), { force: true });
  }

  async release(): Promise<void> {
    const holder = await readLock(this.path);
    if (holder?.pid === process.pid) await rm(this.path, { force: true });
  }
}

async function readLock(path: string): Promise<VmLockInfo | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text) as VmLockInfo;
  } catch {
    return { pid: 0, vm: '?', qmp: '?', since: '?', nbdServer: false }; // torn by a crash mid-write: dead
  }
}

async function readStale(dir: string, key: string): Promise<VmLockInfo | null> {
  return readLock(join(dir, `vm-${key}.stale`));
}
