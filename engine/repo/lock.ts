// The writer lock: one backup at a time per repository. A second writer
// waits (up to lockWaitSeconds) for the first to finish. A lock left by a
// dead process on this host, or by an earlier boot, is stale and removed.
// Readers (restore, verify, list) take no lock: everything they read is
// immutable once committed.
//
// The lock file appears with its contents or not at all: the holder's record
// is written to a file of its own, then hard-linked to writer.lock (link
// fails if the lock exists). Creating writer.lock and then writing it left,
// when a backup was killed in between, an empty lock nobody could judge
// stale. A kill before the link leaves only the private file, which the next
// writer on this host removes once its process is gone. Filesystems without
// hard links (exFAT) fall back to creating writer.lock exclusively and
// writing it; there a lock still empty after emptyLockStaleMs is stale.
import { promises as fs, readFileSync, rmSync } from 'node:fs';
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

const pendingPrefix = 'writer.lock.pending-';
/** A holder writes its record microseconds after creating the lock; empty for this long, it died first. */
const emptyLockStaleMs = 10_000;
const noHardLinks = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Puts our record at `path` unless a lock exists there (EEXIST). */
async function createLock(pending: string, path: string, record: string): Promise<void> {
  try {
    await fs.link(pending, path);
  } catch (err) {
    if (!noHardLinks.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    await fs.writeFile(path, record, { flag: 'wx', mode: 0o644 });
  }
}

/** The holder's record; null if the lock vanished or is being written; 'dead' if it stayed unwritten too long. */
async function readHolder(path: string): Promise<LockInfo | null | 'dead'> {
  try {
    const text = await fs.readFile(path, 'utf8');
    try {
      return JSON.parse(text) as LockInfo;
    } catch {
      // Empty or partly written: only the fallback path creates before it writes.
      return Date.now() - (await fs.stat(path)).mtimeMs > emptyLockStaleMs ? 'dead' : null;
    }
  } catch {
    return null;
  }
}

/** `writer.lock.pending-<host>-<pid>`: one would-be holder's record before it is linked into place. */
function pendingName(pid: number): string {
  return `${pendingPrefix}${hostname()}-${pid}`;
}

/** Removes records left by would-be holders on this host that were killed before they took the lock. */
async function removeDeadPending(locks: string): Promise<void> {
  const mine = `${pendingPrefix}${hostname()}-`;
  for (const name of await fs.readdir(locks).catch(() => [] as string[])) {
    const pid = Number(name.slice(mine.length));
    if (name.startsWith(mine) && Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) await fs.rm(join(locks, name), { force: true });
  }
}

export interface WriterLock { release(): Promise<void> }

export async function acquireWriterLock(repoRoot: string, what: string, lockWaitSeconds: number,
  onWait?: (holder: string) => void): Promise<WriterLock> {
  const locks = join(repoRoot, 'locks');
  const path = join(locks, 'writer.lock');
  const pending = join(locks, pendingName(process.pid));
  const mine: LockInfo = { pid: process.pid, host: hostname(), bootId: bootId(), since: new Date().toISOString(), what };
  const record = JSON.stringify(mine);
  await removeDeadPending(locks);
  try {
    await fs.writeFile(pending, record, { mode: 0o644 });
  } catch (err) {
    throw new BlockvaultError('REPO_UNAVAILABLE', `cannot create lock ${pending}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return await takeLock(repoRoot, path, pending, record, lockWaitSeconds, onWait);
  } finally {
    await fs.rm(pending, { force: true });
  }
}

async function takeLock(repoRoot: string, path: string, pending: string, record: string, lockWaitSeconds: number,
  onWait?: (holder: string) => void): Promise<WriterLock> {
  const deadline = Date.now() + lockWaitSeconds * 1000;
  let told = false;
  for (;;) {
    try {
      await createLock(pending, path, record);
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
    const holder = await readHolder(path);
    if (holder === 'dead' || (holder && isStale(holder))) {
      process.stderr.write(holder === 'dead' ? `blockvault: removing stale lock ${path} (never fully written: its writer died taking it)\n`
        : `blockvault: removing stale lock of pid ${holder.pid} (${holder.what}, since ${holder.since})\n`);
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
