// The native addon: its data/hole map, checked against files with known
// holes, and its page-cache drop, checked with fincore.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeApi } from '../../engine/core/native.js';
import { residentBytes } from '../helpers/page-cache.js';
import { tempDir } from '../helpers/temp.js';

describe('native dataExtents (SEEK_DATA/SEEK_HOLE)', () => {
  const dir = tempDir();
  const api = nativeApi();

  it('is built and loads', () => {
    expect(api).not.toBeNull();
  });

  it('finds exactly the written regions of a sparse file', () => {
    const path = join(dir, 'sparse.raw');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 64 * 1024 * 1024);
    writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 1024 * 1024);
    writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 40 * 1024 * 1024);
    const extents = api!.dataExtents(fd, 64 * 1024 * 1024);
    expect(extents).toEqual([1024 * 1024, 1024 * 1024 + 8192, 40 * 1024 * 1024, 40 * 1024 * 1024 + 4096]);
    expect(api!.dataExtents(fd, 2 * 1024 * 1024)).toEqual([1024 * 1024, 1024 * 1024 + 8192]); // clipped to size
    closeSync(fd);
  });

  it('reports a fully allocated file as one extent and an empty one as none', () => {
    const path = join(dir, 'dense.raw');
    const fd = openSync(path, 'w');
    writeSync(fd, Buffer.alloc(100_000, 3));
    expect(api!.dataExtents(fd, 100_000)).toEqual([0, 100_000]);
    ftruncateSync(fd, 0);
    expect(api!.dataExtents(fd, 0)).toEqual([]);
    closeSync(fd);
  });

  it('throws a coded error for a bad descriptor', () => {
    expect(() => api!.dataExtents(-1, 10)).toThrow(/fd must be >= 0/);
    expect(() => api!.dataExtents(987654, 10)).toThrow(/lseek/);
  });
});

describe('native dropCache (posix_fadvise DONTNEED)', () => {
  const dir = tempDir();
  const api = nativeApi();

  it('drops exactly the given range of a file from the page cache', () => {
    const path = join(dir, 'cached.bin');
    writeFileSync(path, randomBytes(8 * 1024 * 1024));
    const fd = openSync(path, 'r');
    fsyncSync(fd); // only clean pages can be dropped
    readFileSync(path);
    expect(residentBytes(path)).toBe(8 * 1024 * 1024);
    api!.dropCache(fd, 2 * 1024 * 1024, 4 * 1024 * 1024);
    expect(residentBytes(path)).toBe(4 * 1024 * 1024);
    closeSync(fd);
  });

  it('throws a coded error for bad arguments', () => {
    expect(() => api!.dropCache(-1, 0, 10)).toThrow(/dropCache\(fd, offset, length\)/);
    expect(() => api!.dropCache(987654, 0, 10)).toThrow(/posix_fadvise/);
  });
});

describe('native startWriteback (sync_file_range WRITE)', () => {
  const dir = tempDir();
  const api = nativeApi();

  it('starts writeback of a dirty file without changing it, and names a bad descriptor or range', () => {
    const path = join(dir, 'dirty.bin');
    const data = randomBytes(4 * 1024 * 1024);
    const fd = openSync(path, 'w');
    writeSync(fd, data);
    api!.startWriteback(fd, 0, 0); // the whole file
    api!.startWriteback(fd, 1024 * 1024, 1024 * 1024);
    closeSync(fd);
    expect(readFileSync(path).equals(data)).toBe(true);
    expect(() => api!.startWriteback(987654, 0, 0)).toThrow(/sync_file_range\(WRITE\) failed/);
    expect(() => api!.startWriteback(-1, 0, 0)).toThrow(/takes an fd >= 0/);
    expect(() => api!.startWriteback(0, -5, 0)).toThrow(/takes an fd >= 0/);
  });
});
