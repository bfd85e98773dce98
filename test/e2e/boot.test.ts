// Instant recovery: a small bootable VM disk (SYSLINUX, Debian kernel, busybox
// initramfs that prints a marker from its ext4 partition) is backed up, then
// booted with QEMU (TCG: KVM fails on SYSLINUX's real-mode code in this
// nested VM) straight from the repository through a qcow2 overlay.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/** A digest of every file under packs/ and points/: the repository's content. */
function repoDigest(root: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else hash.update(p).update(readFileSync(p));
    }
  };
  for (const d of ['packs', 'points', 'config']) {
    const p = join(root, d);
    if (statSync(p).isDirectory()) walk(p);
    else hash.update(readFileSync(p));
  }
  return hash.digest('hex');
}

describe.each([['fixed'], ['aligned-cdc']])('blockvault boot (%s chunks)', (chunker) => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const image = join(dir, 'tiny.raw');

  beforeAll(async () => {
    execFileSync('bash', [new URL('../../scripts/boot-fixture.sh', import.meta.url).pathname, image, 'marker: restored by blockvault'], { stdio: 'pipe' });
    await cli(['init', '-r', root, '--chunker', chunker]);
    await cliJson(['backup', '-r', root, '--vm', 'tiny', '--disk', 'vda', image]);
  }, 300_000);

  it('boots the VM from the backup, writes only to the overlay', async () => {
    const before = repoDigest(root);
    const overlay = join(dir, 'tiny.qcow2');
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [cliPath, 'boot', '-r', root, 'tiny/vda@latest', '--accel', 'tcg', '--overlay', overlay, '--', '-no-reboot', '-m', '256'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
    });
    expect(result.out).toMatch(/marker: restored by blockvault/);
    expect(result.out).toMatch(/BLOCKVAULT-BOOT-DONE/);
    expect(result.code, result.out).toBe(0);
    expect(existsSync(overlay)).toBe(true);
    expect(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' })).toMatch(/"format": "qcow2"/);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`${overlay}.mnt`);
    expect(repoDigest(root)).toBe(before);
    expect((await cliJson<{ ok: boolean }>(['verify', '-r', root])).ok).toBe(true);
  });

  it('refuses to reuse an existing overlay', async () => {
    const r = await cli(['boot', '-r', root, 'tiny/vda@latest', '--accel', 'tcg', '--overlay', join(dir, 'tiny.qcow2')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/overlay .*tiny.qcow2 exists; delete it/);
  });
});
