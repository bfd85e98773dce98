// gc over restore points whose maps are trees of pages with leaf patches (a
// disk of four leaves, changed a little in each by changed-block-tracking
// increments): the mark must keep every chunk a patched leaf names (its
// base's where the patch does not change them, the patch's where it does),
// and every page. Day 2 is forgotten; after gc (repacking nearly everything)
// days 1 and 3 restore byte for byte and check --read-data finds nothing;
// then day 1 goes too (its leaves stay, as the bases of day 3's patches), and
// day 3 still restores.
import { closeSync, copyFileSync, openSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const chunk = 65536;
const chunks = 3 * 1024 + 5; // four leaves, the last a short one

function write(path: string, list: number[], seed: string): void {
  const fd = openSync(path, 'r+');
  for (const c of list) writeSync(fd, randomStream(`${seed}-${c}`)(chunk), 0, chunk, c * chunk);
  closeSync(fd);
}

const every = (step: number, from = 0) => Array.from({ length: Math.floor((chunks - 1 - from) / step) + 1 }, (_, k) => from + k * step);

describe('gc over paged maps', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');

  async function expectIntact(copies: Map<string, string>): Promise<void> {
    const out = join(dir, 'out.raw');
    for (const [id, copy] of copies) {
      const r = await cli(['restore', '-r', root, `vm/sda@${id}`, out, '--force']);
      expect(r.code, r.stderr).toBe(0);
      expect(sha256File(out), id).toBe(sha256File(copy));
    }
    const check = await cli(['check', '-r', root, '--read-data']);
    expect(check.code, check.stdout).toBe(0);
  }

  it('keeps what leaf patches and their bases name', async () => {
    await cli(['init', '-r', root, '--pack-size', '1M']);
    const image = join(dir, 'disk.raw');
    writeFileSync(image, Buffer.alloc(0));
    truncateSync(image, chunks * chunk);
    const copies = new Map<string, string>();
    const ids: string[] = [];
    // Day 3 rewrites half of what day 2 wrote: forgetting day 2 then frees those.
    for (const [day, change] of [[1, every(16)], [2, every(64, 16)], [3, every(128, 16)]] as Array<[number, number[]]>) {
      write(image, change, `day${day}`);
      const changed = join(dir, 'changed.json');
      writeFileSync(changed, JSON.stringify(change.map((c) => ({ start: c * chunk, length: chunk }))));
      const args = day === 1 ? [] : ['--parent', ids.at(-1)!, '--changed', changed];
      const r = await cliJson<{ id: string; mapPagesNew: number; mode: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', ...args, image]);
      if (day > 1) expect(r).toMatchObject({ mode: 'incremental' });
      ids.push(r.id);
      copyFileSync(image, join(dir, `day${day}.raw`));
      copies.set(r.id, join(dir, `day${day}.raw`));
    }
    // Day 2 first, while day 1 is kept: day 3's patches rest on day 1's leaves, which the mark walks whole
    // as day 1's own, so only what the patches change is visited for day 3. Then day 1.
    for (const k of [1, 0]) {
      expect((await cli(['forget', '-r', root, `vm/sda@${ids[k]}`])).code).toBe(0);
      copies.delete(ids[k]);
      const gc = await cliJson<{ packsDeleted: number }>(['gc', '-r', root, '--repack-below', '90%']);
      expect(gc.packsDeleted).toBeGreaterThan(0);
      await expectIntact(copies);
    }
  });
});
