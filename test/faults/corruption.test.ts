// A flipped bit or a missing pack: verify names exactly the affected
// restore points (exit 2); restore refuses with the chunk, pack and offset
// and leaves no output file behind.
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, readdirSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const packFiles = (root: string) => readdirSync(join(root, 'packs')).flatMap((d) => readdirSync(join(root, 'packs', d)).map((f) => join(root, 'packs', d, f)));

interface Verdicts { ok: boolean; points: Array<{ id: string; vm: string; ok: boolean; problems: Array<{ code: string; id?: string; pack?: string; offset?: number }> }> }

describe('corruption', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  let aPacks: string[] = [];
  let ids: Record<string, string> = {};

  beforeAll(async () => {
    await cli(['init', '-r', root, '--pack-size', '1M']);
    writeFileSync(join(dir, 'a.raw'), randomBytes(2 * 1024 * 1024));
    writeFileSync(join(dir, 'b.raw'), randomBytes(2 * 1024 * 1024));
    ids.a = (await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'a', '--disk', 'sda', join(dir, 'a.raw')])).id;
    aPacks = packFiles(root);
    ids.b = (await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'b', '--disk', 'sda', join(dir, 'b.raw')])).id;
    ids.a2 = (await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'a', '--disk', 'sda', join(dir, 'a.raw')])).id;
    expect((await cliJson<Verdicts>(['verify', '-r', root])).ok).toBe(true);
  });

  it('a flipped bit in a pack is caught by verify and refused by restore', async () => {
    const pack = aPacks[0];
    const fd = openSync(pack, 'r+');
    const byte = Buffer.alloc(1);
    const at = 32 + 64 + 1000; // inside the first record's payload
    readSync(fd, byte, 0, 1, at);
    byte[0] ^= 0x20;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);

    const verify = await cli(['verify', '-r', root, '--json']);
    expect(verify.code).toBe(2);
    const report = JSON.parse(verify.stdout) as Verdicts;
    const bad = report.points.filter((p) => !p.ok).map((p) => p.id).sort();
    expect(bad).toEqual([ids.a, ids.a2].sort()); // b shares no chunk with a
    const problem = report.points.find((p) => p.id === ids.a)!.problems[0];
    expect(problem).toMatchObject({ code: 'CHECKSUM_MISMATCH', offset: 32 });
    expect(pack).toContain(problem.pack!);

    const out = join(dir, 'a.out');
    const restore = await cli(['restore', '-r', root, `a/sda@${ids.a}`, out]);
    expect(restore.code).toBe(2);
    expect(restore.stderr).toContain(`chunk ${problem.id}`);
    expect(restore.stderr).toMatch(/in packs\/[0-9a-f]{2}\/[0-9a-f]{32}\.pack at offset 32: stored bytes fail their XXH64 checksum \[CHECKSUM_MISMATCH\]/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('partial'))).toEqual([]);
    // The undamaged VM still restores.
    expect((await cli(['restore', '-r', root, 'b/sda@latest', join(dir, 'b.out')])).code).toBe(0);
  });

  it('a missing pack is reported as CHUNK_MISSING for the points that need it', async () => {
    rmSync(aPacks[aPacks.length - 1]);
    const report = JSON.parse((await cli(['verify', '-r', root, '--json'])).stdout) as Verdicts;
    const missing = report.points.filter((p) => p.problems.some((x) => x.code === 'CHUNK_MISSING')).map((p) => p.vm);
    expect(new Set(missing)).toEqual(new Set(['a']));
    const restore = await cli(['restore', '-r', root, 'a/sda@latest', join(dir, 'a2.out')]);
    expect(restore.code).toBe(2);
    expect(restore.stderr).toMatch(/CHUNK_MISSING/);
  });
});
