// The CLI as a user drives it, on realistic generated VM disks (GPT and MBR,
// FAT + ext4 populated from real system files, incompressible data, holes).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeVmDisk, scatterWrites, sha256File, type DiskInfo } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const allocated = (path: string) => statSync(path).blocks * 512;

interface Backup { id: string; vm: string; disk: string; time: string; bytesTotal: number; bytesRead: number; bytesNew: number; bytesStored: number; chunksTotal: number; chunksNew: number; chunksZero: number; seconds: number }

describe('blockvault CLI end to end', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  let disk: DiskInfo;

  beforeAll(() => {
    disk = makeVmDisk({ path: join(dir, 'web01.raw'), sizeBytes: 256 * MiB, systemBytes: 48 * MiB, randomBytes: 16 * MiB, seed: 'web01' });
  });

  it('backs up, dedups, restores byte-identical and sparse, across days of changes', async () => {
    expect((await cli(['init', '-r', root])).code).toBe(0);
    const day1 = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', disk.path]);
    expect(Object.keys(day1)).toEqual(expect.arrayContaining(['id', 'vm', 'disk', 'time', 'bytesTotal', 'bytesRead', 'bytesNew', 'bytesStored', 'chunksTotal', 'chunksNew', 'chunksZero', 'seconds']));
    expect(day1).toMatchObject({ vm: 'web01', disk: 'sda', bytesTotal: 256 * MiB, chunksTotal: 4096 });
    expect(day1.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(day1.bytesRead).toBeLessThan(allocated(disk.path) + 8 * MiB); // holes are skipped
    expect(day1.chunksZero).toBeGreaterThan(2000);
    expect(day1.bytesStored).toBeLessThan(day1.bytesNew); // system files compress

    const day1Copy = join(dir, 'web01.day1.raw');
    copyFileSync(disk.path, day1Copy);
    const unchanged = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', disk.path]);
    expect(unchanged.bytesNew).toBe(0);
    expect(unchanged.bytesStored).toBe(0);

    const changed = scatterWrites(disk, 50, 64 * 1024, 'day2');
    const changedBytes = changed.reduce((a, e) => a + e.length, 0);
    const day2 = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', disk.path]);
    expect(day2.bytesNew).toBeGreaterThanOrEqual(changedBytes);
    expect(day2.bytesNew).toBeLessThanOrEqual(2 * changedBytes + 64 * 1024); // unaligned writes touch at most 2 chunks

    const list = await cliJson<Array<{ id: string }>>(['list', '-r', root, '--vm', 'web01']);
    expect(list.map((p) => p.id)).toEqual([day2.id, unchanged.id, day1.id]);

    const out1 = join(dir, 'out1.raw');
    expect((await cli(['restore', '-r', root, `web01/sda@${day1.id.slice(0, 8)}`, out1])).code).toBe(0);
    expect(sha256File(out1)).toBe(sha256File(day1Copy));
    expect(allocated(out1)).toBeLessThanOrEqual(allocated(day1Copy) + 4 * MiB); // as sparse as the source
    const out2 = join(dir, 'out2.raw');
    expect((await cli(['restore', '-r', root, 'web01/sda@latest', out2])).code).toBe(0);
    expect(sha256File(out2)).toBe(sha256File(disk.path));

    const verify = await cliJson<{ ok: boolean; points: unknown[] }>(['verify', '-r', root]);
    expect(verify.ok).toBe(true);
    expect(verify.points).toHaveLength(3);
    const stats = await cliJson<{ points: number; dedupRatio: number; compressionRatio: number }>(['stats', '-r', root]);
    expect(stats.points).toBe(3);
    expect(stats.dedupRatio).toBeGreaterThan(2.5);
    expect(stats.compressionRatio).toBeGreaterThan(1.2);
  });

  it('backs up an MBR disk from stdin and restores it to stdout', async () => {
    const mbr = makeVmDisk({ path: join(dir, 'db01.raw'), sizeBytes: 96 * MiB, systemBytes: 16 * MiB, randomBytes: 4 * MiB, table: 'mbr', seed: 'db01' });
    expect(readFileSync(mbr.path).subarray(510, 512)).toEqual(Buffer.from([0x55, 0xaa]));
    const fromStdin = await new Promise<Backup>((resolve, reject) => {
      const child = spawn(process.execPath, [join('dist', 'engine', 'cli', 'main.js'), 'backup', '-r', root, '--vm', 'db01', '--disk', 'vda', '-', '--json'], { stdio: [openSync(mbr.path, 'r'), 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`))));
    });
    expect(fromStdin.bytesTotal).toBe(96 * MiB);
    expect(fromStdin.bytesRead).toBe(96 * MiB); // a stream has no holes to skip
    const outPath = join(dir, 'db01.stdout.raw');
    const fd = openSync(outPath, 'w');
    const r = await cli(['restore', '-r', root, 'db01/vda@latest', '-'], { stdoutFile: fd });
    closeSync(fd);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(outPath)).toBe(sha256File(mbr.path));
  });

  it('gives every bad input a clear message, the right exit code, and changes nothing', async () => {
    const before = await cliJson<unknown[]>(['list', '-r', root]);
    writeFileSync(join(dir, 'empty.raw'), '');
    const cases: Array<[string[], number, RegExp]> = [
      [['backup', '-r', root, '--vm', 'x', '--disk', 'sda', join(dir, 'nope.raw')], 1, /source .*nope\.raw does not exist/],
      [['backup', '-r', root, '--vm', 'x', '--disk', 'sda', dir], 1, /is a directory/],
      [['backup', '-r', root, '--vm', 'a/b', '--disk', 'sda', disk.path], 1, /invalid vm name "a\/b"/],
      [['backup', '-r', root, '--vm', 'x', disk.path], 1, /--disk is required/],
      [['backup', '-r', root, '--vm', 'x', '--disk', 'sda', '--bogus', disk.path], 1, /^blockvault backup: unknown option --bogus \(see blockvault backup --help\) \[USAGE\]\n$/],
      [['backup', '-r', root, '--vm', 'x', '--disk', 'sda', '--vm'], 1, /^blockvault backup: option --vm needs a value/],
      [['backup', '-r', root, '--vm', 'x', '--disk', 'sda', join(dir, 'empty.raw')], 1, /source .*empty\.raw is empty \(0 bytes\): nothing was committed.*--allow-empty/],
      [['init', '-r', disk.path], 1, /web01\.raw exists and is not a directory; init needs an empty or new directory \[BAD_INPUT\]/],
      [['restore', '-r', root, 'web01/sda@latest'], 1, /^blockvault restore: expected <vm>\/<disk>@<id> and <target>, got 1 argument \(see/],
      [['backup', '-r', dir, '--vm', 'x', '--disk', 'sda', disk.path], 1, /is not a blockvault repository/],
      [['init', '-r', root], 1, /already holds a blockvault repository; nothing was changed/],
      [['init', '-r', join(dir, 'r2'), '--chunk-size', '100K'], 1, /chunk size 100 KiB must be a power of two from 64 KiB to 4 MiB/],
      [['restore', '-r', root, 'web01/sda@ffffffff', join(dir, 'x.raw')], 1, /no restore point web01\/sda@ffffffff/],
      [['restore', '-r', root, 'nosuch/sda', join(dir, 'x.raw')], 1, /no restore points for nosuch\/sda/],
      [['restore', '-r', root, 'web01/sda@latest', disk.path], 1, /exists; use --force/],
      [['restore', '-r', root, 'web01', join(dir, 'x.raw')], 1, /expected <vm>\/<disk>@<id>/],
      [['list'], 1, /no repository given/],
      [['frobnicate'], 1, /unknown command "frobnicate"/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at |a bug; please report it/); // no stack traces
    }
    // A producer that failed in a pipe: zero bytes on stdin.
    const fromEmptyPipe = await cli(['backup', '-r', root, '--vm', 'x', '--disk', 'sda', '-'], { stdin: '' });
    expect(fromEmptyPipe.code).toBe(1);
    expect(fromEmptyPipe.stderr).toMatch(/source stdin is empty \(0 bytes\): nothing was committed/);
    expect(await cliJson<unknown[]>(['list', '-r', root])).toEqual(before);
    expect(existsSync(join(dir, 'x.raw'))).toBe(false);
  });

  it('commits an empty disk only when told to, and restores it', async () => {
    const r5 = join(dir, 'r5');
    await cli(['init', '-r', r5]);
    const empty = await cliJson<Backup>(['backup', '-r', r5, '--vm', 'e', '--disk', 'sda', '--allow-empty', '-'], { stdin: '' });
    expect(empty).toMatchObject({ bytesTotal: 0, chunksTotal: 0 });
    const out = join(dir, 'empty.restored.raw');
    expect((await cli(['restore', '-r', r5, 'e/sda@latest', out])).code).toBe(0);
    expect(statSync(out).size).toBe(0);
  });

  it('refuses a repository of another format version by name', async () => {
    const r3 = join(dir, 'r3');
    await cli(['init', '-r', r3]);
    const config = readFileSync(join(r3, 'config'));
    config[7] = 9;
    writeFileSync(join(r3, 'config'), config);
    const r = await cli(['list', '-r', r3]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/r3\/config: repository format version 9; this blockvault reads versions 1, 2, 3, 4, 5 and 6 \[FORMAT_VERSION\]/);
  });

  it('backups run at once; an exclusive holder makes them wait and time out with exit 3', async () => {
    const r4 = join(dir, 'r4');
    await cli(['init', '-r', r4]);
    const [a, b] = await Promise.all([
      cli(['backup', '-r', r4, '--vm', 'web01', '--disk', 'sda', disk.path, '--json']),
      cli(['backup', '-r', r4, '--vm', 'web02', '--disk', 'sda', disk.path, '--json']),
    ]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    expect(a.stderr + b.stderr).not.toMatch(/waiting/);
    expect((await cli(['verify', '-r', r4])).code).toBe(0);
    // An exclusive lock held by a live process (an index rebuild, say).
    const holder = spawn('sleep', ['30']);
    let locked;
    try {
      const now = new Date().toISOString();
      writeFileSync(join(r4, 'locks', 'exclusive-0-000000000000.json'), JSON.stringify({ id: '0-000000000000', kind: 'exclusive', pid: holder.pid, host: (await import('node:os')).hostname(), bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), started: now, refreshed: now, what: 'test holder' }));
      locked = await cli(['backup', '-r', r4, '--vm', 'web01', '--disk', 'sda', disk.path, '--lock-wait', '1']);
    } finally {
      holder.kill();
    }
    expect(locked.code).toBe(3);
    expect(locked.stderr).toMatch(/waiting for pid \d+ .*test holder.* to finish/);
    expect(locked.stderr).toMatch(/is locked by pid \d+ .*test holder.*\[REPO_LOCKED\]/);
    await new Promise((r) => holder.on('close', r));
    const after = await cli(['backup', '-r', r4, '--vm', 'web01', '--disk', 'sda', disk.path]);
    expect(after.code).toBe(0);
    expect(after.stderr).toMatch(/removing stale lock locks\/exclusive-0-000000000000\.json \(test holder: pid \d+ is gone\)/);
    expect(readdirSync(join(r4, 'locks'))).toEqual([]);
  });

  it('teaches with --help', async () => {
    for (const command of ['init', 'backup', 'list', 'restore', 'verify', 'stats', 'index', 'upgrade', 'mount', 'umount', 'files', 'boot', 'bench']) {
      const r = await cli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: blockvault ${command}`));
      if (!['umount'].includes(command)) expect(r.stdout, command).toMatch(/\n(Options:|  -r, --repo)/); // every option is listed
    }
    const top = await cli(['--help']);
    expect(top.stdout).toMatch(/Exit codes/);
  });
});
