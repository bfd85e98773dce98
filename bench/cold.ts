// Whole commands as a nightly job meets them: wall time of the whole process,
// warm and (with --cold, as root) with the page cache dropped before every
// command, each beside a limit of this machine measured in the same round:
//   CBT increment   vs  node reading the changed chunks with plain preads
//                       (1 and 8 in flight; its node start-up included)
//   restore (fsync) vs  cp --sparse=always of the image, then sync
//   full backup     vs  SHA-256 + zstd -1 of every data chunk on every core
//                       (bench/limit-cpu.ts: the same libraries, nothing else)
//   mount, dd bs=1M of disk.raw through a fresh mount vs the null FUSE
//                       filesystem and the image file
// and restic and borg beside them (one run each per mode). On two corpora:
// the one the code was tuned on, and a differently shaped one
// (bench/corpus.ts corpusMixed). blockvault's runs carry BLOCKVAULT_PHASES,
// so the report also says where each command's time went.
// Run: node dist/bench/cold.js [--cold | --cold-only] [--rounds 3] [--corpus vm4g,mix6g] [--no-others]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PhaseMark } from '../engine/core/phases.js';
import { corpus, corpusMixed, cacheDir, type Corpus } from './corpus.js';
import { median } from './measure.js';
import { startMount, stopMount } from './mount.js';
import { breakdownTable, summarize, type PhaseRun } from './phase-report.js';

const top = new URL('../..', import.meta.url).pathname;
// BLOCKVAULT_BENCH_CLI: another build's main.js (say the previous release's, from a git worktree) in blockvault's place.
const cli = process.env.BLOCKVAULT_BENCH_CLI ?? join(top, 'dist', 'engine', 'cli', 'main.js');
const limitRead = join(top, 'dist', 'bench', 'limit-read.js');
const limitCpu = join(top, 'dist', 'bench', 'limit-cpu.js');
const nullFs = join(top, 'dist', 'bench', 'null-fs.js');
const node = process.execPath;

export interface Timed { seconds: number; rssBytes: number }
/** `against`: the limit the goal is stated against (the ratio column). */
export interface Row { what: string; ours: Timed; limits: Record<string, number>; against: string; others: Record<string, number> }
export interface LevelRow { level: number; seconds: number; storedBytes: number }
export interface ColdReport { corpus: string; cold: boolean; rounds: number; rows: Row[]; phases: Record<string, PhaseRun[]>; levels: LevelRow[] }

export const dropCaches = () => { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); };

/** Wall seconds and peak RSS of one command (a shell line: pipes and redirections count whole). */
export function run(line: string, cold: boolean, env: Record<string, string> = {}): Timed {
  execFileSync('sync');
  if (cold) dropCaches();
  const timeFile = join(cacheDir, 'cold-time.txt');
  const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%e %M', 'bash', '-o', 'pipefail', '-c', line], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`${line} exited ${r.status}: ${String(r.stderr).slice(-2000)}`);
  const [seconds, rssKb] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  return { seconds, rssBytes: rssKb * 1024 };
}

/** The changed extents rounded out to 64 KiB chunks and merged: what an increment must read. */
function changedChunkRanges(c: Corpus, chunkBytes = 64 * 1024): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const e of c.day2Extents) {
    const start = Math.floor(e.start / chunkBytes) * chunkBytes;
    const end = Math.min(c.sizeBytes, Math.ceil((e.start + e.length) / chunkBytes) * chunkBytes);
    const last = ranges[ranges.length - 1];
    if (last && last[0] + last[1] >= start) last[1] = Math.max(last[1], end - last[0]);
    else ranges.push([start, end - start]);
  }
  return ranges;
}

interface Setup { c: Corpus; work: string; pristine: string; baseId: string; extents: string; ranges: string; mnt: string }

