// The LMDB index: a cache of what packs and restore-point files hold.
//   chunks: chunk id (32 bytes) -> location (41 bytes, below)
//   packs:  pack id hex -> { bytes, records }
//   points: restore point id -> catalog entry
//   meta:   counters and the index format version
// Everything here can be rebuilt from the packs and points directories.
import { open, type Database, type RootDatabase } from 'lmdb';
import { assert, BlockvaultError } from '../core/errors.js';
import type { Codec, PackRecord } from '../format/pack-format.js';

/** 3: catalog entries of paged points. 2: catalog entries carry their group, and a groups database. An index of another version is rebuilt. */
export const indexFormatVersion = 3;
export const locationBytes = 41;

export interface ChunkLocation {
  packId: string; // hex
  offset: number; // record header offset in the pack
  rawBytes: number;
  storedBytes: number;
  codec: Codec;
  storedXxh64: bigint;
}

export interface PointEntry {
  id: string;
  vm: string;
  disk: string;
  time: string;
  sizeBytes: number;
  chunkBytes: number;
  parent: string | null;
  kind: 'paged' | 'full' | 'delta';
  path: string;
  stats: Record<string, number>;
  /** The VM restore point (group) this point is one disk of, or null. */
  group: string | null;
}

export interface GroupEntry { id: string; vm: string; time: string; disks: Array<{ disk: string; point: string }> }

export interface PackEntry { bytes: number; records: number; rawBytes: number; storedBytes: number }

export function encodeLocation(packIdHex: string, r: Omit<PackRecord, 'id'>): Buffer {
  const out = Buffer.alloc(locationBytes);
  out.write(packIdHex, 0, 16, 'hex');
  out.writeBigUInt64LE(BigInt(r.offset), 16);
  out.writeUInt32LE(r.rawBytes, 24);
  out.writeUInt32LE(r.storedBytes, 28);
  out.writeUInt8(r.codec, 32);
  out.writeBigUInt64LE(r.storedXxh64, 33);
  return out;
}

export function decodeLocation(b: Buffer): ChunkLocation {
  assert(b.length === locationBytes, 'index location length');
  return {
    packId: b.toString('hex', 0, 16),
    offset: Number(b.readBigUInt64LE(16)),
    rawBytes: b.readUInt32LE(24),
    storedBytes: b.readUInt32LE(28),
    codec: b.readUInt8(32) as Codec,
    storedXxh64: b.readBigUInt64LE(33),
  };
}

export class ChunkIndex {
  private constructor(
    private readonly env: RootDatabase,
    private readonly chunks: Database<Buffer, Buffer>,
    private readonly packs: Database<PackEntry, string>,
    private readonly points: Database<PointEntry, string>,
    private readonly meta: Database<unknown, string>,
    private readonly groups: Database<GroupEntry, string>,
  ) {}

  static open(path: string): ChunkIndex {
    let env: RootDatabase;
    try {
      env = open({ path, maxDbs: 8, compression: false });
    } catch (err) {
      throw new BlockvaultError('REPO_UNAVAILABLE', `cannot open index ${path}: ${(err as Error).message}`, { cause: err });
    }
    return new ChunkIndex(
      env,
      env.openDB<Buffer, Buffer>({ name: 'chunks', keyEncoding: 'binary', encoding: 'binary' }),
      env.openDB<PackEntry, string>({ name: 'packs' }),
      env.openDB<PointEntry, string>({ name: 'points' }),
      env.openDB<unknown, string>({ name: 'meta' }),
      env.openDB<GroupEntry, string>({ name: 'groups' }),
    );
  }

  isCurrent(): boolean {
    return this.meta.get('formatVersion') === indexFormatVersion;
  }

