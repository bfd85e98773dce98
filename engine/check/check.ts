// check: the repository's structure, without reading chunk data (unless
// asked): every pack the index names is there at the size the index says,
// its trailer agrees with the index, every restore point's map opens and
// walks (each page read and checked), every chunk it names is in a pack
// that is there, and every VM restore point has all its disks. With a
// read-data share, the chunks of those packs are then re-read (verify).
import { createHash } from 'node:crypto';
import { BlockvaultError } from '../core/errors.js';
import { dataChunkIds } from '../repo/chunk-map.js';
import type { PointEntry } from '../repo/chunk-index.js';
import { packPath } from '../repo/layout.js';
import { listQuarantined, quarantine, quarantineEntry, type Quarantined } from '../repo/quarantine.js';
import type { Repository } from '../repo/repository.js';
import { runVerify } from '../verify/verify.js';
import type { WorkerPool } from '../workers/pool.js';

export interface CheckProblem { code: string; object: string; reason: string; points: string[] }
export interface CheckResult {
  ok: boolean; points: number; packs: number; chunksReferenced: number; problems: CheckProblem[];
  readData: { share: string; chunksChecked: number; bytesChecked: number } | null;
  /** Damage this check quarantined (records, or whole packs), and quarantined records earlier damage left that a backup has healed since. */
  quarantined: { records: number; packs: number }; healed: number; seconds: number;
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
async function checkPacks(repo: Repository, problems: CheckProblem[], badPacks: Map<string, string>): Promise<Set<string>> {
  const stored = new Map((await repo.storage.list('packs/')).map((o) => [o.key, o.sizeBytes]));
  const good = new Set<string>();
  for (const [packId, entry] of repo.index.packEntries()) {
    const key = packPath(packId);
    const size = stored.get(key);
    if (size === undefined) {
      problems.push({ code: 'PACK_MISSING', object: key, reason: 'the index names it; the repository does not have it', points: [] });
      badPacks.set(packId, 'the pack is missing');
      continue;
    }
    if (size !== entry.bytes) {
      problems.push({ code: 'PACK_SIZE', object: key, reason: `${size} bytes; it was sealed at ${entry.bytes}`, points: [] });
      badPacks.set(packId, `the pack is ${size} bytes; it was sealed at ${entry.bytes}`);
      continue;
    }
    try {
      const { records } = await repo.packs.readTrailer(packId);
      if (records.length !== entry.records) throw new BlockvaultError('CORRUPT', `its trailer lists ${records.length} records; the index ${entry.records}`);
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      problems.push({ code: err.code, object: key, reason: err.message, points: [] });
      badPacks.set(packId, err.message);
      continue;
    }
    good.add(packId);
  }
  // A pack the index does not know (its trailer could not be read when the index was built): named, and quarantined.
  // One quarantined already is no new problem: its chunks are stored afresh by later backups, and repair index salvages it.
  const known = new Set(repo.index.packEntries().map(([id]) => id));
  const quarantinedPacks = new Set((await listQuarantined(repo.storage)).filter((q) => q.offset === null).map((q) => q.pack));
  for (const key of stored.keys()) {
    const packId = /([0-9a-f]{32})\.pack$/.exec(key)?.[1];
    if (!packId || known.has(packId) || quarantinedPacks.has(packId)) continue;
    try {
      await repo.packs.readTrailer(packId);
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      problems.push({ code: 'PACK_UNREADABLE', object: key, reason: `${err.message}; blockvault repair index salvages its records`, points: [] });
      badPacks.set(packId, err.message);
    }
  }
  return good;
}

/**
 * Walks every point's map: each page read and checked; each chunk it names
 * must be in a good pack. A page walked for one point is not walked again
 * for the next (its bytes, and so what it names, are the same); only when
 * something is missing are the points walked whole, to name which it breaks.
 */
async function checkPoints(repo: Repository, goodPacks: Set<string>, problems: CheckProblem[], packUsers: Map<string, Set<string>>,
  onProgress?: (done: number, total: number) => void): Promise<number> {
  const points = repo.points.list();
  const bad = new Set<string>(); // chunk ids (hex) in no pack or in a bad one
  const records = new Map<string, Uint8Array>(); // pack -> a bit per record referenced (the count of distinct chunks)
  let distinct = 0;
  const walked = new Set<string>(); // page ids (hex): a page count, 1/1024 of the chunks
  let missingDistinct = 0;
  const visit = (id: Buffer, kind: 'page' | 'chunk' | 'base'): boolean => {
    const at = repo.index.peekLocation(id);
    const pack = at?.toString('hex', 0, 16);
    if (at && pack !== undefined) {
      let bits = records.get(pack);
      if (!bits) records.set(pack, (bits = new Uint8Array(Math.ceil((repo.index.pack(pack)?.records ?? 0) / 8) + 1)));
      const ordinal = at.readUInt32LE(41);
      if (ordinal >> 3 < bits.length && !(bits[ordinal >> 3] & (1 << (ordinal & 7)))) {
        bits[ordinal >> 3] |= 1 << (ordinal & 7);
        distinct += 1;
      }
    }
    if (!at || !goodPacks.has(pack!)) {
      const hex = id.toString('hex');
      if (!at && !bad.has(hex)) missingDistinct += 1;
      bad.add(hex);
      if (kind !== 'chunk') return false; // reading it fails: named below with the point
    }
    if (kind === 'chunk') return false;
    const hex = id.toString('hex');
    if (kind === 'base') return walked.has(hex);
    if (walked.has(hex)) return false;
    walked.add(hex);
    return true;
  };
  for (const [k, entry] of points.entries()) {
    try {
      const { map } = await repo.points.open(entry, { checkMap: true });
      await map.walk(visit);
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      problems.push({ code: err.code, object: entry.path, reason: err.message, points: [`${entry.vm}/${entry.disk}@${entry.id}`] });
    }
    onProgress?.(k + 1, points.length);
  }
  if (bad.size > 0) problems.push(...(await nameBroken(repo, points, bad, packUsers)));
  return distinct + missingDistinct;
}

/** The points each bad chunk breaks (a whole walk of every point: only when something is bad). */
async function nameBroken(repo: Repository, points: PointEntry[], bad: Set<string>, packUsers: Map<string, Set<string>>): Promise<CheckProblem[]> {
  const found = new Map<string, CheckProblem>();
  for (const entry of points) {
    const name = `${entry.vm}/${entry.disk}@${entry.id}`;
    try {
      const { map } = await repo.points.open(entry);
      for await (const id of dataChunkIds(map)) {
        const hex = id.toString('hex');
        if (!bad.has(hex)) continue;
        const where = repo.index.lookup(id);
        if (where) packUsers.set(where.packId, (packUsers.get(where.packId) ?? new Set()).add(name));
        const why = where ? `in ${packPath(where.packId)}, which is missing or damaged` : (repo.index.quarantineNote(hex) ?? 'in no pack');
        const problem = found.get(hex) ?? { code: 'CHUNK_MISSING', object: `chunk ${hex}`, reason: why, points: [] };
        if (problem.points.at(-1) !== name) problem.points.push(name);
        found.set(hex, problem);
      }
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err; // named by the first walk
    }
  }
  return [...found.values()];
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

export async function runCheck(repo: Repository, pool: WorkerPool, options: { readData?: string; quarantine?: boolean } = {},
  onProgress?: (done: number, total: number) => void): Promise<CheckResult> {
  const started = process.hrtime.bigint();
  const share = options.readData ? packShare(options.readData) : null; // a bad share is refused before any work
  const problems: CheckProblem[] = [];
  const badPacks = new Map<string, string>();
  const packUsers = new Map<string, Set<string>>();
  const goodPacks = await checkPacks(repo, problems, badPacks);
  const chunksReferenced = await checkPoints(repo, goodPacks, problems, packUsers, onProgress);
  checkGroups(repo, problems);
  const damage: Quarantined[] = [...badPacks].map(([pack, why]) => quarantineEntry(null, pack, null, why, [...(packUsers.get(pack) ?? [])]));
  let readData: CheckResult['readData'] = null;
  if (share) {
    const verified = await runVerify(repo, repo.points.list(), pool, undefined, { packFilter: share });
    readData = { share: options.readData!, chunksChecked: verified.chunksChecked, bytesChecked: verified.bytesChecked };
    damage.push(...readDataProblems(verified.points, problems));
  }
  const healed = await healedCount(repo);
  if (options.quarantine && damage.length > 0) await quarantine(repo.storage, repo.index, repo.sessionId, damage);
  const points = repo.points.list().length;
  return {
    ok: problems.length === 0, points, packs: repo.index.packEntries().length, chunksReferenced, problems, readData,
    quarantined: options.quarantine ? { records: damage.filter((d) => d.offset !== null).length, packs: damage.filter((d) => d.offset === null).length } : { records: 0, packs: 0 },
    healed, seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

/** What reading the data found, as problems, and the damaged records (to quarantine) with the points each breaks. */
function readDataProblems(points: Awaited<ReturnType<typeof runVerify>>['points'], problems: CheckProblem[]): Quarantined[] {
  const records = new Map<string, { chunk: string; pack: string; offset: number; reason: string; points: string[] }>();
  for (const v of points) {
    const name = `${v.vm}/${v.disk}@${v.id}`;
    for (const p of v.problems) {
      // Chunks in a missing pack were named above; here, what reading the data found.
      if (p.code === 'CHUNK_MISSING') continue;
      const at = 'pack' in p && p.pack ? p : null;
      problems.push({ code: p.code, object: at ? `${packPath(at.pack!)} at offset ${at.offset}` : name, reason: p.reason, points: [name] });
      if (!at || at.offset === null) continue;
      const key = `${at.pack}:${at.offset}`;
      const record = records.get(key) ?? { chunk: at.id, pack: at.pack!, offset: at.offset, reason: p.reason, points: [] };
      record.points.push(name);
      records.set(key, record);
    }
  }
  return [...records.values()].map((r) => quarantineEntry(r.chunk, r.pack, r.offset, r.reason, r.points));
}

/** Quarantined records whose chunk a later backup stored afresh: the index now locates it elsewhere. */
async function healedCount(repo: Repository): Promise<number> {
  let healed = 0;
  for (const q of await listQuarantined(repo.storage)) {
    if (q.chunk === null) continue;
    const at = repo.index.lookup(Buffer.from(q.chunk, 'hex'));
    if (at && !(at.packId === q.pack && at.offset === q.offset)) healed += 1;
  }
  return healed;
}
