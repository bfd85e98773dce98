import { Repository } from '../../repo/repository.js';
import { onePositional, parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';
import { BlockvaultError } from '../../core/errors.js';

export const indexCommand: Command = {
  name: 'index',
  summary: 'rebuild the LMDB index from the packs and restore points',
  help: `Usage: blockvault index rebuild -r <repo> [--json]

The index (index/ in the repository) is only a cache: pack files and restore
point files are the truth. 'rebuild' drops it and reads every pack trailer
and restore point again. Packs that cannot be read are listed; run
'blockvault verify' to see which restore points they affect.`,
  async run(argv) {
    const { values, positionals } = parse('index', argv, { 'lock-wait': { type: 'string' } });
    const action = onePositional('index', positionals, 'action (rebuild)');
    if (action !== 'rebuild') throw new BlockvaultError('USAGE', `index: unknown action ${JSON.stringify(action)}; try: blockvault index rebuild`);
    const repo = await Repository.open(repoPath(values), { writer: { what: 'index rebuild', lockWaitSeconds: 60 } });
    try {
      const result = await repo.rebuildIndex();
      if (values.json) printJson(result);
      else {
        say(`index rebuilt: ${result.packs} packs, ${result.points} restore points`);
        for (const s of result.skipped) say(`  skipped pack ${s}`);
      }
      return result.skipped.length > 0 ? 2 : 0;
    } finally {
      await repo.close();
    }
  },
};
