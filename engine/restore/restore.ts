// Restore: stream a restore point's chunks in disk order to a target.
// Batches are fetched (and verified) in parallel, written in order.
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import { interruptedError, whenAborted } from '../core/interrupt.js';
import { batchBytes, batchesInFlightMax } from '../core/limits.js';
import { ChunkFetcher, problemError } from '../read/chunk-fetcher.js';
import type { PointEntry } from '../repo/chunk-index.js';
import type { ChunkMap } from '../repo/chunk-map.js';
import type { Repository } from '../repo/repository.js';
import type { Target } from './target.js';
import type { WorkerPool } from '../workers/pool.js';

export interface RestoreProgress { bytesDone: number; bytesTotal: number }
export interface RestoreResult { id: string; bytesTotal: number; bytesWritten: number; chunksZero: number; seconds: number }

interface BatchOut { firstChunk: number; count: number; data: Buffer | null; present: boolean[] }
/** A stretch of the disk in order: chunks with their ids (at most a batch), or a run of zero chunks (a map leaf of none). */
type Span = { firstChunk: number; count: number; ids: Buffer | null };

/** The map in disk order: each leaf cut into batches, the gaps between leaves as single zero runs (a 2 TiB disk holding 4 GiB is mostly gaps). */
async function* spans(map: ChunkMap, batchChunks: number): AsyncGenerator<Span> {
  let next = 0;
  for await (const leaf of map.leaves()) {
    if (leaf.firstChunk > next) yield { firstChunk: next, count: leaf.firstChunk - next, ids: null };
    const count = leaf.ids.length / chunkIdBytes;
    for (let k = 0; k < count; k += batchChunks) {
      const n = Math.min(batchChunks, count - k);
      yield { firstChunk: leaf.firstChunk + k, count: n, ids: Buffer.from(leaf.ids.subarray(k * chunkIdBytes, (k + n) * chunkIdBytes)) };
    }
    next = leaf.firstChunk + count;
  }
  if (map.chunksTotal > next) yield { firstChunk: next, count: map.chunksTotal - next, ids: null };
}

export async function runRestore(repo: Repository, entry: PointEntry, target: Target, pool: WorkerPool,
  onProgress?: (p: RestoreProgress) => void, signal?: AbortSignal): Promise<RestoreResult> {
  const started = process.hrtime.bigint();
  const point = await repo.points.open(entry);
  const { chunkBytes, sizeBytes } = point.header;
  const name = `${entry.vm}/${entry.disk}@${entry.id}`;
  const fetcher = new ChunkFetcher(repo, pool);
  const batchChunks = Math.max(1, Math.floor(batchBytes / chunkBytes));
  const counts = { bytesWritten: 0, chunksZero: 0 };
  const freeOutputs: ArrayBuffer[] = []; // decode outputs, recycled once written

  const fetchBatch = async (span: Span): Promise<BatchOut> => {
    const present: boolean[] = [];
    const ids: Buffer[] = [];
    for (let k = 0; k < span.count; k++) {
      const id = span.ids ? span.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes) : zeroChunkId;
      const isData = !id.equals(zeroChunkId);
      present.push(isData);
      if (isData) ids.push(id);
    }
    if (ids.length === 0) return { firstChunk: span.firstChunk, count: span.count, data: null, present };
    const result = await fetcher.fetch(ids, freeOutputs.pop());
    const first = [...result.problems.values()][0];
    if (first) throw problemError(first, `restore of ${name}`);
    return { firstChunk: span.firstChunk, count: span.count, data: result.output, present };
  };

  const write = (out: BatchOut) => writeBatch(out, target, { chunkBytes, sizeBytes }, counts, freeOutputs, onProgress);
  const interrupted = rejectOnAbort(signal, target);
  const next = async (queue: Promise<BatchOut>[]) => Promise.race([write(await queue.shift()!), interrupted]);
  try {
    const queue: Promise<BatchOut>[] = [];
    for await (const span of spans(point.map, batchChunks)) {
      const p = span.ids ? fetchBatch(span) : Promise.resolve({ firstChunk: span.firstChunk, count: span.count, data: null, present: [] });
      p.catch(() => undefined); // observed when its turn comes
      queue.push(p);
      if (queue.length >= batchesInFlightMax) await next(queue);
    }
    while (queue.length > 0) await next(queue);
    await target.finish(sizeBytes); // not raced: once it runs, the restore completes
  } catch (err) {
    await target.abort();
    throw err;
  }
  return { id: entry.id, bytesTotal: sizeBytes, ...counts, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Writes a fetched batch in order: runs of data chunks as one write each, zero chunks (or a whole zero run) as zeros. */
async function writeBatch(out: BatchOut, target: Target, disk: { chunkBytes: number; sizeBytes: number }, counts: { bytesWritten: number; chunksZero: number },
  freeOutputs: ArrayBuffer[], onProgress?: (p: RestoreProgress) => void): Promise<void> {
  const { chunkBytes, sizeBytes } = disk;
  const end = Math.min(sizeBytes, (out.firstChunk + out.count) * chunkBytes);
  if (!out.data) {
    counts.chunksZero += out.count;
    await target.zero(out.firstChunk * chunkBytes, end - out.firstChunk * chunkBytes);
  } else {
    let at = 0;
    for (let k = 0; k < out.count; k++) {
      const offset = (out.firstChunk + k) * chunkBytes;
      const length = Math.min(chunkBytes, sizeBytes - offset);
      if (!out.present[k]) {
        counts.chunksZero += 1;
        await target.zero(offset, length);
        continue;
      }
      let run = length;
      while (k + 1 < out.count && out.present[k + 1]) {
        k += 1;
        run += Math.min(chunkBytes, sizeBytes - (out.firstChunk + k) * chunkBytes);
      }
      await target.write(out.data.subarray(at, at + run), offset);
      at += run;
      counts.bytesWritten += run;
    }
    freeOutputs.push(out.data.buffer as ArrayBuffer);
  }
  onProgress?.({ bytesDone: end, bytesTotal: sizeBytes });
}

/** Rejects when `signal` aborts: an interrupt wins over a write that waits on a stalled reader (stdout) or a slow device. */
function rejectOnAbort(signal: AbortSignal | undefined, target: Target): Promise<never> {
  const interrupted = whenAborted(signal).then((): never => { throw interruptedError(signal!, target.leftAfterAbort); });
  interrupted.catch(() => undefined); // observed by the races that use it
  return interrupted;
}
