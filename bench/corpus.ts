// The benchmark corpus, generated once and cached in bench/.cache/:
// a 4 GiB GPT disk whose ext4 partition holds ~1.2 GiB of real system files
// and 300 MiB of incompressible data (about 1.8 GB of data, the rest holes),
// and a day-2 copy after a day of guest activity: 300 scattered 64 KiB writes
// plus new files, about 2% of the data; its changed-extents list is exact
// (a diff of the two images, so it includes the filesystem's metadata).
import { existsSync, mkdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { addFile, diffImages, makeVmDisk, randomStream, readPartitions, scatterWrites, type DiskInfo, type Extent } from '../scripts/vm-disk.js';

export const cacheDir = new URL('../../bench/.cache/', import.meta.url).pathname;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface Corpus { name: string; base: string; day2: string; day2Extents: Extent[]; sizeBytes: number; dataBytes: number }

function diskInfo(path: string): DiskInfo {
  const partitions = readPartitions(path);
  return { path, sizeBytes: statSync(path).size, partitions, fat: partitions[0], ext4: partitions[1], stageDir: null };
}

export function corpus(sizeBytes = 4 * GiB): Corpus {
  mkdirSync(cacheDir, { recursive: true });
  const tag = `${sizeBytes / GiB}g`;
  const base = join(cacheDir, `vm${tag}.raw`);
  const day2 = join(cacheDir, `vm${tag}-day2b.raw`);
  const extentsFile = join(cacheDir, `vm${tag}-day2b.extents.json`);
  if (!existsSync(base)) {
    process.stderr.write(`bench: generating ${base} (one time)\n`);
    makeVmDisk({ path: base, sizeBytes, systemBytes: Math.round(sizeBytes * 0.29), randomBytes: 300 * MiB, seed: 'bench' });
  }
  if (!existsSync(day2) || !existsSync(extentsFile)) {
    execFileSync('cp', ['--sparse=always', base, day2]);
    const info = diskInfo(day2);
    scatterWrites(info, 300, 64 * 1024, 'bench-day2');
    // New files: a log-like text file and a binary blob, ~16 MiB together.
    const text = join(cacheDir, 'new-report.txt');
    writeFileSync(text, Array.from({ length: 200_000 }, (_, i) => `2026-11-22T01:${String(i % 60).padStart(2, '0')} request ${i} served in ${i % 97} ms\n`).join(''));
    const blob = join(cacheDir, 'new-blob.bin');
    writeFileSync(blob, randomStream('bench-day2-blob')(8 * MiB));
    addFile(info, text, '/srv/report.txt');
    addFile(info, blob, '/srv/blob.bin');
    writeFileSync(extentsFile, JSON.stringify(diffImages(base, day2, sizeBytes)));
  }
  return {
    name: `vm${tag}`, base, day2, day2Extents: JSON.parse(readFileSync(extentsFile, 'utf8')) as Extent[],
    sizeBytes, dataBytes: statSync(base).blocks * 512,
  };
}

/**
 * A second corpus, of another shape than the one the code was tuned on:
 * a 6 GiB GPT disk (73% holes rather than 58%) whose ext4 holds 1.5 GB of
 * system files walked in another order (libraries and binaries first, more
 * small files) and only 64 MiB of incompressible data; its day 2 is 700
 * scattered 8 KiB writes (each dirtying its own 64 KiB chunk, as a database
 * page or journal would) plus 4 MiB of new files.
 */
export function corpusMixed(): Corpus {
  mkdirSync(cacheDir, { recursive: true });
  const sizeBytes = 6 * GiB;
  const base = join(cacheDir, 'mix6g.raw');
  const day2 = join(cacheDir, 'mix6g-day2.raw');
  const extentsFile = join(cacheDir, 'mix6g-day2.extents.json');
  if (!existsSync(base)) {
    process.stderr.write(`bench: generating ${base} (one time)\n`);
    makeVmDisk({
      path: base, sizeBytes, systemBytes: 1500 * MiB, randomBytes: 64 * MiB, seed: 'mixed',
      systemRoots: ['/usr/lib', '/usr/bin', '/usr/sbin', '/usr/include', '/usr/share', '/var/lib'],
    });
  }
  if (!existsSync(day2) || !existsSync(extentsFile)) {
    execFileSync('cp', ['--sparse=always', base, day2]);
    const info = diskInfo(day2);
    scatterWrites(info, 700, 8 * 1024, 'mixed-day2');
    const text = join(cacheDir, 'mix-new.log');
    writeFileSync(text, Array.from({ length: 60_000 }, (_, i) => `Dec 01 03:${String(i % 60).padStart(2, '0')} web01 nginx[${1000 + (i % 7)}]: GET /item/${i * 7919 % 100003} 200\n`).join(''));
    addFile(info, text, '/srv/access.log');
    writeFileSync(extentsFile, JSON.stringify(diffImages(base, day2, sizeBytes)));
  }
  return {
    name: 'mix6g', base, day2, day2Extents: JSON.parse(readFileSync(extentsFile, 'utf8')) as Extent[],
    sizeBytes, dataBytes: statSync(base).blocks * 512,
  };
}

/**
 * A second VM beside `c`: the same tree, installed apart. Its ext4 is made
 * afresh (same size, same system files, same data file) with other files
 * among them (1/8 of the system files' bytes, in every directory mkfs
 * walks), so the same file data lands at other offsets, as on a VM installed
 * from the same media or rebuilt.
 */
export function secondVm(c: Corpus): string {
  const path = join(cacheDir, `${c.name}-b.raw`);
  if (!existsSync(path)) {
    process.stderr.write(`bench: generating ${path} (one time)\n`);
    const spec = c.name === 'mix6g'
      ? { sizeBytes: 6 * GiB, systemBytes: 1500 * MiB, randomBytes: 64 * MiB, seed: 'mixed', systemRoots: ['/usr/lib', '/usr/bin', '/usr/sbin', '/usr/include', '/usr/share', '/var/lib'] }
      : { sizeBytes: c.sizeBytes, systemBytes: Math.round(c.sizeBytes * 0.29), randomBytes: 300 * MiB, seed: 'bench' };
    makeVmDisk({ ...spec, path, otherFiles: { bytes: Math.round(spec.systemBytes / 8), seed: 'second' } });
  }
  return path;
}

if (process.argv[1]?.endsWith('corpus.js')) {
  for (const c of [corpus(), corpusMixed()]) {
    const changed = c.day2Extents.reduce((a, e) => a + e.length, 0);
    process.stdout.write(`${c.name}: ${c.sizeBytes} bytes, ${c.dataBytes} of data; day 2: ${c.day2Extents.length} extents, ${changed} bytes\n`);
  }
}
