// Index object codec (docs/FORMAT.md "Index objects"). Pure: bytes in,
// bytes out. An index object lists, for some sealed packs, every record the
// pack holds (the same 64-byte entries as the pack's trailer), so a reader
// learns thousands of packs from one object instead of each pack's trailer.
//
//   header (16) | per pack: pack header (40) + entries (64 each) | XXH64 (8)
import { BlockvaultError } from '../core/errors.js';
import { xxh64 } from '../core/digest.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';
import { decodeFooter, decodeTrailerEntries, encodeTrailer, packFooterBytes, packIdBytes, trailerEntryBytes, type PackRecord } from './pack-format.js';

export const indexObjectMagic = Buffer.from('BVINDEX\x01', 'latin1'); // format version 1 of index objects
const headerBytes = 16;
const packHeaderBytes = 40;
const footerBytes = 8;
/** Packs in one index object. */
export const indexObjectPacksMax = 4096;
/** Records in one index object: bounds what a reader allocates (64 MiB of entries). */
export const indexObjectRecordsMax = 1 << 20;
export const indexObjectBytesMax = headerBytes + indexObjectPacksMax * packHeaderBytes + indexObjectRecordsMax * trailerEntryBytes + footerBytes;

export interface IndexedPack { packId: string; packBytes: number; records: PackRecord[] }

export function encodeIndexObject(packs: readonly IndexedPack[]): Buffer {
  return encodeIndexObjectFromTrailers(packs.map((p) => ({ packId: p.packId, packBytes: p.packBytes, trailer: encodeTrailer(p.records) })));
}

/** A sealed pack as its writer keeps it until an index object names it: its encoded trailer, no per-record objects. */
export interface SealedPack { packId: string; packBytes: number; trailer: Buffer }

/** The same object from the packs' encoded trailers (entries, then the footer with their count and XXH64). */
export function encodeIndexObjectFromTrailers(packs: readonly SealedPack[]): Buffer {
  const counts = packs.map((p) => p.trailer.readUInt32LE(p.trailer.length - packFooterBytes));
  const records = counts.reduce((a, n) => a + n, 0);
  if (packs.length > indexObjectPacksMax || records > indexObjectRecordsMax) {
    throw new BlockvaultError('BAD_INPUT', `index object: ${packs.length} packs / ${records} records exceed ${indexObjectPacksMax} / ${indexObjectRecordsMax}`);
  }
  const header = Buffer.alloc(headerBytes);
  indexObjectMagic.copy(header, 0);
  header.writeUInt32LE(packs.length, 8);
  const parts: Buffer[] = [header];
  packs.forEach((p, i) => {
    const footer = p.trailer.length - packFooterBytes;
    const ph = Buffer.alloc(packHeaderBytes);
    ph.write(p.packId, 0, packIdBytes, 'hex');
    ph.writeBigUInt64LE(BigInt(p.packBytes), 16);
    ph.writeUInt32LE(counts[i], 24);
    ph.writeBigUInt64LE(p.trailer.readBigUInt64LE(footer + 8), 32);
    parts.push(ph, p.trailer.subarray(0, footer));
  });
  const body = Buffer.concat(parts);
  const sum = Buffer.alloc(footerBytes);
  sum.writeBigUInt64LE(xxh64(body), 0);
  return Buffer.concat([body, sum]);
}

export function decodeIndexObject(bytes: Uint8Array, what: string): IndexedPack[] {
  return indexObjectSections(bytes, what).map((p) => ({
    packId: p.packId, packBytes: p.packBytes, records: decodeTrailerEntries(p.entries, p.records, p.entriesXxh64, p.packBytes, `${what} pack ${p.packId}`),
  }));
}

/** One pack's part of an index object: its entries still encoded (64 bytes each, as in a trailer). */
export interface IndexObjectSection { packId: string; packBytes: number; records: number; entriesXxh64: bigint; entries: Buffer }

/**
 * An index object's packs, checked (magic, the whole-object XXH64, every
 * range), with each pack's entries left encoded: a reader that needs only a
 * field or two of each (gc's record table) checks their XXH64 itself
 * (checkSectionEntries) and makes no object per record.
 */
export function indexObjectSections(bytes: Uint8Array, what: string): IndexObjectSection[] {
  const b = asBuffer(bytes);
  needBytes(b, headerBytes + footerBytes, what);
  checkMagic(b, 0, indexObjectMagic, what);
  if (xxh64(b.subarray(0, b.length - footerBytes)) !== b.readBigUInt64LE(b.length - footerBytes)) {
    throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: index object checksum mismatch (truncated or damaged)`);
  }
  const count = b.readUInt32LE(8);
  if (count > indexObjectPacksMax) throw new BlockvaultError('CORRUPT', `${what}: ${count} packs exceed ${indexObjectPacksMax}`);
  const packs: IndexObjectSection[] = [];
  let at = headerBytes;
  for (let i = 0; i < count; i++) {
    needBytes(b.subarray(at), packHeaderBytes + footerBytes, `${what} pack ${i}`);
    const packId = b.toString('hex', at, at + packIdBytes);
    const packBytes = Number(b.readBigUInt64LE(at + 16));
    const records = b.readUInt32LE(at + 24);
    const entriesXxh64 = b.readBigUInt64LE(at + 32);
    // The footer's range checks (count, trailer length against the pack's size) apply here too.
    const footer = Buffer.alloc(packFooterBytes);
    footer.writeUInt32LE(records, 0);
    footer.writeBigUInt64LE(BigInt(records * trailerEntryBytes + packFooterBytes), 16);
    footer.write('BVPKEND1', 24, 'latin1');
    decodeFooter(footer, packBytes, `${what} pack ${packId}`);
    at += packHeaderBytes;
    const end = at + records * trailerEntryBytes;
    if (end > b.length - footerBytes) throw new BlockvaultError('CORRUPT', `${what}: pack ${packId} runs past the end of the object`);
    packs.push({ packId, packBytes, records, entriesXxh64, entries: b.subarray(at, end) });
    at = end;
  }
  if (at !== b.length - footerBytes) throw new BlockvaultError('CORRUPT', `${what}: ${b.length - footerBytes - at} bytes after the last pack`);
  return packs;
}

/** A section's entries against their XXH64. */
export function checkSectionEntries(section: IndexObjectSection, what: string): void {
  if (xxh64(section.entries) !== section.entriesXxh64) throw new BlockvaultError('CHECKSUM_MISMATCH', `${what} pack ${section.packId}: trailer checksum mismatch`);
}
