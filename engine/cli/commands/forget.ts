import { BlockvaultError } from '../../core/errors.js';
import { checkName } from '../../core/names.js';
import { plural } from '../../core/human.js';
import { periods, type KeepRules } from '../../retention/policy.js';
import { forgetOrphans, forgetUnits, planPolicy, refuseProtected, resolveUnits, type UnitDecision } from '../../retention/forget.js';
import { Repository } from '../../repo/repository.js';
import { intOption, parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

const ruleNames = ['last', ...periods] as const;

export const keepOptions = Object.fromEntries(ruleNames.map((r) => [`keep-${r}`, { type: 'string' as const }]));

export function rulesFrom(values: Record<string, unknown>): KeepRules {
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

export interface ForgetRequest { rules: KeepRules; names: string[]; vm?: string; tz?: string }

/** The forget arguments, checked before the repository is opened: rules or names, never both, never neither. */
export function forgetRequest(values: Record<string, unknown>, positionals: string[]): ForgetRequest {
  const rules = rulesFrom(values);
  const byName = positionals.length > 0;
  if (byName && Object.keys(rules).length > 0) throw new BlockvaultError('USAGE', 'give either --keep-* rules or restore points to forget, not both');
  if (!byName && Object.keys(rules).length === 0) {
    throw new BlockvaultError('USAGE', 'nothing to forget: give --keep-* rules (see --help), or name restore points; forget never guesses');
  }
  return { rules, names: positionals, vm: values.vm === undefined ? undefined : checkName('vm', values.vm as string), tz: values.tz as string | undefined };
}

export async function decideAndForget(repo: Repository, request: ForgetRequest, dryRun: boolean): Promise<UnitDecision[]> {
  const byName = request.names.length > 0;
  const decisions: UnitDecision[] = byName
    ? resolveUnits(repo, request.names).map((unit) => ({ unit, keep: false, reasons: [] }))
    : await planPolicy(repo, request.rules, { vm: request.vm, tz: request.tz });
  const gone = decisions.filter((d) => !d.keep);
  if (byName) await refuseProtected(repo, gone.map((d) => d.unit));
  if (!dryRun) {
    await forgetUnits(repo, gone.map((d) => d.unit));
    await forgetOrphans(repo);
  }
  return decisions;
}

export function forgetJson(decisions: UnitDecision[], dryRun: boolean) {
  const gone = decisions.filter((d) => !d.keep).length;
  return { dryRun, forgotten: gone, kept: decisions.length - gone, decisions: decisions.map((d) => ({ name: d.unit.name, kind: d.unit.kind, time: d.unit.time, keep: d.keep, reasons: d.reasons })) };
}

export function showForget(decisions: UnitDecision[], dryRun: boolean, gcFollows = false): void {
  show(decisions, dryRun);
  const gone = decisions.filter((d) => !d.keep).length;
  say(`${dryRun ? 'would forget' : 'forgot'} ${plural(gone, 'restore point')}, kept ${decisions.length - gone}${gone > 0 && !gcFollows ? '; their data stays in the packs until blockvault gc' : ''}`);
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
shared with every point that uses it, until blockvault gc reclaims what no
point needs (blockvault prune does both). It runs beside backups, not beside
a gc, and cancels a gc that stopped before deleting (the next gc redoes it).

Options:
  -r, --repo PATH      repository (or BLOCKVAULT_REPO)
  --keep-last N ...    the rules above (at least one of them above 0)
  --tz ZONE            time zone of the periods, e.g. Europe/Berlin or UTC
  --vm NAME            apply the policy to this VM only
  --dry-run            say what would be forgotten and why each point stays; change nothing
  --lock-wait SECONDS  wait this long while a gc or an exclusive operation runs (default 60)
  --json               every decision: name, time, keep, reasons`,
  async run(argv) {
    const { values, positionals } = parse('forget', argv, { ...keepOptions, tz: { type: 'string' }, vm: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'lock-wait': { type: 'string' } });
    const request = forgetRequest(values, positionals);
    const dryRun = values['dry-run'] === true;
    const repo = await Repository.open(repoPath(values), dryRun ? {} : { writer: { what: 'forget', kind: 'forget', lockWaitSeconds: intOption(values, 'lock-wait', 60) } });
    try {
      const decisions = await decideAndForget(repo, request, dryRun);
      if (values.json) printJson(forgetJson(decisions, dryRun));
      else showForget(decisions, dryRun);
      return 0;
    } finally {
      await repo.close();
    }
  },
};
