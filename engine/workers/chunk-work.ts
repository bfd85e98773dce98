// The CPU work on chunks, pure functions over bytes: run inside worker
// threads by chunk-worker.ts, and directly by tests.
import { Compressor, Decompressor } from 'zstd-napi';
import { chunkIdBytes, isAllZero, sha256, xxh64 } from '../core/digest.js';
import { compressSavingsMin } from '../core/limits.js';
import { codecRaw, codecZstd } from '../format/pack-format.js';
import type { CompressReply, CompressRequest, DecodeFailure, DecodeReply, DecodeRequest, HashReply, HashRequest } from './messages.js';

export function hashChunks(req: HashRequest): HashReply {
  const ids = Buffer.alloc(req.chunkLengths.length * chunkIdBytes);
  let at = 0;
  req.chunkLengths.forEach((length, i) => {
    const chunk = new Uint8Array(req.data, at, length);
    if (!isAllZero(chunk)) sha256(chunk).copy(ids, i * chunkIdBytes);
    at += length;
  });
  return { data: req.data, ids: ids.buffer.slice(ids.byteOffset, ids.byteOffset + ids.length) as ArrayBuffer };
}

let compressor: Compressor | null = null;
let compressorLevel = 0;

export function compressChunks(req: CompressRequest): CompressReply {
  if (!compressor || compressorLevel !== req.level) {
    compressor = new Compressor();
    compressor.setParameters({ compressionLevel: req.level });
    compressorLevel = req.level;
  }
  const parts: Uint8Array[] = [];
  const reply: Omit<CompressReply, 'payloads' | 'data'> = { storedBytes: [], codecs: [], storedXxh64: [] };
  for (let i = 0; i < req.ranges.length; i += 2) {
    const raw = new Uint8Array(req.data, req.ranges[i], req.ranges[i + 1]);
    const packed = compressor.compress(raw);
    const keep = packed.length <= raw.length * (1 - compressSavingsMin);
    const stored = keep ? packed : raw;
    parts.push(stored);
    reply.storedBytes.push(stored.length);
    reply.codecs.push(keep ? codecZstd : codecRaw);
    reply.storedXxh64.push(xxh64(stored));
  }
  const payloads = Buffer.concat(parts);
  return { ...reply, data: req.data, payloads: payloads.buffer.slice(payloads.byteOffset, payloads.byteOffset + payloads.length) as ArrayBuffer };
}

let decompressor: Decompressor | null = null;

export function decodeChunks(req: DecodeRequest): DecodeReply {
  decompressor ??= new Decompressor();
  const total = req.rawBytes.reduce((a, b) => a + b, 0);
  const output = new Uint8Array(new ArrayBuffer(total));
  const ids = Buffer.from(req.ids);
  const failures: DecodeFailure[] = [];
  let out = 0;
  for (let i = 0; i < req.offsets.length; i++) {
    const stored = new Uint8Array(req.input, req.offsets[i], req.storedBytes[i]);
    const target = output.subarray(out, out + req.rawBytes[i]);
    out += req.rawBytes[i];
    if (xxh64(stored) !== req.storedXxh64[i]) {
      failures.push({ chunk: i, reason: 'stored-checksum' });
      continue;
    }
    if (req.codecs[i] === codecZstd) {
      try {
        const raw = decompressor.decompress(stored);
        if (raw.length !== target.length) throw new Error('length');
        target.set(raw);
      } catch {
        failures.push({ chunk: i, reason: 'decompress' });
        continue;
      }
    } else {
      target.set(stored);
    }
    if (!sha256(target).equals(ids.subarray(i * chunkIdBytes, (i + 1) * chunkIdBytes))) {
      failures.push({ chunk: i, reason: 'content-hash' });
    }
  }
  return { output: output.buffer, failures };
}
