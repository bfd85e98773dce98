// Files inside a FAT12/16/32 partition of a restore point (EFI system
// partitions, boot partitions), read directly from the partition's bytes:
// boot sector, FAT, directories with long (VFAT) names, cluster chains.
// Read-only; FAT has no owners or modes, so files read as 0644, directories
// as 0755, and read-only files as 0444.
import { BlockvaultError } from '../engine/core/errors.js';
import type { PointReader } from '../engine/read/point-reader.js';
import type { FileStat } from './ext-files.js';
import type { Partition } from './partitions.js';

interface Entry { name: string; isDirectory: boolean; readOnly: boolean; cluster: number; size: number; mtime: Date }

/** Longest cluster chain we follow: bounds a corrupt (looping) FAT. */
const chainClustersMax = 1 << 22;

export class FatFiles {
  private readonly dirs = new Map<string, Entry[]>();

  private constructor(
    private readonly reader: PointReader,
    readonly partition: Partition,
    private readonly kind: 12 | 16 | 32,
    private readonly clusterBytes: number,
    private readonly fatStart: number,
    private readonly rootStart: number, // FAT12/16: fixed root directory region
    private readonly rootBytes: number,
    private readonly dataStart: number,
    private readonly rootCluster: number, // FAT32
    private readonly clusters: number,
  ) {}

  /** Opens the partition's FAT filesystem, or null when it is not FAT. */
  static async open(reader: PointReader, partition: Partition): Promise<FatFiles | null> {
    const b = await reader.readAt(partition.startBytes, 512);
    if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) return null;
    const sectorBytes = b.readUInt16LE(11);
    const perCluster = b[13];
    const reserved = b.readUInt16LE(14);
    const fats = b[16];
    const rootEntries = b.readUInt16LE(17);
    const total = b.readUInt16LE(19) || b.readUInt32LE(32);
    const fatSectors = b.readUInt16LE(22) || b.readUInt32LE(36);
    if (![512, 1024, 2048, 4096].includes(sectorBytes) || perCluster === 0 || (perCluster & (perCluster - 1)) !== 0 || fats === 0 || fatSectors === 0) return null;
    const rootSectors = Math.ceil((rootEntries * 32) / sectorBytes);
    const dataSector = reserved + fats * fatSectors + rootSectors;
    if (total <= dataSector || total * sectorBytes > partition.sizeBytes) return null;
    const clusters = Math.floor((total - dataSector) / perCluster);
    const kind = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
    return new FatFiles(reader, partition, kind, perCluster * sectorBytes, reserved * sectorBytes,
      (reserved + fats * fatSectors) * sectorBytes, rootSectors * sectorBytes, dataSector * sectorBytes,
      kind === 32 ? b.readUInt32LE(44) : 0, clusters);
  }

  private readBytes(offset: number, length: number): Promise<Buffer> {
    return this.reader.readAt(this.partition.startBytes + offset, length);
  }

  private async next(cluster: number): Promise<number | null> {
    let value: number;
    if (this.kind === 12) {
      const b = await this.readBytes(this.fatStart + Math.floor(cluster * 1.5), 2);
      value = cluster % 2 ? b.readUInt16LE(0) >> 4 : b.readUInt16LE(0) & 0xfff;
      return value >= 0xff8 ? null : value;
    }
    if (this.kind === 16) {
      value = (await this.readBytes(this.fatStart + cluster * 2, 2)).readUInt16LE(0);
      return value >= 0xfff8 ? null : value;
    }
    value = (await this.readBytes(this.fatStart + cluster * 4, 4)).readUInt32LE(0) & 0x0fffffff;
    return value >= 0x0ffffff8 ? null : value;
  }

  private async chain(first: number): Promise<number[]> {
    const out: number[] = [];
    for (let c: number | null = first; c !== null; c = await this.next(c)) {
      if (c < 2 || c >= this.clusters + 2 || out.length >= chainClustersMax) {
        throw new BlockvaultError('CORRUPT', `FAT partition ${this.partition.number}: bad cluster chain at cluster ${c}`);
      }
      out.push(c);
    }
    return out;
  }

  private async clusterData(first: number, bytes?: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const c of await this.chain(first)) parts.push(await this.readBytes(this.dataStart + (c - 2) * this.clusterBytes, this.clusterBytes));
    const all = Buffer.concat(parts);
    return bytes === undefined ? all : all.subarray(0, bytes);
  }

  private async entries(path: string): Promise<Entry[]> {
    const key = path === '/' ? '/' : path.replace(/\/$/, '');
    const cached = this.dirs.get(key);
    if (cached) return cached;
    let raw: Buffer;
    if (key === '/') raw = this.kind === 32 ? await this.clusterData(this.rootCluster) : await this.readBytes(this.rootStart, this.rootBytes);
    else {
      const e = await this.entry(key);
      if (!e.isDirectory) throw Object.assign(new BlockvaultError('BAD_INPUT', `${path}: not a directory`), { errno: 'ENOTDIR' });
      raw = await this.clusterData(e.cluster);
    }
    const list = parseDirectory(raw);
    this.dirs.set(key, list);
    return list;
  }

  private async entry(path: string): Promise<Entry> {
    const parts = path.split('/').filter(Boolean);
    let dir = '/';
    let found: Entry | undefined;
    for (const part of parts) {
      found = (await this.entries(dir)).find((e) => e.name.toLowerCase() === part.toLowerCase());
      if (!found) throw Object.assign(new BlockvaultError('BAD_INPUT', `${path}: no such file`), { errno: 'ENOENT' });
      dir = `${dir === '/' ? '' : dir}/${found.name}`;
    }
    if (!found) return { name: '/', isDirectory: true, readOnly: false, cluster: this.rootCluster, size: 0, mtime: new Date(0) };
    return found;
  }

  async stat(path: string): Promise<FileStat> {
    const e = await this.entry(path);
    const mode = e.isDirectory ? 0o40755 : e.readOnly ? 0o100444 : 0o100644;
    return { mode, size: e.isDirectory ? 0 : e.size, nlink: 1, uid: 0, gid: 0, atime: e.mtime, mtime: e.mtime, ctime: e.mtime, isDirectory: e.isDirectory, isSymlink: false };
  }

  async readdir(path: string): Promise<string[]> {
    return (await this.entries(path)).map((e) => e.name).filter((n) => n !== '.' && n !== '..');
  }

  async readlink(path: string): Promise<string> {
    throw Object.assign(new BlockvaultError('BAD_INPUT', `${path}: FAT has no symlinks`), { errno: 'EINVAL' });
  }

  async read(path: string, position: number, length: number): Promise<Buffer> {
    const e = await this.entry(path);
    if (e.isDirectory) throw Object.assign(new BlockvaultError('BAD_INPUT', `${path}: is a directory`), { errno: 'EISDIR' });
    const end = Math.min(e.size, position + length);
    if (position >= end || e.cluster < 2) return Buffer.alloc(0);
    const data = await this.clusterData(e.cluster, e.size); // files on a boot partition are small
    return data.subarray(position, end);
  }
}

