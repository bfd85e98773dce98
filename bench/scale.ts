// Scale model of restore-point metadata: a 1 TiB disk at 64 KiB chunks
// (16 Mi chunk ids, no data) as a paged map, then increments changing 2% of
// chunks (scattered at random, or clustered in runs); measures what each
// stores, the time to open a point and to build an increment; and the chunk
// index at scale. Run: node dist/bench/scale.js
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDigests, sha256 } from '../engine/core/digest.js';
import type { PointHeader } from '../engine/format/point-format.js';
import { PagedMap } from '../engine/repo/chunk-map.js';
import { MapBuilder } from '../engine/repo/map-builder.js';
import { storeMapPage } from '../engine/repo/map-pages.js';
import { PackWriter } from '../engine/repo/pack-writer.js';
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
  diskBytes: number; chunks: number; height: number;
  fullMapBytes: number; fullPointFileBytes: number;
  scatteredIncrementBytes: number; clusteredIncrementBytes: number;
  openSeconds: number; incrementBuildSeconds: number;
}

/** The chunks an increment changes: 2% of them, one at a time at random or in runs of 256. */
function changedRuns(chunks: number, share: number, clustered: boolean): Array<[number, number]> {
  const picks = new Set<number>();
  const count = Math.floor(chunks * share);
  while (picks.size < count) {
    const start = randomInt(chunks - 256);
    for (let k = 0; k < (clustered ? 256 : 1); k++) picks.add(start + k);
  }
  const runs: Array<[number, number]> = [];
  for (const c of [...picks].sort((a, b) => a - b)) {
    if (runs.length && runs[runs.length - 1][1] === c) runs[runs.length - 1][1] += 1;
    else runs.push([c, c + 1]);
  }
  return runs;
}

/**
 * A 1 TiB disk every chunk of which holds data (16 Mi distinct chunk ids,
 * no chunk data): its paged map, and increments changing 2% of its chunks,
 * scattered or clustered, built by the real map builder into a real
 * repository. Measures the bytes each stores (compressed pages + root), the
 * time to open a point and read an id from it, and to build an increment.
 */
export async function runScale(diskBytes = TiB): Promise<ScaleResult> {
  await initDigests();
  const dir = mkdtempSync(join(tmpdir(), 'bv-scale-'));
  const root = join(dir, 'repo');
  await initRepository(root);
  const repo = await Repository.open(root, { writer: { what: 'scale', lockWaitSeconds: 0 } });
  try {
    const chunks = diskBytes / chunkBytes;
    const build = async (base: PagedMap | null, runs: Array<[number, number]>) => {
      const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 128 * 1024 * 1024);
      let stored = 0;
      const builder = new MapBuilder(chunks, base, async (page) => {
        const r = await storeMapPage(repo.index, writer, (c) => writer.append(c), 1, page);
        stored += r.storedBytes ?? 0;
        return r.id;
      });
      const t = process.hrtime.bigint();
      for (const [first, end] of runs) {
        for (let c = first; c < end; c += 65536) await builder.put(c, randomBytes(Math.min(65536, end - c) * 32));
      }
      const built = await builder.finish(chunks);
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      await writer.seal();
      const map = new PagedMap(repo.points.pages, chunks, chunkBytes, diskBytes, built.height, built.root, 'scale');
      return { map, bytes: stored + built.root.length, seconds, built };
    };
    const full = await build(null, [[0, chunks]]);
    const header: PointHeader = {
      id: '0'.repeat(32), vm: 'scale', disk: 'sda', time: new Date().toISOString(), sizeBytes: diskBytes, chunkBytes, chunksTotal: chunks,
      parent: null, base: null, chainDepth: 0, mapSha256: sha256(full.built.root).toString('hex'), source: {}, stats: {},
    };
    await repo.points.write(header, { kind: 'paged', height: full.built.height, root: full.built.root }, repo.sessionId);
    const scattered = await build(full.map, changedRuns(chunks, 0.02, false));
    const clustered = await build(full.map, changedRuns(chunks, 0.02, true));
    // A fresh repository handle: nothing cached, as a new command opens it.
    await repo.close();
    const reader = await Repository.open(root);
    const t = process.hrtime.bigint();
    const point = await reader.points.open(reader.index.point(header.id)!);
    if (point.map.kind === 'fixed') await point.map.ids(chunks - 1, 1);
    const openSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    await reader.close();
    return {
      diskBytes, chunks, height: full.built.height, fullMapBytes: full.bytes,
      fullPointFileBytes: statSync(join(root, 'points/scale/sda', `${header.id}.point`)).size,
      scatteredIncrementBytes: scattered.bytes, clusteredIncrementBytes: clustered.bytes, openSeconds, incrementBuildSeconds: scattered.seconds,
    };
  } finally {
    await repo.close().catch(() => undefined);
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
    `| extrapolated: 100 TiB, same change rate (${((oneTiB30 * 100) / 1e9).toFixed(2)} G unique chunks) | index ${at(oneTiB30 * 100)}; lookups stay O(log n) in LMDB's B-tree but need the index's hot pages in RAM |`,
  ];
}

/** The paged-map scale model as table rows. */
export function scaleRows(r: ScaleResult): string[] {
  const mib = (b: number) => `${(b / 1024 ** 2).toFixed(1)} MiB`;
  const share = (b: number) => `${((100 * b) / r.fullMapBytes).toFixed(1)}% of the full map`;
  return [
    `| 1 TiB disk, 64 KiB chunks, every chunk data (${r.chunks} chunk ids), paged map of height ${r.height} | value |`, '|---|---:|',
    `| full map: pages stored (zstd) + root | ${mib(r.fullMapBytes)} |`,
    `| its point file (the root) | ${(r.fullPointFileBytes / 1024).toFixed(1)} KiB |`,
    `| increment, 2% of chunks scattered | ${mib(r.scatteredIncrementBytes)} (${share(r.scatteredIncrementBytes)}) |`,
    `| increment, 2% of chunks clustered | ${mib(r.clusteredIncrementBytes)} (${share(r.clusteredIncrementBytes)}) |`,
    `| open a point and read an id (new process state) | ${(r.openSeconds * 1000).toFixed(1)} ms |`,
    `| build the scattered increment's map | ${r.incrementBuildSeconds.toFixed(2)} s |`,
  ];
}

if (process.argv[1]?.endsWith('scale.js')) {
  const x = await runIndexScale();
  process.stdout.write(`${indexRows(x).join('\n')}\n`);
  process.stdout.write(`${scaleRows(await runScale()).join('\n')}\n`);
}
