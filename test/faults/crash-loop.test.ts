// A crash loop: backup, forget and gc killed with SIGKILL again and again,
// at random instants and at each named step of gc, until 54 were killed, with
// `check` after every one. At the end every restore point the repository
// lists restores to exactly the image it was taken of (a point's time says
// which: each round backs up a different version of the disk), and
// check --read-data finds nothing wrong.
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson, cliPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
/** Rounds run until this many commands were killed (each round tries three); bounded by roundsMax. */
const killsWanted = 54;
const roundsMax = 60;
const gcSteps = ['gc-marked', 'gc-repacked', 'gc-pending-written', 'gc-condemned', 'gc-index-rewritten', 'gc-pack-deleted'];

/** A small deterministic generator (mulberry32): the same kill times on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the CLI and kills it after delayMs (it may finish first); resolves when it is gone, with how and how long it ran. */
async function killedAfter(args: string[], delayMs: number, env: Record<string, string> = {}): Promise<{ how: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: 'ignore', env: { ...process.env, BLOCKVAULT_QUIET_NATIVE: '1', ...env } });
  const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  try {
    const how = await new Promise<string>((resolve) => child.on('close', (code, signal) => resolve(signal ?? `exit ${code}`)));
    return { how, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
}

/** Node starts and loads its modules in about this long: a kill before it touches nothing. */
const startMs = 120;

describe('crash loop', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const random = prng(12);
  const expected = new Map<string, string>(); // point time -> sha256 of the image it was taken of
  let kills = 0;
  // How long each command took when it ran to its end (the latest such run): kills land at random inside that span.
  const lasted = new Map<string, number>([['backup', 500], ['forget', 400], ['gc', 500]]);
  const at = (command: string) => startMs + random() * 0.95 * Math.max(50, lasted.get(command)! - startMs);

  async function expectCheck(after: string): Promise<void> {
    const r = await cli(['check', '-r', root, '--json']);
    expect(r.code, `check after ${after}: ${r.stdout}${r.stderr}`).toBe(0);
  }

  /** The disk of vm k at round r: its base with a few 64 KiB chunks rewritten, so gc has garbage to find. */
  function version(k: number, round: number): string {
    const path = join(dir, `v${k}-r${round}.raw`);
    writeFileSync(path, randomStream(`base${k}`)(3 * MiB));
    const fd = openSync(path, 'r+');
    for (let c = round % 4; c < 48; c += 4) writeSync(fd, randomStream(`r${round}-${c}`)(65536), 0, 65536, c * 65536);
    closeSync(fd);
    return path;
  }

  it('kills backup, forget and gc at random instants and at each gc step; check passes after every kill; every point restores', async () => {
    await cli(['init', '-r', root, '--pack-size', '1M']);
    for (let round = 0; kills < killsWanted; round++) {
      expect(round, `only ${kills} kills in ${roundsMax} rounds: the commands finish before the kills land`).toBeLessThan(roundsMax);
      const time = new Date(Date.UTC(2026, 10, 1, 0, round)).toISOString();
      const vm = `v${round % 3}`;
      const image = version(round % 3, round);
      expected.set(time, sha256File(image));
      // One backup that completes (so forget and gc have work), then one killed part way.
      const ok = await cli(['backup', '-r', root, '--vm', vm, '--disk', 'sda', image, '--lock-wait', '10'], { env: { BLOCKVAULT_TEST_TIME: time } });
      expect(ok.code, ok.stderr).toBe(0);
      const killedImage = version((round + 1) % 3, round + 100);
      const killedTime = new Date(Date.UTC(2026, 10, 2, 0, round)).toISOString();
      expected.set(killedTime, sha256File(killedImage));
      const steps: Array<[string[], number, Record<string, string>]> = [
        [['backup', '-r', root, '--vm', `v${(round + 1) % 3}`, '--disk', 'sda', killedImage, '--lock-wait', '10'], at('backup'), { BLOCKVAULT_TEST_TIME: killedTime }],
        [['forget', '-r', root, '--keep-last', '2', '--lock-wait', '10'], at('forget'), {}],
        round % 2 === 0
          ? [['gc', '-r', root, '--repack-below', '60%', '--lock-wait', '10'], at('gc'), {}]
          : [['gc', '-r', root, '--repack-below', '60%', '--lock-wait', '10'], 30_000, { BLOCKVAULT_TEST_KILL_AT: `${gcSteps[(round >> 1) % gcSteps.length]}:1` }],
      ];
      for (const [args, delayMs, env] of steps) {
        const { how, ms } = await killedAfter(args, delayMs, env);
        if (how === 'SIGKILL') kills += 1;
        else {
          expect(how, `${args[0]} in round ${round}`).toBe('exit 0');
          if (!env.BLOCKVAULT_TEST_KILL_AT) lasted.set(args[0], ms);
        }
        await expectCheck(`${args[0]} (${how}) in round ${round}`);
      }
    }

    // Finish whatever the last kill left, then read everything back.
    expect((await cli(['gc', '-r', root, '--lock-wait', '10'])).code).toBe(0);
    const points = await cliJson<Array<{ vm: string; disk: string; id: string; time: string }>>(['list', '-r', root]);
    expect(points.length).toBeGreaterThanOrEqual(6); // forget keeps the last two of each of three disks
    const out = join(dir, 'out.raw');
    for (const p of points) {
      const r = await cli(['restore', '-r', root, `${p.vm}/${p.disk}@${p.id}`, out, '--force']);
      expect(r.code, r.stderr).toBe(0);
      expect(sha256File(out), `${p.vm} at ${p.time}`).toBe(expected.get(p.time));
    }
    const read = await cli(['check', '-r', root, '--read-data']);
    expect(read.code, read.stdout).toBe(0);
  });
});
