// Builds a restore point's paged map as a backup produces chunk ids, in disk
// order, one open page per level (memory: a few pages, whatever the disk
// size). An increment starts from its parent's map: a page it never touches
// keeps the parent's id without being read, a page it touches is read,
// patched and stored anew; a page whose bytes come out the same keeps its id.
// Chunks a full backup never puts (holes) are zero chunks. A stream's size
// is known only at its end: its leaves are stored as they fill (all but the
// last are whole) and the levels above are built from their ids at the end.
import { assert } from '../core/errors.js';
import { chunkIdBytes, isAllZero } from '../core/digest.js';
import { encodeLeafPatch, encodeMapPage, leafPatchEntriesMax, mapHeightMax, mapPageEntries, mapShape, pageEntryCount, type MapShape } from '../format/map-format.js';
import type { PagedMap, PageView } from './chunk-map.js';

/** Stores a page (dedup, compression and the pack are the caller's) and returns its id. */
export type PageSink = (page: Buffer, level: number) => Promise<Buffer>;

/** A page being built; base*: the parent's page here (full*: the whole leaf under it, for a patch). */
interface OpenPage { index: number; entries: Buffer; base: PageView | null }

export interface BuiltMap { height: number; root: Buffer; pagesStored: number; nonZeroChange: number; lastChunkZero: boolean }

function countNonZero(ids: Buffer): number {
  let n = 0;
  for (let at = 0; at < ids.length; at += chunkIdBytes) if (!isAllZero(ids.subarray(at, at + chunkIdBytes))) n += 1;
  return n;
}

export class MapBuilder {
  /** Null while a stream's size is unknown. */
  private shape: MapShape | null;
  private readonly open: Array<OpenPage | null> = Array.from({ length: mapHeightMax }, () => null);
  private root: Buffer;
  /** A stream's stored leaves, until its size gives the levels above (32 bytes per 64 MiB of disk). */
  private readonly leafIds: Buffer[] = [];
  private next = 0;
  private pagesStored = 0;
  private nonZeroChange = 0;
  private lastChunkZero: boolean | null = null;

  /** chunksTotal null: a stream (no base). */
  /** levelOffset 1: the pages above a variable-length map's leaves, whose "chunk ids" are leaf ids (no leaf patches there). */
  constructor(private chunksTotal: number | null, private readonly base: PagedMap | null, private readonly sink: PageSink, private readonly levelOffset = 0) {
    this.shape = chunksTotal === null ? null : mapShape(chunksTotal);
    assert(!base || (this.shape !== null && base.chunksTotal === chunksTotal && base.height === this.shape.height), 'an increment builds on a map of its own shape');
    this.root = base ? Buffer.from(base.rootEntries()) : Buffer.alloc((this.shape?.rootEntries ?? 0) * chunkIdBytes);
  }

  /** Sets chunks [firstChunk, firstChunk + ids.length / 32): calls come in disk order and do not overlap. */
  async put(firstChunk: number, ids: Buffer): Promise<void> {
    const count = ids.length / chunkIdBytes;
    assert(firstChunk >= this.next && (this.chunksTotal === null || firstChunk + count <= this.chunksTotal), 'map entries in disk order, inside the disk');
    for (let c = firstChunk; c < firstChunk + count; ) {
      const end = Math.min(firstChunk + count, (Math.floor(c / mapPageEntries) + 1) * mapPageEntries);
      await this.set(0, c, ids.subarray((c - firstChunk) * chunkIdBytes, (end - firstChunk) * chunkIdBytes));
      c = end;
    }
    if (firstChunk + count === this.chunksTotal && count > 0) this.lastChunkZero = isAllZero(ids.subarray(ids.length - chunkIdBytes));
    this.next = firstChunk + count;
  }

  /** Writes entries starting at `first` of `level` (all inside one page of it); the root when level is the height. */
  private async set(level: number, first: number, entries: Buffer): Promise<void> {
    if (this.shape && level === this.shape.height) {
      if (level === 0) this.nonZeroChange += countNonZero(entries) - countNonZero(this.root.subarray(first * chunkIdBytes, first * chunkIdBytes + entries.length));
      entries.copy(this.root, first * chunkIdBytes);
      return;
    }
    const index = Math.floor(first / mapPageEntries);
    if (this.open[level] && this.open[level]!.index !== index) await this.close(level);
    const page = this.open[level] ?? (this.open[level] = await this.openPage(level, index));
    const at = (first - index * mapPageEntries) * chunkIdBytes;
    if (level === 0) this.nonZeroChange += countNonZero(entries) - countNonZero(page.entries.subarray(at, at + entries.length));
    entries.copy(page.entries, at);
  }

