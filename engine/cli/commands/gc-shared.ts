import { BlockvaultError } from '../../core/errors.js';
import { humanBytes, humanSeconds, plural } from '../../core/human.js';
import { runGc, type GcOptions, type GcPhase, type GcResult } from '../../gc/gc.js';
import type { RepackPolicy } from '../../gc/plan.js';
import type { Repository } from '../../repo/repository.js';
import { intOption, type Options } from '../args.js';
import { note, say } from '../command.js';
import { progressLine, type ProgressLine } from '../progress.js';

export const gcOptions: Options = {
  'dry-run': { type: 'boolean' }, 'repack-below': { type: 'string' }, 'max-unused': { type: 'string' }, 'session-wait': { type: 'string' }, 'lock-wait': { type: 'string' },
};

export const gcOptionsHelp = `  --max-unused P%         copy the live data out of the emptiest packs, then
                          delete them, until at most P% of what stays is data
                          no point needs (default 10%; 100% copies nothing)
  --repack-below P%       instead: repack every pack less than P% live (0%
                          deletes only packs nothing needs)
  --session-wait SECONDS  how long to wait for backups that were running when gc
                          chose what to delete (default 3600); when they run
                          longer, nothing is deleted and the next gc finishes
  --lock-wait SECONDS     wait this long while a forget, another gc or an
                          exclusive operation runs (default 60)`;

function percent(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name] as string | undefined;
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(raw.trim());
  if (!m || Number(m[1]) > 100) throw new BlockvaultError('USAGE', `--${name} ${JSON.stringify(raw)}: expected a percentage from 0% to 100%, such as 50%`);
  return Number(m[1]) / 100;
}

/** --max-unused P% (default 10%) or --repack-below P%, as a repack policy. */
export function repackPolicy(values: Record<string, unknown>): RepackPolicy {
  const below = percent(values, 'repack-below');
  const maxUnused = percent(values, 'max-unused');
  if (below !== undefined && maxUnused !== undefined) throw new BlockvaultError('USAGE', 'give --max-unused or --repack-below, not both');
  return below !== undefined ? { below } : { maxUnused: maxUnused ?? 0.1 };
}

const phaseUnits: Record<GcPhase, string> = { mark: 'restore points marked', repack: 'packs repacked', wait: 'older backups ended', rescue: 'rescue walks', sweep: 'packs deleted' };

export type GcSettings = Pick<GcOptions, 'dryRun' | 'repack' | 'sessionWaitSeconds'>;

/** The gc options, checked before the repository is opened. */
export function gcSettings(values: Record<string, unknown>): GcSettings {
  return { dryRun: values['dry-run'] === true, repack: repackPolicy(values), sessionWaitSeconds: intOption(values, 'session-wait', 3600) };
}

export async function gcWithProgress(repo: Repository, settings: GcSettings, withoutPoints?: ReadonlySet<string>): Promise<GcResult> {
  let bar: ProgressLine | null = null;
  let phase: GcPhase | null = null;
  const options: GcOptions = {
    ...settings,
    withoutPoints,
    say: note,
    onProgress(p, done, total) {
      if (p !== phase) {
        bar?.done();
        if (p === 'wait' && done === 0) note(`gc: waiting for ${plural(total, 'backup')} that started before it chose what to delete`);
        phase = p;
        bar = progressLine(`gc ${p}`, undefined, phaseUnits[p]);
      }
      bar?.update(done, total);
    },
  };
  try {
    return await runGc(repo, options);
  } finally {
    (bar as ProgressLine | null)?.done();
  }
}

export function gcJson(r: GcResult) {
  const { plan, ...rest } = r;
  return {
    ...rest, packsDropped: plan.drop.length, packsRepacked: plan.repack.length, packsKept: plan.packsKept,
    bytesDropped: plan.bytesDropped, bytesRepacked: plan.bytesRepacked, bytesToCopy: plan.bytesToCopy, bytesDeadKept: plan.bytesDeadKept,
    bytesAfter: r.bytesBefore - r.bytesDeleted + r.bytesWritten,
  };
}

export function showGc(r: GcResult): void {
  const p = r.plan;
  if (r.finishedEarlier > 0) say(`finished ${plural(r.finishedEarlier, 'gc')} an earlier run left pending`);
  if (r.missingChunks > 0) say(`warning: the restore points reference ${plural(r.missingChunks, 'chunk')} that no pack holds: run blockvault check`);
  for (const d of r.damagedRecords.slice(0, 10)) say(`warning: damaged record in pack ${d.packId} at offset ${d.offset}: not copied, pack kept; run blockvault check`);
  if (r.dryRun) {
    say(`would delete ${plural(p.drop.length, 'pack')} nothing needs (${humanBytes(p.bytesDropped)}) and repack ${plural(p.repack.length, 'pack')} (${humanBytes(p.bytesRepacked)}, copying ${humanBytes(p.bytesToCopy)} still needed); ${plural(p.packsKept, 'pack')} stay, holding ${humanBytes(p.bytesDeadKept)} no point needs`);
    return;
  }
  const rescued = r.packsRescued > 0 ? `; kept ${plural(r.packsRescued, 'pack')} that backups running meanwhile now use` : '';
  const waited = r.waitedForSessions > 0 ? `; waited for ${plural(r.waitedForSessions, 'backup')}` : '';
  say(`deleted ${plural(r.packsDeleted, 'pack')} (${humanBytes(r.bytesDeleted)}), wrote ${plural(r.packsWritten, 'pack')} (${humanBytes(r.bytesWritten)}) of live data${rescued}${waited}: ${humanBytes(r.bytesBefore)} -> ${humanBytes(r.bytesBefore - r.bytesDeleted + r.bytesWritten)} for ${plural(r.points, 'restore point')}, in ${humanSeconds(r.seconds)}`);
}
