// Micro-benchmarks of the hot paths (tinybench): hashing, zero detection,
// compression, index lookups, pack appends, chunk-map codecs, the read path.
// Data: 64 KiB chunks cut from real system files (compressible) and random
// bytes (incompressible). Quoted as medians.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { Compressor, Decompressor } from 'zstd-napi';
import { initDigests, isAllZero, sha256, xxh64 } from '../engine/core/digest.js';
import { decodePoint, encodePoint, type PointHeader } from '../engine/format/point-format.js';
import { ChunkFetcher } from '../engine/read/chunk-fetcher.js';
import { PackWriter } from '../engine/repo/pack-writer.js';
import { initRepository, Repository } from '../engine/repo/repository.js';
import { WorkerPool } from '../engine/workers/pool.js';
import { ChunkCache } from '../engine/read/chunk-cache.js';
import { FlatMap, PagedMap } from '../engine/repo/chunk-map.js';
import { MapBuilder } from '../engine/repo/map-builder.js';
import { storeMapPage } from '../engine/repo/map-pages.js';
import { PointReader } from '../engine/read/point-reader.js';

export interface MicroResult { name: string; medianMs: number; mbPerSecond: number | null; opsPerSecond: number }

const chunkBytes = 64 * 1024;

/** 64 KiB chunks of real system files: what a VM's filesystem mostly holds. */
export function systemChunks(count: number): Buffer[] {
  const chunks: Buffer[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (chunks.length >= count) return;
      const path = join(dir, name);
      try {
        const st = statSync(path);
        if (st.isDirectory()) walk(path);
        else if (st.isFile() && st.size >= chunkBytes) chunks.push(readFileSync(path).subarray(0, chunkBytes));
      } catch { /* unreadable */ }
    }
  };
  walk('/usr/lib/x86_64-linux-gnu');
  return chunks;
}