  lookup(id: Uint8Array): ChunkLocation | undefined {
    const value = this.chunks.get(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
    return value ? decodeLocation(value) : undefined;
  }

  has(id: Uint8Array): boolean {
    return this.chunks.doesExist(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
  }

  /** One write transaction per sealed pack: its records and its catalog entry. */
  addPack(packIdHex: string, packBytes: number, records: readonly PackRecord[]): void {
    let rawBytes = 0;
    let storedBytes = 0;
    this.chunks.transactionSync(() => {
      for (const r of records) {
        // No existence check first: any pack holding a chunk id holds the same
        // verified bytes, so overwriting is harmless and saves a B-tree search.
        this.chunks.put(r.id, encodeLocation(packIdHex, r));
        rawBytes += r.rawBytes;
        storedBytes += r.storedBytes;
      }
      this.packs.put(packIdHex, { bytes: packBytes, records: records.length, rawBytes, storedBytes });
    });
  }

  /**
   * Ingests index objects: every pack they list that the index does not know
   * yet, and the marks that the objects were read, in one write transaction
   * (a crash leaves all of it or none). Returns the packs added.
   */
  addIndexObjects(objects: ReadonlyArray<{ key: string; packs: ReadonlyArray<{ packId: string; packBytes: number; records: readonly PackRecord[] }> }>): number {
    let added = 0;
    this.chunks.transactionSync(() => {
      for (const { key, packs } of objects) {
        for (const p of packs) {
          if (this.packs.doesExist(p.packId)) continue;
          let rawBytes = 0;
          let storedBytes = 0;
          for (const r of p.records) {
            this.chunks.put(r.id, encodeLocation(p.packId, r));
            rawBytes += r.rawBytes;
            storedBytes += r.storedBytes;
          }
          this.packs.put(p.packId, { bytes: p.packBytes, records: p.records.length, rawBytes, storedBytes });
          added += 1;
        }
        this.meta.put(`idx:${key}`, true);
      }
    });
    return added;
  }
  /** Marks an index object read whose packs the index holds already (the writer's own). */
  markIndexObject(key: string): void {
    this.meta.putSync(`idx:${key}`, true);
  }
  hasIndexObject(key: string): boolean {
    return this.meta.doesExist(`idx:${key}`);
  }

  hasPack(packIdHex: string): boolean {
    return this.packs.doesExist(packIdHex);
  }
  packEntries(): Array<[string, PackEntry]> {
    return [...this.packs.getRange()].map(({ key, value }) => [key, value]);
  }
  chunkCount(): number {
    return this.chunks.getCount();
  }

  addPoint(entry: PointEntry): void {
    this.points.putSync(entry.id, entry);
  }
  /** Catalogs many restore points in one write transaction (opening a repository: one fsync, not one per point). */
  addPoints(entries: readonly PointEntry[]): void {
    if (entries.length === 0) return;
    this.points.transactionSync(() => {
      for (const e of entries) this.points.put(e.id, e);
    });
  }
  hasPoint(id: string): boolean {
    return this.points.doesExist(id);
  }
  point(id: string): PointEntry | undefined {
    return this.points.get(id);
  }
  allPoints(): PointEntry[] {
    return [...this.points.getRange()].map(({ value }) => value);
  }
  /** Drops restore points from the catalog (forgotten, or their files gone), in one transaction. */
  removePoints(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.points.transactionSync(() => {
      for (const id of ids) this.points.remove(id);
    });
  }
  removeGroup(id: string): void {
    this.groups.removeSync(id);
  }

  addGroup(entry: GroupEntry): void {
    this.groups.putSync(entry.id, entry);
  }
  hasGroup(id: string): boolean {
    return this.groups.doesExist(id);
  }
  allGroups(): GroupEntry[] {
    return [...this.groups.getRange()].map(({ value }) => value);
  }

  /** Verification outcome per restore point, consulted by later backups. */
  setVerified(pointId: string, ok: boolean, time: string): void {
    this.meta.putSync(`verify:${pointId}`, { ok, time });
  }
  verified(pointId: string): { ok: boolean; time: string } | undefined {
    return this.meta.get(`verify:${pointId}`) as { ok: boolean; time: string } | undefined;
  }

  clearAll(): void {
    this.chunks.clearSync();
    this.packs.clearSync();
    this.points.clearSync();
    this.meta.clearSync();
    this.groups.clearSync();
  }
  markCurrent(): void {
    this.meta.putSync('formatVersion', indexFormatVersion);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
