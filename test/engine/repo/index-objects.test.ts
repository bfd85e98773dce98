// The index is in the repository (index objects); LMDB is a cache of it.
// Opening without a cache reads the index objects, not the pack trailers; a
// damaged or missing index object falls back to the trailers (and says so);
// a process killed while filling the cache leaves one that the next open
// rebuilds or catches up; every way gives the same index.
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomStream } from '../../../scripts/vm-disk.js';
import { Repository } from '../../../engine/repo/repository.js';
import { FaultStorage } from '../../../engine/storage/fault-storage.js';
import { FsObjectStore } from '../../../engine/storage/fs-storage.js';
import { cli } from '../../helpers/cli.js';
import { backupFile, newRepo } from '../../helpers/repo.js';
import { tempDir } from '../../helpers/temp.js';

const MiB = 1024 * 1024;

/** Everything the index says, in a comparable form. */
async function indexContents(root: string, storage?: FaultStorage) {
  const repo = await Repository.open(root, { storage });
  try {
    // Which index object names a pack is known only when one was read: a trailer does not say.
    const packs = repo.index.packEntries().map(([id, { indexObject: _named, ...e }]) => [id, e]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    return { packs, chunks: repo.index.chunkCount(), points: repo.points.list().map((p) => p.id) };
  } finally {
    await repo.close();
  }
}

/** Counts the reads of pack objects an open makes (trailers), through a fault store that only counts. */
function countingStore(root: string): { store: FaultStorage; packReads: () => number } {
  const store = new FaultStorage(new FsObjectStore(root));
  let reads = 0;
  const inner = store.openRange.bind(store);
  store.openRange = async (key) => { if (key.startsWith('packs/')) reads += 1; return inner(key); };
  return { store, packReads: () => reads };
}

describe('index objects', () => {
  const dir = tempDir();
  const images = [0, 1, 2].map((i) => {
    const path = join(dir, `d${i}.raw`);
    writeFileSync(path, randomStream(`idx-${i}`)(3 * MiB));
    return path;
  });

  async function repoWithBackups(): Promise<string> {
    const root = await newRepo({ packBytesTarget: MiB });
    for (const [i, image] of images.entries()) await backupFile(root, `vm${i}`, 'sda', image);
    return root;
  }

  it('a backup writes one per session before its restore point; a cold open reads them, not the trailers', async () => {
    const root = await repoWithBackups();
    expect(readdirSync(join(root, 'idx'))).toHaveLength(3);
    const before = await indexContents(root);
    expect(before.packs.length).toBeGreaterThanOrEqual(3);
    rmSync(join(root, 'index'), { recursive: true });
    const { store, packReads } = countingStore(root);
    expect(await indexContents(root, store)).toEqual(before);
    expect(packReads()).toBe(0);
  });

  it('a damaged or missing index object falls back to the trailers of its packs, and says so', async () => {
    const root = await repoWithBackups();
    const before = await indexContents(root);
    const [first, second] = readdirSync(join(root, 'idx')).sort();
    const damaged = join(root, 'idx', first);
    writeFileSync(damaged, readFileSync(damaged).subarray(0, 100)); // truncated
    rmSync(join(root, 'idx', second));
    rmSync(join(root, 'index'), { recursive: true });
    const list = await cli(['list', '-r', root]);
    expect(list.code).toBe(0);
    expect(list.stderr).toMatch(new RegExp(`index object idx/${first}: .*checksum mismatch \\(truncated or damaged\\); reading its packs' trailers instead`));
    const { store, packReads } = countingStore(root);
    rmSync(join(root, 'index'), { recursive: true });
    expect(await indexContents(root, store)).toEqual(before);
    expect(packReads()).toBeGreaterThan(0);
  });

  it('a process killed while filling the cache leaves one that the next open completes', async () => {
    const root = await repoWithBackups();
    const before = await indexContents(root);
    // A cold rebuild killed after the first index object.
    rmSync(join(root, 'index'), { recursive: true });
    const killed = await cli(['list', '-r', root], { env: { BLOCKVAULT_TEST_KILL_AT: 'index-ingest:1' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(await indexContents(root)).toEqual(before);
    // An incremental catch-up killed halfway: the cache last looked before two more backups.
    const snapshot = join(dir, 'cache-snapshot');
    cpSync(join(root, 'index'), snapshot, { recursive: true });
    for (const k of [3, 4]) {
      const image = join(dir, `d${k}.raw`);
      writeFileSync(image, randomStream(`idx-${k}`)(3 * MiB));
      await backupFile(root, `vm${k}`, 'sda', image);
    }
    const expected = await indexContents(root);
    rmSync(join(root, 'index'), { recursive: true });
    cpSync(snapshot, join(root, 'index'), { recursive: true });
    const partial = await cli(['list', '-r', root], { env: { BLOCKVAULT_TEST_KILL_AT: 'index-ingest:1' } });
    expect(partial.signal).toBe('SIGKILL');
    const { store, packReads } = countingStore(root);
    expect(await indexContents(root, store)).toEqual(expected);
    expect(packReads()).toBe(0); // caught up from the remaining index object, no rebuild
    expect((await cli(['verify', '-r', root])).code).toBe(0);
  });

  it('a damaged cache (garbage where LMDB keeps its data) is replaced and rebuilt, never trusted', async () => {
    const root = await repoWithBackups();
    const before = await indexContents(root);
    writeFileSync(join(root, 'index', 'data.mdb'), randomStream('garbage')(64 * 1024));
    const list = await cli(['list', '-r', root]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stderr).toMatch(/the index cache .*index cannot be opened \(.*data\.mdb is not an LMDB file.*\); rebuilding it from the repository/);
    expect(await indexContents(root)).toEqual(before);
  });
});
