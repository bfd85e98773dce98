// forget, protect and unprotect as a user drives them: a retention policy over
// ten days of backups (dry run first), protected points, VM restore points
// kept or forgotten whole, and the bad inputs.
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { initDigests } from '../../engine/core/digest.js';
import { decodeConfig, encodeConfig, repoFormatVersion } from '../../engine/format/config-format.js';
import { cli, cliJson } from '../helpers/cli.js';
import { makeLegacy } from '../helpers/legacy-repo.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
interface Decision { name: string; keep: boolean; reasons: string[] }
interface Plan { dryRun: boolean; forgotten: number; kept: number; decisions: Decision[] }

function poke(path: string, at: number, seed: string): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, randomStream(seed)(4096), 0, 4096, at);
  closeSync(fd);
}

describe('blockvault forget', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');

  it('keeps what a retention policy says, shows why, protects, and restores what it kept', async () => {
    const image = join(dir, 'vm.raw');
    writeFileSync(image, randomStream('forget')(2 * MiB));
    await cli(['init', '-r', root]);
    const points: Array<{ id: string; copy: string }> = [];
    const at = (day: number, hour: number) => `2026-11-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:00.000Z`;
    // Nov 1 (a Sunday: ISO week 44) to Nov 10 at 10:00, and Nov 10 at 22:00 too.
    for (const [k, when] of [...Array.from({ length: 10 }, (_, d) => at(d + 1, 10)), at(10, 22)].entries()) {
      poke(image, k * 65536, `day${k}`);
      const r = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'web01', '--disk', 'sda', image], { env: { BLOCKVAULT_TEST_TIME: when } });
      points.push({ id: r.id, copy: join(dir, `p${k}.raw`) });
      copyFileSync(image, points[k].copy);
    }
    const rules = ['--keep-daily', '3', '--keep-weekly', '2', '--keep-monthly', '2', '--tz', 'UTC'];
    const plan = await cliJson<Plan>(['forget', '-r', root, ...rules, '--dry-run']);
    const kept = (p: Plan) => p.decisions.filter((d) => d.keep).map((d) => d.name.split('@')[1]);
    // Days: Nov 10 (22:00), 9, 8; weeks 46 (Nov 10) and 45 (Nov 8); months: November only.
    expect(kept(plan).sort()).toEqual([points[10].id, points[8].id, points[7].id].sort());
    expect(plan.decisions.find((d) => d.name.endsWith(points[7].id))!.reasons).toEqual(['daily 2026-11-8', 'weekly 2026-W45']);
    expect(plan).toMatchObject({ dryRun: true, forgotten: 8, kept: 3 });
    expect(await cliJson<unknown[]>(['list', '-r', root])).toHaveLength(11); // a dry run changes nothing

    expect((await cli(['protect', '-r', root, `web01/sda@${points[0].id.slice(0, 8)}`])).code).toBe(0);
    const done = await cli(['forget', '-r', root, ...rules]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/forgot 7 restore points, kept 4; their data stays in the packs until blockvault gc/);
    expect(done.stdout).toMatch(new RegExp(`web01/sda@${points[0].id.slice(0, 8)} .* keep    protected`));
    const listed = await cliJson<Array<{ id: string; protected: boolean }>>(['list', '-r', root]);
    expect(listed.map((p) => p.id).sort()).toEqual([0, 7, 8, 10].map((k) => points[k].id).sort());
    expect(listed.find((p) => p.id === points[0].id)!.protected).toBe(true);
    for (const k of [0, 7, 8, 10]) {
      const out = join(dir, 'out.raw');
      expect((await cli(['restore', '-r', root, `web01/sda@${points[k].id}`, out, '--force'])).code).toBe(0);
      expect(sha256File(out)).toBe(sha256File(points[k].copy));
    }
    expect((await cli(['verify', '-r', root])).code).toBe(0);

    const refused = await cli(['forget', '-r', root, `web01/sda@${points[0].id.slice(0, 8)}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/web01\/sda@[0-9a-f]{32} is protected; nothing was forgotten \(blockvault unprotect first\)/);
    expect(await cliJson<unknown[]>(['list', '-r', root])).toHaveLength(4);
    expect((await cli(['unprotect', '-r', root, `web01/sda@${points[0].id.slice(0, 8)}`])).code).toBe(0);
    expect((await cli(['forget', '-r', root, `web01/sda@${points[0].id.slice(0, 8)}`])).code).toBe(0);
    expect(await cliJson<unknown[]>(['list', '-r', root])).toHaveLength(3);
  });

  it('keeps or forgets a VM restore point whole, and refuses to forget one of its disks', async () => {
    const a = join(dir, 'a.raw');
    const b = join(dir, 'b.raw');
    writeFileSync(a, randomStream('ga')(MiB));
    writeFileSync(b, randomStream('gb')(MiB));
    const groups: string[] = [];
    for (const day of [1, 2]) {
      poke(a, 0, `ga${day}`);
      const r = await cliJson<{ group: string }>(['backup', '-r', root, '--vm', 'db01', '--disk', `sda=${a}`, '--disk', `sdb=${b}`],
        { env: { BLOCKVAULT_TEST_TIME: `2026-11-0${day}T03:00:00.000Z` } });
      groups.push(r.group);
    }
    const members = (await cliJson<Array<{ id: string; disk: string; group: string | null }>>(['list', '-r', root, '--vm', 'db01'])).filter((p) => p.group === groups[0]);
    expect(members).toHaveLength(2);
    const half = await cli(['forget', '-r', root, `db01/sda@${members.find((m) => m.disk === 'sda')!.id.slice(0, 8)}`]);
    expect(half.code).toBe(1);
    expect(half.stderr).toMatch(/is one disk of VM restore point db01@[0-9a-f]{8}: forgetting it alone would leave that restore point half deleted/);

    const r = await cliJson<Plan>(['forget', '-r', root, '--keep-last', '1', '--vm', 'db01']);
    expect(r.decisions.map((d) => [d.name, d.keep])).toEqual([[`db01@${groups[1]}`, true], [`db01@${groups[0]}`, false]]);
    expect(existsSync(join(root, 'groups', 'db01', `${groups[0]}.group`))).toBe(false);
    for (const m of members) expect(existsSync(join(root, 'points', 'db01', m.disk, `${m.id}.point`))).toBe(false);
    expect((await cli(['restore', '-r', root, `db01@${groups[1].slice(0, 8)}`, join(dir, 'g-out')])).code).toBe(0);
    expect(sha256File(join(dir, 'g-out', 'sda.raw'))).toBe(sha256File(a));
  });

  it('refuses rules that keep nothing, bad counts and zones, and rules mixed with names', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /nothing to forget: give --keep-\* rules/],
      [['--keep-last', '0'], /these rules keep nothing/],
      [['--keep-daily=-1'], /--keep-daily -1: expected a whole number from 0/],
      [['--keep-weekly', 'two'], /--keep-weekly NaN: expected a whole number/],
      [['--keep-daily', '3', '--tz', 'Mars/Olympus'], /--tz "Mars\/Olympus": not a time zone/],
      [['--keep-daily', '3', 'web01/sda@latest'], /give either --keep-\* rules or restore points to forget, not both/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['forget', '-r', root, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    expect(await cliJson<unknown[]>(['list', '-r', root])).toHaveLength(5); // 3 of web01, 2 disks of db01's kept group
  });

  it('refuses to forget the base of a version-1 delta an upgrade left (it would become unreadable)', async () => {
    const legacy = join(dir, 'legacy');
    const image = join(dir, 'legacy.raw');
    writeFileSync(image, randomStream('legacy')(MiB));
    await cli(['init', '-r', legacy]);
    const ids: string[] = [];
    for (let day = 0; day < 2; day++) {
      poke(image, day * 65536, `legacy${day}`);
      ids.push((await cliJson<{ id: string }>(['backup', '-r', legacy, '--vm', 'vm', '--disk', 'sda', image])).id);
    }
    // The second point as a version-1 delta of the first, in a current repository: what an upgrade that could not page it leaves.
    await initDigests();
    await makeLegacy(legacy, 2, { deltas: true });
    const config = decodeConfig(readFileSync(join(legacy, 'config')), 'config');
    writeFileSync(join(legacy, 'config'), encodeConfig({ ...config, formatVersion: repoFormatVersion }));
    const refused = await cli(['forget', '-r', legacy, `vm/sda@${ids[0]}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`vm/sda@${ids[1]} is a version-1 delta of ${ids[0]}: forgetting its base would leave it unreadable; nothing was forgotten`));
    expect(await cliJson<unknown[]>(['list', '-r', legacy])).toHaveLength(2);
    expect((await cli(['forget', '-r', legacy, `vm/sda@${ids[0]}`, `vm/sda@${ids[1]}`])).code).toBe(0);
  });
});
