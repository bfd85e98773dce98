// Messages between the engine and its chunk workers. Buffers travel as
// transferred ArrayBuffers (zero copy) and come back with the reply, or stay
// put in a shared slab registered once (SlabRequest), which a backup's
// batches use: a transferred buffer counts as new external memory on every
// arrival, and V8 answered ~1.8 GB of them with a full GC every 64 MB.

/** Hash each chunk of `data`; zero chunks get the all-zero id. */
export interface HashRequest { op: 'hash'; data: ArrayBuffer; chunkLengths: number[] }
export interface HashReply { data: ArrayBuffer; ids: ArrayBuffer }

/** Compress chunks at the given offsets of `data` into `out` (recycled; at least the raw total). */
export interface CompressRequest { op: 'compress'; data: ArrayBuffer; out: ArrayBuffer; ranges: number[]; level: number }
export interface CompressReply {
  data: ArrayBuffer;
  payloads: ArrayBuffer; // `out`, holding the stored bytes of each chunk back to back
  storedBytes: number[];
  codecs: number[];
  storedXxh64: bigint[];
}

/** Check, decompress and (with checkContent) re-hash stored chunks. */
export interface DecodeRequest {
  op: 'decode';
  input: ArrayBuffer;
  offsets: number[]; // payload start in input
  storedBytes: number[];
  rawBytes: number[];
  codecs: number[];
  storedXxh64: bigint[];
  ids: ArrayBuffer; // 32 bytes per chunk
  /** Re-hash each decoded chunk with SHA-256 and compare it with its id (see FORMAT.md, what each checksum covers). */
  checkContent: boolean;
  output?: ArrayBuffer; // recycled buffer for the raw chunks (at least their total)
  /** Instead of `output`: decode chunk i into shared slab `slab` at byte slabOffsets[i]. */
  slab?: { id: number; offsets: number[] };
}
export interface DecodeFailure { chunk: number; reason: 'stored-checksum' | 'decompress' | 'content-hash' }
/** `input` comes back so the caller can reuse it; `output` is null when decoding into a slab. */
export interface DecodeReply { output: ArrayBuffer | null; input: ArrayBuffer; failures: DecodeFailure[] }

/** A byte offset in a slab registered with the worker. */
export interface SlabRef { slab: number; offset: number }
export interface StoredChunks { storedBytes: number[]; codecs: number[]; storedXxh64: bigint[] }

/**
 * Hash each chunk of the slab region (zero chunks get the zero id); with
 * `compress`, also compress every non-zero chunk into the output region at
 * once (a backup expecting mostly new data: one trip, the chunk still in cache).
 */
export interface SlabHashRequest { op: 'slab-hash'; input: SlabRef; chunkLengths: number[]; compress: { level: number; output: SlabRef } | null }
/** `compressed` lists the non-zero chunks in order, their payloads back to back in the output region. */
export interface SlabHashReply { ids: Uint8Array; compressed: StoredChunks | null }
/** Compress chunks at ranges (offset, length pairs, relative to input) into the output region, back to back. */
export interface SlabCompressRequest { op: 'slab-compress'; input: SlabRef; ranges: number[]; level: number; output: SlabRef }

/**
 * Registers a shared slab (the mount's chunk cache) with a worker once, so
 * decode requests name it by id: a SharedArrayBuffer sent with every request
 * would be re-registered by V8 each time and count as new external memory.
 */
export interface SlabRequest { op: 'slab'; id: number; slab: SharedArrayBuffer }

/** Forgets a slab: its memory is freed once the last thread lets go of it. */
export interface UnslabRequest { op: 'unslab'; id: number }

export type WorkRequest = HashRequest | CompressRequest | DecodeRequest | SlabRequest | UnslabRequest | SlabHashRequest | SlabCompressRequest;
