import { BlockvaultError } from '../../core/errors.js';
import { humanBytes, humanSeconds, plural } from '../../core/human.js';
import { repairIndex } from '../../repair/repair-index.js';
import { Repository } from '../../repo/repository.js';
import { intOption, onePositional, parse, repoPath } from '../args.js';
import { note, printJson, say, type Command } from '../command.js';
import { progressLine } from '../progress.js';

export const repairCommand: Command = {
  name: 'repair',
  help: `Usage: blockvault repair index -r <repo> [--lock-wait SECONDS] [--json]

Rebuilds the index from the packs alone, for when the index cache or the
index objects (idx/) are lost or damaged: every pack's trailer is read
(several at a time), and a pack whose trailer is torn (cut short or
overwritten) is salvaged from its record headers: each record whose
checksums hold is copied into a new pack, and the torn pack is deleted.
Afterwards, blockvault check names any restore point still missing data
(a later backup of the same disk heals it).

It runs alone: it waits up to --lock-wait seconds (default 60) for running
backups, forgets and gcs to finish, and keeps new ones waiting until done.

Options:
  -r, --repo PATH      repository (or BLOCKVAULT_REPO)
  --lock-wait SECONDS  wait this long for running writers (default 60)
  --json               counts: packs, torn packs, records salvaged, restore points

Exit status: 0 repaired, 2 a torn pack could not be read at all (named).`,
  async run(argv) {
    const { values, positionals } = parse('repair', argv, { 'lock-wait': { type: 'string' } });
    const what = onePositional('repair', positionals, 'thing to repair (index)');
    if (what !== 'index') throw new BlockvaultError('USAGE', `unknown repair ${JSON.stringify(what)}; try: blockvault repair index -r <repo>`);
    const repo = await Repository.open(repoPath(values), { exclusive: { what: 'repair index', lockWaitSeconds: intOption(values, 'lock-wait', 60), onWait: (who) => note(`blockvault: waiting for ${who} to finish`) } });
    const bar = progressLine('repair: salvaging torn packs', undefined, 'packs');
    try {
      const r = await repairIndex(repo, (done, total) => bar.update(done, total));
      bar.done();
      if (values.json) printJson(r);
      else {
        say(`index repaired from ${plural(r.packs, 'pack')}: ${plural(r.points, 'restore point')}, in ${humanSeconds(r.seconds)}`);
        if (r.packsTorn > 0) say(`salvaged ${plural(r.recordsSalvaged, 'record')} (${humanBytes(r.bytesSalvaged)}) from ${plural(r.packsTorn, 'torn pack')} into ${plural(r.packsWritten, 'new pack')}; run blockvault check to see what is still missing`);
        for (const u of r.unreadable) say(`  unreadable: ${u}`);
      }
      return r.unreadable.length > 0 ? 2 : 0;
    } finally {
      bar.done();
      await repo.close();
    }
  },
};
