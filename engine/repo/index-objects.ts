// Index objects in the repository (docs/FORMAT.md "Index objects"): after a
// session seals packs it puts one immutable object listing their records,
// before any restore point that uses them. A reader learns the repository's
// packs from these (a few large reads) instead of every pack's trailer, and
// the LMDB cache ingests each object once. Trailers stay the truth: a pack
// no index object names (a session killed before writing one, a version-1
// repository), or one named only by a damaged object, is read from its trailer.
import { BlockvaultError, storageError } from '../core/errors.js';
import { mapLimit } from '../core/concurrency.js';
import { killPoint } from '../core/test-hooks.js';
import { decodeIndexObject, encodeIndexObject, indexObjectBytesMax, type IndexedPack } from '../format/index-object-format.js';
import type { ObjectStore } from '../storage/storage.js';
import type { ChunkIndex } from './chunk-index.js';

export const indexObjectsDir = 'idx';

export function indexObjectKey(sessionId: string, seq: number): string {
  return `${indexObjectsDir}/${sessionId}-${String(seq).padStart(6, '0')}.idx`;
}

export async function putIndexObject(store: ObjectStore, sessionId: string, seq: number, packs: readonly IndexedPack[]): Promise<string> {
  return putEncodedIndexObject(store, sessionId, seq, encodeIndexObject(packs));
}

export async function putEncodedIndexObject(store: ObjectStore, sessionId: string, seq: number, bytes: Buffer): Promise<string> {
  const key = indexObjectKey(sessionId, seq);
  await store.put(key, bytes, sessionId);
  return key;
}

export interface IngestResult { objects: number; packs: number; damaged: string[] }

/** Index objects ingested per LMDB transaction: one fsync for many, memory bounded by the records held. */
const objectsPerTransaction = 32;
const objectsInFlight = 8;
const recordsPerTransaction = 1 << 20;

/** Ingests every index object the cache has not read yet (all of them when `all`). Damaged ones are named, not trusted. */
export async function ingestIndexObjects(store: ObjectStore, index: ChunkIndex, all = false, skip?: (packId: string) => boolean): Promise<IngestResult> {
  const result: IngestResult = { objects: 0, packs: 0, damaged: [] };
  let batch: Array<{ key: string; packs: IndexedPack[] }> = [];
  let batchRecords = 0;
  const flush = () => {
    if (batch.length === 0) return;
    result.packs += index.addIndexObjects(batch, skip);
    result.objects += batch.length;
    batch = [];
    batchRecords = 0;
    killPoint('index-ingest');
  };
  const keys = (await store.listKeys(`${indexObjectsDir}/`)).filter((key) => key.endsWith('.idx') && (all || !index.hasIndexObject(key)));
  for (let i = 0; i < keys.length; i += objectsInFlight) {
    // A few objects fetched in parallel (each a latency-bound read); memory: at most that many decoded at once, plus the batch.
    const fetched = await mapLimit(keys.slice(i, i + objectsInFlight), objectsInFlight, (key) => readIndexObject(store, key, result));
    for (const [k, packs] of fetched.entries()) if (packs) ingest(keys[i + k], packs);
  }
  flush();
  return result;

  function ingest(key: string, packs: IndexedPack[]): void {
    batch.push({ key, packs });
    batchRecords += packs.reduce((a, p) => a + p.records.length, 0);
    if (batch.length >= objectsPerTransaction || batchRecords >= recordsPerTransaction) flush();
  }
}

/** One index object's packs, or null when it is gone (removed meanwhile) or damaged (then named in result.damaged). */
async function readIndexObject(store: ObjectStore, key: string, result: IngestResult): Promise<IndexedPack[] | null> {
  try {
    return decodeIndexObject(await store.get(key, indexObjectBytesMax), key);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (!(err instanceof BlockvaultError)) throw storageError(err, `index object ${key}`);
    result.damaged.push(`${key}: ${err.message}`);
    return null;
  }
}
