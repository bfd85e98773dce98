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

export interface Corpus { base: string; day2: string; day2Extents: Extent[]; sizeBytes: number; dataBytes: number }

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
    base, day2, day2Extents: JSON.parse(readFileSync(extentsFile, 'utf8')) as Extent[],
    sizeBytes, dataBytes: statSync(base).blocks * 512,
  };
}
