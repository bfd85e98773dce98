// A repository: config, packs, restore points, and the LMDB index that
// caches them, all reached through one ObjectStore. Opening reconciles the
// index with the packs and points (a crash can leave a sealed pack or a
// committed point not yet indexed), or rebuilds it when it is missing or of
// another version. A writer opens as a session (many at once) or, to delete
// or rewrite, exclusively (lock.ts).
import { phase } from '../core/phases.js';
import { resolve } from 'node:path';
import { mapLimit } from '../core/concurrency.js';
import { BlockvaultError } from '../core/errors.js';
import { repoFormatVersionsWritable, type RepoConfig } from '../format/config-format.js';
import { FsObjectStore } from '../storage/fs-storage.js';
import type { ObjectStore } from '../storage/storage.js';
import type { ChunkIndex } from './chunk-index.js';
import { openIndex, type OpenedIndex } from './index-location.js';
import { ingestIndexObjects } from './index-objects.js';
import { reconcileGroups } from './group-store.js';
import { createRepository, readConfig, type InitOptions } from './init.js';
import { packIdFromKey, packsDir, pointsDir } from './layout.js';
import { acquireLock, newSessionId, type HeldLock } from './lock.js';
import { MapPages } from './map-pages.js';
import { alignCondemned, listPendingGcs } from './pending-gc.js';
import { applyQuarantine, listQuarantined } from './quarantine.js';
import { PackReader } from './pack-reader.js';
import { catalogEntry, PointStore } from './point-store.js';

export type { InitOptions } from './init.js';

interface LockOptions { what: string; lockWaitSeconds: number; onWait?: (holder: string) => void; /** session (default), forget or gc: lock.ts */ kind?: 'session' | 'forget' | 'gc' }
export interface OpenOptions {
  storage?: ObjectStore;
  /** Open as a backup session (shared: many may run at once). */
  writer?: LockOptions;
  /** Open for an operation that deletes or rewrites (index rebuild): waits for sessions to end, keeps new ones out. */
  exclusive?: LockOptions;
  /** `blockvault upgrade`: an exclusive open of a repository of an older version. */
  upgrading?: boolean;
}

export async function initRepository(root: string, options: InitOptions = {}, storage?: ObjectStore): Promise<RepoConfig> {
  return createRepository(storage ?? new FsObjectStore(resolve(root)), options);
}

const onStale = (line: string) => process.stderr.write(`${line}\n`);
/** Restore-point files read at once when cataloging (each is a small read: latency, not bandwidth). */
const pointReadsInFlight = 16;
/** Pack trailers read at once when rebuilding the index. */
const trailersInFlight = 8;

export class Repository {
  readonly packs: PackReader;
  readonly points: PointStore;
  readonly index: ChunkIndex;
  /** Where the index lives when the repository is not writable (index-location.ts); null: in the repository. */
  readonly indexCacheDir: string | null;
  /** Packs whose trailer could not be read in this process (named once). */
  private readonly unreadablePacks = new Set<string>();

  private constructor(
    readonly root: string,
    readonly config: RepoConfig,
    readonly storage: ObjectStore,
    private readonly opened: OpenedIndex,
    private readonly lock: HeldLock | null,
  ) {
    this.index = opened.index;
    this.indexCacheDir = opened.cacheDir;
    this.packs = new PackReader(storage);
    this.points = new PointStore(storage, this.index, new MapPages(this.index, this.packs));
  }

  /** This writer's session id (its lock object and staging area); writers only. */
  get sessionId(): string {
    if (!this.lock) throw new BlockvaultError('USAGE', 'this repository was opened for reading');
    return this.lock.id;
  }

  static async open(rootArg: string, options: OpenOptions = {}): Promise<Repository> {
    const root = resolve(rootArg);
    const storage = options.storage ?? new FsObjectStore(root);
    const config = await readConfig(storage);
    const want = options.exclusive ? { ...options.exclusive, kind: 'exclusive' as const } : options.writer ? { ...options.writer, kind: options.writer.kind ?? 'session' } : null;
    if (want && !repoFormatVersionsWritable.includes(config.formatVersion) && !(options.upgrading && options.exclusive)) {
      throw new BlockvaultError('FORMAT_VERSION', `${root} is a version-${config.formatVersion} repository: blockvault reads it as it is, and writes to it once upgraded with: blockvault upgrade -r ${root}`);
    }
    phase('config-read');
    const lock = want
      ? await acquireLock(storage, newSessionId(), { kind: want.kind, what: want.what, waitSeconds: want.lockWaitSeconds, onWait: want.onWait, onStale })
      : null;
    let opened: OpenedIndex | null = null;
    try {
      phase('locked');
      opened = openIndex(storage, root, config.repoId, !lock);
      phase('index-opened');
      const repo = new Repository(root, config, storage, opened, lock);
      if (!opened.index.isCurrent() || (opened.cacheDir && !(await repo.cacheInStep()))) await repo.rebuildIndex();
      else await repo.reconcile();
      phase('repo-open');
      return repo;
    } catch (err) {
      await opened?.index.close();
      opened?.dispose();
      await lock?.release();
      throw err;
    }
  }

  /**
   * A cache outside the repository may have been built from another copy of
   * it (an offsite disk of the same repository id): it must not name a pack
   * this copy lacks, or reads would fail on chunks the packs here do hold.
   */
  private async cacheInStep(): Promise<boolean> {
    const here = new Set(await this.listPackIds());
    return this.index.packEntries().every(([id]) => here.has(id));
  }

