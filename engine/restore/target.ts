// Restore targets: a new sparse file (written beside its final name and
// renamed into place only when complete), a block device, or a stream
// (stdout, a pipe) that needs every byte in order.
import { constants, promises as fs, write as writeCb } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { blockDeviceBytes } from '../core/block-device.js';
import { BlockvaultError } from '../core/errors.js';
import { nativeApi } from '../core/native.js';

export interface Target {
  readonly description: string;
  /** Writes must come in disk order (a stream); otherwise several may be in flight, in any order. */
  readonly inOrder: boolean;
  /** Writes data at offset (streams: offsets arrive in order). */
  write(data: Uint8Array, offset: number): Promise<void>;
  /** A run of zero chunks: a hole for files, zeros for devices and streams. */
  zero(offset: number, length: number): Promise<void>;
  finish(sizeBytes: number): Promise<void>;
  abort(): Promise<void>;
  /** What an aborted restore leaves at the target, in words (after abort()). */
  readonly leftAfterAbort: string;
}

function targetError(description: string, err: unknown): BlockvaultError {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof BlockvaultError) return err;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new BlockvaultError('NO_SPACE', `no space left on device writing ${description}`, { cause: err });
  if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return new BlockvaultError('TARGET_IO', `cannot write ${description}: its reader closed the pipe (EPIPE)`, { cause: err });
  return new BlockvaultError('TARGET_IO', `cannot write ${description}: ${e.message}`, { cause: err });
}

const zeros = Buffer.alloc(1024 * 1024);

async function writeAll(fd: number, data: Uint8Array, position: number | null): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = await new Promise<number>((resolve, reject) => {
      writeCb(fd, data, done, data.length - done, position === null ? null : position + done, (err, written) => {
        if (err && err.code === 'EAGAIN') setTimeout(() => resolve(0), 5);
        else if (err) reject(err);
        else resolve(written);
      });
    });
    done += n;
  }
}

async function writeZeros(fd: number, offset: number | null, length: number): Promise<void> {
  for (let at = 0; at < length; at += zeros.length) {
    const n = Math.min(zeros.length, length - at);
    await writeAll(fd, zeros.subarray(0, n), offset === null ? null : offset + at);
  }
}

/** Bytes written between writeback starts (see FileTarget.write). */
const writebackEveryBytes = 32 * 1024 * 1024;
/** Without the native addon: bytes between background fdatasyncs, which stall writes more. */
const syncEveryBytes = 256 * 1024 * 1024;

/** O_DIRECT writes need offset, length and memory aligned to the device's block; 4096 covers them all. */
const directAlignBytes = 4096;

class FileTarget implements Target {
  readonly inOrder = false;
  private unsyncedBytes = 0;
  private syncing: Promise<void> | null = null;
  readonly leftAfterAbort: string;
  /**
   * `direct`: the same file opened with O_DIRECT (a durable restore, where
   * the filesystem allows it). Aligned writes go straight to the disk: no
   * page cache to fill and then flush, which on this VM cost 0.8-4.9 s of
   * kernel time for 1.8 GB against a steady 0.74 s direct (docs/BENCHMARKS.md).
   */
  constructor(readonly description: string, private readonly file: fs.FileHandle, private readonly direct: fs.FileHandle | null,
    private readonly tmp: string, private readonly final: string, private readonly durable: boolean, replacing: boolean) {
    this.leftAfterAbort = replacing ? `the partial file was removed; ${final} is as it was` : `the partial file was removed; ${final} was not created`;
  }
  private aligned(data: Uint8Array, offset: number): boolean {
    return offset % directAlignBytes === 0 && data.length % directAlignBytes === 0 && nativeApi()?.misalignment(data, directAlignBytes) === 0;
  }
  async write(data: Uint8Array, offset: number): Promise<void> {
    const direct = this.direct && this.aligned(data, offset);
    await writeAll(direct ? this.direct!.fd : this.file.fd, data, offset).catch((err) => { throw targetError(this.description, err); });
    if (!this.durable || direct) return;
    // Start writeback while we keep decoding, so the final fsync finds little left to flush.
    // sync_file_range(WRITE) queues the pages and returns; an fdatasync would also wait for them.
    this.unsyncedBytes += data.length;
    const native = nativeApi();
    if (native && this.unsyncedBytes >= writebackEveryBytes) {
      this.unsyncedBytes = 0;
      try {
        native.startWriteback(this.file.fd, 0, 0); // 0, 0: the whole file; pages already queued are skipped
      } catch {
        // only a hint: the final fsync still makes the file durable
      }
    } else if (!native && this.unsyncedBytes >= syncEveryBytes && !this.syncing) {
      this.unsyncedBytes = 0;
      this.syncing = this.file.datasync().finally(() => { this.syncing = null; });
    }
  }
  async zero(): Promise<void> {
    // A hole: the new file reads as zeros there and uses no space.
  }
  async finish(sizeBytes: number): Promise<void> {
    try {
      await this.file.truncate(sizeBytes);
      // fsync before the rename: after a crash the final name never shows a partial image.
      // (One fsync covers the direct writes too: it flushes the disk's cache and the file's metadata.)
      await this.syncing;
      if (this.durable) await this.file.sync();
      await this.direct?.close();
      await this.file.close();
      await fs.rename(this.tmp, this.final);
    } catch (err) {
      throw targetError(this.description, err);
    }
  }
  async abort(): Promise<void> {
    await this.syncing?.catch(() => undefined);
    await this.direct?.close().catch(() => undefined);
    await this.file.close().catch(() => undefined);
    await fs.rm(this.tmp, { force: true });
  }
}

