// Pending-gc object codec (docs/FORMAT.md "Garbage collection"). Pure.
// `gc/<gc id>.gc`: what one gc condemned and the restore points its mark
// covered. It exists from the moment the gc condemns packs until it has
// deleted them (or a forget cancels it), so a gc that stops part way is
// finished by the next one.
//
//   magic (8) | u32 JSON length | JSON | XXH64 of everything before it (8)
import { BlockvaultError } from '../core/errors.js';
import { decodeJsonEnvelope, encodeJsonEnvelope, envelopeBytes } from './json-envelope.js';

export const pendingGcMagic = Buffer.from('BVGCPND\x01', 'latin1'); // version 1 of pending-gc objects
/** 64 MiB: the ids of about a million restore points and a million packs. */
export const pendingGcBytesMax = 64 * 1024 * 1024;

export interface PendingGc {
  /** The gc's session id. */
  id: string;
  started: string;
  /** Restore point ids the mark walked (sorted): any other point was written since, and is walked again before the sweep. */
  marked: string[];
  /** Packs to delete (sorted): no record of them was live at the mark, or their live records were copied elsewhere. */
  condemned: string[];
}

const hex32 = /^[0-9a-f]{32}$/;

function check(g: PendingGc, what: string): void {
  const ok = typeof g?.id === 'string' && /^[0-9a-z]+-[0-9a-f]+$/.test(g.id) && typeof g.started === 'string' &&
    Array.isArray(g.marked) && g.marked.every((p) => typeof p === 'string' && hex32.test(p)) &&
    Array.isArray(g.condemned) && g.condemned.every((p) => typeof p === 'string' && hex32.test(p));
  if (!ok) throw new BlockvaultError('CORRUPT', `${what}: pending-gc fields out of range`);
}

export function encodePendingGc(g: PendingGc): Buffer {
  check(g, 'encode pending gc');
  return encodeJsonEnvelope(pendingGcMagic, g, pendingGcBytesMax - envelopeBytes, 'pending-gc');
}

export function decodePendingGc(bytes: Uint8Array, what: string): PendingGc {
  const g = decodeJsonEnvelope(bytes, pendingGcMagic, pendingGcBytesMax - envelopeBytes, 'pending-gc', what) as PendingGc;
  check(g, what);
  return g;
}
