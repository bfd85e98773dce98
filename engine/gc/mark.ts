// gc's mark: which records of which packs the restore points need. The state
// is one bit per pack record (the record's ordinal, from the index), so a
// repository of N records costs N/8 bytes however many points share them;
// a page already marked is not read again (everything below it is marked
// already), which makes marking the 30th point of a disk cost its changes.
import { BlockvaultError } from '../core/errors.js';
import type { ChunkIndex, PointEntry } from '../repo/chunk-index.js';
import type { Repository } from '../repo/repository.js';

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
  /** The same entries keyed by the pack id's 16 bytes as a latin1 string: found from a raw location without a hex string each. */
  private readonly byRawId = new Map<string, PackMarks>();
  /** Referenced ids the index does not know: damage for check to name, never a reason to delete more. */
  missing = 0;
  /** Ids marked whose pack is not tracked (sealed after the mark began): kept, and walked through. */
  private readonly untrackedPages = new Set<string>();

  constructor(index: ChunkIndex) {
    for (const [id, e] of index.packEntries()) {
      const marks: PackMarks = { bits: new Uint8Array(Math.ceil(e.records / 8)), records: e.records, bytes: e.bytes, storedBytes: e.storedBytes, liveRecords: 0, liveStoredBytes: 0 };
      this.packs.set(id, marks);
      this.byRawId.set(Buffer.from(id, 'hex').toString('latin1'), marks);
    }
  }

  /**
   * The mark's visitor (chunk-map.ts WalkVisitor): marks the record holding
   * `id`; for a page, true when it has not been walked before (so walk it
   * now); for a patch's base, true when it was walked whole before.
   */
  mark(index: ChunkIndex, id: Buffer, kind: 'page' | 'chunk' | 'base'): boolean {
    const at = index.peekLocation(id); // valid until the next index call: read what is needed first
    if (!at) {
      // What a missing page names is unknown, and a repair may yet find it in a pack: judge nothing dead.
      if (kind !== 'chunk') throw new BlockvaultError('CHUNK_MISSING', `map page ${id.toString('hex')} is in no pack`);
      this.missing += 1;
      return false;
    }
    const pack = this.byRawId.get(at.toString('latin1', 0, 16));
    const ordinal = at.readUInt32LE(41);
    const storedBytes = at.readUInt32LE(28);
    if (!pack) return kind === 'page' ? this.firstVisitUntracked(id) : false; // sealed after the mark began: kept anyway
    if (ordinal >= pack.records) throw new BlockvaultError('CORRUPT', `index: record ${ordinal} of pack ${at.toString('hex', 0, 16)} is past its ${pack.records} records; run blockvault index rebuild`);
    const byte = ordinal >> 3;
    const bit = 1 << (ordinal & 7);
    if (!(pack.bits[byte] & bit)) {
      pack.bits[byte] |= bit;
      pack.liveRecords += 1;
      pack.liveStoredBytes += storedBytes;
    }
    if (kind === 'chunk') return false;
    pack.walked ??= new Uint8Array(pack.bits.length);
    const walked = (pack.walked[byte] & bit) !== 0;
    if (kind === 'base') return walked;
    pack.walked[byte] |= bit;
    return !walked;
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
