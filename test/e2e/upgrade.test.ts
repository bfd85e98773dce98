// Repositories written by older blockvaults: read as they are; a backup into
// one is refused by name with the command that upgrades it; `blockvault
// upgrade` brings it to the current version in place, and a stopped upgrade
// leaves every restore point readable and finishes when run again.
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initDigests } from '../../engine/core/digest.js';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { makeLegacy } from '../helpers/legacy-repo.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;

function pointMagics(root: string): string[] {
  const out: string[] = [];
  for (const vm of readdirSync(join(root, 'points'))) {
    for (const disk of readdirSync(join(root, 'points', vm))) {
      for (const f of readdirSync(join(root, 'points', vm, disk))) out.push(readFileSync(join(root, 'points', vm, disk, f)).subarray(0, 8).toString('latin1'));
    }
  }
  return out.sort();
}

async function expectRestores(root: string, dir: string, points: Array<[string, string]>): Promise<void> {
  const out = join(dir, 'out.raw');
  for (const [id, digest] of points) {
    const r = await cli(['restore', '-r', root, `vm/sda@${id}`, out]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(out), id).toBe(digest);
    rmSync(out);
  }
}

describe('older repositories', () => {
  const dir = tempDir();

  it('version 1: read as it is, refused for writing by name, and upgraded in place', async () => {
    await initDigests();
    const root = join(dir, 'v1');
    const image = join(dir, 'v1.raw');
    writeFileSync(image, randomStream('upgrade')(4 * MiB));
    await cli(['init', '-r', root]);
    const first = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    await makeLegacy(root, 1);
    expect(pointMagics(root)).toEqual(['BVPOINT\x01']);

    expect((await cliJson<Array<{ id: string }>>(['list', '-r', root])).map((p) => p.id)).toEqual([first.id]);
    await expectRestores(root, dir, [[first.id, sha256File(image)]]);
    const refused = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is a version-1 repository: blockvault reads it as it is, and writes to it once upgraded with: blockvault upgrade -r .*v1 \[FORMAT_VERSION\]/);

    writeFileSync(join(root, 'locks', 'writer.lock'), '{}'); // a version-1 writer at work
    const busy = await cli(['upgrade', '-r', root]);
    expect(busy.code).toBe(3);
    expect(busy.stderr).toMatch(/locks\/writer\.lock exists: a version-1 blockvault is writing/);
    rmSync(join(root, 'locks', 'writer.lock')); // it finished

    expect(await cliJson(['upgrade', '-r', root])).toMatchObject({ from: 1, to: 6, pointsPaged: 1, skipped: [] });
    expect(readdirSync(join(root, 'idx'))).toHaveLength(1); // for the existing packs (a 64-chunk map is all root: no pages to store)
    expect(pointMagics(root)).toEqual(['BVPOINT\x02']);
    expect((await cli(['upgrade', '-r', root])).stdout).toMatch(/already format version 6; nothing to do/);
    const second = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(second.code, second.stderr).toBe(0);
    expect((await cli(['verify', '-r', root])).code).toBe(0);
    await expectRestores(root, dir, [[first.id, sha256File(image)]]);
  });

  it('version 2 with delta chains: an upgrade killed half way leaves every point readable, and the next run finishes it', async () => {
    await initDigests();
    const root = join(dir, 'v2');
    const image = join(dir, 'v2.raw');
    writeFileSync(image, randomStream('upgrade-2')(6 * MiB));
    await cli(['init', '-r', root]);
    const points: Array<[string, string]> = [];
    for (let day = 0; day < 3; day++) {
      const fd = openSync(image, 'r+');
      writeSync(fd, randomStream(`day${day}`)(100_000), 0, 100_000, day * 1_000_003);
      closeSync(fd);
      points.push([(await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image])).id, sha256File(image)]);
    }
    await makeLegacy(root, 2, { deltas: true });
    expect(pointMagics(root)).toEqual(['BVPOINT\x01', 'BVPOINT\x01', 'BVPOINT\x01']);
    await expectRestores(root, dir, points);

    const killed = await cli(['upgrade', '-r', root], { env: { BLOCKVAULT_TEST_KILL_AT: 'upgrade-point-paged:1' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(pointMagics(root)).toEqual(['BVPOINT\x01', 'BVPOINT\x01', 'BVPOINT\x02']);
    await expectRestores(root, dir, points); // a delta whose base is paged reads it through its pages
    expect((await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image])).stderr).toMatch(/version-2 repository/);

    expect(await cliJson(['upgrade', '-r', root])).toMatchObject({ from: 2, to: 6, pointsPaged: 2, skipped: [] });
    expect(pointMagics(root)).toEqual(['BVPOINT\x02', 'BVPOINT\x02', 'BVPOINT\x02']);
    await expectRestores(root, dir, points);
    const verified = await cli(['verify', '-r', root]);
    expect(verified.code, verified.stderr + verified.stdout).toBe(0);
    const increment = await cliJson<{ mapKind: string; chunksNew: number }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(increment).toMatchObject({ mapKind: 'paged', chunksNew: 0 });
  });

  it('version 3: refused for writing by name (its writers ignore gc), upgraded by rewriting the config', async () => {
    await initDigests();
    const root = join(dir, 'v3');
    const image = join(dir, 'v3.raw');
    writeFileSync(image, randomStream('upgrade-3')(3 * MiB));
    await cli(['init', '-r', root]);
    const first = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    await makeLegacy(root, 3);
    await expectRestores(root, dir, [[first.id, sha256File(image)]]);
    for (const command of [['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image], ['gc', '-r', root], ['forget', '-r', root, `vm/sda@${first.id}`]]) {
      const refused = await cli(command);
      expect(refused.code, command[0]).toBe(1);
      expect(refused.stderr).toMatch(/is a version-3 repository: .*blockvault upgrade -r .*v3 \[FORMAT_VERSION\]/);
    }
    expect(await cliJson(['upgrade', '-r', root])).toMatchObject({ from: 3, to: 6, pointsPaged: 0, skipped: [] });
    expect(pointMagics(root)).toEqual(['BVPOINT\x02']);
    expect((await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image])).code).toBe(0);
    expect((await cli(['gc', '-r', root])).code).toBe(0);
    await expectRestores(root, dir, [[first.id, sha256File(image)]]);
  });

  it('version 4: written as it is (everything in it is version 5 too); upgrade rewrites only the config; a chunker needs a new repository', async () => {
    await initDigests();
    const root = join(dir, 'v4');
    const image = join(dir, 'v4.raw');
    writeFileSync(image, randomStream('upgrade-4')(3 * MiB));
    await cli(['init', '-r', root]);
    const first = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    await makeLegacy(root, 4);
    const second = await cliJson<{ id: string; chunksNew: number }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(second.chunksNew).toBe(0);
    expect(readFileSync(join(root, 'config'))[7]).toBe(4); // still version 4: a version-4 blockvault may go on writing to it
    const refused = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', '--chunker', 'aligned-cdc', image]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/this repository cuts fixed-size chunks; .*blockvault init --chunker aligned-cdc/);
    expect(await cliJson(['upgrade', '-r', root])).toMatchObject({ from: 4, to: 6, pointsPaged: 0, skipped: [] });
    expect(readFileSync(join(root, 'config'))[7]).toBe(6);
    await expectRestores(root, dir, [[first.id, sha256File(image)], [second.id, sha256File(image)]]);
  });

  it('version 5: written as it is; a running-VM backup (which keeps the machine description) is refused by name until upgraded', async () => {
    const root = join(dir, 'v5');
    const image = join(dir, 'v5.raw');
    writeFileSync(image, randomStream('upgrade-5')(2 * MiB));
    await cli(['init', '-r', root]);
    await makeLegacy(root, 5);
    const first = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(readFileSync(join(root, 'config'))[7]).toBe(5);
    const refused = await cli(['backup', '-r', root, '--vm', 'vm', '--qmp', join(dir, 'no-such.qmp')], { env: { BLOCKVAULT_RUN_DIR: join(dir, 'run') } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/needs repository format version 6; .*v5 is version 5: run blockvault upgrade -r .*v5 first \(a blockvault that reads formats only up to 5 then refuses the repository\) \[FORMAT_VERSION\]/);
    expect(await cliJson(['upgrade', '-r', root])).toMatchObject({ from: 5, to: 6, pointsPaged: 0, skipped: [] });
    expect(readFileSync(join(root, 'config'))[7]).toBe(6);
    await expectRestores(root, dir, [[first.id, sha256File(image)]]);
  });
});
