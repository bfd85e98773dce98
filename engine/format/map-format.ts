// Paged chunk maps (docs/FORMAT.md "Paged chunk maps"). Pure.
//
// A restore point's map is a tree of pages, each page content-addressed
// (its id is the SHA-256 of its bytes) and stored in packs like a chunk:
//   level 0 pages hold up to mapPageEntries chunk ids (zero id = zero chunk);
//   level k pages hold up to mapPageEntries ids of level k-1 pages
//   (zero id = every chunk below is a zero chunk; such pages are not stored);
//   the point file (the root) holds the top level's entries inline.
// Entries are positional: chunk c is entry c % F of leaf floor(c / F), so a
// page of an unchanged region has the same bytes, and the same id, in every
// restore point of the disk, and costs nothing to store again.
import { assert, BlockvaultError } from '../core/errors.js';
import { chunkIdBytes } from '../core/digest.js';
import { chunksPerPointMax } from '../core/limits.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';

/** Entries per page: 32 KiB of ids, covering 64 MiB of disk at 64 KiB chunks. See docs/FORMAT.md for why. */
export const mapPageEntries = 1024;
export const mapPageHeaderBytes = 16;
export const mapPageMagic = Buffer.from('BVMP', 'latin1');
export const mapPageVersion = 1;
/** Page kinds. 2 and 3 are kept for the variable-length chunk maps of content-defined chunking. */
export const pageKindFixedLeaf = 0;
export const pageKindFixedInner = 1;
/** A leaf as a whole leaf (its base) with some entries replaced: what an increment scattering changes over a full disk stores. */
export const pageKindLeafPatch = 4;
export const leafPatchHeaderBytes = 16 + 32;
export const leafPatchEntryBytes = 4 + chunkIdBytes;
/** A leaf that differs from its base in more entries than this is stored whole. */
export const leafPatchEntriesMax = mapPageEntries / 4;
/** A tree deeper than this would cover more than chunksPerPointMax chunks. */
export const mapHeightMax = 4;

/** How a map of `chunks` entries is paged: its height (levels of pages) and the root's entry count. */
export interface MapShape { chunks: number; height: number; rootEntries: number }

export function mapShape(chunks: number): MapShape {
  assert(Number.isSafeInteger(chunks) && chunks >= 0 && chunks <= chunksPerPointMax, 'map chunk count');
  let height = 0;
  let entries = chunks;
  while (entries > mapPageEntries) {
    entries = Math.ceil(entries / mapPageEntries);
    height += 1;
  }
  return { chunks, height, rootEntries: entries };
}

/** Entries at `level` (0: chunks; k: pages of level k-1). */
export function levelEntries(chunks: number, level: number): number {
  let entries = chunks;
  for (let k = 0; k < level; k++) entries = Math.ceil(entries / mapPageEntries);
  return entries;
}

/** Entries in page `index` of `level` (the last page of a level may be short). */
export function pageEntryCount(chunks: number, level: number, index: number): number {
  const entries = levelEntries(chunks, level);
  assert(index >= 0 && index * mapPageEntries < entries, 'page index inside its level');
  return Math.min(mapPageEntries, entries - index * mapPageEntries);
}

/** The chunks [first, end) that page `index` of `level` covers. */
export function pageChunkRange(chunks: number, level: number, index: number): [number, number] {
  const span = mapPageEntries ** (level + 1);
  return [index * span, Math.min(chunks, (index + 1) * span)];
}

/** magic "BVMP" | version u8 | kind u8 | level u8 | reserved u8 | entry count u32 | reserved u32 | entries. */
export function encodeMapPage(level: number, entries: Buffer): Buffer {
  const count = entries.length / chunkIdBytes;
  assert(Number.isInteger(count) && count >= 1 && count <= mapPageEntries && level >= 0 && level < mapHeightMax, 'map page shape');
  const out = Buffer.alloc(mapPageHeaderBytes + entries.length);
  mapPageMagic.copy(out, 0);
  out.writeUInt8(mapPageVersion, 4);
  out.writeUInt8(level === 0 ? pageKindFixedLeaf : pageKindFixedInner, 5);
  out.writeUInt8(level, 6);
  out.writeUInt32LE(count, 8);
  entries.copy(out, mapPageHeaderBytes);
  return out;
}

/**
 * A leaf patch: the header (kind 4, level 0, the leaf's entry count) | u32
 * patch count p | u32 zero | base leaf id (32) | p x (u32 entry index, 32-byte
 * id), indexes strictly ascending. The base is a whole leaf (kind 0), never a
 * patch: reading any leaf takes at most two pages.
 */
