// Mount read benchmarks on the cached corpus: sequential reads of disk.raw
// (cold: page cache dropped and a fresh mount; streaming and page cache kept,
// see readSequential; warm: again), the first GiB (almost all data), random
// 4 KiB reads over data regions (cold and warm latency percentiles) and stat
// latency, beside the same reads from the original image file, through
// restic's mount, and from a null FUSE filesystem (the ceiling of
// fuse-native here).
// Run alone: node dist/bench/mount.js (needs root to drop the page cache).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../engine/core/errors.js';
import { nativeApi } from '../engine/core/native.js';
import { isMounted } from '../mount/fuse-mount.js';
import { corpus, cacheDir, type Corpus } from './corpus.js';
import { measure, median } from './measure.js';

const cli = new URL('../../dist/engine/cli/main.js', import.meta.url).pathname;
const nullFs = new URL('./null-fs.js', import.meta.url).pathname;
const MiB = 1024 * 1024;

export interface MountResult {
  /** Whole disk.raw, cold, streaming (see readSequential). */
  streamColdSeconds: number; fileStreamSeconds: number; nullStreamSeconds: number; resticStreamSeconds: number | null;
  /** Median of per-round ratios, restic seconds / blockvault seconds, streaming. */
  resticStreamRatio: number | null; nullStreamRatio: number;
  /** Whole disk.raw, cold, page cache kept; then warm. */
  sequentialColdSeconds: number; sequentialWarmSeconds: number; fileSequentialSeconds: number;
  resticRangeBytes: number; resticRangeSeconds: number | null; blockvaultRangeSeconds: number;
  resticSequentialSeconds: number | null; nullSequentialSeconds: number; rangeDataBytes: number;
  /** Medians of per-round ratios (restic seconds / blockvault seconds, null / blockvault); the first GiB is read streaming. */
  resticRangeRatio: number | null; resticSequentialRatio: number | null; nullRatio: number; rounds: number;
  randomColdMs: { p50: number; p99: number }; randomWarmMs: { p50: number; p99: number }; fileRandomMs: { p50: number; p99: number };
  statWarmUs: number;
  sizeBytes: number; dataBytes: number;
}

const dropCaches = () => { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); };
const mounted = isMounted;

/**
 * Reads a file from its start, in 4 MiB reads, up to `limit` bytes.
 * 'keep': the page cache keeps what was read, as with cp or cat.
 * 'stream': the reader drops what it has read (dd iflag=nocache), so the
 * page cache never grows. This VM hands freed memory back to its host
 * (virtio-balloon free page reporting) and the kernel pays to take it back:
 * once a read has filled ~3 GiB of page cache, every filesystem, the null
 * one included, slows to ~300 MB/s of fresh pages. 'keep' on the whole
 * 4 GiB disk measures that as much as the filesystem; 'stream' measures
 * the filesystem.
 */
function readSequential(path: string, limit = Infinity, mode: 'keep' | 'stream' = 'keep'): { seconds: number } {
  if (mode === 'stream') {
    assert(limit === Infinity || limit % (4 * MiB) === 0, 'streaming reads cover whole 4 MiB blocks');
    const t = process.hrtime.bigint();
    execFileSync('dd', [`if=${path}`, 'of=/dev/null', 'bs=4M', 'iflag=nocache', 'status=none', ...(limit === Infinity ? [] : [`count=${limit / (4 * MiB)}`])]);
    return { seconds: Number(process.hrtime.bigint() - t) / 1e9 };
  }
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  const t = process.hrtime.bigint();
  let bytes = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, limit - bytes), bytes);
    if (n <= 0) break;
    bytes += n;
    if (bytes >= limit) break;
  }
  closeSync(fd);
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9 };
}

function readRandom(path: string, offsets: number[]): { p50: number; p99: number } {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(4096);
  const times = offsets.map((o) => {
    const t = process.hrtime.bigint();
    readSync(fd, buf, 0, 4096, o);
    return Number(process.hrtime.bigint() - t) / 1e6;
  }).sort((a, b) => a - b);
  closeSync(fd);
  return { p50: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)] };
}

