// An ObjectStore wrapper that injects faults, for tests (after kopia's
// FaultyStorage). Per operation (optionally only for keys containing a
// string, and only at the n-th matching call):
//  - failWith(): fail with an errno (ENOSPC, EIO); nothing happens.
//  - crashAfter(n): the n-th mutating call "kills the process": it and every
//    later call throw CrashError. Puts are atomic, so whatever had not
//    returned is lost whole (a streamed object not yet committed never
//    appears; its staged bytes stay behind, as after a real crash).
//  - latency(ms): every call waits this long first.
//  - pauseAt(): the matching call waits until the test releases it, so two
//    writers' calls can be interleaved at a chosen point.
import type { ObjectInfo, ObjectStore, ObjectWriter, RangeReader, StagingArea } from './storage.js';

export class CrashError extends Error {
  constructor(op: string) {
    super(`simulated crash at ${op}`);
    this.name = 'CrashError';
  }
}

export type Op = 'put' | 'putIfAbsent' | 'writer' | 'write' | 'commit' | 'abort' | 'get' | 'read' | 'list' | 'delete' | 'removeStaging';
const mutating = new Set<Op>(['put', 'putIfAbsent', 'writer', 'write', 'commit', 'delete', 'removeStaging']);

export interface Match { op: Op; keyIncludes?: string; nth?: number }
export interface FaultRule extends Match { errno: string }
export interface Pause { /** Resolves when the paused call is reached. */ reached: Promise<void>; release(): void }

interface Armed<T> { rule: T; seen: number }

export class FaultStorage implements ObjectStore {
  private mutations = 0;
  private crashAt = Infinity;
  private crashed = false;
  private delayMs = 0;
  private readonly rules: Armed<FaultRule>[] = [];
  private readonly pauses: Array<Armed<Match> & { hit: () => void; gate: Promise<void> }> = [];

  constructor(private readonly inner: ObjectStore) {}

  get description(): string { return this.inner.description; }
  get mutationCount(): number { return this.mutations; }
  get hasCrashed(): boolean { return this.crashed; }

  failWith(rule: FaultRule): void {
    this.rules.push({ rule, seen: 0 });
  }
  crashAfter(mutations: number): void {
    this.crashAt = mutations;
  }
  latency(ms: number): void {
    this.delayMs = ms;
  }
  pauseAt(match: Match): Pause {
    let hit!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (hit = r));
    const gate = new Promise<void>((r) => (release = r));
    this.pauses.push({ rule: match, seen: 0, hit, gate });
    return { reached, release };
  }

  private matches(m: Armed<Match>, op: Op, key: string): boolean {
    if (m.rule.op !== op || (m.rule.keyIncludes && !key.includes(m.rule.keyIncludes))) return false;
    m.seen += 1;
    return m.seen === (m.rule.nth ?? 1);
  }

  private async check(op: Op, key: string): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    for (const p of this.pauses) {
      if (this.matches(p, op, key)) {
        p.hit();
        await p.gate;
      }
    }
    if (this.crashed) throw new CrashError(`${op} ${key} (after crash)`);
    if (mutating.has(op)) {
      this.mutations += 1;
      if (this.mutations >= this.crashAt) {
        this.crashed = true;
        throw new CrashError(`${op} ${key}`);
      }
    }
    for (const r of this.rules) {
      if (!this.matches(r, op, key)) continue;
      const err = new Error(`${r.rule.errno}: injected fault, ${op} '${key}'`) as NodeJS.ErrnoException;
      err.code = r.rule.errno;
      throw err;
    }
  }

  async prepareEmpty(): Promise<'ready' | 'holds-config' | 'not-empty'> {
    await this.check('put', '');
    return this.inner.prepareEmpty();
  }
  async put(key: string, data: Uint8Array, stagingId: string): Promise<void> {
    await this.check('put', key);
    return this.inner.put(key, data, stagingId);
  }
  async putIfAbsent(key: string, data: Uint8Array, stagingId: string): Promise<void> {
    await this.check('putIfAbsent', key);
    return this.inner.putIfAbsent(key, data, stagingId);
  }
  async writer(key: string, stagingId: string): Promise<ObjectWriter> {
    await this.check('writer', key);
    const w = await this.inner.writer(key, stagingId);
    const outer = this;
    return {
      get bytes() { return w.bytes; },
      async write(data) { await outer.check('write', key); await w.write(data); },
      async commit() { await outer.check('commit', key); await w.commit(); },
      async abort() { if (!outer.crashed) await w.abort(); }, // a dead process cleans nothing up
    };
  }
  async get(key: string, bytesMax: number): Promise<Buffer> {
    await this.check('get', key);
    return this.inner.get(key, bytesMax);
  }
  async openRange(key: string): Promise<RangeReader> {
    await this.check('get', key);
    const r = await this.inner.openRange(key);
    return {
      sizeBytes: r.sizeBytes,
      readAt: async (offset, length, into) => { await this.check('read', key); return r.readAt(offset, length, into); },
      dropCache: (offset, length) => r.dropCache(offset, length),
      close: () => r.close(),
    };
  }
  async list(prefix: string): Promise<ObjectInfo[]> {
    await this.check('list', prefix);
    return this.inner.list(prefix);
  }
  async listKeys(prefix: string): Promise<string[]> {
    await this.check('list', prefix);
    return this.inner.listKeys(prefix);
  }
  async delete(key: string): Promise<void> {
    await this.check('delete', key);
    return this.inner.delete(key);
  }
  async listStaging(): Promise<StagingArea[]> {
    await this.check('list', 'tmp/');
    return this.inner.listStaging();
  }
  async removeStaging(stagingId: string): Promise<void> {
    await this.check('removeStaging', stagingId);
    return this.inner.removeStaging(stagingId);
  }
  localDir(name: string): string | null {
    return this.inner.localDir(name);
  }
}
