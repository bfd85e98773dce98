// The FUSE adapter (fuse-native, libfuse 2): translates FUSE operations into
// MountTree lookups and reads. Every handler answers exactly once; errors
// become errnos (a damaged chunk is EIO on that read, logged with the chunk
// and restore point, never a crash or a hang). Handlers run on the main
// thread, so nothing here blocks: reads await the worker pool.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { BlockvaultError } from '../engine/core/errors.js';
import type { MountTree, Node } from './tree.js';

type Cb = (code: number, ...rest: unknown[]) => void;
interface FuseCtor {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): { mount(cb: (err?: Error) => void): void; unmount(cb: (err?: Error) => void): void };
  ENOENT: number; EIO: number; EROFS: number; ENOTDIR: number; EISDIR: number; EINVAL: number;
}

function loadFuse(): FuseCtor {
  try {
    return readOnly(createRequire(import.meta.url)('fuse-native') as FuseCtor);
  } catch (err) {
    throw new BlockvaultError('USAGE', `FUSE is not available (${(err as Error).message}); install Debian's fuse and libfuse2`);
  }
}

/**
 * fuse-native has no option for a read-only mount, so its option string gets
 * libfuse's own "ro": the kernel then mounts read-only (shown in /proc/mounts)
 * and answers every write, create, touch or rename with EROFS itself, before
 * anything reaches us.
 */
function readOnly(Fuse: FuseCtor): FuseCtor {
  const Base = Fuse as unknown as new (...args: unknown[]) => { _fuseOptions(): string };
  class ReadOnlyFuse extends Base {
    _fuseOptions(): string {
      const options = super._fuseOptions();
      return options ? `${options},ro` : '-oro';
    }
  }
  return ReadOnlyFuse as unknown as FuseCtor; // statics (ENOENT, ...) come through the class chain
}

/** The device ("major:minor") mounted at `path`, per /proc/self/mountinfo; never touches the mount itself. */
function mountDevice(path: string): string | null {
  const target = resolve(path);
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target);
  return line ? line.split(' ')[2] : null;
}

/** Is `path` a mount point right now? */
export function isMounted(path: string): boolean {
  return mountDevice(path) !== null;
}

/**
 * The kernel gives a FUSE mount 128 KiB of readahead, which keeps a single
 * read request in flight; with 1 MiB it sends several at once and the FUSE
 * threads and our prefetch overlap them (sequential cold reads 1.03-1.6x
 * faster in A/B runs here). The knob is per mount (its bdi) and needs root; without it reads
 * still work, just slower.
 */
export const mountReadaheadBytes = 1024 * 1024;

/**
 * Chunk workers for a mount: one core fewer than the machine has. Each FUSE
 * read passes through a FUSE thread, the main thread and back, and every
 * hop waits for a free core; with all cores decoding ahead, those hops
 * queued behind the workers. On this 2-core VM one worker read the first GiB
 * 1.1-1.2x faster than two in interleaved A/B runs, and boot was unchanged.
 */
export function mountWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Sets the kernel readahead of the mount at `mnt`; returns why not, or null. */
export function setMountReadahead(mnt: string, bytes: number): string | null {
  const device = mountDevice(mnt);
  if (!device) return `${mnt} is not mounted`;
  const knob = `/sys/class/bdi/${device}/read_ahead_kb`;
  try {
    writeFileSync(knob, String(Math.floor(bytes / 1024)));
    return null;
  } catch (err) {
    return `cannot write ${knob}: ${(err as NodeJS.ErrnoException).code}`;
  }
}

