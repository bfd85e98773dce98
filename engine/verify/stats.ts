// Repository statistics from the index: what users logically have versus
// what the packs hold.
import type { Repository } from '../repo/repository.js';

export interface RepoStats {
  points: number;
  vms: number;
  logicalBytes: number; // sum of disk sizes over all restore points
  logicalDataBytes: number; // the same, without zero chunks
  uniqueChunks: number;
  uniqueRawBytes: number; // raw bytes of all stored chunks
  storedPayloadBytes: number; // their compressed size
  packs: number;
  packBytes: number; // pack files on disk, headers and trailers included
  dedupRatio: number; // logicalDataBytes / uniqueRawBytes
  compressionRatio: number; // uniqueRawBytes / storedPayloadBytes
  totalRatio: number; // logicalBytes / packBytes
}

export function repoStats(repo: Repository): RepoStats {
  const points = repo.points.list();
  const packs = repo.index.packEntries();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const logicalBytes = sum(points.map((p) => p.sizeBytes));
  const logicalDataBytes = sum(points.map((p) => p.stats.bytesNonZero ?? p.sizeBytes));
  const uniqueRawBytes = sum(packs.map(([, p]) => p.rawBytes));
  const storedPayloadBytes = sum(packs.map(([, p]) => p.storedBytes));
  const packBytes = sum(packs.map(([, p]) => p.bytes));
  const div = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    points: points.length,
    vms: new Set(points.map((p) => p.vm)).size,
    logicalBytes, logicalDataBytes,
    uniqueChunks: repo.index.chunkCount(),
    uniqueRawBytes, storedPayloadBytes,
    packs: packs.length, packBytes,
    dedupRatio: div(logicalDataBytes, uniqueRawBytes),
    compressionRatio: div(uniqueRawBytes, storedPayloadBytes),
    totalRatio: div(logicalBytes, packBytes),
  };
}
