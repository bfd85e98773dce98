// Restore-point file codec (docs/FORMAT.md "Restore point files"). Pure.
//
//   magic (8) | header JSON length u32 | kind u8 | height u8 | 2 reserved
//   | entry count u64 | header JSON | entries | XXH64 of everything before it (8)
// Version 2 (kind paged): the entries are the root of a paged map
// (map-format.ts): the ids of its top-level pages, or of its chunks when the
// disk has at most mapPageEntries chunks (height 0).
// Version 1, read for old repositories (and upgraded by `blockvault
// upgrade`): a full map stores one 32-byte chunk id per chunk (all zero =
// zero chunk); a delta stores only the entries that differ from its base:
// (u32 chunk index, 32-byte id), indexes ascending. Height is 0 in both.
import { assert, BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, xxh64 } from '../core/digest.js';
import { chunkBytesMax, chunkBytesMin, chunksPerPointMax, diskBytesMax, pointHeaderBytesMax } from '../core/limits.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';
import { checkChunker, type ChunkerSpec } from '../chunking/chunker.js';
import { cdcLeafBytes, cdcMapShape, mapHeightMax, mapShape } from './map-format.js';

/** The point file's own version is the magic's last byte: 2 paged, 1 full or delta (read only). */
export const pointMagic = Buffer.from('BVPOINT\x02', 'latin1');
export const pointMagicV1 = Buffer.from('BVPOINT\x01', 'latin1');
export const pointPrefixBytes = 24;
/** XXH64 trailer: detects bit rot and truncation at ~14 GB/s (a 1 TiB disk's map is 512 MiB). */
export const pointChecksumBytes = 8;
export const deltaEntryBytes = 4 + chunkIdBytes;
export const pointKindFull = 0;
export const pointKindDelta = 1;
export const pointKindPaged = 2;
/** A paged map of variable-length chunks (content-defined chunking; repository format 5). */
export const pointKindCdc = 3;

/** What a restore point says about itself; JSON in the file header. */
export interface PointHeader {
  id: string;
  vm: string;
  disk: string;
  time: string; // ISO 8601 UTC
  sizeBytes: number;
  chunkBytes: number;
  chunksTotal: number;
  parent: string | null; // restore point this backup was compared against
  base: string | null; // version-1 delta maps only: the point whose map this delta patches
  chainDepth: number; // 0 but for a version-1 delta
  mapSha256: string; // hex SHA-256: of the root's entries (paged: the map's Merkle root), of the whole map (version 1)
  source: Record<string, unknown>;
  stats: Record<string, number>;
  /** Set when the point is one disk of a VM restore point of several (a group object names it); absent otherwise. */
  group?: string;
  /**
   * The chunker that cut this point's chunks; absent: fixed. A content-defined
   * point (kind cdc) has chunkBytes = the chunker's maximum, chunksTotal = the
   * number of its chunks, and leafBytes = the disk bytes each map leaf covers.
   */
  chunker?: ChunkerSpec;
  leafBytes?: number;
}

export function pointChunker(h: PointHeader): ChunkerSpec {
  return h.chunker ?? { kind: 'fixed' };
}

/** Leaves of a variable-length map (at least one holds every disk but an empty one). */
export function cdcLeavesFor(sizeBytes: number): number {
  return Math.ceil(sizeBytes / cdcLeafBytes);
}

/** What a writer encodes. */
export type PointBody =
  | { kind: 'paged'; height: number; root: Buffer }
  | { kind: 'cdc'; height: number; root: Buffer }
  | { kind: 'full'; map: Buffer }
  | { kind: 'delta'; indexes: Uint32Array; ids: Buffer };

/** What a reader decodes: views into the file, no copies (a version-1 map can be 512 MiB). */
export type DecodedBody =
  | { kind: 'paged'; height: number; root: Buffer }
  | { kind: 'cdc'; height: number; root: Buffer }
  | { kind: 'full'; map: Buffer }
  | { kind: 'delta'; count: number; entries: Buffer };

