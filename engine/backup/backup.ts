// A backup: source -> batches (read ahead) -> hash, and compress while most
// chunks are new (workers, in shared slots) -> dedup (index) -> compress the
// rest of the new chunks -> append to packs -> map pages -> seal -> restore
// point. Memory is bounded by the batch slots and a few map pages, whatever
// the disk size.
import { randomBytes } from 'node:crypto';
import { BlockvaultError } from '../core/errors.js';
import { humanBytes, plural } from '../core/human.js';
import { interruptedError, whenAborted } from '../core/interrupt.js';
import { backupTime } from '../core/test-hooks.js';
import { phase } from '../core/phases.js';
import { chunkIdBytes, sha256, zeroChunkId } from '../core/digest.js';
import { batchBytes, batchesInFlightMax, chunksPerPointMax, readsInFlightMax } from '../core/limits.js';
import type { PointBody, PointHeader } from '../format/point-format.js';
import { PagedMap } from '../repo/chunk-map.js';
import { MapBuilder, type BuiltMap } from '../repo/map-builder.js';
import { storeMapPage } from '../repo/map-pages.js';
import { cdcLeafBytes } from '../format/map-format.js';
import { PackWriter, type CommitHook, type StoredChunk } from '../repo/pack-writer.js';
import type { OpenPoint } from '../repo/point-store.js';
import type { Repository } from '../repo/repository.js';
import type { Source } from '../source/source.js';
import type { SlabRef, StoredChunks } from '../workers/messages.js';
import type { WorkerPool } from '../workers/pool.js';
import { configChunker } from '../format/config-format.js';
import type { ChunkerSpec } from '../chunking/chunker.js';
import { makeScanner } from '../chunking/scanner.js';
import type { CdcMap } from '../repo/cdc-map.js';
import { CdcMapBuilder, type BuiltCdcMap } from '../repo/cdc-map-builder.js';
import { BatchSlots } from './batch-slots.js';
import { CdcReader, type CdcBatch, type CdcHoleRun, type CdcRegion, type CdcSlots, type ParentCut } from './cdc-batches.js';
import { readBatches, type Batch, type HoleRun } from './batches.js';

export interface BackupProgress { bytesDone: number; bytesTotal: number | null; bytesRead: number; bytesNew: number; chunksDone: number; chunksKnown: number; chunksNew: number }

/** An increment: start from the parent's chunk map, read only these chunks. */
export interface IncrementalPlan {
  parent: OpenPoint;
  /** [firstChunk, endChunk) ranges, ascending: the changed extents rounded out to chunks (fixed-size chunks). */
  ranges: Array<[number, number]>;
  /** Variable-length chunks: byte regions to re-chunk, each from a cut of the parent, ascending (see cdc-batches.ts). */
  regions?: CdcRegion[];
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
  /** The chunker to cut with (default: the repository's; see backupChunker). */
  chunker?: ChunkerSpec;
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
  mapKind: 'paged' | 'cdc';
  /** Map pages this backup stored (an unchanged region's pages are the parent's: none). */
  mapPagesNew: number;
  mode: 'full' | 'incremental';
  reason: string;
}

interface Counters { bytesRead: number; bytesNew: number; chunksNew: number; chunksZero: number; chunksKnown: number; bytesDone: number; chunksDone: number; mapPagesNew: number; mapBytesStored: number }

/** Bytes this backup will read: the changed chunks, a sparse image's data, the disk; null for a stream. */
export function plannedReadBytes(source: Source, plan: IncrementalPlan | undefined, chunkBytes: number): number | null {
  if (source.sizeBytes === null) return null;
  if (plan?.regions) return Math.min(source.sizeBytes, plan.regions.reduce((a, r) => a + r.end - r.start + chunkBytes, 0));
  if (plan) return Math.min(source.sizeBytes, plan.ranges.reduce((a, [first, end]) => a + end - first, 0) * chunkBytes);
  return source.dataExtents ? source.dataExtents.reduce((a, [start, end]) => a + end - start, 0) : source.sizeBytes;
}

