// Group object codec (docs/FORMAT.md "Group objects"). Pure. A VM restore
// point of several disks: which restore point holds each disk. Written after
// every one of those points, so a group exists whole or not at all.
//
//   magic (8) | u32 JSON length | JSON | XXH64 of everything before it (8)
import { BlockvaultError } from '../core/errors.js';
import { xxh64 } from '../core/digest.js';
import { asBuffer, checkMagic, needBytes } from './binary.js';

export const groupMagic = Buffer.from('BVGROUP\x01', 'latin1'); // version 1 of group objects
export const groupBytesMax = 64 * 1024;
/** Disks in one VM restore point. */
export const groupDisksMax = 64;

export interface GroupDisk { disk: string; point: string }
export interface GroupHeader { id: string; vm: string; time: string; disks: GroupDisk[] }

function check(g: GroupHeader, what: string): void {
  const ok = typeof g?.id === 'string' && /^[0-9a-f]{32}$/.test(g.id) && typeof g.vm === 'string' && typeof g.time === 'string' &&
    Array.isArray(g.disks) && g.disks.length >= 1 && g.disks.length <= groupDisksMax &&
    g.disks.every((d) => typeof d?.disk === 'string' && typeof d.point === 'string' && /^[0-9a-f]{32}$/.test(d.point)) &&
    new Set(g.disks.map((d) => d.disk)).size === g.disks.length;
  if (!ok) throw new BlockvaultError('CORRUPT', `${what}: group fields out of range`);
}

export function encodeGroup(g: GroupHeader): Buffer {
  check(g, 'encode group');
  const json = Buffer.from(JSON.stringify(g));
  const head = Buffer.alloc(12);
  groupMagic.copy(head, 0);
  head.writeUInt32LE(json.length, 8);
  const body = Buffer.concat([head, json]);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64LE(xxh64(body), 0);
  return Buffer.concat([body, sum]);
}

export function decodeGroup(bytes: Uint8Array, what: string): GroupHeader {
  const b = asBuffer(bytes);
  needBytes(b, 20, what);
  checkMagic(b, 0, groupMagic, what);
  const n = b.readUInt32LE(8);
  if (n > groupBytesMax || b.length !== 12 + n + 8) throw new BlockvaultError('CORRUPT', `${what}: group length out of range`);
  if (xxh64(b.subarray(0, 12 + n)) !== b.readBigUInt64LE(12 + n)) throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: group checksum mismatch`);
  let g: GroupHeader;
  try {
    g = JSON.parse(b.toString('utf8', 12, 12 + n)) as GroupHeader;
  } catch {
    throw new BlockvaultError('CORRUPT', `${what}: group JSON does not parse`);
  }
  check(g, what);
  return g;
}
