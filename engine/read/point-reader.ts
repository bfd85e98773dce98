// Random access to a restore point's disk: readAt(offset, length) for the
// mount, `files` and `boot`. Zero chunks cost nothing; others come from the
// shared chunk cache or are fetched (verified) in batches, with the window
// growing while reads are sequential, so streaming a disk keeps the workers
// busy ahead of the reader.
import { BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import type { OpenPoint } from '../repo/point-store.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import type { ChunkCache } from './chunk-cache.js';
import { ChunkFetcher, problemError } from './chunk-fetcher.js';

const prefetchChunksMax = 64;

export class PointReader {
  readonly sizeBytes: number;
  private readonly chunkBytes: number;
  private readonly fetcher: ChunkFetcher;
  private nextSequential = -1;
  private window = 1;
  /** Chunks before this index were already requested by a sequential prefetch. */
  private prefetchedEnd = 0;

  constructor(repo: Repository, pool: WorkerPool, private readonly point: OpenPoint, private readonly cache: ChunkCache, private readonly name: string) {
    this.sizeBytes = point.header.sizeBytes;
    this.chunkBytes = point.header.chunkBytes;
    this.fetcher = new ChunkFetcher(repo, pool);
  }

  private chunkId(index: number): Buffer {
    return this.point.map.subarray(index * chunkIdBytes, (index + 1) * chunkIdBytes);
  }

  private chunkLength(index: number): number {
    return Math.min(this.chunkBytes, this.sizeBytes - index * this.chunkBytes);
  }

  /** Reads up to `length` bytes at `offset` (fewer at the end of the disk). */
  async readAt(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.sizeBytes, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const first = Math.floor(offset / this.chunkBytes);
    const last = Math.floor((end - 1) / this.chunkBytes);
    const sequential = offset === this.nextSequential;
    this.window = sequential ? Math.min(prefetchChunksMax, this.window * 2) : 1;
    this.nextSequential = end;
    let prefetchFrom = last + 1;
    let prefetchEnd = last;
    if (sequential) {
      prefetchEnd = Math.min(Math.ceil(this.sizeBytes / this.chunkBytes) - 1, last + this.window);
      prefetchFrom = Math.max(prefetchFrom, this.prefetchedEnd); // scan only what was not requested yet
      this.prefetchedEnd = Math.max(this.prefetchedEnd, prefetchEnd + 1);
    }
    const chunks = await this.chunks(first, last, prefetchFrom, prefetchEnd);
    const out = Buffer.allocUnsafe(end - offset);
    for (let c = first; c <= last; c++) {
      const from = Math.max(offset, c * this.chunkBytes) - c * this.chunkBytes;
      const to = Math.min(end, (c + 1) * this.chunkBytes) - c * this.chunkBytes;
      const at = c * this.chunkBytes + from - offset;
      const data = chunks.get(c);
      if (data) data.copy(out, at, from, to);
      else out.fill(0, at, at + to - from);
    }
    return out;
  }

  /** Chunks first..last (and prefetchFrom..prefetchEnd ahead of them) from cache or one batched fetch. */
  private async chunks(first: number, last: number, prefetchFrom: number, prefetchEnd: number): Promise<Map<number, Buffer>> {
    const result = new Map<number, Buffer>();
    const waits: Array<Promise<void>> = [];
    const missing: number[] = [];
    for (let c = first; c <= Math.max(last, prefetchEnd); c++) {
      if (c > last && c < prefetchFrom) c = prefetchFrom;
      if (c * this.chunkBytes >= this.sizeBytes || c > Math.max(last, prefetchEnd)) break;
      const id = this.chunkId(c);
      if (id.equals(zeroChunkId)) continue;
      const key = id.toString('hex');
      const needed = c <= last;
      const cached = this.cache.get(key);
      if (cached) {
        if (needed) result.set(c, cached);
        continue;
      }
      const pending = this.cache.pending(key);
      if (pending) {
        if (needed) waits.push(pending.then((b) => { result.set(c, b); }));
        continue;
      }
      missing.push(c);
    }
    if (missing.length > 0) {
      const fetched = this.fetch(missing);
      missing.forEach((c, i) => {
        const one = fetched.then((all) => all[i]);
        this.cache.track(this.chunkId(c).toString('hex'), one);
        if (c <= last) waits.push(one.then((b) => { result.set(c, b); }));
      });
      if (missing.every((c) => c > last)) void fetched.catch(() => undefined); // prefetch only: errors surface on a real read
    }
    await Promise.all(waits);
    return result;
  }

  private async fetch(indexes: number[]): Promise<Buffer[]> {
    const ids = indexes.map((c) => Buffer.from(this.chunkId(c)));
    const result = await this.fetcher.fetch(ids);
    const problem = [...result.problems.values()][0];
    if (problem) throw problemError(problem, `read of ${this.name}`);
    const out: Buffer[] = [];
    let at = 0;
    indexes.forEach((c, i) => {
      const length = result.rawBytes[i];
      if (length !== this.chunkLength(c)) throw new BlockvaultError('CORRUPT', `${this.name}: chunk ${c} has ${length} bytes, expected ${this.chunkLength(c)}`);
      const copy = Buffer.from(result.output.subarray(at, at + length)); // own it: the batch buffer is not kept alive
      this.cache.put(ids[i].toString('hex'), copy);
      out.push(copy);
      at += length;
    });
    return out;
  }
}
