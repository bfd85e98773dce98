// gc's repack: the live records of mostly dead packs copied, byte for byte,
// into new packs (sealed, indexed and named by an index object before
// anything else happens: readers and backups then find the copies), so the
// old packs can be deleted. A record whose payload no longer matches its
// checksum is not copied, and its pack is kept: check names it.
import { xxh64 } from '../core/digest.js';
import { chunkBytesMax } from '../core/limits.js';
import { recordHeaderBytes, type PackRecord } from '../format/pack-format.js';
import { PackWriter, writingPacks } from '../repo/pack-writer.js';
import type { Repository } from '../repo/repository.js';
import type { MarkState } from './mark.js';

export interface RepackResult { packsWritten: number; bytesWritten: number; recordsCopied: number; damaged: Array<{ packId: string; offset: number; chunk: string }>; keep: Set<string> }

/** Live records read from one pack at a time, in spans of adjacent records of at most this many bytes. */
const spanBytesMax = 4 * 1024 * 1024;

export async function repackPacks(repo: Repository, packIds: readonly string[], state: MarkState, onPack?: (done: number) => void): Promise<RepackResult> {
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, repo.config.packBytesTarget);
  const result: RepackResult = { packsWritten: 0, bytesWritten: 0, recordsCopied: 0, damaged: [], keep: new Set() };
  // One read buffer for every span (a span is written out before the next is read): no garbage per span.
  const buffer = Buffer.allocUnsafe(spanBytesMax + recordHeaderBytes + chunkBytesMax);
  await writingPacks(writer, async () => {
    for (const [k, packId] of packIds.entries()) {
      const { records } = await repo.packs.readTrailer(packId);
      const live = records.filter((r, ordinal) => state.isMarked(packId, ordinal) && stillHere(repo, packId, r));
      for (const span of spans(live)) await copySpan(repo, writer, packId, span, result, buffer);
      onPack?.(k + 1);
    }
  });
  result.packsWritten = writer.packsSealed;
  result.bytesWritten = writer.bytesSealed;
  return result;
}

/** The index still locates the chunk in this record (not in a copy another writer stored meanwhile). */
function stillHere(repo: Repository, packId: string, r: PackRecord): boolean {
  const at = repo.index.lookup(r.id);
  return at !== undefined && at.packId === packId && at.offset === r.offset;
}

function* spans(records: PackRecord[]): Generator<PackRecord[]> {
  let span: PackRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const end = (x: PackRecord) => x.offset + recordHeaderBytes + x.storedBytes;
    if (span.length > 0 && (end(span.at(-1)!) !== r.offset || bytes + recordHeaderBytes + r.storedBytes > spanBytesMax)) {
      yield span;
      span = [];
      bytes = 0;
    }
    span.push(r);
    bytes += recordHeaderBytes + r.storedBytes;
  }
  if (span.length > 0) yield span;
}

async function copySpan(repo: Repository, writer: PackWriter, packId: string, span: PackRecord[], result: RepackResult, buffer: Buffer): Promise<void> {
  const first = span[0].offset;
  const last = span.at(-1)!;
  const length = last.offset + recordHeaderBytes + last.storedBytes - first;
  const bytes = await repo.packs.readRange(packId, first, length, buffer.subarray(0, length));
  const chunks = [];
  for (const r of span) {
    const payload = bytes.subarray(r.offset - first + recordHeaderBytes, r.offset - first + recordHeaderBytes + r.storedBytes);
    if (xxh64(payload) !== r.storedXxh64) {
      result.damaged.push({ packId, offset: r.offset, chunk: r.id.toString('hex') });
      result.keep.add(packId);
      continue;
    }
    chunks.push({ id: r.id, rawBytes: r.rawBytes, storedBytes: r.storedBytes, codec: r.codec, storedXxh64: r.storedXxh64, payload });
  }
  await writer.append(chunks);
  result.recordsCopied += chunks.length;
}
