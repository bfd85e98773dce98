// Setup file for every test file (vitest.config.ts): no test file may leave a
// process behind. Every process a test file starts inherits a marker in its
// environment; after the file's own afterAll hooks have run (this hook was
// registered first, so it runs last), any live process still carrying the
// marker is named, killed, and fails the file.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll } from 'vitest';

const marker = `BV_TEST_FILE=${process.pid}-${randomBytes(6).toString('hex')}`;
process.env.BV_TEST_FILE = marker.slice('BV_TEST_FILE='.length);

/** Live processes (not zombies) whose environment carries this file's marker. */
export function leftoverProcesses(): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) continue;
      const state = /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'latin1'))?.[1];
      if (state === 'Z' || state === 'X') continue;
      found.push({ pid, command: readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim().slice(0, 200) });
    } catch {
      // gone meanwhile, or another user's process: not ours
    }
  }
  return found;
}

afterAll(async () => {
  // A process killed a moment ago may still be exiting: give it up to 5 s.
  let left = leftoverProcesses();
  for (const end = Date.now() + 5000; left.length > 0 && Date.now() < end; left = leftoverProcesses()) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (left.length === 0) return;
  for (const p of left) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  throw new Error(`this test file left ${left.length} process(es) running (now killed):\n${left.map((p) => `  ${p.pid} ${p.command}`).join('\n')}`);
});
