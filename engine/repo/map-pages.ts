// Map pages as records in packs: a bounded, shared cache of decoded pages
// (content-addressed, so points of one disk share their unchanged pages), and
// the encoding of a new page into a record a PackWriter appends. Pages are
// small (32 KiB): they are decoded on the calling thread, not in workers.
import { BlockvaultError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { decodeRecordHeader, recordHeaderBytes } from '../format/pack-format.js';
import type { ChunkIndex } from './chunk-index.js';
import { packPath } from './layout.js';
import type { PackReader } from './pack-reader.js';
import type { PackWriter, StoredChunk } from './pack-writer.js';

/** Decoded pages kept per process, whatever the number of points open: 512 pages, the leaves of 32 GiB of disk at 64 KiB chunks. */
export const mapPageCacheBytesMax = 16 * 1024 * 1024;

/** Where a page sits, for messages: the point, its level and index, and the disk bytes below it. */
export interface PagePlace { point: string; level: number; index: number; firstByte: number; endByte: number }

function placeText(p: PagePlace): string {
  return `restore point ${p.point}: map page (level ${p.level}, page ${p.index}, disk bytes ${p.firstByte}-${p.endByte})`;
}

export class MapPages {
  private readonly cache = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private cachedBytes = 0;
  /** Pages read from packs (not from the cache): the benchmarks report it. */
  pagesLoaded = 0;
  /**
   * Where to find a page without asking the index (gc's mark, which has a
   * table of every record: a B-tree lookup per page would fault in pages of
   * the index map by the tens of kilobytes). The record's header, read with
   * it, gives the rest and is checked against the id.
   */
  locator: ((id: Buffer) => { packId: string; offset: number; storedBytes: number } | null) | null = null;

  constructor(private readonly index: ChunkIndex, private readonly packs: PackReader, private cacheBytesMax = mapPageCacheBytesMax) {}

  /** Bounds the cache anew (gc reads each page about once: it needs little), dropping the oldest pages over it. */
  limitCache(bytesMax: number): void {
    this.cacheBytesMax = bytesMax;
    this.trim();
  }

  /** A page's raw bytes (header and entries), checked against its id. */
  load(id: Buffer, place: PagePlace): Promise<Buffer> {
    const key = id.toString('hex');
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, hit);
      return Promise.resolve(hit);
    }
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.read(id, place).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
      void pending.then((bytes) => this.remember(key, bytes), () => undefined);
    }
    return pending;
  }

  /** A patched leaf made whole once (kept in the same cache, under its own key): reads of it then cost what a whole leaf's do. */
  materialized(id: Buffer, make: () => Buffer): Buffer {
    const key = `m:${id.toString('hex')}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const made = make();
    this.remember(key, made);
    return made;
  }

  private fromHeader(id: Buffer, place: PagePlace, where: { packId: string; offset: number; storedBytes: number }) {
    return readRecord(this.packs, id, where, place);
  }

  private remember(key: string, bytes: Buffer): void {
    if (this.cache.has(key)) return;
    this.cache.set(key, bytes);
    this.cachedBytes += bytes.length;
    this.trim();
  }

  private trim(): void {
    while (this.cachedBytes > this.cacheBytesMax && this.cache.size > 0) {
      const [oldest, old] = this.cache.entries().next().value as [string, Buffer];
      this.cache.delete(oldest);
      this.cachedBytes -= old.length;
    }
  }

  private async read(id: Buffer, place: PagePlace): Promise<Buffer> {
    const located = this.locator?.(id) ?? null;
    const at = located ? await this.fromHeader(id, place, located) : this.index.lookup(id);
    if (!at) throw new BlockvaultError('CHUNK_MISSING', `${placeText(place)}: page ${id.toString('hex')} is in no pack`);
    const where = `${placeText(place)}: page ${id.toString('hex')} in ${packPath(at.packId)} at offset ${at.offset}`;
    let input: Buffer;
    try {
      input = 'payload' in at ? at.payload : await this.packs.readRange(at.packId, at.offset + recordHeaderBytes, at.storedBytes);
    } catch (err) {
      if (err instanceof BlockvaultError) throw new BlockvaultError(err.code, `${where}: ${err.message}`, { cause: err });
      throw err;
    }
    const copy = new Uint8Array(input.length);
    copy.set(input);
    const { decodeChunks } = await chunkWork();
    const reply = decodeChunks({
      op: 'decode', ids: new Uint8Array(id).buffer as ArrayBuffer, input: copy.buffer, offsets: [0], storedBytes: [at.storedBytes],
      rawBytes: [at.rawBytes], codecs: [at.codec], storedXxh64: [at.storedXxh64], checkContent: true,
    });
    if (reply.failures.length > 0) {
      throw new BlockvaultError('CHECKSUM_MISMATCH', `${where}: damaged (${reply.failures[0].reason})`);
    }
    this.pagesLoaded += 1;
    return Buffer.from(reply.output!);
  }
}

/** A located record read whole (header and payload); its header checked and matched to the id. */
async function readRecord(packs: PackReader, id: Buffer, where: { packId: string; offset: number; storedBytes: number }, place: PagePlace) {
  const what = `${placeText(place)}: page ${id.toString('hex')} in ${packPath(where.packId)} at offset ${where.offset}`;
  let bytes: Buffer;
  try {
    bytes = await packs.readRange(where.packId, where.offset, recordHeaderBytes + where.storedBytes);
  } catch (err) {
    if (err instanceof BlockvaultError) throw new BlockvaultError(err.code, `${what}: ${err.message}`, { cause: err });
    throw err;
  }
  const header = decodeRecordHeader(bytes.subarray(0, recordHeaderBytes), where.offset, what);
  if (!header.id.equals(id) || header.storedBytes !== where.storedBytes) throw new BlockvaultError('CORRUPT', `${what}: the record there holds another chunk`);
  return { packId: where.packId, offset: where.offset, rawBytes: header.rawBytes, storedBytes: header.storedBytes, codec: header.codec, storedXxh64: header.storedXxh64, payload: bytes.subarray(recordHeaderBytes) };
}

/** The zstd codec, loaded on first use: a command that reads no page (list, --help) does not pay for it. */
const chunkWork = () => import('../workers/chunk-work.js');

/** A new page as a pack record (zstd when it saves enough: leaves of sparse disks are mostly zero ids). */
async function pageRecord(bytes: Buffer, id: Buffer, zstdLevel: number): Promise<StoredChunk> {
  const { compressChunks } = await chunkWork();
  const data = new Uint8Array(bytes).buffer as ArrayBuffer;
  const reply = compressChunks({ op: 'compress', data, out: new ArrayBuffer(bytes.length), ranges: [0, bytes.length], level: zstdLevel });
  const payload = new Uint8Array(reply.payloads, 0, reply.storedBytes[0]);
  return { id, rawBytes: bytes.length, storedBytes: reply.storedBytes[0], codec: reply.codecs[0] as 0 | 1, storedXxh64: reply.storedXxh64[0], payload };
}

/**
 * Stores a map page unless the repository (or this writer) has it already:
 * `append` puts records into the writer's open pack, in order with the
 * caller's chunks. Returns its id, and its stored bytes when it was new.
 */
export async function storeMapPage(index: ChunkIndex, writer: PackWriter, append: (chunks: StoredChunk[]) => Promise<void>,
  zstdLevel: number, page: Buffer): Promise<{ id: Buffer; storedBytes: number | null }> {
  const id = sha256(page);
  if (index.isDedupTarget(id) || writer.isPending(id.toString('hex'))) return { id, storedBytes: null };
  const record = await pageRecord(page, id, zstdLevel);
  await append([record]);
  return { id, storedBytes: record.storedBytes };
}