/** 4 KiB-aligned offsets spread over the image's data (non-hole) regions. */
/** The image's data (non-hole) extents as [start, end) pairs, flattened. */
function imageDataExtents(image: string, sizeBytes: number): number[] {
  const fd = openSync(image, 'r');
  try {
    return nativeApi()?.dataExtents(fd, sizeBytes) ?? [0, sizeBytes];
  } finally {
    closeSync(fd);
  }
}

export function dataOffsets(image: string, sizeBytes: number, count: number): number[] {
  const flat = imageDataExtents(image, sizeBytes);
  const extents: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) if (flat[i + 1] - flat[i] >= 4096) extents.push([flat[i], flat[i + 1]]);
  const total = extents.reduce((a, [s, e]) => a + e - s, 0);
  const offsets: number[] = [];
  let seed = 12345;
  for (let k = 0; k < count; k++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    let at = Math.floor((seed / 2 ** 31) * (total - 4096));
    for (const [s, e] of extents) {
      if (at < e - s - 4096) { offsets.push(Math.floor((s + at) / 4096) * 4096); break; }
      at -= e - s;
    }
  }
  return offsets;
}

/** Starts a mount process and waits until it says it is serving (readahead set and all). */
export async function startMount(args: string[], mnt: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  for (let i = 0; i < 400 && !(mounted(mnt) && /mounted/.test(log)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!mounted(mnt)) throw new Error(`mount at ${mnt} did not come up: ${log}`);
  return child;
}

export async function stopMount(child: ChildProcess, mnt: string): Promise<void> {
  const exited = new Promise((r) => child.on('close', r));
  execFileSync('fusermount', ['-u', mnt]);
  await exited;
}

function statLatencyUs(path: string, count = 2000): number {
  statSync(path);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    statSync(path);
    times.push(Number(process.hrtime.bigint() - t) / 1e3);
  }
  return median(times);
}

/** Bytes of data (not holes) in the first `limit` bytes of an image. */
function dataBytesIn(image: string, sizeBytes: number, limit: number): number {
  const flat = imageDataExtents(image, sizeBytes);
  let bytes = 0;
  for (let i = 0; i < flat.length; i += 2) bytes += Math.max(0, Math.min(limit, flat[i + 1]) - Math.min(limit, flat[i]));
  return bytes;
}

interface Round {
  fileStream: number; fileSeq: number; fileRandomMs: { p50: number; p99: number }; nullStream: number; nullSeq: number;
  stream: number; cold: number; warm: number; statUs: number; range: number;
  randomColdMs: { p50: number; p99: number }; randomWarmMs: { p50: number; p99: number };
  resticRange: number | null; resticStream: number | null; resticSeq: number | null;
}

/**
 * `rounds` interleaved rounds (this machine's speed drifts by +-30% over
 * minutes): each reads the image file, the null filesystem, blockvault's
 * mount and restic's mount cold, so every ratio compares runs made side by
 * side. Reports medians; "x faster" is the median of per-round ratios.
 */
