// gc and prune as a user drives them: space comes back, every kept point
// restores byte for byte, mostly dead packs are repacked, a dry run changes
// nothing, a backup that will not end keeps gc from deleting (and the next
// gc finishes the job), forget cancels a pending gc, and the bad inputs.
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
interface Gc {
  packsDeleted: number; packsWritten: number; packsRepacked: number; packsDropped: number; bytesBefore: number; bytesAfter: number;
  bytesDeleted: number; finishedEarlier: number; packsRescued: number; waitedForSessions: number; dryRun: boolean;
}

function packBytes(root: string): number {
  let total = 0;
  for (const sub of readdirSync(join(root, 'packs'))) for (const f of readdirSync(join(root, 'packs', sub))) total += statSync(join(root, 'packs', sub, f)).size;
  return total;
}

function tree(root: string, sub = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, sub), { withFileTypes: true })) {
    if (e.name === 'index') continue;
    const rel = join(sub, e.name);
    out.push(...(e.isDirectory() ? tree(root, rel) : [`${rel} ${statSync(join(root, rel)).size}`]));
  }
  return out.sort();
}

/** Rewrites `share` of the image's 64 KiB chunks with fresh data (every n-th one). */
function churn(path: string, everyNth: number, seed: string): void {
  const fd = openSync(path, 'r+');
  const chunks = statSync(path).size / 65536;
  for (let c = 0; c < chunks; c += everyNth) writeSync(fd, randomStream(`${seed}-${c}`)(65536), 0, 65536, c * 65536);
  closeSync(fd);
}

