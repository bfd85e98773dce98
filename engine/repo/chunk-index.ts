// The LMDB index: a cache of what packs and restore-point files hold.
//   chunks:    chunk id (32 bytes) -> location (45 bytes, below)
//   packs:     pack id hex -> { bytes, records }
//   points:    restore point id -> catalog entry
//   condemned: pack id (16 bytes) -> gc id: packs a gc will delete (not dedup targets)
//   meta:      counters and the index format version
// Everything here can be rebuilt from the packs and points directories.
import type { ChunkerSpec } from '../chunking/chunker.js';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import { assert, BlockvaultError } from '../core/errors.js';
import type { Codec, PackRecord } from '../format/pack-format.js';
// lmdb's CommonJS bundle: one file to compile, ~10 ms sooner than its ES modules (every command opens the index).
const { open } = createRequire(import.meta.url)('lmdb') as typeof import('lmdb');

/**
 * 4: locations carry the record's ordinal in its pack (gc's mark bitmaps), and
 * a condemned-packs database. 3: catalog entries of paged points. 2: catalog
 * entries carry their group, and a groups database. An index of another
 * version is rebuilt.
 */
export const indexFormatVersion = 4;
export const locationBytes = 45;

export interface ChunkLocation {
  packId: string; // hex
  offset: number; // record header offset in the pack
  rawBytes: number;
  storedBytes: number;
  codec: Codec;
  storedXxh64: bigint;
  /** The record's position in its pack's trailer (0-based). */
  ordinal: number;
}

export interface PointEntry {
  id: string;
  vm: string;
  disk: string;
  time: string;
  sizeBytes: number;
  chunkBytes: number;
  parent: string | null;
  kind: 'paged' | 'cdc' | 'full' | 'delta';
  path: string;
  stats: Record<string, number>;
  /** The VM restore point (group) this point is one disk of, or null. */
  group: string | null;
  /** The chunker that cut it (absent: fixed). */
  chunker?: ChunkerSpec;
}

export interface GroupEntry { id: string; vm: string; time: string; disks: Array<{ disk: string; point: string }> }

/** indexObject: the index object that names the pack (gc rewrites it when the pack goes); absent: none does. */
export interface PackEntry { bytes: number; records: number; rawBytes: number; storedBytes: number; indexObject?: string }

