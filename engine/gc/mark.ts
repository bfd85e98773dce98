// gc's mark: which records of which packs the restore points need. The state
// is two bits per pack record (needed; for a page, walked whole), found
// through a table of every record built from the index objects and trailers
// (record-table.ts: about 38 bytes a record, and no B-tree lookup per
// chunk); a page walked before is not read again (everything below it is
// marked already), which makes marking the 30th point of a disk cost its
// changes.
import { assert, BlockvaultError, storageError } from '../core/errors.js';
import { checkSectionEntries, indexObjectBytesMax, indexObjectSections, type IndexObjectSection } from '../format/index-object-format.js';
import { encodeTrailer, packFooterBytes, trailerEntryBytes, type PackRecord } from '../format/pack-format.js';
import type { ChunkIndex, PointEntry } from '../repo/chunk-index.js';
import type { Repository } from '../repo/repository.js';
import { RecordTable } from './record-table.js';

export interface PackMarks {
  /** One bit per record: needed by a kept point. */
  bits: Uint8Array;
  /** One bit per record that is a map page: everything it names is marked too (created on first use). */
  walked?: Uint8Array;
  records: number;
  bytes: number;
  storedBytes: number;
  liveRecords: number;
  liveStoredBytes: number;
}

export class MarkState {
  readonly packs = new Map<string, PackMarks>();
  /** The same entries by pack number (the record table's). */
  private readonly byNumber: PackMarks[] = [];
  /** Referenced ids the index does not know: damage for check to name, never a reason to delete more. */
  missing = 0;
  /** Ids marked whose pack is not tracked (sealed after the mark began): kept, and walked through. */
  private readonly untrackedPages = new Set<string>();

  /** packIds: the packs the table numbers, in its order. */
  constructor(index: ChunkIndex, private readonly table: RecordTable, private readonly packIds: readonly string[]) {
    for (const id of packIds) {
      const e = index.pack(id);
      assert(e !== undefined, 'a pack the record table numbers is in the index');
      const marks: PackMarks = { bits: new Uint8Array(Math.ceil(e.records / 8)), records: e.records, bytes: e.bytes, storedBytes: e.storedBytes, liveRecords: 0, liveStoredBytes: 0 };
      this.packs.set(id, marks);
      this.byNumber.push(marks);
    }
  }

  /**
   * The mark's visitor (chunk-map.ts WalkVisitor): marks the record holding
   * `id`; for a page, true when it has not been walked before (so walk it
   * now); for a patch's base, true when it was walked whole before.
   */
  mark(index: ChunkIndex, id: Buffer, kind: 'page' | 'chunk' | 'base'): boolean {
    const slot = this.table.find(id);
    if (slot < 0) return this.markUntracked(index, id, kind);
    const pack = this.byNumber[this.table.packOf(slot)];
    const ordinal = this.table.ordinalOf(slot);
    const byte = ordinal >> 3;
    const bit = 1 << (ordinal & 7);
    if (!(pack.bits[byte] & bit)) {
      pack.bits[byte] |= bit;
      pack.liveRecords += 1;
      pack.liveStoredBytes += this.table.storedBytesOf(slot);
    }
    if (kind === 'chunk') return false;
    pack.walked ??= new Uint8Array(pack.bits.length);
    const walked = (pack.walked[byte] & bit) !== 0;
    if (kind === 'base') return walked;
    pack.walked[byte] |= bit;
    return !walked;
  }

  /** Where the table says a record is (map-pages.ts reads a page from there and checks its header): no index lookup. */
  locate(id: Buffer): { packId: string; offset: number; storedBytes: number } | null {
    const slot = this.table.find(id);
    return slot < 0 ? null : { packId: this.packIds[this.table.packOf(slot)], offset: this.table.offsetOf(slot), storedBytes: this.table.storedBytesOf(slot) };
  }

  /** An id the table does not hold: in a pack sealed since it was built (kept anyway), or in none. */
  private markUntracked(index: ChunkIndex, id: Buffer, kind: 'page' | 'chunk' | 'base'): boolean {
    if (index.peekLocation(id)) return kind === 'page' ? this.firstVisitUntracked(id) : false;
    // What a missing page names is unknown, and a repair may yet find it in a pack: judge nothing dead.
    if (kind !== 'chunk') throw new BlockvaultError('CHUNK_MISSING', `map page ${id.toString('hex')} is in no pack`);
    this.missing += 1;
    return false;
  }

  private firstVisitUntracked(id: Buffer): boolean {
    const hex = id.toString('hex');
    if (this.untrackedPages.has(hex)) return false;
    this.untrackedPages.add(hex);
    return true;
  }

