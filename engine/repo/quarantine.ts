// Quarantine (docs/FORMAT.md "Quarantine and healing"): a record found
// damaged (a checksum that fails), or every record of a pack that is gone or
// torn, is recorded as an object and taken out of the index. It is then no
// dedup target: the next backup that meets the same data stores a fresh
// copy, which heals every restore point that named the chunk (points name
// chunks by id, not by place). The objects are the truth; a rebuilt index
// takes them into account again.
import { BlockvaultError, storageError } from '../core/errors.js';
import type { ObjectStore } from '../storage/storage.js';
import type { ChunkIndex } from './chunk-index.js';

export const quarantineDir = 'quarantine';
const objectBytesMax = 64 * 1024;
/** Restore points named per quarantined record (the rest are counted). */
const pointsNamedMax = 100;

export interface Quarantined {
  /** The chunk the record holds (hex), or null for a whole pack. */
  chunk: string | null;
  pack: string;
  /** The record's offset in the pack, or null for a whole pack. */
  offset: number | null;
  reason: string;
  foundAt: string;
  points: string[];
  pointsMore: number;
}

export function quarantineKey(q: Pick<Quarantined, 'pack' | 'offset'>): string {
  return `${quarantineDir}/${q.pack}${q.offset === null ? '' : `-${String(q.offset).padStart(12, '0')}`}.json`;
}

export function quarantineEntry(chunk: string | null, pack: string, offset: number | null, reason: string, points: string[]): Quarantined {
  return { chunk, pack, offset, reason, foundAt: new Date().toISOString(), points: points.slice(0, pointsNamedMax), pointsMore: Math.max(0, points.length - pointsNamedMax) };
}

function noteFor(q: Quarantined): string {
  return `quarantined: its record in pack ${q.pack}${q.offset === null ? '' : ` at offset ${q.offset}`} is damaged (${q.reason}; found ${q.foundAt}); a backup of the same data stores a fresh copy and heals every point that needs it`;
}

/** Takes the quarantined records out of the index (only where the index still locates the chunk there). */
export function applyQuarantine(index: ChunkIndex, list: readonly Quarantined[]): void {
  const wholePacks = list.filter((q) => q.offset === null && index.hasPack(q.pack)).map((q) => ({ packId: q.pack, records: null }));
  if (wholePacks.length > 0) index.removePacks(wholePacks);
  for (const q of list) {
    if (q.chunk === null) continue;
    const id = Buffer.from(q.chunk, 'hex');
    const at = index.lookup(id);
    if (at && at.packId === q.pack && at.offset === q.offset) index.dropChunk(id);
    if (!at || (at.packId === q.pack && at.offset === q.offset)) index.setQuarantineNote(q.chunk, noteFor(q));
  }
}

/** Records the quarantine durably (one object per record or pack), then applies it to the index. */
export async function quarantine(store: ObjectStore, index: ChunkIndex, stagingId: string, list: readonly Quarantined[]): Promise<void> {
  for (const q of list) {
    const key = quarantineKey(q);
    await store.put(key, Buffer.from(`${JSON.stringify(q)}\n`), stagingId).catch((err) => { throw storageError(err, key); });
  }
  applyQuarantine(index, list);
}

export async function listQuarantined(store: ObjectStore): Promise<Quarantined[]> {
  const out: Quarantined[] = [];
  for (const key of await store.listKeys(`${quarantineDir}/`)) {
    if (!key.endsWith('.json')) continue;
    try {
      const q = JSON.parse((await store.get(key, objectBytesMax)).toString('utf8')) as Quarantined;
      if (typeof q?.pack === 'string' && /^[0-9a-f]{32}$/.test(q.pack) && (q.offset === null || Number.isInteger(q.offset))) out.push(q);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      if (err instanceof SyntaxError) continue; // a torn note: it only ever explained; the index check finds the damage again
      if (err instanceof BlockvaultError) throw err;
      throw storageError(err, key);
    }
  }
  return out;
}

/** Drops the quarantine objects of packs that are gone (gc deleted them: nothing needed their records). */
export async function forgetQuarantineOf(store: ObjectStore, packIds: ReadonlySet<string>): Promise<void> {
  for (const key of await store.listKeys(`${quarantineDir}/`)) {
    const pack = /^quarantine\/([0-9a-f]{32})/.exec(key)?.[1];
    if (pack && packIds.has(pack)) await store.delete(key).catch((err) => { throw storageError(err, key); });
  }
}
