// check as a user runs it: a healthy repository; read-data shares that add up
// to everything; and damage it must name: a flipped bit (found by reading the
// data), a truncated pack, a deleted pack, a VM restore point missing a disk.
import { closeSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initDigests, isAllZero } from '../../engine/core/digest.js';
import { recordHeaderBytes } from '../../engine/format/pack-format.js';
import { packPath } from '../../engine/repo/layout.js';
import { Repository } from '../../engine/repo/repository.js';
import { randomStream } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
interface Problem { code: string; object: string; reason: string; points: string[] }
interface Report { ok: boolean; points: number; chunksReferenced: number; problems: Problem[]; readData: { chunksChecked: number } | null }

/** Where the first data chunk of a point lives: its pack and record offset. */
async function firstChunk(root: string, pointId: string): Promise<{ packId: string; offset: number }> {
  await initDigests();
  const repo = await Repository.open(root);
  try {
    const { map } = await repo.points.open(repo.index.point(pointId)!);
    for await (const leaf of map.leaves()) {
      for (let at = 0; at < leaf.ids.length; at += 32) {
        const id = leaf.ids.subarray(at, at + 32);
        if (!isAllZero(id)) return repo.index.lookup(id)!;
      }
    }
    throw new Error('no data chunk');
  } finally {
    await repo.close();
  }
}

describe('blockvault check', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');

  it('passes a healthy repository, and its read-data shares add up to every chunk', async () => {
    await cli(['init', '-r', root, '--pack-size', '1M']);
    for (const vm of ['a', 'b']) {
      writeFileSync(join(dir, `${vm}.raw`), randomStream(`check-${vm}`)(3 * MiB));
      await cliJson(['backup', '-r', root, '--vm', vm, '--disk', 'sda', join(dir, `${vm}.raw`)]);
    }
    await cliJson(['backup', '-r', root, '--vm', 'g', '--disk', `sda=${join(dir, 'a.raw')}`, '--disk', `sdb=${join(dir, 'b.raw')}`]);
    const plain = await cli(['check', '-r', root]);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^no problems found: 4 restore points, \d+ packs, 96 chunks referenced, in /m);
    const all = await cliJson<Report>(['check', '-r', root, '--read-data']);
    expect(all).toMatchObject({ ok: true, chunksReferenced: 96, readData: { chunksChecked: 96 } });
    let sum = 0;
    for (const share of ['1/3', '2/3', '3/3']) sum += (await cliJson<Report>(['check', '-r', root, '--read-data-subset', share])).readData!.chunksChecked;
    expect(sum).toBe(96);
    const bad = await cli(['check', '-r', root, '--read-data-subset', '0/3']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--read-data-subset "0\/3": expected N\/M \(1 <= N <= M\) or a percentage/);
  });

  it('names a flipped bit (reading the data), a truncated pack, a deleted pack and a group missing a disk', async () => {
    const points = await cliJson<Array<{ id: string; vm: string; disk: string; group: string | null }>>(['list', '-r', root]);
    const a = points.find((p) => p.vm === 'a')!;
    const b = points.find((p) => p.vm === 'b')!;
    // A flipped bit in a's first chunk: the structure is intact; reading the data finds it.
    const at = await firstChunk(root, a.id);
    const fd = openSync(join(root, packPath(at.packId)), 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at.offset + recordHeaderBytes + 100);
    byte[0] ^= 1;
    writeSync(fd, byte, 0, 1, at.offset + recordHeaderBytes + 100);
    closeSync(fd);
    expect((await cli(['check', '-r', root])).code).toBe(0);
    const read = await cli(['check', '-r', root, '--read-data', '--json']);
    expect(read.code).toBe(2);
    const found = (JSON.parse(read.stdout) as Report).problems;
    expect(found.find((p) => p.code === 'CHECKSUM_MISMATCH')).toMatchObject({ object: `${packPath(at.packId)} at offset ${at.offset}` });
    expect(found.flatMap((p) => p.points)).toContain(`a/sda@${a.id}`);

    // b's first pack cut short, and then deleted.
    const pack = join(root, packPath((await firstChunk(root, b.id)).packId));
    truncateSync(pack, statSync(pack).size - 10);
    const cut = await cli(['check', '-r', root]);
    expect(cut.code).toBe(2);
    expect(cut.stdout).toMatch(/^PACK_SIZE packs\/.*\.pack: \d+ bytes; it was sealed at \d+$/m);
    expect(cut.stdout).toMatch(new RegExp(`^CHUNK_MISSING chunk [0-9a-f]{64}: in packs/.* which is missing or damaged; breaks .*b/sda@${b.id}`, 'm'));
    rmSync(pack);
    expect((await cli(['check', '-r', root])).stdout).toMatch(/^PACK_MISSING packs\/.*\.pack: the index names it; the repository does not have it$/m);

    // A VM restore point whose disk sdb lost its point file.
    const member = points.find((p) => p.vm === 'g' && p.disk === 'sdb')!;
    rmSync(join(root, 'points', 'g', 'sdb', `${member.id}.point`));
    const group = await cliJson<Report>(['check', '-r', root]).catch(() => null);
    expect(group).toBeNull(); // exit 2: cliJson throws
    const r = await cli(['check', '-r', root, '--json']);
    expect((JSON.parse(r.stdout) as Report).problems.find((p) => p.code === 'GROUP_INCOMPLETE')).toMatchObject({ reason: `its disk sdb (restore point ${member.id}) is missing` });
  });
});
