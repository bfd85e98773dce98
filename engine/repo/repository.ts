// A repository on disk: config, packs, restore points, and the LMDB index
// that caches them. Opening reconciles the index with the packs and points
// directories (a crash can leave a sealed pack or a committed point not yet
// indexed), or rebuilds it when it is missing or of another version.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { BlockvaultError, storageError } from '../core/errors.js';
import { chunkBytesDefault, configBytesMax, packBytesDefault, zstdLevelDefault } from '../core/limits.js';
import { checkConfig, decodeConfig, encodeConfig, repoFormatVersion, type RepoConfig } from '../format/config-format.js';
import { FsStorage } from '../storage/fs-storage.js';
import { writeDurably, type Storage } from '../storage/storage.js';
import type { ChunkIndex } from './chunk-index.js';
import { openIndex, type OpenedIndex } from './index-location.js';
import { configPath, locksDir, packsDir, pointsDir, tmpDir } from './layout.js';
import { acquireWriterLock, type WriterLock } from './lock.js';
import { PackReader } from './pack-reader.js';
import { catalogEntry, PointStore } from './point-store.js';

export interface InitOptions { chunkBytes?: number; zstdLevel?: number; packBytesTarget?: number }
export interface OpenOptions {
  storage?: Storage;
  /** Take the writer lock (backups). */
  writer?: { what: string; lockWaitSeconds: number; onWait?: (holder: string) => void };
}

export async function initRepository(root: string, options: InitOptions = {}, storage?: Storage): Promise<RepoConfig> {
  const config: RepoConfig = {
    repoId: randomBytes(16).toString('hex'),
    formatVersion: repoFormatVersion,
    chunkBytes: options.chunkBytes ?? chunkBytesDefault,
    zstdLevel: options.zstdLevel ?? zstdLevelDefault,
    packBytesTarget: options.packBytesTarget ?? packBytesDefault,
    createdAt: new Date().toISOString(),
  };
  checkConfig(config, 'init');
  const existing = await emptyOrNewDirectory(root);
  if (existing.includes(configPath)) {
    throw new BlockvaultError('REPO_EXISTS', `${root} already holds a blockvault repository; nothing was changed`);
  }
  if (existing.length > 0) {
    throw new BlockvaultError('BAD_INPUT', `${root} is not empty; init needs an empty or new directory`);
  }
  const store = storage ?? new FsStorage(root);
  try {
    for (const dir of [packsDir, pointsDir, tmpDir, locksDir]) await store.mkdirs(dir);
    await writeDurably(store, `${tmpDir}/config`, configPath, encodeConfig(config));
  } catch (err) {
    throw storageError(err, `repository ${root}`);
  }
  return config;
}

/** Creates `root` if needed and lists what it holds; a path that cannot be a repository directory is bad input. */
async function emptyOrNewDirectory(root: string): Promise<string[]> {
  try {
    await fs.mkdir(root, { recursive: true });
    return await fs.readdir(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new BlockvaultError('BAD_INPUT', `${root} exists and is not a directory; init needs an empty or new directory`, { cause: err });
    }
    throw storageError(err, `repository ${root}`);
  }
}

export class Repository {
  readonly packs: PackReader;
  readonly points: PointStore;

  readonly index: ChunkIndex;
  /** Where the index lives when the repository is not writable (index-location.ts); null: in the repository. */
  readonly indexCacheDir: string | null;

  private constructor(
    readonly root: string,
    readonly config: RepoConfig,
    readonly storage: Storage,
    private readonly opened: OpenedIndex,
    private readonly lock: WriterLock | null,
  ) {
    this.index = opened.index;
    this.indexCacheDir = opened.cacheDir;
    this.packs = new PackReader(storage);
    this.points = new PointStore(storage, this.index);
  }

