// Group object codec (docs/FORMAT.md "Group objects"). Pure. A VM restore
// point of several disks: which restore point holds each disk. Written after
// every one of those points, so a group exists whole or not at all.
//
//   magic (8) | u32 JSON length | JSON | XXH64 of everything before it (8)
import { BlockvaultError } from '../core/errors.js';
import { decodeJsonEnvelope, encodeJsonEnvelope } from './json-envelope.js';

export const groupMagic = Buffer.from('BVGROUP\x01', 'latin1'); // version 1 of group objects
/** Version 2 (repository format 6): adds the VM's machine description and the point's consistency. */
export const groupMagicV2 = Buffer.from('BVGROUP\x02', 'latin1');
export const groupBytesMaxV1 = 64 * 1024;
/** A libvirt domain XML with many devices fits well within it. */
export const groupBytesMax = 1024 * 1024;
/** Disks in one VM restore point. */
export const groupDisksMax = 64;

export interface GroupDisk { disk: string; point: string }
/** How the disks were frozen: guest filesystems quiesced by the guest agent, or as after a power cut. */
export type Consistency = 'application' | 'crash';
/** The VM's configuration as the hypervisor described it (kind "qemu": QMP; kind "libvirt": the domain XML). */
export interface GroupMachine { kind: 'qemu' | 'libvirt'; [field: string]: unknown }

export interface GroupHeader {
  id: string; vm: string; time: string; disks: GroupDisk[];
  /** Version 2 only, both or neither. */
  machine?: GroupMachine;
  consistency?: Consistency;
}

function check(g: GroupHeader, what: string): void {
  const ok = typeof g?.id === 'string' && /^[0-9a-f]{32}$/.test(g.id) && typeof g.vm === 'string' && typeof g.time === 'string' &&
    Array.isArray(g.disks) && g.disks.length >= 1 && g.disks.length <= groupDisksMax &&
    g.disks.every((d) => typeof d?.disk === 'string' && typeof d.point === 'string' && /^[0-9a-f]{32}$/.test(d.point)) &&
    new Set(g.disks.map((d) => d.disk)).size === g.disks.length;
  if (!ok) throw new BlockvaultError('CORRUPT', `${what}: group fields out of range`);
  const v2 = g.machine !== undefined || g.consistency !== undefined;
  if (v2 && !((g.machine?.kind === 'qemu' || g.machine?.kind === 'libvirt') && (g.consistency === 'application' || g.consistency === 'crash'))) {
    throw new BlockvaultError('CORRUPT', `${what}: group machine or consistency out of range`);
  }
}

/** Version 1 when the group has no machine description (as older blockvaults wrote it), else version 2. */
export function encodeGroup(g: GroupHeader): Buffer {
  check(g, 'encode group');
  if (g.machine) return encodeJsonEnvelope(groupMagicV2, g, groupBytesMax, 'group');
  return encodeJsonEnvelope(groupMagic, g, groupBytesMaxV1, 'group');
}

export function decodeGroup(bytes: Uint8Array, what: string): GroupHeader {
  const v2 = bytes.length >= 8 && Buffer.from(bytes.subarray(0, 8)).equals(groupMagicV2);
  const g = decodeJsonEnvelope(bytes, v2 ? groupMagicV2 : groupMagic, v2 ? groupBytesMax : groupBytesMaxV1, 'group', what) as GroupHeader;
  check(g, what);
  if (!v2 && (g.machine !== undefined || g.consistency !== undefined)) throw new BlockvaultError('CORRUPT', `${what}: a version-1 group with version-2 fields`);
  if (v2 && !g.machine) throw new BlockvaultError('CORRUPT', `${what}: a version-2 group without its machine description`);
  return g;
}
