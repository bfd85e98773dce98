// Files inside an ext2/3/4 partition of a restore point, read through
// libext2fs compiled to WebAssembly (the ext2fs package): no root, no loop
// device, no kernel mount of an untrusted filesystem. libext2fs writes even
// while reading (it updates access times), so its writes go to a small
// in-memory copy-on-write overlay that it reads back: the restore point
// itself is never written.
import { createRequire } from 'node:module';
import { BlockvaultError } from '../engine/core/errors.js';
import type { PointReader } from '../engine/read/point-reader.js';
import type { Partition } from './partitions.js';

interface ExtStat { mode: number; size: number; nlink: number; uid: number; gid: number; atime: Date; mtime: Date; ctime: Date; isDirectory(): boolean; isSymbolicLink(): boolean }
interface ExtHandle { read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>; close(): Promise<void> }
interface ExtPromises {
  lstat(path: string): Promise<ExtStat>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  open(path: string, flags: string): Promise<ExtHandle>;
}
interface Ext2fsModule { mount(disk: unknown, offset: number): Promise<{ promises: ExtPromises }> }

let ext2fs: Ext2fsModule | null = null;
function loadExt2fs(): Ext2fsModule {
  // libext2fs's emscripten glue installs process-wide handlers that rethrow
  // uncaught exceptions and unhandled rejections; keep Node's defaults.
  const before = { ue: process.listeners('uncaughtException'), ur: process.listeners('unhandledRejection') };
  ext2fs ??= createRequire(import.meta.url)('ext2fs') as Ext2fsModule;
  for (const l of process.listeners('uncaughtException')) if (!before.ue.includes(l)) process.off('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection')) if (!before.ur.includes(l)) process.off('unhandledRejection', l);
  return ext2fs;
}

/** libext2fs's own writes (access times), kept in memory only. */
class WriteOverlay {
  private readonly writes: Array<{ offset: number; data: Buffer }> = [];
  private bytes = 0;
  static readonly bytesMax = 64 * 1024 * 1024;

  write(data: Buffer, offset: number): void {
    if (this.bytes + data.length > WriteOverlay.bytesMax) throw new Error('write overlay full');
    this.writes.push({ offset, data: Buffer.from(data) });
    this.bytes += data.length;
  }

  /** Lays the writes that overlap [offset, offset + data.length) over data, oldest first. */
  apply(data: Buffer, offset: number): void {
    for (const w of this.writes) {
      const from = Math.max(offset, w.offset);
      const to = Math.min(offset + data.length, w.offset + w.data.length);
      if (from < to) w.data.copy(data, from - offset, from - w.offset, to - w.offset);
    }
  }
}

export interface FileStat { mode: number; size: number; nlink: number; uid: number; gid: number; atime: Date; mtime: Date; ctime: Date; isDirectory: boolean; isSymlink: boolean }

export class ExtFiles {
  private constructor(private readonly fs: ExtPromises, readonly partition: Partition) {}

  /** Opens the partition's filesystem, or null when it is not ext2/3/4. */
  static async open(reader: PointReader, partition: Partition): Promise<ExtFiles | null> {
    const overlay = new WriteOverlay();
    const disk = {
      async read(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number) {
        if (fileOffset + length > partition.sizeBytes) throw new Error('read past the end of the partition');
        const data = await reader.readAt(partition.startBytes + fileOffset, length);
        overlay.apply(data, fileOffset);
        data.copy(buffer, bufferOffset);
        return { bytesRead: data.length, buffer };
      },
      async write(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number) {
        overlay.write(buffer.subarray(bufferOffset, bufferOffset + length), fileOffset);
        return { bytesWritten: length, buffer };
      },
      async discard() {},
      async flush() {},
    };
    const magic = await reader.readAt(partition.startBytes + 1024 + 56, 2);
    if (magic.length < 2 || magic.readUInt16LE(0) !== 0xef53) return null; // not ext2/3/4
    try {
      const mounted = await loadExt2fs().mount(disk, 0);
      return new ExtFiles(mounted.promises, partition);
    } catch {
      return null;
    }
  }

  private wrap<T>(path: string, p: Promise<T>): Promise<T> {
    return p.catch((err: NodeJS.ErrnoException) => {
      if (err instanceof BlockvaultError) throw err;
      const e = new BlockvaultError(err.code === 'ENOENT' ? 'BAD_INPUT' : 'CORRUPT', `${path}: ${err.code ?? err.message}`);
      (e as unknown as { errno: string }).errno = err.code ?? 'EIO';
      throw e;
    });
  }

  async stat(path: string): Promise<FileStat> {
    const s = await this.wrap(path, this.fs.lstat(path));
    return { mode: s.mode, size: s.size, nlink: s.nlink, uid: s.uid, gid: s.gid, atime: s.atime, mtime: s.mtime, ctime: s.ctime, isDirectory: s.isDirectory(), isSymlink: s.isSymbolicLink() };
  }

  readdir(path: string): Promise<string[]> {
    return this.wrap(path, this.fs.readdir(path));
  }

  readlink(path: string): Promise<string> {
    return this.wrap(path, this.fs.readlink(path));
  }

  async read(path: string, position: number, length: number): Promise<Buffer> {
    const handle = await this.wrap(path, this.fs.open(path, 'r'));
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
}
