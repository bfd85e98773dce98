// Disks of any size in bounded memory (`node dist/bench/big-disk.js
// [--old <previous build's dist/engine/cli/main.js>] [--sizes 16G,256G,2T]
// [--rounds 3]`): the same 4 GiB of data (an 8 GiB ext4 partition with
// system files, and 56 incompressible 64 MiB regions scattered over a third
// partition that fills the rest of the disk) on a 16 GiB disk (the baseline:
// little but data), a 256 GiB and a 2 TiB one. For each: full backup, a 1 MiB
// changed-extents increment, restore to a file, verify, `files ls`, a mount
// with 2000 random 4 KiB reads, and opening a point in-process. Whole-process
// wall time and peak RSS (GNU time), medians, cold (page cache dropped, as
// root) and warm; the previous release on the same disks when --old is given.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { initDigests } from '../engine/core/digest.js';
import { Repository } from '../engine/repo/repository.js';
import { makeVmDisk, randomStream, readPartitions } from '../scripts/vm-disk.js';
import { cacheDir } from './corpus.js';
import { measure, median } from './measure.js';
import { startMount, stopMount } from './mount.js';

const here = join(new URL('../..', import.meta.url).pathname, 'dist', 'engine', 'cli', 'main.js');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const regionBytes = 64 * MiB;
const regions = 56;
const mountCacheBytes = 32 * MiB;

export const commands = ['full backup', '1 MiB increment (--changed)', 'restore to a file', 'verify (2 points)', 'files ls', 'mount + 2000 random 4 KiB reads'] as const;
export interface Sample { seconds: number; rssBytes: number }
export interface SizeResult {
  sizeBytes: number;
  build: 'new' | 'old';
  cold: boolean;
  /** Medians per command. */
  rows: Record<string, Sample>;
  incrementMetadataBytes: number;
  pointFileBytes: number;
  openPointSeconds: number | null;
}

