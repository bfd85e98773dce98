// Turns a repository this blockvault wrote into what an older one wrote:
// version-1 point files (a whole map; with deltas, each later point of a disk
// as a delta against the one before), the config's version set back, and no
// index cache. The map pages this blockvault stored stay in the packs,
// unreferenced, as any spare chunk would.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../../engine/core/digest.js';
import { decodeConfig, encodeConfig } from '../../engine/format/config-format.js';
import { diffMaps, encodePoint, type PointHeader } from '../../engine/format/point-format.js';
import { Repository } from '../../engine/repo/repository.js';

export async function makeLegacy(root: string, version: 1 | 2 | 3 | 4 | 5, options: { deltas?: boolean } = {}): Promise<void> {
  const files: Array<[string, Buffer]> = [];
  if (version < 3) files.push(...(await version1Points(root, options)));
  for (const [path, bytes] of files) writeFileSync(join(root, path), bytes);
  const config = decodeConfig(readFileSync(join(root, 'config')), 'config');
  writeFileSync(join(root, 'config'), encodeConfig({ ...config, formatVersion: version }));
  rmSync(join(root, 'index'), { recursive: true, force: true });
  if (version === 1) {
    rmSync(join(root, 'idx'), { recursive: true, force: true }); // version 1 had no index objects
    mkdirSync(join(root, 'locks'), { recursive: true });
  }
}

/** Every point as a version-1 point file (a whole map, or with deltas a delta against the one before). */
async function version1Points(root: string, options: { deltas?: boolean }): Promise<Array<[string, Buffer]>> {
  const repo = await Repository.open(root);
  const files: Array<[string, Buffer]> = [];
  const previous = new Map<string, { header: PointHeader; flat: Buffer }>();
  try {
    for (const entry of repo.points.list().reverse()) {
      const { header, map } = await repo.points.open(entry);
      const flat = await map.ids(0, map.chunksTotal);
      const legacy: PointHeader = { ...header, mapSha256: sha256(flat).toString('hex') };
      const before = previous.get(`${entry.vm}/${entry.disk}`);
      if (options.deltas && before && before.flat.length === flat.length) {
        const delta = { ...legacy, base: before.header.id, chainDepth: before.header.chainDepth + 1 };
        files.push([entry.path, encodePoint(delta, { kind: 'delta', ...diffMaps(before.flat, flat) })]);
        previous.set(`${entry.vm}/${entry.disk}`, { header: delta, flat });
      } else {
        files.push([entry.path, encodePoint(legacy, { kind: 'full', map: flat })]);
        previous.set(`${entry.vm}/${entry.disk}`, { header: legacy, flat });
      }
    }
  } finally {
    await repo.close();
  }
  return files;
}
