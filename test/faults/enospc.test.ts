// Disk full during backup: a clear NO_SPACE error (exit 4), nothing
// committed, earlier restore points intact, and the next backup works.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockvaultError } from '../../engine/core/errors.js';
import { Repository } from '../../engine/repo/repository.js';
import { FaultStorage } from '../../engine/storage/fault-storage.js';
import { FsObjectStore } from '../../engine/storage/fs-storage.js';
import { cli, cliJson } from '../helpers/cli.js';
import { backupFile, newRepo } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

describe('disk full', () => {
  const dir = tempDir();

  it('an injected ENOSPC on a pack write aborts cleanly', async () => {
    const root = await newRepo({ packBytesTarget: 1024 * 1024 });
    const small = join(dir, 'small.raw');
    writeFileSync(small, randomBytes(512 * 1024));
    await backupFile(root, 'vm', 'sda', small);
    const big = join(dir, 'big.raw');
    writeFileSync(big, randomBytes(4 * 1024 * 1024));
    const fault = new FaultStorage(new FsObjectStore(root));
    fault.failWith({ op: 'write', keyIncludes: 'packs/', nth: 2, errno: 'ENOSPC' });
    const err = await backupFile(root, 'vm', 'sda', big, fault).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockvaultError);
    expect((err as BlockvaultError).code).toBe('NO_SPACE');
    expect((err as BlockvaultError).exitCode).toBe(4);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]); // the unsealed pack was removed
    const repo = await Repository.open(root);
    expect(repo.points.list()).toHaveLength(1);
    await repo.close();
    expect((await backupFile(root, 'vm', 'sda', big)).chunksNew).toBeGreaterThan(0);
  });

  const mnt = join(dir, 'tmpfs');
  afterAll(() => {
    try { execFileSync('umount', [mnt]); } catch { /* not mounted */ }
  });

  it('a real full filesystem (tmpfs) gives exit 4 and leaves the repository usable', async () => {
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]); // needs root, as in CI
    const root = join(mnt, 'repo');
    expect((await cli(['init', '-r', root, '--pack-size', '4M'])).code).toBe(0);
    const small = join(dir, 'fits.raw');
    writeFileSync(small, randomBytes(3 * 1024 * 1024));
    const first = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', small]);
    const big = join(dir, 'toobig.raw');
    writeFileSync(big, randomBytes(40 * 1024 * 1024));
    const full = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', big]);
    expect(full.code).toBe(4);
    expect(full.stderr).toMatch(/no space left on device.*\[NO_SPACE\]/);
    const verify = await cliJson<{ ok: boolean; points: Array<{ id: string }> }>(['verify', '-r', root]);
    expect(verify.ok).toBe(true);
    expect(verify.points.map((p) => p.id)).toEqual([first.id]);
    // Space freed (the failed backup's temp pack is cleared by the next writer): backing up again works.
    const again = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', small]);
    expect(again.code, again.stderr).toBe(0);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });
});
