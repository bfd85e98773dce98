// Block devices as source and target, through real loop devices (root, as in CI).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeVmDisk, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const loops: string[] = [];
const attach = (file: string) => {
  const dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return dev;
};
afterAll(() => {
  for (const dev of loops) execFileSync('losetup', ['-d', dev]);
});

describe('block devices', () => {
  const dir = tempDir();

  it('backs up a block device and restores onto one, zero chunks written as zeros', async () => {
    const disk = makeVmDisk({ path: join(dir, 'vm.raw'), sizeBytes: 64 * MiB, systemBytes: 8 * MiB, randomBytes: 2 * MiB, seed: 'loop' });
    const source = attach(disk.path);
    const root = join(dir, 'repo');
    await cli(['init', '-r', root]);
    const backup = await cliJson<{ bytesTotal: number; chunksZero: number }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', source]);
    expect(backup.bytesTotal).toBe(64 * MiB);
    expect(backup.chunksZero).toBeGreaterThan(100);

    const garbage = join(dir, 'target.raw');
    writeFileSync(garbage, Buffer.alloc(64 * MiB, 0xaa)); // old contents the restore must overwrite
    const target = attach(garbage);
    const restore = await cli(['restore', '-r', root, 'vm/sda@latest', target]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(sha256File(target)).toBe(sha256File(disk.path));

    writeFileSync(join(dir, 'small.raw'), Buffer.alloc(16 * MiB));
    const small = attach(join(dir, 'small.raw'));
    const tooSmall = await cli(['restore', '-r', root, 'vm/sda@latest', small]);
    expect(tooSmall.code).toBe(1);
    expect(tooSmall.stderr).toMatch(/is smaller than the restore point \(67108864 bytes\)/);
  });
});
