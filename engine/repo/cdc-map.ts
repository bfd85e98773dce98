// A variable-length chunk map (content-defined chunking) as readers see it:
// leaves by disk span (map-format.ts "variable-length leaf"), found through
// ordinary inner pages over the leaves' ids, loaded on demand through the
// repository's bounded page cache. A reader finds the chunk of any byte by
// its leaf (offset / cdcLeafBytes) and a binary search of the chunk starts
// there; a byte before the leaf's first chunk lies in the last chunk of the
// leaf before (checked to end where this leaf's first chunk starts).
import { chunkIdBytes, isAllZero } from '../core/digest.js';
import { assert, BlockvaultError } from '../core/errors.js';
import { cdcLeafBytes, decodeCdcLeaf } from '../format/map-format.js';
import type { PointHeader } from '../format/point-format.js';
import { PagedMap, type MapLeaf, type WalkVisitor } from './chunk-map.js';
import type { MapPages, PagePlace } from './map-pages.js';

/** Chunks in disk order: offset, length and id of each (ids back to back, 32 bytes each; zero id = zero chunk). */
export interface ChunkSpan { offsets: number[]; lengths: number[]; ids: Buffer }

/** A decoded leaf with its chunks' absolute starts. */
export interface LeafView { index: number; id: Buffer; starts: Float64Array; lengths: Uint32Array; ids: Buffer; end: number }

/** Decoded leaves kept per map for the mount's hot path, besides the shared page cache. */
const leavesAtHandMax = 16;

export class CdcMap {
  readonly kind = 'cdc';
  readonly chunksTotal: number;
  readonly leavesTotal: number;
  readonly sizeBytes: number;
  /** The inner pages over the leaves: a positional map whose "chunks" are the leaves' ids. */
  readonly upper: PagedMap;
  private readonly atHand = new Map<number, LeafView>();
  private readonly maxChunkBytes: number;
  /** What the point's header says of its zero chunks (an increment's builder carries them on). */
  readonly stats: { chunksZero: number; bytesNonZero: number };

  constructor(private readonly pages: MapPages, header: PointHeader, height: number, root: Buffer, private readonly name: string) {
    assert(height >= 1, 'a variable-length map has its leaves below the root');
    this.chunksTotal = header.chunksTotal;
    this.sizeBytes = header.sizeBytes;
    this.maxChunkBytes = header.chunkBytes;
    this.stats = { chunksZero: header.stats.chunksZero ?? 0, bytesNonZero: header.stats.bytesNonZero ?? 0 };
    this.leavesTotal = Math.ceil(header.sizeBytes / cdcLeafBytes);
    this.upper = new PagedMap(pages, this.leavesTotal, cdcLeafBytes, header.sizeBytes, height - 1, root, name, 1);
  }

  rootEntries(): Buffer {
    return this.upper.rootEntries();
  }

  private place(index: number): PagePlace {
    return { point: this.name, level: 0, index, firstByte: index * cdcLeafBytes, endByte: Math.min(this.sizeBytes, (index + 1) * cdcLeafBytes) };
  }

  /** Leaf `index` decoded, its id known (from the pages above). */
  async decodeLeaf(index: number, id: Buffer): Promise<LeafView> {
    const place = this.place(index);
    const what = `restore point ${this.name}: map page ${id.toString('hex')} (level 0, page ${index}, disk bytes ${place.firstByte}-${place.endByte})`;
    if (isAllZero(id)) throw new BlockvaultError('CORRUPT', `${what}: a variable-length leaf with a zero id`);
    const leaf = decodeCdcLeaf(await this.pages.load(id, place), { index, firstByte: place.firstByte, sizeBytes: this.sizeBytes, chunkBytesMax: this.maxChunkBytes }, what);
    const starts = new Float64Array(leaf.lengths.length);
    let at = place.firstByte + leaf.firstOffset;
    leaf.lengths.forEach((length, k) => { starts[k] = at; at += length; });
    return { index, id: Buffer.from(id), starts, lengths: leaf.lengths, ids: leaf.ids, end: at };
  }

  /** Leaf `index`, from those at hand or loaded. */
  async leaf(index: number): Promise<LeafView> {
    const hit = this.atHand.get(index);
    if (hit) return hit;
    const view = await this.decodeLeaf(index, await this.upper.ids(index, 1));
    this.atHand.set(index, view);
    if (this.atHand.size > leavesAtHandMax) this.atHand.delete(this.atHand.keys().next().value as number);
    return view;
  }

