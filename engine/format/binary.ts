// Small helpers shared by the on-disk codecs: fixed magics and bounds checks.
import { BlockvaultError } from '../core/errors.js';

export function checkMagic(bytes: Uint8Array, offset: number, magic: Buffer, what: string): void {
  const found = Buffer.from(bytes.buffer, bytes.byteOffset + offset, Math.min(magic.length, bytes.byteLength - offset));
  if (found.length < magic.length || !found.equals(magic)) {
    throw new BlockvaultError('CORRUPT', `${what}: bad magic at offset ${offset} (found ${found.toString('hex')})`);
  }
}

export function needBytes(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.byteLength < length) {
    throw new BlockvaultError('CORRUPT', `${what}: truncated (${bytes.byteLength} bytes, need ${length})`);
  }
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
