// verify: re-read and re-hash every chunk the chosen restore points need,
// once per unique chunk, in pack order. Reports exactly which restore points
// a bad or missing chunk affects, and records the outcome per point.
import { BlockvaultError } from '../core/errors.js';
import { chunkIdBytes, zeroChunkId } from '../core/digest.js';
import { ChunkFetcher, type ChunkProblem } from '../read/chunk-fetcher.js';
import type { PointEntry } from '../repo/chunk-index.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';

const fetchBatchChunks = 256;

export interface PointVerdict { id: string; vm: string; disk: string; ok: boolean; problems: Array<ChunkProblem | { code: string; reason: string }> }
export interface VerifyResult { ok: boolean; points: PointVerdict[]; chunksChecked: number; bytesChecked: number; seconds: number }

export async function runVerify(repo: Repository, entries: PointEntry[], pool: WorkerPool,
  onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
  const started = process.hrtime.bigint();
  const verdicts = new Map<string, PointVerdict>();
  const users = new Map<string, string[]>(); // chunk id hex -> restore point ids
  for (const entry of entries) {
    const verdict: PointVerdict = { id: entry.id, vm: entry.vm, disk: entry.disk, ok: true, problems: [] };
    verdicts.set(entry.id, verdict);
    try {
      const { map } = await repo.points.open(entry, { checkMap: true });
      for (let at = 0; at < map.length; at += chunkIdBytes) {
        const id = map.subarray(at, at + chunkIdBytes);
        if (id.equals(zeroChunkId)) continue;
        const hex = id.toString('hex');
        const list = users.get(hex);
        if (!list) users.set(hex, [entry.id]);
        else if (list[list.length - 1] !== entry.id) list.push(entry.id);
      }
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      verdict.ok = false;
      verdict.problems.push({ code: err.code, reason: err.message });
    }
  }
  // Pack order makes the reads sequential.
  const ids = [...users.keys()].map((hex) => Buffer.from(hex, 'hex'));
  const where = (id: Buffer) => { const l = repo.index.lookup(id); return l ? `${l.packId}:${String(l.offset).padStart(16, '0')}` : ''; };
  const keyed = ids.map((id) => [where(id), id] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const fetcher = new ChunkFetcher(repo, pool);
  let bytesChecked = 0;
  for (let i = 0; i < keyed.length; i += fetchBatchChunks) {
    const batch = keyed.slice(i, i + fetchBatchChunks).map(([, id]) => id);
    const result = await fetcher.fetch(batch);
    bytesChecked += result.rawBytes.reduce((a, b) => a + b, 0);
    for (const [k, problem] of result.problems) {
      for (const pointId of users.get(batch[k].toString('hex')) ?? []) {
        const verdict = verdicts.get(pointId)!;
        verdict.ok = false;
        verdict.problems.push(problem);
      }
    }
    onProgress?.(Math.min(i + fetchBatchChunks, keyed.length), keyed.length);
  }
  const now = new Date().toISOString();
  for (const v of verdicts.values()) repo.index.setVerified(v.id, v.ok, now);
  const points = [...verdicts.values()];
  return { ok: points.every((p) => p.ok), points, chunksChecked: keyed.length, bytesChecked, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
