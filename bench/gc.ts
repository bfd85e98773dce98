// gc benchmarks.
//  1. Real data: 30 daily restore points of the 4 GiB corpus image (each day
//     rewrites 10% of its data chunks with fresh data, backed up with the
//     exact changed-extents list), then the 20 oldest forgotten: about half
//     the stored bytes are garbage. Whole-process wall time and peak RSS of
//     `blockvault gc`, cold (page cache dropped, as root) and warm, medians of
//     `rounds` runs on fresh copies of the repository; beside it, in the same
//     run, the time to read every pack file once (cat, cold): what a gc that
//     read everything would cost at least.
//  2. Scale model: the mark (gc --dry-run: mark and plan, the part that grows
//     with the repository) over 30 points of an all-data disk of N chunks
//     whose chunk ids are in the index but not in packs (no chunk data),
//     at 1x (the corpus repository's chunk count) and 10x; peak memory split
//     into anonymous and file-backed (LMDB's map).
//  3. check --read-data and repair index on the 30-point repository.
// Run: node dist/bench/gc.js [--rounds 3] [--scale-only]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { initDigests, isAllZero, sha256 } from '../engine/core/digest.js';
import type { PointHeader } from '../engine/format/point-format.js';
import { PagedMap } from '../engine/repo/chunk-map.js';
import { MapBuilder } from '../engine/repo/map-builder.js';
import { storeMapPage } from '../engine/repo/map-pages.js';
import { PackWriter } from '../engine/repo/pack-writer.js';
import { putIndexObject } from '../engine/repo/index-objects.js';
import type { PackRecord } from '../engine/format/pack-format.js';
import { initRepository, Repository } from '../engine/repo/repository.js';
import { cacheDir, corpus } from './corpus.js';
import { duBytes, measure, median } from './measure.js';

const top = new URL('../..', import.meta.url).pathname;
const cli = join(top, 'dist', 'engine', 'cli', 'main.js');
const chunkBytes = 64 * 1024;
const days = 30;
/** Each day rewrites this share of the data chunks; forgetting the oldest `forgotten` of 30 then leaves about half the stored bytes dead. */
const dailyShare = 0.1;
const forgotten = 20;

function dropCaches(): void {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}
const canDrop = () => process.getuid?.() === 0;

/** The data chunks (non-zero ids) of a point: where a guest's writes land. */
async function dataChunks(root: string): Promise<number[]> {
  await initDigests();
  const repo = await Repository.open(root);
  try {
    const { map } = await repo.points.open(repo.points.list()[0]);
    const out: number[] = [];
    for await (const leaf of map.leaves()) {
      for (let k = 0; k < leaf.ids.length / 32; k++) if (!isAllZero(leaf.ids.subarray(k * 32, k * 32 + 32))) out.push(leaf.firstChunk + k);
    }
    return out;
  } finally {
    await repo.close();
  }
}

/** Builds (once, cached) the 30-point repository of the corpus image. */
async function thirtyDays(): Promise<{ root: string; points: string[] }> {
  const dir = join(cacheDir, 'gc');
  const root = join(dir, 'repo');
  const done = join(dir, `points-${dailyShare}.json`);
  if (existsSync(done)) return { root, points: JSON.parse(readFileSync(done, 'utf8')) as string[] };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const c = corpus();
  const image = join(dir, 'disk.raw');
  execFileSync('cp', ['--sparse=always', c.base, image]);
  execFileSync(process.execPath, [cli, 'init', '-r', root]);
  const run = (args: string[]) => JSON.parse(execFileSync(process.execPath, [cli, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 })) as { id: string };
  const points = [run(['backup', '-r', root, '--vm', 'bench', '--disk', 'sda', image]).id];
  const data = await dataChunks(root);
  for (let day = 1; day < days; day++) {
    process.stderr.write(`bench gc: building day ${day + 1}/${days}\n`);
    const picks = [...new Set(Array.from({ length: Math.round(data.length * dailyShare) }, () => data[randomInt(data.length)]))].sort((a, b) => a - b);
    const fd = openSync(image, 'r+');
    for (const chunk of picks) writeSync(fd, randomBytes(chunkBytes), 0, chunkBytes, chunk * chunkBytes);
    closeSync(fd);
    const changed = join(dir, 'changed.json');
    writeFileSync(changed, JSON.stringify(picks.map((chunk) => ({ start: chunk * chunkBytes, length: chunkBytes }))));
    points.push(run(['backup', '-r', root, '--vm', 'bench', '--disk', 'sda', '--parent', points.at(-1)!, '--changed', changed, image]).id);
  }
  rmSync(image);
  writeFileSync(done, JSON.stringify(points));
  return { root, points };
}

