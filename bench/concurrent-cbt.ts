// Concurrent changed-block-tracking increments into one repository
// (`node dist/bench/concurrent-cbt.js`): N VMs (qcow2 overlays of one base
// disk, each with its own dirty bitmap and ~300 scattered 64 KiB guest
// writes of its own, through qemu-io), each backed up through a private
// qemu-nbd with --bitmap; the same N increments run one after another and
// all at once (sessions), wall time of the batch, against one increment
// alone. Medians of 3 rounds, interleaved. The base disk is this bench's
// own 1 GiB MBR disk, not the main corpus.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ext4FileExtents, makeVmDisk, randomStream, readPartitions } from '../scripts/vm-disk.js';
import { cacheDir } from './corpus.js';
import { median } from './measure.js';

const cli = new URL('../../dist/engine/cli/main.js', import.meta.url).pathname;
const MiB = 1024 * 1024;

export interface ConcurrentCbt { one: number; rows: Array<{ vms: number; sequential: number; concurrent: number }>; bytesReadEach: number }

/** `count` distinct 64 KiB-aligned slots, chosen by `seed`. */
function guestWrites(slots: number[], count: number, seed: string): number[] {
  const pick = randomStream(seed);
  const picks = new Set<number>();
  while (picks.size < Math.min(count, slots.length)) picks.add(slots[pick(4).readUInt32LE(0) % slots.length]);
  return [...picks].sort((a, b) => a - b);
}

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function timed(batch: Array<() => Promise<{ code: number | null; err: string }>>, together: boolean): Promise<number> {
  const t = process.hrtime.bigint();
  if (together) {
    const rs = await Promise.all(batch.map((f) => f()));
    for (const r of rs) if (r.code !== 0) throw new Error(r.err);
  } else {
    for (const f of batch) {
      const r = await f();
      if (r.code !== 0) throw new Error(r.err);
    }
  }
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export async function runConcurrentCbt(vms = 8, rounds = 3): Promise<ConcurrentCbt> {
  const dir = join(cacheDir, 'concurrent-cbt');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, 'base-1g.raw');
  if (!existsSync(base)) makeVmDisk({ path: base, sizeBytes: 1024 * MiB, systemBytes: 200 * MiB, randomBytes: 100 * MiB, table: 'mbr', seed: 'concurrent-cbt' });
  const work = join(dir, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  const repo = join(work, 'repo');
  execFileSync(process.execPath, [cli, 'init', '-r', repo]);
  const partitions = readPartitions(base);
  const info = { path: base, sizeBytes: 1024 * MiB, partitions, fat: partitions[0], ext4: partitions[1], stageDir: null };
  const slots = ext4FileExtents(info, '/srv/data.bin').flatMap((e) => Array.from({ length: Math.floor(e.length / (64 * 1024)) }, (_, k) => e.start + k * 64 * 1024));
  const parents: string[] = [];
  const images: string[] = [];
  for (let i = 0; i < vms; i++) {
    const image = join(work, `vm${i}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', image]);
    const full = await run(['backup', '-r', repo, '--vm', `vm${i}`, '--disk', 'sda', image, '--json']);
    if (full.code !== 0) throw new Error(full.err);
    parents.push(JSON.parse(full.out).id);
    execFileSync('qemu-img', ['bitmap', '--add', image, 'nightly']);
    // The guest's day: 300 scattered 64 KiB writes of its own inside /srv/data.bin, into the overlay (the bitmap records them).
    const cmds = guestWrites(slots, 300, `cbt-${i}`).flatMap((at) => ['-c', `write -P ${0x30 + i} ${at} ${64 * 1024}`]);
    for (let k = 0; k < cmds.length; k += 200) execFileSync('qemu-io', ['-f', 'qcow2', ...cmds.slice(k, k + 200), image], { stdio: 'ignore' });
    images.push(image);
  }
  const increment = (i: number) => () => run(['backup', '-r', repo, '--vm', `vm${i}`, '--disk', 'sda', '--bitmap', 'nightly', '--parent', parents[i], images[i], '--json']);
  const probe = await increment(0)();
  if (probe.code !== 0 || JSON.parse(probe.out).mode !== 'incremental') throw new Error(`expected an incremental backup: ${probe.err}`);
  const bytesReadEach = JSON.parse(probe.out).bytesRead;
  const ones: number[] = [];
  const sizes = [4, vms].filter((n, k, a) => a.indexOf(n) === k);
  const seq = new Map(sizes.map((n) => [n, [] as number[]]));
  const con = new Map(sizes.map((n) => [n, [] as number[]]));
  for (let r = 0; r < rounds; r++) {
    ones.push(await timed([increment(0)], false));
    for (const n of sizes) {
      const batch = Array.from({ length: n }, (_, i) => increment(i));
      seq.get(n)!.push(await timed(batch, false));
      con.get(n)!.push(await timed(batch, true));
    }
  }
  rmSync(work, { recursive: true, force: true });
  return { one: median(ones), bytesReadEach, rows: sizes.map((n) => ({ vms: n, sequential: median(seq.get(n)!), concurrent: median(con.get(n)!) })) };
}

export function concurrentCbtTable(r: ConcurrentCbt): string {
  return ['| CBT increments (qemu-nbd + dirty bitmap, ~300 x 64 KiB changed each) | wall s | vs one increment |', '|---|---:|---:|',
    `| one increment alone (${(r.bytesReadEach / 1e6).toFixed(1)} MB read) | ${r.one.toFixed(2)} | 1.00x |`,
    ...r.rows.flatMap((x) => [
      `| ${x.vms} VMs one after another | ${x.sequential.toFixed(2)} | ${(x.sequential / r.one).toFixed(2)}x |`,
      `| ${x.vms} VMs at once (sessions) | ${x.concurrent.toFixed(2)} | ${(x.concurrent / r.one).toFixed(2)}x |`,
    ])].join('\n');
}

if (process.argv[1]?.endsWith('concurrent-cbt.js')) {
  process.stdout.write(`${concurrentCbtTable(await runConcurrentCbt())}\n`);
}