export function encodeLocation(packIdHex: string, r: Omit<PackRecord, 'id'>, ordinal: number): Buffer {
  const out = Buffer.alloc(locationBytes);
  out.write(packIdHex, 0, 16, 'hex');
  out.writeBigUInt64LE(BigInt(r.offset), 16);
  out.writeUInt32LE(r.rawBytes, 24);
  out.writeUInt32LE(r.storedBytes, 28);
  out.writeUInt8(r.codec, 32);
  out.writeBigUInt64LE(r.storedXxh64, 33);
  out.writeUInt32LE(ordinal, 41);
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
    ordinal: b.readUInt32LE(41),
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
    private readonly condemned: Database<string, Buffer>,
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
      env.openDB<string, Buffer>({ name: 'condemned', keyEncoding: 'binary' }),
    );
  }

  isCurrent(): boolean {
    return this.meta.get('formatVersion') === indexFormatVersion;
  }

  /**
   * The raw 45-byte location (layout above), in a buffer LMDB reuses: valid
   * only until the next index call. For gc's mark, which looks up every chunk
   * of every point and must not leave garbage behind for each one.
   */
  peekLocation(id: Uint8Array): Buffer | undefined {
    return this.chunks.getBinaryFast(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
  }

  lookup(id: Uint8Array): ChunkLocation | undefined {
    const value = this.chunks.get(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
    return value ? decodeLocation(value) : undefined;
  }

  /**
   * Whether a backup may reference this chunk without storing it: the index
   * knows it, in a pack no gc has condemned (docs/FORMAT.md "Garbage
   * collection": a condemned pack's chunks are stored afresh).
   */
  isDedupTarget(id: Uint8Array): boolean {
    const value = this.chunks.get(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
    return value !== undefined && !this.condemned.doesExist(value.subarray(0, 16));
  }

  /** Forgets where a chunk is (its record is quarantined): backups then store it afresh. */
  dropChunk(id: Uint8Array): void {
    this.chunks.removeSync(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
  }
  /** Why a chunk has no location any more (a quarantined record), for messages. */
  setQuarantineNote(idHex: string, note: string): void {
    this.meta.putSync(`q:${idHex}`, note);
  }
  quarantineNote(idHex: string): string | undefined {
    return this.meta.get(`q:${idHex}`) as string | undefined;
  }

  /** Packs a pending gc will delete, with the gc's id. */
  condemnedPacks(): Map<string, string> {
    return new Map([...this.condemned.getRange()].map(({ key, value }) => [key.toString('hex'), value]));
  }
  /** Marks packs condemned by gc `gcId` (one transaction), or with gcId null takes the mark off. */
  setCondemned(packIds: readonly string[], gcId: string | null): void {
    this.condemned.transactionSync(() => {
      for (const id of packIds) {
        if (gcId === null) this.condemned.remove(Buffer.from(id, 'hex'));
        else this.condemned.put(Buffer.from(id, 'hex'), gcId);
      }
    });
  }

  /**
   * Forgets deleted packs: their catalog entries, their condemned marks, and
   * every chunk location that points into them (records: what each held).
   */
  removePacks(packs: ReadonlyArray<{ packId: string; records: readonly PackRecord[] | null }>): void {
    // A pack whose records are unknown (deleted by a gc that stopped before this step) costs a scan of every location.
    const unknown = new Set(packs.filter((p) => p.records === null).map((p) => p.packId));
    const stale: Buffer[] = [];
    if (unknown.size > 0) {
      for (const { key, value } of this.chunks.getRange()) if (unknown.has(value.toString('hex', 0, 16))) stale.push(Buffer.from(key));
    }
    this.chunks.transactionSync(() => {
      for (const id of stale) this.chunks.remove(id);
      for (const { packId, records } of packs) {
        const key = Buffer.from(packId, 'hex');
        for (const r of records ?? []) {
          const at = this.chunks.get(r.id);
          if (at && at.subarray(0, 16).equals(key)) this.chunks.remove(r.id);
        }
        this.packs.remove(packId);
        this.condemned.remove(key);
      }
    });
  }

  /**
   * One write transaction per sealed pack: its records and its catalog entry.
   * keepExisting: a chunk the index already locates elsewhere keeps that
   * location (rebuilding: a condemned pack's copies come second).
   */
  addPack(packIdHex: string, packBytes: number, records: readonly PackRecord[], keepExisting = false): void {
    let rawBytes = 0;
    let storedBytes = 0;
    this.chunks.transactionSync(() => {
      for (const [ordinal, r] of records.entries()) {
        // No existence check first: any pack holding a chunk id holds the same
        // verified bytes, so overwriting is harmless and saves a B-tree search.
        if (keepExisting && this.chunks.doesExist(r.id)) continue;
        this.chunks.put(r.id, encodeLocation(packIdHex, r, ordinal));
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
  addIndexObjects(objects: ReadonlyArray<{ key: string; packs: ReadonlyArray<{ packId: string; packBytes: number; records: readonly PackRecord[] }> }>,
    skip?: (packId: string) => boolean): number {
    let added = 0;
    this.chunks.transactionSync(() => {
      for (const { key, packs } of objects) {
        for (const p of packs) {
          if (this.packs.doesExist(p.packId) || skip?.(p.packId)) continue;
          let rawBytes = 0;
          let storedBytes = 0;
          for (const [ordinal, r] of p.records.entries()) {
            this.chunks.put(r.id, encodeLocation(p.packId, r, ordinal));
            rawBytes += r.rawBytes;
            storedBytes += r.storedBytes;
          }
          this.packs.put(p.packId, { bytes: p.packBytes, records: p.records.length, rawBytes, storedBytes, indexObject: key });
          added += 1;
        }
        this.meta.put(`idx:${key}`, true);
      }
    });
    return added;
  }
  /** Marks an index object read whose packs the index holds already (the writer's own), and notes it in their entries. */
  markIndexObject(key: string, packIds: readonly string[] = []): void {
    this.meta.transactionSync(() => {
      this.meta.put(`idx:${key}`, true);
      for (const id of packIds) {
        const entry = this.packs.get(id);
        if (entry) this.packs.put(id, { ...entry, indexObject: key });
      }
    });
  }
  pack(packIdHex: string): PackEntry | undefined {
    return this.packs.get(packIdHex);
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
    // The catalog keeps what listing and resolving need; the machine description stays in the group object.
    this.groups.putSync(entry.id, { id: entry.id, vm: entry.vm, time: entry.time, disks: entry.disks });
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
    this.condemned.clearSync();
  }
  markCurrent(): void {
    this.meta.putSync('formatVersion', indexFormatVersion);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
