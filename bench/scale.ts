// Scale model of restore-point metadata: a 1 TiB disk at 64 KiB chunks
// (16 Mi chunk ids, no data). Writes a full map, then increments changing 2%
// of chunks (scattered at random, or clustered in runs), and measures file
// sizes, the time to open a point at the end of a 15-delta chain, and the
// time to compute an increment's delta. Run: node dist/bench/scale.js
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDigests, sha256 } from '../engine/core/digest.js';
import { diffMaps, type PointHeader } from '../engine/format/point-format.js';
import { initRepository, Repository } from '../engine/repo/repository.js';

const TiB = 1024 ** 4;
const chunkBytes = 64 * 1024;

export interface IndexScale { chunks: number; indexBytes: number; bytesPerChunk: number; insertsPerSecond: number; lookupsPerSecond: number }

/**
 * The chunk index at 1/16 of "1 TiB disk, 30 restore points" (64 KiB chunks,
 * 2% new per day): 1 Mi + 29 x 20 Ki chunk ids. Measures its size on disk,
 * insert and random-lookup rates; callers extrapolate (bytes grow linearly,
 * B-tree lookups with the log of the count).
 */
export async function runIndexScale(): Promise<IndexScale> {
  await initDigests();
  const dir = mkdtempSync(join(tmpdir(), 'bv-index-'));
  const root = join(dir, 'repo');
  await initRepository(root);
  const repo = await Repository.open(root);
  try {
    const chunks = 1024 * 1024 + 29 * 20 * 1024;
    const t = process.hrtime.bigint();
    const ids: Buffer[] = [];
    for (let done = 0, pack = 0; done < chunks; pack += 1) {
      const n = Math.min(10_000, chunks - done);
      const records = Array.from({ length: n }, () => ({ id: randomBytes(32), offset: 32, rawBytes: 65536, storedBytes: 30000, codec: 1 as const, storedXxh64: 1n }));
      for (let k = 0; k < n; k += 97) ids.push(records[k].id);
      repo.index.addPack(pack.toString(16).padStart(32, '0'), 1 << 27, records);
      done += n;
    }
    const insertSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    const lookups = 200_000;
    const t2 = process.hrtime.bigint();
    for (let k = 0; k < lookups; k++) repo.index.lookup(ids[(k * 7919) % ids.length]);
    const lookupSeconds = Number(process.hrtime.bigint() - t2) / 1e9;
    const indexBytes = statSync(join(root, 'index', 'data.mdb')).size;
    return { chunks, indexBytes, bytesPerChunk: indexBytes / chunks, insertsPerSecond: chunks / insertSeconds, lookupsPerSecond: lookups / lookupSeconds };
  } finally {
    await repo.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ScaleResult {
  diskBytes: number; chunks: number; fullMapBytes: number;
  scatteredDeltaBytes: number; clusteredDeltaBytes: number;
  openFullSeconds: number; openChain15Seconds: number; diffSeconds: number;
}

function changeMap(map: Buffer, share: number, clustered: boolean): Buffer {
  const next = Buffer.from(map);
  const chunks = map.length / 32;
  const count = Math.floor(chunks * share);
  if (clustered) {
    for (let done = 0; done < count; ) {
      const start = randomInt(chunks - 256);
      randomBytes(256 * 32).copy(next, start * 32);
      done += 256;
    }
  } else {
    for (let k = 0; k < count; k++) randomBytes(32).copy(next, randomInt(chunks) * 32);
  }
  return next;
}

export async function runScale(diskBytes = TiB): Promise<ScaleResult> {
  await initDigests();
  const dir = mkdtempSync(join(tmpdir(), 'bv-scale-'));
  const root = join(dir, 'repo');
  await initRepository(root);
  const repo = await Repository.open(root, { writer: { what: 'scale', lockWaitSeconds: 0 } });
  try {
    const chunks = diskBytes / chunkBytes;
    let map: Buffer = randomBytes(chunks * 32);
    const header = (id: string, m: Buffer, parent: PointHeader | null): PointHeader => ({
      id, vm: 'scale', disk: 'sda', time: new Date().toISOString(), sizeBytes: diskBytes, chunkBytes, chunksTotal: chunks,
      parent: parent?.id ?? null, base: parent?.id ?? null, chainDepth: parent ? parent.chainDepth + 1 : 0,
      mapSha256: sha256(m).toString('hex'), source: {}, stats: {},
    });
    const ids = Array.from({ length: 16 }, (_, i) => i.toString(16).padStart(32, '0'));
    let prev = header(ids[0], map, null);
    await repo.points.write(prev, { kind: 'full', map }, repo.sessionId);
    const fullMapBytes = statSync(join(root, 'points/scale/sda', `${ids[0]}.point`)).size;
    let diffSeconds = 0;
    let scatteredDeltaBytes = 0;
    let clusteredDeltaBytes = 0;
    for (let i = 1; i < 16; i++) {
      const clustered = i % 2 === 0;
      const next = changeMap(map, 0.02, clustered);
      const t = process.hrtime.bigint();
      const delta = diffMaps(map, next);
      diffSeconds = Number(process.hrtime.bigint() - t) / 1e9;
      const h = header(ids[i], next, prev);
      await repo.points.write(h, { kind: 'delta', ...delta }, repo.sessionId);
      const size = statSync(join(root, 'points/scale/sda', `${ids[i]}.point`)).size;
      if (clustered) clusteredDeltaBytes = size;
      else scatteredDeltaBytes = size;
      prev = h;
      map = next;
    }
    const time = async (id: string) => {
      const t = process.hrtime.bigint();
      await repo.points.open(repo.index.point(id)!);
      return Number(process.hrtime.bigint() - t) / 1e9;
    };
    return {
      diskBytes, chunks, fullMapBytes, scatteredDeltaBytes, clusteredDeltaBytes,
      openFullSeconds: await time(ids[0]), openChain15Seconds: await time(ids[15]), diffSeconds,
    };
  } finally {
    await repo.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The index scale model as table rows, extrapolated to 1 TiB x 30 points and 100 TiB. */
export function indexRows(x: IndexScale): string[] {
  const at = (chunks: number) => `${((chunks * x.bytesPerChunk) / 1024 ** 3).toFixed(1)} GiB`;
  const oneTiB30 = 16 * 1024 * 1024 * (1 + 29 * 0.02);
  return [
    `| chunk index measured: ${x.chunks} chunk ids (1/16 of 1 TiB x 30 points) | ${(x.indexBytes / 1024 ** 2).toFixed(0)} MiB, ${x.bytesPerChunk.toFixed(0)} bytes per chunk |`,
    `| index inserts (10,000 per transaction) | ${(x.insertsPerSecond / 1000).toFixed(0)}k chunks/s |`,
    `| index random lookups | ${(x.lookupsPerSecond / 1000).toFixed(0)}k/s |`,
    `| extrapolated: 1 TiB disk, 30 points (${(oneTiB30 / 1e6).toFixed(1)} M unique chunks) | index ${at(oneTiB30)} |`,
    `| extrapolated: 100 TiB, same change rate (${((oneTiB30 * 100) / 1e9).toFixed(2)} G unique chunks) | index ${at(oneTiB30 * 100)}; full map ${(100 * 512 / 1024).toFixed(0)} GiB per disk-set, increments ~1.1 GiB each; lookups stay O(log n) in LMDB's B-tree but need the index's hot pages in RAM |`,
  ];
}

if (process.argv[1]?.endsWith('scale.js')) {
  const x = await runIndexScale();
  process.stdout.write(`${indexRows(x).join('\n')}\n`);
  const r = await runScale();
  const mib = (b: number) => `${(b / 1024 ** 2).toFixed(1)} MiB`;
  process.stdout.write(`1 TiB disk, ${r.chunks} chunks of 64 KiB
  full map file             ${mib(r.fullMapBytes)}
  2% scattered increment    ${mib(r.scatteredDeltaBytes)} (${((100 * r.scatteredDeltaBytes) / r.fullMapBytes).toFixed(1)}% of full)
  2% clustered increment    ${mib(r.clusteredDeltaBytes)} (${((100 * r.clusteredDeltaBytes) / r.fullMapBytes).toFixed(1)}% of full)
  open full point           ${r.openFullSeconds.toFixed(2)} s
  open point at chain end   ${r.openChain15Seconds.toFixed(2)} s (full map + 15 deltas)
  compute an increment      ${r.diffSeconds.toFixed(2)} s (diff of two maps)
`);
}
