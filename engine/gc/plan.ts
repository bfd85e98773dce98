// gc's plan, from the mark (pure): a pack with no live record is deleted; a
// pack whose live share of stored bytes is below repackBelow has its live
// records copied into new packs and is then deleted; any other pack stays.
import type { PackMarks } from './mark.js';

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

export function planGc(packs: ReadonlyMap<string, PackMarks>, repackBelow: number): GcPlan {
  const plan: GcPlan = { drop: [], repack: [], packsKept: 0, bytesDropped: 0, bytesRepacked: 0, bytesToCopy: 0, bytesDeadKept: 0 };
  for (const [id, p] of [...packs].sort(([a], [b]) => a.localeCompare(b))) {
    if (p.liveRecords === 0) {
      plan.drop.push(id);
      plan.bytesDropped += p.bytes;
    } else if (p.storedBytes > 0 && p.liveStoredBytes / p.storedBytes < repackBelow) {
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
