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
