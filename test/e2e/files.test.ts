// Granular recovery without a mount, and damaged data seen through a mount.
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, closeSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeVmDisk, type DiskInfo } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;

describe.each([['fixed'], ['aligned-cdc']])('blockvault files (%s chunks)', (chunker) => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  let disk: DiskInfo;
  beforeAll(async () => {
    disk = makeVmDisk({ path: join(dir, 'vm.raw'), sizeBytes: 96 * MiB, systemBytes: 16 * MiB, randomBytes: 2 * MiB, seed: 'files', stageDir: join(dir, 'stage') });
    await cli(['init', '-r', root, '--chunker', chunker]);
    await cliJson(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', disk.path]);
  });

  it('lists a directory, with symlink targets', async () => {
    const rows = await cliJson<Array<{ name: string; size: number; target?: string }>>(['files', 'ls', '-r', root, 'vm/sda@latest', '--part', '2', '/etc']);
    expect(rows).toEqual([
      expect.objectContaining({ name: 'hostname', size: 6 }),
      expect.objectContaining({ name: 'hostname.link', target: 'hostname' }),
    ]);
  });

  it('copies a tree out with contents, modes, times and symlinks intact', async () => {
    const out = join(dir, 'out');
    const r = await cliJson<{ files: number }>(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/usr', out]);
    expect(r.files).toBeGreaterThan(50);
    const src = join(disk.stageDir!, 'usr');
    let checked = 0;
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const a = join(d, name);
        const b = join(out, 'usr', relative(src, a));
        const sa = lstatSync(a);
        const sb = lstatSync(b);
        expect(sb.mode, b).toBe(sa.mode);
        if (sa.isSymbolicLink()) expect(readlinkSync(b)).toBe(readlinkSync(a));
        else if (sa.isDirectory()) walk(a);
        else {
          expect(readFileSync(b).equals(readFileSync(a)), b).toBe(true);
          expect(Math.floor(sb.mtimeMs / 1000)).toBe(Math.floor(sa.mtimeMs / 1000));
          checked += 1;
        }
      }
    };
    walk(src);
    expect(checked).toBe(r.files);
    const again = await cli(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/etc/hostname', out]);
    expect((await cli(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/etc/hostname', out])).stderr).toMatch(/it exists/);
    expect(again.code).toBe(0);
  });

  it('reads the FAT partition too, long names included', async () => {
    const rows = await cliJson<Array<{ name: string; size: number }>>(['files', 'ls', '-r', root, 'vm/sda@latest', '--part', '1', '/']);
    expect(rows.map((r) => r.name).sort()).toEqual(['EFI', 'README.TXT']);
    const out = join(dir, 'fat-out');
    await cliJson(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '1', '/EFI', out]);
    expect(readFileSync(join(out, 'EFI', 'Boot Loader Settings.txt'), 'utf8')).toBe('a file with a long name\n'.repeat(2000));
  });

  it('asks which partition when several hold filesystems', async () => {
    const r = await cli(['files', 'ls', '-r', root, 'vm/sda@latest', '/']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/several partitions hold filesystems \(1, 2\); choose one with --part/);
    expect((await cli(['files', 'ls', '-r', root, 'vm/sda@latest', '--part', '7', '/'])).stderr).toMatch(/has partitions 1, 2/);
  });
});

describe('a damaged chunk seen through the mount', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const mnt = join(dir, 'mnt');
  let log = '';
  const server = { kill: () => undefined as unknown };
  afterAll(async () => { await cli(['umount', mnt]); server.kill(); });

  it('fails that read with EIO, logs chunk and pack, and keeps serving', async () => {
    mkdirSync(mnt);
    const image = join(dir, 'r.raw');
    const data = Buffer.concat([Buffer.alloc(MiB, 1), Buffer.from(Array.from({ length: MiB }, (_, i) => (i * 7) & 255))]);
    (await import('node:fs')).writeFileSync(image, data);
    await cli(['init', '-r', root]);
    await cliJson(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    const pack = readdirSync(join(root, 'packs')).flatMap((d) => readdirSync(join(root, 'packs', d)).map((f) => join(root, 'packs', d, f)))[0];
    const fd = openSync(pack, 'r+');
    writeSync(fd, Buffer.from([0x99]), 0, 1, 32 + 64 + 3); // first record: the chunk of 0x01 bytes
    closeSync(fd);
    const child = spawn(process.execPath, [cliPath, 'mount', '-r', root, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
    server.kill = () => child.kill('SIGKILL');
    child.stderr!.on('data', (d) => (log += d));
    for (let i = 0; i < 200 && !/mounted/.test(log); i++) await new Promise((r) => setTimeout(r, 50));
    const point = readdirSync(join(mnt, 'vm', 'sda')).find((n) => n !== 'latest')!;
    const file = join(mnt, 'vm', 'sda', point, 'disk.raw');
    const f = openSync(file, 'r');
    const buf = Buffer.alloc(4096);
    expect(() => readSync(f, buf, 0, 4096, 0)).toThrow(/EIO|i\/o error/i);
    expect(readSync(f, buf, 0, 4096, MiB + 4096)).toBe(4096); // the rest of the disk still reads
    expect(buf.equals(data.subarray(MiB + 4096, MiB + 8192))).toBe(true);
    closeSync(f);
    for (let i = 0; i < 40 && !/EIO:/.test(log); i++) await new Promise((r) => setTimeout(r, 50)); // stderr arrives asynchronously
    expect(log).toMatch(/EIO: read of vm\/sda@[0-9a-f]{32}: chunk [0-9a-f]{64} in packs\/.* at offset 32: stored bytes fail their XXH64 checksum/);
  });
});
