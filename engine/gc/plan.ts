// gc's plan, from the mark (pure): a pack with no live record is deleted;
// some partly live packs have their live records copied into new packs and
// are then deleted; any other pack stays. Which are repacked:
//  - { below }: every pack whose live share of stored bytes is below it;
//  - { maxUnused }: the emptiest packs first, until the dead bytes left in
//    packs that stay are at most that share of what stays (restic's
//    --max-unused): scattered overwrites of VM disks leave most packs
//    partly dead, and this frees the most for the least copying.
import type { PackMarks } from './mark.js';

export type RepackPolicy = { below: number } | { maxUnused: number };

export interface GcPlan {
  /** Packs with nothing live. */
  drop: string[];
  /** Packs mostly dead: live records to be copied, then the pack deleted. */
  repack: string[];
  packsKept: number;
  /** Whole pack files that go, and the stored bytes of live records the repack copies. */
  bytesDropped: number;
  bytesRepacked: number;
  bytesToCopy: number;
  /** Stored bytes no restore point needs, in the packs that stay. */
  bytesDeadKept: number;
}

export function planGc(packs: ReadonlyMap<string, PackMarks>, policy: RepackPolicy): GcPlan {
  const plan: GcPlan = { drop: [], repack: [], packsKept: 0, bytesDropped: 0, bytesRepacked: 0, bytesToCopy: 0, bytesDeadKept: 0 };
  const partly: Array<[string, PackMarks]> = [];
  for (const [id, p] of [...packs].sort(([a], [b]) => a.localeCompare(b))) {
    if (p.liveRecords > 0) partly.push([id, p]);
    else {
      plan.drop.push(id);
      plan.bytesDropped += p.bytes;
    }
  }
  const share = (p: PackMarks) => (p.storedBytes > 0 ? p.liveStoredBytes / p.storedBytes : 1);
  const repack = new Set<string>();
  if ('below' in policy) {
    for (const [id, p] of partly) if (share(p) < policy.below) repack.add(id);
  } else {
    let dead = partly.reduce((a, [, p]) => a + p.storedBytes - p.liveStoredBytes, 0);
    let staying = partly.reduce((a, [, p]) => a + p.storedBytes, 0);
    for (const [id, p] of [...partly].sort(([a, x], [b, y]) => share(x) - share(y) || a.localeCompare(b))) {
      if (dead <= policy.maxUnused * staying || share(p) >= 1) break;
      repack.add(id);
      dead -= p.storedBytes - p.liveStoredBytes;
      staying -= p.storedBytes - p.liveStoredBytes; // its live bytes stay, in the copy
    }
  }
  for (const [id, p] of partly) {
    if (repack.has(id)) {
      plan.repack.push(id);
      plan.bytesRepacked += p.bytes;
      plan.bytesToCopy += p.liveStoredBytes;
    } else {
      plan.packsKept += 1;
      plan.bytesDeadKept += p.storedBytes - p.liveStoredBytes;
    }
  }
  return plan;
}