  /** The chunks that overlap [start, end), in order. */
  async chunksIn(start: number, end: number): Promise<ChunkSpan> {
    assert(start >= 0 && start <= end && end <= this.sizeBytes, 'byte range inside the disk');
    const span: ChunkSpan = { offsets: [], lengths: [], ids: Buffer.alloc(0) };
    if (start === end) return span;
    const idParts: Buffer[] = [];
    let leaf = await this.leaf(Math.floor(start / cdcLeafBytes));
    if (start < leaf.starts[0]) leaf = await this.previousOf(leaf); // the chunk of `start` reaches in from the leaf before
    let k = lastStartAtOrBefore(leaf.starts, start);
    for (;;) {
      for (; k < leaf.starts.length && leaf.starts[k] < end; k++) {
        span.offsets.push(leaf.starts[k]);
        span.lengths.push(leaf.lengths[k]);
        idParts.push(leaf.ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes));
      }
      if (k < leaf.starts.length || leaf.index + 1 >= this.leavesTotal || leaf.end >= end) break;
      leaf = await this.nextOf(leaf);
      k = 0;
    }
    span.ids = Buffer.concat(idParts);
    return span;
  }

  private async previousOf(leaf: LeafView): Promise<LeafView> {
    if (leaf.index === 0) throw new BlockvaultError('CORRUPT', `restore point ${this.name}: leaf 0 does not start at offset 0`);
    const before = await this.leaf(leaf.index - 1);
    this.checkJoin(before, leaf);
    return before;
  }

  private async nextOf(leaf: LeafView): Promise<LeafView> {
    const after = await this.leaf(leaf.index + 1);
    this.checkJoin(leaf, after);
    return after;
  }

  /** Two neighbouring leaves must meet: the first's last chunk ends where the second's first starts. */
  private checkJoin(before: LeafView, after: LeafView): void {
    if (before.end !== after.starts[0]) {
      throw new BlockvaultError('CORRUPT', `restore point ${this.name}: map leaf ${before.index} ends at offset ${before.end}, but leaf ${after.index} starts at ${after.starts[0]}`);
    }
  }

  /** Every leaf in disk order (each checked to meet the one before); onPage sees each page on the way. */
  async *leaves(onPage?: (id: Buffer, place: PagePlace) => void): AsyncGenerator<MapLeaf & { view: LeafView }> {
    let before: LeafView | null = null;
    let chunk = 0;
    for await (const upperLeaf of this.upper.leaves(onPage)) {
      for (let slot = 0; slot < upperLeaf.ids.length / chunkIdBytes; slot++) {
        const index = upperLeaf.firstChunk + slot;
        const id = upperLeaf.ids.subarray(slot * chunkIdBytes, (slot + 1) * chunkIdBytes);
        onPage?.(id, this.place(index));
        const view = await this.decodeLeaf(index, id);
        if (before) this.checkJoin(before, view);
        else if (index !== 0) throw new BlockvaultError('CORRUPT', `restore point ${this.name}: map leaf 0 is missing`);
        before = view;
        yield { firstChunk: chunk, ids: view.ids, lengths: view.lengths, firstByte: view.starts[0], view };
        chunk += view.lengths.length;
      }
    }
    if (chunk !== this.chunksTotal) throw new BlockvaultError('CORRUPT', `restore point ${this.name}: its map leaves hold ${chunk} chunks, the header says ${this.chunksTotal}`);
  }

  /** Every id the map references, for gc and check: pages, then (when the visitor asks) the chunks below. */
  async walk(visit: WalkVisitor): Promise<void> {
    for await (const upperLeaf of this.upper.leaves((id) => visit(id, 'page'))) {
      for (let slot = 0; slot < upperLeaf.ids.length / chunkIdBytes; slot++) {
        const id = upperLeaf.ids.subarray(slot * chunkIdBytes, (slot + 1) * chunkIdBytes);
        if (!visit(id, 'page')) continue;
        const view = await this.decodeLeaf(upperLeaf.firstChunk + slot, id);
        for (let at = 0; at < view.ids.length; at += chunkIdBytes) {
          const chunk = view.ids.subarray(at, at + chunkIdBytes);
          if (!isAllZero(chunk)) visit(chunk, 'chunk');
        }
      }
    }
  }
}

/** The last k with starts[k] <= offset (0 when none is). */
export function lastStartAtOrBefore(starts: ArrayLike<number>, offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
