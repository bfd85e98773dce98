// Session and exclusive locks as objects, on a real filesystem store: what a
// holder leaves (nothing), who waits for whom, and every kind of stale lock.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock, conflicts, lockKey, lockStaleAfterMs, newSessionId, stagingGraceMs } from '../../../engine/repo/lock.js';
import { FsObjectStore } from '../../../engine/storage/fs-storage.js';
import { tempDir } from '../../helpers/temp.js';

const deadPid = (): number => spawnSync('true').pid!;
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const record = (id: string, kind: string, pid: number, host = hostname(), refreshed = new Date().toISOString()) =>
  JSON.stringify({ id, kind, pid, host, bootId, started: refreshed, refreshed, what: `a ${kind} for the test` });

describe('locks', () => {
  const dir = tempDir();
  let n = 0;
  const newStore = () => {
    const root = join(dir, `repo${n++}`);
    mkdirSync(join(root, 'locks'), { recursive: true });
    return { root, store: new FsObjectStore(root) };
  };
  const locks = (root: string) => readdirSync(join(root, 'locks')).sort();

  it('a session holds its own object while it runs and leaves nothing behind', async () => {
    const { root, store } = newStore();
    const id = newSessionId();
    const lock = await acquireLock(store, id, { kind: 'session', what: 'test', waitSeconds: 0 });
    expect(locks(root)).toEqual([`session-${id}.json`]);
    expect(JSON.parse(readFileSync(join(root, lockKey('session', id)), 'utf8'))).toMatchObject({ id, kind: 'session', pid: process.pid, what: 'test' });
    await lock.release();
    expect(locks(root)).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]); // its staging area went with it
  });

  it('sessions run at once; an exclusive waits for them, and sessions wait for an exclusive', async () => {
    const { store } = newStore();
    const a = await acquireLock(store, newSessionId(), { kind: 'session', what: 'backup a', waitSeconds: 0 });
    const b = await acquireLock(store, newSessionId(), { kind: 'session', what: 'backup b', waitSeconds: 0 });
    await expect(acquireLock(store, newSessionId(), { kind: 'exclusive', what: 'rebuild', waitSeconds: 0 }))
      .rejects.toMatchObject({ code: 'REPO_LOCKED', message: expect.stringMatching(/locked by pid \d+ .*backup a.*; pid \d+ .*backup b/) });
    await a.release();
    await b.release();
    const x = await acquireLock(store, newSessionId(), { kind: 'exclusive', what: 'rebuild', waitSeconds: 0 });
    await expect(acquireLock(store, newSessionId(), { kind: 'session', what: 'backup c', waitSeconds: 0 })).rejects.toMatchObject({ code: 'REPO_LOCKED' });
    await expect(acquireLock(store, newSessionId(), { kind: 'exclusive', what: 'another', waitSeconds: 0 })).rejects.toMatchObject({ code: 'REPO_LOCKED' });
    const waiting = acquireLock(store, newSessionId(), { kind: 'session', what: 'backup d', waitSeconds: 5 });
    await new Promise((r) => setTimeout(r, 100));
    await x.release();
    await (await waiting).release();
  });

  it('gc runs beside backups but never beside forget or another gc; the conflict table is symmetric', async () => {
    const kinds = ['session', 'forget', 'gc', 'exclusive'] as const;
    const expected: Record<string, string[]> = { session: ['exclusive'], forget: ['gc', 'exclusive'], gc: ['forget', 'gc', 'exclusive'], exclusive: [...kinds] };
    for (const mine of kinds) {
      for (const other of kinds) expect(conflicts(mine, other), `${mine} beside ${other}`).toBe(expected[mine].includes(other));
      expect(conflicts(mine, 'intent'), `${mine} beside an intent`).toBe(mine !== 'exclusive');
    }
    const { store } = newStore();
    const backup = await acquireLock(store, newSessionId(), { kind: 'session', what: 'backup', waitSeconds: 0 });
    const gc = await acquireLock(store, newSessionId(), { kind: 'gc', what: 'gc', waitSeconds: 0 });
    await expect(acquireLock(store, newSessionId(), { kind: 'forget', what: 'forget', waitSeconds: 0 }))
      .rejects.toMatchObject({ code: 'REPO_LOCKED', message: expect.stringMatching(/locked by pid \d+ .*\(gc, since/) });
    await expect(acquireLock(store, newSessionId(), { kind: 'gc', what: 'gc 2', waitSeconds: 0 })).rejects.toMatchObject({ code: 'REPO_LOCKED' });
    await gc.release();
    await (await acquireLock(store, newSessionId(), { kind: 'forget', what: 'forget', waitSeconds: 0 })).release();
    await backup.release();
  });

  it('removes the locks of dead holders with their staging areas, and no live one', async () => {
    const { root, store } = newStore();
    const dead = deadPid();
    const ids = { deadSession: '1-aaaaaaaaaaaa', rebooted: '2-bbbbbbbbbbbb', remoteOld: '3-cccccccccccc', remoteFresh: '4-dddddddddddd' };
    writeFileSync(join(root, lockKey('session', ids.deadSession)), record(ids.deadSession, 'session', dead));
    writeFileSync(join(root, lockKey('exclusive', ids.rebooted)), record(ids.rebooted, 'exclusive', process.pid).replace(bootId, 'another-boot'));
    writeFileSync(join(root, lockKey('session', ids.remoteOld)), record(ids.remoteOld, 'session', 1, 'elsewhere', new Date(Date.now() - 2 * lockStaleAfterMs).toISOString()));
    writeFileSync(join(root, lockKey('session', ids.remoteFresh)), record(ids.remoteFresh, 'session', 1, 'elsewhere'));
    for (const id of Object.values(ids)) {
      mkdirSync(join(root, 'tmp', id), { recursive: true });
      writeFileSync(join(root, 'tmp', id, 'staged'), 'x');
    }
    mkdirSync(join(root, 'tmp', '5-eeeeeeeeeeee')); // no lock, just made: a session starting
    mkdirSync(join(root, 'tmp', '6-ffffffffffff')); // no lock, old: a session killed before its lock appeared
    const old = new Date(Date.now() - 2 * stagingGraceMs);
    utimesSync(join(root, 'tmp', '6-ffffffffffff'), old, old);
    const stale: string[] = [];
    const lock = await acquireLock(store, newSessionId(), { kind: 'session', what: 'test', waitSeconds: 0, onStale: (l) => stale.push(l) });
    expect(stale.join('\n')).toMatch(/session-1-aaaaaaaaaaaa\.json \(a session for the test: pid \d+ is gone\)/);
    expect(stale.join('\n')).toMatch(/exclusive-2-bbbbbbbbbbbb\.json .*its host rebooted/);
    expect(stale.join('\n')).toMatch(/session-3-cccccccccccc\.json .*not refreshed since .* \(host elsewhere\)/);
    expect(locks(root)).toEqual([`session-${ids.remoteFresh}.json`, `session-${lock.id}.json`].sort());
    expect(readdirSync(join(root, 'tmp')).sort()).toEqual([ids.remoteFresh, '5-eeeeeeeeeeee', lock.id].sort());
    await lock.release();
  });

  it('a garbage lock object blocks by name until it is old, then goes', async () => {
    const { root, store } = newStore();
    const key = lockKey('exclusive', '7-999999999999');
    writeFileSync(join(root, key), 'not json');
    await expect(acquireLock(store, newSessionId(), { kind: 'session', what: 'test', waitSeconds: 0 }))
      .rejects.toMatchObject({ code: 'REPO_LOCKED', message: expect.stringContaining(key) });
    const old = new Date(Date.now() - 2 * lockStaleAfterMs);
    utimesSync(join(root, key), old, old);
    const lock = await acquireLock(store, newSessionId(), { kind: 'session', what: 'test', waitSeconds: 0 });
    expect(locks(root)).toEqual([`session-${lock.id}.json`]);
    await lock.release();
  });
});
