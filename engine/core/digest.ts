// Digests over bytes. Chunk identity is SHA-256 (cryptographic: dedup must
// never confuse two chunks); XXH64 guards stored bytes against bit rot
// cheaply, so a scrub need not decompress.
import { createHash } from 'node:crypto';
import xxhashWasm from 'xxhash-wasm';

export const chunkIdBytes = 32;
/** The id recorded for an all-zero chunk. SHA-256 never yields it in practice. */
export const zeroChunkId: Buffer = Buffer.alloc(chunkIdBytes);

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

type Xxh64 = (bytes: Uint8Array, seed?: bigint) => bigint;
let xxh64Impl: Xxh64 | null = null;

/** Loads the XXH64 WebAssembly module once per thread. */
export async function initDigests(): Promise<void> {
  if (xxh64Impl) return;
  const api = await xxhashWasm();
  xxh64Impl = api.h64Raw;
}

export function xxh64(bytes: Uint8Array): bigint {
  if (!xxh64Impl) throw new Error('initDigests() must run before xxh64()');
  return xxh64Impl(bytes, 0n);
}

export function isZeroChunkId(id: Uint8Array): boolean {
  return zeroChunkId.equals(id);
}

const zeroPage = Buffer.alloc(64 * 1024);

/** True when every byte is zero; compares against a zero page (memcmp speed). */
export function isAllZero(bytes: Uint8Array): boolean {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < view.length; at += zeroPage.length) {
    const end = Math.min(at + zeroPage.length, view.length);
    if (!view.subarray(at, end).equals(zeroPage.subarray(0, end - at))) return false;
  }
  return true;
}
