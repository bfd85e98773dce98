// Whole-process wall times of the paths a new user meets first, each against
// a baseline measured in the same run (`node dist/bench/cli-paths.js [--cold]`):
//   start-up: `blockvault --version`, `--help` and `list` against `node -e 0`;
//   restore into a slower reader: `restore - | sha256sum` against
//   `cat image | sha256sum` (the reader is the limit: blockvault should be too).
// --cold (as root) drops the page cache before every command. Runs are
// interleaved (baseline, blockvault, baseline, ...) and quoted as medians.
// The disk is its own, not the main corpus: an MBR disk of another shape.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeVmDisk } from '../scripts/vm-disk.js';
import { cacheDir } from './corpus.js';
import { median } from './measure.js';

const top = new URL('../..', import.meta.url).pathname;
const cli = join(top, 'dist', 'engine', 'cli', 'main.js');
const MiB = 1024 ** 2;

export interface CliPathRow { what: string; baseline: string; seconds: number; baselineSeconds: number }
export interface CliPathsResult { cold: boolean; runs: number; rows: CliPathRow[] }

const dropCaches = () => { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); };

/** Wall seconds of one shell command line (a pipeline counts whole). */
function wall(command: string, cold: boolean): number {
  if (cold) dropCaches();
  const started = process.hrtime.bigint();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${command} exited ${r.status}: ${r.stderr}`);
  return seconds;
}

function pair(what: string, command: string, baseline: string, baselineCommand: string, runs: number, cold: boolean): CliPathRow {
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < runs; i++) {
    theirs.push(wall(baselineCommand, cold));
    ours.push(wall(command, cold));
  }
  return { what, baseline, seconds: median(ours), baselineSeconds: median(theirs) };
}

export function runCliPaths(cold: boolean, runs = 5): CliPathsResult {
  const work = join(cacheDir, 'cli-paths');
  mkdirSync(work, { recursive: true });
  const image = join(work, 'mbr-1g.raw');
  if (!existsSync(image)) {
    makeVmDisk({ path: image, sizeBytes: 1024 * MiB, systemBytes: 160 * MiB, randomBytes: 200 * MiB, table: 'mbr', seed: 'cli-paths' });
  }
  const repo = join(work, 'repo');
  rmSync(repo, { recursive: true, force: true });
  execFileSync(process.execPath, [cli, 'init', '-r', repo]);
  execFileSync(process.execPath, [cli, 'backup', '-r', repo, '--vm', 'vm', '--disk', 'sda', image], { stdio: 'ignore' });
  const bv = `${process.execPath} ${cli}`;
  const rows = [
    pair('blockvault --version', `${bv} --version`, 'node -e 0', `${process.execPath} -e 0`, runs, cold),
    pair('blockvault --help', `${bv} --help`, 'node -e 0', `${process.execPath} -e 0`, runs, cold),
    pair('blockvault list', `${bv} list -r ${repo}`, 'node -e 0', `${process.execPath} -e 0`, runs, cold),
    pair('restore - into sha256sum (1 GiB disk)', `${bv} restore -r ${repo} vm/sda@latest - | sha256sum`, 'cat image into sha256sum', `cat ${image} | sha256sum`, Math.min(runs, 3), cold),
  ];
  rmSync(repo, { recursive: true, force: true });
  return { cold, runs, rows };
}

export function cliPathsTable(r: CliPathsResult): string {
  return [`| ${r.cold ? 'cold' : 'warm'}: command | wall s | baseline | baseline s | ratio |`, '|---|---:|---|---:|---:|',
    ...r.rows.map((x) => `| ${x.what} | ${x.seconds.toFixed(3)} | ${x.baseline} | ${x.baselineSeconds.toFixed(3)} | ${(x.seconds / x.baselineSeconds).toFixed(2)}x |`)].join('\n');
}

if (process.argv[1] && process.argv[1].endsWith('cli-paths.js')) {
  const cold = process.argv.includes('--cold');
  if (cold && process.getuid?.() !== 0) throw new Error('--cold drops the page cache: run as root');
  process.stdout.write(`${cliPathsTable(runCliPaths(false))}\n\n`);
  if (cold) process.stdout.write(`${cliPathsTable(runCliPaths(true))}\n`);
}
