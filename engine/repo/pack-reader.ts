// Reads sealed packs: trailers (to rebuild the index) and record payloads
// (for restore and verify). Open read handles are cached, a few at a time.
import { BlockvaultError, storageError } from '../core/errors.js';
import {
  decodeFooter, decodePackHeader, decodeTrailerEntries, packFooterBytes, packHeaderBytes, type PackRecord,
} from '../format/pack-format.js';
import type { ObjectStore, RangeReader } from '../storage/storage.js';
import { packPath } from './layout.js';

const openPacksMax = 32;

export class PackReader {
  private readonly handles = new Map<string, Promise<RangeReader>>();

  constructor(private readonly store: ObjectStore) {}

  private handle(packIdHex: string): Promise<RangeReader> {
    let handle = this.handles.get(packIdHex);
    if (handle) {
      this.handles.delete(packIdHex); // re-insert: most recently used last
      this.handles.set(packIdHex, handle);
      return handle;
    }
    handle = this.store.openRange(packPath(packIdHex)).catch((err: NodeJS.ErrnoException) => {
      this.handles.delete(packIdHex);
      if (err.code === 'ENOENT') {
        throw new BlockvaultError('CHUNK_MISSING', `pack ${packPath(packIdHex)} is missing`, { cause: err });
      }
      throw new BlockvaultError('TARGET_IO', `cannot open pack ${packPath(packIdHex)}: ${err.message}`, { cause: err });
    });
    this.handles.set(packIdHex, handle);
    if (this.handles.size > openPacksMax) {
      const [oldest, old] = this.handles.entries().next().value as [string, Promise<RangeReader>];
      this.handles.delete(oldest);
      void old.then((h) => h.close()).catch(() => undefined);
    }
    return handle;
  }

  /**
   * Reads a range of a pack. dropCache: the range will not be read again
   * soon (the mount, whose decoded chunks the kernel caches instead), so its
   * pages may leave the page cache.
   */
  async readRange(packIdHex: string, offset: number, length: number, into?: Uint8Array, dropCache = false): Promise<Buffer> {
    const handle = await this.handle(packIdHex);
    if (offset + length > handle.sizeBytes) {
      throw new BlockvaultError('CORRUPT', `pack ${packPath(packIdHex)}: range ${offset}+${length} is past its end (${handle.sizeBytes} bytes)`);
    }
    const bytes = await handle.readAt(offset, length, into).catch((err) => { throw storageError(err, `pack ${packPath(packIdHex)}`); });
    if (dropCache) handle.dropCache(offset, length);
    return bytes;
  }

  /** The records a sealed pack lists in its trailer, checked against its header. */
  async readTrailer(packIdHex: string): Promise<{ records: PackRecord[]; packBytes: number }> {
    const path = packPath(packIdHex);
    const handle = await this.handle(packIdHex);
    const size = handle.sizeBytes;
    if (size < packHeaderBytes + packFooterBytes) throw new BlockvaultError('CORRUPT', `${path}: ${size} bytes is too short for a sealed pack`);
    const { packId } = decodePackHeader(await handle.readAt(0, packHeaderBytes), path);
    if (packId.toString('hex') !== packIdHex) throw new BlockvaultError('CORRUPT', `${path}: header names pack ${packId.toString('hex')}`);
    const footer = decodeFooter(await handle.readAt(size - packFooterBytes, packFooterBytes), size, path);
    const entries = await handle.readAt(size - footer.trailerBytes, footer.trailerBytes - packFooterBytes);
    return { records: decodeTrailerEntries(entries, footer.count, footer.entriesXxh64, size - footer.trailerBytes, path), packBytes: size };
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((h) => h.then((x) => x.close()).catch(() => undefined)));
  }
}
