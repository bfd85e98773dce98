// Repository statistics: what users logically have versus what the packs
// hold, and how much of that no restore point references (left by an
// interrupted backup, or by two backups that stored the same chunk).
import { dataChunkIds } from '../repo/chunk-map.js';
import type { Repository } from '../repo/repository.js';

export interface RepoStats {
  points: number;
  vms: number;
  logicalBytes: number; // sum of disk sizes over all restore points
  logicalDataBytes: number; // the same, without zero chunks
  uniqueChunks: number; // every chunk the packs hold
  uniqueRawBytes: number; // raw bytes of all stored chunks
  storedPayloadBytes: number; // their compressed size
  referencedChunks: number; // chunks some restore point needs
  referencedRawBytes: number;
  referencedStoredBytes: number;
  mapPages: number; // map pages some restore point needs (counted in referenced* too)
  mapStoredBytes: number;
  unreferencedChunks: number; // chunks no restore point needs
  unreferencedStoredBytes: number;
  packs: number;
  packBytes: number; // pack files on disk, headers and trailers included
  tmpFiles: number; // staging areas (tmp/<session>/): running sessions', or what a killed one left (the next session removes those)
  tmpBytes: number;
  dedupRatio: number; // logicalDataBytes / referencedRawBytes
  compressionRatio: number; // uniqueRawBytes / storedPayloadBytes
  totalRatio: number; // logicalBytes / packBytes
}

/** Distinct non-zero chunk ids over every restore point's map, map pages included, with their index sizes. */
async function referenced(repo: Repository): Promise<{ chunks: number; rawBytes: number; storedBytes: number; mapPages: number; mapRawBytes: number; mapStoredBytes: number }> {
  const seen = new Set<string>();
  const out = { chunks: 0, rawBytes: 0, storedBytes: 0, mapPages: 0, mapRawBytes: 0, mapStoredBytes: 0 };
  const count = (id: Buffer, page: boolean) => {
    const key = id.toString('latin1');
    if (seen.has(key)) return;
    seen.add(key);
    const location = repo.index.lookup(id); // a missing chunk is verify's to report
    out.chunks += 1;
    out.rawBytes += location?.rawBytes ?? 0;
    out.storedBytes += location?.storedBytes ?? 0;
    if (page) {
      out.mapPages += 1;
      out.mapRawBytes += location?.rawBytes ?? 0;
      out.mapStoredBytes += location?.storedBytes ?? 0;
    }
  };
  for (const entry of repo.points.list()) {
    const { map } = await repo.points.open(entry);
    for await (const id of dataChunkIds(map, (page) => count(page, true))) count(id, false);
  }
  return out;
}

export async function repoStats(repo: Repository): Promise<RepoStats> {
  const points = repo.points.list();
  const packs = repo.index.packEntries();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const logicalBytes = sum(points.map((p) => p.sizeBytes));
  const logicalDataBytes = sum(points.map((p) => p.stats.bytesNonZero ?? p.sizeBytes));
  const uniqueRawBytes = sum(packs.map(([, p]) => p.rawBytes));
  const storedPayloadBytes = sum(packs.map(([, p]) => p.storedBytes));
  const packBytes = sum(packs.map(([, p]) => p.bytes));
  const uniqueChunks = repo.index.chunkCount();
  const used = await referenced(repo);
  const staging = await repo.storage.listStaging();
  const div = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    points: points.length,
    vms: new Set(points.map((p) => p.vm)).size,
    logicalBytes, logicalDataBytes,
    uniqueChunks, uniqueRawBytes, storedPayloadBytes,
    referencedChunks: used.chunks, referencedRawBytes: used.rawBytes, referencedStoredBytes: used.storedBytes,
    mapPages: used.mapPages, mapStoredBytes: used.mapStoredBytes,
    unreferencedChunks: Math.max(0, uniqueChunks - used.chunks),
    unreferencedStoredBytes: Math.max(0, storedPayloadBytes - used.storedBytes),
    packs: packs.length, packBytes,
    tmpFiles: staging.length, tmpBytes: sum(staging.map((a) => a.sizeBytes)),
    dedupRatio: div(logicalDataBytes, used.rawBytes - used.mapRawBytes),
    compressionRatio: div(uniqueRawBytes, storedPayloadBytes),
    totalRatio: div(logicalBytes, packBytes),
  };
}