export function encodeLeafPatch(count: number, baseId: Buffer, indexes: number[], ids: Buffer): Buffer {
  assert(count >= 1 && count <= mapPageEntries && indexes.length >= 1 && indexes.length <= leafPatchEntriesMax && ids.length === indexes.length * chunkIdBytes, 'leaf patch shape');
  const out = Buffer.alloc(leafPatchHeaderBytes + indexes.length * leafPatchEntryBytes);
  mapPageMagic.copy(out, 0);
  out.writeUInt8(mapPageVersion, 4);
  out.writeUInt8(pageKindLeafPatch, 5);
  out.writeUInt32LE(count, 8);
  out.writeUInt32LE(indexes.length, 12);
  baseId.copy(out, 16);
  indexes.forEach((index, k) => {
    assert(index < count && (k === 0 || index > indexes[k - 1]), 'leaf patch indexes ascending, inside the leaf');
    const at = leafPatchHeaderBytes + k * leafPatchEntryBytes;
    out.writeUInt32LE(index, at);
    ids.copy(out, at + 4, k * chunkIdBytes, (k + 1) * chunkIdBytes);
  });
  return out;
}

export type DecodedPage = { kind: 'entries'; entries: Buffer } | { kind: 'patch'; baseId: Buffer; count: number; patches: Buffer };

/** Checks a page against where the tree says it sits; returns a view of its entries, or its patch. */
export function decodeMapPage(bytes: Uint8Array, expect: { level: number; count: number }, what: string): DecodedPage {
  const b = asBuffer(bytes);
  needBytes(b, mapPageHeaderBytes, what);
  checkMagic(b, 0, mapPageMagic, what);
  const version = b.readUInt8(4);
  const kind = b.readUInt8(5);
  const level = b.readUInt8(6);
  const count = b.readUInt32LE(8);
  if (version !== mapPageVersion) throw new BlockvaultError('FORMAT_VERSION', `${what}: map page version ${version}; this blockvault reads version ${mapPageVersion}`);
  const kindOk = expect.level === 0 ? kind === pageKindFixedLeaf || kind === pageKindLeafPatch : kind === pageKindFixedInner;
  if (!kindOk || level !== expect.level || count !== expect.count) {
    throw new BlockvaultError('CORRUPT', `${what}: page says kind ${kind}, level ${level}, ${count} entries; its place in the map needs level ${expect.level}, ${expect.count} entries`);
  }
  if (kind === pageKindLeafPatch) return decodePatch(b, count, what);
  if (b.length !== mapPageHeaderBytes + count * chunkIdBytes) throw new BlockvaultError('CORRUPT', `${what}: ${b.length} bytes, expected ${mapPageHeaderBytes + count * chunkIdBytes}`);
  return { kind: 'entries', entries: b.subarray(mapPageHeaderBytes) };
}

function decodePatch(b: Buffer, count: number, what: string): DecodedPage {
  needBytes(b, leafPatchHeaderBytes, what);
  const patchCount = b.readUInt32LE(12);
  if (patchCount < 1 || patchCount > leafPatchEntriesMax || b.length !== leafPatchHeaderBytes + patchCount * leafPatchEntryBytes) {
    throw new BlockvaultError('CORRUPT', `${what}: leaf patch of ${patchCount} entries in ${b.length} bytes`);
  }
  return { kind: 'patch', baseId: b.subarray(16, 48), count, patches: b.subarray(leafPatchHeaderBytes) };
}

/** The leaf a patch describes: a copy of its base's entries with the patch applied, checking indexes ascend inside the leaf. */
export function applyLeafPatch(baseEntries: Buffer, patches: Buffer, what: string): Buffer {
  const out = Buffer.from(baseEntries);
  const count = baseEntries.length / chunkIdBytes;
  let previous = -1;
  for (let at = 0; at < patches.length; at += leafPatchEntryBytes) {
    const index = patches.readUInt32LE(at);
    if (index >= count || index <= previous) throw new BlockvaultError('CORRUPT', `${what}: leaf patch entry ${at / leafPatchEntryBytes} out of order or range`);
    patches.copy(out, index * chunkIdBytes, at + 4, at + leafPatchEntryBytes);
    previous = index;
  }
  return out;
}

// Variable-length chunk maps (docs/FORMAT.md "Variable-length chunk maps").
// A leaf covers a fixed span of the disk, cdcLeafBytes, and lists the chunks
// that *start* in it: where the first one starts (the chunk before may reach
// in from the leaf before), then each chunk's length and id. An unchanged
// span of the disk has the same leaf in every restore point, as with fixed
// maps; the levels above are ordinary inner pages over the leaves' ids.

/** Page kind of a variable-length leaf. (3 stays reserved.) */
export const pageKindCdcLeaf = 2;
/** Disk bytes one variable-length leaf covers: ~1024 chunks at a 64 KiB average, as a fixed leaf. */
export const cdcLeafBytes = 64 * 1024 * 1024;
/** Chunks starting in one leaf: one per 4 KiB block at most (aligned-cdc); FastCDC's minimum keeps it there too (checked). */
export const cdcLeafEntriesMax = cdcLeafBytes / 4096;

/** A decoded leaf: the first chunk's start, relative to the leaf's first byte, and each chunk's length and id (ids back to back). */
export interface CdcLeaf { firstOffset: number; lengths: Uint32Array; ids: Buffer }

