// Two builds of blockvault on the same steps, interleaved in one run, so a
// change is judged against the release before it on the same machine in the
// same minutes (`node dist/bench/compare-builds.js <old dist/engine/cli/main.js>
// [<new main.js>]`; the new one defaults to this checkout's). On the cached
// 4 GiB corpus: full backup, day-2 increment with the exact extents list,
// restore to a file (fsync included), verify, and reading the day-2 disk.raw
// through a mount (cat); whole-process wall time, medians of 3
// (the order of the two builds alternating from round to round),
// cold (page cache dropped, as root) and warm.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, corpus } from './corpus.js';
import { median } from './measure.js';
import { startMount, stopMount } from './mount.js';

const here = join(new URL('../..', import.meta.url).pathname, 'dist', 'engine', 'cli', 'main.js');
const steps = ['full backup', 'day-2 increment (--changed)', 'restore', 'verify (2 points)', 'mount: cat disk.raw (4 GiB)'] as const;

function wall(args: string[], cold: boolean): number {
  if (cold) { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); }
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** One round of the steps with one build, in a fresh repository. */
async function round(cli: string, work: string, cold: boolean, c: ReturnType<typeof corpus>, extents: string): Promise<number[]> {
  const repo = join(work, 'repo');
  rmSync(repo, { recursive: true, force: true });
  execFileSync(process.execPath, [cli, 'init', '-r', repo], { stdio: 'ignore' });
  const full = wall([cli, 'backup', '-r', repo, '--vm', 'b', '--disk', 'sda', c.base], cold);
  const day2 = wall([cli, 'backup', '-r', repo, '--vm', 'b', '--disk', 'sda', '--changed', extents, c.day2], cold);
  const out = join(work, 'restored.raw');
  rmSync(out, { force: true });
  const restore = wall([cli, 'restore', '-r', repo, 'b/sda@latest', out], cold);
  rmSync(out, { force: true });
  const verify = wall([cli, 'verify', '-r', repo], cold);
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
  let cat: number;
  try {
    if (cold) { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); }
    const t = process.hrtime.bigint();
    execFileSync('sh', ['-c', `cat ${mnt}/b/sda/latest/disk.raw > /dev/null`]);
    cat = Number(process.hrtime.bigint() - t) / 1e9;
  } finally {
    await stopMount(server, mnt);
  }
  rmSync(repo, { recursive: true, force: true });
  return [full, day2, restore, verify, cat];
}

export async function compareBuilds(oldCli: string, newCli = here, cold = process.getuid?.() === 0, runs = 3): Promise<string> {
  const c = corpus();
  mkdirSync(join(cacheDir, 'compare-builds'), { recursive: true });
  const work = realpathSync(join(cacheDir, 'compare-builds')); // the kernel names mounts by real path
  const extents = join(work, 'changed.json');
  writeFileSync(extents, JSON.stringify(c.day2Extents));
  const rows: string[] = [`| step (${cold ? 'cold' : 'warm'}, whole process) | old s | new s | new / old |`, '|---|---:|---:|---:|'];
  const times = { old: [] as number[][], new: [] as number[][] };
  // The order alternates: whichever runs second meets the first's writeback still in flight.
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      times.old.push(await round(oldCli, work, cold, c, extents));
      times.new.push(await round(newCli, work, cold, c, extents));
    } else {
      times.new.push(await round(newCli, work, cold, c, extents));
      times.old.push(await round(oldCli, work, cold, c, extents));
    }
  }
  steps.forEach((step, k) => {
    const o = median(times.old.map((r) => r[k]));
    const n = median(times.new.map((r) => r[k]));
    rows.push(`| ${step} | ${o.toFixed(2)} | ${n.toFixed(2)} | ${(n / o).toFixed(2)} |`);
  });
  rmSync(work, { recursive: true, force: true });
  return rows.join('\n');
}

if (process.argv[1]?.endsWith('compare-builds.js')) {
  const [oldCli, newCli] = process.argv.slice(2);
  if (!oldCli) throw new Error('usage: node dist/bench/compare-builds.js <old dist/engine/cli/main.js> [<new main.js>]');
  process.stdout.write(`${await compareBuilds(oldCli, newCli ?? here, false)}\n\n`);
  if (process.getuid?.() === 0) process.stdout.write(`${await compareBuilds(oldCli, newCli ?? here, true)}\n`);
}
