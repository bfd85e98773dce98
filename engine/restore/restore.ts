// Restore: a restore point's chunks to a target. Batches are fetched (and
// verified) in parallel, decoded into a shared slab at their place in the
// disk, and written as soon as they are ready (in disk order for a stream).
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import { interruptedError, whenAborted } from '../core/interrupt.js';
import { phase } from '../core/phases.js';
import { batchBytes, batchesInFlightMax } from '../core/limits.js';
import { ChunkFetcher, problemError } from '../read/chunk-fetcher.js';
import type { PointEntry } from '../repo/chunk-index.js';
import type { ChunkMap } from '../repo/chunk-map.js';
import type { Repository } from '../repo/repository.js';
import type { Target } from './target.js';
import type { WorkerPool } from '../workers/pool.js';
import { SlabSlots } from '../workers/slab-slots.js';

export interface RestoreProgress { bytesDone: number; bytesTotal: number }
export interface RestoreResult { id: string; bytesTotal: number; bytesWritten: number; chunksZero: number; seconds: number }

interface Counts { bytesWritten: number; chunksZero: number; bytesDone: number }
/** A fetched batch: `data` is its slot, chunk k at k * chunkBytes (null: all zero). */
interface BatchOut { firstChunk: number; count: number; data: Uint8Array | null; present: boolean[]; slot: number | null }
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
  phase('point-open');
  const { chunkBytes, sizeBytes } = point.header;
  const name = `${entry.vm}/${entry.disk}@${entry.id}`;
  const fetcher = new ChunkFetcher(repo, pool);
  const batchChunks = Math.max(1, Math.floor(batchBytes / chunkBytes));
  const counts: Counts = { bytesWritten: 0, chunksZero: 0, bytesDone: 0 };
  // Workers decode each batch straight into its slot, chunk k at k * chunkBytes: the slot then
  // holds the disk's bytes as laid out, written from there (one slot per batch in flight, and
  // one being written).
  const slots = new SlabSlots(pool, batchChunks * chunkBytes, batchesInFlightMax + 1);

  const fetchBatch = async (span: Span): Promise<BatchOut> => {
    const present: boolean[] = [];
    const ids: Buffer[] = [];
    const offsets: number[] = [];
    const slot = slots.take();
    for (let k = 0; k < span.count; k++) {
      const id = span.ids ? span.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes) : zeroChunkId;
      const isData = !id.equals(zeroChunkId);
      present.push(isData);
      if (isData) {
        ids.push(id);
        offsets.push(slots.offsetOf(slot, k * chunkBytes));
      }
    }
    try {
      if (ids.length > 0) {
        const result = await fetcher.fetchInto(ids, await slots.slabId(), offsets);
        const first = [...result.problems.values()][0];
        if (first) throw problemError(first, `restore of ${name}`);
      }
    } catch (err) {
      slots.give(slot);
      throw err;
    }
    return { firstChunk: span.firstChunk, count: span.count, data: ids.length > 0 ? slots.view(slot) : null, present, slot };
  };

  const write = async (out: BatchOut) => {
    try {
      await writeBatch(out, target, { chunkBytes, sizeBytes }, counts, onProgress);
    } finally {
      if (out.slot !== null) slots.give(out.slot);
    }
  };
  const fetchSpan = (span: Span): Promise<BatchOut> => (span.ids ? fetchBatch(span) : Promise.resolve({ firstChunk: span.firstChunk, count: span.count, data: null, present: [], slot: null }));
  const interrupted = rejectOnAbort(signal, target);
  try {
    const batches = spans(point.map, batchChunks);
    await Promise.race([(target.inOrder ? writeInOrder : writeAsFetched)(batches, fetchSpan, write, signal), interrupted]);
    phase('data-written');
    await target.finish(sizeBytes); // not raced: once it runs, the restore completes
    phase('synced');
  } catch (err) {
    await target.abort();
    throw err;
  } finally {
    await slots.release();
  }
  return { id: entry.id, bytesTotal: sizeBytes, bytesWritten: counts.bytesWritten, chunksZero: counts.chunksZero, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** A stream: batches fetched batchesInFlightMax ahead, written strictly in disk order. */
async function writeInOrder(batches: AsyncGenerator<Span>, fetch: (s: Span) => Promise<BatchOut>, write: (b: BatchOut) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const queue: Promise<BatchOut>[] = [];
  for await (const span of batches) {
    if (signal?.aborted) return; // the interrupt race has already failed the restore
    const p = fetch(span);
    p.catch(() => undefined); // observed when its turn comes
    queue.push(p);
    if (queue.length >= batchesInFlightMax) await write(await queue.shift()!);
  }
  while (queue.length > 0 && !signal?.aborted) await write(await queue.shift()!);
}

/**
 * A file or block device: each batch is written as soon as it is decoded,
 * batchesInFlightMax at a time, so a slow fetch never holds up the writes
 * behind it and the output disk is kept busy. Stops at the first failure
 * once the writes in flight have settled (abort() then closes the file).
 */
async function writeAsFetched(batches: AsyncGenerator<Span>, fetch: (s: Span) => Promise<BatchOut>, write: (b: BatchOut) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  for await (const span of batches) {
    if (signal?.aborted) break; // the interrupt race has already failed the restore
    const task: Promise<void> = fetch(span).then(write).catch((err) => { failure ??= err; }).finally(() => inflight.delete(task));
    inflight.add(task);
    while (inflight.size >= batchesInFlightMax) await Promise.race(inflight);
    if (failure) break;
  }
  await Promise.all(inflight);
  if (failure) throw failure;
}

/** Writes a fetched batch: runs of data chunks as one write each, zero chunks (or a whole zero run) as zeros. */
async function writeBatch(out: BatchOut, target: Target, disk: { chunkBytes: number; sizeBytes: number }, counts: Counts,
  onProgress?: (p: RestoreProgress) => void): Promise<void> {
  const { chunkBytes, sizeBytes } = disk;
  const end = Math.min(sizeBytes, (out.firstChunk + out.count) * chunkBytes);
  counts.bytesDone += end - out.firstChunk * chunkBytes;
  if (!out.data) {
    counts.chunksZero += out.count;
    await target.zero(out.firstChunk * chunkBytes, end - out.firstChunk * chunkBytes);
  } else {
    for (let k = 0; k < out.count; k++) {
      const offset = (out.firstChunk + k) * chunkBytes;
      const length = Math.min(chunkBytes, sizeBytes - offset);
      if (!out.present[k]) {
        counts.chunksZero += 1;
        await target.zero(offset, length);
        continue;
      }
      const at = k * chunkBytes;
      let run = length;
      while (k + 1 < out.count && out.present[k + 1]) {
        k += 1;
        run += Math.min(chunkBytes, sizeBytes - (out.firstChunk + k) * chunkBytes);
      }
      await target.write(out.data.subarray(at, at + run), offset);
      counts.bytesWritten += run;
    }
  }
  onProgress?.({ bytesDone: counts.bytesDone, bytesTotal: sizeBytes });
}

/** Rejects when `signal` aborts: an interrupt wins over a write that waits on a stalled reader (stdout) or a slow device. */
function rejectOnAbort(signal: AbortSignal | undefined, target: Target): Promise<never> {
  const interrupted = whenAborted(signal).then((): never => { throw interruptedError(signal!, target.leftAfterAbort); });
  interrupted.catch(() => undefined); // observed by the races that use it
  return interrupted;
}
