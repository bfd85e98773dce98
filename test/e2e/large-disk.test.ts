// A disk far larger than its data (80 GiB, 5 MiB of data; a map of height 2):
// the point's map is paged, so its metadata costs what the data costs; an
// increment stores only the pages it changed; restore, verify and the mount
// read through the pages; a damaged map page is named with the disk range it
// covers, by verify and by restore, and nothing is written.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initDigests } from '../../engine/core/digest.js';
import { PagedMap } from '../../engine/repo/chunk-map.js';
import { packPath } from '../../engine/repo/layout.js';
import { Repository } from '../../engine/repo/repository.js';
import { recordHeaderBytes } from '../../engine/format/pack-format.js';
import { randomStream } from '../../scripts/vm-disk.js';
import { isMounted } from '../../mount/fuse-mount.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const diskBytes = 80 * GiB;

interface Result { id: string; chunksTotal: number; bytesRead: number; mapPagesNew: number; mode: string; chunksZero: number }

function writeAt(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  const out = Buffer.alloc(length);
  readSync(fd, out, 0, length, offset);
  closeSync(fd);
  return out;
}

function pointFiles(root: string): string[] {
  const dir = join(root, 'points', 'big', 'sda');
  return readdirSync(dir).map((f) => join(dir, f));
}

/** The mounted point's disk.raw reads as the image does, in the data regions and in a hole. */
async function expectMountReads(root: string, mnt: string, id: string, image: string, regionStarts: number[]): Promise<void> {
  mkdirSync(mnt, { recursive: true });
  const server = spawn(process.execPath, [cliPath, 'mount', '-r', root, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d) => (log += d));
  try {
    for (let i = 0; i < 200 && !(/blockvault: mounted/.test(log) && isMounted(mnt)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(isMounted(mnt), log).toBe(true);
    const name = readdirSync(join(mnt, 'big', 'sda')).find((n) => n.endsWith(id.slice(0, 8)))!;
    const disk = join(mnt, 'big', 'sda', name, 'disk.raw');
    expect(statSync(disk).size).toBe(diskBytes);
    for (const at of [...regionStarts, 10 * GiB]) {
      for (const inner of [0, 4096 * 77, MiB - 4096]) expect(readAt(disk, at + inner, 4096).equals(readAt(image, at + inner, 4096)), `offset ${at + inner}`).toBe(true);
    }
  } finally {
    if (isMounted(mnt)) await cli(['umount', mnt]);
    server.kill('SIGKILL');
  }
}

describe('a large sparse disk', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const image = join(dir, 'big.raw');
  const regions = [0, 7 * GiB, 40 * GiB + 12345, diskBytes - MiB];

  it('backs up, increments, restores and verifies through paged maps; a damaged page is named', async () => {
    await initDigests();
    writeFileSync(image, '');
    truncateSync(image, diskBytes);
    for (const [k, at] of regions.entries()) writeAt(image, at, randomStream(`region${k}`)(MiB));
    await cli(['init', '-r', root]);
    const full = await cliJson<Result>(['backup', '-r', root, '--vm', 'big', '--disk', 'sda', image]);
    expect(full.chunksTotal).toBe(diskBytes / 65536);
    expect(full.bytesRead).toBeLessThanOrEqual(6 * MiB); // the holes were not read
    expect(full.mapPagesNew).toBeGreaterThanOrEqual(5); // 5 leaves (one region straddles two) and the level-1 pages above them
    expect(full.mapPagesNew).toBeLessThanOrEqual(10);
    expect(statSync(pointFiles(root)[0]).size).toBeLessThan(4096); // the root: 2 page ids and the header

    // The guest writes 1 MiB somewhere new; the increment stores its leaf and the level-1 page above it, nothing else.
    writeAt(image, 20 * GiB, randomStream('day2')(MiB));
    const extents = join(dir, 'changed.json');
    writeFileSync(extents, JSON.stringify([{ start: 20 * GiB, length: MiB }]));
    const increment = await cliJson<Result>(['backup', '-r', root, '--vm', 'big', '--disk', 'sda', '--changed', extents, image]);
    expect(increment.mode).toBe('incremental');
    expect(increment.bytesRead).toBe(MiB);
    expect(increment.mapPagesNew).toBe(2);
    expect(increment.chunksZero).toBe(full.chunksZero - 16);

    const out = join(dir, 'out.raw');
    const restored = await cli(['restore', '-r', root, `big/sda@${increment.id}`, out]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(statSync(out).size).toBe(diskBytes);
    expect(statSync(out).blocks * 512).toBeLessThan(64 * MiB); // restored sparse
    for (const at of [...regions, 20 * GiB]) expect(readAt(out, at, MiB).equals(readAt(image, at, MiB)), `region at ${at}`).toBe(true);
    for (const at of [MiB, 10 * GiB, 60 * GiB]) expect(readAt(out, at, 65536).equals(Buffer.alloc(65536))).toBe(true);
    expect((await cli(['verify', '-r', root])).code).toBe(0);
    await expectMountReads(root, join(dir, 'mnt'), increment.id, image, [...regions, 20 * GiB]);

    // Damage the leaf that covers 20 GiB: one byte of its stored payload.
    const repo = await Repository.open(root);
    const point = await repo.points.open(repo.index.point(increment.id)!);
    const leaf = await (point.map as PagedMap).pageWithId(0, Math.floor(20 * GiB / 65536 / 1024));
    const at = repo.index.lookup(leaf!.id)!;
    await repo.close();
    const pack = join(root, packPath(at.packId));
    const fd = openSync(pack, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at.offset + recordHeaderBytes + 10);
    byte[0] ^= 0x40;
    writeSync(fd, byte, 0, 1, at.offset + recordHeaderBytes + 10);
    closeSync(fd);

    const range = `disk bytes ${20 * GiB}-${20 * GiB + 64 * MiB}`;
    const verify = await cli(['verify', '-r', root, `big/sda@${increment.id}`, '--json']);
    expect(verify.code).toBe(2);
    const verdict = JSON.parse(verify.stdout) as { ok: boolean; points: Array<{ ok: boolean; problems: Array<{ reason: string }> }> };
    expect(verdict.points[0].problems[0].reason).toContain(`restore point big/sda@${increment.id}: map page (level 0, page 320, ${range})`);
    const again = join(dir, 'again.raw');
    const failed = await cli(['restore', '-r', root, `big/sda@${increment.id}`, again]);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain(range);
    expect(existsSync(again)).toBe(false); // nothing half-written
    // The full point does not use that page: it still verifies.
    expect((await cli(['verify', '-r', root, `big/sda@${full.id}`])).code).toBe(0);
  });
});
