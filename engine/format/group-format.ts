// Group object codec (docs/FORMAT.md "Group objects"). Pure. A VM restore
// point of several disks: which restore point holds each disk. Written after
// every one of those points, so a group exists whole or not at all.
//
//   magic (8) | u32 JSON length | JSON | XXH64 of everything before it (8)
import { BlockvaultError } from '../core/errors.js';
import { decodeJsonEnvelope, encodeJsonEnvelope } from './json-envelope.js';

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
  return encodeJsonEnvelope(groupMagic, g, groupBytesMax, 'group');
}

export function decodeGroup(bytes: Uint8Array, what: string): GroupHeader {
  const g = decodeJsonEnvelope(bytes, groupMagic, groupBytesMax, 'group', what) as GroupHeader;
  check(g, what);
  return g;
}
