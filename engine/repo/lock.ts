// Locks as objects (docs/FORMAT.md "Sessions and locks"). Every writer is a
// session with its own id, registered by a lock object of its own under
// locks/, refreshed while it runs and deleted when it ends:
//   locks/session-<id>.json     a backup: many may run at once
//   locks/forget-<id>.json      forget: beside backups, never beside gc
//   locks/gc-<id>.json          gc: beside backups, never beside forget or another gc
//   locks/exclusive-<id>.json   an operation that rewrites everything (index rebuild, upgrade)
//   locks/intent-<id>.json      an exclusive operation waiting: keeps new holders out
// Taking a lock: create our own object (a conditional create), then list
// locks/, and back off (delete our object, wait, retry) while a live lock
// that conflicts with ours exists (conflicts(), below). Safety: of two conflicting holders, the
// one whose object was created second listed after the first's creation,
// saw it, and backed off. Names are unique, so deleting a stale object can
// never delete a fresh one (no takeover race, however many waiters).
// Stale: on this host, a dead pid or another boot; from another host, no
// refresh for staleAfterMs.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { BlockvaultError } from '../core/errors.js';
import type { ObjectInfo, ObjectStore } from '../storage/storage.js';
import { locksDir } from './layout.js';
import { isAlive } from '../core/process-alive.js';

export type LockKind = 'session' | 'forget' | 'gc' | 'exclusive' | 'intent';
export type HeldKind = Exclude<LockKind, 'intent'>;

/**
 * Whether a holder of `mine` must back off while a live `other` exists.
 * gc and forget exclude each other because gc's safety argument needs every
 * restore point written after its mark began to still exist when it sweeps
 * (docs/FORMAT.md "Garbage collection").
 */
export function conflicts(mine: HeldKind, other: LockKind): boolean {
  if (other === 'intent') return mine !== 'exclusive'; // an exclusive waiter keeps new holders out, so it is not starved
  if (mine === 'exclusive' || other === 'exclusive') return true;
  if (mine === 'gc') return other === 'gc' || other === 'forget';
  if (mine === 'forget') return other === 'gc';
  return false;
}
export interface LockRecord { id: string; kind: LockKind; pid: number; host: string; bootId: string; started: string; refreshed: string; what: string }

/** A live holder refreshes its lock this often; one from another host unrefreshed for staleAfterMs is stale. */
export const lockRefreshMs = Number(process.env.BLOCKVAULT_LOCK_REFRESH_MS ?? 60_000);
export const lockStaleAfterMs = 10 * lockRefreshMs;
/** A staging area with no lock object is left alone this long: its session may be just starting. */
export const stagingGraceMs = Number(process.env.BLOCKVAULT_STAGING_GRACE_MS ?? 60_000);
const lockRecordBytesMax = 4096;

let cachedBootId: string | null = null;
function bootId(): string {
  if (cachedBootId) return cachedBootId;
  try {
    cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    cachedBootId = 'unknown';
  }
  return cachedBootId;
}

/** Session ids sort by start time: `<ms since epoch, base 36>-<random>`. */
export function newSessionId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

export function lockKey(kind: LockKind, id: string): string {
  return `${locksDir}/${kind}-${id}.json`;
}

function parseLockKey(key: string): { kind: LockKind; id: string } | null {
  const m = /^locks\/(session|forget|gc|exclusive|intent)-([0-9a-z]+-[0-9a-f]+)\.json$/.exec(key);
  return m ? { kind: m[1] as LockKind, id: m[2] } : null;
}

/** Why a lock is stale, or null while its holder may be alive. */
export function staleness(record: LockRecord | null, info: ObjectInfo, now = Date.now()): string | null {
  if (!record) return now - info.modifiedMs > lockStaleAfterMs ? 'unreadable and not refreshed' : null;
  if (record.host === hostname()) {
    if (record.bootId !== bootId()) return `its host rebooted since ${record.started}`;
    if (!isAlive(record.pid)) return `pid ${record.pid} is gone`;
    return null;
  }
  const age = now - Date.parse(record.refreshed);
  return Number.isFinite(age) && age <= lockStaleAfterMs ? null : `not refreshed since ${record.refreshed} (host ${record.host})`;
}

export function describeHolder(r: LockRecord): string {
  return `pid ${r.pid} on ${r.host} (${r.what}, since ${r.started})`;
}

async function readRecord(store: ObjectStore, key: string): Promise<LockRecord | null> {
  try {
    const r = JSON.parse((await store.get(key, lockRecordBytesMax)).toString('utf8')) as LockRecord;
    return typeof r?.pid === 'number' && typeof r?.host === 'string' ? r : null;
  } catch {
    return null; // gone, being written, or garbage: judged by its age
  }
}

export interface LiveLock { key: string; kind: LockKind; id: string; record: LockRecord | null }

/**
 * The live locks, after removing stale ones (and their staging areas). A
 * stale object's name is never reused, so deleting it is safe whoever else
 * is doing the same.
 */
