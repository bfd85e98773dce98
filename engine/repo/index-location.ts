// Where a repository's LMDB index lives. Normally in the repository
// (index/, when the store is a local directory). A reader of a repository it cannot write (a write-protected
// offsite disk, a read-only NFS export, another user's repository) keeps its
// own copy in a cache directory instead: the index is only a cache of the
// packs and restore points, so it can be rebuilt anywhere, and LMDB cannot
// open a database it cannot lock.
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { nativeApi } from '../core/native.js';
import { ChunkIndex } from './chunk-index.js';
import type { ObjectStore } from '../storage/storage.js';
import { indexDir } from './layout.js';

export interface OpenedIndex {
  index: ChunkIndex;
  /** Null for the repository's own index; else the cache directory in use. */
  cacheDir: string | null;
  /** Removes a temporary cache (one made because no cache directory was writable). */
  dispose(): void;
}

const unwritableCodes = new Set<unknown>([1, 13, 30, 'EPERM', 'EACCES', 'EROFS']);

function isUnwritable(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return err instanceof BlockvaultError && unwritableCodes.has(cause?.code);
}

/** $BLOCKVAULT_CACHE_DIR, else $XDG_CACHE_HOME/blockvault, else ~/.cache/blockvault. */
export function cacheRoot(): string {
  if (process.env.BLOCKVAULT_CACHE_DIR) return process.env.BLOCKVAULT_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'blockvault');
}

/** The cache directory for one repository's index, or a temporary one when none can be made. */
function cacheIndexDir(repoId: string): { dir: string; temporary: boolean } {
  const dir = join(cacheRoot(), repoId, 'index');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return { dir, temporary: false };
  } catch {
    return { dir: mkdtempSync(join(tmpdir(), `blockvault-index-${repoId.slice(0, 8)}-`)), temporary: true };
  }
}

/** LMDB's meta pages start with its magic 0xBEEFC0DE (at byte 24 of page 0 and page 1); LMDB would crash on a file without it. */
const lmdbMagic = 0xbeefc0de;
function lmdbFileDamage(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null; // no file yet: LMDB makes it
  }
  try {
    const head = Buffer.alloc(4096 + 32);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n === 0) return null;
    if (n < 32 || head.readUInt32LE(24) !== lmdbMagic) return `${path} is not an LMDB file (no magic in its first meta page)`;
    if (n >= 4096 + 32 && head.readUInt32LE(4096 + 24) !== lmdbMagic) return `${path}: its second meta page is damaged`;
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Index files up to this size are read ahead whole at open (see prefetchIndexFile). */
const indexPrefetchBytesMax = 256 * 1024 * 1024;

/**
 * Cold, every dedup lookup of a backup would fault in B-tree pages one at a
 * time on the main thread. A hint at open has the kernel read the whole
 * index in the background meanwhile (an increment's 700 lookups then hit
 * memory); a larger index is left to fault in as needed.
 */
function prefetchIndexFile(path: string): void {
  const native = nativeApi();
  if (!native) return;
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    if (size > 0 && size <= indexPrefetchBytesMax) native.willNeed(fd, 0, size);
  } catch {
    // a hint only
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * Opens an LMDB cache; one that LMDB cannot open (damaged, or written by an
 * incompatible LMDB) is only a cache: it is removed and made anew, and the
 * caller rebuilds it from the repository. Permission problems are not damage.
 */
function openOrReplace(dir: string): ChunkIndex {
  try {
    const damage = lmdbFileDamage(join(dir, 'data.mdb'));
    if (damage) throw new BlockvaultError('CORRUPT', damage);
    prefetchIndexFile(join(dir, 'data.mdb'));
    return ChunkIndex.open(dir);
  } catch (err) {
    if (isUnwritable(err)) throw err;
    process.stderr.write(`blockvault: the index cache ${dir} cannot be opened (${(err as Error).message}); rebuilding it from the repository\n`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return ChunkIndex.open(dir);
  }
}

/** Opens the repository's index; a reader falls back to a cache directory when the repository is not writable. */
export function openIndex(store: ObjectStore, root: string, repoId: string, reader: boolean): OpenedIndex {
  const local = store.localDir(indexDir);
  if (local) {
    try {
      return { index: openOrReplace(local), cacheDir: null, dispose: () => undefined };
    } catch (err) {
      if (!reader || !isUnwritable(err)) throw err;
    }
  }
  const cache = cacheIndexDir(repoId);
  try {
    return opened(openOrReplace(cache.dir), cache.dir, cache.temporary);
  } catch (err) {
    if (cache.temporary) rmSync(cache.dir, { recursive: true, force: true });
    if (cache.temporary || !isUnwritable(err)) throw err;
  }
  // The cache directory exists but is not writable (read-only home, another user's): a temporary one.
  const dir = mkdtempSync(join(tmpdir(), `blockvault-index-${repoId.slice(0, 8)}-`));
  try {
    return opened(openOrReplace(dir), dir, true);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function opened(index: ChunkIndex, dir: string, temporary: boolean): OpenedIndex {
  return { index, cacheDir: dir, dispose: () => { if (temporary) rmSync(dir, { recursive: true, force: true }); } };
}