/** Checks a mount point and clears a stale one (ENOTCONN: its process died). */
export function prepareMountPoint(path: string): void {
  if (!existsSync('/dev/fuse')) throw new BlockvaultError('USAGE', 'FUSE is not available: /dev/fuse is missing (modprobe fuse)');
  try {
    if (!statSync(path).isDirectory()) throw new BlockvaultError('BAD_INPUT', `mount point ${path} is not a directory`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BlockvaultError('BAD_INPUT', `mount point ${path} does not exist (mkdir it first)`);
    if (code !== 'ENOTCONN') throw err;
    process.stderr.write(`blockvault: ${path} is a stale mount (its process is gone); cleaning it up\n`);
    unmountPath(path, true);
    return;
  }
  if (isMounted(path)) throw new BlockvaultError('REPO_UNAVAILABLE', `${path} is busy: something is already mounted there (blockvault umount ${path})`);
}

export function unmountPath(path: string, lazy = false): void {
  try {
    execFileSync('fusermount', ['-u', ...(lazy ? ['-z'] : []), path], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '');
    if (/busy/i.test(stderr)) throw new BlockvaultError('REPO_UNAVAILABLE', `${path} is busy (a process is using it); close it and retry, or unmount lazily with umount -l`);
    throw new BlockvaultError('BAD_INPUT', `cannot unmount ${path}: ${stderr.trim() || (err as Error).message}`);
  }
}

export interface MountHandle { unmount(): Promise<void> }

const attrTimeoutSeconds = 3600;

export async function mountTree(mnt: string, tree: MountTree, log: (line: string) => void, readaheadBytes = mountReadaheadBytes): Promise<MountHandle> {
  const Fuse = loadFuse();
  const errno = (err: unknown): number => {
    if (err instanceof BlockvaultError) {
      if (err.code === 'CHECKSUM_MISMATCH' || err.code === 'CHUNK_MISSING' || err.code === 'CORRUPT') log(`blockvault mount: EIO: ${err.message}`);
      const name = (err as unknown as { errno?: string }).errno;
      if (name === 'ENOENT' || err.code === 'POINT_NOT_FOUND') return Fuse.ENOENT;
      if (name === 'ENOTDIR') return Fuse.ENOTDIR;
      return Fuse.EIO;
    }
    log(`blockvault mount: internal error: ${(err as Error)?.stack ?? String(err)}`);
    return Fuse.EIO;
  };
  /** Runs an async handler and answers exactly once. */
  const answer = (cb: Cb, work: () => Promise<[number, ...unknown[]]>) => {
    let done = false;
    work().then(
      (args) => { if (!done) { done = true; cb(...args); } },
      (err) => { if (!done) { done = true; cb(errno(err)); } },
    );
  };
  const attr = (node: Node) => {
    const base = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    if (node.kind === 'ext') {
      const s = node.stat;
      return { ...base, mode: s.mode, size: s.size, nlink: s.nlink, uid: s.uid, gid: s.gid, atime: s.atime, mtime: s.mtime, ctime: s.ctime };
    }
    const times = { atime: node.time, mtime: node.time, ctime: node.time };
    if (node.kind === 'dir') return { ...base, ...times, mode: 0o40555, size: 4096, nlink: 2 };
    if (node.kind === 'symlink') return { ...base, ...times, mode: 0o120777, size: node.target.length, nlink: 1 };
    return { ...base, ...times, mode: 0o100444, size: node.size, nlink: 1 };
  };
  const need = async (path: string) => {
    const node = await tree.lookup(path);
    if (!node) throw Object.assign(new BlockvaultError('POINT_NOT_FOUND', `${path}: not found`), { errno: 'ENOENT' });
    return node;
  };
  const ops = {
    getattr: (path: string, cb: Cb) => answer(cb, async () => [0, attr(await need(path))]),
    readdir: (path: string, cb: Cb) => answer(cb, async () => {
      const node = await need(path);
      if (node.kind === 'dir') return [0, await node.entries()];
      if (node.kind === 'ext' && node.stat.isDirectory) return [0, await node.files.readdir(node.path)];
      return [Fuse.ENOTDIR];
    }),
    readlink: (path: string, cb: Cb) => answer(cb, async () => {
      const node = await need(path);
      if (node.kind === 'symlink') return [0, node.target];
      if (node.kind === 'ext' && node.stat.isSymlink) return [0, await node.files.readlink(node.path)];
      return [Fuse.EINVAL];
    }),
    open: (path: string, flags: number, cb: Cb) => answer(cb, async () => {
      if ((flags & 3) !== 0) return [Fuse.EROFS]; // O_WRONLY / O_RDWR: restore points are immutable
      const node = await need(path);
      if (node.kind === 'dir' || (node.kind === 'ext' && node.stat.isDirectory)) return [Fuse.EISDIR];
      return [0, 0];
    }),
    release: (_path: string, _fd: number, cb: Cb) => cb(0),
    read: (path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => answer(cb, async () => {
      const node = await need(path);
      if (node.kind === 'file') return [await node.read(pos, buf.subarray(0, Math.max(0, Math.min(len, node.size - pos))))];
      if (node.kind !== 'ext') return [Fuse.EISDIR];
      const data = await node.files.read(node.path, pos, len);
      data.copy(buf);
      return [data.length];
    }),
  };
  const fuse = new Fuse(mnt, ops, {
    force: false, mkdir: false, fsname: 'blockvault', subtype: 'blockvault',
    kernelCache: true, // restore points never change: keep their pages across opens
    // libfuse 2 has one entry/attr timeout for the whole mount. Long ones are
    // safe here because what changes is never cached by the kernel: directory
    // listings (no FOPEN_CACHE_DIR), symlink targets such as `latest` (no
    // FUSE_CACHE_SYMLINKS) and failed lookups (negative_timeout 0). So new
    // restore points and a moved `latest` show at once, while stats inside
    // the immutable restore points are answered by the kernel.
    entryTimeout: attrTimeoutSeconds, attrTimeout: attrTimeoutSeconds,
    maxRead: 1024 * 1024,
  });
  await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(new BlockvaultError('REPO_UNAVAILABLE', `cannot mount at ${mnt}: ${err.message}`)) : res())));
  const readaheadProblem = readaheadBytes > 0 ? setMountReadahead(mnt, readaheadBytes) : null;
  if (readaheadProblem) log(`blockvault mount: kernel readahead stays at its default (${readaheadProblem}); sequential reads are slower unless run as root`);
  return { unmount: () => new Promise<void>((res) => fuse.unmount(() => res())) };
}
