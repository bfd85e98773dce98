// The writer lock: one backup at a time per repository. A second writer
// waits (up to lockWaitSeconds) for the first to finish. A lock left by a
// dead process on this host, or by an earlier boot, is stale and removed.
// Readers (restore, verify, list) take no lock: everything they read is
// immutable once committed.
import { constants, promises as fs, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';

interface LockInfo { pid: number; host: string; bootId: string; since: string; what: string }

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isStale(info: LockInfo): boolean {
  if (info.host !== hostname()) return false; // cannot tell for another host
  return info.bootId !== bootId() || !isAlive(info.pid);
}

export interface WriterLock { release(): Promise<void> }

export async function acquireWriterLock(repoRoot: string, what: string, lockWaitSeconds: number,
  onWait?: (holder: string) => void): Promise<WriterLock> {
  const path = join(repoRoot, 'locks', 'writer.lock');
  const deadline = Date.now() + lockWaitSeconds * 1000;
  const mine: LockInfo = { pid: process.pid, host: hostname(), bootId: bootId(), since: new Date().toISOString(), what };
  let told = false;
  for (;;) {
    try {
      const file = await fs.open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      await file.writeFile(JSON.stringify(mine));
      await file.close();
      // Ctrl-C or kill: the process exits without unwinding; drop the lock on the way out.
      const onExit = () => rmSync(path, { force: true });
      process.once('exit', onExit);
      return {
        release: async () => {
          process.off('exit', onExit);
          await fs.rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new BlockvaultError('REPO_UNAVAILABLE', `cannot create lock ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    let holder: LockInfo | null = null;
    try {
      holder = JSON.parse(await fs.readFile(path, 'utf8')) as LockInfo;
    } catch {
      holder = null; // being written or removed right now; look again
    }
    if (holder && isStale(holder)) {
      process.stderr.write(`blockvault: removing stale lock of pid ${holder.pid} (${holder.what}, since ${holder.since})\n`);
      await fs.rm(path, { force: true });
      continue;
    }
    const who = holder ? `pid ${holder.pid} on ${holder.host} (${holder.what}, since ${holder.since})` : 'another process';
    if (Date.now() >= deadline) {
      throw new BlockvaultError('REPO_LOCKED', `repository ${repoRoot} is locked by ${who}; waited ${lockWaitSeconds}s (see --lock-wait)`);
    }
    if (!told && onWait) onWait(who);
    told = true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
