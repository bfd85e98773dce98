// Decides how a backup reads its source: an increment (only the chunks that
// changed-block tracking names, on top of the parent's map) or a full read,
// and why. Tracking data is only as good as its chain, so any doubt about
// the parent or the tracker means a full read (which still dedups) with the
// reason said out loud; --cbt-check samples "unchanged" chunks to catch a
// stale or buggy tracker before it costs a restore.
import { readFile } from 'node:fs/promises';
import type { IncrementalPlan } from '../backup/backup.js';
import { BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, isAllZero, sha256, zeroChunkId } from '../core/digest.js';
import { mapPageEntries } from '../format/map-format.js';
import { humanBytes } from '../core/human.js';
import type { PointEntry } from '../repo/chunk-index.js';
import type { ChunkMap } from '../repo/chunk-map.js';
import type { Repository } from '../repo/repository.js';
import type { Source } from '../source/source.js';
import { chunkRanges, parseExtents, type ByteExtent } from './extents-file.js';
import { cdcCbtCheck, cdcRegions } from './cdc-plan.js';
import { describeChunker, sameChunker, type ChunkerSpec } from '../chunking/chunker.js';
import { configChunker } from '../format/config-format.js';

/** What an NBD source with a dirty bitmap offers (see nbd/nbd-source.ts). */
export interface BitmapSource extends Source {
  hasBitmap(name: string): boolean;
  dirtyExtents(name: string): Promise<ByteExtent[]>;
}

export interface PlanInput {
  repo: Repository;
  vm: string;
  disk: string;
  source: Source;
  parentRef?: string;
  changedFile?: string;
  bitmap?: { name: string; source: BitmapSource | null; problem?: string };
  cbtCheckPercent?: number;
  cbtFallback?: 'refuse' | 'full';
  /** The chunker this backup cuts with (default: the repository's). */
  chunker?: ChunkerSpec;
}

/** A catalog entry's chunker (the index keeps the point's stats and sizes, not its header). */
function pointChunker(entry: PointEntry): ChunkerSpec {
  return entry.chunker ?? { kind: 'fixed' };
}

export interface Plan { plan?: IncrementalPlan; reason: string; basis: Record<string, unknown> }

