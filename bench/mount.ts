// Mount read benchmarks on the cached corpus: sequential reads of disk.raw
// (cold: page cache dropped and a fresh mount; warm: again), random 4 KiB
// reads over data regions (cold and warm latency percentiles), beside the
// same reads from the original image file and through restic's mount.
// Run alone: node dist/bench/mount.js (needs root to drop the page cache).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeApi } from '../engine/source/native.js';
import { isMounted } from '../mount/fuse-mount.js';
import { corpus, cacheDir, type Corpus } from './corpus.js';
import { measure, median } from './measure.js';

const cli = new URL('../../dist/engine/cli/main.js', import.meta.url).pathname;
const MiB = 1024 * 1024;

export interface MountResult {
  sequentialColdSeconds: number; sequentialWarmSeconds: number; fileSequentialSeconds: number;
  resticRangeBytes: number; resticRangeSeconds: number | null; blockvaultRangeSeconds: number;
  randomColdMs: { p50: number; p99: number }; randomWarmMs: { p50: number; p99: number }; fileRandomMs: { p50: number; p99: number };
  sizeBytes: number; dataBytes: number;
}

const dropCaches = () => { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); };
const mounted = isMounted;

function readSequential(path: string, limit = Infinity): { seconds: number; bytes: number } {
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
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, bytes };
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
function dataOffsets(image: string, sizeBytes: number, count: number): number[] {
  const fd = openSync(image, 'r');
  const flat = nativeApi()?.dataExtents(fd, sizeBytes) ?? [0, sizeBytes];
  closeSync(fd);
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

async function startMount(args: string[], mnt: string, cmd = process.execPath): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, RESTIC_PASSWORD: 'bench' } });
  for (let i = 0; i < 400 && !mounted(mnt); i++) await new Promise((r) => setTimeout(r, 50));
  if (!mounted(mnt)) throw new Error(`mount at ${mnt} did not come up`);
  return child;
}

async function stopMount(child: ChildProcess, mnt: string): Promise<void> {
  const exited = new Promise((r) => child.on('close', r));
  execFileSync('fusermount', ['-u', mnt]);
  await exited;
}

/** Median of `runs` measurements of the blockvault mount (restic's mount once: it is slow). */
export async function runMount(c: Corpus, withRestic = true, runs = 3): Promise<MountResult> {
  const results: MountResult[] = [];
  for (let i = 0; i < runs; i++) results.push(await runMountOnce(c, withRestic && i === 0));
  const med = (f: (r: MountResult) => number) => median(results.map(f));
  return {
    ...results[0],
    sequentialColdSeconds: med((r) => r.sequentialColdSeconds), sequentialWarmSeconds: med((r) => r.sequentialWarmSeconds),
    fileSequentialSeconds: med((r) => r.fileSequentialSeconds), blockvaultRangeSeconds: med((r) => r.blockvaultRangeSeconds),
    randomColdMs: { p50: med((r) => r.randomColdMs.p50), p99: med((r) => r.randomColdMs.p99) },
    randomWarmMs: { p50: med((r) => r.randomWarmMs.p50), p99: med((r) => r.randomWarmMs.p99) },
    fileRandomMs: { p50: med((r) => r.fileRandomMs.p50), p99: med((r) => r.fileRandomMs.p99) },
  };
}

async function runMountOnce(c: Corpus, withRestic: boolean): Promise<MountResult> {
  const work = join(cacheDir, 'work-mount');
  rmSync(work, { recursive: true, force: true });
  const repo = join(work, 'repo');
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  execFileSync(process.execPath, [cli, 'init', '-r', repo]);
  execFileSync(process.execPath, [cli, 'backup', '-r', repo, '--vm', 'b', '--disk', 'sda', c.base]);
  const offsets = dataOffsets(c.base, c.sizeBytes, 500);

  dropCaches();
  const fileSeq = readSequential(c.base);
  dropCaches();
  const fileRandomMs = readRandom(c.base, offsets);

  let server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  const point = readdirSync(join(mnt, 'b', 'sda')).find((n) => n !== 'latest')!;
  const disk = join(mnt, 'b', 'sda', point, 'disk.raw');
  dropCaches();
  const cold = readSequential(disk);
  const warm = readSequential(disk);
  await stopMount(server, mnt);

  server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  dropCaches();
  const randomColdMs = readRandom(disk, offsets);
  const randomWarmMs = readRandom(disk, offsets);
  const rangeBytes = 1024 * MiB; // restic's mount is slow: compare on the first GiB
  dropCaches();
  await stopMount(server, mnt);
  server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  dropCaches();
  const bvRange = readSequential(disk, rangeBytes);
  await stopMount(server, mnt);

  let resticRangeSeconds: number | null = null;
  if (withRestic && existsSync('/usr/bin/restic')) {
    const rrepo = join(work, 'restic');
    const env = { RESTIC_REPOSITORY: rrepo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
    execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
    await measure('restic', ['backup', '-q', '--stdin', '--stdin-filename', 'disk.raw'], { stdin: c.base, env });
    const rs = spawn('restic', ['mount', mnt], { stdio: 'ignore', env: { ...process.env, ...env } });
    for (let i = 0; i < 400 && !mounted(mnt); i++) await new Promise((r) => setTimeout(r, 50));
    dropCaches();
    const file = join(mnt, 'snapshots', 'latest', 'disk.raw');
    for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    resticRangeSeconds = readSequential(file, rangeBytes).seconds;
    await stopMount(rs, mnt);
  }
  rmSync(work, { recursive: true, force: true });
  return {
    sequentialColdSeconds: cold.seconds, sequentialWarmSeconds: warm.seconds, fileSequentialSeconds: fileSeq.seconds,
    resticRangeBytes: rangeBytes, resticRangeSeconds, blockvaultRangeSeconds: bvRange.seconds,
    randomColdMs, randomWarmMs, fileRandomMs, sizeBytes: c.sizeBytes, dataBytes: c.dataBytes,
  };
}

export function mountTable(r: MountResult): string {
  const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(0);
  return ['| read | blockvault mount | original image file | restic mount |', '|---|---:|---:|---:|',
    `| sequential disk.raw, cold (MB/s of disk; of data) | ${mb(r.sizeBytes, r.sequentialColdSeconds)}; ${mb(r.dataBytes, r.sequentialColdSeconds)} | ${mb(r.sizeBytes, r.fileSequentialSeconds)} | |`,
    `| sequential disk.raw, warm re-read (MB/s) | ${mb(r.sizeBytes, r.sequentialWarmSeconds)} | | |`,
    `| sequential first ${r.resticRangeBytes / MiB} MiB, cold (MB/s) | ${mb(r.resticRangeBytes, r.blockvaultRangeSeconds)} | | ${r.resticRangeSeconds ? `${mb(r.resticRangeBytes, r.resticRangeSeconds)} (blockvault ${(r.resticRangeSeconds / r.blockvaultRangeSeconds).toFixed(1)}x faster)` : 'not run'} |`,
    `| random 4 KiB over data, cold p50 / p99 (ms) | ${r.randomColdMs.p50.toFixed(2)} / ${r.randomColdMs.p99.toFixed(2)} | ${r.fileRandomMs.p50.toFixed(2)} / ${r.fileRandomMs.p99.toFixed(2)} | |`,
    `| random 4 KiB over data, warm p50 / p99 (ms) | ${r.randomWarmMs.p50.toFixed(3)} / ${r.randomWarmMs.p99.toFixed(3)} | | |`].join('\n');
}

if (process.argv[1]?.endsWith('mount.js')) {
  const r = await runMount(corpus());
  process.stdout.write(`${mountTable(r)}\n`);
}
