// Changed-extents files, the shape of VMware's QueryChangedDiskAreas:
// [{"start": N, "length": N}, ...] or {"changedArea": [...]}. Parsed and
// validated strictly: a wrong list silently loses data in every later backup.
import { createHash } from 'node:crypto';
import { BlockvaultError } from '../core/errors.js';

export interface ByteExtent { start: number; length: number }

const extentsCountMax = 16 * 1024 * 1024;

export function parseExtents(text: string, file: string, diskBytes: number): { extents: ByteExtent[]; sha256: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BlockvaultError('BAD_INPUT', `${file}: not valid JSON (${(err as Error).message})`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { changedArea?: unknown })?.changedArea;
  if (!Array.isArray(list)) throw new BlockvaultError('BAD_INPUT', `${file}: expected an array of {"start", "length"} (or {"changedArea": [...]})`);
  if (list.length > extentsCountMax) throw new BlockvaultError('BAD_INPUT', `${file}: ${list.length} extents is more than the limit of ${extentsCountMax}`);
  const extents: ByteExtent[] = [];
  let end = 0;
  list.forEach((item, i) => {
    const { start, length } = (item ?? {}) as { start?: unknown; length?: unknown };
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || (start as number) < 0 || (length as number) <= 0) {
      throw new BlockvaultError('BAD_INPUT', `${file}: extent ${i} must have integer "start" >= 0 and "length" > 0 (got ${JSON.stringify(item)})`);
    }
    const s = start as number;
    const l = length as number;
    if (i > 0 && s < end) {
      throw new BlockvaultError('BAD_INPUT', `${file}: extent ${i} (start ${s}) overlaps or precedes extent ${i - 1} (ends at ${end}); extents must be sorted and disjoint`);
    }
    if (s + l > diskBytes) throw new BlockvaultError('BAD_INPUT', `${file}: extent ${i} (${s}+${l}) runs past the end of the disk (${diskBytes} bytes)`);
    extents.push({ start: s, length: l });
    end = s + l;
  });
  return { extents, sha256: createHash('sha256').update(text).digest('hex') };
}

/** Rounds byte extents out to whole chunks: sorted, merged [firstChunk, endChunk) ranges. */
export function chunkRanges(extents: readonly ByteExtent[], chunkBytes: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const e of extents) {
    const first = Math.floor(e.start / chunkBytes);
    const end = Math.ceil((e.start + e.length) / chunkBytes);
    const last = ranges[ranges.length - 1];
    if (last && first <= last[1]) last[1] = Math.max(last[1], end);
    else ranges.push([first, end]);
  }
  return ranges;
}
