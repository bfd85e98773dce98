import { humanBytes, humanSeconds, plural } from '../../core/human.js';
import { runCheck } from '../../check/check.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool } from '../../workers/pool.js';
import { parse, repoPath } from '../args.js';
import { note, printJson, say, type Command } from '../command.js';
import { BlockvaultError } from '../../core/errors.js';
import { progressLine } from '../progress.js';

/** A writer's open when the repository takes one (check quarantines what it finds); else a reader's. */
async function openForCheck(root: string): Promise<Repository & { writable: boolean }> {
  try {
    return Object.assign(await Repository.open(root, { writer: { what: 'check', lockWaitSeconds: 60 } }), { writable: true });
  } catch (err) {
    if (!(err instanceof BlockvaultError) || !['REPO_UNAVAILABLE', 'FORMAT_VERSION'].includes(err.code)) throw err;
    note(`check: ${err.message}; damage will be reported, not quarantined`);
    return Object.assign(await Repository.open(root), { writable: false });
  }
}

export const checkCommand: Command = {
  name: 'check',
  help: `Usage: blockvault check -r <repo> [--read-data | --read-data-subset N/M | --read-data-subset P%] [--json]

Checks the repository's structure without reading chunk data: every pack
the index names is there, at the size it was sealed at, with a trailer that
agrees with the index; every restore point opens, and every page of its
chunk map reads back and checks out; every chunk a point needs is in such a
pack; every VM restore point has all its disks. Problems are named with the
object and the restore points they break.

--read-data also re-reads every chunk the points need (checksums and
SHA-256, like verify). --read-data-subset N/M reads the chunks of the N-th
of M shares of the packs, the same share every time: running 1/7 .. 7/7 on
seven nights reads everything once. P% reads about P percent of the packs.

Damage found is quarantined (recorded under quarantine/, with the pack, the
offset and the restore points it breaks): a damaged record, or every record
of a missing or torn pack, stops being a dedup target, so the next backup
that meets the same data stores a fresh copy, and that heals every restore
point that needed it; check then reports them healthy again. On a
repository it cannot write to, check reports and quarantines nothing.

Options:
  -r, --repo PATH            repository (or BLOCKVAULT_REPO)
  --read-data                read every referenced chunk too
  --read-data-subset SHARE   read one share of the packs' chunks (N/M or P%)
  --json                     a JSON report: ok, counts, problems

Exit status: 0 no problem found, 2 problems found.`,
  async run(argv) {
    const { values } = parse('check', argv, { 'read-data': { type: 'boolean' }, 'read-data-subset': { type: 'string' } });
    const readData = values['read-data'] ? 'all' : (values['read-data-subset'] as string | undefined);
    const repo = await openForCheck(repoPath(values));
    const pool = new WorkerPool();
    const bar = progressLine('check', undefined, 'restore points');
    try {
      const result = await runCheck(repo, pool, { readData, quarantine: repo.writable }, (done, total) => bar.update(done, total));
      bar.done();
      if (values.json) {
        printJson(result);
        return result.ok ? 0 : 2;
      }
      for (const p of result.problems.slice(0, 50)) {
        say(`${p.code} ${p.object}: ${p.reason}${p.points.length ? `; breaks ${p.points.slice(0, 5).join(', ')}${p.points.length > 5 ? ` and ${p.points.length - 5} more` : ''}` : ''}`);
      }
      if (result.problems.length > 50) say(`... and ${result.problems.length - 50} more problems`);
      const read = result.readData ? `; read ${plural(result.readData.chunksChecked, 'chunk')}, ${humanBytes(result.readData.bytesChecked)} (${result.readData.share})` : '';
      say(`${result.ok ? 'no problems found' : `${plural(result.problems.length, 'problem')} found`}: ${plural(result.points, 'restore point')}, ${plural(result.packs, 'pack')}, ${plural(result.chunksReferenced, 'chunk')} referenced${read}, in ${humanSeconds(result.seconds)}`);
      const { records, packs } = result.quarantined;
      if (records + packs > 0) {
        const what = [records > 0 ? plural(records, 'damaged record') : '', packs > 0 ? plural(packs, 'damaged or missing pack') : ''].filter(Boolean).join(' and ');
        say(`quarantined ${what}: the next backup of the same data heals the restore points named above`);
      }
      if (result.healed > 0) say(`${plural(result.healed, 'quarantined record')} healed since by a fresh copy`);
      return result.ok ? 0 : 2;
    } finally {
      bar.done();
      await pool.close();
      await repo.close();
    }
  },
};
