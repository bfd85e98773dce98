// The writer lock on a real filesystem, in each state a writer killed while
// taking it can leave behind.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireWriterLock } from '../../../engine/repo/lock.js';
import { tempDir } from '../../helpers/temp.js';

const deadPid = (): number => spawnSync('true').pid!;
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const record = (pid: number) => JSON.stringify({ pid, host: hostname(), bootId, since: 'then', what: 'killed backup' });

describe('writer lock', () => {
  const dir = tempDir();
  let n = 0;
  const newRoot = () => {
    const root = join(dir, `repo${n++}`);
    mkdirSync(join(root, 'locks'), { recursive: true });
    return root;
  };

  it('holds its record from the moment it exists, and leaves nothing behind', async () => {
    const root = newRoot();
    const lock = await acquireWriterLock(root, 'test', 0);
    expect(readdirSync(join(root, 'locks'))).toEqual(['writer.lock']);
    expect(JSON.parse(readFileSync(join(root, 'locks', 'writer.lock'), 'utf8'))).toMatchObject({ pid: process.pid, what: 'test' });
    await expect(acquireWriterLock(root, 'second', 0)).rejects.toMatchObject({ code: 'REPO_LOCKED' });
    await lock.release();
    expect(readdirSync(join(root, 'locks'))).toEqual([]);
  });

  it('is taken over from a writer killed before it linked its record into place', async () => {
    const root = newRoot();
    const pid = deadPid();
    writeFileSync(join(root, 'locks', `writer.lock.pending-${hostname()}-${pid}`), record(pid));
    const lock = await acquireWriterLock(root, 'test', 0);
    expect(readdirSync(join(root, 'locks'))).toEqual(['writer.lock']);
    await lock.release();
  });

  it('is taken over from a writer killed holding it', async () => {
    const root = newRoot();
    const pid = deadPid();
    writeFileSync(join(root, 'locks', 'writer.lock'), record(pid));
    writeFileSync(join(root, 'locks', `writer.lock.pending-${hostname()}-${pid}`), record(pid));
    const lock = await acquireWriterLock(root, 'test', 0);
    expect(JSON.parse(readFileSync(join(root, 'locks', 'writer.lock'), 'utf8')).pid).toBe(process.pid);
    expect(readdirSync(join(root, 'locks'))).toEqual(['writer.lock']);
    await lock.release();
  });

  it('waits for an empty lock being written, and takes over one left empty (filesystems without hard links)', async () => {
    const root = newRoot();
    const path = join(root, 'locks', 'writer.lock');
    writeFileSync(path, '');
    await expect(acquireWriterLock(root, 'test', 0)).rejects.toMatchObject({ code: 'REPO_LOCKED' });
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const lock = await acquireWriterLock(root, 'test', 0);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });
});