  /**
   * Brings the index up to what the repository holds: index objects it has
   * not read, then any sealed pack no index object named (read from its
   * trailer), then restore points it has not cataloged.
   */
  async reconcile(): Promise<{ packsAdded: number; pointsAdded: number }> {
    // An index object may name a pack gc has deleted since: only packs the repository has are taken.
    const listed = await this.listPackIds();
    const present = new Set(listed);
    const ingested = await ingestIndexObjects(this.storage, this.index, false, (id) => !present.has(id));
    this.sayDamaged(ingested.damaged);
    let packsAdded = ingested.packs;
    for (const packId of listed) {
      if (this.index.hasPack(packId) || this.unreadablePacks.has(packId)) continue;
      try {
        await this.indexPack(packId);
        packsAdded += 1;
      } catch (err) {
        if (!(err instanceof BlockvaultError)) throw err;
        // A torn pack must not stop every open: named once, left for check and repair (its chunks are simply not found).
        this.unreadablePacks.add(packId);
        onStale(`blockvault: pack ${packId} cannot be indexed (${err.message}); run blockvault repair index -r ${this.root}`);
      }
    }
    // Condemned packs a gc deleted before it stopped: nothing needs them (any other missing pack is damage, for check to name).
    const swept = [...this.index.condemnedPacks().keys()].filter((id) => !present.has(id) && this.index.hasPack(id));
    if (swept.length > 0) this.index.removePacks(swept.map((packId) => ({ packId, records: null })));
    await reconcileGroups(this.storage, this.index, onStale);
    const paths = await this.listPointPaths();
    const idOf = (path: string) => path.slice(path.lastIndexOf('/') + 1, -'.point'.length);
    // A point another process forgot: its file is gone, so is its catalog entry.
    const pointsPresent = new Set(paths.map(idOf));
    this.index.removePoints(this.index.allPoints().filter((p) => !pointsPresent.has(p.id)).map((p) => p.id));
    const fresh = paths.filter((path) => !this.index.hasPoint(idOf(path)));
    // Read in parallel (latency-bound small reads), cataloged a few thousand per transaction.
    for (let i = 0; i < fresh.length; i += 4096) {
      const entries = await mapLimit(fresh.slice(i, i + 4096), pointReadsInFlight, async (path) => {
        const { header, body } = await this.points.readFile(path);
        return catalogEntry(header, body.kind);
      });
      this.index.addPoints(entries);
    }
    return { packsAdded, pointsAdded: fresh.length };
  }

  private sayDamaged(damaged: string[]): void {
    for (const line of damaged) onStale(`blockvault: index object ${line}; reading its packs' trailers instead`);
  }

  /**
   * Drops the index and rebuilds it (packs are the truth): from the index
   * objects and the trailers of packs they do not name, or with fromPacks from
   * every pack's trailer alone.
   */
  async rebuildIndex(options: { fromPacks?: boolean } = {}): Promise<{ packs: number; points: number; indexObjects: number; skipped: string[] }> {
    this.index.clearAll();
    const skipped: string[] = [];
    let packs = 0;
    let indexObjects = 0;
    // Packs a pending gc condemned, and packs holding quarantined records, come last and never displace
    // another copy of a chunk: that copy outlives them (a fresh copy is what heals a quarantined one).
    const pending = await listPendingGcs(this.storage, onStale);
    const quarantined = await listQuarantined(this.storage);
    const condemned = new Set([...pending.flatMap((g) => g.condemned), ...quarantined.map((q) => q.pack)]);
    const listed = await this.listPackIds();
    const present = new Set(listed);
    if (!options.fromPacks) {
      const ingested = await ingestIndexObjects(this.storage, this.index, true, (id) => condemned.has(id) || !present.has(id));
      this.sayDamaged(ingested.damaged);
      packs += ingested.packs;
      indexObjects = ingested.objects;
    }
    const unread = [...listed.filter((id) => !condemned.has(id)), ...listed.filter((id) => condemned.has(id))].filter((id) => !this.index.hasPack(id));
    // Trailers read several at a time (each a latency-bound read at the pack's end), indexed in order.
    for (let i = 0; i < unread.length; i += trailersInFlight * 4) {
      const slice = unread.slice(i, i + trailersInFlight * 4);
      const read = await mapLimit(slice, trailersInFlight, async (packId) => {
        try {
          return await this.packs.readTrailer(packId);
        } catch (err) {
          if (!(err instanceof BlockvaultError)) throw err;
          skipped.push(`${packId}: ${err.message}`); // verify will name the restore points this affects
          this.unreadablePacks.add(packId);
          return null;
        }
      });
      for (const [k, trailer] of read.entries()) {
        if (!trailer) continue;
        this.index.addPack(slice[k], trailer.packBytes, trailer.records, condemned.has(slice[k]));
        packs += 1;
      }
    }
    alignCondemned(this.index, pending);
    applyQuarantine(this.index, quarantined);
    this.index.markCurrent();
    const { pointsAdded } = await this.reconcile();
    return { packs, points: pointsAdded, indexObjects, skipped };
  }

  private async indexPack(packId: string, keepExisting = false): Promise<void> {
    const { records, packBytes } = await this.packs.readTrailer(packId);
    this.index.addPack(packId, packBytes, records, keepExisting);
  }

  async listPackIds(): Promise<string[]> {
    return (await this.storage.listKeys(`${packsDir}/`)).map(packIdFromKey).filter((id): id is string => id !== null);
  }

  async listPointPaths(): Promise<string[]> {
    return (await this.storage.listKeys(`${pointsDir}/`)).filter((key) => /^points\/[^/]+\/[^/]+\/[0-9a-f]{32}\.point$/.test(key));
  }

  async close(): Promise<void> {
    await this.packs.close();
    await this.index.close();
    this.opened.dispose();
    await this.lock?.release();
  }
}
