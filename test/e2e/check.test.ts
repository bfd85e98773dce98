// check as a user runs it: a healthy repository; read-data shares that add up
// to everything; and damage it must name and quarantine: a flipped bit (found
// by reading the data), a truncated pack, a deleted pack, then healed by later
// backups; a lost index cache and index objects and a torn pack, repaired by
// repair index; a VM restore point missing a disk.
import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync, truncateSync, writeFileSync, writeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initDigests, isAllZero } from '../../engine/core/digest.js';
import { recordHeaderBytes } from '../../engine/format/pack-format.js';
import { packPath } from '../../engine/repo/layout.js';
import { Repository } from '../../engine/repo/repository.js';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
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

  it('names a flipped bit, a truncated pack, a deleted pack; quarantines them; a later backup heals every point; repair index restores service', async () => {
    const points = await cliJson<Array<{ id: string; vm: string; disk: string; group: string | null }>>(['list', '-r', root]);
    const a = points.find((p) => p.vm === 'a')!;
    const b = points.find((p) => p.vm === 'b')!;
    const healthy = async () => {
      const r = await cli(['check', '-r', root, '--read-data', '--json']);
      expect(r.code, JSON.stringify((JSON.parse(r.stdout) as Report).problems.slice(0, 3))).toBe(0);
      return JSON.parse(r.stdout) as Report & { healed: number };
    };

    // A flipped bit in a's first chunk: the structure is intact; reading the data finds it and quarantines the record.
    const at = await firstChunk(root, a.id);
    flipBit(join(root, packPath(at.packId)), at.offset + recordHeaderBytes + 100);
    expect((await cli(['check', '-r', root])).code).toBe(0);
    const read = await cli(['check', '-r', root, '--read-data', '--json']);
    expect(read.code).toBe(2);
    const found = JSON.parse(read.stdout) as Report & { quarantined: { records: number; packs: number } };
    expect(found.problems.find((p) => p.code === 'CHECKSUM_MISMATCH')).toMatchObject({ object: `${packPath(at.packId)} at offset ${at.offset}` });
    expect(found.problems.flatMap((p) => p.points)).toEqual(expect.arrayContaining([`a/sda@${a.id}`, expect.stringMatching(/^g\/sda@/)]));
    expect(found.quarantined).toEqual({ records: 1, packs: 0 });
    expect(readdirSync(join(root, 'quarantine'))).toEqual([`${at.packId}-${String(at.offset).padStart(12, '0')}.json`]);
    const again = await cli(['check', '-r', root]);
    expect(again.code).toBe(2);
    expect(again.stdout).toMatch(new RegExp(`CHUNK_MISSING chunk [0-9a-f]{64}: quarantined: its record in pack ${at.packId} at offset ${at.offset} is damaged .*; breaks .*a/sda@${a.id}`));
    const restore = await cli(['restore', '-r', root, `a/sda@${a.id}`, join(dir, 'out.raw')]);
    expect(restore.code).toBe(2);
    expect(restore.stderr).toMatch(/quarantined: its record in pack/);
    // The next backup of a's disk stores that chunk afresh: a's point, and the VM restore point g that shares it, are whole again.
    expect((await cliJson<{ chunksNew: number }>(['backup', '-r', root, '--vm', 'a', '--disk', 'sda', join(dir, 'a.raw')])).chunksNew).toBe(1);
    expect((await healthy()).healed).toBe(1);
    await expectRestore(`a/sda@${a.id}`, join(dir, 'a.raw'));
    await expectRestore(`g/sda@latest`, join(dir, 'a.raw'));

    // b's first pack cut short: named, its records quarantined whole; a backup of b heals b and g.
    const cutPack = (await firstChunk(root, b.id)).packId;
    const pack = join(root, packPath(cutPack));
    truncateSync(pack, statSync(pack).size - 10);
    const cut = await cli(['check', '-r', root]);
    expect(cut.code).toBe(2);
    expect(cut.stdout).toMatch(/^PACK_SIZE packs\/.*\.pack: \d+ bytes; it was sealed at \d+$/m);
    expect(cut.stdout).toMatch(new RegExp(`^CHUNK_MISSING chunk [0-9a-f]{64}: in packs/.* which is missing or damaged; breaks .*b/sda@${b.id}`, 'm'));
    expect(cut.stdout).toMatch(/quarantined 1 damaged or missing pack/);
    await cliJson(['backup', '-r', root, '--vm', 'b', '--disk', 'sda', join(dir, 'b.raw')]);
    await healthy();
    await expectRestore(`b/sda@${b.id}`, join(dir, 'b.raw'));

    // A pack deleted outright: the same.
    const gone = (await firstChunk(root, a.id)).packId;
    rmSync(join(root, packPath(gone)));
    const missing = await cli(['check', '-r', root]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(/^PACK_MISSING packs\/.*\.pack: the index names it; the repository does not have it$/m);
    await cliJson(['backup', '-r', root, '--vm', 'a', '--disk', 'sda', join(dir, 'a.raw')]);
    await healthy();
    await expectRestore(`a/sda@${a.id}`, join(dir, 'a.raw'));

    // The index cache and every index object lost, and the cut pack's trailer never readable: repair index restores service.
    rmSync(join(root, 'index'), { recursive: true });
    rmSync(join(root, 'idx'), { recursive: true });
    expect(existsSync(pack)).toBe(true);
    const repaired = await cliJson<{ packsTorn: number; recordsSalvaged: number }>(['repair', 'index', '-r', root]);
    expect(repaired.packsTorn).toBe(1);
    expect(existsSync(pack)).toBe(false); // what it held that could be read is in a new pack
    expect(readdirSync(join(root, 'quarantine')).filter((f) => f.startsWith(cutPack))).toEqual([]);
    await healthy();
    for (const p of points.filter((q) => q.vm !== 'g')) await expectRestore(`${p.vm}/${p.disk}@${p.id}`, join(dir, `${p.vm}.raw`));

    // A VM restore point whose disk sdb lost its point file.
    const member = points.find((p) => p.vm === 'g' && p.disk === 'sdb')!;
    rmSync(join(root, 'points', 'g', 'sdb', `${member.id}.point`));
    const r = await cli(['check', '-r', root, '--json']);
    expect(r.code).toBe(2);
    expect((JSON.parse(r.stdout) as Report).problems.find((p) => p.code === 'GROUP_INCOMPLETE')).toMatchObject({ reason: `its disk sdb (restore point ${member.id}) is missing` });
  });

  it('a torn pack the index never knew is named; repair index salvages its intact records', async () => {
    const torn = join(dir, 'torn');
    await cli(['init', '-r', torn, '--pack-size', '1M']);
    const image = join(dir, 'torn.raw');
    writeFileSync(image, randomStream('torn')(2 * MiB));
    const point = await cliJson<{ id: string }>(['backup', '-r', torn, '--vm', 't', '--disk', 'sda', image]);
    const packs = readdirSync(join(torn, 'packs')).flatMap((d) => readdirSync(join(torn, 'packs', d)).map((f) => join(torn, 'packs', d, f)));
    truncateSync(packs[0], statSync(packs[0]).size - 100); // the trailer torn; every record intact
    rmSync(join(torn, 'index'), { recursive: true });
    rmSync(join(torn, 'idx'), { recursive: true }); // nothing else says what the pack held
    const named = await cli(['check', '-r', torn]);
    expect(named.code).toBe(2);
    expect(named.stdout).toMatch(/^PACK_UNREADABLE packs\/.*\.pack: .*; blockvault repair index salvages its records/m);
    const repaired = await cliJson<{ packsTorn: number; recordsSalvaged: number; packsWritten: number }>(['repair', 'index', '-r', torn]);
    expect(repaired).toMatchObject({ packsTorn: 1, packsWritten: 1 });
    expect(repaired.recordsSalvaged).toBeGreaterThan(0);
    expect(existsSync(packs[0])).toBe(false);
    expect((await cli(['check', '-r', torn, '--read-data'])).code).toBe(0);
    const out = join(dir, 'torn-out.raw');
    expect((await cli(['restore', '-r', torn, `t/sda@${point.id}`, out])).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(image));
  });

  it('a pack replaced by garbage of the same size is named; gc and restore of other points are unharmed; a backup heals', async () => {
    const junk = join(dir, 'junk');
    await cli(['init', '-r', junk, '--pack-size', '1M']);
    const images = ['x', 'y'].map((name) => {
      const path = join(dir, `junk-${name}.raw`);
      writeFileSync(path, randomStream(`junk-${name}`)(2 * MiB));
      return path;
    });
    const x = await cliJson<{ id: string }>(['backup', '-r', junk, '--vm', 'x', '--disk', 'sda', images[0]]);
    const y = await cliJson<{ id: string }>(['backup', '-r', junk, '--vm', 'y', '--disk', 'sda', images[1]]);
    const victim = (await firstChunk(junk, x.id)).packId;
    const path = join(junk, packPath(victim));
    writeFileSync(path, randomStream('garbage')(statSync(path).size));
    const named = await cli(['check', '-r', junk]);
    expect(named.code).toBe(2);
    expect(named.stdout).toMatch(new RegExp(`^(CORRUPT|CHECKSUM_MISMATCH) packs/${victim.slice(0, 2)}/${victim}\\.pack: .*(magic|checksum)`, 'm'));
    expect(named.stdout).toMatch(new RegExp(`breaks x/sda@${x.id}`));
    const gc = await cli(['gc', '-r', junk]);
    expect(gc.code, gc.stderr).toBe(0);
    const out = join(dir, 'junk-out.raw');
    expect((await cli(['restore', '-r', junk, `y/sda@${y.id}`, out])).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(images[1]));
    await cliJson(['backup', '-r', junk, '--vm', 'x', '--disk', 'sda', images[0]]);
    expect((await cli(['check', '-r', junk, '--read-data'])).code).toBe(0);
    expect((await cli(['restore', '-r', junk, `x/sda@${x.id}`, out, '--force'])).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(images[0]));
  });

  async function expectRestore(spec: string, image: string): Promise<void> {
    const out = join(dir, 'restored.raw');
    const r = await cli(['restore', '-r', root, spec, out, '--force']);
    expect(r.code, `${spec}: ${r.stderr}`).toBe(0);
    expect(sha256File(out), spec).toBe(sha256File(image));
  }
});

function flipBit(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  byte[0] ^= 1;
  writeSync(fd, byte, 0, 1, at);
  closeSync(fd);
}
