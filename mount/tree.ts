// The mounted tree, independent of FUSE:
//   /<vm>/<disk>/<UTC time>_<short id>/disk.raw         the whole disk
//   /<vm>/<disk>/<UTC time>_<short id>/part<N>.raw      each MBR/GPT partition
//   /<vm>/<disk>/<UTC time>_<short id>/files/part<N>/   files of ext2/3/4 and FAT partitions
//   /<vm>/<disk>/<UTC time>_<short id>/files/           or the filesystem itself, on a disk with no partition table
//   /<vm>/<disk>/latest -> the newest restore point directory
//   /<vm>/@groups/<UTC time>_<short id>/<disk> -> ../../<disk>/<its point>   a VM restore point of several disks
//   ('@' starts no disk name, so '@groups' never collides with one)
// Restore points are opened lazily and kept open (a few at a time).
import { BlockvaultError } from '../engine/core/errors.js';
import { ChunkCache } from '../engine/read/chunk-cache.js';
import { PointReader } from '../engine/read/point-reader.js';
import type { GroupEntry, PointEntry } from '../engine/repo/chunk-index.js';
import type { Repository } from '../engine/repo/repository.js';
import type { WorkerPool } from '../engine/workers/pool.js';
import type { FileStat } from './ext-files.js';
import { openPartitionFiles, type PartitionFiles } from './partition-files.js';
import { parsePartitions, partitionTableBytes, type Partition } from './partitions.js';

export type Node =
  | { kind: 'dir'; time: Date; entries: () => Promise<string[]> }
  | { kind: 'symlink'; time: Date; target: string }
    /** Fills `target` from `offset`; returns the bytes filled (fewer at the end). */
  | { kind: 'file'; time: Date; size: number; read: (offset: number, target: Uint8Array) => Promise<number> }
  | { kind: 'ext'; stat: FileStat; files: PartitionFiles; path: string };

interface OpenedPoint { reader: PointReader; partitions: Partition[]; ext: Map<number, PartitionFiles | null> }

const openPointsMax = 16;
const catalogRefreshMs = 1000;
const stableNodesMax = 100_000;

const groupsDirName = '@groups';

export function pointDirName(p: PointEntry): string {
  return `${p.time.slice(0, 19)}Z_${p.id.slice(0, 8)}`;
}

export class MountTree {
  private readonly cache: ChunkCache;
  private readonly opened = new Map<string, Promise<OpenedPoint>>();
  private refreshedAt = 0;
  /** Nodes inside restore-point directories never change: resolve each path once. */
  private readonly stable = new Map<string, Node>();
  readonly mountedAt = new Date();

  /** checkContent: re-hash every chunk read with SHA-256 (off by default in the mount; see FetchOptions). */
  constructor(private readonly repo: Repository, private readonly pool: WorkerPool, cacheBytes: number, private readonly checkContent = false) {
    this.cache = new ChunkCache(cacheBytes, repo.config.chunkBytes);
  }

  /** Picks up restore points committed since the mount started (throttled). */
  private async points(): Promise<PointEntry[]> {
    if (Date.now() - this.refreshedAt > catalogRefreshMs) {
      this.refreshedAt = Date.now();
      await this.repo.reconcile();
    }
    return this.repo.points.list();
  }