function prepare(c: Corpus): Setup {
  const work = join(cacheDir, `cold-${c.name}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'mnt'), { recursive: true });
  const pristine = join(work, 'pristine');
  execFileSync(node, [cli, 'init', '-r', pristine]);
  const base = JSON.parse(execFileSync(node, [cli, 'backup', '-r', pristine, '--vm', 'b', '--disk', 'sda', c.base, '--json'], { encoding: 'utf8' })) as { id: string };
  const extents = join(work, 'changed.json');
  writeFileSync(extents, JSON.stringify(c.day2Extents));
  const ranges = join(work, 'ranges.json');
  writeFileSync(ranges, JSON.stringify(changedChunkRanges(c)));
  return { c, work, pristine, baseId: base.id, extents, ranges, mnt: join(work, 'mnt') };
}

type Phases = Record<string, PhaseRun[]>;

function phased(s: Setup, phases: Phases, key: string, line: string, cold: boolean): Timed {
  const file = join(s.work, 'phases.jsonl');
  rmSync(file, { force: true });
  const t = run(line, cold, { BLOCKVAULT_PHASES: file });
  if (!existsSync(file)) return t; // a build without phase marks
  const last = readFileSync(file, 'utf8').trim().split('\n').pop()!;
  (phases[key] ??= []).push({ wallSeconds: t.seconds, marks: (JSON.parse(last) as { marks: PhaseMark[] }).marks });
  return t;
}

interface RoundTimes { [what: string]: { ours: Timed; limits: Record<string, number>; against: string } }

/** One round: every limit right before the command it bounds. */
async function round(s: Setup, cold: boolean, phases: Phases): Promise<RoundTimes> {
  const { c, work } = s;
  const bv = `${node} ${cli}`;
  const out: RoundTimes = {};
  const repo = join(work, 'repo');

  const cbtLimits = { 'preads, 1 in flight': run(`${node} ${limitRead} ${c.day2} ${s.ranges} 1`, cold).seconds, 'preads, 8 in flight': run(`${node} ${limitRead} ${c.day2} ${s.ranges} 8`, cold).seconds };
  rmSync(repo, { recursive: true, force: true });
  execFileSync('cp', ['-a', s.pristine, repo]);
  out['CBT increment (exact extents list)'] = { ours: phased(s, phases, 'CBT increment', `${bv} backup -r ${repo} --vm b --disk sda --parent ${s.baseId} --changed ${s.extents} ${c.day2} --json`, cold), limits: cbtLimits, against: 'preads, 8 in flight' };

  const restored = join(work, 'restored.raw');
  rmSync(restored, { force: true });
  const copy = run(`cp --sparse=always ${c.base} ${restored} && sync`, cold).seconds;
  rmSync(restored, { force: true });
  out['restore to a sparse file, fsync included'] = { ours: phased(s, phases, 'restore', `${bv} restore -r ${s.pristine} b/sda@${s.baseId} ${restored}`, cold), limits: { 'cp --sparse=always + sync': copy }, against: 'cp --sparse=always + sync' };
  rmSync(restored, { force: true });

  const cpu = run(`${node} ${limitCpu} ${c.base}`, cold).seconds;
  rmSync(repo, { recursive: true, force: true });
  execFileSync(node, [cli, 'init', '-r', repo]);
  out['full backup'] = { ours: phased(s, phases, 'full backup', `${bv} backup -r ${repo} --vm b --disk sda ${c.base} --json`, cold), limits: { 'SHA-256 + zstd -1 on all cores': cpu }, against: 'SHA-256 + zstd -1 on all cores' };
  rmSync(repo, { recursive: true, force: true });

  out['dd bs=1M of disk.raw through a fresh mount (streaming)'] = await mountRound(s, cold);
  return out;
}

async function mountRound(s: Setup, cold: boolean): Promise<RoundTimes[string]> {
  const { c, mnt } = s;
  // iflag=nocache: the reader drops what it read, so the page cache does not grow. On this VM
  // fresh page-cache memory past ~3 GiB costs every reader alike (docs/BENCHMARKS.md), which a
  // plain dd of a 6 GiB disk would measure as much as the filesystem.
  const dd = (path: string) => run(`dd if=${path} of=/dev/null bs=1M iflag=nocache status=none`, cold);
  const file = dd(c.base).seconds;
  let server = await startMount([nullFs, mnt, String(c.sizeBytes)], mnt);
  const nullSeconds = dd(join(mnt, 'zero.raw')).seconds;
  await stopMount(server, mnt);
  if (cold) dropCaches(); // the mount starts cold too: its own code, the index, the point
  server = await startMount([cli, 'mount', '-r', s.pristine, mnt], mnt);
  try {
    const point = readdirSync(join(mnt, 'b', 'sda')).find((n) => n !== 'latest')!;
    // The mount's own RSS is not what /usr/bin/time sees here (it times dd): not reported.
    const ours = { seconds: dd(join(mnt, 'b', 'sda', point, 'disk.raw')).seconds, rssBytes: NaN };
    return { ours, limits: { 'null FUSE filesystem': nullSeconds, 'the image file': file }, against: 'null FUSE filesystem' };
  } finally {
    await stopMount(server, mnt);
  }
}

/** restic and borg, once per mode: full backup, day-2 backup (both read the whole image), restore into a file (no sync). */
function others(s: Setup, cold: boolean): Record<string, Record<string, number>> {
  const { c, work } = s;
  const out: Record<string, Record<string, number>> = {};
  const restic = { RESTIC_REPOSITORY: join(work, 'restic'), RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
  const borg = { BORG_REPO: join(work, 'borg'), BORG_PASSPHRASE: '', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_BASE_DIR: join(work, 'borg-home') };
  rmSync(restic.RESTIC_REPOSITORY, { recursive: true, force: true });
  rmSync(borg.BORG_REPO, { recursive: true, force: true });
  execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...restic } });
  execFileSync('borg', ['init', '-e', 'none'], { env: { ...process.env, ...borg } });
  const restored = join(work, 'restored.raw');
  out.restic = {
    'full backup': run(`restic backup -q --stdin --stdin-filename disk.raw < ${c.base}`, cold, restic).seconds,
    'CBT increment (exact extents list)': run(`restic backup -q --stdin --stdin-filename disk.raw < ${c.day2}`, cold, restic).seconds,
    'restore to a sparse file, fsync included': run(`restic dump latest disk.raw > ${restored}`, cold, restic).seconds,
  };
  rmSync(restored, { force: true });
  out.borg = {
    'full backup': run(`borg create --stdin-name disk.raw ::full - < ${c.base}`, cold, borg).seconds,
    'CBT increment (exact extents list)': run(`borg create --stdin-name disk.raw ::day2 - < ${c.day2}`, cold, borg).seconds,
    'restore to a sparse file, fsync included': run(`borg extract --stdout ::day2 > ${restored}`, cold, borg).seconds,
  };
  rmSync(restored, { force: true });
  rmSync(restic.RESTIC_REPOSITORY, { recursive: true, force: true });
  rmSync(borg.BORG_REPO, { recursive: true, force: true });
  return out;
}

/**
 * The codec choice behind the default (zstd level 1): the CPU-bound work of
 * a full backup at other levels, warm, with the bytes it would store
 * (chunks kept raw where zstd saves less than 1/32 are not counted apart).
 */
function zstdLevels(c: Corpus): LevelRow[] {
  return [-5, -1, 1, 2, 3].map((level) => {
    const times: number[] = [];
    let storedBytes = 0;
    for (let i = 0; i < 3; i++) {
      const started = process.hrtime.bigint();
      storedBytes = Number(execFileSync(node, [limitCpu, c.base, String(level)], { encoding: 'utf8' }).trim());
      times.push(Number(process.hrtime.bigint() - started) / 1e9);
    }
    return { level, seconds: median(times), storedBytes };
  });
}

export async function runCold(c: Corpus, cold: boolean, rounds: number, withOthers: boolean): Promise<ColdReport> {
  const s = prepare(c);
  const phases: Phases = {};
  const all: RoundTimes[] = [];
  try {
    for (let i = 0; i < rounds; i++) all.push(await round(s, cold, phases));
    const theirs = withOthers ? others(s, cold) : {};
    const rows: Row[] = Object.keys(all[0]).map((what) => ({
      what,
      ours: { seconds: median(all.map((r) => r[what].ours.seconds)), rssBytes: Math.max(...all.map((r) => r[what].ours.rssBytes)) }, // NaN stays NaN
      limits: Object.fromEntries(Object.keys(all[0][what].limits).map((k) => [k, median(all.map((r) => r[what].limits[k]))])),
      against: all[0][what].against,
      others: Object.fromEntries(Object.entries(theirs).filter(([, v]) => v[what] !== undefined).map(([tool, v]) => [tool, v[what]])),
    }));
    return { corpus: c.name, cold, rounds, rows, phases, levels: cold ? [] : zstdLevels(c) };
  } finally {
    rmSync(s.work, { recursive: true, force: true });
  }
}

export function coldTable(r: ColdReport): string {
  const lines = [`| ${r.corpus}, ${r.cold ? 'cold' : 'warm'}: command | blockvault s | peak RSS MB | limit (s) | ratio to the goal's limit | others (s) |`, '|---|---:|---:|---|---:|---|'];
  for (const row of r.rows) {
    const limits = Object.entries(row.limits).map(([k, v]) => `${k} ${v.toFixed(2)}`).join('; ');
    const best = row.limits[row.against];
    const others = Object.entries(row.others).map(([k, v]) => `${k} ${v.toFixed(2)} (${(v / row.ours.seconds).toFixed(1)}x ours)`).join('; ');
    lines.push(`| ${row.what} | ${row.ours.seconds.toFixed(2)} | ${Number.isNaN(row.ours.rssBytes) ? '' : (row.ours.rssBytes / 1e6).toFixed(0)} | ${limits} | ${(row.ours.seconds / best).toFixed(2)}x | ${others} |`);
  }
  return lines.join('\n');
}

function levelsTable(r: ColdReport): string {
  const base = r.levels.find((l) => l.level === 1)!;
  return [`| ${r.corpus}: zstd level | SHA-256 + zstd on all cores, s | stored MB | vs level 1: time | vs level 1: stored |`, '|---:|---:|---:|---:|---:|',
    ...r.levels.map((l) => `| ${l.level} | ${l.seconds.toFixed(2)} | ${(l.storedBytes / 1e6).toFixed(0)} | ${(l.seconds / base.seconds).toFixed(2)}x | ${(l.storedBytes / base.storedBytes).toFixed(3)}x |`)].join('\n');
}

export function coldReportText(reports: ColdReport[]): string {
  return reports.map((r) => [coldTable(r), ...(Object.keys(r.phases).length ? [breakdownTable(r.corpus, r.cold, summarize(r.phases))] : []), ...(r.levels.length ? [levelsTable(r)] : [])].join('\n\n')).join('\n\n');
}

if (process.argv[1]?.endsWith('cold.js')) {
  const args = process.argv.slice(2);
  const cold = args.includes('--cold');
  if ((cold || args.includes('--cold-only')) && process.getuid?.() !== 0) throw new Error('--cold drops the page cache: run as root');
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 3;
  const which = (args.includes('--corpus') ? args[args.indexOf('--corpus') + 1] : 'vm4g,mix6g').split(',');
  const corpora = which.map((name) => (name === 'mix6g' ? corpusMixed() : corpus()));
  const withOthers = !args.includes('--no-others') && existsSync('/usr/bin/restic') && existsSync('/usr/bin/borg');
  const reports: ColdReport[] = [];
  const coldOnly = args.includes('--cold-only');
  for (const c of corpora) {
    if (!coldOnly) reports.push(await runCold(c, false, rounds, withOthers));
    if (cold || coldOnly) reports.push(await runCold(c, true, rounds, withOthers));
  }
  writeFileSync(join(cacheDir, 'cold.json'), JSON.stringify(reports, null, 2));
  process.stdout.write(`${coldReportText(reports)}\n`);
}