  /** A page walked whole by the mark: everything below it is marked. */
  isWalked(packId: string, ordinal: number): boolean {
    const walked = this.packs.get(packId)?.walked;
    return walked !== undefined && (walked[ordinal >> 3] & (1 << (ordinal & 7))) !== 0;
  }

  isMarked(packId: string, ordinal: number): boolean {
    const pack = this.packs.get(packId);
    return pack !== undefined && (pack.bits[ordinal >> 3] & (1 << (ordinal & 7))) !== 0;
  }
}

/**
 * Marks everything a restore point references. A page that cannot be read
 * stops the gc (BlockvaultError): what lies below it is unknown, so no pack
 * may be judged dead.
 */
export async function markPoint(repo: Repository, entry: PointEntry, state: MarkState): Promise<void> {
  let map;
  try {
    ({ map } = await repo.points.open(entry));
    await map.walk((id, kind) => state.mark(repo.index, id, kind));
  } catch (err) {
    if (!(err instanceof BlockvaultError)) throw err;
    if (err.code === 'POINT_NOT_FOUND') return; // forgotten meanwhile (its file is gone): nothing to keep for it
    throw new BlockvaultError(err.code, `gc stopped before deleting anything: ${err.message}; run blockvault check -r ${repo.root}`, { cause: err });
  }
}

/**
 * The table of every record of the packs the index knows, from their index
 * objects (a few large reads) and the trailers of packs none names. A chunk
 * with copies in several packs is located where the index locates it: the
 * copy readers use is the one that must stay.
 */
export async function buildMarkState(repo: Repository): Promise<MarkState> {
  const entries = repo.index.packEntries();
  const packIds = entries.map(([id]) => id);
  const number = new Map(packIds.map((id, k) => [id, k]));
  const table = new RecordTable(entries.reduce((a, [, e]) => a + e.records, 0));
  // A second copy of a chunk replaces the first only where the index locates the chunk (the copy readers use).
  const locatedAt = (id: Buffer, packId: string, ordinal: number): boolean => {
    const at = repo.index.peekLocation(id);
    return at !== undefined && at.readUInt32LE(41) === ordinal && at.toString('hex', 0, 16) === packId;
  };
  // Entries as a trailer encodes them (64 bytes: id at 0, stored bytes at 44): read in place, no object per record.
  const add = (packId: string, encoded: Buffer, count: number) => {
    const k = number.get(packId)!;
    if (count !== entries[k][1].records) throw new BlockvaultError('CORRUPT', `pack ${packId}: ${count} records, the index says ${entries[k][1].records}; run blockvault index rebuild`);
    for (let ordinal = 0; ordinal < count; ordinal++) {
      const id = encoded.subarray(ordinal * trailerEntryBytes, ordinal * trailerEntryBytes + 32);
      const at = ordinal * trailerEntryBytes;
      table.put(id, k, ordinal, encoded.readUInt32LE(at + 44), Number(encoded.readBigUInt64LE(at + 32)), () => !locatedAt(id, packId, ordinal));
    }
  };
  const loaded = new Set<string>();
  const byObject = new Map<string, string[]>();
  for (const [id, e] of entries) if (e.indexObject) byObject.set(e.indexObject, [...(byObject.get(e.indexObject) ?? []), id]);
  for (const key of byObject.keys()) {
    for (const section of await readIndexObjectOrNull(repo, key)) {
      if (!number.has(section.packId) || loaded.has(section.packId)) continue;
      try {
        checkSectionEntries(section, key);
      } catch (err) {
        if (err instanceof BlockvaultError) continue; // damaged here: the pack's own trailer is read below
        throw err;
      }
      add(section.packId, section.entries, section.records);
      loaded.add(section.packId);
    }
  }
  for (const id of packIds) {
    if (loaded.has(id)) continue;
    try {
      const { records } = await repo.packs.readTrailer(id);
      add(id, encodeTrailerEntries(records), records.length);
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      // Its records unknown, a pack would look dead: nothing may be judged so.
      throw new BlockvaultError(err.code, `gc stopped before deleting anything: what pack ${id} holds cannot be read (${err.message}); run blockvault check -r ${repo.root}, then blockvault repair index`, { cause: err });
    }
  }
  return new MarkState(repo.index, table, packIds);
}

/** An index object's packs; none when it is gone or damaged (their trailers are read instead). */
async function readIndexObjectOrNull(repo: Repository, key: string): Promise<IndexObjectSection[]> {
  try {
    return indexObjectSections(await repo.storage.get(key, indexObjectBytesMax), key);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof BlockvaultError) return [];
    throw storageError(err, key);
  }
}

/** A pack's records as trailer entries (packs no index object names are few: their trailers were decoded already). */
function encodeTrailerEntries(records: PackRecord[]): Buffer {
  const trailer = encodeTrailer(records);
  return trailer.subarray(0, trailer.length - packFooterBytes);
}
