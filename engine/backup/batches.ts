// Splits a source into batches of whole chunks, in disk order, and reads
// each batch: chunks that lie entirely in a hole are not read at all.
import { BlockvaultError } from '../core/errors.js';
import { readAheadBytesMax, readsInFlightMax } from '../core/limits.js';
import type { Source } from '../source/source.js';

export interface Batch {
  firstChunk: number;
  /** Length of every chunk in the batch (the last chunk of a disk may be short). */
  chunkLengths: number[];
  /** Indexes (within the batch) of chunks that were read, in order. */
  readChunks: number[];
  /** The read chunks back to back (a view of a batch slot, see batch-slots.ts). */
  data: Uint8Array;
  bytesRead: number;
  /** True when this is the stream's final batch. */
  last: boolean;
}

/** A run of whole chunks with no data at all (a sparse image's hole): nothing read, nothing to hash; zero chunks. */
export interface HoleRun { hole: true; firstChunk: number; chunks: number; bytes: number }

/** Cursor over sorted data extents: does [start, end) touch data? */
class ExtentCursor {
  private at = 0;
  constructor(private readonly extents: ReadonlyArray<readonly [number, number]> | null) {}
  touchesData(start: number, end: number): boolean {
    const e = this.extents;
    if (!e) return true;
    while (this.at < e.length && e[this.at][1] <= start) this.at += 1;
    return this.at < e.length && e[this.at][0] < end;
  }
  /** Where the next data at or after `start` begins (Infinity: none). */
  nextDataAt(start: number): number {
    const e = this.extents;
    if (!e) return start;
    while (this.at < e.length && e[this.at][1] <= start) this.at += 1;
    return this.at < e.length ? Math.max(start, e[this.at][0]) : Infinity;
  }
}

/** A batch planned but not yet read. */
interface PlannedBatch { firstChunk: number; offset: number; chunkLengths: number[]; readChunks: number[]; last: boolean }

/**
 * Batches of whole chunks in disk order. `ranges` ([firstChunk, endChunk),
 * ascending) limits reading to those chunks (an incremental backup); by
 * default every chunk is visited. `allocate(bytes)` supplies each batch's
 * buffer (at least `bytes`), so callers can recycle buffers. Several batches
 * are read at once (readsInFlightMax, readAheadBytesMax): cold, the latency of
 * one read then hides behind the others, which matters most for an increment's
 * scattered chunks; they are still yielded in disk order.
 */
export async function* readBatches(source: Source, chunkBytes: number, batchChunks: number,
  allocate: (bytes: number) => Uint8Array = (bytes) => new Uint8Array(bytes),
  ranges?: ReadonlyArray<readonly [number, number]>): AsyncGenerator<Batch | HoleRun> {
  const size = source.sizeBytes;
  if (size === null) {
    if (ranges) throw new Error('a stream source cannot be read by ranges');
    yield* streamBatches(source, chunkBytes, batchChunks, allocate);
    return;
  }
  const read = async (p: PlannedBatch): Promise<Batch> => {
    const bytes = p.chunkLengths.reduce((a, b) => a + b, 0);
    const data = allocate(bytes);
    const bytesRead = await readRuns(source, data, p.offset, chunkBytes, p.chunkLengths, p.readChunks);
    return { firstChunk: p.firstChunk, chunkLengths: p.chunkLengths, readChunks: p.readChunks, data, bytesRead, last: p.last };
  };
  yield* readAhead<PlannedBatch, Batch, HoleRun>(planBatches(size, chunkBytes, batchChunks, source.dataExtents, ranges), read);
}

/** The batches and hole runs of a sized source, in disk order, without reading anything. */
export function* planBatches(size: number, chunkBytes: number, batchChunks: number,
  extents: ReadonlyArray<readonly [number, number]> | null, ranges?: ReadonlyArray<readonly [number, number]>): Generator<PlannedBatch | HoleRun> {
  const cursor = new ExtentCursor(extents);
  for (const [first, endChunk] of ranges ?? [[0, Math.ceil(size / chunkBytes)] as const]) {
    const end = Math.min(endChunk * chunkBytes, size);
    for (let offset = first * chunkBytes; offset < end; ) {
      // A 2 TiB disk holding 4 GiB is mostly hole: skip it whole chunks at a time, not batch by batch.
      const holeEnd = Math.min(end, Math.floor(cursor.nextDataAt(offset) / chunkBytes) * chunkBytes);
      if (holeEnd - offset >= batchChunks * chunkBytes) {
        yield { hole: true, firstChunk: offset / chunkBytes, chunks: Math.ceil((holeEnd - offset) / chunkBytes), bytes: holeEnd - offset };
        offset = holeEnd;
        continue;
      }
      const want = Math.min(batchChunks * chunkBytes, end - offset);
      const chunkLengths: number[] = [];
      const readChunks: number[] = [];
      for (let at = 0; at < want; at += chunkBytes) {
        const length = Math.min(chunkBytes, want - at);
        if (cursor.touchesData(offset + at, offset + at + length)) readChunks.push(chunkLengths.length);
        chunkLengths.push(length);
      }
      yield { firstChunk: offset / chunkBytes, offset, chunkLengths, readChunks, last: offset + want >= size };
      offset += want;
    }
  }
}