export async function runMount(c: Corpus, withRestic = true, rounds = 3): Promise<MountResult> {
  const work = join(cacheDir, 'work-mount');
  rmSync(work, { recursive: true, force: true });
  const repo = join(work, 'repo');
  const mnt = join(work, 'mnt');
  const resticMnt = join(work, 'restic-mnt');
  mkdirSync(mnt, { recursive: true });
  mkdirSync(resticMnt, { recursive: true });
  execFileSync(process.execPath, [cli, 'init', '-r', repo]);
  execFileSync(process.execPath, [cli, 'backup', '-r', repo, '--vm', 'b', '--disk', 'sda', c.base]);
  const offsets = dataOffsets(c.base, c.sizeBytes, 500);
  const rangeBytes = 1024 * MiB; // mostly data: the rate of decoding, not of zeros

  let restic: { child: ChildProcess; file: string } | null = null;
  if (withRestic && existsSync('/usr/bin/restic')) {
    const env = { RESTIC_REPOSITORY: join(work, 'restic'), RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
    execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
    await measure('restic', ['backup', '-q', '--stdin', '--stdin-filename', 'disk.raw'], { stdin: c.base, env });
    const child = spawn('restic', ['mount', resticMnt], { stdio: 'ignore', env: { ...process.env, ...env } });
    const file = join(resticMnt, 'snapshots', 'latest', 'disk.raw');
    for (let i = 0; i < 600 && !(mounted(resticMnt) && existsSync(file)); i++) await new Promise((r) => setTimeout(r, 100));
    restic = { child, file };
  }

  const all: Round[] = [];
  for (let i = 0; i < rounds; i++) all.push(await runRound(c, repo, mnt, restic?.file ?? null, offsets, rangeBytes));
  if (restic) await stopMount(restic.child, resticMnt);
  rmSync(work, { recursive: true, force: true });

  const med = (f: (r: Round) => number) => median(all.map(f));
  const resticMed = (f: (r: Round) => number | null) => (restic ? median(all.map((r) => f(r)!)) : null);
  return {
    streamColdSeconds: med((r) => r.stream), fileStreamSeconds: med((r) => r.fileStream), nullStreamSeconds: med((r) => r.nullStream),
    resticStreamSeconds: resticMed((r) => r.resticStream), resticStreamRatio: resticMed((r) => r.resticStream! / r.stream), nullStreamRatio: med((r) => r.nullStream / r.stream),
    sequentialColdSeconds: med((r) => r.cold), sequentialWarmSeconds: med((r) => r.warm), fileSequentialSeconds: med((r) => r.fileSeq),
    resticRangeBytes: rangeBytes, resticRangeSeconds: resticMed((r) => r.resticRange), blockvaultRangeSeconds: med((r) => r.range),
    resticSequentialSeconds: resticMed((r) => r.resticSeq), nullSequentialSeconds: med((r) => r.nullSeq),
    rangeDataBytes: dataBytesIn(c.base, c.sizeBytes, rangeBytes),
    resticRangeRatio: resticMed((r) => r.resticRange! / r.range), resticSequentialRatio: resticMed((r) => r.resticSeq! / r.cold),
    nullRatio: med((r) => r.nullSeq / r.cold),
    randomColdMs: { p50: med((r) => r.randomColdMs.p50), p99: med((r) => r.randomColdMs.p99) },
    randomWarmMs: { p50: med((r) => r.randomWarmMs.p50), p99: med((r) => r.randomWarmMs.p99) },
    fileRandomMs: { p50: med((r) => r.fileRandomMs.p50), p99: med((r) => r.fileRandomMs.p99) },
    statWarmUs: med((r) => r.statUs), rounds, sizeBytes: c.sizeBytes, dataBytes: c.dataBytes,
  };
}

async function runRound(c: Corpus, repo: string, mnt: string, resticFile: string | null, offsets: number[], rangeBytes: number): Promise<Round> {
  dropCaches();
  const fileStream = readSequential(c.base, Infinity, 'stream').seconds;
  dropCaches();
  const fileSeq = readSequential(c.base).seconds;
  dropCaches();
  const fileRandomMs = readRandom(c.base, offsets);

  let server = await startMount([nullFs, mnt, String(c.sizeBytes)], mnt);
  dropCaches();
  const nullStream = readSequential(join(mnt, 'zero.raw'), Infinity, 'stream').seconds;
  dropCaches();
  const nullSeq = readSequential(join(mnt, 'zero.raw')).seconds;
  await stopMount(server, mnt);

  server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  const point = readdirSync(join(mnt, 'b', 'sda')).find((n) => n !== 'latest')!;
  const disk = join(mnt, 'b', 'sda', point, 'disk.raw');
  dropCaches();
  const stream = readSequential(disk, Infinity, 'stream').seconds;
  await stopMount(server, mnt);

  server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  dropCaches();
  const cold = readSequential(disk).seconds;
  const warm = readSequential(disk).seconds;
  const statUs = statLatencyUs(disk);
  await stopMount(server, mnt);

  server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  dropCaches();
  const randomColdMs = readRandom(disk, offsets);
  const randomWarmMs = readRandom(disk, offsets);
  await stopMount(server, mnt);
  server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  dropCaches();
  const range = readSequential(disk, rangeBytes, 'stream').seconds;
  await stopMount(server, mnt);

  let resticRange: number | null = null;
  let resticStream: number | null = null;
  let resticSeq: number | null = null;
  if (resticFile) {
    dropCaches();
    resticRange = readSequential(resticFile, rangeBytes, 'stream').seconds;
    dropCaches();
    resticStream = readSequential(resticFile, Infinity, 'stream').seconds;
    dropCaches();
    resticSeq = readSequential(resticFile).seconds;
  }
  return { fileStream, fileSeq, fileRandomMs, nullStream, nullSeq, stream, cold, warm, statUs, range, randomColdMs, randomWarmMs, resticRange, resticStream, resticSeq };
}

export function mountTable(r: MountResult): string {
  const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(0);
  const vs = (ratio: number | null) => (ratio ? ` (blockvault ${ratio.toFixed(1)}x faster)` : 'not run');
  const rangeMiB = r.resticRangeBytes / MiB;
  return ['| read | blockvault mount | original image file | restic mount | null FUSE filesystem (ceiling) |', '|---|---:|---:|---:|---:|',
    `| sequential disk.raw, cold, streaming (MB/s of disk; of data) | ${mb(r.sizeBytes, r.streamColdSeconds)}; ${mb(r.dataBytes, r.streamColdSeconds)} | ${mb(r.sizeBytes, r.fileStreamSeconds)} | ${r.resticStreamSeconds ? mb(r.sizeBytes, r.resticStreamSeconds) : ''}${vs(r.resticStreamRatio)} | ${mb(r.sizeBytes, r.nullStreamSeconds)} (blockvault at ${Math.round(100 * r.nullStreamRatio)}%) |`,
    `| sequential disk.raw, cold, page cache kept (MB/s of disk; of data) | ${mb(r.sizeBytes, r.sequentialColdSeconds)}; ${mb(r.dataBytes, r.sequentialColdSeconds)} | ${mb(r.sizeBytes, r.fileSequentialSeconds)} | ${r.resticSequentialSeconds ? mb(r.sizeBytes, r.resticSequentialSeconds) : ''}${vs(r.resticSequentialRatio)} | ${mb(r.sizeBytes, r.nullSequentialSeconds)} (blockvault at ${Math.round(100 * r.nullRatio)}%) |`,
    `| sequential first ${rangeMiB} MiB (${Math.round((100 * r.rangeDataBytes) / r.resticRangeBytes)}% data), cold, streaming (MB/s) | ${mb(r.resticRangeBytes, r.blockvaultRangeSeconds)} | | ${r.resticRangeSeconds ? mb(r.resticRangeBytes, r.resticRangeSeconds) : ''}${vs(r.resticRangeRatio)} | |`,
    `| sequential disk.raw, warm re-read (MB/s) | ${mb(r.sizeBytes, r.sequentialWarmSeconds)} | | | |`,
    `| random 4 KiB over data, cold p50 / p99 (ms) | ${r.randomColdMs.p50.toFixed(2)} / ${r.randomColdMs.p99.toFixed(2)} | ${r.fileRandomMs.p50.toFixed(2)} / ${r.fileRandomMs.p99.toFixed(2)} | | |`,
    `| random 4 KiB over data, warm p50 / p99 (ms) | ${r.randomWarmMs.p50.toFixed(3)} / ${r.randomWarmMs.p99.toFixed(3)} | | | |`,
    `| stat of disk.raw, warm p50 (us) | ${r.statWarmUs.toFixed(1)} | | | |`].join('\n');
}

if (process.argv[1]?.endsWith('mount.js')) {
  const r = await runMount(corpus());
  process.stdout.write(`${mountTable(r)}\n`);
}
