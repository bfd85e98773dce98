// Splits a source into content-defined chunks, in disk order, in batches.
// The source is read in windows (several in flight), each into a batch slot
// behind room for the chunk still open from the window before, which is
// copied in front of it: a batch is then whole chunks back to back, as a
// fixed-size batch is, and the same hash/compress stage takes it.
//
// A region is a stretch to chunk from a cut on: the whole disk for a full
// backup; for an increment, from the start of the first parent chunk a
// changed extent touches until a new cut falls on one of the parent's cuts
// past the extent's end (resync): from there on the parent's chunks are the
// disk's again.
import { BlockvaultError } from '../core/errors.js';
import { isAllZero } from '../core/digest.js';
import { batchBytes, readsInFlightMax } from '../core/limits.js';
import { AlignedCdcScanner, alignBytes } from '../chunking/aligned-cdc.js';
import type { CdcScanner } from '../chunking/fastcdc.js';
import type { ChunkerSpec } from '../chunking/chunker.js';
import type { Source } from '../source/source.js';
import { readAhead } from './batches.js';

/** Chunks back to back from `offset`; data is a view of a batch slot. */
export interface CdcBatch { firstChunk: number; offset: number; chunkLengths: number[]; readChunks: number[]; data: Uint8Array; bytesRead: number; last: boolean }
/** Zero chunks of a hole that was not read (aligned-cdc only: there zeros never cut but at the maximum). */
export interface CdcHoleRun { hole: true; firstChunk: number; offset: number; lengths: number[]; chunks: number; bytes: number }

/** Where to chunk: [start, end) holds every changed byte; start is a cut of the parent (or 0). */
export interface CdcRegion { start: number; end: number }

/** An increment's test for resync: is `offset` where one of the parent's chunks starts (or the disk's end)? */
export type ParentCut = (offset: number) => Promise<boolean>;

export interface CdcSlots { takeWhole(): Uint8Array; give(slot: number): void; slotOf(view: Uint8Array): number }

/** Hole bytes handed to the scanner at once: 4096 zero chunks at a 256 KiB maximum (bounds the lengths array). */
const holePieceBytesMax = 1024 * 1024 * 1024;

interface Window { offset: number; bytes: number; chunkLengths: number[] }
interface PlannedHole { hole: true; offset: number; bytes: number }
interface ReadWindow { window: Window; slot: Uint8Array; bytesRead: number }

/** Cursor over sorted data extents (null: all data). */
class Extents {
  private at = 0;
  constructor(private readonly extents: ReadonlyArray<readonly [number, number]> | null) {}
  /** The data extents that overlap [start, end), clipped. */
  within(start: number, end: number): Array<[number, number]> {
    const e = this.extents;
    if (!e) return [[start, end]];
    while (this.at < e.length && e[this.at][1] <= start) this.at += 1;
    const out: Array<[number, number]> = [];
    for (let k = this.at; k < e.length && e[k][0] < end; k++) out.push([Math.max(start, e[k][0]), Math.min(end, e[k][1])]);
    return out;
  }
}

export class CdcReader {
  private chunk = 0;
  private readonly room: number;
  private readonly resyncBytes: number;

  constructor(private readonly source: Source, spec: Extract<ChunkerSpec, { maxBytes: number }>, private readonly slots: CdcSlots,
    private readonly makeScanner: (startBytes: number) => CdcScanner) {
    this.room = spec.maxBytes;
    this.resyncBytes = spec.avgBytes;
  }

  /** Reads a window into a slot, after `room` bytes kept for the chunk carried over; holes are zeros, not read. */
  private async read(window: Window, extents: Extents): Promise<ReadWindow> {
    const slot = this.slots.takeWhole();
    const into = slot.subarray(this.room, this.room + window.bytes);
    let bytesRead = 0;
    let zeroFrom = 0;
    for (const [start, end] of extents.within(window.offset, window.offset + window.bytes)) {
      into.fill(0, zeroFrom, start - window.offset);
      const n = await this.source.read(into.subarray(start - window.offset, end - window.offset), start);
      if (n < end - start) {
        this.slots.give(this.slots.slotOf(slot));
        throw new BlockvaultError('SOURCE_CHANGED', `source ${this.source.description} ended at offset ${start + n}, but was ${this.source.sizeBytes} bytes when the backup started (did it shrink while being read?)`);
      }
      bytesRead += n;
      zeroFrom = end - window.offset;
    }
    into.fill(0, zeroFrom);
    return { window, slot, bytesRead };
  }

