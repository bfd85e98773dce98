import { humanBytes, plural } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { repoStats } from '../../verify/stats.js';
import { parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

export const statsCommand: Command = {
  name: 'stats',
  help: `Usage: blockvault stats -r <repo> [--json]

What the restore points hold against what the repository stores:
  logical       sum of the disk sizes of all restore points (data: without zero chunks)
  referenced    the distinct chunks restore points need, raw and as stored,
                their chunk maps' pages included (counted apart below)
  unreferenced  chunks in packs that no restore point needs: left by an
                interrupted backup (a later backup of the same data reuses
                them) or stored twice by concurrent writers
  staging       tmp/<session>/ areas: a running backup's temporary objects, or
                what a killed one left (the next backup removes those)
  dedup         data / referenced raw bytes; compression: raw / stored bytes
  overall       logical bytes / bytes of pack files on disk

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --json            every figure as one JSON object (bytes as numbers)

Reads every restore point's chunk map: on a large repository this takes a while.`,
  async run(argv) {
    const { values } = parse('stats', argv, {});
    const repo = await Repository.open(repoPath(values));
    try {
      const s = await repoStats(repo);
      if (values.json) {
        printJson(s);
        return 0;
      }
      say(`restore points  ${s.points} (${plural(s.vms, 'VM')})`);
      say(`logical         ${humanBytes(s.logicalBytes)} (data ${humanBytes(s.logicalDataBytes)})`);
      say(`referenced      ${plural(s.referencedChunks, 'chunk')}, ${humanBytes(s.referencedRawBytes)} (${humanBytes(s.referencedStoredBytes)} stored)`);
      say(`  of which maps  ${plural(s.mapPages, 'map page')}, ${humanBytes(s.mapStoredBytes)} stored`);
      say(`unreferenced    ${plural(s.unreferencedChunks, 'chunk')}, ${humanBytes(s.unreferencedStoredBytes)} stored${s.unreferencedChunks ? ' (left by an interrupted backup; a later backup of the same data reuses them)' : ''}`);
      say(`stored          ${humanBytes(s.storedPayloadBytes)} in ${plural(s.packs, 'pack')} (${humanBytes(s.packBytes)} on disk)`);
      if (s.tmpFiles) say(`staging         ${plural(s.tmpFiles, 'area')}, ${humanBytes(s.tmpBytes)} (a running backup's, or a killed one's: the next backup removes those)`);
      say(`dedup ratio     ${s.dedupRatio.toFixed(2)}x`);
      say(`compression     ${s.compressionRatio.toFixed(2)}x`);
      say(`overall         ${s.totalRatio.toFixed(2)}x logical / on disk`);
      return 0;
    } finally {
      await repo.close();
    }
  },
};
