import { BlockvaultError } from '../../core/errors.js';
import { checkName } from '../../core/names.js';
import { plural } from '../../core/human.js';
import { periods, type KeepRules } from '../../retention/policy.js';
import { forgetOrphans, forgetUnits, planPolicy, refuseProtected, resolveUnits, type UnitDecision } from '../../retention/forget.js';
import { Repository } from '../../repo/repository.js';
import { intOption, parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

const ruleNames = ['last', ...periods] as const;

function rulesFrom(values: Record<string, unknown>): KeepRules {
  const rules: KeepRules = {};
  for (const r of ruleNames) {
    const raw = values[`keep-${r}`] as string | undefined;
    if (raw !== undefined) rules[r] = raw.trim() === '' ? NaN : Number(raw);
  }
  return rules;
}

function show(decisions: UnitDecision[], dryRun: boolean): void {
  let timeline = '';
  for (const d of decisions) {
    if (d.unit.timeline !== timeline) {
      timeline = d.unit.timeline;
      say(`${timeline.endsWith('@') ? `${timeline.slice(0, -1)} (VM restore points)` : timeline}:`);
    }
    const what = d.keep ? `keep    ${d.reasons.join(', ')}` : dryRun ? 'would forget' : 'forgotten';
    say(`  ${d.unit.name.replace(/@([0-9a-f]{8})[0-9a-f]+$/, '@$1').padEnd(36)} ${d.unit.time.slice(0, 19).replace('T', ' ')}  ${what}`);
  }
}

export const forgetCommand: Command = {
  name: 'forget',
  help: `Usage: blockvault forget -r <repo> [--keep-last N] [--keep-hourly N] [--keep-daily N]
                         [--keep-weekly N] [--keep-monthly N] [--keep-yearly N]
                         [--tz ZONE] [--vm NAME] [--dry-run] [--json]
       blockvault forget -r <repo> <vm>/<disk>@<id> | <vm>@<id> ...

Removes restore points: those a retention policy does not keep, or those
named. Each --keep-<period> N keeps the newest restore point in each of the N
newest hours / days / ISO weeks (Monday to Sunday) / months / years that have
one, in the time zone --tz (an IANA name; default this machine's); --keep-last
N keeps the N newest. Rules add up: a point any rule keeps stays, and
--dry-run shows which rule keeps it. The policy applies to each disk's
single-disk restore points, and to each VM's VM restore points (backups of
several disks at once, which are kept or forgotten whole). Protected points
(blockvault protect) always stay.

forget removes restore points only: their data stays in the packs, still
shared with every point that uses it, until a garbage collection (not yet
built) reclaims what no point needs. It runs beside backups.

Options:
  -r, --repo PATH      repository (or BLOCKVAULT_REPO)
  --keep-last N ...    the rules above (at least one of them above 0)
  --tz ZONE            time zone of the periods, e.g. Europe/Berlin or UTC
  --vm NAME            apply the policy to this VM only
  --dry-run            say what would be forgotten and why each point stays; change nothing
  --lock-wait SECONDS  wait this long while an exclusive operation runs (default 60)
  --json               every decision: name, time, keep, reasons`,
  async run(argv) {
    const keep = Object.fromEntries(ruleNames.map((r) => [`keep-${r}`, { type: 'string' as const }]));
    const { values, positionals } = parse('forget', argv, { ...keep, tz: { type: 'string' }, vm: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'lock-wait': { type: 'string' } });
    const rules = rulesFrom(values);
    const byName = positionals.length > 0;
    if (byName && Object.keys(rules).length > 0) throw new BlockvaultError('USAGE', 'give either --keep-* rules or restore points to forget, not both');
    if (!byName && Object.keys(rules).length === 0) {
      throw new BlockvaultError('USAGE', 'nothing to forget: give --keep-* rules (see --help), or name restore points; forget never guesses');
    }
    const vm = values.vm === undefined ? undefined : checkName('vm', values.vm as string);
    const dryRun = values['dry-run'] === true;
    const repo = await Repository.open(repoPath(values), dryRun ? {} : { writer: { what: 'forget', lockWaitSeconds: intOption(values, 'lock-wait', 60) } });
    try {
      const decisions: UnitDecision[] = byName
        ? resolveUnits(repo, positionals).map((unit) => ({ unit, keep: false, reasons: [] }))
        : await planPolicy(repo, rules, { vm, tz: values.tz as string | undefined });
      const gone = decisions.filter((d) => !d.keep);
      if (byName) await refuseProtected(repo, gone.map((d) => d.unit));
      if (!dryRun) {
        await forgetUnits(repo, gone.map((d) => d.unit));
        await forgetOrphans(repo);
      }
      if (values.json) {
        printJson({ dryRun, forgotten: gone.length, kept: decisions.length - gone.length, decisions: decisions.map((d) => ({ name: d.unit.name, kind: d.unit.kind, time: d.unit.time, keep: d.keep, reasons: d.reasons })) });
      } else {
        show(decisions, dryRun);
        say(`${dryRun ? 'would forget' : 'forgot'} ${plural(gone.length, 'restore point')}, kept ${decisions.length - gone.length}${gone.length > 0 ? '; their data stays in the packs until a garbage collection' : ''}`);
      }
      return 0;
    } finally {
      await repo.close();
    }
  },
};