export interface GcBenchRow { mode: 'cold' | 'warm'; seconds: number; rssBytes: number; bytesBefore: number; bytesAfter: number; packsDeleted: number; packsWritten: number; readAllSeconds: number }

export async function runGcReal(rounds = 3): Promise<{ rows: GcBenchRow[]; points: number; storedBytes: number }> {
  const { root, points } = await thirtyDays();
  const work = join(cacheDir, 'gc', 'work');
  const rows: GcBenchRow[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const mode of canDrop() ? (['cold', 'warm'] as const) : (['warm'] as const)) {
      rmSync(work, { recursive: true, force: true });
      execFileSync('cp', ['-a', root, work]);
      execFileSync(process.execPath, [cli, 'forget', '-r', work, ...points.slice(0, forgotten).map((id) => `bench/sda@${id}`)]);
      let readAllSeconds = 0;
      if (mode === 'cold') {
        dropCaches();
        const t = process.hrtime.bigint();
        execFileSync('sh', ['-c', `find ${join(work, 'packs')} -name '*.pack' -print0 | xargs -0 cat > /dev/null`]);
        readAllSeconds = Number(process.hrtime.bigint() - t) / 1e9;
        dropCaches();
      }
      const m = await measure(process.execPath, [cli, 'gc', '-r', work, '--json']);
      const r = JSON.parse(m.stdout) as { bytesBefore: number; bytesAfter: number; packsDeleted: number; packsWritten: number };
      rows.push({ mode, seconds: m.seconds, rssBytes: m.rssBytes, ...r, readAllSeconds });
    }
  }
  const storedBytes = duBytes(join(root, 'packs'));
  rmSync(work, { recursive: true, force: true });
  return { rows, points: points.length, storedBytes };
}

export interface CheckRepairRow { what: 'check --read-data' | 'repair index'; mode: 'cold' | 'warm'; seconds: number; rssBytes: number; packBytes: number }

/** check --read-data and repair index on the 30-point repository: MB/s of stored data (packs), cold and warm. */
export async function runCheckRepair(rounds = 3): Promise<CheckRepairRow[]> {
  const { root } = await thirtyDays();
  const work = join(cacheDir, 'gc', 'work');
  const packBytes = duBytes(join(root, 'packs'));
  const rows: CheckRepairRow[] = [];
  rmSync(work, { recursive: true, force: true });
  execFileSync('cp', ['-a', root, work]);
  // Each command cold (page cache dropped), then again at once, warm: the cold run has just read what the warm one reads.
  for (let i = 0; i < rounds; i++) {
    for (const [what, args] of [['check --read-data', ['check', '-r', work, '--read-data']], ['repair index', ['repair', 'index', '-r', work]]] as const) {
      for (const mode of canDrop() ? (['cold', 'warm'] as const) : (['warm'] as const)) {
        if (mode === 'cold') dropCaches();
        const m = await measure(process.execPath, [cli, ...args]);
        rows.push({ what, mode, seconds: m.seconds, rssBytes: m.rssBytes, packBytes });
      }
    }
  }
  rmSync(work, { recursive: true, force: true });
  return rows;
}

export function checkRepairTable(rows: CheckRepairRow[]): string {
  const out = ['| 30-point repository | mode | wall s (median) | MB/s of packs | peak RSS MB |', '|---|---|---:|---:|---:|'];
  for (const what of ['check --read-data', 'repair index'] as const) {
    for (const mode of ['cold', 'warm'] as const) {
      const r = rows.filter((x) => x.what === what && x.mode === mode);
      if (r.length === 0) continue;
      const s = median(r.map((x) => x.seconds));
      out.push(`| ${what} | ${mode} | ${s.toFixed(2)} | ${(r[0].packBytes / 1e6 / s).toFixed(0)} | ${(Math.max(...r.map((x) => x.rssBytes)) / 1e6).toFixed(0)} |`);
    }
  }
  return out.join('\n');
}

export interface GcScaleRow { chunksPerDisk: number; records: number; markSeconds: number; rssBytes: number; anonBytes: number; fileBytes: number; indexBytes: number }

/**
 * A command's wall time and its peak resident memory split in two, sampled
 * from /proc every 20 ms: anonymous (heap, buffers) and file-backed (mostly
 * LMDB's memory-mapped index: page cache the kernel may drop at any time).
 */
