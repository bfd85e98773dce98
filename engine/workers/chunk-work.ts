// The CPU work on chunks, pure functions over bytes: run inside worker
// threads by chunk-worker.ts, and directly by tests.
import { createRequire } from 'node:module';
import { chunkIdBytes, isAllZero, sha256, xxh64 } from '../core/digest.js';
import { compressSavingsMin } from '../core/limits.js';
import { codecRaw, codecZstd } from '../format/pack-format.js';
import type { CompressReply, CompressRequest, DecodeFailure, DecodeReply, DecodeRequest, HashReply, HashRequest, SlabCompressRequest, SlabHashReply, SlabHashRequest, SlabRef, StoredChunks } from './messages.js';

export function hashChunks(req: HashRequest): HashReply {
  const ids = hashInto(new Uint8Array(req.data), req.chunkLengths);
  return { data: req.data, ids: ids.buffer.slice(ids.byteOffset, ids.byteOffset + ids.length) as ArrayBuffer };
}

/**
 * The SHA-256 id of each chunk laid back to back in `data` (zero chunks: the
 * zero id); `then` sees each non-zero chunk right after it is hashed.
 */
function hashInto(data: Uint8Array, chunkLengths: number[], then?: (chunk: Uint8Array) => void): Buffer {
  const ids = Buffer.alloc(chunkLengths.length * chunkIdBytes);
  let at = 0;
  chunkLengths.forEach((length, i) => {
    const chunk = data.subarray(at, at + length);
    at += length;
    if (isAllZero(chunk)) return;
    sha256(chunk).copy(ids, i * chunkIdBytes);
    then?.(chunk);
  });
  return ids;
}

// zstd's own binding, so chunks compress straight into the caller's
// recycled buffer and decompress straight into the output: no per-chunk
// garbage (zstd-napi's Compressor returns a new buffer for every call).
const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
let cctx: InstanceType<typeof zstd.CCtx> | null = null;
let cctxLevel = 0;
let dctx: InstanceType<typeof zstd.DCtx> | null = null;

export function compressChunks(req: CompressRequest): CompressReply {
  const reply = compressInto(new Uint8Array(req.data), req.ranges, new Uint8Array(req.out), req.level);
  return { ...reply, data: req.data, payloads: req.out };
}

/** Compresses data's chunks at `ranges` (offset, length pairs) into `out`, back to back; raw where zstd saves too little. */
function compressInto(data: Uint8Array, ranges: number[], out: Uint8Array, level: number): StoredChunks {
  const reply: StoredChunks = { storedBytes: [], codecs: [], storedXxh64: [] };
  let at = 0;
  for (let i = 0; i < ranges.length; i += 2) at += compressOne(data.subarray(ranges[i], ranges[i] + ranges[i + 1]), out, at, level, reply);
  return reply;
}

/** Compresses one chunk into out at `at`, records it in `reply`; returns the bytes stored. */
function compressOne(raw: Uint8Array, out: Uint8Array, at: number, level: number, reply: StoredChunks): number {
  if (!cctx || cctxLevel !== level) {
    cctx = new zstd.CCtx();
    cctx.setParameter(zstd.CParameter.compressionLevel, level);
    cctxLevel = level;
  }
  // Room for a result that saves at least compressSavingsMin; zstd fails if it needs more.
  const room = raw.length - Math.ceil(raw.length * compressSavingsMin);
  let stored = 0;
  try {
    stored = room > 0 ? cctx.compress2(out.subarray(at, at + room), raw) : 0;
  } catch (err) {
    if (!/too small/i.test((err as Error).message)) throw err;
  }
  const codec = stored > 0 ? codecZstd : codecRaw;
  if (codec === codecRaw) {
    out.set(raw, at);
    stored = raw.length;
  }
  reply.storedBytes.push(stored);
  reply.codecs.push(codec);
  reply.storedXxh64.push(xxh64(out.subarray(at, at + stored)));
  return stored;
}

/** Shared slabs registered with this thread (see SlabRequest). */
const slabs = new Map<number, SharedArrayBuffer>();

export function registerSlab(id: number, slab: SharedArrayBuffer): void {
  slabs.set(id, slab);
}

export function unregisterSlab(id: number): void {
  slabs.delete(id);
}

function slabView(ref: SlabRef, bytes?: number): Uint8Array {
  const slab = slabs.get(ref.slab);
  if (!slab) throw new Error(`slab ${ref.slab} was never registered with this worker`);
  return new Uint8Array(slab, ref.offset, bytes ?? slab.byteLength - ref.offset);
}

export function slabHash(req: SlabHashRequest): SlabHashReply {
  const total = req.chunkLengths.reduce((a, b) => a + b, 0);
  const data = slabView(req.input, total);
  const compress = req.compress;
  if (!compress) return { ids: hashInto(data, req.chunkLengths), compressed: null };
  // Each chunk is compressed right after it is hashed, while it is still in the core's cache.
  const out = slabView(compress.output, total);
  const compressed: StoredChunks = { storedBytes: [], codecs: [], storedXxh64: [] };
  let stored = 0;
  const ids = hashInto(data, req.chunkLengths, (chunk) => { stored += compressOne(chunk, out, stored, compress.level, compressed); });
  return { ids, compressed };
}

export function slabCompress(req: SlabCompressRequest): StoredChunks {
  const total = req.ranges.reduce((a, v, i) => (i % 2 ? a + v : a), 0);
  return compressInto(slabView(req.input), req.ranges, slabView(req.output, total), req.level);
}

export function decodeChunks(req: DecodeRequest): DecodeReply {
  dctx ??= new zstd.DCtx();
  const total = req.rawBytes.reduce((a, b) => a + b, 0);
  const slab = req.slab ? slabs.get(req.slab.id) : undefined;
  if (req.slab && !slab) throw new Error(`slab ${req.slab.id} was never registered with this worker`);
  const output = slab ? null : new Uint8Array(req.output && req.output.byteLength >= total ? req.output : new ArrayBuffer(total), 0, total);
  const ids = Buffer.from(req.ids);
  const failures: DecodeFailure[] = [];
  let out = 0;
  for (let i = 0; i < req.offsets.length; i++) {
    const stored = new Uint8Array(req.input, req.offsets[i], req.storedBytes[i]);
    const target = output ? output.subarray(out, out + req.rawBytes[i]) : new Uint8Array(slab!, req.slab!.offsets[i], req.rawBytes[i]);
    out += req.rawBytes[i];
    if (xxh64(stored) !== req.storedXxh64[i]) {
      failures.push({ chunk: i, reason: 'stored-checksum' });
      continue;
    }
    if (req.codecs[i] === codecZstd) {
      try {
        if (dctx.decompress(target, stored) !== target.length) throw new Error('length');
      } catch {
        failures.push({ chunk: i, reason: 'decompress' });
        continue;
      }
    } else {
      target.set(stored);
    }
    if (req.checkContent && !sha256(target).equals(ids.subarray(i * chunkIdBytes, (i + 1) * chunkIdBytes))) {
      failures.push({ chunk: i, reason: 'content-hash' });
    }
  }
  return { output: output ? (output.buffer as ArrayBuffer) : null, input: req.input, failures };
}
