// The ceiling of a FUSE filesystem through fuse-native on this machine: a
// read-only file of zeros whose read handler does nothing but answer.
// The mount benchmark reads it cold with the same options as
// `blockvault mount` (kernel_cache, 1 MiB readahead) and reports how close
// the real mount gets. Run: node dist/bench/null-fs.js <mountpoint> <bytes>
import { createRequire } from 'node:module';
import { isMounted, mountReadaheadBytes, setMountReadahead } from '../mount/fuse-mount.js';

type Cb = (code: number, ...rest: unknown[]) => void;
const [mnt, sizeArg] = process.argv.slice(2);
const sizeBytes = Number(sizeArg);
const Fuse = createRequire(import.meta.url)('fuse-native') as {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): { mount(cb: (err?: Error) => void): void; unmount(cb: () => void): void };
  ENOENT: number;
};
const now = new Date();
const stat = (mode: number, size: number) => ({ mode, size, nlink: 1, uid: 0, gid: 0, atime: now, mtime: now, ctime: now });
const fuse = new Fuse(mnt, {
  getattr: (path: string, cb: Cb) => (path === '/' ? cb(0, stat(0o40555, 4096)) : path === '/zero.raw' ? cb(0, stat(0o100444, sizeBytes)) : cb(Fuse.ENOENT)),
  readdir: (_path: string, cb: Cb) => cb(0, ['zero.raw']),
  open: (_path: string, _flags: number, cb: Cb) => cb(0, 0),
  release: (_path: string, _fd: number, cb: Cb) => cb(0),
  read: (_path: string, _fd: number, _buf: Buffer, len: number, pos: number, cb: Cb) => cb(Math.max(0, Math.min(len, sizeBytes - pos))),
}, { kernelCache: true, entryTimeout: 3600, attrTimeout: 3600, maxRead: 1024 * 1024 });
fuse.mount((err) => {
  if (err) throw err;
  setMountReadahead(mnt, mountReadaheadBytes);
  process.stderr.write('null-fs: mounted\n');
  // Exit once unmounted from outside (fusermount -u), as blockvault mount does.
  setInterval(() => { if (!isMounted(mnt)) fuse.unmount(() => process.exit(0)); }, 200);
});