async function measureMemory(args: string[]): Promise<{ seconds: number; rssBytes: number; anonBytes: number; fileBytes: number; stdout: string }> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const peak = { rss: 0, anon: 0, file: 0 };
  const sample = () => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
      peak.rss = Math.max(peak.rss, kb('VmHWM'));
      peak.anon = Math.max(peak.anon, kb('RssAnon'));
      peak.file = Math.max(peak.file, kb('RssFile'));
    } catch {
      // exited between samples
    }
  };
  const timer = setInterval(sample, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`blockvault ${args.join(' ')} exited ${code}`);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, rssBytes: peak.rss, anonBytes: peak.anon, fileBytes: peak.file, stdout };
}

/** The synthetic repository: 30 points of an all-data disk, 10% of chunks new each day; chunk ids indexed in fake packs. */
async function syntheticRepo(root: string, chunks: number): Promise<string[]> {
  await initRepository(root);
  const repo = await Repository.open(root, { writer: { what: 'bench gc scale', lockWaitSeconds: 0 } });
  const ids: string[] = [];
  try {
    let fakePack = 0;
    let objects = 0;
    // The fake packs are named by index objects, as a backup's are (gc reads what packs hold from them).
    const register = async (count: number): Promise<Buffer> => {
      const all = randomBytes(count * 32);
      let named: Array<{ packId: string; packBytes: number; records: PackRecord[] }> = [];
      const flush = async () => {
        if (named.length === 0) return;
        const key = await putIndexObject(repo.storage, repo.sessionId, 500_000 + objects++, named);
        repo.index.markIndexObject(key, named.map((p) => p.packId));
        named = [];
      };
      for (let first = 0; first < count; first += 2048) {
        const n = Math.min(2048, count - first);
        const records = Array.from({ length: n }, (_, k) => ({ id: all.subarray((first + k) * 32, (first + k + 1) * 32), offset: 32 + k * 40000, rawBytes: 65536, storedBytes: 40000 - 64, codec: 1 as const, storedXxh64: 1n }));
        const packId = `e${(fakePack++).toString(16).padStart(31, '0')}`;
        repo.index.addPack(packId, 32 + n * 40000, records);
        named.push({ packId, packBytes: 32 + n * 40000 + 64 * n + 32, records });
        if (named.length >= 64) await flush();
      }
      await flush();
      return all;
    };
    let base: PagedMap | null = null;
    for (let day = 0; day < days; day++) {
      const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 128 * 1024 * 1024);
      const builder: MapBuilder = new MapBuilder(chunks, base, async (page) => (await storeMapPage(repo.index, writer, (c) => writer.append(c), 1, page)).id);
      const changed = day === 0 ? Array.from({ length: chunks }, (_, k) => k) : [...new Set(Array.from({ length: Math.round(chunks * dailyShare) }, () => randomInt(chunks)))].sort((a, b) => a - b);
      const fresh = await register(changed.length);
      for (const [k, c] of changed.entries()) await builder.put(c, fresh.subarray(k * 32, k * 32 + 32));
      const built: Awaited<ReturnType<MapBuilder["finish"]>> = await builder.finish(chunks);
      await writer.seal();
      await writer.flushIndex();
      const id = randomBytes(16).toString('hex');
      const header: PointHeader = {
        id, vm: 'scale', disk: 'sda', time: new Date(Date.UTC(2026, 10, 1 + day)).toISOString(), sizeBytes: chunks * chunkBytes, chunkBytes, chunksTotal: chunks,
        parent: ids.at(-1) ?? null, base: null, chainDepth: 0, mapSha256: sha256(built.root).toString('hex'), source: {}, stats: {},
      };
      await repo.points.write(header, { kind: 'paged', height: built.height, root: built.root }, repo.sessionId);
      base = new PagedMap(repo.points.pages, chunks, chunkBytes, chunks * chunkBytes, built.height, built.root, id);
      ids.push(id);
    }
  } finally {
    await repo.close();
  }
  return ids;
}

