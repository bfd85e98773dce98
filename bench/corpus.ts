// The benchmark corpus, generated once and cached in bench/.cache/:
// a 4 GiB GPT disk whose ext4 partition holds ~1.2 GiB of real system files
// and 300 MiB of incompressible data (about 1.5 GB of data, the rest holes),
// and a day-2 copy after 300 scattered 64 KiB guest writes.
import { existsSync, mkdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { makeVmDisk, readPartitions, scatterWrites, type DiskInfo, type Extent } from '../scripts/vm-disk.js';

export const cacheDir = new URL('../../bench/.cache/', import.meta.url).pathname;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface Corpus { base: string; day2: string; day2Extents: Extent[]; sizeBytes: number; dataBytes: number }

function diskInfo(path: string): DiskInfo {
  const partitions = readPartitions(path);
  return { path, sizeBytes: statSync(path).size, partitions, fat: partitions[0], ext4: partitions[1], stageDir: '' };
}

export function corpus(sizeBytes = 4 * GiB): Corpus {
  mkdirSync(cacheDir, { recursive: true });
  const tag = `${sizeBytes / GiB}g`;
  const base = join(cacheDir, `vm${tag}.raw`);
  const day2 = join(cacheDir, `vm${tag}-day2.raw`);
  const extentsFile = join(cacheDir, `vm${tag}-day2.extents.json`);
  if (!existsSync(base)) {
    process.stderr.write(`bench: generating ${base} (one time)\n`);
    makeVmDisk({ path: base, sizeBytes, systemBytes: Math.round(sizeBytes * 0.29), randomBytes: 300 * MiB, seed: 'bench' });
  }
  if (!existsSync(day2) || !existsSync(extentsFile)) {
    execFileSync('cp', ['--sparse=always', base, day2]);
    const extents = scatterWrites(diskInfo(day2), 300, 64 * 1024, 'bench-day2');
    writeFileSync(extentsFile, JSON.stringify(extents));
  }
  return {
    base, day2, day2Extents: JSON.parse(readFileSync(extentsFile, 'utf8')) as Extent[],
    sizeBytes, dataBytes: statSync(base).blocks * 512,
  };
}