export async function planBackup(input: PlanInput): Promise<Plan> {
  const { repo, vm, disk, source } = input;
  const tracking = input.changedFile ? 'extents' : input.bitmap ? 'bitmap' : null;
  if (!tracking) return { reason: 'no change tracking given', basis: {} };
  if (source.sizeBytes === null) throw new BlockvaultError('USAGE', 'changed-block tracking needs a seekable source (an image, device or NBD export), not a stream');

  const parentEntry: PointEntry | undefined = input.parentRef ? repo.points.resolve(`${vm}/${disk}@${input.parentRef}`) : repo.points.list(vm, disk)[0];
  const basis: Record<string, unknown> = { tracking, parent: parentEntry?.id ?? null };
  const full = (why: string): Plan => ({ reason: `${why}: full read`, basis });
  if (!parentEntry) return full(`no earlier restore point of ${vm}/${disk} to build on`);
  const id = parentEntry.id.slice(0, 8);
  if (parentEntry.sizeBytes !== source.sizeBytes) return full(`disk size changed from ${parentEntry.sizeBytes} to ${source.sizeBytes} bytes since ${id}`);
  const chunker = input.chunker ?? configChunker(repo.config);
  const parentChunker = pointChunker(parentEntry);
  if (!sameChunker(chunker, parentChunker) || (chunker.kind === 'fixed' && parentEntry.chunkBytes !== repo.config.chunkBytes)) {
    return full(`parent ${id} was cut by ${describeChunker(parentChunker, parentEntry.chunkBytes)}, this backup cuts ${describeChunker(chunker, repo.config.chunkBytes)}: its chunks cannot be reused in place`);
  }
  const verified = repo.index.verified(parentEntry.id);
  if (verified && !verified.ok) return full(`parent ${id} failed verification at ${verified.time}`);
  let parent;
  try {
    parent = await repo.points.open(parentEntry, { checkMap: true });
  } catch (err) {
    if (!(err instanceof BlockvaultError)) throw err;
    return full(`parent ${id} cannot be trusted (${err.message})`);
  }

  let extents: ByteExtent[];
  if (tracking === 'extents') {
    const file = input.changedFile!;
    const text = await readFile(file, 'utf8').catch((err: Error) => {
      throw new BlockvaultError('BAD_INPUT', `cannot read changed-extents file ${file}: ${err.message}`);
    });
    const parsed = parseExtents(text, file, source.sizeBytes);
    extents = parsed.extents;
    Object.assign(basis, { extentsFile: file, extentsSha256: parsed.sha256 });
  } else {
    const { name, source: bitmapSource } = input.bitmap!;
    basis.bitmap = name;
    if (input.bitmap!.problem) return full(`dirty bitmap "${name}" is not usable (${input.bitmap!.problem})`);
    if (!bitmapSource || !bitmapSource.hasBitmap(name)) {
      return full(`the server did not offer dirty bitmap "${name}" (missing, or inconsistent: qemu-nbd refuses those)`);
    }
    extents = await bitmapSource.dirtyExtents(name);
  }
  const chunkBytes = parent.header.chunkBytes;
  const map = parent.map;
  const ranges = map.kind === 'fixed' ? chunkRanges(extents, chunkBytes) : [];
  const regions = map.kind === 'cdc' ? await cdcRegions(map, extents) : undefined;
  basis.changedBytes = extents.reduce((a, e) => a + e.length, 0);

  if (input.cbtCheckPercent && input.cbtCheckPercent > 0) {
    const check = map.kind === 'fixed'
      ? await cbtCheck(source, map, chunkBytes, ranges, input.cbtCheckPercent)
      : await cdcCbtCheck(source, map, regions!, input.cbtCheckPercent);
    basis.cbtCheck = check;
    if (check.mismatched > 0) {
      const what = `--cbt-check: ${check.mismatched} of ${check.sampled} sampled chunks that the tracker calls unchanged differ from parent ${id} (first at offset ${check.firstOffset})`;
      if (input.cbtFallback === 'full') return full(what);
      throw new BlockvaultError('CBT_MISMATCH', `${what}; the increment was refused and nothing was written (use --cbt-fallback full to read the whole disk instead)`);
    }
  }
  const reason = tracking === 'extents'
    ? `changed extents ${input.changedFile}: ${humanBytes(Number(basis.changedBytes))} changed since ${id}`
    : `dirty bitmap "${input.bitmap!.name}": ${humanBytes(Number(basis.changedBytes))} changed since ${id}`;
  return { plan: { parent, ranges, regions }, reason, basis };
}

function inRanges(chunk: number, ranges: ReadonlyArray<readonly [number, number]>): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (chunk < ranges[mid][0]) hi = mid - 1;
    else if (chunk >= ranges[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * Re-reads a share of the chunks tracking calls unchanged and compares them
 * with the parent. Each such chunk is sampled with probability percent/100,
 * in disk order, one map leaf of parent ids at a time: memory stays flat
 * even at 100% of a 2 TiB disk.
 */
async function cbtCheck(source: Source, parentMap: ChunkMap, chunkBytes: number, ranges: Array<[number, number]>, percent: number) {
  const total = parentMap.chunksTotal;
  const share = Math.min(percent, 100) / 100;
  const size = source.sizeBytes!;
  const buffer = Buffer.alloc(chunkBytes);
  let sampled = 0;
  let mismatched = 0;
  let firstOffset: number | null = null;
  for (let window = 0; window < total; window += mapPageEntries) {
    const end = Math.min(total, window + mapPageEntries);
    const picks: number[] = [];
    for (let c = window; c < end; c++) if (!inRanges(c, ranges) && (share >= 1 || Math.random() < share)) picks.push(c);
    if (picks.length === 0) continue;
    const parentIds = await parentMap.ids(window, end - window);
    for (const c of picks) {
      const length = Math.min(chunkBytes, size - c * chunkBytes);
      const bytes = buffer.subarray(0, length);
      await source.read(bytes, c * chunkBytes);
      const id = isAllZero(bytes) ? zeroChunkId : sha256(bytes);
      if (!id.equals(parentIds.subarray((c - window) * chunkIdBytes, (c - window + 1) * chunkIdBytes))) {
        mismatched += 1;
        firstOffset ??= c * chunkBytes;
      }
    }
    sampled += picks.length;
  }
  return { percent, sampled, mismatched, firstOffset };
}
