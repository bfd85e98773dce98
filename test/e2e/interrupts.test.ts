// Ctrl-C (SIGINT) in the middle of a backup or a restore: it cleans up what
// it had half-written, says what it left, exits 130, and the repository stays
// consistent. The commands send themselves a real SIGINT at a chosen byte
// count (BLOCKVAULT_TEST_INTERRUPT_AT_BYTES), whatever the machine's speed.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const interruptAt = (bytes: number) => ({ env: { BLOCKVAULT_TEST_INTERRUPT_AT_BYTES: String(bytes) } });

describe('interrupted commands', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const image = join(dir, 'vm.raw');
  beforeAll(async () => {
    writeFileSync(image, randomStream('interrupts')(64 * MiB)); // incompressible: every pack holds what it says
    await cli(['init', '-r', root, '--pack-size', '4M']);
  });

  it('a backup interrupted mid-way commits nothing, removes its partial pack, and says what it left for reuse', async () => {
    const r = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image], interruptAt(24 * MiB));
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted \(SIGINT\): no restore point was committed; \d+ sealed packs \([\d.]+ MiB\) stay in the repository, unreferenced: a later backup of the same data reuses them/);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]); // the unsealed pack is gone
    expect(await cliJson<unknown[]>(['list', '-r', root])).toEqual([]);
    const stats = await cliJson<{ unreferencedChunks: number; unreferencedStoredBytes: number; referencedChunks: number; tmpFiles: number }>(['stats', '-r', root]);
    expect(stats.referencedChunks).toBe(0);
    expect(stats.unreferencedChunks).toBeGreaterThan(0);
    expect(stats.unreferencedStoredBytes).toBeGreaterThanOrEqual(16 * MiB);
    expect(stats.tmpFiles).toBe(0);
    expect((await cli(['stats', '-r', root])).stdout).toMatch(/^unreferenced    \d+ chunks, [\d.]+ MiB stored \(left by an interrupted backup/m);

    // The next backup of the same data reuses what was sealed; nothing is unreferenced after it.
    const full = await cliJson<{ chunksKnown: number; bytesNew: number }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(full.chunksKnown).toBe(stats.unreferencedChunks);
    expect(full.bytesNew).toBe(64 * MiB - stats.unreferencedChunks * 64 * 1024);
    expect((await cliJson<{ unreferencedChunks: number }>(['stats', '-r', root])).unreferencedChunks).toBe(0);
    expect((await cli(['verify', '-r', root])).code).toBe(0);
  });

  it('a restore interrupted mid-way removes its partial file, and a replaced file stays as it was', async () => {
    const target = join(dir, 'restored.raw');
    const r = await cli(['restore', '-r', root, 'vm/sda@latest', target], interruptAt(16 * MiB));
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted \(SIGINT\): the partial file was removed; .*restored\.raw was not created \[INTERRUPTED\]/);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('partial'))).toEqual([]);

    writeFileSync(target, 'the old contents');
    const forced = await cli(['restore', '-r', root, 'vm/sda@latest', target, '--force'], interruptAt(16 * MiB));
    expect(forced.code).toBe(130);
    expect(forced.stderr).toMatch(/the partial file was removed; .*restored\.raw is as it was/);
    expect(readFileSync(target, 'utf8')).toBe('the old contents');
    expect(readdirSync(dir).filter((n) => n.includes('partial'))).toEqual([]);

    const whole = await cli(['restore', '-r', root, 'vm/sda@latest', join(dir, 'whole.raw')]);
    expect(whole.code).toBe(0);
    expect(sha256File(join(dir, 'whole.raw'))).toBe(sha256File(image));
  });
});
