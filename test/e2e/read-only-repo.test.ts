// Restoring from a write-protected offsite disk, a read-only export, or
// another user's repository: readers need no write access. The repository's
// own index cannot be opened there (LMDB cannot lock it), so a reader keeps
// its index in a cache directory instead (engine/repo/index-location.ts).
// Real read-only storage: a read-only bind mount, and a user without write
// permission (nobody), so this test runs as root, as CI does.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMounted } from '../../mount/fuse-mount.js';
import { makeVmDisk, sha256File, type DiskInfo } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;

/** The CLI as user nobody (no write permission anywhere in the repository). */
function asNobody(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, cliPath, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH!, BLOCKVAULT_QUIET_NATIVE: '1', BV_TEST_FILE: process.env.BV_TEST_FILE ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a repository the reader cannot write', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const ro = join(dir, 'ro');
  let disk: DiskInfo;
  let id = '';
  beforeAll(async () => {
    expect(process.getuid?.(), 'this test needs root (CI runs as root): it makes a read-only bind mount and runs as nobody').toBe(0);
    disk = makeVmDisk({ path: join(dir, 'vm.raw'), sizeBytes: 64 * MiB, systemBytes: 8 * MiB, randomBytes: 4 * MiB, seed: 'ro' });
    await cli(['init', '-r', root, '--pack-size', '1M']);
    id = (await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', disk.path])).id;
    mkdirSync(ro);
    execFileSync('mount', ['--bind', root, ro]);
    execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
  });
  afterAll(() => {
    if (isMounted(ro)) execFileSync('umount', [ro]);
  });

  it('lists, verifies, restores and mounts from read-only storage', async () => {
    const cache = join(dir, 'cache');
    const env = { XDG_CACHE_HOME: cache };
    const list = await cliJson<Array<{ id: string }>>(['list', '-r', ro], { env });
    expect(list.map((p) => p.id)).toEqual([id]);
    const verify = await cli(['verify', '-r', ro], { env });
    expect(verify.code, verify.stderr).toBe(0);
    const out = join(dir, 'restored.raw');
    const restore = await cli(['restore', '-r', ro, 'vm/sda@latest', out], { env });
    expect(restore.code, restore.stderr).toBe(0);
    expect(sha256File(out)).toBe(sha256File(disk.path));
    expect(readdirSync(join(cache, 'blockvault'))).toHaveLength(1); // one repository's index cache

    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const server = spawn(process.execPath, [cliPath, 'mount', '-r', ro, mnt], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    try {
      let log = '';
      server.stderr!.on('data', (d) => (log += d));
      for (const end = Date.now() + 15_000; !/mounted/.test(log) && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      expect(log).toMatch(/blockvault: mounted/);
      expect(sha256File(join(mnt, 'vm', 'sda', 'latest', 'disk.raw'))).toBe(sha256File(disk.path));
      expect((await cli(['umount', mnt])).code).toBe(0);
    } finally {
      server.kill('SIGKILL');
      if (isMounted(mnt)) execFileSync('fusermount', ['-u', '-z', mnt]);
    }
  });

  it('a backup into read-only storage fails clearly (exit 3), without a stack trace', async () => {
    const r = await cli(['backup', '-r', ro, '--vm', 'vm', '--disk', 'sdb', disk.path]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/read-only|permission denied/i);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a user without write permission lists, verifies and restores; without a cache directory too', async () => {
    execFileSync('chmod', ['-R', 'a+rX,go-w', root]);
    chmodSync(dir, 0o755);
    const work = join(dir, 'nobody');
    mkdirSync(join(work, 'cache'), { recursive: true });
    execFileSync('chown', ['-R', 'nobody', work]);
    const withCache = { XDG_CACHE_HOME: join(work, 'cache'), HOME: work };
    const list = await asNobody(['list', '-r', root, '--json'], withCache);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).map((p: { id: string }) => p.id)).toEqual([id]);
    expect((await asNobody(['verify', '-r', root], withCache)).code).toBe(0);
    const restore = await asNobody(['restore', '-r', root, 'vm/sda@latest', join(work, 'out.raw')], withCache);
    expect(restore.code, restore.stderr).toBe(0);
    expect(sha256File(join(work, 'out.raw'))).toBe(sha256File(disk.path));

    // A cache directory that exists but nobody may write (root's): a temporary index instead.
    const roCache = join(dir, 'ro-cache');
    mkdirSync(join(roCache, 'blockvault'), { recursive: true, mode: 0o755 });
    const roCached = await asNobody(['list', '-r', root], { XDG_CACHE_HOME: roCache, HOME: work });
    expect(roCached.code, roCached.stderr).toBe(0);
    expect(readdirSync(join(roCache, 'blockvault'))).toEqual([]);

    // No writable cache directory at all (nobody's home does not exist): a temporary index, removed afterwards.
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith('blockvault-index-'));
    const homeless = await asNobody(['list', '-r', root], { HOME: '/nonexistent' });
    expect(homeless.code, homeless.stderr).toBe(0);
    expect(homeless.stdout).toMatch(new RegExp(`vm/sda@${id.slice(0, 8)}`));
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith('blockvault-index-') && !before.includes(n))).toEqual([]);
    expect(existsSync(join(root, 'index', 'lock.mdb'))).toBe(true); // the repository's own index is untouched
  });
});
