// Pack file codec (docs/FORMAT.md "Pack files"). Pure: bytes in, bytes out.
//
//   header (32) | record* | trailer entries (64 each) | footer (32)
//   record = record header (64) + stored payload
import { assert, BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, xxh64 } from '../core/digest.js';
import { chunkBytesMax, packRecordsMax } from '../core/limits.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';

export const packMagic = Buffer.from('BVPACK\x00\x01', 'latin1'); // format version 1
export const packRecordMagic = Buffer.from('BVR1', 'latin1');
export const packFooterMagic = Buffer.from('BVPKEND1', 'latin1');
export const packHeaderBytes = 32;
export const recordHeaderBytes = 64;
export const trailerEntryBytes = 64;
export const packFooterBytes = 32;
export const packIdBytes = 16;

export const codecRaw = 0;
export const codecZstd = 1;
export type Codec = typeof codecRaw | typeof codecZstd;

/** Where one stored chunk lives and how to check and decode it. */
export interface PackRecord {
  id: Buffer; // SHA-256 of the raw chunk
  offset: number; // of the record header within the pack
  rawBytes: number;
  storedBytes: number;
  codec: Codec;
  storedXxh64: bigint; // XXH64 of the stored payload
}

export function encodePackHeader(packId: Buffer, createdMs: number): Buffer {
  assert(packId.length === packIdBytes, 'pack id length');
  const out = Buffer.alloc(packHeaderBytes);
  packMagic.copy(out, 0);
  packId.copy(out, 8);
  out.writeBigUInt64LE(BigInt(createdMs), 24);
  return out;
}

export function decodePackHeader(bytes: Uint8Array, what: string): { packId: Buffer; createdMs: number } {
  needBytes(bytes, packHeaderBytes, what);
  checkMagic(bytes, 0, packMagic, what);
  const b = asBuffer(bytes);
  return { packId: Buffer.from(b.subarray(8, 24)), createdMs: Number(b.readBigUInt64LE(24)) };
}

function checkRecordFields(r: Omit<PackRecord, 'offset' | 'storedXxh64'>, what: string): void {
  const ok =
    r.id.length === chunkIdBytes &&
    (r.codec === codecRaw || r.codec === codecZstd) &&
    r.rawBytes > 0 && r.rawBytes <= chunkBytesMax &&
    r.storedBytes > 0 && r.storedBytes <= chunkBytesMax &&
    (r.codec !== codecRaw || r.storedBytes === r.rawBytes);
  if (!ok) throw new BlockvaultError('CORRUPT', `${what}: record fields out of range`);
}

/** 64-byte record header; bytes 56..64 check bytes 0..56 so a scan can trust it. */
export function encodeRecordHeader(r: Omit<PackRecord, 'offset'>): Buffer {
  checkRecordFields(r, 'encode record');
  const out = Buffer.alloc(recordHeaderBytes);
  packRecordMagic.copy(out, 0);
  out.writeUInt8(r.codec, 4);
  out.writeUInt32LE(r.rawBytes, 8);
  out.writeUInt32LE(r.storedBytes, 12);
  r.id.copy(out, 16);
  out.writeBigUInt64LE(r.storedXxh64, 48);
  out.writeBigUInt64LE(xxh64(out.subarray(0, 56)), 56);
  return out;
}

export function decodeRecordHeader(bytes: Uint8Array, offset: number, what: string): PackRecord {
  needBytes(bytes, recordHeaderBytes, what);
  checkMagic(bytes, 0, packRecordMagic, what);
  const b = asBuffer(bytes);
  if (xxh64(b.subarray(0, 56)) !== b.readBigUInt64LE(56)) {
    throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: record header checksum mismatch at offset ${offset}`);
  }
  const record: PackRecord = {
    codec: b.readUInt8(4) as Codec,
    rawBytes: b.readUInt32LE(8),
    storedBytes: b.readUInt32LE(12),
    id: Buffer.from(b.subarray(16, 48)),
    storedXxh64: b.readBigUInt64LE(48),
    offset,
  };
  checkRecordFields(record, `${what} at offset ${offset}`);
  return record;
}

/** Trailer: one 64-byte entry per record, then a 32-byte footer. */
export function encodeTrailer(records: readonly PackRecord[]): Buffer {
  assert(records.length <= packRecordsMax, 'too many records for one pack');
  const entries = Buffer.alloc(records.length * trailerEntryBytes);
  records.forEach((r, i) => {
    const at = i * trailerEntryBytes;
    checkRecordFields(r, 'encode trailer');
    r.id.copy(entries, at);
    entries.writeBigUInt64LE(BigInt(r.offset), at + 32);
    entries.writeUInt32LE(r.rawBytes, at + 40);
    entries.writeUInt32LE(r.storedBytes, at + 44);
    entries.writeUInt8(r.codec, at + 48);
    entries.writeBigUInt64LE(r.storedXxh64, at + 56);
  });
  const footer = Buffer.alloc(packFooterBytes);
  footer.writeUInt32LE(records.length, 0);
  footer.writeBigUInt64LE(xxh64(entries), 8);
  footer.writeBigUInt64LE(BigInt(entries.length + packFooterBytes), 16);
  packFooterMagic.copy(footer, 24);
  return Buffer.concat([entries, footer]);
}

/** Reads the footer (last 32 bytes of a sealed pack): how many trailer bytes precede it. */
export function decodeFooter(bytes: Uint8Array, packBytes: number, what: string): { count: number; trailerBytes: number; entriesXxh64: bigint } {
  needBytes(bytes, packFooterBytes, what);
  checkMagic(bytes, 24, packFooterMagic, `${what} footer`);
  const b = asBuffer(bytes);
  const count = b.readUInt32LE(0);
  const trailerBytes = Number(b.readBigUInt64LE(16));
  if (count > packRecordsMax || trailerBytes !== count * trailerEntryBytes + packFooterBytes ||
      trailerBytes + packHeaderBytes > packBytes) {
    throw new BlockvaultError('CORRUPT', `${what}: footer out of range (count ${count}, trailer ${trailerBytes} bytes)`);
  }
  return { count, trailerBytes, entriesXxh64: b.readBigUInt64LE(8) };
}

export function decodeTrailerEntries(entries: Uint8Array, count: number, entriesXxh64: bigint, packBytes: number, what: string): PackRecord[] {
  needBytes(entries, count * trailerEntryBytes, what);
  const b = asBuffer(entries);
  if (xxh64(b.subarray(0, count * trailerEntryBytes)) !== entriesXxh64) {
    throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: trailer checksum mismatch`);
  }
  const records: PackRecord[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * trailerEntryBytes;
    const record: PackRecord = {
      id: Buffer.from(b.subarray(at, at + 32)),
      offset: Number(b.readBigUInt64LE(at + 32)),
      rawBytes: b.readUInt32LE(at + 40),
      storedBytes: b.readUInt32LE(at + 44),
      codec: b.readUInt8(at + 48) as Codec,
      storedXxh64: b.readBigUInt64LE(at + 56),
    };
    checkRecordFields(record, `${what} trailer entry ${i}`);
    if (record.offset < packHeaderBytes || record.offset + recordHeaderBytes + record.storedBytes > packBytes) {
      throw new BlockvaultError('CORRUPT', `${what}: trailer entry ${i} points outside the pack`);
    }
    records.push(record);
  }
  return records;
}
