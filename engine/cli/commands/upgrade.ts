import { resolve } from 'node:path';
import { plural } from '../../core/human.js';
import { repoFormatVersion } from '../../format/config-format.js';
import { upgradeRepository } from '../../repo/upgrade.js';
import { FsObjectStore } from '../../storage/fs-storage.js';
import { intOption, parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

export const upgradeCommand: Command = {
  name: 'upgrade',
  help: `Usage: blockvault upgrade -r <repo> [--lock-wait 60] [--json]

Upgrades a repository written by an older blockvault to format version ${repoFormatVersion},
in place; reading (list, restore, verify, mount) works on older versions
without it, writing needs it. Safe to interrupt and run again.
  version 1 -> 2: writers become sessions with lock objects of their own (so
    backups run at once); index objects are written from the pack trailers.
    A version-1 blockvault must not write to the repository afterwards.
  version 2 -> 3: every restore point's chunk map is rewritten as a paged map
    (same id, same data): memory and metadata then scale with the data, not
    the disk size. Packs stay as they are; the pages go into new packs.

Options:
  -r, --repo PATH       repository (or BLOCKVAULT_REPO)
  --lock-wait SECONDS   wait this long for running writers (default 60)
  --json                the version found, the version now, points paged`,
  async run(argv) {
    const { values } = parse('upgrade', argv, { 'lock-wait': { type: 'string' } });
    const root = resolve(repoPath(values));
    const result = await upgradeRepository(root, new FsObjectStore(root), intOption(values, 'lock-wait', 60));
    for (const line of result.skipped) process.stderr.write(`blockvault: upgrade: ${line}\n`);
    if (values.json) printJson({ repo: root, ...result });
    else if (result.from === repoFormatVersion) say(`${root} is already format version ${repoFormatVersion}; nothing to do`);
    else say(`upgraded ${root} from format version ${result.from} to ${repoFormatVersion} (${plural(result.pointsPaged, 'restore point')} paged)`);
    return result.skipped.length > 0 ? 1 : 0;
  },
};
