// Splits a source into batches of whole chunks, in disk order, and reads
// each batch: chunks that lie entirely in a hole are not read at all.
import { BlockvaultError } from '../core/errors.js';
import type { Source } from '../source/source.js';

export interface Batch {
  firstChunk: number;
  /** Length of every chunk in the batch (the last chunk of a disk may be short). */
  chunkLengths: number[];
  /** Indexes (within the batch) of chunks that were read, in order. */
  readChunks: number[];
  /** The read chunks back to back; detached after it goes to a worker. */
  data: ArrayBuffer;
  bytesRead: number;
  /** True when this is the stream's final batch. */
  last: boolean;
}

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
}

/**
 * `allocate` supplies each batch's buffer (at least batchChunks * chunkBytes
 * bytes), so a caller can recycle buffers instead of making garbage.
 */
export async function* readBatches(source: Source, chunkBytes: number, batchChunks: number,
  allocate: () => ArrayBuffer = () => new ArrayBuffer(batchChunks * chunkBytes)): AsyncGenerator<Batch> {
  const size = source.sizeBytes;
  const cursor = new ExtentCursor(source.dataExtents);
  let offset = 0;
  let chunk = 0;
  for (;;) {
    if (size !== null && offset >= size) return;
    const want = size === null ? batchChunks * chunkBytes : Math.min(batchChunks * chunkBytes, size - offset);
    const chunkLengths: number[] = [];
    const readChunks: number[] = [];
    for (let at = 0; at < want; at += chunkBytes) {
      const length = Math.min(chunkBytes, want - at);
      if (cursor.touchesData(offset + at, offset + at + length)) readChunks.push(chunkLengths.length);
      chunkLengths.push(length);
    }
    const data = allocate();
    let bytesRead = 0;
    if (size === null) {
      bytesRead = await source.read(new Uint8Array(data, 0, want), offset);
      const last = bytesRead < want;
      const n = Math.ceil(bytesRead / chunkBytes);
      chunkLengths.length = n;
      readChunks.length = n;
      if (n > 0) chunkLengths[n - 1] = bytesRead - (n - 1) * chunkBytes;
      if (n > 0) yield { firstChunk: chunk, chunkLengths, readChunks, data, bytesRead, last };
      if (last) return;
    } else {
      bytesRead = await readRuns(source, data, offset, chunkBytes, chunkLengths, readChunks);
      yield { firstChunk: chunk, chunkLengths, readChunks, data, bytesRead, last: offset + want >= size };
    }
    offset += want;
    chunk += chunkLengths.length;
  }
}

/** Reads runs of consecutive data chunks with one read each. */
async function readRuns(source: Source, data: ArrayBuffer, batchOffset: number, chunkBytes: number,
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
    const n = await source.read(new Uint8Array(data, bytesRead, length), sourceOffset);
    if (n < length) {
      throw new BlockvaultError('SOURCE_CHANGED',
        `source ${source.description} ended at offset ${sourceOffset + n}, but was ${source.sizeBytes} bytes when the backup started (did it shrink while being read?)`);
    }
    bytesRead += n;
    i = j + 1;
  }
  return bytesRead;
}