  private async openPage(level: number, index: number): Promise<OpenPage> {
    const base = this.base ? await this.base.pageWithId(level, index) : null;
    const count = this.chunksTotal === null ? mapPageEntries : pageEntryCount(this.chunksTotal, level, index);
    const entries = base ? Buffer.from(base.entries) : Buffer.alloc(count * chunkIdBytes);
    return { index, entries, base: base && { ...base, id: Buffer.from(base.id) } };
  }

  /** Stores the open page of `level` (unless it is all zero, or what the base had) and records its id one level up. */
  private async close(level: number): Promise<void> {
    const page = this.open[level]!;
    this.open[level] = null;
    let id: Buffer;
    if (isAllZero(page.entries)) id = Buffer.alloc(chunkIdBytes);
    else if (page.base && page.entries.equals(page.base.entries)) id = page.base.id;
    else if (page.base && level === 0 && page.entries.equals(page.base.fullEntries)) id = page.base.fullId; // back to the whole leaf a patch rested on
    else {
      const stored = level + this.levelOffset;
      id = await this.sink(stored === 0 && page.base ? this.leafBytes(page.entries, page.base) : encodeMapPage(stored, page.entries), stored);
      this.pagesStored += 1;
    }
    if (this.shape) await this.set(level + 1, page.index, id);
    else this.leafIds.push(id);
  }

  /**
   * A changed leaf of an increment: a patch of the whole leaf under the
   * parent's (one level of patching, never a patch of a patch) when few
   * entries differ from it, else the whole leaf. Changes scattered thinly over
   * a full disk then cost ~36 bytes each, not a 32 KiB leaf each.
   */
  private leafBytes(entries: Buffer, base: PageView): Buffer {
    const indexes: number[] = [];
    for (let k = 0; k < entries.length / chunkIdBytes && indexes.length <= leafPatchEntriesMax; k++) {
      if (entries.compare(base.fullEntries, k * chunkIdBytes, (k + 1) * chunkIdBytes, k * chunkIdBytes, (k + 1) * chunkIdBytes) !== 0) indexes.push(k);
    }
    if (indexes.length > leafPatchEntriesMax) return encodeMapPage(0, entries);
    const ids = Buffer.concat(indexes.map((k) => entries.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes)));
    return encodeLeafPatch(entries.length / chunkIdBytes, base.fullId, indexes, ids);
  }

  /** A stream's end: its size gives the map's shape; the last leaf is cut to size and the levels above are built. */
  private async endStream(chunksTotal: number): Promise<void> {
    this.chunksTotal = chunksTotal;
    this.shape = mapShape(chunksTotal);
    this.root = Buffer.alloc(this.shape.rootEntries * chunkIdBytes);
    const last = this.open[0];
    this.open[0] = null;
    const lastCount = chunksTotal - (last?.index ?? 0) * mapPageEntries;
    if (last) last.entries = last.entries.subarray(0, lastCount * chunkIdBytes);
    this.lastChunkZero = !last || lastCount === 0 || isAllZero(last.entries.subarray(last.entries.length - chunkIdBytes));
    if (this.shape.height === 0) {
      assert(this.leafIds.length === 0, 'a stream of one leaf stored none');
      if (last) last.entries.copy(this.root);
      return;
    }
    for (let i = 0; i < this.leafIds.length; i++) await this.set(1, i, this.leafIds[i]);
    if (last) {
      this.open[0] = last;
      await this.close(0);
    }
  }

  /** chunksTotal: a stream's, now known. */
  async finish(chunksTotal?: number): Promise<BuiltMap> {
    if (!this.shape) await this.endStream(chunksTotal ?? this.next);
    const shape = this.shape!;
    for (let level = 0; level < shape.height; level++) if (this.open[level]) await this.close(level);
    if (this.lastChunkZero === null) {
      const n = this.chunksTotal!;
      this.lastChunkZero = n === 0 || !this.base || isAllZero(await this.base.ids(n - 1, 1));
    }
    return { height: shape.height, root: this.root, pagesStored: this.pagesStored, nonZeroChange: this.nonZeroChange, lastChunkZero: this.lastChunkZero };
  }
}