  /** The windows of a full backup, and runs of whole windows that lie in a hole (never the last: it ends the stream). */
  private *plan(size: number, skipHoles: boolean): Generator<Window | PlannedHole> {
    const planner = new Extents(this.source.dataExtents);
    for (let at = 0; at < size; ) {
      let holeEnd = at;
      while (skipHoles && holeEnd + batchBytes < size && holeEnd - at < holePieceBytesMax && planner.within(holeEnd, holeEnd + batchBytes).length === 0) holeEnd += batchBytes;
      if (holeEnd > at) {
        yield { hole: true, offset: at, bytes: holeEnd - at };
        at = holeEnd;
        continue;
      }
      const bytes = Math.min(batchBytes, size - at);
      yield { offset: at, bytes, chunkLengths: [bytes] };
      at += bytes;
    }
  }

  /** A full backup of a sized source: one region, the whole disk; holes are not read, and with aligned-cdc not even scanned. */
  async *whole(): AsyncGenerator<CdcBatch | CdcHoleRun> {
    const size = this.source.sizeBytes!;
    const extents = new Extents(this.source.dataExtents);
    const scanner = this.makeScanner(0);
    const aligned = scanner instanceof AlignedCdcScanner ? scanner : null;
    let carry: Uint8Array = new Uint8Array(0);
    let offset = 0; // where the carried-over chunk starts
    for await (const item of readAhead<Window, ReadWindow, PlannedHole>(this.plan(size, aligned !== null), (w) => this.read(w, extents))) {
      if ('hole' in item) {
        let at = item.offset;
        let left = item.bytes;
        if (!isAllZero(carry)) {
          // The chunk open before the hole holds data: zeros never cut it, it runs on to the maximum.
          const bytes = Math.min(left, this.room - carry.length);
          const slot = this.slots.takeWhole();
          slot.fill(0, this.room, this.room + bytes);
          const out = this.cut(slot, carry, { offset: at, bytes, chunkLengths: [] }, scanner, offset, false, 0);
          [carry, offset] = [out.carry, out.nextOffset];
          yield out.batch;
          at += bytes;
          left -= bytes;
        }
        const lengths = left > 0 ? aligned!.pushZeroBlocks(left / alignBytes) : [];
        const bytes = lengths.reduce((x, y) => x + y, 0);
        if (lengths.length > 0) yield { hole: true, firstChunk: this.take(lengths.length), offset, lengths, chunks: lengths.length, bytes };
        offset += bytes;
        carry = new Uint8Array(aligned!.openBytes); // the open chunk: zeros
        continue;
      }
      const out = this.cut(item.slot, carry, item.window, scanner, offset, item.window.offset + item.window.bytes >= size, item.bytesRead);
      [carry, offset] = [out.carry, out.nextOffset];
      yield out.batch;
    }
  }

  /** A stream (stdin, a pipe): read in order to its end, cut as one buffer would be (the scanner carries its state). */
  async *stream(): AsyncGenerator<CdcBatch> {
    const scanner = this.makeScanner(0);
    let carry: Uint8Array = new Uint8Array(0);
    let offset = 0;
    for (let pos = 0; ; pos += batchBytes) {
      const slot = this.slots.takeWhole();
      const n = await this.source.read(slot.subarray(this.room, this.room + batchBytes), pos);
      const last = n < batchBytes;
      const out = this.cut(slot, carry, { offset: pos, bytes: n, chunkLengths: [] }, scanner, offset, last, n);
      [carry, offset] = [out.carry, out.nextOffset];
      yield out.batch;
      if (last) return;
    }
  }

