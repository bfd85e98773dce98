// Changed-block tracking with the real tools: qemu-img (qcow2, persistent
// dirty bitmaps), qemu-io (guest-like writes), qemu-nbd (exports).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeVmDisk, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
interface Backup { id: string; mode: string; reason: string; bytesRead: number; bytesNew: number; bytesTotal: number }

const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) c.kill(); });

async function serve(args: string[], socket: string): Promise<ChildProcess> {
  const child = spawn('qemu-nbd', [...args, '--socket', socket], { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 100));
  return child;
}

/** Every test below runs on both kinds of repository: fixed 64 KiB chunks, and content-defined (aligned-cdc) ones. */
const chunkers = [['fixed'], ['aligned-cdc']] as const;
/** What an aligned-cdc increment may read beyond the changed bytes: per region, up to a maximum chunk (256 KiB) before and two after. */
const cdcSlackBytes = 3 * 256 * KiB;

describe.each(chunkers)('changed-block tracking (%s chunks)', (chunker) => {
  const dir = tempDir();
  const qcow = join(dir, 'web01.qcow2');
  const root = join(dir, 'repo');
  const snapshots = new Map<string, string>();
  const snapshot = (id: string) => {
    const raw = join(dir, `${id}.raw`);
    run('qemu-img', ['convert', '-O', 'raw', qcow, raw]);
    snapshots.set(id, raw);
  };

  beforeAll(async () => {
    const disk = makeVmDisk({ path: join(dir, 'base.raw'), sizeBytes: 64 * MiB, systemBytes: 12 * MiB, randomBytes: 4 * MiB, seed: 'cbt' });
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk.path, qcow]);
    await cli(['init', '-r', root, '--chunker', chunker]);
  });

  it('qcow2 dirty bitmap: each increment reads only dirty chunks, every point restores', async () => {
    const first = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', '--bitmap', 'nightly', qcow]);
    expect(first.mode).toBe('full');
    expect(first.reason).toMatch(/no earlier restore point of web01\/sda/);
    snapshot(first.id);
    run('qemu-img', ['bitmap', '--add', qcow, 'nightly']); // starts tracking at the parent's point in time
    const days: Array<Array<[number, number]>> = [
      [[1 * MiB, 64 * KiB], [40 * MiB + 4 * KiB, 4 * KiB]],
      [[2 * MiB + 60 * KiB, 8 * KiB], [63 * MiB, 128 * KiB]],
      [[10 * MiB, 192 * KiB]],
    ];
    for (const [day, writes] of days.entries()) {
      run('qemu-io', ['-f', 'qcow2', ...writes.flatMap(([at, len]) => ['-c', `write -P ${0x20 + day} ${at} ${len}`]), qcow]);
      const chunks = new Set(writes.flatMap(([at, len]) => Array.from({ length: Math.ceil((at + len) / (64 * KiB)) - Math.floor(at / (64 * KiB)) }, (_, k) => Math.floor(at / (64 * KiB)) + k)));
      const inc = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', '--bitmap', 'nightly', qcow]);
      expect(inc.mode, inc.reason).toBe('incremental');
      expect(inc.reason).toMatch(/dirty bitmap "nightly"/);
      if (chunker === 'fixed') expect(inc.bytesRead).toBe(chunks.size * 64 * KiB); // only the dirty chunks, at the bitmap's 64 KiB granularity
      else {
        expect(inc.bytesRead).toBeGreaterThanOrEqual(chunks.size * 64 * KiB); // the dirty clusters, re-chunked until the cuts resync
        expect(inc.bytesRead).toBeLessThanOrEqual(chunks.size * 64 * KiB + writes.length * cdcSlackBytes);
      }
      snapshot(inc.id);
      run('qemu-img', ['bitmap', '--clear', qcow, 'nightly']); // the operator rotates after a successful backup
    }
    for (const [id, raw] of snapshots) {
      const out = join(dir, `restore-${id}.raw`);
      expect((await cli(['restore', '-r', root, `web01/sda@${id}`, out])).code).toBe(0);
      expect(sha256File(out), `restore point ${id}`).toBe(sha256File(raw));
    }
    expect((await cliJson<{ ok: boolean }>(['verify', '-r', root])).ok).toBe(true);
  });

  it('reads a qemu-nbd export with a bitmap by NBD URI', async () => {
    run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x77 ${5 * MiB} ${64 * KiB}`, qcow]);
    const socket = join(dir, 'web01.sock');
    const server = await serve(['-r', '-f', 'qcow2', '-B', 'nightly', '-t', qcow], socket);
    const inc = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', '--bitmap', 'nightly', `nbd+unix:///?socket=${socket}`]);
    server.kill();
    expect(inc.mode).toBe('incremental');
    if (chunker === 'fixed') expect(inc.bytesRead).toBe(64 * KiB);
    else expect(inc.bytesRead).toBeLessThanOrEqual(64 * KiB + cdcSlackBytes);
    snapshot(inc.id);
    const out = join(dir, 'nbd.out');
    await cli(['restore', '-r', root, 'web01/sda@latest', out]);
    expect(sha256File(out)).toBe(sha256File(snapshots.get(inc.id)!));
    run('qemu-img', ['bitmap', '--clear', qcow, 'nightly']);
  });

  it('falls back to a full read, and says why', async () => {
    const missing = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', '--bitmap', 'nosuch', qcow]);
    expect(missing.mode).toBe('full');
    expect(missing.reason).toMatch(/dirty bitmap "nosuch" is not usable .*nosuch/);
    expect(missing.bytesNew).toBe(0); // a full read still dedups
    run('qemu-img', ['resize', '-q', qcow, '+1M']);
    const resized = await cliJson<Backup>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', '--bitmap', 'nightly', qcow]);
    expect(resized.mode).toBe('full');
    expect(resized.reason).toMatch(/disk size changed from 67108864 to 68157440 bytes/);
  });
});