export async function liveLocks(store: ObjectStore, onStale?: (line: string) => void): Promise<LiveLock[]> {
  const live: LiveLock[] = [];
  for (const info of await store.list(`${locksDir}/`)) {
    const parsed = parseLockKey(info.key);
    if (!parsed) continue;
    const record = await readRecord(store, info.key);
    const why = staleness(record, info);
    if (why) {
      onStale?.(`blockvault: removing stale lock ${info.key} (${record ? `${record.what}: ` : ''}${why})`);
      await store.delete(info.key);
      await store.removeStaging(parsed.id);
      continue;
    }
    live.push({ key: info.key, ...parsed, record });
  }
  return live;
}

/** Removes staging areas no live lock owns (a dead session's temporary objects). */
export async function removeDeadStaging(store: ObjectStore, live: LiveLock[], now = Date.now()): Promise<void> {
  const owned = new Set(live.map((l) => l.id));
  for (const area of await store.listStaging()) {
    if (owned.has(area.id) || now - area.modifiedMs < stagingGraceMs) continue;
    await store.removeStaging(area.id);
  }
}

export interface HeldLock {
  readonly id: string;
  release(): Promise<void>;
}

export interface LockRequest {
  kind: HeldKind;
  what: string;
  waitSeconds: number;
  onWait?: (holder: string) => void;
  onStale?: (line: string) => void;
}

function recordFor(id: string, kind: LockKind, what: string): LockRecord {
  const now = new Date().toISOString();
  return { id, kind, pid: process.pid, host: hostname(), bootId: bootId(), started: now, refreshed: now, what };
}

const jitter = (attempt: number) => new Promise((r) => setTimeout(r, 20 + Math.random() * Math.min(400, 25 * 2 ** Math.min(attempt, 4))));

/** Takes a session (shared) or exclusive lock; waits up to waitSeconds for conflicting holders. */
export async function acquireLock(store: ObjectStore, id: string, req: LockRequest): Promise<HeldLock> {
  try {
    return await takeLock(store, id, req);
  } catch (err) {
    // Whatever went wrong (no space, locked, a failing store), leave nothing of ours behind.
    await store.removeStaging(id).catch(() => undefined);
    for (const kind of ['session', 'forget', 'gc', 'exclusive', 'intent'] as const) await store.delete(lockKey(kind, id)).catch(() => undefined);
    throw err;
  }
}

async function takeLock(store: ObjectStore, id: string, req: LockRequest): Promise<HeldLock> {
  const encode = (r: LockRecord) => Buffer.from(JSON.stringify(r));
  const own = lockKey(req.kind, id);
  const intent = req.kind === 'exclusive' ? lockKey('intent', id) : null;
  const record = recordFor(id, req.kind, req.what);
  const deadline = Date.now() + req.waitSeconds * 1000;
  const fail = (err: unknown, key: string) => {
    if (typeof (err as NodeJS.ErrnoException)?.code !== 'string' || err instanceof BlockvaultError) return err; // a bug, or a test's simulated crash
    return new BlockvaultError('REPO_UNAVAILABLE', `cannot create lock ${key} in ${store.description}: ${(err as Error).message}`, { cause: err });
  };
  const intentRecord = recordFor(id, 'intent', req.what);
  let intentPut = 0;
  const putIntent = async () => {
    if (!intent || Date.now() - intentPut < lockRefreshMs) return;
    intentRecord.refreshed = new Date().toISOString(); // refreshed while it waits, or another host would judge it stale
    await store.put(intent, encode(intentRecord), id).catch((err) => { throw fail(err, intent); });
    intentPut = Date.now();
  };
  let told = false;
  for (let attempt = 0; ; attempt++) {
    await putIntent();
    await store.putIfAbsent(own, encode(record), id).catch((err) => { throw fail(err, own); });
    const live = await liveLocks(store, req.onStale);
    const blocking = live.filter((l) => l.id !== id && conflicts(req.kind, l.kind));
    if (blocking.length === 0) {
      await removeDeadStaging(store, live);
      return holdLock(store, id, [own, ...(intent ? [intent] : [])], record, encode);
    }
    await store.delete(own);
    const who = blocking.map((c) => (c.record ? describeHolder(c.record) : c.key)).join('; ');
    if (Date.now() >= deadline) {
      throw new BlockvaultError('REPO_LOCKED', `repository ${store.description} is locked by ${who}; waited ${req.waitSeconds}s (see --lock-wait)`);
    }
    if (!told) req.onWait?.(who);
    told = true;
    await jitter(attempt);
  }
}

/** Keeps a taken lock fresh until released. */
function holdLock(store: ObjectStore, id: string, keys: string[], record: LockRecord, encode: (r: LockRecord) => Buffer): HeldLock {
  const timer = setInterval(() => {
    record.refreshed = new Date().toISOString();
    void store.put(keys[0], encode(record), id).catch(() => undefined); // a missed refresh is retried at the next tick
  }, lockRefreshMs);
  timer.unref();
  let released = false;
  return {
    id,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      // Staging first: a crash in between leaves a lock naming a dead holder, and whoever removes it removes its staging too.
      await store.removeStaging(id);
      for (const key of keys) await store.delete(key);
    },
  };
}
