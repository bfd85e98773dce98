// A restore point's chunk map as readers see it: chunk ids by position,
// loaded page by page through the repository's bounded page cache, so
// opening a point costs its root (one small object) whatever the disk size.
// Version-1 maps (whole, in the point file) are read through the same
// interface until `blockvault upgrade` pages them.
import { assert } from '../core/errors.js';
import { chunkIdBytes, isAllZero } from '../core/digest.js';
import { BlockvaultError } from '../core/errors.js';
import { applyLeafPatch, decodeMapPage, mapPageEntries, pageChunkRange, pageEntryCount } from '../format/map-format.js';
import type { MapPages, PagePlace } from './map-pages.js';

/**
 * A leaf as restore, verify and gc see it: the ids of its chunks, and where
 * they lie. Fixed: chunk firstChunk + k at (firstChunk + k) * chunkBytes.
 * Variable-length (cdc): `lengths` and the first chunk's disk offset.
 */
export interface MapLeaf { firstChunk: number; ids: Buffer; lengths?: Uint32Array; firstByte?: number }

/**
 * A page as readers use it: its id and entries (a leaf patch made whole) and,
 * for a leaf, the whole leaf it rests on (itself, unless it is a patch).
 */
export interface PageView { id: Buffer; entries: Buffer; fullId: Buffer; fullEntries: Buffer }

/** What every map offers, fixed or variable-length (cdc-map.ts): verify, stats, check and gc need no more. */
export interface MapWalk {
  readonly chunksTotal: number;
  leaves(onPage?: (id: Buffer, place: PagePlace) => void): AsyncGenerator<MapLeaf>;
  walk(visit: WalkVisitor): Promise<void>;
}

export interface ChunkMap extends MapWalk {
  readonly kind: 'fixed';
  readonly chunksTotal: number;
  /** The ids of chunks [first, first + count), copied: count * 32 bytes (zero id = zero chunk). */
  ids(first: number, count: number): Promise<Buffer>;
  /**
   * The same ids without a copy or a wait, when they lie in one leaf this map
   * has at hand (the mount's hot path: most reads fall in the leaf of the read
   * before); null otherwise.
   */
  idsNow(first: number, count: number): Buffer | null;
  /**
   * Every leaf that holds a non-zero chunk, in disk order (an all-zero
   * region costs nothing); onPage sees each map page on the way (verify,
   * stats and gc count them as referenced).
   */
  leaves(onPage?: (id: Buffer, place: PagePlace) => void): AsyncGenerator<MapLeaf>;
  /**
   * Every non-zero id the map references, for gc (see WalkVisitor): each page
   * before it is read, each data chunk, and each leaf patch's base leaf.
   */
  walk(visit: WalkVisitor): Promise<void>;
}

/**
 * 'page': a page of the tree; return true to read it and visit what is below.
 * 'chunk': a data chunk (the return value is ignored).
 * 'base': the whole leaf a leaf patch rests on, which the patch needs to be
 * read; return true when every chunk that base names is accounted for already
 * (then only the entries the patch changes are visited), false to have every
 * entry of the patched leaf visited. A base's own entries that the patch
 * replaces are not the point's: they are never visited through the patch.
 */
export type WalkVisitor = (id: Buffer, kind: 'page' | 'chunk' | 'base') => boolean;

function visitChunks(ids: Buffer, visit: WalkVisitor): void {
  for (let at = 0; at < ids.length; at += chunkIdBytes) {
    const id = ids.subarray(at, at + chunkIdBytes);
    if (!isAllZero(id)) visit(id, 'chunk');
  }
}

/** Leaves a PagedMap keeps at hand for idsNow (16 x 32 KiB: 1 GiB of disk at 64 KiB chunks), besides the shared page cache. */
const leavesAtHandMax = 16;

export class PagedMap implements ChunkMap {
  readonly kind = 'fixed';
  readonly chunksTotal: number;
  /** Recently used leaves by index; null: an all-zero leaf. */
  private readonly atHand = new Map<number, Buffer | null>();

  constructor(private readonly pages: MapPages, chunksTotal: number, private readonly chunkBytes: number, private readonly sizeBytes: number,
    readonly height: number, private readonly root: Buffer, private readonly name: string,
    /** 1 for the pages above a variable-length map's leaves (cdc-map.ts): their "chunks" are leaves. */
    private readonly levelOffset = 0) {
    this.chunksTotal = chunksTotal;
    assert(root.length % chunkIdBytes === 0, 'map root length');
  }

