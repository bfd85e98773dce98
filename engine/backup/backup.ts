// A backup: source -> batches -> hash (workers) -> dedup (index) ->
// compress new chunks (workers) -> append to packs -> seal -> restore point.
// Memory is bounded by batchesInFlightMax batches, whatever the disk size.
import { randomBytes } from 'node:crypto';
import { BlockvaultError } from '../core/errors.js';
import { humanBytes, plural } from '../core/human.js';
import { interruptedError, whenAborted } from '../core/interrupt.js';
import { chunkIdBytes, sha256, zeroChunkId } from '../core/digest.js';
import { batchBytes, batchesInFlightMax, chunksPerPointMax, pointChainDepthMax, pointDeltaShareMax } from '../core/limits.js';
import { deltaEntryBytes, diffMaps, type PointBody, type PointHeader } from '../format/point-format.js';
import { PackWriter, type CommitHook, type StoredChunk } from '../repo/pack-writer.js';
import type { OpenPoint } from '../repo/point-store.js';
import type { Repository } from '../repo/repository.js';
import type { Source } from '../source/source.js';
import type { WorkerPool } from '../workers/pool.js';
import { readBatches, type Batch } from './batches.js';

export interface BackupProgress { bytesDone: number; bytesTotal: number | null; bytesRead: number; bytesNew: number; chunksDone: number; chunksKnown: number; chunksNew: number }

/** An increment: start from the parent's chunk map, read only these chunks. */
export interface IncrementalPlan {
  parent: OpenPoint;
  /** [firstChunk, endChunk) ranges, ascending: the changed extents rounded out to chunks. */
  ranges: Array<[number, number]>;
}

export interface BackupOptions {
  vm: string;
  disk: string;
  source: Source;
  pool: WorkerPool;
  sourceInfo?: Record<string, unknown>;
  plan?: IncrementalPlan;
  /** Why this backup reads what it reads (shown as `reason`). */
  reason?: string;
  onProgress?: (p: BackupProgress) => void;
  hook?: CommitHook;
  /** Commit a 0-byte disk. Off by default: an empty source is nearly always a failed producer in a pipe. */
  allowEmpty?: boolean;
  /** Aborted by an interrupt: stop reading, drop the unsealed pack, commit nothing. */
  signal?: AbortSignal;
}

/** The CLI's `backup --json` contract: these field names are stable. */
export interface BackupResult {
  id: string;
  vm: string;
  disk: string;
  time: string;
  bytesTotal: number;
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
  chunksTotal: number;
  chunksNew: number;
  chunksZero: number;
  chunksKnown: number;
  seconds: number;
  parent: string | null;
  mapKind: 'full' | 'delta';
  mode: 'full' | 'incremental';
  reason: string;
}

interface Counters { bytesRead: number; bytesNew: number; chunksNew: number; chunksZero: number; chunksKnown: number; bytesDone: number; chunksDone: number }

/** Bytes this backup will read: the changed chunks, a sparse image's data, the disk; null for a stream. */
export function plannedReadBytes(source: Source, plan: IncrementalPlan | undefined, chunkBytes: number): number | null {
  if (source.sizeBytes === null) return null;
  if (plan) return Math.min(source.sizeBytes, plan.ranges.reduce((a, [first, end]) => a + end - first, 0) * chunkBytes);
  return source.dataExtents ? source.dataExtents.reduce((a, [start, end]) => a + end - start, 0) : source.sizeBytes;
}

/** A backup whose data is sealed and indexed, its restore point not yet written (the last step). */
export interface PreparedPoint { result: BackupResult; header: PointHeader; body: PointBody }

/** A whole backup: everything, then its restore point. */
export async function runBackup(repo: Repository, options: BackupOptions): Promise<BackupResult> {
  const prepared = await prepareBackup(repo, options);
  await repo.points.write(prepared.header, prepared.body, repo.sessionId);
  options.hook?.('point-written');
  return prepared.result;
}

