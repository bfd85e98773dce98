// Which chunker made a repository's (or a restore point's) chunks, as the
// config and point headers record it, and a scanner for it. Pure.
//   fixed:        chunk i covers bytes i * chunkBytes onward (positional maps)
//   aligned-cdc:  content-defined cuts on 4 KiB block boundaries (disks)
//   cdc:          FastCDC, cuts at any byte (unaligned streams and images)
import { BlockvaultError } from '../core/errors.js';
import { exactBytes } from '../core/human.js';
import { AlignedCdcScanner, checkAlignedBounds } from './aligned-cdc.js';
import { checkFastCdcBounds, FastCdcScanner, type CdcBounds, type CdcScanner } from './fastcdc.js';

export const chunkerKinds = ['fixed', 'aligned-cdc', 'cdc'] as const;
export type ChunkerKind = (typeof chunkerKinds)[number];
export type CdcKind = Exclude<ChunkerKind, 'fixed'>;
export type ChunkerSpec = { kind: 'fixed' } | ({ kind: CdcKind } & CdcBounds);

/** Smallest minimum chunk a repository takes (a map leaf bounds its chunks at one per 4 KiB). */
export const cdcChunkBytesMin = 4096;

export const fixedChunker: ChunkerSpec = { kind: 'fixed' };

/** A CLI or config value: one of the kinds, by name. */
export function parseChunkerKind(text: string, what: string): ChunkerKind {
  if ((chunkerKinds as readonly string[]).includes(text)) return text as ChunkerKind;
  throw new BlockvaultError('USAGE', `${what} ${JSON.stringify(text)}: expected one of ${chunkerKinds.join(', ')}`);
}

/**
 * Bounds from an average, unless given: minimum a quarter, maximum four
 * times (docs/BENCHMARKS.md "Content-defined chunking" measured the spread).
 */
export function cdcBounds(avgBytes: number, minBytes?: number, maxBytes?: number): CdcBounds {
  return { minBytes: minBytes ?? avgBytes / 4, avgBytes, maxBytes: maxBytes ?? avgBytes * 4 };
}

/** Refuses bounds the chunker cannot honour, naming the values. */
export function checkChunker(spec: ChunkerSpec, what: string): void {
  if (spec.kind === 'fixed') return;
  if (!(chunkerKinds as readonly string[]).includes(spec.kind)) throw new BlockvaultError('CORRUPT', `${what}: unknown chunker ${JSON.stringify(spec.kind)}`);
  try {
    if (spec.kind === 'aligned-cdc') checkAlignedBounds(spec);
    else checkFastCdcBounds(spec);
    // A map leaf lists at most one chunk per 4 KiB of the disk it covers (map-format.ts).
    if (spec.minBytes < cdcChunkBytesMin) throw new BlockvaultError('BAD_INPUT', `the smallest chunk, ${spec.minBytes} bytes, is below ${cdcChunkBytesMin} bytes (the map's bound)`);
  } catch (err) {
    if (err instanceof BlockvaultError) throw new BlockvaultError('BAD_INPUT', `${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The chunker's state machine (the native scanners have the same cuts; see chunking/native-scanners.ts). */
export function tsScanner(spec: ChunkerSpec, startBytes = 0): CdcScanner {
  if (spec.kind === 'aligned-cdc') return new AlignedCdcScanner(spec, startBytes);
  if (spec.kind === 'cdc') return new FastCdcScanner(spec);
  throw new Error('a fixed chunker has no scanner');
}

export function sameChunker(a: ChunkerSpec, b: ChunkerSpec): boolean {
  if (a.kind === 'fixed' || b.kind === 'fixed') return a.kind === b.kind;
  return a.kind === b.kind && a.minBytes === b.minBytes && a.avgBytes === b.avgBytes && a.maxBytes === b.maxBytes;
}

/** "aligned-cdc (min 16 KiB, average 64 KiB, max 256 KiB)", "fixed 64 KiB". */
export function describeChunker(spec: ChunkerSpec, chunkBytes: number): string {
  if (spec.kind === 'fixed') return `fixed ${exactBytes(chunkBytes)}`;
  return `${spec.kind} (min ${exactBytes(spec.minBytes)}, average ${exactBytes(spec.avgBytes)}, max ${exactBytes(spec.maxBytes)})`;
}

/**
 * The chunker one backup cuts with: the repository's, or the other
 * content-defined kind with the same bounds (an OVA stream beside disks).
 * Fixed and content-defined chunks do not mix in one repository: the
 * chunk size and cache slots are the repository's.
 */
export function backupChunker(repo: ChunkerSpec, kindArg: string | undefined): ChunkerSpec {
  if (kindArg === undefined) return repo;
  const kind = parseChunkerKind(kindArg, '--chunker');
  if (kind === repo.kind) return repo;
  if (repo.kind === 'fixed' || kind === 'fixed') {
    throw new BlockvaultError('BAD_INPUT', `--chunker ${kind}: this repository cuts ${repo.kind === 'fixed' ? 'fixed-size' : `${repo.kind}`} chunks; fixed and content-defined chunks do not mix in one repository (make another with blockvault init --chunker ${kind})`);
  }
  const spec: ChunkerSpec = { ...repo, kind };
  checkChunker(spec, `--chunker ${kind} with the repository's bounds`);
  return spec;
}