export function chunksFor(sizeBytes: number, chunkBytes: number): number {
  return Math.ceil(sizeBytes / chunkBytes);
}

/** A content-defined point: at least one chunk per chunkBytes (its maximum), at most one per 4 KiB block plus a short last one. */
function checkCdcHeader(h: PointHeader, what: string): void {
  const chunker = pointChunker(h);
  if (chunker.kind === 'fixed') throw new BlockvaultError('CORRUPT', `${what}: a variable-length map without a content-defined chunker`);
  checkChunker(chunker, what);
  const ok = Number.isSafeInteger(h.sizeBytes) && h.sizeBytes >= 0 && h.sizeBytes <= diskBytesMax && h.chunkBytes === chunker.maxBytes &&
    h.leafBytes === cdcLeafBytes && Number.isSafeInteger(h.chunksTotal) && h.chunksTotal >= Math.ceil(h.sizeBytes / h.chunkBytes) &&
    h.chunksTotal <= Math.ceil(h.sizeBytes / 4096) + 1 && typeof h.id === 'string' && /^[0-9a-f]{32}$/.test(h.id) &&
    h.base === null && h.chainDepth === 0 && /^[0-9a-f]{64}$/.test(h.mapSha256) && (h.group === undefined || /^[0-9a-f]{32}$/.test(h.group));
  if (!ok) throw new BlockvaultError('CORRUPT', `${what}: header fields out of range for a variable-length map (${h.chunksTotal} chunks of ${chunker.kind} on a ${h.sizeBytes}-byte disk)`);
}

function checkHeader(h: PointHeader, what: string, kind: number): void {
  if (kind === pointKindCdc) return checkCdcHeader(h, what);
  if (h.chunker !== undefined && pointChunker(h).kind !== 'fixed') throw new BlockvaultError('CORRUPT', `${what}: a ${pointChunker(h).kind} point with a fixed-size map`);
  if (Number.isSafeInteger(h.sizeBytes) && Number.isSafeInteger(h.chunkBytes) && h.chunkBytes > 0 && h.chunksTotal !== chunksFor(h.sizeBytes, h.chunkBytes)) {
    throw new BlockvaultError('CORRUPT', `${what}: the map claims ${h.chunksTotal} chunks; a disk of ${h.sizeBytes} bytes at ${h.chunkBytes}-byte chunks has ${chunksFor(h.sizeBytes, h.chunkBytes)}`);
  }
  const ok =
    Number.isSafeInteger(h.sizeBytes) && h.sizeBytes >= 0 && h.sizeBytes <= diskBytesMax &&
    Number.isSafeInteger(h.chunkBytes) && h.chunkBytes >= chunkBytesMin && h.chunkBytes <= chunkBytesMax &&
    h.chunksTotal === chunksFor(h.sizeBytes, h.chunkBytes) && h.chunksTotal <= chunksPerPointMax &&
    typeof h.id === 'string' && /^[0-9a-f]{32}$/.test(h.id) &&
    (h.chainDepth === 0) === (h.base === null) && /^[0-9a-f]{64}$/.test(h.mapSha256) &&
    (h.group === undefined || /^[0-9a-f]{32}$/.test(h.group));
  if (!ok) throw new BlockvaultError('CORRUPT', `${what}: header fields out of range`);
}

