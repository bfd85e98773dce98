import { resolveUnits, setProtected } from '../../retention/forget.js';
import { plural } from '../../core/human.js';
import { BlockvaultError } from '../../core/errors.js';
import { Repository } from '../../repo/repository.js';
import { parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

function command(name: 'protect' | 'unprotect'): Command {
  const on = name === 'protect';
  return {
    name,
    help: `Usage: blockvault ${name} -r <repo> <vm>/<disk>@<id> | <vm>@<id> ... [--json]

${on ? 'Protects restore points: forget never removes a protected point, whatever its\nrules say, and refuses to forget one by name.' : 'Lifts the protection of restore points (see blockvault protect).'} A VM restore
point (<vm>@<id>, several disks) is ${on ? 'protected' : 'released'} whole.

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --json            the points ${on ? 'protected' : 'released'}`,
    async run(argv) {
      const { values, positionals } = parse(name, argv, {});
      if (positionals.length === 0) throw new BlockvaultError('USAGE', `name at least one restore point to ${name} (see blockvault ${name} --help)`);
      const repo = await Repository.open(repoPath(values), { writer: { what: name, lockWaitSeconds: 60 } });
      try {
        const list = resolveUnits(repo, positionals);
        await setProtected(repo, list, on);
        if (values.json) printJson({ [on ? 'protected' : 'unprotected']: list.map((u) => u.name) });
        else say(`${on ? 'protected' : 'unprotected'} ${plural(list.length, 'restore point')}: ${list.map((u) => u.name).join(', ')}`);
        return 0;
      } finally {
        await repo.close();
      }
    },
  };
}

export const protectCommand = command('protect');
export const unprotectCommand = command('unprotect');