describe.each(chunkers)('changed-extents lists (%s chunks)', (chunker) => {
  const dir = tempDir();
  const image = join(dir, 'db01.raw');
  const root = join(dir, 'repo');
  const extents = join(dir, 'changed.json');
  const poke = (at: number, length: number) => {
    const fd = openSync(image, 'r+');
    writeSync(fd, randomBytes(length), 0, length, at);
    closeSync(fd);
  };
  const points = async () => (await cliJson<unknown[]>(['list', '-r', root])).length;

  beforeAll(async () => {
    writeFileSync(image, Buffer.concat([randomBytes(8 * MiB), Buffer.alloc(24 * MiB)]));
    await cli(['init', '-r', root, '--chunker', chunker]);
    await cliJson(['backup', '-r', root, '--vm', 'db01', '--disk', 'sda', image]);
  });

  it('an exact list reads only the listed chunks', async () => {
    poke(3 * MiB + 100, 5000);
    poke(20 * MiB, 64 * KiB);
    writeFileSync(extents, JSON.stringify([{ start: 3 * MiB + 100, length: 5000 }, { start: 20 * MiB, length: 64 * KiB }]));
    const inc = await cliJson<Backup>(['backup', '-r', root, '--vm', 'db01', '--disk', 'sda', '--changed', extents, '--cbt-check', '5', image]);
    expect(inc.mode).toBe('incremental');
    if (chunker === 'fixed') expect(inc.bytesRead).toBe(128 * KiB);
    else expect(inc.bytesRead).toBeLessThanOrEqual(5000 + 64 * KiB + 2 * cdcSlackBytes);
    const out = join(dir, 'out.raw');
    await cli(['restore', '-r', root, 'db01/sda@latest', out, '--force']);
    expect(sha256File(out)).toBe(sha256File(image));
  });

  it('--cbt-check catches a list that misses a change', async () => {
    poke(1 * MiB, 4096); // changed, but not listed
    poke(6 * MiB, 4096);
    writeFileSync(extents, JSON.stringify([{ start: 6 * MiB, length: 4096 }]));
    const before = await points();
    const refused = await cli(['backup', '-r', root, '--vm', 'db01', '--disk', 'sda', '--changed', extents, '--cbt-check', '100', image]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/--cbt-check: 1 of \d+ sampled chunks .* differ from parent .* \(first at offset \d+\); the increment was refused and nothing was written \(use --cbt-fallback full.*\) \[CBT_MISMATCH\]/);
    const first = Number(/first at offset (\d+)/.exec(refused.stderr)![1]); // the chunk holding the missed change
    if (chunker === 'fixed') expect(first).toBe(1048576);
    else expect(first > 1048576 - 256 * KiB && first <= 1048576).toBe(true);
    expect(await points()).toBe(before);
    const redone = await cliJson<Backup>(['backup', '-r', root, '--vm', 'db01', '--disk', 'sda', '--changed', extents, '--cbt-check', '100', '--cbt-fallback', 'full', image]);
    expect(redone.mode).toBe('full');
    expect(redone.reason).toMatch(/--cbt-check: 1 of/);
    const out = join(dir, 'out2.raw');
    await cli(['restore', '-r', root, 'db01/sda@latest', out]);
    expect(sha256File(out)).toBe(sha256File(image));
  });

  it('refuses a parent that failed verification', async () => {
    const packs = readdirSync(join(root, 'packs')).flatMap((d) => readdirSync(join(root, 'packs', d)).map((f) => join(root, 'packs', d, f)));
    const fd = openSync(packs[0], 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, 32 + 64 + 7);
    closeSync(fd);
    expect((await cli(['verify', '-r', root])).code).toBe(2);
    writeFileSync(extents, '[]');
    const after = await cliJson<Backup>(['backup', '-r', root, '--vm', 'db01', '--disk', 'sda', '--changed', extents, image]);
    expect(after.mode).toBe('full');
    expect(after.reason).toMatch(/parent [0-9a-f]{8} failed verification/);
  });

  it('bad lists and bad sources: clear errors, nothing written', async () => {
    const before = await points();
    const cases: Array<[string, RegExp]> = [
      ['[{"start": 4096, "length": 10}, {"start": 0, "length": 10}]', /extent 1 \(start 0\) overlaps or precedes extent 0/],
      ['[{"start": 0, "length": 8192}, {"start": 4096, "length": 10}]', /overlaps/],
      ['[{"start": -5, "length": 10}]', /extent 0 must have integer "start" >= 0/],
      [`[{"start": ${32 * MiB}, "length": 1}]`, /runs past the end of the disk \(33554432 bytes\)/],
      ['[{"start": 0, "length": 10}', /not valid JSON/],
    ];
    for (const [text, message] of cases) {
      writeFileSync(extents, text);
      const r = await cli(['backup', '-r', root, '--vm', 'db01', '--disk', 'sda', '--changed', extents, image]);
      expect(r.code, text).toBe(1);
      expect(r.stderr, text).toMatch(message);
    }
    expect(await points()).toBe(before);
  });
});

