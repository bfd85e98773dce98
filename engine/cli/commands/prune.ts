import { Repository } from '../../repo/repository.js';
import { intOption, parse, repoPath } from '../args.js';
import { note, printJson, type Command } from '../command.js';
import { decideAndForget, forgetJson, forgetRequest, keepOptions, showForget } from './forget.js';
import { gcJson, gcOptions, gcOptionsHelp, gcSettings, gcWithProgress, showGc } from './gc-shared.js';

export const pruneCommand: Command = {
  name: 'prune',
  help: `Usage: blockvault prune -r <repo> --keep-last N | --keep-daily N ... [--tz ZONE] [--vm NAME]
                        [--dry-run] [--max-unused P% | --repack-below P%] [--json]
       blockvault prune -r <repo> <vm>/<disk>@<id> | <vm>@<id> ...

forget, then gc, in one command and under one lock: removes the restore
points the rules do not keep (or those named; see blockvault forget --help
for the rules) and reclaims the space nothing needs any more (see
blockvault gc --help). Backups keep running meanwhile.

Options:
  -r, --repo PATH         repository (or BLOCKVAULT_REPO)
  --keep-last N ...       retention rules, as for forget
  --tz ZONE, --vm NAME    as for forget
  --dry-run               say what would be forgotten, deleted and copied; change nothing
${gcOptionsHelp}
  --json                  {forget: ..., gc: ...}`,
  async run(argv) {
    const { values, positionals } = parse('prune', argv, { ...keepOptions, ...gcOptions, tz: { type: 'string' }, vm: { type: 'string' } });
    const request = forgetRequest(values, positionals);
    const dryRun = values['dry-run'] === true;
    const settings = gcSettings(values);
    // The gc lock keeps out other forgets and gcs: this process does both, in that order.
    const repo = await Repository.open(repoPath(values), dryRun ? {} : {
      writer: { what: 'prune', kind: 'gc', lockWaitSeconds: intOption(values, 'lock-wait', 60), onWait: (who) => note(`prune: waiting for ${who}`) },
    });
    try {
      const decisions = await decideAndForget(repo, request, dryRun);
      if (!values.json) showForget(decisions, dryRun, true);
      // A dry run marks as if the points it would forget were gone.
      const gone = new Set(decisions.filter((d) => !d.keep).flatMap((d) => d.unit.points.map((p) => p.id)));
      const gc = await gcWithProgress(repo, settings, gone);
      if (values.json) printJson({ forget: forgetJson(decisions, dryRun), gc: gcJson(gc) });
      else showGc(gc);
      return 0;
    } finally {
      await repo.close();
    }
  },
};