/** What progress counts up to: the changed chunks' bytes, an estimate of the regions a CDC increment re-chunks, else the disk (holes count as done). */
function progressTotal(source: Source, plan: IncrementalPlan | undefined, chunkBytes: number): number | null {
  if (source.sizeBytes === null) return null;
  if (plan?.regions) return plannedReadBytes(source, plan, chunkBytes);
  if (plan) return plan.ranges.reduce((a, [f, e]) => a + (Math.min(e * chunkBytes, source.sizeBytes!) - f * chunkBytes), 0);
  return source.sizeBytes;
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
 * Reads, dedups and stores a disk, its map pages after its chunks, seals its
 * packs and writes their index objects: everything but the restore point, so
 * that a group of disks can commit its points only once every disk has come
 * this far.
 */
export async function prepareBackup(repo: Repository, options: BackupOptions): Promise<PreparedPoint> {
  const started = process.hrtime.bigint();
  const time = backupTime().toISOString();
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, repo.config.packBytesTarget, options.hook);
  const counters: Counters = { bytesRead: 0, bytesNew: 0, chunksNew: 0, chunksZero: 0, chunksKnown: 0, bytesDone: 0, chunksDone: 0, mapPagesNew: 0, mapBytesStored: 0 };
  const appends = new AppendQueue(writer);
  const sink = (page: Buffer) => storePage(repo, writer, appends, counters, page);
  const chunker = options.chunker ?? configChunker(repo.config);
  const map = chunker.kind === 'fixed' ? fixedMapStage(repo, options, sink) : cdcMapStage(chunker, options, sink);
  const store = new ChunkStage(repo, options, writer, appends, counters, map.slotBytes);
  const planned = progressTotal(options.source, options.plan, repo.config.chunkBytes);
  // Batches finish out of order; the map takes their ids in disk order, without holding up the batches behind.
  const ordered = new InOrder<{ item: AnyBatch; ids: Buffer | null }>(async (v) => map.put(v.item, v.ids));
  const processBatch = async (batch: AnyBatch): Promise<void> => {
    const ticket = ordered.ticket();
    let ids: Buffer | null = null;
    try {
      ids = 'hole' in batch ? null : await store.batch(batch);
      counters.bytesRead += 'hole' in batch ? 0 : batch.bytesRead;
      counters.bytesDone += 'hole' in batch ? batch.bytes : batch.chunkLengths.reduce((a, b) => a + b, 0);
      counters.chunksDone += 'hole' in batch ? batch.chunks : batch.chunkLengths.length;
      options.onProgress?.({ ...counters, bytesTotal: planned });
    } finally {
      await ordered.done(ticket, batch.firstChunk, { item: batch, ids }); // a failed batch passes its turn (the backup fails anyway)
    }
  };
  const { signal } = options;
  try {
    await pump(map.batches(store), processBatch, signal);
    phase('data-read');
    if (signal?.aborted) throw interruptedError(signal, `no restore point was committed; ${sealedNote(writer)}`);
    const sizeBytes = options.source.sizeBytes ?? counters.bytesDone;
    if (sizeBytes === 0 && !options.allowEmpty) {
      throw new BlockvaultError('BAD_INPUT', `source ${options.source.description} is empty (0 bytes): nothing was committed. ` +
        'A producer that failed in a pipe gives this; if the disk really is empty, pass --allow-empty');
    }
    await ordered.drained();
    const built = await map.finish(sizeBytes);
    await appends.idle();
    await writer.seal();
    await writer.flushIndex();
    phase('sealed');
    return describePoint(repo, options, { writer, counters, built, sizeBytes, time, started });
  } catch (err) {
    await ordered.drained().catch(() => undefined); // no page append may start after the abort
    await appends.idle().catch(() => undefined);
    await writer.abort();
    throw err;
  } finally {
    await store.release();
  }
}

