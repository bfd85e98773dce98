import { runBackup } from '../../backup/backup.js';
import type { CommitHook } from '../../repo/pack-writer.js';
import { checkName } from '../../core/names.js';
import { humanBytes, humanRate, humanSeconds, ratio } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { openSource } from '../../source/source.js';
import { WorkerPool } from '../../workers/pool.js';
import { intOption, onePositional, parse, repoPath } from '../args.js';
import { note, printJson, say, type Command } from '../command.js';
import { progressLine } from '../progress.js';

/**
 * Fault-test hook: BLOCKVAULT_TEST_KILL_AT=<event>:<n> makes the process
 * SIGKILL itself at the n-th commit event (see CommitEvent), so tests can
 * kill a backup at exact points of the commit sequence.
 */
function killHookFromEnv(): CommitHook | undefined {
  const spec = process.env.BLOCKVAULT_TEST_KILL_AT;
  if (!spec) return undefined;
  const [event, nth] = spec.split(':');
  let seen = 0;
  return (e) => {
    if (e === event && ++seen === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
  };
}

export const backupCommand: Command = {
  name: 'backup',
  summary: 'back up a VM disk (raw image, block device or stdin)',
  help: `Usage: blockvault backup -r <repo> --vm <name> --disk <name> <source>

Reads a disk and stores a new restore point <vm>/<disk>@<id>. Chunks the
repository already holds (from any VM) are not stored again; holes in a sparse
image are not even read. Every restore point is a complete disk image.

<source> is a raw image file, a block device (e.g. an LVM snapshot), or '-'
for standard input.

Options:
  -r, --repo PATH        repository (or BLOCKVAULT_REPO)
  --vm NAME              virtual machine name (letters, digits, . _ + -)
  --disk NAME            disk name within the VM, e.g. sda, vda, disk0
  --lock-wait SECONDS    wait this long for another backup into the same
                         repository to finish (default 600), then fail (exit 3)
  --json                 print the result as one JSON object

Exit codes: 0 ok, 1 bad usage or input, 2 data integrity problem, 3 repository
locked or unavailable, 4 I/O error on the source or the repository (disk full).

Examples:
  blockvault backup -r /srv/bv --vm web01 --disk sda /var/lib/libvirt/images/web01.raw
  blockvault backup -r /srv/bv --vm web01 --disk sda - < /dev/vg0/web01-snap`,
  async run(argv) {
    const { values, positionals } = parse('backup', argv, { vm: { type: 'string' }, disk: { type: 'string' }, 'lock-wait': { type: 'string' } });
    const root = repoPath(values);
    const vm = checkName('vm', values.vm as string);
    const disk = checkName('disk', values.disk as string);
    const sourcePath = onePositional('backup', positionals, 'source (image file, block device or -)');
    const lockWaitSeconds = intOption(values, 'lock-wait', 600);
    const source = await openSource(sourcePath);
    const repo = await Repository.open(root, {
      writer: { what: `backup ${vm}/${disk}`, lockWaitSeconds, onWait: (who) => note(`blockvault: waiting for the repository lock held by ${who}`) },
    }).catch(async (err) => { await source.close(); throw err; });
    const pool = new WorkerPool();
    const bar = progressLine(`backup ${vm}/${disk}`);
    try {
      const result = await runBackup(repo, {
        vm, disk, source, pool, hook: killHookFromEnv(),
        onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal, `new ${humanBytes(p.bytesNew)}, dedup ${p.chunksDone ? Math.round((100 * p.chunksKnown) / Math.max(1, p.chunksKnown + p.chunksNew)) : 0}%`),
      });
      bar.done();
      if (values.json) {
        printJson(result);
      } else {
        say(`restore point ${vm}/${disk}@${result.id.slice(0, 8)} (${result.id})`);
        say(`  disk ${humanBytes(result.bytesTotal)}, read ${humanBytes(result.bytesRead)} in ${humanSeconds(result.seconds)} (${humanRate(result.bytesTotal, result.seconds)} of disk)`);
        say(`  chunks ${result.chunksTotal}: ${result.chunksNew} new, ${result.chunksKnown} already stored, ${result.chunksZero} zero`);
        say(`  new data ${humanBytes(result.bytesNew)}, stored ${humanBytes(result.bytesStored)} (compression ${ratio(result.bytesNew, result.bytesStored)})`);
      }
      return 0;
    } finally {
      bar.done();
      await pool.close();
      await source.close();
      await repo.close();
    }
  },
};
