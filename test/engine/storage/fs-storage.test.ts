import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../../engine/storage/fs-storage.js';
import { tempDir } from '../../helpers/temp.js';

describe('FsObjectStore listing', () => {
  it('lists every key under a prefix across nested directories (walked at once), sorted, and nothing else', async () => {
    const store = new FsObjectStore(join(tempDir(), 'repo'));
    const keys = ['packs/ab/1.pack', 'packs/ab/2.pack', 'packs/cd/3.pack', 'packs/ef/gh/4.pack', 'points/vm/sda/a.point', 'points/vm/sdb/b.point', 'config'];
    for (const [i, key] of [...keys].reverse().entries()) await store.put(key, Buffer.from(String(i)), 'session-1');
    expect(await store.listKeys('packs/')).toEqual(['packs/ab/1.pack', 'packs/ab/2.pack', 'packs/cd/3.pack', 'packs/ef/gh/4.pack']);
    expect(await store.listKeys('points/vm/sdb/')).toEqual(['points/vm/sdb/b.point']);
    expect(await store.listKeys('packs/c')).toEqual(['packs/cd/3.pack']);
    expect(await store.listKeys('nothing/')).toEqual([]);
    expect((await store.list('points/')).map((o) => o.key)).toEqual(['points/vm/sda/a.point', 'points/vm/sdb/b.point']);
  });
});