type AnyBatch = Batch | HoleRun | CdcBatch | CdcHoleRun;

/** How a backup reads its source into batches and builds its map: fixed-size chunks or content-defined ones. */
interface MapStage {
  /** Bytes of one input slot. */
  slotBytes: number;
  batches(store: ChunkStage): AsyncGenerator<AnyBatch>;
  put(item: AnyBatch, ids: Buffer | null): Promise<void>;
  finish(sizeBytes: number): Promise<BuiltPointMap>;
}

/** What describePoint needs of a finished map. */
type BuiltPointMap = { kind: 'fixed'; map: BuiltMap } | { kind: 'cdc'; map: BuiltCdcMap };

function fixedMapStage(repo: Repository, options: BackupOptions, sink: (page: Buffer) => Promise<Buffer>): MapStage {
  const { chunkBytes } = repo.config;
  const knownChunks = options.source.sizeBytes === null ? null : Math.ceil(options.source.sizeBytes / chunkBytes);
  if (knownChunks !== null && knownChunks > chunksPerPointMax) throw new BlockvaultError('BAD_INPUT', `source ${options.source.description} is too large (${knownChunks} chunks; at most ${chunksPerPointMax})`);
  const builder = new MapBuilder(knownChunks, incrementBase(options.plan, knownChunks), sink);
  const batchChunks = Math.max(1, Math.floor(batchBytes / chunkBytes));
  return {
    slotBytes: batchChunks * chunkBytes,
    batches: (store) => readBatches(options.source, chunkBytes, batchChunks, store.allocate, options.plan?.ranges),
    put: async (item, ids) => { if (ids) await builder.put(item.firstChunk, ids); },
    finish: async (sizeBytes) => {
      const chunksTotal = Math.ceil(sizeBytes / chunkBytes);
      if (chunksTotal > chunksPerPointMax) throw new BlockvaultError('BAD_INPUT', `source ${options.source.description} is too large`);
      return { kind: 'fixed', map: await builder.finish(chunksTotal) };
    },
  };
}

function cdcMapStage(spec: Extract<ChunkerSpec, { maxBytes: number }>, options: BackupOptions, sink: (page: Buffer) => Promise<Buffer>): MapStage {
  const parent = options.plan?.parent.map;
  if (parent && parent.kind !== 'cdc') throw new BlockvaultError('BAD_INPUT', 'an increment of variable-length chunks needs a parent of variable-length chunks');
  if (parent && parent.sizeBytes !== options.source.sizeBytes) throw new BlockvaultError('BAD_INPUT', 'an increment needs a parent of the same disk size');
  const builder = new CdcMapBuilder(options.source.sizeBytes, parent ?? null, sink);
  return {
    slotBytes: batchBytes + spec.maxBytes,
    batches: (store) => {
      const reader = new CdcReader(options.source, spec, store.cdcSlots, (start) => makeScanner(spec, start));
      if (options.source.sizeBytes === null) return reader.stream();
      return options.plan ? reader.regions(options.plan.regions!, parentCut(parent!)) : reader.whole();
    },
    put: async (item, ids) => {
      const at = item as CdcBatch | CdcHoleRun;
      if ('hole' in at) await builder.put(at.offset, at.lengths, Buffer.alloc(at.lengths.length * chunkIdBytes)); // a hole: zero chunks
      else await builder.put(at.offset, at.chunkLengths, ids!);
    },
    finish: async (sizeBytes) => ({ kind: 'cdc', map: await builder.finish(sizeBytes) }),
  };
}

/** Is `offset` a cut of the parent: where one of its chunks starts, or the disk's end? */
function parentCut(parent: CdcMap): ParentCut {
  return async (offset) => {
    if (offset >= parent.sizeBytes) return true;
    const span = await parent.chunksIn(offset, offset + 1);
    return span.offsets[0] === offset;
  };
}

