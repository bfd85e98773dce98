// Builds a variable-length chunk map (cdc-map.ts) as a backup produces
// chunks, in disk order: one open leaf, and the pages above built by an
// ordinary MapBuilder over the leaves' ids. An increment starts from its
// parent's map and is given only the chunks of the regions it re-chunked:
// between them the parent's chunks stand, a leaf no region reaches keeps the
// parent's id without being read, and a leaf a region reaches is rebuilt from
// the parent's chunks and the new ones.
import { chunkIdBytes, isAllZero } from '../core/digest.js';
import { assert } from '../core/errors.js';
import { cdcLeafBytes, encodeCdcLeaf } from '../format/map-format.js';
import type { CdcMap, LeafView } from './cdc-map.js';
import { MapBuilder, type PageSink } from './map-builder.js';

interface OpenLeaf { index: number; firstOffset: number; lengths: number[]; ids: Buffer[] }

export interface BuiltCdcMap { height: number; root: Buffer; chunksTotal: number; chunksZero: number; bytesNonZero: number }

function counts(lengths: ArrayLike<number>, ids: (k: number) => Buffer): { zero: number; nonZeroBytes: number } {
  let zero = 0;
  let nonZeroBytes = 0;
  for (let k = 0; k < lengths.length; k++) {
    if (isAllZero(ids(k))) zero += 1;
    else nonZeroBytes += lengths[k];
  }
  return { zero, nonZeroBytes };
}

export class CdcMapBuilder {
  private readonly upper: MapBuilder;
  private leaf: OpenLeaf | null = null;
  /** Disk bytes before this are settled (new chunks, or the parent's). */
  private cursor = 0;
  private chunks = 0;
  private zero = 0;
  private nonZeroBytes = 0;

  /** sizeBytes null: a stream (no base). */
  constructor(private readonly sizeBytes: number | null, private readonly base: CdcMap | null, private readonly sink: PageSink) {
    assert(!base || base.sizeBytes === sizeBytes, 'an increment builds on a map of its own disk size');
    this.upper = new MapBuilder(sizeBytes === null ? null : Math.ceil(sizeBytes / cdcLeafBytes), base ? base.upper : null, sink, 1);
    this.chunks = base?.chunksTotal ?? 0; // an increment counts on from its parent's chunks
  }

  /** Chunks back to back from `offset` (zero id: a zero chunk). Calls come in disk order; an increment's skip the parent's stretches. */
  async put(offset: number, lengths: ArrayLike<number>, ids: Buffer): Promise<void> {
    assert(offset >= this.cursor && (this.base !== null || offset === this.cursor), 'chunks in disk order, back to back in a full backup');
    if (offset > this.cursor) await this.keepParent(offset);
    let at = offset;
    for (let k = 0; k < lengths.length; k++) {
      await this.append(at, lengths[k], ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes));
      at += lengths[k];
    }
    this.cursor = at;
  }

  private async append(start: number, length: number, id: Buffer): Promise<void> {
    const index = Math.floor(start / cdcLeafBytes);
    if (this.leaf && this.leaf.index !== index) await this.closeLeaf();
    this.leaf ??= { index, firstOffset: start - index * cdcLeafBytes, lengths: [], ids: [] };
    this.leaf.lengths.push(length);
    this.leaf.ids.push(Buffer.from(id));
  }

  /** The parent's chunks from the cursor up to `end` (both cuts of the parent): leaves wholly inside are left as the parent has them. */
  private async keepParent(end: number): Promise<void> {
    const base = this.base!;
    let index = Math.floor(this.cursor / cdcLeafBytes);
    while (this.cursor < end) {
      const leafStart = index * cdcLeafBytes;
      const leafEnd = Math.min(base.sizeBytes, leafStart + cdcLeafBytes);
      if (this.leaf?.index !== index && this.cursor <= leafStart && leafEnd <= end) {
        // Untouched: every chunk starting in it is the parent's. Its id stays in the pages above.
        if (this.leaf) await this.closeLeaf();
        this.cursor = Math.min(end, leafEnd);
        index += 1;
        continue;
      }
      const view = await base.leaf(index);
      for (let k = 0; k < view.starts.length && view.starts[k] < end; k++) {
        if (view.starts[k] >= this.cursor) await this.append(view.starts[k], view.lengths[k], view.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes));
      }
      this.cursor = Math.min(end, leafEnd);
      index += 1;
    }
    this.cursor = end;
  }

  private async closeLeaf(): Promise<void> {
    const leaf = this.leaf!;
    this.leaf = null;
    const ids = Buffer.concat(leaf.ids);
    const id = await this.sink(encodeCdcLeaf({ firstOffset: leaf.firstOffset, lengths: Uint32Array.from(leaf.lengths), ids }), 0);
    const mine = counts(leaf.lengths, (k) => ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes));
    let before: { count: number; zero: number; nonZeroBytes: number } = { count: 0, zero: 0, nonZeroBytes: 0 };
    if (this.base) {
      const was: LeafView = await this.base.leaf(leaf.index);
      before = { count: was.lengths.length, ...counts(was.lengths, (k) => was.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes)) };
    }
    this.chunks += leaf.lengths.length - before.count;
    this.zero += mine.zero - before.zero;
    this.nonZeroBytes += mine.nonZeroBytes - before.nonZeroBytes;
    await this.upper.put(leaf.index, id);
  }

  /** sizeBytes: a stream's, now known. The parent's chunks after the last region stand. */
  async finish(sizeBytes?: number): Promise<BuiltCdcMap> {
    const size = this.sizeBytes ?? sizeBytes!;
    if (this.base && this.cursor < size) await this.keepParent(size);
    assert(this.base !== null || this.cursor === size, 'a full backup puts every chunk');
    if (this.leaf) await this.closeLeaf();
    const built = await this.upper.finish(Math.ceil(size / cdcLeafBytes));
    let { zero, nonZeroBytes } = this;
    if (this.base) {
      const stats = this.base.stats;
      zero += stats.chunksZero;
      nonZeroBytes += stats.bytesNonZero;
    }
    return { height: built.height + 1, root: built.root, chunksTotal: this.chunks, chunksZero: zero, bytesNonZero: nonZeroBytes };
  }
}
