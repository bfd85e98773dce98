import { plural } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { intOption, onePositional, parse, repoPath } from '../args.js';
import { note, printJson, say, testExclusiveProbe, type Command } from '../command.js';
import { BlockvaultError } from '../../core/errors.js';

export const indexCommand: Command = {
  name: 'index',
  help: `Usage: blockvault index rebuild -r <repo> [--from-packs] [--json]

The index (index/ in the repository) is only a cache: pack files and restore
point files are the truth. 'rebuild' drops it and builds it again from the
repository's index objects (idx/: what each backup sealed, a few large reads)
and the trailers of any pack they do not name; --from-packs ignores the index
objects and reads every pack's trailer. Packs that cannot be read are listed; run
'blockvault verify' to see which restore points they affect. It runs alone:
it waits up to --lock-wait seconds for running backups to finish, and keeps
new ones waiting until it is done.

Options:
  -r, --repo PATH       repository (or BLOCKVAULT_REPO)
  --lock-wait SECONDS   wait this long for running backups (default 60)
  --from-packs          read every pack's trailer, not the index objects
  --json                counts of packs, index objects and restore points indexed, packs skipped`,
  async run(argv) {
    const { values, positionals } = parse('index', argv, { 'lock-wait': { type: 'string' }, 'from-packs': { type: 'boolean' } });
    const action = onePositional('index', positionals, 'action (rebuild)');
    if (action !== 'rebuild') throw new BlockvaultError('USAGE', `unknown action ${JSON.stringify(action)}; try: blockvault index rebuild`);
    const repo = await Repository.open(repoPath(values), { exclusive: { what: 'index rebuild', lockWaitSeconds: intOption(values, 'lock-wait', 60), onWait: (who) => note(`blockvault: waiting for ${who} to finish`) } });
    try {
      await testExclusiveProbe();
      const result = await repo.rebuildIndex({ fromPacks: values['from-packs'] === true });
      if (values.json) printJson(result);
      else {
        say(`index rebuilt: ${plural(result.packs, 'pack')} (${plural(result.indexObjects, 'index object')} read), ${plural(result.points, 'restore point')}`);
        for (const s of result.skipped) say(`  skipped pack ${s}`);
      }
      return result.skipped.length > 0 ? 2 : 0;
    } finally {
      await repo.close();
    }
  },
};
