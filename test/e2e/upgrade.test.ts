// A repository written by the version-1 blockvault (one writer.lock): read as
// it is; a backup into it is refused by name with the command that upgrades
// it; after `blockvault upgrade` backups run as sessions.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeConfig, encodeConfig } from '../../engine/format/config-format.js';
import { randomStream, sha256File } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

describe('format version 1 repositories', () => {
  const dir = tempDir();
  const root = join(dir, 'repo');
  const image = join(dir, 'vm.raw');

  it('are read as they are, refused for writing by name, and upgraded in place', async () => {
    writeFileSync(image, randomStream('upgrade')(4 * 1024 * 1024));
    await cli(['init', '-r', root]);
    const first = await cliJson<{ id: string }>(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    // Make it what version 1 wrote: the config says 1, and a locks/ directory for writer.lock.
    const config = decodeConfig(readFileSync(join(root, 'config')), 'config');
    writeFileSync(join(root, 'config'), encodeConfig({ ...config, formatVersion: 1 }));
    rmSync(join(root, 'idx'), { recursive: true }); // version 1 had no index objects
    mkdirSync(join(root, 'locks'), { recursive: true });

    expect((await cliJson<Array<{ id: string }>>(['list', '-r', root])).map((p) => p.id)).toEqual([first.id]);
    const out = join(dir, 'out.raw');
    expect((await cli(['restore', '-r', root, 'vm/sda@latest', out])).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(image));

    const refused = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is a version-1 repository: blockvault reads it as it is, and writes to it once upgraded with: blockvault upgrade -r .*repo \[FORMAT_VERSION\]/);

    writeFileSync(join(root, 'locks', 'writer.lock'), '{}'); // a version-1 writer at work
    const busy = await cli(['upgrade', '-r', root]);
    expect(busy.code).toBe(3);
    expect(busy.stderr).toMatch(/locks\/writer\.lock exists: a version-1 blockvault is writing/);
    rmSync(join(root, 'locks', 'writer.lock')); // it finished

    expect(await cliJson(['upgrade', '-r', root])).toMatchObject({ from: 1, to: 2 });
    expect(readdirSync(join(root, 'idx'))).toHaveLength(1); // index objects written for the existing packs
    expect((await cli(['upgrade', '-r', root])).stdout).toMatch(/already format version 2; nothing to do/);
    const second = await cli(['backup', '-r', root, '--vm', 'vm', '--disk', 'sda', image]);
    expect(second.code, second.stderr).toBe(0);
    expect((await cli(['verify', '-r', root])).code).toBe(0);
  });
});
