import { checkName } from '../../core/names.js';
import { humanBytes } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { protectedIds } from '../../retention/forget.js';
import { parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

export const listCommand: Command = {
  name: 'list',
  help: `Usage: blockvault list -r <repo> [--vm <name>] [--disk <name>] [--json]

Shows every restore point as <vm>/<disk>@<short id>. Any unique prefix of an
id names a restore point, and @latest names the newest of a disk. Disks
backed up together (backup --disk NAME=SOURCE ...) are also listed as one
VM restore point, <vm>@<short id>, which restore, mount and verify take whole.

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --vm NAME         only this VM
  --disk NAME       only this disk
  --json            an array of restore points with full ids and statistics`,
  async run(argv) {
    const { values } = parse('list', argv, { vm: { type: 'string' }, disk: { type: 'string' } });
    const vm = values.vm === undefined ? undefined : checkName('vm', values.vm as string);
    const disk = values.disk === undefined ? undefined : checkName('disk', values.disk as string);
    const repo = await Repository.open(repoPath(values));
    try {
      const points = repo.points.list(vm, disk);
      const guarded = await protectedIds(repo);
      if (values.json) {
        printJson(points.map((p) => ({ id: p.id, vm: p.vm, disk: p.disk, time: p.time, sizeBytes: p.sizeBytes, parent: p.parent, mapKind: p.kind, group: p.group, protected: guarded.has(p.id) || (p.group !== null && guarded.has(p.group)), ...p.stats })));
        return 0;
      }
      if (points.length === 0) {
        say('no restore points');
        return 0;
      }
      say(`${'RESTORE POINT'.padEnd(40)} ${'TIME (UTC)'.padEnd(20)} ${'SIZE'.padStart(10)} ${'NEW'.padStart(10)}`);
      for (const p of points) {
        say(`${`${p.vm}/${p.disk}@${p.id.slice(0, 8)}`.padEnd(40)} ${p.time.slice(0, 19).replace('T', ' ').padEnd(20)} ${humanBytes(p.sizeBytes).padStart(10)} ${humanBytes(p.stats.bytesNew ?? 0).padStart(10)}${p.group ? `  (in ${p.vm}@${p.group.slice(0, 8)})` : ''}${guarded.has(p.id) ? '  protected' : ''}`);
      }
      const groups = repo.index.allGroups().filter((g) => (!vm || g.vm === vm) && (!disk || g.disks.some((d) => d.disk === disk))).sort((a, b) => b.time.localeCompare(a.time));
      if (groups.length > 0) {
        say('');
        say(`${'VM RESTORE POINT'.padEnd(40)} ${'TIME (UTC)'.padEnd(20)} DISKS`);
        for (const g of groups) say(`${`${g.vm}@${g.id.slice(0, 8)}`.padEnd(40)} ${g.time.slice(0, 19).replace('T', ' ').padEnd(20)} ${g.disks.map((d) => d.disk).join(', ')}${guarded.has(g.id) ? '  protected' : ''}`);
      }
      return 0;
    } finally {
      await repo.close();
    }
  },
};
