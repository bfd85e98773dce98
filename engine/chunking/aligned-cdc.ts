// Block-aligned content-defined chunking for disks. Filesystems place file
// data in 4 KiB blocks, so cuts fall only between blocks, decided by a hash
// of the block just ended: the same files at other block offsets give the
// same chunks, and every chunk stays block-aligned on the disk. Normalized
// like FastCDC (a stricter mask before the average size, a looser one
// after); all-zero blocks never cut (zero runs stay long and cost nothing);
// a cut is forced at the maximum. Streaming: push() whole blocks (only the
// stream's last piece may end in a partial block), in any pieces; the cuts
// are those of one big buffer. Pure: bytes in, chunk lengths out.
import { isAllZero } from '../core/digest.js';
import { BlockvaultError } from '../core/errors.js';
import { chunkBytesMax } from '../core/limits.js';
import { chunksOf, type CdcBounds, type CdcScanner } from './fastcdc.js';
import { log2Exact, spreadMask } from './gear.js';

export const alignBytes = 4096;
const wordsPerBlock = alignBytes / 4;

export function checkAlignedBounds(b: CdcBounds): void {
  const bits = log2Exact(b.avgBytes / alignBytes);
  const aligned = [b.minBytes, b.avgBytes, b.maxBytes].every((n) => Number.isInteger(n) && n % alignBytes === 0);
  if (!aligned || bits === null || bits < 2 || bits > 10) {
    throw new BlockvaultError('BAD_INPUT', `aligned-cdc chunk sizes must be multiples of ${alignBytes} bytes, the average a power of two from 16 KiB to 4 MiB (got min ${b.minBytes}, average ${b.avgBytes}, max ${b.maxBytes})`);
  }
  if (!(alignBytes <= b.minBytes && b.minBytes < b.avgBytes && b.avgBytes < b.maxBytes && b.maxBytes <= chunkBytesMax)) {
    throw new BlockvaultError('BAD_INPUT', `aligned-cdc chunk sizes min ${b.minBytes}, average ${b.avgBytes}, max ${b.maxBytes}: need ${alignBytes} <= min < average < max <= ${chunkBytesMax}`);
  }
}

/** One multiply-rotate step: h = rotl32((h ^ w) * 0x9e3779b1, 13). */
function fold(h: number, w: number): number {
  const x = Math.imul(h ^ w, 0x9e3779b1);
  return (x << 13) | (x >>> 19);
}

/** The whole 32-bit words of `data` (copied when the view is not 4-byte aligned). */
export function wordsOf(data: Uint8Array): Uint32Array {
  const bytes = (data.byteOffset & 3) === 0 ? data : Uint8Array.from(data);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
}

/** Lanes of the block hash: independent multiply-rotate chains over every 8th word, so the work runs in parallel (native: in SIMD lanes). */
const hashLanes = 8;
const laneSeeds = Uint32Array.from({ length: hashLanes }, (_, i) => (0x27d4eb2f + Math.imul(i, 0x9e3779b9)) >>> 0);

/**
 * A 32-bit hash of one 4 KiB block (little-endian 32-bit words): word w goes
 * into lane w mod 8 as h = rotl32((h ^ w) * 0x9e3779b1, 13); the lanes are
 * folded in order the same way, then avalanched (murmur3's finalizer).
 */