describe('NBD failures', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const servers: Server[] = [];
  afterAll(() => { for (const s of servers) s.close(); });
  beforeAll(async () => { await cli(['init', '-r', root]); });

  it('a socket that is not an NBD server', async () => {
    const socket = join(dir, 'fake.sock');
    const server = createServer((c) => c.end('HELLO, I am not NBD at all\n'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(socket, r));
    const r = await cli(['backup', '-r', root, '--vm', 'x', '--disk', 'sda', `nbd+unix:///?socket=${socket}`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/not an NBD server/);
  });

  it('an export name the server does not have', async () => {
    const raw = join(dir, 'small.raw');
    writeFileSync(raw, randomBytes(MiB));
    const socket = join(dir, 'named.sock');
    const server = await serve(['-r', '-f', 'raw', '-x', 'disk0', '-t', raw], socket);
    const r = await cli(['backup', '-r', root, '--vm', 'x', '--disk', 'sda', `nbd+unix:///nosuch?socket=${socket}`]);
    const ok = await cliJson<Backup>(['backup', '-r', root, '--vm', 'x', '--disk', 'sda', `nbd+unix:///disk0?socket=${socket}`]);
    server.kill();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/server refused export "nosuch"/);
    expect(ok.bytesTotal).toBe(MiB);
  });

  it('a server that disconnects mid-backup', async () => {
    const raw = join(dir, 'big.raw');
    writeFileSync(raw, randomBytes(16 * MiB));
    const real = join(dir, 'real.sock');
    const server = await serve(['-r', '-f', 'raw', '-t', raw], real);
    // A proxy that cuts the connection after 2 MiB from the server.
    const cut = join(dir, 'cut.sock');
    const proxy = createServer((client) => {
      const upstream = connect(real);
      let sent = 0;
      upstream.on('data', (d) => {
        sent += d.length;
        if (sent > 2 * MiB) { client.destroy(); upstream.destroy(); } else client.write(d);
      });
      client.on('data', (d) => upstream.write(d));
      client.on('error', () => upstream.destroy());
    });
    servers.push(proxy);
    await new Promise<void>((r) => proxy.listen(cut, r));
    const before = (await cliJson<unknown[]>(['list', '-r', root])).length;
    const r = await cli(['backup', '-r', root, '--vm', 'y', '--disk', 'sda', `nbd+unix:///?socket=${cut}`]);
    server.kill();
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/nbd\+unix:.*(closed the connection|connection closed)/);
    expect((await cliJson<unknown[]>(['list', '-r', root])).length).toBe(before);
  });
});
