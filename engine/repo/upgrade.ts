// `blockvault upgrade`: a repository of an older format version, brought to
// the current one in place, one step per version, each safe to stop and run
// again (docs/FORMAT.md "Upgrading").
//   1 -> 2: index objects from the pack trailers (init.ts).
//   2 -> 3: every version-1 point file (a whole map, or a delta of one)
//           rewritten as a paged map of the same id and header.
import { assert, BlockvaultError } from '../core/errors.js';
import { killPoint } from '../core/test-hooks.js';
import { sha256 } from '../core/digest.js';
import { encodeConfig, repoFormatVersion } from '../format/config-format.js';
import type { PointHeader } from '../format/point-format.js';
import type { ObjectStore } from '../storage/storage.js';
import { configPath } from './layout.js';
import { MapBuilder } from './map-builder.js';
import { storeMapPage } from './map-pages.js';
import { PackWriter, writingPacks } from './pack-writer.js';
import { readConfig, upgradeFromVersion1 } from './init.js';
import { Repository } from './repository.js';

export interface UpgradeResult { from: number; to: number; pointsPaged: number; skipped: string[] }

/** Chunk ids put into a map builder at a time while paging a version-1 map. */
const pagingSliceChunks = 64 * 1024;

export async function upgradeRepository(root: string, store: ObjectStore, lockWaitSeconds: number, onWait?: (holder: string) => void): Promise<UpgradeResult> {
  const first = await readConfig(store);
  const result: UpgradeResult = { from: first.formatVersion, to: repoFormatVersion, pointsPaged: 0, skipped: [] };
  if (first.formatVersion === repoFormatVersion) return result;
  if (first.formatVersion === 1) await upgradeFromVersion1(store, first, lockWaitSeconds);
  const repo = await Repository.open(root, { storage: store, upgrading: true, exclusive: { what: 'upgrade', lockWaitSeconds, onWait } });
  try {
    Object.assign(result, await pageVersion1Points(repo));
    await store.put(configPath, encodeConfig({ ...repo.config, formatVersion: repoFormatVersion }), repo.sessionId);
  } finally {
    await repo.close();
  }
  return result;
}

/**
 * Version 2 -> 3. The pages of every point go into sealed, indexed packs
 * first; only then are the point files replaced (each put atomic), so a stop
 * at any moment leaves every point readable: a delta whose base is already
 * paged reads that base through its pages (point-store.ts).
 */
async function pageVersion1Points(repo: Repository): Promise<{ pointsPaged: number; skipped: string[] }> {
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, repo.config.packBytesTarget);
  const paged: Array<{ header: PointHeader; height: number; root: Buffer }> = [];
  const skipped: string[] = [];
  await writingPacks(writer, async () => {
    for (const path of await repo.listPointPaths()) {
      let file: Awaited<ReturnType<Repository['points']['readFile']>>;
      try {
        file = await repo.points.readFile(path);
      } catch (err) {
        if (!(err instanceof BlockvaultError)) throw err;
        skipped.push(`${path}: ${err.message}; left as it is, for verify to name`);
        continue;
      }
      const { header, body } = file;
      if (body.kind === 'paged') continue;
      try {
        paged.push({ header, ...(await pageMap(repo, writer, header)) });
      } catch (err) {
        if (!(err instanceof BlockvaultError)) throw err;
        skipped.push(`${path}: ${err.message}; left as it is, for verify to name`);
      }
    }
  });
  for (const p of paged) {
    const header: PointHeader = { ...p.header, base: null, chainDepth: 0, mapSha256: sha256(p.root).toString('hex') };
    await repo.points.write(header, { kind: 'paged', height: p.height, root: p.root }, repo.sessionId); // recatalogs it too
    killPoint('upgrade-point-paged');
  }
  return { pointsPaged: paged.length, skipped };
}

async function pageMap(repo: Repository, writer: PackWriter, header: PointHeader): Promise<{ height: number; root: Buffer }> {
  const entry = repo.points.entryById(header.id);
  const { map } = await repo.points.open(entry, { checkMap: true });
  assert(map.kind === 'fixed', 'version-1 points have fixed-size maps');
  const builder = new MapBuilder(header.chunksTotal, null, async (page) =>
    (await storeMapPage(repo.index, writer, (chunks) => writer.append(chunks), repo.config.zstdLevel, page)).id);
  for (let first = 0; first < header.chunksTotal; first += pagingSliceChunks) {
    await builder.put(first, await map.ids(first, Math.min(pagingSliceChunks, header.chunksTotal - first)));
  }
  const built = await builder.finish(header.chunksTotal);
  return { height: built.height, root: built.root };
}
