// The envelope of the small JSON objects (group objects, pending-gc objects):
//   magic (8) | u32 JSON length | JSON | XXH64 of everything before it (8)
// Pure. Each kind names itself in messages ("group", "pending-gc").
import { BlockvaultError } from '../core/errors.js';
import { xxh64 } from '../core/digest.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';

/** Bytes of the envelope around the JSON: magic, length, checksum. */
export const envelopeBytes = 20;

export function encodeJsonEnvelope(magic: Buffer, value: unknown, jsonBytesMax: number, kind: string): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  if (json.length > jsonBytesMax) throw new BlockvaultError('USAGE', `a ${kind} object of ${json.length} bytes is over the ${jsonBytesMax}-byte limit`);
  const head = Buffer.alloc(12);
  magic.copy(head, 0);
  head.writeUInt32LE(json.length, 8);
  const body = Buffer.concat([head, json]);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64LE(xxh64(body), 0);
  return Buffer.concat([body, sum]);
}

/** The JSON value inside, every byte checked; its fields are the caller's to check. */
export function decodeJsonEnvelope(bytes: Uint8Array, magic: Buffer, jsonBytesMax: number, kind: string, what: string): unknown {
  const b = asBuffer(bytes);
  needBytes(b, envelopeBytes, what);
  checkMagic(b, 0, magic, what);
  const n = b.readUInt32LE(8);
  if (n > jsonBytesMax || b.length !== 12 + n + 8) throw new BlockvaultError('CORRUPT', `${what}: ${kind} length out of range`);
  if (xxh64(b.subarray(0, 12 + n)) !== b.readBigUInt64LE(12 + n)) throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: ${kind} checksum mismatch`);
  try {
    return JSON.parse(b.toString('utf8', 12, 12 + n)) as unknown;
  } catch {
    throw new BlockvaultError('CORRUPT', `${what}: ${kind} JSON does not parse`);
  }
}
