// The gear table and cut masks shared by the content-defined chunkers.
// Fixed forever once a repository records a CDC chunker: the table is
// splitmix32 from a constant seed (written down, reproducible anywhere), so
// the same bytes always cut at the same places.
import { BlockvaultError } from '../core/errors.js';

export const gearSeed = 0x62763031; // "bv01"

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** 256 pseudo-random 32-bit values, one per byte value. */
export const gearTable: Uint32Array = (() => {
  const next = splitmix32(gearSeed);
  return Uint32Array.from({ length: 256 }, () => next());
})();

/**
 * A mask with `bits` one-bits, spread over the high bits of a 32-bit gear
 * hash (with a shift of one per byte, bit k depends on the last k+1 bytes:
 * high bits see the most content). A hash value matches when (h & mask) is 0,
 * which happens once in 2^bits values.
 */
export function spreadMask(bits: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 24) throw new BlockvaultError('BAD_INPUT', `a cut mask of ${bits} bits is out of range (1 to 24)`);
  let mask = 0;
  // Every other bit from bit 31 down, then fill the gaps: no two runs of masks of different widths share a pattern.
  const order = [...Array.from({ length: 16 }, (_, i) => 31 - 2 * i), ...Array.from({ length: 16 }, (_, i) => 30 - 2 * i)];
  for (let i = 0; i < bits; i++) mask |= 1 << order[i];
  return mask >>> 0;
}

/** log2 of a power of two, or null. */
export function log2Exact(n: number): number | null {
  if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0) return null;
  return Math.round(Math.log2(n));
}
