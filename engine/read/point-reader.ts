// Random access to a restore point's disk for the mount, `files` and `boot`.
// Zero chunks cost nothing; others are copied out of the shared chunk cache
// or fetched (checked; see FetchOptions) in batches that
// workers decode straight into the cache's slab. Sequential streams (see
// read-streams.ts) prefetch ahead in large batches, so streaming a disk
// keeps the workers busy ahead of the reader.
import { BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import type { OpenPoint } from '../repo/point-store.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import type { ChunkCache } from './chunk-cache.js';
import { ChunkFetcher, problemError, type ChunkProblem, type FetchOptions } from './chunk-fetcher.js';
import { ReadStreams } from './read-streams.js';

// Up to 16 MiB ahead at 64 KiB chunks, fetched 2 MiB at a time: enough
// batches in flight to keep both the disk and the workers busy.
const prefetchBytesMax = 16 * 1024 * 1024;
const prefetchStrideBytes = 2 * 1024 * 1024;

/** A chunk to fetch: its length, id, cache key, and slot offset in the slab (-1: none). */
interface Wanted { offset: number; length: number; id: Buffer; key: string; slotOffset: number }

/** The chunks a read touches, then those to prefetch after them: offsets, lengths, ids (views). */
interface Located { offsets: number[]; lengths: number[]; ids: Buffer; reading: number }

export class PointReader {
  readonly sizeBytes: number;
  private readonly chunkBytes: number;
  /** The unit ReadStreams counts in: the chunk size, or a variable-length map's average chunk. */
  private readonly unitBytes: number;
  private readonly fetcher: ChunkFetcher;
  private readonly streams: ReadStreams;

  constructor(repo: Repository, private readonly pool: WorkerPool, private readonly point: OpenPoint, private readonly cache: ChunkCache, private readonly name: string, options: FetchOptions = {}) {
    this.sizeBytes = point.header.sizeBytes;
    this.chunkBytes = point.header.chunkBytes;
    if (cache.slotBytes < this.chunkBytes) throw new BlockvaultError('CORRUPT', `${name}: chunks of ${this.chunkBytes} bytes, larger than the repository's ${cache.slotBytes}`);
    this.fetcher = new ChunkFetcher(repo, pool, options);
    const chunker = point.header.chunker;
    this.unitBytes = point.map.kind === 'cdc' && chunker && chunker.kind !== 'fixed' ? chunker.avgBytes : this.chunkBytes;
    this.streams = new ReadStreams(this.unitBytes, Math.ceil(this.sizeBytes / this.unitBytes),
      Math.max(1, Math.floor(prefetchBytesMax / this.unitBytes)), Math.max(1, Math.floor(prefetchStrideBytes / this.unitBytes)));
  }

  /** The chunks of [offset, end) and of the prefetch range after them. */
  private async locate(offset: number, end: number): Promise<Located> {
    const ahead = this.streams.onRead(offset, end);
    const map = this.point.map;
    if (map.kind === 'cdc') {
      const aheadEnd = Math.min(this.sizeBytes, Math.max(end, (ahead.last + 1) * this.unitBytes));
      const span = await map.chunksIn(offset, aheadEnd);
      let reading = 0;
      while (reading < span.offsets.length && span.offsets[reading] < end) reading += 1;
      return { ...span, reading };
    }
    const size = this.chunkBytes;
    const first = Math.floor(offset / size);
    const last = Math.floor((end - 1) / size);
    // The ids of the chunks read and prefetched, from the map's pages (cached: usually no I/O).
    const idsEnd = Math.max(last, ahead.last) + 1;
    const ids = map.idsNow(first, idsEnd - first) ?? await map.ids(first, idsEnd - first);
    const offsets: number[] = [];
    const lengths: number[] = [];
    for (let c = first; c < idsEnd; c++) {
      offsets.push(c * size);
      lengths.push(Math.min(size, this.sizeBytes - c * size));
    }
    return { offsets, lengths, ids, reading: last - first + 1 };
  }

  /** Reads up to `length` bytes at `offset` (fewer at the end of the disk). */
  async readAt(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(this.sizeBytes, offset + length) - offset));
    await this.readInto(offset, out);
    return out;
  }

  /** Fills `target` from `offset` (less at the end of the disk); returns the bytes filled. */
  async readInto(offset: number, target: Uint8Array): Promise<number> {
    const end = Math.min(this.sizeBytes, offset + target.length);
    if (offset >= end) return 0;
    const chunks = await this.locate(offset, end);
    const chunkId = (k: number) => chunks.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes);
    const batch: Wanted[] = [];
    const want = (k: number, key: string) => {
      if (!this.cache.isFilling(key)) batch.push({ offset: chunks.offsets[k], length: chunks.lengths[k], id: chunkId(k), key, slotOffset: this.cache.begin(key) });
    };
    const waits: Array<Promise<void>> = [];
    let failed = false; // once the read fails, late chunks must not touch `target` (FUSE has reclaimed it)
    for (let k = 0; k < chunks.reading; k++) {
      const at = chunks.offsets[k];
      const from = Math.max(offset, at) - at;
      const to = Math.min(end, at + chunks.lengths[k]) - at;
      const into = target.subarray(at + from - offset, at + to - offset);
      const id = chunkId(k);
      if (id.equals(zeroChunkId)) {
        into.fill(0);
        continue;
      }
      const key = id.toString('hex');
      const cached = this.cache.peek(key);
      if (cached) {
        into.set(cached.subarray(from, to));
        continue;
      }
      want(k, key);
      waits.push(new Promise<void>((resolve, reject) => this.cache.wait(key, (bytes, err) => {
        if (err) {
          failed = true;
          reject(err);
          return;
        }
        if (!failed) into.set(bytes!.subarray(from, to));
        resolve();
      })));
    }
    for (let k = chunks.reading; k < chunks.offsets.length; k++) {
      const id = chunkId(k);
      if (id.equals(zeroChunkId)) continue;
      const key = id.toString('hex');
      if (!this.cache.has(key)) want(k, key);
    }
    if (batch.length > 0) void this.load(batch);
    await Promise.all(waits);
    return end - offset;
  }

  /** Fetches a batch; every chunk in it lands in the cache or fails there (prefetch failures surface on a real read). */
  private async load(batch: Wanted[]): Promise<void> {
    const slotted = batch.filter((w) => w.slotOffset >= 0);
    const loose = batch.filter((w) => w.slotOffset < 0);
    await Promise.all([this.loadSlotted(slotted), this.loadLoose(loose)]);
  }

  private async loadSlotted(batch: Wanted[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      const result = await this.fetcher.fetchInto(batch.map((w) => w.id), await this.cache.slabId(this.pool), batch.map((w) => w.slotOffset));
      batch.forEach((w, i) => this.settle(w, result.rawBytes[i], result.problems.get(i)));
    } catch (err) {
      for (const w of batch) this.cache.fail(w.key, err as Error);
    }
  }

  /** Chunks that found no free slot (every slot in flight): fetched into a buffer of their own, not cached. */
  private async loadLoose(batch: Wanted[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      const result = await this.fetcher.fetch(batch.map((w) => w.id));
      let at = 0;
      batch.forEach((w, i) => {
        this.settle(w, result.rawBytes[i], result.problems.get(i), result.output.subarray(at, at + result.rawBytes[i]));
        at += result.rawBytes[i];
      });
    } catch (err) {
      for (const w of batch) this.cache.fail(w.key, err as Error);
    }
  }

  private settle(w: Wanted, length: number, problem: ChunkProblem | undefined, own?: Uint8Array): void {
    if (problem) this.cache.fail(w.key, problemError(problem, `read of ${this.name}`));
    else if (length !== w.length) this.cache.fail(w.key, new BlockvaultError('CORRUPT', `${this.name}: the chunk at offset ${w.offset} has ${length} bytes, expected ${w.length}`));
    else this.cache.land(w.key, length, own);
  }
}
