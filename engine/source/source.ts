// Disk sources: a raw image file or block device (positional reads, known
// size, holes found with SEEK_DATA/SEEK_HOLE), or a stream such as stdin or
// a pipe (sequential reads, size known only at its end).
import { promises as fs, read as readCb } from 'node:fs';
import { blockDeviceBytes } from '../core/block-device.js';
import { BlockvaultError } from '../core/errors.js';
import { diskBytesMax } from '../core/limits.js';
import { nativeApi } from '../core/native.js';

export interface Source {
  readonly description: string;
  /** null for streams: known only once read to the end. */
  readonly sizeBytes: number | null;
  /** Data regions [start, end) in order; null when every byte must be read. */
  readonly dataExtents: ReadonlyArray<readonly [number, number]> | null;
  /**
   * Reads up to into.length bytes at `offset`; returns fewer only at the end
   * of the source. Streams must be read in order (offset = bytes read so far).
   */
  read(into: Uint8Array, offset: number): Promise<number>;
  close(): Promise<void>;
}

function sourceError(description: string, err: unknown, offset?: number): BlockvaultError {
  const e = err as NodeJS.ErrnoException;
  const where = offset === undefined ? '' : ` at offset ${offset}`;
  if (e.code === 'ENOENT') return new BlockvaultError('BAD_INPUT', `source ${description} does not exist`, { cause: err });
  if (e.code === 'EACCES' || e.code === 'EPERM') return new BlockvaultError('BAD_INPUT', `source ${description} is not readable (${e.code})`, { cause: err });
  if (e.code === 'EISDIR') return new BlockvaultError('BAD_INPUT', `source ${description} is a directory, not a disk image`, { cause: err });
  return new BlockvaultError('SOURCE_IO', `cannot read source ${description}${where}: ${e.message}`, { cause: err });
}

async function readFully(fd: number, into: Uint8Array, offset: number | null): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const n = await new Promise<number>((resolve, reject) => {
      readCb(fd, into, done, into.length - done, offset === null ? null : offset + done, (err, bytes) => {
        if (err && err.code === 'EAGAIN') setTimeout(() => resolve(-1), 5);
        else if (err) reject(err);
        else resolve(bytes);
      });
    });
    if (n === 0) break;
    if (n > 0) done += n;
  }
  return done;
}

class FileSource implements Source {
  constructor(
    readonly description: string,
    private readonly file: fs.FileHandle,
    readonly sizeBytes: number,
    readonly dataExtents: ReadonlyArray<readonly [number, number]> | null,
  ) {}
  async read(into: Uint8Array, offset: number): Promise<number> {
    try {
      return await readFully(this.file.fd, into, offset);
    } catch (err) {
      throw sourceError(this.description, err, offset);
    }
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

class StreamSource implements Source {
  readonly sizeBytes = null;
  readonly dataExtents = null;
  private position = 0;
  constructor(readonly description: string, private readonly fd: number, private readonly owned: fs.FileHandle | null) {}
  async read(into: Uint8Array, offset: number): Promise<number> {
    if (offset !== this.position) throw new Error(`stream ${this.description} read out of order`);
    try {
      const n = await readFully(this.fd, into, null);
      this.position += n;
      return n;
    } catch (err) {
      throw sourceError(this.description, err, offset);
    }
  }
  async close(): Promise<void> {
    await this.owned?.close();
  }
}

/** Opens '-' (stdin), a raw image file, a block device, or a pipe. */
export async function openSource(path: string): Promise<Source> {
  if (path === '-') return new StreamSource('stdin', 0, null);
  let file: fs.FileHandle;
  try {
    file = await fs.open(path, 'r');
  } catch (err) {
    throw sourceError(path, err);
  }
  try {
    const stat = await file.stat();
    if (stat.isDirectory()) throw sourceError(path, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    if (stat.isFIFO() || stat.isCharacterDevice() || stat.isSocket()) return new StreamSource(path, file.fd, file);
    const sizeBytes = stat.isBlockDevice() ? await blockDeviceBytes(stat) : stat.size;
    if (sizeBytes > diskBytesMax) throw new BlockvaultError('BAD_INPUT', `source ${path} is ${sizeBytes} bytes; the limit is ${diskBytesMax}`);
    return new FileSource(path, file, sizeBytes, stat.isFile() ? findDataExtents(file.fd, sizeBytes) : null);
  } catch (err) {
    await file.close();
    throw err;
  }
}

function findDataExtents(fd: number, sizeBytes: number): Array<[number, number]> | null {
  const api = nativeApi();
  if (!api) return null;
  try {
    const flat = api.dataExtents(fd, sizeBytes);
    const extents: Array<[number, number]> = [];
    for (let i = 0; i < flat.length; i += 2) extents.push([flat[i], flat[i + 1]]);
    return extents;
  } catch {
    return null; // filesystem without SEEK_DATA: read everything
  }
}