/** The shape of a variable-length map over `leaves` leaves: one level above the inner pages a fixed map of that many entries would have. */
export function cdcMapShape(leaves: number): { height: number; rootEntries: number } {
  const upper = mapShape(leaves);
  return { height: upper.height + 1, rootEntries: upper.rootEntries };
}

/** magic "BVMP" | version u8 | kind 2 | level 0 | 0 | u32 count n | u32 firstOffset | n x u32 length | n x 32-byte id. */
export function encodeCdcLeaf(leaf: CdcLeaf): Buffer {
  const n = leaf.lengths.length;
  assert(n >= 1 && n <= cdcLeafEntriesMax && leaf.ids.length === n * chunkIdBytes && leaf.firstOffset >= 0 && leaf.firstOffset < cdcLeafBytes, 'variable-length leaf shape');
  const out = Buffer.alloc(mapPageHeaderBytes + n * (4 + chunkIdBytes));
  mapPageMagic.copy(out, 0);
  out.writeUInt8(mapPageVersion, 4);
  out.writeUInt8(pageKindCdcLeaf, 5);
  out.writeUInt32LE(n, 8);
  out.writeUInt32LE(leaf.firstOffset, 12);
  let start = leaf.firstOffset;
  for (let k = 0; k < n; k++) {
    assert(leaf.lengths[k] >= 1 && (k === n - 1 || start + leaf.lengths[k] < cdcLeafBytes), 'variable-length leaf: every chunk starts inside the leaf');
    out.writeUInt32LE(leaf.lengths[k], mapPageHeaderBytes + 4 * k);
    start += leaf.lengths[k];
  }
  leaf.ids.copy(out, mapPageHeaderBytes + 4 * n);
  return out;
}

/** Where a leaf sits: its first disk byte, the disk's size, the largest chunk the point allows. */
export interface CdcLeafPlace { index: number; firstByte: number; sizeBytes: number; chunkBytesMax: number }

/**
 * Checks a variable-length leaf against its place before anything uses it:
 * chunks of 1 .. chunkBytesMax bytes, each starting inside the leaf (so
 * starts ascend), the first leaf's first chunk at 0, nothing past the disk's
 * end, and the last leaf ending exactly there.
 */
export function decodeCdcLeaf(bytes: Uint8Array, place: CdcLeafPlace, what: string): CdcLeaf {
  const b = asBuffer(bytes);
  needBytes(b, mapPageHeaderBytes, what);
  checkMagic(b, 0, mapPageMagic, what);
  const version = b.readUInt8(4);
  if (version !== mapPageVersion) throw new BlockvaultError('FORMAT_VERSION', `${what}: map page version ${version}; this blockvault reads version ${mapPageVersion}`);
  const kind = b.readUInt8(5);
  const n = b.readUInt32LE(8);
  const firstOffset = b.readUInt32LE(12);
  if (kind !== pageKindCdcLeaf || b.readUInt8(6) !== 0) throw new BlockvaultError('CORRUPT', `${what}: page of kind ${kind}, level ${b.readUInt8(6)}; its place needs a variable-length leaf (kind ${pageKindCdcLeaf}, level 0)`);
  if (n < 1 || n > cdcLeafEntriesMax || b.length !== mapPageHeaderBytes + n * (4 + chunkIdBytes)) throw new BlockvaultError('CORRUPT', `${what}: ${n} entries in ${b.length} bytes`);
  const leafEnd = Math.min(place.sizeBytes, place.firstByte + cdcLeafBytes);
  const isLast = leafEnd === place.sizeBytes;
  if ((place.index === 0 && firstOffset !== 0) || place.firstByte + firstOffset >= leafEnd) throw new BlockvaultError('CORRUPT', `${what}: first chunk at offset ${place.firstByte + firstOffset}, outside the leaf's disk bytes ${place.firstByte}-${leafEnd}`);
  const lengths = new Uint32Array(n);
  let start = place.firstByte + firstOffset;
  for (let k = 0; k < n; k++) {
    const length = b.readUInt32LE(mapPageHeaderBytes + 4 * k);
    if (length < 1 || length > place.chunkBytesMax) throw new BlockvaultError('CORRUPT', `${what}: chunk ${k} at offset ${start} has length ${length} (1 to ${place.chunkBytesMax})`);
    if (start >= leafEnd) throw new BlockvaultError('CORRUPT', `${what}: chunk ${k} starts at offset ${start}, past the leaf's end ${leafEnd} (offsets out of order)`);
    lengths[k] = length;
    start += length;
  }
  if (start > place.sizeBytes || (isLast && start !== place.sizeBytes) || (!isLast && start < leafEnd)) {
    throw new BlockvaultError('CORRUPT', `${what}: its chunks end at offset ${start}; the disk is ${place.sizeBytes} bytes${isLast ? '' : ` and the leaf's chunks must reach its end ${leafEnd}`}`);
  }
  return { firstOffset, lengths, ids: b.subarray(mapPageHeaderBytes + 4 * n) };
}
