// Creating a repository, and upgrading one of an older format version.
import { randomBytes } from 'node:crypto';
import { BlockvaultError, storageError } from '../core/errors.js';
import { chunkBytesDefault, configBytesMax, packBytesDefault, zstdLevelDefault } from '../core/limits.js';
import { checkConfig, decodeConfig, encodeConfig, repoFormatVersion, type RepoConfig } from '../format/config-format.js';
import type { ChunkerSpec } from '../chunking/chunker.js';
import type { ObjectStore } from '../storage/storage.js';
import { putIndexObject } from './index-objects.js';
import { configPath, packIdFromKey, packsDir } from './layout.js';
import { acquireLock, newSessionId } from './lock.js';
import { PackReader } from './pack-reader.js';

export interface InitOptions { chunkBytes?: number; zstdLevel?: number; packBytesTarget?: number; chunker?: ChunkerSpec }

export async function createRepository(store: ObjectStore, options: InitOptions = {}): Promise<RepoConfig> {
  const config: RepoConfig = {
    repoId: randomBytes(16).toString('hex'),
    formatVersion: repoFormatVersion,
    chunkBytes: options.chunkBytes ?? chunkBytesDefault,
    zstdLevel: options.zstdLevel ?? zstdLevelDefault,
    packBytesTarget: options.packBytesTarget ?? packBytesDefault,
    createdAt: new Date().toISOString(),
  };
  // A content-defined chunker's chunk size is its maximum: the largest chunk (cache slots, limits).
  if (options.chunker && options.chunker.kind !== 'fixed') Object.assign(config, { chunker: options.chunker, chunkBytes: options.chunker.maxBytes });
  checkConfig(config, 'init');
  const where = store.description;
  let state: Awaited<ReturnType<ObjectStore['prepareEmpty']>>;
  try {
    state = await store.prepareEmpty();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new BlockvaultError('BAD_INPUT', `${where} exists and is not a directory; init needs an empty or new directory`, { cause: err });
    throw storageError(err, `repository ${where}`);
  }
  if (state === 'holds-config') throw new BlockvaultError('REPO_EXISTS', `${where} already holds a blockvault repository; nothing was changed`);
  if (state === 'not-empty') throw new BlockvaultError('BAD_INPUT', `${where} is not empty; init needs an empty or new directory`);
  const staging = newSessionId();
  try {
    await store.putIfAbsent(configPath, encodeConfig(config), staging);
  } catch (err) {
    throw storageError(err, `repository ${where}`);
  } finally {
    await store.removeStaging(staging).catch(() => undefined);
  }
  return config;
}

export async function readConfig(store: ObjectStore): Promise<RepoConfig> {
  let bytes: Buffer;
  try {
    bytes = await store.get(configPath, configBytesMax);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new BlockvaultError('NOT_A_REPO', `${store.description} is not a blockvault repository (no ${configPath} file); create one with: blockvault init -r ${store.description}`);
    }
    if (err instanceof BlockvaultError) throw err;
    throw new BlockvaultError('REPO_UNAVAILABLE', `cannot read ${store.description}/${configPath}: ${(err as Error).message}`, { cause: err });
  }
  return decodeConfig(bytes, `${store.description}/${configPath}`);
}

/**
 * Version 1 -> 2: the layout of packs and points is the same; what changes is
 * how writers lock (one writer.lock then, a lock object per session now). The
 * step waits out a version-1 writer (its writer.lock), writes index objects
 * from the pack trailers, then rewrites the config.
 */
export async function upgradeFromVersion1(store: ObjectStore, config: RepoConfig, lockWaitSeconds: number): Promise<void> {
  const session = newSessionId();
  const lock = await acquireLock(store, session, { kind: 'exclusive', what: 'upgrade', waitSeconds: lockWaitSeconds });
  try {
    const v1Lock = (await store.list('locks/writer.lock')).length > 0;
    if (v1Lock) throw new BlockvaultError('REPO_LOCKED', `${store.description}/locks/writer.lock exists: a version-1 blockvault is writing (or died writing: remove the file if no backup runs)`);
    await writeIndexObjectsForAllPacks(store, session);
    await store.put(configPath, encodeConfig({ ...config, formatVersion: 2 }), session);
  } finally {
    await lock.release();
  }
}
/** Version 1 has no index objects: write them from the trailers, so a cold open need not read every pack. */
async function writeIndexObjectsForAllPacks(store: ObjectStore, session: string): Promise<void> {
  const reader = new PackReader(store);
  try {
    const ids = (await store.listKeys(`${packsDir}/`)).map(packIdFromKey).filter((id): id is string => id !== null);
    for (let i = 0, seq = 0; i < ids.length; i += 64, seq++) {
      const packs = [];
      for (const packId of ids.slice(i, i + 64)) {
        try {
          const { records, packBytes } = await reader.readTrailer(packId);
          packs.push({ packId, packBytes, records });
        } catch (err) {
          if (!(err instanceof BlockvaultError)) throw err; // a damaged pack stays for verify to name; it is read from its trailer again
        }
      }
      await putIndexObject(store, session, seq, packs);
    }
  } finally {
    await reader.close();
  }
}
