// `npm run demo`: the whole product on an embedded default, end to end.
// Generates a realistic VM disk, backs it up, simulates a day of guest
// writes, backs up again, restores, verifies, and prints a summary.
// Everything lives in ./demo/ (recreated on each run).
import { execFileSync } from 'node:child_process';
import { rmSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { humanBytes, humanRate, humanSeconds } from '../engine/core/human.js';
import { addFile, makeVmDisk, randomStream, scatterWrites, sha256File } from './vm-disk.js';

const MiB = 1024 * 1024;
const top = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const cliPath = join(top, 'dist', 'engine', 'cli', 'main.js');
const work = join(top, 'demo');
const repo = join(work, 'repo');

function blockvault(args: string[]): Record<string, number | string> {
  process.stdout.write(`\n$ blockvault ${args.join(' ')}\n`);
  const out = execFileSync(process.execPath, [cliPath, ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out) as Record<string, number | string>;
}

function show(r: Record<string, number | string>, keys: string[]): void {
  for (const k of keys) {
    const v = r[k];
    const text = typeof v === 'number' && /bytes/i.test(k) ? humanBytes(v) : typeof v === 'number' && k === 'seconds' ? humanSeconds(v) : String(v);
    process.stdout.write(`  ${k.padEnd(12)} ${text}\n`);
  }
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
process.stdout.write('blockvault demo: generating a 1 GiB VM disk (GPT, FAT + ext4 with real system files, 64 MiB of incompressible data)...\n');
const disk = makeVmDisk({ path: join(work, 'web01.raw'), sizeBytes: 1024 * MiB, systemBytes: 200 * MiB, randomBytes: 64 * MiB, seed: 'demo' });
process.stdout.write(`  ${disk.path}: ${humanBytes(disk.sizeBytes)} disk, ${humanBytes(statSync(disk.path).blocks * 512)} allocated\n`);

process.stdout.write(`\n$ blockvault init -r ${repo}\n`);
execFileSync(process.execPath, [cliPath, 'init', '-r', repo], { stdio: 'inherit' });
const full = blockvault(['backup', '-r', repo, '--vm', 'web01', '--disk', 'sda', disk.path]);
show(full, ['id', 'bytesTotal', 'bytesRead', 'bytesNew', 'bytesStored', 'chunksZero', 'seconds']);

process.stdout.write('\nsimulating a day of guest activity: 300 scattered 64 KiB writes and a new 8 MiB file...\n');
scatterWrites(disk, 300, 64 * 1024, 'demo-day2');
const newFile = join(work, 'report.bin');
writeFileSync(newFile, randomStream('demo-file')(8 * MiB));
addFile(disk, newFile, '/srv/report.bin');
const day2 = blockvault(['backup', '-r', repo, '--vm', 'web01', '--disk', 'sda', disk.path]);
show(day2, ['id', 'bytesRead', 'bytesNew', 'bytesStored', 'chunksNew', 'seconds']);

const restored = join(work, 'web01.restored.raw');
const r = blockvault(['restore', '-r', repo, 'web01/sda@latest', restored]);
const same = sha256File(restored) === sha256File(disk.path);
process.stdout.write(`  restored in ${humanSeconds(Number(r.seconds))}; SHA-256 ${same ? 'identical to' : 'DIFFERS FROM'} the source disk\n`);
const verify = blockvault(['verify', '-r', repo]);
process.stdout.write(`  verify: ${verify.ok ? 'all restore points intact' : 'PROBLEMS FOUND'}\n`);
const stats = blockvault(['stats', '-r', repo]);

const diskData = Number(full.bytesTotal) - Number(full.chunksZero) * 65536;
process.stdout.write(`
Summary
  disk                 ${humanBytes(Number(full.bytesTotal))} (${humanBytes(diskData)} non-zero)
  full backup          ${humanSeconds(Number(full.seconds))}: ${humanRate(Number(full.bytesTotal), Number(full.seconds))} of disk, ${humanRate(diskData, Number(full.seconds))} of data
  second backup        ${humanSeconds(Number(day2.seconds))}, ${humanBytes(Number(day2.bytesNew))} new, ${humanBytes(Number(day2.bytesStored))} stored
  restore              ${humanSeconds(Number(r.seconds))}: ${humanRate(Number(full.bytesTotal), Number(r.seconds))} of disk
  repository           ${humanBytes(Number(stats.packBytes))} on disk for ${humanBytes(Number(stats.logicalBytes))} of restore points
  dedup / compression  ${Number(stats.dedupRatio).toFixed(2)}x / ${Number(stats.compressionRatio).toFixed(2)}x
  restore identical    ${same ? 'yes' : 'NO'}
`);
// The restored copy has served its purpose; what stays is the repository and the disk, for a look around.
rmSync(restored, { force: true });
rmSync(newFile, { force: true });
const left = humanBytes(Number(execFileSync('du', ['-s', '--block-size=1', work], { encoding: 'utf8' }).split('\t')[0]));
process.stdout.write(`
Left in ${work} (${left} on disk): the repository (repo/) and the demo disk (web01.raw). Look around:
  npx blockvault list -r ${repo}
  npx blockvault files ls -r ${repo} web01/sda@latest --part 2 /etc
Remove it with: rm -rf ${work}   (the next npm run demo recreates it)
`);
process.exitCode = same && verify.ok ? 0 : 2;