/**
 * Reads, dedups and stores a disk, seals its packs and writes their index
 * objects: everything but the restore point, so that a group of disks can
 * commit its points only once every disk has come this far.
 */
export async function prepareBackup(repo: Repository, options: BackupOptions): Promise<PreparedPoint> {
  const started = process.hrtime.bigint();
  const time = new Date().toISOString();
  const { chunkBytes, zstdLevel, packBytesTarget } = repo.config;
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, packBytesTarget, options.hook);
  const counters: Counters = { bytesRead: 0, bytesNew: 0, chunksNew: 0, chunksZero: 0, chunksKnown: 0, bytesDone: 0, chunksDone: 0 };
  // The chunk map: known size -> filled in place (an increment starts from its
  // parent's map); a stream -> collected per batch and joined at the end.
  const knownChunks = options.source.sizeBytes === null ? null : Math.ceil(options.source.sizeBytes / chunkBytes);
  const fullMap = knownChunks === null ? null : options.plan ? Buffer.from(options.plan.parent.map) : Buffer.alloc(knownChunks * chunkIdBytes);
  if (options.plan && fullMap && fullMap.length !== (knownChunks ?? 0) * chunkIdBytes) throw new BlockvaultError('BAD_INPUT', 'an increment needs a parent of the same disk size');
  const mapParts = new Map<number, Buffer>();
  const claimed = new Set<string>();
  // Batch buffers circulate: reader -> hash worker -> compress worker -> back here.
  const freeBuffers: ArrayBuffer[] = [];
  const batchChunks = Math.max(1, Math.floor(batchBytes / chunkBytes));
  const allocate = () => freeBuffers.pop() ?? new ArrayBuffer(batchChunks * chunkBytes);
  const freeOutputs: ArrayBuffer[] = [];
  let appendChain: Promise<void> = Promise.resolve();

  const processBatch = async (batch: Batch): Promise<void> => {
    const ids = Buffer.alloc(batch.chunkLengths.length * chunkIdBytes); // holes stay zero ids
    const readLengths = batch.readChunks.map((c) => batch.chunkLengths[c]);
    let data = batch.data;
    if (readLengths.length > 0) {
      const hashed = await options.pool.hash({ data, chunkLengths: readLengths });
      data = hashed.data;
      const hashedIds = Buffer.from(hashed.ids);
      const ranges: number[] = [];
      const fresh: { id: Buffer; rawBytes: number }[] = [];
      let at = 0;
      batch.readChunks.forEach((c, i) => {
        const id = hashedIds.subarray(i * chunkIdBytes, (i + 1) * chunkIdBytes);
        id.copy(ids, c * chunkIdBytes);
        const length = readLengths[i];
        if (!id.equals(zeroChunkId)) {
          const hex = id.toString('hex');
          if (repo.index.has(id) || writer.isPending(hex) || claimed.has(hex)) {
            counters.chunksKnown += 1;
          } else {
            claimed.add(hex);
            ranges.push(at, length);
            fresh.push({ id: Buffer.from(id), rawBytes: length });
          }
        }
        at += length;
      });
      if (fresh.length > 0) {
        const out = freeOutputs.pop() ?? new ArrayBuffer(batchChunks * chunkBytes);
        const packed = await options.pool.compress({ data, out, ranges, level: zstdLevel });
        data = packed.data;
        const payloads = Buffer.from(packed.payloads);
        let p = 0;
        const chunks: StoredChunk[] = fresh.map((f, i) => {
          const payload = payloads.subarray(p, p + packed.storedBytes[i]);
          p += packed.storedBytes[i];
          return { id: f.id, rawBytes: f.rawBytes, storedBytes: packed.storedBytes[i], codec: packed.codecs[i] as 0 | 1, storedXxh64: packed.storedXxh64[i], payload };
        });
        appendChain = appendChain.then(() => writer.append(chunks));
        await appendChain;
        freeOutputs.push(packed.payloads); // written: reusable
        for (const f of fresh) claimed.delete(f.id.toString('hex'));
        counters.chunksNew += fresh.length;
        counters.bytesNew += fresh.reduce((a, f) => a + f.rawBytes, 0);
      }
    }
    if (data.byteLength > 0) freeBuffers.push(data);
    if (fullMap) ids.copy(fullMap, batch.firstChunk * chunkIdBytes);
    else mapParts.set(batch.firstChunk, ids);
    counters.bytesRead += batch.bytesRead;
    counters.bytesDone += batch.chunkLengths.reduce((a, b) => a + b, 0);
    counters.chunksDone += batch.chunkLengths.length;
    options.onProgress?.({ ...counters, bytesTotal: planned });
  };

  const planned = options.plan
    ? options.plan.ranges.reduce((a, [f, e]) => a + (Math.min(e * chunkBytes, options.source.sizeBytes!) - f * chunkBytes), 0)
    : options.source.sizeBytes;
  const { signal } = options;
  try {
    await pump(readBatches(options.source, chunkBytes, batchChunks, allocate, options.plan?.ranges), processBatch, signal);
    if (signal?.aborted) throw interruptedError(signal, `no restore point was committed; ${sealedNote(writer)}`);
    const sizeBytes = options.source.sizeBytes ?? counters.bytesDone;
    if (sizeBytes === 0 && !options.allowEmpty) {
      throw new BlockvaultError('BAD_INPUT', `source ${options.source.description} is empty (0 bytes): nothing was committed. ` +
        'A producer that failed in a pipe gives this; if the disk really is empty, pass --allow-empty');
    }
    await writer.seal();
    await writer.flushIndex();
    const map = fullMap ?? Buffer.concat([...mapParts.entries()].sort((a, b) => a[0] - b[0]).map(([, part]) => part));
    if (map.length / chunkIdBytes > chunksPerPointMax) throw new BlockvaultError('BAD_INPUT', `source ${options.source.description} is too large`);
    return await describePoint(repo, options, { writer, counters, map, sizeBytes, time, started });
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** The restore point a finished backup commits: its header, map encoding (full or delta) and the `--json` result. */
async function describePoint(repo: Repository, options: BackupOptions,
  ctx: { writer: PackWriter; counters: Counters; map: Buffer; sizeBytes: number; time: string; started: bigint }): Promise<PreparedPoint> {
  const { writer, counters, map, sizeBytes, time, started } = ctx;
  const { chunkBytes } = repo.config;
  counters.chunksZero = countZeroChunks(map);
  const parent = options.plan ? repo.points.entryById(options.plan.parent.header.id) : latestPoint(repo, options.vm, options.disk);
  const header: PointHeader = {
    id: randomBytes(16).toString('hex'), vm: options.vm, disk: options.disk, time, sizeBytes, chunkBytes,
    chunksTotal: map.length / chunkIdBytes, parent: null, base: null, chainDepth: 0,
    mapSha256: sha256(map).toString('hex'),
    source: { path: options.source.description, ...options.sourceInfo },
    stats: {},
  };
  const body = await chooseMapEncoding(repo, header, map, parent);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: BackupResult = {
    id: header.id, vm: header.vm, disk: header.disk, time, bytesTotal: sizeBytes,
    bytesRead: counters.bytesRead, bytesNew: counters.bytesNew, bytesStored: writer.bytesAppended,
    chunksTotal: header.chunksTotal, chunksNew: counters.chunksNew, chunksZero: counters.chunksZero,
    chunksKnown: counters.chunksKnown, seconds, parent: header.parent, mapKind: body.kind,
    mode: options.plan ? 'incremental' : 'full',
    reason: options.reason ?? (options.plan ? 'changed-block tracking' : 'no change tracking given'),
  };
  header.source = { ...header.source, mode: result.mode, reason: result.reason };
  header.stats = {
    bytesRead: result.bytesRead, bytesNew: result.bytesNew, bytesStored: result.bytesStored,
    chunksNew: result.chunksNew, chunksZero: result.chunksZero, seconds,
    bytesNonZero: sizeBytes - counters.chunksZero * chunkBytes + zeroTailSlack(header, map),
  };
  return { result, header, body };
}

/**
 * Feeds batches to `work`, at most batchesInFlightMax at a time, in order;
 * stops at the first failure (rethrown) or when `signal` aborts. Each read
 * races the interrupt: a stream (stdin) may block forever on its next read.
 */
async function pump(batches: AsyncGenerator<Batch>, work: (batch: Batch) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const aborted = whenAborted(signal).then(() => null);
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  for (let next = await Promise.race([batches.next(), aborted]); next && !next.done; next = await Promise.race([batches.next(), aborted])) {
    const task: Promise<void> = work(next.value)
      .catch((err) => { failure ??= err; })
      .finally(() => inflight.delete(task));
    inflight.add(task);
    while (inflight.size >= batchesInFlightMax) await Promise.race(inflight);
    if (failure || signal?.aborted) break;
  }
  await Promise.all(inflight);
  if (failure) throw failure;
}

/** What an interrupted backup leaves behind: sealed packs stay (a later backup reuses their chunks). */
function sealedNote(writer: PackWriter): string {
  if (writer.packsSealed === 0) return 'nothing was left in the repository';
  return `${plural(writer.packsSealed, 'sealed pack')} (${humanBytes(writer.bytesSealed)}) stay in the repository, unreferenced: ` +
    'a later backup of the same data reuses them (blockvault stats shows them)';
}

function countZeroChunks(map: Buffer): number {
  let zero = 0;
  for (let at = 0; at < map.length; at += chunkIdBytes) if (map.compare(zeroChunkId, 0, chunkIdBytes, at, at + chunkIdBytes) === 0) zero += 1;
  return zero;
}

/** The last chunk may be short; if it is a zero chunk we over-subtracted. */
function zeroTailSlack(header: PointHeader, map: Buffer): number {
  const n = header.chunksTotal;
  if (n === 0) return 0;
  const lastLength = header.sizeBytes - (n - 1) * header.chunkBytes;
  const lastIsZero = map.subarray((n - 1) * chunkIdBytes, n * chunkIdBytes).equals(zeroChunkId);
  return lastIsZero ? header.chunkBytes - lastLength : 0;
}

function latestPoint(repo: Repository, vm: string, disk: string) {
  return repo.points.list(vm, disk)[0] ?? null;
}

/**
 * Metadata grows with what changed: when the newest point of the same disk
 * has the same size, store only the entries that differ (a delta), unless the
 * chain is at its limit or the delta would not be much smaller than a full map.
 */
async function chooseMapEncoding(repo: Repository, header: PointHeader, map: Buffer,
  parentEntry: ReturnType<typeof latestPoint>): Promise<PointBody> {
  if (!parentEntry || parentEntry.sizeBytes !== header.sizeBytes || parentEntry.chunkBytes !== header.chunkBytes) {
    return { kind: 'full', map };
  }
  let parent: OpenPoint;
  try {
    parent = await repo.points.open(parentEntry);
  } catch (err) {
    if (err instanceof BlockvaultError) return { kind: 'full', map }; // a damaged parent: stand alone
    throw err;
  }
  header.parent = parent.header.id;
  const depth = parent.header.chainDepth + 1;
  const delta = diffMaps(parent.map, map);
  const deltaBytes = delta.indexes.length * deltaEntryBytes;
  if (depth >= pointChainDepthMax || deltaBytes > map.length * pointDeltaShareMax) return { kind: 'full', map };
  header.base = parent.header.id;
  header.chainDepth = depth;
  return { kind: 'delta', ...delta };
}