  private place(level: number, index: number): PagePlace {
    const [first, end] = pageChunkRange(this.chunksTotal, level, index);
    return { point: this.name, level: level + this.levelOffset, index, firstByte: first * this.chunkBytes, endByte: Math.min(this.sizeBytes, end * this.chunkBytes) };
  }

  private async pageAt(level: number, index: number, id: Buffer): Promise<PageView> {
    const place = this.place(level, index);
    const count = pageEntryCount(this.chunksTotal, level, index);
    const what = `restore point ${this.name}: map page ${id.toString('hex')} (level ${place.level}, page ${index}, disk bytes ${place.firstByte}-${place.endByte})`;
    const page = decodeMapPage(await this.pages.load(id, place), { level: place.level, count }, what);
    if (page.kind === 'entries') return { id, entries: page.entries, fullId: id, fullEntries: page.entries };
    const base = decodeMapPage(await this.pages.load(page.baseId, place), { level, count }, `${what}: its base leaf ${page.baseId.toString('hex')}`);
    if (base.kind !== 'entries') throw new BlockvaultError('CORRUPT', `${what}: a leaf patch rests on another patch`);
    const entries = this.pages.materialized(id, () => applyLeafPatch(base.entries, page.patches, what));
    return { id, entries, fullId: Buffer.from(page.baseId), fullEntries: base.entries };
  }

  /** The root's entries: the top level's page ids (the chunk ids at height 0). */
  rootEntries(): Buffer {
    return this.root;
  }

  /** Page `index` of `level`, or null when its id is zero (every chunk below is a zero chunk). */
  async pageWithId(level: number, index: number): Promise<PageView | null> {
    assert(level >= 0 && level < this.height, 'page level inside the tree');
    let entries = this.root;
    let view: PageView | null = null;
    for (let k = this.height - 1; k >= level; k--) {
      const pageIndex = Math.floor(index / mapPageEntries ** (k - level));
      const slot = k === this.height - 1 ? pageIndex : pageIndex % mapPageEntries;
      const id = entries.subarray(slot * chunkIdBytes, (slot + 1) * chunkIdBytes);
      if (isAllZero(id)) return null;
      view = await this.pageAt(k, pageIndex, id);
      entries = view.entries;
    }
    return view;
  }

  async page(level: number, index: number): Promise<Buffer | null> {
    const entries = (await this.pageWithId(level, index))?.entries ?? null;
    if (level === 0) {
      this.atHand.delete(index);
      this.atHand.set(index, entries);
      if (this.atHand.size > leavesAtHandMax) this.atHand.delete(this.atHand.keys().next().value as number);
    }
    return entries;
  }

  idsNow(first: number, count: number): Buffer | null {
    if (this.height === 0) return this.root.subarray(first * chunkIdBytes, (first + count) * chunkIdBytes);
    const leaf = Math.floor(first / mapPageEntries);
    if (count === 0 || Math.floor((first + count - 1) / mapPageEntries) !== leaf || !this.atHand.has(leaf)) return null;
    const entries = this.atHand.get(leaf);
    if (!entries) return null; // an all-zero leaf: ids() makes the zeros
    const at = (first - leaf * mapPageEntries) * chunkIdBytes;
    return entries.subarray(at, at + count * chunkIdBytes);
  }

  async ids(first: number, count: number): Promise<Buffer> {
    assert(first >= 0 && count >= 0 && first + count <= this.chunksTotal, 'map range inside the disk');
    const out = Buffer.alloc(count * chunkIdBytes);
    if (this.height === 0) {
      this.root.copy(out, 0, first * chunkIdBytes, (first + count) * chunkIdBytes);
      return out;
    }
    for (let c = first; c < first + count; ) {
      const leaf = Math.floor(c / mapPageEntries);
      const end = Math.min(first + count, (leaf + 1) * mapPageEntries);
      const entries = await this.page(0, leaf);
      if (entries) entries.copy(out, (c - first) * chunkIdBytes, (c - leaf * mapPageEntries) * chunkIdBytes, (end - leaf * mapPageEntries) * chunkIdBytes);
      c = end;
    }
    return out;
  }

