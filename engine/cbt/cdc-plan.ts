// Changed-block tracking on variable-length chunks: which regions an
// increment re-chunks (each from the start of the first parent chunk its
// changed bytes touch; the backup then reads on until its cuts fall back in
// step with the parent's, see backup/cdc-batches.ts), and --cbt-check's
// sample of the parent's chunks outside them.
import { chunkIdBytes, isAllZero, sha256, zeroChunkId } from '../core/digest.js';
import type { CdcRegion } from '../backup/cdc-batches.js';
import type { CdcMap } from '../repo/cdc-map.js';
import type { Source } from '../source/source.js';
import type { ByteExtent } from './extents-file.js';

/** Regions to re-chunk, ascending and apart: each changed extent from its parent chunk's start. */
export async function cdcRegions(parent: CdcMap, extents: readonly ByteExtent[]): Promise<CdcRegion[]> {
  const sorted = extents.filter((e) => e.length > 0).sort((a, b) => a.start - b.start);
  const regions: CdcRegion[] = [];
  for (const e of sorted) {
    const end = Math.min(parent.sizeBytes, e.start + e.length);
    const last = regions.at(-1);
    if (last && e.start <= last.end) {
      last.end = Math.max(last.end, end);
      continue;
    }
    // The cut before a block may depend on that block (aligned-cdc ends a zero chunk before data): start
    // from the parent chunk holding the block before the extent, whose cut no changed byte decided.
    const before = Math.max(0, e.start - 4096);
    const start = (await parent.chunksIn(before, before + 1)).offsets[0];
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else regions.push({ start, end });
  }
  return regions;
}

function overlaps(regions: readonly CdcRegion[], start: number, end: number): boolean {
  let lo = 0;
  let hi = regions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (regions[mid].end <= start) lo = mid + 1;
    else if (regions[mid].start >= end) hi = mid - 1;
    else return true;
  }
  return false;
}

/**
 * Re-reads a share of the parent's chunks that no region touches and
 * compares them with the parent, one leaf at a time (memory stays flat).
 */
export async function cdcCbtCheck(source: Source, parent: CdcMap, regions: readonly CdcRegion[], percent: number) {
  const share = Math.min(percent, 100) / 100;
  let sampled = 0;
  let mismatched = 0;
  let firstOffset: number | null = null;
  let buffer = Buffer.alloc(0);
  for await (const leaf of parent.leaves()) {
    const { starts, lengths, ids } = leaf.view;
    for (let k = 0; k < starts.length; k++) {
      if (overlaps(regions, starts[k], starts[k] + lengths[k]) || (share < 1 && Math.random() >= share)) continue;
      if (buffer.length < lengths[k]) buffer = Buffer.alloc(lengths[k]);
      const bytes = buffer.subarray(0, lengths[k]);
      await source.read(bytes, starts[k]);
      const id = isAllZero(bytes) ? zeroChunkId : sha256(bytes);
      sampled += 1;
      if (!id.equals(ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes))) {
        mismatched += 1;
        firstOffset ??= starts[k];
      }
    }
  }
  return { percent, sampled, mismatched, firstOffset };
}
