// Real FUSE mounts of a repository, served by the CLI in its own process.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMounted } from '../../mount/fuse-mount.js';
import { makeVmDisk, sha256File, type DiskInfo } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const mounted = isMounted;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const wait = async (what: () => boolean, ms = 10_000) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
};

function rangeSha(path: string, start: number, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(4 * MiB);
  for (let at = 0; at < size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), start + at);
    hash.update(buf.subarray(0, n));
    at += n;
  }
  closeSync(fd);
  return hash.digest('hex');
}

describe.each([['fixed'], ['aligned-cdc']])('blockvault mount (%s chunks)', (chunker) => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const mnt = join(dir, 'mnt');
  let server: ChildProcess;
  let disk: DiskInfo;
  const images = new Map<string, string>(); // restore point id -> image copy

  const startMount = async (options: string[] = []) => {
    const child = spawn(process.execPath, [cliPath, 'mount', '-r', root, mnt, ...options], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    (child as unknown as { log: () => string }).log = () => log;
    expect(await wait(() => /blockvault: mounted/.test(log) && mounted(mnt)), log).toBe(true);
    return child;
  };

  beforeAll(async () => {
    mkdirSync(mnt);
    disk = makeVmDisk({ path: join(dir, 'web01.raw'), sizeBytes: 128 * MiB, systemBytes: 24 * MiB, randomBytes: 4 * MiB, seed: 'mount', stageDir: join(dir, 'stage') });
    await cli(['init', '-r', root, '--pack-size', '4M', '--chunker', chunker]);
    const a = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', disk.path]);
    images.set(a.id, join(dir, 'a.raw'));
    copyFileSync(disk.path, images.get(a.id)!);
    const fd = openSync(disk.path, 'r+');
    writeSync(fd, Buffer.alloc(MiB, 0x42), 0, MiB, 100 * MiB);
    closeSync(fd);
    const b = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', disk.path]);
    images.set(b.id, join(dir, 'b.raw'));
    copyFileSync(disk.path, images.get(b.id)!);
    // A disk with no partition table, holding an ext4 filesystem itself (a whole-disk image).
    const flatStage = join(dir, 'flat-stage');
    mkdirSync(join(flatStage, 'etc'), { recursive: true });
    writeFileSync(join(flatStage, 'etc', 'hostname'), 'flat\n');
    execFileSync('mkfs.ext4', ['-F', '-q', '-d', flatStage, join(dir, 'flat.raw'), '16M'], { stdio: 'ignore' });
    await cliJson(['backup', '-r', root, '--vm', 'flat', '--disk', 'vda', join(dir, 'flat.raw')]);
    server = await startMount();
  });
  afterAll(async () => {
    if (mounted(mnt)) await cli(['umount', mnt]);
    server?.kill('SIGKILL');
  });

  it('shows every restore point as a disk identical to the image backed up', async () => {
    const points = readdirSync(join(mnt, 'web01', 'sda')).filter((n) => n !== 'latest');
    expect(points).toHaveLength(2);
    for (const [id, image] of images) {
      const name = points.find((p) => p.endsWith(`_${id.slice(0, 8)}`))!;
      expect(name).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ_[0-9a-f]{8}$/);
      expect(sha256File(join(mnt, 'web01', 'sda', name, 'disk.raw'))).toBe(sha256File(image));
    }
    const newest = [...images.keys()][1];
    expect(readlinkSync(join(mnt, 'web01', 'sda', 'latest'))).toMatch(new RegExp(`_${newest.slice(0, 8)}$`));
  });

  it('serves each partition as its byte range of the disk', () => {
    const latest = join(mnt, 'web01', 'sda', 'latest');
    expect(readdirSync(latest).sort()).toEqual(['disk.raw', 'files', 'part1.raw', 'part2.raw']);
    for (const p of disk.partitions) {
      const file = join(latest, `part${p.number}.raw`);
      expect(statSync(file).size).toBe(p.size);
      expect(sha256File(file)).toBe(rangeSha(disk.path, p.start, p.size));
    }
  });

  it('serves the files of the FAT partition', () => {
    const fat = join(mnt, 'web01', 'sda', 'latest', 'files', 'part1');
    expect(readdirSync(join(mnt, 'web01', 'sda', 'latest', 'files')).sort()).toEqual(['part1', 'part2']);
    expect(readdirSync(fat).sort()).toEqual(['EFI', 'README.TXT']);
    expect(readFileSync(join(fat, 'README.TXT'), 'utf8')).toBe('blockvault test disk\r\n');
    expect(readFileSync(join(fat, 'EFI', 'Boot Loader Settings.txt'), 'utf8')).toBe('a file with a long name\n'.repeat(2000));
  });

  it('serves the files inside the ext4 partition, symlinks as symlinks', () => {
    const files = join(mnt, 'web01', 'sda', 'latest', 'files', 'part2');
    expect(readFileSync(join(files, 'etc', 'hostname'), 'utf8')).toBe('mount\n');
    expect(lstatSync(join(files, 'etc', 'hostname.link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(files, 'etc', 'hostname.link'))).toBe('hostname');
    let compared = 0;
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        if (compared >= 300) return;
        const src = join(d, name);
        const st = lstatSync(src);
        const inMount = join(files, relative(disk.stageDir!, src));
        if (st.isDirectory()) walk(src);
        else if (st.isSymbolicLink()) expect(readlinkSync(inMount)).toBe(readlinkSync(src));
        else if (st.isFile()) {
          expect(readFileSync(inMount).equals(readFileSync(src)), inMount).toBe(true);
          expect(lstatSync(inMount).mode & 0o7777).toBe(st.mode & 0o7777);
          compared += 1;
        }
      }
    };
    walk(disk.stageDir!);
    expect(compared).toBeGreaterThan(100);
  });

  it('serves the files of a disk that holds a filesystem without a partition table', () => {
    const latest = join(mnt, 'flat', 'vda', 'latest');
    expect(readdirSync(latest).sort()).toEqual(['disk.raw', 'files']);
    expect(readdirSync(join(latest, 'files')).sort()).toEqual(['etc', 'lost+found']);
    expect(readFileSync(join(latest, 'files', 'etc', 'hostname'), 'utf8')).toBe('flat\n');
  });

  it('refuses every write with EROFS, and the kernel has it mounted read-only', () => {
    const latest = join(mnt, 'web01', 'sda', 'latest');
    expect(() => writeFileSync(join(latest, 'new-file'), 'x')).toThrow(/EROFS/);
    expect(() => mkdirSync(join(mnt, 'web01', 'new-dir'))).toThrow(/EROFS/);
    expect(() => utimesSync(join(latest, 'disk.raw'), new Date(), new Date())).toThrow(/EROFS/); // touch
    expect(() => unlinkSync(join(latest, 'part1.raw'))).toThrow(/EROFS/);
    const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt);
    expect(line?.split(' ')[3].split(',')).toContain('ro');
  });

  it('is read-only and picks up restore points backed up while mounted', async () => {
    expect(() => openSync(join(mnt, 'web01', 'sda', 'latest', 'disk.raw'), 'r+')).toThrow(/EROFS|read-only/);
    const c = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'db01', '--disk', 'vda', images.values().next().value!]);
    expect(await wait(() => { try { return readdirSync(join(mnt, 'db01', 'vda')).some((n) => n.endsWith(c.id.slice(0, 8))); } catch { return false; } })).toBe(true);
  });

  it('moves `latest` to a new restore point at once, though the kernel caches entries for an hour', async () => {
    const sda = join(mnt, 'web01', 'sda');
    const before = readlinkSync(join(sda, 'latest')); // the kernel has `latest` and its target cached now
    const older = [...images.values()][0];
    const d = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', older]);
    images.set(d.id, older);
    expect(await wait(() => readlinkSync(join(sda, 'latest')).endsWith(`_${d.id.slice(0, 8)}`), 3000)).toBe(true);
    expect(readlinkSync(join(sda, 'latest'))).not.toBe(before);
    expect(readdirSync(sda)).toHaveLength(4); // three points and `latest`
    expect(sha256File(join(sda, 'latest', 'disk.raw'))).toBe(sha256File(older));
  });

  it('recovers a mount point left stale by a process killed mid-read', async () => {
    // Another process is reading disk.raw when the mount dies under it. It reads with
    // O_DIRECT, so what it reads after the kill cannot come from the page cache
    // (earlier tests read this whole file): its next read must fail, not hang.
    const file = join(mnt, 'web01', 'sda', 'latest', 'disk.raw');
    const readerScript = `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(file)}, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
      const b = Buffer.alloc(1 << 20); for (let at = 0; at < 4 << 20; at += b.length) fs.readSync(fd, b, 0, b.length, at);
      console.log('reading');
      process.stdin.once('data', () => { try { for (let at = 4 << 20, n; (n = fs.readSync(fd, b, 0, b.length, at)) > 0; at += n); console.log('read to the end'); process.exit(0); }
        catch (err) { console.log(err.code); process.exit(3); } });`;
    const reader = spawn(process.execPath, ['-e', readerScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      let readerOut = '';
      reader.stdout!.on('data', (d) => (readerOut += d));
      reader.stderr!.on('data', (d) => (readerOut += d));
      const readerExit = new Promise<number | null>((r) => reader.on('close', r));
      expect(await wait(() => readerOut.includes('reading')), readerOut).toBe(true);
      const serverGone = new Promise((r) => server.on('close', r));
      server.kill('SIGKILL');
      await serverGone;
      reader.stdin!.write('go\n');
      const exitCode = await Promise.race([readerExit, sleep(10_000).then(() => 'still reading after 10 s')]);
      expect(exitCode, readerOut).toBe(3); // its read failed, it did not hang
      expect(readerOut).toMatch(/ENOTCONN|ECONNABORTED|EIO/);
      expect(() => statSync(mnt)).toThrow(/ENOTCONN/);
      server = await startMount(['--verify-content']); // detects the stale mount and cleans it up; serves with SHA-256 checks too
      expect((server as unknown as { log: () => string }).log()).toMatch(/stale mount/);
      expect(sha256File(join(mnt, 'web01', 'sda', 'latest', 'disk.raw'))).toBe(sha256File([...images.values()][0]));
    } finally {
      reader.kill('SIGKILL');
    }
  });

  it('gives clear errors for a missing or busy mount point; umount ends the mount process', async () => {
    const missing = await cli(['mount', '-r', root, join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/mount point .*nope does not exist/);
    const busy = await cli(['mount', '-r', root, mnt]);
    expect(busy.code).toBe(3);
    expect(busy.stderr).toMatch(/is busy: something is already mounted there/);
    const exited = new Promise<number | null>((r) => server.on('close', r));
    expect((await cli(['umount', mnt])).code).toBe(0);
    expect(await exited).toBe(0);
    expect(mounted(mnt)).toBe(false);
  });
});
