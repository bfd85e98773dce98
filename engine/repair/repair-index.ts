// repair index: the index rebuilt from the packs alone (their trailers; no
// index object, no earlier cache), and a pack whose trailer is torn (cut
// short, overwritten) salvaged from its record headers: every record whose
// header and payload checksums hold is copied into a new, sealed pack (one a
// chunk another pack holds is not), and the torn pack is then deleted. It
// runs under the exclusive lock: nothing else writes meanwhile.
import { BlockvaultError, storageError } from '../core/errors.js';
import { xxh64 } from '../core/digest.js';
import { decodeRecordHeader, packHeaderBytes, packRecordMagic, recordHeaderBytes } from '../format/pack-format.js';
import { packPath } from '../repo/layout.js';
import { PackWriter, writingPacks, type StoredChunk } from '../repo/pack-writer.js';
import { forgetQuarantineOf } from '../repo/quarantine.js';
import type { Repository } from '../repo/repository.js';

export interface RepairResult {
  packs: number; points: number; packsTorn: number; recordsSalvaged: number; bytesSalvaged: number;
  packsWritten: number; unreadable: string[]; seconds: number;
}

/** Bytes of a torn pack read at a time while scanning its records. */
const scanWindowBytes = 8 * 1024 * 1024;

export async function repairIndex(repo: Repository, onPack?: (done: number, total: number) => void): Promise<RepairResult> {
  const started = process.hrtime.bigint();
  const rebuilt = await repo.rebuildIndex({ fromPacks: true });
  const torn = rebuilt.skipped.map((line) => line.slice(0, 32));
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, repo.config.packBytesTarget);
  const result: RepairResult = { packs: rebuilt.packs, points: rebuilt.points, packsTorn: torn.length, recordsSalvaged: 0, bytesSalvaged: 0, packsWritten: 0, unreadable: [], seconds: 0 };
  const salvaged = new Set<string>();
  await writingPacks(writer, async () => {
    for (const [k, packId] of torn.entries()) {
      try {
        const { records, bytes } = await salvage(repo, writer, packId);
        result.recordsSalvaged += records;
        result.bytesSalvaged += bytes;
        salvaged.add(packId);
      } catch (err) {
        if (!(err instanceof BlockvaultError)) throw err;
        result.unreadable.push(`${packPath(packId)}: ${err.message}`); // left as it is
      }
      onPack?.(k + 1, torn.length);
    }
  });
  result.packsWritten = writer.packsSealed;
  // What the torn packs held that could be read is in sealed, indexed packs now: the torn ones go, and their quarantine notes.
  for (const packId of salvaged) await repo.storage.delete(packPath(packId)).catch((err) => { throw storageError(err, packPath(packId)); });
  await forgetQuarantineOf(repo.storage, salvaged);
  result.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return result;
}

/** Copies every intact record of a torn pack that no other pack holds; returns how many and their stored bytes. */
async function salvage(repo: Repository, writer: PackWriter, packId: string): Promise<{ records: number; bytes: number }> {
  const reader = await repo.storage.openRange(packPath(packId)).catch((err) => { throw storageError(err, packPath(packId)); });
  let records = 0;
  let bytes = 0;
  try {
    const size = reader.sizeBytes;
    let pos = packHeaderBytes;
    while (pos + recordHeaderBytes <= size) {
      const window = await reader.readAt(pos, Math.min(scanWindowBytes, size - pos));
      let at = 0;
      const chunks: StoredChunk[] = [];
      while (at + recordHeaderBytes <= window.length) {
        const record = headerAt(window, at, pos + at, packId);
        if (!record) {
          at = nextMagic(window, at + 1); // damage: look for the next record header
          continue;
        }
        const end = at + recordHeaderBytes + record.storedBytes;
        if (end > window.length) break; // the payload runs past this window: read again from this record
        const payload = window.subarray(at + recordHeaderBytes, end);
        if (xxh64(payload) === record.storedXxh64 && !repo.index.lookup(record.id)) {
          chunks.push({ id: record.id, rawBytes: record.rawBytes, storedBytes: record.storedBytes, codec: record.codec, storedXxh64: record.storedXxh64, payload });
          records += 1;
          bytes += record.storedBytes;
        }
        at = end;
      }
      await writer.append(chunks);
      if (at === 0) at = Math.max(1, nextMagic(window, 1)); // no whole record in a full window: move on
      pos += at;
    }
  } finally {
    await reader.close();
  }
  return { records, bytes };
}

function headerAt(window: Buffer, at: number, offset: number, packId: string): ReturnType<typeof decodeRecordHeader> | null {
  if (!window.subarray(at, at + 4).equals(packRecordMagic)) return null;
  try {
    return decodeRecordHeader(window.subarray(at, at + recordHeaderBytes), offset, packPath(packId));
  } catch (err) {
    if (err instanceof BlockvaultError) return null;
    throw err;
  }
}

function nextMagic(window: Buffer, from: number): number {
  const next = window.indexOf(packRecordMagic, from);
  return next < 0 ? Math.max(from, window.length - recordHeaderBytes + 1) : next;
}
