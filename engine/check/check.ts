// check: the repository's structure, without reading chunk data (unless
// asked): every pack the index names is there at the size the index says,
// its trailer agrees with the index, every restore point's map opens and
// walks (each page read and checked), every chunk it names is in a pack
// that is there, and every VM restore point has all its disks. With a
// read-data share, the chunks of those packs are then re-read (verify).
import { createHash } from 'node:crypto';
import { BlockvaultError } from '../core/errors.js';
import { dataChunkIds } from '../repo/chunk-map.js';
import { packPath } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { runVerify } from '../verify/verify.js';
import type { WorkerPool } from '../workers/pool.js';

export interface CheckProblem { code: string; object: string; reason: string; points: string[] }
export interface CheckResult {
  ok: boolean; points: number; packs: number; chunksReferenced: number; problems: CheckProblem[];
  readData: { share: string; chunksChecked: number; bytesChecked: number } | null; seconds: number;
}

/** "all", "N/M" (the N-th of M deterministic shares of the packs: M runs cover every pack) or "P%". */
export function packShare(spec: string): (packId: string) => boolean {
  if (spec === 'all') return () => true;
  const slot = (packId: string) => createHash('sha256').update(packId).digest().readUInt32BE(0);
  const part = /^(\d+)\/(\d+)$/.exec(spec);
  if (part && Number(part[1]) >= 1 && Number(part[1]) <= Number(part[2])) return (id) => slot(id) % Number(part[2]) === Number(part[1]) - 1;
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(spec);
  if (percent && Number(percent[1]) > 0 && Number(percent[1]) <= 100) return (id) => slot(id) / 2 ** 32 < Number(percent[1]) / 100;
  throw new BlockvaultError('USAGE', `--read-data-subset ${JSON.stringify(spec)}: expected N/M (1 <= N <= M) or a percentage such as 10%`);
}

/** Packs the index names: present in the store, at the size the index says, their trailers agreeing with it. */
async function checkPacks(repo: Repository, problems: CheckProblem[]): Promise<Set<string>> {
  const stored = new Map((await repo.storage.list('packs/')).map((o) => [o.key, o.sizeBytes]));
  const good = new Set<string>();
  for (const [packId, entry] of repo.index.packEntries()) {
    const key = packPath(packId);
    const size = stored.get(key);
    if (size === undefined) {
      problems.push({ code: 'PACK_MISSING', object: key, reason: 'the index names it; the repository does not have it', points: [] });
      continue;
    }
    if (size !== entry.bytes) {
      problems.push({ code: 'PACK_SIZE', object: key, reason: `${size} bytes; it was sealed at ${entry.bytes}`, points: [] });
      continue;
    }
    try {
      const { records } = await repo.packs.readTrailer(packId);
      if (records.length !== entry.records) throw new BlockvaultError('CORRUPT', `its trailer lists ${records.length} records; the index ${entry.records}`);
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      problems.push({ code: err.code, object: key, reason: err.message, points: [] });
      continue;
    }
    good.add(packId);
  }
  return good;
}

/** Walks every point's map: each page read and checked; each chunk it names must be in a good pack. */
async function checkPoints(repo: Repository, goodPacks: Set<string>, problems: CheckProblem[], onProgress?: (done: number, total: number) => void): Promise<number> {
  const points = repo.points.list();
  const missing = new Map<string, CheckProblem>(); // chunk id hex -> its problem
  const seen = new Set<string>();
  for (const [k, entry] of points.entries()) {
    const name = `${entry.vm}/${entry.disk}@${entry.id}`;
    try {
      const { map } = await repo.points.open(entry, { checkMap: true });
      for await (const id of dataChunkIds(map)) {
        const hex = id.toString('hex');
        seen.add(hex);
        const where = repo.index.lookup(id);
        if (where && goodPacks.has(where.packId)) continue;
        const problem = missing.get(hex) ?? { code: 'CHUNK_MISSING', object: `chunk ${hex}`, reason: where ? `in ${packPath(where.packId)}, which is missing or damaged` : 'in no pack', points: [] };
        if (problem.points.at(-1) !== name) problem.points.push(name);
        missing.set(hex, problem);
      }
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      problems.push({ code: err.code, object: entry.path, reason: err.message, points: [name] });
    }
    onProgress?.(k + 1, points.length);
  }
  problems.push(...missing.values());
  return seen.size;
}

/** Every VM restore point has each of its disks, naming it back. */
function checkGroups(repo: Repository, problems: CheckProblem[]): void {
  for (const g of repo.index.allGroups()) {
    for (const d of g.disks) {
      const p = repo.index.point(d.point);
      if (!p || p.group !== g.id || p.disk !== d.disk) {
        problems.push({ code: 'GROUP_INCOMPLETE', object: `groups/${g.vm}/${g.id}.group`, reason: `its disk ${d.disk} (restore point ${d.point}) is ${p ? 'another point' : 'missing'}`, points: [`${g.vm}@${g.id}`] });
      }
    }
  }
}

export async function runCheck(repo: Repository, pool: WorkerPool, options: { readData?: string } = {}, onProgress?: (done: number, total: number) => void): Promise<CheckResult> {
  const started = process.hrtime.bigint();
  const share = options.readData ? packShare(options.readData) : null; // a bad share is refused before any work
  const problems: CheckProblem[] = [];
  const goodPacks = await checkPacks(repo, problems);
  const chunksReferenced = await checkPoints(repo, goodPacks, problems, onProgress);
  checkGroups(repo, problems);
  let readData: CheckResult['readData'] = null;
  if (share) {
    const verified = await runVerify(repo, repo.points.list(), pool, undefined, { packFilter: share });
    for (const v of verified.points) {
      const name = `${v.vm}/${v.disk}@${v.id}`;
      for (const p of v.problems) {
        // Chunks in a missing pack were named above; here, what reading the data found.
        if (p.code === 'CHUNK_MISSING') continue;
        problems.push({ code: p.code, object: 'pack' in p && p.pack ? `${packPath(p.pack)} at offset ${p.offset}` : name, reason: p.reason, points: [name] });
      }
    }
    readData = { share: options.readData!, chunksChecked: verified.chunksChecked, bytesChecked: verified.bytesChecked };
  }
  const points = repo.points.list().length;
  return { ok: problems.length === 0, points, packs: repo.index.packEntries().length, chunksReferenced, problems, readData, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