/** An increment builds on its parent's paged map (a version-1 parent is upgraded first: writes need version 3). */
function incrementBase(plan: IncrementalPlan | undefined, chunks: number | null): PagedMap | null {
  if (!plan) return null;
  if (!(plan.parent.map instanceof PagedMap)) throw new BlockvaultError('FORMAT_VERSION', `parent ${plan.parent.header.id} has a version-1 map: run blockvault upgrade first`);
  if (plan.parent.map.chunksTotal !== chunks) throw new BlockvaultError('BAD_INPUT', 'an increment needs a parent of the same disk size');
  return plan.parent.map;
}

/**
 * Hands results to `apply` in ticket order, one at a time, whatever order
 * they finish in. done() waits only when more than backlogMax results are
 * queued (the map building behind, say loading a parent's pages).
 */
class InOrder<T> {
  private issued = 0;
  private next = 0;
  private readonly ready = new Map<number, { first: number; value: T }>();
  private chain: Promise<void> = Promise.resolve();
  private static readonly backlogMax = 64;
  constructor(private readonly apply: (value: T, first: number) => Promise<void>) {}

  ticket(): number {
    return this.issued++;
  }

  done(ticket: number, first: number, value: T): Promise<void> {
    this.ready.set(ticket, { first, value });
    this.chain = this.chain.then(() => this.drain());
    this.chain.catch(() => undefined); // surfaced by drained() or by a waiting done()
    return this.ready.size > InOrder.backlogMax ? this.chain : Promise.resolve();
  }

  private async drain(): Promise<void> {
    for (let item = this.ready.get(this.next); item; item = this.ready.get(this.next)) {
      this.ready.delete(this.next);
      this.next += 1;
      await this.apply(item.value, item.first);
    }
  }

  drained(): Promise<void> {
    return this.chain;
  }
}

/** Appends to the open pack one call at a time, in call order. */
class AppendQueue {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly writer: PackWriter) {}
  append(chunks: StoredChunk[]): Promise<void> {
    this.chain = this.chain.then(() => this.writer.append(chunks));
    return this.chain;
  }
  idle(): Promise<void> {
    return this.chain;
  }
}

async function storePage(repo: Repository, writer: PackWriter, appends: AppendQueue, counters: Counters, page: Buffer): Promise<Buffer> {
  const stored = await storeMapPage(repo.index, writer, (chunks) => appends.append(chunks), repo.config.zstdLevel, page);
  if (stored.storedBytes !== null) {
    counters.mapPagesNew += 1;
    counters.mapBytesStored += stored.storedBytes;
  }
  return stored.id;
}

/** Hashes a batch's chunks, stores the new ones; returns the batch's chunk ids (holes: zero ids). */
class ChunkStage {
  private readonly claimed = new Set<string>();
  private readonly slots: BatchSlots;
  /** Share of recent batches' non-zero chunks that were new: above one half, the hash trip also compresses. */
  private newShare = 1;
  readonly allocate: (bytes: number) => Uint8Array;

  /** What a content-defined reader takes its slots from (cdc-batches.ts). */
  readonly cdcSlots: CdcSlots;

  constructor(private readonly repo: Repository, private readonly options: BackupOptions, private readonly writer: PackWriter,
    private readonly appends: AppendQueue, private readonly counters: Counters, slotBytes: number) {
    // Input: batches pump() works on, plus those read ahead of it, plus the one between the two.
    // Output: one per batch pump() works on.
    this.slots = new BatchSlots(options.pool, slotBytes, batchesInFlightMax + readsInFlightMax + 1, batchesInFlightMax);
    this.allocate = (bytes) => this.slots.take(bytes);
    this.cdcSlots = { takeWhole: () => this.slots.takeWhole(), give: (slot) => this.slots.give(slot), slotOf: (view) => this.slots.slotOf(view) };
  }

  release(): Promise<void> {
    return this.slots.release();
  }

