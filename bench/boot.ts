// Boot time of a small VM (scripts/boot-fixture.sh) under QEMU TCG: from the
// original image, and from the backup through `blockvault boot` (mount +
// qcow2 overlay). Median of 3. Run alone: node dist/bench/boot.js
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure, median } from './measure.js';

const cli = new URL('../../dist/engine/cli/main.js', import.meta.url).pathname;
const fixture = new URL('../../scripts/boot-fixture.sh', import.meta.url).pathname;

export interface BootResult { imageSeconds: number; backupSeconds: number }

export async function runBoot(runs = 3): Promise<BootResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bv-boot-'));
  try {
    const image = join(dir, 'tiny.raw');
    execFileSync('bash', [fixture, image, 'bench'], { stdio: 'ignore' });
    const repo = join(dir, 'repo');
    execFileSync(process.execPath, [cli, 'init', '-r', repo]);
    execFileSync(process.execPath, [cli, 'backup', '-r', repo, '--vm', 'tiny', '--disk', 'vda', image]);
    const direct: number[] = [];
    const fromBackup: number[] = [];
    for (let i = 0; i < runs; i++) {
      direct.push((await measure('qemu-system-x86_64', ['-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-drive', `file=${image},format=raw,if=virtio`])).seconds);
      const overlay = join(dir, `o${i}.qcow2`);
      fromBackup.push((await measure(process.execPath, [cli, 'boot', '-r', repo, 'tiny/vda@latest', '--accel', 'tcg', '--overlay', overlay, '--', '-no-reboot', '-m', '256'])).seconds);
    }
    return { imageSeconds: median(direct), backupSeconds: median(fromBackup) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function bootLine(r: BootResult): string {
  return `Boot of the fixture VM (QEMU TCG, to power-off, median of 3): from the original image ${r.imageSeconds.toFixed(2)} s, from the backup via \`blockvault boot\` ${r.backupSeconds.toFixed(2)} s (${(r.backupSeconds / r.imageSeconds).toFixed(2)}x).`;
}

if (process.argv[1]?.endsWith('boot.js')) {
  process.stdout.write(`${bootLine(await runBoot())}\n`);
}
