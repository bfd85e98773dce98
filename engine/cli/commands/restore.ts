import { humanBytes, humanRate, humanSeconds, plural } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { runRestore } from '../../restore/restore.js';
import { openTarget } from '../../restore/target.js';
import { runGroupRestore } from '../../restore/group-restore.js';
import { resolveGroup } from '../../repo/group-store.js';
import { WorkerPool } from '../../workers/pool.js';
import { parse, repoPath } from '../args.js';
import { interruptSignal, note, printJson, testInterruptHook, type Command } from '../command.js';
import { progressLine } from '../progress.js';
import { BlockvaultError } from '../../core/errors.js';

/** `restore <vm>@<id> <dir>`: every disk of a VM restore point into <dir>/<disk>.raw. */
async function restoreGroup(spec: string, dir: string, values: Record<string, unknown>): Promise<number> {
  const repo = await Repository.open(repoPath(values));
  const pool = new WorkerPool();
  try {
    const group = resolveGroup(repo.index, spec);
    const format = (values.format as string | undefined) ?? 'raw';
    if (format !== 'raw' && format !== 'qcow2') throw new BlockvaultError('USAGE', `--format ${JSON.stringify(format)}: expected raw or qcow2`);
    const result = await runGroupRestore(repo, group, dir, pool, { force: Boolean(values.force), durable: !values['no-sync'], signal: interruptSignal(), format });
    if (values.json) printJson(result);
    else {
      for (const d of result.disks) note(`restored ${group.vm}/${d.disk}@${d.id.slice(0, 8)} to ${d.target}: ${humanBytes(d.bytesTotal)} (${humanBytes(d.bytesWritten)} data) in ${humanSeconds(d.seconds)}`);
      if (result.config.length) note(`wrote the VM's configuration (${result.consistency}-consistent point) to ${result.config.join(' and ')}`);
    }
    return 0;
  } finally {
    await pool.close();
    await repo.close();
  }
}

export const restoreCommand: Command = {
  name: 'restore',
  help: `Usage: blockvault restore -r <repo> <vm>/<disk>@<id|latest> <target> [--force]
       blockvault restore -r <repo> <vm>@<id|latest> --to <directory> [--format raw|qcow2] [--force]

Writes the disk of a restore point to <target>:
  a file path   a new sparse raw image (zero chunks become holes); written
                under a temporary name and renamed when complete
  a block device  written in place (zero chunks written as zeros)
  -             standard output, every byte in order
A VM restore point of several disks (<vm>@<id>, from backup --disk NAME=SOURCE
...) is restored into a directory, one <disk>.raw per disk; if any disk
fails, the disks already restored are removed again. A point taken from a
running VM (backup --qmp) also writes its saved configuration, <vm>.vm.json
(machine type, CPUs, memory, disks in order), which boot <vm>@<id> uses.
Every chunk is checked against its SHA-256 id as it is read: a damaged or
missing chunk stops the restore (exit 2) naming the chunk, pack and offset,
and no partial file is left behind.

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --to DIR          the directory for a VM restore point (or give it after the point)
  --format FMT      a VM restore point's disks as raw (sparse, default) or
                    qcow2 (converted with qemu-img as each disk completes)
  --force           replace an existing target file
  --no-sync         skip the fsync before the final rename (faster; after a
                    crash the file may be incomplete)
  --json            print a JSON summary (on stderr when the target is '-')

Examples:
  blockvault restore -r /srv/bv web01/sda@latest /tmp/web01.raw
  blockvault restore -r /srv/bv web01@latest --to /var/lib/images/web01/ --format qcow2`,
  async run(argv) {
    const { values, positionals } = parse('restore', argv, { force: { type: 'boolean' }, 'no-sync': { type: 'boolean' }, to: { type: 'string' }, format: { type: 'string' } });
    if (values.to !== undefined) {
      if (positionals.length !== 1 || positionals[0].includes('/') || !positionals[0].includes('@')) throw new BlockvaultError('USAGE', '--to DIR takes one VM restore point, <vm>@<id|latest> (a single disk is restored to a target path given after it)');
      return restoreGroup(positionals[0], values.to as string, values);
    }
    if (values.format !== undefined && !(positionals.length === 2 && !positionals[0].includes('/'))) throw new BlockvaultError('USAGE', '--format is for VM restore points (<vm>@<id> --to DIR); a single disk is restored raw');
    if (positionals.length !== 2) throw new BlockvaultError('USAGE', `expected <vm>/<disk>@<id> and <target>, got ${plural(positionals.length, 'argument')} (see blockvault restore --help)`);
    const [spec, targetPath] = positionals;
    if (!spec.includes('/') && spec.includes('@')) return restoreGroup(spec, targetPath, values);
    const repo = await Repository.open(repoPath(values));
    const pool = new WorkerPool();
    const bar = progressLine(`restore ${spec}`);
    try {
      const entry = repo.points.resolve(spec);
      const target = await openTarget(targetPath, entry.sizeBytes, Boolean(values.force), !values['no-sync']);
      const interruptHook = testInterruptHook();
      const result = await runRestore(repo, entry, target, pool, (p) => { bar.update(p.bytesDone, p.bytesTotal); interruptHook(p.bytesDone); }, interruptSignal());
      bar.done();
      const summary = { ...result, vm: entry.vm, disk: entry.disk, target: targetPath };
      if (values.json && targetPath !== '-') printJson(summary);
      else if (values.json) note(JSON.stringify(summary));
      else note(`restored ${entry.vm}/${entry.disk}@${entry.id.slice(0, 8)} to ${targetPath}: ${humanBytes(result.bytesTotal)} (${humanBytes(result.bytesWritten)} data) in ${humanSeconds(result.seconds)}, ${humanRate(result.bytesTotal, result.seconds)}`);
      return 0;
    } finally {
      bar.done();
      await pool.close();
      await repo.close();
    }
  },
};