  /**
   * Opens the newest restore point of each disk (up to openPointsMax, a few
   * at a time): its map root and partition table are then in memory before
   * the mount appears, and a first read (a boot, a dd, a copy) starts on
   * data, not on catalog I/O. Failures are left for the first real access.
   */
  async warm(): Promise<number> {
    const newest = new Map<string, PointEntry>();
    for (const p of await this.points()) if (!newest.has(`${p.vm}/${p.disk}`)) newest.set(`${p.vm}/${p.disk}`, p);
    const entries = [...newest.values()].slice(0, openPointsMax);
    let next = 0;
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (next < entries.length) await this.open(entries[next++]).catch(() => undefined);
    }));
    return entries.length;
  }

  private open(entry: PointEntry): Promise<OpenedPoint> {
    let opened = this.opened.get(entry.id);
    if (!opened) {
      opened = (async () => {
        const point = await this.repo.points.open(entry);
        const reader = new PointReader(this.repo, this.pool, point, this.cache, `${entry.vm}/${entry.disk}@${entry.id}`, { checkContent: this.checkContent, dropPackCache: true });
        // A damaged partition table costs the partition views only: disk.raw still opens,
        // and its reads of the damaged chunk fail (EIO) like any other.
        const head = await reader.readAt(0, Math.min(partitionTableBytes, reader.sizeBytes)).catch((err) => {
          if (err instanceof BlockvaultError) return Buffer.alloc(0);
          throw err;
        });
        return { reader, partitions: parsePartitions(head, reader.sizeBytes), ext: new Map() };
      })();
      opened.catch(() => this.opened.delete(entry.id));
      this.opened.set(entry.id, opened);
      if (this.opened.size > openPointsMax) this.opened.delete(this.opened.keys().next().value as string);
    }
    return opened;
  }

  private async extFiles(opened: OpenedPoint, part: Partition): Promise<PartitionFiles | null> {
    if (!opened.ext.has(part.number)) opened.ext.set(part.number, await openPartitionFiles(opened.reader, part));
    return opened.ext.get(part.number) ?? null;
  }

  private async extPartitions(opened: OpenedPoint): Promise<Partition[]> {
    const out: Partition[] = [];
    for (const p of opened.partitions) if (await this.extFiles(opened, p)) out.push(p);
    return out;
  }

  /** A disk with no partition table may hold a filesystem itself (a whole-disk ext4 image): files/ is then its root. */
  private async wholeDiskFiles(opened: OpenedPoint): Promise<PartitionFiles | null> {
    if (opened.partitions.length > 0) return null;
    return this.extFiles(opened, { number: 0, startBytes: 0, sizeBytes: opened.reader.sizeBytes, type: '', name: '' });
  }

  private async hasFiles(opened: OpenedPoint): Promise<boolean> {
    return (await this.extPartitions(opened)).length > 0 || (await this.wholeDiskFiles(opened)) !== null;
  }

  private async fileNode(files: PartitionFiles, innerPath: string): Promise<Node | null> {
    try {
      return { kind: 'ext', stat: await files.stat(innerPath), files, path: innerPath };
    } catch (err) {
      if (err instanceof BlockvaultError && err.code === 'BAD_INPUT') return null;
      throw err;
    }
  }

  /** /<vm>/@groups/...: a directory per VM restore point, a symlink per disk to that disk's restore point directory. */
  private groupNode(rest: string[], groups: GroupEntry[], points: PointEntry[]): Node | null {
    const name = (g: GroupEntry) => `${g.time.slice(0, 19)}Z_${g.id.slice(0, 8)}`;
    if (rest.length === 0) return { kind: 'dir', time: this.mountedAt, entries: async () => groups.map(name).sort() };
    const group = groups.find((g) => name(g) === rest[0]);
    if (!group) return null;
    const time = new Date(group.time);
    if (rest.length === 1) return { kind: 'dir', time, entries: async () => group.disks.map((d) => d.disk).sort() };
    const member = rest.length === 2 ? group.disks.find((d) => d.disk === rest[1]) : undefined;
    const entry = member && points.find((p) => p.id === member.point);
    return entry ? { kind: 'symlink', time, target: `../../${entry.disk}/${pointDirName(entry)}` } : null;
  }

  /** The node at a path, or null (ENOENT). */
  async lookup(path: string): Promise<Node | null> {
    const known = this.stable.get(path);
    if (known) return known;
    const node = await this.resolve(path);
    const parts = path.split('/').filter(Boolean);
    if (node && parts.length >= 3 && parts[2] !== 'latest') {
      if (this.stable.size >= stableNodesMax) this.stable.delete(this.stable.keys().next().value as string);
      this.stable.set(path, node);
    }
    return node;
  }

  private async resolve(path: string): Promise<Node | null> {
    const parts = path.split('/').filter(Boolean);
    const points = await this.points();
    const dir = (time: Date, entries: () => Promise<string[]>): Node => ({ kind: 'dir', time, entries });
    if (parts.length === 0) return dir(this.mountedAt, async () => [...new Set(points.map((p) => p.vm))].sort());
    const [vm, disk, pointName, leaf, partName, ...inner] = parts;
    const ofVm = points.filter((p) => p.vm === vm);
    if (ofVm.length === 0) return null;
    const groups = this.repo.index.allGroups().filter((g) => g.vm === vm);
    if (parts.length === 1) return dir(this.mountedAt, async () => [...[...new Set(ofVm.map((p) => p.disk))].sort(), ...(groups.length ? [groupsDirName] : [])]);
    if (disk === groupsDirName) return this.groupNode(parts.slice(2), groups, points);
    const ofDisk = ofVm.filter((p) => p.disk === disk);
    if (ofDisk.length === 0) return null;
    if (parts.length === 2) return dir(new Date(ofDisk[0].time), async () => [...ofDisk.map(pointDirName).sort(), 'latest']);
    if (pointName === 'latest') {
      if (parts.length > 3) return null; // the kernel follows the symlink itself
      return { kind: 'symlink', time: new Date(ofDisk[0].time), target: pointDirName(ofDisk[0]) };
    }
    const entry = ofDisk.find((p) => pointDirName(p) === pointName);
    if (!entry) return null;
    const time = new Date(entry.time);
    const opened = await this.open(entry);
    const { reader, partitions } = opened;
    if (parts.length === 3) {
      return dir(time, async () => ['disk.raw', ...partitions.map((p) => `part${p.number}.raw`), ...((await this.hasFiles(opened)) ? ['files'] : [])]);
    }
    if (leaf === 'disk.raw' && parts.length === 4) return { kind: 'file', time, size: reader.sizeBytes, read: (o, t) => reader.readInto(o, t) };
    const partFile = /^part(\d+)\.raw$/.exec(leaf);
    if (partFile && parts.length === 4) {
      const p = partitions.find((x) => x.number === Number(partFile[1]));
      if (!p) return null;
      return { kind: 'file', time, size: p.sizeBytes, read: (o, t) => reader.readInto(p.startBytes + o, t.subarray(0, Math.max(0, Math.min(t.length, p.sizeBytes - o)))) };
    }
    if (leaf !== 'files') return null;
    const whole = await this.wholeDiskFiles(opened);
    if (whole) return this.fileNode(whole, `/${parts.slice(4).join('/')}`);
    if (parts.length === 4) return dir(time, async () => (await this.extPartitions(opened)).map((p) => `part${p.number}`));
    const partMatch = /^part(\d+)$/.exec(partName);
    const part = partMatch && partitions.find((x) => x.number === Number(partMatch[1]));
    const files = part ? await this.extFiles(opened, part) : null;
    if (!files) return null;
    return this.fileNode(files, `/${inner.join('/')}`);
  }
}
