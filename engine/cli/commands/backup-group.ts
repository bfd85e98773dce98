// `backup --vm web01 --disk sda=/path/a.raw --disk sdb=/path/b.qcow2`: the
// disks of one VM, in parallel in one session, committed as one VM restore
// point (engine/backup/group-backup.ts).
import { runGroupBackup } from '../../backup/group-backup.js';
import { backupChunker } from '../../chunking/chunker.js';
import { configChunker } from '../../format/config-format.js';
import { openBackupSource, type OpenedSource } from '../../cbt/open-source.js';
import { planBackup } from '../../cbt/plan.js';
import { BlockvaultError } from '../../core/errors.js';
import { humanBytes, humanSeconds, plural } from '../../core/human.js';
import { checkName } from '../../core/names.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool, workersFor } from '../../workers/pool.js';
import { plannedReadBytes } from '../../backup/backup.js';
import { interruptSignal, note, printJson, say } from '../command.js';

export interface GroupArgs {
  root: string;
  vm: string;
  diskArgs: string[];
  values: Record<string, unknown>;
  lockWaitSeconds: number;
  cbtCheckPercent: number;
  cbtFallback: 'refuse' | 'full';
}

/** NAME=SOURCE pairs, names checked and distinct. */
function diskSpecs(diskArgs: string[]): Array<{ disk: string; path: string }> {
  const specs = diskArgs.map((arg) => {
    const at = arg.indexOf('=');
    if (at <= 0 || at === arg.length - 1) throw new BlockvaultError('USAGE', `--disk ${JSON.stringify(arg)}: with several disks, give each as --disk NAME=SOURCE`);
    return { disk: checkName('disk', arg.slice(0, at)), path: arg.slice(at + 1) };
  });
  const names = specs.map((s) => s.disk);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated) throw new BlockvaultError('USAGE', `--disk ${repeated} is given twice`);
  return specs;
}

export async function backupGroup(a: GroupArgs): Promise<number> {
  const specs = diskSpecs(a.diskArgs);
  if (a.values.changed) throw new BlockvaultError('USAGE', '--changed names one disk\'s extents: with several disks use --bitmap, or back them up one by one');
  if (a.values.parent) throw new BlockvaultError('USAGE', '--parent names one disk\'s restore point: with several disks each increment builds on its disk\'s newest point');
  if (specs.some((s) => s.path === '-')) throw new BlockvaultError('USAGE', 'stdin (-) can be the source of one disk only: back it up on its own');
  const bitmap = a.values.bitmap as string | undefined;
  const opened: OpenedSource[] = [];
  const pool = new WorkerPool(1); // starts while the sources open; grown to what the plans need
  let repo: Repository | null = null;
  try {
    for (const s of specs) {
      opened.push(await openBackupSource(s.path, { format: a.values.format as string | undefined, bitmap }).catch((err: unknown) => {
        throw err instanceof BlockvaultError ? new BlockvaultError(err.code, `disk ${s.disk}: ${err.message}`, { cause: err }) : err;
      }));
    }
    repo = await Repository.open(a.root, { writer: { what: `backup ${a.vm} (${specs.map((s) => s.disk).join(', ')})`, lockWaitSeconds: a.lockWaitSeconds, onWait: (who) => note(`blockvault: waiting for ${who} to finish (it runs alone)`) } });
    const signal = interruptSignal();
    const chunker = backupChunker(configChunker(repo.config), a.values.chunker as string | undefined); // one for every disk of the VM
    const disks = [];
    for (const [k, s] of specs.entries()) {
      const o = opened[k];
      const decision = await planBackup({
        repo, vm: a.vm, disk: s.disk, source: o.source, chunker, bitmap: bitmap ? { name: bitmap, source: o.bitmapSource, problem: o.bitmapProblem } : undefined,
        cbtCheckPercent: a.cbtCheckPercent, cbtFallback: a.cbtFallback,
      });
      if (!a.values.json) note(`blockvault: ${a.vm}/${s.disk}: ${decision.plan ? 'incremental' : 'full'} backup: ${decision.reason}`);
      disks.push({ vm: a.vm, disk: s.disk, source: o.source, chunker, plan: decision.plan, reason: decision.reason, sourceInfo: { ...o.info, ...decision.basis }, allowEmpty: a.values['allow-empty'] === true, signal });
    }
    const planned = disks.map((d) => plannedReadBytes(d.source, d.plan, repo!.config.chunkBytes));
    pool.grow(workersFor(planned.includes(null) ? null : (planned as number[]).reduce((x, y) => x + y, 0)));
    const result = await runGroupBackup(repo, a.vm, disks.map((d) => ({ ...d, pool })));
    if (a.values.json) printJson(result);
    else {
      say(`VM restore point ${a.vm}@${result.group.slice(0, 8)} (${result.group}): ${plural(result.disks.length, 'disk')} in ${humanSeconds(result.seconds)}`);
      for (const d of result.disks) say(`  ${d.disk}: ${a.vm}/${d.disk}@${d.id.slice(0, 8)}, disk ${humanBytes(d.bytesTotal)}, read ${humanBytes(d.bytesRead)}, new ${humanBytes(d.bytesNew)}, stored ${humanBytes(d.bytesStored)}`);
    }
    return 0;
  } finally {
    await pool.close();
    for (const o of opened) await o.close();
    await repo?.close();
  }
}
