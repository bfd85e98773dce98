import { describe, expect, it } from 'vitest';
import { decodeConfig, encodeConfig, type RepoConfig } from '../../../engine/format/config-format.js';

const config: RepoConfig = { repoId: 'x'.repeat(32), formatVersion: 1, chunkBytes: 65536, zstdLevel: 1, packBytesTarget: 1 << 27, createdAt: '2026-11-22T00:00:00.000Z' };

describe('config format', () => {
  it('round-trips', () => {
    expect(decodeConfig(encodeConfig(config), 'c')).toEqual(config);
  });
  it('names a wrong format version', () => {
    const bytes = encodeConfig(config);
    bytes[7] = 9;
    expect(() => decodeConfig(bytes, '/r/config')).toThrow(/format version 9; this blockvault reads versions 1, 2, 3, 4, 5 and 6/);
  });
  it('refuses chunk sizes that are not powers of two in range', () => {
    for (const chunkBytes of [1000, 32768, 8 * 1024 * 1024, 96 * 1024]) {
      expect(() => encodeConfig({ ...config, chunkBytes })).toThrow(/chunk size/);
    }
  });
  it('detects corruption', () => {
    const bytes = encodeConfig(config);
    bytes[20] ^= 1;
    expect(() => decodeConfig(bytes, 'c')).toThrow(/checksum/);
  });
});