/** The bench disk of `sizeBytes`, cached: GPT, 32 MiB FAT, 8 GiB ext4, and the rest a raw partition with the regions. */
export function bigDisk(sizeBytes: number): { path: string; regionStarts: number[] } {
  const dir = join(cacheDir, 'big-disk');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `disk-${sizeBytes / GiB}g-v1.raw`);
  const layout = join(`${path}.json`);
  if (existsSync(path) && existsSync(layout)) return { path, regionStarts: JSON.parse(readFileSync(layout, 'utf8')) as number[] };
  const small = join(dir, 'system-8g.raw');
  if (!existsSync(small)) makeVmDisk({ path: small, sizeBytes: 8 * GiB + 64 * MiB, systemBytes: 200 * MiB, randomBytes: 300 * MiB, table: 'gpt', seed: 'big-disk' });
  rmSync(path, { force: true });
  execFileSync('cp', ['--sparse=always', small, path]);
  execFileSync('truncate', ['-s', String(sizeBytes), path]);
  execFileSync('sfdisk', ['-q', '--relocate', 'gpt-bak-std', path], { stdio: 'ignore' });
  execFileSync('sfdisk', ['-q', '--append', path], { input: ',,L\n', stdio: ['pipe', 'ignore', 'pipe'] });
  const data = readPartitions(path)[2];
  const segment = Math.floor(data.size / regions / 4096) * 4096;
  const pick = randomStream('big-disk-layout');
  const regionStarts: number[] = [];
  const fd = openSync(path, 'r+');
  try {
    const fill = randomStream('big-disk-data');
    for (let k = 0; k < regions; k++) {
      const slack = segment - regionBytes;
      const start = data.start + k * segment + Math.floor((pick(4).readUInt32LE(0) % Math.max(1, slack / 4096))) * 4096;
      for (let at = 0; at < regionBytes; at += 16 * MiB) writeSync(fd, fill(16 * MiB), 0, 16 * MiB, start + at);
      regionStarts.push(start);
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(layout, JSON.stringify(regionStarts));
  return { path, regionStarts };
}

function dropCaches(): void {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

async function timed(cli: string, args: string[], cold: boolean): Promise<Sample & { stdout: string }> {
  if (cold) dropCaches();
  const r = await measure(process.execPath, [cli, ...args]);
  return { seconds: r.seconds, rssBytes: r.rssBytes, stdout: r.stdout };
}

/** 2000 random 4 KiB reads of the mounted disk.raw (three quarters in data regions, a quarter anywhere); the mount's peak RSS. */
async function mountReads(cli: string, repo: string, work: string, disk: { path: string; regionStarts: number[] }, sizeBytes: number, cold: boolean): Promise<Sample> {
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  if (cold) dropCaches();
  const started = process.hrtime.bigint();
  const child = await startMount([cli, 'mount', '-r', repo, mnt, '--cache-size', String(mountCacheBytes)], mnt);
  let rssBytes = 0;
  try {
    const file = execFileSync('sh', ['-c', `ls -d ${mnt}/big/sda/*/disk.raw | head -1`], { encoding: 'utf8' }).trim();
    const fd = openSync(file, 'r');
    const page = Buffer.alloc(4096);
    const pick = randomStream('big-disk-reads');
    for (let k = 0; k < 2000; k++) {
      const r = pick(8).readUInt32LE(0);
      const at = k % 4 === 3
        ? Math.floor((pick(8).readUInt32LE(0) / 2 ** 32) * (sizeBytes / 4096)) * 4096
        : disk.regionStarts[r % regions] + (pick(4).readUInt32LE(0) % (regionBytes / 4096)) * 4096;
      readSync(fd, page, 0, 4096, at);
    }
    closeSync(fd);
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    rssBytes = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
  } finally {
    await stopMount(child, mnt);
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, rssBytes };
}

/** Opening the newest point and reading one chunk id from it, in-process: what every command pays before its work. */
async function openPointSeconds(repoRoot: string, cold: boolean): Promise<number> {
  await initDigests();
  const repo = await Repository.open(repoRoot);
  try {
    if (cold) dropCaches();
    const entry = repo.points.list()[0];
    const t = process.hrtime.bigint();
    const point = await repo.points.open(entry);
    if (point.map.kind === 'fixed') await point.map.ids(Math.floor(point.map.chunksTotal / 2), 1);
    return Number(process.hrtime.bigint() - t) / 1e9;
  } finally {
    await repo.close();
  }
}

/** One round of every command with one build on one disk, in a fresh repository. */
async function round(cli: string, build: 'new' | 'old', disk: { path: string; regionStarts: number[] }, sizeBytes: number, cold: boolean, k: number) {
  const work = join(realpathSync(join(cacheDir, 'big-disk')), 'work'); // the kernel names mounts by real path
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const repo = join(work, 'repo');
  execFileSync(process.execPath, [cli, 'init', '-r', repo], { stdio: 'ignore' });
  const samples: Record<string, Sample> = {};
  samples[commands[0]] = await timed(cli, ['backup', '-r', repo, '--vm', 'big', '--disk', 'sda', disk.path], cold);
  // The guest's day: 1 MiB of new bytes in one region (a new pattern each round, so the increment has something to store).
  const changedAt = disk.regionStarts[17] + 5 * MiB;
  const fd = openSync(disk.path, 'r+');
  writeSync(fd, randomStream(`big-disk-day-${k}`)(MiB), 0, MiB, changedAt);
  closeSync(fd);
  const extents = join(work, 'changed.json');
  writeFileSync(extents, JSON.stringify([{ start: changedAt, length: MiB }]));
  const increment = await timed(cli, ['backup', '-r', repo, '--vm', 'big', '--disk', 'sda', '--changed', extents, disk.path, '--json'], cold);
  samples[commands[1]] = increment;
  const inc = JSON.parse(increment.stdout) as { id: string; bytesStored: number };
  const pointFile = join(repo, 'points', 'big', 'sda', `${inc.id}.point`);
  const pointFileBytes = statSync(pointFile).size;
  // New: the increment's pages (in its pack) and its root. Old: its point file (a delta, or a whole map) and the chunks' pack.
  const incrementMetadataBytes = build === 'new' ? pointFileBytes + mapBytes(repo, inc.id) : pointFileBytes;
  const out = join(work, 'restored.raw');
  samples[commands[2]] = await timed(cli, ['restore', '-r', repo, 'big/sda@latest', out], cold);
  rmSync(out, { force: true });
  samples[commands[3]] = await timed(cli, ['verify', '-r', repo], cold);
  samples[commands[4]] = await timed(cli, ['files', 'ls', '-r', repo, 'big/sda@latest', '--part', '2', '/srv'], cold);
  samples[commands[5]] = await mountReads(cli, repo, work, disk, sizeBytes, cold);
  const open = build === 'new' ? await openPointSeconds(repo, cold) : null;
  rmSync(work, { recursive: true, force: true });
  return { samples, incrementMetadataBytes, pointFileBytes, open };
}

/** The map bytes an increment stored: its stats say (mapBytesStored). */
function mapBytes(repo: string, id: string): number {
  const r = spawnSync(process.execPath, [here, 'list', '-r', repo, '--json'], { encoding: 'utf8' });
  const points = JSON.parse(r.stdout) as Array<{ id: string; mapBytesStored?: number }>;
  return points.find((p) => p.id === id)?.mapBytesStored ?? 0;
}

export async function runBigDisk(options: { sizes?: number[]; rounds?: number; old?: string | null } = {}): Promise<SizeResult[]> {
  const sizes = options.sizes ?? [16 * GiB, 256 * GiB, 2048 * GiB];
  const rounds = options.rounds ?? 3;
  const colds = process.getuid?.() === 0 ? [true, false] : [false];
  const results: SizeResult[] = [];
  for (const sizeBytes of sizes) {
    const disk = bigDisk(sizeBytes);
    const builds: Array<['new' | 'old', string, number]> = [['new', here, rounds], ...(options.old ? [['old', options.old, 1] as ['old', string, number]] : [])];
    for (const cold of colds) {
      for (const [build, cli, n] of builds) {
        process.stderr.write(`bench: big disk ${sizeBytes / GiB} GiB, ${build} build, ${cold ? 'cold' : 'warm'}\n`);
        const runs = [];
        for (let k = 0; k < n; k++) runs.push(await round(cli, build, disk, sizeBytes, cold, k));
        const rows: Record<string, Sample> = {};
        for (const c of commands) rows[c] = { seconds: median(runs.map((r) => r.samples[c].seconds)), rssBytes: median(runs.map((r) => r.samples[c].rssBytes)) };
        results.push({
          sizeBytes, build, cold, rows,
          incrementMetadataBytes: median(runs.map((r) => r.incrementMetadataBytes)),
          pointFileBytes: median(runs.map((r) => r.pointFileBytes)),
          openPointSeconds: build === 'new' ? median(runs.map((r) => r.open!)) : null,
        });
      }
    }
  }
  return results;
}

const size = (b: number) => (b >= 1024 * GiB ? `${b / 1024 / GiB} TiB` : `${b / GiB} GiB`);
const mb = (b: number) => (b / 1e6).toFixed(b < 1e6 ? 2 : 0);
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

export function bigDiskTables(results: SizeResult[]): string {
  const out: string[] = [];
  for (const cold of [true, false]) {
    const mine = results.filter((r) => r.cold === cold);
    if (mine.length === 0) continue;
    const base = mine.find((r) => r.build === 'new' && r.sizeBytes === Math.min(...mine.map((x) => x.sizeBytes)))!;
    out.push(`| ${cold ? 'cold' : 'warm'}: command | disk | build | wall s | vs ${size(base.sizeBytes)} | peak RSS MB | vs ${size(base.sizeBytes)} |`, '|---|---|---|---:|---:|---:|---:|');
    for (const c of commands) {
      for (const r of mine) {
        const s = r.rows[c];
        out.push(`| ${c} | ${size(r.sizeBytes)} | ${r.build} | ${s.seconds.toFixed(2)} | ${(s.seconds / base.rows[c].seconds).toFixed(2)}x | ${mb(s.rssBytes)} | ${(s.rssBytes / base.rows[c].rssBytes).toFixed(2)}x |`);
      }
    }
    out.push('');
    out.push(`| ${cold ? 'cold' : 'warm'}: disk | build | the increment's metadata | its point file | open a point (in-process) |`, '|---|---|---:|---:|---:|');
    for (const r of mine) out.push(`| ${size(r.sizeBytes)} | ${r.build} | ${kib(r.incrementMetadataBytes)} | ${kib(r.pointFileBytes)} | ${r.openPointSeconds === null ? '-' : `${(r.openPointSeconds * 1000).toFixed(1)} ms`} |`);
    out.push('');
  }
  out.push(`The mount's peak RSS includes its chunk cache (--cache-size ${mountCacheBytes / MiB}M, filled by the reads). ` +
    'New: the increment\'s metadata is its point file (the root) and the map pages it stored; old: its point file (a delta; every 16th point and the full backup are whole maps, 32 bytes per chunk of the disk).');
  return out.join('\n');
}

if (process.argv[1]?.endsWith('big-disk.js') && process.argv[2] === '--tables') {
  process.stdout.write(`${bigDiskTables(JSON.parse(readFileSync(process.argv[3], 'utf8')) as SizeResult[])}\n`);
} else if (process.argv[1]?.endsWith('big-disk.js')) {
  const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
  const parseSize = (s: string) => Number(s.slice(0, -1)) * (s.endsWith('T') ? 1024 * GiB : GiB);
  const results = await runBigDisk({ old: arg('--old') ?? null, sizes: arg('--sizes')?.split(',').map(parseSize), rounds: Number(arg('--rounds') ?? 3) });
  process.stdout.write(`${bigDiskTables(results)}\n`);
  writeFileSync(join(cacheDir, 'big-disk', 'results.json'), JSON.stringify(results, null, 2));
}
