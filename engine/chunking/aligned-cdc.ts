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
  if (!aligned || bits === null || bits < 3 || bits > 10) {
    throw new BlockvaultError('BAD_INPUT', `aligned-cdc chunk sizes must be multiples of ${alignBytes} bytes, the average a power of two from 32 KiB to 4 MiB (got min ${b.minBytes}, average ${b.avgBytes}, max ${b.maxBytes})`);
  }
  if (!(alignBytes <= b.minBytes && b.minBytes < b.avgBytes && b.avgBytes < b.maxBytes && b.maxBytes <= chunkBytesMax)) {
    throw new BlockvaultError('BAD_INPUT', `aligned-cdc chunk sizes min ${b.minBytes}, average ${b.avgBytes}, max ${b.maxBytes}: need ${alignBytes} <= min < average < max <= ${chunkBytesMax}`);
  }
}

/** A 32-bit hash of one 4 KiB block: little-endian words mixed with multiply-rotate, then an avalanche. */
export function blockHash(view: DataView, offset: number): number {
  let h = 0x27d4eb2f;
  for (let w = 0; w < wordsPerBlock; w++) {
    h = Math.imul(h ^ view.getUint32(offset + 4 * w, true), 0x9e3779b1);
    h = (h << 13) | (h >>> 19);
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class AlignedCdcScanner implements CdcScanner {
  /** Blocks of the current chunk seen so far. */
  private blocks = 0;
  /** Bytes of a final partial block (the stream has ended inside a block). */
  private tailBytes = 0;
  private partial = false;
  private readonly minBlocks: number;
  private readonly avgBlocks: number;
  private readonly maxBlocks: number;
  private readonly maskStrict: number;
  private readonly maskLoose: number;

  constructor(bounds: CdcBounds) {
    checkAlignedBounds(bounds);
    this.minBlocks = bounds.minBytes / alignBytes;
    this.avgBlocks = bounds.avgBytes / alignBytes;
    this.maxBlocks = bounds.maxBytes / alignBytes;
    const bits = log2Exact(this.avgBlocks)!;
    this.maskStrict = spreadMask(bits + 2);
    this.maskLoose = spreadMask(Math.max(1, bits - 2));
  }

  /** Scans the stream's next bytes; returns the lengths of the chunks that end in them, in order. */
  push(data: Uint8Array): number[] {
    if (this.partial) throw new BlockvaultError('BAD_INPUT', 'aligned-cdc: bytes after a partial block (only the stream\'s last piece may end inside a block)');
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const cuts: number[] = [];
    const whole = data.length - (data.length % alignBytes);
    for (let at = 0; at < whole; at += alignBytes) {
      this.blocks += 1;
      if (this.blocks >= this.maxBlocks || (this.blocks >= this.minBlocks && this.cutsAfter(data, view, at))) {
        cuts.push(this.blocks * alignBytes);
        this.blocks = 0;
      }
    }
    if (whole < data.length) this.partial = true; // finish() adds it to the last chunk
    this.tailBytes = data.length - whole;
    return cuts;
  }

  private cutsAfter(data: Uint8Array, view: DataView, at: number): boolean {
    if (isAllZero(data.subarray(at, at + alignBytes))) return false;
    const mask = this.blocks <= this.avgBlocks ? this.maskStrict : this.maskLoose;
    return (blockHash(view, at) & mask) === 0;
  }

  /** The stream's last chunk (its whole blocks since the last cut, plus a final partial block), or 0. */
  finish(): number {
    const last = this.blocks * alignBytes + this.tailBytes;
    this.blocks = 0;
    this.tailBytes = 0;
    this.partial = false;
    return last;
  }
}

/** Chunk lengths of one whole buffer. */
export function alignedCdcChunks(data: Uint8Array, bounds: CdcBounds): number[] {
  return chunksOf(new AlignedCdcScanner(bounds), data);
}