async function expectRestores(root: string, dir: string, points: Array<{ id: string; copy: string }>): Promise<void> {
  const out = join(dir, 'out.raw');
  for (const p of points) {
    const r = await cli(['restore', '-r', root, `vm/sda@${p.id}`, out, '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(out), p.id).toBe(sha256File(p.copy));
  }
}

describe('blockvault gc', () => {
  const dir = tempDir();

  it.each([['fixed'], ['aligned-cdc']])('reclaims what forgotten points held, repacks mostly dead packs, and every kept point restores (%s chunks)', async (chunker) => {
    const root = join(dir, `repo-${chunker}`);
    const image = join(dir, 'vm.raw');
    writeFileSync(image, randomStream('gc')(16 * MiB));
    await cli(['init', '-r', root, '--pack-size', '2M', '--chunker', chunker]);
    const points: Array<{ id: string; copy: string }> = [];
    for (let day = 0; day < 6; day++) {
      if (day > 0) churn(image, 3, `day${day}`);
      points.push({ id: (await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image])).id, copy: join(dir, `p${day}.raw`) });
      copyFileSync(image, points[day].copy);
    }
    const before = tree(root);
    const dry = await cliJson<Gc>(['gc', '-r', root, '--dry-run']);
    expect(dry).toMatchObject({ dryRun: true, packsDeleted: 0, packsDropped: 0 }); // nothing is garbage yet
    expect(tree(root)).toEqual(before);

    const forget = await cli(['forget', '-r', root, ...points.slice(0, 4).map((p) => `vm/sda@${p.id}`)]);
    expect(forget.code, forget.stderr).toBe(0);
    const planned = await cliJson<Gc>(['gc', '-r', root, '--dry-run', '--repack-below', '80%']);
    expect(planned.packsDropped + planned.packsRepacked).toBeGreaterThan(0);
    expect(tree(root).filter((f) => !f.startsWith('points/'))).toEqual(before.filter((f) => !f.startsWith('points/'))); // still nothing changed

    const stored = packBytes(root);
    const gc = await cliJson<Gc>(['gc', '-r', root, '--repack-below', '80%']);
    expect(gc).toMatchObject({ dryRun: false, packsRepacked: planned.packsRepacked, packsDropped: planned.packsDropped });
    expect(gc.packsRepacked).toBeGreaterThan(0); // day 4 and 5 kept a third of the chunks of the first packs
    expect(gc.packsWritten).toBeGreaterThan(0);
    expect(gc.bytesAfter).toBe(packBytes(root));
    expect(packBytes(root)).toBeLessThan(stored * 0.75);
    expect(existsSync(join(root, 'gc')) ? readdirSync(join(root, 'gc')) : []).toEqual([]);
    await expectRestores(root, dir, points.slice(4));
    const check = await cli(['check', '-r', root, '--read-data']);
    expect(check.code, check.stdout).toBe(0);
    // Nothing is left below the threshold, and a second gc finds nothing to do.
    expect(await cliJson<Gc>(['gc', '-r', root, '--repack-below', '80%'])).toMatchObject({ packsDeleted: 0, packsWritten: 0 });
    // The index rebuilt from the repository agrees: every kept point still restores from packs alone.
    expect((await cli(['index', 'rebuild', '-r', root, '--from-packs'])).code).toBe(0);
    await expectRestores(root, dir, points.slice(4));
  });

  it('a backup that does not end keeps gc from deleting; the next gc finishes the job; forget cancels a pending gc', async () => {
    const root = join(dir, 'stuck');
    const image = join(dir, 'stuck.raw');
    writeFileSync(image, randomStream('stuck')(4 * MiB));
    await cli(['init', '-r', root, '--pack-size', '1M']);
    const old = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'old', '--disk', 'sda', image]);
    const other = join(dir, 'other.raw');
    writeFileSync(other, randomStream('other')(2 * MiB));
    const kept = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', other]);
    expect((await cli(['forget', '-r', root, `old/sda@${old.id}`])).code).toBe(0);

    // A backup reading from a pipe nobody writes to: it holds its session lock until killed.
    const stuck = spawn(process.execPath, [cliPath, 'backup', '-r', root, '--vm', 'slow', '--disk', 'sda', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      for (let i = 0; i < 100 && !readdirSync(join(root, 'locks')).some((f) => f.startsWith('session-')); i++) await new Promise((r) => setTimeout(r, 50));
      const waited = await cli(['gc', '-r', root, '--session-wait', '1']);
      expect(waited.code).toBe(3);
      expect(waited.stderr).toMatch(/gc: waited 1s for a backup that started before it condemned packs: pid \d+ on .* \(backup slow\/sda, since .*\)\. Nothing was deleted; the next gc finishes this one \(see --session-wait\) \[REPO_LOCKED\]/);
      expect(readdirSync(join(root, 'gc'))).toHaveLength(1);
    } finally {
      stuck.kill('SIGKILL');
      await new Promise((r) => stuck.on('close', r));
    }
    const stored = packBytes(root);
    const finished = await cliJson<Gc>(['gc', '-r', root]);
    expect(finished.finishedEarlier).toBe(1);
    expect(finished.packsDeleted).toBeGreaterThan(0);
    expect(packBytes(root)).toBeLessThan(stored - 3 * MiB);
    expect(readdirSync(join(root, 'gc'))).toEqual([]);
    await expectRestores(root, dir, []);
    const out = join(dir, 'kept.raw');
    expect((await cli(['restore', '-r', root, `vm/sda@${kept.id}`, out])).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(other));

    // A gc left pending, then a forget: the forget cancels it and nothing is deleted.
    const again = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'old', '--disk', 'sda', image]);
    expect((await cli(['forget', '-r', root, `old/sda@${again.id}`])).code).toBe(0);
    const killed = await cli(['gc', '-r', root], { env: { BLOCKVAULT_TEST_KILL_AT: 'gc-condemned:1' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(readdirSync(join(root, 'gc'))).toHaveLength(1);
    const packsThen = packBytes(root);
    expect((await cli(['forget', '-r', root, `vm/sda@${kept.id}`])).code).toBe(0);
    expect(readdirSync(join(root, 'gc'))).toEqual([]);
    expect(packBytes(root)).toBe(packsThen);
    expect((await cliJson<Gc>(['gc', '-r', root])).finishedEarlier).toBe(0);
    expect((await cli(['check', '-r', root])).code).toBe(0);
  });

  it('prune forgets and collects in one command; its dry run says what both would do', async () => {
    const root = join(dir, 'prune');
    const image = join(dir, 'prune.raw');
    writeFileSync(image, randomStream('prune')(4 * MiB));
    await cli(['init', '-r', root, '--pack-size', '1M']);
    const copies: Array<{ id: string; copy: string }> = [];
    for (let day = 1; day <= 4; day++) {
      churn(image, 2, `prune${day}`);
      const r = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image], { env: { BLOCKVAULT_TEST_TIME: `2026-11-0${day}T10:00:00.000Z` } });
      copies.push({ id: r.id, copy: join(dir, `prune${day}.raw`) });
      copyFileSync(image, copies.at(-1)!.copy);
    }
    const before = tree(root);
    const dry = await cliJson<{ forget: { forgotten: number }; gc: Gc }>(['prune', '-r', root, '--keep-last', '2', '--dry-run']);
    expect(dry.forget.forgotten).toBe(2);
    expect(dry.gc.packsDropped + dry.gc.packsRepacked).toBeGreaterThan(0);
    expect(tree(root)).toEqual(before);
    const stored = packBytes(root);
    const done = await cli(['prune', '-r', root, '--keep-last', '2']);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/forgot 2 restore points, kept 2\n/);
    expect(done.stdout).toMatch(/deleted \d+ packs? \(.*\), wrote \d+ packs? \(.*\) of live data: .* for 2 restore points, in /);
    expect(packBytes(root)).toBeLessThan(stored);
    await expectRestores(root, dir, copies.slice(2));
  });

  it('refuses bad input with a clear message and changes nothing', async () => {
    const root = join(dir, 'bad');
    await cli(['init', '-r', root]);
    const before = tree(root);
    for (const [args, message] of [
      [['--repack-below', '150%'], /--repack-below "150%": expected a percentage from 0% to 100%/],
      [['--repack-below', 'lots'], /--repack-below "lots": expected a percentage/],
      [['--session-wait=-1'], /--session-wait "-1": expected a non-negative number/],
      [['--max-unused', '5%', '--repack-below', '50%'], /give --max-unused or --repack-below, not both/],
      [['--keep-daily', '3'], /unknown option --keep-daily/],
    ] as const) {
      const r = await cli(['gc', '-r', root, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    const prune = await cli(['prune', '-r', root]);
    expect(prune.code).toBe(1);
    expect(prune.stderr).toMatch(/nothing to forget: give --keep-\* rules/);
    expect(tree(root)).toEqual(before);
  });
});
