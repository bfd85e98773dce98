// Repository config file codec (docs/FORMAT.md "config"). Pure.
import { BlockvaultError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { exactBytes } from '../core/human.js';
import {
  chunkBytesMax, chunkBytesMin, configBytesMax, packBytesMax, packBytesMin, zstdLevelMax, zstdLevelMin,
} from '../core/limits.js';
import { checkChunker, type ChunkerSpec } from '../chunking/chunker.js';
import { asBuffer, needBytes } from './binary.js';

export const configMagicPrefix = Buffer.from('BVREPO\x00', 'latin1');
/**
 * 6: VM restore points may carry the VM's machine description and their
 * consistency (group objects version 2, docs/FORMAT.md "Group objects"); a
 * version-5 reader would refuse those groups and hide their disks. Backups
 * over QMP need it; everything else writes versions 4 and 5 as they are.
 * 5: a repository may chunk content-defined (`chunker` in the config), and
 * its restore points are then of kind 3, variable-length chunk maps
 * (docs/FORMAT.md "Variable-length chunk maps"); a version-4 reader would
 * take their chunks for fixed-size ones. Nothing else changed: a version-4
 * repository is written as it is (fixed chunks only).
 * 4: gc beside backups: forget and gc locks, pending-gc objects whose
 * condemned packs no backup dedups against (docs/FORMAT.md "Garbage
 * collection"); a version-3 writer would not honour them.
 * 3: restore points hold paged chunk maps (docs/FORMAT.md "Paged chunk maps").
 * 2: writers are sessions with lock objects of their own and per-session
 * staging (docs/FORMAT.md "Sessions and locks"). Older repositories are read
 * as they are; writing to one needs `blockvault upgrade` first.
 */
export const repoFormatVersion = 6;
export const repoFormatVersionsReadable = [1, 2, 3, 4, 5, 6];
/** The versions this blockvault writes to as they are (4 and 5 hold nothing a version-6 writer would change, but for groups v2, refused there by name). */
export const repoFormatVersionsWritable = [4, 5, 6];

export interface RepoConfig {
  repoId: string;
  formatVersion: number;
  chunkBytes: number;
  zstdLevel: number;
  packBytesTarget: number;
  createdAt: string;
  /** Absent before version 5: fixed. For a content-defined chunker, chunkBytes is its maximum (the largest chunk). */
  chunker?: ChunkerSpec;
}

/** The config's chunker (fixed when it names none). */
export function configChunker(c: RepoConfig): ChunkerSpec {
  return c.chunker ?? { kind: 'fixed' };
}

export function checkConfig(c: RepoConfig, what: string): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  const chunker = configChunker(c);
  checkChunker(chunker, what);
  if (chunker.kind !== 'fixed') {
    if (c.formatVersion < 5) throw new BlockvaultError('CORRUPT', `${what}: a ${chunker.kind} chunker in a version-${c.formatVersion} repository`);
    if (c.chunkBytes !== chunker.maxBytes) throw new BlockvaultError('BAD_INPUT', `${what}: chunk size ${exactBytes(c.chunkBytes)} contradicts the ${chunker.kind} maximum ${exactBytes(chunker.maxBytes)}`);
  } else if (!pow2(c.chunkBytes) || c.chunkBytes < chunkBytesMin || c.chunkBytes > chunkBytesMax) {
    throw new BlockvaultError('BAD_INPUT', `${what}: chunk size ${exactBytes(c.chunkBytes)} must be a power of two from ${exactBytes(chunkBytesMin)} to ${exactBytes(chunkBytesMax)}`);
  }
  if (!Number.isInteger(c.zstdLevel) || c.zstdLevel < zstdLevelMin || c.zstdLevel > zstdLevelMax) {
    throw new BlockvaultError('BAD_INPUT', `${what}: zstd level ${c.zstdLevel} must be from ${zstdLevelMin} to ${zstdLevelMax}`);
  }
  if (!Number.isInteger(c.packBytesTarget) || c.packBytesTarget < packBytesMin || c.packBytesTarget > packBytesMax) {
    throw new BlockvaultError('BAD_INPUT', `${what}: pack size ${exactBytes(c.packBytesTarget)} must be from ${exactBytes(packBytesMin)} to ${exactBytes(packBytesMax)}`);
  }
}

/** magic "BVREPO\0" + version byte | u32 JSON length | JSON | SHA-256 of all before. */
export function encodeConfig(c: RepoConfig): Buffer {
  checkConfig(c, 'config');
  const json = Buffer.from(JSON.stringify(c, null, 1));
  const prefix = Buffer.alloc(12);
  configMagicPrefix.copy(prefix, 0);
  prefix.writeUInt8(c.formatVersion, 7);
  prefix.writeUInt32LE(json.length, 8);
  const body = Buffer.concat([prefix, json]);
  return Buffer.concat([body, sha256(body)]);
}

export function decodeConfig(bytes: Uint8Array, what: string): RepoConfig {
  const b = asBuffer(bytes);
  needBytes(b, 12 + 32, what);
  if (!b.subarray(0, 7).equals(configMagicPrefix)) {
    throw new BlockvaultError('NOT_A_REPO', `${what}: not a blockvault repository config (bad magic)`);
  }
  const version = b.readUInt8(7);
  if (!repoFormatVersionsReadable.includes(version)) {
    throw new BlockvaultError('FORMAT_VERSION', `${what}: repository format version ${version}; this blockvault reads versions ${repoFormatVersionsReadable.slice(0, -1).join(', ')} and ${repoFormatVersionsReadable.at(-1)}`);
  }
  const jsonBytes = b.readUInt32LE(8);
  if (jsonBytes > configBytesMax || b.length !== 12 + jsonBytes + 32) {
    throw new BlockvaultError('CORRUPT', `${what}: config length out of range`);
  }
  if (!sha256(b.subarray(0, 12 + jsonBytes)).equals(b.subarray(12 + jsonBytes))) {
    throw new BlockvaultError('CHECKSUM_MISMATCH', `${what}: config checksum mismatch`);
  }
  const config = JSON.parse(b.toString('utf8', 12, 12 + jsonBytes)) as RepoConfig;
  checkConfig(config, what);
  if (config.formatVersion !== version) throw new BlockvaultError('CORRUPT', `${what}: the version byte (${version}) and the JSON (${config.formatVersion}) disagree`);
  return config;
}