  static async open(rootArg: string, options: OpenOptions = {}): Promise<Repository> {
    const root = resolve(rootArg);
    const storage = options.storage ?? new FsStorage(root);
    const config = await readConfig(root, storage);
    const lock = options.writer
      ? await acquireWriterLock(root, options.writer.what, options.writer.lockWaitSeconds, options.writer.onWait)
      : null;
    let opened: OpenedIndex | null = null;
    try {
      if (lock) await clearTmp(storage);
      opened = openIndex(root, config.repoId, !lock);
      const repo = new Repository(root, config, storage, opened, lock);
      if (!opened.index.isCurrent() || (opened.cacheDir && !(await repo.cacheInStep()))) await repo.rebuildIndex();
      else await repo.reconcile();
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

  /** Indexes sealed packs and committed points the index does not know yet. */
  async reconcile(): Promise<{ packsAdded: number; pointsAdded: number }> {
    let packsAdded = 0;
    for (const packId of await this.listPackIds()) {
      if (this.index.hasPack(packId)) continue;
      await this.indexPack(packId);
      packsAdded += 1;
    }
    let pointsAdded = 0;
    for (const path of await this.listPointPaths()) {
      const id = path.slice(path.lastIndexOf('/') + 1, -'.point'.length);
      if (this.index.hasPoint(id)) continue;
      const { header, body } = await this.points.readFile(path);
      this.index.addPoint(catalogEntry(header, body.kind));
      pointsAdded += 1;
    }
    return { packsAdded, pointsAdded };
  }

  /** Drops the index and rebuilds it from packs and points (packs are the truth). */
  async rebuildIndex(): Promise<{ packs: number; points: number; skipped: string[] }> {
    this.index.clearAll();
    const skipped: string[] = [];
    let packs = 0;
    for (const packId of await this.listPackIds()) {
      try {
        await this.indexPack(packId);
        packs += 1;
      } catch (err) {
        if (!(err instanceof BlockvaultError)) throw err;
        skipped.push(`${packId}: ${err.message}`); // verify will name the restore points this affects
      }
    }
    this.index.markCurrent();
    const { pointsAdded } = await this.reconcile();
    return { packs, points: pointsAdded, skipped };
  }

  private async indexPack(packId: string): Promise<void> {
    const { records, packBytes } = await this.packs.readTrailer(packId);
    this.index.addPack(packId, packBytes, records);
  }

  async listPackIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const dir of await this.storage.list(packsDir)) {
      for (const name of await this.storage.list(`${packsDir}/${dir}`)) {
        if (/^[0-9a-f]{32}\.pack$/.test(name)) ids.push(name.slice(0, 32));
      }
    }
    return ids;
  }

  async listPointPaths(): Promise<string[]> {
    const paths: string[] = [];
    for (const vm of await this.storage.list(pointsDir)) {
      for (const disk of await this.storage.list(`${pointsDir}/${vm}`)) {
        for (const name of await this.storage.list(`${pointsDir}/${vm}/${disk}`)) {
          if (/^[0-9a-f]{32}\.point$/.test(name)) paths.push(`${pointsDir}/${vm}/${disk}/${name}`);
        }
      }
    }
    return paths;
  }

  async close(): Promise<void> {
    await this.packs.close();
    await this.index.close();
    this.opened.dispose();
    await this.lock?.release();
  }
}

async function readConfig(root: string, storage: Storage): Promise<RepoConfig> {
  let bytes: Buffer;
  try {
    bytes = await storage.readAll(configPath, configBytesMax);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new BlockvaultError('NOT_A_REPO', `${root} is not a blockvault repository (no ${configPath} file); create one with: blockvault init -r ${root}`);
    }
    if (err instanceof BlockvaultError) throw err;
    throw new BlockvaultError('REPO_UNAVAILABLE', `cannot read ${join(root, configPath)}: ${(err as Error).message}`, { cause: err });
  }
  return decodeConfig(bytes, join(root, configPath));
}

/** Removes what a crashed writer left in tmp/ (never referenced by anything). */
async function clearTmp(storage: Storage): Promise<void> {
  for (const name of await storage.list(tmpDir)) await storage.remove(`${tmpDir}/${name}`);
}
