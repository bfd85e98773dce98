// gc's sweep, the only step that deletes data, run once the pending gc's
// packs are known unneeded (gc.ts): index objects naming them are rewritten
// without them (the new object first, then the old one deleted), then the
// packs are deleted, then the cache forgets them, then the pending object
// goes. Each step can be repeated: a sweep that stops is finished by the
// next gc (docs/FORMAT.md "Garbage collection").
import { BlockvaultError, storageError } from '../core/errors.js';
import { killPoint } from '../core/test-hooks.js';
import { decodeIndexObject, encodeIndexObject, indexObjectBytesMax } from '../format/index-object-format.js';
import type { PackRecord } from '../format/pack-format.js';
import { putEncodedIndexObject } from '../repo/index-objects.js';
import { packPath } from '../repo/layout.js';
import { deletePendingGc } from '../repo/pending-gc.js';
import { forgetQuarantineOf } from '../repo/quarantine.js';
import type { Repository } from '../repo/repository.js';

export interface SweepResult { packsDeleted: number; bytesDeleted: number; indexObjectsRewritten: number }

export async function sweep(repo: Repository, gcId: string, packIds: readonly string[], onPack?: (done: number) => void): Promise<SweepResult> {
  const doomed = new Set(packIds);
  const records = new Map<string, PackRecord[] | null>();
  let bytesDeleted = 0;
  for (const id of packIds) {
    bytesDeleted += repo.index.pack(id)?.bytes ?? 0;
    records.set(id, await trailerOrNull(repo, id));
  }
  const indexObjectsRewritten = await rewriteIndexObjects(repo, doomed);
  for (const [k, id] of packIds.entries()) {
    await repo.storage.delete(packPath(id)).catch((err) => { throw storageError(err, packPath(id)); });
    killPoint('gc-pack-deleted');
    onPack?.(k + 1);
  }
  repo.index.removePacks(packIds.map((packId) => ({ packId, records: records.get(packId) ?? null })));
  await forgetQuarantineOf(repo.storage, doomed);
  await deletePendingGc(repo.storage, gcId);
  return { packsDeleted: packIds.length, bytesDeleted, indexObjectsRewritten };
}

/** What a pack holds, before it goes (null: gone already, deleted by a sweep that stopped). */
async function trailerOrNull(repo: Repository, packId: string): Promise<PackRecord[] | null> {
  try {
    return (await repo.packs.readTrailer(packId)).records;
  } catch (err) {
    if (err instanceof BlockvaultError && err.code === 'CHUNK_MISSING') return null;
    if (err instanceof BlockvaultError) return null; // a damaged pack nobody needs: its records are found by scanning
    throw err;
  }
}

/** Index objects that name a doomed pack, replaced by ones that name only the others. */
async function rewriteIndexObjects(repo: Repository, doomed: ReadonlySet<string>): Promise<number> {
  const keys = new Set<string>();
  for (const id of doomed) {
    const key = repo.index.pack(id)?.indexObject;
    if (key) keys.add(key);
  }
  let seq = 0;
  for (const key of [...keys].sort()) {
    let packs;
    try {
      packs = decodeIndexObject(await repo.storage.get(key, indexObjectBytesMax), key);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // rewritten by a sweep that stopped
      if (!(err instanceof BlockvaultError)) throw storageError(err, key);
      packs = null; // damaged: its surviving packs are read from their trailers
    }
    const rest = (packs ?? []).filter((p) => !doomed.has(p.packId));
    if (rest.length > 0) {
      // Numbered from 900000: the repack's PackWriter numbers this session's other index objects from 0.
      const newKey = await putEncodedIndexObject(repo.storage, repo.sessionId, 900_000 + seq++, encodeIndexObject(rest));
      repo.index.markIndexObject(newKey, rest.map((p) => p.packId));
    }
    await repo.storage.delete(key).catch((err) => { throw storageError(err, key); });
    killPoint('gc-index-rewritten');
  }
  return keys.size;
}
