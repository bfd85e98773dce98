// Storage on a local filesystem through node:fs.
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { nativeApi } from '../source/native.js';
import type { AppendHandle, ReadHandle, Storage } from './storage.js';

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

class FsAppendHandle implements AppendHandle {
  bytes = 0;
  constructor(private readonly file: fs.FileHandle) {}
  async append(data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    let parts = (data instanceof Uint8Array ? [data] : [...data]).filter((p) => p.byteLength > 0);
    const total = parts.reduce((a, p) => a + p.byteLength, 0);
    let done = 0;
    while (parts.length > 0) {
      const { bytesWritten } = await this.file.writev(parts.slice(0, 1024), this.bytes + done);
      done += bytesWritten;
      parts = skipBytes(parts, bytesWritten);
    }
    this.bytes += total;
  }
  sync(): Promise<void> {
    return this.file.sync();
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

class FsReadHandle implements ReadHandle {
  constructor(private readonly file: fs.FileHandle, readonly sizeBytes: number, private readonly path: string) {}
  async readAt(offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    const out = into ? Buffer.from(into.buffer, into.byteOffset, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.file.read(out, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new BlockvaultError('CORRUPT', `${this.path}: unexpected end of file at offset ${offset + done} (wanted ${length} bytes at ${offset})`);
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

export class FsStorage implements Storage {
  constructor(readonly root: string) {}

  private abs(path: string): string {
    return join(this.root, path);
  }
  async exists(path: string): Promise<boolean> {
    try {
      await fs.stat(this.abs(path));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
  async mkdirs(path: string): Promise<void> {
    await fs.mkdir(this.abs(path), { recursive: true });
  }
  async create(path: string): Promise<AppendHandle> {
    const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY;
    return new FsAppendHandle(await fs.open(this.abs(path), flags, 0o644));
  }
  async open(path: string): Promise<ReadHandle> {
    const file = await fs.open(this.abs(path), 'r');
    try {
      return new FsReadHandle(file, (await file.stat()).size, path);
    } catch (err) {
      await file.close();
      throw err;
    }
  }
  async readAll(path: string, bytesMax: number): Promise<Buffer> {
    const size = await this.sizeOf(path);
    if (size > bytesMax) throw new BlockvaultError('CORRUPT', `${path}: ${size} bytes exceeds the limit of ${bytesMax}`);
    return fs.readFile(this.abs(path));
  }
  rename(from: string, to: string): Promise<void> {
    return fs.rename(this.abs(from), this.abs(to));
  }
  async syncDir(path: string): Promise<void> {
    const dir = await fs.open(this.abs(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
  async remove(path: string): Promise<void> {
    await fs.rm(this.abs(path), { force: true });
  }
  async list(path: string): Promise<string[]> {
    try {
      return (await fs.readdir(this.abs(path))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
  async sizeOf(path: string): Promise<number> {
    return (await fs.stat(this.abs(path))).size;
  }
}
