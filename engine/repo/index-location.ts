// Where a repository's LMDB index lives. Normally in the repository
// (index/, when the store is a local directory). A reader of a repository it cannot write (a write-protected
// offsite disk, a read-only NFS export, another user's repository) keeps its
// own copy in a cache directory instead: the index is only a cache of the
// packs and restore points, so it can be rebuilt anywhere, and LMDB cannot
// open a database it cannot lock.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
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

/** Opens the repository's index; a reader falls back to a cache directory when the repository is not writable. */
export function openIndex(store: ObjectStore, root: string, repoId: string, reader: boolean): OpenedIndex {
  const local = store.localDir(indexDir);
  if (local) {
    try {
      return { index: ChunkIndex.open(local), cacheDir: null, dispose: () => undefined };
    } catch (err) {
      if (!reader || !isUnwritable(err)) throw err;
    }
  }
  const { dir, temporary } = cacheIndexDir(repoId);
  try {
    return { index: ChunkIndex.open(dir), cacheDir: dir, dispose: () => { if (temporary) rmSync(dir, { recursive: true, force: true }); } };
  } catch (err) {
    if (temporary) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