export function blockHash(words: Uint32Array, at: number): number {
  let h0 = laneSeeds[0], h1 = laneSeeds[1], h2 = laneSeeds[2], h3 = laneSeeds[3];
  let h4 = laneSeeds[4], h5 = laneSeeds[5], h6 = laneSeeds[6], h7 = laneSeeds[7];
  for (let w = at; w < at + wordsPerBlock; w += hashLanes) {
    h0 = Math.imul(h0 ^ words[w], 0x9e3779b1); h0 = (h0 << 13) | (h0 >>> 19);
    h1 = Math.imul(h1 ^ words[w + 1], 0x9e3779b1); h1 = (h1 << 13) | (h1 >>> 19);
    h2 = Math.imul(h2 ^ words[w + 2], 0x9e3779b1); h2 = (h2 << 13) | (h2 >>> 19);
    h3 = Math.imul(h3 ^ words[w + 3], 0x9e3779b1); h3 = (h3 << 13) | (h3 >>> 19);
    h4 = Math.imul(h4 ^ words[w + 4], 0x9e3779b1); h4 = (h4 << 13) | (h4 >>> 19);
    h5 = Math.imul(h5 ^ words[w + 5], 0x9e3779b1); h5 = (h5 << 13) | (h5 >>> 19);
    h6 = Math.imul(h6 ^ words[w + 6], 0x9e3779b1); h6 = (h6 << 13) | (h6 >>> 19);
    h7 = Math.imul(h7 ^ words[w + 7], 0x9e3779b1); h7 = (h7 << 13) | (h7 >>> 19);
  }
  let h = fold(fold(fold(fold(fold(fold(fold(fold(0, h0), h1), h2), h3), h4), h5), h6), h7);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class AlignedCdcScanner implements CdcScanner {
  /** Blocks of the current chunk seen so far. */
  protected blocks = 0;
  /** Whether every block of the current chunk is all zero (true while it is empty). */
  protected openZero = true;
  /** Disk offset of the next block: zero runs are cut on a grid of absolute offsets. */
  protected position: number;
  /** Bytes of a final partial block (the stream has ended inside a block). */
  protected tailBytes = 0;
  protected partial = false;
  protected readonly minBlocks: number;
  protected readonly avgBlocks: number;
  protected readonly maxBlocks: number;
  protected readonly maxBytes: number;
  protected readonly maskStrict: number;
  protected readonly maskLoose: number;

  /** startBytes: the disk offset the stream starts at (a cut: 0, or where an increment re-chunks from). */
  constructor(bounds: CdcBounds, startBytes = 0) {
    checkAlignedBounds(bounds);
    this.minBlocks = bounds.minBytes / alignBytes;
    this.avgBlocks = bounds.avgBytes / alignBytes;
    this.maxBlocks = bounds.maxBytes / alignBytes;
    this.maxBytes = bounds.maxBytes;
    this.position = startBytes;
    const bits = log2Exact(this.avgBlocks)!;
    this.maskStrict = spreadMask(bits + 2);
    this.maskLoose = spreadMask(Math.max(1, bits - 2));
  }

  /**
   * Scans the stream's next bytes; returns the lengths of the chunks that end
   * in them, in order. Three rules, in this order (docs/FORMAT.md):
   * a chunk of zero blocks ends before a block with data; a chunk of zero
   * blocks ends on the grid of multiples of the maximum, so zero runs cut
   * the same wherever they begin; any other chunk ends after a block with
   * data whose hash matches the mask (past the minimum), or at the maximum.
   */
  push(data: Uint8Array): number[] {
    if (this.partial) throw new BlockvaultError('BAD_INPUT', 'aligned-cdc: bytes after a partial block (only the stream\'s last piece may end inside a block)');
    const cuts: number[] = [];
    const words = wordsOf(data);
    const whole = data.length - (data.length % alignBytes);
    for (let at = 0; at < whole; at += alignBytes) {
      let zero: boolean | null = null;
      if (this.openZero && this.blocks > 0) {
        zero = isAllZero(data.subarray(at, at + alignBytes));
        if (!zero) this.cut(cuts); // data after zeros starts a chunk
      }
      if (this.blocks === 0) this.openZero = true;
      this.blocks += 1;
      this.position += alignBytes;
      if (this.openZero) {
        zero ??= isAllZero(data.subarray(at, at + alignBytes));
        this.openZero = zero;
      }
      if (this.openZero ? this.position % this.maxBytes === 0 || this.blocks >= this.maxBlocks
        : this.blocks >= this.maxBlocks || (this.blocks >= this.minBlocks && this.cutsAfter(data, words, at))) this.cut(cuts);
    }
    if (whole < data.length) this.partial = true; // finish() adds it to the last chunk
    this.tailBytes = data.length - whole;
    return cuts;
  }

  private cut(cuts: number[]): void {
    cuts.push(this.blocks * alignBytes);
    this.blocks = 0;
    this.openZero = true;
  }

  private cutsAfter(data: Uint8Array, words: Uint32Array, at: number): boolean {
    const mask = this.blocks <= this.avgBlocks ? this.maskStrict : this.maskLoose;
    // Zero blocks never cut a chunk with data (their hash is one constant): checked only for a block whose hash matches.
    return (blockHash(words, at >>> 2) & mask) === 0 && !isAllZero(data.subarray(at, at + alignBytes));
  }

  /**
   * `n` all-zero blocks that were not read (a hole): cut as push() would cut
   * them (a chunk with data runs on to the maximum, zero chunks end on the
   * grid). Returns the lengths of the chunks that end in them.
   */
  pushZeroBlocks(n: number): number[] {
    if (this.partial) throw new BlockvaultError('BAD_INPUT', 'aligned-cdc: blocks after a partial block');
    const cuts: number[] = [];
    for (let left = n; left > 0; ) {
      const room = this.openZero
        ? Math.min(this.maxBlocks - this.blocks, (this.maxBytes - (this.position % this.maxBytes)) / alignBytes)
        : this.maxBlocks - this.blocks;
      if (left < room) {
        this.blocks += left;
        this.position += left * alignBytes;
        break;
      }
      this.blocks += room;
      this.position += room * alignBytes;
      left -= room;
      this.cut(cuts);
    }
    return cuts;
  }

  /** Bytes of the chunk in progress (since the last cut). */
  get openBytes(): number {
    return this.blocks * alignBytes + this.tailBytes;
  }

  /** The stream's last chunk (its whole blocks since the last cut, plus a final partial block), or 0. */
  finish(): number {
    const last = this.blocks * alignBytes + this.tailBytes;
    this.blocks = 0;
    this.tailBytes = 0;
    this.partial = false;
    this.openZero = true;
    return last;
  }
}

/** Chunk lengths of one whole buffer. */
export function alignedCdcChunks(data: Uint8Array, bounds: CdcBounds): number[] {
  return chunksOf(new AlignedCdcScanner(bounds), data);
}
