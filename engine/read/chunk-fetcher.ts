// Fetches chunks by id for restore, verify and the mount: looks up their
// pack locations, reads neighbouring records with one read, and has the
// workers check each record's XXH64, decompress and (unless the caller opts
// out, as the mount does by default) re-hash every chunk with SHA-256.
// Nothing comes back unchecked.
import { BlockvaultError } from '../core/errors.js';
import { chunkIdBytes } from '../core/digest.js';
import { decodeRecordHeader, recordHeaderBytes } from '../format/pack-format.js';
import type { ChunkLocation } from '../repo/chunk-index.js';
import { packPath } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';

/** Records closer than this in one pack are read together. */
const readGapBytesMax = 256 * 1024;
const readRunBytesMax = 16 * 1024 * 1024;
/** Pack-read buffers kept for reuse (fresh memory costs page faults and GC work). */
const spareInputsMax = 4;
const spareInputBytesMax = 8 * 1024 * 1024;
const inputRoundBytes = 1024 * 1024;

export interface ChunkProblem {
  id: string;
  code: 'CHUNK_MISSING' | 'CHECKSUM_MISMATCH';
  pack: string | null;
  offset: number | null;
  reason: string;
}

export interface FetchResult {
  /** Raw chunk bytes back to back, in request order; failed chunks hold garbage. */
  output: Buffer;
  rawBytes: number[];
  problems: Map<number, ChunkProblem>;
}

interface RecordsRead {
  locations: (ChunkLocation | undefined)[];
  rawBytes: number[];
  /** The records, read back to back; payloadStarts[i] is chunk i's payload in it. */
  input: Buffer;
  payloadStarts: number[];
  problems: Map<number, ChunkProblem>;
}

export interface FetchOptions {
  /**
   * Re-hash every decoded chunk with SHA-256 against its id (default).
   * Without it, stored bytes are still checked (record header XXH64, id and
   * length, payload XXH64), which catches damage on disk; the re-hash also
   * catches a chunk stored wrongly in the first place, at ~25% of a mount's
   * sequential read rate on this hardware (docs/BENCHMARKS.md).
   */
  checkContent?: boolean;
  /**
   * Let pack bytes leave the page cache once read (the mount: the kernel
   * caches the decoded disk instead, so keeping both caches the disk twice).
   */
  dropPackCache?: boolean;
}

export function problemError(p: ChunkProblem, context: string): BlockvaultError {
  const where = p.pack ? ` in ${packPath(p.pack)} at offset ${p.offset}` : '';
  return new BlockvaultError(p.code, `${context}: chunk ${p.id}${where}: ${p.reason}`);
}

export class ChunkFetcher {
  bytesFetched = 0;
  private readonly spareInputs: ArrayBuffer[] = [];
  private readonly checkContent: boolean;
  private readonly dropPackCache: boolean;
  constructor(private readonly repo: Repository, private readonly pool: WorkerPool, options: FetchOptions = {}) {
    this.checkContent = options.checkContent ?? true;
    this.dropPackCache = options.dropPackCache ?? false;
  }

  private takeInput(bytes: number): Buffer {
    const i = this.spareInputs.findIndex((b) => b.byteLength >= bytes);
    const buffer = i >= 0 ? this.spareInputs.splice(i, 1)[0] : new ArrayBuffer(Math.ceil(bytes / inputRoundBytes) * inputRoundBytes);
    return Buffer.from(buffer, 0, bytes);
  }

  private giveBackInput(buffer: ArrayBuffer): void {
    if (buffer.byteLength <= spareInputBytesMax && this.spareInputs.length < spareInputsMax) this.spareInputs.push(buffer);
  }

  /** `output` (optional, recycled) receives the raw chunks when it is large enough. */
  async fetch(ids: readonly Buffer[], output?: ArrayBuffer): Promise<FetchResult> {
    const read = await this.readRecords(ids);
    const decoded = await this.decode(ids, read, { output });
    return { output: this.layOut(ids, read, decoded.output!, decoded.good), rawBytes: read.rawBytes, problems: read.problems };
  }

  /**
   * Decodes chunk i straight into shared slab `slabId` (registered with the
   * pool) at slabOffsets[i]; nothing is allocated for the output.
   */
  async fetchInto(ids: readonly Buffer[], slabId: number, slabOffsets: number[]): Promise<Omit<FetchResult, 'output'>> {
    const read = await this.readRecords(ids);
    await this.decode(ids, read, { slab: { id: slabId, offsets: slabOffsets } });
    return { rawBytes: read.rawBytes, problems: read.problems };
  }