class DeviceTarget implements Target {
  private position = 0;
  get leftAfterAbort(): string {
    return `${this.description} holds a partial image (written up to byte ${this.position})`;
  }
  get inOrder(): boolean {
    return this.sequential;
  }
  constructor(readonly description: string, private readonly fd: number, private readonly sequential: boolean, private readonly owned: fs.FileHandle | null) {}
  async write(data: Uint8Array, offset: number): Promise<void> {
    if (this.sequential && offset !== this.position) await this.zero(this.position, offset - this.position);
    await writeAll(this.fd, data, this.sequential ? null : offset).catch((err) => { throw targetError(this.description, err); });
    this.position = Math.max(this.position, offset + data.length);
  }
  async zero(offset: number, length: number): Promise<void> {
    await writeZeros(this.fd, this.sequential ? null : offset, length).catch((err) => { throw targetError(this.description, err); });
    this.position = Math.max(this.position, offset + length);
  }
  async finish(sizeBytes: number): Promise<void> {
    if (this.position < sizeBytes) await this.zero(this.position, sizeBytes - this.position);
    if (this.owned) {
      await this.owned.sync().catch(() => undefined);
      await this.owned.close();
    }
  }
  async abort(): Promise<void> {
    await this.owned?.close().catch(() => undefined);
  }
}

/**
 * A stream (standard output), every byte in order, through Node's stream
 * machinery: a pipe to a slower reader (| ssh, | gzip, | pv) is waited on
 * until it drains (libuv polls the pipe), never retried on a timer. Node makes
 * a stdout pipe non-blocking, so plain fs.write() calls would see EAGAIN.
 */
export class StreamTarget implements Target {
  readonly inOrder = true;
  readonly leftAfterAbort = 'the output is incomplete';
  private position = 0;
  constructor(private readonly stream: NodeJS.WritableStream, readonly description: string) {}
  private put(data: Uint8Array): Promise<void> {
    // The callback fires once the bytes are handed to the kernel: only then may the caller reuse `data`.
    return new Promise((resolve, reject) => {
      this.stream.write(data, (err) => (err ? reject(targetError(this.description, err)) : resolve()));
    });
  }
  async write(data: Uint8Array, offset: number): Promise<void> {
    if (offset > this.position) await this.zero(this.position, offset - this.position);
    await this.put(data);
    this.position = offset + data.length;
  }
  async zero(offset: number, length: number): Promise<void> {
    for (let at = 0; at < length; at += zeros.length) await this.put(zeros.subarray(0, Math.min(zeros.length, length - at)));
    this.position = offset + length;
  }
  async finish(sizeBytes: number): Promise<void> {
    if (this.position < sizeBytes) await this.zero(this.position, sizeBytes - this.position);
  }
  async abort(): Promise<void> {}
}

/** '-' is stdout. A regular file must not exist unless force is set. */
export async function openTarget(path: string, sizeBytes: number, force: boolean, durable = true): Promise<Target> {
  if (path === '-') return new StreamTarget(process.stdout, 'stdout');
  const stat = await fs.stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw targetError(path, err);
  });
  if (stat?.isDirectory()) throw new BlockvaultError('BAD_INPUT', `target ${path} is a directory; give a file name`);
  if (stat && (stat.isBlockDevice() || stat.isCharacterDevice() || stat.isFIFO())) {
    const file = await fs.open(path, constants.O_WRONLY).catch((err) => { throw targetError(path, err); });
    if (stat.isBlockDevice() && (await blockDeviceBytes(stat)) < sizeBytes) {
      await file.close();
      throw new BlockvaultError('BAD_INPUT', `target ${path} is smaller than the restore point (${sizeBytes} bytes)`);
    }
    return new DeviceTarget(path, file.fd, !stat.isBlockDevice(), file);
  }
  if (stat && !force) throw new BlockvaultError('BAD_INPUT', `target ${path} exists; use --force to replace it`);
  const tmp = join(dirname(path), `.${basename(path)}.blockvault-partial`);
  await fs.rm(tmp, { force: true });
  const file = await fs.open(tmp, 'wx', 0o644).catch((err) => { throw targetError(path, err); });
  // A filesystem without O_DIRECT (tmpfs on older kernels, some FUSE ones) refuses it: written through the page cache.
  // (Test hook: BLOCKVAULT_TEST_BUFFERED_RESTORE=1 takes that path on any filesystem.)
  const wantDirect = durable && nativeApi() !== null && !process.env.BLOCKVAULT_TEST_BUFFERED_RESTORE;
  const direct = wantDirect ? await fs.open(tmp, constants.O_WRONLY | constants.O_DIRECT).catch(() => null) : null;
  return new FileTarget(path, file, direct, tmp, path, durable, stat !== null);
}