  /**
   * An increment: each region chunked afresh from its start (a cut of the
   * parent) until a cut past every changed byte it has reached is also a cut
   * of the parent. Cuts depend only on the bytes since the cut before, so
   * from there on the disk's chunks are the parent's until the next region.
   * A region the scan runs into is merged with it. The regions' first
   * windows are read several at once, ahead (cold, their latencies overlap,
   * as the scattered chunks of a fixed-size increment do); a region that
   * needs more reads on from there.
   */
  async *regions(regions: CdcRegion[], isParentCut: ParentCut): AsyncGenerator<CdcBatch> {
    const size = this.source.sizeBytes!;
    // Read what a region still needs and an average chunk past it (then an average at a time): the
    // parent's next cut after the change is an average away, and there the cuts usually fall back in step.
    const windowEnd = (pos: number, end: number) => Math.min(size, pos + batchBytes, Math.ceil((Math.max(end, pos) + this.resyncBytes) / alignBytes) * alignBytes);
    const plan = regions.map((r) => ({ offset: r.start, bytes: windowEnd(r.start, r.end) - r.start, chunkLengths: [windowEnd(r.start, r.end) - r.start] }));
    const firstExtents = new Extents(this.source.dataExtents);
    const moreExtents = new Extents(this.source.dataExtents);
    // One read fewer in flight than a full backup's: a region's next window may need a slot meanwhile.
    const firsts = readAhead<Window, ReadWindow, PlannedHole>(plan, (w) => this.read(w, firstExtents), readsInFlightMax - 1);
    let taken = 0;
    const first = async () => { taken += 1; return (await firsts.next()).value as ReadWindow; };
    for (let next = 0; next < regions.length; ) {
      while (taken < next) this.slots.give(this.slots.slotOf((await first()).slot)); // merged into the region before
      let { start, end } = regions[next++];
      const scanner = this.makeScanner(start);
      let carry: Uint8Array = new Uint8Array(0);
      let offset = start;
      let read: ReadWindow | null = await first();
      for (let pos = start, synced = false; !synced; read = null) {
        read ??= await this.read({ offset: pos, bytes: windowEnd(pos, end) - pos, chunkLengths: [] }, moreExtents);
        const last = read.window.offset + read.window.bytes >= size;
        const out = this.cut(read.slot, carry, read.window, scanner, offset, last, read.bytesRead);
        let keep = out.batch.chunkLengths.length;
        for (let k = 0, at = offset; k < out.batch.chunkLengths.length && !last; k++) {
          at += out.batch.chunkLengths[k];
          while (next < regions.length && regions[next].start < at) end = Math.max(end, regions[next++].end);
          if (at >= end && await isParentCut(at)) {
            keep = k + 1;
            synced = true;
            break;
          }
        }
        synced ||= last;
        const batch = out.batch;
        batch.chunkLengths = batch.chunkLengths.slice(0, keep);
        batch.readChunks = batch.readChunks.slice(0, keep);
        batch.data = batch.data.subarray(0, batch.chunkLengths.reduce((a, b) => a + b, 0));
        this.chunk = batch.firstChunk + keep;
        [carry, offset, pos] = [out.carry, out.nextOffset, read.window.offset + read.window.bytes];
        yield batch;
      }
    }
    while (taken < regions.length) this.slots.give(this.slots.slotOf((await first()).slot));
  }

  private take(chunks: number): number {
    const first = this.chunk;
    this.chunk += chunks;
    return first;
  }

  /**
   * Puts the carried-over chunk in front of the window in its slot, scans the
   * window, and returns the batch of the chunks that end in it and the new
   * carry (a copy: the slot goes to the workers).
   */
  private cut(slot: Uint8Array, carry: Uint8Array, window: Window, scanner: CdcScanner, offset: number, last: boolean, bytesRead: number) {
    slot.set(carry, this.room - carry.length);
    const lengths = scanner.push(slot.subarray(this.room, this.room + window.bytes));
    if (last) {
      const tail = scanner.finish();
      if (tail > 0) lengths.push(tail);
    }
    const bytes = lengths.reduce((a, b) => a + b, 0);
    const all = slot.subarray(this.room - carry.length, this.room + window.bytes);
    const nextCarry = Uint8Array.from(all.subarray(bytes));
    const batch: CdcBatch = {
      firstChunk: this.take(lengths.length), offset, chunkLengths: lengths, readChunks: lengths.map((_, k) => k),
      data: all.subarray(0, bytes), bytesRead, last,
    };
    return { batch, carry: nextCarry, nextOffset: offset + bytes };
  }
}