/**
 * Starts reading up to readsInFlightMax planned batches (and at most
 * readAheadBytesMax of them) ahead of the consumer, and yields them in plan
 * order. A failed read fails when its turn comes. Measured on this machine
 * (docs/BENCHMARKS.md, "Whole commands, cold"): scattered 64 KiB preads cold
 * are 2-3x faster 8 at a time than one at a time; more gains little.
 */
export async function* readAhead<P extends { chunkLengths: number[] }, R = Batch, H extends { hole: true } = HoleRun>(plan: Iterable<P | H>, read: (p: P) => Promise<R>,
  readsMax = readsInFlightMax, bytesMax = readAheadBytesMax): AsyncGenerator<R | H> {
  const queue: Array<{ bytes: number; result: Promise<R> | H }> = [];
  let queuedBytes = 0;
  const iterator = plan[Symbol.iterator]();
  let exhausted = false;
  const fill = () => {
    while (!exhausted && queue.filter((q) => !('hole' in q.result)).length < readsMax && (queuedBytes < bytesMax || queue.length === 0)) {
      const next = iterator.next();
      if (next.done) { exhausted = true; return; }
      if ('hole' in next.value) { queue.push({ bytes: 0, result: next.value }); continue; }
      const bytes = next.value.chunkLengths.reduce((a, b) => a + b, 0);
      const result = read(next.value);
      result.catch(() => undefined); // observed when its turn comes
      queue.push({ bytes, result });
      queuedBytes += bytes;
    }
  };
  for (fill(); queue.length > 0; fill()) {
    const head = queue.shift()!;
    queuedBytes -= head.bytes;
    yield 'hole' in head.result ? head.result : await head.result;
  }
}
/** A stream (stdin, a pipe): read everything in order; its size is where it ends. */
async function* streamBatches(source: Source, chunkBytes: number, batchChunks: number, allocate: (bytes: number) => Uint8Array): AsyncGenerator<Batch> {
  const want = batchChunks * chunkBytes;
  for (let offset = 0, chunk = 0; ; offset += want, chunk += batchChunks) {
    const data = allocate(want);
    const bytesRead = await source.read(data.subarray(0, want), offset);
    const n = Math.ceil(bytesRead / chunkBytes);
    const chunkLengths = Array.from({ length: n }, (_, i) => Math.min(chunkBytes, bytesRead - i * chunkBytes));
    const last = bytesRead < want;
    if (n > 0) yield { firstChunk: chunk, chunkLengths, readChunks: chunkLengths.map((_, i) => i), data, bytesRead, last };
    if (last) return;
  }
}

/** Reads runs of consecutive data chunks with one read each. */
async function readRuns(source: Source, data: Uint8Array, batchOffset: number, chunkBytes: number,
  chunkLengths: number[], readChunks: number[]): Promise<number> {
  let bytesRead = 0;
  let i = 0;
  while (i < readChunks.length) {
    let j = i;
    let length = chunkLengths[readChunks[i]];
    while (j + 1 < readChunks.length && readChunks[j + 1] === readChunks[j] + 1) {
      j += 1;
      length += chunkLengths[readChunks[j]];
    }
    const sourceOffset = batchOffset + readChunks[i] * chunkBytes;
    const n = await source.read(data.subarray(bytesRead, bytesRead + length), sourceOffset);
    if (n < length) {
      throw new BlockvaultError('SOURCE_CHANGED',
        `source ${source.description} ended at offset ${sourceOffset + n}, but was ${source.sizeBytes} bytes when the backup started (did it shrink while being read?)`);
    }
    bytesRead += n;
    i = j + 1;
  }
  return bytesRead;
}