export function encodePoint(header: PointHeader, body: PointBody): Buffer {
  const kindByte = body.kind === 'paged' ? pointKindPaged : body.kind === 'cdc' ? pointKindCdc : body.kind === 'full' ? pointKindFull : pointKindDelta;
  checkHeader(header, 'encode restore point', kindByte);
  // Pad the JSON with spaces so the entries start 8-byte aligned: readers can
  // then apply deltas through word views (applyDelta), much faster than copies.
  const text = JSON.stringify(header);
  const json = Buffer.from(text.padEnd(text.length + ((8 - ((pointPrefixBytes + Buffer.byteLength(text)) % 8)) % 8)));
  assert(json.length <= pointHeaderBytesMax, 'restore point header too large');
  let entries: Buffer;
  let count: number;
  let height = 0;
  if (body.kind === 'paged' || body.kind === 'cdc') {
    const shape = body.kind === 'paged' ? mapShape(header.chunksTotal) : cdcMapShape(cdcLeavesFor(header.sizeBytes));
    assert(body.height === shape.height && body.root.length === shape.rootEntries * chunkIdBytes, 'paged map root shape');
    entries = body.root;
    count = shape.rootEntries;
    height = body.height;
  } else if (body.kind === 'full') {
    assert(body.map.length === header.chunksTotal * chunkIdBytes, 'full map length');
    entries = body.map;
    count = header.chunksTotal;
  } else {
    count = body.indexes.length;
    assert(body.ids.length === count * chunkIdBytes, 'delta ids length');
    entries = Buffer.alloc(count * deltaEntryBytes);
    for (let i = 0; i < count; i++) {
      assert(body.indexes[i] < header.chunksTotal && (i === 0 || body.indexes[i] > body.indexes[i - 1]), 'delta indexes ascending');
      entries.writeUInt32LE(body.indexes[i], i * deltaEntryBytes);
      body.ids.copy(entries, i * deltaEntryBytes + 4, i * chunkIdBytes, (i + 1) * chunkIdBytes);
    }
  }
  const prefix = Buffer.alloc(pointPrefixBytes);
  (body.kind === 'paged' || body.kind === 'cdc' ? pointMagic : pointMagicV1).copy(prefix, 0);
  prefix.writeUInt32LE(json.length, 8);
  prefix.writeUInt8(kindByte, 12);
  prefix.writeUInt8(height, 13);
  prefix.writeBigUInt64LE(BigInt(count), 16);
  const unsummed = Buffer.concat([prefix, json, entries]);
  const sum = Buffer.alloc(pointChecksumBytes);
  sum.writeBigUInt64LE(xxh64(unsummed));
  return Buffer.concat([unsummed, sum]);
}

