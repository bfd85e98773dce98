// What the command line prints and loads: only the command asked for is
// imported; a reader that goes away (| head) never turns success into
// failure; messages say what happened, in the right number.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeVmDisk, type DiskInfo } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const traceHooks = fileURLToPath(new URL('../helpers/trace-imports-register.mjs', import.meta.url));

/** The ES modules a CLI run resolves (test/helpers/trace-imports.mjs). */
async function modulesLoaded(dir: string, args: string[]): Promise<string[]> {
  const trace = join(dir, `trace-${args[0]}.txt`);
  rmSync(trace, { force: true });
  const r = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', traceHooks, cliPath, ...args], { stdio: 'ignore', env: { ...process.env, BV_TRACE_IMPORTS: trace } });
    child.on('error', reject);
    child.on('close', resolve);
  });
  expect(r, args.join(' ')).toBe(0);
  return [...new Set(readFileSync(trace, 'utf8').trim().split('\n'))];
}

/** Runs the CLI with its stdout (and stderr, as in `2>&1 | head`) closed before it writes anything. */
function withOutputClosed(args: string[], closeStderr: boolean): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BLOCKVAULT_QUIET_NATIVE: '1' } });
    let stderr = '';
    child.stdout.destroy();
    if (closeStderr) child.stderr.destroy();
    else child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('blockvault output', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  let disk: DiskInfo;
  beforeAll(async () => {
    disk = makeVmDisk({ path: join(dir, 'vm.raw'), sizeBytes: 64 * MiB, systemBytes: 8 * MiB, randomBytes: 8 * MiB, seed: 'output' });
    await cli(['init', '-r', root]);
  });

  it('loads no command module for --version and --help, and only its own for a command', async () => {
    for (const args of [['--version'], ['--help']]) {
      const loaded = await modulesLoaded(dir, args);
      expect(loaded.filter((u) => /\/commands\/|lmdb|tinybench|zstd|fuse|xxhash/.test(u)), args[0]).toEqual([]);
    }
    const list = await modulesLoaded(dir, ['list', '-r', root]);
    expect(list.filter((u) => /\/cli\/commands\//.test(u)).map((u) => u.replace(/.*\/commands\//, ''))).toEqual(['list.js']);
    expect(list.filter((u) => /tinybench|\/mount\/|\/bench\/|\/nbd\/|\/workers\//.test(u))).toEqual([]);
  });

  it('a backup whose reader went away (| head) still succeeds, without a stack trace', async () => {
    const quiet = await withOutputClosed(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', disk.path], false);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).not.toMatch(/EPIPE|\n\s+at /);
    const both = await withOutputClosed(['backup', '-r', root, '--vm', 'vm', '--disk', 'sdb', disk.path], true);
    expect(both.code).toBe(0);
    const points = await cliJson<Array<{ disk: string }>>(['list', '-r', root]);
    expect(points.map((p) => p.disk).sort()).toEqual(['sda', 'sdb']); // both were committed
    const listed = await withOutputClosed(['list', '-r', root], false);
    expect(listed.code).toBe(0);
  });

  it('says what a full backup reads, and counts in the right number', async () => {
    const r = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sdc', disk.path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/full backup: no change tracking given; reading the [\d.]+ MiB of data in a 64\.0 MiB disk; the [\d.]+ MiB of holes are skipped/);
    const stats = await cli(['stats', '-r', root]);
    expect(stats.stdout).toMatch(/^restore points  3 \(1 VM\)$/m);
    expect(stats.stdout).toMatch(/^unreferenced    0 chunks, 0 B stored$/m);
    const verify = await cli(['verify', '-r', root, 'vm/sda@latest']);
    expect(verify.stdout).toMatch(/verified: 1 restore point, \d+ unique chunks/);
    const out = join(dir, 'files-out');
    const copied = await cli(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/etc/hostname', out]);
    expect(copied.stdout).toMatch(/^copied 1 file, /);
    expect((await cli(['--version'])).stdout).toMatch(/^blockvault \d+\.\d+\.\d+\n$/);
  });

  it('refuses to copy files out onto an existing file, naming it', async () => {
    const target = join(dir, 'vm.raw'); // a file, not a directory
    const r = await cli(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/etc/hostname', target]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/target directory .*vm\.raw exists and is not a directory \[BAD_INPUT\]/);
    const into = join(dir, 'files-out2');
    await cli(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/etc', into]);
    const again = await cli(['files', 'get', '-r', root, 'vm/sda@latest', '--part', '2', '/etc/hostname.link', join(into, 'etc')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cannot write .*etc\/hostname\.link: it exists \(files get never overwrites\) \[BAD_INPUT\]/);
  });
});
