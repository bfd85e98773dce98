import { Repository } from '../../repo/repository.js';
import { intOption, parse, repoPath } from '../args.js';
import { note, printJson, type Command } from '../command.js';
import { gcJson, gcOptions, gcOptionsHelp, gcSettings, gcWithProgress, showGc } from './gc-shared.js';

export const gcCommand: Command = {
  name: 'gc',
  help: `Usage: blockvault gc -r <repo> [--dry-run] [--max-unused P% | --repack-below P%] [--session-wait SECONDS] [--json]

Reclaims the space of data no restore point needs any more (after forget):
packs nothing needs are deleted, and packs mostly dead have their live data
copied into new packs first (the emptiest first, until at most --max-unused
of what stays is dead). Every remaining restore point restores exactly
as before. Backups keep running meanwhile: gc stops them deduplicating
against what it will delete, waits for the backups that were already
running, and keeps whatever the restore points they wrote need. Killed or
interrupted at any moment, gc leaves a consistent repository; the next gc
finishes the job.

Options:
  -r, --repo PATH         repository (or BLOCKVAULT_REPO)
  --dry-run               say what would be deleted and copied; change nothing
${gcOptionsHelp}
  --json                  counts and bytes as JSON

Examples:
  blockvault forget -r /srv/bv --keep-daily 14 --keep-weekly 8 && blockvault gc -r /srv/bv
  blockvault prune  -r /srv/bv --keep-daily 14 --keep-weekly 8      (the same in one command)`,
  async run(argv) {
    const { values } = parse('gc', argv, gcOptions);
    const dryRun = values['dry-run'] === true;
    const settings = gcSettings(values);
    const repo = await Repository.open(repoPath(values), dryRun ? {} : {
      writer: { what: 'gc', kind: 'gc', lockWaitSeconds: intOption(values, 'lock-wait', 60), onWait: (who) => note(`gc: waiting for ${who}`) },
    });
    try {
      const result = await gcWithProgress(repo, settings);
      if (values.json) printJson(gcJson(result));
      else showGc(result);
      return 0;
    } finally {
      await repo.close();
    }
  },
};
