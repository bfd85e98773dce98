// kill -9 in the middle of a backup, at exact points of the commit sequence
// and at arbitrary times: the repository still verifies, its committed
// points restore, and the next backup (which finds the stale lock) works.
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('kill -9 during backup', () => {
  const dir = tempDir();
  const image = join(dir, 'disk.raw');
  beforeAll(() => {
    writeFileSync(image, Buffer.concat([randomBytes(24 * 1024 * 1024), Buffer.alloc(8 * 1024 * 1024)]));
  });

  async function afterKill(root: string): Promise<void> {
    const verify = await cli(['verify', '-r', root, '--json']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const again = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image, '--lock-wait', '5']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/removing stale lock/);
    expect((await cli(['restore', '-r', root, 'vm/sda@latest', join(dir, 'out.raw'), '--force'])).code).toBe(0);
    expect(sha(join(dir, 'out.raw'))).toBe(sha(image));
  }

  for (const at of ['pack-appended:2', 'pack-sealed:1', 'pack-indexed:3', 'point-written:1']) {
    it(`at ${at}`, async () => {
      const root = join(dir, `repo-${at.replace(':', '-')}`);
      await cli(['init', '-r', root, '--pack-size', '2M']);
      const killed = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image], { env: { BLOCKVAULT_TEST_KILL_AT: at } });
      expect(killed.signal).toBe('SIGKILL');
      const points = await cliJson<unknown[]>(['list', '-r', root]);
      expect(points).toHaveLength(at === 'point-written:1' ? 1 : 0);
      await afterKill(root);
    });
  }

  it('at arbitrary times', async () => {
    for (const delayMs of [120, 300, 600]) {
      const root = join(dir, `repo-t${delayMs}`);
      await cli(['init', '-r', root, '--pack-size', '2M']);
      const child = spawn(process.execPath, [cliPath, 'backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image], { stdio: 'ignore' });
      setTimeout(() => child.kill('SIGKILL'), delayMs);
      await new Promise((resolve) => child.on('close', resolve));
      const verify = await cli(['verify', '-r', root]);
      expect(verify.code, verify.stdout).toBe(0);
      const again = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image, '--lock-wait', '5']);
      expect(again.code, again.stderr).toBe(0);
      expect((await cli(['restore', '-r', root, 'vm/sda@latest', join(dir, 'out.raw'), '--force'])).code).toBe(0);
      expect(sha(join(dir, 'out.raw'))).toBe(sha(image));
    }
  });
});
