// The object store on a local filesystem, through node:fs. Atomic and
// durable puts the POSIX way, all inside this file: write a staged file in
// tmp/<staging id>/, fsync it, make the key's directories (fsyncing each
// parent that gained an entry), rename into place, fsync the directory.
// A conditional create links the staged file to the key (link fails if the
// key exists), so the object appears whole or not at all.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { nativeApi } from '../core/native.js';
import { dirOf, type ObjectInfo, type ObjectStore, type ObjectWriter, type RangeReader, type StagingArea } from './storage.js';

export const stagingDir = 'tmp';
/** Filesystems without hard links (exFAT): a conditional create falls back to O_EXCL, written in place. */
const noHardLinks = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Drops the first `n` bytes from a list of parts (after a short writev). */
function skipBytes(parts: Uint8Array[], n: number): Uint8Array[] {
  let left = n;
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (left >= p.byteLength) left -= p.byteLength;
    else {
      out.push(left > 0 ? p.subarray(left) : p);
      left = 0;
    }
  }
  return out;
}

async function writeAllAt(file: fs.FileHandle, data: Uint8Array | readonly Uint8Array[], position: number): Promise<number> {
  let parts = (data instanceof Uint8Array ? [data] : [...data]).filter((p) => p.byteLength > 0);
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  let done = 0;
  while (parts.length > 0) {
    const { bytesWritten } = await file.writev(parts.slice(0, 1024), position + done);
    done += bytesWritten;
    parts = skipBytes(parts, bytesWritten);
  }
  return total;
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await fs.open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

class FsRangeReader implements RangeReader {
  constructor(private readonly file: fs.FileHandle, readonly sizeBytes: number, private readonly key: string) {}
  async readAt(offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    const out = into ? Buffer.from(into.buffer, into.byteOffset, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.file.read(out, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new BlockvaultError('CORRUPT', `${this.key}: unexpected end of file at offset ${offset + done} (wanted ${length} bytes at ${offset})`);
      }
      done += bytesRead;
    }
    return out;
  }
  dropCache(offset: number, length: number): void {
    try {
      nativeApi()?.dropCache(this.file.fd, offset, length);
    } catch {
      // a hint only: a filesystem that refuses it keeps its pages
    }
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

export class FsObjectStore implements ObjectStore {
  constructor(readonly root: string) {}

  get description(): string {
    return this.root;
  }
  private abs(key: string): string {
    return join(this.root, key);
  }

  async prepareEmpty(): Promise<'ready' | 'holds-config' | 'not-empty'> {
    await fs.mkdir(this.root, { recursive: true });
    const existing = await fs.readdir(this.root);
    if (existing.length === 0) return 'ready';
    return existing.includes('config') ? 'holds-config' : 'not-empty';
  }

  /** A new staged file in the session's staging area. */
  private async stage(stagingId: string): Promise<{ path: string; file: fs.FileHandle }> {
    const dir = join(this.root, stagingDir, stagingId);
    await fs.mkdir(dir, { recursive: true }).catch(async (err) => {
      await fs.access(this.root, constants.W_OK); // on read-only storage, say so (EROFS/EACCES) rather than what mkdir reports
      throw err;
    });
    const path = join(dir, randomBytes(8).toString('hex'));
    return { path, file: await fs.open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644) };
  }

  /** Creates the key's directories, each new entry made durable in its parent. */
  private async ensureDir(dir: string): Promise<void> {
    if (dir === '') return;
    try {
      await fs.access(this.abs(dir));
      return;
    } catch {
      await this.ensureDir(dirOf(dir));
    }
    await fs.mkdir(this.abs(dir), { recursive: true });
    await syncDirectory(this.abs(dirOf(dir)));
  }

  private async staged(data: Uint8Array, stagingId: string): Promise<string> {
    const { path, file } = await this.stage(stagingId);
    try {
      await writeAllAt(file, data, 0);
      await file.sync();
    } finally {
      await file.close();
    }
    return path;
  }

  async put(key: string, data: Uint8Array, stagingId: string): Promise<void> {
    const path = await this.staged(data, stagingId);
    try {
      await this.ensureDir(dirOf(key));
      await fs.rename(path, this.abs(key));
    } catch (err) {
      await fs.rm(path, { force: true });
      throw err;
    }
    await syncDirectory(this.abs(dirOf(key)));
  }

  async putIfAbsent(key: string, data: Uint8Array, stagingId: string): Promise<void> {
    const path = await this.staged(data, stagingId);
    try {
      await this.ensureDir(dirOf(key));
      await fs.link(path, this.abs(key));
    } catch (err) {
      if (!noHardLinks.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await fs.writeFile(this.abs(key), data, { flag: 'wx', mode: 0o644 });
    } finally {
      await fs.rm(path, { force: true });
    }
    await syncDirectory(this.abs(dirOf(key)));
  }

  async writer(key: string, stagingId: string): Promise<ObjectWriter> {
    const { path, file } = await this.stage(stagingId);
    const store = this;
    let bytes = 0;
    let closed = false;
    const close = async () => {
      if (!closed) await file.close();
      closed = true;
    };
    return {
      get bytes() { return bytes; },
      async write(data) {
        bytes += await writeAllAt(file, data, bytes);
      },
      async commit() {
        await file.sync();
        await close();
        await store.ensureDir(dirOf(key));
        await fs.rename(path, store.abs(key));
        await syncDirectory(store.abs(dirOf(key)));
      },
      async abort() {
        await close().catch(() => undefined);
        await fs.rm(path, { force: true });
      },
    };
  }

  async get(key: string, bytesMax: number): Promise<Buffer> {
    const size = (await fs.stat(this.abs(key))).size;
    if (size > bytesMax) throw new BlockvaultError('CORRUPT', `${key}: ${size} bytes exceeds the limit of ${bytesMax}`);
    return fs.readFile(this.abs(key));
  }

  async openRange(key: string): Promise<RangeReader> {
    const file = await fs.open(this.abs(key), 'r');
    try {
      return new FsRangeReader(file, (await file.stat()).size, key);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const keys = await this.listKeys(prefix);
    const out: ObjectInfo[] = [];
    // Stats in parallel: a listing of 10,000 packs is 10,000 of them.
    for (let i = 0; i < keys.length; i += 256) {
      const part = keys.slice(i, i + 256);
      const stats = await Promise.all(part.map((key) => fs.stat(this.abs(key)).catch(() => null))); // null: deleted meanwhile
      part.forEach((key, k) => { const st = stats[k]; if (st) out.push({ key, sizeBytes: st.size, modifiedMs: st.mtimeMs }); });
    }
    return out;
  }

  async listKeys(prefix: string): Promise<string[]> {
    const dir = dirOf(prefix);
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(this.abs(rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      const dirs: string[] = [];
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (!key.startsWith(prefix) && !prefix.startsWith(`${key}/`)) continue;
        if (e.isDirectory()) dirs.push(key);
        else if (e.isFile()) out.push(key);
      }
      // Subdirectories at once (the I/O pool bounds it): cold, each readdir waits on the disk.
      await Promise.all(dirs.map(walk));
    };
    await walk(dir);
    return out.sort();
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.abs(key), { force: true });
  }

  async listStaging(): Promise<StagingArea[]> {
    const base = join(this.root, stagingDir);
    const names = await fs.readdir(base).catch(() => [] as string[]);
    const out: StagingArea[] = [];
    for (const id of names) {
      const files = await fs.readdir(join(base, id)).catch(() => null);
      const st = await fs.stat(join(base, id)).catch(() => null);
      if (!st) continue;
      let sizeBytes = st.isFile() ? st.size : 0;
      for (const f of files ?? []) sizeBytes += (await fs.stat(join(base, id, f)).catch(() => ({ size: 0 }))).size;
      out.push({ id, sizeBytes, modifiedMs: st.mtimeMs });
    }
    return out;
  }

  async removeStaging(stagingId: string): Promise<void> {
    await fs.rm(join(this.root, stagingDir, stagingId), { recursive: true, force: true });
  }

  localDir(name: string): string {
    return join(this.root, name);
  }
}
