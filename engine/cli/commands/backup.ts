import { backupChunker } from '../../chunking/chunker.js';
import { configChunker } from '../../format/config-format.js';
import { plannedReadBytes, runBackup, type IncrementalPlan } from '../../backup/backup.js';
import type { Source } from '../../source/source.js';
import type { CommitHook } from '../../repo/pack-writer.js';
import { BlockvaultError } from '../../core/errors.js';
import { phase } from '../../core/phases.js';
import { checkName } from '../../core/names.js';
import { humanBytes, humanRate, humanSeconds, plural, ratio } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { openBackupSource } from '../../cbt/open-source.js';
import { planBackup } from '../../cbt/plan.js';
import { WorkerPool, workersFor } from '../../workers/pool.js';
import { intOption, onePositional, parse, repoPath } from '../args.js';
import { interruptSignal, note, printJson, say, testInterruptHook, type Command } from '../command.js';
import { progressLine } from '../progress.js';
import type { VmArgs } from './backup-vm.js';

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

/** What this backup is about to read, in words: the data regions of a sparse image, the changed chunks, or everything. */
function readScope(source: Source, plan: IncrementalPlan | undefined, chunkBytes: number): string {
  const size = source.sizeBytes;
  if (size === null) return `reading ${source.description} to its end`;
  if (plan?.regions) {
    const changed = plan.regions.reduce((a, r) => a + r.end - r.start, 0);
    return `re-chunking ${plural(plan.regions.length, 'changed region')} (${humanBytes(changed)} from their parent chunks' starts, and on until the cuts fall back in step) of a ${humanBytes(size)} disk`;
  }
  if (plan) {
    const chunks = plan.ranges.reduce((a, [first, end]) => a + end - first, 0);
    return `reading ${plural(chunks, 'changed chunk')} (up to ${humanBytes(Math.min(size, chunks * chunkBytes))}) of a ${humanBytes(size)} disk`;
  }
  if (!source.dataExtents) return `reading all ${humanBytes(size)} of the disk`;
  const data = plannedReadBytes(source, undefined, chunkBytes) ?? size;
  if (data === size) return `reading all ${humanBytes(size)} of the disk (it has no holes)`;
  return `reading the ${humanBytes(data)} of data in a ${humanBytes(size)} disk; the ${humanBytes(size - data)} of holes are skipped`;
}

function cbtOptions(values: Record<string, unknown>): { cbtCheckPercent: number; cbtFallback: 'refuse' | 'full' } {
  const cbtCheckPercent = intOption(values, 'cbt-check', 0);
  if (cbtCheckPercent > 100) throw new BlockvaultError('USAGE', `--cbt-check ${cbtCheckPercent}: a percentage from 0 to 100`);
  const cbtFallback = (values['cbt-fallback'] as string | undefined) ?? 'refuse';
  if (cbtFallback !== 'full' && cbtFallback !== 'refuse') throw new BlockvaultError('USAGE', `--cbt-fallback ${JSON.stringify(cbtFallback)}: expected full or refuse`);
  return { cbtCheckPercent, cbtFallback };
}

/** A running VM's backup (--qmp or --libvirt), its options checked; null when it is not one. */
async function runningVm(values: Record<string, unknown>, positionals: string[], diskArgs: string[]): Promise<((a: Omit<VmArgs, 'qmpPath' | 'domain'>) => Promise<number>) | null> {
  if (values.qmp === undefined && values.libvirt === undefined) {
    for (const only of ['disks', 'guest-agent', 'scratch', 'connect', 'quiesce']) {
      if (values[only] !== undefined) throw new BlockvaultError('USAGE', `--${only} goes with --qmp or --libvirt (a running VM's backup)`);
    }
    return null;
  }
  const how = values.qmp !== undefined ? '--qmp' : '--libvirt';
  if (values.qmp !== undefined && values.libvirt !== undefined) throw new BlockvaultError('USAGE', 'give --qmp or --libvirt, not both');
  if (diskArgs.length || positionals.length) throw new BlockvaultError('USAGE', `with ${how} blockvault finds the VM's disks itself: pick some with --disks vda,vdb instead of ${diskArgs.length ? '--disk' : JSON.stringify(positionals[0])}`);
  const { backupVm } = await import('./backup-vm.js');
  return (a) => backupVm({ ...a, qmpPath: values.qmp as string | undefined, domain: values.libvirt as string | undefined });
}

