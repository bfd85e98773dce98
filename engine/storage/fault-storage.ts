// A Storage wrapper that injects faults, for tests (after kopia's
// fault-injecting storage):
//  - failWith(): make a chosen operation fail with an errno (ENOSPC, EIO).
//  - crashAfter(n): the n-th mutating operation "kills the process": it and
//    every later call throw CrashError.
//  - powerLoss(): then drop what a real power cut would: bytes appended
//    since the file's last fsync, and directory entries (creates, renames)
//    since the directory's last fsync. kill -9 never loses the page cache,
//    so only this catches a missing fsync.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { dirOf, type AppendHandle, type ReadHandle, type Storage } from './storage.js';

export class CrashError extends Error {
  constructor(op: string) {
    super(`simulated crash at ${op}`);
    this.name = 'CrashError';
  }
}

type Op = 'create' | 'append' | 'sync' | 'rename' | 'syncDir' | 'remove' | 'open' | 'read';
interface FileState { path: string; syncedBytes: number }
type DirOp = { dir: string; kind: 'create'; path: string; file: FileState } | { dir: string; kind: 'rename'; from: string; to: string; file?: FileState };

export interface FaultRule { op: Op; pathIncludes?: string; nth?: number; errno: string }

export class FaultStorage implements Storage {
  readonly root: string;
  private mutations = 0;
  private crashAt = Infinity;
  private crashed = false;
  private readonly files = new Map<string, FileState>();
  private pending: DirOp[] = [];
  private rules: (FaultRule & { seen: number })[] = [];

  constructor(private readonly inner: Storage) {
    this.root = inner.root;
  }

  /** Makes the rule's nth matching call (default the first) fail with errno. */
  failWith(rule: FaultRule): void {
    this.rules.push({ ...rule, seen: 0 });
  }
  crashAfter(mutations: number): void {
    this.crashAt = mutations;
  }
  get mutationCount(): number {
    return this.mutations;
  }
  get hasCrashed(): boolean {
    return this.crashed;
  }

  private check(op: Op, path: string, mutating: boolean): void {
    if (this.crashed) throw new CrashError(`${op} ${path} (after crash)`);
    if (mutating) {
      this.mutations += 1;
      if (this.mutations >= this.crashAt) {
        this.crashed = true;
        throw new CrashError(`${op} ${path}`);
      }
    }
    for (const rule of this.rules) {
      if (rule.op !== op || (rule.pathIncludes && !path.includes(rule.pathIncludes))) continue;
      rule.seen += 1;
      if (rule.seen === (rule.nth ?? 1)) {
        const err = new Error(`${rule.errno}: injected fault, ${op} '${path}'`) as NodeJS.ErrnoException;
        err.code = rule.errno;
        throw err;
      }
    }
  }

  /** Reverts the directory to what survives a power cut at the crash point. */
  async powerLoss(): Promise<void> {
    for (const op of this.pending.reverse()) {
      if (op.kind === 'create') {
        if (op.file.path !== op.path) continue; // renamed since; that rename decides
        await fs.rm(join(this.root, op.path), { force: true });
        this.files.delete(op.path);
      } else {
        await fs.rename(join(this.root, op.to), join(this.root, op.from)).catch(() => undefined);
        if (op.file) op.file.path = op.from;
      }
    }
    this.pending = [];
    for (const file of this.files.values()) {
      await fs.truncate(join(this.root, file.path), file.syncedBytes).catch(() => undefined);
    }
  }

  exists(path: string): Promise<boolean> {
    this.check('read', path, false);
    return this.inner.exists(path);
  }
  mkdirs(path: string): Promise<void> {
    this.check('create', path, true);
    return this.inner.mkdirs(path); // directories are modeled as durable
  }
  async create(path: string): Promise<AppendHandle> {
    this.check('create', path, true);
    const handle = await this.inner.create(path);
    const file: FileState = { path, syncedBytes: 0 };
    this.files.set(path, file);
    this.pending.push({ dir: dirOf(path), kind: 'create', path, file });
    const outer = this;
    return {
      get bytes() {
        return handle.bytes;
      },
      async append(data) {
        outer.check('append', file.path, true);
        await handle.append(data);
      },
      async sync() {
        outer.check('sync', file.path, true);
        await handle.sync();
        file.syncedBytes = handle.bytes;
      },
      close: () => handle.close(),
    };
  }
  async open(path: string): Promise<ReadHandle> {
    this.check('open', path, false);
    const handle = await this.inner.open(path);
    return {
      sizeBytes: handle.sizeBytes,
      readAt: (offset, length, into) => {
        this.check('read', path, false);
        return handle.readAt(offset, length, into);
      },
      dropCache: (offset, length) => handle.dropCache(offset, length),
      close: () => handle.close(),
    };
  }
  readAll(path: string, bytesMax: number): Promise<Buffer> {
    this.check('read', path, false);
    return this.inner.readAll(path, bytesMax);
  }
  async rename(from: string, to: string): Promise<void> {
    this.check('rename', to, true);
    await this.inner.rename(from, to);
    const file = this.files.get(from);
    if (file) {
      this.files.delete(from);
      file.path = to;
      this.files.set(to, file);
    }
    this.pending.push({ dir: dirOf(to), kind: 'rename', from, to, file });
  }
  async syncDir(path: string): Promise<void> {
    this.check('syncDir', path, true);
    await this.inner.syncDir(path);
    this.pending = this.pending.filter((op) => op.dir !== path);
  }
  async remove(path: string): Promise<void> {
    this.check('remove', path, true);
    await this.inner.remove(path);
    this.files.delete(path);
  }
  list(path: string): Promise<string[]> {
    this.check('read', path, false);
    return this.inner.list(path);
  }
  sizeOf(path: string): Promise<number> {
    this.check('read', path, false);
    return this.inner.sizeOf(path);
  }
}
