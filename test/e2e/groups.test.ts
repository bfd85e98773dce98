// Several disks of one VM in one command: backed up in parallel in one
// session, committed as one VM restore point (all disks or none), and taken
// whole by list, restore, verify and the mount.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isMounted } from '../../mount/fuse-mount.js';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
interface GroupResult { group: string; vm: string; disks: Array<{ id: string; disk: string; bytesTotal: number }> }

describe('VM restore points of several disks', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const sda = join(dir, 'sda.raw');
  const sdbRaw = join(dir, 'sdb.raw');
  const sdb = join(dir, 'sdb.qcow2');
  beforeAll(async () => {
    writeFileSync(sda, Buffer.concat([randomStream('group-a')(6 * MiB), Buffer.alloc(2 * MiB)]));
    writeFileSync(sdbRaw, randomStream('group-b')(4 * MiB));
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', sdbRaw, sdb]);
    await cli(['init', '-r', root, '--pack-size', '1M']);
  });

  it('backs up, lists, restores, verifies and mounts them whole', async () => {
    const g = await cliJson<GroupResult>(['backup', '-r', root, '--vm', 'web01', '--disk', `sda=${sda}`, '--disk', `sdb=${sdb}`]);
    expect(g.group).toMatch(/^[0-9a-f]{32}$/);
    expect(g.disks.map((d) => [d.disk, d.bytesTotal])).toEqual([['sda', 8 * MiB], ['sdb', 4 * MiB]]);
    const points = await cliJson<Array<{ disk: string; group: string }>>(['list', '-r', root]);
    expect(points.map((p) => [p.disk, p.group]).sort()).toEqual([['sda', g.group], ['sdb', g.group]]);
    expect((await cli(['list', '-r', root])).stdout).toMatch(new RegExp(`VM RESTORE POINT[\\s\\S]*web01@${g.group.slice(0, 8)} .* sda, sdb`));

    const out = join(dir, 'restored');
    expect((await cli(['restore', '-r', root, 'web01@latest', out])).code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['sda.raw', 'sdb.raw']);
    expect(sha256File(join(out, 'sda.raw'))).toBe(sha256File(sda));
    expect(sha256File(join(out, 'sdb.raw'))).toBe(sha256File(sdbRaw));
    const again = await cli(['restore', '-r', root, `web01@${g.group.slice(0, 8)}`, out]);
    expect(again.code).toBe(1); // never overwrites
    expect(again.stderr).toMatch(/sda\.raw exists; use --force/);

    const verify = await cliJson<{ ok: boolean; points: unknown[] }>(['verify', '-r', root, `web01@${g.group.slice(0, 8)}`]);
    expect(verify).toMatchObject({ ok: true });
    expect(verify.points).toHaveLength(2);

    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const server = spawn(process.execPath, [cliPath, 'mount', '-r', root, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let log = '';
      server.stderr!.on('data', (d) => (log += d));
      for (const end = Date.now() + 15_000; !/mounted/.test(log) && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      expect(readdirSync(join(mnt, 'web01')).sort()).toEqual(['@groups', 'sda', 'sdb']);
      const [name] = readdirSync(join(mnt, 'web01', '@groups'));
      expect(name).toMatch(new RegExp(`_${g.group.slice(0, 8)}$`));
      expect(readdirSync(join(mnt, 'web01', '@groups', name)).sort()).toEqual(['sda', 'sdb']);
      expect(readlinkSync(join(mnt, 'web01', '@groups', name, 'sdb'))).toMatch(/^\.\.\/\.\.\/sdb\/.*_[0-9a-f]{8}$/);
      expect(sha256File(join(mnt, 'web01', '@groups', name, 'sdb', 'disk.raw'))).toBe(sha256File(sdbRaw));
      expect((await cli(['umount', mnt])).code).toBe(0);
    } finally {
      server.kill('SIGKILL');
      if (isMounted(mnt)) execFileSync('fusermount', ['-u', '-z', mnt]);
    }
  });

  it('commits nothing when one disk fails or the backup dies before the group object, and says which disk', async () => {
    const before = await cliJson<unknown[]>(['list', '-r', root]);
    const failed = await cli(['backup', '-r', root, '--vm', 'web02', '--disk', `sda=${sda}`, '--disk', `sdb=${join(dir, 'missing.raw')}`]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/disk sdb: source .*missing\.raw does not exist/);
    const killed = await cli(['backup', '-r', root, '--vm', 'web03', '--disk', `sda=${sda}`, '--disk', `sdb=${sdb}`], { env: { BLOCKVAULT_TEST_KILL_AT: 'group-point-written:1' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(await cliJson<unknown[]>(['list', '-r', root])).toEqual(before); // web03's one written disk is no restore point
    expect((await cli(['verify', '-r', root])).code).toBe(0);
    const after = await cliJson<GroupResult>(['backup', '-r', root, '--vm', 'web03', '--disk', `sda=${sda}`, '--disk', `sdb=${sdb}`]);
    expect(after.disks).toHaveLength(2);
    // The killed run's private qemu-nbd socket directory went with the next run's start
    // (directories of live processes, other tests' backups, stay).
    const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const orphans = readdirSync(tmpdir()).filter((n) => { const m = /^blockvault-nbd-(\d+)-/.exec(n); return m !== null && !alive(Number(m[1])); });
    expect(orphans).toEqual([]);
    expect(existsSync(join(root, 'groups', 'web03', `${after.group}.group`))).toBe(true);
  });

  it('refuses disk names given twice, and mixed forms, by name', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--disk', `sda=${sda}`, '--disk', `sda=${sdb}`], /--disk sda is given twice/],
      [['--disk', `sda=${sda}`, '--disk', 'sdb'], /--disk "sdb": with several disks, give each as --disk NAME=SOURCE/],
      [['--disk', `sda=${sda}`, sda], /the sources are in the --disk options/],
      [['--disk', 'sda', '--disk', 'sdb', sda], /--disk is given 2 times/],
      [['--disk', `sda=${sda}`, '--disk', `sdb=${sdb}`, '--changed', join(dir, 'x.json')], /--changed names one disk's extents/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['backup', '-r', root, '--vm', 'bad', ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});
