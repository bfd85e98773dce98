import { repoFormatVersion } from '../../format/config-format.js';
import { upgradeRepository } from '../../repo/init.js';
import { FsObjectStore } from '../../storage/fs-storage.js';
import { intOption, parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';
import { resolve } from 'node:path';

export const upgradeCommand: Command = {
  name: 'upgrade',
  help: `Usage: blockvault upgrade -r <repo> [--lock-wait 60] [--json]

Upgrades a repository written by an older blockvault to format version ${repoFormatVersion},
in place. Packs and restore points stay as they are: version 2 changes how
writers lock (a lock object per backup session, so backups run at once) and
adds index objects, which the upgrade writes from the pack trailers. A
version-1 blockvault must not write to it afterwards. Reading (list,
restore, verify, mount) works on version 1 without upgrading.

Options:
  -r, --repo PATH       repository (or BLOCKVAULT_REPO)
  --lock-wait SECONDS   wait this long for running writers (default 60)
  --json                the version found and the version now`,
  async run(argv) {
    const { values } = parse('upgrade', argv, { 'lock-wait': { type: 'string' } });
    const root = resolve(repoPath(values));
    const from = await upgradeRepository(new FsObjectStore(root), intOption(values, 'lock-wait', 60));
    if (values.json) printJson({ repo: root, from, to: repoFormatVersion });
    else say(from === repoFormatVersion ? `${root} is already format version ${repoFormatVersion}; nothing to do` : `upgraded ${root} from format version ${from} to ${repoFormatVersion}`);
    return 0;
  },
};
