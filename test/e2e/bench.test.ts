// `blockvault bench`: this machine's hot paths, and a repository's storage
// measured in a side repository that is removed afterwards.
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

interface BenchJson { results: Array<{ name: string; mbPerSecond: number | null }> }

describe('blockvault bench', () => {
  const dir = tempDir();

  it('measures the hot paths in MB/s', async () => {
    const r = await cliJson<BenchJson>(['bench', '--seconds', '2']);
    expect(r.results.map((x) => x.name)).toEqual(expect.arrayContaining(['SHA-256 (chunk ids)', 'XXH64 (stored-bytes checks)', 'zstd level 1 compress', 'zstd decompress + XXH64 + SHA-256 (restore path)', 'zstd decompress + XXH64 (mount path)']));
    for (const x of r.results) expect(x.mbPerSecond).toBeGreaterThan(10);
  });

  it('with -r measures storage beside the repository and leaves it untouched', async () => {
    const root = join(dir, 'repo');
    await cli(['init', '-r', root, '--zstd-level', '3']);
    writeFileSync(join(dir, 'd.raw'), randomBytes(1024 * 1024));
    await cliJson(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', join(dir, 'd.raw')]);
    const before = await cliJson<unknown[]>(['list', '-r', root]);
    const r = await cliJson<BenchJson>(['bench', '-r', root, '--seconds', '2']);
    expect(r.results.map((x) => x.name)).toEqual(expect.arrayContaining(['zstd level 3 compress', 'backup to this filesystem (new data)', 'restore from this filesystem']));
    expect(await cliJson<unknown[]>(['list', '-r', root])).toEqual(before);
    expect(readdirSync(dir).filter((n) => n.startsWith('.blockvault-bench-'))).toEqual([]);
    expect((await cli(['bench', '--seconds', '0'])).stderr).toMatch(/--seconds 0: from 1 to 600/);
  });
});