  async batch(batch: Batch | CdcBatch): Promise<Buffer> {
    const slot = this.slots.slotOf(batch.data);
    try {
      const ids = Buffer.alloc(batch.chunkLengths.length * chunkIdBytes); // holes stay zero ids
      if (batch.readChunks.length > 0) await this.hashAndStore(batch, slot, ids);
      return ids;
    } finally {
      this.slots.give(slot);
    }
  }

  private async hashAndStore(batch: Batch | CdcBatch, slot: number, ids: Buffer): Promise<void> {
    const readLengths = batch.readChunks.map((c) => batch.chunkLengths[c]);
    const input = await this.slots.inputRef(batch.data);
    const level = this.repo.config.zstdLevel;
    const out = this.slots.takeOutput();
    try {
      const speculate = this.newShare > 0.5;
      const hashed = await this.options.pool.slabHash({ input, chunkLengths: readLengths, compress: speculate ? { level, output: await this.slots.outputRef(out) } : null });
      const fresh: Fresh[] = [];
      let at = 0;
      let nonZero = 0;
      batch.readChunks.forEach((c, i) => {
        const id = Buffer.from(hashed.ids.buffer, hashed.ids.byteOffset + i * chunkIdBytes, chunkIdBytes);
        id.copy(ids, c * chunkIdBytes);
        if (!id.equals(zeroChunkId)) {
          const hex = id.toString('hex');
          if (this.repo.index.isDedupTarget(id) || this.writer.isPending(hex) || this.claimed.has(hex)) {
            this.counters.chunksKnown += 1;
          } else {
            this.claimed.add(hex);
            fresh.push({ id: Buffer.from(id), rawBytes: readLengths[i], at, nonZero });
          }
          nonZero += 1;
        }
        at += readLengths[i];
      });
      if (nonZero > 0) this.newShare = 0.75 * this.newShare + 0.25 * (fresh.length / nonZero);
      if (fresh.length > 0) await this.storeFresh(input, out, fresh, hashed.compressed);
    } finally {
      this.slots.giveOutput(out);
    }
  }

  /** Appends the new chunks, compressed by the hash trip (speculation) or now. */
  private async storeFresh(input: SlabRef, out: number, fresh: Fresh[], compressed: StoredChunks | null): Promise<void> {
    let stored = compressed;
    let picks = fresh.map((f) => f.nonZero); // each fresh chunk's entry in `stored`
    if (!stored) {
      const ranges = fresh.flatMap((f) => [f.at, f.rawBytes]);
      stored = await this.options.pool.slabCompress({ input, ranges, level: this.repo.config.zstdLevel, output: await this.slots.outputRef(out) });
      picks = fresh.map((_, i) => i);
    }
    const payloadAt: number[] = [];
    for (let k = 0, p = 0; k < stored.storedBytes.length; p += stored.storedBytes[k], k++) payloadAt.push(p);
    const chunks: StoredChunk[] = fresh.map((f, i) => {
      const k = picks[i];
      const payload = this.slots.outputView(out, payloadAt[k], stored.storedBytes[k]);
      return { id: f.id, rawBytes: f.rawBytes, storedBytes: stored.storedBytes[k], codec: stored.codecs[k] as 0 | 1, storedXxh64: stored.storedXxh64[k], payload };
    });
    await this.appends.append(chunks); // written once this resolves: the slots may be reused
    for (const f of fresh) this.claimed.delete(f.id.toString('hex'));
    this.counters.chunksNew += fresh.length;
    this.counters.bytesNew += fresh.reduce((a, f) => a + f.rawBytes, 0);
  }
}

/** A chunk of a batch that is new to the repository: where it is in the batch, and which non-zero chunk it is. */
interface Fresh { id: Buffer; rawBytes: number; at: number; nonZero: number }

