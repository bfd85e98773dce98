// Pending-gc objects in the repository (docs/FORMAT.md "Garbage collection"):
// gc/<gc id>.gc names the packs one gc condemned. The LMDB cache mirrors
// them (ChunkIndex.setCondemned) so that backups stop deduplicating against
// those packs; the objects are the truth, and a rebuilt index takes the
// marks from them again. Cancelling one (forget does, a damaged one is) only
// keeps data: its packs become ordinary packs again.
import { BlockvaultError, storageError } from '../core/errors.js';
import { decodePendingGc, encodePendingGc, pendingGcBytesMax, type PendingGc } from '../format/gc-format.js';
import type { ObjectStore } from '../storage/storage.js';
import type { ChunkIndex } from './chunk-index.js';

export const pendingGcDir = 'gc';
export const pendingGcKey = (id: string) => `${pendingGcDir}/${id}.gc`;

/** Every pending gc; a damaged object is cancelled (said on stderr): it can only be trusted to keep data. */
export async function listPendingGcs(store: ObjectStore, say: (line: string) => void): Promise<PendingGc[]> {
  const out: PendingGc[] = [];
  for (const key of await store.listKeys(`${pendingGcDir}/`)) {
    if (!key.endsWith('.gc')) continue;
    try {
      out.push(decodePendingGc(await store.get(key, pendingGcBytesMax), key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // finished meanwhile
      if (!(err instanceof BlockvaultError)) throw storageError(err, key);
      say(`blockvault: ${err.message}; cancelling that gc (its packs stay)`);
      await store.delete(key).catch((e) => { throw storageError(e, key); });
    }
  }
  return out;
}

export async function putPendingGc(store: ObjectStore, g: PendingGc, stagingId: string): Promise<void> {
  await store.put(pendingGcKey(g.id), encodePendingGc(g), stagingId).catch((err) => { throw storageError(err, pendingGcKey(g.id)); });
}

export async function deletePendingGc(store: ObjectStore, id: string): Promise<void> {
  await store.delete(pendingGcKey(id)).catch((err) => { throw storageError(err, pendingGcKey(id)); });
}

/**
 * Cancels every pending gc: the object first, then the cache's marks (a stop
 * in between leaves marks without an object, which alignCondemned clears).
 * Returns how many were cancelled.
 */
export async function cancelPendingGcs(store: ObjectStore, index: ChunkIndex, say: (line: string) => void): Promise<number> {
  const pending = await listPendingGcs(store, say);
  for (const g of pending) await deletePendingGc(store, g.id);
  alignCondemned(index, []);
  return pending.length;
}

/** Makes the cache's condemned marks exactly those of the pending gcs. */
export function alignCondemned(index: ChunkIndex, pending: readonly PendingGc[]): void {
  const want = new Map<string, string>();
  for (const g of pending) for (const p of g.condemned) want.set(p, g.id);
  const have = index.condemnedPacks();
  index.setCondemned([...have.keys()].filter((p) => want.get(p) !== have.get(p)), null);
  for (const g of pending) index.setCondemned(g.condemned.filter((p) => have.get(p) !== g.id), g.id);
}
