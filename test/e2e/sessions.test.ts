// Many writers, one repository: backups run at once as sessions; one killed
// with kill -9 harms no other and its temporary objects go with the next
// session; an exclusive operation (index rebuild) runs alone, also when many
// wait for it after its holder was killed.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
interface Backup { id: string; vm: string; bytesNew: number; chunksNew: number; chunksKnown: number }

describe('sessions', () => {
  const dir = tempDir();
  const images: string[] = [];
  beforeAll(() => {
    // Eight different disks sharing a common quarter, so sessions dedup against each other too.
    const common = randomStream('sessions-common')(2 * MiB);
    for (let i = 0; i < 8; i++) {
      const path = join(dir, `vm${i}.raw`);
      writeFileSync(path, Buffer.concat([common, randomStream(`sessions-${i}`)(6 * MiB)]));
      images.push(path);
    }
  });

  it('eight backups at once, and one image under two names at the same instant, all verify and restore byte-identical', async () => {
    const root = join(dir, 'repo');
    await cli(['init', '-r', root, '--pack-size', '1M']);
    const runs = [
      ...images.map((image, i) => cliJson<Backup>(['backup', '-r', root, '--vm', `vm${i}`, '--disk', 'sda', image])),
      cliJson<Backup>(['backup', '-r', root, '--vm', 'twin-a', '--disk', 'sda', images[0]]),
      cliJson<Backup>(['backup', '-r', root, '--vm', 'twin-b', '--disk', 'sda', images[0]]),
    ];
    const results = await Promise.all(runs);
    expect(new Set(results.map((r) => r.id)).size).toBe(10);
    expect((await cli(['verify', '-r', root])).code).toBe(0);
    const expected = [...images, images[0], images[0]];
    const names = [...images.map((_, i) => `vm${i}`), 'twin-a', 'twin-b'];
    for (const [k, name] of names.entries()) {
      const out = join(dir, `out-${name}.raw`);
      expect((await cli(['restore', '-r', root, `${name}/sda@latest`, out])).code).toBe(0);
      expect(sha256File(out), name).toBe(sha256File(expected[k]));
    }
    // Concurrent sessions may each store a chunk they met at the same moment: spares, never losses.
    const stats = await cliJson<{ referencedChunks: number; uniqueChunks: number }>(['stats', '-r', root]);
    expect(stats.referencedChunks).toBe(32 + 8 * 96);
    expect(stats.uniqueChunks).toBeGreaterThanOrEqual(stats.referencedChunks);
    expect(readdirSync(join(root, 'locks'))).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('kill -9 of one session while others run: the others finish; its leftovers go with the next session', async () => {
    const root = join(dir, 'repo-kill');
    await cli(['init', '-r', root, '--pack-size', '1M']);
    const victim = spawn(process.execPath, [cliPath, 'backup', '-r', root, '--vm', 'victim', '--disk', 'sda', images[7]],
      { stdio: 'ignore', env: { ...process.env, BLOCKVAULT_TEST_KILL_AT: 'pack-sealed:2' } });
    try {
      const others = Promise.all(images.slice(0, 4).map((image, i) => cliJson<Backup>(['backup', '-r', root, '--vm', `vm${i}`, '--disk', 'sda', image])));
      const [signal] = await Promise.all([new Promise((r) => victim.on('close', (_c, s) => r(s))), others]);
      expect(signal).toBe('SIGKILL');
    } finally {
      victim.kill('SIGKILL');
    }
    // The victim's lock (naming a dead pid) and its staged pack are still there, unless a session
    // that started after the kill already removed both: never one without the other.
    const leftLocks = readdirSync(join(root, 'locks')).filter((n) => n.startsWith('session-'));
    expect(leftLocks.length).toBeLessThanOrEqual(1);
    expect(readdirSync(join(root, 'tmp'))).toHaveLength(leftLocks.length);
    for (let i = 0; i < 4; i++) {
      const out = join(dir, `kill-${i}.raw`);
      expect((await cli(['restore', '-r', root, `vm${i}/sda@latest`, out])).code).toBe(0);
      expect(sha256File(out)).toBe(sha256File(images[i]));
    }
    const next = await cli(['backup', '-r', root, '--vm', 'victim', '--disk', 'sda', images[7]]);
    expect(next.code, next.stderr).toBe(0);
    if (leftLocks.length > 0) expect(next.stderr).toMatch(/removing stale lock locks\/session-.*\.json \(backup victim\/sda: pid \d+ is gone\)/);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(readdirSync(join(root, 'locks'))).toEqual([]);
    expect((await cliJson<{ ok: boolean }>(['verify', '-r', root])).ok).toBe(true);
  });

  it('an exclusive holder killed with kill -9, then eight waiters at once: exactly one holds it at a time', async () => {
    const root = join(dir, 'repo-exclusive');
    await cli(['init', '-r', root]);
    await cliJson(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', images[0]]);
    const probe = join(dir, 'probe.txt');
    writeFileSync(probe, '');
    const env = (holdMs: number) => ({ ...process.env, BLOCKVAULT_TEST_EXCLUSIVE_PROBE: probe, BLOCKVAULT_TEST_EXCLUSIVE_HOLD_MS: String(holdMs), BLOCKVAULT_QUIET_NATIVE: '1' });
    const holder = spawn(process.execPath, [cliPath, 'index', 'rebuild', '-r', root], { stdio: 'ignore', env: env(60_000) });
    const waiters = [];
    try {
      for (const end = Date.now() + 15_000; !readFileSync(probe, 'utf8').includes('enter') && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.on('close', r));
      writeFileSync(probe, '');
      for (let i = 0; i < 8; i++) waiters.push(spawn(process.execPath, [cliPath, 'index', 'rebuild', '-r', root, '--lock-wait', '60'], { stdio: ['ignore', 'ignore', 'pipe'], env: env(100) }));
      const codes = await Promise.all(waiters.map((w) => new Promise((r) => w.on('close', r))));
      expect(codes).toEqual(Array(8).fill(0));
    } finally {
      holder.kill('SIGKILL');
      for (const w of waiters) w.kill('SIGKILL');
    }
    const lines = readFileSync(probe, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(16);
    for (let k = 0; k < lines.length; k += 2) {
      const [enter, leave] = [lines[k].split(' '), lines[k + 1].split(' ')];
      expect([enter[0], leave[0], leave[1]], lines.join('; ')).toEqual(['enter', 'leave', enter[1]]); // nobody entered while another held it
    }
    expect(readdirSync(join(root, 'locks'))).toEqual([]);
    expect((await cli(['verify', '-r', root])).code).toBe(0);
  });

  it('an exclusive operation waiting for a session keeps its intent fresh, so no other host judges it stale', async () => {
    const root = join(dir, 'repo-intent');
    await cli(['init', '-r', root]);
    const holder = spawn('sleep', ['30']);
    let waiter: ReturnType<typeof spawn> | null = null;
    try {
      const now = new Date().toISOString();
      mkdirSync(join(root, 'locks'), { recursive: true });
      writeFileSync(join(root, 'locks', 'session-0-000000000000.json'), JSON.stringify({ id: '0-000000000000', kind: 'session', pid: holder.pid, host: (await import('node:os')).hostname(), bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), started: now, refreshed: now, what: 'a long backup' }));
      waiter = spawn(process.execPath, [cliPath, 'index', 'rebuild', '-r', root, '--lock-wait', '3'],
        { stdio: 'ignore', env: { ...process.env, BLOCKVAULT_LOCK_REFRESH_MS: '200' } });
      const exited = new Promise((r) => waiter!.on('close', r));
      const intent = async () => {
        for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
          const name = readdirSync(join(root, 'locks')).find((n) => n.startsWith('intent-'));
          if (name) { try { return JSON.parse(readFileSync(join(root, 'locks', name), 'utf8')).refreshed as string; } catch { /* being replaced */ } }
        }
        return null;
      };
      const first = await intent();
      await new Promise((r) => setTimeout(r, 700));
      const later = await intent();
      expect(first).not.toBeNull();
      expect(Date.parse(later!)).toBeGreaterThan(Date.parse(first!));
      expect(await exited).toBe(3); // the session never ended: it gave up
      expect(readdirSync(join(root, 'locks'))).toEqual(['session-0-000000000000.json']); // its intent went with it
    } finally {
      holder.kill('SIGKILL');
      waiter?.kill('SIGKILL');
    }
  });
});