export const backupCommand: Command = {
  name: 'backup',
  help: `Usage: blockvault backup -r <repo> --vm <name> --disk <name> <source> [options]
       blockvault backup -r <repo> --vm <name> --disk <name>=<source> --disk <name>=<source> ... [options]
       blockvault backup -r <repo> --vm <name> --qmp <socket> [--disks vda,vdb] [options]
       blockvault backup -r <repo> --vm <name> --libvirt <domain> [--connect URI] [--quiesce] [options]

Reads a disk and stores a new restore point <vm>/<disk>@<id>. Chunks the
repository already holds (from any VM) are not stored again; holes in a sparse
image are not even read. Every restore point is a complete disk image.

<source> is one of:
  a raw image file or a block device (e.g. an LVM snapshot)
  -                          standard input
  nbd://host[:port]/export   an NBD export (TCP)
  nbd+unix:///export?socket=/run/x.sock   an NBD export (unix socket)
  a qcow2/vmdk/vhdx/vdi image: served read-only by a private qemu-nbd
                             (format from --format, else the file extension)

Changed-block tracking (forever-incremental: only changed chunks are read,
yet the new restore point is a complete disk):
  --changed FILE         changed extents since the parent, as JSON
                         [{"start": N, "length": N}, ...] (VMware's
                         QueryChangedDiskAreas shape), sorted and disjoint
  --bitmap NAME          a QEMU dirty bitmap exported by the NBD server
                         (qemu-nbd -B NAME), or in a qcow2 source
  --parent ID            the restore point the changes are relative to
                         (default: the newest of this vm/disk)
  --cbt-check PERCENT    re-read this share of the chunks tracking calls
                         unchanged; if any differs from the parent, refuse
                         the increment (exit 5)...
  --cbt-fallback full    ...or read the whole disk instead
Tracking is only trusted when it can be: with no parent, a changed disk size,
a parent that failed verify, or a bitmap the server will not offer, the
backup reads the whole disk and says why ("mode" and "reason" in --json).
The bitmap must have been started at the parent's point in time; rotate it
(add a new one, remove the old) only after the backup succeeded. See README.

A running QEMU (--qmp SOCKET, its -qmp unix:SOCKET,server=on,wait=off):
blockvault finds the writable disks, freezes all of them at one instant in
one QMP transaction (guest I/O is held for milliseconds, the VM keeps
running), reads them through point-in-time NBD exports, and commits one VM
restore point <vm>@<id> with the machine description (restore --to writes it,
boot starts it). It keeps a dirty bitmap per disk (blockvault-...), so the
next backup reads only what changed; a failed run merges it back. Needs
QEMU 7.1 or newer and repository format 6.
  --disks vda,vdb        back up only these disks (default: every writable one)
  --guest-agent SOCKET   the QEMU guest agent's chardev socket: freeze the
                         guest's filesystems for the instant (application-
                         consistent); if it does not answer in 10 s, thaw and
                         go on crash-consistent, and say so
  --scratch DIR          where the fleecing images go (default: $TMPDIR or
                         /tmp); it needs free space for the old data of blocks
                         the guest writes during the backup (checked up front)
A libvirt domain (--libvirt NAME): the same through libvirt's pull-mode
backup (virsh backup-begin; checkpoints blockvault-... instead of bitmaps),
the domain XML kept as the configuration (restore writes <vm>.xml).
  --connect URI          libvirt connection (default qemu:///system)
  --quiesce              freeze the guest's filesystems through libvirt's
                         guest agent for the instant (10 s timeout, then
                         crash-consistent, said so)

Options:
  -r, --repo PATH        repository (or BLOCKVAULT_REPO)
  --vm NAME              virtual machine name (letters, digits, . _ + -)
  --disk NAME            disk name within the VM, e.g. sda, vda, disk0
  --disk NAME=SOURCE     several disks of one VM (repeat it): backed up in
                         parallel and committed as one VM restore point
                         <vm>@<id>, all disks or none (restore/mount/verify it
                         whole); --bitmap then applies to each source
  --format FMT           image format of <source> for qemu-nbd (qcow2, vmdk, ...)
  --chunker KIND         in a repository made with --chunker aligned-cdc or
                         cdc, cut this backup with the other kind (same
                         bounds): cdc for an image with a header in front
  --allow-empty          commit a 0-byte disk; without it an empty source
                         (a producer that failed in a pipe) is refused (exit 1)
  --lock-wait SECONDS    backups run at once, each a session of its own; an
                         operation that must run alone (index rebuild) makes
                         them wait this long (default 600), then fail (exit 3)
  --json                 print the result as one JSON object

Exit codes: 0 ok, 1 bad usage or input, 2 data integrity problem, 3 repository
locked or unavailable, 4 I/O error on the source or the repository (disk full),
5 --cbt-check refused the increment, 6 the hypervisor refused or went away.

Examples:
  blockvault backup -r /srv/bv --vm web01 --disk sda /var/lib/libvirt/images/web01.raw
  blockvault backup -r /srv/bv --vm web01 --disk sda - < /dev/vg0/web01-snap
  blockvault backup -r /srv/bv --vm web01 --disk sda --changed changed.json /dev/vg0/web01-snap
  blockvault backup -r /srv/bv --vm web01 --disk sda --bitmap nightly 'nbd+unix:///?socket=/run/web01.sock'
  blockvault backup -r /srv/bv --vm web01 --disk sda --bitmap nightly web01.qcow2
  blockvault backup -r /srv/bv --vm web01 --disk sda=/var/lib/images/web01-a.raw --disk sdb=/var/lib/images/web01-b.qcow2
  blockvault backup -r /srv/bv --vm web01 --qmp /run/qemu/web01.qmp --guest-agent /run/qemu/web01.qga
  blockvault backup -r /srv/bv --vm web01 --libvirt web01 --quiesce`,
  async run(argv) {
    const { values, positionals } = parse('backup', argv, {
      vm: { type: 'string' }, disk: { type: 'string', multiple: true }, 'lock-wait': { type: 'string' }, format: { type: 'string' },
      changed: { type: 'string' }, bitmap: { type: 'string' }, parent: { type: 'string' },
      'cbt-check': { type: 'string' }, 'cbt-fallback': { type: 'string' }, 'allow-empty': { type: 'boolean' }, chunker: { type: 'string' },
      qmp: { type: 'string' }, disks: { type: 'string' }, 'guest-agent': { type: 'string' }, scratch: { type: 'string' },
      libvirt: { type: 'string' }, connect: { type: 'string' }, quiesce: { type: 'boolean' },
    });
    const root = repoPath(values);
    const vm = checkName('vm', values.vm as string);
    const diskArgs = (values.disk as string[] | undefined) ?? [];
    const lockWaitSeconds = intOption(values, 'lock-wait', 600);
    const { cbtCheckPercent, cbtFallback } = cbtOptions(values);
    if (values.changed && values.bitmap) throw new BlockvaultError('USAGE', 'give --changed or --bitmap, not both');
    const running = await runningVm(values, positionals, diskArgs);
    if (running) return running({ root, vm, values, lockWaitSeconds, cbtCheckPercent, cbtFallback });
    if (diskArgs.some((d) => d.includes('='))) {
      if (positionals.length > 0) throw new BlockvaultError('USAGE', `with --disk NAME=SOURCE the sources are in the --disk options; ${JSON.stringify(positionals[0])} is one too many`);
      const { backupGroup } = await import('./backup-group.js');
      return backupGroup({ root, vm, diskArgs, values, lockWaitSeconds, cbtCheckPercent, cbtFallback });
    }
    if (diskArgs.length > 1) throw new BlockvaultError('USAGE', `--disk is given ${diskArgs.length} times: back up several disks of a VM as --disk NAME=SOURCE --disk NAME=SOURCE ...`);
    const disk = checkName('disk', diskArgs[0]);
    const sourcePath = onePositional('backup', positionals, 'source (image file, block device or -)');
    const opened = await openBackupSource(sourcePath, { format: values.format as string | undefined, bitmap: values.bitmap as string | undefined });
    const source = opened.source;
    phase('source-open');
    const repo = await Repository.open(root, {
      writer: { what: `backup ${vm}/${disk}`, lockWaitSeconds, onWait: (who) => note(`blockvault: waiting for ${who} to finish (it runs alone)`) },
    }).catch(async (err) => { await opened.close(); throw err; });
    const pool = new WorkerPool(1); // starts while we plan; grown below to what the plan needs
    const bar = progressLine(`backup ${vm}/${disk}`);
    try {
      const chunker = backupChunker(configChunker(repo.config), values.chunker as string | undefined);
      const decision = await planBackup({ chunker,
        repo, vm, disk, source, parentRef: values.parent as string | undefined, changedFile: values.changed as string | undefined,
        bitmap: values.bitmap ? { name: values.bitmap as string, source: opened.bitmapSource, problem: opened.bitmapProblem } : undefined,
        cbtCheckPercent, cbtFallback,
      });
      phase('planned');
      if (!values.json) note(`blockvault: ${decision.plan ? 'incremental' : 'full'} backup: ${decision.reason}; ${readScope(source, decision.plan, repo.config.chunkBytes)}`);
      const interruptHook = testInterruptHook();
      pool.grow(workersFor(plannedReadBytes(source, decision.plan, repo.config.chunkBytes)));
      const result = await runBackup(repo, {
        vm, disk, source, pool, chunker, hook: killHookFromEnv(), plan: decision.plan, reason: decision.reason,
        allowEmpty: values['allow-empty'] === true, signal: interruptSignal(),
        sourceInfo: { ...opened.info, ...decision.basis },
        onProgress: (p) => {
          interruptHook(p.bytesDone);
          bar.update(p.bytesDone, p.bytesTotal, `new ${humanBytes(p.bytesNew)}, dedup ${p.chunksDone ? Math.round((100 * p.chunksKnown) / Math.max(1, p.chunksKnown + p.chunksNew)) : 0}%`);
        },
      });
      bar.done();
      phase('committed');
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
      await opened.close();
      await repo.close();
    }
  },
};
