// FastCDC (Xia et al., 2016) for unaligned streams: a gear hash over the
// bytes after each chunk's minimum, normalized chunking (a stricter mask
// before the average size, a looser one after), a cut forced at the maximum.
// A chunk ends after the byte whose hash matches. The scanner keeps its state
// (hash, bytes into the chunk) across push() calls, so a stream cut into any
// pieces cuts exactly like one big buffer. Pure: bytes in, chunk lengths out.
import { BlockvaultError } from '../core/errors.js';
import { chunkBytesMax } from '../core/limits.js';
import { gearTable, log2Exact, spreadMask } from './gear.js';

/** The table as int32s: the hot loop stays in 32-bit integer arithmetic. */
const gearInt32 = new Int32Array(gearTable.buffer);

export interface CdcBounds { minBytes: number; avgBytes: number; maxBytes: number }

/** How many bits stricter (before the average) and looser (after) the normalized masks are. */
export const normalizationBits = 2;
export const fastCdcBytesMin = 256;

export function checkFastCdcBounds(b: CdcBounds): void {
  const bits = log2Exact(b.avgBytes);
  if (bits === null || bits < 8 || bits > 22) throw new BlockvaultError('BAD_INPUT', `FastCDC average chunk size ${b.avgBytes}: a power of two from 256 bytes to 4 MiB`);
  if (!(Number.isInteger(b.minBytes) && Number.isInteger(b.maxBytes) && fastCdcBytesMin <= b.minBytes && b.minBytes < b.avgBytes && b.avgBytes < b.maxBytes && b.maxBytes <= chunkBytesMax)) {
    throw new BlockvaultError('BAD_INPUT', `FastCDC chunk sizes min ${b.minBytes}, average ${b.avgBytes}, max ${b.maxBytes}: need ${fastCdcBytesMin} <= min < average < max <= ${chunkBytesMax}`);
  }
}

export class FastCdcScanner implements CdcScanner {
  protected hash = 0;
  /** Bytes of the current chunk seen so far. */
  protected length = 0;
  protected readonly maskStrict: number;
  protected readonly maskLoose: number;

  constructor(protected readonly bounds: CdcBounds) {
    checkFastCdcBounds(bounds);
    const bits = log2Exact(bounds.avgBytes)!;
    this.maskStrict = spreadMask(bits + normalizationBits);
    this.maskLoose = spreadMask(bits - normalizationBits);
  }

  /** Scans the stream's next bytes; returns the lengths of the chunks that end in them, in order. */
  push(data: Uint8Array): number[] {
    const { minBytes, avgBytes, maxBytes } = this.bounds;
    const cuts: number[] = [];
    const gear = gearInt32;
    let hash = this.hash;
    let length = this.length;
    let i = 0;
    const n = data.length;
    while (i < n) {
      if (length < minBytes) {
        // Sub-minimum bytes are never hashed: skip them whole.
        const skip = Math.min(minBytes - length, n - i);
        length += skip;
        i += skip;
        continue;
      }
      // Up to the average the strict mask applies, then the loose one up to the maximum.
      const strict = length < avgBytes;
      const mask = strict ? this.maskStrict | 0 : this.maskLoose | 0;
      const limit = Math.min(n, i + (strict ? avgBytes : maxBytes) - length);
      const from = i;
      let matched = false;
      while (i < limit) {
        hash = ((hash << 1) + gear[data[i]]) | 0;
        i += 1;
        if ((hash & mask) === 0) { matched = true; break; }
      }
      length += i - from;
      if (matched || length >= maxBytes) {
        cuts.push(length);
        hash = 0;
        length = 0;
      }
    }
    this.hash = hash;
    this.length = length;
    return cuts;
  }

  /** The stream's last chunk (shorter than a cut would have made it), or 0. */
  finish(): number {
    const last = this.length;
    this.hash = 0;
    this.length = 0;
    return last;
  }
}

/** A streaming chunker: what both scanners offer. */
export interface CdcScanner { push(data: Uint8Array): number[]; finish(): number }

/** Chunk lengths of one whole buffer. */
export function chunksOf(scanner: CdcScanner, data: Uint8Array): number[] {
  const cuts = scanner.push(data);
  const last = scanner.finish();
  return last > 0 ? [...cuts, last] : cuts;
}

export function fastCdcChunks(data: Uint8Array, bounds: CdcBounds): number[] {
  return chunksOf(new FastCdcScanner(bounds), data);
}
