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

/** A chunk to fetch: its index, id, cache key, and slot offset in the slab (-1: none). */
interface Wanted { index: number; id: Buffer; key: string; slotOffset: number }

export class PointReader {
  readonly sizeBytes: number;
  private readonly chunkBytes: number;
  private readonly fetcher: ChunkFetcher;
  private readonly streams: ReadStreams;

  constructor(repo: Repository, private readonly pool: WorkerPool, private readonly point: OpenPoint, private readonly cache: ChunkCache, private readonly name: string, options: FetchOptions = {}) {
    this.sizeBytes = point.header.sizeBytes;
    this.chunkBytes = point.header.chunkBytes;
    if (cache.slotBytes < this.chunkBytes) throw new BlockvaultError('CORRUPT', `${name}: chunks of ${this.chunkBytes} bytes, larger than the repository's ${cache.slotBytes}`);
    this.fetcher = new ChunkFetcher(repo, pool, options);
    this.streams = new ReadStreams(this.chunkBytes, Math.ceil(this.sizeBytes / this.chunkBytes),
      Math.max(1, Math.floor(prefetchBytesMax / this.chunkBytes)), Math.max(1, Math.floor(prefetchStrideBytes / this.chunkBytes)));
  }

  private chunkLength(index: number): number {
    return Math.min(this.chunkBytes, this.sizeBytes - index * this.chunkBytes);
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
    const first = Math.floor(offset / this.chunkBytes);
    const last = Math.floor((end - 1) / this.chunkBytes);
    const ahead = this.streams.onRead(offset, end);
    // The ids of the chunks read and prefetched, from the map's pages (cached: usually no I/O).
    const idsEnd = Math.max(last, ahead.last) + 1;
    const ids = this.point.map.idsNow(first, idsEnd - first) ?? await this.point.map.ids(first, idsEnd - first);
    const chunkId = (c: number) => ids.subarray((c - first) * chunkIdBytes, (c - first + 1) * chunkIdBytes);
    const batch: Wanted[] = [];
    const want = (index: number, key: string) => {
      if (!this.cache.isFilling(key)) batch.push({ index, id: chunkId(index), key, slotOffset: this.cache.begin(key) });
    };
    const waits: Array<Promise<void>> = [];
    let failed = false; // once the read fails, late chunks must not touch `target` (FUSE has reclaimed it)
    for (let c = first; c <= last; c++) {
      const from = Math.max(offset, c * this.chunkBytes) - c * this.chunkBytes;
      const to = Math.min(end, (c + 1) * this.chunkBytes) - c * this.chunkBytes;
      const into = target.subarray(c * this.chunkBytes + from - offset, c * this.chunkBytes + to - offset);
      const id = chunkId(c);
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
      want(c, key);
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
    for (let c = Math.max(ahead.first, last + 1); c <= ahead.last; c++) {
      const id = chunkId(c);
      if (id.equals(zeroChunkId)) continue;
      const key = id.toString('hex');
      if (!this.cache.has(key)) want(c, key);
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
    else if (length !== this.chunkLength(w.index)) this.cache.fail(w.key, new BlockvaultError('CORRUPT', `${this.name}: chunk ${w.index} has ${length} bytes, expected ${this.chunkLength(w.index)}`));
    else this.cache.land(w.key, length, own);
  }
}