/** 1x: the chunk count of the 30-point corpus repository (27 Ki data chunks per disk, 1.8 GB of data at 64 KiB). */
export async function runGcScale(factors = [1, 10], baseChunks = 27 * 1024): Promise<GcScaleRow[]> {
  await initDigests();
  const rows: GcScaleRow[] = [];
  for (const factor of factors) {
    const chunks = baseChunks * factor;
    const root = join(cacheDir, 'gc-scale', `x${factor}`);
    rmSync(join(cacheDir, 'gc-scale'), { recursive: true, force: true });
    mkdirSync(join(cacheDir, 'gc-scale'), { recursive: true });
    process.stderr.write(`bench gc: scale model, ${days} points of ${chunks} chunks\n`);
    const ids = await syntheticRepo(root, chunks);
    execFileSync(process.execPath, [cli, 'forget', '-r', root, ...ids.slice(0, forgotten).map((id) => `scale/sda@${id}`)]);
    const seconds: number[] = [];
    const peak = { rss: 0, anon: 0, file: 0 };
    for (let i = 0; i < 3; i++) {
      const m = await measureMemory(['gc', '-r', root, '--dry-run', '--json']);
      seconds.push(m.seconds);
      peak.rss = Math.max(peak.rss, m.rssBytes);
      peak.anon = Math.max(peak.anon, m.anonBytes);
      peak.file = Math.max(peak.file, m.fileBytes);
    }
    const repo = await Repository.open(root);
    const records = repo.index.chunkCount();
    await repo.close();
    rows.push({ chunksPerDisk: chunks, records, markSeconds: median(seconds), rssBytes: peak.rss, anonBytes: peak.anon, fileBytes: peak.file, indexBytes: duBytes(join(root, 'index')) });
    if (!process.env.BENCH_GC_KEEP) rmSync(join(cacheDir, 'gc-scale'), { recursive: true, force: true });
  }
  return rows;
}

export function gcTables(real: Awaited<ReturnType<typeof runGcReal>> | null, scale: GcScaleRow[]): string {
  const mb = (b: number) => (b / 1e6).toFixed(0);
  const out: string[] = [];
  if (real) {
    out.push(`| gc of ${days} points, ${forgotten} oldest forgotten (${mb(real.storedBytes)} MB of packs) | wall s (median) | peak RSS MB (max) | packs before → after MB | packs deleted / written | read every pack once (cat) s |`, '|---|---:|---:|---:|---:|---:|');
    for (const mode of ['cold', 'warm'] as const) {
      const rows = real.rows.filter((r) => r.mode === mode);
      if (rows.length === 0) continue;
      const r = rows[0];
      const readAll = mode === 'cold' ? `${median(rows.map((x) => x.readAllSeconds)).toFixed(2)} (gc ${(median(rows.map((x) => x.seconds)) / median(rows.map((x) => x.readAllSeconds))).toFixed(2)}× of it)` : '';
      out.push(`| ${mode} | ${median(rows.map((x) => x.seconds)).toFixed(2)} | ${mb(Math.max(...rows.map((x) => x.rssBytes)))} | ${mb(r.bytesBefore)} → ${mb(r.bytesAfter)} | ${r.packsDeleted} / ${r.packsWritten} | ${readAll} |`);
    }
    out.push('');
  }
  out.push(`| scale model: mark and plan (gc --dry-run), ${days} points, ${forgotten} forgotten | chunks per disk | chunk records in the index | wall s (median of 3) | peak RSS MB | of it anonymous MB | of it file-backed MB (LMDB map) | index MB |`, '|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [k, r] of scale.entries()) out.push(`| ${k === 0 ? '1×' : `${r.chunksPerDisk / scale[0].chunksPerDisk}×`} | ${r.chunksPerDisk} | ${r.records} | ${r.markSeconds.toFixed(2)} | ${mb(r.rssBytes)} | ${mb(r.anonBytes)} | ${mb(r.fileBytes)} | ${mb(r.indexBytes)} |`);
  return out.join('\n');
}

if (process.argv[1]?.endsWith('gc.js')) {
  const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] || 3);
  const save = (name: string, value: unknown) => writeFileSync(join(cacheDir, `gc-${name}.json`), JSON.stringify(value));
  const real = process.argv.includes('--scale-only') ? null : await runGcReal(process.argv.includes('--rounds') ? rounds : 3);
  save('real', real);
  const checkRepair = process.argv.includes('--scale-only') ? [] : await runCheckRepair(process.argv.includes('--rounds') ? rounds : 3);
  save('check-repair', checkRepair);
  const scale = await runGcScale();
  save('scale', scale);
  process.stdout.write(`${gcTables(real, scale)}\n\n${checkRepairTable(checkRepair)}\n`);
  if (real) process.stdout.write(`${JSON.stringify(real.rows)}\n`);
}
