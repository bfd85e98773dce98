// Random access to a restore point's disk for the mount, `files` and `boot`.
// Zero chunks cost nothing; others come from the shared chunk cache or are
// fetched (verified) in batches. Sequential streams (see read-streams.ts)
// prefetch ahead in large batches, so streaming a disk keeps the workers
// busy ahead of the reader.
import { BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import type { OpenPoint } from '../repo/point-store.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import type { ChunkCache } from './chunk-cache.js';
import { ChunkFetcher, problemError } from './chunk-fetcher.js';
import { ReadStreams } from './read-streams.js';

// Up to 16 MiB ahead at 64 KiB chunks, fetched 2 MiB at a time: enough
// batches in flight to keep both the disk and the workers busy.
const prefetchBytesMax = 16 * 1024 * 1024;
const prefetchStrideBytes = 2 * 1024 * 1024;

export class PointReader {
  readonly sizeBytes: number;
  private readonly chunkBytes: number;
  private readonly fetcher: ChunkFetcher;
  private readonly streams: ReadStreams;

  constructor(repo: Repository, pool: WorkerPool, private readonly point: OpenPoint, private readonly cache: ChunkCache, private readonly name: string) {
    this.sizeBytes = point.header.sizeBytes;
    this.chunkBytes = point.header.chunkBytes;
    this.fetcher = new ChunkFetcher(repo, pool);
    this.streams = new ReadStreams(this.chunkBytes, Math.ceil(this.sizeBytes / this.chunkBytes),
      Math.max(1, Math.floor(prefetchBytesMax / this.chunkBytes)), Math.max(1, Math.floor(prefetchStrideBytes / this.chunkBytes)));
  }

  private chunkId(index: number): Buffer {
    return this.point.map.subarray(index * chunkIdBytes, (index + 1) * chunkIdBytes);
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
    const chunks = await this.chunks(first, last, ahead.first, ahead.last);
    for (let c = first; c <= last; c++) {
      const from = Math.max(offset, c * this.chunkBytes) - c * this.chunkBytes;
      const to = Math.min(end, (c + 1) * this.chunkBytes) - c * this.chunkBytes;
      const at = c * this.chunkBytes + from - offset;
      const data = chunks.get(c);
      if (data) target.set(data.subarray(from, to), at);
      else target.fill(0, at, at + to - from);
    }
    return end - offset;
  }

  /** Chunks first..last (and aheadFirst..aheadLast prefetched) from cache or one batched fetch. */
  private async chunks(first: number, last: number, aheadFirst: number, aheadLast: number): Promise<Map<number, Uint8Array>> {
    const result = new Map<number, Uint8Array>();
    const waits: Array<Promise<void>> = [];
    const missing: number[] = [];
    const consider = (c: number, needed: boolean) => {
      const id = this.chunkId(c);
      if (id.equals(zeroChunkId)) return;
      const key = id.toString('hex');
      const cached = this.cache.get(key);
      if (cached) {
        if (needed) result.set(c, cached);
        return;
      }
      const pending = this.cache.pending(key);
      if (pending) {
        if (needed) waits.push(pending.then((b) => { result.set(c, b); }));
        return;
      }
      missing.push(c);
    };
    for (let c = first; c <= last; c++) consider(c, true);
    for (let c = Math.max(aheadFirst, last + 1); c <= aheadLast; c++) consider(c, false);
    if (missing.length > 0) {
      const fetched = this.fetch(missing);
      missing.forEach((c, i) => {
        const one = this.cache.track(this.chunkId(c).toString('hex'), fetched.then((all) => all[i]));
        if (c <= last) waits.push(one.then((b) => { result.set(c, b); }));
      });
      if (missing.every((c) => c > last)) void fetched.catch(() => undefined); // prefetch only: errors surface on a real read
    }
    await Promise.all(waits);
    return result;
  }

  private async fetch(indexes: number[]): Promise<Uint8Array[]> {
    const ids = indexes.map((c) => Buffer.from(this.chunkId(c)));
    const result = await this.fetcher.fetch(ids);
    const problem = [...result.problems.values()][0];
    if (problem) throw problemError(problem, `read of ${this.name}`);
    const out: Uint8Array[] = [];
    let at = 0;
    indexes.forEach((c, i) => {
      const length = result.rawBytes[i];
      if (length !== this.chunkLength(c)) throw new BlockvaultError('CORRUPT', `${this.name}: chunk ${c} has ${length} bytes, expected ${this.chunkLength(c)}`);
      // A view into the batch's buffer, which is never reused: the cache
      // charges the whole buffer until its last chunk is evicted.
      const view = result.output.subarray(at, at + length);
      this.cache.put(ids[i].toString('hex'), view);
      out.push(view);
      at += length;
    });
    return out;
  }
}
