// Restore-point file codec (docs/FORMAT.md "Restore point files"). Pure.
//
//   magic (8) | header JSON length u32 | kind u8 + 3 reserved | entry count u64
//   | header JSON | entries | XXH64 of everything before it (8)
// A full map stores one 32-byte chunk id per chunk (all zero = zero chunk),
// like Proxmox Backup Server's fixed index. A delta stores only the entries
// that differ from its base: (u32 chunk index, 32-byte id), indexes ascending.
import { assert, BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, xxh64 } from '../core/digest.js';
import { chunkBytesMax, chunkBytesMin, chunksPerPointMax, diskBytesMax, pointHeaderBytesMax } from '../core/limits.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';

export const pointMagic = Buffer.from('BVPOINT\x01', 'latin1'); // format version 1
export const pointPrefixBytes = 24;
/** XXH64 trailer: detects bit rot and truncation at ~14 GB/s (a 1 TiB disk's map is 512 MiB). */
export const pointChecksumBytes = 8;
export const deltaEntryBytes = 4 + chunkIdBytes;
export const pointKindFull = 0;
export const pointKindDelta = 1;

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
  base: string | null; // delta maps only: the point whose map this delta patches
  chainDepth: number; // 0 for a full map
  mapSha256: string; // hex SHA-256 of the materialized full map
  source: Record<string, unknown>;
  stats: Record<string, number>;
  /** Set when the point is one disk of a VM restore point of several (a group object names it); absent otherwise. */
  group?: string;
}

/** What a writer encodes. */
export type PointBody =
  | { kind: 'full'; map: Buffer }
  | { kind: 'delta'; indexes: Uint32Array; ids: Buffer };

/** What a reader decodes: views into the file, no copies (maps can be 512 MiB). */
export type DecodedBody =
  | { kind: 'full'; map: Buffer }
  | { kind: 'delta'; count: number; entries: Buffer };

export function chunksFor(sizeBytes: number, chunkBytes: number): number {
  return Math.ceil(sizeBytes / chunkBytes);
}

function checkHeader(h: PointHeader, what: string): void {
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
  checkHeader(header, 'encode restore point');
  // Pad the JSON with spaces so the entries start 8-byte aligned: readers can
  // then apply deltas through word views (applyDelta), much faster than copies.
  const text = JSON.stringify(header);
  const json = Buffer.from(text.padEnd(text.length + ((8 - ((pointPrefixBytes + Buffer.byteLength(text)) % 8)) % 8)));
  assert(json.length <= pointHeaderBytesMax, 'restore point header too large');
  let entries: Buffer;
  let count: number;
  if (body.kind === 'full') {
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
  pointMagic.copy(prefix, 0);
  prefix.writeUInt32LE(json.length, 8);
  prefix.writeUInt8(body.kind === 'full' ? pointKindFull : pointKindDelta, 12);
  prefix.writeBigUInt64LE(BigInt(count), 16);
  const unsummed = Buffer.concat([prefix, json, entries]);
  const sum = Buffer.alloc(pointChecksumBytes);
  sum.writeBigUInt64LE(xxh64(unsummed));
  return Buffer.concat([unsummed, sum]);
}

export function decodePoint(bytes: Uint8Array, what: string): { header: PointHeader; body: DecodedBody } {
  const b = asBuffer(bytes);
  needBytes(b, pointPrefixBytes + pointChecksumBytes, what);
  checkMagic(b, 0, pointMagic, what);
  const jsonBytes = b.readUInt32LE(8);
  const kind = b.readUInt8(12);
  const count = Number(b.readBigUInt64LE(16));
  if (jsonBytes > pointHeaderBytesMax || (kind !== pointKindFull && kind !== pointKindDelta) || count > chunksPerPointMax) {
    throw new BlockvaultError('CORRUPT', `${what}: prefix out of range`);
  }
  const entryBytes = kind === pointKindFull ? chunkIdBytes : deltaEntryBytes;
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
  checkHeader(header, what);
  const at = pointPrefixBytes + jsonBytes;
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
