import { humanBytes } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { repoStats } from '../../verify/stats.js';
import { parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

export const statsCommand: Command = {
  name: 'stats',
  summary: 'logical versus stored bytes, dedup and compression ratios',
  help: `Usage: blockvault stats -r <repo> [--json]

  logical      sum of the disk sizes of all restore points
  data         the same without zero chunks
  unique       raw bytes of the distinct chunks stored
  stored       their size after compression; packs = files on disk
  dedup        data / unique        compression   unique / stored`,
  async run(argv) {
    const { values } = parse('stats', argv, {});
    const repo = await Repository.open(repoPath(values));
    try {
      const s = repoStats(repo);
      if (values.json) {
        printJson(s);
        return 0;
      }
      say(`restore points  ${s.points} (${s.vms} VMs)`);
      say(`logical         ${humanBytes(s.logicalBytes)} (data ${humanBytes(s.logicalDataBytes)})`);
      say(`unique chunks   ${s.uniqueChunks}, ${humanBytes(s.uniqueRawBytes)}`);
      say(`stored          ${humanBytes(s.storedPayloadBytes)} in ${s.packs} packs (${humanBytes(s.packBytes)} on disk)`);
      say(`dedup ratio     ${s.dedupRatio.toFixed(2)}x`);
      say(`compression     ${s.compressionRatio.toFixed(2)}x`);
      say(`overall         ${s.totalRatio.toFixed(2)}x logical / on disk`);
      return 0;
    } finally {
      await repo.close();
    }
  },
};
