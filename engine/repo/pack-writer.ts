// Streams stored chunks into a pack object, then seals it:
//   records -> trailer -> commit (the object appears whole and durable)
//   -> one index transaction for all its records;
// and every indexObjectPacks sealed packs (and before a restore point uses
// them: flushIndex) one index object naming them (index-objects.ts).
// Only after that may a restore point reference the chunks (docs/FORMAT.md
// "Commit order"). An unsealed pack left by a crash is staged bytes in its
// session's staging area, removed with that area once the session is dead.
import { randomBytes } from 'node:crypto';
import { storageError } from '../core/errors.js';
import { encodePackHeader, encodeRecordHeader, encodeTrailer, packHeaderBytes, recordHeaderBytes, type PackRecord } from '../format/pack-format.js';
import type { ObjectStore, ObjectWriter } from '../storage/storage.js';
import type { ChunkIndex } from './chunk-index.js';
import { encodeIndexObjectFromTrailers, type SealedPack } from '../format/index-object-format.js';
import { putEncodedIndexObject } from './index-objects.js';
import { packPath } from './layout.js';

/** Sealed packs per index object (and records: 2^18 entries are 16 MiB): bounds the writer's memory and the object's size. */
const indexObjectPacks = 64;
const indexObjectRecords = 1 << 18;

/** Test hook: named points in the commit sequence (see test/faults). */
export type CommitEvent = 'pack-appended' | 'pack-sealed' | 'pack-indexed' | 'index-written' | 'point-written';
export type CommitHook = (event: CommitEvent) => void;

export interface StoredChunk extends Omit<PackRecord, 'offset'> { payload: Uint8Array }

export class PackWriter {
  private handle: ObjectWriter | null = null;
  private packIdHex = '';
  private records: PackRecord[] = [];
  /** Chunks appended to the open pack, not yet indexed: dedup must see them. */
  private readonly pending = new Set<string>();
  /** Sealed packs no index object names yet, as their encoded trailers (holding a record object per chunk slowed a 4 GiB backup by ~10%: GC). */
  private unindexed: SealedPack[] = [];
  private unindexedRecords = 0;
  private indexObjects = 0;
  packsSealed = 0;
  /** Bytes of the packs sealed so far, whole files. */
  bytesSealed = 0;
  bytesAppended = 0;

  constructor(
    private readonly store: ObjectStore,
    /** The session whose staging area holds the pack until it is sealed. */
    private readonly sessionId: string,
    private readonly index: ChunkIndex,
    private readonly packBytesTarget: number,
    private readonly hook: CommitHook = () => undefined,
  ) {}

  isPending(idHex: string): boolean {
    return this.pending.has(idHex);
  }

  /** Appends chunks as one write; seals the pack when it reaches its target size. */
  async append(chunks: readonly StoredChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const handle = await this.openPack();
    const parts: Uint8Array[] = [];
    const start = handle.bytes;
    let offset = start;
    for (const c of chunks) {
      const header = encodeRecordHeader(c);
      // The record only: no reference to the payload, whose buffer goes back to the pipeline.
      this.records.push({ id: c.id, offset, rawBytes: c.rawBytes, storedBytes: c.storedBytes, codec: c.codec, storedXxh64: c.storedXxh64 });
      this.pending.add(c.id.toString('hex'));
      parts.push(header, c.payload);
      offset += recordHeaderBytes + c.payload.byteLength;
    }
    try {
      await handle.write(parts);
    } catch (err) {
      throw storageError(err, `pack ${packPath(this.packIdHex)}`);
    }
    this.bytesAppended += offset - start;
    this.hook('pack-appended');
    if (handle.bytes >= this.packBytesTarget) await this.seal();
  }

  private async openPack(): Promise<ObjectWriter> {
    if (this.handle) return this.handle;
    this.packIdHex = randomBytes(16).toString('hex');
    this.records = [];
    try {
      this.handle = await this.store.writer(packPath(this.packIdHex), this.sessionId);
      await this.handle.write(encodePackHeader(Buffer.from(this.packIdHex, 'hex'), Date.now()));
    } catch (err) {
      throw storageError(err, `new pack ${packPath(this.packIdHex)}`);
    }
    this.bytesAppended += packHeaderBytes;
    return this.handle;
  }

  /** Seals the open pack (if any) and indexes its records. */
  async seal(): Promise<void> {
    const handle = this.handle;
    if (!handle) return;
    const trailer = encodeTrailer(this.records);
    try {
      await handle.write(trailer);
      this.bytesAppended += trailer.length;
      await handle.commit();
      this.handle = null;
    } catch (err) {
      throw storageError(err, `pack ${packPath(this.packIdHex)}`);
    }
    this.hook('pack-sealed');
    this.index.addPack(this.packIdHex, handle.bytes, this.records);
    this.hook('pack-indexed');
    this.packsSealed += 1;
    this.bytesSealed += handle.bytes;
    for (const r of this.records) this.pending.delete(r.id.toString('hex'));
    this.unindexed.push({ packId: this.packIdHex, packBytes: handle.bytes, trailer });
    this.unindexedRecords += this.records.length;
    this.records = [];
    if (this.unindexed.length >= indexObjectPacks || this.unindexedRecords >= indexObjectRecords) await this.flushIndex();
  }

  /** Puts an index object naming the packs sealed since the last one. Before a restore point refers to them. */
  async flushIndex(): Promise<void> {
    if (this.unindexed.length === 0) return;
    try {
      const key = await putEncodedIndexObject(this.store, this.sessionId, this.indexObjects, encodeIndexObjectFromTrailers(this.unindexed));
      this.index.markIndexObject(key, this.unindexed.map((p) => p.packId)); // its packs are indexed already
    } catch (err) {
      throw storageError(err, 'an index object');
    }
    this.indexObjects += 1;
    this.unindexed = [];
    this.unindexedRecords = 0;
    this.hook('index-written');
  }

  /** Drops the unsealed pack; its chunks were never indexed or referenced. */
  async abort(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (!handle) return;
    await handle.abort().catch(() => undefined);
  }
}

/**
 * Runs work that appends through `writer`, then seals its last pack and puts
 * the index object naming what it sealed; on any failure drops the unsealed
 * pack (what was sealed stays: sealed packs are never referenced until an
 * index object or point names them, and a later open indexes them).
 */
export async function writingPacks<T>(writer: PackWriter, work: () => Promise<T>): Promise<T> {
  try {
    const result = await work();
    await writer.seal();
    await writer.flushIndex();
    return result;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
