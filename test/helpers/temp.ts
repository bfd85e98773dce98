import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

// Registered once, while the test file is collected: an afterAll called from
// inside a running test is silently dropped, and temp dirs made there leaked.
const made: string[] = [];
afterAll(() => {
  const leftMounts = made.flatMap((dir) => mountsUnder(dir));
  // Unmount first (lazily: a dead server's mount may be stale), or rm would walk into a live mount.
  for (const mnt of leftMounts) {
    try { execFileSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' }); } catch { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); }
  }
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  if (leftMounts.length > 0) throw new Error(`this test file left ${leftMounts.length} mount(s) behind (now unmounted): ${leftMounts.join(', ')}`);
});

/** Mount points at or below `dir`, per /proc/mounts. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && (m === dir || m.startsWith(`${dir}/`)));
}

/** A temporary directory removed after the test file. */
export function tempDir(prefix = 'bv-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
