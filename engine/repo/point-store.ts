// Restore-point files: put whole and durably (one object) as the last step
// of a backup; opened as a chunk map: a paged map's root (constant time
// whatever the disk size), or a version-1 map read whole, following a
// bounded chain of delta maps to the nearest full map.
import { BlockvaultError, storageError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { pointChainDepthMax } from '../core/limits.js';
import { applyDelta, decodePoint, encodePoint, type DecodedBody, type PointBody, type PointHeader } from '../format/point-format.js';
import type { ObjectStore } from '../storage/storage.js';
import type { ChunkIndex, PointEntry } from './chunk-index.js';
import { CdcMap } from './cdc-map.js';
import { FlatMap, PagedMap, type ChunkMap } from './chunk-map.js';
import { pointPath } from './layout.js';
import type { MapPages } from './map-pages.js';

/** A restore point opened for reading: its header and chunk map (fixed-size chunks, or variable-length ones). */
export interface OpenPoint { header: PointHeader; map: ChunkMap | CdcMap }

const pointFileBytesMax = 8 * 1024 ** 3;

export function catalogEntry(header: PointHeader, kind: PointBody['kind']): PointEntry {
  return {
    id: header.id, vm: header.vm, disk: header.disk, time: header.time, sizeBytes: header.sizeBytes,
    chunkBytes: header.chunkBytes, parent: header.parent, kind, path: pointPath(header.vm, header.disk, header.id),
    stats: header.stats, group: header.group ?? null, ...(header.chunker ? { chunker: header.chunker } : {}),
  };
}

export class PointStore {
  constructor(private readonly store: ObjectStore, private readonly index: ChunkIndex, readonly pages: MapPages) {}

  /** Commits a restore point (the backup's last step), staged in the writing session's area. */
  async write(header: PointHeader, body: PointBody, sessionId: string): Promise<void> {
    const path = pointPath(header.vm, header.disk, header.id);
    await this.store.put(path, encodePoint(header, body), sessionId).catch((err) => { throw storageError(err, `restore point ${path}`); });
    this.index.addPoint(catalogEntry(header, body.kind));
  }

  async readFile(path: string): Promise<{ header: PointHeader; body: DecodedBody }> {
    let bytes: Buffer;
    try {
      bytes = await this.store.get(path, pointFileBytesMax);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new BlockvaultError('POINT_NOT_FOUND', `restore point file ${path} is missing`, { cause: err });
      }
      throw storageError(err, `restore point ${path}`);
    }
    return decodePoint(bytes, path);
  }

  /**
   * Opens a restore point: reads its file (checksummed). A paged map's pages
   * are read as they are needed, each checked against its id. A version-1
   * map is read whole with its delta chain; checkMap re-hashes it against
   * mapSha256 (verify and the increment planner do).
   */
  async open(entry: PointEntry, options: { checkMap?: boolean } = {}): Promise<OpenPoint> {
    const { header, body } = await this.readFile(entry.path);
    if (body.kind === 'paged' || body.kind === 'cdc') {
      if (options.checkMap && sha256(body.root).toString('hex') !== header.mapSha256) {
        throw new BlockvaultError('CHECKSUM_MISMATCH', `restore point ${header.id}: map root checksum mismatch (${entry.path})`);
      }
      if (body.kind === 'cdc') return { header, map: new CdcMap(this.pages, header, body.height, body.root, `${header.vm}/${header.disk}@${header.id}`) };
      return { header, map: this.pagedMap(header, body) };
    }
    const map = await this.openFlat(entry, header, body);
    if (options.checkMap && sha256(map).toString('hex') !== header.mapSha256) {
      throw new BlockvaultError('CHECKSUM_MISMATCH', `restore point ${header.id}: chunk map checksum mismatch (${entry.path})`);
    }
    return { header, map: new FlatMap(map) };
  }

  private pagedMap(header: PointHeader, body: { height: number; root: Buffer }): PagedMap {
    return new PagedMap(this.pages, header.chunksTotal, header.chunkBytes, header.sizeBytes, body.height, body.root, `${header.vm}/${header.disk}@${header.id}`);
  }

  /** A version-1 map, materialized: its own entries, or its base's with its delta applied. */
  private async openFlat(entry: PointEntry, header: PointHeader, body: DecodedBody, depth = 0): Promise<Buffer> {
    if (depth > pointChainDepthMax) {
      throw new BlockvaultError('CORRUPT', `restore point ${entry.id}: delta chain longer than ${pointChainDepthMax}`);
    }
    if (body.kind === 'full') return body.map;
    // The base of a version-1 delta, paged by an upgrade that stopped before it reached the delta.
    if (body.kind === 'paged') return this.pagedMap(header, body).ids(0, header.chunksTotal);
    if (body.kind === 'cdc') throw new BlockvaultError('CORRUPT', `restore point ${header.id}: a variable-length map as the base of a version-1 delta`);
    const baseEntry = this.entryById(header.base as string);
    const base = await this.readFile(baseEntry.path);
    const baseMap = await this.openFlat(baseEntry, base.header, base.body, depth + 1);
    if (baseMap.length !== header.chunksTotal * 32) {
      throw new BlockvaultError('CORRUPT', `restore point ${header.id}: base ${header.base} has a different disk size`);
    }
    return applyDelta(baseMap, body, entry.path); // every buffer here was read for this open: patched in place
  }

  entryById(id: string): PointEntry {
    const entry = this.index.point(id);
    if (!entry) throw new BlockvaultError('POINT_NOT_FOUND', `restore point ${id} is not in this repository (a delta's base is missing)`);
    return entry;
  }

  /**
   * Lists restore points newest first, optionally for one vm (and disk). A
   * disk of a group whose group object is not there (a group backup that
   * failed or died before its last step) is no restore point: left out.
   */
  list(vm?: string, disk?: string): PointEntry[] {
    return this.index
      .allPoints()
      .filter((p) => (!vm || p.vm === vm) && (!disk || p.disk === disk) && (!p.group || this.index.hasGroup(p.group)))
      .sort((a, b) => (a.time === b.time ? b.id.localeCompare(a.id) : b.time.localeCompare(a.time)));
  }

  /** Resolves "vm/disk@id-prefix", "vm/disk@latest" or "vm/disk" (= latest). */
  resolve(spec: string): PointEntry {
    const match = /^([^/@]+)\/([^/@]+)(?:@([0-9a-f]+|latest))?$/.exec(spec);
    if (!match) {
      throw new BlockvaultError('USAGE', `restore point ${JSON.stringify(spec)}: expected <vm>/<disk>@<id> or <vm>/<disk>@latest (a VM restore point of several disks: <vm>@<id>)`);
    }
    const [, vm, disk, ref = 'latest'] = match;
    const candidates = this.list(vm, disk);
    if (candidates.length === 0) throw new BlockvaultError('POINT_NOT_FOUND', `no restore points for ${vm}/${disk}`);
    if (ref === 'latest') return candidates[0];
    const found = candidates.filter((p) => p.id.startsWith(ref));
    if (found.length === 0) throw new BlockvaultError('POINT_NOT_FOUND', `no restore point ${vm}/${disk}@${ref}`);
    if (found.length > 1) {
      throw new BlockvaultError('POINT_AMBIGUOUS', `${vm}/${disk}@${ref} matches ${found.length} restore points; give more of the id`);
    }
    return found[0];
  }
}
