// Restore: a restore point's chunks to a target. Batches are fetched (and
// verified) in parallel, decoded into a shared slab at their place in the
// disk, and written as soon as they are ready (in disk order for a stream).
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import { BlockvaultError } from '../core/errors.js';
import { interruptedError, whenAborted } from '../core/interrupt.js';
import { phase } from '../core/phases.js';
import { batchBytes, batchesInFlightMax } from '../core/limits.js';
import { ChunkFetcher, problemError } from '../read/chunk-fetcher.js';
import type { PointEntry } from '../repo/chunk-index.js';
import type { MapWalk } from '../repo/chunk-map.js';
import type { Repository } from '../repo/repository.js';
import type { Target } from './target.js';
import type { WorkerPool } from '../workers/pool.js';
import { SlabSlots } from '../workers/slab-slots.js';

export interface RestoreProgress { bytesDone: number; bytesTotal: number }
export interface RestoreResult { id: string; bytesTotal: number; bytesWritten: number; chunksZero: number; seconds: number }

interface Counts { bytesWritten: number; chunksZero: number; bytesDone: number }
/** A fetched batch: `data` is its slot, the batch's chunks back to back as on the disk (null: all zero). */
interface BatchOut { span: Span; data: Uint8Array | null; present: boolean[]; slot: number | null }
/**
 * A stretch of the disk in order: consecutive chunks (at most a batch's bytes)
 * with their lengths and ids, or a run of zero bytes (ids null: the gap
 * between a fixed map's stored leaves).
 */
interface Span { offset: number; bytes: number; lengths: number[]; ids: Buffer | null; gapChunks?: number }

/** The map in disk order: each leaf cut into batches, the gaps between leaves as single zero runs (a 2 TiB disk holding 4 GiB is mostly gaps). */
async function* spans(map: MapWalk, disk: { chunkBytes: number; sizeBytes: number }): AsyncGenerator<Span> {
  const { chunkBytes, sizeBytes } = disk;
  let next = 0;
  for await (const leaf of map.leaves()) {
    const count = leaf.ids.length / chunkIdBytes;
    const firstByte = leaf.firstByte ?? leaf.firstChunk * chunkBytes;
    const lengthOf = (k: number) => (leaf.lengths ? leaf.lengths[k] : Math.min(chunkBytes, sizeBytes - (leaf.firstChunk + k) * chunkBytes));
    if (firstByte > next) yield { offset: next, bytes: firstByte - next, lengths: [], ids: null, gapChunks: Math.ceil((firstByte - next) / chunkBytes) };
    let offset = firstByte;
    for (let k = 0; k < count; ) {
      const lengths: number[] = [];
      let bytes = 0;
      for (; k + lengths.length < count && (lengths.length === 0 || bytes + lengthOf(k + lengths.length) <= batchBytes); ) {
        bytes += lengthOf(k + lengths.length);
        lengths.push(lengthOf(k + lengths.length));
      }
      yield { offset, bytes, lengths, ids: Buffer.from(leaf.ids.subarray(k * chunkIdBytes, (k + lengths.length) * chunkIdBytes)) };
      offset += bytes;
      k += lengths.length;
    }
    next = offset;
  }
  if (sizeBytes > next) yield { offset: next, bytes: sizeBytes - next, lengths: [], ids: null, gapChunks: Math.ceil((sizeBytes - next) / chunkBytes) };
}

export async function runRestore(repo: Repository, entry: PointEntry, target: Target, pool: WorkerPool,
  onProgress?: (p: RestoreProgress) => void, signal?: AbortSignal): Promise<RestoreResult> {
  const started = process.hrtime.bigint();
  const point = await repo.points.open(entry);
  phase('point-open');
  const { chunkBytes, sizeBytes } = point.header;
  const name = `${entry.vm}/${entry.disk}@${entry.id}`;
  const fetcher = new ChunkFetcher(repo, pool);
  const counts: Counts = { bytesWritten: 0, chunksZero: 0, bytesDone: 0 };
  // Workers decode each batch straight into its slot, each chunk at its place on the disk less
  // the batch's start: the slot then holds the disk's bytes as laid out, written from there (one
  // slot per batch in flight, and one being written).
  const slots = new SlabSlots(pool, Math.max(batchBytes, chunkBytes), batchesInFlightMax + 1);

  const fetchBatch = async (span: Span): Promise<BatchOut> => {
    const present: boolean[] = [];
    const ids: Buffer[] = [];
    const offsets: number[] = [];
    const slot = slots.take();
    for (let k = 0, at = 0; k < span.lengths.length; at += span.lengths[k], k++) {
      const id = span.ids ? span.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes) : zeroChunkId;
      const isData = !id.equals(zeroChunkId);
      present.push(isData);
      if (isData) {
        ids.push(id);
        offsets.push(slots.offsetOf(slot, at));
      }
    }
    try {
      if (ids.length > 0) {
        const result = await fetcher.fetchInto(ids, await slots.slabId(), offsets);
        const first = [...result.problems.values()][0];
        if (first) throw problemError(first, `restore of ${name}`);
        checkLengths(span, present, result.rawBytes, name);
      }
    } catch (err) {
      slots.give(slot);
      throw err;
    }
    return { span, data: ids.length > 0 ? slots.view(slot) : null, present, slot };
  };

  const write = async (out: BatchOut) => {
    try {
      await writeBatch(out, target, sizeBytes, counts, onProgress);
    } finally {
      if (out.slot !== null) slots.give(out.slot);
    }
  };
  const fetchSpan = (span: Span): Promise<BatchOut> => (span.ids ? fetchBatch(span) : Promise.resolve({ span, data: null, present: [], slot: null }));
  const interrupted = rejectOnAbort(signal, target);
  try {
    const batches = spans(point.map, { chunkBytes, sizeBytes });
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

/** Each chunk must hold what the map says it does (a damaged map would otherwise restore shifted bytes). */
function checkLengths(span: Span, present: boolean[], rawBytes: number[], name: string): void {
  for (let k = 0, at = span.offset, i = 0; k < span.lengths.length; at += span.lengths[k], k++) {
    if (!present[k]) continue;
    if (rawBytes[i] !== span.lengths[k]) throw new BlockvaultError('CORRUPT', `restore of ${name}: the chunk at offset ${at} holds ${rawBytes[i]} bytes; the map says ${span.lengths[k]}`);
    i += 1;
  }
}

/** Writes a fetched batch: runs of data chunks as one write each, zero chunks (or a whole zero run) as zeros. */
async function writeBatch(out: BatchOut, target: Target, sizeBytes: number, counts: Counts, onProgress?: (p: RestoreProgress) => void): Promise<void> {
  const { span } = out;
  counts.bytesDone += span.bytes;
  if (!out.data) {
    counts.chunksZero += span.gapChunks ?? span.lengths.length;
    await target.zero(span.offset, span.bytes);
  } else {
    for (let k = 0, at = 0; k < span.lengths.length; k++) {
      if (!out.present[k]) {
        counts.chunksZero += 1;
        await target.zero(span.offset + at, span.lengths[k]);
        at += span.lengths[k];
        continue;
      }
      let run = span.lengths[k];
      while (k + 1 < span.lengths.length && out.present[k + 1]) run += span.lengths[++k];
      await target.write(out.data.subarray(at, at + run), span.offset + at);
      counts.bytesWritten += run;
      at += run;
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
