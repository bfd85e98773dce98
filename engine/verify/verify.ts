// verify: re-read and re-hash every chunk the chosen restore points need,
// once per unique chunk, in pack order. Reports exactly which restore points
// a bad or missing chunk affects, and records the outcome per point.
import { chunkIdBytes, isAllZero } from '../core/digest.js';
import { BlockvaultError } from '../core/errors.js';
import type { CdcMap } from '../repo/cdc-map.js';
import { ChunkFetcher, type ChunkProblem } from '../read/chunk-fetcher.js';
import type { PointEntry } from '../repo/chunk-index.js';
import { dataChunkIds } from '../repo/chunk-map.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import { SlabSlots } from '../workers/slab-slots.js';

/** 4 MiB batches, three in flight (while one is being read, both workers decode: 10% faster than two on the 30-point corpus repository), their buffers recycled: memory stays flat whatever the repository's size. */
const fetchBatchChunks = 64;
const fetchesInFlight = 3;

export interface PointVerdict { id: string; vm: string; disk: string; ok: boolean; problems: Array<ChunkProblem | { code: string; reason: string }> }
export interface VerifyResult { ok: boolean; points: PointVerdict[]; chunksChecked: number; bytesChecked: number; seconds: number }

export async function runVerify(repo: Repository, entries: PointEntry[], pool: WorkerPool,
  onProgress?: (done: number, total: number) => void, options: { packFilter?: (packId: string) => boolean } = {}): Promise<VerifyResult> {
  const started = process.hrtime.bigint();
  const verdicts = new Map<string, PointVerdict>();
  const users = new Map<string, string[]>(); // chunk id hex -> restore point ids
  for (const entry of entries) {
    const verdict: PointVerdict = { id: entry.id, vm: entry.vm, disk: entry.disk, ok: true, problems: [] };
    verdicts.set(entry.id, verdict);
    try {
      // Walking the map reads (and checks against its id) every map page the point needs.
      const { map } = await repo.points.open(entry, { checkMap: true });
      for await (const id of dataChunkIds(map)) {
        const hex = id.toString('hex');
        const list = users.get(hex);
        if (!list) users.set(hex, [entry.id]);
        else if (list[list.length - 1] !== entry.id) list.push(entry.id);
      }
      if (map.kind === 'cdc') verdict.problems.push(...(await lengthProblems(repo, map)));
      verdict.ok = verdict.problems.length === 0;
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      verdict.ok = false;
      verdict.problems.push({ code: err.code, reason: err.message });
    }
  }
  // Pack order makes the reads sequential.
  const ids = [...users.keys()].map((hex) => Buffer.from(hex, 'hex'));
  const where = (id: Buffer) => { const l = repo.index.lookup(id); return l ? `${l.packId}:${String(l.offset).padStart(16, '0')}` : ''; };
  // A subset (check --read-data-subset) reads the chunks of some packs; a chunk in no pack is reported whatever the subset.
  const wanted = options.packFilter ? ids.filter((id) => { const l = repo.index.lookup(id); return !l || options.packFilter!(l.packId); }) : ids;
  const keyed = wanted.map((id) => [where(id), id] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const fetcher = new ChunkFetcher(repo, pool);
  const bytesChecked = await checkChunks(repo, pool, fetcher, keyed.map(([, id]) => id), (k, problem) => {
    for (const pointId of users.get(k.toString('hex')) ?? []) {
      const verdict = verdicts.get(pointId)!;
      verdict.ok = false;
      verdict.problems.push(problem);
    }
  }, onProgress);
  const now = new Date().toISOString();
  for (const v of verdicts.values()) repo.index.setVerified(v.id, v.ok, now);
  const points = [...verdicts.values()];
  return { ok: points.every((p) => p.ok), points, chunksChecked: keyed.length, bytesChecked, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/**
 * A variable-length map names each chunk's length: it must be what the
 * chunk holds (the index records each record's raw length; the records
 * themselves are re-hashed below). A map that disagrees would restore
 * shifted bytes.
 */
async function lengthProblems(repo: Repository, map: CdcMap): Promise<Array<{ code: string; reason: string }>> {
  const problems: Array<{ code: string; reason: string }> = [];
  for await (const leaf of map.leaves()) {
    const { starts, lengths, ids } = leaf.view;
    for (let k = 0; k < lengths.length && problems.length < 16; k++) {
      const id = ids.subarray(k * chunkIdBytes, (k + 1) * chunkIdBytes);
      if (isAllZero(id)) continue;
      const rawBytes = repo.index.lookup(id)?.rawBytes;
      if (rawBytes !== undefined && rawBytes !== lengths[k]) {
        problems.push({ code: 'CORRUPT', reason: `the chunk at offset ${starts[k]}: the map says ${lengths[k]} bytes, its record holds ${rawBytes}` });
      }
    }
  }
  return problems;
}

/**
 * Fetches (and so checks) every chunk, in the order given; returns the raw
 * bytes checked. Workers decode into slots of a shared slab (nothing is
 * transferred back: 5 GB of decoded output made V8 collect constantly).
 */
async function checkChunks(repo: Repository, pool: WorkerPool, fetcher: ChunkFetcher, ids: Buffer[], onProblem: (id: Buffer, problem: ChunkProblem) => void,
  onProgress?: (done: number, total: number) => void): Promise<number> {
  let bytesChecked = 0;
  const slots = new SlabSlots(pool, fetchBatchChunks * repo.config.chunkBytes, fetchesInFlight);
  const inflight: Array<Promise<void>> = [];
  const one = async (first: number): Promise<void> => {
    const batch = ids.slice(first, first + fetchBatchChunks);
    const slot = slots.take();
    try {
      // Each chunk's place in the slot, from the sizes the index records (a record that disagrees fails its check).
      const offsets: number[] = [];
      let at = 0;
      for (const id of batch) {
        offsets.push(slots.offsetOf(slot, Math.min(at, slots.slotBytes)));
        at += repo.index.lookup(id)?.rawBytes ?? 0;
      }
      const result = at <= slots.slotBytes
        ? await fetcher.fetchInto(batch, await slots.slabId(), offsets)
        : await fetcher.fetch(batch); // larger chunks than the repository's size (never written so): no slot fits
      bytesChecked += result.rawBytes.reduce((a, b) => a + b, 0);
      for (const [k, problem] of result.problems) onProblem(batch[k], problem);
    } finally {
      slots.give(slot);
    }
    onProgress?.(Math.min(first + fetchBatchChunks, ids.length), ids.length);
  };
  try {
    for (let i = 0; i < ids.length; i += fetchBatchChunks) {
      const fetching = one(i);
      fetching.catch(() => undefined); // observed when its turn comes
      inflight.push(fetching);
      if (inflight.length >= fetchesInFlight) await inflight.shift();
    }
    await Promise.all(inflight);
  } finally {
    await Promise.allSettled(inflight);
    await slots.release();
  }
  return bytesChecked;
}