/** The restore point a finished backup commits: its header, its map's root and the `--json` result. */
async function describePoint(repo: Repository, options: BackupOptions,
  ctx: { writer: PackWriter; counters: Counters; built: BuiltPointMap; sizeBytes: number; time: string; started: bigint }): Promise<PreparedPoint> {
  const { writer, counters, built, sizeBytes, time, started } = ctx;
  const { chunkBytes } = repo.config;
  const shape = built.kind === 'fixed' ? fixedShape(options, built.map, sizeBytes, chunkBytes) : cdcShape(options.chunker ?? configChunker(repo.config), built.map);
  counters.chunksZero = shape.chunksZero;
  const parentHeader = options.plan?.parent.header;
  const parent = parentHeader ? parentHeader.id : (repo.points.list(options.vm, options.disk)[0]?.id ?? null);
  const header: PointHeader = {
    id: randomBytes(16).toString('hex'), vm: options.vm, disk: options.disk, time, sizeBytes, chunkBytes,
    chunksTotal: shape.chunksTotal, parent, base: null, chainDepth: 0,
    mapSha256: sha256(built.map.root).toString('hex'),
    source: { path: options.source.description, ...options.sourceInfo },
    stats: {},
    ...shape.fields,
  };
  const body: PointBody = { kind: built.kind === 'fixed' ? 'paged' : 'cdc', height: built.map.height, root: built.map.root };
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: BackupResult = {
    id: header.id, vm: header.vm, disk: header.disk, time, bytesTotal: sizeBytes,
    bytesRead: counters.bytesRead, bytesNew: counters.bytesNew, bytesStored: writer.bytesAppended,
    chunksTotal: shape.chunksTotal, chunksNew: counters.chunksNew, chunksZero: counters.chunksZero,
    chunksKnown: counters.chunksKnown, seconds, parent, mapKind: built.kind === 'fixed' ? 'paged' : 'cdc', mapPagesNew: counters.mapPagesNew,
    mode: options.plan ? 'incremental' : 'full',
    reason: options.reason ?? (options.plan ? 'changed-block tracking' : 'no change tracking given'),
  };
  header.source = { ...header.source, mode: result.mode, reason: result.reason };
  header.stats = {
    bytesRead: result.bytesRead, bytesNew: result.bytesNew, bytesStored: result.bytesStored,
    chunksNew: result.chunksNew, chunksZero: result.chunksZero, seconds, mapPagesNew: counters.mapPagesNew, mapBytesStored: counters.mapBytesStored,
    bytesNonZero: shape.bytesNonZero,
  };
  return { result, header, body };
}

interface PointShape { chunksTotal: number; chunksZero: number; bytesNonZero: number; fields: Partial<PointHeader> }

function fixedShape(options: BackupOptions, built: BuiltMap, sizeBytes: number, chunkBytes: number): PointShape {
  const chunksTotal = Math.ceil(sizeBytes / chunkBytes);
  const parentHeader = options.plan?.parent.header;
  const parentNonZero = parentHeader ? parentHeader.chunksTotal - (parentHeader.stats.chunksZero ?? 0) : 0;
  const chunksZero = chunksTotal - (parentNonZero + built.nonZeroChange);
  const lastLength = sizeBytes - (chunksTotal - 1) * chunkBytes;
  // The last chunk may be short: a zero one was over-subtracted.
  const bytesNonZero = sizeBytes - chunksZero * chunkBytes + (chunksTotal > 0 && built.lastChunkZero ? chunkBytes - lastLength : 0);
  return { chunksTotal, chunksZero, bytesNonZero, fields: {} };
}

function cdcShape(chunker: ChunkerSpec, built: BuiltCdcMap): PointShape {
  return { chunksTotal: built.chunksTotal, chunksZero: built.chunksZero, bytesNonZero: built.bytesNonZero, fields: { chunker, leafBytes: cdcLeafBytes } };
}

/**
 * Feeds batches to `work`, at most batchesInFlightMax at a time, in order;
 * stops at the first failure (rethrown) or when `signal` aborts. Each read
 * races the interrupt: a stream (stdin) may block forever on its next read.
 */
async function pump<T>(batches: AsyncGenerator<T>, work: (batch: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
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