  async *leaves(onPage?: (id: Buffer, place: PagePlace) => void): AsyncGenerator<MapLeaf> {
    if (this.height === 0) {
      if (!isAllZero(this.root)) yield { firstChunk: 0, ids: this.root };
      return;
    }
    yield* this.below(this.height - 1, 0, this.root, onPage);
  }

  async walk(visit: WalkVisitor): Promise<void> {
    if (this.height === 0) visitChunks(this.root, visit);
    else await this.walkBelow(this.height - 1, 0, this.root, visit);
  }

  private async walkBelow(level: number, firstIndex: number, entries: Buffer, visit: WalkVisitor): Promise<void> {
    for (let slot = 0; slot < entries.length / chunkIdBytes; slot++) {
      const id = entries.subarray(slot * chunkIdBytes, (slot + 1) * chunkIdBytes);
      if (isAllZero(id) || !visit(id, 'page')) continue;
      const index = firstIndex + slot;
      const page = await this.pageAt(level, index, id);
      if (level > 0) await this.walkBelow(level - 1, index * mapPageEntries, page.entries, visit);
      else if (page.fullId.equals(id) || !visit(page.fullId, 'base')) visitChunks(page.entries, visit);
      else visitPatched(page.entries, page.fullEntries, visit);
    }
  }

  /** The leaves under `entries`, the ids of pages firstIndex, firstIndex + 1, ... of `level`. */
  private async *below(level: number, firstIndex: number, entries: Buffer, onPage?: (id: Buffer, place: PagePlace) => void): AsyncGenerator<MapLeaf> {
    for (let slot = 0; slot < entries.length / chunkIdBytes; slot++) {
      const id = entries.subarray(slot * chunkIdBytes, (slot + 1) * chunkIdBytes);
      if (isAllZero(id)) continue;
      const index = firstIndex + slot;
      const page = await this.pageAt(level, index, id);
      onPage?.(id, this.place(level, index));
      if (!page.fullId.equals(id)) onPage?.(page.fullId, this.place(level, index)); // a patch's base leaf is needed too
      if (level === 0) yield { firstChunk: index * mapPageEntries, ids: page.entries };
      else yield* this.below(level - 1, index * mapPageEntries, page.entries, onPage);
    }
  }
}

/** A version-1 map, whole in memory (read from its point file and delta chain). */
export class FlatMap implements ChunkMap {
  readonly kind = 'fixed';
  readonly chunksTotal: number;
  constructor(private readonly map: Buffer) {
    this.chunksTotal = map.length / chunkIdBytes;
  }

  async ids(first: number, count: number): Promise<Buffer> {
    assert(first >= 0 && count >= 0 && first + count <= this.chunksTotal, 'map range inside the disk');
    return Buffer.from(this.map.subarray(first * chunkIdBytes, (first + count) * chunkIdBytes));
  }

  idsNow(first: number, count: number): Buffer | null {
    return this.map.subarray(first * chunkIdBytes, (first + count) * chunkIdBytes);
  }

  async walk(visit: WalkVisitor): Promise<void> {
    visitChunks(this.map, visit);
  }

  async *leaves(): AsyncGenerator<MapLeaf> {
    for (let first = 0; first < this.chunksTotal; first += mapPageEntries) {
      const ids = this.map.subarray(first * chunkIdBytes, Math.min(this.chunksTotal, first + mapPageEntries) * chunkIdBytes);
      if (!isAllZero(ids)) yield { firstChunk: first, ids };
    }
  }
}

/** The entries of a patched leaf that differ from its base's (most do not: compared without a view each). */
function visitPatched(entries: Buffer, baseEntries: Buffer, visit: WalkVisitor): void {
  for (let at = 0; at < entries.length; at += chunkIdBytes) {
    if (entries.compare(baseEntries, at, at + chunkIdBytes, at, at + chunkIdBytes) === 0) continue;
    const id = entries.subarray(at, at + chunkIdBytes);
    if (!isAllZero(id)) visit(id, 'chunk');
  }
}

/** Every non-zero chunk id of a map, in disk order (views: copy one to keep it). onPage as for leaves(). */
export async function* dataChunkIds(map: MapWalk, onPage?: (id: Buffer, place: PagePlace) => void): AsyncGenerator<Buffer> {
  for await (const leaf of map.leaves(onPage)) {
    for (let at = 0; at < leaf.ids.length; at += chunkIdBytes) {
      const id = leaf.ids.subarray(at, at + chunkIdBytes);
      if (!isAllZero(id)) yield id;
    }
  }
}