  /** Looks the chunks up and reads their records, nearby ones with one read. */
  private async readRecords(ids: readonly Buffer[]): Promise<RecordsRead> {
    const problems = new Map<number, ChunkProblem>();
    const locations: (ChunkLocation | undefined)[] = ids.map((id) => this.repo.index.lookup(id));
    const rawBytes = locations.map((l) => l?.rawBytes ?? 0);
    locations.forEach((l, i) => {
      if (!l) {
        const hex = ids[i].toString('hex');
        const quarantined = this.repo.index.quarantineNote(hex);
        problems.set(i, { id: hex, code: 'CHUNK_MISSING', pack: null, offset: null, reason: quarantined ?? 'not in any pack (index has no entry)' });
      }
    });
    const order = locations.map((_, i) => i).filter((i) => locations[i])
      .sort((a, b) => (locations[a]!.packId === locations[b]!.packId ? locations[a]!.offset - locations[b]!.offset : locations[a]!.packId < locations[b]!.packId ? -1 : 1));
    const payloadStarts = new Array<number>(ids.length).fill(0);
    const runs = this.runs(order, locations);
    const runBytes = runs.map((run) => {
      const first = locations[run[0]]!;
      const last = locations[run[run.length - 1]]!;
      return last.offset + recordHeaderBytes + last.storedBytes - first.offset;
    });
    const input = this.takeInput(runBytes.reduce((a, b) => a + b, 0));
    let runStart = 0;
    await Promise.all(runs.map(async (run, r) => {
      const first = locations[run[0]]!;
      const at0 = runStart;
      runStart += runBytes[r];
      try {
        await this.repo.packs.readRange(first.packId, first.offset, runBytes[r], input.subarray(at0, at0 + runBytes[r]), this.dropPackCache);
      } catch (err) {
        if (!(err instanceof BlockvaultError)) throw err;
        for (const i of run) problems.set(i, { id: ids[i].toString('hex'), code: err.code === 'CHUNK_MISSING' ? 'CHUNK_MISSING' : 'CHECKSUM_MISMATCH', pack: first.packId, offset: locations[i]!.offset, reason: err.message });
        return;
      }
      this.bytesFetched += runBytes[r];
      for (const i of run) {
        const loc = locations[i]!;
        const at = at0 + loc.offset - first.offset;
        try {
          const header = decodeRecordHeader(input.subarray(at, at + recordHeaderBytes), loc.offset, packPath(loc.packId));
          if (!header.id.equals(ids[i]) || header.storedBytes !== loc.storedBytes) throw new Error('record header names another chunk');
        } catch (err) {
          problems.set(i, { id: ids[i].toString('hex'), code: 'CHECKSUM_MISMATCH', pack: loc.packId, offset: loc.offset, reason: `bad record header (${(err as Error).message})` });
        }
        payloadStarts[i] = at + recordHeaderBytes;
      }
    }));
    return { locations, rawBytes, input, payloadStarts, problems };
  }

  /** Groups sorted chunk indexes into runs of nearby records in one pack. */
  private runs(order: number[], locations: (ChunkLocation | undefined)[]): number[][] {
    const runs: number[][] = [];
    for (const i of order) {
      const loc = locations[i]!;
      const run = runs[runs.length - 1];
      const prev = run ? locations[run[run.length - 1]]! : null;
      const start = run ? locations[run[0]]!.offset : 0;
      if (prev && prev.packId === loc.packId && loc.offset >= prev.offset &&
          loc.offset - (prev.offset + recordHeaderBytes + prev.storedBytes) <= readGapBytesMax &&
          loc.offset + recordHeaderBytes + loc.storedBytes - start <= readRunBytesMax) {
        run.push(i);
      } else {
        runs.push([i]);
      }
    }
    return runs;
  }

  /** Has a worker check, decompress and re-hash the good chunks; returns which were decoded, in order. */
  private async decode(ids: readonly Buffer[], read: RecordsRead, target: { output?: ArrayBuffer; slab?: { id: number; offsets: number[] } }): Promise<{ output: ArrayBuffer | null; good: number[] }> {
    const { locations, problems } = read;
    const good = ids.map((_, i) => i).filter((i) => locations[i] && !problems.has(i));
    const idBytes = new Uint8Array(new ArrayBuffer(good.length * chunkIdBytes));
    good.forEach((i, k) => idBytes.set(ids[i], k * chunkIdBytes));
    const reply = await this.pool.decode({
      input: read.input.buffer as ArrayBuffer,
      offsets: good.map((i) => read.payloadStarts[i]),
      storedBytes: good.map((i) => locations[i]!.storedBytes),
      rawBytes: good.map((i) => locations[i]!.rawBytes),
      codecs: good.map((i) => locations[i]!.codec),
      storedXxh64: good.map((i) => locations[i]!.storedXxh64),
      ids: idBytes.buffer as ArrayBuffer,
      checkContent: this.checkContent,
      output: target.output,
      slab: target.slab && { id: target.slab.id, offsets: good.map((i) => target.slab!.offsets[i]) },
    });
    this.giveBackInput(reply.input);
    const reasons = { 'stored-checksum': 'stored bytes fail their XXH64 checksum', decompress: 'stored bytes do not decompress', 'content-hash': 'decoded bytes do not match the chunk id (SHA-256)' };
    for (const f of reply.failures) {
      const i = good[f.chunk];
      problems.set(i, { id: ids[i].toString('hex'), code: 'CHECKSUM_MISMATCH', pack: locations[i]!.packId, offset: locations[i]!.offset, reason: reasons[f.reason] });
    }
    return { output: reply.output, good };
  }

  /** Decoded chunks in request order (failed and missing ones as zeros). */
  private layOut(ids: readonly Buffer[], read: RecordsRead, output: ArrayBuffer, good: number[]): Buffer {
    const { locations } = read;
    const decoded = Buffer.from(output, 0, good.reduce((a, i) => a + locations[i]!.rawBytes, 0));
    if (good.length === ids.length) return decoded;
    const laidOut = Buffer.alloc(ids.reduce((a, _, i) => a + (locations[i]?.rawBytes ?? 0), 0));
    let from = 0;
    let to = 0;
    const goodSet = new Set(good);
    ids.forEach((_, i) => {
      const n = locations[i]?.rawBytes ?? 0;
      if (goodSet.has(i)) {
        decoded.copy(laidOut, to, from, from + n);
        from += n;
      }
      to += n;
    });
    return laidOut;
  }
}