export async function runMicro(seconds = 0.5): Promise<MicroResult[]> {
  await initDigests();
  const system = systemChunks(64);
  const random = Array.from({ length: 64 }, () => randomBytes(chunkBytes));
  const zero = Buffer.alloc(chunkBytes);
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: 1 });
  const byLevel = new Map([3, 9].map((level) => {
    const c = new Compressor();
    c.setParameters({ compressionLevel: level });
    return [level, c] as const;
  }));
  const decompressor = new Decompressor();
  const compressed = system.map((c) => compressor.compress(c));
  let i = 0;
  const next = <T>(xs: T[]): T => xs[i++ % xs.length];

  // A repository with 100k indexed chunks for lookups, appends and reads.
  const dir = mkdtempSync(join(tmpdir(), 'bv-micro-'));
  await initRepository(join(dir, 'repo'), { packBytesTarget: 64 * 1024 * 1024 });
  const repo = await Repository.open(join(dir, 'repo'), { writer: { what: 'bench', lockWaitSeconds: 0 } });
  const pool = new WorkerPool();
  const ids = Array.from({ length: 100_000 }, (_, k) => sha256(Buffer.from(`chunk${k}`)));
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 64 * 1024 * 1024);
  for (let k = 0; k < ids.length; k += 1000) {
    await writer.append(ids.slice(k, k + 1000).map((id, j) => ({ id, rawBytes: 100, storedBytes: 100, codec: 0 as const, storedXxh64: xxh64(Buffer.alloc(100, j)), payload: Buffer.alloc(100, j) })));
  }
  await writer.seal();
  const real = system.map((c) => ({ id: sha256(c), rawBytes: c.length, storedBytes: 0, codec: 1 as const, storedXxh64: 0n, payload: c }));
  const realWriter = new PackWriter(repo.storage, repo.sessionId, repo.index, 64 * 1024 * 1024);
  await realWriter.append(real.map((r, k) => ({ ...r, payload: compressed[k], storedBytes: compressed[k].length, storedXxh64: xxh64(compressed[k]) })));
  await realWriter.seal();
  const fetcher = new ChunkFetcher(repo, pool);
  const appendWriter = new PackWriter(repo.storage, repo.sessionId, repo.index, 1024 * 1024 * 1024);
  const map = Buffer.concat(ids.slice(0, 65536));
  const header: PointHeader = { id: 'ab'.repeat(16), vm: 'v', disk: 'd', time: 't', sizeBytes: 65536 * chunkBytes, chunkBytes, chunksTotal: 65536, parent: null, base: null, chainDepth: 0, mapSha256: sha256(map).toString('hex'), source: {}, stats: {} };
  const pointBytes = encodePoint(header, { kind: 'full', map });

  const bench = new Bench({ time: seconds * 1000, warmupTime: 100 });
  const perChunk = new Map<string, number>();
  const add = (name: string, bytes: number | null, fn: () => unknown) => {
    if (bytes !== null) perChunk.set(name, bytes);
    bench.add(name, fn);
  };
  add('sha256 64KiB', chunkBytes, () => sha256(next(system)));
  add('xxh64 64KiB', chunkBytes, () => xxh64(next(system)));
  add('zero check 64KiB (all zero)', chunkBytes, () => isAllZero(zero));
  add('zstd-1 compress 64KiB system files', chunkBytes, () => compressor.compress(next(system)));
  add('zstd-1 compress 64KiB random', chunkBytes, () => compressor.compress(next(random)));
  for (const [level, c] of byLevel) add(`zstd-${level} compress 64KiB system files`, chunkBytes, () => c.compress(next(system)));
  add('zstd decompress 64KiB system files', chunkBytes, () => decompressor.decompress(next(compressed)));
  add('index lookup (LMDB, 100k chunks)', null, () => repo.index.lookup(next(ids)));
  add('index lookup miss', null, () => repo.index.lookup(next(random).subarray(0, 32)));
  add('pack append 64 x 64KiB records', 64 * chunkBytes, async () => {
    await appendWriter.append(random.map((c) => ({ id: sha256(c.subarray(0, 8)), rawBytes: chunkBytes, storedBytes: chunkBytes, codec: 0 as const, storedXxh64: 0n, payload: c })));
  });
  let batch = 0;
  add('index insert batch (1000 chunks, one txn)', null, () => {
    batch += 1;
    repo.index.addPack(`${batch.toString(16).padStart(32, '0')}`, 1, Array.from({ length: 1000 }, (_, k) => ({ id: sha256(Buffer.from(`b${batch}-${k}`)), offset: 32, rawBytes: 100, storedBytes: 100, codec: 0 as const, storedXxh64: 0n })));
  });
  const realMap = Buffer.concat(real.map((r) => r.id));
  const realHeader: PointHeader = { ...header, sizeBytes: real.length * chunkBytes, chunksTotal: real.length, mapSha256: sha256(realMap).toString('hex') };
  const point = { header: realHeader, map: new FlatMap(realMap) };
  const warmReader = new PointReader(repo, pool, point, new ChunkCache(256 * 1024 * 1024, chunkBytes), 'bench');
  await warmReader.readAt(0, real.length * chunkBytes);
  const coldReader = new PointReader(repo, pool, point, new ChunkCache(0, chunkBytes), 'bench'); // caches nothing: every read fetches
  let r = 0;
  add('reader readAt 4 KiB, cache hit', 4096, () => warmReader.readAt(((r++ * 7) % real.length) * chunkBytes + 4096, 4096));
  add('reader readAt 4 KiB, miss (fetch + verify)', 4096, () => coldReader.readAt(((r++ * 7) % real.length) * chunkBytes + 8192, 4096));
  const pageWriter = new PackWriter(repo.storage, repo.sessionId, repo.index, 64 * 1024 * 1024);
  const builder = new MapBuilder(65536, null, async (page) => (await storeMapPage(repo.index, pageWriter, (c) => pageWriter.append(c), 1, page)).id);
  await builder.put(0, map);
  const built = await builder.finish(65536);
  await pageWriter.seal();
  const paged = new PagedMap(repo.points.pages, 65536, chunkBytes, 65536 * chunkBytes, built.height, built.root, 'bench');
  let q = 0;
  add('paged map: ids of 32 chunks (4 GiB disk, pages cached)', null, () => paged.ids(((q++ * 7919) % 2000) * 32, 32));
  add('paged map: walk all leaves (4 GiB disk, pages cached)', null, async () => { for await (const leaf of paged.leaves()) void leaf; });
  add('version-1 chunk map encode (65536 chunks = 4 GiB)', null, () => encodePoint(header, { kind: 'full', map }));
  add('version-1 chunk map decode + verify (4 GiB disk)', null, () => decodePoint(pointBytes, 'bench'));
  add('read path: fetch+verify 64 x 64KiB', 64 * chunkBytes, () => fetcher.fetch(real.map((r) => r.id)));

  await bench.run();
  await appendWriter.abort();
  await pool.close();
  await repo.close();
  rmSync(dir, { recursive: true, force: true });
  return bench.tasks.map((task) => {
    const r = task.result as unknown as { latency: { p50: number }; throughput: { mean: number } };
    const medianMs = r.latency.p50;
    const bytes = perChunk.get(task.name) ?? null;
    return { name: task.name, medianMs, opsPerSecond: 1000 / medianMs, mbPerSecond: bytes === null ? null : bytes / 1e6 / (medianMs / 1000) };
  });
}

if (process.argv[1]?.endsWith('micro.js')) {
  for (const r of await runMicro()) {
    process.stdout.write(`${r.name.padEnd(44)} ${r.medianMs.toFixed(4).padStart(10)} ms  ${r.mbPerSecond ? `${r.mbPerSecond.toFixed(0).padStart(6)} MB/s` : `${r.opsPerSecond.toFixed(0).padStart(8)} op/s`}\n`);
  }
}