export function decodePoint(bytes: Uint8Array, what: string): { header: PointHeader; body: DecodedBody } {
  const b = asBuffer(bytes);
  needBytes(b, pointPrefixBytes + pointChecksumBytes, what);
  const v1 = b.subarray(0, 8).equals(pointMagicV1);
  if (!v1) checkMagic(b, 0, pointMagic, what);
  const jsonBytes = b.readUInt32LE(8);
  const kind = b.readUInt8(12);
  const height = b.readUInt8(13);
  const count = Number(b.readBigUInt64LE(16));
  const kindOk = v1 ? kind === pointKindFull || kind === pointKindDelta : kind === pointKindPaged || kind === pointKindCdc;
  if (jsonBytes > pointHeaderBytesMax || !kindOk || count > chunksPerPointMax || height > mapHeightMax || (v1 && height !== 0)) {
    throw new BlockvaultError('CORRUPT', `${what}: prefix out of range`);
  }
  const entryBytes = kind === pointKindDelta ? deltaEntryBytes : chunkIdBytes;
  const total = pointPrefixBytes + jsonBytes + count * entryBytes + pointChecksumBytes;
  if (b.length !== total) throw new BlockvaultError('CORRUPT', `${what}: size ${b.length} bytes, expected ${total}`);
  if (xxh64(b.subarray(0, total - pointChecksumBytes)) !== b.readBigUInt64LE(total - pointChecksumBytes)) {
    throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: restore point checksum mismatch`);
  }
  let header: PointHeader;
  try {
    header = JSON.parse(b.toString('utf8', pointPrefixBytes, pointPrefixBytes + jsonBytes)) as PointHeader;
  } catch (err) {
    throw new BlockvaultError('CORRUPT', `${what}: header is not JSON`, { cause: err });
  }
  checkHeader(header, what, kind);
  const at = pointPrefixBytes + jsonBytes;
  if (kind === pointKindCdc) {
    const leaves = cdcLeavesFor(header.sizeBytes);
    const shape = cdcMapShape(leaves);
    if (height !== shape.height || count !== shape.rootEntries) {
      throw new BlockvaultError('CORRUPT', `${what}: map root has height ${height} and ${count} entries; ${leaves} variable-length leaves need height ${shape.height} and ${shape.rootEntries}`);
    }
    return { header, body: { kind: 'cdc', height, root: b.subarray(at, at + count * chunkIdBytes) } };
  }
  if (kind === pointKindPaged) {
    const shape = mapShape(header.chunksTotal);
    if (height !== shape.height || count !== shape.rootEntries) {
      throw new BlockvaultError('CORRUPT', `${what}: map root has height ${height} and ${count} entries; ${header.chunksTotal} chunks need height ${shape.height} and ${shape.rootEntries}`);
    }
    return { header, body: { kind: 'paged', height, root: b.subarray(at, at + count * chunkIdBytes) } };
  }
  if (kind === pointKindFull) {
    if (count !== header.chunksTotal) throw new BlockvaultError('CORRUPT', `${what}: map has ${count} entries, header says ${header.chunksTotal}`);
    // A view, not a copy: a 1 TiB disk's map is 512 MiB at 64 KiB chunks.
    return { header, body: { kind: 'full', map: b.subarray(at, at + count * chunkIdBytes) } };
  }
  // Entry order and range are checked as the delta is applied (applyDelta).
  return { header, body: { kind: 'delta', count, entries: b.subarray(at, at + count * deltaEntryBytes) } };
}

/** Entries where `map` differs from `base` (same length): the body of a delta. */
export function diffMaps(base: Buffer, map: Buffer): { indexes: Uint32Array; ids: Buffer } {
  assert(base.length === map.length, 'diffMaps needs maps of one disk size');
  const changed: number[] = [];
  for (let at = 0; at < map.length; at += chunkIdBytes) {
    if (base.compare(map, at, at + chunkIdBytes, at, at + chunkIdBytes) !== 0) changed.push(at / chunkIdBytes);
  }
  const ids = Buffer.alloc(changed.length * chunkIdBytes);
  changed.forEach((chunk, i) => map.copy(ids, i * chunkIdBytes, chunk * chunkIdBytes, (chunk + 1) * chunkIdBytes));
  return { indexes: Uint32Array.from(changed), ids };
}

/**
 * Applies a decoded delta to its base map, in place (callers pass a map they
 * own), checking that entry indexes ascend and stay inside the map.
 */
export function applyDelta(base: Buffer, delta: { count: number; entries: Buffer }, what: string): Buffer {
  const chunks = base.length / chunkIdBytes;
  const e = delta.entries;
  if ((e.byteOffset & 3) === 0 && (base.byteOffset & 3) === 0) {
    const words = new Uint32Array(e.buffer, e.byteOffset, delta.count * 9);
    const map = new Uint32Array(base.buffer, base.byteOffset, base.length / 4);
    let previous = -1;
    for (let i = 0, w = 0; i < delta.count; i++, w += 9) {
      const index = words[w]; // little-endian hosts only (x86-64, arm64)
      if (index >= chunks || index <= previous) throw new BlockvaultError('CORRUPT', `${what}: delta entry ${i} out of order or range`);
      const to = index * 8;
      for (let k = 1; k <= 8; k++) map[to + k - 1] = words[w + k];
      previous = index;
    }
    return base;
  }
  let previous = -1;
  for (let i = 0; i < delta.count; i++) {
    const at = i * deltaEntryBytes;
    const index = delta.entries.readUInt32LE(at);
    if (index >= chunks || index <= previous) throw new BlockvaultError('CORRUPT', `${what}: delta entry ${i} out of order or range`);
    delta.entries.copy(base, index * chunkIdBytes, at + 4, at + deltaEntryBytes);
    previous = index;
  }
  return base;
}
