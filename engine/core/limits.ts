// Every size the format or the engine bounds. Units last in names.
// Decoders check these before allocating; encoders before writing.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

export const chunkBytesMin = 64 * KiB;
export const chunkBytesMax = 4 * MiB;
/** Chosen from measurements in docs/BENCHMARKS.md ("chunk size"). */
export const chunkBytesDefault = 64 * KiB;
/** Average chunk of the content-defined chunkers (min a quarter, max four times): docs/BENCHMARKS.md "Content-defined chunking". */
export const cdcAvgBytesDefault = 64 * KiB;

export const packBytesMin = 1 * MiB;
export const packBytesMax = 1 * GiB;
export const packBytesDefault = 128 * MiB;
/** Records in one pack; bounds the trailer a reader must allocate. */
export const packRecordsMax = 1 << 20;

export const diskBytesMax = 256 * TiB;
/** Chunks in one restore point: 256 TiB at 64 KiB. Fits in a u32 index. */
export const chunksPerPointMax = 2 ** 32 - 1;

export const pointHeaderBytesMax = 64 * KiB;
/** A delta restore point whose changes exceed this share of a full map is written as a full map. */
export const pointDeltaShareMax = 0.25;
/** Longest chain of delta maps to read when opening a restore point. */
export const pointChainDepthMax = 16;

export const zstdLevelMin = 1;
export const zstdLevelMax = 19;
export const zstdLevelDefault = 1;
/** A compressed chunk is kept only if it saves at least this share of its size. */
export const compressSavingsMin = 1 / 32;

export const nameBytesMax = 128;
export const configBytesMax = 64 * KiB;

/** Bytes read from the source per pipeline batch. */
export const batchBytes = 4 * MiB;
/** Source reads a backup keeps in flight ahead of hashing (see readAhead in backup/batches.ts). */
export const readsInFlightMax = 8;
/** ...and the bytes they may hold: one full batch (sequential reads have the kernel's readahead; more only raised peak RSS, 227 MB at 16 MiB against 202 MB). */
export const readAheadBytesMax = 4 * MiB;
/** Batches in flight through the worker pool; bounds backup/restore memory. */
export const batchesInFlightMax = 6;