/** Directory entries, with VFAT long names assembled; deleted and volume entries skipped. */
function parseDirectory(raw: Buffer): Entry[] {
  const out: Entry[] = [];
  let long: string[] = [];
  for (let at = 0; at + 32 <= raw.length; at += 32) {
    const first = raw[at];
    if (first === 0) break; // end of directory
    const attr = raw[at + 11];
    if (first === 0xe5) { long = []; continue; } // deleted
    if (attr === 0x0f) {
      const piece = Buffer.concat([raw.subarray(at + 1, at + 11), raw.subarray(at + 14, at + 26), raw.subarray(at + 28, at + 32)]).toString('utf16le');
      long[(first & 0x1f) - 1] = piece;
      continue;
    }
    if (attr & 0x08) { long = []; continue; } // volume label
    const base = raw.toString('latin1', at, at + 8).trimEnd();
    const ext = raw.toString('latin1', at + 8, at + 11).trimEnd();
    const short = ext ? `${base}.${ext}` : base;
    const name = long.length ? long.join('').replace(/\u0000[\s\S]*$/, '') : short;
    long = [];
    const time = raw.readUInt16LE(at + 22);
    const date = raw.readUInt16LE(at + 24);
    const mtime = new Date(Date.UTC(1980 + (date >> 9), ((date >> 5) & 15) - 1, date & 31, time >> 11, (time >> 5) & 63, (time & 31) * 2));
    out.push({
      name, isDirectory: Boolean(attr & 0x10), readOnly: Boolean(attr & 0x01),
      cluster: (raw.readUInt16LE(at + 20) << 16) | raw.readUInt16LE(at + 26), size: raw.readUInt32LE(at + 28), mtime,
    });
  }
  return out;
}
