import { humanBytes, humanRate, humanSeconds, plural } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { resolveGroup } from '../../repo/group-store.js';
import { BlockvaultError } from '../../core/errors.js';
import { runVerify } from '../../verify/verify.js';
import { WorkerPool } from '../../workers/pool.js';
import { parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';
import { progressLine } from '../progress.js';

function groupPoints(repo: Repository, spec: string) {
  const group = resolveGroup(repo.index, spec);
  return group.disks.map((d) => {
    const entry = repo.index.point(d.point);
    if (!entry) throw new BlockvaultError('CHUNK_MISSING', `VM restore point ${group.vm}@${group.id}: its disk ${d.disk} (restore point ${d.point}) is missing`);
    return entry;
  });
}

export const verifyCommand: Command = {
  name: 'verify',
  help: `Usage: blockvault verify -r <repo> [<vm>/<disk>@<id> | <vm>@<id> ...] [--json]

Reads every chunk the given restore points need (all restore points when none
is given), checks each stored record's XXH64, decompresses it and checks its
SHA-256 against the chunk id. Shared chunks are read once. Reports exactly
which restore points a damaged or missing chunk affects. Exit 0 when all is
well, 2 when anything is damaged or missing.

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --json            a JSON report: ok, per restore point ok/problems`,
  async run(argv) {
    const { values, positionals } = parse('verify', argv, {});
    const repo = await Repository.open(repoPath(values));
    const pool = new WorkerPool();
    const bar = progressLine('verify');
    try {
      // <vm>@<id> is a VM restore point: every one of its disks.
      const entries = positionals.length > 0 ? positionals.flatMap((s) => (!s.includes('/') && s.includes('@') ? groupPoints(repo, s) : [repo.points.resolve(s)])) : repo.points.list();
      const result = await runVerify(repo, entries, pool, (done, total) => bar.update(done, total));
      bar.done();
      if (values.json) {
        printJson(result);
      } else {
        for (const p of result.points) {
          say(`${p.ok ? 'ok ' : 'BAD'} ${p.vm}/${p.disk}@${p.id.slice(0, 8)}`);
          for (const problem of p.problems.slice(0, 20)) {
            const where = 'pack' in problem && problem.pack ? ` pack ${problem.pack} offset ${problem.offset}` : '';
            say(`      ${problem.code}${'id' in problem ? ` chunk ${problem.id}` : ''}${where}: ${problem.reason}`);
          }
          if (p.problems.length > 20) say(`      ... and ${p.problems.length - 20} more`);
        }
        say(`${result.ok ? 'verified' : 'FAILED'}: ${plural(result.points.length, 'restore point')}, ${plural(result.chunksChecked, 'unique chunk')}, ${humanBytes(result.bytesChecked)} in ${humanSeconds(result.seconds)} (${humanRate(result.bytesChecked, result.seconds)})`);
      }
      return result.ok ? 0 : 2;
    } finally {
      bar.done();
      await pool.close();
      await repo.close();
    }
  },
};
