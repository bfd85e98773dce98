// Restore: stream a restore point's chunks in disk order to a target.
// Batches are fetched (and verified) in parallel, written in order.
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import { interruptedError, whenAborted } from '../core/interrupt.js';
import { batchBytes, batchesInFlightMax } from '../core/limits.js';
import { ChunkFetcher, problemError } from '../read/chunk-fetcher.js';
import type { PointEntry } from '../repo/chunk-index.js';
import type { Repository } from '../repo/repository.js';
import type { Target } from './target.js';
import type { WorkerPool } from '../workers/pool.js';

export interface RestoreProgress { bytesDone: number; bytesTotal: number }
export interface RestoreResult { id: string; bytesTotal: number; bytesWritten: number; chunksZero: number; seconds: number }

interface BatchOut { firstChunk: number; count: number; data: Buffer | null; present: boolean[] }

export async function runRestore(repo: Repository, entry: PointEntry, target: Target, pool: WorkerPool,
  onProgress?: (p: RestoreProgress) => void, signal?: AbortSignal): Promise<RestoreResult> {
  const started = process.hrtime.bigint();
  const point = await repo.points.open(entry);
  const { chunkBytes, sizeBytes, chunksTotal } = point.header;
  const name = `${entry.vm}/${entry.disk}@${entry.id}`;
  const fetcher = new ChunkFetcher(repo, pool);
  const batchChunks = Math.max(1, Math.floor(batchBytes / chunkBytes));
  let bytesWritten = 0;
  let chunksZero = 0;
  const freeOutputs: ArrayBuffer[] = []; // decode outputs, recycled once written

  const fetchBatch = async (firstChunk: number): Promise<BatchOut> => {
    const count = Math.min(batchChunks, chunksTotal - firstChunk);
    const present: boolean[] = [];
    const ids: Buffer[] = [];
    for (let c = firstChunk; c < firstChunk + count; c++) {
      const id = point.map.subarray(c * chunkIdBytes, (c + 1) * chunkIdBytes);
      const isData = !id.equals(zeroChunkId);
      present.push(isData);
      if (isData) ids.push(id);
    }
    if (ids.length === 0) return { firstChunk, count, data: null, present };
    const result = await fetcher.fetch(ids, freeOutputs.pop());
    const first = [...result.problems.values()][0];
    if (first) throw problemError(first, `restore of ${name}`);
    return { firstChunk, count, data: result.output, present };
  };

  const writeBatch = async (out: BatchOut): Promise<void> => {
    let at = 0;
    for (let k = 0; k < out.count; k++) {
      const chunk = out.firstChunk + k;
      const offset = chunk * chunkBytes;
      const length = Math.min(chunkBytes, sizeBytes - offset);
      if (out.present[k]) {
        // Coalesce consecutive data chunks into one write.
        let run = length;
        while (k + 1 < out.count && out.present[k + 1]) {
          k += 1;
          run += Math.min(chunkBytes, sizeBytes - (out.firstChunk + k) * chunkBytes);
        }
        await target.write(out.data!.subarray(at, at + run), offset);
        at += run;
        bytesWritten += run;
      } else {
        chunksZero += 1;
        await target.zero(offset, length);
      }
    }
    if (out.data) freeOutputs.push(out.data.buffer as ArrayBuffer);
    onProgress?.({ bytesDone: Math.min(sizeBytes, (out.firstChunk + out.count) * chunkBytes), bytesTotal: sizeBytes });
  };

  const interrupted = rejectOnAbort(signal, target);
  const next = async (queue: Promise<BatchOut>[]) => Promise.race([writeBatch(await queue.shift()!), interrupted]);
  try {
    const queue: Promise<BatchOut>[] = [];
    for (let first = 0; first < chunksTotal; first += batchChunks) {
      const p = fetchBatch(first);
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
  return { id: entry.id, bytesTotal: sizeBytes, bytesWritten, chunksZero, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Rejects when `signal` aborts: an interrupt wins over a write that waits on a stalled reader (stdout) or a slow device. */
function rejectOnAbort(signal: AbortSignal | undefined, target: Target): Promise<never> {
  const interrupted = whenAborted(signal).then((): never => { throw interruptedError(signal!, target.leftAfterAbort); });
  interrupted.catch(() => undefined); // observed by the races that use it
  return interrupted;
}
