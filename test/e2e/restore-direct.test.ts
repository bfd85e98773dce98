// Restore's two write paths: O_DIRECT for a durable restore (the image goes
// straight to the disk, not through the page cache), and the page cache with
// background writeback where O_DIRECT is refused (forced here by a test hook).
// Both must give the exact image, including a last chunk that is not
// 4096-aligned (written through the page cache in either path).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { residentBytes } from '../helpers/page-cache.js';
import { backupFile, newRepo } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
// Inside the checkout, not /tmp: a tmpfs /tmp is all page cache, whatever the write path.
const checkout = new URL('../..', import.meta.url).pathname;

describe('restore write paths', () => {
  it('writes a durable restore with O_DIRECT, and through the page cache when O_DIRECT is refused; both exact', async () => {
    const image = join(tempDir(), 'disk.raw');
    const bytes = Buffer.concat([randomBytes(24 * MiB), Buffer.alloc(4 * MiB), randomBytes(4 * MiB + 12345)]);
    writeFileSync(image, bytes);
    const root = await newRepo();
    await backupFile(root, 'vm', 'sda', image);
    const dir = mkdtempSync(join(checkout, '.bv-test-restore-'));
    try {
      const direct = join(dir, 'direct.raw');
      const r1 = await cli(['restore', '-r', root, 'vm/sda@latest', direct]);
      expect(r1.code, r1.stderr).toBe(0);
      const directResident = residentBytes(direct); // before anything reads it back
      const buffered = join(dir, 'buffered.raw');
      const r2 = await cli(['restore', '-r', root, 'vm/sda@latest', buffered], { env: { BLOCKVAULT_TEST_BUFFERED_RESTORE: '1' } });
      expect(r2.code, r2.stderr).toBe(0);
      const bufferedResident = residentBytes(buffered);
      // Direct: only the unaligned tail went through the page cache. Buffered: the data did.
      expect(directResident).toBeLessThan(2 * MiB);
      expect(bufferedResident).toBeGreaterThan(16 * MiB);
      expect(readFileSync(direct).equals(bytes)).toBe(true);
      expect(readFileSync(buffered).equals(bytes)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
